#include "tidemark/recovery/read_plan.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
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

// One I/O: chunks [begin, end) of the sorted list, from `offset` on.
struct Read {
  uint32_t file = 0;
  uint64_t offset = 0;
  size_t length = 0;
  size_t begin = 0, end = 0;
  std::string buf;
};

}  // namespace

struct PlanRunner::Impl {
  PlanRunnerOptions o;
  std::unique_ptr<capture::Ring> ring;
  std::map<std::string, int> fds;  // kept open between Runs
  ~Impl() {
    ring.reset();  // waits for reads in flight before their fds close
    for (auto& [path, fd] : fds) ::close(fd);
  }
  Result<int> Fd(const std::string& path) {
    auto it = fds.find(path);
    if (it != fds.end()) return it->second;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, "open " + path);
    fds.emplace(path, fd);
    return fd;
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
    reads.push_back({c.file, c.offset, c.first->chunk.stored_len, i, i + 1, {}});
  }
  std::vector<int> fds(plan.files.size(), -1);
  for (size_t f = 0; f < plan.files.size(); ++f) {
    auto fd = in.Fd(plan.files[f]);
    if (!fd) {
      return Status(fd.error().code(), "volume " + plan.volume + ": " + fd.error().message());
    }
    fds[f] = fd.value();
  }
  // At depth: queue, then take completions and decode their chunks.
  std::string raw;
  size_t next = 0, inflight = 0;
  std::vector<capture::Completion> done;
  Status first_error;
  auto decode = [&](const Read& r) -> Status {
    for (size_t i = r.begin; i < r.end; ++i) {
      const Chunk& c = chunks[i];
      const journal::seg::ChunkDesc& d = c.first->chunk;
      raw.resize(d.raw_len);
      Status s = journal::seg::ReadChunk(
          d, std::string_view(r.buf).substr(c.offset - r.offset, d.stored_len), raw.data());
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
                                std::string_view(raw).substr((p->skip_blocks + b) * bs, bs)));
        }
      }
    }
    return Status::Ok();
  };
  while (next < reads.size() || inflight > 0) {
    while (next < reads.size() && inflight < in.o.queue_depth && first_error.ok()) {
      Read& r = reads[next];
      r.buf.resize(r.length);
      in.ring->QueueRead(fds[r.file], r.buf.data(), r.length, r.offset, next);
      ++next;
      ++inflight;
      ++stats_.reads;
      stats_.read_bytes += r.length;
    }
    if (inflight == 0) break;
    done.clear();
    TM_RETURN_IF_ERROR(in.ring->Wait(1, &done));
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
      std::string().swap(r.buf);
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
