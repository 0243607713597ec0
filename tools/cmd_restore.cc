// tidemark restore --journal DIR VOLUME (point) --output PATH [--format F] [--force]
#include <unistd.h>

#include <cstdio>

#include "cli.h"
#include "tidemark/journal/time.h"
#include "tidemark/recovery/restore.h"

namespace tidemark::tools {

namespace {

struct RestoreArgs {
  std::string journal_dir;
  std::string volume;
  PointArgs point;
  std::string output;
  std::string format = "raw";
  bool force = false;
  bool json = false;
  bool progress = false;
};

int RunRestore(const RestoreArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(spec, a.point.Spec(NowNs()));
    BOOST_OUTCOME_TRY(format, recovery::ParseImageFormat(a.format));
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/false));
    BOOST_OUTCOME_TRY(vol, j->FindVolume(a.volume));
    BOOST_OUTCOME_TRY(point, j->Resolve(vol.id, spec, NowNs()));
    recovery::RestoreOptions o;
    o.output_path = a.output;
    o.format = format;
    o.force = a.force;
    if (a.progress || (!a.json && isatty(2))) {
      o.progress = [](uint64_t done, uint64_t total) {
        std::fprintf(stderr, "\rrestoring: %3d%%", static_cast<int>(done * 100 / total));
        if (done == total) std::fprintf(stderr, "\n");
      };
    }
    BOOST_OUTCOME_TRY(stats, recovery::Restore(*j, vol.id, point.seq, o));
    if (a.json) {
      nlohmann::json out = {{"volume", vol.name},
                            {"point", PointJson(point)},
                            {"output", a.output},
                            {"format", a.format},
                            {"volume_bytes", stats.volume_bytes},
                            {"data_bytes", stats.data_bytes},
                            {"seconds", stats.seconds},
                            {"io_uring", stats.io_uring}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("restored %s at seq %llu (%s) to %s: %s %s image, %s of data in %.2f s\n",
                  vol.name.c_str(), static_cast<unsigned long long>(point.seq),
                  FormatTime(point.time_ns).c_str(), a.output.c_str(),
                  HumanBytes(stats.volume_bytes).c_str(), a.format.c_str(),
                  HumanBytes(stats.data_bytes).c_str(), stats.seconds);
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

}  // namespace

void AddRestoreCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<RestoreArgs>();
  CLI::App* cmd = app.add_subcommand("restore", "write a volume as it was at a point to an image");
  cmd->add_option("--journal", a->journal_dir, "journal directory")->required();
  cmd->add_option("VOLUME", a->volume, "volume name")->required();
  a->point.Add(cmd);
  cmd->add_option("--output", a->output, "image to write (refused if it exists, see --force)")
      ->required();
  cmd->add_option("--format", a->format, "raw (sparse), qcow2, vmdk or vhdx")
      ->capture_default_str();
  cmd->add_flag("--force", a->force, "replace an existing output");
  cmd->add_flag("--progress", a->progress, "show progress on stderr (default on a terminal)");
  cmd->add_flag("--json", a->json, "print the result as JSON");
  cmd->callback([a, exit_code] { *exit_code = RunRestore(*a); });
}

}  // namespace tidemark::tools
