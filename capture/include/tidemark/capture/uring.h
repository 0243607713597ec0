// io_uring file I/O for tidemark: a small completion ring over positioned
// reads, writes and fdatasync (Ring), and a coalescing, pipelined writer that
// `tidemark restore` uses to fill sparse raw images (ParallelWriter). The NBD
// tap will use Ring for its backing I/O.
//
// Portability: io_uring features are probed at run time; when the kernel or a
// seccomp filter refuses io_uring, or the environment sets
// TIDEMARK_NO_IO_URING=1, a Ring runs every queued operation synchronously
// (pread/pwrite/fdatasync) at Submit() time instead. Callers see the same
// contract either way; uses_io_uring() tells which path was taken.
//
// Errors: a kernel -errno is translated into a Status here and nowhere else:
// ENOSPC/EDQUOT become kNoSpace, other errnos kIOError, and bad arguments
// kInvalidArgument. Messages name the fd, offset and length.
//
// Thread-safety: neither class is thread-safe; each object must be used by one
// thread at a time (external synchronization). Distinct objects are
// independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "tidemark/journal/status.h"

namespace tidemark::capture {

// One finished operation, as reported by Ring::Wait().
struct Completion {
  uint64_t tag = 0;  // The caller's tag, passed to Queue*().
  Status status;     // Ok only when the whole length was transferred.
  size_t bytes = 0;  // Bytes transferred; equals len_bytes when status is Ok.
};

struct RingOptions {
  // Never use io_uring: run operations synchronously at Submit() time. Also
  // forced by the environment variable TIDEMARK_NO_IO_URING=1.
  bool force_sync = false;
};

// A completion ring for positioned file I/O.
//
// Usage: Queue*() up to capacity() operations, Submit(), then Wait() for their
// Completions; operations may complete in any order, so requests to the same
// bytes must be ordered by the caller (wait for the first before queuing the
// second). A short read or write is resubmitted internally for the remainder,
// so a successful Completion always covers the whole length. A read that hits
// end of file before len_bytes reports kIOError with `bytes` = bytes read.
//
// Buffers are borrowed: each must stay valid, and a read buffer untouched,
// until its Completion has been returned by Wait() or the Ring is destroyed.
// The Ring does not own fds; they must stay open for the same span.
class Ring {
 public:
  // Largest `entries` accepted by Create().
  static constexpr unsigned kMaxEntries = 4096;

  // Creates a ring with room for `entries` (1..kMaxEntries) outstanding
  // operations. Falls back to synchronous I/O (see the file comment) when
  // io_uring cannot be set up or lacks IORING_OP_READ/WRITE/FSYNC (Linux
  // < 5.6). Errors: kInvalidArgument for a bad `entries`.
  static Result<std::unique_ptr<Ring>> Create(unsigned entries,
                                              RingOptions options = {});

  // Waits for every outstanding operation (their results are discarded), then
  // releases the ring.
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Queue an operation; none is started before Submit() or Wait(). Queuing
  // more than capacity() - outstanding() operations is a bug (TM_CHECK).
  // Bad arguments (offset_bytes + len_bytes beyond INT64_MAX) do not start
  // anything: they complete at the next Wait() with kInvalidArgument.
  void QueueRead(int fd, void* buf, size_t len_bytes, uint64_t offset_bytes,
                 uint64_t tag);
  void QueueWrite(int fd, const void* buf, size_t len_bytes,
                  uint64_t offset_bytes, uint64_t tag);
  // fdatasync(fd): completes after every write that had *completed* before
  // this was submitted is durable; in-flight writes are not covered.
  void QueueFdatasync(int fd, uint64_t tag);

  // Starts every queued operation (in the synchronous fallback: runs them).
  // Errors: kIOError when the kernel refuses the submission itself;
  // per-operation errors arrive in Completions, never here.
  Status Submit();

  // Submits what is queued, then appends to `out` at least
  // min(min_completions, outstanding()) Completions, blocking until they are
  // available, plus any others already finished. min_completions = 0 only
  // reaps what is ready. Errors: kIOError when waiting on the ring fails;
  // Completions appended before the failure stay in `out`.
  Status Wait(unsigned min_completions, std::vector<Completion>* out);

  // Operations queued or in flight whose Completion has not been returned.
  unsigned outstanding() const;
  unsigned capacity() const;
  // False when running the synchronous fallback.
  bool uses_io_uring() const;

 private:
  struct Impl;
  explicit Ring(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes a stream of (offset, data) extents to one fd with many writes in
// flight, for filling sparse images: untouched ranges stay holes.
//
// Each Write() is copied into a pooled buffer, so `data` may be reused as soon
// as Write() returns. A write that starts where the previous one ended is
// appended to the same buffer until it holds chunk_bytes; a full buffer, or
// the pending one when a non-adjacent write arrives, is submitted, with up to
// queue_depth buffers in flight (Write() blocks while all are busy). Memory:
// up to (queue_depth + 1) * chunk_bytes, allocated on demand.
//
// Ordering: the result equals applying the Write()s in call order (a chunk
// that overlaps one still in flight waits for it), so later writes win.
//
// Errors are sticky: once any write has failed, Write() and Finish() return
// that first error, whose message names the failed offset (ENOSPC comes back
// as kNoSpace). Because writes are asynchronous, the Write() that reports an
// error may be later than the one that caused it.
//
// O_DIRECT fds work only if every coalesced chunk is block-aligned in offset
// and length; buffers are 4096-byte aligned.
class ParallelWriter {
 public:
  static constexpr size_t kDefaultChunkBytes = size_t{1} << 20;
  static constexpr size_t kMaxChunkBytes = size_t{256} << 20;
  // Chunk buffers start on this boundary: writes that start and end on file
  // system block boundaries can go to an O_DIRECT descriptor.
  static constexpr size_t kBufferAlign = 4096;

  // `fd` is borrowed and must stay open until Finish() returns or the writer
  // is destroyed. queue_depth: 1..Ring::kMaxEntries; chunk_bytes:
  // 1..kMaxChunkBytes. Errors: kInvalidArgument for bad arguments.
  static Result<std::unique_ptr<ParallelWriter>> Create(
      int fd, unsigned queue_depth = 32,
      size_t chunk_bytes = kDefaultChunkBytes, RingOptions ring_options = {});

  // Waits for writes in flight; their errors are lost (call Finish() first).
  ~ParallelWriter();
  ParallelWriter(const ParallelWriter&) = delete;
  ParallelWriter& operator=(const ParallelWriter&) = delete;

  // Schedules `data` to be written at offset_bytes. Empty data is a no-op.
  // Errors: the first write error so far (see the class comment);
  // kInvalidArgument if offset_bytes + data.size() exceeds INT64_MAX.
  Status Write(uint64_t offset_bytes, std::string_view data);

  // Submits the pending buffer and waits for every write. Returns Ok only if
  // all writes succeeded. Does not fdatasync: durability is the caller's
  // call. Write() after Finish() is allowed and starts a new batch.
  Status Finish();

  // Bytes whose writes have completed successfully; after an Ok Finish(), the
  // total of all Write() sizes.
  uint64_t bytes_written() const;
  bool uses_io_uring() const;

 private:
  struct Impl;
  explicit ParallelWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::capture
