#include "tidemark/recovery/boot_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "process.h"

namespace tidemark::recovery {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Secs(milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms.count()) / 1000);
  return buf;
}

std::string TimeoutText(milliseconds ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(ms.count()) / 1000);
  return buf;
}

// qemu's option parser ends a value at a comma; ",," is a literal one.
std::string DoubleCommas(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == ',') out += c;
  }
  return out;
}

// cache=none opens the image O_DIRECT, which some filesystems refuse (tmpfs
// before Linux 6.6); NBD drives and devices are not files, so it is fine.
std::string CacheMode(const std::string& drive) {
  struct stat st;
  if (::stat(drive.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return "none";
  int fd = ::open(drive.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return "writeback";
  ::close(fd);
  return "none";
}

// Appends what was added to fd since text.size() bytes.
void ReadMore(int fd, std::string* text) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(text->size()));
    if (n <= 0) return;
    text->append(buf, static_cast<size_t>(n));
  }
}

// Watches a console log for the marker and then for the end of its line.
class MarkerLine {
 public:
  explicit MarkerLine(const std::string& marker) : marker_(marker) {}

  // Takes the console text read so far (a longer prefix each call) at `now`.
  void Update(const std::string& text, Clock::time_point now) {
    if (text.size() != size_) {
      size_ = text.size();
      last_growth_ = now;
    }
    if (at_ == std::string::npos) {
      // A marker split across reads: search again from where it may start.
      size_t from = scanned_ >= marker_.size() ? scanned_ - marker_.size() + 1 : 0;
      at_ = text.find(marker_, from);
      scanned_ = text.size();
      if (at_ == std::string::npos) return;
      seen_ = now;
      newline_from_ = at_ + marker_.size();
    }
    if (!newline_) {
      newline_ = text.find('\n', newline_from_) != std::string::npos;
      newline_from_ = text.size();
    }
  }
  bool seen() const { return at_ != std::string::npos; }
  Clock::time_point seen_at() const { return seen_; }
  // The marker's line has its newline, or the console has not grown for
  // `quiet` since the marker showed (a prompt waiting for input).
  bool Complete(Clock::time_point now, milliseconds quiet) const {
    return seen() && (newline_ || now - last_growth_ >= quiet);
  }

 private:
  const std::string& marker_;
  size_t size_ = 0, scanned_ = 0, at_ = std::string::npos, newline_from_ = 0;
  bool newline_ = false;
  Clock::time_point last_growth_{}, seen_{};
};

std::string FileTail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return LastConsoleLine(ss.str());
}

}  // namespace

std::string LastConsoleLine(std::string_view text, size_t max_chars) {
  if (text.size() > 65536) text.remove_prefix(text.size() - 65536);
  std::string clean;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b) {  // ESC [ params final, or ESC plus one character
      if (i + 1 < text.size() && text[i + 1] == '[') {
        i += 2;
        while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e)) ++i;
      } else {
        ++i;
      }
      continue;
    }
    if (c == '\n' || c == '\t') {
      clean += c == '\t' ? ' ' : '\n';
    } else if (c >= 0x20 && c < 0x7f) {
      clean += static_cast<char>(c);
    } else if (c >= 0x80) {
      clean += '?';  // the reason goes into JSON records: keep it ASCII
    }
  }
  size_t end = clean.size();
  while (end > 0) {
    size_t begin = clean.rfind('\n', end - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    std::string line = clean.substr(begin, end - begin);
    size_t a = line.find_first_not_of(' '), b = line.find_last_not_of(' ');
    if (a != std::string::npos) {
      line = line.substr(a, b - a + 1);
      if (line.size() > max_chars) line = line.substr(0, max_chars) + "...";
      return line;
    }
    if (begin == 0) break;
    end = begin - 1;
  }
  return "";
}

Result<BootCheckResult> BootCheck(const BootCheckOptions& o) {
  if (o.drive.empty() || o.marker.empty() || o.console_log.empty()) {
    return Status::InvalidArgument("boot check: drive, marker and console log are required");
  }
  for (const std::string& d : o.extra_drives) {
    if (d.empty()) return Status::InvalidArgument("boot check: an extra drive is empty");
  }
  if (o.timeout.count() <= 0) return Status::InvalidArgument("boot check: the timeout is 0");
  if (o.prompt_quiet.count() <= 0) {
    return Status::InvalidArgument("boot check: prompt_quiet is 0");
  }
  int fd = ::open(o.console_log.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "create " + o.console_log);
  const std::string qemu_log = o.console_log + ".qemu";
  int q = ::open(qemu_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (q >= 0) ::close(q);
  // clang-format off
  std::vector<std::string> argv = {
      o.qemu, "-accel", o.accel, "-cpu", "max", "-m", std::to_string(o.memory_mib),
      "-nographic", "-no-reboot", "-display", "none", "-monitor", "none", "-nic", "none",
      "-serial", "file:" + o.console_log,
      "-drive", "file=" + DoubleCommas(o.drive) + ",format=" + o.drive_format +
                ",if=virtio,cache=" + CacheMode(o.drive)};
  // clang-format on
  for (const std::string& d : o.extra_drives) {
    argv.insert(argv.end(), {"-drive", "file=" + DoubleCommas(d) + ",format=" + o.drive_format +
                                           ",if=virtio,cache=" + CacheMode(d)});
  }
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  auto spawned = Spawn(argv, {qemu_log, /*new_session=*/false});
  if (!spawned) {
    ::close(fd);
    if (spawned.error().code() == Code::kNotFound) {
      return Status::NotFound(o.qemu + " not found (Debian package qemu-system-x86)");
    }
    return spawned.error();
  }
  const pid_t pid = spawned.value();
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration_cast<milliseconds>(Clock::now() - t0); };
  BootCheckResult r;
  std::string text;
  MarkerLine marker(o.marker);
  auto poll_console = [&] {
    ReadMore(fd, &text);
    marker.Update(text, Clock::now());
  };
  auto last = [&] {
    std::string l = LastConsoleLine(text);
    return l.empty() ? std::string("the console stayed empty") : "last console line: " + l;
  };
  const std::string quoted = "'" + o.marker + "'";
  auto pass = [&] {
    r.passed = true;
    r.elapsed = elapsed();
    r.reason = "marker " + quoted + " seen after " +
               Secs(std::chrono::duration_cast<milliseconds>(marker.seen_at() - t0));
  };
  std::optional<int> exited;
  for (;;) {
    poll_console();
    // qemu is stopped only once the marker's line is whole in the log.
    if (marker.Complete(Clock::now(), o.prompt_quiet)) {
      pass();
      break;
    }
    if ((exited = ExitedChild(pid))) {
      poll_console();  // what it printed just before it exited
      r.elapsed = elapsed();
      if (marker.seen()) {
        pass();
      } else if (WIFEXITED(*exited) && WEXITSTATUS(*exited) == 0) {
        r.reason = "the guest powered off after " + Secs(r.elapsed) + " without the marker " +
                   quoted + "; " + last();
      } else {
        std::string why = FileTail(qemu_log);
        r.reason = "qemu exited with " + DescribeWaitStatus(*exited) + " after " + Secs(r.elapsed) +
                   ", before the marker" + (why.empty() ? "" : ": " + why);
      }
      break;
    }
    if (elapsed() >= o.timeout) {
      if (marker.seen()) {  // in time, its line still being written
        pass();
        break;
      }
      r.elapsed = elapsed();
      r.reason = "no marker " + quoted + " within " + TimeoutText(o.timeout) + "; " + last();
      break;
    }
    if (o.abort_reason) {
      std::string why = o.abort_reason();
      if (!why.empty()) {
        r.elapsed = elapsed();
        r.reason = why + " after " + Secs(r.elapsed) + ", before the marker";
        break;
      }
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  if (!exited) {
    // Our child stays a zombie until reaped, so its pid cannot be reused.
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 250 && !(exited = ExitedChild(pid)); ++i) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    if (!exited) {
      ::kill(pid, SIGKILL);
      int st;
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  ::close(fd);
  return r;
}

}  // namespace tidemark::recovery
