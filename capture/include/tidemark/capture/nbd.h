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
// rejects (out of range, misaligned, unknown command, write to a read-only
// export) are answered with an error and never reach the device; the
// connection stays up.
//
// Thread-safety: Server's methods may be called from any thread. A device's
// Submit() may be called concurrently from different connections' threads.
#pragma once

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
  std::string data;  // kRead: length_bytes bytes
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
  // Handles one validated request; calls reply exactly once, from any thread.
  virtual void Submit(Request request, ReplyFn reply) = 0;
  // Called once when a connection closes (after its last reply was sent).
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
  unsigned max_connections = 16;
};

class Server {
 public:
  // Binds and listens (a stale unix socket file is replaced); kInvalidArgument
  // for a bad address, kIOError when it cannot bind.
  static Result<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();  // Stop()s
  // Stops accepting, closes every connection after in-flight replies, joins.
  void Stop();
  // The address actually bound (TCP port 0 resolves to the chosen port).
  std::string address() const;
  // Blocks until Stop() is called from another thread or a signal handler
  // (via StopFromSignal).
  void Wait();
  // Async-signal-safe request to stop (for SIGINT/SIGTERM handlers).
  void StopFromSignal();

  class Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::capture::nbd
