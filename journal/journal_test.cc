// Tests of the RocksDB journal through its public API.
#include "journal_test_util.h"

namespace tidemark::journal {
namespace {

using namespace testing_util;  // NOLINT: the shared fixture

// ---- open and volumes ------------------------------------------------------

TEST_F(JournalTest, CreateAndOpen) {
  OpenOptions o;
  EXPECT_CODE(Journal::Open(dir_, o), Code::kNotFound);
  EXPECT_FALSE(fs::exists(dir_));
  o.read_only = true;
  o.create_if_missing = true;
  EXPECT_CODE(Journal::Open(dir_, o), Code::kNotFound);

  Reopen();
  EXPECT_EQ(j_->dir(), dir_);
  EXPECT_FALSE(j_->read_only());
  EXPECT_EQ(j_->meta().format_version, TestFormat());
  EXPECT_EQ(j_->meta().read_floor, TestFormat());
  EXPECT_EQ(j_->meta().write_floor, TestFormat());
  EXPECT_NE(j_->meta().uuid, (std::array<uint8_t, 16>{}));
  EXPECT_GT(j_->meta().created_ns, kT0 - 3650 * 86400 * kSec);
  EXPECT_TRUE(j_->Volumes().empty());
  MetaRecord meta = j_->meta();

  // A second writer is refused while the first holds the journal.
  EXPECT_CODE(Journal::Open(dir_, {}), Code::kTryAgain);

  Reopen();
  EXPECT_EQ(j_->meta(), meta);
  j_.reset();
  OpenOptions ro;
  ro.read_only = true;
  auto r = Journal::Open(dir_, ro);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r.value()->read_only());
  EXPECT_EQ(r.value()->meta(), meta);
  EXPECT_CODE(r.value()->CreateVolume("v", 1 << 20, kBs), Code::kNotSupported);
  EXPECT_CODE(r.value()->SetFloors(1, 1), Code::kNotSupported);

  // A file where the directory should be.
  std::string file = root_ + "/file";
  fclose(fopen(file.c_str(), "w"));
  OpenOptions c;
  c.create_if_missing = true;
  EXPECT_CODE(Journal::Open(file, c), Code::kInvalidArgument);
}

TEST_F(JournalTest, CreateVolumeValidation) {
  Reopen();
  EXPECT_CODE(j_->CreateVolume("", 1 << 20, kBs), Code::kInvalidArgument);
  EXPECT_CODE(j_->CreateVolume("a/b", 1 << 20, kBs), Code::kInvalidArgument);
  EXPECT_CODE(j_->CreateVolume("a\nb", 1 << 20, kBs), Code::kInvalidArgument);
  EXPECT_CODE(j_->CreateVolume(std::string(256, 'a'), 1 << 20, kBs), Code::kInvalidArgument);
  for (uint32_t bs : {0u, 256u, 3000u, 4097u, 2u << 20}) {
    EXPECT_CODE(j_->CreateVolume("v", 1 << 20, bs), Code::kInvalidArgument) << bs;
  }
  for (uint64_t size : {0ull, 1ull, 1000ull, (1ull << 20) + 1}) {
    EXPECT_CODE(j_->CreateVolume("v", size, kBs), Code::kInvalidArgument) << size;
  }
  EXPECT_TRUE(j_->Volumes().empty());

  auto a = j_->CreateVolume(std::string(255, 'a'), 512, 512);
  ASSERT_TRUE(a) << a.error().ToString();
  auto b = j_->CreateVolume("vm1 disk0", (1ull << 40) + 512, 1u << 20);
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_NE(a.value().id, b.value().id);
  EXPECT_EQ(b.value().space, b.value().id);
  EXPECT_EQ(b.value().size_bytes, (1ull << 40) + 512);
  EXPECT_EQ(b.value().block_bytes, 1u << 20);
  EXPECT_EQ(b.value().blocks(), (1ull << 20) + 1);
  EXPECT_CODE(j_->CreateVolume("vm1 disk0", 1 << 20, kBs), Code::kInvalidArgument);

  auto f = j_->FindVolume("vm1 disk0");
  ASSERT_TRUE(f);
  EXPECT_EQ(f.value().id, b.value().id);
  auto missing = j_->FindVolume("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_NE(missing.error().message().find("vm1 disk0"), std::string::npos)
      << missing.error().message();

  // A volume with no seqs has no points.
  EXPECT_CODE(j_->Latest(b.value().id), Code::kNotFound);
  EXPECT_CODE(j_->First(b.value().id), Code::kNotFound);
  EXPECT_EQ(j_->LastSeq(b.value().id).value(), kNoSeq);
  EXPECT_EQ(j_->Sync(b.value().id).value(), kNoSeq);
  EXPECT_CODE(j_->LastSeq(999), Code::kNotFound);

  Reopen();
  ASSERT_EQ(j_->Volumes().size(), 2u);
  EXPECT_EQ(j_->FindVolume("vm1 disk0").value().size_bytes, (1ull << 40) + 512);
  auto c = j_->CreateVolume("third", 1 << 20, kBs);
  ASSERT_TRUE(c);
  EXPECT_GT(c.value().id, b.value().id);
}

// ---- writes ----------------------------------------------------------------

TEST_F(JournalTest, ApplyAndReadAtEachSeq) {
  Reopen();
  uint32_t vol = NewVolume();
  std::vector<std::string> img(5, std::string(64 * kBs, '\0'));
  // seq 0: blocks 0-3; seq 1: block 2; seq 2: blocks 3-5; seq 3: block 0; seq 4: 63.
  struct W {
    uint64_t off, len;
  } ws[] = {{0, 4 * kBs}, {2 * kBs, kBs}, {3 * kBs, 3 * kBs}, {0, kBs}, {63 * kBs, kBs}};
  std::string cur(64 * kBs, '\0');
  for (Seq s = 0; s < 5; ++s) {
    std::string d = Pattern(ws[s].len, s);
    ASSERT_OK(Write(vol, s, ws[s].off, d));
    EXPECT_EQ(j_->LastSeq(vol).value(), s);
    cur.replace(ws[s].off, d.size(), d);
    img[s] = cur;
  }
  // Nothing is visible before the commit.
  EXPECT_CODE(j_->Latest(vol), Code::kNotFound);
  EXPECT_BYTES_EQ(Block(vol, 0, 4), std::string(kBs, '\0'));
  ASSERT_OK(j_->Commit());
  EXPECT_EQ(j_->Latest(vol).value(), (Point{4, TimeOf(4)}));
  EXPECT_EQ(j_->First(vol).value(), (Point{0, TimeOf(0)}));
  for (Seq s = 0; s < 5; ++s) {
    EXPECT_TRUE(Image(vol, s) == img[s]) << "seq " << s;
    EXPECT_TRUE(Scan(vol, s) == img[s]) << "seq " << s;
  }
  // Reads at a seq past the latest see the latest; ReadBlock past the end fails.
  EXPECT_TRUE(Image(vol, 1000) == img[4]);
  std::string out(kBs, '\0');
  EXPECT_CODE(j_->ReadBlock(vol, 64, 4, out.data()), Code::kInvalidArgument);
  EXPECT_CODE(j_->ReadBlock(77, 0, 4, out.data()), Code::kNotFound);
  Reopen();
  for (Seq s = 0; s < 5; ++s) EXPECT_TRUE(Image(vol, s) == img[s]) << "seq " << s;
}

TEST_F(JournalTest, SubBlockWritesReadModifyWrite) {
  OpenOptions o;
  o.group_commit_writes = 1000;  // every write below lands in one batch
  Reopen(o);
  uint32_t vol = NewVolume(16 * kBs);
  std::string cur = Pattern(16 * kBs, 99);
  ASSERT_OK(Write(vol, 0, 0, cur));
  std::map<Seq, std::string> want{{0, cur}};
  struct W {
    uint64_t off, len;
  } ws[] = {
      {512, 512},                // odd sector in block 0
      {3 * 512, 512},            // same block, another sector
      {512, 1024},               // overlapping the first
      {kBs - 512, 1024},         // across the block 0/1 boundary
      {7 * 512, 512},            // last sector of block 0
      {5 * kBs + 512, 3 * kBs},  // partial, whole, whole... partial
      {15 * kBs + 3584, 512},    // last sector of the volume
      {9 * 512, 512},
  };
  Seq seq = 1;
  for (const W& w : ws) {
    std::string d = Pattern(w.len, seq + 1000);
    ASSERT_OK(Write(vol, seq, w.off, d));
    cur.replace(w.off, d.size(), d);
    want[seq] = cur;
    ++seq;
  }
  // Trims of sub-block ranges inside the same batch.
  ASSERT_OK(Zero(vol, seq, 2 * 512, 512));
  cur.replace(2 * 512, 512, std::string(512, '\0'));
  want[seq++] = cur;
  ASSERT_OK(Zero(vol, seq, kBs + 512, 2 * kBs, OpKind::kWriteZeroes));
  cur.replace(kBs + 512, 2 * kBs, std::string(2 * kBs, '\0'));
  want[seq++] = cur;
  ASSERT_OK(Write(vol, seq, kBs + 1024, std::string(512, 'z')));
  cur.replace(kBs + 1024, 512, std::string(512, 'z'));
  want[seq++] = cur;
  ASSERT_OK(j_->Commit());
  for (const auto& [s, img] : want) {
    EXPECT_TRUE(Image(vol, s) == img) << "seq " << s;
    EXPECT_TRUE(Scan(vol, s) == img) << "seq " << s;
  }
  // And again across commits (RMW reads the stored version).
  o.group_commit_writes = 1;
  Reopen(o);
  for (int i = 0; i < 6; ++i) {
    uint64_t off = (static_cast<uint64_t>(i) * 7 + 1) * 512;
    std::string d = Pattern(512, seq);
    ASSERT_OK(Write(vol, seq, off, d));
    cur.replace(off, 512, d);
    want[seq++] = cur;
  }
  for (const auto& [s, img] : want) EXPECT_TRUE(Image(vol, s) == img) << "seq " << s;
}

TEST_F(JournalTest, SmallTrimIsInlineZeroBlocks) {
  Reopen();
  uint32_t vol = NewVolume(64 * kBs);
  std::string img = Pattern(64 * kBs, 1);
  ASSERT_OK(Write(vol, 0, 0, img));
  // 16 whole blocks plus two partial edges: still inline.
  ASSERT_OK(Zero(vol, 1, 2 * kBs + 512, 17 * kBs - 1024));
  ASSERT_OK(Zero(vol, 2, 40 * kBs, 2 * kBs, OpKind::kWriteZeroes));
  ASSERT_OK(j_->Commit());
  auto lines = DumpLines(vol);
  EXPECT_EQ(Count(lines, "range "), 0);
  EXPECT_EQ(Count(lines, "zero-block ", " seq=1 "), 15);
  EXPECT_EQ(Count(lines, "block ", " seq=1 "), 2);  // the edges
  EXPECT_EQ(Count(lines, "zero-block ", " seq=2 "), 2);
  std::string want1 = img;
  want1.replace(2 * kBs + 512, 17 * kBs - 1024, std::string(17 * kBs - 1024, '\0'));
  std::string want2 = want1;
  want2.replace(40 * kBs, 2 * kBs, std::string(2 * kBs, '\0'));
  EXPECT_TRUE(Image(vol, 0) == img);
  EXPECT_TRUE(Image(vol, 1) == want1);
  EXPECT_TRUE(Scan(vol, 1) == want1);
  EXPECT_TRUE(Image(vol, 2) == want2);
  EXPECT_TRUE(Scan(vol, 2) == want2);
}

TEST_F(JournalTest, WholeDeviceTrimIsOneRangeRecord) {
  Reopen();
  const uint64_t size = 1ull << 30;
  uint32_t vol = NewVolume(size);
  std::string a = Pattern(kBs, 1), b = Pattern(kBs, 2);
  ASSERT_OK(Write(vol, 0, 0, a));
  ASSERT_OK(Write(vol, 1, size - kBs, b));
  ASSERT_OK(Write(vol, 2, 1000 * kBs, a));
  ASSERT_OK(Zero(vol, 3, 0, size));  // mkfs discards the whole device
  ASSERT_OK(j_->Commit());
  auto lines = DumpLines(vol);
  ASSERT_EQ(Count(lines, "range "), 1);
  EXPECT_EQ(Count(lines, "range ", "blocks=0+262144"), 1);
  EXPECT_EQ(Count(lines, "block ", " seq=3 "), 0);
  EXPECT_EQ(Count(lines, "zero-block ", " seq=3 "), 0);
  EXPECT_LT(lines.size(), 30u);
  EXPECT_BYTES_EQ(Block(vol, 0, 2), a);
  EXPECT_BYTES_EQ(Block(vol, 262143, 2), b);
  EXPECT_BYTES_EQ(Block(vol, 0, 3), std::string(kBs, '\0'));
  EXPECT_BYTES_EQ(Block(vol, 262143, 3), std::string(kBs, '\0'));
  EXPECT_BYTES_EQ(Block(vol, 1000, 3), std::string(kBs, '\0'));
  int scanned = 0;
  ASSERT_OK(j_->ScanBlocks(vol, 3, [&](uint64_t, std::string_view) {
    ++scanned;
    return Status::Ok();
  }));
  EXPECT_EQ(scanned, 0);
  ASSERT_OK(j_->ScanBlocks(vol, 2, [&](uint64_t, std::string_view) {
    ++scanned;
    return Status::Ok();
  }));
  EXPECT_EQ(scanned, 3);

  // A sub-block write right after the range reads zeros under it.
  ASSERT_OK(Write(vol, 4, 512, std::string(512, 'q')));
  // A partial-edge range: blocks 0 and the last are read-modify-write.
  ASSERT_OK(Write(vol, 5, size - kBs, b));
  ASSERT_OK(Zero(vol, 6, 1024, size - 2048, OpKind::kWriteZeroes));
  ASSERT_OK(j_->Commit());
  std::string want4(kBs, '\0');
  want4.replace(512, 512, std::string(512, 'q'));
  EXPECT_BYTES_EQ(Block(vol, 0, 4), want4);
  std::string want6 = want4;
  want6.replace(1024, kBs - 1024, std::string(kBs - 1024, '\0'));
  EXPECT_BYTES_EQ(Block(vol, 0, 6), want6);
  std::string last6 = b;
  last6.replace(0, kBs - 1024, std::string(kBs - 1024, '\0'));
  EXPECT_BYTES_EQ(Block(vol, 262143, 6), last6);
  EXPECT_BYTES_EQ(Block(vol, 262143, 5), b);
  lines = DumpLines(vol);
  EXPECT_EQ(Count(lines, "range ", " seq=6 op=3 blocks=1+262142"), 1);
  EXPECT_EQ(Count(lines, "block ", " seq=6 "), 2);
  // And after a reopen (ranges are loaded from disk).
  Reopen();
  EXPECT_BYTES_EQ(Block(vol, 0, 2), a);
  EXPECT_BYTES_EQ(Block(vol, 1000, 2), a);
  EXPECT_BYTES_EQ(Block(vol, 1000, 3), std::string(kBs, '\0'));
  EXPECT_BYTES_EQ(Block(vol, 0, 6), want6);
  EXPECT_BYTES_EQ(Block(vol, 262143, 6), last6);
  auto changed = j_->ChangedExtents(vol, 2, 3);
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed.value(), (std::vector<Extent>{{0, size}}));
}

TEST_F(JournalTest, ResendIsANoOp) {
  Reopen();
  uint32_t vol = NewVolume();
  std::string a = Pattern(kBs, 1), b = Pattern(kBs, 2);
  ASSERT_OK(Write(vol, 1, 0, a));
  ASSERT_OK(Write(vol, 1, 0, b));  // resent while pending
  ASSERT_OK(Write(vol, 2, kBs, a));
  ASSERT_OK(Write(vol, 5, 2 * kBs, a));
  ASSERT_OK(j_->Commit());
  ASSERT_OK(Write(vol, 1, 0, b));  // resent after the commit
  ASSERT_OK(Write(vol, 2, kBs, b, kSeqFua));
  ASSERT_OK(Zero(vol, 5, 0, 32 * kBs));
  // Seqs never applied below the last are refused.
  for (Seq s : {0ull, 3ull, 4ull}) EXPECT_CODE(Write(vol, s, 0, b), Code::kInvalidArgument) << s;
  EXPECT_CODE(Write(vol, kNoSeq, 0, b), Code::kInvalidArgument);
  ASSERT_OK(j_->Commit());
  EXPECT_EQ(j_->LastSeq(vol).value(), 5u);
  Reopen();
  ASSERT_OK(Write(vol, 2, kBs, b));  // resent after a reopen
  EXPECT_CODE(Write(vol, 4, 0, b), Code::kInvalidArgument);
  ASSERT_OK(j_->Commit());
  EXPECT_BYTES_EQ(Block(vol, 0, 5), a);
  EXPECT_BYTES_EQ(Block(vol, 1, 5), a);
  EXPECT_BYTES_EQ(Block(vol, 2, 5), a);
  EXPECT_TRUE(j_->Flushes(vol).value().empty());
  auto lines = DumpLines(vol);
  EXPECT_EQ(Count(lines, "seq "), 3);
  EXPECT_EQ(Count(lines, "block "), 3);
  EXPECT_EQ(Count(lines, "range "), 0);
  EXPECT_EQ(j_->Latest(vol).value().seq, 5u);
}

TEST_F(JournalTest, BadExtentsLeaveTheJournalUnchanged) {
  Reopen();
  uint32_t vol = NewVolume(16 * kBs);
  ASSERT_OK(Write(vol, 0, 0, Pattern(16 * kBs, 3)));
  ASSERT_OK(j_->Commit());
  auto before = DumpLines();
  const uint64_t size = 16 * kBs;
  struct Bad {
    uint64_t off, len;
    size_t data;
    OpKind op;
  } bad[] = {
      {1, 512, 512, OpKind::kWrite},
      {511, 512, 512, OpKind::kWrite},
      {0, 513, 513, OpKind::kWrite},
      {0, 0, 0, OpKind::kWrite},
      {0, 0, 0, OpKind::kTrim},
      {size, 512, 512, OpKind::kWrite},
      {size - 512, 1024, 1024, OpKind::kWrite},
      {size + 512, 512, 0, OpKind::kTrim},
      {~0ull - 511, 512, 512, OpKind::kWrite},
      {512, ~0ull - 511, 0, OpKind::kTrim},
      {0, 1024, 512, OpKind::kWrite},  // data shorter than the length
      {0, 512, 1024, OpKind::kWrite},  // longer
      {0, 512, 512, OpKind::kTrim},    // a trim with data
      {0, 512, 512, OpKind::kImport},  // not an Apply op
      {0, 512, 512, static_cast<OpKind>(0)},
      {0, 512, 512, static_cast<OpKind>(9)},
  };
  std::string data(2 * size, 'd');
  for (const Bad& b : bad) {
    WriteOp op;
    op.seq = 1;
    op.time_ns = TimeOf(1);
    op.op = b.op;
    op.offset_bytes = b.off;
    op.length_bytes = b.len;
    op.data = std::string_view(data).substr(0, b.data);
    EXPECT_CODE(j_->Apply(vol, op), Code::kInvalidArgument)
        << b.off << "+" << b.len << " data " << b.data << " op " << static_cast<int>(b.op);
  }
  EXPECT_CODE(Write(999, 1, 0, std::string(512, 'x')), Code::kNotFound);
  EXPECT_EQ(j_->LastSeq(vol).value(), 0u);
  ASSERT_OK(j_->Commit());
  EXPECT_EQ(DumpLines(), before);
  // The journal still takes good writes afterwards.
  ASSERT_OK(Write(vol, 1, size - 512, std::string(512, 'e')));
  ASSERT_OK(j_->Commit());
  EXPECT_BYTES_EQ(Block(vol, 15, 1).substr(kBs - 512), std::string(512, 'e'));
}

TEST_F(JournalTest, TimeGoingBackwardsIsRefused) {
  Reopen();
  uint32_t vol = NewVolume();
  ASSERT_OK(Write(vol, 1, 0, Pattern(kBs, 1), 0, kT0 + 100));
  EXPECT_CODE(Write(vol, 2, 0, Pattern(kBs, 2), 0, kT0 + 99), Code::kInvalidArgument);
  ASSERT_OK(Write(vol, 2, 0, Pattern(kBs, 2), 0, kT0 + 100));  // equal is fine
  ASSERT_OK(j_->Commit());
  Reopen();
  EXPECT_CODE(Write(vol, 3, 0, Pattern(kBs, 3), 0, kT0 + 50), Code::kInvalidArgument);
  EXPECT_CODE(Zero(vol, 3, 0, kBs), Code::kOk);  // TimeOf(3) is later
  EXPECT_EQ(j_->LastSeq(vol).value(), 3u);
}

TEST_F(JournalTest, SyncReturnsTheDurableSeq) {
  Reopen();
  uint32_t vol = NewVolume();
  uint32_t other = NewVolume(64 * kBs, kBs, "other");
  EXPECT_EQ(j_->Sync(vol).value(), kNoSeq);
  for (Seq s = 10; s < 20; ++s) ASSERT_OK(Write(vol, s, (s % 8) * kBs, Pattern(kBs, s)));
  ASSERT_OK(Write(other, 3, 0, Pattern(kBs, 3)));
  EXPECT_EQ(j_->LastSeq(vol).value(), 19u);
  EXPECT_EQ(j_->Sync(vol).value(), 19u);
  EXPECT_EQ(j_->Sync(other).value(), 3u);
  EXPECT_EQ(j_->Latest(vol).value().seq, 19u);
  EXPECT_EQ(j_->First(vol).value().seq, 10u);
  // Each volume reads only its own blocks.
  EXPECT_TRUE(Scan(other, 3) == Image(other, 3));
  EXPECT_TRUE(Scan(vol, 19) == Image(vol, 19));
  EXPECT_TRUE(Image(other, 3).substr(kBs) == std::string(63 * kBs, '\0'));
  EXPECT_CODE(j_->Sync(999), Code::kNotFound);
}

TEST_F(JournalTest, ReopenKeepsEverything) {
  Reopen();
  uint32_t vol = NewVolume();
  std::vector<std::string> imgs;
  std::string cur(64 * kBs, '\0');
  for (Seq s = 0; s < 30; ++s) {
    uint64_t off = (s * 5 % 60) * kBs + (s % 3) * 512;
    std::string d = Pattern(kBs + 512 * (s % 4), s);
    ASSERT_OK(Write(vol, s, off, d, s % 7 == 0 ? kSeqFua : 0));
    cur.replace(off, d.size(), d);
    imgs.push_back(cur);
    if (s == 12) {
      ASSERT_OK(j_->Commit());
    }
    if (s == 20) {
      ASSERT_TRUE(j_->AddBookmark(vol, "twenty", kT0 + 5));
    }
  }
  ASSERT_OK(j_->MarkFlush(vol, 25, TimeOf(25), kSeqFlush));
  // No Commit(): closing the journal commits what is pending.
  Reopen();
  EXPECT_EQ(j_->LastSeq(vol).value(), 29u);
  EXPECT_EQ(j_->Latest(vol).value(), (Point{29, TimeOf(29)}));
  for (Seq s = 0; s < 30; ++s) EXPECT_TRUE(Image(vol, s) == imgs[s]) << s;
  auto bms = j_->Bookmarks(vol);
  ASSERT_EQ(bms.size(), 1u);
  EXPECT_EQ(bms[0].name, "twenty");
  EXPECT_EQ(bms[0].point, (Point{20, TimeOf(20)}));
  EXPECT_EQ(bms[0].created_ns, kT0 + 5);
  auto fl = j_->Flushes(vol);
  ASSERT_TRUE(fl);
  std::vector<Point> want_fl;
  for (Seq s : {0, 7, 14, 21, 25, 28}) want_fl.push_back({s, TimeOf(s)});
  EXPECT_EQ(fl.value(), want_fl);
  // Writing continues where it stopped.
  ASSERT_OK(Write(vol, 30, 0, Pattern(kBs, 30)));
  EXPECT_CODE(Write(vol, 29, 0, Pattern(kBs, 30)), Code::kOk);  // resend
}

// ---- points ----------------------------------------------------------------

TEST_F(JournalTest, Resolve) {
  Reopen();
  uint32_t vol = NewVolume();
  PointSpec latest_spec;
  EXPECT_CODE(j_->Resolve(vol, latest_spec, kT0), Code::kNotFound);
  // Seqs 3, 4, 5, 10, 11, 12 with times; 11 and 12 share one time.
  const std::map<Seq, TimeNs> t = {{3, kT0},       {4, kT0 + 10},  {5, kT0 + 20},
                                   {10, kT0 + 30}, {11, kT0 + 40}, {12, kT0 + 40}};
  for (const auto& [s, time] : t) ASSERT_OK(Write(vol, s, 0, Pattern(kBs, s), 0, time));
  ASSERT_OK(j_->Commit());
  const TimeNs now = kT0 + 1000;
  auto resolve = [&](PointSpec spec) { return j_->Resolve(vol, spec, now); };
  auto by_seq = [&](Seq s) {
    PointSpec p;
    p.kind = PointSpec::Kind::kSeq;
    p.seq = s;
    return resolve(p);
  };
  auto by_time = [&](TimeNs tt) {
    PointSpec p;
    p.kind = PointSpec::Kind::kTime;
    p.time_ns = tt;
    return resolve(p);
  };
  auto by_name = [&](std::string n) {
    PointSpec p;
    p.kind = PointSpec::Kind::kBookmark;
    p.bookmark = std::move(n);
    return resolve(p);
  };
  EXPECT_EQ(resolve(latest_spec).value(), (Point{12, kT0 + 40}));
  for (const auto& [s, time] : t) EXPECT_EQ(by_seq(s).value(), (Point{s, time})) << s;
  for (Seq s : {6, 7, 8, 9}) EXPECT_EQ(by_seq(s).value(), (Point{5, kT0 + 20})) << s;
  for (Seq s : {Seq{0}, Seq{2}, Seq{13}, kNoSeq - 1, kNoSeq}) {
    EXPECT_CODE(by_seq(s), Code::kInvalidArgument) << s;
  }
  EXPECT_EQ(j_->PointAt(vol, 7).value(), (Point{5, kT0 + 20}));
  EXPECT_CODE(j_->PointAt(vol, 2), Code::kNotFound);

  // Times: exact, between, equal times (newest seq), after the latest.
  EXPECT_EQ(by_time(kT0).value(), (Point{3, kT0}));
  EXPECT_EQ(by_time(kT0 + 9).value(), (Point{3, kT0}));
  EXPECT_EQ(by_time(kT0 + 10).value(), (Point{4, kT0 + 10}));
  EXPECT_EQ(by_time(kT0 + 29).value(), (Point{5, kT0 + 20}));
  EXPECT_EQ(by_time(kT0 + 30).value(), (Point{10, kT0 + 30}));
  EXPECT_EQ(by_time(kT0 + 40).value(), (Point{12, kT0 + 40}));
  EXPECT_EQ(by_time(kT0 + 41).value(), (Point{12, kT0 + 40}));
  EXPECT_EQ(by_time(now).value(), (Point{12, kT0 + 40}));
  EXPECT_CODE(by_time(kT0 - 1), Code::kInvalidArgument);
  EXPECT_CODE(by_time(0), Code::kInvalidArgument);
  EXPECT_CODE(by_time(now + 1), Code::kInvalidArgument);
  // The time index never names an uncommitted seq.
  ASSERT_OK(Write(vol, 13, 0, Pattern(kBs, 13), 0, kT0 + 50));
  EXPECT_EQ(by_time(kT0 + 60).value(), (Point{12, kT0 + 40}));
  ASSERT_OK(j_->Commit());
  EXPECT_EQ(by_time(kT0 + 60).value(), (Point{13, kT0 + 50}));

  // Bookmarks.
  auto bm = j_->AddBookmark(vol, "before-upgrade", now);
  ASSERT_TRUE(bm);
  EXPECT_EQ(bm.value().point, (Point{13, kT0 + 50}));
  EXPECT_EQ(by_name("before-upgrade").value(), (Point{13, kT0 + 50}));
  EXPECT_CODE(by_name("nope"), Code::kNotFound);
  EXPECT_CODE(by_name(""), Code::kNotFound);
  EXPECT_CODE(j_->Resolve(999, latest_spec, now), Code::kNotFound);
}

TEST_F(JournalTest, Bookmarks) {
  Reopen();
  uint32_t vol = NewVolume();
  uint32_t other = NewVolume(64 * kBs, kBs, "other");
  EXPECT_CODE(j_->AddBookmark(vol, "early", kT0), Code::kNotFound);
  ASSERT_OK(Write(vol, 0, 0, Pattern(kBs, 0)));
  ASSERT_OK(Write(vol, 1, 0, Pattern(kBs, 1)));
  // The bookmark names the newest seq received, pending included.
  auto a = j_->AddBookmark(vol, "a", kT0);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a.value().point.seq, 1u);
  EXPECT_EQ(a.value().name, "a");
  EXPECT_CODE(j_->AddBookmark(vol, "a", kT0), Code::kInvalidArgument);
  EXPECT_CODE(j_->AddBookmark(vol, "", kT0), Code::kInvalidArgument);
  EXPECT_CODE(j_->AddBookmark(vol, "bad\tname", kT0), Code::kInvalidArgument);
  EXPECT_CODE(j_->AddBookmark(vol, std::string(201, 'n'), kT0), Code::kInvalidArgument);
  ASSERT_OK(Write(vol, 2, 0, Pattern(kBs, 2)));
  ASSERT_TRUE(j_->AddBookmark(vol, "b c", kT0 + 1));
  // Names are per volume (seq space).
  ASSERT_OK(Write(other, 0, 0, Pattern(kBs, 0)));
  ASSERT_TRUE(j_->AddBookmark(other, "a", kT0));
  Reopen();
  EXPECT_CODE(j_->AddBookmark(vol, "b c", kT0), Code::kInvalidArgument);
  auto bms = j_->Bookmarks(vol);
  ASSERT_EQ(bms.size(), 2u);
  EXPECT_EQ(bms[0].name, "a");
  EXPECT_EQ(bms[0].point.seq, 1u);
  EXPECT_EQ(bms[1].name, "b c");
  EXPECT_EQ(bms[1].point.seq, 2u);
  EXPECT_EQ(bms[1].created_ns, kT0 + 1);
  ASSERT_EQ(j_->Bookmarks(other).size(), 1u);
  EXPECT_TRUE(j_->Bookmarks(999).empty());
}

TEST_F(JournalTest, Flushes) {
  Reopen();
  uint32_t vol = NewVolume();
  EXPECT_CODE(j_->MarkFlush(vol, 0, kT0, kSeqFlush), Code::kInvalidArgument);
  for (Seq s = 0; s < 10; ++s) {
    ASSERT_OK(Write(vol, s, s * kBs, Pattern(kBs, s), s == 2 || s == 7 ? kSeqFua : 0));
  }
  ASSERT_OK(j_->MarkFlush(vol, 4, TimeOf(4) + 5, kSeqFlush));
  ASSERT_OK(j_->MarkFlush(vol, 9, TimeOf(9) + 5, kSeqFlush));
  EXPECT_CODE(j_->MarkFlush(vol, 10, TimeOf(10), kSeqFlush), Code::kInvalidArgument);
  EXPECT_CODE(j_->MarkFlush(999, 1, TimeOf(10), kSeqFlush), Code::kNotFound);
  ASSERT_OK(j_->Commit());
  auto fl = j_->Flushes(vol);
  ASSERT_TRUE(fl);
  EXPECT_EQ(fl.value(),
            (std::vector<Point>{{2, TimeOf(2)}, {4, TimeOf(4)}, {7, TimeOf(7)}, {9, TimeOf(9)}}));
  auto lines = DumpLines(vol);
  EXPECT_EQ(Count(lines, "flush ", "flags=1 "), 2);
  EXPECT_EQ(Count(lines, "flush ", "flags=2 "), 2);
  EXPECT_CODE(j_->Flushes(999), Code::kNotFound);
}

TEST_F(JournalTest, ChangedExtents) {
  Reopen();
  uint32_t vol = NewVolume(1 << 20);
  uint32_t other = NewVolume(1 << 20, kBs, "other");
  ASSERT_OK(Write(vol, 0, 0, Pattern(2 * kBs, 0)));                     // [0, 8K)
  ASSERT_OK(Write(vol, 1, 8 * kBs, Pattern(kBs, 1)));                   // [32K, 36K)
  ASSERT_OK(Write(vol, 2, 9 * kBs + 512, Pattern(512, 2)));             // [36.5K, 37K)
  ASSERT_OK(Zero(vol, 3, 9 * kBs, 512));                                // [36K, 36.5K)
  ASSERT_OK(Zero(vol, 4, 100 * kBs, 100 * kBs, OpKind::kWriteZeroes));  // a range
  ASSERT_OK(Write(vol, 6, kBs, Pattern(512, 6)));                       // inside seq 0's
  ASSERT_OK(Write(other, 0, 50 * kBs, Pattern(kBs, 0)));
  ASSERT_OK(j_->Commit());
  auto ce = [&](Seq a, Seq b) {
    auto r = j_->ChangedExtents(vol, a, b);
    EXPECT_TRUE(r) << r.error().ToString();
    return r ? r.value() : std::vector<Extent>{};
  };
  using V = std::vector<Extent>;
  EXPECT_EQ(ce(0, 1), (V{{8 * kBs, kBs}}));
  EXPECT_EQ(ce(0, 3), (V{{8 * kBs, kBs + 1024}}));  // touching extents merge
  EXPECT_EQ(ce(1, 3), (V{{9 * kBs, 1024}}));
  EXPECT_EQ(ce(1, 2), (V{{9 * kBs + 512, 512}}));
  EXPECT_EQ(ce(3, 4), (V{{100 * kBs, 100 * kBs}}));
  EXPECT_EQ(ce(4, 5), V{});
  EXPECT_EQ(ce(4, 6), (V{{kBs, 512}}));
  EXPECT_EQ(ce(0, 6), (V{{kBs, 512}, {8 * kBs, kBs + 1024}, {100 * kBs, 100 * kBs}}));
  EXPECT_EQ(ce(kNoSeq, 6), (V{{0, 2 * kBs}, {8 * kBs, kBs + 1024}, {100 * kBs, 100 * kBs}}));
  EXPECT_EQ(ce(0, kNoSeq), ce(0, 6));
  EXPECT_EQ(ce(3, 3), V{});
  EXPECT_EQ(ce(6, 2), V{});
  auto o = j_->ChangedExtents(other, kNoSeq, 100);
  ASSERT_TRUE(o);
  EXPECT_EQ(o.value(), (V{{50 * kBs, kBs}}));
  EXPECT_CODE(j_->ChangedExtents(999, 0, 1), Code::kNotFound);
}

TEST_F(JournalTest, ScanEqualsReadAtEverySeq) {
  // Many versions of a few blocks: ScanBlocks steps over versions newer than
  // the point and older ones, by Next() or by Seek().
  Reopen();
  uint32_t vol = NewVolume(32 * kBs);
  std::mt19937_64 rng(17);
  Seq seq = 0;
  for (; seq < 120; ++seq) {
    uint64_t block = seq % 5 == 0 ? rng() % 32 : (rng() % 3) * 7;
    if (seq % 11 == 3) {
      ASSERT_OK(Zero(vol, seq, block * kBs, kBs));
    } else {
      ASSERT_OK(Write(vol, seq, block * kBs, Pattern(kBs, seq)));
    }
    if (seq % 40 == 39) {
      ASSERT_OK(j_->Commit());
    }
  }
  ASSERT_OK(Zero(vol, seq++, 0, 32 * kBs));  // a range over everything
  ASSERT_OK(Write(vol, seq++, 7 * kBs, Pattern(kBs, 999)));
  ASSERT_OK(j_->Commit());
  for (Seq s = 0; s < seq; ++s) EXPECT_TRUE(Scan(vol, s) == Image(vol, s)) << "seq " << s;
}

// ---- import ----------------------------------------------------------------

TEST_F(JournalTest, Import) {
  Reopen();
  const uint64_t size = 64 * kBs;
  uint32_t vol = NewVolume(size);
  std::string img(size, '\0');
  for (uint64_t b : {0, 1, 5, 30, 63}) img.replace(b * kBs, kBs, Pattern(kBs, b));
  img.replace(40 * kBs + 512, 512, Pattern(512, 40));  // a mostly-zero block
  auto s0 = j_->Import(vol, ReaderOf(img), kT0);
  ASSERT_TRUE(s0) << s0.error().ToString();
  EXPECT_EQ(s0.value(), 0u);
  auto lines = DumpLines(vol);
  EXPECT_EQ(Count(lines, "block "), 6);
  EXPECT_EQ(Count(lines, "zero-block "), 0);
  EXPECT_EQ(Count(lines, "seq ", "op=4"), 1);
  if (TestFormat() == 2) {
    EXPECT_GE(Count(lines, "segment-record ", " op=import "), 1);
    EXPECT_EQ(Count(lines, "segment-record ", " op=write "), 0);
  }
  EXPECT_TRUE(Image(vol, 0) == img);
  EXPECT_TRUE(Scan(vol, 0) == img);
  EXPECT_EQ(j_->Latest(vol).value(), (Point{0, kT0}));

  // The second import records only the changed blocks, as one seq.
  std::string img2 = img;
  img2.replace(1 * kBs, kBs, std::string(kBs, '\0'));  // zeroed
  img2.replace(2 * kBs + 1024, 512, Pattern(512, 2));  // was zero
  img2.replace(63 * kBs, kBs, Pattern(kBs, 1063));     // changed
  auto s1 = j_->Import(vol, ReaderOf(img2), kT0 + kSec);
  ASSERT_TRUE(s1) << s1.error().ToString();
  EXPECT_EQ(s1.value(), 1u);
  lines = DumpLines(vol);
  EXPECT_EQ(Count(lines, "block ", " seq=1 "), 2);
  EXPECT_EQ(Count(lines, "zero-block ", " seq=1 "), 1);
  EXPECT_EQ(Count(lines, "seq "), 2);
  EXPECT_TRUE(Image(vol, 0) == img);
  EXPECT_TRUE(Image(vol, 1) == img2);
  EXPECT_TRUE(Scan(vol, 1) == img2);
  auto ce = j_->ChangedExtents(vol, 0, 1);
  ASSERT_TRUE(ce);
  EXPECT_EQ(ce.value(), (std::vector<Extent>{{kBs, 2 * kBs}, {63 * kBs, kBs}}));

  // An identical import changes nothing.
  auto s2 = j_->Import(vol, ReaderOf(img2), kT0 + 2 * kSec);
  ASSERT_TRUE(s2) << s2.error().ToString();
  EXPECT_EQ(s2.value(), kNoSeq);
  EXPECT_EQ(j_->Latest(vol).value().seq, 1u);

  // Imports and writes interleave; an explicit seq, and time clamped.
  ASSERT_OK(Write(vol, 5, 0, Pattern(kBs, 555), 0, kT0 + 3 * kSec));
  std::string img3 = img2;
  img3.replace(0, kBs, Pattern(kBs, 555));
  img3.replace(10 * kBs, kBs, Pattern(kBs, 10));
  EXPECT_CODE(j_->Import(vol, ReaderOf(img3), kT0, 5), Code::kInvalidArgument);
  auto s3 = j_->Import(vol, ReaderOf(img3), kT0, 9);
  ASSERT_TRUE(s3) << s3.error().ToString();
  EXPECT_EQ(s3.value(), 9u);
  EXPECT_EQ(j_->Latest(vol).value(), (Point{9, kT0 + 3 * kSec}));
  lines = DumpLines(vol);
  EXPECT_EQ(Count(lines, "block ", " seq=9 "), 1);
  EXPECT_TRUE(Image(vol, 9) == img3);
  Reopen();
  EXPECT_TRUE(Image(vol, 1) == img2);
  EXPECT_TRUE(Image(vol, 9) == img3);
  EXPECT_EQ(j_->LastSeq(vol).value(), 9u);
}

TEST_F(JournalTest, ImportOfAnOddSizedVolume) {
  Reopen();
  const uint64_t size = 10 * kBs + 1536;
  uint32_t vol = NewVolume(size);
  std::string img = Pattern(size, 4);
  auto s0 = j_->Import(vol, ReaderOf(img), kT0);
  ASSERT_TRUE(s0) << s0.error().ToString();
  EXPECT_TRUE(Image(vol, 0) == img);
  std::string tail = Block(vol, 10, 0);
  EXPECT_BYTES_EQ(tail.substr(0, 1536), img.substr(10 * kBs));
  EXPECT_BYTES_EQ(tail.substr(1536), std::string(kBs - 1536, '\0'));
  ASSERT_OK(Write(vol, 1, size - 512, std::string(512, 't')));
  ASSERT_OK(Zero(vol, 2, 0, size));
  ASSERT_OK(j_->Commit());
  EXPECT_BYTES_EQ(Image(vol, 2), std::string(size, '\0'));
  img.replace(size - 512, 512, std::string(512, 't'));
  EXPECT_TRUE(Image(vol, 1) == img);
  auto ce = j_->ChangedExtents(vol, kNoSeq, 0);
  ASSERT_TRUE(ce);
  EXPECT_EQ(ce.value(), (std::vector<Extent>{{0, size}}));
}

// An import cut off by a failing read (a crash would leave the same state:
// the marker and some block versions without a seq record).
TEST_F(JournalTest, InterruptedImportIsRemovedAtReopen) {
  Reopen();
  const uint64_t size = 12ull << 20;  // three import chunks of 4 MiB
  uint32_t vol = NewVolume(size);
  std::string img(size, '\0');
  for (uint64_t b = 0; b < size / kBs; b += 97) img.replace(b * kBs, kBs, Pattern(kBs, b));
  ASSERT_TRUE(j_->Import(vol, ReaderOf(img), kT0));
  std::string img2 = img;
  for (uint64_t b = 3; b < size / kBs; b += 50) img2.replace(b * kBs, kBs, Pattern(kBs, b + 7));
  auto failing = [&](uint64_t off, char* buf, size_t len) {
    if (off >= (8ull << 20))
      return Status::IOError("read error injected at " + std::to_string(off));
    std::memcpy(buf, img2.data() + off, len);
    return Status::Ok();
  };
  auto r = j_->Import(vol, failing, kT0 + kSec);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kIOError) << r.error().ToString();
  EXPECT_EQ(j_->Latest(vol).value().seq, 0u);
  EXPECT_EQ(j_->LastSeq(vol).value(), 0u);
  Reopen();
  auto lines = DumpLines(vol);
  EXPECT_EQ(Count(lines, "block ", " seq=1 "), 0) << "the cut-off import's blocks remain";
  EXPECT_EQ(Count(lines, "seq "), 1);
  EXPECT_TRUE(Image(vol, 1) == img);
  // The marker is gone too: a later seq 1 is not removed at the next open.
  ASSERT_OK(Write(vol, 1, 0, Pattern(kBs, 1)));
  ASSERT_OK(j_->Commit());
  Reopen();
  EXPECT_BYTES_EQ(Block(vol, 0, 1), Pattern(kBs, 1));
  auto s2 = j_->Import(vol, ReaderOf(img2), kT0 + 2 * kSec);
  ASSERT_TRUE(s2) << s2.error().ToString();
  EXPECT_EQ(s2.value(), 2u);
  EXPECT_TRUE(Image(vol, 2) == img2);
}

TEST_F(JournalTest, FailedImportDoesNotLeakIntoTheNextSeq) {
  // Without a reopen: the block versions a failed import wrote at seq S must
  // not become part of the next write that takes seq S.
  Reopen();
  const uint64_t size = 8ull << 20;  // two import chunks
  uint32_t vol = NewVolume(size);
  std::string img(size, '\0');
  img.replace(0, kBs, Pattern(kBs, 0));
  ASSERT_TRUE(j_->Import(vol, ReaderOf(img), kT0));
  std::string img2 = img;
  img2.replace(5 * kBs, kBs, Pattern(kBs, 5));  // in the first chunk
  auto failing = [&](uint64_t off, char* buf, size_t len) {
    if (off >= (4ull << 20)) return Status::IOError("read error injected");
    std::memcpy(buf, img2.data() + off, len);
    return Status::Ok();
  };
  ASSERT_FALSE(j_->Import(vol, failing, kT0 + kSec));
  // The next write takes seq 1 (LastSeq()+1), as a tap would.
  Status s = Write(vol, 1, 0, Pattern(kBs, 1));
  if (s.ok()) {
    ASSERT_OK(j_->Commit());
    EXPECT_BYTES_EQ(Block(vol, 5, 1), std::string(kBs, '\0'))
        << "block 5 at seq 1 shows the failed import's data";
    std::string want = img;
    want.replace(0, kBs, Pattern(kBs, 1));
    EXPECT_TRUE(Scan(vol, 1) == want);
  }
  // Either way, the journal stays consistent across a reopen: the reopen
  // must not drop the accepted write of seq 1 as part of the failed import.
  Reopen();
  EXPECT_BYTES_EQ(Block(vol, 5, j_->LastSeq(vol).value()), std::string(kBs, '\0'));
  if (s.ok()) {
    EXPECT_BYTES_EQ(Block(vol, 0, 1), Pattern(kBs, 1)) << "the committed write of seq 1 was lost";
  }
}

// ---- format floors ---------------------------------------------------------

}  // namespace
}  // namespace tidemark::journal
