// ParallelWriter: coalescing, pipelined writes over a Ring. See uring.h.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "tidemark/capture/uring.h"

namespace tidemark::capture {
namespace {

constexpr size_t kBufferAlign = ParallelWriter::kBufferAlign;
constexpr uint64_t kMaxOffset =
    static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

struct Chunk {
  std::unique_ptr<char, FreeDeleter> mem;
  uint64_t offset_bytes = 0;
  size_t len_bytes = 0;
  bool in_flight = false;
};

}  // namespace

struct ParallelWriter::Impl {
  int fd = -1;
  unsigned queue_depth = 0;
  size_t chunk_bytes = 0;
  // Up to queue_depth + 1 chunks: queue_depth in flight plus the one being
  // filled. A chunk's index is its Ring tag.
  std::vector<Chunk> chunks;
  std::vector<uint32_t> free_chunks;
  int open = -1;  // Chunk being filled, or -1.
  unsigned in_flight = 0;
  uint64_t bytes_written = 0;
  Status first_error;
  // Declared after `chunks` so it is destroyed first: ~Ring waits for writes
  // still reading from chunk memory.
  std::unique_ptr<Ring> ring;

  // Waits for at least `min` writes and records their outcome. Returns the
  // first error so far.
  Status Reap(unsigned min) {
    std::vector<Completion> done;
    Status s = ring->Wait(min, &done);
    for (Completion& c : done) {
      Chunk& chunk = chunks[c.tag];
      chunk.in_flight = false;
      free_chunks.push_back(static_cast<uint32_t>(c.tag));
      --in_flight;
      if (c.status.ok()) {
        bytes_written += c.bytes;
      } else if (first_error.ok()) {
        first_error = std::move(c.status);
      }
    }
    if (!s.ok() && first_error.ok()) first_error = std::move(s);
    return first_error;
  }

  Result<uint32_t> Acquire() {
    // With the open chunk submitted, at most queue_depth chunks are busy, so
    // either one is free, a new one may be allocated, or one is in flight.
    while (free_chunks.empty() && chunks.size() > queue_depth)
      TM_RETURN_IF_ERROR(Reap(1));
    if (!free_chunks.empty()) {
      uint32_t i = free_chunks.back();
      free_chunks.pop_back();
      return i;
    }
    void* mem =
        std::aligned_alloc(kBufferAlign, (chunk_bytes + kBufferAlign - 1) /
                                             kBufferAlign * kBufferAlign);
    if (mem == nullptr) throw std::bad_alloc();
    chunks.push_back(
        {std::unique_ptr<char, FreeDeleter>(static_cast<char*>(mem)), 0, 0,
         false});
    return static_cast<uint32_t>(chunks.size() - 1);
  }

  bool OverlapsInFlight(const Chunk& c) const {
    for (const Chunk& o : chunks) {
      if (o.in_flight && o.offset_bytes < c.offset_bytes + c.len_bytes &&
          c.offset_bytes < o.offset_bytes + o.len_bytes) {
        return true;
      }
    }
    return false;
  }

  Status SubmitOpen() {
    auto idx = static_cast<uint32_t>(open);
    open = -1;
    Chunk& c = chunks[idx];
    // In-flight writes complete in any order; an overlapping older write must
    // land first so that the later Write() wins, as with sequential pwrite.
    while (in_flight > 0 && (in_flight >= queue_depth || OverlapsInFlight(c))) {
      if (!Reap(1).ok()) {
        free_chunks.push_back(idx);
        return first_error;
      }
    }
    c.in_flight = true;
    ++in_flight;
    ring->QueueWrite(fd, c.mem.get(), c.len_bytes, c.offset_bytes, idx);
    return ring->Submit();
  }
};

Result<std::unique_ptr<ParallelWriter>> ParallelWriter::Create(
    int fd, unsigned queue_depth, size_t chunk_bytes,
    RingOptions ring_options) {
  if (fd < 0)
    return Status::InvalidArgument("parallel writer: bad fd " +
                                   std::to_string(fd));
  if (queue_depth == 0 || queue_depth > Ring::kMaxEntries) {
    return Status::InvalidArgument("parallel writer: queue depth " +
                                   std::to_string(queue_depth) + " not in 1.." +
                                   std::to_string(Ring::kMaxEntries));
  }
  if (chunk_bytes == 0 || chunk_bytes > kMaxChunkBytes) {
    return Status::InvalidArgument("parallel writer: chunk bytes " +
                                   std::to_string(chunk_bytes) + " not in 1.." +
                                   std::to_string(kMaxChunkBytes));
  }
  auto impl = std::make_unique<Impl>();
  impl->fd = fd;
  impl->queue_depth = queue_depth;
  impl->chunk_bytes = chunk_bytes;
  BOOST_OUTCOME_TRY(ring, Ring::Create(queue_depth, ring_options));
  impl->ring = std::move(ring);
  return std::unique_ptr<ParallelWriter>(new ParallelWriter(std::move(impl)));
}

ParallelWriter::ParallelWriter(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
ParallelWriter::~ParallelWriter() = default;

Status ParallelWriter::Write(uint64_t offset_bytes, std::string_view data) {
  Impl& m = *impl_;
  TM_RETURN_IF_ERROR(m.first_error);
  if (data.empty()) return Status::Ok();
  if (offset_bytes > kMaxOffset || data.size() > kMaxOffset - offset_bytes) {
    return Status::InvalidArgument(
        "parallel writer: write at offset " + std::to_string(offset_bytes) +
        " len " + std::to_string(data.size()) + " beyond INT64_MAX");
  }
  while (!data.empty()) {
    if (m.open >= 0) {
      Chunk& c = m.chunks[static_cast<size_t>(m.open)];
      if (offset_bytes == c.offset_bytes + c.len_bytes) {
        size_t n = std::min(m.chunk_bytes - c.len_bytes, data.size());
        std::memcpy(c.mem.get() + c.len_bytes, data.data(), n);
        c.len_bytes += n;
        offset_bytes += n;
        data.remove_prefix(n);
        if (c.len_bytes == m.chunk_bytes) TM_RETURN_IF_ERROR(m.SubmitOpen());
        continue;
      }
      TM_RETURN_IF_ERROR(m.SubmitOpen());
    }
    BOOST_OUTCOME_TRY(idx, m.Acquire());
    m.chunks[idx].offset_bytes = offset_bytes;
    m.chunks[idx].len_bytes = 0;
    m.open = static_cast<int>(idx);
  }
  // Pick up finished writes without blocking, so errors surface early.
  if (m.in_flight > 0) TM_RETURN_IF_ERROR(m.Reap(0));
  return m.first_error;
}

Status ParallelWriter::Finish() {
  Impl& m = *impl_;
  if (m.open >= 0) {
    if (m.first_error.ok()) {
      m.SubmitOpen().IgnoreError();  // Recorded in first_error.
    } else {
      m.free_chunks.push_back(static_cast<uint32_t>(m.open));
      m.open = -1;
    }
  }
  while (m.in_flight > 0) {
    unsigned before = m.in_flight;
    m.Reap(m.in_flight).IgnoreError();  // Recorded in first_error.
    if (m.in_flight == before)
      break;  // The ring itself failed; nothing will finish.
  }
  return m.first_error;
}

uint64_t ParallelWriter::bytes_written() const { return impl_->bytes_written; }
bool ParallelWriter::uses_io_uring() const {
  return impl_->ring->uses_io_uring();
}

}  // namespace tidemark::capture
