// Segment files of journal format 2: the encoding of segment headers and
// records (docs/format-journal.md). The append-only log: segment_log.cc.
#include "tidemark/journal/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "coding.h"
#include "tidemark/journal/files.h"
#include "tidemark/journal/crc32c.h"

namespace tidemark::journal::seg {

namespace {

using coding::GetLE;
using coding::PutLE;

constexpr char kSegmentMagic[8] = {'T', 'M', 'S', 'E', 'G', 0, 0, 2};

void SetLE(std::string* s, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) (*s)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t RecordCrc(std::string_view header, std::string_view covered) {
  return Crc32cExtend(Crc32c(header.data(), 24), covered.data(), covered.size());
}

void EncodeHeaderInto(std::string* out, size_t at, const RecordHeader& h) {
  SetLE(out, at + 0, kRecordMagic, 4);
  (*out)[at + 4] = static_cast<char>(h.kind);
  (*out)[at + 5] = static_cast<char>(h.flags);
  SetLE(out, at + 6, 0, 2);
  SetLE(out, at + 8, h.length, 4);
  SetLE(out, at + 12, h.volume, 4);
  SetLE(out, at + 16, h.seq, 8);
  SetLE(out, at + 24, h.crc, 4);
  SetLE(out, at + 28, h.pad, 4);
}

}  // namespace

std::string_view KindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kData: return "data";
    case RecordKind::kRange: return "range";
    case RecordKind::kFlush: return "flush";
    case RecordKind::kBookmark: return "bookmark";
    case RecordKind::kUnordered: return "unordered";
    case RecordKind::kCheckpoint: return "checkpoint";
    case RecordKind::kImport: return "import";
    case RecordKind::kIndexCheckpoint: return "index-checkpoint";
    case RecordKind::kRelocated: return "relocated";
  }
  return "unknown";
}

std::string EncodeSegmentHeader(const SegmentHeader& h) {
  std::string s(kSegmentMagic, sizeof kSegmentMagic);
  PutLE(&s, h.version, 4);
  PutLE(&s, h.space, 4);
  s.append(reinterpret_cast<const char*>(h.uuid.data()), h.uuid.size());
  PutLE(&s, h.number, 8);
  PutLE(&s, h.first_seq, 8);
  PutLE(&s, static_cast<uint64_t>(h.created_ns), 8);
  PutLE(&s, 0, 4);
  PutLE(&s, Crc32c(s.data(), s.size()), 4);
  return s;
}

Result<SegmentHeader> DecodeSegmentHeader(std::string_view in) {
  if (in.size() < kSegmentHeaderBytes) {
    return Status::Corruption("segment header is " + std::to_string(in.size()) +
                              " bytes, not 64");
  }
  if (std::memcmp(in.data(), kSegmentMagic, 5) != 0) {
    return Status::Corruption("not a segment file (bad magic)");
  }
  if (Crc32c(in.data(), 60) != static_cast<uint32_t>(GetLE(in.data() + 60, 4))) {
    return Status::Corruption("segment header fails its CRC");
  }
  SegmentHeader h;
  h.version = static_cast<uint32_t>(GetLE(in.data() + 8, 4));
  if (h.version != kSegmentVersion) {
    return Status::NotSupported("segment format version " + std::to_string(h.version) +
                                " (this build reads " + std::to_string(kSegmentVersion) + ")");
  }
  h.space = static_cast<uint32_t>(GetLE(in.data() + 12, 4));
  std::memcpy(h.uuid.data(), in.data() + 16, 16);
  h.number = GetLE(in.data() + 32, 8);
  h.first_seq = GetLE(in.data() + 40, 8);
  h.created_ns = static_cast<TimeNs>(GetLE(in.data() + 48, 8));
  return h;
}

Result<RecordHeader> DecodeRecordHeader(std::string_view in) {
  if (in.size() < kRecordHeaderBytes) return Status::Corruption("short record header");
  if (GetLE(in.data(), 4) != kRecordMagic) return Status::Corruption("no record magic");
  RecordHeader h;
  h.kind = static_cast<RecordKind>(static_cast<uint8_t>(in[4]));
  h.flags = static_cast<uint8_t>(in[5]);
  h.length = static_cast<uint32_t>(GetLE(in.data() + 8, 4));
  h.volume = static_cast<uint32_t>(GetLE(in.data() + 12, 4));
  h.seq = GetLE(in.data() + 16, 8);
  h.crc = static_cast<uint32_t>(GetLE(in.data() + 24, 4));
  h.pad = static_cast<uint32_t>(GetLE(in.data() + 28, 4));
  if (h.length > kMaxRecordBody) {
    return Status::Corruption("record length " + std::to_string(h.length) + " out of range");
  }
  if (h.pad >= kPadAlign) {
    return Status::Corruption("record padding " + std::to_string(h.pad) + " out of range");
  }
  return h;
}

namespace {
uint64_t ChunkBytesOf(const DataHeader& d) {
  return std::max<uint64_t>(uint64_t{1} << d.chunk_log2, d.block_bytes);
}
}  // namespace

size_t ChunkCount(const DataIn& in) {
  const DataHeader& d = in.header;
  const uint64_t len = in.zeros ? d.length_bytes : in.data.size();
  if (len == 0 || d.block_bytes == 0 || d.chunk_log2 < 9 || d.chunk_log2 > 24) return 0;
  const uint64_t chunk = ChunkBytesOf(d);
  return (d.offset_bytes + len - 1) / chunk - d.offset_bytes / chunk + 1;
}

void PackChunks(const DataIn& in, size_t from, size_t to, std::vector<PackedChunk>* packed) {
  if (in.zeros || in.codec == Codec::kNone) return;
  const DataHeader& d = in.header;
  const uint64_t chunk = ChunkBytesOf(d), end_all = d.offset_bytes + in.data.size();
  for (size_t k = from; k < to; ++k) {
    const uint64_t start = std::max(d.offset_bytes, (d.offset_bytes / chunk + k) * chunk);
    const uint64_t end = std::min((d.offset_bytes / chunk + k + 1) * chunk, end_all);
    PackedChunk& p = (*packed)[k];
    p.codec = Codec::kNone;
    if (start >= end) continue;
    if (Compress(in.codec, in.data.substr(start - d.offset_bytes, end - start), &p.bytes)) {
      p.codec = in.codec;
    } else {
      p.bytes.clear();
    }
  }
}

Status EncodeData(const DataIn& in, std::string* out, std::vector<ChunkDesc>* chunks,
                  const std::vector<PackedChunk>* packed) {
  const DataHeader& d = in.header;
  const uint64_t len = in.zeros ? d.length_bytes : in.data.size();
  if (len == 0) return Status::InvalidArgument("empty data record");
  if (d.block_bytes == 0 || d.offset_bytes % d.block_bytes != 0 || len % d.block_bytes != 0) {
    return Status::InvalidArgument("a data record holds whole blocks");
  }
  if (d.chunk_log2 < 9 || d.chunk_log2 > 24) {
    return Status::InvalidArgument("chunk size 2^" + std::to_string(d.chunk_log2) +
                                   " out of range (2^9 to 2^24)");
  }
  const uint64_t chunk = ChunkBytesOf(d);
  const uint64_t first = d.offset_bytes / chunk, last = (d.offset_bytes + len - 1) / chunk;
  const uint64_t n = last - first + 1;
  if (len + kDataHeaderBytes + n * kChunkDescBytes > kMaxRecordBody || n > 0xffff) {
    return Status::InvalidArgument("a data record of " + std::to_string(len) +
                                   " bytes is too long");
  }
  const size_t start = out->size();
  // One allocation for the record: growing a 1 MiB string chunk by chunk
  // reallocates and page-faults it a dozen times (measured in
  // bench/journal_format_bench's chunk rows: 40 % of the encode time).
  out->reserve(start + kRecordHeaderBytes + kDataHeaderBytes + n * kChunkDescBytes +
               (in.zeros ? 0 : len));
  out->resize(start + kRecordHeaderBytes);
  PutLE(out, static_cast<uint64_t>(d.time_ns), 8);
  PutLE(out, d.op, 1);
  PutLE(out, 0, 3);
  PutLE(out, d.offset_bytes, 8);
  PutLE(out, static_cast<uint32_t>(len), 4);
  PutLE(out, d.block_bytes, 4);
  PutLE(out, n, 2);
  PutLE(out, static_cast<uint8_t>(std::countr_zero(chunk)), 1);
  PutLE(out, 0, 1);
  PutLE(out, d.branch, 4);
  PutLE(out, d.head_skip_sectors, 2);
  PutLE(out, d.tail_skip_sectors, 2);
  const size_t descs = out->size();
  out->resize(descs + n * kChunkDescBytes);
  chunks->clear();
  chunks->reserve(n);
  if (packed != nullptr && packed->size() != n) {
    return Status::InvalidArgument("internal error: " + std::to_string(packed->size()) +
                                   " packed chunks for a record of " + std::to_string(n));
  }
  std::string scratch;
  for (uint64_t off = d.offset_bytes; off < d.offset_bytes + len;) {
    const uint64_t end = std::min((off / chunk + 1) * chunk, d.offset_bytes + len);
    ChunkDesc c;
    c.volume_offset = off;
    c.raw_len = static_cast<uint32_t>(end - off);
    c.payload_offset = static_cast<uint32_t>(out->size() - start);
    if (in.zeros) {
      c.flags = kChunkZero;
      c.crc = Crc32c("", 0);
      chunks->push_back(c);
      off = end;
      continue;
    }
    std::string_view raw = in.data.substr(off - d.offset_bytes, end - off);
    std::string_view stored = raw;
    if (packed != nullptr) {
      const PackedChunk& p = (*packed)[chunks->size()];
      if (p.codec != Codec::kNone) {
        c.codec = p.codec;
        stored = p.bytes;
      }
    } else if (in.codec != Codec::kNone && Compress(in.codec, raw, &scratch)) {
      c.codec = in.codec;
      stored = scratch;
    }
    c.stored_len = static_cast<uint32_t>(stored.size());
    c.crc = Crc32c(stored);
    out->append(stored);
    chunks->push_back(c);
    off = end;
  }
  for (size_t i = 0; i < chunks->size(); ++i) {
    const ChunkDesc& c = (*chunks)[i];
    const size_t at = descs + i * kChunkDescBytes;
    SetLE(out, at, c.volume_offset, 8);
    SetLE(out, at + 8, c.raw_len, 4);
    SetLE(out, at + 12, c.stored_len, 4);
    (*out)[at + 16] = static_cast<char>(c.codec);
    (*out)[at + 17] = static_cast<char>(c.enc);
    (*out)[at + 18] = static_cast<char>(c.flags);
    (*out)[at + 19] = 0;
    SetLE(out, at + 20, c.crc, 4);
    SetLE(out, at + 24, c.payload_offset, 4);
    std::memcpy(out->data() + at + 28, c.nonce.data(), c.nonce.size());
    SetLE(out, at + 40, 0, 8);  // tag (reserved), reserved
  }
  RecordHeader h;
  h.kind = RecordKind::kData;
  h.flags = in.flags;
  h.length = static_cast<uint32_t>(out->size() - start - kRecordHeaderBytes);
  h.volume = in.volume;
  h.seq = in.seq;
  EncodeHeaderInto(out, start, h);
  std::string_view rec(out->data() + start, out->size() - start);
  h.crc = RecordCrc(rec, rec.substr(kRecordHeaderBytes, kDataHeaderBytes + n * kChunkDescBytes));
  SetLE(out, start + 24, h.crc, 4);
  return Status::Ok();
}

void EncodeRecord(RecordKind kind, uint8_t flags, uint32_t volume, Seq seq, std::string_view body,
                  std::string* out) {
  const size_t start = out->size();
  RecordHeader h;
  h.kind = kind;
  h.flags = flags;
  h.length = static_cast<uint32_t>(body.size());
  h.volume = volume;
  h.seq = seq;
  out->resize(start + kRecordHeaderBytes);
  EncodeHeaderInto(out, start, h);
  out->append(body);
  h.crc = RecordCrc(std::string_view(out->data() + start, kRecordHeaderBytes), body);
  SetLE(out, start + 24, h.crc, 4);
}

std::string EncodeRangeBody(const RangeBody& b) {
  std::string out;
  PutLE(&out, b.op, 1);
  PutLE(&out, static_cast<uint64_t>(b.time_ns), 8);
  PutLE(&out, b.first_block, 8);
  PutLE(&out, b.block_count, 8);
  return out;
}

Result<RangeBody> DecodeRangeBody(std::string_view body) {
  if (body.size() != kRangeBodyBytes) {
    return Status::Corruption("range record of " + std::to_string(body.size()) + " bytes");
  }
  RangeBody b;
  b.op = static_cast<uint8_t>(body[0]);
  b.time_ns = static_cast<TimeNs>(GetLE(body.data() + 1, 8));
  b.first_block = GetLE(body.data() + 9, 8);
  b.block_count = GetLE(body.data() + 17, 8);
  if (b.op != kOpTrim && b.op != kOpWriteZeroes) {
    return Status::Corruption("range record of op " + std::to_string(b.op));
  }
  return b;
}

std::string EncodeImportBody(const ImportBody& b) {
  std::string out;
  PutLE(&out, b.what, 1);
  PutLE(&out, static_cast<uint64_t>(b.time_ns), 8);
  return out;
}

Result<ImportBody> DecodeImportBody(std::string_view body) {
  if (body.size() != 9) {
    return Status::Corruption("import record of " + std::to_string(body.size()) + " bytes");
  }
  ImportBody b;
  b.what = static_cast<uint8_t>(body[0]);
  b.time_ns = static_cast<TimeNs>(GetLE(body.data() + 1, 8));
  if (b.what != kImportEnd && b.what != kImportAbandoned) {
    return Status::Corruption("import record of kind " + std::to_string(b.what));
  }
  return b;
}

std::string EncodeBookmarkBody(const BookmarkBody& b) {
  std::string out;
  PutLE(&out, static_cast<uint64_t>(b.time_ns), 8);
  PutLE(&out, b.name.size(), 2);
  out.append(b.name);
  return out;
}

Result<BookmarkBody> DecodeBookmarkBody(std::string_view body) {
  if (body.size() < 10 || body.size() != 10 + GetLE(body.data() + 8, 2)) {
    return Status::Corruption("bookmark record of " + std::to_string(body.size()) + " bytes");
  }
  BookmarkBody b;
  b.time_ns = static_cast<TimeNs>(GetLE(body.data(), 8));
  b.name.assign(body.substr(10));
  if (b.name.empty()) return Status::Corruption("bookmark record without a name");
  return b;
}

std::string EncodeUnorderedBody(const UnorderedBody& b) {
  std::string out;
  PutLE(&out, b.what, 1);
  PutLE(&out, static_cast<uint64_t>(b.time_ns), 8);
  PutLE(&out, b.upto, 8);
  return out;
}

Result<UnorderedBody> DecodeUnorderedBody(std::string_view body) {
  if (body.size() != kUnorderedBodyBytes) {
    return Status::Corruption("unordered record of " + std::to_string(body.size()) + " bytes");
  }
  UnorderedBody b;
  b.what = static_cast<uint8_t>(body[0]);
  b.time_ns = static_cast<TimeNs>(GetLE(body.data() + 1, 8));
  b.upto = GetLE(body.data() + 9, 8);
  if (b.what != kUnorderedBegin && b.what != kUnorderedEnd) {
    return Status::Corruption("unordered record of kind " + std::to_string(b.what));
  }
  if ((b.what == kUnorderedBegin) != (b.upto == kNoSeq)) {
    return Status::Corruption("unordered record whose end does not match its kind");
  }
  return b;
}

std::string EncodeCheckpointBody(TimeNs time_ns) { return EncodeFlushBody(time_ns); }

Result<TimeNs> DecodeCheckpointBody(std::string_view body) {
  if (body.size() != 8) {
    return Status::Corruption("checkpoint record of " + std::to_string(body.size()) + " bytes");
  }
  return static_cast<TimeNs>(GetLE(body.data(), 8));
}

std::string EncodeFlushBody(TimeNs time_ns) {
  std::string out;
  PutLE(&out, static_cast<uint64_t>(time_ns), 8);
  return out;
}

Result<TimeNs> DecodeFlushBody(std::string_view body) {
  if (body.size() != 8) {
    return Status::Corruption("flush record of " + std::to_string(body.size()) + " bytes");
  }
  return static_cast<TimeNs>(GetLE(body.data(), 8));
}

void PadRecord(std::string* out, size_t record_start, uint32_t n) {
  const uint32_t pad = static_cast<uint32_t>(GetLE(out->data() + record_start + 28, 4)) + n;
  SetLE(out, record_start + 28, pad, 4);
  out->append(n, '\0');
}

Result<Record> DecodeRecord(std::string_view in) {
  BOOST_OUTCOME_TRY(h, DecodeRecordHeader(in));
  if (in.size() < kRecordHeaderBytes + uint64_t{h.length}) {
    return Status::Corruption("record of " + std::to_string(h.length) + " bytes is cut short");
  }
  Record r;
  r.header = h;
  r.body = in.substr(kRecordHeaderBytes, h.length);
  std::string_view covered = r.body;
  if (h.kind == RecordKind::kData) {
    if (h.length < kDataHeaderBytes) return Status::Corruption("data record without its header");
    const char* p = r.body.data();
    DataHeader& d = r.data;
    d.time_ns = static_cast<TimeNs>(GetLE(p, 8));
    d.op = static_cast<uint8_t>(p[8]);
    d.offset_bytes = GetLE(p + 12, 8);
    d.length_bytes = static_cast<uint32_t>(GetLE(p + 20, 4));
    d.block_bytes = static_cast<uint32_t>(GetLE(p + 24, 4));
    d.chunk_count = static_cast<uint16_t>(GetLE(p + 28, 2));
    d.chunk_log2 = static_cast<uint8_t>(p[30]);
    d.branch = static_cast<uint32_t>(GetLE(p + 32, 4));
    d.head_skip_sectors = static_cast<uint16_t>(GetLE(p + 36, 2));
    d.tail_skip_sectors = static_cast<uint16_t>(GetLE(p + 38, 2));
    const uint64_t meta = kDataHeaderBytes + uint64_t{d.chunk_count} * kChunkDescBytes;
    if (meta > h.length) return Status::Corruption("data record's chunk table is cut short");
    covered = r.body.substr(0, meta);
    if (RecordCrc(in, covered) != h.crc) return Status::Corruption("record fails its CRC");
    uint64_t raw_total = 0;
    for (uint16_t i = 0; i < d.chunk_count; ++i) {
      const char* q = p + kDataHeaderBytes + size_t{i} * kChunkDescBytes;
      ChunkDesc c;
      c.volume_offset = GetLE(q, 8);
      c.raw_len = static_cast<uint32_t>(GetLE(q + 8, 4));
      c.stored_len = static_cast<uint32_t>(GetLE(q + 12, 4));
      c.codec = static_cast<Codec>(static_cast<uint8_t>(q[16]));
      c.enc = static_cast<uint8_t>(q[17]);
      c.flags = static_cast<uint8_t>(q[18]);
      c.crc = static_cast<uint32_t>(GetLE(q + 20, 4));
      c.payload_offset = static_cast<uint32_t>(GetLE(q + 24, 4));
      std::memcpy(c.nonce.data(), q + 28, c.nonce.size());
      if (c.payload_offset < kRecordHeaderBytes + meta ||
          uint64_t{c.payload_offset} + c.stored_len > kRecordHeaderBytes + uint64_t{h.length}) {
        return Status::Corruption("chunk " + std::to_string(i) + " lies outside its record");
      }
      raw_total += c.raw_len;
      r.chunks.push_back(c);
    }
    if (raw_total != d.length_bytes) {
      return Status::Corruption("chunks hold " + std::to_string(raw_total) + " bytes, the record " +
                                std::to_string(d.length_bytes));
    }
    return r;
  }
  if (RecordCrc(in, covered) != h.crc) return Status::Corruption("record fails its CRC");
  return r;
}

Status VerifyChunk(const ChunkDesc& c, std::string_view stored) {
  if (stored.size() != c.stored_len) {
    return Status::Corruption("chunk at volume offset " + std::to_string(c.volume_offset) +
                              " is cut short");
  }
  if (Crc32c(stored) != c.crc) {
    return Status::Corruption("chunk at volume offset " + std::to_string(c.volume_offset) +
                              " fails its CRC");
  }
  if (c.enc != 0) return Status::NotSupported("encrypted chunks are not supported yet");
  if ((c.flags & kChunkZero) && c.stored_len != 0) {
    return Status::Corruption("zero chunk at volume offset " + std::to_string(c.volume_offset) +
                              " has a payload");
  }
  return Status::Ok();
}

Status ReadChunk(const ChunkDesc& c, std::string_view stored, char* out) {
  TM_RETURN_IF_ERROR(VerifyChunk(c, stored));
  if (c.flags & kChunkZero) {
    std::memset(out, 0, c.raw_len);
    return Status::Ok();
  }
  if (c.codec == Codec::kNone) {
    if (c.stored_len != c.raw_len) return Status::Corruption("plain chunk of the wrong length");
    std::memcpy(out, stored.data(), stored.size());
    return Status::Ok();
  }
  Status s = Decompress(c.codec, stored, out, c.raw_len);
  if (!s.ok()) return s.Annotate("chunk at volume offset " + std::to_string(c.volume_offset));
  return s;
}

}  // namespace tidemark::journal::seg
