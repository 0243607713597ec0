// Journal format 2's segment files: the append-only log of one seq space
// (docs/format-journal.md, docs/design.md#journal-format). Records are
// encoded and decoded here; the RocksDB index that points into them is the
// journal's. No RocksDB in this header: recovery/ reads chunks with it too.
//
// Thread-safety: the encoders are pure functions. A SegmentLog has one
// appending thread (Append, Pad, Sync, StartAppend); Read may be called from
// any thread at the same time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/codec.h"
#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::journal::seg {

inline constexpr size_t kSegmentHeaderBytes = 64;
inline constexpr size_t kRecordHeaderBytes = 32;
inline constexpr size_t kDataHeaderBytes = 40;
inline constexpr size_t kChunkDescBytes = 48;
inline constexpr uint32_t kRecordMagic = 0x544d5232;  // "TMR2"
inline constexpr uint32_t kSegmentVersion = 2;
inline constexpr size_t kPadAlign = 4096;  // O_DIRECT batches end on this boundary
// A record's body is at most this long: an NBD write is at most 32 MiB, and
// its chunk descriptors add 48 bytes per 4 KiB at worst.
inline constexpr uint32_t kMaxRecordBody = 64u << 20;

// Ids are stored on disk: never renumber. Bit 7 set: a reader that does not
// know the kind skips the record.
enum class RecordKind : uint8_t {
  kData = 1,             // a WRITE, or an import's piece
  kRange = 2,            // TRIM or WRITE_ZEROES of whole blocks
  kFlush = 3,            // a FLUSH marker on seq
  kBookmark = 4,         // a named point on seq
  kUnordered = 5,        // an unordered interval's begin or end
  kCheckpoint = 6,       // seq is on the backing
  kImport = 7,           // an import's start, progress and end
  kIndexCheckpoint = 8,  // the index is durable up to here
  kRelocated = 9,        // retention moved chunks here
};
std::string_view KindName(RecordKind kind);

// Record header flags.
inline constexpr uint8_t kFlagFua = 1;
inline constexpr uint8_t kFlagFlush = 2;
inline constexpr uint8_t kFlagUnordered = 4;
// The last record of its seq's write: an open rolls a seq forward into the
// index only when this record is whole (docs/format-journal.md#roll-forward).
inline constexpr uint8_t kFlagSeqEnd = 8;

// Where a record starts: its segment and the byte offset of its header.
struct Location {
  uint64_t segment = 0;
  uint64_t offset = 0;
  bool operator==(const Location&) const = default;
  auto operator<=>(const Location&) const = default;
};

struct SegmentHeader {
  uint32_t version = kSegmentVersion;
  uint32_t space = 0;
  std::array<uint8_t, 16> uuid{};  // the journal's: a segment of another journal is refused
  uint64_t number = 0;
  Seq first_seq = 0;  // the first seq that may appear in it
  TimeNs created_ns = 0;
  bool operator==(const SegmentHeader&) const = default;
};
std::string EncodeSegmentHeader(const SegmentHeader& h);
// kCorruption on a wrong magic, version or CRC.
Result<SegmentHeader> DecodeSegmentHeader(std::string_view in);

struct RecordHeader {
  RecordKind kind = RecordKind::kData;
  uint8_t flags = 0;
  uint32_t length = 0;  // of the body: header and padding excluded
  uint32_t volume = 0;
  Seq seq = 0;
  uint32_t crc = 0;  // of header bytes 0..23 and the body (a data record's payloads excluded)
  uint32_t pad = 0;  // zero bytes after the body
  // Header, body and padding.
  uint64_t total() const { return kRecordHeaderBytes + uint64_t{length} + pad; }
};
// kCorruption when the magic is wrong or a length is out of range.
Result<RecordHeader> DecodeRecordHeader(std::string_view in);

// One chunk of a data record: a volume-aligned piece of at most 2^chunk_log2
// bytes, stored with its own codec and CRC32C (of the stored bytes).
struct ChunkDesc {
  uint64_t volume_offset = 0;
  uint32_t raw_len = 0;
  uint32_t stored_len = 0;
  Codec codec = Codec::kNone;
  uint8_t enc = 0;  // 0 plain; 1 AES-256-GCM (reserved)
  uint8_t flags = 0;  // kChunkZero: all zeros, no payload (stored_len 0)
  uint32_t crc = 0;
  uint32_t payload_offset = 0;  // from the start of the record's header
  std::array<uint8_t, 12> nonce{};
  bool operator==(const ChunkDesc&) const = default;
};

inline constexpr uint8_t kChunkZero = 1;

// A data record's op: OpKind's numbers (a TRIM's or WRITE_ZEROES's partial
// edge blocks are data records of that op).
inline constexpr uint8_t kOpWrite = 1;
inline constexpr uint8_t kOpTrim = 2;
inline constexpr uint8_t kOpWriteZeroes = 3;
inline constexpr uint8_t kOpImport = 4;

struct DataHeader {
  TimeNs time_ns = 0;
  uint8_t op = kOpWrite;
  uint64_t offset_bytes = 0;
  uint32_t length_bytes = 0;
  uint32_t block_bytes = 0;
  uint16_t chunk_count = 0;
  uint8_t chunk_log2 = 16;
  uint32_t branch = 0;
  // The write's own extent inside the record's whole blocks, in 512-byte
  // sectors: how far it starts after the record's first byte and ends before
  // its last (a sub-block write, merged to whole blocks). 0 for imports.
  uint16_t head_skip_sectors = 0;
  uint16_t tail_skip_sectors = 0;
  bool operator==(const DataHeader&) const = default;
};

// A write to encode: whole blocks at a block-aligned offset.
struct DataIn {
  uint32_t volume = 0;
  Seq seq = 0;
  uint8_t flags = 0;
  DataHeader header;  // chunk_count is computed
  std::string_view data;
  // The record says the blocks are zeros: header.length_bytes of them, no
  // payload, `data` unused (every chunk is kChunkZero).
  bool zeros = false;
  Codec codec = Codec::kNone;  // tried per chunk; kept when it saves 1/8
};

// The chunk size a journal uses unless told otherwise (docs/format-journal.md).
inline constexpr uint8_t kDefaultChunkLog2 = 16;

// A chunk's stored form, computed ahead of EncodeData (PackChunks): its
// codec, and its bytes when the codec kept them (empty: stored raw).
struct PackedChunk {
  Codec codec = Codec::kNone;
  std::string bytes;
};
// The number of chunks EncodeData cuts `in` into (0 when it is not whole
// blocks or its chunk size is out of range).
size_t ChunkCount(const DataIn& in);
// Runs the codec on chunks [from, to) of `in` into (*packed)[from, to)
// (sized ChunkCount(in) by the caller): disjoint ranges may run on different
// threads, then EncodeData assembles the record from them.
void PackChunks(const DataIn& in, size_t from, size_t to, std::vector<PackedChunk>* packed);
// Appends one data record to *out; `chunks` gets its descriptors (payload
// offsets relative to the record's header). With `packed` (PackChunks of
// every chunk) the codec is not run again. InvalidArgument when the write is
// empty, not whole blocks, or too long.
Status EncodeData(const DataIn& in, std::string* out, std::vector<ChunkDesc>* chunks,
                  const std::vector<PackedChunk>* packed = nullptr);
// Appends a record of any other kind, with `body` as it is.
void EncodeRecord(RecordKind kind, uint8_t flags, uint32_t volume, Seq seq, std::string_view body,
                  std::string* out);
// Appends `n` zero bytes of padding to the record that ends *out, at
// `record_start`, and fixes its header (the CRC does not cover padding).
void PadRecord(std::string* out, size_t record_start, uint32_t n);

// The body of a range record: a TRIM or WRITE_ZEROES of whole blocks.
struct RangeBody {
  uint8_t op = kOpTrim;
  TimeNs time_ns = 0;
  uint64_t first_block = 0;
  uint64_t block_count = 0;
  bool operator==(const RangeBody&) const = default;
};
inline constexpr size_t kRangeBodyBytes = 25;
std::string EncodeRangeBody(const RangeBody& b);
Result<RangeBody> DecodeRangeBody(std::string_view body);
// The body of a flush record: its time (its flags are the header's).
std::string EncodeFlushBody(TimeNs time_ns);
Result<TimeNs> DecodeFlushBody(std::string_view body);

// The body of an import record: an import's end (its seq becomes a point: the
// union of its data records' blocks), or its abandonment (a crash cut it off:
// its data records are dead).
inline constexpr uint8_t kImportEnd = 0;
inline constexpr uint8_t kImportAbandoned = 2;
struct ImportBody {
  uint8_t what = kImportEnd;
  TimeNs time_ns = 0;
  bool operator==(const ImportBody&) const = default;
};
std::string EncodeImportBody(const ImportBody& b);
Result<ImportBody> DecodeImportBody(std::string_view body);

// The body of a bookmark record: a named point on the header's seq.
struct BookmarkBody {
  TimeNs time_ns = 0;  // when it was named
  std::string name;    // 1 to 200 bytes
  bool operator==(const BookmarkBody&) const = default;
};
std::string EncodeBookmarkBody(const BookmarkBody& b);
Result<BookmarkBody> DecodeBookmarkBody(std::string_view body);

// The body of an unordered record: an interval's begin (upto is kNoSeq) or
// its end. The header's seq is the interval's `after`.
inline constexpr uint8_t kUnorderedBegin = 0;
inline constexpr uint8_t kUnorderedEnd = 1;
struct UnorderedBody {
  uint8_t what = kUnorderedBegin;
  TimeNs time_ns = 0;  // the interval's begin
  Seq upto = kNoSeq;
  bool operator==(const UnorderedBody&) const = default;
};
inline constexpr size_t kUnorderedBodyBytes = 17;
std::string EncodeUnorderedBody(const UnorderedBody& b);
Result<UnorderedBody> DecodeUnorderedBody(std::string_view body);

// The body of a checkpoint record: when the header's volume's backing was
// found to hold the header's seq.
std::string EncodeCheckpointBody(TimeNs time_ns);
Result<TimeNs> DecodeCheckpointBody(std::string_view body);

// A record decoded from its bytes (header, body; padding not needed).
struct Record {
  RecordHeader header;
  std::string_view body;      // for data records: with the payloads
  DataHeader data;            // data records only
  std::vector<ChunkDesc> chunks;
};
// Decodes a record whose header and body are `in` (at least header.total()
// minus the padding), checking the header's CRC. The chunks' payloads are not
// checked: VerifyChunk or ReadChunk do that.
Result<Record> DecodeRecord(std::string_view in);

// The raw bytes of one chunk, from its stored bytes: checks the CRC32C and
// decompresses. kCorruption names what failed.
Status ReadChunk(const ChunkDesc& c, std::string_view stored, char* out);
Status VerifyChunk(const ChunkDesc& c, std::string_view stored);

struct LogOptions {
  uint64_t segment_bytes = 256ull << 20;  // a segment is sealed past this
};

// The outcome of a scan of one seq space's segments.
struct ScanEnd {
  Location end;        // where the next record goes: after the last whole one
  bool torn = false;   // bytes after `end` that are not a whole, valid record
  std::string reason;  // why the scan stopped before the end of the files
  std::string file;    // the file it stopped in
};

// One seq space's segments under DIR/segments/SPACE (8 hex digits), each
// NNNN.seg (16 hex digits).
class SegmentLog {
 public:
  ~SegmentLog();
  // Opens (creating the directory when `create`) without choosing where to
  // append: call Scan, then StartAppend at its end.
  static Result<std::unique_ptr<SegmentLog>> Open(const std::string& journal_dir, uint32_t space,
                                                  const std::array<uint8_t, 16>& uuid,
                                                  const LogOptions& options, bool create);

  // Calls fn for every whole record from `from` on, in order, checking each
  // header's CRC and, when `check_chunks`, every chunk's. Stops at the first
  // record that is absent, torn or damaged: its place and why are in the
  // result; a hole in the segment chain stops it too. The record's views
  // are valid only during fn; fn's non-Ok status ends the scan with it.
  using RecordFn = std::function<Status(const Location&, const Record&)>;
  Result<ScanEnd> Scan(const Location& from, bool check_chunks, const RecordFn& fn) const;

  // Cuts the log at `at` (truncating its segment and deleting every later
  // one) and appends from there. `at` {0, 0}: an empty log.
  Status StartAppend(const Location& at, Seq next_seq, TimeNs now_ns);

  // Appends encoded records (one or more, whole) and returns the first one's
  // place. A segment past segment_bytes is sealed first; records never span
  // segments. `first_seq` is the first record's seq, for a new segment's header.
  // Small records are gathered in memory until Flush (or 1 MiB of them): one
  // write(2) per group commit rather than one per record.
  Result<Location> Append(std::string_view records, Seq first_seq, TimeNs now_ns);
  // Writes what Append gathered (write(2) returned: a process crash keeps it).
  // The journal flushes before its index names the records.
  Status Flush();
  // Makes everything appended durable: Flush, fdatasync of every segment
  // written since the last Sync, and of the directory when a segment was created.
  Status Sync();

  // Reads `n` bytes at `offset` of segment `segment`. kNotFound for a missing
  // segment file; kCorruption for a short read. Any thread.
  Status Read(uint64_t segment, uint64_t offset, size_t n, char* out) const;

  std::vector<uint64_t> Segments() const;  // numbers, ascending
  std::string SegmentPath(uint64_t segment) const;
  const std::string& dir() const { return dir_; }
  Location tail() const { return {current_, size_}; }
  uint64_t bytes_appended() const { return appended_; }

 private:
  SegmentLog() = default;
  Status OpenSegment(uint64_t number, Seq first_seq, TimeNs now_ns);
  Result<int> ReadFd(uint64_t segment) const;

  std::string dir_;
  uint32_t space_ = 0;
  std::array<uint8_t, 16> uuid_{};
  LogOptions options_;
  int fd_ = -1;            // the open segment's
  uint64_t current_ = 0;   // its number
  uint64_t size_ = 0;      // its length, what Append gathered included
  uint64_t written_ = 0;   // its length in the file
  uint64_t writeback_ = 0; // where its last started writeback ends
  // Starts the kernel's writeback of what was written since the last call,
  // every few MiB (sync_file_range, no wait): a Sync then waits for less.
  void StartWriteback();
  std::string buf_;        // appended, not yet written: the file's bytes [written_, size_)
  bool appending_ = false;
  bool dir_dirty_ = false;
  std::vector<int> unsynced_;  // sealed segments' fds not yet synced (owned)
  uint64_t appended_ = 0;
  mutable std::mutex read_mu_;
  mutable std::map<uint64_t, int> read_fds_;
};

}  // namespace tidemark::journal::seg
