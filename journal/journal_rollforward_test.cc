// Format 2's roll-forward (docs/format-journal.md#roll-forward): writes
// whose records reached the segments but whose index entries did not are
// indexed again by the next writer's open, exactly as they would have been.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal_impl.h"
#include "journal_test_util.h"

namespace tidemark::journal {
namespace {

using namespace testing_util;

constexpr uint64_t kVolBytes = 512 * kBs;

struct SkipIndex {
  SkipIndex() { g_test_skip_index_writes = true; }
  ~SkipIndex() { g_test_skip_index_writes = false; }
};

class RollForwardTest : public JournalTest {
 protected:
  // The same writes into the journal at `dir`: seqs 1..8 indexed, then 9..last
  // with their index left unwritten when `skip`; the journal closed after, or
  // the process ended without closing it (nothing synced) when `die`.
  Seq WriteAll(const std::string& dir, bool skip, bool die = false) {
    OpenOptions o;
    o.create_if_missing = true;
    auto jr = Journal::Open(dir, o);
    EXPECT_TRUE(jr) << jr.error().ToString();
    if (!jr) return 0;
    j_ = std::move(jr.value());
    const uint32_t vol = NewVolume(kVolBytes);
    EXPECT_TRUE(j_->Import(vol, [](uint64_t, char* b, size_t n) {
                     std::memset(b, 0, n);
                     return Status::Ok();
                   }, TimeOf(0)));
    Seq seq = 1;
    for (; seq <= 8; ++seq) EXPECT_TRUE(Write(vol, seq, (seq * 40) * kBs, Pattern(2 * kBs, seq)).ok());
    EXPECT_TRUE(j_->Commit().ok());
    std::optional<SkipIndex> off;
    if (skip) off.emplace();
    EXPECT_TRUE(Write(vol, seq++, 0, Pattern(64 * kBs, 100)).ok());               // many blocks
    EXPECT_TRUE(Write(vol, seq++, 40 * kBs + 1536, Pattern(512, 101)).ok());      // sub-block
    EXPECT_TRUE(Write(vol, seq++, 80 * kBs + 512, Pattern(2 * kBs, 102)).ok());   // unaligned both ends
    EXPECT_TRUE(Write(vol, seq++, 200 * kBs, Pattern(kBs, 103), kSeqFua).ok());   // FUA
    EXPECT_TRUE(Zero(vol, seq++, 120 * kBs, 3 * kBs, OpKind::kWriteZeroes).ok()); // inline zeros
    EXPECT_TRUE(j_->MarkFlush(vol, seq - 1, TimeOf(seq - 1), kSeqFlush).ok());
    // A backing checkpoint, and an unordered interval around the last writes.
    EXPECT_TRUE(j_->SetBackingCheckpoint(vol, seq - 1).ok());
    EXPECT_TRUE(j_->BeginUnordered(vol, seq - 1, TimeOf(seq - 1)).ok());
    // A range whose edges are read-modify-writes of blocks seqs 6 and 7 wrote.
    EXPECT_TRUE(Zero(vol, seq++, 241 * kBs + 1024, 40 * kBs + 1024).ok());
    EXPECT_TRUE(Write(vol, seq++, 300 * kBs, Pattern(8 * kBs, 104)).ok());
    EXPECT_TRUE(j_->EndUnordered(vol, seq - 1).ok());
    const Seq last = seq - 1;
    EXPECT_TRUE(j_->Commit().ok());
    if (die) ::_exit(::testing::Test::HasFailure() ? 1 : 0);
    j_.reset();  // the destructor's commit skips the index too
    return last;
  }
  std::vector<std::string> Lines(const std::string& dir) {
    OpenOptions o;
    auto jr = Journal::Open(dir, o);
    EXPECT_TRUE(jr) << jr.error().ToString();
    if (!jr) return {};
    j_ = std::move(jr.value());
    std::vector<std::string> out;
    for (const std::string& l : DumpLines()) {
      if (l.starts_with("meta ")) continue;  // uuid and creation time
      out.push_back(l);
    }
    return out;
  }
};

TEST_F(RollForwardTest, UnindexedWritesAreIndexedAtOpenAsTheyWouldHaveBeen) {
  if (TestFormat() == 1) GTEST_SKIP() << "format 2's segments";
  const std::string a = root_ + "/indexed", b = root_ + "/rolled";
  const Seq last = WriteAll(a, /*skip=*/false);
  ASSERT_EQ(WriteAll(b, /*skip=*/true), last);
  {
    // A reader's open with no writer running rolls forward first: a restore
    // right after a crash sees every answered write.
    OpenOptions ro;
    ro.read_only = true;
    auto r = Journal::Open(b, ro);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r.value()->LastSeq(1).value(), last);
  }
  const auto want = Lines(a);
  std::vector<std::string> want_images;
  for (Seq s = 0; s <= last; ++s) want_images.push_back(Image(1, s));
  const auto got = Lines(b);  // a writer's open rolls seqs 9..last forward
  EXPECT_EQ(j_->LastSeq(1).value(), last);
  for (size_t i = 0; i < std::max(got.size(), want.size()); ++i) {
    EXPECT_EQ(i < got.size() ? got[i] : "(none)", i < want.size() ? want[i] : "(none)");
  }
  for (Seq s = 0; s <= last; ++s) EXPECT_TRUE(Image(1, s) == want_images[s]) << "seq " << s;
  {
    std::vector<std::string> problems;
    auto v = j_->Verify(Journal::kNoVolume, [&](std::string_view l) { problems.emplace_back(l); });
    EXPECT_TRUE(v) << (problems.empty() ? v.error().ToString() : problems[0]);
  }
}

// A record cut short (a kill in the middle of a write(2)) ends the roll: the
// whole writes before it are indexed, the torn bytes are cut, and appends go on.
TEST_F(RollForwardTest, TornTailStopsTheRollAndIsCut) {
  if (TestFormat() == 1) GTEST_SKIP() << "format 2's segments";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) WriteAll(dir_, /*skip=*/true, /*die=*/true);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const Seq last = 15;
  // Tear the last record (seq last, 8 blocks): drop its final 1000 bytes.
  const std::string seg_dir = dir_ + "/segments/00000001";
  std::string file;
  for (const auto& e : fs::directory_iterator(seg_dir)) file = std::max(file, e.path().string());
  ASSERT_FALSE(file.empty());
  fs::resize_file(file, fs::file_size(file) - 1000);
  Reopen();
  EXPECT_EQ(j_->LastSeq(1).value(), last - 1);
  EXPECT_TRUE(Write(1, last, 300 * kBs, Pattern(kBs, 7)).ok());
  ASSERT_TRUE(j_->Sync(1));
  Reopen();
  EXPECT_EQ(j_->LastSeq(1).value(), last);
  EXPECT_TRUE(Block(1, 300, last) == Pattern(kBs, 7));
  {
    std::vector<std::string> problems;
    auto v = j_->Verify(Journal::kNoVolume, [&](std::string_view l) { problems.emplace_back(l); });
    EXPECT_TRUE(v) << (problems.empty() ? v.error().ToString() : problems[0]);
  }
}

// kill -9 in the middle of 1 MiB writes (and of segment rollovers): every write the child answered
// (Commit returned: its records written, its index maybe not: the child
// leaves most unindexed) is there at the next writer's open, with its bytes.
class KillDuringWrites : public RollForwardTest, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(KillDuringWrites, LosesNoAnsweredWrite) {
  if (TestFormat() == 1) GTEST_SKIP() << "format 2's segments";
  OpenOptions options;
  options.segment_bytes = GetParam();
  Reopen(options);
  const uint32_t vol = NewVolume(64 << 20);
  j_.reset();
  constexpr size_t kLen = 1 << 20;
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto j = Journal::Open(dir_, options);
      if (!j) ::_exit(2);
      auto last = j.value()->LastSeq(vol);
      for (Seq s = last.value() == kNoSeq ? 0 : last.value() + 1;; ++s) {
        WriteOp op;
        op.seq = s;
        op.time_ns = TimeOf(s);
        op.offset_bytes = (s % 64) * kLen;
        op.length_bytes = kLen;
        const std::string data = Pattern(kLen, s);
        op.data = data;
        if (!j.value()->Apply(vol, op).ok() || !j.value()->Commit().ok()) ::_exit(3);
        if (::write(fds[1], &s, sizeof s) != sizeof s) ::_exit(4);  // answered
        // From here on the index lags every answer (as a busy index writer may).
        g_test_skip_index_writes = s % 64 >= 10;
      }
    }
    ::close(fds[1]);
    Seq answered = kNoSeq, s = 0;
    for (int n = 0; n < 20 + round * 7 && ::read(fds[0], &s, sizeof s) == sizeof s; ++n) answered = s;
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ::close(fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child status " << status;
    ASSERT_NE(answered, kNoSeq);
    Reopen(options);
    const Seq last = j_->LastSeq(vol).value();
    EXPECT_GE(last, answered) << "round " << round;
    for (Seq q = answered >= 10 ? answered - 10 : 0; q <= answered; ++q) {
      const std::string want = Pattern(kLen, q).substr(kLen - kBs);
      EXPECT_TRUE(Block(vol, (q % 64) * (kLen / kBs) + kLen / kBs - 1, q) == want)
          << "round " << round << " seq " << q;
    }
    j_.reset();
  }
  if (GetParam() < (64u << 20)) {
    size_t segments = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_ + "/segments/00000001")) ++segments;
    EXPECT_GE(segments, 3u) << "the writes never rolled a segment over";
  }
}

// 256 MiB segments (the default), and 3 MiB ones: a kill lands around a rollover.
INSTANTIATE_TEST_SUITE_P(SegmentSizes, KillDuringWrites,
                         ::testing::Values(uint64_t{256} << 20, uint64_t{3} << 20));

// `journal check --rebuild-index`: an index rebuilt from the segments alone
// equals the one the writes made: the same dump, the same image at every seq.
// Imports (whole, changed blocks, staged, failed and abandoned), every kind of
// write, flush markers, a bookmark, a backing checkpoint and an unordered
// interval: segment records all.
TEST_F(RollForwardTest, RebuiltIndexEqualsTheOriginal) {
  if (TestFormat() == 1) GTEST_SKIP() << "format 2's segments";
  Reopen();
  const uint32_t vol = NewVolume(kVolBytes);
  std::string img(kVolBytes, '\0');
  for (uint64_t b : {0, 1, 2, 40, 41, 300, 511}) {
    std::memcpy(img.data() + b * kBs, Pattern(kBs, 1000 + b).data(), kBs);
  }
  ASSERT_TRUE(j_->Import(vol, ReaderOf(img), TimeOf(0)));
  Seq seq = 1;
  ASSERT_OK(Write(vol, seq++, 0, Pattern(64 * kBs, 100)));
  ASSERT_OK(Write(vol, seq++, 40 * kBs + 1536, Pattern(512, 101)));
  ASSERT_OK(Write(vol, seq++, 200 * kBs, Pattern(kBs, 103), kSeqFua));
  ASSERT_OK(Zero(vol, seq++, 120 * kBs, 3 * kBs, OpKind::kWriteZeroes));
  ASSERT_OK(j_->MarkFlush(vol, seq - 1, TimeOf(seq - 1), kSeqFlush));
  ASSERT_OK(j_->SetBackingCheckpoint(vol, seq - 1));
  ASSERT_OK(j_->BeginUnordered(vol, seq - 1, TimeOf(seq - 1)));
  ASSERT_OK(Zero(vol, seq++, 241 * kBs + 1024, 40 * kBs + 1024));
  ASSERT_OK(Write(vol, seq++, 33 * kBs, Pattern(kBs, 110)));
  ASSERT_OK(j_->EndUnordered(vol, seq - 1));
  // An import that fails half way: abandoned, its seq taken by the next write.
  auto failing = [&](uint64_t off, char* buf, size_t len) -> Status {
    if (off > 0) return Status::IOError("the source went away");
    std::memset(buf, 0x5a, len);
    return Status::Ok();
  };
  const uint32_t vol3 = NewVolume(8 << 20, kBs, "failing");
  ASSERT_TRUE(j_->Import(vol3, ReaderOf(std::string(8 << 20, '\1')), TimeOf(0)));
  ASSERT_FALSE(j_->Import(vol3, failing, TimeOf(1)));
  ASSERT_OK(Write(vol3, 1, 4096, Pattern(kBs, 300)));
  ASSERT_OK(Write(vol, seq++, 300 * kBs, Pattern(8 * kBs, 104)));
  // A later import of changed blocks.
  std::memcpy(img.data() + 7 * kBs, Pattern(kBs, 7).data(), kBs);
  auto got = j_->Import(vol, ReaderOf(img), TimeOf(seq));
  ASSERT_TRUE(got) << got.error().ToString();
  seq = got.value() + 1;
  ASSERT_TRUE(j_->AddBookmark(vol, "before-more", TimeOf(seq)));
  ASSERT_OK(Write(vol, seq++, 9 * kBs, Pattern(kBs, 105)));
  // A staged import of a second volume (a space of its own).
  const uint32_t vol2 = NewVolume(64 * kBs, kBs, "staged");
  ASSERT_OK(j_->StageImport(vol2, 0, Pattern(8 * kBs, 200)));
  ASSERT_OK(j_->StageImport(vol2, 32 * kBs, Pattern(4 * kBs, 201)));
  ASSERT_TRUE(j_->FinishStagedImport(vol2, TimeOf(seq)));
  ASSERT_TRUE(j_->Sync(vol));
  const Seq last = seq - 1;

  const auto want = DumpLines();
  // The log holds what the rebuild must sort out: import ends, an abandoned
  // import's data records and its abandonment.
  EXPECT_EQ(Count(want, "segment-record ", "kind=import"), 5);  // 4 ends, 1 abandonment
  EXPECT_GE(Count(want, "segment-record ", "seq=1 flags=0 length"), 1);  // vol3's dead import data
  std::vector<std::string> images;
  for (Seq s = 0; s <= last; ++s) images.push_back(Image(vol, s));
  const std::string staged = Image(vol2, 0);
  std::vector<std::string> stopped;
  ASSERT_OK(j_->RebuildIndex(&stopped));
  EXPECT_TRUE(stopped.empty()) << stopped[0];
  const auto got_lines = DumpLines();
  for (size_t i = 0; i < std::max(got_lines.size(), want.size()); ++i) {
    EXPECT_EQ(i < got_lines.size() ? got_lines[i] : "(none)", i < want.size() ? want[i] : "(none)");
  }
  for (Seq s = 0; s <= last; ++s) EXPECT_TRUE(Image(vol, s) == images[s]) << "seq " << s;
  EXPECT_TRUE(Image(vol2, 0) == staged);
  EXPECT_TRUE(Block(vol3, 1, 1) == Pattern(kBs, 300));
  EXPECT_TRUE(Block(vol3, 2, 1) == std::string(kBs, '\1'));
  // And the journal goes on from there.
  ASSERT_OK(Write(vol, last + 1, 0, Pattern(kBs, 106)));
  Reopen();
  EXPECT_EQ(j_->LastSeq(vol).value(), last + 1);
  EXPECT_TRUE(Block(vol, 0, last + 1) == Pattern(kBs, 106));
}

}  // namespace
}  // namespace tidemark::journal
