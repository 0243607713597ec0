// Private: fixed-width integer encoding for format.cc. Big-endian for keys
// (bytewise order = numeric order), little-endian for value payloads.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace tidemark::journal::coding {

inline void PutBE(std::string* s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline void PutLE(std::string* s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline uint64_t GetBE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t GetLE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Reads a little-endian payload front to back; any short read sets failed().
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint64_t LE(int bytes) {
    if (in_.size() < static_cast<size_t>(bytes)) {
      failed_ = true;
      return 0;
    }
    uint64_t v = GetLE(in_.data(), bytes);
    in_.remove_prefix(bytes);
    return v;
  }
  std::string_view Bytes(size_t n) {
    if (in_.size() < n) {
      failed_ = true;
      return {};
    }
    std::string_view v = in_.substr(0, n);
    in_.remove_prefix(n);
    return v;
  }
  bool failed() const { return failed_; }
  // True when everything was read and nothing is left over.
  bool done() const { return !failed_ && in_.empty(); }
  size_t left() const { return in_.size(); }

 private:
  std::string_view in_;
  bool failed_ = false;
};

}  // namespace tidemark::journal::coding
