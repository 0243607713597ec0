#include "process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace tidemark::recovery {

Result<pid_t> Spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  if (argv.empty()) return Status::InvalidArgument("spawn: no program");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, options.output_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The child starts with no blocked signals and default handlers for the
  // ones a caller may have changed (SIGPIPE ignored, SIGTERM caught).
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_session) flags |= POSIX_SPAWN_SETSID;
  posix_spawnattr_setflags(&attr, flags);
  pid_t pid = -1;
  int err = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (err == ENOENT) return Status::NotFound(argv[0] + " not found");
  if (err != 0) return Status::FromErrno(err, "start " + argv[0]);
  return pid;
}

std::optional<int> ExitedChild(pid_t pid) {
  int st = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &st, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid) return st;
  return std::nullopt;
}

std::string DescribeWaitStatus(int st) {
  if (WIFEXITED(st)) return "status " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return "signal " + std::to_string(WTERMSIG(st));
  return "wait status " + std::to_string(st);
}

std::optional<uint64_t> ProcessStartTicks(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // "PID (comm) S ...": comm may hold spaces and parentheses; fields are
  // counted from the last ')'. Field 3 is the state, field 22 the start.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string state, field;
  fields >> state;
  if (state == "Z" || state == "X") return std::nullopt;
  for (int i = 4; i < 22; ++i) fields >> field;
  uint64_t start = 0;
  if (!(fields >> start)) return std::nullopt;
  return start;
}

bool TerminateProcess(pid_t pid, uint64_t start_ticks, std::chrono::milliseconds grace) {
  auto same = [&] {
    // Reaps our own child as soon as it exits (a zombie has no start time
    // here, so a process that is not ours is seen to end all the same).
    (void)ExitedChild(pid);
    return ProcessStartTicks(pid) == start_ticks;
  };
  if (!same()) return true;
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!same()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (same()) ::kill(pid, SIGKILL);
  for (int i = 0; i < 250 && same(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace tidemark::recovery
