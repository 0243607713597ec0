// Ring: io_uring with a synchronous pread/pwrite fallback. See uring.h.
#include "tidemark/capture/uring.h"

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

namespace tidemark::capture {
namespace {

// Linux caps one read/write at MAX_RW_COUNT; larger requests are issued as a
// sequence of pieces by the short-transfer continuation below.
constexpr size_t kMaxRwBytes = 0x7ffff000;
constexpr uint64_t kMaxOffset =
    static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

enum class OpKind : uint8_t { kRead, kWrite, kFdatasync };

struct Op {
  OpKind kind = OpKind::kRead;
  int fd = -1;
  char* buf = nullptr;
  size_t len_bytes = 0;
  uint64_t offset_bytes = 0;
  size_t done_bytes = 0;
  uint64_t tag = 0;
};

const char* KindName(OpKind kind) {
  switch (kind) {
    case OpKind::kRead:
      return "read";
    case OpKind::kWrite:
      return "write";
    case OpKind::kFdatasync:
      return "fdatasync";
  }
  return "?";
}

// Names the part of `op` not yet transferred, so errors point at the offset
// that actually failed.
std::string Describe(const Op& op) {
  std::string s =
      std::string(KindName(op.kind)) + " fd " + std::to_string(op.fd);
  if (op.kind == OpKind::kFdatasync) return s;
  return s + " offset " + std::to_string(op.offset_bytes + op.done_bytes) +
         " len " + std::to_string(op.len_bytes - op.done_bytes);
}

bool EnvForcesSync() {
  const char* v = std::getenv("TIDEMARK_NO_IO_URING");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

// Accounts one kernel result (bytes, or -errno) to `op`. Returns true when the
// op is finished and fills `c`; false when the rest must be (re)issued. This
// is the one place where -errno becomes a Status.
bool Advance(Op& op, int64_t res, Completion* c) {
  if (res == -EINTR || res == -EAGAIN) return false;
  if (res < 0) {
    *c = {op.tag, Status::FromErrno(static_cast<int>(-res), Describe(op)),
          op.done_bytes};
    return true;
  }
  if (op.kind == OpKind::kFdatasync) {
    *c = {op.tag, Status::Ok(), 0};
    return true;
  }
  if (res == 0 && op.done_bytes < op.len_bytes) {
    // pread at EOF, or a pwrite that made no progress: retrying would spin.
    const char* why =
        op.kind == OpKind::kRead ? "unexpected end of file" : "wrote 0 bytes";
    *c = {op.tag, Status::IOError(Describe(op) + ": " + why), op.done_bytes};
    return true;
  }
  op.done_bytes += static_cast<size_t>(res);
  if (op.done_bytes < op.len_bytes) return false;
  *c = {op.tag, Status::Ok(), op.done_bytes};
  return true;
}

// Runs `op` to completion with blocking syscalls.
Completion RunSync(Op& op) {
  Completion c;
  for (;;) {
    int64_t res = 0;
    size_t piece = std::min(op.len_bytes - op.done_bytes, kMaxRwBytes);
    auto pos = static_cast<off_t>(op.offset_bytes + op.done_bytes);
    switch (op.kind) {
      case OpKind::kRead:
        res = ::pread(op.fd, op.buf + op.done_bytes, piece, pos);
        break;
      case OpKind::kWrite:
        res = ::pwrite(op.fd, op.buf + op.done_bytes, piece, pos);
        break;
      case OpKind::kFdatasync:
        res = ::fdatasync(op.fd);
        break;
    }
    if (res < 0) res = -errno;
    if (Advance(op, res, &c)) return c;
  }
}

}  // namespace

struct Ring::Impl {
  unsigned capacity = 0;
  bool use_uring = false;
  io_uring ring{};      // Initialized iff use_uring.
  std::vector<Op> ops;  // Slot table; a slot index is the SQE user_data.
  std::vector<uint32_t> free_slots;
  std::vector<uint32_t> queued;   // Queued, not yet started.
  std::vector<Completion> ready;  // Finished, not yet returned by Wait().
  unsigned outstanding = 0;

  uint32_t Take() {
    // Completions held in `ready` count as outstanding but hold no slot.
    TM_CHECK(outstanding < capacity);  // Queuing past capacity(): caller bug.
    uint32_t slot = free_slots.back();
    free_slots.pop_back();
    ++outstanding;
    return slot;
  }

  void Queue(Op op) {
    uint32_t slot = Take();
    if (op.offset_bytes > kMaxOffset ||
        op.len_bytes > kMaxOffset - op.offset_bytes) {
      ready.push_back(
          {op.tag, Status::InvalidArgument(Describe(op) + ": beyond INT64_MAX"),
           0});
      free_slots.push_back(slot);
      return;
    }
    ops[slot] = op;
    queued.push_back(slot);
  }

  // Puts the untransferred rest of ops[slot] into an SQE.
  void Prep(uint32_t slot) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    // Unsubmitted SQEs never exceed outstanding <= capacity <= SQ size.
    TM_CHECK(sqe != nullptr);
    Op& op = ops[slot];
    auto piece = static_cast<unsigned>(
        std::min(op.len_bytes - op.done_bytes, kMaxRwBytes));
    uint64_t pos = op.offset_bytes + op.done_bytes;
    switch (op.kind) {
      case OpKind::kRead:
        io_uring_prep_read(sqe, op.fd, op.buf + op.done_bytes, piece, pos);
        break;
      case OpKind::kWrite:
        io_uring_prep_write(sqe, op.fd, op.buf + op.done_bytes, piece, pos);
        break;
      case OpKind::kFdatasync:
        io_uring_prep_fsync(sqe, op.fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data64(sqe, slot);
  }

  Status SubmitPrepared() {
    for (;;) {
      int r = io_uring_submit(&ring);
      if (r >= 0) return Status::Ok();
      if (r != -EINTR) return Status::FromErrno(-r, "io_uring_submit");
    }
  }

  // Moves finished CQEs to `out` and reissues short transfers. Returns the
  // number of Completions appended.
  unsigned ReapCqes(std::vector<Completion>* out, bool* reissued) {
    unsigned n = 0;
    io_uring_cqe* cqes[64];
    for (;;) {
      unsigned got = io_uring_peek_batch_cqe(&ring, cqes, 64);
      if (got == 0) return n;
      for (unsigned i = 0; i < got; ++i) {
        auto slot = static_cast<uint32_t>(io_uring_cqe_get_data64(cqes[i]));
        Completion c;
        if (Advance(ops[slot], cqes[i]->res, &c)) {
          out->push_back(std::move(c));
          free_slots.push_back(slot);
          --outstanding;
          ++n;
        } else {
          Prep(slot);
          *reissued = true;
        }
      }
      io_uring_cq_advance(&ring, got);
    }
  }
};

Result<std::unique_ptr<Ring>> Ring::Create(unsigned entries,
                                           RingOptions options) {
  if (entries == 0 || entries > kMaxEntries) {
    return Status::InvalidArgument("ring entries " + std::to_string(entries) +
                                   " not in 1.." + std::to_string(kMaxEntries));
  }
  auto impl = std::make_unique<Impl>();
  impl->capacity = entries;
  impl->ops.resize(entries);
  for (uint32_t i = entries; i > 0; --i) impl->free_slots.push_back(i - 1);
  if (!options.force_sync && !EnvForcesSync()) {
    // Any setup failure (ENOSYS, EPERM from seccomp or io_uring_disabled,
    // ENOMEM from RLIMIT_MEMLOCK before 5.12) selects the fallback: callers
    // must work everywhere, just slower.
    if (io_uring_queue_init(entries, &impl->ring, 0) == 0) {
      io_uring_probe* probe = io_uring_get_probe_ring(&impl->ring);
      impl->use_uring = probe != nullptr &&
                        io_uring_opcode_supported(probe, IORING_OP_READ) &&
                        io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
                        io_uring_opcode_supported(probe, IORING_OP_FSYNC);
      if (probe != nullptr) io_uring_free_probe(probe);
      if (!impl->use_uring) io_uring_queue_exit(&impl->ring);
    }
  }
  return std::unique_ptr<Ring>(new Ring(std::move(impl)));
}

Ring::Ring(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Ring::~Ring() {
  if (!impl_->use_uring) return;  // The fallback has nothing in flight.
  // Queued ops were never started; in-flight ones may still touch caller
  // buffers, which stay valid until we return.
  impl_->outstanding -= static_cast<unsigned>(impl_->queued.size()) +
                        static_cast<unsigned>(impl_->ready.size());
  impl_->queued.clear();
  impl_->ready.clear();
  std::vector<Completion> discard;
  while (impl_->outstanding > 0) {
    discard.clear();
    if (!Wait(impl_->outstanding, &discard).ok()) break;
  }
  io_uring_queue_exit(&impl_->ring);
}

void Ring::QueueRead(int fd, void* buf, size_t len_bytes, uint64_t offset_bytes,
                     uint64_t tag) {
  impl_->Queue({OpKind::kRead, fd, static_cast<char*>(buf), len_bytes,
                offset_bytes, 0, tag});
}

void Ring::QueueWrite(int fd, const void* buf, size_t len_bytes,
                      uint64_t offset_bytes, uint64_t tag) {
  // The kernel only reads from a write buffer; the cast never leads to a store.
  impl_->Queue({OpKind::kWrite, fd, static_cast<char*>(const_cast<void*>(buf)),
                len_bytes, offset_bytes, 0, tag});
}

void Ring::QueueFdatasync(int fd, uint64_t tag) {
  impl_->Queue({OpKind::kFdatasync, fd, nullptr, 0, 0, 0, tag});
}

Status Ring::Submit() {
  Impl& m = *impl_;
  if (m.queued.empty()) return Status::Ok();
  if (!m.use_uring) {
    for (uint32_t slot : m.queued) {
      m.ready.push_back(RunSync(m.ops[slot]));
      m.free_slots.push_back(slot);
    }
    m.queued.clear();
    return Status::Ok();
  }
  for (uint32_t slot : m.queued) m.Prep(slot);
  m.queued.clear();
  return m.SubmitPrepared();
}

Status Ring::Wait(unsigned min_completions, std::vector<Completion>* out) {
  Impl& m = *impl_;
  TM_RETURN_IF_ERROR(Submit());
  unsigned target = std::min(min_completions, m.outstanding);
  unsigned got = static_cast<unsigned>(m.ready.size());
  m.outstanding -= got;
  for (Completion& c : m.ready) out->push_back(std::move(c));
  m.ready.clear();
  if (!m.use_uring) return Status::Ok();
  for (;;) {
    bool reissued = false;
    got += m.ReapCqes(out, &reissued);
    if (reissued) TM_RETURN_IF_ERROR(m.SubmitPrepared());
    if (got >= target) return Status::Ok();
    // Blocks for one CQE; ReapCqes then takes every one that is ready.
    int r = io_uring_submit_and_wait(&m.ring, 1);
    if (r < 0 && r != -EINTR)
      return Status::FromErrno(-r, "io_uring_submit_and_wait");
  }
}

unsigned Ring::outstanding() const { return impl_->outstanding; }
unsigned Ring::capacity() const { return impl_->capacity; }
bool Ring::uses_io_uring() const { return impl_->use_uring; }

}  // namespace tidemark::capture
