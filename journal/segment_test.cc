// Tests of format 2's segment records and of the segment log.
#include "tidemark/journal/segment.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace tidemark::journal::seg {
namespace {

namespace fs = std::filesystem;

std::string Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string Compressible(size_t n) {
  std::string s;
  while (s.size() < n) s += "tidemark segment ";
  s.resize(n);
  return s;
}

DataIn Write(uint32_t volume, Seq seq, uint64_t offset, std::string_view data,
             Codec codec = Codec::kNone) {
  DataIn in;
  in.volume = volume;
  in.seq = seq;
  in.header.time_ns = 1'700'000'000'000'000'000 + static_cast<TimeNs>(seq);
  in.header.offset_bytes = offset;
  in.header.block_bytes = 4096;
  in.header.chunk_log2 = kDefaultChunkLog2;
  in.data = data;
  in.codec = codec;
  return in;
}

// The bytes a decoded data record holds, chunk by chunk.
std::string Payload(const std::string& rec, const Record& r) {
  std::string out;
  for (const ChunkDesc& c : r.chunks) {
    std::string raw(c.raw_len, '\0');
    Status s = ReadChunk(c, std::string_view(rec).substr(c.payload_offset, c.stored_len), raw.data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    out += raw;
  }
  return out;
}

TEST(SegmentHeaderTest, RoundTripAndDamage) {
  SegmentHeader h;
  h.space = 7;
  h.uuid[0] = 0xab;
  h.uuid[15] = 0xcd;
  h.number = 42;
  h.first_seq = 1000;
  h.created_ns = 123456789;
  const std::string b = EncodeSegmentHeader(h);
  ASSERT_EQ(b.size(), kSegmentHeaderBytes);
  EXPECT_EQ(b.substr(0, 5), "TMSEG");
  auto d = DecodeSegmentHeader(b);
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d.value(), h);
  for (size_t i : {0u, 12u, 20u, 35u, 59u, 62u}) {
    std::string bad = b;
    bad[i] ^= 0x10;
    EXPECT_FALSE(DecodeSegmentHeader(bad)) << "byte " << i;
  }
  EXPECT_FALSE(DecodeSegmentHeader(b.substr(0, 63)));
}

TEST(SegmentRecordTest, DataRecordCutAtAlignedChunks) {
  // 1 MiB at an aligned offset: 16 chunks of 64 KiB.
  const std::string mib = Random(1 << 20, 1);
  std::string rec;
  std::vector<ChunkDesc> chunks;
  ASSERT_TRUE(EncodeData(Write(3, 77, 8 << 20, mib), &rec, &chunks).ok());
  ASSERT_EQ(chunks.size(), 16u);
  auto r = DecodeRecord(rec);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r.value().header.kind, RecordKind::kData);
  EXPECT_EQ(r.value().header.volume, 3u);
  EXPECT_EQ(r.value().header.seq, 77u);
  EXPECT_EQ(r.value().header.total(), rec.size());
  EXPECT_EQ(r.value().data.offset_bytes, 8u << 20);
  EXPECT_EQ(r.value().data.length_bytes, 1u << 20);
  EXPECT_EQ(r.value().chunks, chunks);
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].volume_offset, (8u << 20) + i * 65536);
    EXPECT_EQ(chunks[i].codec, Codec::kNone);  // random bytes do not compress
  }
  EXPECT_EQ(Payload(rec, r.value()), mib);
  // Overhead: 32 + 40 + 16 x 48 bytes on 1 MiB.
  EXPECT_EQ(rec.size(), (1u << 20) + 32 + 40 + 16 * 48);

  // 8 KiB across a chunk boundary: two chunks, cut where the volume's chunk ends.
  const std::string two = Random(8192, 2);
  rec.clear();
  ASSERT_TRUE(EncodeData(Write(0, 5, 65536 - 4096, two), &rec, &chunks).ok());
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].volume_offset, 65536u - 4096);
  EXPECT_EQ(chunks[0].raw_len, 4096u);
  EXPECT_EQ(chunks[1].volume_offset, 65536u);
  r = DecodeRecord(rec);
  ASSERT_TRUE(r);
  EXPECT_EQ(Payload(rec, r.value()), two);
}

TEST(SegmentRecordTest, CodecPerChunk) {
  // Half compressible, half not: each chunk decides for itself.
  std::string data = Compressible(65536) + Random(65536, 3);
  std::string rec;
  std::vector<ChunkDesc> chunks;
  ASSERT_TRUE(EncodeData(Write(0, 1, 0, data, Codec::kZstd), &rec, &chunks).ok());
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].codec, Codec::kZstd);
  EXPECT_LT(chunks[0].stored_len, 65536u / 8);
  EXPECT_EQ(chunks[1].codec, Codec::kNone);
  auto r = DecodeRecord(rec);
  ASSERT_TRUE(r);
  EXPECT_EQ(Payload(rec, r.value()), data);
}

// Chunks packed ahead (PackChunks, in two ranges as two threads would) give
// the very bytes EncodeData gives alone, for an unaligned record too.
TEST(SegmentRecordTest, PackedChunksEncodeTheSameRecord) {
  const std::string data = Compressible(3 * 65536) + Random(65536 + 8192, 5) + Compressible(4096);
  for (uint64_t offset : {uint64_t{0}, uint64_t{65536 - 8192}}) {
    const DataIn in = Write(2, 9, offset, data, Codec::kZstd);
    const size_t n = ChunkCount(in);
    ASSERT_EQ(n, offset == 0 ? 5u : 6u);
    std::vector<PackedChunk> packed(n);
    PackChunks(in, n / 2, n, &packed);
    PackChunks(in, 0, n / 2, &packed);
    std::string alone, ahead;
    std::vector<ChunkDesc> c1, c2;
    ASSERT_TRUE(EncodeData(in, &alone, &c1).ok());
    ASSERT_TRUE(EncodeData(in, &ahead, &c2, &packed).ok());
    EXPECT_EQ(alone, ahead);
    EXPECT_EQ(c1, c2);
    packed.pop_back();
    EXPECT_FALSE(EncodeData(in, &ahead, &c2, &packed).ok());  // a count that does not match
  }
}

TEST(SegmentRecordTest, ZeroRecordHasNoPayload) {
  DataIn in = Write(0, 3, 60 << 10, "");
  in.zeros = true;
  in.header.length_bytes = 200 << 10;
  std::string rec;
  std::vector<ChunkDesc> chunks;
  ASSERT_TRUE(EncodeData(in, &rec, &chunks).ok());
  ASSERT_EQ(chunks.size(), 5u);  // 60K-64K, 64K-128K, 128K-192K, 192K-256K, 256K-260K
  EXPECT_EQ(rec.size(), 32u + 40 + 5 * 48);
  auto r = DecodeRecord(rec);
  ASSERT_TRUE(r) << r.error().ToString();
  for (const ChunkDesc& c : r.value().chunks) EXPECT_EQ(c.flags, kChunkZero);
  EXPECT_EQ(Payload(rec, r.value()), std::string(200 << 10, '\0'));
}

TEST(SegmentRecordTest, BadWritesRefused) {
  std::string rec;
  std::vector<ChunkDesc> chunks;
  EXPECT_EQ(EncodeData(Write(0, 1, 0, ""), &rec, &chunks).code(), Code::kInvalidArgument);
  EXPECT_EQ(EncodeData(Write(0, 1, 512, Random(4096, 1)), &rec, &chunks).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(EncodeData(Write(0, 1, 0, Random(4000, 1)), &rec, &chunks).code(),
            Code::kInvalidArgument);
  DataIn big = Write(0, 1, 0, Random(4096, 1));
  big.header.chunk_log2 = 30;
  EXPECT_EQ(EncodeData(big, &rec, &chunks).code(), Code::kInvalidArgument);
  EXPECT_TRUE(rec.empty());
}

TEST(SegmentRecordTest, DamageIsFound) {
  std::string rec;
  std::vector<ChunkDesc> chunks;
  ASSERT_TRUE(EncodeData(Write(1, 9, 0, Random(131072, 4)), &rec, &chunks).ok());
  // Header, data header and chunk table: the record's CRC.
  for (size_t i : {5u, 12u, 17u, 32u + 3, 32u + 20, 32u + 40 + 8, 32u + 40 + 48 + 20}) {
    std::string bad = rec;
    bad[i] ^= 0x01;
    EXPECT_FALSE(DecodeRecord(bad)) << "byte " << i;
  }
  // A payload byte: its chunk's CRC.
  std::string bad = rec;
  bad[chunks[1].payload_offset + 100] ^= 0x01;
  auto r = DecodeRecord(bad);
  ASSERT_TRUE(r);
  const ChunkDesc& c = r.value().chunks[1];
  Status s = VerifyChunk(c, std::string_view(bad).substr(c.payload_offset, c.stored_len));
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_NE(s.message().find("volume offset 65536"), std::string::npos) << s.message();
  EXPECT_TRUE(VerifyChunk(r.value().chunks[0],
                          std::string_view(bad).substr(chunks[0].payload_offset, 65536))
                  .ok());
  // Cut short.
  EXPECT_FALSE(DecodeRecord(std::string_view(rec).substr(0, 100)));
}

TEST(SegmentRecordTest, OtherKindsAndPadding) {
  std::string out;
  EncodeRecord(RecordKind::kFlush, kFlagFlush, 2, 55, "12345678", &out);
  const size_t second = out.size();
  EncodeRecord(RecordKind::kBookmark, 0, 2, 56, "pre", &out);
  PadRecord(&out, second, 4096 - out.size() % 4096);
  EXPECT_EQ(out.size() % 4096, 0u);
  auto a = DecodeRecord(out);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a.value().header.kind, RecordKind::kFlush);
  EXPECT_EQ(a.value().body, "12345678");
  EXPECT_EQ(a.value().header.total(), second);
  auto b = DecodeRecord(std::string_view(out).substr(second));
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(b.value().body, "pre");
  EXPECT_EQ(second + b.value().header.total(), out.size());
  std::string bad = out;
  bad[kRecordHeaderBytes + 2] ^= 1;
  EXPECT_FALSE(DecodeRecord(bad));
}

// The bodies of the records between writes: a bookmark, an unordered
// interval's begin and end, a backing checkpoint.
TEST(SegmentRecordTest, BodiesBetweenWritesRoundTrip) {
  BookmarkBody bm{123456789, "before upgrade"};
  auto b = DecodeBookmarkBody(EncodeBookmarkBody(bm));
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(b.value(), bm);
  std::string cut = EncodeBookmarkBody(bm);
  cut.pop_back();
  EXPECT_FALSE(DecodeBookmarkBody(cut));
  EXPECT_FALSE(DecodeBookmarkBody(EncodeBookmarkBody({1, ""})));
  for (const UnorderedBody& u : {UnorderedBody{kUnorderedBegin, 5, kNoSeq},
                                 UnorderedBody{kUnorderedEnd, 5, 77}}) {
    auto d = DecodeUnorderedBody(EncodeUnorderedBody(u));
    ASSERT_TRUE(d) << d.error().ToString();
    EXPECT_EQ(d.value(), u);
  }
  EXPECT_FALSE(DecodeUnorderedBody(EncodeUnorderedBody({kUnorderedEnd, 5, kNoSeq})));
  EXPECT_FALSE(DecodeUnorderedBody(EncodeUnorderedBody({7, 5, 9})));
  EXPECT_EQ(DecodeCheckpointBody(EncodeCheckpointBody(42)).value(), 42);
  EXPECT_FALSE(DecodeCheckpointBody("1234"));
}

class SegmentLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/segment_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    uuid_[0] = 1;
    uuid_[1] = 2;
  }
  void TearDown() override {
    log_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void OpenLog(uint64_t segment_bytes = 1 << 20) {
    log_.reset();
    LogOptions o;
    o.segment_bytes = segment_bytes;
    auto l = SegmentLog::Open(dir_, 5, uuid_, o, /*create=*/true);
    ASSERT_TRUE(l) << l.error().ToString();
    log_ = std::move(l.value());
  }
  // Scans everything: the records' (location, seq) in order.
  std::vector<std::pair<Location, Seq>> ScanAll(ScanEnd* end, bool check = true) {
    std::vector<std::pair<Location, Seq>> out;
    auto e = log_->Scan({}, check, [&](const Location& at, const Record& r) {
      out.emplace_back(at, r.header.seq);
      return Status::Ok();
    });
    EXPECT_TRUE(e) << e.error().ToString();
    if (e) *end = e.value();
    return out;
  }
  // Appends a 64 KiB write per seq in [from, to]; returns their places.
  std::vector<Location> AppendWrites(Seq from, Seq to) {
    std::vector<Location> at;
    for (Seq s = from; s <= to; ++s) {
      std::string rec;
      std::vector<ChunkDesc> chunks;
      const std::string data = Random(65536, s);
      EXPECT_TRUE(EncodeData(Write(0, s, (s % 16) * 65536, data), &rec, &chunks).ok());
      auto l = log_->Append(rec, s, 1);
      EXPECT_TRUE(l) << l.error().ToString();
      if (l) at.push_back(l.value());
    }
    return at;
  }

  std::string dir_;
  std::array<uint8_t, 16> uuid_{};
  std::unique_ptr<SegmentLog> log_;
};

TEST_F(SegmentLogTest, AppendRollOverScanRead) {
  OpenLog(300 << 10);  // four 64 KiB records a segment
  ScanEnd end;
  EXPECT_TRUE(ScanAll(&end).empty());
  EXPECT_EQ(end.end, Location{});
  ASSERT_TRUE(log_->StartAppend(end.end, 0, 1).ok());
  std::vector<Location> at = AppendWrites(0, 9);
  ASSERT_TRUE(log_->Sync().ok());
  EXPECT_EQ(log_->Segments(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(at[0], (Location{1, kSegmentHeaderBytes}));
  EXPECT_EQ(at[4].segment, 2u);
  EXPECT_EQ(at[4].offset, kSegmentHeaderBytes);  // records never span segments

  OpenLog(300 << 10);
  auto got = ScanAll(&end);
  ASSERT_EQ(got.size(), 10u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, at[i]);
    EXPECT_EQ(got[i].second, i);
  }
  EXPECT_FALSE(end.torn) << end.reason;
  EXPECT_EQ(end.end.segment, 3u);

  // A chunk read straight from its place.
  std::string rec(kRecordHeaderBytes + kDataHeaderBytes + kChunkDescBytes, '\0');
  ASSERT_TRUE(log_->Read(at[7].segment, at[7].offset, rec.size(), rec.data()).ok());
  auto h = DecodeRecordHeader(rec);
  ASSERT_TRUE(h);
  rec.resize(kRecordHeaderBytes + h.value().length);
  ASSERT_TRUE(log_->Read(at[7].segment, at[7].offset, rec.size(), rec.data()).ok());
  auto r = DecodeRecord(rec);
  ASSERT_TRUE(r);
  const ChunkDesc& c = r.value().chunks[0];
  std::string stored(c.stored_len, '\0');
  ASSERT_TRUE(log_->Read(at[7].segment, at[7].offset + c.payload_offset, stored.size(),
                         stored.data())
                  .ok());
  std::string raw(c.raw_len, '\0');
  ASSERT_TRUE(ReadChunk(c, stored, raw.data()).ok());
  EXPECT_EQ(raw, Random(65536, 7));
  EXPECT_EQ(log_->Read(9, 0, 1, raw.data()).code(), Code::kNotFound);
  EXPECT_EQ(log_->Read(1, 10 << 20, 1, raw.data()).code(), Code::kCorruption);

  // Appending resumes at the scan's end.
  ASSERT_TRUE(log_->StartAppend(end.end, 10, 2).ok());
  AppendWrites(10, 11);
  ASSERT_TRUE(log_->Sync().ok());
  EXPECT_EQ(ScanAll(&end).size(), 12u);
}

TEST_F(SegmentLogTest, TornTailIsCutThere) {
  OpenLog();
  ScanEnd end;
  ScanAll(&end);
  ASSERT_TRUE(log_->StartAppend(end.end, 0, 1).ok());
  std::vector<Location> at = AppendWrites(0, 4);
  ASSERT_TRUE(log_->Sync().ok());
  const std::string path = log_->SegmentPath(1);
  // A torn last write: half of record 4 reached the file.
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(at[4].offset + 30000)), 0);
  OpenLog();
  auto got = ScanAll(&end);
  EXPECT_EQ(got.size(), 4u);
  EXPECT_TRUE(end.torn);
  EXPECT_EQ(end.end, at[4]);
  EXPECT_EQ(end.file, path);
  EXPECT_NE(end.reason.find("cut short"), std::string::npos) << end.reason;
  ASSERT_TRUE(log_->StartAppend(end.end, 4, 2).ok());
  AppendWrites(4, 6);
  ASSERT_TRUE(log_->Sync().ok());
  got = ScanAll(&end);
  EXPECT_EQ(got.size(), 7u);
  EXPECT_FALSE(end.torn) << end.reason;
}

TEST_F(SegmentLogTest, DamageStopsTheScanNamingTheFile) {
  OpenLog(300 << 10);
  ScanEnd end;
  ScanAll(&end);
  ASSERT_TRUE(log_->StartAppend(end.end, 0, 1).ok());
  std::vector<Location> at = AppendWrites(0, 9);
  ASSERT_TRUE(log_->Sync().ok());
  // A flipped payload byte in record 5: found only when chunks are checked.
  const std::string p2 = log_->SegmentPath(2);
  {
    int fd = ::open(p2.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    char b = 0;
    const off_t off = static_cast<off_t>(at[5].offset + 5000);
    ASSERT_EQ(::pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    ASSERT_EQ(::pwrite(fd, &b, 1, off), 1);
    ::close(fd);
  }
  OpenLog(300 << 10);
  EXPECT_EQ(ScanAll(&end, /*check=*/false).size(), 10u);
  EXPECT_EQ(ScanAll(&end, /*check=*/true).size(), 5u);
  EXPECT_TRUE(end.torn);
  EXPECT_EQ(end.end, at[5]);
  EXPECT_EQ(end.file, p2);
  EXPECT_NE(end.reason.find("fails its CRC"), std::string::npos) << end.reason;

  // A missing segment in the middle of the chain.
  ASSERT_EQ(::unlink(p2.c_str()), 0);
  OpenLog(300 << 10);
  EXPECT_EQ(ScanAll(&end).size(), 4u);
  EXPECT_TRUE(end.torn);
  EXPECT_NE(end.reason.find("segment 2 is missing"), std::string::npos) << end.reason;

  // A segment of another journal.
  uuid_[0] = 9;
  OpenLog(300 << 10);
  EXPECT_EQ(ScanAll(&end).size(), 0u);
  EXPECT_TRUE(end.torn);
  EXPECT_NE(end.reason.find("another journal"), std::string::npos) << end.reason;
}

// ---- The golden segment file (docs/format-journal.md#golden-segment-file) ----
// One record of every kind the journal writes, encoded with fixed inputs and
// no codec (a codec's bytes may change with its library). The encoders must
// still produce exactly the checked-in bytes, and the log must still read them.
const std::string kGoldenSegment =
    std::string(TM_SOURCE_ROOT) + "/tests/data/segment-golden-v2.seg";
constexpr TimeNs kT0 = 1'700'000'000'000'000'000;

std::string Deterministic(size_t n, int salt) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + salt) % 251);
  return s;
}

std::string GoldenSegment() {
  SegmentHeader h;
  h.space = 5;
  h.uuid[0] = 1;
  h.uuid[1] = 2;
  h.number = 1;
  h.first_seq = 1;
  h.created_ns = kT0;
  std::string out = EncodeSegmentHeader(h);
  std::vector<ChunkDesc> chunks;
  auto data = [&](Seq seq, uint8_t flags, uint8_t op, uint64_t offset, std::string_view bytes,
                  bool zeros, uint32_t zero_len, uint16_t head, uint16_t tail) {
    DataIn in = Write(1, seq, offset, bytes);
    in.flags = flags;
    in.header.op = op;
    in.header.head_skip_sectors = head;
    in.header.tail_skip_sectors = tail;
    in.zeros = zeros;
    if (zeros) in.header.length_bytes = zero_len;
    Status s = EncodeData(in, &out, &chunks);
    EXPECT_TRUE(s.ok()) << s.ToString();
  };
  const std::string big = Deterministic(2 * 65536 + 4096, 1);  // 3 chunks: 64 KiB, 64 KiB, 4 KiB
  const std::string block = Deterministic(4096, 2);
  data(1, kFlagSeqEnd, kOpWrite, 0, big, false, 0, 0, 0);
  data(2, kFlagSeqEnd | kFlagFua, kOpWriteZeroes, 1 << 20, {}, true, 8192, 0, 0);
  data(3, kFlagSeqEnd, kOpWrite, 64 << 10, block, false, 0, 1, 6);  // 512 bytes at +512
  EncodeRecord(RecordKind::kRange, kFlagSeqEnd, 1, 4,
               EncodeRangeBody({kOpTrim, kT0 + 4, 1000, 100}), &out);
  EncodeRecord(RecordKind::kFlush, kFlagFlush, 1, 4, EncodeFlushBody(kT0 + 4), &out);
  EncodeRecord(RecordKind::kBookmark, 0, 1, 4, EncodeBookmarkBody({kT0 + 5, "golden"}), &out);
  EncodeRecord(RecordKind::kUnordered, 0, 1, 4,
               EncodeUnorderedBody({kUnorderedBegin, kT0 + 5, kNoSeq}), &out);
  data(5, kFlagSeqEnd | kFlagUnordered, kOpWrite, 8192, block, false, 0, 0, 0);
  EncodeRecord(RecordKind::kUnordered, 0, 1, 4,
               EncodeUnorderedBody({kUnorderedEnd, kT0 + 5, 5}), &out);
  EncodeRecord(RecordKind::kCheckpoint, 0, 1, 5, EncodeCheckpointBody(kT0 + 6), &out);
  data(6, 0, kOpImport, 0, block, false, 0, 0, 0);
  const size_t last = out.size();
  EncodeRecord(RecordKind::kImport, kFlagSeqEnd, 1, 6, EncodeImportBody({kImportEnd, kT0 + 7}),
               &out);
  PadRecord(&out, last, static_cast<uint32_t>((kPadAlign - out.size() % kPadAlign) % kPadAlign));
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(GoldenSegmentTest, EncodingMatchesCheckedInBytes) {
  const std::string want = GoldenSegment();
  const char* regen = std::getenv("TM_REGENERATE_GOLDEN");
  if (regen != nullptr && std::string(regen) == "1") {
    std::ofstream f(kGoldenSegment, std::ios::binary | std::ios::trunc);
    f.write(want.data(), static_cast<std::streamsize>(want.size()));
    ASSERT_TRUE(f.good()) << "cannot write " << kGoldenSegment;
  }
  const std::string got = ReadFile(kGoldenSegment);
  ASSERT_FALSE(got.empty()) << kGoldenSegment
                            << " is missing: if the format change is intended, run with "
                               "TM_REGENERATE_GOLDEN=1 and check the file in";
  ASSERT_EQ(got.size(), want.size()) << "segment format 2 changed size";
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], want[i]) << "segment format 2 changed at byte " << i;
  }
}

// The checked-in file read through the log, as a journal reads it: every
// record, its fields and its bytes.
TEST(GoldenSegmentTest, CheckedInFileReads) {
  std::string tmpl = ::testing::TempDir() + "/golden_segment.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  fs::create_directories(dir + "/segments/00000005");
  fs::copy_file(kGoldenSegment, dir + "/segments/00000005/0000000000000001.seg");
  std::array<uint8_t, 16> uuid{};
  uuid[0] = 1;
  uuid[1] = 2;
  auto log = SegmentLog::Open(dir, 5, uuid, LogOptions{}, /*create=*/false);
  ASSERT_TRUE(log) << log.error().ToString();
  std::vector<std::string> lines;
  const std::string file = ReadFile(kGoldenSegment);
  auto end = log.value()->Scan({}, /*check_chunks=*/true, [&](const Location& at, const Record& r) {
    std::string l = std::string(KindName(r.header.kind)) + " seq=" + std::to_string(r.header.seq) +
                    " flags=" + std::to_string(r.header.flags) + " at=" + std::to_string(at.offset);
    if (r.header.kind == RecordKind::kData) {
      l += " op=" + std::to_string(r.data.op) + " extent=" + std::to_string(r.data.offset_bytes) +
           "+" + std::to_string(r.data.length_bytes) + " chunks=" + std::to_string(r.chunks.size()) +
           " skip=" + std::to_string(r.data.head_skip_sectors) + "," +
           std::to_string(r.data.tail_skip_sectors);
      std::string raw;
      for (const ChunkDesc& c : r.chunks) {
        std::string part(c.raw_len, '\0');
        if (!(c.flags & kChunkZero)) {
          EXPECT_TRUE(ReadChunk(c, std::string_view(file).substr(at.offset + c.payload_offset,
                                                                 c.stored_len),
                                part.data())
                          .ok());
        }
        raw += part;
      }
      const std::string want_raw = r.header.seq == 1   ? Deterministic(2 * 65536 + 4096, 1)
                                   : r.header.seq == 2 ? std::string(8192, '\0')
                                                       : Deterministic(4096, 2);
      EXPECT_TRUE(raw == want_raw) << "seq " << r.header.seq;
    } else if (r.header.kind == RecordKind::kBookmark) {
      l += " name=" + DecodeBookmarkBody(r.body).value().name;
    } else if (r.header.kind == RecordKind::kRange) {
      auto b = DecodeRangeBody(r.body).value();
      l += " blocks=" + std::to_string(b.first_block) + "+" + std::to_string(b.block_count);
    } else if (r.header.kind == RecordKind::kUnordered) {
      l += " upto=" + std::to_string(DecodeUnorderedBody(r.body).value().upto);
    }
    lines.push_back(l);
    return Status::Ok();
  });
  ASSERT_TRUE(end) << end.error().ToString();
  EXPECT_FALSE(end.value().torn) << end.value().reason;
  const std::vector<std::string> want = {
      "data seq=1 flags=8 at=64 op=1 extent=0+135168 chunks=3 skip=0,0",
      "data seq=2 flags=9 at=135448 op=3 extent=1048576+8192 chunks=1 skip=0,0",
      "data seq=3 flags=8 at=135568 op=1 extent=65536+4096 chunks=1 skip=1,6",
      "range seq=4 flags=8 at=139784 blocks=1000+100",
      "flush seq=4 flags=2 at=139841",
      "bookmark seq=4 flags=0 at=139881 name=golden",
      "unordered seq=4 flags=0 at=139929 upto=18446744073709551615",
      "data seq=5 flags=12 at=139978 op=1 extent=8192+4096 chunks=1 skip=0,0",
      "unordered seq=4 flags=0 at=144194 upto=5",
      "checkpoint seq=5 flags=0 at=144243",
      "data seq=6 flags=0 at=144283 op=4 extent=0+4096 chunks=1 skip=0,0",
      "import seq=6 flags=8 at=148499",
  };
  for (size_t i = 0; i < std::max(lines.size(), want.size()); ++i) {
    EXPECT_EQ(i < lines.size() ? lines[i] : "(none)", i < want.size() ? want[i] : "(none)");
  }
  EXPECT_EQ(end.value().end.offset % kPadAlign, 0u);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace tidemark::journal::seg
