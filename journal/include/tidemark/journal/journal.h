// The journal: an ordered stream of block writes kept as copy-on-write block
// versions in RocksDB, from which any point can be read back.
// See docs/format-journal.md for what is stored and docs/design.md#order-is-the-contract for
// the write semantics.
//
// Writer API: Apply() takes writes in seq order; they are group-committed,
// many per RocksDB write batch. Commit() makes everything applied so far
// visible and crash-safe against a process kill (the WAL is written, not
// synced); Sync() also syncs the WAL and returns the durable seq.
// Reader API: Resolve() turns a point spec into a seq; ReadBlock() and
// ScanBlocks() read at a seq; ChangedExtents() lists what seqs changed.
//
// Thread-safety: a Journal is used by one thread at a time (callers that
// share one serialise). Different Journal objects on different directories
// are independent. One process may open a directory for writing at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/codec.h"
#include "tidemark/journal/format.h"
#include "tidemark/journal/segment.h"
#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::journal {

struct OpenOptions {
  // Create the directory and an empty journal when none exists.
  bool create_if_missing = false;
  // Open without write access (restore, points, dump). Also forced when the
  // journal's write floor is above kMaxFormatVersion.
  bool read_only = false;
  // Codec of new block values; stored in the metadata of a new journal and
  // used by every writer of it afterwards. zstd by measurement
  // (docs/benchmarks.md#journal-format-choice-issue-2).
  Codec codec = Codec::kZstd;
  // Apply() commits by itself once this many writes are pending.
  size_t group_commit_writes = 256;
  // Format 2: a commit writes the segment records and returns; the index
  // entries are written on a thread of their own (an open rolls forward what
  // a crash left unindexed). false: the commit writes the index too.
  bool async_index = true;
  // Format 2: Sync() (a FLUSH) makes the index durable too: it waits for
  // the index writer, records the synced tail and syncs RocksDB's WAL. The
  // synced tail is what lets an open tell a damaged FLUSH-acknowledged seq
  // from a torn unacknowledged one (docs/format-journal.md#writes-and-durability),
  // so every caller keeps it. false syncs the segments only: it exists to
  // measure the index's share of a FLUSH (bench/journal_ingest_bench
  // BM_Ingest4KiBFlush32) and is not crash-safe for bookmarks or checkpoints.
  bool sync_index_at_flush = true;
  // Format 2: a segment file is sealed past this many bytes (tests roll over
  // with small ones).
  uint64_t segment_bytes = 256ull << 20;
  // Keep block values in RocksDB blob files (integrated BlobDB). It halves
  // compaction I/O, but a restore then reads every block with a random
  // 4 KiB read: measured 22 MiB/s cold against 247 with values in the LSM
  // (docs/benchmarks.md), so it is off by default.
  bool blob_files = false;
  // RocksDB's block cache (uncompressed SST blocks, shared by every column
  // family). A reader of scattered blocks (a virtual snapshot) gains from
  // more: each miss reads and checksums a 16 KiB SST block.
  size_t block_cache_bytes = 64 << 20;
  // The format of a new journal: 1 or 2 (docs/format-journal.md); 0 takes
  // $TIDEMARK_JOURNAL_FORMAT, else kMaxFormatVersion. An existing journal
  // keeps its own.
  uint32_t format = 0;
  // Open a format-1 journal: only `journal upgrade` and `journal dump` do;
  // everything else is refused in one line naming the upgrade. Also allowed
  // when $TIDEMARK_JOURNAL_FORMAT is "1" (the format-1 unit suites).
  bool allow_format1 = false;
};

struct VolumeInfo {
  uint32_t id = 0;
  uint32_t space = 0;
  std::string name;
  uint64_t size_bytes = 0;
  uint32_t block_bytes = kDefaultBlockBytes;
  std::string group;    // its consistency group; empty: a group of one
  Seq import_seq = 0;   // the seq of its seq 0 image: its index in the group
  uint64_t blocks() const { return (size_bytes + block_bytes - 1) / block_bytes; }
};

// A volume to create in a group.
struct VolumeSpec {
  std::string name;
  uint64_t size_bytes = 0;
  uint32_t block_bytes = kDefaultBlockBytes;
};

// A consistency group (docs/design.md#consistency-groups): volumes sharing one seq
// space, so that one seq is a point of all of them.
struct GroupInfo {
  std::string name;
  uint32_t space = 0;
  std::vector<VolumeInfo> volumes;  // in member order
};

using WriteOp = ::tidemark::WriteOp;  // see types.h

struct Point {
  Seq seq = 0;
  TimeNs time_ns = 0;
  friend bool operator==(const Point&, const Point&) = default;
};

struct Bookmark {
  std::string name;
  Point point;
  TimeNs created_ns = 0;
};

struct PointSpec {
  enum class Kind { kLatest, kSeq, kTime, kBookmark };
  Kind kind = Kind::kLatest;
  Seq seq = 0;
  TimeNs time_ns = 0;
  std::string bookmark;
};

// A read plan (format 2, docs/format-journal.md#read-plan): where the bytes
// of a point's blocks lie, so that a reader fetches only those, sorted and
// coalesced (recovery/read_plan.h runs it with io_uring).
struct ReadPiece {
  uint64_t first_block = 0;  // of the volume
  uint32_t blocks = 0;
  uint32_t skip_blocks = 0;  // where they start in the chunk's raw bytes
  uint32_t file = 0;         // index into ReadPlan::files
  uint64_t segment = 0;
  uint64_t offset = 0;       // of the chunk's stored bytes in its segment file
  seg::ChunkDesc chunk;      // codec, lengths and CRC of the stored bytes
  Seq seq = 0;               // the version's (for messages)
};
struct ReadPlan {
  std::string volume;             // its name (for messages)
  uint32_t block_bytes = 0;
  std::vector<std::string> files; // segment file paths
  // In block order; a block in no piece reads as zeros (never written,
  // trimmed, zeroed, or a zero chunk).
  std::vector<ReadPiece> pieces;
};

// What a block of a point holds, without its bytes (for the BLOCK_STATUS
// of virtual snapshots): kZero when it reads as zeros without stored bytes (no
// version at or before the point, a zero version, or inside a TRIM /
// WRITE_ZEROES range), kData when a version with bytes is stored (those
// bytes may still be zeros).
enum class BlockState : uint8_t { kData = 0, kZero = 1 };

// Reads one point of one volume, keeping its RocksDB iterators between
// calls: a random 4 KiB read is one Seek, without setting up an iterator
// (virtual snapshots serve every NBD READ with one). It sees the journal as
// it was when made (later commits and CatchUp() are not seen; a point's
// blocks never change). Made by Journal::NewPointReader, which must outlive
// it.
// Thread-safety: one thread at a time per PointReader; several PointReaders
// of one Journal may read at once from different threads as long as no
// other method of that Journal runs meanwhile (a read-only journal that is
// not caught up).
class PointReader {
 public:
  virtual ~PointReader() = default;
  // Journal::ReadBlocks at the reader's volume and seq.
  virtual Status Read(uint64_t first_block, uint32_t count, char* out, BlockState* states) = 0;
};

// Receives a block's bytes at a point (block_bytes long; the last block of a
// volume whose size is not a multiple of the block size is still full-size).
using BlockFn = std::function<Status(uint64_t block, std::string_view data)>;

class Journal {
 public:
  // Opens the journal in `dir`. kNotFound when there is none and
  // create_if_missing is false; kNotSupported when its read floor is newer
  // than this build; kTryAgain when another process has it open for writing.
  static Result<std::unique_ptr<Journal>> Open(const std::string& dir,
                                               const OpenOptions& options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::string& dir() const;
  bool read_only() const;
  // Why a writer's open gave a read-only journal ("damaged: volume ...", a
  // newer format's floors); empty when it was asked for.
  const std::string& read_only_reason() const;
  const MetaRecord& meta() const;

  // ---- volumes ----
  std::vector<VolumeInfo> Volumes() const;
  // kNotFound with the names that exist when `name` is not one of them.
  Result<VolumeInfo> FindVolume(std::string_view name) const;
  // A new volume (its own seq space) with no seqs yet: write seq 0 with
  // Import() or Apply() next. kInvalidArgument when the name is taken or the
  // geometry is bad (block_bytes a power of two in [512, 1 MiB], size a
  // positive multiple of 512).
  Result<VolumeInfo> CreateVolume(std::string_view name, uint64_t size_bytes,
                                  uint32_t block_bytes);
  // New volumes sharing one new seq space, as the group `name` (group names
  // are a namespace of their own). Their seq 0 images go in member order:
  // the i-th volume's is seq i of the space (Import() or the staged import
  // of the i-th volume once the ones before it are finished), and the
  // group's first point, of every volume, is the last of them. A write,
  // bookmark or flush given any member's id is the group's. kInvalidArgument
  // for a taken group or volume name, no volumes, or a bad geometry.
  Result<GroupInfo> CreateGroup(std::string_view name, const std::vector<VolumeSpec>& volumes);
  std::vector<GroupInfo> Groups() const;
  // kNotFound naming the groups that exist.
  Result<GroupInfo> FindGroup(std::string_view name) const;

  // ---- writer ----
  // Appends one write. The seq must be above LastSeq(); a seq at or below it
  // that the journal already holds is a no-op (a resend), any other is
  // kInvalidArgument, as are misaligned or out-of-range extents and a time
  // before the previous seq's. Not visible to readers until committed.
  Status Apply(uint32_t volume, const WriteOp& op);
  // Marks `seq` (at or below LastSeq()) as covered by a FLUSH or a FUA write.
  Status MarkFlush(uint32_t volume, Seq seq, TimeNs time_ns, uint8_t flags);
  // Writes the pending batch (WAL written, not synced: survives a process
  // crash, not a power cut).
  Status Commit();
  // Commit() then sync the WAL; returns the newest seq of the volume's seq
  // space that is now durable (kNoSeq when it has none).
  Result<Seq> Sync(uint32_t volume);
  // Newest seq applied in the volume's seq space (pending included), or
  // kNoSeq when it has none.
  Result<Seq> LastSeq(uint32_t volume) const;
  // Names the newest seq of the volume's space. kInvalidArgument when the
  // name is taken or empty, kNotFound when the volume has no seq yet.
  Result<Bookmark> AddBookmark(uint32_t volume, std::string_view name, TimeNs now_ns);
  // Records the image read by `read` (pread-like: fills len bytes at offset)
  // as one new seq, `seq` (kNoSeq: 0 for a volume without seqs, its
  // import_seq for a group member without its image, else LastSeq()+1). The
  // first import skips zero blocks; a later one records only the blocks
  // that differ from the latest point. Returns the seq, or kNoSeq when a
  // later import found nothing changed. A group member's first import
  // before the members ahead of it is kInvalidArgument.
  using ReadFn = std::function<Status(uint64_t offset_bytes, char* buf, size_t len)>;
  Result<Seq> Import(uint32_t volume, const ReadFn& read, TimeNs time_ns,
                     Seq seq = kNoSeq);

  // Staged import: seq 0 of a volume that has no seqs, received in chunks
  // over one or several sessions (a remote tap's initial sync, resumable).
  // StageImport() puts the non-zero blocks of a chunk at seq 0, invisible
  // to readers; the offset must be block-aligned and the length a multiple
  // of the block size (or reach the volume's end). Chunks are committed
  // like writes (Sync() makes them durable) and survive reopening.
  // StagedImportEnd() is where to resume: the end of the furthest chunk
  // staged (0 when none); FinishStagedImport() makes seq 0 a point (synced)
  // from every block staged. kInvalidArgument when the volume already has
  // seqs. A group member's image is staged at its import_seq instead of 0,
  // and finished only after the members ahead of it.
  Status StageImport(uint32_t volume, uint64_t offset_bytes, std::string_view data);
  Result<uint64_t> StagedImportEnd(uint32_t volume) const;
  Result<Seq> FinishStagedImport(uint32_t volume, TimeNs time_ns);

  // Unordered intervals (a remote tap's resync, docs/design.md#the-source-queue): the
  // seqs after `after` are written out of order until EndUnordered(upto).
  // No seq in (after, upto) is a point: Resolve refuses such a seq, a time
  // inside resolves to `after`, Latest is `after` while the interval is
  // open, Flushes skips them, and AddBookmark is refused while one is open.
  // Both go into the write batch (ordered with the writes; durable with the
  // next Sync). BeginUnordered while one is open, and EndUnordered when
  // none is, are no-ops (a tap that reconnected says it again).
  struct UnorderedInterval {
    Seq after = 0;
    Seq upto = kNoSeq;  // kNoSeq: still open
    TimeNs begin_ns = 0;
  };
  Status BeginUnordered(uint32_t volume, Seq after, TimeNs time_ns);
  Status EndUnordered(uint32_t volume, Seq upto);
  std::vector<UnorderedInterval> UnorderedIntervals(uint32_t volume) const;

  // Records that every seq up to `seq` of the volume is on its backing
  // (synced). Written with a synced WAL write.
  Status SetBackingCheckpoint(uint32_t volume, Seq seq);
  // The last checkpoint, or kNoSeq when none was set.
  Result<Seq> BackingCheckpoint(uint32_t volume) const;
  // Secondary instances (a reader following a running writer): catch up
  // with what the writer has written since. A no-op otherwise.
  Status CatchUp();
  // True when this reader follows a writer (any process, this one too) as a
  // RocksDB secondary: CatchUp() then brings it up to date.
  bool follows_writer() const;

  // ---- reader ----
  // The volume's first (seq 0) and newest committed points; kNotFound when
  // the volume has none.
  Result<Point> First(uint32_t volume) const;
  Result<Point> Latest(uint32_t volume) const;
  // Resolves a point spec (docs/design.md#order-is-the-contract): a seq between first and
  // latest (a seq in a gap resolves to the newest seq below it), the newest
  // seq at or before a time (a time after the latest but not after now_ns is
  // the latest; before the first or after now_ns is kInvalidArgument), a
  // bookmark (kNotFound when unknown) or the latest.
  Result<Point> Resolve(uint32_t volume, const PointSpec& spec, TimeNs now_ns) const;
  Result<Point> PointAt(uint32_t volume, Seq seq) const;
  std::vector<Bookmark> Bookmarks(uint32_t volume) const;
  // FLUSH and FUA points, oldest first.
  Result<std::vector<Point>> Flushes(uint32_t volume) const;
  // Reads block `block` as it was at `seq` into out (block_bytes). A block
  // whose stored CRC does not match is kCorruption naming volume, block, seq.
  Status ReadBlock(uint32_t volume, uint64_t block, Seq seq, char* out) const;
  // Reads blocks [first_block, first_block + count) as they were at `seq`
  // with one RocksDB iterator: their bytes into `out` (count * block_bytes)
  // unless it is null, their states into `states` (count entries) unless it
  // is null. With `out` null no value is decompressed or checked, so a
  // damaged block is still kData. kInvalidArgument when the range is empty
  // or passes the volume's end; kCorruption as ReadBlock.
  Status ReadBlocks(uint32_t volume, uint64_t first_block, uint32_t count, Seq seq, char* out,
                    BlockState* states) const;
  // A PointReader of `volume` at `seq` (see above). kNotFound for an unknown
  // volume.
  Result<std::unique_ptr<PointReader>> NewPointReader(uint32_t volume, Seq seq) const;
  // Calls fn, in block order, for every block that is not all zeros at seq.
  Status ScanBlocks(uint32_t volume, Seq seq, const BlockFn& fn) const;
  // ScanBlocks() over blocks [first_block, end_block) only (end_block is
  // clamped to the volume's end). Scans of disjoint ranges may run at once on
  // different threads, each with its own iterator: a parallel restore.
  Status ScanBlockRange(uint32_t volume, Seq seq, uint64_t first_block, uint64_t end_block,
                        const BlockFn& fn) const;
  // The read plan of blocks [first_block, end_block) at seq (end_block is
  // clamped to the volume's end): one piece per run of blocks in one chunk.
  // kNotSupported on format 1.
  Result<ReadPlan> PlanRead(uint32_t volume, Seq seq, uint64_t first_block,
                            uint64_t end_block) const;
  // Byte extents written, trimmed or zeroed by seqs in (after, upto] of the
  // volume, merged; after == kNoSeq includes seq 0. Reads the seq records of
  // that interval only.
  Result<std::vector<Extent>> ChangedExtents(uint32_t volume, Seq after, Seq upto) const;

  // ---- maintenance ----
  struct VerifyStats {
    uint64_t seqs = 0;         // seq records checked
    uint64_t blocks = 0;       // block versions whose CRC was checked
    uint64_t problems = 0;     // lines passed to `problem`
  };
  // Checks the journal (or one volume) end to end: every stored value's CRC
  // and shape, that every block a seq record says it changed has its
  // version at that seq (or a range record), and that every range,
  // bookmark and time key points at a seq record. Each problem is one line
  // to `problem` naming volume, block and seq. kCorruption when there was
  // any problem; kOk otherwise.
  Result<VerifyStats> Verify(uint32_t volume,
                             const std::function<void(std::string_view line)>& problem) const;
  // Format 2: rebuilds the index from the segments (`journal check
  // --rebuild-index`): the writes, ranges, flush markers and imports the logs
  // hold, as they were indexed; bookmarks, unordered intervals and checkpoints
  // are kept. *stopped: each space whose log holds bytes past its last whole
  // record, and why (empty when every record was read). A writer's call.
  Status RebuildIndex(std::vector<std::string>* stopped);
  // Rewrites the format floors (compatibility tests, `journal set-floors`).
  Status SetFloors(uint32_t read_floor, uint32_t write_floor);

  // Copies this format-1 journal into a new format-2 journal at `to` (made
  // there; it must not hold one), seq by seq, so that every point reads the
  // same; flush markers, bookmarks, unordered intervals and checkpoints are
  // copied. progress(seqs done, seqs in all) after each seq. The copy is
  // synced and closed when it returns; this journal is not changed.
  struct UpgradeStats {
    uint64_t volumes = 0;
    uint64_t seqs = 0;
    uint64_t bytes = 0;  // of writes (imports not counted)
  };
  Result<UpgradeStats> Upgrade(const std::string& to,
                               const std::function<void(uint64_t, uint64_t)>& progress) const;
  // Every record in key order, one line each, for `journal dump`:
  // prints volume-scoped records of `volume` only when it is not kNoVolume.
  static constexpr uint32_t kNoVolume = ~uint32_t{0};
  Status Dump(uint32_t volume, const std::function<void(std::string_view line)>& out) const;

  class Impl;

 private:
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::journal
