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
