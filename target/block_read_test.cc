// The body of GET .../read (block_read.h): round trips with and without
// data, and damage: bad CRC, truncated, bad length, unknown state.
#include "block_read.h"

#include <gtest/gtest.h>

#include <vector>

namespace tidemark::target {
namespace {

using journal::BlockState;
constexpr uint32_t kBs = 512;

struct Fixture {
  std::vector<BlockState> states{BlockState::kData, BlockState::kZero, BlockState::kData,
                                 BlockState::kZero};
  std::string data;
  Fixture() : data(4 * kBs, '\0') {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 1);
  }
  // What a reader gets: kZero blocks as zeros.
  std::string Want() const {
    std::string w = data;
    for (size_t i = 0; i < states.size(); ++i) {
      if (states[i] == BlockState::kZero) w.replace(i * kBs, kBs, kBs, '\0');
    }
    return w;
  }
};

TEST(BlockRead, RoundTripWithData) {
  Fixture f;
  std::string body = EncodeBlockRead(kBs, 4, f.states.data(), f.data.data());
  EXPECT_EQ(body.size(), 4 + 2 * kBs + 4) << "zero blocks carry no bytes";
  std::string out(4 * kBs, 'x');
  std::vector<BlockState> states(4);
  ASSERT_TRUE(DecodeBlockRead(body, kBs, 4, out.data(), states.data()).ok());
  EXPECT_EQ(out, f.Want());
  EXPECT_EQ(states, f.states);
}

TEST(BlockRead, StatesOnly) {
  Fixture f;
  std::string body = EncodeBlockRead(kBs, 4, f.states.data(), nullptr);
  EXPECT_EQ(body.size(), 8u);
  std::vector<BlockState> states(4);
  ASSERT_TRUE(DecodeBlockRead(body, kBs, 4, nullptr, states.data()).ok());
  EXPECT_EQ(states, f.states);
  // A states-only body is not a body with data, and the other way round.
  std::string out(4 * kBs, 'x');
  EXPECT_EQ(DecodeBlockRead(body, kBs, 4, out.data(), nullptr).code(), Code::kCorruption);
  std::string full = EncodeBlockRead(kBs, 4, f.states.data(), f.data.data());
  EXPECT_EQ(DecodeBlockRead(full, kBs, 4, nullptr, states.data()).code(), Code::kCorruption);
}

TEST(BlockRead, Damage) {
  Fixture f;
  const std::string good = EncodeBlockRead(kBs, 4, f.states.data(), f.data.data());
  std::string out(4 * kBs, 'x');
  auto decode = [&](const std::string& body, uint32_t count = 4) {
    return DecodeBlockRead(body, kBs, count, out.data(), nullptr);
  };
  std::string bad_crc = good;
  bad_crc[5] ^= 1;  // a data byte
  EXPECT_NE(decode(bad_crc).message().find("CRC"), std::string::npos);
  EXPECT_NE(decode(good.substr(0, good.size() - 1)).message().find("CRC"), std::string::npos);
  EXPECT_NE(decode(good.substr(0, 6)).message().find("too short"), std::string::npos);
  EXPECT_EQ(decode(std::string()).code(), Code::kCorruption);
  // A body for a different count: the CRC checks, the length does not.
  EXPECT_NE(decode(good, 3).message().find("bytes, not"), std::string::npos);
  // An unknown state (with a CRC that matches it).
  std::vector<BlockState> odd = f.states;
  odd[1] = static_cast<BlockState>(7);
  EXPECT_NE(
      decode(EncodeBlockRead(kBs, 4, odd.data(), nullptr)).message().find("unknown block state 7"),
      std::string::npos);
}

}  // namespace
}  // namespace tidemark::target
