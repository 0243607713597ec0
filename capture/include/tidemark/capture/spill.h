// The shipping queue's disk spill (docs/design.md#the-source-queue): when the memory
// queue is full, writes wait in append-only segment files in the tap's state
// directory (STATE/spill/NNNNNNNN.seg) instead of blocking the workload, and
// move back to memory, oldest first, as the target acknowledges. A FIFO.
// See docs/format-tap-state.md#spill-segments.
//
// Not durable on purpose: after a tap crash the activity log's extents are
// resent, so Open() discards what an earlier run left.
//
// Thread-safety: one thread at a time (the shipper's lock).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "tidemark/journal/status.h"
#include "tidemark/journal/wire.h"

namespace tidemark::capture {

// One queued item as the spill stores it: a write entry (with its data)
// or a bookmark.
struct SpillRecord {
  bool bookmark = false;
  // An UNORDERED marker (+1 begins, -1 ends an interval; seq and time in
  // entry).
  int8_t unordered = 0;
  // A refresh (Tap::SubmitRefresh): entry names seq, time and range; the
  // data is read from the backing when it is sent.
  bool refresh = false;
  wire::WriteEntry entry;  // data points into `data`
  std::string data;
  std::string name;  // a bookmark's
};

class Spill {
 public:
  static constexpr uint64_t kSegmentBytes = 64 << 20;

  // Creates DIR (removing old segments). `cap_bytes`: Append beyond it is
  // kNoSpace.
  static Result<std::unique_ptr<Spill>> Open(const std::string& dir, uint64_t cap_bytes,
                                            uint64_t segment_bytes = kSegmentBytes);
  ~Spill();

  // Appends one record (buffered; Read sees it). kNoSpace past the cap,
  // kIOError on a write failure (disk full: the caller treats both alike).
  Status Append(const SpillRecord& record);
  // Moves the oldest records, up to about max_bytes of data (at least one),
  // into *out; deletes segments read to their end.
  Status ReadFront(uint64_t max_bytes, std::vector<SpillRecord>* out);

  bool empty() const { return records_ == 0; }
  uint64_t bytes() const { return bytes_; }      // record bytes not yet read back
  uint64_t records() const { return records_; }
  uint64_t cap_bytes() const { return cap_bytes_; }

 private:
  Spill() = default;
  Status FlushBuffer();
  std::string SegmentPath(uint64_t n) const;

  std::string dir_;
  uint64_t cap_bytes_ = 0;
  uint64_t segment_bytes_ = kSegmentBytes;
  uint64_t bytes_ = 0, records_ = 0;
  // Segments: [read_seg_, write_seg_]; the writer appends to write_seg_.
  uint64_t read_seg_ = 0, write_seg_ = 0;
  uint64_t read_off_ = 0, write_off_ = 0;  // write_off_ counts buffered bytes too
  int write_fd_ = -1, read_fd_ = -1;
  std::string buffer_;  // appended, not yet written to write_seg_
};

}  // namespace tidemark::capture
