// See docs/format-tap-state.md#dirty-bitmap.
//
// File: a 4096-byte page holding the header (magic "TMDB", version 1, block
// size, volume size, CRC32C of the first 28 bytes), then one bit per block,
// block b being bit b % 8 of byte b / 8. Pages of bits are rewritten when
// they change; the file is synced when a bit was set (clearing is lazy: a
// stale bit only costs a resend).
#include "tidemark/capture/dirty_bitmap.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tidemark/journal/crc32c.h"

namespace tidemark::capture {

namespace {

constexpr size_t kPage = 4096;
constexpr uint32_t kVersion = 1;

void Put(std::string* s, size_t off, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) (*s)[off + i] = static_cast<char>(v >> (8 * i));
}
uint64_t Get(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string Header(uint64_t volume_bytes, uint32_t block_bytes) {
  std::string h(kPage, '\0');
  std::memcpy(h.data(), "TMDB", 4);
  Put(&h, 4, kVersion, 4);
  Put(&h, 8, block_bytes, 8);
  Put(&h, 16, volume_bytes, 8);
  Put(&h, 28, Crc32c(std::string_view(h.data(), 28)), 4);
  return h;
}

}  // namespace

Result<std::unique_ptr<DirtyBitmap>> DirtyBitmap::Open(const std::string& path,
                                                       uint64_t volume_bytes,
                                                       uint32_t block_bytes) {
  std::unique_ptr<DirtyBitmap> b(new DirtyBitmap());
  b->path_ = path;
  b->volume_bytes_ = volume_bytes;
  b->block_bytes_ = block_bytes;
  b->blocks_ = (volume_bytes + block_bytes - 1) / block_bytes;
  b->bits_.assign((b->blocks_ + 7) / 8, 0);
  b->page_changed_.assign((b->bits_.size() + kPage - 1) / kPage, false);
  b->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (b->fd_ < 0) return Status::IOError("cannot open " + path + ": " + std::strerror(errno));
  std::string header(kPage, '\0');
  ssize_t n = ::pread(b->fd_, header.data(), kPage, 0);
  if (n == 0) {
    std::string h = Header(volume_bytes, block_bytes);
    if (::pwrite(b->fd_, h.data(), h.size(), 0) != static_cast<ssize_t>(h.size()) ||
        ::ftruncate(b->fd_, static_cast<off_t>(kPage + b->bits_.size())) != 0 ||
        ::fdatasync(b->fd_) != 0) {
      return Status::IOError("cannot write " + path + ": " + std::strerror(errno));
    }
    return b;
  }
  if (n != static_cast<ssize_t>(kPage) || std::memcmp(header.data(), "TMDB", 4) != 0 ||
      Get(header.data() + 28, 4) != Crc32c(std::string_view(header.data(), 28))) {
    return Status::Corruption("dirty bitmap " + path + " is damaged");
  }
  if (Get(header.data() + 8, 8) != block_bytes || Get(header.data() + 16, 8) != volume_bytes) {
    return Status::InvalidArgument("dirty bitmap " + path + " is for another volume geometry");
  }
  n = ::pread(b->fd_, b->bits_.data(), b->bits_.size(), kPage);
  if (n != static_cast<ssize_t>(b->bits_.size())) {
    return Status::Corruption("dirty bitmap " + path + " is truncated");
  }
  for (uint8_t byte : b->bits_) b->dirty_blocks_ += static_cast<uint64_t>(__builtin_popcount(byte));
  return b;
}

DirtyBitmap::~DirtyBitmap() {
  if (fd_ >= 0) ::close(fd_);
}

void DirtyBitmap::SetBit(uint64_t block, bool dirty) {
  uint8_t& byte = bits_[block / 8];
  const uint8_t mask = static_cast<uint8_t>(1u << (block % 8));
  if (static_cast<bool>(byte & mask) == dirty) return;
  byte = dirty ? (byte | mask) : static_cast<uint8_t>(byte & ~mask);
  dirty_blocks_ += dirty ? 1 : -1;
  page_changed_[block / 8 / kPage] = true;
  added_ |= dirty;
}

void DirtyBitmap::Mark(uint64_t offset_bytes, uint64_t length_bytes) {
  if (length_bytes == 0) return;
  const uint64_t last = std::min(blocks_ - 1, (offset_bytes + length_bytes - 1) / block_bytes_);
  for (uint64_t b = offset_bytes / block_bytes_; b <= last; ++b) SetBit(b, true);
  if (offset_bytes / block_bytes_ < scan_from_) scan_from_ = offset_bytes / block_bytes_;
}

Status DirtyBitmap::Persist() {
  for (size_t p = 0; p < page_changed_.size(); ++p) {
    if (!page_changed_[p]) continue;
    size_t len = std::min(kPage, bits_.size() - p * kPage);
    if (::pwrite(fd_, bits_.data() + p * kPage, len, static_cast<off_t>(kPage + p * kPage)) !=
        static_cast<ssize_t>(len)) {
      return Status::IOError("cannot write " + path_ + ": " + std::strerror(errno));
    }
    page_changed_[p] = false;
  }
  if (added_ && ::fdatasync(fd_) != 0) {
    return Status::IOError("cannot sync " + path_ + ": " + std::strerror(errno));
  }
  added_ = false;
  return Status::Ok();
}

std::vector<Extent> DirtyBitmap::TakeRuns(uint64_t max_bytes, size_t max_runs) {
  std::vector<Extent> runs;
  const uint64_t max_blocks = std::max<uint64_t>(1, max_bytes / block_bytes_);
  for (uint64_t b = scan_from_; b < blocks_ && runs.size() < max_runs && dirty_blocks_ > 0;) {
    if (bits_[b / 8] == 0 && b % 8 == 0) {  // skip clean bytes quickly
      b += 8;
      continue;
    }
    if (!(bits_[b / 8] & (1u << (b % 8)))) {
      ++b;
      continue;
    }
    uint64_t start = b, n = 0;
    while (b < blocks_ && n < max_blocks && (bits_[b / 8] & (1u << (b % 8)))) {
      SetBit(b, false);
      ++b;
      ++n;
    }
    uint64_t off = start * block_bytes_;
    runs.push_back({off, std::min<uint64_t>(n * block_bytes_, volume_bytes_ - off)});
    scan_from_ = b;
  }
  if (dirty_blocks_ > 0 && runs.size() < max_runs) scan_from_ = 0;  // wrap: bits behind us
  return runs;
}

}  // namespace tidemark::capture
