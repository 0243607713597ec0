// SnapshotDevice: NBD requests answered from a point of the journal (and the
// overlay), on a pool of worker threads with one reader each.
#include "tidemark/recovery/snapshot.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "overlay.h"
#include "read_cache.h"

namespace tidemark::recovery {

using capture::nbd::AllocationExtent;
using capture::nbd::Command;
using capture::nbd::Reply;
using capture::nbd::ReplyFn;
using capture::nbd::Request;

BlockReaderFactory JournalReaders(std::shared_ptr<const journal::Journal> journal, uint32_t volume,
                                  Seq seq) {
  return [journal, volume, seq]() -> Result<BlockReadFn> {
    BOOST_OUTCOME_TRY(r, journal->NewPointReader(volume, seq));
    std::shared_ptr<journal::PointReader> reader = std::move(r);
    // The journal is kept alive by every reader made from it.
    return BlockReadFn([journal, reader](uint64_t first_block, uint32_t count, char* out,
                                         journal::BlockState* states) {
      return reader->Read(first_block, count, out, states);
    });
  };
}

namespace {

// READs up to this size run on the connection's own thread (with a free
// reader) instead of a worker: a hand-off to a worker (futex wake, context
// switch) cost more than the read itself (~10 us for 4 KiB): measured in
// docs/benchmarks.md#virtual-snapshot-reads-issue-5. Larger reads, BLOCK_STATUS and
// writes go to the workers, so that one connection's long requests overlap.
constexpr uint32_t kInlineMaxBytes = 64 << 10;

}  // namespace

class SnapshotDevice::Impl {
 public:
  SnapshotOptions o;
  uint32_t bs = 0;
  // The readers, each used by one thread at a time: borrowed by workers and
  // by connection threads for small reads.
  std::vector<BlockReadFn> readers;
  std::mutex readers_mu;
  std::condition_variable readers_cv;
  std::vector<unsigned> free_readers;  // guarded by readers_mu
  std::unique_ptr<Overlay> overlay;
  std::unique_ptr<ReadCache> cache;

  struct Job {
    Request request;
    ReplyFn reply;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;   // guarded by mu
  bool stopping = false;  // guarded by mu
  std::vector<std::thread> workers;
  std::atomic<uint64_t> reads{0}, read_bytes{0}, writes{0};

  // Handles `request` with a free reader (waiting for one).
  Reply HandleWithReader(Request& request) {
    unsigned i;
    {
      std::unique_lock lock(readers_mu);
      readers_cv.wait(lock, [&] { return !free_readers.empty(); });
      i = free_readers.back();
      free_readers.pop_back();
    }
    Reply reply = Handle(readers[i], request);
    {
      std::lock_guard lock(readers_mu);
      free_readers.push_back(i);
    }
    readers_cv.notify_one();
    return reply;
  }

  void Work() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stopping || !jobs.empty(); });
        if (jobs.empty()) return;  // stopping, and every job answered
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      job.reply(HandleWithReader(job.request));
    }
  }

  // Blocks [first, first + count) of the point, through the cache if any.
  Status Blocks(const BlockReadFn& r, uint64_t first, uint32_t count, char* out) {
    return cache ? cache->Read(first, count, out, r) : r(first, count, out, nullptr);
  }

  // Bytes [offset, offset + length) of the point: whole blocks straight into
  // out, partial ones (512-byte-granular requests) cut out of a scratch copy.
  Status BaseRead(const BlockReadFn& r, uint64_t offset, uint64_t length, char* out) {
    const uint64_t first = offset / bs;
    const uint32_t count = static_cast<uint32_t>((offset + length - 1) / bs - first + 1);
    if (offset % bs == 0 && length % bs == 0) return Blocks(r, first, count, out);
    thread_local std::string scratch;
    scratch.resize(static_cast<size_t>(count) * bs);
    TM_RETURN_IF_ERROR(Blocks(r, first, count, scratch.data()));
    std::memcpy(out, scratch.data() + (offset - first * bs), length);
    return Status::Ok();
  }

  Overlay::BaseReadFn BaseFn(const BlockReadFn& r) {
    return [this, &r](uint64_t off, uint64_t len, char* out) { return BaseRead(r, off, len, out); };
  }

  Status Allocation(const BlockReadFn& r, uint64_t offset, uint64_t length,
                    std::vector<AllocationExtent>* extents) {
    length = std::min(length, kMaxStatusBytes);
    const uint64_t end = offset + length;
    const uint64_t first = offset / bs;
    const uint32_t count = static_cast<uint32_t>((end - 1) / bs - first + 1);
    std::vector<journal::BlockState> states(count);
    TM_RETURN_IF_ERROR(r(first, count, nullptr, states.data()));
    auto add = [&](uint64_t len, bool zero) {
      if (!extents->empty() && extents->back().hole == zero) {
        extents->back().length_bytes += static_cast<uint32_t>(len);
      } else {
        extents->push_back({static_cast<uint32_t>(len), zero, zero});
      }
    };
    std::vector<Overlay::Run> runs = overlay ? overlay->Runs(offset, length)
                                             : std::vector<Overlay::Run>{{offset, length, false}};
    for (const Overlay::Run& run : runs) {
      if (run.in_overlay) {
        add(run.length, false);  // a drill's data, never described as a hole
        continue;
      }
      for (uint64_t pos = run.offset; pos < run.offset + run.length;) {
        const uint64_t block = pos / bs;
        const uint64_t next = std::min(run.offset + run.length, (block + 1) * bs);
        add(next - pos, states[block - first] == journal::BlockState::kZero);
        pos = next;
      }
    }
    return Status::Ok();
  }

  Reply Handle(const BlockReadFn& r, Request& req) {
    Reply reply;
    const uint64_t off = req.offset_bytes, len = req.length_bytes;
    switch (req.command) {
      case Command::kRead:
        reply.data.resize(len);
        reply.status = overlay ? overlay->Read(off, len, reply.data.data(), BaseFn(r))
                               : BaseRead(r, off, len, reply.data.data());
        if (!reply.status.ok()) reply.data.clear();
        ++reads;
        read_bytes += len;
        break;
      case Command::kBlockStatus:
        reply.status = Allocation(r, off, len, &reply.extents);
        break;
      case Command::kFlush:
        break;  // nothing to make durable: the overlay dies with the device
      case Command::kWrite:
      case Command::kTrim:
      case Command::kWriteZeroes:
        if (!overlay) {
          reply.status = Status::NotSupported("the snapshot is read-only");
        } else if (req.command == Command::kWrite) {
          reply.status = overlay->Write(off, req.data, BaseFn(r));
        } else {
          reply.status = overlay->Zero(off, len, BaseFn(r));
        }
        ++writes;
        break;
      default:
        reply.status = Status::NotSupported("command not supported by a snapshot");
    }
    return reply;
  }
};

Result<std::shared_ptr<SnapshotDevice>> SnapshotDevice::Open(const SnapshotOptions& options,
                                                             BlockReaderFactory factory) {
  const journal::VolumeInfo& v = options.volume;
  const uint32_t bs = v.block_bytes;
  if (bs < 512 || (bs & (bs - 1)) != 0 || v.size_bytes == 0 || v.size_bytes % 512 != 0) {
    return Status::InvalidArgument("bad geometry for volume " + v.name);
  }
  if (options.readers == 0) return Status::InvalidArgument("a snapshot needs at least one reader");
  if (options.cache_bytes > 0 &&
      (options.cache_chunk_bytes < bs || options.cache_chunk_bytes % bs != 0)) {
    return Status::InvalidArgument("cache chunk is not a multiple of the block size");
  }
  auto impl = std::make_unique<Impl>();
  impl->o = options;
  impl->bs = bs;
  for (unsigned i = 0; i < options.readers; ++i) {
    BOOST_OUTCOME_TRY(r, factory());
    impl->readers.push_back(std::move(r));
  }
  if (options.writable) {
    BOOST_OUTCOME_TRY(
        ov, Overlay::Create(options.overlay_dir, v.size_bytes, options.overlay_granularity_bytes));
    impl->overlay = std::move(ov);
  }
  if (options.cache_bytes > 0) {
    impl->cache =
        std::make_unique<ReadCache>(options.cache_bytes, options.cache_chunk_bytes, bs, v.blocks());
  }
  Impl* raw = impl.get();
  for (unsigned i = 0; i < options.readers; ++i) {
    impl->free_readers.push_back(i);
    impl->workers.emplace_back([raw] { raw->Work(); });
  }
  return std::shared_ptr<SnapshotDevice>(new SnapshotDevice(std::move(impl)));
}

SnapshotDevice::SnapshotDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SnapshotDevice::~SnapshotDevice() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

uint64_t SnapshotDevice::size_bytes() const { return impl_->o.volume.size_bytes; }
bool SnapshotDevice::read_only() const { return !impl_->overlay; }
uint32_t SnapshotDevice::preferred_block_bytes() const { return std::max(impl_->bs, 4096u); }
bool SnapshotDevice::supports_trim() const { return impl_->overlay != nullptr; }

void SnapshotDevice::Submit(Request request, ReplyFn reply) {
  if (request.command == Command::kRead && request.length_bytes <= kInlineMaxBytes) {
    reply(impl_->HandleWithReader(request));
    return;
  }
  {
    std::lock_guard lock(impl_->mu);
    impl_->jobs.push_back({std::move(request), std::move(reply)});
  }
  impl_->cv.notify_one();
}

SnapshotStats SnapshotDevice::stats() const {
  SnapshotStats s;
  s.reads = impl_->reads;
  s.read_bytes = impl_->read_bytes;
  s.writes = impl_->writes;
  s.overlay_chunks = impl_->overlay ? impl_->overlay->chunks() : 0;
  s.cache_hits = impl_->cache ? impl_->cache->hits() : 0;
  s.cache_misses = impl_->cache ? impl_->cache->misses() : 0;
  return s;
}

}  // namespace tidemark::recovery
