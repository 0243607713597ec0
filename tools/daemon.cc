#include "daemon.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace tidemark::tools {

namespace {
std::string LockPath(const std::string& dir) { return dir + "/tidemark.lock"; }
std::string RecordPath(const std::string& dir) { return dir + "/daemon.json"; }

std::optional<nlohmann::json> ReadRecord(const std::string& dir) {
  std::ifstream in(RecordPath(dir));
  if (!in) return std::nullopt;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}
}  // namespace

Result<std::unique_ptr<DaemonLock>> DaemonLock::Acquire(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::FromErrno(ec.value(), "create journal directory " + dir);
  int fd = ::open(LockPath(dir).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "open " + LockPath(dir));
  // Commands probe the lock with a shared flock for an instant
  // (RunningDaemon): a daemon starting at that instant tries again for a
  // second before it calls the directory taken.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) {
      ::close(fd);
      auto rec = ReadRecord(dir);
      std::string who = rec && rec->contains("pid") ? " (pid " + rec->at("pid").dump() + ")" : "";
      return Status::TryAgain("journal " + dir + " is in use by another tidemark daemon" + who);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::unique_ptr<DaemonLock> lock(new DaemonLock(dir, fd));
  TM_RETURN_IF_ERROR(lock->Write({{"pid", getpid()}, {"state", "starting"}}));
  return lock;
}

DaemonLock::~DaemonLock() {
  ::unlink(RecordPath(dir_).c_str());
  ::close(fd_);  // releases the flock
}

Status DaemonLock::Publish(const nlohmann::json& record) {
  nlohmann::json ready = record;
  ready["state"] = "ready";
  return Write(ready);
}

Status DaemonLock::Write(const nlohmann::json& record) {
  std::string tmp = RecordPath(dir_) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << record.dump() << "\n";
    if (!out) return Status::IOError("cannot write " + tmp);
  }
  if (::rename(tmp.c_str(), RecordPath(dir_).c_str()) != 0) {
    return Status::FromErrno(errno, "rename " + tmp);
  }
  return Status::Ok();
}

std::optional<nlohmann::json> RunningDaemon(const std::string& dir) {
  int fd = ::open(LockPath(dir).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
  ::close(fd);
  if (!held) return std::nullopt;
  // Held but no record yet: the daemon is between its lock and its record.
  return ReadRecord(dir).value_or(nlohmann::json::object());
}

Result<std::optional<nlohmann::json>> ReadyDaemon(const std::string& dir,
                                                  std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    std::optional<nlohmann::json> rec = RunningDaemon(dir);
    if (!rec) return std::optional<nlohmann::json>();
    if (rec->is_object() && rec->value("state", "") == "ready") return rec;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::TryAgain(dir + ": daemon starting");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

namespace {
void Notify(const std::string& message) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  struct sockaddr_un sa = {};
  sa.sun_family = AF_UNIX;
  size_t n = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path)) {
    spdlog::warn("NOTIFY_SOCKET {} is not a unix socket path; not notifying", path);
    return;
  }
  std::memcpy(sa.sun_path, path, n);
  if (path[0] == '@') sa.sun_path[0] = '\0';  // abstract namespace
  socklen_t len = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + n);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    spdlog::warn("sd_notify: socket: {}", std::strerror(errno));
    return;
  }
  if (::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
               reinterpret_cast<struct sockaddr*>(&sa), len) < 0) {
    spdlog::warn("sd_notify to {}: {}", path, std::strerror(errno));
  }
  ::close(fd);
}
}  // namespace

void NotifyReady(const std::string& status_line) {
  std::string status = status_line;
  for (char& c : status) {
    if (c == '\n') c = ' ';
  }
  Notify("READY=1\nSTATUS=" + status + "\nMAINPID=" + std::to_string(getpid()) + "\n");
}

void NotifyStopping() { Notify("STOPPING=1\n"); }

Result<std::vector<std::string>> VolumeNames(const VolumeArgs& a, bool names_required) {
  if (a.paths.empty()) return Status::InvalidArgument("--volume is required");
  if (a.paths.size() > 1 && a.group.empty()) {
    return Status::InvalidArgument("several --volume are one consistency group: name it with "
                                   "--group G");
  }
  if ((names_required || !a.names.empty()) && a.names.size() != a.paths.size()) {
    return Status::InvalidArgument("give one --name per --volume (" +
                                   std::to_string(a.paths.size()) + " volumes, " +
                                   std::to_string(a.names.size()) + " names)");
  }
  std::vector<std::string> names = a.names;
  if (names.empty()) {
    for (const std::string& p : a.paths) {
      names.push_back(std::filesystem::path(p).filename().string());
    }
  }
  for (size_t i = 0; i < names.size(); ++i) {
    for (size_t k = 0; k < i; ++k) {
      if (names[i] == names[k]) {
        return Status::InvalidArgument("volume name " + names[i] + " is given twice");
      }
    }
  }
  return names;
}

}  // namespace tidemark::tools
