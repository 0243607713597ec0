// Tests of opening a journal while another opens it: the open lock
// (docs/design.md#readiness).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "journal_test_util.h"

namespace tidemark::journal {
namespace {

using namespace testing_util;  // NOLINT: the shared fixture

// A reader never opens in the middle of a writer's recovery (RocksDB's LOCK is
// taken before it, so a reader could see half of it): it waits for the open
// lock the writer holds until its journal is whole.
TEST_F(JournalTest, ReaderWaitsForWritersOpen) {
  Reopen();
  ASSERT_OK(j_->CreateVolume("v", 1 << 20, kBs));
  j_.reset();
  int fd = ::open((dir_ + "/OPEN.lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << "the writer's open made no OPEN.lock";
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // a writer, recovering
  std::atomic<bool> opened{false};
  std::thread reader([&] {
    OpenOptions ro;
    ro.read_only = true;
    auto r = Journal::Open(dir_, ro);
    EXPECT_TRUE(r) << r.error().ToString();
    opened = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(opened) << "a reader opened while a writer held the open lock";
  ::close(fd);  // recovery done
  reader.join();
  EXPECT_TRUE(opened);
}

// A writer killed with -9 leaves its newest seqs in the WAL only; the next
// writer's recovery flushes them and deletes that WAL. Readers opening all the
// while never see fewer seqs than were synced before the kill.
TEST_F(JournalTest, ReadersDuringRecoverySeeEverySyncedSeq) {
  Reopen();
  const uint32_t vol = NewVolume();
  j_.reset();
  Seq next = 0;
  for (int round = 0; round < 12; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {  // the writer: sync some seqs, die without closing
      auto j = Journal::Open(dir_, {});
      if (!j) ::_exit(2);
      for (Seq s = next; s < next + 50; ++s) {
        WriteOp op;
        op.seq = s;
        op.time_ns = TimeOf(s);
        op.offset_bytes = (s % 64) * kBs;
        op.length_bytes = kBs;
        std::string data = Pattern(kBs, s);
        op.data = data;
        if (!j.value()->Apply(vol, op).ok()) ::_exit(3);
      }
      ::_exit(j.value()->Sync(vol) ? 0 : 4);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer status " << status;
    next += 50;
    const Seq want = next - 1;
    std::atomic<bool> stop{false};
    std::atomic<int> opens{0}, short_reads{0};
    std::thread reader([&] {
      OpenOptions ro;
      ro.read_only = true;
      while (!stop) {
        auto r = Journal::Open(dir_, ro);
        if (!r) continue;  // a file removed under the open: an error, never a short answer
        ++opens;
        auto last = r.value()->LastSeq(vol);
        if (!last || last.value() != want) ++short_reads;
      }
    });
    while (opens == 0) std::this_thread::yield();
    Reopen();  // the next writer: its recovery runs while the reader opens
    stop = true;
    reader.join();
    j_.reset();
    EXPECT_EQ(short_reads, 0) << "round " << round << ": of " << opens
                              << " reader opens, some missed seqs synced before the kill";
  }
}

}  // namespace
}  // namespace tidemark::journal
