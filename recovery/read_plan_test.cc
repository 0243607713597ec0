// The read plan (journal::Journal::PlanRead) run by PlanRunner: random
// histories of overwrites, sub-block writes, trims, zeroes and an import,
// planned at several points; every block of the point comes exactly once with
// its bytes, blocks left out read as zeros, chunks are read once and
// neighbours coalesced, and a damaged chunk is an error naming the volume,
// seq and file.
#include "tidemark/recovery/read_plan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <random>

namespace tidemark::recovery {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kBs = 4096;
constexpr uint64_t kSize = uint64_t{8} << 20;
constexpr uint64_t kBlocks = kSize / kBs;

std::string Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() | 1);
  return s;
}

class ReadPlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/read_plan_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    journal::OpenOptions o;
    o.create_if_missing = true;
    o.format = 2;
    auto j = journal::Journal::Open(root_ + "/j", o);
    ASSERT_TRUE(j) << j.error().ToString();
    j_ = std::move(j.value());
    auto v = j_->CreateVolume("vp", kSize, kBs);
    ASSERT_TRUE(v) << v.error().ToString();
    vol_ = v.value().id;
  }
  void TearDown() override {
    j_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  // Reads the point through a plan: block -> bytes, failing on a repeat.
  std::map<uint64_t, std::string> RunPlan(Seq seq, uint64_t first, uint64_t end,
                                          PlanRunnerStats* stats = nullptr,
                                          PlanRunnerOptions options = {}) {
    std::map<uint64_t, std::string> got;
    auto plan = j_->PlanRead(vol_, seq, first, end);
    EXPECT_TRUE(plan) << plan.error().ToString();
    if (!plan) return got;
    auto runner = PlanRunner::Create(options);
    EXPECT_TRUE(runner);
    Status s = runner.value()->Run(plan.value(), [&](uint64_t b, std::string_view d) {
      EXPECT_TRUE(b >= first && b < end) << b;
      EXPECT_TRUE(got.emplace(b, std::string(d)).second) << "block " << b << " twice";
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (stats) *stats = runner.value()->stats();
    return got;
  }
  bool DirectIoWorks() const {
    int fd = ::open((root_ + "/probe").c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  }
  std::string root_;
  std::unique_ptr<journal::Journal> j_;
  uint32_t vol_ = 0;
};

TEST_F(ReadPlanTest, EveryBlockOnceWithItsBytes) {
  std::mt19937_64 rng(7);
  std::string image = Random(kSize / 2, 1) + std::string(kSize / 2, '\0');
  auto read = [&](uint64_t off, char* buf, size_t len) {
    std::memcpy(buf, image.data() + off, len);
    return Status::Ok();
  };
  auto imported = j_->Import(vol_, read, 1'000);
  ASSERT_TRUE(imported) << imported.error().ToString();
  Seq seq = imported.value();
  std::vector<Seq> points = {seq};
  for (int i = 0; i < 300; ++i) {
    journal::WriteOp op;
    op.seq = ++seq;
    op.time_ns = 2'000 + i;
    const uint64_t kind = rng() % 10;
    const uint64_t sectors = kind < 6 ? (1 + rng() % 64) * 8 : 1 + rng() % 300;
    const uint64_t off = (rng() % (kSize / 512 - sectors)) * 512;
    op.offset_bytes = off;
    op.length_bytes = sectors * 512;
    std::string data;
    if (kind < 8) {
      op.op = OpKind::kWrite;
      data = Random(op.length_bytes, 100 + i);
      op.data = data;
      image.replace(off, op.length_bytes, data);
    } else {
      op.op = kind == 8 ? OpKind::kTrim : OpKind::kWriteZeroes;
      image.replace(off, op.length_bytes, std::string(op.length_bytes, '\0'));
    }
    Status s = j_->Apply(vol_, op);
    ASSERT_TRUE(s.ok()) << s.ToString();
    if (i % 100 == 99) points.push_back(seq);
  }
  ASSERT_TRUE(j_->Commit().ok());
  for (Seq p : points) {
    std::string want(kSize, '\0');
    ASSERT_TRUE(j_->ScanBlocks(vol_, p, [&](uint64_t b, std::string_view d) {
                    want.replace(b * kBs, kBs, d);
                    return Status::Ok();
                  }).ok());
    if (p == points.back()) {
      ASSERT_TRUE(want == image);
    }
    PlanRunnerStats stats;
    auto got = RunPlan(p, 0, kBlocks, &stats);
    std::string img(kSize, '\0');
    for (const auto& [b, d] : got) img.replace(b * kBs, kBs, d);
    EXPECT_TRUE(img == want) << "seq " << p;
    EXPECT_LT(stats.reads, stats.chunks) << "neighbouring chunks are read together";
    // O_DIRECT reads (widened to 4 KiB) where the file system takes them, all
    // but a segment's unaligned tail; buffered reads give the same blocks.
    if (DirectIoWorks()) {
      EXPECT_GT(stats.direct_reads, 0u);
    }
    PlanRunnerOptions buffered;
    buffered.direct_io = false;
    PlanRunnerStats buffered_stats;
    EXPECT_TRUE(RunPlan(p, 0, kBlocks, &buffered_stats, buffered) == got) << "seq " << p;
    EXPECT_EQ(buffered_stats.direct_reads, 0u);
    // In block order: the same blocks, ascending.
    {
      auto plan = j_->PlanRead(vol_, p, 0, kBlocks);
      ASSERT_TRUE(plan);
      auto runner = PlanRunner::Create();
      ASSERT_TRUE(runner);
      uint64_t prev = 0, n = 0;
      Status s = runner.value()->RunInBlockOrder(plan.value(), 0, kBlocks,
                                                 [&](uint64_t b, std::string_view d) {
        EXPECT_TRUE(n == 0 || b > prev) << b << " after " << prev;
        EXPECT_TRUE(got.count(b) && got[b] == d) << "block " << b;
        prev = b;
        ++n;
        return Status::Ok();
      });
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(n, got.size());
    }
    // A window that cuts chunks: the same bytes for its blocks.
    auto part = RunPlan(p, 37, 1500);
    for (uint64_t b = 37; b < 1500; ++b) {
      auto it = part.find(b);
      const std::string have = it == part.end() ? std::string(kBs, '\0') : it->second;
      ASSERT_TRUE(have == want.substr(b * kBs, kBs)) << "seq " << p << " block " << b;
    }
  }
}

TEST_F(ReadPlanTest, DamagedChunkNamesVolumeSeqAndFile) {
  journal::WriteOp op;
  op.seq = 0;
  op.time_ns = 1;
  op.offset_bytes = 0;
  op.length_bytes = 64 * kBs;
  const std::string data = Random(op.length_bytes, 3);
  op.data = data;
  ASSERT_TRUE(j_->Apply(vol_, op).ok());
  ASSERT_TRUE(j_->Sync(vol_));
  auto plan = j_->PlanRead(vol_, 0, 0, kBlocks);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan.value().pieces.size(), 4u);  // 256 KiB in 64 KiB chunks
  const journal::ReadPiece& p = plan.value().pieces[1];
  {
    FILE* f = std::fopen(plan.value().files[p.file].c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, static_cast<long>(p.offset + 10), SEEK_SET);
    std::fputc(0x5a ^ data[16 * kBs + 10], f);
    std::fclose(f);
  }
  auto runner = PlanRunner::Create();
  ASSERT_TRUE(runner);
  Status s = runner.value()->Run(plan.value(), [](uint64_t, std::string_view) {
    return Status::Ok();
  });
  ASSERT_EQ(s.code(), Code::kCorruption) << s.ToString();
  for (const std::string& want : {std::string("vp"), std::string("block 16"), std::string("seq 0"),
                                  plan.value().files[p.file]}) {
    EXPECT_NE(s.message().find(want), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace tidemark::recovery
