// nbd_test_server: serves one file over NBD for tests/test-nbd-*.sh.
//
//   nbd_test_server [--read-only] [--name NAME] --listen unix:SOCK|HOST:PORT FILE
//
// Prints "ready ADDRESS" on stdout once listening; stops on SIGTERM/SIGINT.
// Synchronous pread/pwrite; TRIM and WRITE_ZEROES punch holes; BLOCK_STATUS
// comes from SEEK_DATA/SEEK_HOLE. Not the tap: no journal, no io_uring.
#include <fcntl.h>
#include <linux/falloc.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "tidemark/capture/nbd.h"

namespace nbd = tidemark::capture::nbd;
using tidemark::Status;

namespace {

class FileDevice : public nbd::BlockDevice {
 public:
  FileDevice(int fd, uint64_t size, bool read_only) : fd_(fd), size_(size), read_only_(read_only) {}
  ~FileDevice() override { ::close(fd_); }

  uint64_t size_bytes() const override { return size_; }
  bool read_only() const override { return read_only_; }

  void Submit(nbd::Request r, nbd::ReplyFn reply) override {
    nbd::Reply out;
    out.status = Do(r, &out);
    reply(std::move(out));
  }

 private:
  Status Do(nbd::Request& r, nbd::Reply* out) {
    const auto off = static_cast<off_t>(r.offset_bytes);
    switch (r.command) {
      case nbd::Command::kRead: {
        out->data.resize(r.length_bytes);
        size_t done = 0;
        while (done < r.length_bytes) {
          ssize_t n = ::pread(fd_, out->data.data() + done, r.length_bytes - done,
                              off + static_cast<off_t>(done));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return Status::FromErrno(errno, "pread");
          if (n == 0) break;  // past EOF of a shrunken file: zeros
          done += static_cast<size_t>(n);
        }
        return Status::Ok();
      }
      case nbd::Command::kWrite: {
        size_t done = 0;
        while (done < r.data.size()) {
          ssize_t n = ::pwrite(fd_, r.data.data() + done, r.data.size() - done,
                               off + static_cast<off_t>(done));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) return Status::FromErrno(errno, "pwrite");
          done += static_cast<size_t>(n);
        }
        return Fua(r);
      }
      case nbd::Command::kFlush:
        return ::fdatasync(fd_) == 0 ? Status::Ok() : Status::FromErrno(errno, "fdatasync");
      case nbd::Command::kTrim:
      case nbd::Command::kWriteZeroes: {
        int mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
        if (r.command == nbd::Command::kWriteZeroes && (r.flags & nbd::kFlagNoHole))
          mode = FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE;
        if (::fallocate(fd_, mode, off, r.length_bytes) < 0) {
          if (r.command == nbd::Command::kTrim) return Status::FromErrno(errno, "fallocate");
          // WRITE_ZEROES must zero: fall back to writing zeros.
          std::string zeros(r.length_bytes, '\0');
          if (::pwrite(fd_, zeros.data(), zeros.size(), off) != static_cast<ssize_t>(zeros.size()))
            return Status::FromErrno(errno, "pwrite zeros");
        }
        return Fua(r);
      }
      case nbd::Command::kBlockStatus:
        return BlockStatus(r, out);
      default:
        return Status::InvalidArgument("unknown command");
    }
  }

  Status Fua(const nbd::Request& r) {
    if ((r.flags & nbd::kFlagFua) && ::fdatasync(fd_) < 0)
      return Status::FromErrno(errno, "fdatasync");
    return Status::Ok();
  }

  Status BlockStatus(const nbd::Request& r, nbd::Reply* out) {
    auto pos = static_cast<off_t>(r.offset_bytes);
    const auto end = static_cast<off_t>(r.offset_bytes + r.length_bytes);
    while (pos < end) {
      off_t data = ::lseek(fd_, pos, SEEK_DATA);
      if (data < 0 && errno != ENXIO) return Status::FromErrno(errno, "SEEK_DATA");
      if (data < 0 || data > pos) {  // a hole up to `data` (ENXIO: to EOF)
        off_t hole_end = data < 0 || data > end ? end : data;
        out->extents.push_back({static_cast<uint32_t>(hole_end - pos), true, true});
        pos = hole_end;
        continue;
      }
      off_t hole = ::lseek(fd_, pos, SEEK_HOLE);
      if (hole < 0) return Status::FromErrno(errno, "SEEK_HOLE");
      off_t data_end = hole > end ? end : hole;
      out->extents.push_back({static_cast<uint32_t>(data_end - pos), false, false});
      pos = data_end;
    }
    return Status::Ok();
  }

  const int fd_;
  const uint64_t size_;
  const bool read_only_;
};

std::atomic<nbd::Server*> g_server{nullptr};
void OnSignal(int) {
  if (nbd::Server* s = g_server.load()) s->StopFromSignal();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Serve a file over NBD (tidemark test helper)"};
  std::string listen, file, name, description;
  bool read_only = false;
  app.add_option("--listen", listen, "unix:SOCK or HOST:PORT (port 0: any)")->required();
  app.add_option("--name", name, "export name (default: the file's base name)");
  app.add_option("--description", description, "export description");
  app.add_flag("--read-only", read_only, "refuse writes");
  app.add_option("file", file, "the file to serve")->required();
  CLI11_PARSE(app, argc, argv);
  if (const char* level = std::getenv("TM_LOG_LEVEL"))
    spdlog::set_level(spdlog::level::from_str(level));

  int fd = ::open(file.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) < 0) {
    std::fprintf(stderr, "nbd_test_server: %s: %s\n", file.c_str(), std::strerror(errno));
    return 1;
  }
  if (name.empty()) {
    size_t slash = file.rfind('/');
    name = slash == std::string::npos ? file : file.substr(slash + 1);
  }
  nbd::ServerOptions options;
  options.listen = listen;
  options.exports.push_back(
      {name, description,
       std::make_shared<FileDevice>(fd, static_cast<uint64_t>(st.st_size), read_only)});

  auto started = nbd::Server::Start(std::move(options));
  if (!started) {
    std::fprintf(stderr, "nbd_test_server: %s\n", started.error().ToString().c_str());
    return 1;
  }
  std::unique_ptr<nbd::Server> server = std::move(started.value());
  g_server = server.get();
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::printf("ready %s\n", server->address().c_str());
  std::fflush(stdout);
  server->Wait();
  g_server = nullptr;
  return 0;
}
