// Journal version floors, damage (through RocksDB directly), interrupted
// imports, and regressions found by the integration tests.
#include <sys/wait.h>
#include <unistd.h>

#include "journal_test_util.h"

namespace tidemark::journal {
namespace {

using namespace testing_util;  // NOLINT: the shared fixture

TEST_F(JournalTest, ReadFloorAboveThisBuildIsRefused) {
  Reopen();
  uint32_t vol = NewVolume();
  ASSERT_OK(Write(vol, 0, 0, Pattern(kBs, 0)));
  constexpr uint32_t kAbove = kMaxFormatVersion + 1;
  ASSERT_OK(j_->SetFloors(kAbove, kAbove));
  EXPECT_EQ(j_->meta().read_floor, kAbove);
  j_.reset();
  EXPECT_CODE(Journal::Open(dir_, {}), Code::kNotSupported);
  OpenOptions ro;
  ro.read_only = true;
  EXPECT_CODE(Journal::Open(dir_, ro), Code::kNotSupported);
}

TEST_F(JournalTest, WriteFloorAboveThisBuildOpensReadOnly) {
  Reopen();
  uint32_t vol = NewVolume();
  ASSERT_OK(Write(vol, 0, 0, Pattern(kBs, 0)));
  ASSERT_TRUE(j_->AddBookmark(vol, "b", kT0));
  constexpr uint32_t kAbove = kMaxFormatVersion + 1;
  ASSERT_OK(j_->SetFloors(1, kAbove));
  Reopen();
  EXPECT_TRUE(j_->read_only());
  EXPECT_EQ(j_->meta().write_floor, kAbove);
  EXPECT_CODE(Write(vol, 1, 0, Pattern(kBs, 1)), Code::kNotSupported);
  EXPECT_CODE(Zero(vol, 1, 0, kBs), Code::kNotSupported);
  EXPECT_CODE(j_->AddBookmark(vol, "c", kT0), Code::kNotSupported);
  EXPECT_CODE(j_->MarkFlush(vol, 0, kT0, kSeqFlush), Code::kNotSupported);
  EXPECT_CODE(j_->CreateVolume("w", 1 << 20, kBs), Code::kNotSupported);
  EXPECT_CODE(j_->Import(vol, ReaderOf(std::string(64 * kBs, 'i')), kT0), Code::kNotSupported);
  EXPECT_CODE(j_->SetFloors(1, 1), Code::kNotSupported);
  EXPECT_CODE(j_->Sync(vol), Code::kNotSupported);
  // Reads work.
  EXPECT_BYTES_EQ(Block(vol, 0, 0), Pattern(kBs, 0));
  EXPECT_TRUE(Scan(vol, 0) == Image(vol, 0));
  EXPECT_EQ(j_->Latest(vol).value().seq, 0u);
  PointSpec p;
  p.kind = PointSpec::Kind::kBookmark;
  p.bookmark = "b";
  EXPECT_EQ(j_->Resolve(vol, p, kT0 + kSec).value().seq, 0u);
  EXPECT_EQ(j_->Bookmarks(vol).size(), 1u);
  EXPECT_TRUE(j_->ChangedExtents(vol, kNoSeq, 0));
  EXPECT_EQ(DumpLines().front().find("write_floor=" + std::to_string(kAbove)) != std::string::npos,
            true);
  // Another reader may open it at the same time.
  OpenOptions ro;
  ro.read_only = true;
  auto r = Journal::Open(dir_, ro);
  ASSERT_TRUE(r) << r.error().ToString();
}

// ---- damage ----------------------------------------------------------------

// Opens the journal's RocksDB directly (the test is the only user).
class RawDb {
 public:
  explicit RawDb(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const char* name : kColumnFamilies) cfs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &cf_, &raw);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db_.reset(raw);
  }
  ~RawDb() {
    if (!db_) return;
    for (auto* h : cf_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }
  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(size_t i) { return cf_[i]; }

 private:
  std::vector<rocksdb::ColumnFamilyHandle*> cf_;
  std::unique_ptr<rocksdb::DB> db_;
};

TEST_F(JournalTest, CorruptBlockIsNeverReturnedAsData) {
  if (TestFormat() != 1) GTEST_SKIP() << "format 1's block values";
  Reopen();
  uint32_t vol = NewVolume(64 * kBs, kBs, "vm7");
  for (Seq s = 0; s < 4; ++s) ASSERT_OK(Write(vol, s, 12 * kBs, Pattern(kBs, s)));
  ASSERT_OK(Write(vol, 4, 13 * kBs, Pattern(kBs, 4)));
  ASSERT_OK(j_->Commit());
  j_.reset();
  {
    RawDb raw(dir_);
    ASSERT_NE(raw.db(), nullptr);
    std::string v;
    ASSERT_TRUE(raw.db()->Get({}, raw.cf(1), BlockKey(vol, 12, 2), &v).ok());
    v[100] = static_cast<char>(v[100] ^ 0x10);  // a payload bit
    ASSERT_TRUE(raw.db()->Put({}, raw.cf(1), BlockKey(vol, 12, 2), v).ok());
    // A value of the wrong length but with a valid CRC (a writer bug).
    ASSERT_TRUE(raw.db()
                    ->Put({}, raw.cf(1), BlockKey(vol, 13, 4),
                          EncodeValue(ValueKind::kBlock, Codec::kNone, Pattern(kBs - 512, 4)))
                    .ok());
  }
  Reopen();
  std::string out(kBs, '\x77');
  for (Seq s : {2ull}) {
    Status st = j_->ReadBlock(vol, 12, s, out.data());
    ASSERT_EQ(st.code(), Code::kCorruption) << st.ToString();
    EXPECT_NE(st.message().find("vm7"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("block 12"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("seq 2"), std::string::npos) << st.message();
  }
  // Other versions of the block still read.
  EXPECT_BYTES_EQ(Block(vol, 12, 1), Pattern(kBs, 1));
  EXPECT_BYTES_EQ(Block(vol, 12, 3), Pattern(kBs, 3));
  Status st = j_->ReadBlock(vol, 13, 4, out.data());
  EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("block 13"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("seq 4"), std::string::npos) << st.message();
  // A scan stops with the same error rather than passing bad bytes on.
  Status scan = j_->ScanBlocks(vol, 2, [](uint64_t block, std::string_view) {
    EXPECT_NE(block, 12u);
    return Status::Ok();
  });
  EXPECT_EQ(scan.code(), Code::kCorruption) << scan.ToString();
  EXPECT_NE(scan.message().find("block 12"), std::string::npos) << scan.message();
  EXPECT_TRUE(j_->ScanBlocks(vol, 3, [](uint64_t, std::string_view) { return Status::Ok(); }).ok());
  // dump reports the damaged record and fails.
  std::vector<std::string> lines;
  Status ds = j_->Dump(vol, [&](std::string_view l) { lines.emplace_back(l); });
  EXPECT_EQ(ds.code(), Code::kCorruption);
  EXPECT_EQ(Count(lines, "corrupt blocks"), 1);
}

// "Missing base": every version is a whole block, so a lost version cannot
// be seen by any CRC; a read would silently fall back to the older one.
// Verify() finds it from the seq records, and names volume, block and seq.
TEST_F(JournalTest, VerifyFindsAMissingVersionAndDanglingBookmark) {
  if (TestFormat() != 1) GTEST_SKIP() << "format 1's block values";
  Reopen();
  uint32_t vol = NewVolume(64 * kBs, kBs, "vm8");
  for (Seq s = 0; s < 4; ++s) ASSERT_OK(Write(vol, s, 5 * kBs, Pattern(2 * kBs, s)));
  ASSERT_TRUE(j_->AddBookmark(vol, "b3", kT0 + 10));
  ASSERT_OK(j_->Commit());
  std::vector<std::string> problems;
  auto collect = [&](std::string_view l) { problems.emplace_back(l); };
  auto clean = j_->Verify(vol, collect);
  ASSERT_TRUE(clean) << clean.error().ToString();
  EXPECT_EQ(clean.value().seqs, 4u);
  EXPECT_EQ(clean.value().blocks, 8u);
  EXPECT_TRUE(problems.empty());
  j_.reset();
  {
    RawDb raw(dir_);
    ASSERT_NE(raw.db(), nullptr);
    ASSERT_TRUE(raw.db()->Delete({}, raw.cf(1), BlockKey(vol, 6, 2)).ok());
    ASSERT_TRUE(raw.db()->Put({}, raw.cf(5), BookmarkKey(vol, "ghost"),
                              EncodeBookmark({99, kT0})).ok());
  }
  Reopen();
  auto bad = j_->Verify(vol, collect);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), Code::kCorruption);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("vm8 block 6 seq 2"), std::string::npos) << problems[0];
  EXPECT_NE(problems[1].find("ghost"), std::string::npos) << problems[1];
}

// Format 2: a flipped bit in a segment's chunk is an error naming the
// volume, block, seq and file, never data; other versions still read.
TEST_F(JournalTest, SegmentDamageIsNeverReturnedAsData) {
  OpenOptions o;
  o.format = 2;
  Reopen(o);
  uint32_t vol = NewVolume(64 * kBs, kBs, "vm7");
  for (Seq s = 0; s < 4; ++s) ASSERT_OK(Write(vol, s, 12 * kBs, Pattern(kBs, s)));
  ASSERT_OK(j_->Commit());
  std::string seg_file, offset;
  for (const std::string& l : DumpLines()) {
    if (!l.starts_with("extent ") || l.find(" seq=2 ") == std::string::npos) continue;
    auto field = [&](const std::string& name) {
      size_t at = l.find(" " + name + "=") + name.size() + 2;
      return l.substr(at, l.find(' ', at) - at);
    };
    char name[32];
    snprintf(name, sizeof name, "%016llx.seg", std::stoull(field("segment")));
    seg_file = dir_ + "/segments/" + std::string(8 - std::to_string(vol).size(), '0') +
               std::to_string(vol) + "/" + name;
    offset = field("offset");
  }
  ASSERT_FALSE(seg_file.empty());
  j_.reset();
  {
    FILE* f = fopen(seg_file.c_str(), "r+b");
    ASSERT_NE(f, nullptr) << seg_file;
    long at = std::stol(offset) + 100;
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x10, f);
    fclose(f);
  }
  Reopen(o);
  std::string out(kBs, '\x77');
  Status st = j_->ReadBlock(vol, 12, 2, out.data());
  ASSERT_EQ(st.code(), Code::kCorruption) << st.ToString();
  for (const char* want : {"vm7", "block 12", "seq 2", ".seg"}) {
    EXPECT_NE(st.message().find(want), std::string::npos) << st.message();
  }
  EXPECT_BYTES_EQ(Block(vol, 12, 1), Pattern(kBs, 1));
  EXPECT_BYTES_EQ(Block(vol, 12, 3), Pattern(kBs, 3));
  Status scan = j_->ScanBlocks(vol, 2, [](uint64_t, std::string_view) { return Status::Ok(); });
  EXPECT_EQ(scan.code(), Code::kCorruption) << scan.ToString();
  std::vector<std::string> problems;
  auto bad = j_->Verify(vol, [&](std::string_view l) { problems.emplace_back(l); });
  ASSERT_FALSE(bad);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("fails its CRC"), std::string::npos) << problems[0];
}

// Format 2: a segment file cut short or missing below the synced tail loses
// writes answered durable: the open says so, naming the volume, the file and
// the seqs, and the journal opens read-only.
TEST_F(JournalTest, LostSyncedSegmentBytesOpenReadOnly) {
  for (const bool remove : {false, true}) {
    OpenOptions o;
    o.format = 2;
    Reopen(o);
    const std::string name = remove ? "vm9" : "vm10";
    uint32_t vol = NewVolume(64 * kBs, kBs, name.c_str());
    for (Seq s = 0; s < 4; ++s) ASSERT_OK(Write(vol, s, s * kBs, Pattern(kBs, s)));
    ASSERT_TRUE(j_->Sync(vol));
    j_.reset();
    char hex[16];
    snprintf(hex, sizeof hex, "%08x", vol);
    const std::string file = dir_ + "/segments/" + hex + "/0000000000000001.seg";
    ASSERT_TRUE(fs::exists(file));
    if (remove) {
      fs::remove(file);
    } else {
      fs::resize_file(file, fs::file_size(file) - 100);
    }
    Reopen(o);
    EXPECT_TRUE(j_->read_only());
    Status w = Write(vol, 4, 0, Pattern(kBs, 4));
    EXPECT_FALSE(w.ok());
    for (const std::string& want : {name, std::string("0000000000000001.seg"), std::string("seqs up to 3"),
                                    std::string(remove ? "is missing" : "before the synced tail")}) {
      EXPECT_NE(w.message().find(want), std::string::npos) << w.message();
    }
    j_.reset();
    fs::remove_all(dir_);
  }
}

// Format 2: a lost extent is found from the seq records.
TEST_F(JournalTest, VerifyFindsAMissingExtent) {
  OpenOptions o;
  o.format = 2;
  Reopen(o);
  uint32_t vol = NewVolume(64 * kBs, kBs, "vm8");
  for (Seq s = 0; s < 4; ++s) ASSERT_OK(Write(vol, s, 5 * kBs, Pattern(2 * kBs, s)));
  ASSERT_OK(j_->Commit());
  std::vector<std::string> problems;
  auto collect = [&](std::string_view l) { problems.emplace_back(l); };
  auto clean = j_->Verify(vol, collect);
  ASSERT_TRUE(clean) << clean.error().ToString();
  EXPECT_EQ(clean.value().blocks, 8u);
  j_.reset();
  {
    RawDb raw(dir_);
    ASSERT_NE(raw.db(), nullptr);
    ASSERT_TRUE(raw.db()->Delete({}, raw.cf(7), ExtentKey(vol, 0, 2, 5)).ok());
  }
  Reopen(o);
  auto bad = j_->Verify(vol, collect);
  ASSERT_FALSE(bad);
  ASSERT_EQ(problems.size(), 2u);  // blocks 5 and 6 of seq 2
  EXPECT_NE(problems[0].find("vm8 block 5 seq 2"), std::string::npos) << problems[0];
}

// Format 2, a power loss: what came after the last sync may be missing or
// torn in the segment while its index entries survived. The next writer's open
// checks the records after the synced tail and cuts the seqs from the first
// that fails; every synced seq stays, and writing goes on from there.
TEST_F(JournalTest, PowerLossCutsTheUnsyncedTail) {
  OpenOptions o;
  o.format = 2;
  Reopen(o);
  const uint32_t vol = NewVolume(64 * kBs, kBs, "vm9");
  j_.reset();
  // The writer: seqs 0-4 synced, 5-9 committed (in the index) but not synced,
  // then gone without closing (as a power cut leaves it).
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto j = Journal::Open(dir_, o);
    if (!j) ::_exit(2);
    for (Seq s = 0; s < 10; ++s) {
      WriteOp op;
      op.seq = s;
      op.time_ns = TimeOf(s);
      op.offset_bytes = s * 2 * kBs;
      op.length_bytes = 2 * kBs;
      std::string data = Pattern(2 * kBs, s);
      op.data = data;
      if (!j.value()->Apply(vol, op).ok()) ::_exit(3);
      if (s == 4 && !j.value()->Sync(vol)) ::_exit(4);
    }
    ::_exit(j.value()->Commit().ok() ? 0 : 5);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  uint64_t offset = 0;
  Reopen(o);  // no damage: nothing is cut
  EXPECT_EQ(j_->LastSeq(vol).value(), 9u);
  for (const std::string& l : DumpLines()) {
    if (!l.starts_with("segment-record ") || l.find(" seq=7 ") == std::string::npos) continue;
    offset = std::stoull(l.substr(l.find(" offset=") + 8));
  }
  j_.reset();  // nothing was appended: the synced tail stays before seq 5
  ASSERT_GT(offset, 0u);
  // The page a power cut lost: seq 7's record reads as zeros.
  const std::string seg_file = dir_ + "/segments/" +
                               std::string(8 - std::to_string(vol).size(), '0') +
                               std::to_string(vol) + "/0000000000000001.seg";
  {
    FILE* f = fopen(seg_file.c_str(), "r+b");
    ASSERT_NE(f, nullptr) << seg_file;
    fseek(f, static_cast<long>(offset), SEEK_SET);
    std::string zeros(600, '\0');
    fwrite(zeros.data(), 1, zeros.size(), f);
    fclose(f);
  }
  Reopen(o);
  ASSERT_FALSE(j_->read_only());
  // Seq 6 is the last whole record after the synced tail: it goes too (the
  // lost record might have been its next piece); 5 stays.
  EXPECT_EQ(j_->LastSeq(vol).value(), 5u);
  for (Seq s = 0; s <= 5; ++s) {
    EXPECT_BYTES_EQ(Block(vol, s * 2, 9), Pattern(2 * kBs, s).substr(0, kBs)) << s;
  }
  EXPECT_BYTES_EQ(Block(vol, 12, 9), std::string(kBs, '\0'));  // seq 6's blocks
  auto checked = j_->Verify(vol, [](std::string_view l) { ADD_FAILURE() << l; });
  EXPECT_TRUE(checked) << checked.error().ToString();
  // Writing goes on from the cut: seq 6 again, over the torn bytes.
  ASSERT_OK(Write(vol, 6, 40 * kBs, Pattern(kBs, 66)));
  ASSERT_TRUE(j_->Sync(vol));
  Reopen(o);
  EXPECT_EQ(j_->LastSeq(vol).value(), 6u);
  EXPECT_BYTES_EQ(Block(vol, 40, 6), Pattern(kBs, 66));
  EXPECT_BYTES_EQ(Block(vol, 12, 6), std::string(kBs, '\0'));
  EXPECT_BYTES_EQ(Block(vol, 10, 6), Pattern(2 * kBs, 5).substr(0, kBs));
}

TEST_F(JournalTest, CrashedImportIsRemovedAtReopen) {
  // The state a kill -9 in the middle of Import() leaves, written directly:
  // the marker ('I' be32 volume -> be64 seq) and block versions at that seq
  // without a seq record.
  Reopen();
  uint32_t vol = NewVolume(16 * kBs);
  ASSERT_OK(Write(vol, 0, 0, Pattern(16 * kBs, 0)));
  ASSERT_OK(j_->Commit());
  j_.reset();
  {
    RawDb raw(dir_);
    ASSERT_NE(raw.db(), nullptr);
    std::string marker = "I" + IdPrefix(vol), seq_be;
    for (int i = 7; i >= 0; --i) seq_be.push_back(static_cast<char>(i == 0 ? 1 : 0));
    ASSERT_TRUE(raw.db()->Put({}, raw.cf(0), marker, seq_be).ok());
    for (uint64_t b : {2, 3, 9}) {
      ASSERT_TRUE(raw.db()
                      ->Put({}, raw.cf(1), BlockKey(vol, b, 1),
                            EncodeValue(ValueKind::kBlock, Codec::kNone, Pattern(kBs, 100 + b)))
                      .ok());
    }
  }
  Reopen();
  EXPECT_EQ(j_->LastSeq(vol).value(), 0u);
  EXPECT_EQ(Count(DumpLines(vol), "block ", " seq=1 "), 0);
  ASSERT_OK(Write(vol, 1, 4 * kBs, Pattern(kBs, 1)));
  ASSERT_OK(j_->Commit());
  std::string want = Pattern(16 * kBs, 0);
  want.replace(4 * kBs, kBs, Pattern(kBs, 1));
  EXPECT_TRUE(Image(vol, 1) == want);
  Reopen();  // the marker is gone: seq 1 survives this open
  EXPECT_TRUE(Image(vol, 1) == want);
  j_.reset();
  RawDb raw(dir_);
  std::string v;
  EXPECT_TRUE(raw.db()->Get({}, raw.cf(0), "I" + IdPrefix(vol), &v).IsNotFound());
}

// ---- codecs ----------------------------------------------------------------

TEST_F(JournalTest, CompressedJournalsReadBackEqual) {
  for (Codec codec : {Codec::kZstd, Codec::kIgzip}) {
    SCOPED_TRACE(std::string(CodecName(codec)));
    j_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
    OpenOptions o;
    o.codec = codec;
    Reopen(o);
    EXPECT_EQ(j_->meta().codec, codec);
    uint32_t vol = NewVolume(32 * kBs);
    std::string cur(32 * kBs, '\0');
    std::string text;
    while (text.size() < 8 * kBs) text += "INSERT INTO orders VALUES (42, 'tidemark');\n";
    text.resize(8 * kBs);
    ASSERT_OK(Write(vol, 0, 0, text));
    cur.replace(0, text.size(), text);
    std::string rnd = Pattern(8 * kBs, 3);
    ASSERT_OK(Write(vol, 1, 8 * kBs, rnd));
    cur.replace(8 * kBs, rnd.size(), rnd);
    ASSERT_OK(Write(vol, 2, 2 * kBs + 512, std::string(1024, 'y')));  // RMW of a compressed block
    cur.replace(2 * kBs + 512, 1024, std::string(1024, 'y'));
    ASSERT_OK(j_->Commit());
    auto lines = DumpLines(vol);
    EXPECT_EQ(Count(lines, "block ", "codec=" + std::string(CodecName(codec))), 9);
    EXPECT_EQ(Count(lines, "block ", "codec=none"), 8);
    EXPECT_TRUE(Image(vol, 2) == cur);
    EXPECT_TRUE(Scan(vol, 2) == cur);
    // The codec is the journal's: a reopen with other options keeps it.
    Reopen();
    EXPECT_EQ(j_->meta().codec, codec);
    ASSERT_OK(Write(vol, 3, 20 * kBs, text.substr(0, kBs)));
    ASSERT_OK(j_->Commit());
    cur.replace(20 * kBs, kBs, text.substr(0, kBs));
    EXPECT_EQ(Count(DumpLines(vol), "block ", "codec=" + std::string(CodecName(codec))), 10);
    EXPECT_TRUE(Image(vol, 3) == cur);
  }
}

TEST_F(JournalTest, BlobFiles) {
  OpenOptions o;
  o.blob_files = true;
  Reopen(o);
  uint32_t vol = NewVolume(16 * kBs);
  std::string img = Pattern(16 * kBs, 8);
  ASSERT_OK(Write(vol, 0, 0, img));
  ASSERT_OK(j_->Commit());
  Reopen(o);
  EXPECT_TRUE(Image(vol, 0) == img);
}

// A client that only reads still flushes (qemu-io does on exit): a FLUSH
// with nothing new written must not rewrite the marker, even after reopen.
TEST_F(JournalTest, RepeatedFlushKeepsTheMarker) {
  Reopen();
  uint32_t vol = NewVolume();
  ASSERT_OK(Write(vol, 0, 0, Pattern(kBs, 0)));
  ASSERT_OK(j_->MarkFlush(vol, 0, kT0 + 1, kSeqFlush));
  ASSERT_OK(j_->Commit());
  auto before = DumpLines();
  ASSERT_OK(j_->MarkFlush(vol, 0, kT0 + 2, kSeqFlush));
  ASSERT_OK(j_->Commit());
  EXPECT_EQ(DumpLines(), before);
  Reopen();
  ASSERT_OK(j_->MarkFlush(vol, 0, kT0 + 3, kSeqFlush));
  ASSERT_OK(j_->Commit());
  EXPECT_EQ(DumpLines(), before);
}

}  // namespace
}  // namespace tidemark::journal
