// ResolveVolumeSet() on a local journal: a volume, a group (members in
// member order, one point for all, resolved through the first member
// whichever member the bookmark was taken through), and the one-line
// errors: VOLUME with --group, neither, an unknown group, a seq inside an
// unordered interval of the group's seq space.
#include "volume_set.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace tidemark::tools {
namespace {

constexpr uint32_t kBs = 4096;
constexpr TimeNs kSec = 1'000'000'000;
constexpr TimeNs kT0 = 1795428899 * kSec;  // 2026-11-23T10:14:59Z

class VolumeSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/volume_set_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    journal::OpenOptions o;
    o.create_if_missing = true;
    auto j = journal::Journal::Open(root_ + "/j", o);
    ASSERT_TRUE(j) << j.error().ToString();
    j_ = std::move(j.value());
    auto g = j_->CreateGroup("vm1", {{"sda", 8 * kBs, kBs}, {"sdb", 4 * kBs, kBs}});
    ASSERT_TRUE(g) << g.error().ToString();
    a_ = g.value().volumes[0].id;
    b_ = g.value().volumes[1].id;
    auto solo = j_->CreateVolume("solo", 4 * kBs, kBs);
    ASSERT_TRUE(solo) << solo.error().ToString();
    solo_ = solo.value().id;
    auto zeros = [](uint64_t, char* buf, size_t len) {
      std::fill(buf, buf + len, '\0');
      return Status::Ok();
    };
    ASSERT_EQ(j_->Import(a_, zeros, kT0).value(), 0u);
    ASSERT_EQ(j_->Import(b_, zeros, kT0).value(), 1u);
    ASSERT_EQ(j_->Import(solo_, zeros, kT0).value(), 0u);
    ASSERT_TRUE(Write(a_, 2).ok());
    ASSERT_TRUE(Write(b_, 3).ok());
    ASSERT_TRUE(j_->Commit().ok());
  }
  void TearDown() override {
    j_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  Status Write(uint32_t vol, Seq seq) {
    std::string data(kBs, static_cast<char>('a' + seq));
    WriteOp op;
    op.seq = seq;
    op.time_ns = kT0 + static_cast<TimeNs>(seq) * kSec;
    op.length_bytes = data.size();
    op.data = data;
    return j_->Apply(vol, op);
  }
  journal::PointSpec AtSeq(tidemark::Seq s) {
    journal::PointSpec p;
    p.kind = journal::PointSpec::Kind::kSeq;
    p.seq = s;
    return p;
  }
  std::string root_;
  std::unique_ptr<journal::Journal> j_;
  uint32_t a_ = 0, b_ = 0, solo_ = 0;
};

TEST_F(VolumeSetTest, VolumeAndGroup) {
  const TimeNs now = kT0 + 100 * kSec;
  auto one = ResolveVolumeSet(*j_, "solo", "", AtSeq(0), now);
  ASSERT_TRUE(one) << one.error().ToString();
  EXPECT_EQ(one.value().group, "");
  ASSERT_EQ(one.value().volumes.size(), 1u);
  EXPECT_EQ(one.value().volumes[0].name, "solo");

  // A bookmark taken through the second member is the group's point.
  ASSERT_TRUE(j_->AddBookmark(b_, "b1", now));
  journal::PointSpec bm;
  bm.kind = journal::PointSpec::Kind::kBookmark;
  bm.bookmark = "b1";
  auto g = ResolveVolumeSet(*j_, "", "vm1", bm, now);
  ASSERT_TRUE(g) << g.error().ToString();
  EXPECT_EQ(g.value().group, "vm1");
  ASSERT_EQ(g.value().volumes.size(), 2u);
  EXPECT_EQ(g.value().volumes[0].name, "sda");
  EXPECT_EQ(g.value().volumes[1].name, "sdb");
  EXPECT_EQ(g.value().point.seq, 3u);
  EXPECT_EQ(g.value().point.time_ns, kT0 + 3 * kSec);
  // The member alone resolves the same bookmark to the same point.
  EXPECT_EQ(ResolveVolumeSet(*j_, "sda", "", bm, now).value().point, g.value().point);
}

TEST_F(VolumeSetTest, Errors) {
  const TimeNs now = kT0 + 100 * kSec;
  auto both = ResolveVolumeSet(*j_, "sda", "vm1", AtSeq(2), now);
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(both.error().message(),
            "give a VOLUME or --group G, not both (VOLUME 'sda' with --group vm1)");
  auto neither = ResolveVolumeSet(*j_, "", "", AtSeq(2), now);
  ASSERT_FALSE(neither);
  EXPECT_EQ(neither.error().message(), "give a VOLUME or --group G");
  auto unknown = ResolveVolumeSet(*j_, "", "vm2", AtSeq(2), now);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), Code::kNotFound);
  EXPECT_NE(unknown.error().message().find("no group 'vm2'"), std::string::npos);
  EXPECT_NE(unknown.error().message().find("vm1"), std::string::npos);  // the ones there are
  // Seq 0 is sda's image alone: the group's first point is seq 1.
  EXPECT_EQ(ResolveVolumeSet(*j_, "", "vm1", AtSeq(0), now).error().code(), Code::kInvalidArgument);

  // An unordered interval opened through sdb covers the group's seq space.
  ASSERT_TRUE(j_->BeginUnordered(b_, 3, kT0 + 4 * kSec).ok());
  ASSERT_TRUE(Write(a_, 4).ok());
  ASSERT_TRUE(Write(b_, 5).ok());
  ASSERT_TRUE(Write(a_, 6).ok());
  ASSERT_TRUE(j_->EndUnordered(b_, 6).ok());
  ASSERT_TRUE(j_->Commit().ok());
  auto inside = ResolveVolumeSet(*j_, "", "vm1", AtSeq(5), now);
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.error().code(), Code::kInvalidArgument);
  EXPECT_EQ(inside.error().message().find('\n'), std::string::npos);
  EXPECT_EQ(ResolveVolumeSet(*j_, "", "vm1", AtSeq(6), now).value().point.seq, 6u);
}

}  // namespace
}  // namespace tidemark::tools
