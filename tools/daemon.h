// A daemon's claim on its journal directory (docs/design.md#control-plane):
// an flock on DIR/tidemark.lock held for the daemon's life, and
// DIR/daemon.json saying whether it is ready and where its control socket
// is, so that other commands can find it (docs/design.md#readiness).
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/journal/status.h"

namespace tidemark::tools {

class DaemonLock {
 public:
  // Creates DIR if needed, takes the lock and publishes {"pid", "state":
  // "starting"}; kTryAgain naming the running daemon's pid when another
  // process holds it.
  static Result<std::unique_ptr<DaemonLock>> Acquire(const std::string& dir);
  ~DaemonLock();  // removes daemon.json, releases the lock
  // Writes DIR/daemon.json (atomically: temp file and rename) with
  // "state": "ready" added: call it once the daemon serves, before its
  // clients' socket appears.
  Status Publish(const nlohmann::json& record);

 private:
  DaemonLock(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  Status Write(const nlohmann::json& record);
  std::string dir_;
  int fd_;
};

// The record of the daemon running on DIR, when one holds its lock. A
// daemon that is starting has {"state": "starting"}, or an empty record
// for the instant between its lock and its first record.
std::optional<nlohmann::json> RunningDaemon(const std::string& dir);

// For the commands that use a journal (or tap state) directory: the ready
// daemon's record, or nullopt when no daemon holds DIR. A daemon that is
// starting is waited for, up to `wait`; then kTryAgain "DIR: daemon
// starting" (exit 4).
Result<std::optional<nlohmann::json>> ReadyDaemon(const std::string& dir,
                                                  std::chrono::milliseconds wait);

// Tells systemd that the daemon is ready (sd_notify READY=1 over the
// $NOTIFY_SOCKET datagram socket, with the daemon's pid and a status line);
// nothing when NOTIFY_SOCKET is not set. Errors are logged, not returned:
// a daemon runs on without systemd.
void NotifyReady(const std::string& status_line);
// The same for STOPPING=1, when the daemon begins to stop.
void NotifyStopping();

// The volumes a daemon (`protect`, `tap`) serves: --volume PATH and --name
// NAME repeated, the i-th name for the i-th volume; several volumes are one
// consistency group and need --group G (docs/design.md#consistency-groups).
struct VolumeArgs {
  std::vector<std::string> paths, names;
  std::string group;
};
// The volumes' names (without --name: the files' base names, unless
// names_required); kInvalidArgument for a count mismatch, duplicates, or
// several volumes without --group.
Result<std::vector<std::string>> VolumeNames(const VolumeArgs& a, bool names_required);

}  // namespace tidemark::tools
