// Test support for capture/nbd (not installed): an in-memory BlockDevice and
// a raw-socket NBD client (no libnbd), shared by nbd_test.cc and
// bench/nbd_bench.cc.
//
// No gtest here: the benchmark links Google Benchmark only. The client
// reports a reply of the wrong shape through Fail(), which by default keeps
// the first message (see error()); nbd_test.cc's Client turns it into a gtest
// failure.
//
// Thread-safety: MemDevice's methods may be called from any thread. A
// RawClient belongs to one thread.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "nbd_proto.h"
#include "tidemark/capture/nbd.h"

namespace tidemark::capture::nbd::testutil {

// In-memory device; completes each request inside Submit() unless async, in
// which case Submit() parks requests until ReleaseReversed(). Records the
// command and flags of every request it was given.
class MemDevice : public BlockDevice {
 public:
  explicit MemDevice(uint64_t size, bool read_only = false)
      : data_(size, '\0'), read_only_(read_only) {}
  uint64_t size_bytes() const override { return data_.size(); }
  bool read_only() const override { return read_only_; }

  void Submit(Request r, ReplyFn reply) override {
    std::unique_lock<std::mutex> lock(mu_);
    submitted_.push_back(r.command);
    flags_.push_back(r.flags);
    if (async_) {
      parked_.push_back({std::move(r), std::move(reply)});
      return;
    }
    Reply out = Do(r);
    lock.unlock();
    reply(std::move(out));
  }
  void ConnectionClosed() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++closed_;
  }

  void SetAsync(bool a) {
    std::lock_guard<std::mutex> lock(mu_);
    async_ = a;
  }
  void FailNext(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_ = std::move(s);
  }
  size_t parked() {
    std::lock_guard<std::mutex> lock(mu_);
    return parked_.size();
  }
  // Answers parked requests from another thread, newest first (out of order).
  void ReleaseReversed() {
    std::deque<std::pair<Request, ReplyFn>> todo;
    {
      std::lock_guard<std::mutex> lock(mu_);
      todo.swap(parked_);
    }
    std::thread([this, todo = std::move(todo)]() mutable {
      while (!todo.empty()) {
        Reply out;
        {
          std::lock_guard<std::mutex> lock(mu_);
          out = Do(todo.back().first);
        }
        todo.back().second(std::move(out));
        todo.pop_back();
      }
    }).join();
  }
  std::vector<Command> submitted() {
    std::lock_guard<std::mutex> lock(mu_);
    return submitted_;
  }
  std::vector<uint16_t> flags() {
    std::lock_guard<std::mutex> lock(mu_);
    return flags_;
  }
  int closed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  // Unlocked: only while no request is in flight.
  std::string& data() { return data_; }

 private:
  Reply Do(const Request& r) {
    Reply out;
    if (!fail_next_.ok()) {
      out.status = std::move(fail_next_);
      fail_next_ = Status::Ok();
      return out;
    }
    switch (r.command) {
      case Command::kRead:
        out.data = data_.substr(r.offset_bytes, r.length_bytes);
        break;
      case Command::kWrite:
        data_.replace(r.offset_bytes, r.length_bytes, r.data);
        break;
      case Command::kTrim:
      case Command::kWriteZeroes:
        data_.replace(r.offset_bytes, r.length_bytes, std::string(r.length_bytes, '\0'));
        break;
      case Command::kBlockStatus:
        // First 4 KiB data, then a hole to the end of the request.
        if (r.offset_bytes < 4096) out.extents.push_back({4096u - uint32_t(r.offset_bytes)});
        out.extents.push_back({r.length_bytes, true, true});
        break;
      default:
        break;
    }
    return out;
  }

  std::mutex mu_;
  std::string data_;
  const bool read_only_;
  bool async_ = false;
  Status fail_next_;
  std::deque<std::pair<Request, ReplyFn>> parked_;
  std::vector<Command> submitted_;
  std::vector<uint16_t> flags_;
  int closed_ = 0;
};

// Connects a stream socket to the unix socket at `path`; -1 on failure.
inline int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A raw NBD client over one socket, which it owns. Every helper checks the
// protocol shape of what it reads and reports a mismatch through Fail().
class RawClient {
 public:
  explicit RawClient(int fd) : fd_(fd) {}
  virtual ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  int fd() const { return fd_; }
  // The first Fail() message; empty while every check passed.
  const std::string& error() const { return error_; }

  // Sends/receives all `n` bytes; false on error or EOF.
  bool SendAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (r <= 0) return false;
      p += r;
      n -= size_t(r);
    }
    return true;
  }
  bool RecvAll(char* p, size_t n) {
    while (n > 0) {
      ssize_t r = ::recv(fd_, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= size_t(r);
    }
    return true;
  }

  void Send(const std::string& b) { Expect(SendAll(b.data(), b.size()), true, "send"); }
  // Empty string on EOF.
  std::string Recv(size_t n) {
    std::string b(n, '\0');
    if (!RecvAll(b.data(), n)) return {};
    return b;
  }
  bool AtEof() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

  // Reads the greeting, sends client flags.
  void Hello(uint32_t client_flags = proto::kClientFlagFixedNewstyle | proto::kClientFlagNoZeroes) {
    using namespace proto;  // NOLINT: wire constants
    std::string g = Recv(18);
    if (!Expect(g.size(), size_t{18}, "greeting size")) return;
    Expect(g.substr(0, 8), std::string("NBDMAGIC"), "greeting magic");
    Expect(g.substr(8, 8), std::string("IHAVEOPT"), "greeting option magic");
    Expect(Get16(g.data() + 16), uint16_t{kFlagFixedNewstyle | kFlagNoZeroes}, "handshake flags");
    std::string f;
    Put32(&f, client_flags);
    Send(f);
  }
  void Option(uint32_t option, const std::string& data) {
    std::string b;
    proto::Put64(&b, proto::kIHaveOpt);
    proto::Put32(&b, option);
    proto::Put32(&b, uint32_t(data.size()));
    Send(b + data);
  }
  struct OptReply {
    uint32_t option = 0, type = 0;
    std::string data;
  };
  OptReply ReadOptReply() {
    using namespace proto;  // NOLINT: wire constants
    OptReply r;
    std::string h = Recv(20);
    if (!Expect(h.size(), size_t{20}, "option reply size")) return r;
    Expect(Get64(h.data()), kOptReplyMagic, "option reply magic");
    r.option = Get32(h.data() + 8);
    r.type = Get32(h.data() + 12);
    r.data = Recv(Get32(h.data() + 16));
    return r;
  }
  static std::string InfoPayload(const std::string& name, std::vector<uint16_t> infos) {
    std::string d;
    proto::Put32(&d, uint32_t(name.size()));
    d += name;
    proto::Put16(&d, uint16_t(infos.size()));
    for (uint16_t i : infos) proto::Put16(&d, i);
    return d;
  }
  static std::string MetaPayload(const std::string& name, std::vector<std::string> queries) {
    std::string d;
    proto::Put32(&d, uint32_t(name.size()));
    d += name;
    proto::Put32(&d, uint32_t(queries.size()));
    for (auto& q : queries) {
      proto::Put32(&d, uint32_t(q.size()));
      d += q;
    }
    return d;
  }
  // Full handshake with NBD_OPT_GO; returns the transmission flags.
  uint16_t Go(const std::string& name = "", bool structured = false, bool meta = false) {
    using namespace proto;  // NOLINT: wire constants
    Hello();
    if (structured) {
      Option(kOptStructuredReply, "");
      Expect(ReadOptReply().type, kRepAck, "STRUCTURED_REPLY reply");
    }
    if (meta) {
      Option(kOptSetMetaContext, MetaPayload(name, {"base:allocation"}));
      OptReply m = ReadOptReply();
      Expect(m.type, kRepMetaContext, "SET_META_CONTEXT reply");
      Expect(m.data.size() >= 4 ? Get32(m.data.data()) : 0, kBaseAllocationId, "context id");
      Expect(m.data.size() >= 4 ? m.data.substr(4) : std::string(), std::string(kBaseAllocation),
             "context name");
      Expect(ReadOptReply().type, kRepAck, "SET_META_CONTEXT end");
    }
    Option(kOptGo, InfoPayload(name, {}));
    uint16_t flags = 0;
    for (;;) {
      OptReply r = ReadOptReply();
      if (r.type == kRepAck) break;
      if (!Expect(r.type, kRepInfo, "GO reply")) break;
      if (r.data.size() >= 12 && Get16(r.data.data()) == kInfoExport) {
        flags = Get16(r.data.data() + 10);
      }
    }
    return flags;
  }
  // Appends a request header (28 bytes) to `out`.
  static void AppendRequest(std::string* out, uint16_t type, uint64_t cookie, uint64_t offset,
                            uint32_t length, uint16_t flags = 0) {
    proto::Put32(out, proto::kRequestMagic);
    proto::Put16(out, flags);
    proto::Put16(out, type);
    proto::Put64(out, cookie);
    proto::Put64(out, offset);
    proto::Put32(out, length);
  }
  void Request(uint16_t type, uint64_t cookie, uint64_t offset, uint32_t length, uint16_t flags = 0,
               const std::string& payload = {}) {
    std::string b;
    AppendRequest(&b, type, cookie, offset, length, flags);
    Send(b + payload);
  }
  // Simple reply: returns the error; checks the cookie.
  uint32_t SimpleReply(uint64_t cookie, std::string* data = nullptr, size_t len = 0) {
    using namespace proto;  // NOLINT: wire constants
    std::string h = Recv(16);
    if (!Expect(h.size(), size_t{16}, "simple reply size")) return 0xffffffff;
    Expect(Get32(h.data()), kSimpleReplyMagic, "simple reply magic");
    Expect(Get64(h.data() + 8), cookie, "simple reply cookie");
    uint32_t err = Get32(h.data() + 4);
    if (err == 0 && data != nullptr) *data = Recv(len);
    return err;
  }
  struct Chunk {
    uint16_t flags = 0, type = 0;
    uint64_t cookie = 0;
    std::string payload;
  };
  Chunk ReadChunk() {
    using namespace proto;  // NOLINT: wire constants
    Chunk c;
    std::string h = Recv(20);
    if (!Expect(h.size(), size_t{20}, "chunk size")) return c;
    Expect(Get32(h.data()), kStructuredReplyMagic, "structured reply magic");
    c.flags = Get16(h.data() + 4);
    c.type = Get16(h.data() + 6);
    c.cookie = Get64(h.data() + 8);
    c.payload = Recv(Get32(h.data() + 16));
    return c;
  }

 protected:
  // Called once per failed check.
  virtual void Fail(const std::string& message) {
    if (error_.empty()) error_ = message;
  }

 private:
  template <class T>
  static std::string Show(const T& v) {
    if constexpr (std::is_arithmetic_v<T>) {
      return std::to_string(+v);
    } else {
      return '"' + std::string(v) + '"';
    }
  }
  // Both sides of one type, so no signed/unsigned comparison slips in.
  template <class T>
  bool Expect(const T& got, const std::type_identity_t<T>& want, const char* what) {
    if (got == want) return true;
    Fail(std::string(what) + ": got " + Show(got) + ", want " + Show(want));
    return false;
  }

  int fd_;
  std::string error_;
};

}  // namespace tidemark::capture::nbd::testutil
