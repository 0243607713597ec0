#include "tidemark/recovery/read_plan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>

#include "tidemark/capture/uring.h"

namespace tidemark::recovery {

namespace {

// One chunk to fetch, and the pieces of the plan that take blocks from it.
struct Chunk {
  uint32_t file = 0;
  uint64_t offset = 0;
  const journal::ReadPiece* first = nullptr;  // for its descriptor
  std::vector<const journal::ReadPiece*> pieces;
};

// One I/O: chunks [begin, end) of the sorted list, bytes [offset, offset +
// length) of the file, read as [io_offset, io_offset + io_length): the same,
// or widened to kDirectAlign for an O_DIRECT read.
struct Read {
  uint32_t file = 0;
  uint64_t offset = 0;
  size_t length = 0;
  size_t begin = 0, end = 0;
  uint64_t io_offset = 0;
  size_t io_length = 0;
  bool direct = false;
  char* buf = nullptr;  // from PlanRunner::Impl's pool while in flight
};

// O_DIRECT reads start, end and land on this boundary (the largest logical
// block size of the disks we meet).
constexpr size_t kDirectAlign = 4096;

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

// A read buffer, kept between reads and aligned for O_DIRECT: a fresh one per
// read would cost a page fault per 4 KiB (expensive on a VM) and a zero fill.
struct Buffer {
  std::unique_ptr<char, FreeDeleter> data;
  size_t size = 0;
};

// A segment file, opened for buffered reads and, where the file system takes
// it, for O_DIRECT ones.
struct File {
  int fd = -1;
  int direct_fd = -1;
};

}  // namespace

struct PlanRunner::Impl {
  PlanRunnerOptions o;
  std::unique_ptr<capture::Ring> ring;
  std::map<std::string, File> files;  // kept open between Runs
  std::vector<Buffer> free_buffers;    // at most queue_depth, kept between Runs
  ~Impl() {
    ring.reset();  // waits for reads in flight before their fds close
    for (auto& [path, f] : files) {
      ::close(f.fd);
      if (f.direct_fd >= 0) ::close(f.direct_fd);
    }
  }
  Result<File> Open(const std::string& path) {
    auto it = files.find(path);
    if (it != files.end()) return it->second;
    File f;
    f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) return Status::FromErrno(errno, "open " + path);
    // EINVAL (tmpfs, some FUSE file systems): buffered reads only.
    if (o.direct_io) f.direct_fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    files.emplace(path, f);
    return f;
  }
  Result<Buffer> Take(size_t size) {
    Buffer b;
    if (!free_buffers.empty()) {
      b = std::move(free_buffers.back());
      free_buffers.pop_back();
    }
    if (b.size < size) {
      // aligned_alloc wants a multiple of the alignment. Uninitialised: the read fills it.
      size = (size + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
      b.data.reset(static_cast<char*>(std::aligned_alloc(kDirectAlign, size)));
      if (!b.data) return Status::IOError("out of memory for a " + std::to_string(size) + "-byte read");
      b.size = size;
    }
    return b;
  }
};

PlanRunner::PlanRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PlanRunner::~PlanRunner() = default;

Result<std::unique_ptr<PlanRunner>> PlanRunner::Create(PlanRunnerOptions options) {
  auto impl = std::make_unique<Impl>();
  options.queue_depth = std::clamp(options.queue_depth, 1u, 256u);
  impl->o = options;
  BOOST_OUTCOME_TRY(ring, capture::Ring::Create(options.queue_depth));
  impl->ring = std::move(ring);
  auto r = std::unique_ptr<PlanRunner>(new PlanRunner(std::move(impl)));
  r->stats_.io_uring = r->impl_->ring->uses_io_uring();
  return r;
}

Status PlanRunner::Run(const journal::ReadPlan& plan, const journal::BlockFn& fn) {
  Impl& in = *impl_;
  if (!in.ring) return Status::IOError("volume " + plan.volume + ": no read ring after an error");
  const uint64_t bs = plan.block_bytes;
  // Each chunk once, sorted by file and offset.
  std::vector<Chunk> chunks;
  {
    std::map<std::pair<uint32_t, uint64_t>, size_t> at;
    for (const journal::ReadPiece& p : plan.pieces) {
      auto [it, added] = at.emplace(std::make_pair(p.file, p.offset), chunks.size());
      if (added) chunks.push_back({p.file, p.offset, &p, {}});
      chunks[it->second].pieces.push_back(&p);
    }
  }
  std::sort(chunks.begin(), chunks.end(), [](const Chunk& a, const Chunk& b) {
    return a.file != b.file ? a.file < b.file : a.offset < b.offset;
  });
  // Neighbours coalesced.
  std::vector<Read> reads;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    const uint64_t end = c.offset + c.first->chunk.stored_len;
    if (!reads.empty()) {
      Read& r = reads.back();
      if (r.file == c.file && c.offset <= r.offset + r.length + in.o.max_gap_bytes &&
          end - r.offset <= in.o.max_read_bytes) {
        r.length = std::max<size_t>(r.length, end - r.offset);
        r.end = i + 1;
        continue;
      }
    }
    Read r;
    r.file = c.file;
    r.offset = c.offset;
    r.length = c.first->chunk.stored_len;
    r.begin = i;
    r.end = i + 1;
    reads.push_back(r);
  }
  std::vector<File> files(plan.files.size());
  for (size_t f = 0; f < plan.files.size(); ++f) {
    auto file = in.Open(plan.files[f]);
    if (!file) {
      return Status(file.error().code(), "volume " + plan.volume + ": " + file.error().message());
    }
    files[f] = file.value();
  }
  // O_DIRECT where the widened read stays inside the file (a read past its end
  // comes back short and cannot be continued unaligned); buffered otherwise.
  std::vector<uint64_t> sizes(files.size(), 0);
  for (size_t f = 0; f < files.size(); ++f) {
    struct stat st {};
    if (files[f].direct_fd >= 0 && ::fstat(files[f].fd, &st) == 0) sizes[f] = static_cast<uint64_t>(st.st_size);
  }
  size_t largest = 0;
  for (Read& r : reads) {
    const uint64_t begin = r.offset / kDirectAlign * kDirectAlign;
    const uint64_t end = (r.offset + r.length + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
    r.direct = files[r.file].direct_fd >= 0 && end <= sizes[r.file];
    r.io_offset = r.direct ? begin : r.offset;
    r.io_length = r.direct ? end - begin : r.length;
    largest = std::max(largest, r.io_length);
  }
  // At depth: queue, then take completions and decode their chunks.
  std::string raw;
  size_t next = 0, inflight = 0;
  std::vector<capture::Completion> done;
  std::vector<Buffer> busy(in.o.queue_depth);  // the buffers of reads in flight
  std::vector<size_t> slot_of(reads.size());    // read -> its slot in busy
  Status first_error;
  auto decode = [&](const Read& r) -> Status {
    for (size_t i = r.begin; i < r.end; ++i) {
      const Chunk& c = chunks[i];
      const journal::seg::ChunkDesc& d = c.first->chunk;
      const std::string_view stored(r.buf + (c.offset - r.io_offset), d.stored_len);
      // A plain chunk is used where it was read; others are decoded into raw.
      std::string_view data = stored;
      Status s;
      if (d.codec == Codec::kNone && !(d.flags & journal::seg::kChunkZero)) {
        s = journal::seg::VerifyChunk(d, stored);
        if (s.ok() && d.stored_len != d.raw_len) s = Status::Corruption("plain chunk of the wrong length");
      } else {
        raw.resize(d.raw_len);
        s = journal::seg::ReadChunk(d, stored, raw.data());
        data = raw;
      }
      if (!s.ok()) {
        return Status(s.code(), "volume " + plan.volume + " block " +
                                    std::to_string(c.first->first_block) + " seq " +
                                    std::to_string(c.first->seq) + ": " + plan.files[c.file] +
                                    " offset " + std::to_string(c.offset) + ": " + s.message());
      }
      ++stats_.chunks;
      for (const journal::ReadPiece* p : c.pieces) {
        for (uint32_t b = 0; b < p->blocks; ++b) {
          TM_RETURN_IF_ERROR(fn(p->first_block + b,
                                data.substr((p->skip_blocks + b) * bs, bs)));
        }
      }
    }
    return Status::Ok();
  };
  while (next < reads.size() || inflight > 0) {
    while (next < reads.size() && inflight < in.o.queue_depth && first_error.ok()) {
      Read& r = reads[next];
      // Reads complete in any order, so a slot is found by a free index.
      size_t slot = 0;
      while (busy[slot].data) ++slot;
      auto buffer = in.Take(std::max(largest, r.io_length));
      if (!buffer) {
        first_error = buffer.error();
        break;
      }
      busy[slot] = std::move(buffer.value());
      r.buf = busy[slot].data.get();
      slot_of[next] = slot;
      in.ring->QueueRead(r.direct ? files[r.file].direct_fd : files[r.file].fd, r.buf, r.io_length,
                         r.io_offset, next);
      ++next;
      ++inflight;
      ++stats_.reads;
      stats_.read_bytes += r.io_length;
      if (r.direct) ++stats_.direct_reads;
    }
    if (inflight == 0) break;
    done.clear();
    if (Status w = in.ring->Wait(1, &done); !w.ok()) {
      // Reads may still be in flight into `busy`: a new ring replaces this one
      // only after its destructor has waited for them.
      in.ring.reset();
      if (auto ring = capture::Ring::Create(in.o.queue_depth)) in.ring = std::move(ring.value());
      return w;
    }
    for (const capture::Completion& c : done) {
      --inflight;
      Read& r = reads[c.tag];
      Status s = c.status;
      if (!s.ok()) {
        s = Status(s.code(), "volume " + plan.volume + ": read " + plan.files[r.file] + ": " +
                                 s.message());
      } else if (first_error.ok()) {
        s = decode(r);
      }
      if (!s.ok() && first_error.ok()) first_error = s;
      in.free_buffers.push_back(std::move(busy[slot_of[c.tag]]));
      busy[slot_of[c.tag]] = {};
      r.buf = nullptr;
    }
  }
  return first_error;
}

Status PlanRunner::RunInBlockOrder(const journal::ReadPlan& plan, uint64_t first_block,
                                   uint64_t end_block, const journal::BlockFn& fn) {
  if (end_block <= first_block) return Status::Ok();
  const uint64_t bs = plan.block_bytes;
  window_.resize((end_block - first_block) * bs);
  have_.assign(end_block - first_block, 0);
  TM_RETURN_IF_ERROR(Run(plan, [&](uint64_t b, std::string_view d) -> Status {
    if (b < first_block || b >= end_block) {
      return Status::InvalidArgument("read plan block " + std::to_string(b) + " outside its range");
    }
    std::memcpy(window_.data() + (b - first_block) * bs, d.data(), bs);
    have_[b - first_block] = 1;
    return Status::Ok();
  }));
  for (uint64_t i = 0; i < have_.size(); ++i) {
    if (have_[i]) TM_RETURN_IF_ERROR(fn(first_block + i, std::string_view(window_).substr(i * bs, bs)));
  }
  return Status::Ok();
}

}  // namespace tidemark::recovery
