// See docs/format-tap-state.md#activity-log.
//
// File: a 32-byte header (magic "TMAL", version 1, extent size, volume size,
// CRC32C of the header's first 28 bytes) then one bit per extent, rewritten
// whole (a 1 TiB volume in 4 MiB extents is 32 KiB) and fdatasync'ed when
// a mark is added. A torn rewrite can only mix old and new marks: both are
// conservative, since a mark is added before the write it covers.
#include "tidemark/capture/activity_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tidemark/journal/crc32c.h"

namespace tidemark::capture {

namespace {

constexpr char kMagic[4] = {'T', 'M', 'A', 'L'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 32;

void Put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void Put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<ActivityLog>> ActivityLog::Open(const std::string& path,
                                                       uint64_t volume_bytes,
                                                       uint64_t extent_bytes) {
  if (extent_bytes == 0 || volume_bytes == 0) {
    return Status::InvalidArgument("activity log: empty volume or extent");
  }
  std::unique_ptr<ActivityLog> log(new ActivityLog());
  log->path_ = path;
  log->volume_bytes_ = volume_bytes;
  log->extent_bytes_ = extent_bytes;
  const uint64_t extents = (volume_bytes + extent_bytes - 1) / extent_bytes;
  log->inflight_.assign(extents, 0);
  log->on_disk_.assign((extents + 7) / 8, 0);
  log->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (log->fd_ < 0) return Errno("cannot open activity log", path);
  std::string file(kHeaderBytes + log->on_disk_.size(), '\0');
  ssize_t n = ::pread(log->fd_, file.data(), file.size(), 0);
  if (n < 0) return Errno("cannot read activity log", path);
  if (n == 0) {
    TM_RETURN_IF_ERROR(log->WriteBitmap(true));
    return log;
  }
  if (static_cast<size_t>(n) != file.size() || std::memcmp(file.data(), kMagic, 4) != 0 ||
      Get32(file.data() + 28) != Crc32c(std::string_view(file.data(), 28))) {
    return Status::Corruption("activity log " + path + " is damaged");
  }
  if (Get32(file.data() + 4) != kVersion || Get64(file.data() + 8) != extent_bytes ||
      Get64(file.data() + 16) != volume_bytes) {
    return Status::InvalidArgument("activity log " + path + " is for another volume geometry");
  }
  std::memcpy(log->on_disk_.data(), file.data() + kHeaderBytes, log->on_disk_.size());
  for (uint64_t e = 0; e < extents; ++e) {
    if (!(log->on_disk_[e / 8] & (1u << (e % 8)))) continue;
    uint64_t off = e * extent_bytes;
    uint64_t len = std::min(extent_bytes, volume_bytes - off);
    if (!log->recovered_.empty() && log->recovered_.back().end_bytes() == off) {
      log->recovered_.back().length_bytes += len;
    } else {
      log->recovered_.push_back({off, len});
    }
  }
  return log;
}

ActivityLog::~ActivityLog() {
  if (fd_ >= 0) ::close(fd_);
}

void ActivityLog::Begin(uint64_t offset_bytes, uint64_t length_bytes) {
  if (length_bytes == 0) return;
  const uint64_t last = (offset_bytes + length_bytes - 1) / extent_bytes_;
  for (uint64_t e = offset_bytes / extent_bytes_; e <= last && e < inflight_.size(); ++e) {
    if (inflight_[e]++ == 0) touched_.push_back(e);
  }
}

void ActivityLog::End(uint64_t offset_bytes, uint64_t length_bytes) {
  if (length_bytes == 0) return;
  const uint64_t last = (offset_bytes + length_bytes - 1) / extent_bytes_;
  for (uint64_t e = offset_bytes / extent_bytes_; e <= last && e < inflight_.size(); ++e) {
    if (inflight_[e] > 0 && --inflight_[e] == 0) touched_.push_back(e);
  }
}

void ActivityLog::EndAll() {
  for (uint64_t e = 0; e < inflight_.size(); ++e) {
    if (inflight_[e] > 0) {
      inflight_[e] = 0;
      touched_.push_back(e);
    }
  }
}

Status ActivityLog::Persist() {
  bool added = false, changed = false;
  std::vector<uint64_t> touched;
  touched.swap(touched_);
  for (uint64_t e : touched) {
    bool want = inflight_[e] > 0;
    bool have = on_disk_[e / 8] & (1u << (e % 8));
    // Recovered marks stay until ClearAll(): their extents are not resent yet.
    if (!want && have && !recovered_.empty()) continue;
    if (want == have) continue;
    changed = true;
    added |= want;
    if (want) {
      on_disk_[e / 8] |= static_cast<uint8_t>(1u << (e % 8));
    } else {
      on_disk_[e / 8] &= static_cast<uint8_t>(~(1u << (e % 8)));
    }
  }
  if (!changed) return Status::Ok();
  return WriteBitmap(added);
}

Status ActivityLog::ClearAll() {
  recovered_.clear();
  for (uint64_t e = 0; e < inflight_.size(); ++e) {
    if (inflight_[e] == 0) on_disk_[e / 8] &= static_cast<uint8_t>(~(1u << (e % 8)));
  }
  return WriteBitmap(true);
}

uint64_t ActivityLog::marked_extents() const {
  uint64_t n = 0;
  for (uint8_t b : on_disk_) n += static_cast<uint64_t>(__builtin_popcount(b));
  return n;
}

Status ActivityLog::WriteBitmap(bool sync) {
  std::string file(kHeaderBytes, '\0');
  std::memcpy(file.data(), kMagic, 4);
  Put32(file.data() + 4, kVersion);
  Put64(file.data() + 8, extent_bytes_);
  Put64(file.data() + 16, volume_bytes_);
  Put32(file.data() + 24, 0);
  Put32(file.data() + 28, Crc32c(std::string_view(file.data(), 28)));
  file.append(reinterpret_cast<const char*>(on_disk_.data()), on_disk_.size());
  ssize_t n = ::pwrite(fd_, file.data(), file.size(), 0);
  if (n != static_cast<ssize_t>(file.size())) return Errno("cannot write activity log", path_);
  if (sync && ::fdatasync(fd_) != 0) return Errno("cannot sync activity log", path_);
  return Status::Ok();
}

}  // namespace tidemark::capture
