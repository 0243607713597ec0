// See docs/format-tap-state.md#spill-segments.
//
// segment := record*
// record  := length:u32 crc32c:u32 kind:u8 body(length - 1)
// kind 0: body = one WRITES entry (wire.h's 32-byte header and data);
// kind 1: body = a bookmark name; kind 2: a refresh (seq:u64 time:i64
// offset:u64 length:u32); kind 3: an UNORDERED marker (begin:u8 seq:u64
// time:i64). The CRC covers kind and body.
#include "tidemark/capture/spill.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "tidemark/journal/crc32c.h"

namespace tidemark::capture {

namespace {

constexpr size_t kRecordHeader = 8;
constexpr size_t kFlushBytes = 1 << 20;

void Put32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

Result<std::unique_ptr<Spill>> Spill::Open(const std::string& dir, uint64_t cap_bytes,
                                           uint64_t segment_bytes) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // an earlier run's: the activity log covers them
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create spill directory " + dir + ": " + ec.message());
  std::unique_ptr<Spill> s(new Spill());
  s->dir_ = dir;
  s->cap_bytes_ = cap_bytes;
  s->segment_bytes_ = segment_bytes;
  return s;
}

Spill::~Spill() {
  if (write_fd_ >= 0) ::close(write_fd_);
  if (read_fd_ >= 0) ::close(read_fd_);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string Spill::SegmentPath(uint64_t n) const {
  char name[32];
  std::snprintf(name, sizeof(name), "/%08llu.seg", static_cast<unsigned long long>(n));
  return dir_ + name;
}

Status Spill::FlushBuffer() {
  if (buffer_.empty()) return Status::Ok();
  if (write_fd_ < 0) {
    write_fd_ = ::open(SegmentPath(write_seg_).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                       0600);
    if (write_fd_ < 0) {
      return Status::IOError("cannot create spill segment: " + std::string(std::strerror(errno)));
    }
  }
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(write_fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = errno == ENOSPC ? Status::NoSpace("spill: the state directory's disk is full")
                                 : Status::IOError("spill write: " + std::string(std::strerror(errno)));
      return s;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
  return Status::Ok();
}

Status Spill::Append(const SpillRecord& r) {
  auto le = [](std::string* s, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
  };
  std::string body(1, r.bookmark ? '\1' : r.refresh ? '\2' : r.unordered != 0 ? '\3' : '\0');
  if (r.bookmark) {
    body += r.name;
  } else if (r.refresh) {
    le(&body, r.entry.seq, 8);
    le(&body, static_cast<uint64_t>(r.entry.time_ns), 8);
    le(&body, r.entry.offset_bytes, 8);
    le(&body, r.entry.length_bytes, 4);
  } else if (r.unordered != 0) {
    le(&body, r.unordered > 0 ? 1 : 0, 1);
    le(&body, r.entry.seq, 8);
    le(&body, static_cast<uint64_t>(r.entry.time_ns), 8);
  } else {
    wire::WriteEntry e = r.entry;
    e.data = r.data;
    wire::AppendWriteEntry(&body, e);
  }
  const uint64_t size = kRecordHeader + body.size();
  if (bytes_ + size > cap_bytes_) return Status::NoSpace("the spill is full");
  if (write_off_ + size > segment_bytes_ && write_off_ > 0) {
    TM_RETURN_IF_ERROR(FlushBuffer());
    if (write_fd_ >= 0) ::close(write_fd_);
    write_fd_ = -1;
    ++write_seg_;
    write_off_ = 0;
  }
  Put32(&buffer_, static_cast<uint32_t>(body.size()));
  Put32(&buffer_, Crc32c(body));
  buffer_ += body;
  write_off_ += size;
  bytes_ += size;
  ++records_;
  if (buffer_.size() >= kFlushBytes) return FlushBuffer();
  return Status::Ok();
}

Status Spill::ReadFront(uint64_t max_bytes, std::vector<SpillRecord>* out) {
  TM_RETURN_IF_ERROR(FlushBuffer());  // the reader may reach the write position
  uint64_t got = 0;
  std::string body;
  while (records_ > 0 && (got == 0 || got < max_bytes)) {
    std::string path = SegmentPath(read_seg_);
    if (read_fd_ < 0) {
      read_fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (read_fd_ < 0) return Status::IOError("cannot open spill segment " + path);
    }
    char header[kRecordHeader];
    ssize_t n = ::pread(read_fd_, header, kRecordHeader, static_cast<off_t>(read_off_));
    if (n == 0 && read_seg_ < write_seg_) {  // this segment is done: the next one
      ::close(read_fd_);
      read_fd_ = -1;
      ::unlink(path.c_str());
      ++read_seg_;
      read_off_ = 0;
      continue;
    }
    if (n != static_cast<ssize_t>(kRecordHeader)) {
      return Status::Corruption("spill segment " + path + " ends inside a record");
    }
    uint32_t len = Get32(header);
    body.resize(len);
    n = ::pread(read_fd_, body.data(), len, static_cast<off_t>(read_off_ + kRecordHeader));
    if (len == 0 || n != static_cast<ssize_t>(len) || Get32(header + 4) != Crc32c(body)) {
      return Status::Corruption("spill segment " + path + " is damaged at byte " +
                                std::to_string(read_off_));
    }
    SpillRecord r;
    auto le = [&](size_t off, int n) {
      uint64_t v = 0;
      for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(body[off + i]);
      return v;
    };
    if (body[0] == '\1') {
      r.bookmark = true;
      r.name.assign(body, 1);
    } else if (body[0] == '\2' && len == 29) {
      r.refresh = true;
      r.entry = {le(1, 8), static_cast<TimeNs>(le(9, 8)), 0, wire::EntryOp::kWrite, 0,
                 le(17, 8), static_cast<uint32_t>(le(25, 4)), {}};
    } else if (body[0] == '\3' && len == 18) {
      r.unordered = le(1, 1) ? 1 : -1;
      r.entry.seq = le(2, 8);
      r.entry.time_ns = static_cast<TimeNs>(le(10, 8));
    } else if (body[0] != '\0') {
      return Status::Corruption("spill segment " + path + ": unknown record kind at byte " +
                                std::to_string(read_off_));
    } else {
      // One entry: decoded as a WRITES payload of count 1.
      std::string payload;
      Put32(&payload, 1);
      payload.append(body, 1);
      BOOST_OUTCOME_TRY(entries, wire::DecodeWrites(payload));
      r.entry = entries.at(0);
      r.data.assign(r.entry.data);
      r.entry.data = {};
    }
    out->push_back(std::move(r));
    read_off_ += kRecordHeader + len;
    got += kRecordHeader + len;
    bytes_ -= kRecordHeader + len;
    --records_;
  }
  return Status::Ok();
}

}  // namespace tidemark::capture
