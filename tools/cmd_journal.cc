// tidemark journal import|replay|dump|check (verify)|set-floors|upgrade
#include <cstdio>

#include "cli.h"
#include "import_replay.h"

namespace tidemark::tools {

namespace {

// The id of the named volume, or kNoVolume (every volume) for no name.
Result<uint32_t> VolumeFilter(const journal::Journal& j, const std::string& name) {
  if (name.empty()) return journal::Journal::kNoVolume;
  BOOST_OUTCOME_TRY(vol, j.FindVolume(name));
  return vol.id;
}

struct DumpArgs {
  std::string journal_dir;
  std::string volume;
};

int RunDump(const DumpArgs& a) {
  auto run = [&]() -> Status {
    journal::OpenOptions o;
    o.read_only = true;
    o.allow_format1 = true;  // dump reads format 1 too (docs/format-journal.md#versioning)
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, o));
    BOOST_OUTCOME_TRY(id, VolumeFilter(*j, a.volume));
    return j->Dump(id, [](std::string_view line) {
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
    });
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, false);
}

struct VerifyArgs {
  std::string journal_dir;
  std::string volume;
  bool json = false;
  bool rebuild_index = false;
};

int RunVerify(const VerifyArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/a.rebuild_index));
    BOOST_OUTCOME_TRY(id, VolumeFilter(*j, a.volume));
    nlohmann::json problems = nlohmann::json::array();
    nlohmann::json rebuilt = nullptr;
    if (a.rebuild_index) {
      if (!a.volume.empty()) {
        return Status::InvalidArgument("--rebuild-index rebuilds the whole journal: name no volume");
      }
      if (!a.json) std::fprintf(stderr, "rebuilding the index of %s from its segments\n", a.journal_dir.c_str());
      std::vector<std::string> stopped;
      TM_RETURN_IF_ERROR(j->RebuildIndex(&stopped));
      for (const std::string& l : stopped) {
        if (a.json) {
          problems.push_back(l);
        } else {
          std::printf("problem: %s\n", l.c_str());
        }
      }
      rebuilt = stopped.empty();
    }
    auto stats = j->Verify(id, [&](std::string_view line) {
      if (a.json) {
        problems.push_back(std::string(line));
      } else {
        std::printf("problem: %.*s\n", static_cast<int>(line.size()), line.data());
      }
    });
    if (!stats) return stats.error().Annotate("journal " + a.journal_dir);
    if (!problems.empty() && a.rebuild_index) {
      return Status::Corruption("journal " + a.journal_dir + ": the index was rebuilt up to " +
                                std::to_string(problems.size()) + " damaged segment tail(s)");
    }
    if (a.json) {
      std::printf("%s\n", nlohmann::json({{"ok", true},
                                          {"seqs", stats.value().seqs},
                                          {"block_versions", stats.value().blocks},
                                          {"index_rebuilt", rebuilt},
                                          {"problems", problems}})
                              .dump()
                              .c_str());
    } else {
      std::printf("journal %s is consistent: %llu seqs, %llu block versions checked\n",
                  a.journal_dir.c_str(), static_cast<unsigned long long>(stats.value().seqs),
                  static_cast<unsigned long long>(stats.value().blocks));
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

struct FloorArgs {
  std::string journal_dir;
  uint32_t read_floor = 1;
  uint32_t write_floor = 1;
};

int RunSetFloors(const FloorArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/true));
    return j->SetFloors(a.read_floor, a.write_floor);
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, false);
}

}  // namespace

void AddJournalCommand(CLI::App& app, int* exit_code) {
  CLI::App* jc = app.add_subcommand("journal", "work on a journal directly");
  jc->require_subcommand(1);

  auto im = std::make_shared<ImportArgs>();
  CLI::App* import = jc->add_subcommand(
      "import", "record an image as a volume's seq 0, or its changed blocks as a new seq");
  import->add_option("--journal", im->journal_dir, "journal directory (created if missing)")
      ->required();
  import->add_option("--name", im->name, "volume name")->required();
  import->add_option("IMAGE", im->image, "raw image or block device")->required();
  import->add_option("--block-size", im->block_bytes, "block size of a new volume")
      ->capture_default_str()
      ->each([im](const std::string&) { im->block_given = true; });
  import->add_option("--codec", im->codec, "codec of a new journal: none, zstd, igzip")
      ->capture_default_str();
  import->add_flag("--json", im->json, "print JSON");
  AddWaitOption(import);
  import->callback([im, exit_code] { *exit_code = RunImport(*im); });

  auto rp = std::make_shared<ReplayArgs>();
  CLI::App* replay = jc->add_subcommand(
      "replay", "write a block I/O trace's writes into a volume, one seq each");
  replay->add_option("--journal", rp->journal_dir, "journal directory (created if missing)")
      ->required();
  replay->add_option("--name", rp->name, "volume name (created if missing)")->required();
  replay->add_option("--trace", rp->trace, "trace file (time_ns device lba sectors type)")
      ->required();
  replay->add_option("--align", rp->align, "round offsets down and lengths up to this");
  replay->add_option("--size", rp->size_bytes, "size in bytes of a new volume")
      ->capture_default_str();
  replay->add_option("--block-size", rp->block_bytes, "block size of a new volume")
      ->capture_default_str();
  replay->add_flag("--json", rp->json, "print JSON");
  AddWaitOption(replay);
  replay->callback([rp, exit_code] { *exit_code = RunReplay(*rp); });

  auto d = std::make_shared<DumpArgs>();
  CLI::App* dump = jc->add_subcommand("dump", "print every record of a journal, one a line");
  dump->add_option("--journal", d->journal_dir, "journal directory")->required();
  dump->add_option("VOLUME", d->volume, "only this volume's records");
  AddWaitOption(dump);
  dump->callback([d, exit_code] { *exit_code = RunDump(*d); });

  auto v = std::make_shared<VerifyArgs>();
  CLI::App* verify = jc->add_subcommand(
      "check", "check every stored value's and chunk's CRC and that every seq's blocks are present");
  verify->alias("verify");  // its name before format 2
  verify->add_option("--journal", v->journal_dir, "journal directory")->required();
  verify->add_option("VOLUME", v->volume, "only this volume");
  verify->add_flag("--json", v->json, "print JSON");
  verify->add_flag("--rebuild-index", v->rebuild_index,
                   "format 2: rebuild the index from the segment files first (stop the daemon "
                   "that uses the journal); bookmarks, unordered intervals and checkpoints are kept");
  AddWaitOption(verify);
  verify->callback([v, exit_code] { *exit_code = RunVerify(*v); });

  auto u = std::make_shared<UpgradeArgs>();
  CLI::App* upgrade = jc->add_subcommand(
      "upgrade", "rewrite a format-1 journal as format 2 beside it, check it, swap it in");
  upgrade->add_option("--journal", u->journal_dir, "journal directory")->required();
  upgrade->add_flag("--remove-old", u->remove_old,
                    "delete the format-1 journal afterwards (kept as DIR.format1 otherwise)");
  upgrade->add_flag("--json", u->json, "print JSON");
  AddWaitOption(upgrade);
  upgrade->callback([u, exit_code] { *exit_code = RunUpgrade(*u); });

  auto f = std::make_shared<FloorArgs>();
  CLI::App* floors = jc->add_subcommand(
      "set-floors", "rewrite the format's read and write floors (compatibility testing)");
  floors->add_option("--journal", f->journal_dir, "journal directory")->required();
  floors->add_option("--read", f->read_floor, "lowest format version that may read")->required();
  floors->add_option("--write", f->write_floor, "lowest format version that may write")
      ->required();
  AddWaitOption(floors);
  floors->callback([f, exit_code] { *exit_code = RunSetFloors(*f); });
}

}  // namespace tidemark::tools
