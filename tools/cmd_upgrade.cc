// tidemark journal upgrade: a format-1 journal rewritten as format 2 beside
// it, checked, then swapped in (docs/format-journal.md#versioning).
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "tidemark/journal/files.h"
#include "import_replay.h"

namespace tidemark::tools {

namespace fs = std::filesystem;

namespace {

uint64_t TreeBytes(const std::string& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  }
  return n;
}

}  // namespace

int RunUpgrade(const UpgradeArgs& a) {
  std::string dir = a.journal_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string tmp = dir + ".upgrade";
  const std::string old = dir + ".format1";
  nlohmann::json out;
  auto run = [&]() -> Status {
    // A writer's open: no daemon may write while the copy is made.
    journal::OpenOptions o;
    o.allow_format1 = true;
    BOOST_OUTCOME_TRY(src, OpenJournal(dir, o));
    if (src->meta().format_version >= 2) {
      out = {{"ok", true}, {"journal", dir}, {"format", src->meta().format_version},
             {"upgraded", false}};
      if (!a.json) std::printf("journal %s is format %u already\n", dir.c_str(),
                               src->meta().format_version);
      return Status::Ok();
    }
    std::error_code ec;
    if (fs::exists(old, ec)) {
      return Status::InvalidArgument(old + " exists (an earlier upgrade's format-1 journal): "
                                     "move or remove it first");
    }
    if (fs::exists(tmp, ec)) {
      // Only an upgrade makes DIR.upgrade: a crashed one's partial copy.
      fs::remove_all(tmp, ec);
      if (ec) return Status::FromErrno(ec.value(), "remove the partial copy " + tmp);
    }
    const fs::path parent = fs::absolute(dir).parent_path();
    struct statvfs sv {};
    if (::statvfs(parent.c_str(), &sv) != 0) return Status::FromErrno(errno, "statvfs " + parent.string());
    const uint64_t need = TreeBytes(dir);
    const uint64_t have = uint64_t{sv.f_bavail} * sv.f_frsize;
    if (have < need + need / 10) {
      return Status::NoSpace("not enough space beside " + dir + " for the format-2 copy: " +
                             std::to_string(need >> 20) + " MiB needed (and a tenth more), " +
                             std::to_string(have >> 20) + " MiB free");
    }
    int last_pct = -1;
    auto stats = src->Upgrade(tmp, [&](uint64_t done, uint64_t total) {
      int pct = total ? static_cast<int>(done * 100 / total) : 100;
      if (!a.json && pct != last_pct && (pct % 10 == 0 || isatty(STDERR_FILENO))) {
        std::fprintf(stderr, "\rupgrading %s: %llu of %llu seqs (%d%%)", dir.c_str(),
                     static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
                     pct);
        last_pct = pct;
      }
    });
    if (!a.json && last_pct >= 0) std::fprintf(stderr, "\n");
    if (!stats) {
      fs::remove_all(tmp, ec);
      return stats.error().Annotate("upgrade of " + dir);
    }
    // `journal check` of the copy before anything is swapped.
    {
      journal::OpenOptions ro;
      ro.read_only = true;
      BOOST_OUTCOME_TRY(copy, journal::Journal::Open(tmp, ro));
      std::string first;
      auto checked = copy->Verify(journal::Journal::kNoVolume, [&](std::string_view line) {
        if (first.empty()) first = std::string(line);
      });
      if (!checked) {
        return Status::Corruption("the format-2 copy " + tmp + " fails its check (" + first +
                                  "); the format-1 journal is unchanged");
      }
    }
    src.reset();
    fs::rename(dir, old, ec);
    if (ec) return Status::FromErrno(ec.value(), "rename " + dir + " to " + old);
    fs::rename(tmp, dir, ec);
    if (ec) {
      std::error_code back;
      fs::rename(old, dir, back);
      return Status::FromErrno(ec.value(), "rename " + tmp + " to " + dir);
    }
    TM_RETURN_IF_ERROR(SyncDirectory(parent.string()));
    if (a.remove_old) fs::remove_all(old, ec);
    out = {{"ok", true},
           {"journal", dir},
           {"format", 2},
           {"upgraded", true},
           {"volumes", stats.value().volumes},
           {"seqs", stats.value().seqs},
           {"old", a.remove_old ? nlohmann::json(nullptr) : nlohmann::json(old)}};
    if (!a.json) {
      std::printf("journal %s is format 2: %llu volumes, %llu seqs copied and checked\n",
                  dir.c_str(), static_cast<unsigned long long>(stats.value().volumes),
                  static_cast<unsigned long long>(stats.value().seqs));
      if (!a.remove_old) {
        std::printf("the format-1 journal is kept at %s: remove it when you no longer need it\n",
                    old.c_str());
      }
    }
    return Status::Ok();
  };
  Status s = run();
  if (!s.ok()) return Fail(s, a.json);
  if (a.json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace tidemark::tools
