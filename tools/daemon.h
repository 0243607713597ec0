// A daemon's claim on its journal directory (DESIGN.md decision 11): an
// flock on DIR/tidemark.lock held for the daemon's life, and DIR/daemon.json
// saying where its control socket is, so that other commands can find it.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

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

// The volumes a daemon (`protect`, `tap`) serves: --volume PATH and --name
// NAME repeated, the i-th name for the i-th volume; several volumes are one
// consistency group and need --group G (DESIGN.md decision 3).
struct VolumeArgs {
  std::vector<std::string> paths, names;
  std::string group;
};
// The volumes' names (without --name: the files' base names, unless
// names_required); kInvalidArgument for a count mismatch, duplicates, or
// several volumes without --group.
Result<std::vector<std::string>> VolumeNames(const VolumeArgs& a, bool names_required);

}  // namespace tidemark::tools
