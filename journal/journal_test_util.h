// Private to the journal's tests: the fixture and helpers shared by
// journal_test.cc (the API) and journal_damage_test.cc (versions, damage,
// interrupted imports).
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tidemark/journal/journal.h"
#include "tidemark/journal/time.h"
namespace tidemark::journal::testing_util {

namespace fs = std::filesystem;

template <class T>
Status StatusOf(const Result<T>& r) {
  return r ? Status::Ok() : r.error();
}
inline Status StatusOf(const Status& s) { return s; }

template <class R>
::testing::AssertionResult HasCode(const R& r, Code want) {
  Status s = StatusOf(r);
  if (s.code() == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "gave " << s.ToString() << ", want " << Status::CodeName(want);
}
#define EXPECT_CODE(expr, want) EXPECT_TRUE(HasCode((expr), (want))) << #expr << ": "
#define ASSERT_OK(expr) ASSERT_TRUE(HasCode((expr), Code::kOk)) << #expr << ": "
#define EXPECT_OK(expr) EXPECT_TRUE(HasCode((expr), Code::kOk)) << #expr << ": "

// Compares byte strings without printing kilobytes of binary on failure.
::testing::AssertionResult SameBytes(const std::string& a, const std::string& b) {
  if (a == b) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return ::testing::AssertionFailure()
         << "sizes " << a.size() << " and " << b.size() << ", first difference at byte " << i;
}
#define EXPECT_BYTES_EQ(a, b) EXPECT_TRUE(SameBytes((a), (b))) << #a << " vs " << #b << ": "

constexpr TimeNs kSec = 1'000'000'000;
constexpr TimeNs kT0 = 1795428899 * kSec;  // 2026-11-23T10:14:59Z
constexpr uint32_t kBs = 4096;

TimeNs TimeOf(Seq seq) { return kT0 + static_cast<TimeNs>(seq) * kSec; }

std::string Pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed * 7919 + 1);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() | 1);  // never all zero
  return s;
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/journal_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/j";
  }
  void TearDown() override {
    j_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<Journal> OpenJournal(OpenOptions o = {}) {
    o.create_if_missing = true;
    auto j = Journal::Open(dir_, o);
    EXPECT_TRUE(j) << j.error().ToString();
    return j ? std::move(j.value()) : nullptr;
  }
  void Reopen(OpenOptions o = {}) {
    j_.reset();
    j_ = OpenJournal(o);
    ASSERT_NE(j_, nullptr);
  }
  uint32_t NewVolume(uint64_t size = 64 * kBs, uint32_t bs = kBs, const char* name = "vol") {
    auto v = j_->CreateVolume(name, size, bs);
    EXPECT_TRUE(v) << v.error().ToString();
    return v ? v.value().id : 0;
  }
  Status Write(uint32_t vol, Seq seq, uint64_t off, const std::string& data, uint8_t flags = 0,
               TimeNs t = -1) {
    WriteOp op;
    op.seq = seq;
    op.time_ns = t < 0 ? TimeOf(seq) : t;
    op.offset_bytes = off;
    op.length_bytes = data.size();
    op.data = data;
    op.flags = flags;
    return j_->Apply(vol, op);
  }
  Status Zero(uint32_t vol, Seq seq, uint64_t off, uint64_t len, OpKind kind = OpKind::kTrim) {
    WriteOp op;
    op.seq = seq;
    op.time_ns = TimeOf(seq);
    op.op = kind;
    op.offset_bytes = off;
    op.length_bytes = len;
    return j_->Apply(vol, op);
  }
  std::string Block(uint32_t vol, uint64_t block, Seq seq) {
    auto info = VolInfo(vol);
    std::string out(info.block_bytes, 'x');
    Status s = j_->ReadBlock(vol, block, seq, out.data());
    EXPECT_TRUE(s.ok()) << "block " << block << " seq " << seq << ": " << s.ToString();
    return out;
  }
  VolumeInfo VolInfo(uint32_t vol) {
    for (const VolumeInfo& v : j_->Volumes()) {
      if (v.id == vol) return v;
    }
    ADD_FAILURE() << "no volume " << vol;
    return {};
  }
  // The volume's bytes at seq through ReadBlock.
  std::string Image(uint32_t vol, Seq seq) {
    VolumeInfo info = VolInfo(vol);
    std::string img;
    for (uint64_t b = 0; b < info.blocks(); ++b) img += Block(vol, b, seq);
    img.resize(info.size_bytes);
    return img;
  }
  // The volume's bytes at seq through ScanBlocks.
  std::string Scan(uint32_t vol, Seq seq) {
    VolumeInfo info = VolInfo(vol);
    std::string img(info.blocks() * info.block_bytes, '\0');
    int64_t last = -1;
    Status s = j_->ScanBlocks(vol, seq, [&](uint64_t block, std::string_view data) {
      EXPECT_GT(static_cast<int64_t>(block), last) << "blocks out of order";
      last = static_cast<int64_t>(block);
      EXPECT_EQ(data.size(), info.block_bytes);
      EXPECT_NE(data, std::string(info.block_bytes, '\0')) << "zero block " << block << " scanned";
      std::memcpy(img.data() + block * info.block_bytes, data.data(), data.size());
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    img.resize(info.size_bytes);
    return img;
  }
  std::vector<std::string> DumpLines(uint32_t vol = Journal::kNoVolume) {
    std::vector<std::string> lines;
    Status s = j_->Dump(vol, [&](std::string_view l) { lines.emplace_back(l); });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return lines;
  }
  // The format new journals get ($TIDEMARK_JOURNAL_FORMAT: the unit suites
  // run once per format).
  static uint32_t TestFormat() {
    const char* env = std::getenv("TIDEMARK_JOURNAL_FORMAT");
    return env && std::string(env) == "1" ? 1 : kMaxFormatVersion;
  }
  // Dump lines with `prefix` holding `contains`. In format 2, "block " and
  // "zero-block " count the blocks of the matching extent lines.
  static int Count(const std::vector<std::string>& lines, const std::string& prefix,
                   const std::string& contains = "") {
    if (TestFormat() == 2 && (prefix == "block " || prefix == "zero-block ")) {
      const bool zero = prefix == "zero-block ";
      int n = 0;
      for (const auto& l : lines) {
        if (!l.starts_with("extent ") || l.find(contains) == std::string::npos) continue;
        if (l.ends_with(" zero") != zero) continue;
        const size_t at = l.find(" blocks=");
        const size_t plus = l.find('+', at);
        if (at == std::string::npos || plus == std::string::npos) continue;
        n += std::stoi(l.substr(plus + 1));
      }
      return n;
    }
    int n = 0;
    for (const auto& l : lines) {
      if (l.starts_with(prefix) && l.find(contains) != std::string::npos) ++n;
    }
    return n;
  }

  std::string root_, dir_;
  std::unique_ptr<Journal> j_;
};

// An image in memory as an Import() reader (img must outlive the call).
inline Journal::ReadFn ReaderOf(const std::string& img) {
  return [&img](uint64_t off, char* buf, size_t len) {
    EXPECT_LE(off + len, img.size());
    std::memcpy(buf, img.data() + off, len);
    return Status::Ok();
  };
}

}  // namespace tidemark::journal::testing_util
