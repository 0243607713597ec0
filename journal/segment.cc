// Segment files of journal format 2: encoding and the append-only log of one
// seq space (docs/format-journal.md).
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

std::string Hex(uint64_t v, int digits) {
  static const char* hex = "0123456789abcdef";
  std::string s(digits, '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[i] = hex[v & 15];
  return s;
}

// The CRC a record header carries: of its bytes 0..23 and of `covered`.
uint32_t RecordCrc(std::string_view header, std::string_view covered) {
  return Crc32cExtend(Crc32c(header.data(), 24), covered.data(), covered.size());
}

Status PreadAll(int fd, char* out, size_t n, uint64_t offset, size_t* got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = ::pread(fd, out + *got, n - *got, static_cast<off_t>(offset + *got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read");
    }
    if (r == 0) break;
    *got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, const char* p, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
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

// ---- SegmentLog --------------------------------------------------------------

SegmentLog::~SegmentLog() {
  if (fd_ >= 0) {
    Flush().IgnoreError();  // best effort: the journal flushed what it committed
    ::close(fd_);
  }
  for (int fd : unsynced_) ::close(fd);
  for (auto& [n, fd] : read_fds_) ::close(fd);
}

Result<std::unique_ptr<SegmentLog>> SegmentLog::Open(const std::string& journal_dir,
                                                     uint32_t space,
                                                     const std::array<uint8_t, 16>& uuid,
                                                     const LogOptions& options, bool create) {
  std::unique_ptr<SegmentLog> log(new SegmentLog());
  log->dir_ = journal_dir + "/segments/" + Hex(space, 8);
  log->space_ = space;
  log->uuid_ = uuid;
  log->options_ = options;
  std::error_code ec;
  if (create) {
    std::filesystem::create_directories(log->dir_, ec);
    if (ec) return Status::FromErrno(ec.value(), "create " + log->dir_);
  } else if (!std::filesystem::is_directory(log->dir_, ec)) {
    return Status::NotFound("no segments at " + log->dir_);
  }
  return log;
}

std::string SegmentLog::SegmentPath(uint64_t segment) const {
  return dir_ + "/" + Hex(segment, 16) + ".seg";
}

std::vector<uint64_t> SegmentLog::Segments() const {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != 20 || !name.ends_with(".seg")) continue;
    uint64_t v = 0;
    bool ok = true;
    for (char ch : name.substr(0, 16)) {
      int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
      if (d < 0) ok = false;
      v = (v << 4) | static_cast<uint64_t>(d < 0 ? 0 : d);
    }
    if (ok) out.push_back(v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<int> SegmentLog::ReadFd(uint64_t segment) const {
  std::lock_guard lock(read_mu_);
  auto it = read_fds_.find(segment);
  if (it != read_fds_.end()) return it->second;
  const std::string path = SegmentPath(segment);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("segment file " + path + " is missing");
    return Status::FromErrno(errno, "open " + path);
  }
  read_fds_[segment] = fd;
  return fd;
}

Status SegmentLog::Read(uint64_t segment, uint64_t offset, size_t n, char* out) const {
  BOOST_OUTCOME_TRY(fd, ReadFd(segment));
  size_t got = 0;
  Status s = PreadAll(fd, out, n, offset, &got);
  if (!s.ok()) return s.Annotate(SegmentPath(segment));
  if (got != n) {
    return Status::Corruption(SegmentPath(segment) + ": " + std::to_string(n) + " bytes at " +
                              std::to_string(offset) + " lie past its end");
  }
  return Status::Ok();
}

Result<ScanEnd> SegmentLog::Scan(const Location& from, bool check_chunks,
                                 const RecordFn& fn) const {
  std::vector<uint64_t> segs = Segments();
  ScanEnd end;
  auto first = std::lower_bound(segs.begin(), segs.end(), std::max<uint64_t>(from.segment, 1));
  if (first == segs.end()) {
    end.end = from.segment == 0 ? Location{} : from;
    if (from.segment != 0 && from.offset > 0) {
      end.torn = true;
      end.reason = "segment file " + SegmentPath(from.segment) + " is missing";
      end.file = SegmentPath(from.segment);
    }
    return end;
  }
  std::string buf;
  Location at = from;
  bool have_prev = false;
  for (auto it = first; it != segs.end(); ++it) {
    const uint64_t n = *it;
    const std::string path = SegmentPath(n);
    if (have_prev && n != at.segment + 1) {
      end.torn = true;
      end.reason = "segment " + std::to_string(at.segment + 1) + " is missing before " + path;
      end.file = path;
      return end;
    }
    if (!have_prev && from.segment != 0 && n != from.segment) {
      end.end = from;
      end.torn = true;
      end.reason = "segment file " + SegmentPath(from.segment) + " is missing";
      end.file = SegmentPath(from.segment);
      return end;
    }
    BOOST_OUTCOME_TRY(fd, ReadFd(n));
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat " + path);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    char hdr[kSegmentHeaderBytes];
    size_t got = 0;
    TM_RETURN_IF_ERROR(PreadAll(fd, hdr, sizeof hdr, 0, &got));
    auto sh = DecodeSegmentHeader(std::string_view(hdr, got));
    std::string bad;
    if (!sh) {
      bad = sh.error().message();
    } else if (sh.value().uuid != uuid_) {
      bad = "a segment of another journal";
    } else if (sh.value().space != space_ || sh.value().number != n) {
      bad = "segment header names space " + std::to_string(sh.value().space) + " segment " +
            std::to_string(sh.value().number);
    }
    if (!bad.empty()) {
      if (!have_prev) end.end = Location{n, 0};
      end.torn = true;
      end.reason = bad;
      end.file = path;
      return end;
    }
    uint64_t pos = have_prev || n != from.segment || from.offset < kSegmentHeaderBytes
                       ? kSegmentHeaderBytes
                       : from.offset;
    at = {n, pos};
    end.end = at;
    have_prev = true;
    while (pos < size) {
      char rh[kRecordHeaderBytes];
      TM_RETURN_IF_ERROR(PreadAll(fd, rh, sizeof rh, pos, &got));
      auto h = DecodeRecordHeader(std::string_view(rh, got));
      std::string why;
      if (got < kRecordHeaderBytes) {
        why = "a torn record header";
      } else if (!h) {
        why = h.error().message();
      } else if (pos + h.value().total() > size) {
        why = "a record cut short by the end of the file";
      }
      std::optional<Record> rec;
      if (why.empty()) {
        const size_t body = kRecordHeaderBytes + h.value().length;
        buf.resize(body);
        TM_RETURN_IF_ERROR(PreadAll(fd, buf.data(), body, pos, &got));
        auto r = DecodeRecord(std::string_view(buf.data(), got));
        if (r) {
          rec = std::move(r.value());
        } else {
          why = r.error().message();
        }
      }
      if (why.empty() && check_chunks) {
        for (const ChunkDesc& c : rec->chunks) {
          Status cs = VerifyChunk(c, std::string_view(buf).substr(c.payload_offset, c.stored_len));
          if (!cs.ok()) {
            why = cs.message();
            break;
          }
        }
      }
      if (!why.empty()) {
        end.torn = true;
        end.reason = why + " at offset " + std::to_string(pos);
        end.file = path;
        return end;
      }
      TM_RETURN_IF_ERROR(fn(Location{n, pos}, *rec));
      pos += h.value().total();
      end.end = {n, pos};
    }
    at = {n, pos};
  }
  return end;
}

Status SegmentLog::OpenSegment(uint64_t number, Seq first_seq, TimeNs now_ns) {
  const std::string path = SegmentPath(number);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "create " + path);
  SegmentHeader h;
  h.space = space_;
  h.uuid = uuid_;
  h.number = number;
  h.first_seq = first_seq;
  h.created_ns = now_ns;
  const std::string bytes = EncodeSegmentHeader(h);
  Status s = PwriteAll(fd, bytes.data(), bytes.size(), 0, path);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  fd_ = fd;
  current_ = number;
  size_ = written_ = writeback_ = bytes.size();
  buf_.clear();
  dir_dirty_ = true;
  return Status::Ok();
}

Status SegmentLog::StartAppend(const Location& at, Seq next_seq, TimeNs now_ns) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  buf_.clear();
  for (uint64_t n : Segments()) {
    if (n <= at.segment) continue;
    {
      std::lock_guard lock(read_mu_);
      auto it = read_fds_.find(n);
      if (it != read_fds_.end()) {
        ::close(it->second);
        read_fds_.erase(it);
      }
    }
    if (::unlink(SegmentPath(n).c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "remove " + SegmentPath(n));
    }
    dir_dirty_ = true;
  }
  appending_ = true;
  if (at.segment == 0 || at.offset < kSegmentHeaderBytes) {
    return OpenSegment(std::max<uint64_t>(at.segment, 1), next_seq, now_ns);
  }
  const std::string path = SegmentPath(at.segment);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  if (::ftruncate(fd, static_cast<off_t>(at.offset)) != 0) {
    Status s = Status::FromErrno(errno, "truncate " + path);
    ::close(fd);
    return s;
  }
  fd_ = fd;
  current_ = at.segment;
  size_ = written_ = writeback_ = at.offset;
  buf_.clear();
  unsynced_.push_back(::dup(fd));  // the truncation is made durable by the next Sync
  return Status::Ok();
}

Result<Location> SegmentLog::Append(std::string_view records, Seq first_seq, TimeNs now_ns) {
  if (!appending_ || fd_ < 0) return Status::InvalidArgument("segment log is not appending");
  if (size_ > kSegmentHeaderBytes && size_ + records.size() > options_.segment_bytes) {
    TM_RETURN_IF_ERROR(Flush());
    unsynced_.push_back(fd_);  // sealed: synced (and closed) by the next Sync
    fd_ = -1;
    TM_RETURN_IF_ERROR(OpenSegment(current_ + 1, first_seq, now_ns));
  }
  const Location at{current_, size_};
  constexpr size_t kGatherBytes = 1 << 20;   // write what was gathered past this
  constexpr size_t kDirectBytes = 256 << 10;  // a record this long is written at once
  if (records.size() >= kDirectBytes) {
    TM_RETURN_IF_ERROR(Flush());
    TM_RETURN_IF_ERROR(
        PwriteAll(fd_, records.data(), records.size(), written_, SegmentPath(current_)));
    written_ += records.size();
    StartWriteback();
  } else {
    buf_.append(records);
  }
  size_ += records.size();
  appended_ += records.size();
  if (buf_.size() >= kGatherBytes) TM_RETURN_IF_ERROR(Flush());
  return at;
}

Status SegmentLog::Flush() {
  if (buf_.empty()) return Status::Ok();
  if (fd_ < 0) return Status::InvalidArgument("segment log is not appending");
  TM_RETURN_IF_ERROR(PwriteAll(fd_, buf_.data(), buf_.size(), written_, SegmentPath(current_)));
  written_ += buf_.size();
  buf_.clear();
  StartWriteback();
  return Status::Ok();
}

void SegmentLog::StartWriteback() {
  constexpr uint64_t kWritebackBytes = 8 << 20;
  if (written_ - writeback_ < kWritebackBytes) return;
  // Advisory: a failure here shows at the next fdatasync.
  (void)::sync_file_range(fd_, static_cast<off64_t>(writeback_),
                          static_cast<off64_t>(written_ - writeback_), SYNC_FILE_RANGE_WRITE);
  writeback_ = written_;
}

Status SegmentLog::Sync() {
  TM_RETURN_IF_ERROR(Flush());
  for (int fd : unsynced_) {
    if (fd >= 0 && ::fdatasync(fd) != 0) return Status::FromErrno(errno, "sync " + dir_);
    if (fd >= 0) ::close(fd);
  }
  unsynced_.clear();
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) {
    return Status::FromErrno(errno, "sync " + SegmentPath(current_));
  }
  if (dir_dirty_) {
    TM_RETURN_IF_ERROR(SyncDirectory(dir_));
    dir_dirty_ = false;
  }
  return Status::Ok();
}

}  // namespace tidemark::journal::seg
