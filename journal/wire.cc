// Frames, the frame reader and the binary payloads (WRITES, ACK, IMPORT) of
// docs/protocol.md. JSON payloads are in wire_messages.cc.
#include "tidemark/journal/wire.h"

#include <algorithm>
#include <cstdio>

#include "coding.h"
#include "tidemark/journal/codec.h"
#include "tidemark/journal/crc32c.h"

namespace tidemark::wire {

using journal::coding::GetLE;
using journal::coding::PutLE;

namespace {

std::string Num(uint64_t v) { return std::to_string(v); }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

uint32_t FrameCrc(std::string_view header, std::string_view payload) {
  return Crc32cExtend(Crc32c(header.data(), kFrameHeaderBytes), payload.data(), payload.size());
}

}  // namespace

// ---- frames --------------------------------------------------------------

std::string_view FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kHello: return "HELLO";
    case FrameType::kWelcome: return "WELCOME";
    case FrameType::kWrites: return "WRITES";
    case FrameType::kAck: return "ACK";
    case FrameType::kBookmark: return "BOOKMARK";
    case FrameType::kBookmarkDone: return "BOOKMARK_DONE";
    case FrameType::kError: return "ERROR";
    case FrameType::kImport: return "IMPORT";
    case FrameType::kImportDone: return "IMPORT_DONE";
    case FrameType::kPing: return "PING";
    case FrameType::kPong: return "PONG";
    case FrameType::kUnordered: return "UNORDERED";
    case FrameType::kHashRequest: return "HASH_REQUEST";
    case FrameType::kHashes: return "HASHES";
  }
  return "unknown";
}

bool IsKnownFrameType(FrameType type) { return FrameTypeName(type) != "unknown"; }

void AppendFrame(std::string* out, FrameType type, std::string_view payload, bool try_compress) {
  TM_CHECK(payload.size() <= kMaxPayloadBytes);
  std::string packed;
  bool zstd = try_compress && !payload.empty() && Compress(Codec::kZstd, payload, &packed);
  std::string_view sent = zstd ? std::string_view(packed) : payload;
  const size_t start = out->size();
  out->reserve(start + kFrameHeaderBytes + sent.size() + kFrameTrailerBytes);
  PutLE(out, kFrameMagic, 4);
  PutLE(out, static_cast<uint8_t>(type), 1);
  PutLE(out, zstd ? kFrameZstd : 0, 1);
  PutLE(out, 0, 2);
  PutLE(out, sent.size(), 4);
  PutLE(out, payload.size(), 4);
  out->append(sent);
  PutLE(out, FrameCrc(std::string_view(*out).substr(start), sent), 4);
}

std::string EncodeFrame(FrameType type, std::string_view payload, bool try_compress) {
  std::string out;
  AppendFrame(&out, type, payload, try_compress);
  return out;
}

Result<FrameHeader> DecodeFrameHeader(std::string_view header) {
  if (header.size() < kFrameHeaderBytes) {
    return Status::Corruption("frame header truncated at " + Num(header.size()) + " bytes");
  }
  const char* p = header.data();
  uint32_t magic = static_cast<uint32_t>(GetLE(p, 4));
  if (magic != kFrameMagic) return Status::Corruption("bad frame magic " + Hex(magic));
  FrameHeader h;
  uint8_t type = static_cast<uint8_t>(p[4]);
  h.type = static_cast<FrameType>(type);
  h.flags = static_cast<uint8_t>(p[5]);
  uint32_t reserved = static_cast<uint32_t>(GetLE(p + 6, 2));
  h.length = static_cast<uint32_t>(GetLE(p + 8, 4));
  h.raw_length = static_cast<uint32_t>(GetLE(p + 12, 4));
  if (!IsKnownFrameType(h.type) && !(type & kTypeSkippable)) {
    return Status::Corruption("unknown frame type " + Num(type));
  }
  if (h.flags & ~kFrameZstd) return Status::Corruption("unknown frame flags " + Hex(h.flags));
  if (reserved != 0) return Status::Corruption("nonzero reserved frame bytes " + Hex(reserved));
  if (h.length > kMaxPayloadBytes || h.raw_length > kMaxPayloadBytes) {
    return Status::Corruption("frame payload of " + Num(std::max(h.length, h.raw_length)) +
                              " bytes exceeds the cap of " + Num(kMaxPayloadBytes));
  }
  if (!h.compressed() && h.raw_length != h.length) {
    return Status::Corruption("uncompressed frame with length " + Num(h.length) +
                              " != raw length " + Num(h.raw_length));
  }
  if ((h.type == FrameType::kPing || h.type == FrameType::kPong) && h.raw_length != 0) {
    return Status::Corruption(std::string(FrameTypeName(h.type)) + " frame with a payload");
  }
  return h;
}

Result<std::string> DecodeFramePayload(const FrameHeader& h, std::string_view header,
                                       std::string_view payload, uint32_t crc) {
  if (header.size() < kFrameHeaderBytes || payload.size() != h.length) {
    return Status::Corruption("frame payload of " + Num(payload.size()) + " bytes, header says " +
                              Num(h.length));
  }
  if (FrameCrc(header, payload) != crc) {
    return Status::Corruption(std::string(FrameTypeName(h.type)) + " frame CRC mismatch");
  }
  if (!h.compressed()) return std::string(payload);
  std::string raw(h.raw_length, '\0');
  Status s = Decompress(Codec::kZstd, payload, raw.data(), raw.size());
  if (!s.ok()) return s.Annotate(std::string(FrameTypeName(h.type)) + " frame");
  return raw;
}

Result<Frame> DecodeFrame(std::string_view frame) {
  BOOST_OUTCOME_TRY(h, DecodeFrameHeader(frame));
  if (frame.size() != h.frame_bytes()) {
    return Status::Corruption("frame of " + Num(frame.size()) + " bytes, header says " +
                              Num(h.frame_bytes()));
  }
  uint32_t crc = static_cast<uint32_t>(GetLE(frame.data() + kFrameHeaderBytes + h.length, 4));
  BOOST_OUTCOME_TRY(payload,
                    DecodeFramePayload(h, frame, frame.substr(kFrameHeaderBytes, h.length), crc));
  return Frame{h.type, std::move(payload)};
}

// ---- FrameReader ---------------------------------------------------------

void FrameReader::Feed(std::string_view bytes) {
  // Drop consumed bytes once they are most of the buffer, so the buffer stays
  // near one frame in size without moving bytes on every frame.
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 4096 && pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<Frame>> FrameReader::Next() {
  while (!error_) {
    std::string_view avail = std::string_view(buf_).substr(pos_);
    if (avail.size() < kFrameHeaderBytes) return std::optional<Frame>();
    auto header = DecodeFrameHeader(avail);
    Status s;
    if (header) {
      const FrameHeader& h = header.value();
      if (avail.size() < h.frame_bytes()) return std::optional<Frame>();
      std::string_view payload = avail.substr(kFrameHeaderBytes, h.length);
      uint32_t crc = static_cast<uint32_t>(GetLE(payload.data() + h.length, 4));
      if (!IsKnownFrameType(h.type)) {
        // An optional frame this build does not know: checked, then dropped.
        if (FrameCrc(avail, payload) == crc) {
          pos_ += h.frame_bytes();
          consumed_ += h.frame_bytes();
          ++frames_;
          ++skipped_;
          continue;
        }
        s = Status::Corruption("skippable frame CRC mismatch");
      } else {
        auto raw = DecodeFramePayload(h, avail, payload, crc);
        if (raw) {
          pos_ += h.frame_bytes();
          consumed_ += h.frame_bytes();
          ++frames_;
          return std::optional<Frame>(Frame{h.type, std::move(raw).value()});
        }
        s = raw.error();
      }
    } else {
      s = header.error();
    }
    error_ = s.Annotate("frame " + Num(frames_) + " at stream byte " + Num(consumed_));
  }
  return *error_;
}

// ---- WRITES --------------------------------------------------------------

std::string_view EntryOpName(EntryOp op) {
  switch (op) {
    case EntryOp::kWrite: return "write";
    case EntryOp::kTrim: return "trim";
    case EntryOp::kWriteZeroes: return "write_zeroes";
    case EntryOp::kFlush: return "flush";
  }
  return "unknown";
}

static_assert(static_cast<uint8_t>(EntryOp::kWrite) == static_cast<uint8_t>(OpKind::kWrite));
static_assert(static_cast<uint8_t>(EntryOp::kTrim) == static_cast<uint8_t>(OpKind::kTrim));
static_assert(static_cast<uint8_t>(EntryOp::kWriteZeroes) ==
              static_cast<uint8_t>(OpKind::kWriteZeroes));

WriteEntry ToWriteEntry(uint16_t volume, const WriteOp& op) {
  TM_CHECK(op.op == OpKind::kWrite || op.op == OpKind::kTrim || op.op == OpKind::kWriteZeroes);
  TM_CHECK(op.length_bytes <= UINT32_MAX);
  return WriteEntry{op.seq,
                    op.time_ns,
                    volume,
                    static_cast<EntryOp>(op.op),
                    op.flags,
                    op.offset_bytes,
                    static_cast<uint32_t>(op.length_bytes),
                    op.op == OpKind::kWrite ? op.data : std::string_view()};
}

WriteOp ToWriteOp(const WriteEntry& e) {
  TM_CHECK(e.op != EntryOp::kFlush);
  WriteOp op;
  op.seq = e.seq;
  op.time_ns = e.time_ns;
  op.op = static_cast<OpKind>(e.op);
  op.offset_bytes = e.offset_bytes;
  op.length_bytes = e.length_bytes;
  op.data = e.data;
  op.flags = e.flags;
  return op;
}

void AppendWriteEntry(std::string* payload, const WriteEntry& e) {
  TM_CHECK(e.op != EntryOp::kWrite || e.data.size() == e.length_bytes);
  PutLE(payload, e.seq, 8);
  PutLE(payload, static_cast<uint64_t>(e.time_ns), 8);
  PutLE(payload, e.volume, 2);
  PutLE(payload, static_cast<uint8_t>(e.op), 1);
  PutLE(payload, e.flags, 1);
  PutLE(payload, e.offset_bytes, 8);
  PutLE(payload, e.length_bytes, 4);
  if (e.op == EntryOp::kWrite) payload->append(e.data);
}

void WritesEncoder::Reset() {
  payload_.clear();
  PutLE(&payload_, 0, 4);
  count_ = 0;
}

void WritesEncoder::Add(const WriteEntry& entry) {
  AppendWriteEntry(&payload_, entry);
  ++count_;
}

std::string WritesEncoder::Finish() {
  for (int i = 0; i < 4; ++i) payload_[i] = static_cast<char>((count_ >> (8 * i)) & 0xff);
  std::string out = std::move(payload_);
  Reset();
  return out;
}

Result<std::vector<WriteEntry>> DecodeWrites(std::string_view payload) {
  journal::coding::Reader r(payload);
  uint64_t count = r.LE(4);
  if (r.failed()) return Status::Corruption("WRITES payload shorter than its count");
  // Every entry takes at least its header: bound count before allocating.
  if (count > r.left() / kWriteEntryHeaderBytes) {
    return Status::Corruption("WRITES count " + Num(count) + " does not fit in " + Num(r.left()) +
                              " bytes");
  }
  std::vector<WriteEntry> out;
  out.reserve(count);
  std::optional<Seq> last_data;
  for (uint64_t i = 0; i < count; ++i) {
    auto bad = [&](const std::string& what) {
      return Status::Corruption("WRITES entry " + Num(i) + ": " + what);
    };
    WriteEntry e;
    e.seq = r.LE(8);
    e.time_ns = static_cast<TimeNs>(r.LE(8));
    e.volume = static_cast<uint16_t>(r.LE(2));
    uint8_t op = static_cast<uint8_t>(r.LE(1));
    e.op = static_cast<EntryOp>(op);
    e.flags = static_cast<uint8_t>(r.LE(1));
    e.offset_bytes = r.LE(8);
    e.length_bytes = static_cast<uint32_t>(r.LE(4));
    if (r.failed()) return bad("truncated header");
    if (EntryOpName(e.op) == "unknown") return bad("unknown op " + Num(op));
    if (e.op == EntryOp::kFlush) {
      if (e.offset_bytes != 0 || e.length_bytes != 0 || e.flags != 0) {
        return bad("flush with an offset, length or flags");
      }
      if (last_data && e.seq < *last_data) {
        return bad("flush seq " + Num(e.seq) + " below the previous write's " + Num(*last_data));
      }
    } else {
      if (e.flags & ~kSeqFua) return bad("unknown flags " + Hex(e.flags));
      if (e.offset_bytes % kSectorBytes != 0 || e.length_bytes % kSectorBytes != 0) {
        return bad("offset " + Num(e.offset_bytes) + " or length " + Num(e.length_bytes) +
                   " not a multiple of 512");
      }
      if (last_data && e.seq <= *last_data) {
        return bad("seq " + Num(e.seq) + " not above the previous write's " + Num(*last_data));
      }
      last_data = e.seq;
      if (e.op == EntryOp::kWrite) {
        e.data = r.Bytes(e.length_bytes);
        if (r.failed()) return bad("data truncated");
      }
    }
    out.push_back(e);
  }
  if (!r.done()) {
    return Status::Corruption("WRITES payload has " + Num(r.left()) + " trailing bytes after " +
                              Num(count) + " entries");
  }
  return out;
}

// ---- ACK -----------------------------------------------------------------

std::string EncodeAck(Seq durable_seq) {
  std::string p;
  PutLE(&p, durable_seq, 8);
  return p;
}

Result<Seq> DecodeAck(std::string_view payload) {
  if (payload.size() != 8) {
    return Status::Corruption("ACK payload of " + Num(payload.size()) + " bytes, expected 8");
  }
  return GetLE(payload.data(), 8);
}

// ---- IMPORT --------------------------------------------------------------

std::string EncodeImport(const ImportChunk& c) {
  std::string p;
  p.reserve(kImportHeaderBytes + c.data.size());
  PutLE(&p, c.volume, 2);
  PutLE(&p, 0, 2);
  PutLE(&p, c.data.size(), 4);
  PutLE(&p, c.offset_bytes, 8);
  p.append(c.data);
  return p;
}

std::string EncodeBlockHashes(const BlockHashes& m) {
  std::string p;
  p.reserve(kHashesHeaderBytes + m.hashes.size());
  PutLE(&p, m.volume, 2);
  PutLE(&p, 0, 2);
  PutLE(&p, m.count, 4);
  PutLE(&p, m.seq, 8);
  PutLE(&p, m.offset_bytes, 8);
  p.append(m.hashes);
  return p;
}

Result<BlockHashes> DecodeBlockHashes(std::string_view payload, bool with_hashes) {
  const char* what = with_hashes ? "HASHES" : "HASH_REQUEST";
  journal::coding::Reader r(payload);
  BlockHashes m;
  m.volume = static_cast<uint16_t>(r.LE(2));
  uint64_t reserved = r.LE(2);
  m.count = static_cast<uint32_t>(r.LE(4));
  m.seq = r.LE(8);
  m.offset_bytes = r.LE(8);
  if (r.failed()) return Status::Corruption(std::string(what) + " payload shorter than its header");
  if (reserved != 0) return Status::Corruption(std::string(what) + " reserved bytes " + Hex(reserved));
  if (m.count == 0 || m.count > kMaxHashBlocks) {
    return Status::Corruption(std::string(what) + " count " + Num(m.count));
  }
  if (m.offset_bytes % kSectorBytes != 0) {
    return Status::Corruption(std::string(what) + " offset " + Num(m.offset_bytes) +
                              " not a multiple of 512");
  }
  const uint64_t want = with_hashes ? uint64_t{m.count} * kBlockHashBytes : 0;
  if (r.left() != want) {
    return Status::Corruption(std::string(what) + ": " + Num(r.left()) + " hash bytes for " +
                              Num(m.count) + " blocks");
  }
  m.hashes = std::string(r.Bytes(want));
  return m;
}

Result<ImportChunk> DecodeImport(std::string_view payload) {
  journal::coding::Reader r(payload);
  ImportChunk c;
  c.volume = static_cast<uint16_t>(r.LE(2));
  uint64_t reserved = r.LE(2);
  uint64_t length = r.LE(4);
  c.offset_bytes = r.LE(8);
  if (r.failed()) return Status::Corruption("IMPORT payload shorter than its header");
  if (reserved != 0) return Status::Corruption("IMPORT reserved bytes " + Hex(reserved));
  if (length != r.left()) {
    return Status::Corruption("IMPORT length " + Num(length) + " but " + Num(r.left()) +
                              " data bytes");
  }
  if (length % kSectorBytes != 0 || c.offset_bytes % kSectorBytes != 0) {
    return Status::Corruption("IMPORT offset " + Num(c.offset_bytes) + " or length " + Num(length) +
                              " not a multiple of 512");
  }
  c.data = r.Bytes(length);
  return c;
}

}  // namespace tidemark::wire
