// The handshake half of a connection: fixed-newstyle option haggling.
// The transmission half is in nbd_transmission.cc.
#include "nbd_connection.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "nbd_proto.h"

namespace tidemark::capture::nbd {

using namespace proto;  // NOLINT: wire constants

uint32_t ErrnoFor(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return 0;
    case Code::kNoSpace:
      return kENoSpc;
    case Code::kInvalidArgument:
      return kEInval;
    case Code::kNotSupported:
      return kENotSup;
    default:
      return kEIO;
  }
}

Connection::Connection(int fd, const std::vector<Export>* exports) : fd_(fd), exports_(exports) {}

Connection::~Connection() { ::close(fd_); }

void Connection::Shutdown(bool hard) { ::shutdown(fd_, hard ? SHUT_RDWR : SHUT_RD); }

bool Connection::WaitDone(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(state_mu_);
  return idle_cv_.wait_until(lock, deadline, [this] { return done_; });
}

void Connection::Run() {
  if (Handshake()) Transmission();
  {
    // Replies in flight hold a reference and still write to the socket; the
    // connection is over only when the last of them is out.
    std::unique_lock<std::mutex> lock(state_mu_);
    idle_cv_.wait(lock, [this] { return outstanding_ == 0; });
  }
  ::shutdown(fd_, SHUT_RDWR);
  if (device_) device_->ConnectionClosed();
  std::lock_guard<std::mutex> lock(state_mu_);
  done_ = true;
  idle_cv_.notify_all();
}

bool Connection::ReadFull(void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = ::recv(fd_, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool Connection::Discard(uint64_t len) {
  char buf[65536];
  while (len > 0) {
    size_t chunk = len < sizeof(buf) ? static_cast<size_t>(len) : sizeof(buf);
    if (!ReadFull(buf, chunk)) return false;
    len -= chunk;
  }
  return true;
}

bool Connection::WriteVecLocked(struct iovec* iov, int iovcnt) {
  if (broken_) return false;
  while (iovcnt > 0) {
    struct msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(iovcnt);
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // The client is gone: stop the reader too, drop later replies.
      broken_ = true;
      ::shutdown(fd_, SHUT_RDWR);
      return false;
    }
    auto left = static_cast<size_t>(n);
    while (iovcnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return true;
}

bool Connection::WriteFull(const std::string& data) {
  struct iovec iov = {const_cast<char*>(data.data()), data.size()};
  std::lock_guard<std::mutex> lock(write_mu_);
  return WriteVecLocked(&iov, 1);
}

bool Connection::SendOptionReply(uint32_t option, uint32_t type, const std::string& data) {
  std::string out;
  out.reserve(20 + data.size());
  Put64(&out, kOptReplyMagic);
  Put32(&out, option);
  Put32(&out, type);
  Put32(&out, static_cast<uint32_t>(data.size()));
  out += data;
  return WriteFull(out);
}

bool Connection::SendOptionError(uint32_t option, uint32_t type, std::string_view message) {
  return SendOptionReply(option, type, std::string(message));
}

const Export* Connection::FindExport(std::string_view name) const {
  // The empty (default) export name maps to the first export.
  if (name.empty()) return exports_->empty() ? nullptr : &exports_->front();
  for (const Export& e : *exports_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

uint16_t Connection::TransmissionFlags(const BlockDevice& device) const {
  uint16_t flags = kTransHasFlags | kTransSendFlush;
  if (device.read_only()) {
    flags |= kTransReadOnly;
  } else {
    flags |= kTransSendFua | kTransSendWriteZeroes;
    if (device.supports_trim()) flags |= kTransSendTrim;
  }
  // Not NBD_FLAG_CAN_MULTI_CONN: a FLUSH on one connection is not promised to
  // cover writes completed on another (the device sees connections apart).
  return flags;
}

bool Connection::Handshake() {
  std::string hello;
  Put64(&hello, kNbdMagic);
  Put64(&hello, kIHaveOpt);
  Put16(&hello, kFlagFixedNewstyle | kFlagNoZeroes);
  if (!WriteFull(hello)) return false;

  char buf[16];
  if (!ReadFull(buf, 4)) return false;
  uint32_t client_flags = Get32(buf);
  if (client_flags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) {
    spdlog::warn("nbd: client sent unknown handshake flags {:#x}", client_flags);
    return false;
  }
  no_zeroes_ = (client_flags & kClientFlagNoZeroes) != 0;

  for (;;) {
    if (!ReadFull(buf, 16)) return false;
    if (Get64(buf) != kIHaveOpt) {
      spdlog::warn("nbd: bad option magic");
      return false;
    }
    uint32_t option = Get32(buf + 8);
    uint32_t length = Get32(buf + 12);
    if (length > kMaxOptionBytes) {
      if (!Discard(length)) return false;
      if (!SendOptionError(option, kRepErrTooBig, "option too large")) return false;
      continue;
    }
    std::string payload(length, '\0');
    if (length > 0 && !ReadFull(payload.data(), length)) return false;

    switch (option) {
      case kOptExportName: {
        const Export* e = FindExport(payload);
        // No way to answer an error here (the protocol has none): hang up.
        if (e == nullptr) return false;
        export_ = e;
        device_ = e->device;
        if (meta_export_ != e) base_allocation_ = false;
        std::string out;
        Put64(&out, device_->size_bytes());
        Put16(&out, TransmissionFlags(*device_));
        if (!no_zeroes_) out.append(124, '\0');
        return WriteFull(out);
      }
      case kOptAbort:
        SendOptionReply(option, kRepAck);  // best effort: the client may be gone
        return false;
      case kOptList: {
        if (length != 0) {
          if (!SendOptionError(option, kRepErrInvalid, "NBD_OPT_LIST takes no data")) return false;
          break;
        }
        for (const Export& e : *exports_) {
          std::string data;
          Put32(&data, static_cast<uint32_t>(e.name.size()));
          data += e.name;
          if (!SendOptionReply(option, kRepServer, data)) return false;
        }
        if (!SendOptionReply(option, kRepAck)) return false;
        break;
      }
      case kOptInfo:
      case kOptGo: {
        bool go = false;
        if (!HandleInfoOrGo(option, payload, &go)) return false;
        if (go) return true;
        break;
      }
      case kOptStructuredReply:
        if (length != 0) {
          if (!SendOptionError(option, kRepErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data"))
            return false;
          break;
        }
        structured_ = true;
        if (!SendOptionReply(option, kRepAck)) return false;
        break;
      case kOptListMetaContext:
      case kOptSetMetaContext:
        if (!HandleMetaContext(option, payload)) return false;
        break;
      default:
        // Includes NBD_OPT_STARTTLS, NBD_OPT_PEEK_EXPORT, NBD_OPT_EXTENDED_HEADERS.
        if (!SendOptionError(option, kRepErrUnsup, "option not supported")) return false;
        break;
    }
  }
}

bool Connection::HandleInfoOrGo(uint32_t option, const std::string& payload, bool* go) {
  // u32 name length, name, u16 count, count x u16 info type.
  const char* p = payload.data();
  size_t len = payload.size();
  if (len < 4) return SendOptionError(option, kRepErrInvalid, "short option");
  uint32_t name_len = Get32(p);
  if (name_len > kMaxStringBytes || len < 4ull + name_len + 2)
    return SendOptionError(option, kRepErrInvalid, "bad export name length");
  std::string name(p + 4, name_len);
  uint16_t count = Get16(p + 4 + name_len);
  if (len != 4ull + name_len + 2 + 2ull * count)
    return SendOptionError(option, kRepErrInvalid, "bad information request count");
  bool want_name = false;
  bool want_description = false;
  for (uint16_t i = 0; i < count; ++i) {
    uint16_t type = Get16(p + 4 + name_len + 2 + 2 * i);
    if (type == kInfoName) want_name = true;
    if (type == kInfoDescription) want_description = true;
  }
  const Export* e = FindExport(name);
  if (e == nullptr) return SendOptionError(option, kRepErrUnknown, "unknown export: " + name);
  const BlockDevice& device = *e->device;

  std::string info;
  Put16(&info, kInfoExport);
  Put64(&info, device.size_bytes());
  Put16(&info, TransmissionFlags(device));
  if (!SendOptionReply(option, kRepInfo, info)) return false;
  if (want_name) {
    info.clear();
    Put16(&info, kInfoName);
    info += e->name;
    if (!SendOptionReply(option, kRepInfo, info)) return false;
  }
  if (want_description && !e->description.empty()) {
    info.clear();
    Put16(&info, kInfoDescription);
    info += e->description;
    if (!SendOptionReply(option, kRepInfo, info)) return false;
  }
  // Sent whether or not the client asked: clients that did not ask may
  // ignore it, and the constraints hold either way (validation enforces them).
  info.clear();
  Put16(&info, kInfoBlockSize);
  Put32(&info, device.min_block_bytes());
  Put32(&info, device.preferred_block_bytes());
  Put32(&info, device.max_block_bytes());
  if (!SendOptionReply(option, kRepInfo, info)) return false;
  if (!SendOptionReply(option, kRepAck)) return false;
  if (option == kOptGo) {
    export_ = e;
    device_ = e->device;
    if (meta_export_ != e) base_allocation_ = false;
    *go = true;
  }
  return true;
}

bool Connection::HandleMetaContext(uint32_t option, const std::string& payload) {
  const bool set = option == kOptSetMetaContext;
  if (set && !structured_)
    return SendOptionError(option, kRepErrInvalid,
                           "NBD_OPT_SET_META_CONTEXT needs structured replies first");
  // u32 export name length, name, u32 query count, count x (u32 length, query).
  const char* p = payload.data();
  size_t len = payload.size();
  if (len < 4) return SendOptionError(option, kRepErrInvalid, "short option");
  uint32_t name_len = Get32(p);
  if (name_len > kMaxStringBytes || len < 4ull + name_len + 4)
    return SendOptionError(option, kRepErrInvalid, "bad export name length");
  std::string name(p + 4, name_len);
  uint32_t count = Get32(p + 4 + name_len);
  size_t pos = 4 + name_len + 4;
  std::vector<std::string> queries;
  for (uint32_t i = 0; i < count; ++i) {
    if (len - pos < 4) return SendOptionError(option, kRepErrInvalid, "truncated query");
    uint32_t qlen = Get32(p + pos);
    pos += 4;
    if (qlen > kMaxStringBytes || len - pos < qlen)
      return SendOptionError(option, kRepErrInvalid, "bad query length");
    queries.emplace_back(p + pos, qlen);
    pos += qlen;
  }
  if (pos != len) return SendOptionError(option, kRepErrInvalid, "trailing bytes in option");
  const Export* e = FindExport(name);
  if (e == nullptr) return SendOptionError(option, kRepErrUnknown, "unknown export: " + name);

  bool match = false;
  if (e->device->supports_block_status()) {
    if (!set && queries.empty()) match = true;  // LIST with no query: everything
    for (const std::string& q : queries) {
      if (q == kBaseAllocation || (!set && q == "base:")) match = true;
    }
  }
  if (set) {
    // A SET replaces any earlier selection.
    base_allocation_ = match;
    meta_export_ = e;
  }
  if (match) {
    std::string data;
    Put32(&data, set ? kBaseAllocationId : 0);
    data += kBaseAllocation;
    if (!SendOptionReply(option, kRepMetaContext, data)) return false;
  }
  return SendOptionReply(option, kRepAck);
}

}  // namespace tidemark::capture::nbd
