// Private to recovery/: the copy-on-write overlay of a writable virtual
// snapshot (snapshot.h). A sparse temp file as large as the volume, unlinked
// as soon as it is created (O_TMPFILE where the file system has it), and a
// bitmap of the chunks (granularity bytes each) that live in it; every other
// chunk is read from the point below.
//
// A write to a chunk not yet in the overlay first copies the chunk up from
// the point (unless the write covers it whole), then changes the copy; TRIM
// and WRITE_ZEROES do the same with zeros (punching holes in the file).
// Nothing is ever synced: the overlay dies with the process.
//
// Thread-safety: all methods from any thread. Writes hold the overlay
// exclusively (copy-up included), reads share it, so a read never sees a
// half-copied chunk.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/status.h"

namespace tidemark::recovery {

class Overlay {
 public:
  // Reads [offset, offset + length) of the point below (inside the volume).
  using BaseReadFn = std::function<Status(uint64_t offset, uint64_t length, char* out)>;

  // A new empty overlay for a volume of size_bytes in `dir`. kInvalidArgument
  // unless chunk_bytes is a power of two >= 4096; kIOError naming the
  // directory when the file cannot be made.
  static Result<std::unique_ptr<Overlay>> Create(const std::string& dir, uint64_t size_bytes,
                                                 uint32_t chunk_bytes);
  ~Overlay();
  Overlay(const Overlay&) = delete;
  Overlay& operator=(const Overlay&) = delete;

  // Reads [offset, offset + length): overlay chunks from the file, the rest
  // through `base` (called once per run of chunks not in the overlay).
  Status Read(uint64_t offset, uint64_t length, char* out, const BaseReadFn& base) const;
  // Writes `data` at offset; `base` fills chunks copied up.
  Status Write(uint64_t offset, std::string_view data, const BaseReadFn& base);
  // Makes [offset, offset + length) read as zeros (TRIM, WRITE_ZEROES).
  Status Zero(uint64_t offset, uint64_t length, const BaseReadFn& base);

  struct Run {
    uint64_t offset, length;
    bool in_overlay;
  };
  // [offset, offset + length) split into runs in and out of the overlay.
  std::vector<Run> Runs(uint64_t offset, uint64_t length) const;

  uint64_t chunks() const { return chunks_.load(); }
  uint32_t chunk_bytes() const { return chunk_bytes_; }

 private:
  Overlay(int fd, uint64_t size_bytes, uint32_t chunk_bytes);
  bool Has(uint64_t chunk) const { return (bits_[chunk / 64] >> (chunk % 64)) & 1; }
  void Set(uint64_t chunk);
  std::vector<Run> RunsLocked(uint64_t offset, uint64_t length) const;
  // Brings every chunk of [offset, offset + length) that the range does not
  // cover whole into the overlay; exclusive lock held.
  Status CopyUpEdges(uint64_t offset, uint64_t length, const BaseReadFn& base);
  Status PunchOrZero(uint64_t offset, uint64_t length);

  const int fd_;
  const uint64_t size_bytes_;
  const uint32_t chunk_bytes_;
  mutable std::shared_mutex mu_;
  std::vector<uint64_t> bits_;  // guarded by mu_
  std::atomic<uint64_t> chunks_{0};
};

}  // namespace tidemark::recovery
