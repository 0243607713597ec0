// The tap's activity log (docs/design.md#durable-before-acknowledged, remote;
// as DRBD's): a small on-disk bitmap of coarse volume extents that may hold
// writes the target has not acknowledged. An extent is marked, durably, before
// any write to it reaches the backing; it is cleared once every write to it was
// acknowledged. After a tap crash, only the marked extents are resent.
// See docs/format-tap-state.md#activity-log.
//
// Thread-safety: one thread at a time (the tap's recorder and the shipper
// share it under the shipper's lock).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::capture {

class ActivityLog {
 public:
  static constexpr uint64_t kDefaultExtentBytes = 4 << 20;

  // Opens (creating) the log at `path` for a volume of `volume_bytes`.
  // An existing log for another geometry is kInvalidArgument; a damaged one
  // (bad magic or CRC) kCorruption: the caller then resends the volume.
  static Result<std::unique_ptr<ActivityLog>> Open(const std::string& path,
                                                   uint64_t volume_bytes,
                                                   uint64_t extent_bytes = kDefaultExtentBytes);
  ~ActivityLog();

  // Extents marked when the log was opened: what a crash may have left
  // unacknowledged, as byte extents of the volume.
  const std::vector<Extent>& recovered() const { return recovered_; }

  // A write to [offset, offset+length) is about to be queued. Counted in
  // memory; call Persist() before the write reaches the backing.
  void Begin(uint64_t offset_bytes, uint64_t length_bytes);
  // That write was acknowledged by the target.
  void End(uint64_t offset_bytes, uint64_t length_bytes);
  // Every write begun so far ended (protect: the journal synced all of them).
  void EndAll();
  // Makes every extent with a write in flight marked on disk (pwrite of the
  // changed words + fdatasync, only when a mark was added). Extents whose
  // writes all ended are cleared at the same time (no sync needed for
  // clearing: a stale mark only costs a resend).
  Status Persist();
  // Clears every mark (after a full resync) durably.
  Status ClearAll();

  uint64_t extent_bytes() const { return extent_bytes_; }
  uint64_t marked_extents() const;

 private:
  ActivityLog() = default;
  Status WriteBitmap(bool sync);

  int fd_ = -1;
  std::string path_;
  uint64_t volume_bytes_ = 0;
  uint64_t extent_bytes_ = 0;
  std::vector<uint32_t> inflight_;  // writes in flight per extent
  std::vector<uint8_t> on_disk_;    // the bitmap as last written
  std::vector<uint64_t> touched_;   // extents whose count left or reached 0
  std::vector<Extent> recovered_;
};

}  // namespace tidemark::capture
