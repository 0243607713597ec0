// The target server (`tidemark target serve`,
// docs/design.md#durable-before-acknowledged, docs/design.md#security,
// docs/design.md#control-plane): accepts taps over TLS 1.3 on one port,
// authenticates them as tenants, and ingests their ordered write streams
// (docs/protocol.md) into one journal per tenant (DATA/tenants/NAME/journal),
// acknowledging a seq only once it is durable (WAL synced, group-committed). A
// tenant sees only the volumes in its own journal.
//
// Thread-safety: Start() and the accessors from any thread; Stop() from any
// thread but a session's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tidemark/journal/status.h"
#include "tidemark/target/config.h"

namespace tidemark::target {

struct ServerStats {
  uint64_t sessions = 0;        // open now
  uint64_t sessions_total = 0;  // accepted since start
  uint64_t writes = 0;          // entries applied (resends included)
  uint64_t write_bytes = 0;     // data bytes of those entries
  uint64_t rejected = 0;        // sessions refused (auth, conflict, bad frames)
};

class TargetServer {
 public:
  // Loads the TLS files and tenants of `config`, binds config.listen
  // (port 0 picks one) and serves on its own threads until Stop().
  // With `defer_listen` the port is bound but refuses clients until Ready()
  // (docs/design.md#readiness: the daemon publishes its record first).
  // kInvalidArgument / kIOError with the file or address in the message.
  static Result<std::unique_ptr<TargetServer>> Start(const TargetConfig& config,
                                                     bool defer_listen = false);
  // Listens and serves (after Start with defer_listen; otherwise a no-op).
  // kIOError when listen() fails.
  Status Ready();
  ~TargetServer();  // Stop()s
  TargetServer(const TargetServer&) = delete;
  TargetServer& operator=(const TargetServer&) = delete;

  // "HOST:PORT" actually bound.
  std::string listen_address() const;
  ServerStats stats() const;
  // Stops accepting, closes every session (nothing unacknowledged is lost:
  // taps resend it), syncs and closes the journals. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit TargetServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::target
