// The tap's backing file or device: plain positioned I/O for reads, zeroing
// and sync (the writer thread batches its writes through io_uring itself).
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "tidemark/capture/tap.h"

namespace tidemark::capture {

Result<std::unique_ptr<Backing>> Backing::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("volume " + path + " does not exist");
    return Status::FromErrno(errno, "cannot open volume " + path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Status::FromErrno(errno, "stat " + path);
    ::close(fd);
    return s;
  }
  uint64_t size = 0;
  bool device = S_ISBLK(st.st_mode);
  if (device) {
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) {
      Status s = Status::FromErrno(errno, "size of " + path);
      ::close(fd);
      return s;
    }
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else {
    ::close(fd);
    return Status::InvalidArgument("volume " + path + " is not a file or a block device");
  }
  if (size == 0 || size % 512) {
    ::close(fd);
    return Status::InvalidArgument("volume " + path + " is " + std::to_string(size) +
                                   " bytes: not a positive multiple of 512");
  }
  return std::unique_ptr<Backing>(new Backing(path, fd, size, device));
}

Backing::~Backing() { ::close(fd_); }

Status Backing::Read(uint64_t offset, char* out, size_t len) const {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd_, out + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read " + path_);
    if (n == 0) {  // past the end of a file that shrank: zeros
      std::memset(out + done, 0, len - done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status Backing::Write(uint64_t offset, std::string_view data) const {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "write " + path_);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status Backing::Zero(uint64_t offset, uint64_t len, bool allocate) const {
  if (block_device_) {
    uint64_t range[2] = {offset, len};
    if (::ioctl(fd_, BLKZEROOUT, range) == 0) return Status::Ok();
  } else {
    int mode = allocate ? FALLOC_FL_ZERO_RANGE : (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
    if (::fallocate(fd_, mode, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0) {
      return Status::Ok();
    }
    if (errno != EOPNOTSUPP && errno != ENOSYS) return Status::FromErrno(errno, "zero " + path_);
  }
  // No way to zero a range in place: write zeros.
  static const std::string kZeros(1 << 20, '\0');
  for (uint64_t done = 0; done < len;) {
    uint64_t n = std::min<uint64_t>(kZeros.size(), len - done);
    TM_RETURN_IF_ERROR(Write(offset + done, std::string_view(kZeros).substr(0, n)));
    done += n;
  }
  return Status::Ok();
}

Status Backing::Sync() const {
  if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, "sync " + path_);
  return Status::Ok();
}

void Backing::DropCache() const {
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED);  // advisory: nothing to do on failure
}

Status Backing::Allocation(uint64_t offset, uint32_t len,
                           std::vector<nbd::AllocationExtent>* out) const {
  const uint64_t end = offset + len;
  if (block_device_) {
    out->push_back({len, false, false});
    return Status::Ok();
  }
  uint64_t pos = offset;
  while (pos < end) {
    off_t data = ::lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0 && errno != ENXIO) {
      out->push_back({static_cast<uint32_t>(end - pos), false, false});  // unknown: data
      return Status::Ok();
    }
    uint64_t data_at = data < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(data), end);
    if (data_at > pos) {
      out->push_back({static_cast<uint32_t>(data_at - pos), true, true});
      pos = data_at;
      continue;
    }
    off_t hole = ::lseek(fd_, static_cast<off_t>(pos), SEEK_HOLE);
    uint64_t hole_at = hole < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(hole), end);
    if (hole_at <= pos) hole_at = end;
    out->push_back({static_cast<uint32_t>(hole_at - pos), false, false});
    pos = hole_at;
  }
  return Status::Ok();
}

}  // namespace tidemark::capture
