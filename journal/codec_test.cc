// Tests of the block codecs: round trips, the "not worth it" answer, and
// damage (garbage, wrong raw length) for each codec.
#include "tidemark/journal/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace tidemark {
namespace {

constexpr Codec kAll[] = {Codec::kNone, Codec::kZstd, Codec::kIgzip};
constexpr Codec kCompressing[] = {Codec::kZstd, Codec::kIgzip};

std::string Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

// Text-like data: words from a small vocabulary, as a file system block holds.
std::string Compressible(size_t n, uint64_t seed) {
  static const char* words[] = {
      "tidemark ",           "journal ", "block ", "seq ",          "volume ",
      "INSERT INTO orders ", "VALUES (", "42, ",   "'2026-11-23' ", ");\n"};
  std::mt19937_64 rng(seed);
  std::string s;
  while (s.size() < n) s += words[rng() % std::size(words)];
  s.resize(n);
  return s;
}

struct Input {
  std::string name;
  std::string data;
  bool compressible;
};

std::vector<Input> Inputs() {
  std::vector<Input> in;
  for (size_t n : {size_t{4096}, size_t{1} << 20}) {
    std::string sz = std::to_string(n);
    in.push_back({"random-" + sz, Random(n, n), false});
    in.push_back({"text-" + sz, Compressible(n, n), true});
    in.push_back({"zero-" + sz, std::string(n, '\0'), true});
    std::string half = Random(n, n + 1);
    std::fill(half.begin() + static_cast<long>(n / 2), half.end(), '\0');
    in.push_back({"half-zero-" + sz, half, false});  // compresses by half: depends
  }
  in.push_back({"small-512", Compressible(512, 9), true});
  return in;
}

TEST(CodecTest, Names) {
  for (Codec c : kAll) {
    auto parsed = ParseCodec(CodecName(c));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed.value(), c);
  }
  EXPECT_EQ(CodecName(Codec::kZstd), "zstd");
  EXPECT_EQ(CodecName(Codec::kIgzip), "igzip");
  EXPECT_EQ(CodecName(Codec::kNone), "none");
  for (const char* bad : {"", "ZSTD", "gzip", "lz4", "none "}) {
    auto r = ParseCodec(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  }
}

TEST(CodecTest, RoundTrip) {
  for (Codec c : kAll) {
    for (const Input& in : Inputs()) {
      std::string packed = "stale contents";
      bool compressed = Compress(c, in.data, &packed);
      if (c == Codec::kNone) {
        EXPECT_FALSE(compressed);
        continue;
      }
      if (in.compressible) {
        EXPECT_TRUE(compressed) << CodecName(c) << " " << in.name;
      }
      if (!compressed) continue;
      EXPECT_LT(packed.size(), in.data.size() - in.data.size() / 8) << CodecName(c) << in.name;
      std::string out(in.data.size(), 'x');
      Status s = Decompress(c, packed, out.data(), out.size());
      ASSERT_TRUE(s.ok()) << CodecName(c) << " " << in.name << ": " << s.ToString();
      EXPECT_TRUE(out == in.data) << CodecName(c) << " " << in.name;
    }
  }
}

TEST(CodecTest, NoneCopies) {
  for (const Input& in : Inputs()) {
    std::string out(in.data.size(), 'x');
    ASSERT_TRUE(Decompress(Codec::kNone, in.data, out.data(), out.size()).ok());
    EXPECT_TRUE(out == in.data) << in.name;
  }
}

TEST(CodecTest, IncompressibleReturnsFalse) {
  for (Codec c : kAll) {
    for (size_t n : {size_t{512}, size_t{4096}, size_t{65536}, size_t{1} << 20}) {
      std::string packed;
      EXPECT_FALSE(Compress(c, Random(n, 100 + n), &packed)) << CodecName(c) << " " << n;
    }
    std::string packed;
    EXPECT_FALSE(Compress(c, "", &packed)) << CodecName(c) << " empty";
  }
}

// The entropy predictor must not skip data that compresses: half zeros and
// half random bytes (about 4.5 bits a byte) still shrink with every codec.
TEST(CodecTest, HalfZeroHalfRandomCompresses) {
  for (Codec c : kCompressing) {
    std::string data = Random(4096, 7);
    std::fill(data.begin() + 2048, data.end(), '\0');
    std::string packed;
    EXPECT_TRUE(Compress(c, data, &packed)) << CodecName(c);
  }
}

TEST(CodecTest, GarbageIsCorruption) {
  for (Codec c : kCompressing) {
    for (size_t raw : {size_t{4096}, size_t{1} << 20}) {
      std::string out(raw, '\0');
      for (uint64_t seed = 0; seed < 20; ++seed) {
        std::string g = Random(1 + seed * 97, seed);
        Status s = Decompress(c, g, out.data(), raw);
        EXPECT_EQ(s.code(), Code::kCorruption) << CodecName(c) << " seed " << seed;
      }
      EXPECT_EQ(Decompress(c, "", out.data(), raw).code(), Code::kCorruption) << CodecName(c);
      // Another codec's output.
      std::string data = Compressible(raw, 5), packed;
      ASSERT_TRUE(Compress(c == Codec::kZstd ? Codec::kIgzip : Codec::kZstd, data, &packed));
      EXPECT_EQ(Decompress(c, packed, out.data(), raw).code(), Code::kCorruption)
          << CodecName(c) << " fed the other codec's output";
    }
  }
}

TEST(CodecTest, DamagedStreamIsCorruptionOrWrongBytesNeverACrash) {
  // Codecs carry no checksum of their own (the value CRC does): a flipped
  // bit either fails or yields some bytes, but never overruns the output.
  for (Codec c : kCompressing) {
    std::string data = Compressible(4096, 77), packed;
    ASSERT_TRUE(Compress(c, data, &packed));
    std::string out(4096 + 64, '\x5a');
    for (size_t bit = 0; bit < packed.size() * 8; bit += 3) {
      std::string d = packed;
      d[bit / 8] = static_cast<char>(d[bit / 8] ^ (1 << (bit % 8)));
      Decompress(c, d, out.data(), 4096).IgnoreError();
      ASSERT_EQ(out.substr(4096), std::string(64, '\x5a')) << CodecName(c) << " bit " << bit;
    }
    // Every truncation fails.
    for (size_t n = 0; n < packed.size(); ++n) {
      Status s = Decompress(c, std::string_view(packed).substr(0, n), out.data(), 4096);
      EXPECT_EQ(s.code(), Code::kCorruption) << CodecName(c) << " prefix " << n;
    }
  }
}

TEST(CodecTest, WrongRawLengthIsCorruption) {
  for (Codec c : kAll) {
    for (size_t raw : {size_t{4096}, size_t{1} << 20}) {
      std::string data = Compressible(raw, raw), packed;
      if (c == Codec::kNone) {
        packed = data;
      } else {
        ASSERT_TRUE(Compress(c, data, &packed));
      }
      std::string out(raw * 2, '\0');
      for (size_t want : {raw - 512, raw - 1, raw + 1, raw + 4096, raw * 2, size_t{0}}) {
        Status s = Decompress(c, packed, out.data(), want);
        EXPECT_EQ(s.code(), Code::kCorruption)
            << CodecName(c) << " raw " << raw << " told " << want;
      }
      ASSERT_TRUE(Decompress(c, packed, out.data(), raw).ok());
      EXPECT_TRUE(std::string_view(out).substr(0, raw) == data);
    }
  }
}

TEST(CodecTest, UnknownCodecIsCorruption) {
  std::string out(4096, '\0');
  EXPECT_EQ(Decompress(static_cast<Codec>(3), std::string(4096, 'a'), out.data(), 4096).code(),
            Code::kCorruption);
  std::string packed;
  EXPECT_FALSE(Compress(static_cast<Codec>(3), std::string(4096, 'a'), &packed));
}

}  // namespace
}  // namespace tidemark
