#include "tenant_journal.h"

namespace tidemark::target {

Result<std::shared_ptr<TenantJournal>> TenantJournal::Open(
    const std::string& dir, std::chrono::milliseconds group_commit) {
  journal::OpenOptions o;
  o.create_if_missing = true;
  BOOST_OUTCOME_TRY(j, journal::Journal::Open(dir, o));
  if (j->read_only()) {
    return Status::NotSupported("journal " + dir + " is read-only for this build");
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
    Status s = RunRound(round);
    if (!s.ok()) journal_.reset();
    for (auto& [work, done] : round) {
      if (done) done(s);
    }
  }
  journal_.reset();
}

}  // namespace tidemark::target
