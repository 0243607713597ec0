// Private to target/: read-only journals of the tenants, for the reads of
// the control API over TLS (points, resolve, block streams, status), which
// never go through a tenant's ingest worker.
//
// A journal opened read-only while another process writes it is a RocksDB
// secondary instance: CatchUp() before each use brings it up to date. The
// target's own ingest, though, is a writer in this process, which the
// journal's lock probe (F_GETLK) does not see: Journal::Open then makes a
// read-only snapshot, so a cached reader is reopened whenever the journal's
// files changed since it was opened (every commit grows the WAL). Either
// way a read sees everything committed before it started.
//
// Thread-safety: all members from any thread. A Journal is single-threaded:
// With() runs one caller at a time per tenant.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "tidemark/journal/journal.h"

namespace tidemark::target {

class TenantReaders {
 public:
  explicit TenantReaders(std::string data_dir) : data_dir_(std::move(data_dir)) {}
  ~TenantReaders();

  // DATA/tenants/TENANT/journal.
  std::string JournalDir(const std::string& tenant) const;
  // Whether the tenant has a journal yet (its first tap created it).
  bool HasJournal(const std::string& tenant) const;

  // Runs fn on the tenant's cached reader, up to date first. A kIOError
  // from fn (a file the writer removed under a snapshot) is retried once on
  // a fresh reader. kNotFound when the tenant has no journal; errors of
  // Journal::Open; fn's.
  Status With(const std::string& tenant, const std::function<Status(const journal::Journal&)>& fn);

  // With(), but the cached reader is used as it is, without catching up,
  // when `current` says it already holds what fn needs (a point's bytes
  // never change: a reader that has the seq serves it). `current` runs
  // under the reader's lock.
  Status WithCurrent(const std::string& tenant,
                     const std::function<bool(const journal::Journal&)>& current,
                     const std::function<Status(const journal::Journal&)>& fn);

  // A reader of the caller's own, current as of now: for a long scan that
  // must not hold the cached one.
  Result<std::unique_ptr<journal::Journal>> OpenFresh(const std::string& tenant) const;

 private:
  struct Reader;
  const std::string data_dir_;
  std::mutex mu_;  // guards readers_ (each reader has its own mutex)
  std::map<std::string, std::shared_ptr<Reader>> readers_;
};

}  // namespace tidemark::target
