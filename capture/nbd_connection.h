// One NBD client connection: handshake (option haggling), then the
// transmission phase. Private to capture/nbd; see docs/nbd.md.
//
// Threads: Run() is the connection's one reader thread; it writes handshake
// replies itself and calls BlockDevice::Submit() in receipt order. Replies to
// requests are written by whichever thread calls the ReplyFn, serialised by
// write_mu_. Each ReplyFn holds a shared_ptr to the Connection, so the object
// outlives every reply; Run() returns only after the last outstanding reply
// was written (or dropped because the socket died), so once Run() returned the
// connection never touches the Server again.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nbd_proto.h"
#include "tidemark/capture/nbd.h"

namespace tidemark::capture::nbd {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Takes ownership of `fd` (a connected stream socket). `exports` must stay
  // valid until Run() returns.
  Connection(int fd, const std::vector<Export>* exports);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Serves the connection until the client disconnects (NBD_CMD_DISC, EOF,
  // NBD_OPT_ABORT), breaks the protocol, or Shutdown() is called; then waits
  // for in-flight replies, tells the device, and closes the socket.
  void Run();
  // Unblocks Run()'s reads (shutdown(SHUT_RD)); replies in flight still go
  // out. With `hard`, also cuts the write side, so a reply blocked on a client
  // that does not read fails (and later ones are dropped). Callable from any
  // thread, any number of times.
  void Shutdown(bool hard = false);
  // Waits until Run() has finished or `deadline` passed; true if finished.
  bool WaitDone(std::chrono::steady_clock::time_point deadline);

 private:
  using RequestHeader = proto::RequestHeader;

  // Handshake. Returns true when transmission should start (device_ set).
  bool Handshake();
  bool HandleInfoOrGo(uint32_t option, const std::string& payload, bool* go);
  bool HandleMetaContext(uint32_t option, const std::string& payload);
  bool SendOptionReply(uint32_t option, uint32_t type, const std::string& data = {});
  bool SendOptionError(uint32_t option, uint32_t type, std::string_view message);
  const Export* FindExport(std::string_view name) const;
  uint16_t TransmissionFlags(const BlockDevice& device) const;

  // Transmission.
  void Transmission();
  // 0 if the request may go to the device, else the NBD errno to answer.
  uint32_t Validate(const RequestHeader& h) const;
  void SendReply(const RequestHeader& h, Reply reply);
  void SendError(const RequestHeader& h, uint32_t error, std::string_view message);
  void FinishOne();

  // I/O: false on EOF, error or shutdown.
  bool ReadFull(void* buf, size_t len);
  bool Discard(uint64_t len);
  bool WriteFull(const std::string& data);
  // Under write_mu_; marks the connection broken on failure.
  bool WriteVecLocked(struct iovec* iov, int iovcnt);

  const int fd_;
  const std::vector<Export>* const exports_;

  // Negotiated state (reader thread only, fixed once transmission starts).
  bool no_zeroes_ = false;
  bool structured_ = false;
  bool base_allocation_ = false;         // SET_META_CONTEXT selected it...
  const Export* meta_export_ = nullptr;  // ...for this export
  const Export* export_ = nullptr;
  std::shared_ptr<BlockDevice> device_;

  std::mutex write_mu_;
  bool broken_ = false;  // guarded by write_mu_

  std::mutex state_mu_;
  std::condition_variable idle_cv_;
  uint64_t outstanding_ = 0;  // guarded by state_mu_
  bool done_ = false;         // guarded by state_mu_: Run() finished
};

// NBD errno for a device Status: kNoSpace -> ENOSPC, kInvalidArgument ->
// EINVAL, kNotSupported -> ENOTSUP, anything else EIO.
uint32_t ErrnoFor(const Status& status);

}  // namespace tidemark::capture::nbd
