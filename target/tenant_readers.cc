#include "tenant_readers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <vector>

namespace tidemark::target {

namespace {

// Names, sizes and modification times of the journal's files but its info
// logs: every commit of the writer changes it (the WAL grows; flushes and
// compactions add and remove files).
std::string Fingerprint(const std::string& dir) {
  std::vector<std::string> items;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("LOG", 0) == 0) continue;
    struct stat st {};
    if (::stat(e.path().c_str(), &st) != 0) continue;
    items.push_back(name + ":" + std::to_string(st.st_size) + ":" +
                    std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
  }
  std::sort(items.begin(), items.end());
  std::string out;
  for (const auto& i : items) out += i + "\n";
  return out;
}

}  // namespace

struct TenantReaders::Reader {
  std::mutex mu;  // a Journal is single-threaded
  std::unique_ptr<journal::Journal> journal;
  bool follows = false;     // a secondary of a running writer
  std::string fingerprint;  // of the directory just before `journal` was opened
};

TenantReaders::~TenantReaders() = default;

std::string TenantReaders::JournalDir(const std::string& tenant) const {
  return data_dir_ + "/tenants/" + tenant + "/journal";
}

bool TenantReaders::HasJournal(const std::string& tenant) const {
  std::error_code ec;
  return std::filesystem::exists(JournalDir(tenant) + "/CURRENT", ec);
}

Result<std::unique_ptr<journal::Journal>> TenantReaders::OpenFresh(
    const std::string& tenant) const {
  journal::OpenOptions o;
  o.read_only = true;
  return journal::Journal::Open(JournalDir(tenant), o);
}

Status TenantReaders::With(const std::string& tenant,
                           const std::function<Status(const journal::Journal&)>& fn) {
  return WithCurrent(tenant, nullptr, fn);
}

Status TenantReaders::WithCurrent(const std::string& tenant,
                                  const std::function<bool(const journal::Journal&)>& current,
                                  const std::function<Status(const journal::Journal&)>& fn) {
  const std::string dir = JournalDir(tenant);
  if (!HasJournal(tenant)) return Status::NotFound("tenant " + tenant + " has no journal yet");
  std::shared_ptr<Reader> r;
  {
    std::lock_guard lock(mu_);
    auto& slot = readers_[tenant];
    if (!slot) slot = std::make_shared<Reader>();
    r = slot;
  }
  std::lock_guard lock(r->mu);
  for (int attempt = 0;; ++attempt) {
    if (r->journal && attempt == 0 && !(current && current(*r->journal))) {
      if (r->follows) {
        if (!r->journal->CatchUp().ok()) r->journal.reset();
      } else if (Fingerprint(dir) != r->fingerprint) {
        r->journal.reset();
      }
    }
    if (!r->journal) {
      // The fingerprint is taken first: a commit racing with the open makes
      // the next call reopen, never a reader older than its fingerprint.
      r->fingerprint = Fingerprint(dir);
      BOOST_OUTCOME_TRY(j, OpenFresh(tenant));
      // A secondary of the ingest worker's journal (or another process's)
      // catches up; a plain read-only open (no writer) is reopened when the
      // files change.
      r->follows = j->follows_writer();
      r->journal = std::move(j);
    }
    Status s = fn(*r->journal);
    if (s.code() != Code::kIOError || attempt > 0) return s;
    r->journal.reset();  // a file the writer removed under a snapshot: once more, fresh
  }
}

}  // namespace tidemark::target
