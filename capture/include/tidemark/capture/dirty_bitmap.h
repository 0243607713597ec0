// The tap's dirty-block bitmap (docs/design.md#the-source-queue): past the spill cap,
// the shipping queue is dropped and only which blocks changed is kept, on
// disk, so that it survives a restart; the blocks are later resent from the
// backing (a resync, inside an UNORDERED interval).
// See docs/format-tap-state.md#dirty-bitmap.
//
// Thread-safety: one thread at a time (the shipper's lock).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::capture {

class DirtyBitmap {
 public:
  // Opens (creating, all clean) STATE/dirty.bitmap for a volume. Another
  // geometry: kInvalidArgument; a damaged header: kCorruption.
  static Result<std::unique_ptr<DirtyBitmap>> Open(const std::string& path, uint64_t volume_bytes,
                                                   uint32_t block_bytes);
  ~DirtyBitmap();

  // Marks the blocks of [offset, offset+length) dirty (in memory).
  void Mark(uint64_t offset_bytes, uint64_t length_bytes);
  // Writes the pages changed since the last Persist (and fdatasyncs when a
  // block became dirty): call before the writes it covers reach the backing.
  Status Persist();
  // Takes up to max_bytes of dirty blocks from the front, as byte extents
  // (merged, at most max_bytes each), and clears them in memory.
  std::vector<Extent> TakeRuns(uint64_t max_bytes, size_t max_runs);
  bool empty() const { return dirty_blocks_ == 0; }
  uint64_t dirty_bytes() const { return dirty_blocks_ * block_bytes_; }

 private:
  DirtyBitmap() = default;
  void SetBit(uint64_t block, bool dirty);

  int fd_ = -1;
  std::string path_;
  uint64_t volume_bytes_ = 0;
  uint32_t block_bytes_ = 4096;
  uint64_t blocks_ = 0;
  uint64_t dirty_blocks_ = 0;
  uint64_t scan_from_ = 0;  // TakeRuns resumes here
  std::vector<uint8_t> bits_;
  std::vector<bool> page_changed_;  // 4 KiB pages of bits_ to write
  bool added_ = false;              // a block became dirty since Persist
};

}  // namespace tidemark::capture
