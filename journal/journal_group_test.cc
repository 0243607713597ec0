// Consistency groups (docs/design.md#consistency-groups): volumes sharing one seq space;
// each member's seq 0 image is seq i of the space, in member order, and the
// group's first point is the last of them.
#include "journal_test_util.h"

namespace tidemark::journal {
namespace {

using namespace testing_util;  // NOLINT: test helpers

Journal::ReadFn ReaderOf(const std::string& img) {
  return [&img](uint64_t off, char* buf, size_t len) {
    std::memcpy(buf, img.data() + off, len);
    return Status::Ok();
  };
}

TEST_F(JournalTest, GroupSharesOneSeqSpace) {
  j_ = OpenJournal();
  auto g = j_->CreateGroup("vm1", {{"sda", 16 * kBs, kBs}, {"sdb", 8 * kBs, kBs}});
  ASSERT_TRUE(g) << g.error().ToString();
  ASSERT_EQ(g.value().volumes.size(), 2u);
  const uint32_t a = g.value().volumes[0].id, b = g.value().volumes[1].id;
  EXPECT_EQ(g.value().volumes[1].group, "vm1");
  EXPECT_EQ(g.value().volumes[1].import_seq, 1u);
  std::string img_a(16 * kBs, '\0'), img_b(8 * kBs, '\0');
  img_a.replace(2 * kBs, kBs, Pattern(kBs, 1));
  img_b.replace(5 * kBs, kBs, Pattern(kBs, 2));

  // Members' images go in order; nothing is a point before the last one.
  EXPECT_CODE(j_->Import(b, ReaderOf(img_b), kT0), Code::kInvalidArgument);
  ASSERT_EQ(j_->Import(a, ReaderOf(img_a), kT0).value(), 0u);
  EXPECT_CODE(j_->First(a), Code::kNotFound);
  EXPECT_CODE(j_->AddBookmark(a, "early", kT0), Code::kNotFound);
  ASSERT_EQ(j_->Import(b, ReaderOf(img_b), kT0).value(), 1u);
  EXPECT_EQ(j_->First(a).value().seq, 1u);
  EXPECT_EQ(j_->First(b).value().seq, 1u);
  EXPECT_CODE(j_->Resolve(a, {PointSpec::Kind::kSeq, 0, 0, ""}, kT0 + 100 * kSec),
              Code::kInvalidArgument);

  // Writes of both volumes interleave in the one seq space.
  ASSERT_OK(Write(a, 2, 0, Pattern(kBs, 10)));
  ASSERT_OK(Write(b, 3, 0, Pattern(kBs, 11)));
  ASSERT_OK(Write(a, 3, kBs, Pattern(kBs, 99)));  // seq 3 is held (b's): a resend, a no-op
  ASSERT_OK(Write(a, 4, kBs, Pattern(kBs, 12)));
  ASSERT_OK(j_->Commit());
  EXPECT_EQ(j_->LastSeq(a).value(), 4u);
  EXPECT_EQ(j_->LastSeq(b).value(), 4u);
  auto bm = j_->AddBookmark(b, "both", kT0 + 10 * kSec);
  ASSERT_TRUE(bm);
  EXPECT_EQ(bm.value().point.seq, 4u);
  ASSERT_EQ(j_->Bookmarks(a).size(), 1u);  // one bookmark of the group
  EXPECT_CODE(j_->AddBookmark(a, "both", kT0), Code::kInvalidArgument);

  // Each volume reads its own blocks at a group seq.
  std::string a2 = img_a, b3 = img_b;
  a2.replace(0, kBs, Pattern(kBs, 10));
  b3.replace(0, kBs, Pattern(kBs, 11));
  EXPECT_BYTES_EQ(Image(a, 2), a2);
  EXPECT_BYTES_EQ(Image(b, 2), img_b);
  EXPECT_BYTES_EQ(Image(b, 4), b3);
  auto changed = j_->ChangedExtents(b, 1, 4);
  ASSERT_TRUE(changed);
  ASSERT_EQ(changed.value().size(), 1u);
  EXPECT_EQ(changed.value()[0].offset_bytes, 0u);

  Reopen();
  ASSERT_EQ(j_->Groups().size(), 1u);
  auto found = j_->FindGroup("vm1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found.value().volumes[0].name, "sda");
  EXPECT_EQ(found.value().volumes[1].name, "sdb");
  EXPECT_EQ(j_->First(b).value().seq, 1u);
  EXPECT_EQ(j_->FindVolume("sdb").value().group, "vm1");
  EXPECT_CODE(j_->FindGroup("vm2"), Code::kNotFound);
  ASSERT_OK(Write(b, 5, kBs, Pattern(kBs, 13)));  // the space continues after reopening
  ASSERT_OK(j_->Commit());
  EXPECT_EQ(j_->Latest(a).value().seq, 5u);
}

TEST_F(JournalTest, GroupRefusesTakenNamesAndBadGeometry) {
  j_ = OpenJournal();
  NewVolume(16 * kBs, kBs, "solo");
  EXPECT_CODE(j_->CreateGroup("g", {{"solo", 16 * kBs, kBs}}), Code::kInvalidArgument);
  EXPECT_CODE(j_->CreateGroup("g", {{"x", 16 * kBs, kBs}, {"x", 16 * kBs, kBs}}),
              Code::kInvalidArgument);
  EXPECT_CODE(j_->CreateGroup("g", {{"x", 1000, kBs}}), Code::kInvalidArgument);
  EXPECT_CODE(j_->CreateGroup("g", {}), Code::kInvalidArgument);
  EXPECT_CODE(j_->CreateGroup("", {{"x", 16 * kBs, kBs}}), Code::kInvalidArgument);
  ASSERT_TRUE(j_->CreateGroup("g", {{"x", 16 * kBs, kBs}}));
  EXPECT_CODE(j_->CreateGroup("g", {{"y", 16 * kBs, kBs}}), Code::kInvalidArgument);
  // Nothing half-created by the refusals.
  EXPECT_EQ(j_->Volumes().size(), 2u);
}

TEST_F(JournalTest, GroupStagedImportsFinishInMemberOrder) {
  j_ = OpenJournal();
  auto g = j_->CreateGroup("vm", {{"d0", 8 * kBs, kBs}, {"d1", 8 * kBs, kBs}});
  ASSERT_TRUE(g);
  const uint32_t d0 = g.value().volumes[0].id, d1 = g.value().volumes[1].id;
  std::string img0(8 * kBs, '\0'), img1(8 * kBs, '\0');
  img0.replace(0, kBs, Pattern(kBs, 7));
  img1.replace(3 * kBs, kBs, Pattern(kBs, 8));
  ASSERT_OK(j_->StageImport(d1, 0, img1));  // staged early: fine
  ASSERT_OK(j_->StageImport(d0, 0, img0));
  EXPECT_CODE(j_->FinishStagedImport(d1, kT0), Code::kInvalidArgument);
  ASSERT_OK(j_->Sync(d0));
  Reopen();
  EXPECT_EQ(j_->StagedImportEnd(d1).value(), 8 * kBs);
  ASSERT_EQ(j_->FinishStagedImport(d0, kT0).value(), 0u);
  ASSERT_EQ(j_->FinishStagedImport(d1, kT0 + kSec).value(), 1u);
  EXPECT_BYTES_EQ(Image(d0, 1), img0);
  EXPECT_BYTES_EQ(Image(d1, 1), img1);
  EXPECT_EQ(j_->First(d0).value().seq, 1u);
  auto changed = j_->ChangedExtents(d1, kNoSeq, 1);
  ASSERT_TRUE(changed);
  ASSERT_EQ(changed.value().size(), 1u);
  EXPECT_EQ(changed.value()[0].offset_bytes, 3 * kBs);
}

}  // namespace
}  // namespace tidemark::journal
