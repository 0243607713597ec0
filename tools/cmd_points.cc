// tidemark points --journal DIR VOLUME [--flushes] [--json]
// tidemark bookmark --journal DIR VOLUME NAME [--json]
#include <cstdio>

#include "cli.h"
#include "daemon.h"
#include "tidemark/target/control.h"
#include "tidemark/journal/time.h"

namespace tidemark::tools {

namespace {

struct PointsArgs {
  std::string journal_dir;
  std::string volume;
  bool flushes = false;
  bool json = false;
};

int RunPoints(const PointsArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/false));
    BOOST_OUTCOME_TRY(vol, j->FindVolume(a.volume));
    BOOST_OUTCOME_TRY(first, j->First(vol.id));
    BOOST_OUTCOME_TRY(latest, j->Latest(vol.id));
    std::vector<journal::Point> flushes;
    if (a.flushes) {
      BOOST_OUTCOME_TRY(f, j->Flushes(vol.id));
      flushes = std::move(f);
    }
    auto bookmarks = j->Bookmarks(vol.id);
    if (a.json) {
      nlohmann::json out = {{"format", 1},
                            {"volume", vol.name},
                            {"first", PointJson(first)},
                            {"latest", PointJson(latest)},
                            {"bookmarks", nlohmann::json::array()}};
      for (const auto& b : bookmarks) {
        nlohmann::json bj = PointJson(b.point);
        bj["name"] = b.name;
        bj["created"] = FormatTime(b.created_ns);
        out["bookmarks"].push_back(bj);
      }
      if (a.flushes) {
        out["flushes"] = nlohmann::json::array();
        for (const auto& p : flushes) out["flushes"].push_back(PointJson(p));
      }
      std::printf("%s\n", out.dump().c_str());
      return Status::Ok();
    }
    auto line = [](const char* label, const journal::Point& p) {
      std::printf("%-10s seq %-10llu %s\n", label, static_cast<unsigned long long>(p.seq),
                  FormatTime(p.time_ns).c_str());
    };
    std::printf("volume %s: %s, %u-byte blocks\n", vol.name.c_str(),
                HumanBytes(vol.size_bytes).c_str(), vol.block_bytes);
    line("first", first);
    line("latest", latest);
    std::printf("bookmarks: %zu\n", bookmarks.size());
    for (const auto& b : bookmarks) {
      std::printf("  %-20s seq %-10llu %s\n", b.name.c_str(),
                  static_cast<unsigned long long>(b.point.seq),
                  FormatTime(b.point.time_ns).c_str());
    }
    if (a.flushes) {
      std::printf("flushes: %zu\n", flushes.size());
      for (const auto& p : flushes) line("  flush", p);
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

struct BookmarkArgs {
  std::string journal_dir;
  std::string volume;
  std::string name;
  bool json = false;
};

int RunBookmark(const BookmarkArgs& a) {
  auto run = [&]() -> Status {
    if (auto daemon = RunningDaemon(a.journal_dir); daemon && daemon->contains("control")) {
      // A daemon owns the journal: the bookmark goes through it, ordered
      // with the writes it receives.
      BOOST_OUTCOME_TRY(out, target::ControlCall(daemon->at("control").get<std::string>(), "POST",
                                                 "/v1/volumes/" + a.volume + "/bookmarks",
                                                 {{"name", a.name}}));
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
  points->add_option("--journal", p->journal_dir, "journal directory")->required();
  points->add_option("VOLUME", p->volume, "volume name")->required();
  points->add_flag("--flushes", p->flushes, "also list FLUSH and FUA points");
  points->add_flag("--json", p->json, "print JSON");
  points->callback([p, exit_code] { *exit_code = RunPoints(*p); });

  auto b = std::make_shared<BookmarkArgs>();
  CLI::App* bm = app.add_subcommand("bookmark", "name the newest point of a volume");
  bm->add_option("--journal", b->journal_dir, "journal directory")->required();
  bm->add_option("VOLUME", b->volume, "volume name")->required();
  bm->add_option("NAME", b->name, "bookmark name, unique per volume")->required();
  bm->add_flag("--json", b->json, "print JSON");
  bm->callback([b, exit_code] { *exit_code = RunBookmark(*b); });
}

}  // namespace tidemark::tools
