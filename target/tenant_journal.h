// One tenant's journal on the target and the one thread that writes it.
// Private to target/.
//
// Sessions post work; the worker runs everything queued, in order, then
// makes it durable with one WAL sync (group commit: the sync of one round
// covers every session's writes in it) and only then calls each done(). A
// round whose work failed fails as a whole (nothing of it is acknowledged)
// and the journal is reopened, which drops whatever the failed round left
// pending: a tap resends it.
//
// Volume claims: one session ingests a volume at a time.
//
// Thread-safety: Post(), Claim() and Release() from any thread; work and
// done run on the worker thread and must not block on other sessions.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tidemark/journal/journal.h"

namespace tidemark::target {

class TenantJournal {
 public:
  // Opens (creating) the journal in `dir` and starts the worker.
  static Result<std::shared_ptr<TenantJournal>> Open(const std::string& dir,
                                                     std::chrono::milliseconds group_commit);
  ~TenantJournal();  // runs what is queued, syncs, closes

  using Work = std::function<Status(journal::Journal&)>;
  using Done = std::function<void(Status)>;
  // Runs `work` on the worker; `done` gets its status once the round's
  // effects are durable (a failed round: the first error).
  void Post(Work work, Done done);

  // One ingesting session per volume name: Claim returns false when
  // another owner holds it. Release only by the owner.
  bool Claim(const std::string& volume, const void* owner);
  void Release(const std::string& volume, const void* owner);

  const std::string& dir() const { return dir_; }

 private:
  TenantJournal(std::string dir, std::unique_ptr<journal::Journal> j,
                std::chrono::milliseconds group_commit)
      : dir_(std::move(dir)), journal_(std::move(j)), group_commit_(group_commit) {}
  void Run();
  Status RunRound(std::deque<std::pair<Work, Done>>& round);

  const std::string dir_;
  std::unique_ptr<journal::Journal> journal_;  // worker thread only
  const std::chrono::milliseconds group_commit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Work, Done>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::map<std::string, const void*> claims_;  // guarded by mu_
  std::thread worker_;
};

}  // namespace tidemark::target
