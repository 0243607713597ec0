// The transmission half of a connection: request parsing, validation, and
// reply serialisation (simple or structured).
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "nbd_connection.h"
#include "nbd_proto.h"

namespace tidemark::capture::nbd {

using namespace proto;  // NOLINT: wire constants

namespace {

// Largest WRITE payload the server reads and throws away to keep the stream
// in sync after rejecting the request; anything larger ends the connection.
constexpr uint64_t kMaxDiscardBytes = 64ull << 20;

bool IsWriteLike(uint16_t type) {
  return type == static_cast<uint16_t>(Command::kWrite) ||
         type == static_cast<uint16_t>(Command::kTrim) ||
         type == static_cast<uint16_t>(Command::kWriteZeroes);
}

}  // namespace

uint32_t Connection::Validate(const RequestHeader& h) const {
  const BlockDevice& dev = *device_;
  uint16_t allowed_flags = 0;
  bool has_range = true;
  switch (static_cast<Command>(h.type)) {
    case Command::kRead:
      break;
    case Command::kWrite:
      allowed_flags = kCmdFlagFua;
      break;
    case Command::kFlush:
      has_range = false;
      break;
    case Command::kTrim:
      if (!dev.supports_trim() && !dev.read_only()) return kEInval;
      allowed_flags = kCmdFlagFua;
      break;
    case Command::kWriteZeroes:
      allowed_flags = kCmdFlagFua | kCmdFlagNoHole;
      break;
    case Command::kBlockStatus:
      if (!base_allocation_) return kEInval;
      allowed_flags = kCmdFlagReqOne;
      break;
    default:
      return kEInval;  // unknown command (DISC never gets here)
  }
  if (IsWriteLike(h.type) && dev.read_only()) return kEPerm;
  if (h.flags & ~allowed_flags) return kEInval;
  if (!has_range) return h.offset == 0 && h.length == 0 ? 0 : kEInval;

  if (h.length == 0) return kEInval;
  const uint64_t size = dev.size_bytes();
  if (h.offset > size || h.length > size - h.offset) {
    // proto.md: a write past the end SHOULD fail with ENOSPC (nbdkit does the
    // same for WRITE_ZEROES); everything else is EINVAL.
    bool write = h.type == static_cast<uint16_t>(Command::kWrite) ||
                 h.type == static_cast<uint16_t>(Command::kWriteZeroes);
    return write ? kENoSpc : kEInval;
  }
  const uint32_t min_block = dev.min_block_bytes();
  if (min_block > 1 && (h.offset % min_block != 0 || h.length % min_block != 0)) return kEInval;
  if ((h.type == static_cast<uint16_t>(Command::kRead) ||
       h.type == static_cast<uint16_t>(Command::kWrite)) &&
      h.length > dev.max_block_bytes())
    return kEInval;
  return 0;
}

void Connection::Transmission() {
  char buf[kRequestHeaderBytes];
  for (;;) {
    if (!ReadFull(buf, sizeof(buf))) return;  // EOF or Shutdown()
    RequestHeader h;
    if (!ParseRequestHeader(buf, &h)) {
      spdlog::warn("nbd: bad request magic, closing the connection");
      return;
    }
    if (h.type == static_cast<uint16_t>(Command::kDisconnect)) return;

    const uint32_t error = Validate(h);
    const bool has_payload = h.type == static_cast<uint16_t>(Command::kWrite);
    Request request;
    if (has_payload) {
      if (error != 0) {
        if (h.length > kMaxDiscardBytes) {
          spdlog::warn("nbd: rejected WRITE of {} bytes, closing the connection", h.length);
          return;
        }
        if (!Discard(h.length)) return;
      } else {
        request.data.resize(h.length);
        // A payload cut short leaves the stream unusable: end the connection.
        if (!ReadFull(request.data.data(), h.length)) return;
      }
    }
    if (error != 0) {
      SendError(h, error, "request rejected");
      continue;
    }
    request.command = static_cast<Command>(h.type);
    request.flags = h.flags;
    request.offset_bytes = h.offset;
    request.length_bytes = h.length;
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      ++outstanding_;
    }
    device_->Submit(std::move(request), [self = shared_from_this(), h](Reply reply) {
      self->SendReply(h, std::move(reply));
      self->FinishOne();
    });
  }
}

void Connection::FinishOne() {
  std::lock_guard<std::mutex> lock(state_mu_);
  TM_CHECK(outstanding_ > 0);  // a device called a ReplyFn twice
  if (--outstanding_ == 0) idle_cv_.notify_all();
}

void Connection::SendError(const RequestHeader& h, uint32_t error, std::string_view message) {
  std::string out;
  const bool structured_cmd = h.type == static_cast<uint16_t>(Command::kRead) ||
                              h.type == static_cast<uint16_t>(Command::kBlockStatus);
  if (structured_ && structured_cmd) {
    // NBD_REPLY_TYPE_ERROR: u32 error, u16 message length, message.
    if (message.size() > kMaxStringBytes) message = message.substr(0, kMaxStringBytes);
    Put32(&out, kStructuredReplyMagic);
    Put16(&out, kReplyFlagDone);
    Put16(&out, kReplyTypeError);
    Put64(&out, h.cookie);
    Put32(&out, static_cast<uint32_t>(6 + message.size()));
    Put32(&out, error);
    Put16(&out, static_cast<uint16_t>(message.size()));
    out += message;
  } else {
    Put32(&out, kSimpleReplyMagic);
    Put32(&out, error);
    Put64(&out, h.cookie);
  }
  WriteFull(out);
}

void Connection::SendReply(const RequestHeader& h, Reply reply) {
  if (!reply.status.ok()) {
    SendError(h, ErrnoFor(reply.status), reply.status.message());
    return;
  }
  const auto command = static_cast<Command>(h.type);
  if (command == Command::kRead) {
    if (reply.data.size() != h.length) {
      spdlog::error("nbd: device returned {} bytes for a READ of {}", reply.data.size(), h.length);
      SendError(h, kEIO, "device returned a short read");
      return;
    }
    std::string header;
    if (structured_) {
      // One NBD_REPLY_TYPE_OFFSET_DATA chunk that is also the last.
      Put32(&header, kStructuredReplyMagic);
      Put16(&header, kReplyFlagDone);
      Put16(&header, kReplyTypeOffsetData);
      Put64(&header, h.cookie);
      Put32(&header, 8 + h.length);
      Put64(&header, h.offset);
    } else {
      Put32(&header, kSimpleReplyMagic);
      Put32(&header, 0);
      Put64(&header, h.cookie);
    }
    struct iovec iov[2] = {{header.data(), header.size()}, {reply.data.data(), reply.data.size()}};
    std::lock_guard<std::mutex> lock(write_mu_);
    WriteVecLocked(iov, 2);
    return;
  }
  if (command == Command::kBlockStatus) {
    // Clip to the request (the last extent may not run past it), drop empty
    // extents; REQ_ONE keeps only the first.
    std::string body;
    Put32(&body, kBaseAllocationId);
    uint64_t covered = 0;
    for (const AllocationExtent& e : reply.extents) {
      if (covered >= h.length) break;
      if (e.length_bytes == 0) continue;
      uint64_t len = std::min<uint64_t>(e.length_bytes, h.length - covered);
      Put32(&body, static_cast<uint32_t>(len));
      Put32(&body, (e.hole ? kStateHole : 0) | (e.zero ? kStateZero : 0));
      covered += len;
      if (h.flags & kCmdFlagReqOne) break;
    }
    if (covered == 0) {
      SendError(h, kEIO, "device returned no extents");
      return;
    }
    std::string out;
    Put32(&out, kStructuredReplyMagic);
    Put16(&out, kReplyFlagDone);
    Put16(&out, kReplyTypeBlockStatus);
    Put64(&out, h.cookie);
    Put32(&out, static_cast<uint32_t>(body.size()));
    out += body;
    WriteFull(out);
    return;
  }
  // WRITE, FLUSH, TRIM, WRITE_ZEROES: a simple reply, allowed in both modes.
  SendError(h, 0, {});
}

}  // namespace tidemark::capture::nbd
