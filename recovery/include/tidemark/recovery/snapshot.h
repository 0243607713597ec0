// Virtual snapshots (docs/design.md#reads-of-the-past): one point of a volume served as
// an NBD block device, read straight from the journal (no restore first),
// optionally behind a private copy-on-write overlay that is thrown away.
//
// The device plugs into capture's NBD server (capture/nbd.h). Its blocks
// come from BlockReadFns, one per worker thread: a local journal's
// Journal::ReadBlocks (JournalReaders) or a target's read route
// (target::RemoteClient::ReadBlocks). A point's bytes never change, so
// nothing read can go stale: readers need no catching up, and a read cache
// (for remote readers) never needs invalidating.
//
// Requests (see docs/nbd.md for what the server checks before):
//   READ          blocks of the point (and overlay chunks when writable),
//                 any 512-byte-granular range: partial blocks are cut out.
//   BLOCK_STATUS  base:allocation: blocks that read as zeros without stored
//                 bytes (never written, zero versions, TRIM/WRITE_ZEROES
//                 ranges) are hole+zero; stored blocks and overlay chunks
//                 are data. One reply covers at most kMaxStatusBytes.
//   WRITE, TRIM, WRITE_ZEROES   only when writable (the server answers
//                 EPERM otherwise): the overlay copies the chunk up from
//                 the point first, then changes its copy.
//   FLUSH, FUA    no-ops that succeed: the overlay is private and dies with
//                 the device, so no write is ever promised to outlive it
//                 (fdatasync would cost the drill's guest time for nothing).
// The journal is never written: readers open it read-only.
//
// Thread-safety: a device serves every connection at once with `readers`
// readers, each used by one thread at a time. READs up to 64 KiB run in
// Submit() on the connection's thread (with a free reader: no hand-off);
// larger READs, BLOCK_STATUS and writes go to `readers` worker threads, so
// that they overlap and Submit() returns at once. Destruction joins the
// workers (the NBD server must be stopped first: it waits for replies).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tidemark/capture/nbd.h"
#include "tidemark/journal/journal.h"
#include "tidemark/journal/status.h"

namespace tidemark::recovery {

// Reads blocks [first_block, first_block + count) of one point: the
// contract of journal::Journal::ReadBlocks (bytes into `out` unless null,
// states into `states` unless null). Called by one thread at a time.
using BlockReadFn = std::function<Status(uint64_t first_block, uint32_t count, char* out,
                                         journal::BlockState* states)>;
// Makes one BlockReadFn (one worker's reader); called from one thread.
using BlockReaderFactory = std::function<Result<BlockReadFn>()>;

// Readers of volume `volume` at `seq` of `journal`: each a
// journal::PointReader of its own (iterators kept between reads), all over
// the one journal, which must be a read-only instance (a RocksDB secondary
// when a daemon writes it) that nothing else uses or catches up while the
// readers live: they share its block cache and never open the journal
// again. Measured against one journal per reader and against one reader
// for all in docs/benchmarks.md#virtual-snapshot-reads-issue-5.
BlockReaderFactory JournalReaders(std::shared_ptr<const journal::Journal> journal,
                                  uint32_t volume, Seq seq);

struct SnapshotOptions {
  // Geometry of the volume (size_bytes, block_bytes; name for messages).
  journal::VolumeInfo volume;
  // Readers (and worker threads): requests of all connections share them.
  // 1 serialises every read.
  unsigned readers = 2;
  // A read cache in front of the readers (for remote readers: each miss is
  // a round trip), in chunks of cache_chunk_bytes (a multiple of the block
  // size). 0: none.
  uint64_t cache_bytes = 0;
  uint32_t cache_chunk_bytes = 64 << 10;
  // A private copy-on-write overlay that takes writes, TRIM and
  // WRITE_ZEROES: a temp file in overlay_dir (empty: $TMPDIR, else /tmp),
  // unlinked at once, so that it disappears with the process.
  bool writable = false;
  std::string overlay_dir;
  // Copy-up unit: a power of two, at least the block size and 4 KiB.
  uint32_t overlay_granularity_bytes = 64 << 10;
};

struct SnapshotStats {
  uint64_t reads = 0;  // READ requests answered
  uint64_t read_bytes = 0;
  uint64_t writes = 0;          // WRITE, TRIM, WRITE_ZEROES answered
  uint64_t overlay_chunks = 0;  // chunks now in the overlay
  uint64_t cache_hits = 0, cache_misses = 0;
};

class SnapshotDevice : public capture::nbd::BlockDevice {
 public:
  // Largest range one BLOCK_STATUS reply describes (clients ask again for
  // the rest, as the NBD protocol allows).
  static constexpr uint64_t kMaxStatusBytes = 256ull << 20;

  // Makes options.readers readers with `factory` (its errors are returned)
  // and starts the workers; creates the overlay when writable (kIOError
  // naming the directory when it cannot). kInvalidArgument for bad
  // geometry, granularity, cache chunk or readers == 0.
  static Result<std::shared_ptr<SnapshotDevice>> Open(const SnapshotOptions& options,
                                                      BlockReaderFactory factory);
  ~SnapshotDevice() override;
  SnapshotDevice(const SnapshotDevice&) = delete;
  SnapshotDevice& operator=(const SnapshotDevice&) = delete;

  uint64_t size_bytes() const override;
  bool read_only() const override;
  uint32_t preferred_block_bytes() const override;
  bool supports_trim() const override;
  void Submit(capture::nbd::Request request, capture::nbd::ReplyFn reply) override;

  SnapshotStats stats() const;

  class Impl;

 private:
  explicit SnapshotDevice(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::recovery
