// Staged imports: seq 0 received in chunks over several sessions (a remote
// tap's initial sync), resumable across reopening.
#include "journal_test_util.h"

namespace tidemark::journal {
namespace {

using namespace testing_util;  // NOLINT: test helpers

TEST_F(JournalTest, StagedImportInChunksAcrossReopen) {
  j_ = OpenJournal();
  // 64 blocks and a tail of 1024 bytes: the last chunk reaches the end.
  const uint64_t size = 64 * kBs + 1024;
  uint32_t vol = NewVolume(size);
  std::string img(size, '\0');
  for (uint64_t b = 0; b < 64; b += 3) img.replace(b * kBs, kBs, Pattern(kBs, b));
  img.replace(64 * kBs, 1024, Pattern(1024, 99));

  EXPECT_EQ(j_->StagedImportEnd(vol).value(), 0u);
  ASSERT_OK(j_->StageImport(vol, 0, std::string_view(img).substr(0, 16 * kBs)));
  ASSERT_OK(j_->StageImport(vol, 16 * kBs, std::string_view(img).substr(16 * kBs, 16 * kBs)));
  EXPECT_EQ(j_->StagedImportEnd(vol).value(), 32 * kBs);
  // Nothing is a point before the import finishes.
  EXPECT_CODE(j_->Latest(vol), Code::kNotFound);
  ASSERT_OK(j_->Sync(vol));
  Reopen();  // a target restart: the staged chunks stay, the sync resumes
  EXPECT_EQ(j_->StagedImportEnd(vol).value(), 32 * kBs);
  // A resent chunk is harmless; then the rest.
  ASSERT_OK(j_->StageImport(vol, 16 * kBs, std::string_view(img).substr(16 * kBs, 16 * kBs)));
  ASSERT_OK(j_->StageImport(vol, 32 * kBs, std::string_view(img).substr(32 * kBs)));
  EXPECT_EQ(j_->StagedImportEnd(vol).value(), size);
  auto seq0 = j_->FinishStagedImport(vol, kT0);
  ASSERT_TRUE(seq0) << seq0.error().ToString();
  EXPECT_EQ(seq0.value(), 0u);
  EXPECT_BYTES_EQ(Image(vol, 0), img);
  EXPECT_BYTES_EQ(Scan(vol, 0), img);
  // Seq 0 lists the imported blocks: ChangedExtents sees them.
  auto changed = j_->ChangedExtents(vol, kNoSeq, 0);
  ASSERT_TRUE(changed);
  uint64_t bytes = 0;
  for (const Extent& e : changed.value()) bytes += e.length_bytes;
  EXPECT_EQ(bytes, 22 * kBs + 1024);
  // Writes follow; the marker is gone and a reopen keeps everything.
  ASSERT_OK(Write(vol, 1, 0, Pattern(kBs, 1000)));
  ASSERT_OK(j_->Commit());
  Reopen();
  EXPECT_BYTES_EQ(Image(vol, 0), img);
  EXPECT_EQ(j_->StagedImportEnd(vol).value(), 0u);
  EXPECT_CODE(j_->StageImport(vol, 0, std::string(kBs, 'a')), Code::kInvalidArgument);
  EXPECT_CODE(j_->FinishStagedImport(vol, kT0), Code::kInvalidArgument);
}

TEST_F(JournalTest, StagedImportRejectsBadChunks) {
  j_ = OpenJournal();
  uint32_t vol = NewVolume(16 * kBs);
  EXPECT_CODE(j_->StageImport(vol, 512, std::string(kBs, 'a')), Code::kInvalidArgument);
  EXPECT_CODE(j_->StageImport(vol, 0, std::string(1000, 'a')), Code::kInvalidArgument);
  EXPECT_CODE(j_->StageImport(vol, 15 * kBs, std::string(2 * kBs, 'a')), Code::kInvalidArgument);
  EXPECT_CODE(j_->StageImport(vol + 7, 0, std::string(kBs, 'a')), Code::kNotFound);
  // An all-zero volume: seq 0 with nothing in it.
  ASSERT_OK(j_->StageImport(vol, 0, std::string(16 * kBs, '\0')));
  ASSERT_TRUE(j_->FinishStagedImport(vol, kT0));
  EXPECT_BYTES_EQ(Image(vol, 0), std::string(16 * kBs, '\0'));
}

}  // namespace
}  // namespace tidemark::journal

namespace tidemark::journal {
namespace {

using namespace testing_util;  // NOLINT: test helpers

// Seqs resent out of order (a tap's resync) are stored, but none inside the
// interval is a point; the end of the interval is.
TEST_F(JournalTest, UnorderedIntervalIsNotOffered) {
  j_ = OpenJournal();
  uint32_t vol = NewVolume(16 * kBs);
  ASSERT_OK(Write(vol, 0, 0, Pattern(kBs, 0)));
  ASSERT_OK(Write(vol, 1, kBs, Pattern(kBs, 1)));
  ASSERT_OK(j_->MarkFlush(vol, 1, TimeOf(1), kSeqFlush));
  ASSERT_OK(j_->BeginUnordered(vol, 1, TimeOf(1)));
  ASSERT_OK(j_->BeginUnordered(vol, 1, TimeOf(1)));  // said again after a reconnect: no-op
  ASSERT_OK(Write(vol, 2, 2 * kBs, Pattern(kBs, 2)));
  ASSERT_OK(j_->MarkFlush(vol, 2, TimeOf(2), kSeqFlush));
  ASSERT_OK(Write(vol, 3, 3 * kBs, Pattern(kBs, 3)));
  ASSERT_OK(j_->Commit());
  // Open: the latest point is the interval's start; no bookmark can be named.
  EXPECT_EQ(j_->Latest(vol).value().seq, 1u);
  EXPECT_CODE(j_->AddBookmark(vol, "mid", TimeOf(3)), Code::kInvalidArgument);
  PointSpec at2{PointSpec::Kind::kSeq, 2, 0, ""};
  EXPECT_CODE(j_->Resolve(vol, at2, TimeOf(100)), Code::kInvalidArgument);
  ASSERT_OK(Write(vol, 4, 4 * kBs, Pattern(kBs, 4)));
  ASSERT_OK(j_->EndUnordered(vol, 4));
  ASSERT_OK(Write(vol, 5, 5 * kBs, Pattern(kBs, 5)));
  ASSERT_OK(j_->Commit());
  Reopen();  // the interval survives
  EXPECT_EQ(j_->Latest(vol).value().seq, 5u);
  for (Seq s : {2, 3}) {
    PointSpec spec{PointSpec::Kind::kSeq, s, 0, ""};
    EXPECT_CODE(j_->Resolve(vol, spec, TimeOf(100)), Code::kInvalidArgument) << s;
    PointSpec t{PointSpec::Kind::kTime, 0, TimeOf(s), ""};
    EXPECT_EQ(j_->Resolve(vol, t, TimeOf(100)).value().seq, 1u) << s;
  }
  PointSpec at4{PointSpec::Kind::kSeq, 4, 0, ""};
  EXPECT_EQ(j_->Resolve(vol, at4, TimeOf(100)).value().seq, 4u);
  auto flushes = j_->Flushes(vol);
  ASSERT_TRUE(flushes);
  ASSERT_EQ(flushes.value().size(), 1u);  // seq 2's flush lies inside
  EXPECT_EQ(flushes.value()[0].seq, 1u);
  EXPECT_TRUE(j_->AddBookmark(vol, "after", TimeOf(6)));
  ASSERT_EQ(j_->UnorderedIntervals(vol).size(), 1u);
  EXPECT_EQ(Count(DumpLines(), "unordered", "after=1 upto=4"), 1);
  // The data of every seq is kept: the latest point has all of it.
  EXPECT_BYTES_EQ(Block(vol, 3, 5), Pattern(kBs, 3));
}

}  // namespace
}  // namespace tidemark::journal
