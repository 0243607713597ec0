// Journal::ReadBlocks against ReadBlock: the same bytes for every range at
// every seq, states that agree with them, and its argument errors.
#include <atomic>
#include <random>
#include <thread>

#include "journal_test_util.h"

namespace tidemark::journal {
namespace {

using namespace testing_util;  // NOLINT

class ReadBlocksTest : public JournalTest {
 protected:
  // Checks ReadBlocks(first, count) at seq against the image from ReadBlock.
  void CheckRange(uint32_t vol, Seq seq, const std::string& image, uint64_t first, uint32_t count) {
    std::string got(static_cast<size_t>(count) * kBs, 'x');
    std::vector<BlockState> states(count, BlockState::kData);
    ASSERT_OK(j_->ReadBlocks(vol, first, count, seq, got.data(), states.data()));
    EXPECT_BYTES_EQ(got, image.substr(first * kBs, count * kBs))
        << "blocks " << first << "+" << count << " at seq " << seq;
    std::vector<BlockState> only(count, BlockState::kData);
    ASSERT_OK(j_->ReadBlocks(vol, first, count, seq, nullptr, only.data()));
    EXPECT_EQ(only, states) << "states without bytes, blocks " << first << "+" << count;
    const std::string zero(kBs, '\0');
    for (uint32_t i = 0; i < count; ++i) {
      if (states[i] == BlockState::kZero) {
        EXPECT_EQ(got.substr(i * kBs, kBs), zero) << "kZero block " << first + i << " has bytes";
      }
    }
  }
};

TEST_F(ReadBlocksTest, AgreesWithReadBlockAtEverySeq) {
  Reopen();
  const uint64_t blocks = 96;
  uint32_t vol = NewVolume(blocks * kBs);
  std::mt19937_64 rng(42);
  Seq seq = 0;
  ASSERT_OK(Write(vol, seq++, 0, Pattern(16 * kBs, 1)));
  for (; seq < 120; ++seq) {
    const uint64_t off = rng() % (blocks * 8) * 512;
    const uint64_t max_len = blocks * kBs - off;
    uint64_t len = std::min<uint64_t>((rng() % 24 + 1) * 512, max_len);
    switch (rng() % 6) {
      case 0:
        ASSERT_OK(Zero(vol, seq, off, len, OpKind::kTrim));
        break;
      case 1:
        ASSERT_OK(Zero(vol, seq, off, len, OpKind::kWriteZeroes));
        break;
      case 2:
        ASSERT_OK(Write(vol, seq, off, std::string(len, '\0')));  // data that is zeros
        break;
      case 3:
        ASSERT_OK(Write(vol, seq, 5 * kBs, Pattern(kBs, seq)));  // a block with many versions
        break;
      default:
        ASSERT_OK(Write(vol, seq, off, Pattern(len, seq)));
    }
    if (seq % 10 == 0) {
      ASSERT_OK(j_->Commit());
    }
  }
  ASSERT_OK(j_->Commit());
  for (Seq at : {Seq{0}, Seq{1}, Seq{7}, Seq{30}, Seq{64}, Seq{90}, Seq{119}}) {
    const std::string image = Image(vol, at);
    for (uint32_t count : {1u, 2u, 4u, 5u, 17u, 96u}) {
      for (uint64_t first = 0; first + count <= blocks; first += count + 3) {
        CheckRange(vol, at, image, first, count);
      }
    }
  }
}

TEST_F(ReadBlocksTest, StatesOfHolesZeroVersionsRangesAndData) {
  Reopen();
  uint32_t vol = NewVolume(32 * kBs);
  ASSERT_OK(Write(vol, 0, 0, Pattern(8 * kBs, 3)));           // blocks 0-7 data
  ASSERT_OK(Write(vol, 1, 2 * kBs, std::string(kBs, '\0')));  // block 2: a zero version
  ASSERT_OK(Zero(vol, 2, 4 * kBs, 2 * kBs));                  // blocks 4-5: a trim range
  ASSERT_OK(Write(vol, 3, 5 * kBs, Pattern(kBs, 4)));         // block 5 data again
  ASSERT_OK(j_->Commit());
  std::vector<BlockState> s(12);
  ASSERT_OK(j_->ReadBlocks(vol, 0, 12, 3, nullptr, s.data()));
  using B = BlockState;
  EXPECT_EQ(s, (std::vector<B>{B::kData, B::kData, B::kZero, B::kData, B::kZero, B::kData, B::kData,
                               B::kData, B::kZero, B::kZero, B::kZero, B::kZero}));
  ASSERT_OK(j_->ReadBlocks(vol, 0, 12, 0, nullptr, s.data()));  // at seq 0: 0-7 data
  for (int i = 0; i < 12; ++i) EXPECT_EQ(s[i], i < 8 ? B::kData : B::kZero) << i;
  // Single-block seeks give the same answers.
  for (uint64_t b = 0; b < 12; ++b) {
    B one;
    ASSERT_OK(j_->ReadBlocks(vol, b, 1, 2, nullptr, &one));
    EXPECT_EQ(one, (b < 8 && b != 2 && b != 4 && b != 5) ? B::kData : B::kZero) << b;
  }
}

// PointReaders keep their iterators between calls: the same answers as
// ReadBlocks, call after call, from two threads at once.
TEST_F(ReadBlocksTest, PointReadersAgreeAcrossCallsAndThreads) {
  Reopen();
  const uint64_t blocks = 64;
  uint32_t vol = NewVolume(blocks * kBs);
  std::mt19937_64 rng(9);
  for (Seq seq = 0; seq < 60; ++seq) {
    const uint64_t off = rng() % (blocks * 8) * 512;
    const uint64_t len = std::min<uint64_t>((rng() % 16 + 1) * 512, blocks * kBs - off);
    if (rng() % 4 == 0) {
      ASSERT_OK(Zero(vol, seq, off, len));
    } else {
      ASSERT_OK(Write(vol, seq, off, Pattern(len, seq)));
    }
  }
  ASSERT_OK(j_->Commit());
  const Seq at = 40;
  const std::string image = Image(vol, at);
  EXPECT_CODE(j_->NewPointReader(vol + 7, at), Code::kNotFound);
  std::atomic<int> bad{0};
  auto work = [&](uint64_t seed) {
    auto reader = j_->NewPointReader(vol, at);
    ASSERT_TRUE(reader) << reader.error().ToString();
    std::mt19937_64 r(seed);
    std::string got(16 * kBs, '\0');
    std::vector<BlockState> states(16), want_states(16);
    for (int i = 0; i < 2000; ++i) {
      const uint32_t count = r() % 3 == 0 ? static_cast<uint32_t>(r() % 16 + 1) : 1;
      const uint64_t first = r() % (blocks - count + 1);
      Status st = reader.value()->Read(first, count, got.data(), states.data());
      if (!st.ok() || got.compare(0, count * kBs, image, first * kBs, count * kBs) != 0) ++bad;
      if (i % 50 == 0) {
        ASSERT_OK(reader.value()->Read(first, count, nullptr, want_states.data()));
        for (uint32_t b = 0; b < count; ++b) bad += want_states[b] != states[b];
      }
    }
  };
  std::thread a(work, 1), b(work, 2);
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(ReadBlocksTest, RangeErrors) {
  Reopen();
  uint32_t vol = NewVolume(8 * kBs);
  ASSERT_OK(Write(vol, 0, 0, Pattern(kBs, 1)));
  ASSERT_OK(j_->Commit());
  std::string buf(16 * kBs, '\0');
  EXPECT_CODE(j_->ReadBlocks(vol, 0, 0, 0, buf.data(), nullptr), Code::kInvalidArgument);
  EXPECT_CODE(j_->ReadBlocks(vol, 7, 2, 0, buf.data(), nullptr), Code::kInvalidArgument);
  EXPECT_CODE(j_->ReadBlocks(vol, 8, 1, 0, buf.data(), nullptr), Code::kInvalidArgument);
  EXPECT_CODE(j_->ReadBlocks(vol + 100, 0, 1, 0, buf.data(), nullptr), Code::kNotFound);
  EXPECT_OK(j_->ReadBlocks(vol, 0, 8, 0, nullptr, nullptr));
}

// ScanBlockRange over the parts of a split gives, part after part, exactly
// ScanBlocks' blocks: a parallel restore's scans cover the volume once.
TEST_F(ReadBlocksTest, ScanBlockRangePartsCoverTheVolumeOnce) {
  Reopen();
  const uint64_t blocks = 50;
  uint32_t vol = NewVolume(blocks * kBs - 1024);  // the last block is short
  std::mt19937_64 rng(7);
  Seq seq = 0;
  ASSERT_OK(Write(vol, seq++, 0, Pattern(blocks * kBs - 1024, 1)));
  for (; seq < 60; ++seq) {
    const uint64_t off = rng() % (blocks - 4) * kBs;
    if (rng() % 4 == 0) {
      ASSERT_OK(Zero(vol, seq, off, 3 * kBs, OpKind::kTrim));
    } else {
      ASSERT_OK(Write(vol, seq, off, Pattern((rng() % 3 + 1) * kBs, seq)));
    }
  }
  ASSERT_OK(j_->Commit());
  for (Seq at : {Seq{0}, Seq{17}, Seq{59}}) {
    std::vector<std::pair<uint64_t, std::string>> whole;
    ASSERT_OK(j_->ScanBlocks(vol, at, [&](uint64_t b, std::string_view d) {
      whole.emplace_back(b, std::string(d));
      return Status::Ok();
    }));
    for (uint64_t parts : {1, 2, 3, 7, 50}) {
      std::vector<std::pair<uint64_t, std::string>> joined;
      for (uint64_t i = 0; i < parts; ++i) {
        const uint64_t first = blocks * i / parts, end = blocks * (i + 1) / parts;
        ASSERT_OK(j_->ScanBlockRange(vol, at, first, end, [&](uint64_t b, std::string_view d) {
          EXPECT_GE(b, first);
          EXPECT_LT(b, end);
          joined.emplace_back(b, std::string(d));
          return Status::Ok();
        }));
      }
      EXPECT_EQ(joined, whole) << parts << " parts at seq " << at;
    }
  }
  // An empty range calls nothing; an end past the volume is clamped.
  int calls = 0;
  auto count = [&](uint64_t, std::string_view) { ++calls; return Status::Ok(); };
  ASSERT_OK(j_->ScanBlockRange(vol, 59, 10, 10, count));
  ASSERT_OK(j_->ScanBlockRange(vol, 59, 60, 70, count));
  EXPECT_EQ(calls, 0);
  ASSERT_OK(j_->ScanBlockRange(vol, 0, blocks - 1, ~uint64_t{0}, count));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace tidemark::journal
