// Tests of the tap->target stream protocol (docs/protocol.md): frame and
// payload round trips, compression, leveldb-style damage tests, the frame
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

namespace tidemark::wire {
namespace {

template <class T>
Status StatusOf(const Result<T>& r) {
  return r ? Status::Ok() : r.error();
}

template <class T>
::testing::AssertionResult IsCorruption(const Result<T>& r, std::string_view want_in_message = {}) {
  Status s = StatusOf(r);
  if (s.code() == Code::kCorruption && s.message().find(want_in_message) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "gave '" << s.ToString() << "', want corruption with '" << want_in_message << "'";
}

std::string LE(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// Recomputes a frame's CRC trailer after a test edited it, so that the check
// under test, not the CRC, is what refuses it.
std::string Reseal(std::string frame) {
  uint32_t crc = Crc32c(frame.data(), frame.size() - kFrameTrailerBytes);
  frame.replace(frame.size() - kFrameTrailerBytes, kFrameTrailerBytes, LE(crc, 4));
  return frame;
}

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + i / 7 + seed) & 0xff);
  return s;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// ---- the golden stream -----------------------------------------------------

constexpr TimeNs kT = 1795428899123456789;  // 2026-11-23T10:14:59.123456789Z

Hello FixedHello() {
  return Hello{
      1,     "acme",     "s3cret-token",
      "vm1", "tap-7f3a", {{"vm1-disk0", 1ull << 30, 4096}, {"vm1-disk1", 1ull << 29, 4096}}};
}
Welcome FixedWelcome() {
  return Welcome{1, 41, {{"vm1-disk0", "ready", 1ull << 30}, {"vm1-disk1", "importing", 1 << 20}}, {}};
}
std::string_view ImportData() {
  static const std::string data = Pattern(512, 3);
  return data;
}
ImportChunk FixedImport() { return ImportChunk{1, 1 << 20, ImportData()}; }
ImportDone FixedImportDone() { return ImportDone{1, kT - 1000}; }
std::string_view WriteData() {
  static const std::string data = Pattern(1024, 0);
  return data;
}
std::vector<WriteEntry> FixedWrites() {
  return {
      {42, kT, 0, EntryOp::kWrite, kSeqFua, 8192, 1024, WriteData()},
      {43, kT + 1, 1, EntryOp::kTrim, 0, 1 << 20, 64 << 10, {}},
      {43, kT + 2, 0, EntryOp::kFlush, 0, 0, 0, {}},
  };
}
Bookmark FixedBookmark() { return Bookmark{"before-upgrade", 43, kT + 5}; }
BookmarkDone FixedBookmarkDone() { return BookmarkDone{"before-upgrade", 43, kT + 5}; }
Unordered FixedUnordered(bool begin) {
  return begin ? Unordered{true, 43, kT + 9} : Unordered{false, 57, kT + 20};
}
Error FixedError() { return Error{std::string(kErrNoSpace), "tenant acme is over its quota"}; }

std::string WritesPayload(const std::vector<WriteEntry>& entries) {
  WritesEncoder enc;
  for (const WriteEntry& e : entries) enc.Add(e);
  return enc.Finish();
}

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

// ---- ACK and IMPORT --------------------------------------------------------

TEST(AckTest, RoundTripAndDamage) {
  for (Seq s : {Seq{0}, Seq{1}, Seq{43}, kNoSeq - 1, kNoSeq}) {
    EXPECT_EQ(EncodeAck(s).size(), 8u);
    EXPECT_EQ(DecodeAck(EncodeAck(s)).value(), s);
  }
  for (size_t n : {0, 7, 9, 16}) {
    EXPECT_TRUE(IsCorruption(DecodeAck(std::string(n, '\0')), "expected 8")) << n;
  }
}

TEST(ImportTest, RoundTripAndDamage) {
  for (const ImportChunk& c :
       {FixedImport(), ImportChunk{0, 0, {}}, ImportChunk{0xffff, ~0ull - 511, ImportData()}}) {
    std::string p = EncodeImport(c);
    EXPECT_EQ(p.size(), kImportHeaderBytes + c.data.size());
    auto d = DecodeImport(p);
    ASSERT_TRUE(d) << d.error().ToString();
    EXPECT_EQ(d.value(), c);
    if (!c.data.empty()) {
      EXPECT_EQ(d.value().data.data(), p.data() + kImportHeaderBytes);
    }
  }
  const std::string good = EncodeImport(FixedImport());
  EXPECT_EQ(good.substr(0, 16), LE(1, 2) + LE(0, 2) + LE(512, 4) + LE(1 << 20, 8));
  std::string reserved = good;
  reserved[3] = 1;
  EXPECT_TRUE(IsCorruption(DecodeImport(reserved), "reserved"));
  EXPECT_TRUE(IsCorruption(DecodeImport(good.substr(0, 15)), "shorter than its header"));
  EXPECT_TRUE(IsCorruption(DecodeImport(good.substr(0, good.size() - 1)), "but 511 data bytes"));
  EXPECT_TRUE(IsCorruption(DecodeImport(good + "x"), "but 513 data bytes"));
  std::string odd = LE(0, 2) + LE(0, 2) + LE(100, 4) + LE(0, 8) + std::string(100, 'x');
  EXPECT_TRUE(IsCorruption(DecodeImport(odd), "not a multiple of 512"));
  std::string off = LE(0, 2) + LE(0, 2) + LE(512, 4) + LE(7, 8) + std::string(512, 'x');
  EXPECT_TRUE(IsCorruption(DecodeImport(off), "offset 7"));
}

TEST(HashesTest, RoundTripAndDamage) {
  BlockHashes req{3, 256, 41, 1 << 20, {}};
  std::string p = EncodeBlockHashes(req);
  EXPECT_EQ(p, LE(3, 2) + LE(0, 2) + LE(256, 4) + LE(41, 8) + LE(1 << 20, 8));
  EXPECT_EQ(DecodeBlockHashes(p, false).value(), req);
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(p, true), "0 hash bytes for 256 blocks"));
  BlockHashes rep = req;
  rep.hashes = std::string(256 * kBlockHashBytes, 'h');
  std::string q = EncodeBlockHashes(rep);
  EXPECT_EQ(DecodeBlockHashes(q, true).value(), rep);
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(q, false), "hash bytes"));
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(q.substr(0, q.size() - 1), true), "hash bytes"));
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(p.substr(0, 23), false), "shorter than its header"));
  std::string reserved = p;
  reserved[2] = 1;
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(reserved, false), "reserved"));
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(EncodeBlockHashes({0, 0, 1, 0, {}}), false), "count 0"));
  EXPECT_TRUE(IsCorruption(
      DecodeBlockHashes(EncodeBlockHashes({0, kMaxHashBlocks + 1, 1, 0, {}}), false), "count"));
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(EncodeBlockHashes({0, 1, 1, 100, {}}), false),
                           "not a multiple of 512"));
}

TEST(MessagesTest, WelcomeFeaturesAreOptional) {
  Welcome w = FixedWelcome();
  EXPECT_EQ(EncodeWelcome(w).find("features"), std::string::npos);  // golden bytes unchanged
  w.features = {std::string(kFeatureBlockHashes), "later"};
  EXPECT_EQ(DecodeWelcome(EncodeWelcome(w)).value(), w);
}

// ---- JSON messages ---------------------------------------------------------

TEST(MessagesTest, RoundTrips) {
  Hello h = FixedHello();
  EXPECT_EQ(DecodeHello(EncodeHello(h)).value(), h);
  h = Hello{};
  EXPECT_EQ(DecodeHello(EncodeHello(h)).value(), h);  // empty group, no volumes
  h.volumes.push_back({"a \"quoted\" name \u00e9\n", ~0ull, 512});
  EXPECT_EQ(DecodeHello(EncodeHello(h)).value(), h);

  Welcome w = FixedWelcome();
  EXPECT_EQ(DecodeWelcome(EncodeWelcome(w)).value(), w);
  w.durable_seq = kNoSeq;  // nothing durable yet: JSON null
  EXPECT_NE(EncodeWelcome(w).find(R"("durable_seq":null)"), std::string::npos);
  EXPECT_EQ(DecodeWelcome(EncodeWelcome(w)).value(), w);
  w.durable_seq = 0;
  EXPECT_EQ(DecodeWelcome(EncodeWelcome(w)).value(), w);

  for (TimeNs t : {TimeNs{0}, TimeNs{-1}, kT, INT64_MIN, INT64_MAX}) {
    Bookmark b{"b", kNoSeq - 1, t};
    EXPECT_EQ(DecodeBookmark(EncodeBookmark(b)).value(), b);
    BookmarkDone bd{"", 0, t};
    EXPECT_EQ(DecodeBookmarkDone(EncodeBookmarkDone(bd)).value(), bd);
    ImportDone id{0xffff, t};
    EXPECT_EQ(DecodeImportDone(EncodeImportDone(id)).value(), id);
    for (bool begin : {true, false}) {
      Unordered u{begin, 5, t};
      EXPECT_EQ(DecodeUnordered(EncodeUnordered(u)).value(), u);
    }
  }
  for (std::string_view code : {kErrUnauthenticated, kErrForbidden, kErrInvalid, kErrNoSpace,
                                kErrConflict, kErrInternal, kErrUnsupportedVersion}) {
    Error e{std::string(code), "why"};
    EXPECT_EQ(DecodeError(EncodeError(e)).value(), e);
  }
}

TEST(MessagesTest, DeterministicEncoding) {
  EXPECT_EQ(EncodeError(FixedError()),
            R"({"code":"no_space","message":"tenant acme is over its quota"})");
  EXPECT_EQ(EncodeImportDone(ImportDone{1, 5}), R"({"time_ns":5,"volume":1})");
  EXPECT_EQ(EncodeHello(FixedHello()),
            R"({"group":"vm1","protocol":1,"tap_id":"tap-7f3a","tenant":"acme",)"
            R"("token":"s3cret-token","volumes":[{"block_bytes":4096,"name":"vm1-disk0",)"
            R"("size_bytes":1073741824},{"block_bytes":4096,"name":"vm1-disk1",)"
            R"("size_bytes":536870912}]})");
  // Invalid UTF-8 is replaced, never thrown.
  Error bad{"internal", "bytes \xff\xfe"};
  EXPECT_EQ(DecodeError(EncodeError(bad)).value().message, "bytes \ufffd\ufffd");
}

TEST(MessagesTest, IgnoresUnknownFields) {
  auto b = DecodeBookmark(R"({"name":"n","seq":3,"time_ns":-4,"future":{"x":[1,2]},"zzz":null})");
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(b.value(), (Bookmark{"n", 3, -4}));
  auto w = DecodeWelcome(
      R"({"protocol":2,"durable_seq":null,"extra":1,)"
      R"("volumes":[{"name":"v","state":"ready","import_next_offset":0,"new":true}]})");
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(w.value().protocol, 2u);
  EXPECT_EQ(w.value().durable_seq, kNoSeq);
  ASSERT_EQ(w.value().volumes.size(), 1u);
  EXPECT_EQ(w.value().volumes[0].state, "ready");
}

TEST(MessagesTest, Damage) {
  struct Case {
    Status status;
    std::string want;
  };
  const Case cases[] = {
      {StatusOf(DecodeError("")), "ERROR: invalid JSON"},
      {StatusOf(DecodeError(R"({"code":"x","message":"y")")), "ERROR: invalid JSON"},
      {StatusOf(DecodeError(R"({"code":"x","message":"y"} x)")), "ERROR: invalid JSON"},
      {StatusOf(DecodeError("\xff")), "ERROR: invalid JSON"},
      {StatusOf(DecodeError(R"("code")")), "ERROR: not a JSON object"},
      {StatusOf(DecodeError(R"([{"code":"x","message":"y"}])")), "not a JSON object"},
      {StatusOf(DecodeError(R"({"code":"x"})")), "ERROR: field 'message' is missing"},
      {StatusOf(DecodeError(R"({"code":1,"message":"y"})")), "field 'code' is not a string"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":-1,"time_ns":0})")),
       "BOOKMARK: field 'seq' is not an unsigned integer"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":1.5,"time_ns":0})")), "'seq' is not an uns"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":"1","time_ns":0})")), "'seq' is not an uns"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":1,"time_ns":9223372036854775808})")),
       "'time_ns' is out of range"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":1,"time_ns":1e3})")),
       "'time_ns' is not an integer"},
      {StatusOf(DecodeBookmarkDone(R"({"name":"n","time_ns":1})")),
       "BOOKMARK_DONE: field 'seq' is missing"},
      {StatusOf(DecodeImportDone(R"({"volume":65536,"time_ns":1})")),
       "IMPORT_DONE: field 'volume' is out of range"},
      {StatusOf(DecodeUnordered(R"({"begin":1,"seq":1,"time_ns":1})")),
       "UNORDERED: field 'begin' is not a boolean"},
      {StatusOf(DecodeHello(R"({"protocol":4294967296,"tenant":"","token":"","group":"",)"
                            R"("tap_id":"","volumes":[]})")),
       "HELLO: field 'protocol' is out of range"},
      {StatusOf(DecodeHello(R"({"protocol":1,"tenant":"","token":"","group":"","tap_id":""})")),
       "HELLO: field 'volumes' is missing"},
      {StatusOf(DecodeHello(R"({"protocol":1,"tenant":"","token":"","group":"","tap_id":"",)"
                            R"("volumes":{}})")),
       "field 'volumes' is not an array"},
      {StatusOf(DecodeHello(R"({"protocol":1,"tenant":"","token":"","group":"","tap_id":"",)"
                            R"("volumes":[{"name":"a","size_bytes":1,"block_bytes":512},3]})")),
       "field 'volumes' holds a non-object"},
      {StatusOf(DecodeHello(R"({"protocol":1,"tenant":"","token":"","group":"","tap_id":"",)"
                            R"("volumes":[{"name":"a","size_bytes":1,"block_bytes":512},)"
                            R"({"name":"b","block_bytes":512}]})")),
       "HELLO: volumes[1]: field 'size_bytes' is missing"},
      {StatusOf(DecodeWelcome(R"({"protocol":1,"durable_seq":18446744073709551615,"volumes":[]})")),
       "WELCOME: field 'durable_seq' is out of range"},
      {StatusOf(DecodeWelcome(R"({"protocol":1,"durable_seq":true,"volumes":[]})")),
       "field 'durable_seq' is not an unsigned integer"},
      {StatusOf(DecodeWelcome(R"({"protocol":1,"volumes":[]})")), "field 'durable_seq' is missing"},
      {StatusOf(DecodeWelcome(R"({"protocol":1,"durable_seq":1,"volumes":[{"name":"v",)"
                              R"("state":"ready","import_next_offset":-1}]})")),
       "WELCOME: volumes[0]: field 'import_next_offset' is not an unsigned integer"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), Code::kCorruption) << c.want << ": " << c.status.ToString();
    EXPECT_NE(c.status.message().find(c.want), std::string::npos)
        << "'" << c.status.message() << "' lacks '" << c.want << "'";
  }
}

}  // namespace
}  // namespace tidemark::wire
