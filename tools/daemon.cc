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
