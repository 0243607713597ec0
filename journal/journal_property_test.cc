// Randomized test of the journal against an in-memory model: random writes,
// trims and write-zeroes (aligned, sector-aligned, sub-block, multi-block,
// small and range-sized), with commits, syncs, flush marks and reopens in
// between. At the end every seq is read back (ScanBlocks for all of them,
// ReadBlock for a sample) and compared with the model's copy of the volume
// at that seq, and ChangedExtents is checked between random pairs of seqs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tidemark/journal/journal.h"

namespace tidemark::journal {
namespace {

namespace fs = std::filesystem;
constexpr TimeNs kT0 = 1795428899LL * 1'000'000'000;

// A volume image as per-block shared copies (nullptr: all zeros), so that a
// snapshot per seq costs only the blocks the seq changed.
using Image = std::vector<std::shared_ptr<const std::string>>;

struct Config {
  uint64_t seed;
  uint32_t block_bytes;
  uint64_t blocks;
  Codec codec;
  bool import_first;
  int ops;
};

std::string ToString(const Config& c) {
  return "seed=" + std::to_string(c.seed) + " block_bytes=" + std::to_string(c.block_bytes) +
         " blocks=" + std::to_string(c.blocks) + " codec=" + std::string(CodecName(c.codec)) +
         (c.import_first ? " import" : "");
}

class Model {
 public:
  Model(uint32_t bs, uint64_t blocks) : bs_(bs), image_(blocks) {}

  void Write(uint64_t off, std::string_view data) { Change(off, data.size(), data.data()); }
  void Zero(uint64_t off, uint64_t len) { Change(off, len, nullptr); }
  const Image& image() const { return image_; }
  static std::string Block(const Image& img, uint64_t b, uint32_t bs) {
    return img[b] ? *img[b] : std::string(bs, '\0');
  }

 private:
  void Change(uint64_t off, uint64_t len, const char* src) {
    uint64_t end = off + len;
    for (uint64_t b = off / bs_; b * bs_ < end; ++b) {
      uint64_t lo = std::max(off, b * bs_), hi = std::min(end, (b + 1) * bs_);
      auto copy = std::make_shared<std::string>(Block(image_, b, bs_));
      if (src) {
        std::memcpy(copy->data() + (lo - b * bs_), src + (lo - off), hi - lo);
      } else {
        std::memset(copy->data() + (lo - b * bs_), 0, hi - lo);
      }
      image_[b] = std::move(copy);
    }
  }
  uint32_t bs_;
  Image image_;
};

class PropertyRun {
 public:
  PropertyRun(const Config& c, std::string dir)
      : c_(c), dir_(std::move(dir)), rng_(c.seed), model_(c.block_bytes, c.blocks) {}

  void Run() {
    Open();
    ASSERT_NE(j_, nullptr);
    auto v = j_->CreateVolume("prop", c_.blocks * c_.block_bytes, c_.block_bytes);
    ASSERT_TRUE(v) << v.error().ToString();
    vol_ = v.value().id;
    size_ = c_.blocks * c_.block_bytes;
    if (c_.import_first) {
      std::string img(size_, '\0');
      for (uint64_t b = 0; b < c_.blocks; ++b) {
        if (rng_() % 3) continue;  // most blocks zero
        std::string d = Data(c_.block_bytes);
        img.replace(b * c_.block_bytes, d.size(), d);
      }
      auto s = j_->Import(
          vol_,
          [&](uint64_t off, char* buf, size_t len) {
            std::memcpy(buf, img.data() + off, len);
            return Status::Ok();
          },
          time_);
      ASSERT_TRUE(s) << s.error().ToString();
      ASSERT_EQ(s.value(), 0u);
      model_.Write(0, img);
      std::vector<Extent> changed;  // the first import skips zero blocks
      for (uint64_t b = 0; b < c_.blocks; ++b) {
        std::string_view blk(img.data() + b * c_.block_bytes, c_.block_bytes);
        if (blk.find_first_not_of('\0') != std::string_view::npos) {
          changed.push_back({b * c_.block_bytes, c_.block_bytes});
        }
      }
      CoalesceExtents(&changed);
      Record(0, changed, false);
      next_seq_ = 1;
    }
    for (int i = 0; i < c_.ops; ++i) {
      Step();
      if (::testing::Test::HasFatalFailure()) return;
    }
    ASSERT_TRUE(j_->Commit().ok());
    if (rng_() % 2) Open();
    Verify();
  }

 private:
  void Open() {
    j_.reset();
    OpenOptions o;
    o.create_if_missing = true;
    o.codec = c_.codec;
    o.group_commit_writes = 1 + rng_() % 12;
    auto j = Journal::Open(dir_, o);
    ASSERT_TRUE(j) << j.error().ToString();
    j_ = std::move(j.value());
  }

  std::string Data(size_t n) {
    std::string d(n, '\0');
    switch (rng_() % 6) {
      case 0:  // zeros written as data
        break;
      case 1: {  // compressible
        char c = static_cast<char>('a' + rng_() % 26);
        for (size_t i = 0; i < n; ++i) d[i] = static_cast<char>(c + (i / 64) % 3);
        break;
      }
      default:
        for (size_t i = 0; i < n; i += 8) {
          uint64_t r = rng_();
          std::memcpy(d.data() + i, &r, std::min<size_t>(8, n - i));
        }
    }
    return d;
  }

  uint64_t Sectors(uint64_t max) { return 1 + rng_() % max; }

  // Picks an extent of the given shape that fits the volume.
  void PickExtent(uint64_t* off, uint64_t* len) {
    const uint64_t bs = c_.block_bytes, spb = bs / 512, total = size_ / 512;
    switch (rng_() % 4) {
      case 0: {  // aligned, 1..10 blocks
        uint64_t n = std::min<uint64_t>(1 + rng_() % 10, c_.blocks);
        *off = (rng_() % (c_.blocks - n + 1)) * bs;
        *len = n * bs;
        break;
      }
      case 1: {  // unaligned 512-multiples, up to ~10 blocks
        *len = 512 * std::min<uint64_t>(Sectors(10 * spb), total);
        *off = 512 * (rng_() % (total - *len / 512 + 1));
        break;
      }
      default: {  // sub-block
        uint64_t n = spb > 1 ? Sectors(spb - 1) : 1;
        uint64_t b = rng_() % c_.blocks;
        uint64_t first = rng_() % (spb - n + 1);
        *off = b * bs + first * 512;
        *len = n * 512;
      }
    }
  }

  void Step() {
    const uint64_t bs = c_.block_bytes;
    Seq seq = next_seq_;
    next_seq_ += rng_() % 8 == 0 ? 2 + rng_() % 3 : 1;  // gaps
    time_ += rng_() % 4 == 0 ? 0 : static_cast<TimeNs>(rng_() % 1'000'000'000);
    WriteOp op;
    op.seq = seq;
    op.time_ns = time_;
    op.flags = rng_() % 10 == 0 ? kSeqFua : 0;
    std::string data;
    uint32_t kind = rng_() % 10;
    if (kind < 6) {
      PickExtent(&op.offset_bytes, &op.length_bytes);
      data = Data(op.length_bytes);
      op.data = data;
    } else {
      op.op = kind % 2 ? OpKind::kTrim : OpKind::kWriteZeroes;
      if (rng_() % 2) {
        PickExtent(&op.offset_bytes, &op.length_bytes);
      } else {  // more than 16 whole blocks: a range record
        uint64_t n = std::min<uint64_t>(17 + rng_() % c_.blocks, c_.blocks);
        uint64_t first = rng_() % (c_.blocks - n + 1);
        op.offset_bytes = first * bs;
        op.length_bytes = n * bs;
        // Sometimes with partial edges.
        if (rng_() % 2 && n >= 19) {
          uint64_t cut = 512 * (1 + rng_() % (bs / 512));
          cut = std::min(cut, bs);
          op.offset_bytes += cut;
          op.length_bytes -= cut + 512 * (rng_() % (bs / 512));
        }
      }
    }
    Status s = j_->Apply(vol_, op);
    ASSERT_TRUE(s.ok()) << "seq " << seq << ": " << s.ToString();
    Image before = model_.image();
    if (op.op == OpKind::kWrite) {
      model_.Write(op.offset_bytes, data);
    } else {
      model_.Zero(op.offset_bytes, op.length_bytes);
    }
    bool multi = op.offset_bytes / bs != (op.offset_bytes + op.length_bytes - 1) / bs;
    if (multi && op.op == OpKind::kWrite) torn_checks_.push_back({last_seq_, seq, op});
    Record(seq, {{op.offset_bytes, op.length_bytes}}, op.flags & kSeqFua);
    // A resend of a random earlier seq is a no-op.
    if (rng_() % 20 == 0) {
      WriteOp again = op;
      again.seq = seqs_[rng_() % seqs_.size()];
      ASSERT_TRUE(j_->Apply(vol_, again).ok());
    }
    switch (rng_() % 40) {
      case 0:
      case 1:
        ASSERT_TRUE(j_->Commit().ok());
        break;
      case 2: {
        auto d = j_->Sync(vol_);
        ASSERT_TRUE(d);
        ASSERT_EQ(d.value(), seq);
        break;
      }
      case 3:
        if (rng_() % 3 == 0) Open();  // a RocksDB open costs ~0.1 s: a few per run
        break;
      case 4:
      case 5:
        ASSERT_TRUE(j_->MarkFlush(vol_, seq, time_, kSeqFlush).ok());
        flushes_.push_back(seq);
        break;
      default:
        break;
    }
  }

  void Record(Seq seq, std::vector<Extent> extents, bool fua) {
    states_[seq] = model_.image();
    extents_[seq] = std::move(extents);
    seqs_.push_back(seq);
    times_[seq] = time_;
    if (fua) flushes_.push_back(seq);
    last_seq_ = seq;
  }

  std::string Read(uint64_t block, Seq seq) {
    std::string out(c_.block_bytes, 'x');
    Status s = j_->ReadBlock(vol_, block, seq, out.data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  void Verify() {
    const uint32_t bs = c_.block_bytes;
    ASSERT_EQ(j_->Latest(vol_).value().seq, last_seq_);
    // Every seq, and the gap seqs (which read as the seq below them).
    for (Seq seq = seqs_.front(); seq <= last_seq_; ++seq) {
      auto it = states_.upper_bound(seq);
      --it;
      const Image& want = it->second;
      std::vector<bool> seen(c_.blocks, false);
      int64_t prev = -1;
      Status s = j_->ScanBlocks(vol_, seq, [&](uint64_t block, std::string_view data) {
        EXPECT_LT(block, c_.blocks);
        EXPECT_GT(static_cast<int64_t>(block), prev);
        prev = static_cast<int64_t>(block);
        if (block >= c_.blocks) return Status::Ok();
        seen[block] = true;
        EXPECT_TRUE(data == Model::Block(want, block, bs))
            << "ScanBlocks: block " << block << " at seq " << seq;
        return Status::Ok();
      });
      ASSERT_TRUE(s.ok()) << s.ToString();
      for (uint64_t b = 0; b < c_.blocks; ++b) {
        if (seen[b]) continue;
        EXPECT_TRUE(Model::Block(want, b, bs) == std::string(bs, '\0'))
            << "ScanBlocks skipped non-zero block " << b << " at seq " << seq;
      }
      // ReadBlock for a sample: all blocks every 16th seq, two otherwise.
      for (uint64_t b = 0; b < c_.blocks; ++b) {
        if (seq % 16 != 0 && rng_() % c_.blocks >= 2) continue;
        EXPECT_TRUE(Read(b, seq) == Model::Block(want, b, bs))
            << "ReadBlock: block " << b << " at seq " << seq;
      }
      PointSpec p;
      p.kind = PointSpec::Kind::kSeq;
      p.seq = seq;
      auto r = j_->Resolve(vol_, p, kT0 + (1LL << 50));
      ASSERT_TRUE(r) << r.error().ToString();
      EXPECT_EQ(r.value().seq, it->first);
      EXPECT_EQ(r.value().time_ns, times_[it->first]);
      if (::testing::Test::HasFailure()) return;  // one seq's report is enough
    }
    // Never torn: the seq before a multi-block write and the write's seq.
    for (const TornCheck& t : torn_checks_) {
      uint64_t lo = t.op.offset_bytes / bs, hi = (t.op.offset_bytes + t.op.length_bytes - 1) / bs;
      for (uint64_t b = lo; b <= hi; ++b) {
        if (t.before != kNoSeq) {
          EXPECT_TRUE(Read(b, t.before) == Model::Block(states_[t.before], b, bs))
              << "block " << b << " before seq " << t.after;
        }
        EXPECT_TRUE(Read(b, t.after) == Model::Block(states_[t.after], b, bs))
            << "block " << b << " at seq " << t.after;
      }
    }
    // ChangedExtents((a, b]): exactly the merged extents of those seqs, and
    // covering every byte that differs between the two states.
    for (int i = 0; i < 200; ++i) {
      Seq a = seqs_[rng_() % seqs_.size()], b = seqs_[rng_() % seqs_.size()];
      if (a > b) std::swap(a, b);
      auto got = j_->ChangedExtents(vol_, a, b);
      ASSERT_TRUE(got) << got.error().ToString();
      std::vector<Extent> want;
      for (auto it = extents_.upper_bound(a); it != extents_.end() && it->first <= b; ++it) {
        want.insert(want.end(), it->second.begin(), it->second.end());
      }
      CoalesceExtents(&want);
      EXPECT_EQ(got.value(), want) << "ChangedExtents(" << a << ", " << b << "]";
      const Image &sa = states_[a], &sb = states_[b];
      for (uint64_t blk = 0; blk < c_.blocks; ++blk) {
        if (sa[blk] == sb[blk]) continue;
        std::string x = Model::Block(sa, blk, bs), y = Model::Block(sb, blk, bs);
        for (uint64_t k = 0; k < bs; k += 512) {
          if (std::memcmp(x.data() + k, y.data() + k, 512) == 0) continue;
          uint64_t off = blk * bs + k;
          bool covered = std::any_of(got.value().begin(), got.value().end(), [&](const Extent& e) {
            return e.offset_bytes <= off && off + 512 <= e.end_bytes();
          });
          EXPECT_TRUE(covered) << "sector at " << off << " differs between seq " << a << " and "
                               << b << " but is not in ChangedExtents";
        }
      }
      if (::testing::Test::HasFailure()) return;
    }
    // FUA writes and flush marks are the flush points.
    auto fl = j_->Flushes(vol_);
    ASSERT_TRUE(fl);
    std::vector<Seq> got_fl, want_fl = flushes_;
    for (const Point& p : fl.value()) got_fl.push_back(p.seq);
    std::sort(want_fl.begin(), want_fl.end());
    want_fl.erase(std::unique(want_fl.begin(), want_fl.end()), want_fl.end());
    EXPECT_EQ(got_fl, want_fl);
  }

  struct TornCheck {
    Seq before, after;
    WriteOp op;
  };

  Config c_;
  std::string dir_;
  std::mt19937_64 rng_;
  Model model_;
  std::unique_ptr<Journal> j_;
  uint32_t vol_ = 0;
  uint64_t size_ = 0;
  Seq next_seq_ = 0;
  Seq last_seq_ = kNoSeq;
  TimeNs time_ = kT0;
  std::map<Seq, Image> states_;
  std::map<Seq, std::vector<Extent>> extents_;
  std::map<Seq, TimeNs> times_;
  std::vector<Seq> seqs_;
  std::vector<Seq> flushes_;
  std::vector<TornCheck> torn_checks_;
};

class JournalPropertyTest : public ::testing::TestWithParam<Config> {};

TEST_P(JournalPropertyTest, MatchesModel) {
  Config c = GetParam();
  if (const char* s = std::getenv("TM_PROPERTY_SEED")) c.seed = std::strtoull(s, nullptr, 10);
  SCOPED_TRACE(ToString(c) + " (rerun with TM_PROPERTY_SEED=" + std::to_string(c.seed) + ")");
  std::string tmpl = ::testing::TempDir() + "/journal_property.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  {
    PropertyRun run(c, tmpl + "/j");
    run.Run();
  }
  if (::testing::Test::HasFailure()) {
    std::printf("journal property test failed: %s\n", ToString(c).c_str());
  }
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

INSTANTIATE_TEST_SUITE_P(Seeds, JournalPropertyTest,
                         ::testing::Values(Config{1, 4096, 64, Codec::kIgzip, false, 400},
                                           Config{2, 4096, 64, Codec::kZstd, true, 400},
                                           Config{4, 512, 96, Codec::kNone, false, 400},
                                           Config{5, 512, 64, Codec::kZstd, true, 400},
                                           Config{6, 16384, 64, Codec::kNone, true, 400},
                                           Config{7, 16384, 40, Codec::kIgzip, false, 400}),
                         [](const ::testing::TestParamInfo<Config>& info) {
                           return "seed" + std::to_string(info.param.seed) + "_bs" +
                                  std::to_string(info.param.block_bytes);
                         });

}  // namespace
}  // namespace tidemark::journal
