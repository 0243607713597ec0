// A daemon's claim on its journal directory (DESIGN.md decision 11): an
// flock on DIR/tidemark.lock held for the daemon's life, and DIR/daemon.json
// saying where its control socket is, so that other commands can find it.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tidemark/journal/status.h"

namespace tidemark::tools {

class DaemonLock {
 public:
  // Creates DIR if needed and takes the lock; kTryAgain naming the running
  // daemon's pid when another process holds it.
  static Result<std::unique_ptr<DaemonLock>> Acquire(const std::string& dir);
  ~DaemonLock();  // removes daemon.json, releases the lock
  // Writes DIR/daemon.json (atomically: temp file and rename).
  Status Publish(const nlohmann::json& record);

 private:
  DaemonLock(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  std::string dir_;
  int fd_;
};

// The record of the daemon running on DIR, when one holds its lock.
std::optional<nlohmann::json> RunningDaemon(const std::string& dir);

}  // namespace tidemark::tools
