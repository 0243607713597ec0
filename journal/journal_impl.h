// Private: the state behind tidemark::journal::Journal, shared by
// journal.cc (open, volumes, maintenance), journal_write.cc (Apply, Commit),
// journal_read.cc (points and block reads) and journal_import.cc.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <utility>  // before Boost.Asio under g++ 12 in C++20 mode
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tidemark/journal/journal.h"
#include "tidemark/journal/segment.h"

namespace tidemark::journal {

enum Cf : size_t {
  kDefault = 0, kBlocks, kSeqs, kTimes, kRanges, kBookmarks, kFlushes, kExtents, kCfCount
};

// Tests only: Commit writes the segments and leaves the index unwritten, as a
// writer killed between the two does (journal_rollforward_test.cc).
inline bool g_test_skip_index_writes = false;

// True when every byte of d is zero (a word at a time: imports test every block).
bool AllZero(std::string_view d);

// "xxxxxxxx-xxxx-..." of a journal UUID, and lowercase hex of bytes (journal.cc).
std::string UuidString(const std::array<uint8_t, 16>& u);
std::string Hex(std::string_view s);

// Translates a RocksDB status once, at the module's edge.
Status FromRocks(const rocksdb::Status& s, std::string_view what);

// Key of a pending block version in the in-memory RMW map.
struct BlockId {
  uint32_t volume;
  uint64_t block;
  friend bool operator==(const BlockId&, const BlockId&) = default;
};
struct BlockIdHash {
  size_t operator()(const BlockId& b) const {
    return std::hash<uint64_t>()(b.block * 0x9E3779B97F4A7C15ull + b.volume);
  }
};

// An iterator on the newest key at or before `key` among the keys of one
// 4-byte id prefix (a space or a volume); not Valid() when there is none.
class LastAtOrBefore {
 public:
  LastAtOrBefore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, uint32_t id,
                 const std::string& key)
      : lower_(IdPrefix(id)), lower_slice_(lower_) {
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_slice_;  // must outlive the iterator: a member
    it_.reset(db->NewIterator(ro, cf));
    it_->SeekForPrev(key);
  }
  LastAtOrBefore(const LastAtOrBefore&) = delete;
  LastAtOrBefore& operator=(const LastAtOrBefore&) = delete;
  rocksdb::Iterator* operator->() const { return it_.get(); }

 private:
  std::string lower_;
  rocksdb::Slice lower_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

struct RangeEntry {
  Seq seq;
  RangeRecord rec;
  bool Covers(uint64_t block) const {
    return block >= rec.first_block && block - rec.first_block < rec.block_count;
  }
};

struct VolumeState {
  VolumeRecord rec;
  std::string group;    // its group's name; empty for a group of one
  Seq import_seq = 0;   // its index in the group: the seq of its image
  Seq first_seq = 0;    // the group's first point (its last member's image)
  std::vector<RangeEntry> ranges;  // committed, ordered by seq
  VolumeInfo Info() const;
  const Epoch& epoch() const { return rec.epochs.back(); }
};

struct SpaceState {
  Seq last_seq = kNoSeq;       // newest applied (pending included)
  Seq committed_seq = kNoSeq;  // newest written to RocksDB
  TimeNs last_time_ns = 0;
  Seq last_flush_seq = kNoSeq;  // newest seq with a flush marker
};

// Format 2: blocks of one seq, contiguous, all data or all zeros, not yet
// appended to the space's segment log (journal_segments.cc).
struct PendingRun {
  uint32_t volume = 0;
  Seq seq = 0;
  TimeNs time_ns = 0;
  uint8_t flags = 0;
  uint8_t op = seg::kOpWrite;
  uint64_t first_block = 0;
  uint64_t blocks = 0;
  bool zeros = false;
  std::string data;  // blocks * block_bytes, empty for zeros
  // The write's byte extent (the record says how far it is inside its whole
  // blocks), and whether this run is the write's last record.
  uint64_t write_offset = 0;
  uint64_t write_end = 0;
  bool last = false;
};

// Format 2: the decoded bytes of the chunk an extent points at, kept for the
// next block of the same extent.
struct ChunkCache {
  uint64_t segment = ~uint64_t{0};
  uint64_t offset = 0;
  std::string raw;
};

// Format 2: writes a writer's index batches to RocksDB on a thread of its
// own, in order, while the writer goes on (docs/format-journal.md#writes-and-durability).
// A write is answered once its segment record is written; its index entries
// follow, and an open rolls forward any that a crash left unwritten.
class IndexWriter {
 public:
  explicit IndexWriter(rocksdb::DB* db);
  ~IndexWriter();  // writes what is queued
  IndexWriter(const IndexWriter&) = delete;
  IndexWriter& operator=(const IndexWriter&) = delete;
  // Queues the batch (taking its contents); waits while kMaxQueued are queued.
  // The first failed write's status is returned by every later call.
  // *number: the batch's, counting from 1.
  Status Submit(rocksdb::WriteBatch* batch, uint64_t* number);
  // How many batches are written (numbers up to this one).
  uint64_t written() const;
  // Waits until every queued batch is written.
  Status Drain();

 private:
  static constexpr size_t kMaxQueued = 3;
  void Run();
  rocksdb::DB* db_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<rocksdb::WriteBatch> queue_;
  uint64_t submitted_ = 0;
  std::atomic<uint64_t> written_{0};  // read without waiting on mu_
  bool writing_ = false;
  bool stop_ = false;
  Status error_;
  std::thread thread_;
};

class Journal::Impl {
 public:
  std::string dir;
  OpenOptions options;
  bool read_only = false;
  std::string read_only_reason;
  std::string secondary_dir;  // set when following a running writer
  MetaRecord meta;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cf;  // indexed by Cf
  std::map<uint32_t, VolumeState> volumes;
  std::map<uint32_t, SpaceState> spaces;
  std::map<std::string, GroupRecord> groups;  // by name

  // The pending group-commit batch and what Apply() needs to see of it.
  rocksdb::WriteBatch batch;
  size_t pending_writes = 0;
  size_t pending_bytes = 0;
  std::unordered_map<BlockId, std::string, BlockIdHash> pending_blocks;
  // Blocks of batches queued on the index writer, by batch number: what a
  // read-modify-write reads instead of waiting for the index.
  std::deque<std::pair<uint64_t, std::unordered_map<BlockId, std::string, BlockIdHash>>> inflight_blocks;
  void PruneInflight();  // drops the batches the index writer wrote
  std::set<std::pair<uint32_t, Seq>> pending_seqs;
  std::vector<std::pair<uint32_t, RangeEntry>> pending_ranges;
  // Set when a RocksDB write failed: the in-memory state is ahead of the
  // disk, so every later write is refused until the journal is reopened.
  mutable Status failed;

  ~Impl();
  Result<VolumeState*> Volume(uint32_t id);
  Result<const VolumeState*> Volume(uint32_t id) const;
  Status Writable() const;
  Status LoadState();

  // Writer internals (journal_write.cc).
  // Writes the pending batch. `async` (format 2's group commits): the segment
  // records are written before it returns, their index entries on the index
  // writer's thread; otherwise the index too.
  Status Commit(bool async = false);
  // Commit, then the segments made durable, then the index (a record a
  // caller is told is kept: a bookmark, a checkpoint).
  Status CommitDurable();
  // Waits for the index writer: what was committed is in RocksDB. Every read
  // of the index by a writer passes here first.
  Status Barrier() const;
  mutable std::unique_ptr<IndexWriter> index_writer;  // format 2 writers
  // The second thread EncodeRuns hands half a commit's runs to: made once,
  // not per commit (a thread per commit was 275 clone3 calls per 65,536
  // 4 KiB writes, each with its own stack to fault in).
  std::unique_ptr<boost::asio::thread_pool> encoder;
  // op: seg::kOpWrite, or seg::kOpImport for an import's blocks (format 2's records say which).
  Status PutBlock(const VolumeState& vol, uint64_t block, Seq seq, std::string_view data,
                  TimeNs time_ns = 0, uint8_t flags = 0, uint8_t op = seg::kOpWrite);
  // The newest content of a block, pending writes included.
  Status CurrentBlock(const VolumeState& vol, uint64_t block, std::string* out);
  bool SeqExists(uint32_t space, Seq seq) const;
  // The volume's seq 0 image is not recorded yet.
  bool AwaitsImage(const VolumeState& vol) const;
  // kInvalidArgument unless the volume's image is the next seq of its space
  // (the members ahead of it in its group have theirs).
  Status ImageIsNext(const VolumeState& vol) const;
  GroupInfo GroupOf(const std::string& name, const GroupRecord& rec) const;
  // Removes what an interrupted import left (journal_import.cc).
  Status AbandonImport(const std::string& marker_key);
  // Format 2: appends the import's end record and writes it, and puts the
  // committed tail past it into `wb`, the synced batch that holds the seq
  // record: the import becomes a point in the index and in the log at once.
  Status AppendImportEnd(const VolumeState& vol, Seq seq, TimeNs time_ns, rocksdb::WriteBatch* wb);
  std::map<uint32_t, uint64_t> staged_end;  // volume -> end of its furthest staged chunk

  // Reader internals (journal_read.cc).
  // Reads block at seq; *found_seq is the version's seq or kNoSeq.
  Status ReadBlockAt(const VolumeState& vol, uint64_t block, Seq seq, char* out) const;
  Status DecodeBlockValue(const VolumeState& vol, uint64_t block, Seq version,
                          std::string_view stored, char* out, bool* zero) const;
  bool ZeroedByRange(const VolumeState& vol, uint64_t block, Seq version, Seq at) const;
  Result<SeqRecord> GetSeq(uint32_t space, Seq seq) const;
  Result<Point> PointAt(const VolumeState& vol, Seq seq) const;
  Result<Point> Edge(const VolumeState& vol, bool first) const;
  // The unordered interval holding `seq` (after < seq < upto), if any.
  const Journal::UnorderedInterval* Unordered(uint32_t space, Seq seq) const;
  // The newest point: the latest seq, or the start of an open interval.
  Result<Point> ConsistentLatest(const VolumeState& vol) const;
  std::map<uint32_t, std::vector<Journal::UnorderedInterval>> unordered;  // by space

  // Format 2 (journal_segments.cc): block bytes in segment files, an extent
  // index in RocksDB (docs/format-journal.md).
  bool v2() const { return meta.format_version >= 2; }
  // Blocks per aligned chunk of the volume (64 KiB, or one block when larger).
  static uint64_t ChunkBlocks(const VolumeState& vol);
  std::optional<PendingRun> run;
  uint64_t write_offset = 0, write_end = 0;  // of the write Apply is turning into runs
  std::map<uint32_t, seg::Location> pending_tails;  // spaces appended since the last commit
  std::set<uint32_t> unsynced_spaces;               // spaces appended since the last sync
  // The space's segment log, opened on first use: for appending (a writer;
  // the log is cut at the committed tail) or for reads.
  Result<seg::SegmentLog*> Log(uint32_t space, bool append) const;
  mutable std::mutex logs_mu;
  mutable std::map<uint32_t, std::unique_ptr<seg::SegmentLog>> logs;
  mutable std::set<uint32_t> appending;  // spaces whose log was cut and appends
  // Closes the pending run: it is encoded, appended as one data record and
  // indexed by EncodeRuns (at the commit, before another kind of record, or
  // when kMaxClosedBytes are closed).
  Status FlushRun();
  Status EncodeRuns();
  // Runs `there` on the encoder thread and `here` on this one; returns when
  // both are done.
  void OnTwoThreads(const std::function<void()>& there, const std::function<void()>& here);
  // split: a long run's chunks are compressed on two threads (OnTwoThreads).
  Status EncodeRun(const PendingRun& r, std::string* rec, std::vector<seg::ChunkDesc>* chunks,
                   bool split);
  static constexpr uint64_t kMaxClosedBytes = 16 << 20;
  std::vector<PendingRun> closed_runs;
  uint64_t closed_bytes = 0;
  // Puts the index entries of a data record's chunks, at `at`, into `wb`.
  Status IndexChunks(const VolumeState& vol, Seq seq, const seg::Location& at,
                     const std::vector<seg::ChunkDesc>& chunks, rocksdb::WriteBatch* wb) const;
  // Appends a record of another kind than data (after the pending run).
  Status AppendRecord(uint32_t space, seg::RecordKind kind, uint8_t flags, uint32_t volume, Seq seq,
                      std::string_view body);
  // A writer's open: indexes the whole writes and flush markers that the
  // segments hold after the committed tail (written, maybe answered, but not
  // indexed when the writer stopped). *rolled: the index changed.
  Status RollForward(bool* rolled, std::vector<std::string>* stopped = nullptr);
  // A writer's open: checks that each space's segment chain holds what its
  // synced tail says was made durable (no segment file missing up to it, the
  // tail's file long enough). A problem is described in *damage: the
  // journal then opens read-only, as writes answered durable are lost.
  Status CheckSyncedChains(std::string* damage);
  // Writes the batch (the run and the tails included) without touching the
  // in-memory seq state: Commit and imports.
  Status WriteBatchV2(bool async = false);
  Status SyncLogs();
  // A space's committed tail (`T`: everything before it is indexed) or, with
  // `synced`, its synced tail (`S`, with its seq); nullopt when there is none.
  Result<std::optional<TailRecord>> ReadTail(uint32_t space, bool synced) const;
  // Calls fn for every block in [first, end) with an extent at or before
  // seq: the newest, in block order. Range records are not applied.
  using ExtentFn = std::function<Status(uint64_t block, Seq version, const ExtentRecord& rec)>;
  Status ForEachExtent(const VolumeState& vol, Seq seq, uint64_t first, uint64_t end,
                       const ExtentFn& fn) const;
  // One block's bytes from its extent, through `cache`.
  Status BlockFromExtent(const VolumeState& vol, uint64_t block, Seq version,
                         const ExtentRecord& rec, ChunkCache* cache, const char** bytes) const;
  Status ReadBlockAtV2(const VolumeState& vol, uint64_t block, Seq seq, char* out) const;
  // A writer's open: checks each space's records between its synced and its
  // committed tail (a power loss may have lost or torn them) and cuts the
  // seqs from the first that fails. *cut: the index changed (reload state).
  Status CheckUnsyncedTails(bool* cut);
  // Removes seqs >= from of `space` from the index and sets its log's
  // committed tail to `end`, in one synced batch.
  Status CutSeqs(uint32_t space, Seq from, const seg::Location& end);
};

}  // namespace tidemark::journal
