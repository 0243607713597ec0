#include "daemon.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    auto rec = ReadRecord(dir);
    std::string who = rec && rec->contains("pid") ? " (pid " + rec->at("pid").dump() + ")" : "";
    return Status::TryAgain("journal " + dir + " is in use by another tidemark daemon" + who);
  }
  return std::unique_ptr<DaemonLock>(new DaemonLock(dir, fd));
}

DaemonLock::~DaemonLock() {
  ::unlink(RecordPath(dir_).c_str());
  ::close(fd_);  // releases the flock
}

Status DaemonLock::Publish(const nlohmann::json& record) {
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
  return ReadRecord(dir);
}

}  // namespace tidemark::tools
