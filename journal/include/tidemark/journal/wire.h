// See docs/protocol.md: the tap->target stream protocol, version 1. The one
// place its frames and payloads are encoded and decoded; the tap (capture/)
// and the target (target/) both use it.
//
// A stream is a sequence of frames over TLS 1.3 (ALPN "tidemark/1"):
//   frame := header(16) payload(length) crc32c(4)
// The header is little-endian: magic "TKM1", type, flags (bit 0: the payload
// is a zstd frame), reserved, length as sent, raw_length once decompressed.
// The CRC32C trailer covers the 16 header bytes and the payload as sent.
// WRITES, ACK and IMPORT payloads are binary (little-endian); the others are
// JSON objects, whose encoding stays inside wire_messages.cc.
//
// Every decoder checks lengths, reserved bits and CRCs and returns
// kCorruption naming what is wrong; none reads past its input or allocates
// more than a frame's declared (capped) size. Encoders do not validate: a
// caller that encodes an invalid entry gets a frame the peer refuses.
//
// Thread-safety: pure functions and value types; a FrameReader or
// WritesEncoder is used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::wire {

// The protocol version of HELLO and WELCOME, and the ALPN id that selects
// the stream on the target's TLS port (which serves "http/1.1" as well).
inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr std::string_view kAlpn = "tidemark/1";

// ---- frames --------------------------------------------------------------

inline constexpr uint32_t kFrameMagic = 0x314D4B54;  // bytes 'T' 'K' 'M' '1'
inline constexpr size_t kFrameHeaderBytes = 16;
inline constexpr size_t kFrameTrailerBytes = 4;  // CRC32C
// Cap on both length and raw_length: a receiver never buffers more.
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;
inline constexpr uint8_t kFrameZstd = 1 << 0;  // the only defined flag
// Frame types with this bit are optional: a reader that does not know one
// skips it; an unknown type without it is kCorruption.
inline constexpr uint8_t kTypeSkippable = 0x80;

// Sent on the wire: never renumber.
enum class FrameType : uint8_t {
  kHello = 1,         // tap->target, JSON Hello
  kWelcome = 2,       // target->tap, JSON Welcome
  kWrites = 3,        // tap->target, binary WriteEntry batch
  kAck = 4,           // target->tap, binary durable seq
  kBookmark = 5,      // tap->target, JSON Bookmark
  kBookmarkDone = 6,  // target->tap, JSON BookmarkDone
  kError = 7,         // either way, JSON Error; its sender then closes
  kImport = 8,        // tap->target, binary ImportChunk (initial sync)
  kImportDone = 9,    // tap->target, JSON ImportDone
  kPing = 10,         // either way, empty; answered with kPong
  kPong = 11,         // empty
  kUnordered = 12,    // tap->target, JSON Unordered
  kHashRequest = 13,  // tap->target, binary BlockHashes without hashes
  kHashes = 14,       // target->tap, binary BlockHashes
};
// "HELLO", "WELCOME", ... "UNORDERED"; "unknown" for other values.
std::string_view FrameTypeName(FrameType type);
// True for the fourteen types above.
bool IsKnownFrameType(FrameType type);

struct FrameHeader {
  FrameType type = FrameType::kPing;
  uint8_t flags = 0;        // kFrameZstd or 0
  uint32_t length = 0;      // payload bytes as sent
  uint32_t raw_length = 0;  // payload bytes after decompression
  bool compressed() const { return (flags & kFrameZstd) != 0; }
  // The whole frame on the wire: header, payload as sent, trailer.
  size_t frame_bytes() const { return kFrameHeaderBytes + length + kFrameTrailerBytes; }
  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

// A decoded frame: its type and its payload after decompression.
struct Frame {
  FrameType type = FrameType::kPing;
  std::string payload;
  friend bool operator==(const Frame&, const Frame&) = default;
};

// Encodes one frame. With try_compress, the payload is sent as a zstd frame
// (level 1) when that saves at least 1/8 of it (codec.h's rule), and raw
// otherwise. The payload must be at most kMaxPayloadBytes (checked: a bug
// otherwise). AppendFrame appends the same bytes to *out.
std::string EncodeFrame(FrameType type, std::string_view payload, bool try_compress);
void AppendFrame(std::string* out, FrameType type, std::string_view payload, bool try_compress);

// Decodes the first kFrameHeaderBytes of a frame (more bytes are ignored;
// fewer are kCorruption). kCorruption for a bad magic, unknown flag bits,
// nonzero reserved bytes, length or raw_length above kMaxPayloadBytes,
// raw_length != length without compression, a PING or PONG with a payload,
// and an unknown type without kTypeSkippable. An unknown skippable type is
// returned: the caller checks IsKnownFrameType and skips frame_bytes().
Result<FrameHeader> DecodeFrameHeader(std::string_view header);

// Checks the CRC32C `crc` (the trailer) against header (its 16 bytes) and
// payload (exactly h.length bytes, as sent), then decompresses it to
// h.raw_length bytes. kCorruption on any mismatch.
Result<std::string> DecodeFramePayload(const FrameHeader& h, std::string_view header,
                                       std::string_view payload, uint32_t crc);

// Decodes exactly one whole frame (header, payload, trailer; no more, no
// less). An unknown skippable type is returned as it is (payload checked).
Result<Frame> DecodeFrame(std::string_view frame);

// Cuts a byte stream (a TCP or TLS connection) into frames. Feed() bytes as
// they arrive, in any chunks; Next() returns each complete frame in order,
// skipping (after checking their CRC) frames of unknown skippable types.
// A header is checked as soon as its 16 bytes are buffered, so an oversized
// or damaged frame fails before its payload is awaited. After an error the
// stream cannot be resynchronised: Next() keeps returning it, and the owner
// closes the connection.
class FrameReader {
 public:
  // Copies `bytes` to the end of the buffer.
  void Feed(std::string_view bytes);
  // A frame, std::nullopt when more bytes are needed, or kCorruption
  // ("frame N at stream byte B: ...").
  Result<std::optional<Frame>> Next();

  // Bytes fed but not yet returned as frames.
  size_t buffered_bytes() const { return buf_.size() - pos_; }
  // Frames of unknown skippable types dropped so far.
  uint64_t skipped_frames() const { return skipped_; }
  // Stream offset of the next frame: bytes consumed by returned or skipped
  // frames.
  uint64_t stream_offset() const { return consumed_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  uint64_t consumed_ = 0;
  uint64_t frames_ = 0;
  uint64_t skipped_ = 0;
  std::optional<Status> error_;
};

// ---- WRITES --------------------------------------------------------------
// payload := count:u32 entry{count}
// entry   := seq:u64 time_ns:i64 volume:u16 op:u8 flags:u8 offset_bytes:u64
//            length_bytes:u32 data(length_bytes, op kWrite only)

inline constexpr size_t kWriteEntryHeaderBytes = 32;
inline constexpr uint32_t kSectorBytes = 512;

// Sent on the wire: never renumber. 1-3 are OpKind's values.
enum class EntryOp : uint8_t {
  kWrite = 1,
  kTrim = 2,
  kWriteZeroes = 3,
  kFlush = 5,  // a FLUSH marker covering every seq up to and including seq
};
// "write", "trim", "write_zeroes", "flush"; "unknown" otherwise.
std::string_view EntryOpName(EntryOp op);

struct WriteEntry {
  Seq seq = 0;
  TimeNs time_ns = 0;
  uint16_t volume = 0;  // index into Hello::volumes
  EntryOp op = EntryOp::kWrite;
  uint8_t flags = 0;          // kSeqFua or 0; 0 for kFlush
  uint64_t offset_bytes = 0;  // multiple of 512; 0 for kFlush
  uint32_t length_bytes = 0;  // multiple of 512; 0 for kFlush
  // length_bytes bytes for kWrite, empty otherwise. Not owned: the encoder
  // reads it during the call; DecodeWrites points it into its payload.
  std::string_view data;
  friend bool operator==(const WriteEntry&, const WriteEntry&) = default;
};

// Converts between the tap's WriteOp and an entry of volume `volume`. The
// WriteOp must be a write, trim or write-zeroes of under 4 GiB, and the
// entry must not be a flush (both checked). Data is not copied.
WriteEntry ToWriteEntry(uint16_t volume, const WriteOp& op);
WriteOp ToWriteOp(const WriteEntry& entry);

// Appends one entry (header and, for kWrite, its data) to a WRITES payload
// whose count the caller patches, or WritesEncoder does. For kWrite,
// entry.data.size() must equal length_bytes (checked).
void AppendWriteEntry(std::string* payload, const WriteEntry& entry);

// Builds one WRITES payload: Add() entries, then Finish().
class WritesEncoder {
 public:
  WritesEncoder() { Reset(); }
  void Add(const WriteEntry& entry);
  uint32_t count() const { return count_; }
  // Payload size so far; the caller keeps it at most kMaxPayloadBytes (cut
  // a batch when the next entry would not fit).
  size_t payload_bytes() const { return payload_.size(); }
  // The finished payload (count patched in); the encoder starts over.
  std::string Finish();

 private:
  void Reset();
  std::string payload_;
  uint32_t count_ = 0;
};

// Decodes a WRITES payload; each entry's data points into `payload`, which
// must outlive the result. kCorruption ("WRITES entry 3: ...") for a count
// that does not match the entries, truncation, trailing bytes, an unknown op
// or flag bit, offsets or lengths that are not multiples of 512, a flush
// with an offset, length or flags, and data seqs that do not strictly
// increase (a flush's seq must be >= the previous data seq).
Result<std::vector<WriteEntry>> DecodeWrites(std::string_view payload);

// ---- ACK -----------------------------------------------------------------
// payload := durable_seq:u64 (exactly 8 bytes): every seq <= durable_seq of
// the group is durable on the target.
std::string EncodeAck(Seq durable_seq);
Result<Seq> DecodeAck(std::string_view payload);

// ---- IMPORT --------------------------------------------------------------
// payload := volume:u16 reserved:u16(0) length_bytes:u32 offset_bytes:u64
//            data(length_bytes)
inline constexpr size_t kImportHeaderBytes = 16;

struct ImportChunk {
  uint16_t volume = 0;        // index into Hello::volumes
  uint64_t offset_bytes = 0;  // multiple of 512
  std::string_view data;      // multiple of 512 bytes; not owned
  friend bool operator==(const ImportChunk&, const ImportChunk&) = default;
};
std::string EncodeImport(const ImportChunk& chunk);
// data points into `payload`. kCorruption for truncation, trailing bytes,
// nonzero reserved bytes, or an offset or length not a multiple of 512.
Result<ImportChunk> DecodeImport(std::string_view payload);

// ---- HASH_REQUEST / HASHES -------------------------------------------------
// Before it resends dirty blocks (a resync from its bitmap), a tap whose
// target offers kFeatureBlockHashes asks for the hashes of those blocks as
// the target holds them at `seq`, and sends only the blocks that differ.
// payload := volume:u16 reserved:u16(0) count:u32 seq:u64 offset_bytes:u64
//            hash(16){count}   (HASHES only)
// A block's hash is the first 16 bytes of the SHA-256 of its block_bytes
// bytes (zero-filled past the volume's end).
inline constexpr size_t kBlockHashBytes = 16;
inline constexpr size_t kHashesHeaderBytes = 24;
inline constexpr uint32_t kMaxHashBlocks = 1u << 16;  // per request
inline constexpr std::string_view kFeatureBlockHashes = "block_hashes";
struct BlockHashes {
  uint16_t volume = 0;        // index into Hello::volumes
  uint32_t count = 0;         // blocks, 1 to kMaxHashBlocks
  Seq seq = 0;                // the point the hashes are of
  uint64_t offset_bytes = 0;  // a multiple of the volume's block size
  std::string hashes;         // count * kBlockHashBytes (HASHES); empty (HASH_REQUEST)
  friend bool operator==(const BlockHashes&, const BlockHashes&) = default;
};
std::string EncodeBlockHashes(const BlockHashes& m);
// kCorruption for truncation, nonzero reserved bytes, a count of 0 or above
// kMaxHashBlocks, an offset not a multiple of 512, or hash bytes that are
// not exactly count * kBlockHashBytes (with_hashes) or not empty.
Result<BlockHashes> DecodeBlockHashes(std::string_view payload, bool with_hashes);

// ---- JSON messages (wire_messages.cc) ------------------------------------
// Each is one JSON object with exactly the fields below (keys sorted, no
// spaces, so encodings are deterministic). Strings must be UTF-8: encoders
// replace invalid bytes with U+FFFD. Seqs and times are JSON integers that
// must be read exactly as 64-bit values. Decoders ignore unknown fields and
// return kCorruption ("HELLO: field 'tenant' is missing") for invalid JSON,
// a non-object, or a missing, mistyped or out-of-range field.

struct VolumeSpec {
  std::string name;
  uint64_t size_bytes = 0;
  uint32_t block_bytes = 4096;
  friend bool operator==(const VolumeSpec&, const VolumeSpec&) = default;
};
struct Hello {
  uint32_t protocol = kProtocolVersion;
  std::string tenant;
  std::string token;                // the tenant's secret; never logged
  std::string group;                // consistency group; empty: the one volume's own
  std::string tap_id;               // identifies the tap across reconnects
  std::vector<VolumeSpec> volumes;  // a WriteEntry's volume indexes this
  friend bool operator==(const Hello&, const Hello&) = default;
};
std::string EncodeHello(const Hello& m);
Result<Hello> DecodeHello(std::string_view payload);

// VolumeState::state values.
inline constexpr std::string_view kStateNew = "new";
inline constexpr std::string_view kStateImporting = "importing";
inline constexpr std::string_view kStateReady = "ready";
struct VolumeState {
  std::string name;
  std::string state;                // kStateNew, kStateImporting or kStateReady
  uint64_t import_next_offset = 0;  // import data below it is durable
  friend bool operator==(const VolumeState&, const VolumeState&) = default;
};
struct Welcome {
  uint32_t protocol = kProtocolVersion;
  Seq durable_seq = kNoSeq;          // kNoSeq (JSON null): nothing durable yet
  std::vector<VolumeState> volumes;  // in Hello::volumes order
  // Optional requests the target answers (kFeatureBlockHashes); sent only
  // when not empty, read as empty when absent.
  std::vector<std::string> features;
  friend bool operator==(const Welcome&, const Welcome&) = default;
};
std::string EncodeWelcome(const Welcome& m);
Result<Welcome> DecodeWelcome(std::string_view payload);

// BOOKMARK names the newest seq sent before it; BOOKMARK_DONE echoes it once
// that seq and the bookmark are durable.
struct Bookmark {
  std::string name;
  Seq seq = 0;
  TimeNs time_ns = 0;
  friend bool operator==(const Bookmark&, const Bookmark&) = default;
};
std::string EncodeBookmark(const Bookmark& m);
Result<Bookmark> DecodeBookmark(std::string_view payload);
struct BookmarkDone {
  std::string name;
  Seq seq = 0;
  TimeNs time_ns = 0;
  friend bool operator==(const BookmarkDone&, const BookmarkDone&) = default;
};
std::string EncodeBookmarkDone(const BookmarkDone& m);
Result<BookmarkDone> DecodeBookmarkDone(std::string_view payload);

// Error::code values. A reader treats a code it does not know as "internal".
inline constexpr std::string_view kErrUnauthenticated = "unauthenticated";
inline constexpr std::string_view kErrForbidden = "forbidden";
inline constexpr std::string_view kErrInvalid = "invalid";
inline constexpr std::string_view kErrNoSpace = "no_space";
inline constexpr std::string_view kErrConflict = "conflict";
inline constexpr std::string_view kErrInternal = "internal";
inline constexpr std::string_view kErrUnsupportedVersion = "unsupported_version";
struct Error {
  std::string code;
  std::string message;  // for people; never parsed
  friend bool operator==(const Error&, const Error&) = default;
};
std::string EncodeError(const Error& m);
Result<Error> DecodeError(std::string_view payload);

// The initial sync of a volume is complete: its content becomes seq 0.
struct ImportDone {
  uint16_t volume = 0;  // index into Hello::volumes
  TimeNs time_ns = 0;   // the time of seq 0
  friend bool operator==(const ImportDone&, const ImportDone&) = default;
};
std::string EncodeImportDone(const ImportDone& m);
Result<ImportDone> DecodeImportDone(std::string_view payload);

// Begins (begin = true) or ends an interval of writes sent out of order
// (bitmap resync, decision 6); no point inside it is offered for recovery.
// seq and time_ns: the newest seq sent before the frame, and its time.
struct Unordered {
  bool begin = true;
  Seq seq = 0;
  TimeNs time_ns = 0;
  friend bool operator==(const Unordered&, const Unordered&) = default;
};
std::string EncodeUnordered(const Unordered& m);
Result<Unordered> DecodeUnordered(std::string_view payload);

}  // namespace tidemark::wire
