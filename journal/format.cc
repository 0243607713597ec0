#include "tidemark/journal/format.h"

#include "coding.h"
#include "tidemark/journal/crc32c.h"

namespace tidemark::journal {

using coding::GetBE;
using coding::PutBE;
using coding::PutLE;

std::string_view ValueKindName(ValueKind kind) {
  switch (kind) {
    case ValueKind::kMeta: return "meta";
    case ValueKind::kVolume: return "volume";
    case ValueKind::kBlock: return "block";
    case ValueKind::kZeroBlock: return "zero-block";
    case ValueKind::kSeq: return "seq";
    case ValueKind::kTime: return "time";
    case ValueKind::kRange: return "range";
    case ValueKind::kBookmark: return "bookmark";
    case ValueKind::kFlush: return "flush";
    case ValueKind::kCheckpoint: return "checkpoint";
    case ValueKind::kUnordered: return "unordered";
    case ValueKind::kGroup: return "group";
    case ValueKind::kExtent: return "extent";
    case ValueKind::kTail: return "tail";
  }
  return "unknown";
}

// ---- keys ----------------------------------------------------------------

std::string MetaKey() { return "M"; }

std::string VolumeKey(uint32_t volume) {
  std::string k = "V";
  PutBE(&k, volume, 4);
  return k;
}

std::string CheckpointKey(uint32_t volume) {
  std::string k = "B";
  PutBE(&k, volume, 4);
  return k;
}

std::string UnorderedKey(uint32_t space, Seq after) {
  std::string k = "U";
  PutBE(&k, space, 4);
  PutBE(&k, after, 8);
  return k;
}

std::string GroupKey(std::string_view name) {
  std::string k = "G";
  k.append(name);
  return k;
}

std::string IdPrefix(uint32_t id) {
  std::string k;
  PutBE(&k, id, 4);
  return k;
}

std::string BlockKey(uint32_t volume, uint64_t block, Seq seq) {
  std::string k;
  k.reserve(20);
  PutBE(&k, volume, 4);
  PutBE(&k, block, 8);
  PutBE(&k, ~seq, 8);  // newest first within a block
  return k;
}

std::string TailKey(uint32_t space) {
  std::string k = "T";
  PutBE(&k, space, 4);
  return k;
}

std::string SyncedTailKey(uint32_t space) {
  std::string k = "S";
  PutBE(&k, space, 4);
  return k;
}

std::string ExtentKey(uint32_t volume, uint64_t chunk, Seq seq, uint16_t first) {
  std::string k;
  k.reserve(22);
  PutBE(&k, volume, 4);
  PutBE(&k, chunk, 8);
  PutBE(&k, ~seq, 8);  // newest first within a chunk
  PutBE(&k, first, 2);
  return k;
}

Result<DecodedExtentKey> DecodeExtentKey(std::string_view key) {
  if (key.size() != 22) {
    return Status::Corruption("extent key of " + std::to_string(key.size()) +
                              " bytes, expected 22");
  }
  return DecodedExtentKey{static_cast<uint32_t>(GetBE(key.data(), 4)), GetBE(key.data() + 4, 8),
                          ~GetBE(key.data() + 12, 8),
                          static_cast<uint16_t>(GetBE(key.data() + 20, 2))};
}

std::string SeqKey(uint32_t space, Seq seq) {
  std::string k;
  PutBE(&k, space, 4);
  PutBE(&k, seq, 8);
  return k;
}

std::string TimeKey(uint32_t space, TimeNs time_ns, Seq seq) {
  std::string k;
  PutBE(&k, space, 4);
  PutBE(&k, static_cast<uint64_t>(time_ns), 8);
  PutBE(&k, seq, 8);
  return k;
}

std::string RangeKey(uint32_t volume, Seq seq) { return SeqKey(volume, seq); }
std::string FlushKey(uint32_t space, Seq seq) { return SeqKey(space, seq); }

std::string BookmarkKey(uint32_t space, std::string_view name) {
  std::string k;
  PutBE(&k, space, 4);
  k.append(name);
  return k;
}

Result<DecodedBlockKey> DecodeBlockKey(std::string_view key) {
  if (key.size() != 20) {
    return Status::Corruption("block key of " + std::to_string(key.size()) +
                              " bytes, expected 20");
  }
  return DecodedBlockKey{static_cast<uint32_t>(GetBE(key.data(), 4)),
                         GetBE(key.data() + 4, 8), ~GetBE(key.data() + 12, 8)};
}

Result<DecodedSeqKey> DecodeSeqKey(std::string_view key) {
  if (key.size() != 12) {
    return Status::Corruption("seq key of " + std::to_string(key.size()) +
                              " bytes, expected 12");
  }
  return DecodedSeqKey{static_cast<uint32_t>(GetBE(key.data(), 4)),
                       GetBE(key.data() + 4, 8)};
}

Result<DecodedTimeKey> DecodeTimeKey(std::string_view key) {
  if (key.size() != 20) {
    return Status::Corruption("time key of " + std::to_string(key.size()) +
                              " bytes, expected 20");
  }
  return DecodedTimeKey{static_cast<uint32_t>(GetBE(key.data(), 4)),
                        static_cast<TimeNs>(GetBE(key.data() + 4, 8)),
                        GetBE(key.data() + 12, 8)};
}

Result<uint32_t> DecodeVolumeKey(std::string_view key) {
  if (key.size() != 5 || key[0] != 'V') return Status::Corruption("bad volume key");
  return static_cast<uint32_t>(GetBE(key.data() + 1, 4));
}

// ---- values --------------------------------------------------------------

std::string EncodeValue(ValueKind kind, Codec codec, std::string_view payload) {
  std::string v;
  v.reserve(kValueHeaderBytes + payload.size());
  v.push_back(static_cast<char>(kind));
  v.push_back(static_cast<char>(codec));
  PutLE(&v, 0, 2);
  uint32_t crc = Crc32cExtend(Crc32c(v.data(), 4), payload.data(), payload.size());
  PutLE(&v, crc, 4);
  v.append(payload);
  return v;
}

Result<DecodedValue> DecodeValue(std::string_view stored) {
  if (stored.size() < kValueHeaderBytes) {
    return Status::Corruption("value of " + std::to_string(stored.size()) +
                              " bytes is shorter than its header");
  }
  uint32_t want = static_cast<uint32_t>(coding::GetLE(stored.data() + 4, 4));
  std::string_view payload = stored.substr(kValueHeaderBytes);
  uint32_t got = Crc32cExtend(Crc32c(stored.data(), 4), payload.data(), payload.size());
  if (got != want) return Status::Corruption("CRC mismatch");
  auto kind = static_cast<ValueKind>(stored[0]);
  auto codec = static_cast<Codec>(stored[1]);
  uint8_t raw_kind = static_cast<uint8_t>(stored[0]);
  if (ValueKindName(kind) == "unknown" && !(raw_kind & kKindSkippable)) {
    return Status::NotSupported("unknown value kind " + std::to_string(raw_kind));
  }
  if (static_cast<uint8_t>(codec) > static_cast<uint8_t>(Codec::kIgzip)) {
    return Status::NotSupported("unknown codec id " +
                                std::to_string(static_cast<int>(stored[1])));
  }
  return DecodedValue{kind, codec, payload};
}

namespace {

// Decodes the header and checks the kind; returns the payload.
Result<std::string_view> Payload(std::string_view stored, ValueKind want) {
  BOOST_OUTCOME_TRY(v, DecodeValue(stored));
  if (v.kind != want) {
    return Status::Corruption("expected a " + std::string(ValueKindName(want)) +
                              " record, found kind " +
                              std::to_string(static_cast<int>(v.kind)));
  }
  return v.payload;
}

Status Trailing(const coding::Reader& r, ValueKind kind) {
  if (r.done()) return Status::Ok();
  return Status::Corruption(std::string(ValueKindName(kind)) + " record " +
                            (r.failed() ? "truncated" : "has trailing bytes"));
}

}  // namespace

std::string EncodeMeta(const MetaRecord& m) {
  std::string p;
  PutLE(&p, m.format_version, 4);
  PutLE(&p, m.read_floor, 4);
  PutLE(&p, m.write_floor, 4);
  p.append(reinterpret_cast<const char*>(m.uuid.data()), m.uuid.size());
  PutLE(&p, static_cast<uint8_t>(m.codec), 1);
  PutLE(&p, static_cast<uint8_t>(m.checksum), 1);
  PutLE(&p, static_cast<uint64_t>(m.created_ns), 8);
  return EncodeValue(ValueKind::kMeta, Codec::kNone, p);
}

Result<MetaRecord> DecodeMeta(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kMeta));
  coding::Reader r(p);
  MetaRecord m;
  m.format_version = static_cast<uint32_t>(r.LE(4));
  m.read_floor = static_cast<uint32_t>(r.LE(4));
  m.write_floor = static_cast<uint32_t>(r.LE(4));
  std::string_view uuid = r.Bytes(16);
  if (!r.failed()) std::copy(uuid.begin(), uuid.end(), m.uuid.begin());
  m.codec = static_cast<Codec>(r.LE(1));
  m.checksum = static_cast<ChecksumId>(r.LE(1));
  m.created_ns = static_cast<TimeNs>(r.LE(8));
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kMeta));
  return m;
}

std::string EncodeVolume(const VolumeRecord& v) {
  std::string p;
  PutLE(&p, v.id, 4);
  PutLE(&p, v.space, 4);
  PutLE(&p, v.name.size(), 4);
  p.append(v.name);
  PutLE(&p, v.epochs.size(), 4);
  for (const Epoch& e : v.epochs) {
    PutLE(&p, e.epoch, 4);
    PutLE(&p, e.from_seq, 8);
    PutLE(&p, e.size_bytes, 8);
    PutLE(&p, e.block_bytes, 4);
  }
  return EncodeValue(ValueKind::kVolume, Codec::kNone, p);
}

Result<VolumeRecord> DecodeVolume(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kVolume));
  coding::Reader r(p);
  VolumeRecord v;
  v.id = static_cast<uint32_t>(r.LE(4));
  v.space = static_cast<uint32_t>(r.LE(4));
  v.name = std::string(r.Bytes(r.LE(4)));
  uint64_t n = r.LE(4);
  // Each epoch is 24 bytes: bound n by what is left before allocating.
  if (!r.failed() && n * 24 != r.left()) return Status::Corruption("volume record: bad epoch count");
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    Epoch e;
    e.epoch = static_cast<uint32_t>(r.LE(4));
    e.from_seq = r.LE(8);
    e.size_bytes = r.LE(8);
    e.block_bytes = static_cast<uint32_t>(r.LE(4));
    v.epochs.push_back(e);
  }
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kVolume));
  if (v.epochs.empty()) return Status::Corruption("volume record without an epoch");
  return v;
}

std::string EncodeGroup(const GroupRecord& g) {
  std::string p;
  PutLE(&p, g.space, 4);
  PutLE(&p, g.volumes.size(), 4);
  for (uint32_t id : g.volumes) PutLE(&p, id, 4);
  return EncodeValue(ValueKind::kGroup, Codec::kNone, p);
}

Result<GroupRecord> DecodeGroup(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kGroup));
  coding::Reader r(p);
  GroupRecord g;
  g.space = static_cast<uint32_t>(r.LE(4));
  uint64_t n = r.LE(4);
  if (!r.failed() && (n == 0 || n * 4 != r.left())) {
    return Status::Corruption("group record: bad volume count");
  }
  for (uint64_t i = 0; i < n && !r.failed(); ++i) g.volumes.push_back(static_cast<uint32_t>(r.LE(4)));
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kGroup));
  return g;
}

std::string EncodeSeq(const SeqRecord& s) {
  std::string p;
  PutLE(&p, static_cast<uint64_t>(s.time_ns), 8);
  PutLE(&p, s.volume, 4);
  PutLE(&p, static_cast<uint8_t>(s.op), 1);
  PutLE(&p, s.flags, 1);
  PutLE(&p, s.extents.size(), 4);
  for (const Extent& e : s.extents) {
    PutLE(&p, e.offset_bytes, 8);
    PutLE(&p, e.length_bytes, 8);
  }
  return EncodeValue(ValueKind::kSeq, Codec::kNone, p);
}

Result<SeqRecord> DecodeSeq(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kSeq));
  coding::Reader r(p);
  SeqRecord s;
  s.time_ns = static_cast<TimeNs>(r.LE(8));
  s.volume = static_cast<uint32_t>(r.LE(4));
  s.op = static_cast<OpKind>(r.LE(1));
  s.flags = static_cast<uint8_t>(r.LE(1));
  uint64_t n = r.LE(4);
  if (!r.failed() && n * 16 != r.left()) return Status::Corruption("seq record: bad extent count");
  s.extents.reserve(r.failed() ? 0 : n);
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    Extent e;
    e.offset_bytes = r.LE(8);
    e.length_bytes = r.LE(8);
    s.extents.push_back(e);
  }
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kSeq));
  if (s.op < OpKind::kWrite || s.op > OpKind::kImport) {
    return Status::Corruption("seq record: unknown op " + std::to_string(static_cast<int>(s.op)));
  }
  return s;
}

std::string EncodeRange(const RangeRecord& rr) {
  std::string p;
  PutLE(&p, static_cast<uint8_t>(rr.op), 1);
  PutLE(&p, rr.first_block, 8);
  PutLE(&p, rr.block_count, 8);
  return EncodeValue(ValueKind::kRange, Codec::kNone, p);
}

Result<RangeRecord> DecodeRange(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kRange));
  coding::Reader r(p);
  RangeRecord rr;
  rr.op = static_cast<OpKind>(r.LE(1));
  rr.first_block = r.LE(8);
  rr.block_count = r.LE(8);
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kRange));
  if (rr.op != OpKind::kTrim && rr.op != OpKind::kWriteZeroes) {
    return Status::Corruption("range record: bad op " + std::to_string(static_cast<int>(rr.op)));
  }
  return rr;
}

std::string EncodeBookmark(const BookmarkRecord& b) {
  std::string p;
  PutLE(&p, b.seq, 8);
  PutLE(&p, static_cast<uint64_t>(b.created_ns), 8);
  return EncodeValue(ValueKind::kBookmark, Codec::kNone, p);
}

Result<BookmarkRecord> DecodeBookmark(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kBookmark));
  coding::Reader r(p);
  BookmarkRecord b;
  b.seq = r.LE(8);
  b.created_ns = static_cast<TimeNs>(r.LE(8));
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kBookmark));
  return b;
}

std::string EncodeFlush(const FlushRecord& f) {
  std::string p;
  PutLE(&p, static_cast<uint64_t>(f.time_ns), 8);
  PutLE(&p, f.flags, 1);
  return EncodeValue(ValueKind::kFlush, Codec::kNone, p);
}

Result<FlushRecord> DecodeFlush(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kFlush));
  coding::Reader r(p);
  FlushRecord f;
  f.time_ns = static_cast<TimeNs>(r.LE(8));
  f.flags = static_cast<uint8_t>(r.LE(1));
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kFlush));
  return f;
}

std::string EncodeCheckpoint(Seq seq) {
  std::string p;
  PutLE(&p, seq, 8);
  return EncodeValue(ValueKind::kCheckpoint, Codec::kNone, p);
}

Result<Seq> DecodeCheckpoint(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kCheckpoint));
  coding::Reader r(p);
  Seq seq = r.LE(8);
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kCheckpoint));
  return seq;
}

std::string EncodeExtent(const ExtentRecord& rec) {
  std::string p;
  PutLE(&p, rec.segment, 8);
  PutLE(&p, rec.offset, 8);
  PutLE(&p, rec.stored_len, 4);
  PutLE(&p, static_cast<uint8_t>(rec.codec), 1);
  PutLE(&p, rec.flags, 1);
  PutLE(&p, rec.first, 2);
  PutLE(&p, rec.count, 2);
  PutLE(&p, rec.crc, 4);
  return EncodeValue(ValueKind::kExtent, Codec::kNone, p);
}

Result<ExtentRecord> DecodeExtent(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kExtent));
  coding::Reader r(p);
  ExtentRecord rec;
  rec.segment = r.LE(8);
  rec.offset = r.LE(8);
  rec.stored_len = static_cast<uint32_t>(r.LE(4));
  rec.codec = static_cast<Codec>(r.LE(1));
  rec.flags = static_cast<uint8_t>(r.LE(1));
  rec.first = static_cast<uint16_t>(r.LE(2));
  rec.count = static_cast<uint16_t>(r.LE(2));
  rec.crc = static_cast<uint32_t>(r.LE(4));
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kExtent));
  if (rec.count == 0) return Status::Corruption("extent record of no blocks");
  return rec;
}

std::string EncodeTail(const TailRecord& rec) {
  std::string p;
  PutLE(&p, rec.segment, 8);
  PutLE(&p, rec.offset, 8);
  PutLE(&p, rec.seq, 8);
  return EncodeValue(ValueKind::kTail, Codec::kNone, p);
}

Result<TailRecord> DecodeTail(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kTail));
  coding::Reader r(p);
  TailRecord rec;
  rec.segment = r.LE(8);
  rec.offset = r.LE(8);
  rec.seq = r.LE(8);
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kTail));
  return rec;
}

std::string EncodeUnordered(const UnorderedRecord& rec) {
  std::string p;
  PutLE(&p, rec.upto, 8);
  PutLE(&p, static_cast<uint64_t>(rec.begin_ns), 8);
  return EncodeValue(ValueKind::kUnordered, Codec::kNone, p);
}

Result<UnorderedRecord> DecodeUnordered(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kUnordered));
  coding::Reader r(p);
  UnorderedRecord u;
  u.upto = r.LE(8);
  u.begin_ns = static_cast<TimeNs>(r.LE(8));
  TM_RETURN_IF_ERROR(Trailing(r, ValueKind::kUnordered));
  return u;
}

std::string EncodeTime() { return EncodeValue(ValueKind::kTime, Codec::kNone, {}); }

Status CheckTime(std::string_view stored) {
  BOOST_OUTCOME_TRY(p, Payload(stored, ValueKind::kTime));
  if (!p.empty()) return Status::Corruption("time record has a payload");
  return Status::Ok();
}

}  // namespace tidemark::journal
