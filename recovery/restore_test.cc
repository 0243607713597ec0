// Restore() with one and several scanning threads: the same image, byte for
// byte, holes where the point is zero, progress that ends at the total, and a
// failure that leaves nothing at the output.
#include "tidemark/recovery/restore.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace tidemark::recovery {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kBs = 4096;
constexpr uint64_t kSize = uint64_t{80} << 20;  // over the 64 MiB single-thread floor

std::string Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() | 1);
  return s;
}

class RestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/restore_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    journal::OpenOptions o;
    o.create_if_missing = true;
    auto j = journal::Journal::Open(root_ + "/j", o);
    ASSERT_TRUE(j) << j.error().ToString();
    j_ = std::move(j.value());
    auto v = j_->CreateVolume("vol", kSize, kBs);
    ASSERT_TRUE(v) << v.error().ToString();
    vol_ = v.value().id;
    expected_.assign(kSize, '\0');
    // Data on both sides of every boundary of a 2-, 3- and 4-way split, and
    // at both ends; seq 1 overwrites part of it.
    const uint64_t blocks = kSize / kBs;
    Seq seq = 0;
    for (uint64_t parts : {2, 3, 4}) {
      for (uint64_t i = 1; i < parts; ++i) Put(seq++, blocks * i / parts - 2, 4);
    }
    Put(seq++, 0, 3);
    Put(seq++, blocks - 3, 3);
    Put(seq++, blocks / 2 - 1, 2);
    last_ = seq - 1;
    Status s = j_->Commit();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void TearDown() override {
    j_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void Put(Seq seq, uint64_t block, uint64_t count) {
    journal::WriteOp op;
    op.seq = seq;
    op.time_ns = 1'000'000'000 + static_cast<TimeNs>(seq);
    op.offset_bytes = block * kBs;
    op.length_bytes = count * kBs;
    const std::string data = Random(count * kBs, seq + 1);
    op.data = data;  // a view
    expected_.replace(block * kBs, count * kBs, data);
    Status s = j_->Apply(vol_, op);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  uint64_t DataBlocks() const {
    uint64_t n = 0;
    const std::string zero(kBs, '\0');
    for (uint64_t b = 0; b < kSize / kBs; ++b) n += expected_.compare(b * kBs, kBs, zero) != 0;
    return n;
  }
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  std::string root_;
  std::unique_ptr<journal::Journal> j_;
  uint32_t vol_ = 0;
  std::string expected_;
  Seq last_ = 0;
};

TEST_F(RestoreTest, EveryThreadCountGivesTheSameImage) {
  for (unsigned threads : {1u, 2u, 3u, 4u}) {
    RestoreOptions o;
    o.output_path = root_ + "/out-" + std::to_string(threads) + ".img";
    o.scan_threads = threads;
    uint64_t last_done = 0, calls = 0;
    o.progress = [&](uint64_t done, uint64_t total) {
      EXPECT_EQ(total, kSize);
      EXPECT_LE(done, total);
      last_done = done;
      ++calls;
    };
    auto r = Restore(*j_, vol_, last_, o);
    ASSERT_TRUE(r) << threads << " threads: " << r.error().ToString();
    EXPECT_EQ(last_done, kSize);
    EXPECT_GE(calls, 1u);
    EXPECT_EQ(r.value().blocks, DataBlocks()) << threads << " threads";
    const std::string got = ReadFile(o.output_path);
    ASSERT_EQ(got.size(), kSize);
    size_t diff = 0;
    while (diff < kSize && got[diff] == expected_[diff]) ++diff;
    EXPECT_EQ(diff, kSize) << threads << " threads: the image differs from byte " << diff
                           << " (block " << diff / kBs << ")";
    // Holes where the point is zero: little of the 80 MiB is allocated.
    struct stat st {};
    ASSERT_EQ(::stat(o.output_path.c_str(), &st), 0);
    EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, uint64_t{4} << 20);
  }
}

// A volume whose size is not a whole number of blocks: its short last block
// cannot go through O_DIRECT and is written through the page cache instead.
TEST_F(RestoreTest, ShortLastBlockWithAndWithoutDirectIo) {
  const uint64_t size = kSize - 1024;  // volumes are whole sectors, not whole blocks
  auto v = j_->CreateVolume("tail", size, kBs);
  ASSERT_TRUE(v) << v.error().ToString();
  const std::string data = Random(3 * kBs - 1024, 99);
  journal::WriteOp op;
  op.seq = 0;
  op.time_ns = 1'000'000'000;
  op.offset_bytes = size - data.size();
  op.length_bytes = data.size();
  op.data = data;
  ASSERT_TRUE(j_->Apply(v.value().id, op).ok());
  ASSERT_TRUE(j_->Commit().ok());
  for (bool direct : {true, false}) {
    RestoreOptions o;
    o.output_path = root_ + (direct ? "/tail-direct.img" : "/tail-buffered.img");
    o.scan_threads = 2;
    o.direct_io = direct;
    auto r = Restore(*j_, v.value().id, 0, o);
    ASSERT_TRUE(r) << r.error().ToString();
    if (!direct) {
      EXPECT_FALSE(r.value().direct_io);
    }
    const std::string got = ReadFile(o.output_path);
    ASSERT_EQ(got.size(), size);
    EXPECT_TRUE(got.substr(size - data.size()) == data) << "direct " << direct;
    EXPECT_EQ(got.find_first_not_of('\0'), size - data.size()) << "direct " << direct;
  }
}

TEST_F(RestoreTest, FailureLeavesNoOutput) {
  RestoreOptions o;
  o.output_path = root_ + "/missing-dir/out.img";
  o.scan_threads = 3;
  auto r = Restore(*j_, vol_, last_, o);
  ASSERT_FALSE(r);
  EXPECT_FALSE(fs::exists(o.output_path));
}

}  // namespace
}  // namespace tidemark::recovery
