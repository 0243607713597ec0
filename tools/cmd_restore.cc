// tidemark restore (--journal DIR | --target HOST:PORT ...) (VOLUME | --group G) (point)
//                  (--output PATH | --output-dir DIR) [--format F] [--force]
// With --target the point is resolved by the target and its blocks arrive as
// the control API's block stream; the image is written the same way.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "tidemark/journal/time.h"
#include "tidemark/recovery/restore.h"
#include "volume_set.h"

namespace tidemark::tools {

namespace {

struct RestoreArgs {
  std::string journal_dir;
  RemoteArgs remote;
  std::string volume;
  std::string group;
  PointArgs point;
  std::string output;
  std::string output_dir;
  std::string format = "raw";
  bool force = false;
  bool json = false;
  bool progress = false;
  unsigned threads = 0;
};

// A group member's image in --output-dir: NAME.img (raw) or NAME.FORMAT.
std::string MemberOutput(const RestoreArgs& a, const std::string& name) {
  return a.output_dir + "/" + name + (a.format == "raw" ? ".img" : "." + a.format);
}

int RunRestore(const RestoreArgs& a) {
  if (Status s = CheckVolumeOrGroup(a.volume, a.group); !s.ok()) return Fail(s, a.json);
  if (a.group.empty() ? (a.output.empty() || !a.output_dir.empty())
                      : (a.output_dir.empty() || !a.output.empty())) {
    return Fail(Status::InvalidArgument(a.group.empty()
                                            ? "a volume is restored with --output PATH"
                                            : "a group is restored with --output-dir DIR"),
                a.json);
  }
  auto run = [&]() -> Status {
    TM_RETURN_IF_ERROR(a.remote.Check(a.journal_dir));
    BOOST_OUTCOME_TRY(spec, a.point.Spec(NowNs()));
    BOOST_OUTCOME_TRY(format, recovery::ParseImageFormat(a.format));
    recovery::RestoreOptions o;
    o.format = format;
    o.force = a.force;
    o.scan_threads = a.threads;
    if (a.progress || (!a.json && isatty(2))) {
      o.progress = [](uint64_t done, uint64_t total) {
        std::fprintf(stderr, "\rrestoring: %3d%%", static_cast<int>(done * 100 / total));
        if (done == total) std::fprintf(stderr, "\n");
      };
    }
    // The volumes to restore: one, or the group's members at one seq.
    std::vector<journal::VolumeInfo> vols;
    journal::Point point;
    std::vector<recovery::RestoreStats> stats;
    std::vector<std::string> outputs;
    auto output_of = [&](const journal::VolumeInfo& v) {
      return a.group.empty() ? a.output : MemberOutput(a, v.name);
    };
    if (!a.output_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(a.output_dir, ec);
      if (ec) return Status::IOError("cannot create " + a.output_dir + ": " + ec.message());
    }
    if (a.remote.given()) {
      BOOST_OUTCOME_TRY(client, a.remote.Client());
      BOOST_OUTCOME_TRY(set, ResolveVolumeSet(*client, a.volume, a.group, spec));
      vols = set.volumes;
      point = set.point;
      for (const journal::VolumeInfo& vol : vols) {
        auto source = [&](const journal::BlockFn& fn) {
          return client->StreamBlocks(vol, point.seq, fn);
        };
        o.output_path = output_of(vol);
        BOOST_OUTCOME_TRY(st, recovery::RestoreBlocks(vol, source, o));
        stats.push_back(st);
      }
    } else {
      BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/false));
      BOOST_OUTCOME_TRY(set, ResolveVolumeSet(*j, a.volume, a.group, spec, NowNs()));
      vols = set.volumes;
      point = set.point;
      for (const journal::VolumeInfo& vol : vols) {
        o.output_path = output_of(vol);
        BOOST_OUTCOME_TRY(st, recovery::Restore(*j, vol.id, point.seq, o));
        stats.push_back(st);
      }
    }
    nlohmann::json images = nlohmann::json::array();
    for (size_t i = 0; i < vols.size(); ++i) {
      const journal::VolumeInfo& vol = vols[i];
      if (a.json) {
        images.push_back({{"volume", vol.name},
                          {"output", output_of(vol)},
                          {"volume_bytes", stats[i].volume_bytes},
                          {"data_bytes", stats[i].data_bytes},
                          {"seconds", stats[i].seconds},
                          {"io_uring", stats[i].io_uring},
                          {"direct_io", stats[i].direct_io}});
      } else {
        std::printf("restored %s at seq %llu (%s) to %s: %s %s image, %s of data in %.2f s\n",
                    vol.name.c_str(), static_cast<unsigned long long>(point.seq),
                    FormatTime(point.time_ns).c_str(), output_of(vol).c_str(),
                    HumanBytes(stats[i].volume_bytes).c_str(), a.format.c_str(),
                    HumanBytes(stats[i].data_bytes).c_str(), stats[i].seconds);
      }
    }
    if (a.json) {
      nlohmann::json out;
      if (a.group.empty()) {
        out = images[0];
        out["point"] = PointJson(point);
        out["format"] = a.format;
      } else {
        out = {{"group", a.group}, {"point", PointJson(point)}, {"format", a.format},
               {"output_dir", a.output_dir}, {"volumes", images}};
      }
      std::printf("%s\n", out.dump().c_str());
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
  cmd->add_option("--journal", a->journal_dir, "journal directory");
  a->remote.Add(cmd);
  cmd->add_option("VOLUME", a->volume, "volume name (or --group)");
  cmd->add_option("--group", a->group,
                  "restore every volume of a consistency group at one point (--output-dir)");
  a->point.Add(cmd);
  cmd->add_option("--output", a->output, "image to write (refused if it exists, see --force)");
  cmd->add_option("--output-dir", a->output_dir,
                  "directory for a group's images: NAME.img (raw) or NAME.FORMAT each");
  cmd->add_option("--format", a->format, "raw (sparse), qcow2, vmdk or vhdx")
      ->capture_default_str();
  cmd->add_flag("--force", a->force, "replace an existing output");
  cmd->add_option("--threads", a->threads,
                  "block ranges scanned at once from a local journal (default: one per CPU, at "
                  "most 4; volumes under 64 MiB use one)")
      ->check(CLI::Range(1u, 64u));
  cmd->add_flag("--progress", a->progress, "show progress on stderr (default on a terminal)");
  cmd->add_flag("--json", a->json, "print the result as JSON");
  AddWaitOption(cmd);
  cmd->callback([a, exit_code] { *exit_code = RunRestore(*a); });
}

}  // namespace tidemark::tools
