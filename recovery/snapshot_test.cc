// SnapshotDevice over a fake point (an image and block states in memory) and
// over a real journal: unaligned reads, BLOCK_STATUS, the overlay, the
// read cache, many requests at once.
#include "tidemark/recovery/snapshot.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <future>
#include <random>
#include <thread>

namespace tidemark::recovery {
namespace {

using capture::nbd::Command;
using capture::nbd::Reply;
using capture::nbd::Request;
using journal::BlockState;

constexpr uint32_t kBs = 4096;
constexpr uint64_t kBlocks = 256;  // 1 MiB

std::string Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() | 1);
  return s;
}

// A point in memory: blocks 16-31 and 100-199 hold data, the rest are zero.
struct FakePoint {
  std::string image;
  std::vector<BlockState> states;
  std::atomic<int> calls{0};
  FakePoint() : image(kBlocks * kBs, '\0'), states(kBlocks, BlockState::kZero) {
    for (uint64_t b = 0; b < kBlocks; ++b) {
      if ((b >= 16 && b < 32) || (b >= 100 && b < 200)) {
        image.replace(b * kBs, kBs, Random(kBs, b));
        states[b] = BlockState::kData;
      }
    }
  }
  BlockReaderFactory Factory() {
    return [this]() -> Result<BlockReadFn> {
      return BlockReadFn([this](uint64_t first, uint32_t count, char* out, BlockState* st) {
        ++calls;
        if (first + count > kBlocks) return Status::InvalidArgument("past the end");
        if (out) std::memcpy(out, image.data() + first * kBs, count * kBs);
        if (st) std::copy(states.begin() + first, states.begin() + first + count, st);
        return Status::Ok();
      });
    };
  }
};

Reply Do(SnapshotDevice& dev, Command c, uint64_t off, uint32_t len, std::string data = {}) {
  Request r;
  r.command = c;
  r.offset_bytes = off;
  r.length_bytes = len;
  r.data = std::move(data);
  std::promise<Reply> p;
  auto f = p.get_future();
  dev.Submit(std::move(r), [&p](Reply reply) { p.set_value(std::move(reply)); });
  return f.get();
}

std::shared_ptr<SnapshotDevice> Open(FakePoint& point, SnapshotOptions o = {}) {
  o.volume.name = "vol";
  o.volume.size_bytes = kBlocks * kBs;
  o.volume.block_bytes = kBs;
  auto d = SnapshotDevice::Open(o, point.Factory());
  EXPECT_TRUE(d) << d.error().ToString();
  return d ? d.value() : nullptr;
}

TEST(Snapshot, UnalignedReads) {
  FakePoint point;
  auto dev = Open(point);
  ASSERT_TRUE(dev);
  EXPECT_TRUE(dev->read_only());
  EXPECT_FALSE(dev->supports_trim());
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    uint64_t off = rng() % (kBlocks * 8) * 512;
    uint32_t len =
        static_cast<uint32_t>(std::min<uint64_t>(kBlocks * kBs - off, (rng() % 100 + 1) * 512));
    Reply r = Do(*dev, Command::kRead, off, len);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ASSERT_EQ(r.data, point.image.substr(off, len)) << off << "+" << len;
  }
  EXPECT_EQ(dev->stats().reads, 200u);
}

TEST(Snapshot, BlockStatusHolesAndData) {
  FakePoint point;
  auto dev = Open(point);
  ASSERT_TRUE(dev);
  Reply r = Do(*dev, Command::kBlockStatus, 0, kBlocks * kBs);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  std::vector<std::tuple<uint32_t, bool, bool>> got;
  for (const auto& e : r.extents) got.emplace_back(e.length_bytes, e.hole, e.zero);
  using T = std::tuple<uint32_t, bool, bool>;
  EXPECT_EQ(got, (std::vector<T>{{16 * kBs, true, true},
                                 {16 * kBs, false, false},
                                 {68 * kBs, true, true},
                                 {100 * kBs, false, false},
                                 {56 * kBs, true, true}}));
  // A 512-byte-granular query inside a block.
  r = Do(*dev, Command::kBlockStatus, 16 * kBs - 1024, 2048);
  ASSERT_EQ(r.extents.size(), 2u);
  EXPECT_EQ(r.extents[0].length_bytes, 1024u);
  EXPECT_TRUE(r.extents[0].hole);
  EXPECT_EQ(r.extents[1].length_bytes, 1024u);
  EXPECT_FALSE(r.extents[1].zero);
}

TEST(Snapshot, WritableOverlay) {
  FakePoint point;
  const std::string before = point.image;
  SnapshotOptions o;
  o.writable = true;
  o.overlay_dir = ::testing::TempDir();
  auto dev = Open(point, o);
  ASSERT_TRUE(dev);
  EXPECT_FALSE(dev->read_only());
  EXPECT_TRUE(dev->supports_trim());
  std::string model = point.image;
  const std::string data = Random(3000 / 512 * 512 + 512, 99);
  ASSERT_TRUE(Do(*dev, Command::kWrite, 20 * kBs + 512, data.size(), data).status.ok());
  model.replace(20 * kBs + 512, data.size(), data);
  ASSERT_TRUE(Do(*dev, Command::kTrim, 110 * kBs, 20 * kBs).status.ok());
  std::memset(model.data() + 110 * kBs, 0, 20 * kBs);
  ASSERT_TRUE(Do(*dev, Command::kWriteZeroes, 512, 1024).status.ok());
  std::memset(model.data() + 512, 0, 1024);
  ASSERT_TRUE(Do(*dev, Command::kFlush, 0, 0).status.ok());
  Reply r = Do(*dev, Command::kRead, 0, kBlocks * kBs);
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.data == model) << "reads through the overlay differ from the model";
  EXPECT_TRUE(point.image == before) << "the point below was changed";
  EXPECT_GT(dev->stats().overlay_chunks, 0u);
  // Overlay chunks are data in BLOCK_STATUS, never holes.
  r = Do(*dev, Command::kBlockStatus, 0, 64 << 10);
  ASSERT_EQ(r.extents.size(), 1u);
  EXPECT_FALSE(r.extents[0].hole);
}

TEST(Snapshot, ReadOnlyRefusesWrites) {
  FakePoint point;
  auto dev = Open(point);
  ASSERT_TRUE(dev);
  EXPECT_FALSE(Do(*dev, Command::kWrite, 0, 512, std::string(512, 'a')).status.ok());
  EXPECT_FALSE(Do(*dev, Command::kTrim, 0, 4096).status.ok());
}

TEST(Snapshot, CacheReadsAroundAndHits) {
  FakePoint point;
  SnapshotOptions o;
  o.cache_bytes = 1 << 20;
  o.readers = 1;
  auto dev = Open(point, o);
  ASSERT_TRUE(dev);
  for (int pass = 0; pass < 3; ++pass) {
    for (uint64_t b = 0; b < 32; ++b) {
      Reply r = Do(*dev, Command::kRead, b * kBs, kBs);
      ASSERT_EQ(r.data, point.image.substr(b * kBs, kBs));
    }
  }
  EXPECT_EQ(point.calls.load(), 2) << "two 64 KiB chunks, each read once";
  Reply r = Do(*dev, Command::kRead, 512, kBlocks * kBs - 1024);
  EXPECT_TRUE(r.data == point.image.substr(512, kBlocks * kBs - 1024));
  EXPECT_EQ(dev->stats().cache_misses, 16u);
}

TEST(Snapshot, ManyClientsAtOnce) {
  FakePoint point;
  SnapshotOptions o;
  o.readers = 3;
  auto dev = Open(point, o);
  ASSERT_TRUE(dev);
  std::vector<std::thread> clients;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 300; ++i) {
        uint64_t off = rng() % (kBlocks * 8) * 512;
        uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(kBlocks * kBs - off, 8192));
        if (Do(*dev, Command::kRead, off, len).data != point.image.substr(off, len)) ++bad;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Snapshot, ReaderErrorsAndBadOptions) {
  SnapshotOptions o;
  o.volume = {0, 0, "v", kBlocks * kBs, kBs, "", 0};
  auto failing = []() -> Result<BlockReadFn> { return Status::NotFound("no journal"); };
  EXPECT_EQ(SnapshotDevice::Open(o, failing).error().code(), Code::kNotFound);
  o.readers = 0;
  FakePoint point;
  EXPECT_EQ(SnapshotDevice::Open(o, point.Factory()).error().code(), Code::kInvalidArgument);
  o.readers = 1;
  o.volume.block_bytes = 3000;
  EXPECT_EQ(SnapshotDevice::Open(o, point.Factory()).error().code(), Code::kInvalidArgument);
  // A reader's error reaches the client as the reply's status.
  o.volume.block_bytes = kBs;
  auto corrupt = []() -> Result<BlockReadFn> {
    return BlockReadFn([](uint64_t, uint32_t, char*, BlockState*) {
      return Status::Corruption("volume v block 3 seq 9: CRC mismatch");
    });
  };
  auto dev = SnapshotDevice::Open(o, corrupt);
  ASSERT_TRUE(dev);
  Reply r = Do(*dev.value(), Command::kRead, 3 * kBs, kBs);
  EXPECT_EQ(r.status.code(), Code::kCorruption);
  EXPECT_TRUE(r.data.empty());
}

// A real journal: two PointReaders of the journal the test wrote serve the
// point at seq 2 while seq 3 exists.
TEST(Snapshot, JournalReadersServeAPoint) {
  std::string dir = ::testing::TempDir() + "/snapshot_test_journal." + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  journal::OpenOptions jo;
  jo.create_if_missing = true;
  auto j = journal::Journal::Open(dir, jo);
  ASSERT_TRUE(j) << j.error().ToString();
  auto vol = j.value()->CreateVolume("v", kBlocks * kBs, kBs);
  ASSERT_TRUE(vol);
  const uint32_t id = vol.value().id;
  std::string model(kBlocks * kBs, '\0');
  auto apply = [&](Seq seq, OpKind kind, uint64_t off, const std::string& data, uint64_t len) {
    WriteOp op;
    op.seq = seq;
    op.time_ns = 1'000'000'000 + static_cast<TimeNs>(seq);
    op.op = kind;
    op.offset_bytes = off;
    op.length_bytes = len;
    op.data = data;
    ASSERT_TRUE(j.value()->Apply(id, op).ok());
  };
  const std::string a = Random(40 * kBs, 1), b = Random(3 * 512, 2), c = Random(kBs, 3);
  apply(0, OpKind::kWrite, 0, a, a.size());
  apply(1, OpKind::kWrite, 8 * kBs + 512, b, b.size());
  apply(2, OpKind::kTrim, 30 * kBs, {}, 5 * kBs);
  apply(3, OpKind::kWrite, 0, c, c.size());  // after the point: never seen
  ASSERT_TRUE(j.value()->Commit().ok());
  model.replace(0, a.size(), a);
  model.replace(8 * kBs + 512, b.size(), b);
  std::memset(model.data() + 30 * kBs, 0, 5 * kBs);

  SnapshotOptions o;
  o.volume = vol.value();
  o.readers = 2;
  auto dev = SnapshotDevice::Open(o, JournalReaders(std::move(j.value()), id, 2));
  ASSERT_TRUE(dev) << dev.error().ToString();
  for (int i = 0; i < 8; ++i) {  // spread over both readers
    Reply r = Do(*dev.value(), Command::kRead, 0, kBlocks * kBs);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ASSERT_TRUE(r.data == model) << "read " << i;
    r = Do(*dev.value(), Command::kRead, 8 * kBs + 1024, 512);
    ASSERT_EQ(r.data, model.substr(8 * kBs + 1024, 512));
  }
  Reply r = Do(*dev.value(), Command::kBlockStatus, 0, kBlocks * kBs);
  ASSERT_TRUE(r.status.ok());
  ASSERT_EQ(r.extents.size(), 4u);
  EXPECT_EQ(r.extents[0].length_bytes, 30 * kBs);
  EXPECT_FALSE(r.extents[0].hole);
  EXPECT_EQ(r.extents[1].length_bytes, 5 * kBs);  // the trim
  EXPECT_TRUE(r.extents[1].zero);
  EXPECT_EQ(r.extents[2].length_bytes, 5 * kBs);
  EXPECT_FALSE(r.extents[2].hole);
  EXPECT_EQ(r.extents[3].length_bytes, (kBlocks - 40) * kBs);  // never written
  EXPECT_TRUE(r.extents[3].hole);
  dev.value().reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tidemark::recovery
