// tidemark restore (--journal DIR | --target HOST:PORT ...) VOLUME (point) --output PATH
//                  [--format F] [--force]
// With --target the point is resolved by the target and its blocks arrive as
// the control API's block stream; the image is written the same way.
#include <unistd.h>

#include <cstdio>

#include "cli.h"
#include "tidemark/journal/time.h"
#include "tidemark/recovery/restore.h"

namespace tidemark::tools {

namespace {

struct RestoreArgs {
  std::string journal_dir;
  RemoteArgs remote;
  std::string volume;
  PointArgs point;
  std::string output;
  std::string format = "raw";
  bool force = false;
  bool json = false;
  bool progress = false;
};

// The body of POST .../resolve for a point spec; a relative --at is made
// absolute here, by this machine's clock, as the --journal form does.
nlohmann::json ResolveBody(const journal::PointSpec& spec) {
  switch (spec.kind) {
    case journal::PointSpec::Kind::kLatest: return {{"latest", true}};
    case journal::PointSpec::Kind::kSeq: return {{"seq", spec.seq}};
    case journal::PointSpec::Kind::kBookmark: return {{"bookmark", spec.bookmark}};
    case journal::PointSpec::Kind::kTime: return {{"at", FormatTime(spec.time_ns)}};
  }
  return nullptr;
}

int RunRestore(const RestoreArgs& a) {
  auto run = [&]() -> Status {
    TM_RETURN_IF_ERROR(a.remote.Check(a.journal_dir));
    BOOST_OUTCOME_TRY(spec, a.point.Spec(NowNs()));
    BOOST_OUTCOME_TRY(format, recovery::ParseImageFormat(a.format));
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
    journal::VolumeInfo vol;
    journal::Point point;
    recovery::RestoreStats stats;
    if (a.remote.given()) {
      BOOST_OUTCOME_TRY(client, a.remote.Client());
      BOOST_OUTCOME_TRY(p, client->Call("POST",
                                        target::RemoteClient::VolumePath(a.volume, "resolve"),
                                        ResolveBody(spec)));
      if (!p.is_object() || !p.contains("seq") || !p["seq"].is_number_unsigned() ||
          !p.contains("time") || !p["time"].is_string()) {
        return Status::IOError("the target's resolve answer is not a point: " + p.dump());
      }
      point.seq = p["seq"].get<Seq>();
      BOOST_OUTCOME_TRY(t, ParseTime(p["time"].get<std::string>(), NowNs()));
      point.time_ns = t;
      BOOST_OUTCOME_TRY(v, client->FindVolume(a.volume));
      vol = v;
      auto source = [&](const journal::BlockFn& fn) {
        return client->StreamBlocks(vol, point.seq, fn);
      };
      BOOST_OUTCOME_TRY(st, recovery::RestoreBlocks(vol, source, o));
      stats = st;
    } else {
      BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/false));
      BOOST_OUTCOME_TRY(v, j->FindVolume(a.volume));
      vol = v;
      BOOST_OUTCOME_TRY(pt, j->Resolve(vol.id, spec, NowNs()));
      point = pt;
      BOOST_OUTCOME_TRY(st, recovery::Restore(*j, vol.id, point.seq, o));
      stats = st;
    }
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
  cmd->add_option("--journal", a->journal_dir, "journal directory");
  a->remote.Add(cmd);
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
