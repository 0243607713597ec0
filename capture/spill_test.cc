// The spill: a FIFO of queued items on disk across segments, with a cap.
#include "tidemark/capture/spill.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace tidemark::capture {
namespace {

SpillRecord Write(Seq seq, uint32_t len, uint64_t seed) {
  SpillRecord r;
  r.data.resize(len);
  std::mt19937_64 rng(seed);
  for (auto& c : r.data) c = static_cast<char>(rng());
  r.entry = {seq, static_cast<TimeNs>(seq) * 1000, 0, wire::EntryOp::kWrite, 0, seq * 4096, len, {}};
  return r;
}

class SpillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/spill_test." + std::to_string(::getpid());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(SpillTest, FifoAcrossSegmentsWithBookmarks) {
  auto spill = Spill::Open(dir_, 64 << 20, 256 << 10);  // 256 KiB segments
  ASSERT_TRUE(spill) << spill.error().ToString();
  Spill& s = *spill.value();
  std::vector<SpillRecord> want;
  Seq seq = 1;
  std::vector<SpillRecord> got;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 200; ++i) {
      SpillRecord r;
      if (i % 50 == 49) {
        r.bookmark = true;
        r.name = "b" + std::to_string(seq);
      } else {
        r = Write(seq, (1 + i % 8) * 512, seq);
        ++seq;
      }
      ASSERT_TRUE(s.Append(r).ok());
      want.push_back(r);
    }
    // Read back part of it between appends, as the shipper does.
    ASSERT_TRUE(s.ReadFront(100 << 10, &got).ok());
  }
  while (!s.empty()) ASSERT_TRUE(s.ReadFront(1 << 20, &got).ok());
  EXPECT_EQ(s.bytes(), 0u);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].bookmark, want[i].bookmark) << i;
    EXPECT_EQ(got[i].name, want[i].name) << i;
    EXPECT_EQ(got[i].data, want[i].data) << i;
    EXPECT_EQ(got[i].entry.seq, want[i].entry.seq) << i;
    EXPECT_EQ(got[i].entry.offset_bytes, want[i].entry.offset_bytes) << i;
  }
  // Segments read to their end are gone.
  size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_LE(files, 1u);
}

TEST_F(SpillTest, CapIsNoSpaceAndReadingMakesRoom) {
  auto spill = Spill::Open(dir_, 64 << 10);
  ASSERT_TRUE(spill);
  Spill& s = *spill.value();
  Seq seq = 1;
  Status st;
  while ((st = s.Append(Write(seq, 4096, seq))).ok()) ++seq;
  EXPECT_EQ(st.code(), Code::kNoSpace);
  EXPECT_GT(seq, 10u);
  std::vector<SpillRecord> got;
  ASSERT_TRUE(s.ReadFront(1, &got).ok());
  EXPECT_EQ(got.size(), 1u);
  EXPECT_TRUE(s.Append(Write(seq, 4096, seq)).ok());
}

TEST_F(SpillTest, DamageIsCorruption) {
  auto spill = Spill::Open(dir_, 1 << 20);
  ASSERT_TRUE(spill);
  Spill& s = *spill.value();
  ASSERT_TRUE(s.Append(Write(1, 4096, 1)).ok());
  std::vector<SpillRecord> got;
  ASSERT_TRUE(s.ReadFront(0, &got).ok());  // flushes the buffer; reads the record
  ASSERT_TRUE(s.Append(Write(2, 4096, 2)).ok());
  ASSERT_TRUE(s.Append(Write(3, 4096, 3)).ok());
  got.clear();
  ASSERT_TRUE(s.ReadFront(1, &got).ok());
  // Flip a byte of record 3 in the segment file.
  std::string seg = dir_ + "/00000000.seg";
  FILE* f = std::fopen(seg.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, -100, SEEK_END);
  std::fputc('x', f);
  std::fclose(f);
  got.clear();
  EXPECT_EQ(s.ReadFront(1 << 20, &got).code(), Code::kCorruption);
}

TEST_F(SpillTest, OpenDiscardsAnEarlierRunsSegments) {
  {
    auto spill = Spill::Open(dir_, 1 << 20);
    ASSERT_TRUE(spill);
    ASSERT_TRUE(spill.value()->Append(Write(1, 4096, 1)).ok());
    std::vector<SpillRecord> got;
    ASSERT_TRUE(spill.value()->ReadFront(0, &got).ok());
  }
  auto spill = Spill::Open(dir_, 1 << 20);
  ASSERT_TRUE(spill);
  EXPECT_TRUE(spill.value()->empty());
}

}  // namespace
}  // namespace tidemark::capture
