// Unit tests of the tap's ordering promises, with an in-memory recorder and a
// temporary file as the backing: seqs in receipt order, the recorder never
// behind the backing, a read sees every write answered before it (writes are
// answered before the backing has them), FUA and FLUSH answered only after
// both are synced.
#include "tidemark/capture/tap.h"

#include "tidemark/capture/activity_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace tidemark::capture {
namespace {

constexpr uint64_t kVolumeBytes = 4 << 20;

// Keeps the recorded image in memory; counts syncs.
class MemRecorder : public Recorder {
 public:
  MemRecorder() : image_(kVolumeBytes, '\0') {}
  Status Record(uint32_t, const TapWrite& w) override {
    std::lock_guard lock(mu_);
    EXPECT_GT(w.seq, last_seq_) << "seqs must grow";
    last_seq_ = w.seq;
    if (w.op == OpKind::kWrite) {
      image_.replace(w.offset_bytes, w.length_bytes, w.data);
    } else {
      image_.replace(w.offset_bytes, w.length_bytes, std::string(w.length_bytes, '\0'));
    }
    return Status::Ok();
  }
  Status MarkFlush(Seq, TimeNs) override { return Status::Ok(); }
  Status Commit() override { return Status::Ok(); }
  Status Sync() override {
    std::lock_guard lock(mu_);
    ++syncs_;
    return Status::Ok();
  }
  Status Checkpoint(Seq) override { return Status::Ok(); }
  Status ReadLatest(uint32_t, uint64_t offset, char* out, size_t len) override {
    std::lock_guard lock(mu_);
    image_.copy(out, len, offset);
    return Status::Ok();
  }
  void SetImage(std::string image) {
    std::lock_guard lock(mu_);
    image_ = std::move(image);
  }
  int syncs() {
    std::lock_guard lock(mu_);
    return syncs_;
  }
  std::string image() {
    std::lock_guard lock(mu_);
    return image_;
  }

 private:
  std::mutex mu_;
  std::string image_;
  Seq last_seq_ = 0;
  int syncs_ = 0;
};

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tap_test.XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    path_ = tmpl;
    ASSERT_EQ(ftruncate(fd, kVolumeBytes), 0);
    close(fd);
    auto backing = Backing::Open(path_);
    ASSERT_TRUE(backing) << backing.error().ToString();
    auto tap = Tap::Create(std::move(backing.value()), &recorder_, TapOptions{});
    ASSERT_TRUE(tap) << tap.error().ToString();
    tap_ = tap.value();
  }
  void TearDown() override {
    if (tap_) {
      EXPECT_TRUE(tap_->Shutdown().ok());
    }
    unlink(path_.c_str());
  }

  // Submits and returns a future of the reply.
  std::future<nbd::Reply> Send(nbd::Command c, uint64_t offset, uint32_t len,
                               std::string data = {}, uint16_t flags = 0) {
    auto p = std::make_shared<std::promise<nbd::Reply>>();
    auto f = p->get_future();
    nbd::Request r;
    r.command = c;
    r.flags = flags;
    r.offset_bytes = offset;
    r.length_bytes = len;
    r.data = std::move(data);
    tap_->Submit(std::move(r), [p](nbd::Reply reply) { p->set_value(std::move(reply)); });
    return f;
  }

  std::string path_;
  MemRecorder recorder_;
  std::shared_ptr<Tap> tap_;
};

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Each write is answered before the backing need have it; a read sent right
// after the answer must still return it. Many rounds so the read often
// arrives while the backing write is in flight.
TEST_F(TapTest, ReadAfterAnsweredWriteSeesIt) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 3000; ++i) {
    uint64_t off = (rng() % (kVolumeBytes / 512 - 64)) * 512;
    uint32_t len = static_cast<uint32_t>((1 + rng() % 32) * 512);
    std::string data = Pattern(len, i);
    ASSERT_TRUE(Send(nbd::Command::kWrite, off, len, data).get().status.ok());
    // Overlapping read: starts before, ends inside.
    uint64_t roff = off >= 512 ? off - 512 : off;
    nbd::Reply r = Send(nbd::Command::kRead, roff, static_cast<uint32_t>(off + len - roff)).get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ASSERT_EQ(r.data.substr(off - roff), data) << "round " << i;
  }
}

// A window of concurrent overlapping writes, then reads: the backing, read
// through the tap, equals what the recorder holds (seq order on both).
TEST_F(TapTest, ConcurrentOverlappingWritesLandInSeqOrder) {
  std::mt19937_64 rng(2);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::future<nbd::Reply>> replies;
    for (int i = 0; i < 64; ++i) {
      uint64_t off = (rng() % 256) * 4096;  // 1 MiB hot region: many overlaps
      uint32_t len = static_cast<uint32_t>((1 + rng() % 4) * 4096);
      if (rng() % 8 == 0) {
        replies.push_back(Send(nbd::Command::kWriteZeroes, off, len));
      } else {
        replies.push_back(Send(nbd::Command::kWrite, off, len, Pattern(len, rng())));
      }
    }
    for (auto& f : replies) ASSERT_TRUE(f.get().status.ok());
    nbd::Reply r = Send(nbd::Command::kRead, 0, 2 << 20).get();
    ASSERT_TRUE(r.status.ok());
    ASSERT_TRUE(r.data == recorder_.image().substr(0, 2 << 20)) << "round " << round;
  }
}

TEST_F(TapTest, FuaAndFlushAnsweredAfterSync) {
  int before = recorder_.syncs();
  ASSERT_TRUE(Send(nbd::Command::kWrite, 0, 4096, Pattern(4096, 9), nbd::kFlagFua)
                  .get()
                  .status.ok());
  EXPECT_GT(recorder_.syncs(), before);
  before = recorder_.syncs();
  ASSERT_TRUE(Send(nbd::Command::kWrite, 4096, 4096, Pattern(4096, 10)).get().status.ok());
  ASSERT_TRUE(Send(nbd::Command::kFlush, 0, 0).get().status.ok());
  EXPECT_GT(recorder_.syncs(), before);
  EXPECT_EQ(tap_->last_seq(), 2u);
}

// Power loss: the extents a crash left in the activity log are set back to
// the recorder's bytes at Create; a write marks its extent (synced) before it
// reaches the backing, and the recorder's next sync clears the mark.
TEST_F(TapTest, ActivityLogSetsTheBackingBackAndCoversWrites) {
  ASSERT_TRUE(tap_->Shutdown().ok());
  tap_.reset();
  const std::string al_path = path_ + ".al";
  const std::string recorded = Pattern(kVolumeBytes, 77);
  recorder_.SetImage(recorded);
  {
    // A crash left extent 0 marked: the backing (zeros) may be ahead.
    auto al = ActivityLog::Open(al_path, kVolumeBytes);
    ASSERT_TRUE(al) << al.error().ToString();
    al.value()->Begin(8192, 4096);
    ASSERT_TRUE(al.value()->Persist().ok());
  }
  auto marks = [&] {
    auto al = ActivityLog::Open(al_path, kVolumeBytes);
    EXPECT_TRUE(al) << al.error().ToString();
    return al ? al.value()->marked_extents() : 99;
  };
  auto backing = Backing::Open(path_);
  ASSERT_TRUE(backing);
  TapOptions o;
  o.activity_logs = {al_path};
  auto tap = Tap::Create(std::move(backing.value()), &recorder_, o);
  ASSERT_TRUE(tap) << tap.error().ToString();
  tap_ = tap.value();
  EXPECT_EQ(tap_->reverted_bytes(), kVolumeBytes);
  EXPECT_EQ(marks(), 0u);
  nbd::Reply r = Send(nbd::Command::kRead, 0, kVolumeBytes).get();
  ASSERT_TRUE(r.status.ok());
  EXPECT_TRUE(r.data == recorded);
  ASSERT_TRUE(Send(nbd::Command::kWrite, 4096, 4096, Pattern(4096, 3)).get().status.ok());
  ASSERT_TRUE(Send(nbd::Command::kRead, 4096, 4096).get().status.ok());  // on the backing now
  EXPECT_EQ(marks(), 1u);
  ASSERT_TRUE(Send(nbd::Command::kFlush, 0, 0).get().status.ok());
  EXPECT_EQ(marks(), 0u);
  ASSERT_TRUE(tap_->Shutdown().ok());
  tap_.reset();
  unlink(al_path.c_str());
}

// A group: two backings behind one tap share one seq space; each member's
// writes reach its own backing and the recorder learns the member of each.
TEST(TapGroupTest, MembersShareOneSeqSpace) {
  struct GroupRecorder : Recorder {
    std::mutex mu;
    std::vector<std::pair<uint32_t, Seq>> seen;
    Status Record(uint32_t member, const TapWrite& w) override {
      std::lock_guard lock(mu);
      seen.push_back({member, w.seq});
      return Status::Ok();
    }
    Status MarkFlush(Seq, TimeNs) override { return Status::Ok(); }
    Status Commit() override { return Status::Ok(); }
    Status Sync() override { return Status::Ok(); }
    Status Checkpoint(Seq) override { return Status::Ok(); }
  } rec;
  std::vector<std::string> paths;
  std::vector<std::unique_ptr<Backing>> backings;
  for (int i = 0; i < 2; ++i) {
    char tmpl[] = "/tmp/tap_group_test.XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, kVolumeBytes >> i), 0);
    close(fd);
    paths.push_back(tmpl);
    auto b = Backing::Open(tmpl);
    ASSERT_TRUE(b);
    backings.push_back(std::move(b.value()));
  }
  auto tap = Tap::Create(std::move(backings), &rec, TapOptions{});
  ASSERT_TRUE(tap);
  ASSERT_EQ(tap.value()->members(), 2u);
  auto dev1 = tap.value()->Member(1);
  EXPECT_EQ(dev1->size_bytes(), kVolumeBytes >> 1);
  auto write = [&](nbd::BlockDevice& dev, uint64_t off, const std::string& data) {
    std::promise<nbd::Reply> p;
    nbd::Request r;
    r.command = nbd::Command::kWrite;
    r.offset_bytes = off;
    r.length_bytes = static_cast<uint32_t>(data.size());
    r.data = data;
    dev.Submit(std::move(r), [&p](nbd::Reply reply) { p.set_value(std::move(reply)); });
    return p.get_future().get().status;
  };
  const std::string a = Pattern(4096, 1), b = Pattern(4096, 2);
  ASSERT_TRUE(write(*tap.value(), 0, a).ok());
  ASSERT_TRUE(write(*dev1, 0, b).ok());
  ASSERT_TRUE(write(*tap.value()->Member(0), 8192, b).ok());
  ASSERT_TRUE(tap.value()->Shutdown().ok());
  ASSERT_EQ(rec.seen.size(), 3u);
  EXPECT_EQ(rec.seen[0], (std::pair<uint32_t, Seq>{0, 1}));
  EXPECT_EQ(rec.seen[1], (std::pair<uint32_t, Seq>{1, 2}));
  EXPECT_EQ(rec.seen[2], (std::pair<uint32_t, Seq>{0, 3}));
  // Each member's bytes on its own backing, nothing on the other's.
  std::string got0(4096, '\0'), got1(4096, '\0'), zero(4096, '\0');
  auto r0 = Backing::Open(paths[0]);
  auto r1 = Backing::Open(paths[1]);
  ASSERT_TRUE(r0 && r1);
  ASSERT_TRUE(r0.value()->Read(0, got0.data(), 4096).ok());
  ASSERT_TRUE(r1.value()->Read(0, got1.data(), 4096).ok());
  EXPECT_EQ(got0, a);
  EXPECT_EQ(got1, b);
  ASSERT_TRUE(r1.value()->Read(8192, got1.data(), 4096).ok());
  EXPECT_EQ(got1, zero);
  tap.value().reset();
  for (const auto& p : paths) unlink(p.c_str());
}

}  // namespace
}  // namespace tidemark::capture
