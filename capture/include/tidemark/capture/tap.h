// The tap: an NBD block device in front of a backing file or block device
// that records every write, in receipt order, before it reaches the backing
// (docs/design.md#order-is-the-contract,
// docs/design.md#durable-before-acknowledged).
//
// Each WRITE, TRIM and WRITE_ZEROES gets a seq and a wall-clock time when it
// is received (Submit() runs in receipt order per connection; seqs are
// assigned under one lock across connections). One writer thread takes the
// queued writes in seq order, a batch at a time: it records the batch
// (Recorder::Record, then Commit), applies it to the backing in seq order
// (writes that overlap an earlier one of the same batch wait for it), and
// syncs when a FLUSH or FUA asks for it. A write without FUA is answered once
// its batch is committed to the recorder (it survives a process crash there,
// and the tail replay at start puts it on the backing), before the backing
// has it; a READ or BLOCK_STATUS overlapping a write not yet on the backing
// waits for it; FLUSH and FUA are answered after both are synced. So the
// recorder is never behind the backing, the backing never has a write the
// recorder could lose in a process crash, and a read sees every write
// answered before it.
//
// A tap serves one volume or a consistency group of several
// (docs/design.md#consistency-groups): the members share one seq space and
// one writer, so that a seq is a point of all of them; each member is its own NBD export
// (Member(i)) over its own backing.
//
// Thread-safety: Submit() from any connection thread; the rest from one.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/capture/nbd.h"
#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::capture {

// One recorded write: the stream's WriteOp (journal/.../types.h).
using TapWrite = ::tidemark::WriteOp;

// Where the tap records writes: the journal in embedded mode (tools/), the
// shipping queue in remote mode (#4). Called from the tap's writer thread.
class Recorder {
 public:
  virtual ~Recorder() = default;
  // `member`: the volume's index in the tap's group (0 for a single volume).
  virtual Status Record(uint32_t member, const TapWrite& write) = 0;
  // A FLUSH covering everything up to `seq`.
  virtual Status MarkFlush(Seq seq, TimeNs time_ns) = 0;
  // Everything recorded so far survives a process crash once this returns.
  virtual Status Commit() = 0;
  // ... and a power cut.
  virtual Status Sync() = 0;
  // Every seq up to `seq` is on the synced backings (of every member).
  virtual Status Checkpoint(Seq seq) = 0;
  // A seq taken by Tap::SubmitRefresh for [offset, offset+length): the
  // recorder reads those bytes from the backing itself once Applied() has
  // reached `seq` (so they hold every write before it).
  virtual Status RecordRefresh(uint32_t member, Seq seq, TimeNs time_ns, uint64_t offset_bytes,
                               uint32_t length_bytes) {
    (void)member, (void)seq, (void)time_ns, (void)offset_bytes, (void)length_bytes;
    return Status::NotSupported("this recorder takes no refreshes");
  }
  // Every seq up to `seq` is on the backing (written, not synced).
  virtual void Applied(Seq seq) { (void)seq; }
  // The newest recorded bytes of [offset, offset+len) of `member` (the
  // power-loss activity log's revert, TapOptions::activity_logs).
  virtual Status ReadLatest(uint32_t member, uint64_t offset_bytes, char* out, size_t len) {
    (void)member, (void)offset_bytes, (void)out, (void)len;
    return Status::NotSupported("this recorder cannot read what it recorded");
  }
};

// The protected volume: a regular file or a block device.
class Backing {
 public:
  // Opens read-write; kNotFound / kInvalidArgument (not a file or device,
  // size not a multiple of 512) with the path in the message.
  static Result<std::unique_ptr<Backing>> Open(const std::string& path);
  ~Backing();
  uint64_t size_bytes() const { return size_bytes_; }
  bool is_block_device() const { return block_device_; }
  int fd() const { return fd_; }
  Status Read(uint64_t offset_bytes, char* out, size_t len) const;
  Status Write(uint64_t offset_bytes, std::string_view data) const;
  // Zeros a range: a hole in a file (punch) or, with allocate, written
  // zeros; BLKZEROOUT on a device.
  Status Zero(uint64_t offset_bytes, uint64_t len, bool allocate) const;
  Status Sync() const;
  // Drops the backing's clean pages from the page cache. After a whole-volume
  // read (the seq 0 import) the cache holds large folios; ext4 then walks
  // every buffer of a 2 MiB folio on each 4 KiB write (measured: 9 k against
  // 23 k random writes/s through the tap).
  void DropCache() const;
  // base:allocation of a range from SEEK_DATA/SEEK_HOLE (devices: all data).
  Status Allocation(uint64_t offset_bytes, uint32_t len,
                    std::vector<nbd::AllocationExtent>* out) const;

 private:
  Backing(std::string path, int fd, uint64_t size, bool block_device)
      : path_(std::move(path)), fd_(fd), size_bytes_(size), block_device_(block_device) {}
  std::string path_;
  int fd_;
  uint64_t size_bytes_;
  bool block_device_;
};

struct TapOptions {
  Seq last_seq = 0;          // the newest seq already recorded
  TimeNs last_time_ns = 0;   // its time (times never go backwards)
  size_t max_batch = 256;    // writes recorded per Commit at most
  size_t max_batch_bytes = 32 << 20;  // ... and bytes of write data (at least one write)
  unsigned queue_depth = 32; // backing writes in flight (io_uring)
  // The backing is synced and a checkpoint recorded at least this often
  // while writes arrive (bounds the tail replayed after a crash).
  std::chrono::milliseconds checkpoint_interval{5000};
  // Power loss (docs/format-journal.md#power-loss): one path per member,
  // or none. Each is an activity log (activity_log.h) of the extents written
  // to the backing since the recorder's last sync, synced before a backing
  // write to an extent it does not hold. At Create, the recorder's newest
  // bytes (Recorder::ReadLatest) are copied over the extents a crash left in
  // it: the backing is never ahead of what the recorder kept. `protect` sets
  // it; a remote tap keeps its own log (ship.h).
  std::vector<std::string> activity_logs;
};

class Tap : public nbd::BlockDevice, public std::enable_shared_from_this<Tap> {
 public:
  static Result<std::shared_ptr<Tap>> Create(std::unique_ptr<Backing> backing,
                                             Recorder* recorder, TapOptions options);
  // A group: one backing per member, in member order (at least one).
  static Result<std::shared_ptr<Tap>> Create(std::vector<std::unique_ptr<Backing>> backings,
                                             Recorder* recorder, TapOptions options);
  ~Tap() override;

  // The tap itself is member 0's device.
  uint64_t size_bytes() const override;
  bool supports_block_status() const override { return true; }
  void Submit(nbd::Request request, nbd::ReplyFn reply) override;

  size_t members() const;
  // Member i's device (it keeps the tap alive); i < members().
  std::shared_ptr<nbd::BlockDevice> Member(size_t i);
  void Submit(uint32_t member, nbd::Request request, nbd::ReplyFn reply);

  // Takes a seq, in receipt order with the writes, whose content is the
  // backing's bytes of the range as the recorder reads them after every
  // earlier seq reached the backing (Recorder::RecordRefresh). A remote
  // tap's resync from its dirty bitmap uses it: the bytes it ships are then
  // ordered with the writes around them. Nothing is written to the backing.
  void SubmitRefresh(uint32_t member, uint64_t offset_bytes, uint32_t length_bytes);
  // Drains the queue, syncs the backing and the recorder, checkpoints, and
  // stops the writer thread. Later writes are refused.
  Status Shutdown();
  // The newest seq assigned.
  Seq last_seq() const;
  // Bytes Create copied from the recorder over a crash's activity log extents.
  uint64_t reverted_bytes() const;
  // The first recorder or backing error; once set, writes are refused (EIO)
  // so the backing never runs ahead of what was recorded.
  Status failure() const;

  class Impl;

 private:
  explicit Tap(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::capture
