// Child processes of recovery/ (private): qemu for boot checks, the
// `tidemark mount` process behind a drill. POSIX spawn, no shell.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tidemark/journal/status.h"

namespace tidemark::recovery {

struct SpawnOptions {
  // stdout and stderr go to this file (created; appended to), stdin is
  // /dev/null.
  std::string output_path;
  // A session of its own (setsid): the child outlives the caller's
  // terminal and is not hit by its Ctrl-C.
  bool new_session = false;
};

// Starts argv[0] (looked up in PATH) with argv. kNotFound when the program
// is not there, kIOError otherwise.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options);

// For a child of this process: its wait status once it has exited (reaped),
// nullopt while it runs (and for a pid that is not a child of this process).
std::optional<int> ExitedChild(pid_t pid);

// "status N" / "signal N" for a wait status.
std::string DescribeWaitStatus(int wait_status);

// The start time of process pid (field 22 of /proc/PID/stat, clock ticks
// since boot), or nullopt when there is no such process or it is a zombie.
// A pid with the start time recorded at spawn is the same process.
std::optional<uint64_t> ProcessStartTicks(pid_t pid);

// SIGTERM to pid (only while ProcessStartTicks(pid) == start_ticks), then
// waits up to `grace` for it to end, then SIGKILL. Reaps it when it is a
// child of this process. Returns true when SIGTERM was enough.
bool TerminateProcess(pid_t pid, uint64_t start_ticks, std::chrono::milliseconds grace);

}  // namespace tidemark::recovery
