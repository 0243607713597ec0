// The activity log: marks survive a crash (reopen), are cleared once their
// writes end, and a damaged or foreign log is refused.
#include "tidemark/capture/activity_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

namespace tidemark::capture {
namespace {

constexpr uint64_t kMiB = 1 << 20;

class ActivityLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/activity_log_test." + std::to_string(::getpid());
    std::filesystem::remove(path_);
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_;
};

TEST_F(ActivityLogTest, MarksSurviveReopenUntilCleared) {
  {
    auto log = ActivityLog::Open(path_, 64 * kMiB);
    ASSERT_TRUE(log) << log.error().ToString();
    EXPECT_TRUE(log.value()->recovered().empty());
    log.value()->Begin(0, 4096);                 // extent 0
    log.value()->Begin(40 * kMiB - 512, 1024);   // straddles extents 9 and 10
    log.value()->Begin(63 * kMiB, kMiB);         // the last extent
    ASSERT_TRUE(log.value()->Persist().ok());
    EXPECT_EQ(log.value()->marked_extents(), 4u);
    log.value()->End(0, 4096);
    ASSERT_TRUE(log.value()->Persist().ok());  // clears extent 0
    EXPECT_EQ(log.value()->marked_extents(), 3u);
  }  // a crash: the log is not cleared
  auto log = ActivityLog::Open(path_, 64 * kMiB);
  ASSERT_TRUE(log);
  const auto& r = log.value()->recovered();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], (Extent{36 * kMiB, 8 * kMiB}));  // extents 9 and 10, merged
  EXPECT_EQ(r[1], (Extent{60 * kMiB, 4 * kMiB}));
  // Recovered marks stay until ClearAll(), even with no write in flight.
  log.value()->Begin(0, 512);
  log.value()->End(0, 512);
  ASSERT_TRUE(log.value()->Persist().ok());
  EXPECT_EQ(log.value()->marked_extents(), 3u);
  ASSERT_TRUE(log.value()->ClearAll().ok());
  EXPECT_EQ(log.value()->marked_extents(), 0u);
  log.value().reset();
  auto again = ActivityLog::Open(path_, 64 * kMiB);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again.value()->recovered().empty());
}

TEST_F(ActivityLogTest, AMarkIsKeptWhileAnyWriteUnderItIsInFlight) {
  auto log = ActivityLog::Open(path_, 16 * kMiB);
  ASSERT_TRUE(log);
  ActivityLog& l = *log.value();
  l.Begin(kMiB, 4096);
  l.Begin(2 * kMiB, 4096);  // same 4 MiB extent
  ASSERT_TRUE(l.Persist().ok());
  l.End(kMiB, 4096);
  ASSERT_TRUE(l.Persist().ok());
  EXPECT_EQ(l.marked_extents(), 1u);
  l.End(2 * kMiB, 4096);
  ASSERT_TRUE(l.Persist().ok());
  EXPECT_EQ(l.marked_extents(), 0u);
}

TEST_F(ActivityLogTest, DamagedOrForeignLogIsRefused) {
  {
    auto log = ActivityLog::Open(path_, 64 * kMiB);
    ASSERT_TRUE(log);
  }
  EXPECT_EQ(ActivityLog::Open(path_, 32 * kMiB).error().code(), Code::kInvalidArgument);
  FILE* f = std::fopen(path_.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  std::fseek(f, 9, SEEK_SET);
  std::fputc(0x7f, f);  // inside the extent size: the header CRC no longer matches
  std::fclose(f);
  EXPECT_EQ(ActivityLog::Open(path_, 64 * kMiB).error().code(), Code::kCorruption);
  std::filesystem::resize_file(path_, 10);  // torn
  EXPECT_EQ(ActivityLog::Open(path_, 64 * kMiB).error().code(), Code::kCorruption);
}

}  // namespace
}  // namespace tidemark::capture
