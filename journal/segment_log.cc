// The append-only segment log of one seq space (docs/format-journal.md);
// the record encoding is segment.cc's.
#include "tidemark/journal/segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "coding.h"
#include "tidemark/journal/files.h"
#include "tidemark/journal/crc32c.h"

namespace tidemark::journal::seg {

namespace {

std::string Hex(uint64_t v, int digits) {
  static const char* hex = "0123456789abcdef";
  std::string s(digits, '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[i] = hex[v & 15];
  return s;
}

// The CRC a record header carries: of its bytes 0..23 and of `covered`.
Status PreadAll(int fd, char* out, size_t n, uint64_t offset, size_t* got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = ::pread(fd, out + *got, n - *got, static_cast<off_t>(offset + *got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read");
    }
    if (r == 0) break;
    *got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status PwriteAll(int fd, const char* p, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace

// ---- SegmentLog --------------------------------------------------------------

SegmentLog::~SegmentLog() {
  if (fd_ >= 0) {
    Flush().IgnoreError();  // best effort: the journal flushed what it committed
    ::close(fd_);
  }
  for (int fd : unsynced_) ::close(fd);
  for (auto& [n, fd] : read_fds_) ::close(fd);
}

Result<std::unique_ptr<SegmentLog>> SegmentLog::Open(const std::string& journal_dir,
                                                     uint32_t space,
                                                     const std::array<uint8_t, 16>& uuid,
                                                     const LogOptions& options, bool create) {
  std::unique_ptr<SegmentLog> log(new SegmentLog());
  log->dir_ = journal_dir + "/segments/" + Hex(space, 8);
  log->space_ = space;
  log->uuid_ = uuid;
  log->options_ = options;
  std::error_code ec;
  if (create) {
    std::filesystem::create_directories(log->dir_, ec);
    if (ec) return Status::FromErrno(ec.value(), "create " + log->dir_);
  } else if (!std::filesystem::is_directory(log->dir_, ec)) {
    return Status::NotFound("no segments at " + log->dir_);
  }
  return log;
}

std::string SegmentLog::SegmentPath(uint64_t segment) const {
  return dir_ + "/" + Hex(segment, 16) + ".seg";
}

std::vector<uint64_t> SegmentLog::Segments() const {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != 20 || !name.ends_with(".seg")) continue;
    uint64_t v = 0;
    bool ok = true;
    for (char ch : name.substr(0, 16)) {
      int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
      if (d < 0) ok = false;
      v = (v << 4) | static_cast<uint64_t>(d < 0 ? 0 : d);
    }
    if (ok) out.push_back(v);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<int> SegmentLog::ReadFd(uint64_t segment) const {
  std::lock_guard lock(read_mu_);
  auto it = read_fds_.find(segment);
  if (it != read_fds_.end()) return it->second;
  const std::string path = SegmentPath(segment);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("segment file " + path + " is missing");
    return Status::FromErrno(errno, "open " + path);
  }
  read_fds_[segment] = fd;
  return fd;
}

Status SegmentLog::Read(uint64_t segment, uint64_t offset, size_t n, char* out) const {
  BOOST_OUTCOME_TRY(fd, ReadFd(segment));
  size_t got = 0;
  Status s = PreadAll(fd, out, n, offset, &got);
  if (!s.ok()) return s.Annotate(SegmentPath(segment));
  if (got != n) {
    return Status::Corruption(SegmentPath(segment) + ": " + std::to_string(n) + " bytes at " +
                              std::to_string(offset) + " lie past its end");
  }
  return Status::Ok();
}

Result<ScanEnd> SegmentLog::Scan(const Location& from, bool check_chunks,
                                 const RecordFn& fn) const {
  std::vector<uint64_t> segs = Segments();
  ScanEnd end;
  auto first = std::lower_bound(segs.begin(), segs.end(), std::max<uint64_t>(from.segment, 1));
  if (first == segs.end()) {
    end.end = from.segment == 0 ? Location{} : from;
    if (from.segment != 0 && from.offset > 0) {
      end.torn = true;
      end.reason = "segment file " + SegmentPath(from.segment) + " is missing";
      end.file = SegmentPath(from.segment);
    }
    return end;
  }
  std::string buf;
  Location at = from;
  bool have_prev = false;
  for (auto it = first; it != segs.end(); ++it) {
    const uint64_t n = *it;
    const std::string path = SegmentPath(n);
    if (have_prev && n != at.segment + 1) {
      end.torn = true;
      end.reason = "segment " + std::to_string(at.segment + 1) + " is missing before " + path;
      end.file = path;
      return end;
    }
    if (!have_prev && from.segment != 0 && n != from.segment) {
      end.end = from;
      end.torn = true;
      end.reason = "segment file " + SegmentPath(from.segment) + " is missing";
      end.file = SegmentPath(from.segment);
      return end;
    }
    BOOST_OUTCOME_TRY(fd, ReadFd(n));
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat " + path);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    char hdr[kSegmentHeaderBytes];
    size_t got = 0;
    TM_RETURN_IF_ERROR(PreadAll(fd, hdr, sizeof hdr, 0, &got));
    auto sh = DecodeSegmentHeader(std::string_view(hdr, got));
    std::string bad;
    if (!sh) {
      bad = sh.error().message();
    } else if (sh.value().uuid != uuid_) {
      bad = "a segment of another journal";
    } else if (sh.value().space != space_ || sh.value().number != n) {
      bad = "segment header names space " + std::to_string(sh.value().space) + " segment " +
            std::to_string(sh.value().number);
    }
    if (!bad.empty()) {
      if (!have_prev) end.end = Location{n, 0};
      end.torn = true;
      end.reason = bad;
      end.file = path;
      return end;
    }
    uint64_t pos = have_prev || n != from.segment || from.offset < kSegmentHeaderBytes
                       ? kSegmentHeaderBytes
                       : from.offset;
    at = {n, pos};
    end.end = at;
    have_prev = true;
    while (pos < size) {
      char rh[kRecordHeaderBytes];
      TM_RETURN_IF_ERROR(PreadAll(fd, rh, sizeof rh, pos, &got));
      auto h = DecodeRecordHeader(std::string_view(rh, got));
      std::string why;
      if (got < kRecordHeaderBytes) {
        why = "a torn record header";
      } else if (!h) {
        why = h.error().message();
      } else if (pos + h.value().total() > size) {
        why = "a record cut short by the end of the file";
      }
      std::optional<Record> rec;
      if (why.empty()) {
        const size_t body = kRecordHeaderBytes + h.value().length;
        buf.resize(body);
        TM_RETURN_IF_ERROR(PreadAll(fd, buf.data(), body, pos, &got));
        auto r = DecodeRecord(std::string_view(buf.data(), got));
        if (r) {
          rec = std::move(r.value());
        } else {
          why = r.error().message();
        }
      }
      if (why.empty() && check_chunks) {
        for (const ChunkDesc& c : rec->chunks) {
          Status cs = VerifyChunk(c, std::string_view(buf).substr(c.payload_offset, c.stored_len));
          if (!cs.ok()) {
            why = cs.message();
            break;
          }
        }
      }
      if (!why.empty()) {
        end.torn = true;
        end.reason = why + " at offset " + std::to_string(pos);
        end.file = path;
        return end;
      }
      TM_RETURN_IF_ERROR(fn(Location{n, pos}, *rec));
      pos += h.value().total();
      end.end = {n, pos};
    }
    at = {n, pos};
  }
  return end;
}

Status SegmentLog::OpenSegment(uint64_t number, Seq first_seq, TimeNs now_ns) {
  const std::string path = SegmentPath(number);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "create " + path);
  SegmentHeader h;
  h.space = space_;
  h.uuid = uuid_;
  h.number = number;
  h.first_seq = first_seq;
  h.created_ns = now_ns;
  const std::string bytes = EncodeSegmentHeader(h);
  Status s = PwriteAll(fd, bytes.data(), bytes.size(), 0, path);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  fd_ = fd;
  current_ = number;
  size_ = written_ = writeback_ = bytes.size();
  buf_.clear();
  dir_dirty_ = true;
  return Status::Ok();
}

Status SegmentLog::StartAppend(const Location& at, Seq next_seq, TimeNs now_ns) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  buf_.clear();
  for (uint64_t n : Segments()) {
    if (n <= at.segment) continue;
    {
      std::lock_guard lock(read_mu_);
      auto it = read_fds_.find(n);
      if (it != read_fds_.end()) {
        ::close(it->second);
        read_fds_.erase(it);
      }
    }
    if (::unlink(SegmentPath(n).c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "remove " + SegmentPath(n));
    }
    dir_dirty_ = true;
  }
  appending_ = true;
  if (at.segment == 0 || at.offset < kSegmentHeaderBytes) {
    return OpenSegment(std::max<uint64_t>(at.segment, 1), next_seq, now_ns);
  }
  const std::string path = SegmentPath(at.segment);
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  if (::ftruncate(fd, static_cast<off_t>(at.offset)) != 0) {
    Status s = Status::FromErrno(errno, "truncate " + path);
    ::close(fd);
    return s;
  }
  fd_ = fd;
  current_ = at.segment;
  size_ = written_ = writeback_ = at.offset;
  buf_.clear();
  unsynced_.push_back(::dup(fd));  // the truncation is made durable by the next Sync
  return Status::Ok();
}

Result<Location> SegmentLog::Append(std::string_view records, Seq first_seq, TimeNs now_ns) {
  if (!appending_ || fd_ < 0) return Status::InvalidArgument("segment log is not appending");
  if (size_ > kSegmentHeaderBytes && size_ + records.size() > options_.segment_bytes) {
    TM_RETURN_IF_ERROR(Flush());
    unsynced_.push_back(fd_);  // sealed: synced (and closed) by the next Sync
    fd_ = -1;
    TM_RETURN_IF_ERROR(OpenSegment(current_ + 1, first_seq, now_ns));
  }
  const Location at{current_, size_};
  constexpr size_t kGatherBytes = 1 << 20;   // write what was gathered past this
  constexpr size_t kDirectBytes = 256 << 10;  // a record this long is written at once
  if (records.size() >= kDirectBytes) {
    TM_RETURN_IF_ERROR(Flush());
    TM_RETURN_IF_ERROR(
        PwriteAll(fd_, records.data(), records.size(), written_, SegmentPath(current_)));
    written_ += records.size();
    StartWriteback();
  } else {
    buf_.append(records);
  }
  size_ += records.size();
  appended_ += records.size();
  if (buf_.size() >= kGatherBytes) TM_RETURN_IF_ERROR(Flush());
  return at;
}

Status SegmentLog::Flush() {
  if (buf_.empty()) return Status::Ok();
  if (fd_ < 0) return Status::InvalidArgument("segment log is not appending");
  TM_RETURN_IF_ERROR(PwriteAll(fd_, buf_.data(), buf_.size(), written_, SegmentPath(current_)));
  written_ += buf_.size();
  buf_.clear();
  StartWriteback();
  return Status::Ok();
}

void SegmentLog::StartWriteback() {
  constexpr uint64_t kWritebackBytes = 8 << 20;
  if (written_ - writeback_ < kWritebackBytes) return;
  // Advisory: a failure here shows at the next fdatasync.
  (void)::sync_file_range(fd_, static_cast<off64_t>(writeback_),
                          static_cast<off64_t>(written_ - writeback_), SYNC_FILE_RANGE_WRITE);
  writeback_ = written_;
}

Status SegmentLog::Sync() {
  TM_RETURN_IF_ERROR(Flush());
  for (int fd : unsynced_) {
    if (fd >= 0 && ::fdatasync(fd) != 0) return Status::FromErrno(errno, "sync " + dir_);
    if (fd >= 0) ::close(fd);
  }
  unsynced_.clear();
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) {
    return Status::FromErrno(errno, "sync " + SegmentPath(current_));
  }
  if (dir_dirty_) {
    TM_RETURN_IF_ERROR(SyncDirectory(dir_));
    dir_dirty_ = false;
  }
  return Status::Ok();
}

}  // namespace tidemark::journal::seg
