// The copy-on-write overlay against a model: random writes and zeroes at
// 512-byte granularity read back as the model says, the base is never
// written, and only chunks touched are copied up.
#include "overlay.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace tidemark::recovery {
namespace {

constexpr uint64_t kSize = (4 << 20) + 8192;  // not a multiple of the chunk: a short last one
constexpr uint32_t kChunk = 64 << 10;

std::string Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = Random(kSize, 1);
    auto o = Overlay::Create(::testing::TempDir(), kSize, kChunk);
    ASSERT_TRUE(o) << o.error().ToString();
    overlay_ = std::move(o.value());
  }
  Overlay::BaseReadFn Base() {
    return [this](uint64_t off, uint64_t len, char* out) {
      EXPECT_LE(off + len, kSize);
      ++base_reads_;
      std::memcpy(out, base_.data() + off, len);
      return Status::Ok();
    };
  }
  std::string Read(uint64_t off, uint64_t len) {
    std::string out(len, 'x');
    Status s = overlay_->Read(off, len, out.data(), Base());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  std::string base_;
  std::unique_ptr<Overlay> overlay_;
  int base_reads_ = 0;
};

TEST_F(OverlayTest, EmptyReadsTheBase) {
  EXPECT_EQ(Read(0, kSize), base_);
  EXPECT_EQ(Read(kSize - 512, 512), base_.substr(kSize - 512));
  EXPECT_EQ(overlay_->chunks(), 0u);
}

TEST_F(OverlayTest, PartialWriteCopiesUpOneChunk) {
  const std::string data = Random(1024, 2);
  ASSERT_TRUE(overlay_->Write(kChunk + 512, data, Base()).ok());
  EXPECT_EQ(base_reads_, 1);  // the copy-up
  EXPECT_EQ(overlay_->chunks(), 1u);
  std::string want = base_;
  want.replace(kChunk + 512, data.size(), data);
  EXPECT_EQ(Read(0, kSize), want);
  auto runs = overlay_->Runs(0, 3 * kChunk);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_FALSE(runs[0].in_overlay);
  EXPECT_TRUE(runs[1].in_overlay);
  EXPECT_EQ(runs[1].offset, kChunk);
  EXPECT_EQ(runs[1].length, kChunk);
  EXPECT_FALSE(runs[2].in_overlay);
}

TEST_F(OverlayTest, WholeChunkWriteNeedsNoCopy) {
  const std::string data = Random(2 * kChunk, 3);
  ASSERT_TRUE(overlay_->Write(2 * kChunk, data, Base()).ok());
  EXPECT_EQ(base_reads_, 0);
  EXPECT_EQ(overlay_->chunks(), 2u);
  EXPECT_EQ(Read(2 * kChunk, 2 * kChunk), data);
}

TEST_F(OverlayTest, ShortLastChunk) {
  const uint64_t last = kSize / kChunk * kChunk;  // 8 KiB long
  ASSERT_TRUE(overlay_->Write(last, Random(kSize - last, 4), Base()).ok());
  EXPECT_EQ(base_reads_, 0) << "covering the short last chunk whole needs no copy";
  ASSERT_TRUE(overlay_->Zero(last - 512, 1024, Base()).ok());
  std::string want = base_;
  want.replace(last, kSize - last, Random(kSize - last, 4));
  want.replace(last - 512, 1024, std::string(1024, '\0'));
  EXPECT_EQ(Read(0, kSize), want);
}

TEST_F(OverlayTest, RandomOpsMatchModel) {
  std::string model = base_;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i) {
    const uint64_t off = rng() % (kSize / 512) * 512;
    const uint64_t len = std::min<uint64_t>(kSize - off, (rng() % 400 + 1) * 512);
    if (rng() % 3 == 0) {
      ASSERT_TRUE(overlay_->Zero(off, len, Base()).ok());
      std::memset(model.data() + off, 0, len);
    } else {
      std::string data = Random(len, i + 100);
      ASSERT_TRUE(overlay_->Write(off, data, Base()).ok());
      model.replace(off, len, data);
    }
    if (i % 50 == 0) {
      ASSERT_EQ(Read(0, kSize), model) << "after op " << i;
    }
  }
  EXPECT_EQ(Read(0, kSize), model);
  EXPECT_EQ(base_, Random(kSize, 1)) << "the base was changed";
}

TEST(OverlayCreate, BadGranularityAndDirectory) {
  EXPECT_EQ(Overlay::Create(::testing::TempDir(), 1 << 20, 3000).error().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(Overlay::Create(::testing::TempDir(), 1 << 20, 2048).error().code(),
            Code::kInvalidArgument);
  auto bad = Overlay::Create("/nonexistent/dir", 1 << 20, 65536);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("/nonexistent/dir"), std::string::npos)
      << bad.error().message();
}

}  // namespace
}  // namespace tidemark::recovery
