// Tests of the tap->target stream protocol (docs/protocol.md): frame and
// WRITES round trips, compression, leveldb-style damage tests, the frame
// reader over arbitrary chunking, and the golden bytes of protocol version 1.
#include "tidemark/journal/wire.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tidemark/journal/crc32c.h"
#include "wire_test_util.h"

namespace tidemark::wire {
namespace {

using namespace testing_util;  // NOLINT: the shared fixtures


// The golden frames, uncompressed (zstd's output may change between library
// versions; compressed frames are tested by round trip instead).
std::vector<Frame> GoldenFrames() {
  return {
      {FrameType::kHello, EncodeHello(FixedHello())},
      {FrameType::kWelcome, EncodeWelcome(FixedWelcome())},
      {FrameType::kImport, EncodeImport(FixedImport())},
      {FrameType::kImportDone, EncodeImportDone(FixedImportDone())},
      {FrameType::kWrites, WritesPayload(FixedWrites())},
      {FrameType::kAck, EncodeAck(43)},
      {FrameType::kBookmark, EncodeBookmark(FixedBookmark())},
      {FrameType::kBookmarkDone, EncodeBookmarkDone(FixedBookmarkDone())},
      {FrameType::kUnordered, EncodeUnordered(FixedUnordered(true))},
      {FrameType::kUnordered, EncodeUnordered(FixedUnordered(false))},
      {FrameType::kPing, ""},
      {FrameType::kPong, ""},
      {FrameType::kError, EncodeError(FixedError())},
  };
}

std::string GoldenStream() {
  std::string out;
  for (const Frame& f : GoldenFrames()) AppendFrame(&out, f.type, f.payload, false);
  return out;
}

const std::string kGoldenPath = std::string(TM_SOURCE_ROOT) + "/tests/data/protocol-golden-v1.bin";

std::string ReadGolden() {
  std::ifstream f(kGoldenPath, std::ios::binary);
  if (!f.good()) return {};
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST(GoldenTest, EncodingMatchesCheckedInBytes) {
  const std::string want = GoldenStream();
  const char* regen = std::getenv("TM_REGENERATE_GOLDEN");
  if (regen != nullptr && std::string(regen) == "1") {
    std::ofstream f(kGoldenPath, std::ios::binary | std::ios::trunc);
    f.write(want.data(), static_cast<std::streamsize>(want.size()));
    ASSERT_TRUE(f.good()) << "cannot write " << kGoldenPath;
    std::printf("regenerated %s (%zu bytes)\n", kGoldenPath.c_str(), want.size());
  }
  const std::string got = ReadGolden();
  ASSERT_FALSE(got.empty()) << kGoldenPath
                            << " is missing: if the protocol change is intended, run with "
                               "TM_REGENERATE_GOLDEN=1 and check the file in";
  ASSERT_EQ(got.size(), want.size()) << "protocol version 1 changed size";
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], want[i]) << "protocol version 1 changed at byte " << i;
  }
}

TEST(GoldenTest, CheckedInBytesDecode) {
  const std::string got = ReadGolden();
  ASSERT_FALSE(got.empty()) << kGoldenPath << " is missing";
  FrameReader reader;
  reader.Feed(got);
  std::vector<Frame> frames;
  for (;;) {
    auto f = reader.Next();
    ASSERT_TRUE(f) << f.error().ToString();
    if (!f.value()) break;
    frames.push_back(std::move(*f.value()));
  }
  EXPECT_EQ(reader.buffered_bytes(), 0u);
  EXPECT_EQ(reader.stream_offset(), got.size());
  ASSERT_EQ(frames.size(), 13u);
  EXPECT_EQ(frames, GoldenFrames());

  EXPECT_EQ(DecodeHello(frames[0].payload).value(), FixedHello());
  EXPECT_EQ(DecodeWelcome(frames[1].payload).value(), FixedWelcome());
  EXPECT_EQ(DecodeImport(frames[2].payload).value(), FixedImport());
  EXPECT_EQ(DecodeImportDone(frames[3].payload).value(), FixedImportDone());
  EXPECT_EQ(DecodeWrites(frames[4].payload).value(), FixedWrites());
  EXPECT_EQ(DecodeAck(frames[5].payload).value(), 43u);
  EXPECT_EQ(DecodeBookmark(frames[6].payload).value(), FixedBookmark());
  EXPECT_EQ(DecodeBookmarkDone(frames[7].payload).value(), FixedBookmarkDone());
  EXPECT_EQ(DecodeUnordered(frames[8].payload).value(), FixedUnordered(true));
  EXPECT_EQ(DecodeUnordered(frames[9].payload).value(), FixedUnordered(false));
  EXPECT_EQ(DecodeError(frames[12].payload).value(), FixedError());

  // The layout docs/protocol.md shows: the ACK frame, byte for byte.
  const std::string ack = EncodeFrame(FrameType::kAck, EncodeAck(43), false);
  EXPECT_NE(got.find(ack), std::string::npos);
  EXPECT_EQ(ack.substr(0, 16), std::string("TKM1\x04\0\0\0\x08\0\0\0\x08\0\0\0", 16));
  EXPECT_EQ(ack.substr(16, 8), LE(43, 8));
  EXPECT_EQ(ack.substr(24), LE(Crc32c(ack.data(), 24), 4));
  // The JSON is compact with sorted keys.
  EXPECT_EQ(frames[8].payload, R"({"begin":true,"seq":43,"time_ns":1795428899123456798})");
  EXPECT_EQ(frames[1].payload.substr(0, 30), R"({"durable_seq":41,"protocol":1)");
}

// ---- frames ----------------------------------------------------------------

const FrameType kAllTypes[] = {FrameType::kHello, FrameType::kWelcome,  FrameType::kWrites,
                               FrameType::kAck,   FrameType::kBookmark, FrameType::kBookmarkDone,
                               FrameType::kError, FrameType::kImport,   FrameType::kImportDone,
                               FrameType::kPing,  FrameType::kPong,     FrameType::kUnordered,
                               FrameType::kHashRequest, FrameType::kHashes};

TEST(FrameTest, RoundTripEveryType) {
  for (const Frame& f : GoldenFrames()) {
    for (bool compress : {false, true}) {
      std::string enc = EncodeFrame(f.type, f.payload, compress);
      auto h = DecodeFrameHeader(enc);
      ASSERT_TRUE(h) << h.error().ToString();
      EXPECT_EQ(h.value().type, f.type);
      EXPECT_EQ(h.value().raw_length, f.payload.size());
      EXPECT_EQ(h.value().frame_bytes(), enc.size());
      auto d = DecodeFrame(enc);
      ASSERT_TRUE(d) << FrameTypeName(f.type) << ": " << d.error().ToString();
      EXPECT_EQ(d.value(), f);
    }
  }
  for (FrameType t : kAllTypes) {
    EXPECT_TRUE(IsKnownFrameType(t));
    EXPECT_NE(FrameTypeName(t), "unknown");
    EXPECT_LT(static_cast<uint8_t>(t), kTypeSkippable);
  }
  EXPECT_FALSE(IsKnownFrameType(static_cast<FrameType>(0)));
  EXPECT_FALSE(IsKnownFrameType(static_cast<FrameType>(15)));
  // AppendFrame appends exactly what EncodeFrame returns.
  std::string s = "prefix";
  AppendFrame(&s, FrameType::kAck, EncodeAck(7), false);
  EXPECT_EQ(s, "prefix" + EncodeFrame(FrameType::kAck, EncodeAck(7), false));
  // An empty payload and the largest one.
  EXPECT_EQ(DecodeFrame(EncodeFrame(FrameType::kPing, "", true)).value().payload, "");
  std::string big(kMaxPayloadBytes, 'x');
  std::string enc = EncodeFrame(FrameType::kImport, big, false);
  EXPECT_EQ(enc.size(), kFrameHeaderBytes + kMaxPayloadBytes + kFrameTrailerBytes);
  EXPECT_EQ(DecodeFrame(enc).value().payload.size(), big.size());
}

TEST(FrameTest, CompressesOnlyWhenSmaller) {
  // Compressible: zstd, flags bit 0, length < raw_length.
  WritesEncoder enc;
  std::string zeros(64 << 10, '\0');
  enc.Add({1, kT, 0, EntryOp::kWrite, 0, 0, static_cast<uint32_t>(zeros.size()), zeros});
  std::string payload = enc.Finish();
  std::string f = EncodeFrame(FrameType::kWrites, payload, true);
  FrameHeader h = DecodeFrameHeader(f).value();
  EXPECT_TRUE(h.compressed());
  EXPECT_EQ(h.flags, kFrameZstd);
  EXPECT_EQ(h.raw_length, payload.size());
  EXPECT_LT(h.length, payload.size() / 8);
  EXPECT_EQ(DecodeFrame(f).value().payload, payload);
  // Without try_compress, never.
  EXPECT_FALSE(
      DecodeFrameHeader(EncodeFrame(FrameType::kWrites, payload, false)).value().compressed());
  // Incompressible or tiny: sent raw.
  for (const std::string& raw : {RandomBytes(64 << 10, 1), std::string("{}"), EncodeAck(5)}) {
    std::string r = EncodeFrame(FrameType::kImport, raw, true);
    FrameHeader rh = DecodeFrameHeader(r).value();
    EXPECT_FALSE(rh.compressed());
    EXPECT_EQ(rh.length, raw.size());
    EXPECT_EQ(r.size(), raw.size() + kFrameHeaderBytes + kFrameTrailerBytes);
  }
}

// ---- frame damage ----------------------------------------------------------

std::string SampleFrame() {
  return EncodeFrame(FrameType::kWrites, WritesPayload(FixedWrites()), false);
}
std::string ZstdFrame() {
  std::string f = EncodeFrame(FrameType::kImport, std::string(8192, 'a'), true);
  EXPECT_TRUE(DecodeFrameHeader(f).value().compressed());
  return f;
}

TEST(FrameDamageTest, EveryBitFlipIsCaught) {
  for (const std::string& good :
       {SampleFrame(), ZstdFrame(), EncodeFrame(FrameType::kPing, "", false)}) {
    ASSERT_TRUE(DecodeFrame(good));
    for (size_t bit = 0; bit < good.size() * 8; ++bit) {
      std::string d = good;
      d[bit / 8] = static_cast<char>(d[bit / 8] ^ (1 << (bit % 8)));
      EXPECT_TRUE(IsCorruption(DecodeFrame(d))) << "bit " << bit;
    }
  }
}

TEST(FrameDamageTest, BadMagic) {
  std::string f = SampleFrame();
  f[3] = '2';
  EXPECT_TRUE(IsCorruption(DecodeFrameHeader(f), "bad frame magic 0x324d4b54"));
  EXPECT_TRUE(IsCorruption(DecodeFrame(Reseal(f)), "magic"));
}

TEST(FrameDamageTest, BadCrcInHeaderAndPayload) {
  std::string f = SampleFrame();
  ASSERT_TRUE(DecodeFrame(f));
  std::string p = f;
  p[kFrameHeaderBytes + 40] ^= 0x10;
  EXPECT_TRUE(IsCorruption(DecodeFrame(p), "WRITES frame CRC mismatch"));
  std::string t = f;
  t.back() ^= 0x01;
  EXPECT_TRUE(IsCorruption(DecodeFrame(t), "CRC mismatch"));
  // A header bit that passes the header checks (the type: WRITES -> ACK).
  std::string ty = f;
  ty[4] = static_cast<char>(FrameType::kAck);
  EXPECT_TRUE(DecodeFrameHeader(ty));
  EXPECT_TRUE(IsCorruption(DecodeFrame(ty), "ACK frame CRC mismatch"));
}

TEST(FrameDamageTest, TruncatedTailAndTrailingBytes) {
  const std::string f = SampleFrame();
  for (size_t n = 0; n < f.size(); ++n) {
    EXPECT_TRUE(IsCorruption(DecodeFrame(f.substr(0, n)))) << n;
    FrameReader r;
    r.Feed(f.substr(0, n));
    auto next = r.Next();
    ASSERT_TRUE(next) << n << ": a torn frame only waits for more bytes";
    EXPECT_FALSE(next.value()) << n;
  }
  EXPECT_TRUE(IsCorruption(DecodeFrame(f + "x"), "header says"));
  EXPECT_TRUE(IsCorruption(DecodeFrameHeader(f.substr(0, 15)), "truncated"));
}

TEST(FrameDamageTest, LengthOverTheCap) {
  std::string over = LE(kFrameMagic, 4) + LE(3, 1) + LE(0, 3) + LE(kMaxPayloadBytes + 1, 4) +
                     LE(kMaxPayloadBytes + 1, 4);
  EXPECT_TRUE(IsCorruption(DecodeFrameHeader(over), "exceeds the cap"));
  std::string raw_over =
      LE(kFrameMagic, 4) + LE(3, 1) + LE(1, 1) + LE(0, 2) + LE(100, 4) + LE(0xffffffffu, 4);
  EXPECT_TRUE(IsCorruption(DecodeFrameHeader(raw_over), "exceeds the cap"));
  std::string at_cap =
      LE(kFrameMagic, 4) + LE(3, 1) + LE(0, 3) + LE(kMaxPayloadBytes, 4) + LE(kMaxPayloadBytes, 4);
  EXPECT_TRUE(DecodeFrameHeader(at_cap));
  // The reader refuses it from the header alone, without awaiting 64 MiB.
  FrameReader r;
  r.Feed(over);
  EXPECT_TRUE(IsCorruption(r.Next(), "frame 0 at stream byte 0"));
}

TEST(FrameDamageTest, ReservedAndFlagBits) {
  const std::string f = SampleFrame();
  for (int bit = 1; bit < 8; ++bit) {
    std::string d = f;
    d[5] = static_cast<char>(1 << bit);
    EXPECT_TRUE(IsCorruption(DecodeFrame(Reseal(d)), "unknown frame flags")) << bit;
  }
  for (int byte : {6, 7}) {
    std::string d = f;
    d[byte] = 1;
    EXPECT_TRUE(IsCorruption(DecodeFrame(Reseal(d)), "reserved")) << byte;
  }
  // raw_length != length without compression.
  std::string d = f;
  d[12] = static_cast<char>(d[12] + 1);
  EXPECT_TRUE(IsCorruption(DecodeFrame(Reseal(d)), "raw length"));
  // PING and PONG carry nothing.
  for (FrameType t : {FrameType::kPing, FrameType::kPong}) {
    EXPECT_TRUE(IsCorruption(DecodeFrame(EncodeFrame(t, "x", false)), "with a payload"));
  }
}

TEST(FrameDamageTest, UnknownTypes) {
  const std::string payload = "future";
  for (int type : {0, 15, 100, 127}) {
    std::string d = EncodeFrame(FrameType::kError, payload, false);
    d[4] = static_cast<char>(type);
    EXPECT_TRUE(IsCorruption(DecodeFrame(Reseal(d)), "unknown frame type " + std::to_string(type)));
  }
  for (int type : {128, 200, 255}) {
    std::string d = Reseal([&] {
      std::string e = EncodeFrame(FrameType::kError, payload, false);
      e[4] = static_cast<char>(type);
      return e;
    }());
    auto f = DecodeFrame(d);
    ASSERT_TRUE(f) << type << ": " << f.error().ToString();
    EXPECT_FALSE(IsKnownFrameType(f.value().type));
    EXPECT_EQ(f.value().payload, payload);
    // The reader skips it and returns the next frame.
    FrameReader r;
    r.Feed(d + EncodeFrame(FrameType::kAck, EncodeAck(9), false) + d);
    auto next = r.Next();
    ASSERT_TRUE(next && next.value());
    EXPECT_EQ(next.value()->type, FrameType::kAck);
    EXPECT_FALSE(r.Next().value());
    EXPECT_EQ(r.skipped_frames(), 2u);
    EXPECT_EQ(r.buffered_bytes(), 0u);
    // Skipped frames are still checked.
    std::string bad = d;
    bad[kFrameHeaderBytes] ^= 1;
    FrameReader r2;
    r2.Feed(bad);
    EXPECT_TRUE(IsCorruption(r2.Next(), "CRC mismatch"));
  }
}

TEST(FrameDamageTest, DecompressedSizeMismatch) {
  const std::string f = ZstdFrame();  // 8192 raw bytes
  for (int64_t delta : {-1, 1, -8192, 4096}) {
    std::string d = f;
    d.replace(12, 4, LE(static_cast<uint64_t>(8192 + delta), 4));
    EXPECT_TRUE(IsCorruption(DecodeFrame(Reseal(d)), "does not expand")) << delta;
  }
  // A raw payload flagged as zstd.
  std::string raw = EncodeFrame(FrameType::kImport, "not a zstd frame", false);
  raw[5] = 1;
  EXPECT_TRUE(IsCorruption(DecodeFrame(Reseal(raw)), "IMPORT frame"));
}

// ---- FrameReader -----------------------------------------------------------

std::vector<Frame> ReadAll(FrameReader* r) {
  std::vector<Frame> out;
  for (;;) {
    auto f = r->Next();
    EXPECT_TRUE(f) << f.error().ToString();
    if (!f || !f.value()) return out;
    out.push_back(std::move(*f.value()));
  }
}

// The golden frames, with a compressed one and a large one among them.
std::vector<Frame> MixedFrames() {
  std::vector<Frame> frames = GoldenFrames();
  WritesEncoder enc;
  std::string zeros(256 << 10, '\0');
  enc.Add({100, kT, 0, EntryOp::kWrite, 0, 0, static_cast<uint32_t>(zeros.size()), zeros});
  frames.push_back({FrameType::kWrites, enc.Finish()});
  frames.push_back({FrameType::kImport, EncodeImport({0, 0, RandomBytes(1 << 20, 9)})});
  frames.push_back({FrameType::kAck, EncodeAck(100)});
  return frames;
}

std::string Stream(const std::vector<Frame>& frames) {
  std::string s;
  for (const Frame& f : frames) AppendFrame(&s, f.type, f.payload, true);
  return s;
}

TEST(FrameReaderTest, OneByteAtATime) {
  const std::string stream = GoldenStream();
  FrameReader r;
  std::vector<Frame> got;
  for (char c : stream) {
    r.Feed(std::string_view(&c, 1));
    for (Frame& f : ReadAll(&r)) got.push_back(std::move(f));
  }
  EXPECT_EQ(got, GoldenFrames());
  EXPECT_EQ(r.buffered_bytes(), 0u);
  EXPECT_EQ(r.stream_offset(), stream.size());
}

TEST(FrameReaderTest, RandomChunks) {
  const std::vector<Frame> frames = MixedFrames();
  const std::string stream = Stream(frames);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    FrameReader r;
    std::vector<Frame> got;
    for (size_t pos = 0; pos < stream.size();) {
      size_t max = seed % 2 ? 64 : 300000;
      size_t n = std::min<size_t>(stream.size() - pos, 1 + rng() % max);
      r.Feed(std::string_view(stream).substr(pos, n));
      pos += n;
      for (Frame& f : ReadAll(&r)) got.push_back(std::move(f));
    }
    ASSERT_EQ(got, frames) << "seed " << seed;
    EXPECT_EQ(r.buffered_bytes(), 0u);
  }
}

TEST(FrameReaderTest, ErrorsAreSticky) {
  std::string stream = GoldenStream();
  const size_t second = EncodeFrame(FrameType::kHello, EncodeHello(FixedHello()), false).size();
  stream[second + kFrameHeaderBytes + 3] ^= 0x40;  // WELCOME's payload
  FrameReader r;
  r.Feed(stream);
  auto first = r.Next();
  ASSERT_TRUE(first && first.value());
  EXPECT_EQ(first.value()->type, FrameType::kHello);
  auto bad = r.Next();
  EXPECT_TRUE(IsCorruption(
      bad, "frame 1 at stream byte " + std::to_string(second) + ": WELCOME frame CRC mismatch"));
  r.Feed(EncodeFrame(FrameType::kPing, "", false));
  EXPECT_TRUE(IsCorruption(r.Next(), "WELCOME frame CRC mismatch"));
}

TEST(FrameReaderTest, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(3);
  const std::string good = Stream(GoldenFrames());
  for (int i = 0; i < 3000; ++i) {
    std::string g = good.substr(0, rng() % good.size());
    for (int k = 0, n = static_cast<int>(rng() % 4); k < n && !g.empty(); ++k) {
      g[rng() % g.size()] = static_cast<char>(rng());
    }
    if (i % 3 == 0) g = RandomBytes(rng() % 200, rng());
    FrameReader r;
    r.Feed(g);
    for (int k = 0; k < 20; ++k) {
      auto f = r.Next();
      if (!f || !f.value()) break;
      DecodeWrites(f.value()->payload).has_value();
      DecodeHello(f.value()->payload).has_value();
      DecodeImport(f.value()->payload).has_value();
    }
    DecodeFrame(g).has_value();
    DecodeWrites(g).has_value();
    DecodeWelcome(g).has_value();
    DecodeImport(g).has_value();
    DecodeAck(g).has_value();
  }
}

// ---- WRITES ----------------------------------------------------------------

TEST(WritesTest, RoundTrip) {
  std::vector<WriteEntry> entries = FixedWrites();
  entries.push_back({44, -1, 0xffff, EntryOp::kWriteZeroes, kSeqFua, ~0ull - 511, 0xfffffe00u, {}});
  std::string big = Pattern(1 << 20, 5);
  entries.push_back({kNoSeq - 1, kT, 2, EntryOp::kWrite, 0, 512, 1 << 20, big});
  entries.push_back({kNoSeq - 1, kT, 2, EntryOp::kFlush, 0, 0, 0, {}});
  WritesEncoder enc;
  for (const WriteEntry& e : entries) enc.Add(e);
  EXPECT_EQ(enc.count(), entries.size());
  EXPECT_EQ(enc.payload_bytes(), 4 + entries.size() * kWriteEntryHeaderBytes + 1024 + big.size());
  const std::string payload = enc.Finish();
  EXPECT_EQ(enc.count(), 0u);
  EXPECT_EQ(enc.Finish(), LE(0, 4));
  auto d = DecodeWrites(payload);
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d.value(), entries);
  // Data points into the payload, not into a copy.
  EXPECT_EQ(d.value()[0].data.data(), payload.data() + 4 + kWriteEntryHeaderBytes);
  EXPECT_TRUE(DecodeWrites(LE(0, 4)).value().empty());
  // AppendWriteEntry is the encoder's entry format.
  std::string manual = LE(1, 4);
  AppendWriteEntry(&manual, FixedWrites()[0]);
  EXPECT_EQ(manual.size(), 4 + kWriteEntryHeaderBytes + 1024);
  EXPECT_EQ(manual.substr(4, 32), LE(42, 8) + LE(kT, 8) + LE(0, 2) + LE(1, 1) + LE(kSeqFua, 1) +
                                      LE(8192, 8) + LE(1024, 4));
  EXPECT_EQ(DecodeWrites(manual).value()[0], FixedWrites()[0]);
}

TEST(WritesTest, WriteOpConversion) {
  std::string data = Pattern(4096, 1);
  WriteOp op{7, kT, OpKind::kWrite, 4096, 4096, data, kSeqFua};
  WriteEntry e = ToWriteEntry(3, op);
  EXPECT_EQ(e, (WriteEntry{7, kT, 3, EntryOp::kWrite, kSeqFua, 4096, 4096, data}));
  WriteOp back = ToWriteOp(e);
  EXPECT_EQ(back.seq, op.seq);
  EXPECT_EQ(back.op, op.op);
  EXPECT_EQ(back.offset_bytes, op.offset_bytes);
  EXPECT_EQ(back.length_bytes, op.length_bytes);
  EXPECT_EQ(back.data, data);
  EXPECT_EQ(back.flags, kSeqFua);
  WriteOp trim{8, kT, OpKind::kTrim, 0, 1 << 30, {}, 0};
  EXPECT_EQ(ToWriteEntry(0, trim).op, EntryOp::kTrim);
  EXPECT_EQ(ToWriteOp(ToWriteEntry(0, trim)).length_bytes, 1u << 30);
}

std::string Entry(Seq seq, uint8_t op, uint8_t flags, uint64_t offset, uint32_t length,
                  std::string data = {}) {
  return LE(seq, 8) + LE(kT, 8) + LE(0, 2) + LE(op, 1) + LE(flags, 1) + LE(offset, 8) +
         LE(length, 4) + data;
}

TEST(WritesTest, Damage) {
  const std::string w = Entry(10, 1, 0, 4096, 512, std::string(512, 'w'));
  const std::string t = Entry(11, 2, 0, 0, 4096);
  ASSERT_TRUE(DecodeWrites(LE(2, 4) + w + t));
  struct Case {
    std::string payload, want;
  };
  const Case cases[] = {
      {"", "shorter than its count"},
      {LE(0, 3), "shorter than its count"},
      {LE(3, 4) + w + t, "WRITES entry 2: truncated header"},
      {LE(3, 4) + w + t + std::string(32, '\0'), "WRITES entry 2: unknown op 0"},
      {LE(1, 4) + w + t, "32 trailing bytes after 1 entries"},
      {LE(2, 4) + w + t.substr(0, 31), "WRITES entry 1: truncated header"},
      {LE(2, 4) + w + Entry(11, 1, 0, 0, 4096, "abc") + std::string(29, 'x'),
       "WRITES entry 1: data truncated"},
      {LE(1, 4) + Entry(1, 1, 0, 4096, 512, std::string(511, 'w')),
       "WRITES entry 0: data truncated"},
      {LE(2, 4) + w + Entry(11, 2, 0, 100, 512),
       "entry 1: offset 100 or length 512 not a multiple"},
      {LE(2, 4) + w + Entry(11, 3, 0, 512, 1000), "entry 1: offset 512 or length 1000 not a mult"},
      {LE(2, 4) + w + Entry(10, 2, 0, 0, 512), "entry 1: seq 10 not above the previous write's 10"},
      {LE(2, 4) + w + Entry(9, 2, 0, 0, 512), "entry 1: seq 9 not above"},
      {LE(2, 4) + w + Entry(9, 5, 0, 0, 0), "entry 1: flush seq 9 below the previous write's 10"},
      {LE(2, 4) + w + Entry(10, 5, 0, 0, 512), "entry 1: flush with an offset, length or flags"},
      {LE(2, 4) + w + Entry(10, 5, 0, 512, 0), "flush with an offset"},
      {LE(2, 4) + w + Entry(10, 5, kSeqFua, 0, 0), "flush with an offset, length or flags"},
      {LE(1, 4) + Entry(10, 4, 0, 0, 512), "entry 0: unknown op 4"},
      {LE(1, 4) + Entry(10, 6, 0, 0, 512), "entry 0: unknown op 6"},
      {LE(1, 4) + Entry(10, 2, 2, 0, 512), "entry 0: unknown flags 0x2"},
      {LE(1, 4) + Entry(10, 2, 0x80, 0, 512), "entry 0: unknown flags 0x80"},
      {LE(0xffffffffu, 4) + w, "does not fit"},
  };
  for (const Case& c : cases) EXPECT_TRUE(IsCorruption(DecodeWrites(c.payload), c.want)) << c.want;
  // What is allowed: a flush at the previous write's seq, a flush first, a
  // later write above a flush, trims without data.
  EXPECT_TRUE(DecodeWrites(LE(3, 4) + w + Entry(10, 5, 0, 0, 0) + t));
  EXPECT_TRUE(DecodeWrites(LE(2, 4) + Entry(3, 5, 0, 0, 0) + w));
  EXPECT_EQ(DecodeWrites(LE(1, 4) + t).value()[0].data.size(), 0u);
}

}  // namespace
}  // namespace tidemark::wire
