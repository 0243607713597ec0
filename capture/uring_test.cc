#include "tidemark/capture/uring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace tidemark::capture {
namespace {

// A temporary file under $TMPDIR (or /tmp), unlinked on destruction.
class TempFile {
 public:
  TempFile() {
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir != nullptr && dir[0] != '\0' ? dir : "/tmp") +
            "/uring_test.XXXXXX";
    fd_ = ::mkstemp(path_.data());
    EXPECT_GE(fd_, 0) << path_;
  }
  ~TempFile() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  std::string ReadAll() const {
    struct stat st {};
    EXPECT_EQ(::fstat(fd_, &st), 0);
    std::string out(static_cast<size_t>(st.st_size), '\0');
    EXPECT_EQ(::pread(fd_, out.data(), out.size(), 0),
              static_cast<ssize_t>(out.size()));
    return out;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string Pattern(size_t len_bytes, uint32_t seed) {
  std::string s(len_bytes, '\0');
  std::mt19937 rng(seed);
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// Runs each test on io_uring (param false) and on the synchronous fallback
// (param true). The io_uring run skips where the kernel refuses io_uring.
class UringTest : public ::testing::TestWithParam<bool> {
 protected:
  RingOptions Options() const { return {.force_sync = GetParam()}; }

  void SkipIfNoUring(bool uses_io_uring) {
    if (!GetParam() && !uses_io_uring)
      GTEST_SKIP() << "io_uring unavailable here";
  }
};

INSTANTIATE_TEST_SUITE_P(Paths, UringTest, ::testing::Values(false, true),
                         [](const auto& info) {
                           return info.param ? "Sync" : "IoUring";
                         });

TEST_P(UringTest, RingReadAfterWrite) {
  TempFile f;
  auto ring = Ring::Create(8, Options()).value();
  SkipIfNoUring(ring->uses_io_uring());
  EXPECT_EQ(ring->uses_io_uring(), !GetParam());

  const std::string a = Pattern(5000, 1), b = Pattern(70000, 2);
  ring->QueueWrite(f.fd(), a.data(), a.size(), 0, 1);
  ring->QueueWrite(f.fd(), b.data(), b.size(), a.size(), 2);
  EXPECT_EQ(ring->outstanding(), 2u);
  ASSERT_TRUE(ring->Submit().ok());
  std::vector<Completion> done;
  ASSERT_TRUE(ring->Wait(2, &done).ok());
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(ring->outstanding(), 0u);
  std::sort(done.begin(), done.end(),
            [](auto& x, auto& y) { return x.tag < y.tag; });
  EXPECT_TRUE(done[0].status.ok()) << done[0].status.ToString();
  EXPECT_EQ(done[0].bytes, a.size());
  EXPECT_TRUE(done[1].status.ok()) << done[1].status.ToString();
  EXPECT_EQ(done[1].bytes, b.size());

  ring->QueueFdatasync(f.fd(), 3);
  std::string back(a.size() + b.size(), '\0');
  ring->QueueRead(f.fd(), back.data(), back.size(), 0, 4);
  done.clear();
  ASSERT_TRUE(ring->Wait(2, &done).ok());  // Wait() submits what is queued.
  ASSERT_EQ(done.size(), 2u);
  for (const Completion& c : done)
    EXPECT_TRUE(c.status.ok()) << c.status.ToString();
  EXPECT_EQ(back, a + b);
}

TEST_P(UringTest, RingReadPastEndOfFileIsAnError) {
  TempFile f;
  ASSERT_EQ(::pwrite(f.fd(), "abc", 3, 0), 3);
  auto ring = Ring::Create(2, Options()).value();
  char buf[10];
  ring->QueueRead(f.fd(), buf, sizeof(buf), 0, 7);
  std::vector<Completion> done;
  ASSERT_TRUE(ring->Wait(1, &done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].tag, 7u);
  EXPECT_EQ(done[0].status.code(), Code::kIOError);
  EXPECT_EQ(done[0].bytes, 3u);
}

TEST_P(UringTest, RingBadOffsetIsInvalidArgument) {
  TempFile f;
  auto ring = Ring::Create(2, Options()).value();
  char buf[8] = {};
  ring->QueueWrite(f.fd(), buf, sizeof(buf), uint64_t{1} << 63, 9);
  std::vector<Completion> done;
  ASSERT_TRUE(ring->Wait(1, &done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status.code(), Code::kInvalidArgument);
}

TEST_P(UringTest, RingWriteToReadOnlyFdFails) {
  TempFile f;
  int ro = ::open(f.path().c_str(), O_RDONLY);
  ASSERT_GE(ro, 0);
  auto ring = Ring::Create(2, Options()).value();
  char buf[512] = {};
  ring->QueueWrite(ro, buf, sizeof(buf), 0, 1);
  std::vector<Completion> done;
  ASSERT_TRUE(ring->Wait(1, &done).ok());
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status.code(), Code::kIOError);
  EXPECT_NE(done[0].status.message().find("offset 0"), std::string::npos);
  ::close(ro);
}

// RLIMIT_FSIZE makes the kernel write only up to the limit, so the ring must
// continue the short write, then report EFBIG at the offset where it stopped.
TEST_P(UringTest, RingContinuesShortWrite) {
  TempFile f;
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  if (old.rlim_max != RLIM_INFINITY && old.rlim_max < 20000)
    GTEST_SKIP() << "low hard limit";
  auto ring = Ring::Create(2, Options()).value();
  const std::string data = Pattern(20000, 9);
  struct rlimit low = old;
  low.rlim_cur = 12000;
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &low), 0);
  ring->QueueWrite(f.fd(), data.data(), data.size(), 0, 1);
  std::vector<Completion> done;
  Status s = ring->Wait(1, &done);
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, old_handler);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status.code(), Code::kIOError);
  EXPECT_EQ(done[0].bytes, 12000u);
  EXPECT_NE(done[0].status.message().find("offset 12000 len 8000"),
            std::string::npos)
      << done[0].status.message();
  EXPECT_EQ(f.ReadAll(), data.substr(0, 12000));
}

TEST(RingTest, CreateRejectsBadEntries) {
  EXPECT_EQ(Ring::Create(0).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(Ring::Create(Ring::kMaxEntries + 1).error().code(),
            Code::kInvalidArgument);
}

TEST(RingTest, EnvironmentForcesFallback) {
  ASSERT_EQ(::setenv("TIDEMARK_NO_IO_URING", "1", 1), 0);
  auto ring = Ring::Create(4);
  ::unsetenv("TIDEMARK_NO_IO_URING");
  ASSERT_TRUE(ring.has_value());
  EXPECT_FALSE(ring.value()->uses_io_uring());
}

// Blocks of 4 KiB in a shuffled order, but written as runs of adjacent blocks
// so that coalescing, chunk splitting and out-of-order completion all occur.
TEST_P(UringTest, ParallelWriterShuffledRuns) {
  constexpr size_t kBlock = 4096, kBlocks = 1024;  // 4 MiB
  TempFile f;
  const std::string image = Pattern(kBlock * kBlocks, 42);
  std::vector<size_t> runs;  // Start block of each 8-block run.
  for (size_t b = 0; b < kBlocks; b += 8) runs.push_back(b);
  std::shuffle(runs.begin(), runs.end(), std::mt19937(7));

  auto w = ParallelWriter::Create(f.fd(), 4, 64 * 1024, Options()).value();
  SkipIfNoUring(w->uses_io_uring());
  for (size_t start : runs) {
    for (size_t b = start; b < start + 8; ++b) {
      ASSERT_TRUE(w->Write(b * kBlock,
                           std::string_view(image).substr(b * kBlock, kBlock))
                      .ok());
    }
  }
  // One write spanning several chunks.
  ASSERT_TRUE(w->Write(0, std::string_view(image).substr(0, 300000)).ok());
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(w->bytes_written(), image.size() + 300000);
  EXPECT_EQ(f.ReadAll(), image);
}

TEST_P(UringTest, ParallelWriterLaterWriteWins) {
  TempFile f;
  auto w = ParallelWriter::Create(f.fd(), 8, 4096, Options()).value();
  for (int round = 0; round < 50; ++round) {
    std::string block(4096, static_cast<char>('a' + round % 26));
    ASSERT_TRUE(w->Write(0, block).ok());
    ASSERT_TRUE(w->Write(8192, block).ok());  // Not adjacent: forces a submit.
  }
  ASSERT_TRUE(w->Finish().ok());
  std::string back = f.ReadAll();
  ASSERT_EQ(back.size(), 3u * 4096);
  EXPECT_EQ(back.substr(0, 4096), std::string(4096, 'a' + 49 % 26));
  EXPECT_EQ(back.substr(8192), std::string(4096, 'a' + 49 % 26));
}

TEST_P(UringTest, ParallelWriterLeavesHoles) {
  constexpr off_t kSize = 64 << 20;
  constexpr size_t kBlock = 64 * 1024;
  TempFile f;
  ASSERT_EQ(::ftruncate(f.fd(), kSize), 0);
  auto w = ParallelWriter::Create(f.fd(), 8, ParallelWriter::kDefaultChunkBytes,
                                  Options())
               .value();
  const std::string data = Pattern(kBlock, 3);
  std::vector<uint64_t> offsets;
  for (uint64_t off = 0; off < static_cast<uint64_t>(kSize); off += 4 << 20)
    offsets.push_back(off);
  std::reverse(offsets.begin(), offsets.end());
  for (uint64_t off : offsets) ASSERT_TRUE(w->Write(off, data).ok());
  ASSERT_TRUE(w->Finish().ok());
  ASSERT_EQ(::fsync(f.fd()), 0);

  struct stat st {};
  ASSERT_EQ(::fstat(f.fd(), &st), 0);
  EXPECT_EQ(st.st_size, kSize);
  EXPECT_LT(st.st_blocks * 512, kSize / 2) << "file is not sparse";
  const std::string back = f.ReadAll();
  std::string expect(static_cast<size_t>(kSize), '\0');
  for (uint64_t off : offsets) expect.replace(off, kBlock, data);
  EXPECT_TRUE(back == expect);
}

TEST_P(UringTest, ParallelWriterReadOnlyFdReturnsError) {
  TempFile f;
  int ro = ::open(f.path().c_str(), O_RDONLY);
  ASSERT_GE(ro, 0);
  auto w = ParallelWriter::Create(ro, 4, 4096, Options()).value();
  const std::string data = Pattern(64 * 1024, 5);
  Status first;
  for (size_t off = 0; off < data.size() && first.ok(); off += 4096) {
    first = w->Write(off, std::string_view(data).substr(off, 4096));
  }
  Status s = w->Finish();
  EXPECT_EQ(s.code(), Code::kIOError) << s.ToString();
  if (!first.ok()) {
    EXPECT_EQ(first.message(), s.message());  // Sticky first error.
  }
  EXPECT_EQ(w->bytes_written(), 0u);
  ::close(ro);
}

TEST_P(UringTest, ParallelWriterNoSpaceNamesOffset) {
  int fd = ::open("/dev/full", O_WRONLY);
  if (fd < 0) GTEST_SKIP() << "no /dev/full";
  auto w = ParallelWriter::Create(fd, 2, 4096, Options()).value();
  Status s = w->Write(12288, std::string(100, 'x'));
  if (s.ok()) s = w->Finish();
  EXPECT_EQ(s.code(), Code::kNoSpace) << s.ToString();
  EXPECT_NE(s.message().find("offset 12288"), std::string::npos) << s.message();
  EXPECT_EQ(w->Finish().code(), Code::kNoSpace);
  ::close(fd);
}

TEST(ParallelWriterTest, CreateRejectsBadArguments) {
  EXPECT_EQ(ParallelWriter::Create(-1).error().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParallelWriter::Create(0, 0).error().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParallelWriter::Create(0, 4, 0).error().code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace tidemark::capture
