#include "tidemark/recovery/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "tidemark/capture/uring.h"
#include "tidemark/recovery/read_plan.h"

namespace tidemark::recovery {

namespace fs = std::filesystem;

std::string_view ImageFormatName(ImageFormat f) {
  switch (f) {
    case ImageFormat::kRaw: return "raw";
    case ImageFormat::kQcow2: return "qcow2";
    case ImageFormat::kVmdk: return "vmdk";
    case ImageFormat::kVhdx: return "vhdx";
  }
  return "raw";
}

Result<ImageFormat> ParseImageFormat(std::string_view name) {
  for (ImageFormat f : {ImageFormat::kRaw, ImageFormat::kQcow2, ImageFormat::kVmdk,
                        ImageFormat::kVhdx}) {
    if (ImageFormatName(f) == name) return f;
  }
  return Status::InvalidArgument("unknown image format '" + std::string(name) +
                                 "' (raw, qcow2, vmdk, vhdx)");
}

namespace {

// Closes the fd and removes the temporary file unless released.
class TempFile {
 public:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  Status Close() {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Status::FromErrno(errno, "close " + path_);
    return Status::Ok();
  }
  void Release() { path_.clear(); }

 private:
  std::string path_;
  int fd_;
};

Result<std::unique_ptr<TempFile>> CreateTemp(const std::string& output, std::string_view tag) {
  std::string path = output + ".tidemark-" + std::string(tag) + "-" + std::to_string(getpid());
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "cannot create " + output);
  return std::make_unique<TempFile>(path, fd);
}

// Runs qemu-img convert; its stderr's first line becomes the error message.
Status QemuImgConvert(const std::string& raw, const std::string& out, ImageFormat fmt) {
  std::string err_path = out + ".tidemark-qemu-err-" + std::to_string(getpid());
  pid_t pid = fork();
  if (pid < 0) return Status::FromErrno(errno, "fork");
  if (pid == 0) {
    int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      dup2(fd, 2);
      dup2(fd, 1);
    }
    std::string f(ImageFormatName(fmt));
    execlp("qemu-img", "qemu-img", "convert", "-q", "-f", "raw", "-O", f.c_str(), raw.c_str(),
           out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  std::string msg;
  if (FILE* f = fopen(err_path.c_str(), "r")) {
    char line[512];
    if (fgets(line, sizeof line, f)) msg = line;
    fclose(f);
  }
  ::unlink(err_path.c_str());
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127) {
    return Status::NotFound("qemu-img is needed for --format " +
                            std::string(ImageFormatName(fmt)) +
                            " (Debian package qemu-utils)");
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Status::IOError("qemu-img convert to " + std::string(ImageFormatName(fmt)) +
                           " failed: " + (msg.empty() ? "no message" : msg));
  }
  return Status::Ok();
}

// The blocks of [first_block, end_block), in block order (see WriteRaw).
using PartSource =
    std::function<Status(uint64_t first_block, uint64_t end_block, const journal::BlockFn& fn)>;

// A second descriptor of the temporary image with O_DIRECT, or -1 when the
// volume's blocks are not whole multiples of the file system's block size or
// the file system refuses O_DIRECT (tmpfs): then writes go through the page
// cache. Direct writes skip the copy into the page cache (and the io_uring
// worker thread that makes it), the largest CPU cost of a restore.
int OpenDirect(const std::string& path, int fd, const journal::VolumeInfo& vol) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_blksize <= 0 || st.st_blksize > 65536 ||
      vol.block_bytes % static_cast<uint32_t>(st.st_blksize) != 0 ||
      capture::ParallelWriter::kBufferAlign % static_cast<size_t>(st.st_blksize) != 0) {
    return -1;
  }
  return ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
}

// Writes the raw image from `parts` scans of equal block ranges at once: part 0
// on the calling thread (which alone reports progress), the others on threads
// of their own, each with its own ParallelWriter. The first error stops every
// part.
Status WriteRaw(const PartSource& source, unsigned parts, const journal::VolumeInfo& vol,
                const RestoreOptions& o, const std::string& path, int fd, RestoreStats* stats) {
  if (::ftruncate(fd, static_cast<off_t>(vol.size_bytes)) != 0) {
    return Status::FromErrno(errno, "size " + o.output_path);
  }
  const uint64_t total = vol.size_bytes;
  const int direct_fd = o.direct_io ? OpenDirect(path, fd, vol) : -1;
  struct CloseFd {
    int fd;
    ~CloseFd() {
      if (fd >= 0) ::close(fd);
    }
  } close_direct{direct_fd};
  stats->direct_io = direct_fd >= 0;
  struct Part {
    uint64_t data_bytes = 0;
    uint64_t blocks = 0;
    bool io_uring = false;
    std::atomic<uint64_t> scanned{0};  // bytes of the volume passed by this part
    Status status;
  };
  std::vector<Part> results(parts);
  std::atomic<bool> stop{false};
  auto run = [&](unsigned i) {
    Part& p = results[i];
    auto writer_r = capture::ParallelWriter::Create(direct_fd >= 0 ? direct_fd : fd, o.queue_depth);
    if (!writer_r) {
      p.status = writer_r.error();
      stop = true;
      return;
    }
    auto& writer = writer_r.value();
    p.io_uring = writer->uses_io_uring();
    const uint64_t first_block = vol.blocks() * i / parts;
    const uint64_t end_block = vol.blocks() * (i + 1) / parts;
    uint64_t next_report = 0;
    Status s = source(first_block, end_block, [&](uint64_t block, std::string_view data) {
      if (stop.load(std::memory_order_relaxed)) return Status::Aborted("restore stopped");
      uint64_t off = block * vol.block_bytes;
      // The last block of a volume that is not a multiple of the block size.
      if (off + data.size() > total) data = data.substr(0, total - off);
      p.data_bytes += data.size();
      ++p.blocks;
      p.scanned.store(off - first_block * vol.block_bytes, std::memory_order_relaxed);
      if (i == 0 && o.progress && off >= next_report) {
        uint64_t done = 0;
        for (const Part& q : results) done += q.scanned.load(std::memory_order_relaxed);
        o.progress(done, total);
        next_report = off + total / parts / 100 + 1;
      }
      // That short block goes through the page cache: O_DIRECT needs whole blocks.
      if (direct_fd >= 0 && data.size() != vol.block_bytes) {
        if (::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)) !=
            static_cast<ssize_t>(data.size())) {
          return Status::FromErrno(errno, "write " + o.output_path);
        }
        return Status::Ok();
      }
      return writer->Write(off, data);
    });
    Status f = writer->Finish();
    p.status = !s.ok() ? s : f;
    if (!p.status.ok()) stop = true;
  };
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < parts; ++i) threads.emplace_back(run, i);
  run(0);
  for (auto& t : threads) t.join();
  // The first real error: a part stopped by another's failure says kAborted.
  Status first;
  for (Part& p : results) {
    stats->data_bytes += p.data_bytes;
    stats->blocks += p.blocks;
    stats->io_uring = p.io_uring;
    if (!p.status.ok() && (first.ok() || first.code() == Code::kAborted)) first = p.status;
  }
  TM_RETURN_IF_ERROR(first);
  if (o.progress) o.progress(total, total);
  if (::fdatasync(fd) != 0) return Status::FromErrno(errno, "sync " + o.output_path);
  return Status::Ok();
}

// How many ranges a local restore scans at once.
unsigned ScanParts(const journal::VolumeInfo& vol, const RestoreOptions& o) {
  if (vol.size_bytes < (uint64_t{64} << 20)) return 1;
  unsigned n = o.scan_threads;
  if (n == 0) n = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  return static_cast<unsigned>(std::min<uint64_t>(n, vol.blocks()));
}

Result<RestoreStats> RestoreParts(const journal::VolumeInfo& vol, const PartSource& source,
                                  unsigned parts, const RestoreOptions& o);

}  // namespace

Result<RestoreStats> Restore(const journal::Journal& journal, uint32_t volume, Seq seq,
                             const RestoreOptions& o) {
  for (const auto& v : journal.Volumes()) {
    if (v.id == volume) {
      return RestoreParts(
          v,
          [&](uint64_t first, uint64_t end, const journal::BlockFn& fn) -> Status {
            if (journal.meta().format_version < 2) return journal.ScanBlockRange(volume, seq, first, end, fn);
            // Format 2: the read plan of a window at a time, each chunk read
            // once, sorted and coalesced, at depth (docs/format-journal.md#read-plan).
            // Handed over in block order, 64 MiB at a time (see RunInBlockOrder).
            BOOST_OUTCOME_TRY(runner, PlanRunner::Create());
            const uint64_t window = std::max<uint64_t>(1, (uint64_t{64} << 20) / v.block_bytes);
            for (uint64_t b = first; b < end; b += window) {
              const uint64_t e = std::min(end, b + window);
              BOOST_OUTCOME_TRY(plan, journal.PlanRead(volume, seq, b, e));
              TM_RETURN_IF_ERROR(runner->RunInBlockOrder(plan, b, e, fn));
            }
            return Status::Ok();
          },
          ScanParts(v, o), o);
    }
  }
  return Status::NotFound("no volume with id " + std::to_string(volume));
}

Result<RestoreStats> RestoreBlocks(const journal::VolumeInfo& vol, const BlockSource& source,
                                   const RestoreOptions& o) {
  return RestoreParts(
      vol, [&](uint64_t, uint64_t, const journal::BlockFn& fn) { return source(fn); }, 1, o);
}

namespace {

Result<RestoreStats> RestoreParts(const journal::VolumeInfo& vol, const PartSource& source,
                                  unsigned parts, const RestoreOptions& o) {
  auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::file_status st = fs::status(o.output_path, ec);
  if (fs::exists(st)) {
    if (fs::is_directory(st)) {
      return Status::InvalidArgument("output " + o.output_path + " is a directory");
    }
    if (!fs::is_regular_file(st)) {
      return Status::NotSupported("output " + o.output_path +
                                  " is not a regular file (restoring onto devices is not "
                                  "supported yet)");
    }
    if (!o.force) {
      return Status::InvalidArgument("output " + o.output_path +
                                     " exists; pass --force to replace it");
    }
  }
  RestoreStats stats;
  stats.volume_bytes = vol.size_bytes;
  BOOST_OUTCOME_TRY(raw, CreateTemp(o.output_path, "raw"));
  TM_RETURN_IF_ERROR(WriteRaw(source, parts, vol, o, raw->path(), raw->fd(), &stats));
  TM_RETURN_IF_ERROR(raw->Close());
  if (o.format == ImageFormat::kRaw) {
    if (::rename(raw->path().c_str(), o.output_path.c_str()) != 0) {
      return Status::FromErrno(errno, "rename to " + o.output_path);
    }
    raw->Release();
  } else {
    // qemu-img writes its own temporary output, renamed into place after.
    std::string converted = o.output_path + ".tidemark-conv-" + std::to_string(getpid());
    Status s = QemuImgConvert(raw->path(), converted, o.format);
    if (!s.ok()) {
      ::unlink(converted.c_str());
      return s;
    }
    if (::rename(converted.c_str(), o.output_path.c_str()) != 0) {
      Status r = Status::FromErrno(errno, "rename to " + o.output_path);
      ::unlink(converted.c_str());
      return r;
    }
  }
  stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace

}  // namespace tidemark::recovery
