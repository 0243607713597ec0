// An NBD server (fixed newstyle) over a small block-device interface.
// See docs/nbd.md for the protocol coverage.
//
// The tap serves a protected volume with it, and recovery/ serves virtual
// snapshots. The server owns the protocol (handshake, option haggling,
// request parsing and validation, structured replies, reply serialisation);
// the BlockDevice owns the data.
//
// Ordering contract: on each connection, Submit() is called in the order
// the requests were received on the socket, from that connection's one
// reader thread; the device may complete them asynchronously and in any
// order (NBD replies carry the client's handle). Requests the server
// rejects are answered with an error and never reach the device; the
// connection stays up: unknown command, flag or unadvertised command, zero
// length, offset or length not a multiple of min_block_bytes(), READ/WRITE
// longer than max_block_bytes(), FLUSH with a range, BLOCK_STATUS without a
// negotiated base:allocation -> EINVAL; a range past size_bytes() -> EINVAL
// (ENOSPC for WRITE and WRITE_ZEROES, as proto.md asks); WRITE, TRIM or
// WRITE_ZEROES on a read-only export -> EPERM. A WRITE whose payload is cut
// short ends the connection.
//
// Replies are written to the socket by the thread that calls the ReplyFn,
// under a per-connection lock: a ReplyFn blocks while the client does not
// read its replies (TCP backpressure).
//
// Thread-safety: Server's methods may be called from any thread. A device's
// Submit() may be called concurrently from different connections' threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/status.h"

namespace tidemark::capture::nbd {

enum class Command : uint16_t {
  kRead = 0,
  kWrite = 1,
  kDisconnect = 2,  // never reaches the device
  kFlush = 3,
  kTrim = 4,
  kWriteZeroes = 6,
  kBlockStatus = 7,
};

// NBD command flags the device sees.
enum RequestFlags : uint16_t {
  kFlagFua = 1 << 0,
  kFlagNoHole = 1 << 1,  // WRITE_ZEROES: allocate, do not punch
};

struct Request {
  Command command = Command::kRead;
  uint16_t flags = 0;
  uint64_t offset_bytes = 0;
  uint32_t length_bytes = 0;
  std::string data;  // kWrite: length_bytes bytes
};

// One extent of a BLOCK_STATUS answer for base:allocation.
struct AllocationExtent {
  uint32_t length_bytes = 0;
  bool hole = false;  // NBD_STATE_HOLE
  bool zero = false;  // NBD_STATE_ZERO
};

struct Reply {
  // Mapped to NBD errno values: kNoSpace -> ENOSPC, kInvalidArgument ->
  // EINVAL, kNotSupported -> ENOTSUP, anything else EIO. The message goes to
  // the client in structured error replies (READ, BLOCK_STATUS).
  Status status;
  std::string data;                       // kRead: length_bytes bytes
  std::vector<AllocationExtent> extents;  // kBlockStatus
};
using ReplyFn = std::function<void(Reply)>;

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual uint64_t size_bytes() const = 0;
  virtual bool read_only() const { return false; }
  // Advertised with NBD_INFO_BLOCK_SIZE: minimum, preferred, maximum.
  virtual uint32_t min_block_bytes() const { return 512; }
  virtual uint32_t preferred_block_bytes() const { return 4096; }
  virtual uint32_t max_block_bytes() const { return 32u << 20; }
  virtual bool supports_trim() const { return true; }
  virtual bool supports_block_status() const { return true; }
  // Handles one validated request; must call `reply` exactly once, from any
  // thread, possibly before Submit() returns. A connection (and Stop()) waits
  // for every outstanding reply before it closes, so a request never answered
  // keeps its connection open. kFlush must make durable every write already
  // replied to (at least on the same connection: the server does not
  // advertise CAN_MULTI_CONN); kFlagFua makes that one request durable before
  // the reply. kTrim and kWriteZeroes must read back as zeros.
  virtual void Submit(Request request, ReplyFn reply) = 0;
  // Called once per connection that reached the transmission phase on this
  // device, after its last reply was sent (from the connection's thread).
  virtual void ConnectionClosed() {}
};

struct Export {
  std::string name;
  std::string description;
  std::shared_ptr<BlockDevice> device;
};

struct ServerOptions {
  // "unix:/path/to.sock" or "HOST:PORT" ("127.0.0.1:10809", "[::1]:10809",
  // ":10809" for all addresses).
  std::string listen;
  std::vector<Export> exports;  // the empty export name maps to the first one
  // Clients beyond this many open connections are accepted and closed at once.
  unsigned max_connections = 16;
  // Stop() lets in-flight replies go out for this long, then cuts the sockets
  // of clients that do not read them (their later replies are dropped).
  std::chrono::milliseconds stop_grace{10000};
  // Bind at Start() but accept no client before Ready(): a daemon takes its
  // address first (a bad or busy --listen fails before any slow start-up
  // work) and is reachable only once it can serve. A TCP port is bound but
  // not listening until then (clients are refused); a unix socket is bound
  // as PATH.tmp and renamed to PATH by Ready(), so that PATH appearing means
  // ready (docs/design.md#readiness).
  bool defer_listen = false;
};

class Server {
 public:
  // Binds and listens, or only binds with options.defer_listen (a stale unix
  // socket file is removed; the file is removed again by Stop());
  // kInvalidArgument for a bad address, no exports,
  // duplicate export names or bad block sizes (min/preferred must be powers of
  // two, min <= 64 KiB, min <= preferred <= max); kIOError when it cannot
  // bind.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();  // Stop()s
  // With ServerOptions::defer_listen: starts listening (TCP) or renames
  // PATH.tmp to PATH (unix), and accepts clients from now on. Idempotent; a
  // no-op without defer_listen. kIOError when listen() or rename() fails.
  Status Ready();
  // Stops accepting, closes every connection after in-flight replies (see
  // ServerOptions::stop_grace), joins. Idempotent; concurrent calls wait for
  // the first to finish.
  void Stop();
  // The address actually bound: "unix:/path", "127.0.0.1:40123" or
  // "[::1]:40123" (TCP port 0 resolves to the chosen port).
  std::string address() const;
  // Blocks until Stop() is called from another thread or a signal handler
  // (via StopFromSignal), then Stop()s: when it returns, the server is
  // stopped.
  void Wait();
  // Async-signal-safe request to stop (for SIGINT/SIGTERM handlers).
  void StopFromSignal();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::capture::nbd
