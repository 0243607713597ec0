#include "tidemark/journal/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace tidemark {

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open directory " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno(err, "sync directory " + dir);
  return Status::Ok();
}

}  // namespace tidemark
