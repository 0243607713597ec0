// See docs/format-journal-1.md (format 1; format 2 keeps its index keys, docs/format-journal.md): the journal's on-disk format, the one place its
// constants, keys and records are encoded and decoded.
//
// Keys are big-endian so that RocksDB's bytewise order is numeric order.
// Values are `header payload`: an 8-byte header (kind, codec, reserved,
// CRC32C) and a little-endian payload. Every decoder here checks the CRC and
// the exact length and returns kCorruption, naming what is wrong, otherwise.
//
// Thread-safety: pure functions and value types.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/codec.h"
#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::journal {

// Format 1's version: MetaRecord's defaults and format 1's encodings
// (docs/format-journal-1.md). A format-1 journal is read only by `journal upgrade`
// and `journal dump`.
inline constexpr uint32_t kFormatVersion = 1;
// The format this build writes (format 2: segments and an extent index,
// docs/format-journal.md). A journal whose read floor is above it is
// refused; one whose write floor is above it opens read-only.
inline constexpr uint32_t kMaxFormatVersion = 2;

inline constexpr size_t kValueHeaderBytes = 8;
inline constexpr uint32_t kDefaultBlockBytes = 4096;
inline constexpr uint32_t kSectorBytes = 512;

// Column family names.
inline constexpr const char* kCfDefault = "default";      // metadata, volumes
inline constexpr const char* kCfBlocks = "blocks";        // versioned blocks
inline constexpr const char* kCfSeqs = "seqs";            // one record per seq
inline constexpr const char* kCfTimes = "times";          // time -> seq index
inline constexpr const char* kCfRanges = "ranges";        // TRIM / WRITE_ZEROES
inline constexpr const char* kCfBookmarks = "bookmarks";  // name -> seq
inline constexpr const char* kCfFlushes = "flushes";      // FLUSH / FUA markers
inline constexpr const char* kCfExtents = "extents";      // format 2: chunk -> segment place
inline constexpr std::array<const char*, 8> kColumnFamilies = {
    kCfDefault, kCfBlocks, kCfSeqs, kCfTimes, kCfRanges, kCfBookmarks, kCfFlushes, kCfExtents};

// Kinds of stored values. Bit 7 set: a reader that does not know the kind may
// skip the record; clear: it must refuse it. Stored on disk: never renumber.
enum class ValueKind : uint8_t {
  kMeta = 1,
  kVolume = 2,
  kBlock = 3,      // a block's bytes at a seq (payload compressed by codec)
  kZeroBlock = 4,  // a block that is all zeros at a seq (no payload)
  kSeq = 5,
  kTime = 6,
  kRange = 7,
  kBookmark = 8,
  kFlush = 9,
  kCheckpoint = 10,  // the newest seq known to be on the tap's backing
  kUnordered = 11,   // an interval of seqs written out of order (a resync)
  kGroup = 12,       // a consistency group: its name, seq space and volumes
  kExtent = 13,      // format 2: where a chunk's blocks at a seq are
  kTail = 14,        // format 2: the end of a space's committed segment log
};
inline constexpr uint8_t kKindSkippable = 0x80;
std::string_view ValueKindName(ValueKind kind);

enum class ChecksumId : uint8_t { kCrc32c = 1 };

// ---- keys ----------------------------------------------------------------
// default:   'M'                      -> MetaRecord
//            'V' be32 volume          -> VolumeRecord
//            'B' be32 volume          -> backing checkpoint (a seq)
//            'U' be32 space be64 after -> UnorderedRecord
//            'G' name                  -> GroupRecord
//            'T' be32 space            -> segment tail (format 2)
//            'S' be32 space            -> synced segment tail and seq (format 2)
// blocks:    be32 volume be64 block be64 ~seq -> block bytes or zero block
// extents:   be32 volume be64 chunk be64 ~seq be16 first -> ExtentRecord (format 2)
// seqs:      be32 space  be64 seq     -> SeqRecord
// times:     be32 space  be64 time_ns be64 seq -> (empty)
// ranges:    be32 volume be64 seq     -> RangeRecord
// bookmarks: be32 space  name        -> BookmarkRecord
// flushes:   be32 space  be64 seq     -> FlushRecord
std::string MetaKey();
std::string VolumeKey(uint32_t volume);
std::string CheckpointKey(uint32_t volume);
std::string UnorderedKey(uint32_t space, Seq after);
std::string GroupKey(std::string_view name);
std::string BlockKey(uint32_t volume, uint64_t block, Seq seq);
std::string TailKey(uint32_t space);
std::string SyncedTailKey(uint32_t space);
// Format 2: the index key of the blocks [first, ...) of aligned chunk
// `chunk` written at `seq` (first counts blocks from the chunk's start).
std::string ExtentKey(uint32_t volume, uint64_t chunk, Seq seq, uint16_t first);
std::string SeqKey(uint32_t space, Seq seq);
std::string TimeKey(uint32_t space, TimeNs time_ns, Seq seq);
std::string RangeKey(uint32_t volume, Seq seq);
std::string BookmarkKey(uint32_t space, std::string_view name);
std::string FlushKey(uint32_t space, Seq seq);
// The 4-byte prefix shared by every key of a volume or space.
std::string IdPrefix(uint32_t id);

struct DecodedBlockKey {
  uint32_t volume;
  uint64_t block;
  Seq seq;
};
Result<DecodedBlockKey> DecodeBlockKey(std::string_view key);
struct DecodedExtentKey {
  uint32_t volume;
  uint64_t chunk;
  Seq seq;
  uint16_t first;
};
Result<DecodedExtentKey> DecodeExtentKey(std::string_view key);
// For seqs, ranges and flushes: be32 id be64 seq.
struct DecodedSeqKey {
  uint32_t id;
  Seq seq;
};
Result<DecodedSeqKey> DecodeSeqKey(std::string_view key);
struct DecodedTimeKey {
  uint32_t space;
  TimeNs time_ns;
  Seq seq;
};
Result<DecodedTimeKey> DecodeTimeKey(std::string_view key);
Result<uint32_t> DecodeVolumeKey(std::string_view key);

// ---- values --------------------------------------------------------------
// header := kind u8 | codec u8 | reserved u16 (0) | crc32c u32
// crc32c covers header bytes 0..3 followed by the payload.
std::string EncodeValue(ValueKind kind, Codec codec, std::string_view payload);
struct DecodedValue {
  ValueKind kind;
  Codec codec;
  std::string_view payload;  // points into the decoded buffer
};
// Checks length and CRC; an unknown kind without the skippable bit is
// kNotSupported, with it the value is returned for the caller to skip.
Result<DecodedValue> DecodeValue(std::string_view stored);

struct MetaRecord {
  uint32_t format_version = kFormatVersion;
  uint32_t read_floor = kFormatVersion;
  uint32_t write_floor = kFormatVersion;
  std::array<uint8_t, 16> uuid{};
  Codec codec = Codec::kNone;  // codec new block values use
  ChecksumId checksum = ChecksumId::kCrc32c;
  TimeNs created_ns = 0;
  friend bool operator==(const MetaRecord&, const MetaRecord&) = default;
};
std::string EncodeMeta(const MetaRecord& meta);
Result<MetaRecord> DecodeMeta(std::string_view stored);

// The geometry of a volume from a seq on. Epoch 0 starts at seq 0; resizes
// (a later command) append epochs.
struct Epoch {
  uint32_t epoch = 0;
  Seq from_seq = 0;
  uint64_t size_bytes = 0;
  uint32_t block_bytes = kDefaultBlockBytes;
  friend bool operator==(const Epoch&, const Epoch&) = default;
};
struct VolumeRecord {
  uint32_t id = 0;
  uint32_t space = 0;  // consistency group seq space; = id for a group of one
  std::string name;
  std::vector<Epoch> epochs;  // never empty, ordered by from_seq
  friend bool operator==(const VolumeRecord&, const VolumeRecord&) = default;
};
std::string EncodeVolume(const VolumeRecord& volume);
Result<VolumeRecord> DecodeVolume(std::string_view stored);

struct SeqRecord {
  TimeNs time_ns = 0;
  uint32_t volume = 0;
  OpKind op = OpKind::kWrite;
  uint8_t flags = 0;            // SeqFlags
  std::vector<Extent> extents;  // bytes the seq changed (one for most ops)
  friend bool operator==(const SeqRecord&, const SeqRecord&) = default;
};
std::string EncodeSeq(const SeqRecord& rec);
Result<SeqRecord> DecodeSeq(std::string_view stored);

// Whole blocks [first_block, first_block + block_count) read as zeros from
// the range's seq on (partial edge blocks are written as block versions).
struct RangeRecord {
  OpKind op = OpKind::kTrim;
  uint64_t first_block = 0;
  uint64_t block_count = 0;
  friend bool operator==(const RangeRecord&, const RangeRecord&) = default;
};
std::string EncodeRange(const RangeRecord& rec);
Result<RangeRecord> DecodeRange(std::string_view stored);

struct BookmarkRecord {
  Seq seq = 0;
  TimeNs created_ns = 0;
  friend bool operator==(const BookmarkRecord&, const BookmarkRecord&) = default;
};
std::string EncodeBookmark(const BookmarkRecord& rec);
Result<BookmarkRecord> DecodeBookmark(std::string_view stored);

struct FlushRecord {
  TimeNs time_ns = 0;
  uint8_t flags = 0;  // kSeqFlush and/or kSeqFua
  friend bool operator==(const FlushRecord&, const FlushRecord&) = default;
};
std::string EncodeFlush(const FlushRecord& rec);
Result<FlushRecord> DecodeFlush(std::string_view stored);

// Everything up to this seq is on the volume's backing (the tap's
// fdatasync'ed file or device); the tail after it is replayed at start.
std::string EncodeCheckpoint(Seq seq);
Result<Seq> DecodeCheckpoint(std::string_view stored);

// Seqs after the key's `after` were written out of order (a remote tap's
// resync, docs/design.md#the-source-queue) up to `upto`: none of (after, upto) is a
// point. upto == kNoSeq: the interval is still open.
struct UnorderedRecord {
  Seq upto = kNoSeq;
  TimeNs begin_ns = 0;
  friend bool operator==(const UnorderedRecord&, const UnorderedRecord&) = default;
};
std::string EncodeUnordered(const UnorderedRecord& rec);
Result<UnorderedRecord> DecodeUnordered(std::string_view stored);

// A consistency group (docs/design.md#consistency-groups): volumes sharing the seq space
// `space` (the first volume's id). The i-th volume's seq 0 image is seq i of
// the space; the group's first point is seq volumes.size()-1.
struct GroupRecord {
  uint32_t space = 0;
  std::vector<uint32_t> volumes;  // volume ids, in member order
  friend bool operator==(const GroupRecord&, const GroupRecord&) = default;
};
std::string EncodeGroup(const GroupRecord& rec);
Result<GroupRecord> DecodeGroup(std::string_view stored);

// Format 2: where the blocks [first, first + count) of an aligned chunk
// (counted from the chunk's start) are at a seq: the chunk's stored bytes in
// a segment of the volume's space, or zeros (kExtentZero, no bytes).
inline constexpr uint8_t kExtentZero = 1;
struct ExtentRecord {
  uint64_t segment = 0;
  uint64_t offset = 0;  // of the stored bytes in the segment
  uint32_t stored_len = 0;
  Codec codec = Codec::kNone;
  uint8_t flags = 0;
  uint16_t first = 0;  // blocks from the chunk's start
  uint16_t count = 0;
  uint32_t crc = 0;  // CRC32C of the stored bytes
  friend bool operator==(const ExtentRecord&, const ExtentRecord&) = default;
};
std::string EncodeExtent(const ExtentRecord& rec);
Result<ExtentRecord> DecodeExtent(std::string_view stored);

// Format 2: the end of a space's committed segment log (segment, offset).
struct TailRecord {
  uint64_t segment = 0;
  uint64_t offset = 0;
  Seq seq = kNoSeq;  // the synced tail's: the space's newest durable seq
  friend bool operator==(const TailRecord&, const TailRecord&) = default;
};
std::string EncodeTail(const TailRecord& rec);
Result<TailRecord> DecodeTail(std::string_view stored);

std::string EncodeTime();  // the (empty) value of a time index key
Status CheckTime(std::string_view stored);

}  // namespace tidemark::journal
