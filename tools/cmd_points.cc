// tidemark points (--journal DIR | --target HOST:PORT ...) VOLUME [--flushes] [--json]
// tidemark bookmark (--journal DIR | --target HOST:PORT ...) VOLUME NAME [--json]
// With --target (and --tenant, --token-file, --ca) both go to the target's
// control API over TLS; its answers have the shapes printed here.
#include <cstdio>

#include "cli.h"
#include "daemon.h"
#include "tidemark/target/control.h"
#include "tidemark/journal/time.h"

namespace tidemark::tools {

namespace {

struct PointsArgs {
  std::string journal_dir;
  RemoteArgs remote;
  std::string state_dir;  // with --target: where its drill records are
  std::string volume;
  bool flushes = false;
  bool json = false;
};

// The contract's `points --json` object (the target's GET .../points
// answers the same one).
Result<nlohmann::json> PointsJson(const journal::Journal& j, const journal::VolumeInfo& vol,
                                  bool with_flushes) {
  BOOST_OUTCOME_TRY(first, j.First(vol.id));
  BOOST_OUTCOME_TRY(latest, j.Latest(vol.id));
  nlohmann::json out = {{"format", 1},
                        {"volume", vol.name},
                        {"first", PointJson(first)},
                        {"latest", PointJson(latest)},
                        {"bookmarks", nlohmann::json::array()}};
  for (const auto& b : j.Bookmarks(vol.id)) {
    nlohmann::json bj = PointJson(b.point);
    bj["name"] = b.name;
    bj["created"] = FormatTime(b.created_ns);
    out["bookmarks"].push_back(bj);
  }
  if (with_flushes) {
    BOOST_OUTCOME_TRY(flushes, j.Flushes(vol.id));
    out["flushes"] = nlohmann::json::array();
    for (const auto& p : flushes) out["flushes"].push_back(PointJson(p));
  }
  return out;
}

// The text form of a points object.
Status PrintPoints(const journal::VolumeInfo& vol, const nlohmann::json& p, bool with_flushes) {
  try {
    auto line = [](const char* label, const nlohmann::json& pt) {
      std::printf("%-10s seq %-10llu %s\n", label,
                  static_cast<unsigned long long>(pt.at("seq").get<uint64_t>()),
                  pt.at("time").get<std::string>().c_str());
    };
    std::printf("volume %s: %s, %u-byte blocks\n", vol.name.c_str(),
                HumanBytes(vol.size_bytes).c_str(), vol.block_bytes);
    line("first", p.at("first"));
    line("latest", p.at("latest"));
    std::printf("bookmarks: %zu\n", p.at("bookmarks").size());
    for (const auto& b : p.at("bookmarks")) {
      std::printf("  %-20s seq %-10llu %s\n", b.at("name").get<std::string>().c_str(),
                  static_cast<unsigned long long>(b.at("seq").get<uint64_t>()),
                  b.at("time").get<std::string>().c_str());
    }
    if (with_flushes) {
      std::printf("flushes: %zu\n", p.at("flushes").size());
      for (const auto& f : p.at("flushes")) line("  flush", f);
    }
    if (p.contains("last_drill")) {
      std::printf("last drill: %s\n", LastDrillText(p["last_drill"]).c_str());
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::IOError(std::string("the points answer is not a points object: ") + e.what());
  }
  return Status::Ok();
}

int RunPoints(const PointsArgs& a) {
  auto run = [&]() -> Status {
    TM_RETURN_IF_ERROR(a.remote.Check(a.journal_dir));
    if (!a.state_dir.empty() && !a.remote.given()) {
      return Status::InvalidArgument("--state goes with --target");
    }
    nlohmann::json out;
    journal::VolumeInfo vol;
    if (a.remote.given()) {
      BOOST_OUTCOME_TRY(client, a.remote.Client());
      std::string path =
          target::RemoteClient::VolumePath(a.volume, a.flushes ? "points?flushes=1" : "points");
      BOOST_OUTCOME_TRY(answer, client->Call("GET", path));
      out = std::move(answer);
      if (!a.json) {
        BOOST_OUTCOME_TRY(v, client->FindVolume(a.volume));
        vol = v;
      }
    } else {
      BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/false));
      BOOST_OUTCOME_TRY(v, j->FindVolume(a.volume));
      vol = v;
      BOOST_OUTCOME_TRY(local, PointsJson(*j, vol, a.flushes));
      out = std::move(local);
    }
    // The drill records (recovery/drill.h): beside the journal, or for a
    // target in the directory given with --state.
    const std::string& drills = a.remote.given() ? a.state_dir : a.journal_dir;
    if (!drills.empty()) out["last_drill"] = LastDrillJson(drills, a.volume);
    if (a.json) {
      std::printf("%s\n", out.dump().c_str());
      return Status::Ok();
    }
    return PrintPoints(vol, out, a.flushes);
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

struct BookmarkArgs {
  std::string journal_dir;
  RemoteArgs remote;
  std::string volume;
  std::string name;
  bool json = false;
};

int RunBookmark(const BookmarkArgs& a) {
  auto run = [&]() -> Status {
    TM_RETURN_IF_ERROR(a.remote.Check(a.journal_dir));
    std::optional<Result<nlohmann::json>> answer;
    if (a.remote.given()) {
      // The target runs it on the tenant's ingest worker: ordered with the
      // writes it received.
      BOOST_OUTCOME_TRY(client, a.remote.Client());
      answer = client->Call("POST", target::RemoteClient::VolumePath(a.volume, "bookmarks"),
                            {{"name", a.name}});
    } else {
      BOOST_OUTCOME_TRY(daemon, ReadyDaemon(a.journal_dir, DaemonWait()));
      if (daemon && daemon->contains("control")) {
        // A daemon owns the journal: the bookmark goes through it, ordered
        // with the writes it receives.
        answer = target::ControlCall(daemon->at("control").get<std::string>(), "POST",
                                     "/v1/volumes/" + a.volume + "/bookmarks",
                                     {{"name", a.name}});
      }
    }
    if (answer) {
      BOOST_OUTCOME_TRY(out, std::move(*answer));
      if (a.json) {
        std::printf("%s\n", out.dump().c_str());
      } else {
        std::printf("bookmark %s on %s at seq %s (%s)\n", a.name.c_str(), a.volume.c_str(),
                    out.value("seq", nlohmann::json()).dump().c_str(),
                    out.value("time", std::string("?")).c_str());
      }
      return Status::Ok();
    }
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/true));
    BOOST_OUTCOME_TRY(vol, j->FindVolume(a.volume));
    BOOST_OUTCOME_TRY(b, j->AddBookmark(vol.id, a.name, NowNs()));
    if (a.json) {
      nlohmann::json out = PointJson(b.point);
      out["volume"] = vol.name;
      out["name"] = b.name;
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("bookmark %s on %s at seq %llu (%s)\n", b.name.c_str(), vol.name.c_str(),
                  static_cast<unsigned long long>(b.point.seq),
                  FormatTime(b.point.time_ns).c_str());
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

}  // namespace

void AddPointsCommands(CLI::App& app, int* exit_code) {
  auto p = std::make_shared<PointsArgs>();
  CLI::App* points = app.add_subcommand("points", "list a volume's restorable points");
  points->add_option("--journal", p->journal_dir, "journal directory");
  p->remote.Add(points);
  points->add_option("VOLUME", p->volume, "volume name")->required();
  points->add_option("--state", p->state_dir,
                     "with --target: the directory of its drill records (see drill start)");
  points->add_flag("--flushes", p->flushes, "also list FLUSH and FUA points");
  points->add_flag("--json", p->json, "print JSON");
  AddWaitOption(points);
  points->callback([p, exit_code] { *exit_code = RunPoints(*p); });

  auto b = std::make_shared<BookmarkArgs>();
  CLI::App* bm = app.add_subcommand("bookmark", "name the newest point of a volume");
  bm->add_option("--journal", b->journal_dir, "journal directory");
  b->remote.Add(bm);
  bm->add_option("VOLUME", b->volume, "volume name")->required();
  bm->add_option("NAME", b->name, "bookmark name, unique per volume")->required();
  bm->add_flag("--json", b->json, "print JSON");
  AddWaitOption(bm);
  bm->callback([b, exit_code] { *exit_code = RunBookmark(*b); });
}

}  // namespace tidemark::tools
