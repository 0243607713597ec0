#include "tenant_journal.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <filesystem>

namespace tidemark::target {

namespace {

// Room RocksDB needs to go on without hitting ENOSPC, which it does not
// survive here. Each new WAL (at every memtable switch, and when a journal
// is opened) is preallocated with fallocate: 1.1 x the largest write buffer,
// ~70 MiB with journal/'s 64 MiB one. On a nearly full ext4 that fallocate
// fails but keeps what it got, leaving the disk at 0 bytes free; the memtable
// flush (or the MANIFEST write) then fails, RocksDB's info LOG on the same
// disk fails an append, and the next line it logs aborts the whole target
// (Debian's librocksdb 7.8 asserts in WritableFileWriter after a previous
// error). Seen every time a tap filled the disk, and again when a reopen ran
// just after space came back. So ingest stops while less than a new WAL, a
// memtable flush and a margin are free: the round fails as a whole with
// kNoSpace, nothing is written (the tap is told `no_space`, keeps its queue
// and retries with backoff), and it goes on by itself once space is back.
// Opening a journal also replays its WAL into table files: its blocks count
// on top. A round larger than the margin can still overshoot.
// TODO(#4): journal/ should give RocksDB an info logger that cannot abort
// (through spdlog) and set allow_fallocate = false; then this can shrink.
constexpr uint64_t kReserveBytes = (72ull + 64 + 24) << 20;

Status CheckRoom(const std::string& dir, bool opening) {
  namespace fs = std::filesystem;
  std::string where = dir;
  uint64_t wal_bytes = 0;
  if (opening) {
    std::error_code ec;
    // A new journal's directory may not exist yet: its parent's disk counts.
    if (!fs::exists(dir, ec)) where = fs::path(dir).parent_path().string();
    for (fs::directory_iterator it(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      struct stat st {};
      if (it->path().extension() == ".log" && ::stat(it->path().c_str(), &st) == 0) {
        wal_bytes += uint64_t(st.st_blocks) * 512;  // blocks: a WAL keeps preallocated ones
      }
    }
  }
  struct statvfs vfs {};
  if (::statvfs(where.c_str(), &vfs) != 0) return Status::Ok();  // the journal says why
  const uint64_t free_bytes = uint64_t(vfs.f_bavail) * vfs.f_frsize;
  const uint64_t need_bytes = kReserveBytes + wal_bytes;
  if (free_bytes >= need_bytes) return Status::Ok();
  return Status::NoSpace("no space left for journal " + dir + ": " +
                         std::to_string(free_bytes >> 20) + " MiB free, " +
                         (opening ? "opening it needs " : "ingest needs ") +
                         std::to_string(need_bytes >> 20) + " MiB");
}

}  // namespace

Result<std::shared_ptr<TenantJournal>> TenantJournal::Open(
    const std::string& dir, std::chrono::milliseconds group_commit) {
  journal::OpenOptions o;
  o.create_if_missing = true;
  TM_RETURN_IF_ERROR(CheckRoom(dir, /*opening=*/true));
  BOOST_OUTCOME_TRY(j, journal::Journal::Open(dir, o));
  if (j->read_only()) {
    // Damage below what was acknowledged, or a newer format: nothing is cut
    // or written; every session is refused with the reason.
    return Status::NotSupported("journal " + dir + " is read-only: " +
                                (j->read_only_reason().empty() ? "this build cannot write it"
                                                               : j->read_only_reason()));
  }
  auto tj = std::shared_ptr<TenantJournal>(new TenantJournal(dir, std::move(j), group_commit));
  tj->worker_ = std::thread([p = tj.get()] { p->Run(); });
  return tj;
}

TenantJournal::~TenantJournal() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (worker_.joinable()) worker_.join();
}

void TenantJournal::Post(Work work, Done done) {
  {
    std::lock_guard lock(mu_);
    queue_.emplace_back(std::move(work), std::move(done));
  }
  cv_.notify_one();
}

bool TenantJournal::Claim(const std::string& volume, const void* owner) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = claims_.emplace(volume, owner);
  return inserted || it->second == owner;
}

void TenantJournal::Release(const std::string& volume, const void* owner) {
  std::lock_guard lock(mu_);
  auto it = claims_.find(volume);
  if (it != claims_.end() && it->second == owner) claims_.erase(it);
}

Status TenantJournal::RunRound(std::deque<std::pair<Work, Done>>& round) {
  if (!journal_) {
    // A failed round closed it; reopening truncates what it left pending.
    TM_RETURN_IF_ERROR(CheckRoom(dir_, /*opening=*/true));
    journal::OpenOptions o;
    auto j = journal::Journal::Open(dir_, o);
    if (!j) return j.error();
    journal_ = std::move(j.value());
  }
  for (auto& [work, done] : round) TM_RETURN_IF_ERROR(work(*journal_));
  // One WAL sync for the whole round (any volume: the WAL is shared).
  std::vector<journal::VolumeInfo> vols = journal_->Volumes();
  if (vols.empty()) return journal_->Commit();
  auto synced = journal_->Sync(vols.front().id);
  return synced ? Status::Ok() : synced.error();
}

void TenantJournal::Run() {
  for (;;) {
    std::deque<std::pair<Work, Done>> round;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) break;
      if (group_commit_.count() > 0 && !stopping_) {
        // Let more sessions' work join this round's sync.
        cv_.wait_for(lock, group_commit_, [&] { return stopping_; });
      }
      round.swap(queue_);
    }
    // Short of room nothing runs, so the journal stays open as it is.
    Status s = journal_ ? CheckRoom(dir_, /*opening=*/false) : Status::Ok();
    if (s.ok()) {
      s = RunRound(round);
      if (!s.ok()) journal_.reset();
    }
    for (auto& [work, done] : round) {
      if (done) done(s);
    }
  }
  journal_.reset();
}

}  // namespace tidemark::target
