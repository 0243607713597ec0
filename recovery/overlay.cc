#include "overlay.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace tidemark::recovery {

namespace {

Status PreadFull(int fd, char* out, uint64_t length, uint64_t offset) {
  while (length > 0) {
    ssize_t n = ::pread(fd, out, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read the overlay");
    if (n == 0) {  // inside the file's size a hole reads as zeros; past it, never
      std::fill(out, out + length, '\0');
      return Status::Ok();
    }
    out += n;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status PwriteFull(int fd, const char* data, uint64_t length, uint64_t offset) {
  while (length > 0) {
    ssize_t n = ::pwrite(fd, data, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "write the overlay");
    data += n;
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// An unlinked file in dir: O_TMPFILE, else mkstemp and unlink.
Result<int> TempFile(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string path = dir + "/tidemark-overlay-XXXXXX";
  fd = ::mkostemp(path.data(), O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot create an overlay in " + dir + ": " + strerror(errno));
  ::unlink(path.c_str());
  return fd;
}

}  // namespace

Result<std::unique_ptr<Overlay>> Overlay::Create(const std::string& dir, uint64_t size_bytes,
                                                 uint32_t chunk_bytes) {
  if (chunk_bytes < 4096 || (chunk_bytes & (chunk_bytes - 1)) != 0) {
    return Status::InvalidArgument("overlay granularity " + std::to_string(chunk_bytes) +
                                   " is not a power of two of 4096 or more");
  }
  std::string where = dir;
  if (where.empty()) {
    const char* t = std::getenv("TMPDIR");
    where = t && *t ? t : "/tmp";
  }
  BOOST_OUTCOME_TRY(fd, TempFile(where));
  if (::ftruncate(fd, static_cast<off_t>(size_bytes)) != 0) {
    Status s = Status::IOError("cannot size the overlay in " + where + ": " + strerror(errno));
    ::close(fd);
    return s;
  }
  return std::unique_ptr<Overlay>(new Overlay(fd, size_bytes, chunk_bytes));
}

Overlay::Overlay(int fd, uint64_t size_bytes, uint32_t chunk_bytes)
    : fd_(fd),
      size_bytes_(size_bytes),
      chunk_bytes_(chunk_bytes),
      bits_((size_bytes / chunk_bytes + 1 + 63) / 64, 0) {}

Overlay::~Overlay() { ::close(fd_); }

void Overlay::Set(uint64_t chunk) {
  uint64_t& word = bits_[chunk / 64];
  const uint64_t bit = uint64_t{1} << (chunk % 64);
  if (!(word & bit)) {
    word |= bit;
    ++chunks_;
  }
}

std::vector<Overlay::Run> Overlay::RunsLocked(uint64_t offset, uint64_t length) const {
  std::vector<Run> runs;
  const uint64_t end = offset + length;
  for (uint64_t pos = offset; pos < end;) {
    const uint64_t chunk = pos / chunk_bytes_;
    const uint64_t next = std::min(end, (chunk + 1) * chunk_bytes_);
    const bool in = Has(chunk);
    if (!runs.empty() && runs.back().in_overlay == in) {
      runs.back().length += next - pos;
    } else {
      runs.push_back({pos, next - pos, in});
    }
    pos = next;
  }
  return runs;
}

std::vector<Overlay::Run> Overlay::Runs(uint64_t offset, uint64_t length) const {
  std::shared_lock lock(mu_);
  return RunsLocked(offset, length);
}

Status Overlay::Read(uint64_t offset, uint64_t length, char* out, const BaseReadFn& base) const {
  std::shared_lock lock(mu_);
  for (const Run& r : RunsLocked(offset, length)) {
    char* dst = out + (r.offset - offset);
    TM_RETURN_IF_ERROR(r.in_overlay ? PreadFull(fd_, dst, r.length, r.offset)
                                    : base(r.offset, r.length, dst));
  }
  return Status::Ok();
}

Status Overlay::CopyUpEdges(uint64_t offset, uint64_t length, const BaseReadFn& base) {
  const uint64_t end = offset + length;
  const uint64_t first = offset / chunk_bytes_, last = (end - 1) / chunk_bytes_;
  std::string buf;
  for (uint64_t chunk : {first, last}) {
    if (Has(chunk)) continue;
    const uint64_t c_begin = chunk * chunk_bytes_;
    const uint64_t c_end = std::min(size_bytes_, c_begin + chunk_bytes_);
    if (offset <= c_begin && end >= c_end) continue;  // covered whole: no copy needed
    buf.resize(c_end - c_begin);
    TM_RETURN_IF_ERROR(base(c_begin, buf.size(), buf.data()));
    TM_RETURN_IF_ERROR(PwriteFull(fd_, buf.data(), buf.size(), c_begin));
    Set(chunk);
  }
  return Status::Ok();
}

Status Overlay::Write(uint64_t offset, std::string_view data, const BaseReadFn& base) {
  if (data.empty()) return Status::Ok();
  std::unique_lock lock(mu_);
  TM_RETURN_IF_ERROR(CopyUpEdges(offset, data.size(), base));
  TM_RETURN_IF_ERROR(PwriteFull(fd_, data.data(), data.size(), offset));
  for (uint64_t c = offset / chunk_bytes_; c <= (offset + data.size() - 1) / chunk_bytes_; ++c) {
    Set(c);
  }
  return Status::Ok();
}

Status Overlay::PunchOrZero(uint64_t offset, uint64_t length) {
  if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0) {
    return Status::Ok();
  }
  if (errno != EOPNOTSUPP && errno != ENOSYS) return Status::FromErrno(errno, "zero the overlay");
  const std::string zeros(std::min<uint64_t>(length, 1 << 20), '\0');
  for (uint64_t done = 0; done < length;) {
    uint64_t n = std::min<uint64_t>(zeros.size(), length - done);
    TM_RETURN_IF_ERROR(PwriteFull(fd_, zeros.data(), n, offset + done));
    done += n;
  }
  return Status::Ok();
}

Status Overlay::Zero(uint64_t offset, uint64_t length, const BaseReadFn& base) {
  if (length == 0) return Status::Ok();
  std::unique_lock lock(mu_);
  TM_RETURN_IF_ERROR(CopyUpEdges(offset, length, base));
  TM_RETURN_IF_ERROR(PunchOrZero(offset, length));
  for (uint64_t c = offset / chunk_bytes_; c <= (offset + length - 1) / chunk_bytes_; ++c) Set(c);
  return Status::Ok();
}

}  // namespace tidemark::recovery
