// Private to journal/'s wire tests: status matchers, byte builders and the
// fixed messages of the golden stream (wire_test.cc, wire_messages_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/crc32c.h"
#include "tidemark/journal/wire.h"

namespace tidemark::wire::testing_util {

template <class T>
Status StatusOf(const Result<T>& r) {
  return r ? Status::Ok() : r.error();
}

template <class T>
::testing::AssertionResult IsCorruption(const Result<T>& r, std::string_view want_in_message = {}) {
  Status s = StatusOf(r);
  if (s.code() == Code::kCorruption && s.message().find(want_in_message) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "gave '" << s.ToString() << "', want corruption with '" << want_in_message << "'";
}

inline std::string LE(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// Recomputes a frame's CRC trailer after a test edited it, so that the check
// under test, not the CRC, is what refuses it.
inline std::string Reseal(std::string frame) {
  uint32_t crc = Crc32c(frame.data(), frame.size() - kFrameTrailerBytes);
  frame.replace(frame.size() - kFrameTrailerBytes, kFrameTrailerBytes, LE(crc, 4));
  return frame;
}

inline std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 31 + i / 7 + seed) & 0xff);
  return s;
}

inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// ---- the golden stream -----------------------------------------------------

inline constexpr TimeNs kT = 1795428899123456789;  // 2026-11-23T10:14:59.123456789Z

inline Hello FixedHello() {
  return Hello{
      1,     "acme",     "s3cret-token",
      "vm1", "tap-7f3a", {{"vm1-disk0", 1ull << 30, 4096}, {"vm1-disk1", 1ull << 29, 4096}}};
}
inline Welcome FixedWelcome() {
  return Welcome{1, 41, {{"vm1-disk0", "ready", 1ull << 30}, {"vm1-disk1", "importing", 1 << 20}}, {}};
}
inline std::string_view ImportData() {
  static const std::string data = Pattern(512, 3);
  return data;
}
inline ImportChunk FixedImport() { return ImportChunk{1, 1 << 20, ImportData()}; }
inline ImportDone FixedImportDone() { return ImportDone{1, kT - 1000}; }
inline std::string_view WriteData() {
  static const std::string data = Pattern(1024, 0);
  return data;
}
inline std::vector<WriteEntry> FixedWrites() {
  return {
      {42, kT, 0, EntryOp::kWrite, kSeqFua, 8192, 1024, WriteData()},
      {43, kT + 1, 1, EntryOp::kTrim, 0, 1 << 20, 64 << 10, {}},
      {43, kT + 2, 0, EntryOp::kFlush, 0, 0, 0, {}},
  };
}
inline Bookmark FixedBookmark() { return Bookmark{"before-upgrade", 43, kT + 5}; }
inline BookmarkDone FixedBookmarkDone() { return BookmarkDone{"before-upgrade", 43, kT + 5}; }
inline Unordered FixedUnordered(bool begin) {
  return begin ? Unordered{true, 43, kT + 9} : Unordered{false, 57, kT + 20};
}
inline Error FixedError() { return Error{std::string(kErrNoSpace), "tenant acme is over its quota"}; }

inline std::string WritesPayload(const std::vector<WriteEntry>& entries) {
  WritesEncoder enc;
  for (const WriteEntry& e : entries) enc.Add(e);
  return enc.Finish();
}

}  // namespace tidemark::wire::testing_util
