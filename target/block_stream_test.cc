#include "block_stream.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace tidemark::target {
namespace {

constexpr uint32_t kBlock = 512;
constexpr uint64_t kBlocks = 1000;

std::string Data(uint64_t block) {
  std::string d(kBlock, '\0');
  for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<char>(block * 7 + i);
  return d;
}

// A complete stream of `blocks`.
std::string Encode(const std::vector<uint64_t>& blocks) {
  BlockStreamEncoder enc(kBlock);
  std::string out;
  for (uint64_t b : blocks) enc.AppendBlock(&out, b, Data(b));
  enc.AppendEnd(&out);
  return out;
}

struct Decoded {
  std::map<uint64_t, std::string> blocks;
  Status feed, finish;
};

// Decodes `bytes` fed in pieces of at most `piece` bytes.
Decoded Decode(std::string_view bytes, size_t piece = 1 << 20) {
  Decoded d;
  BlockStreamDecoder dec(kBlock, kBlocks);
  auto fn = [&](uint64_t block, std::string_view data) {
    d.blocks[block] = std::string(data);
    return Status::Ok();
  };
  for (size_t at = 0; at < bytes.size() && d.feed.ok(); at += piece) {
    d.feed = dec.Feed(bytes.substr(at, piece), fn);
  }
  d.finish = dec.Finish();
  return d;
}

TEST(BlockStreamTest, RoundTripAnySplit) {
  std::vector<uint64_t> blocks = {0, 1, 2, 17, 500, 999};
  std::string bytes = Encode(blocks);
  EXPECT_EQ(bytes.size(), blocks.size() * (8 + kBlock) + kBlockStreamEndBytes);
  for (size_t piece : {size_t{1}, size_t{3}, size_t{8}, size_t{520}, size_t{1} << 20}) {
    Decoded d = Decode(bytes, piece);
    ASSERT_TRUE(d.feed.ok()) << piece << ": " << d.feed.ToString();
    ASSERT_TRUE(d.finish.ok()) << piece << ": " << d.finish.ToString();
    ASSERT_EQ(d.blocks.size(), blocks.size());
    for (uint64_t b : blocks) EXPECT_EQ(d.blocks[b], Data(b)) << b;
  }
}

// The example of docs/protocol.md#block-stream, byte for byte.
TEST(BlockStreamTest, DocumentedExample) {
  BlockStreamEncoder enc(512);
  std::string out;
  enc.AppendBlock(&out, 2, std::string(512, '\xab'));
  enc.AppendEnd(&out);
  ASSERT_EQ(out.size(), 8 + 512 + kBlockStreamEndBytes);
  EXPECT_EQ(out.substr(0, 8), std::string("\0\0\0\0\0\0\0\2", 8));
  EXPECT_EQ(out.substr(520, 16), std::string(8, '\xff') + std::string("\0\0\0\0\0\0\0\1", 8));
  EXPECT_EQ(out.substr(536), "\x87\xd6\xf4\x60");
}

TEST(BlockStreamTest, EmptyVolume) {
  std::string bytes = Encode({});
  EXPECT_EQ(bytes.size(), kBlockStreamEndBytes);
  Decoded d = Decode(bytes);
  EXPECT_TRUE(d.feed.ok());
  EXPECT_TRUE(d.finish.ok());
  EXPECT_TRUE(d.blocks.empty());
}

// Every prefix of a stream is detected as truncated: never a silent,
// shorter image.
TEST(BlockStreamTest, TruncationAtEveryByteIsDetected) {
  std::string bytes = Encode({3, 4, 9});
  for (size_t len = 0; len < bytes.size(); ++len) {
    Decoded d = Decode(std::string_view(bytes).substr(0, len), 7);
    EXPECT_TRUE(d.feed.ok()) << len;
    EXPECT_EQ(d.finish.code(), Code::kCorruption) << len;
    EXPECT_NE(d.finish.message().find("truncated"), std::string::npos) << d.finish.ToString();
  }
}

TEST(BlockStreamTest, DamagedByteFailsTheCrc) {
  std::string bytes = Encode({3, 4, 9});
  bytes[8 + 100] ^= 1;  // data of block 3
  Decoded d = Decode(bytes);
  EXPECT_EQ(d.feed.code(), Code::kCorruption);
  EXPECT_NE(d.feed.message().find("CRC32C"), std::string::npos) << d.feed.ToString();
  EXPECT_EQ(d.finish.code(), Code::kCorruption);
}

TEST(BlockStreamTest, DamagedCountOrCrcField) {
  std::string bytes = Encode({3, 4});
  std::string count = bytes;
  count[count.size() - 5] ^= 1;  // count's low byte
  EXPECT_NE(Decode(count).feed.message().find("counts"), std::string::npos);
  std::string crc = bytes;
  crc.back() ^= 0x80;
  EXPECT_NE(Decode(crc).feed.message().find("CRC32C"), std::string::npos);
}

// A record dropped from the middle (a lost chunk) is caught by the count.
TEST(BlockStreamTest, MissingRecordIsDetected) {
  std::string bytes = Encode({1, 2, 3});
  bytes.erase(8 + kBlock, 8 + kBlock);  // record of block 2
  Decoded d = Decode(bytes);
  EXPECT_EQ(d.feed.code(), Code::kCorruption);
}

TEST(BlockStreamTest, OutOfOrderAndOutOfRangeBlocks) {
  std::string a = Encode({5});
  std::string b = Encode({4});
  // Block 5 then block 4: out of order.
  std::string bad = a.substr(0, 8 + kBlock) + b;
  Decoded d = Decode(bad);
  EXPECT_NE(d.feed.message().find("out of order"), std::string::npos) << d.feed.ToString();
  EXPECT_EQ(d.blocks.size(), 1u);
  // A repeated block is out of order too.
  Decoded r = Decode(a.substr(0, 8 + kBlock) + a);
  EXPECT_NE(r.feed.message().find("out of order"), std::string::npos) << r.feed.ToString();
  // Beyond the volume.
  BlockStreamDecoder dec(kBlock, 5);
  Status s = dec.Feed(a, [](uint64_t, std::string_view) { return Status::Ok(); });
  EXPECT_NE(s.message().find("beyond the volume"), std::string::npos) << s.ToString();
}

TEST(BlockStreamTest, BytesAfterTheEnd) {
  std::string bytes = Encode({1}) + "x";
  Decoded d = Decode(bytes);
  EXPECT_NE(d.feed.message().find("after its end"), std::string::npos) << d.feed.ToString();
  // Also when they come in a later piece.
  Decoded later = Decode(bytes, bytes.size() - 1);
  EXPECT_NE(later.feed.message().find("after its end"), std::string::npos);
}

TEST(BlockStreamTest, ErrorEndCarriesTheServersStatus) {
  BlockStreamEncoder enc(kBlock);
  std::string out;
  enc.AppendBlock(&out, 1, Data(1));
  BlockStreamEncoder::AppendError(&out, Status::Corruption("volume v block 7 seq 3: bad CRC"));
  Decoded d = Decode(out, 5);
  EXPECT_EQ(d.blocks.size(), 1u);
  EXPECT_EQ(d.feed.code(), Code::kCorruption);
  EXPECT_NE(d.feed.message().find("block 7 seq 3"), std::string::npos) << d.feed.ToString();
  EXPECT_EQ(d.finish.code(), Code::kCorruption);
  // A truncated error end is a truncated stream.
  Decoded t = Decode(std::string_view(out).substr(0, out.size() - 1));
  EXPECT_TRUE(t.feed.ok());
  EXPECT_NE(t.finish.message().find("truncated"), std::string::npos);
  // An error end that is not JSON.
  std::string junk = out.substr(0, 8 + kBlock + 8) + std::string("\0\0\0\2{]", 6);
  EXPECT_NE(Decode(junk).feed.message().find("not an error object"), std::string::npos);
}

TEST(BlockStreamTest, CallbackErrorStopsTheDecoder) {
  std::string bytes = Encode({1, 2, 3});
  BlockStreamDecoder dec(kBlock, kBlocks);
  int calls = 0;
  Status s = dec.Feed(bytes, [&](uint64_t, std::string_view) {
    ++calls;
    return Status::NoSpace("disk full");
  });
  EXPECT_EQ(s.code(), Code::kNoSpace);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(dec.Finish().code(), Code::kNoSpace);
  EXPECT_EQ(dec.Feed("more", [](uint64_t, std::string_view) { return Status::Ok(); }).code(),
            Code::kNoSpace);
}

TEST(BlockStreamTest, RandomSplitsOfALargeStream) {
  std::mt19937_64 rng(42);
  std::vector<uint64_t> blocks;
  for (uint64_t b = 0; b < kBlocks; b += 1 + rng() % 5) blocks.push_back(b);
  std::string bytes = Encode(blocks);
  BlockStreamDecoder dec(kBlock, kBlocks);
  size_t n = 0;
  for (size_t at = 0; at < bytes.size();) {
    size_t piece = 1 + rng() % 3000;
    ASSERT_TRUE(dec.Feed(std::string_view(bytes).substr(at, piece),
                         [&](uint64_t b, std::string_view data) {
                           EXPECT_EQ(b, blocks[n]);
                           EXPECT_EQ(data, Data(b));
                           ++n;
                           return Status::Ok();
                         })
                    .ok());
    at += piece;
  }
  EXPECT_TRUE(dec.Finish().ok());
  EXPECT_EQ(n, blocks.size());
}

}  // namespace
}  // namespace tidemark::target
