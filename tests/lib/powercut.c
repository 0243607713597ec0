// A fault-injecting file layer for power-cut tests (docs/testing.md#power-cut), loaded
// with LD_PRELOAD into the process under test. It records, for every file under
// $POWERCUT_DIR, how long the file was each time it was made durable (fsync, fdatasync,
// sync_file_range with SYNC_FILE_RANGE_WAIT_AFTER), and every rename, one line each in
// $POWERCUT_LOG:
//   sync PATH SIZE
//   rename FROM TO
// After the process is killed, tests/lib/powercut.py cuts the files back to what was
// durable and tears the last write: what a power loss leaves (kill -9 alone keeps the
// page cache). No device-mapper is needed.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int log_fd = -2;
static const char* prefix;
static size_t prefix_len;

static void init(void) {
  if (log_fd != -2) return;
  log_fd = -1;
  prefix = getenv("POWERCUT_DIR");
  const char* log = getenv("POWERCUT_LOG");
  if (!prefix || !log) return;
  prefix_len = strlen(prefix);
  log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static int under(const char* path) { return strncmp(path, prefix, prefix_len) == 0; }

static void note_sync(int fd) {
  init();
  if (log_fd < 0) return;
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return;
  path[n] = 0;
  if (!under(path)) return;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
  char line[PATH_MAX + 64];
  int len = snprintf(line, sizeof line, "sync %s %lld\n", path, (long long)st.st_size);
  if (write(log_fd, line, len) < 0) return;
}

static void note_rename(const char* from, const char* to) {
  init();
  if (log_fd < 0) return;
  char a[2 * PATH_MAX + 2], b[PATH_MAX];
  if (!realpath(to, b)) return;
  // `from` is gone: its directory is `to`'s when it has no slash.
  if (from[0] == '/') {
    snprintf(a, sizeof a, "%s", from);
  } else {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", b);
    char* slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    const char* base = strrchr(from, '/');
    snprintf(a, sizeof a, "%s/%s", dir, base ? base + 1 : from);
  }
  if (!under(b)) return;
  char line[2 * PATH_MAX + 16];
  int len = snprintf(line, sizeof line, "rename %s %s\n", a, b);
  if (write(log_fd, line, len) < 0) return;
}

typedef int (*fd_fn)(int);
typedef int (*range_fn)(int, off64_t, off64_t, unsigned int);
typedef int (*rename_fn)(const char*, const char*);
typedef int (*renameat_fn)(int, const char*, int, const char*);
#define REAL(name, type) \
  static type real_##name; \
  if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

int fsync(int fd) {
  REAL(fsync, fd_fn);
  int rc = real_fsync(fd);
  if (rc == 0) note_sync(fd);
  return rc;
}

int fdatasync(int fd) {
  REAL(fdatasync, fd_fn);
  int rc = real_fdatasync(fd);
  if (rc == 0) note_sync(fd);
  return rc;
}

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
  REAL(sync_file_range, range_fn);
  int rc = real_sync_file_range(fd, off, n, flags);
  (void)rc;  // a range: only whole-file syncs are counted (conservative)
  return rc;
}

int rename(const char* from, const char* to) {
  REAL(rename, rename_fn);
  int rc = real_rename(from, to);
  if (rc == 0) note_rename(from, to);
  return rc;
}

int renameat(int fromdir, const char* from, int todir, const char* to) {
  REAL(renameat, renameat_fn);
  int rc = real_renameat(fromdir, from, todir, to);
  if (rc == 0 && fromdir == AT_FDCWD && todir == AT_FDCWD) note_rename(from, to);
  return rc;
}
