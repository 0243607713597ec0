#include "tidemark/capture/tap.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <filesystem>

#include "tidemark/capture/activity_log.h"
#include "tidemark/capture/uring.h"
#include "tidemark/journal/time.h"

namespace tidemark::capture {

namespace {

struct Item {
  uint32_t member = 0;     // the group member (volume) it is for
  nbd::Request request;
  nbd::ReplyFn reply;
  Seq seq = kNoSeq;        // writes: their seq; FLUSH: the newest seq it covers
  TimeNs time_ns = 0;
  bool data_op = false;    // WRITE, TRIM, WRITE_ZEROES
  bool refresh = false;    // SubmitRefresh(): a seq for the backing's current bytes
  bool replied = false;
};

bool IsDataOp(nbd::Command c) {
  return c == nbd::Command::kWrite || c == nbd::Command::kTrim ||
         c == nbd::Command::kWriteZeroes;
}
bool IsRead(nbd::Command c) {
  return c == nbd::Command::kRead || c == nbd::Command::kBlockStatus;
}

// A recorded write that may not be on the backing yet: reads overlapping it
// wait for it.
struct Unapplied {
  uint32_t member;
  Seq seq;
  uint64_t offset;
  uint64_t end;
};

OpKind KindOf(nbd::Command c) {
  switch (c) {
    case nbd::Command::kTrim: return OpKind::kTrim;
    case nbd::Command::kWriteZeroes: return OpKind::kWriteZeroes;
    default: return OpKind::kWrite;
  }
}

struct Batch {
  std::vector<Item> items;
  Status status;           // of recording
  bool need_sync = false;  // a FLUSH or FUA in it
  Seq newest = kNoSeq;     // its newest write
  size_t data_bytes = 0;
};

bool Overlaps(const Item& a, const Item& b) {
  return a.member == b.member &&
         a.request.offset_bytes < b.request.offset_bytes + b.request.length_bytes &&
         b.request.offset_bytes < a.request.offset_bytes + a.request.length_bytes;
}

}  // namespace

class Tap::Impl {
 public:
  std::vector<std::unique_ptr<Backing>> backings;  // one per member
  Recorder* recorder = nullptr;
  TapOptions options;
  std::unique_ptr<Ring> ring;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> queue;
  std::deque<Unapplied> unapplied;  // guarded by mu; in seq order
  Seq last_seq = 0;
  TimeNs last_time_ns = 0;
  bool stopping = false;
  Status failed;  // guarded by mu
  std::thread writer;   // stage 1: records batches
  std::thread applier;  // stage 2: backing, sync, replies
  std::condition_variable cv_recorded;  // a recorded batch waits, or recording ended
  std::condition_variable cv_applied;   // stage 2 took a batch
  std::deque<Batch> recorded;           // guarded by mu
  bool recorder_done = false;           // guarded by mu

  // Power loss: per member, or empty (TapOptions::activity_logs).
  std::vector<std::unique_ptr<ActivityLog>> als;
  uint64_t reverted_bytes = 0;

  Seq applied_seq = 0;       // applier thread only: newest seq on the backing
  Seq checkpointed_seq = 0;  // applier thread only
  std::chrono::steady_clock::time_point last_checkpoint = std::chrono::steady_clock::now();

  void Fail(const Status& s) {
    std::lock_guard lock(mu);
    if (failed.ok()) failed = s;
  }
  Status Failure() const {
    std::lock_guard lock(mu);
    return failed;
  }

  Status ApplyToBacking(std::vector<Item>& batch);
  void Serve(Item& it);  // a READ or BLOCK_STATUS, answered now
  bool OverlapsUnapplied(uint32_t member, const nbd::Request& r) const;  // under mu
  Status SyncAndCheckpoint(Seq seq);
  Status OpenActivityLogs();
  Status CoverBatch(const std::vector<Item>& items);
  Status RetireCovered();
  void RecordBatch(Batch& batch);
  void ApplyBatch(Batch& batch);
  void Run();
  void RunApply();
};

Status Tap::Impl::SyncAndCheckpoint(Seq seq) {
  for (const auto& b : backings) TM_RETURN_IF_ERROR(b->Sync());
  if (seq != checkpointed_seq) {
    // The recorder syncs what it recorded (every write on the backing).
    TM_RETURN_IF_ERROR(recorder->Checkpoint(seq));
    checkpointed_seq = seq;
    TM_RETURN_IF_ERROR(RetireCovered());
  }
  last_checkpoint = std::chrono::steady_clock::now();
  return Status::Ok();
}

// Opens each member's activity log and undoes what a crash left in it: the
// recorder's newest bytes over every extent the backing may hold writes of
// that the recorder lost (its unsynced tail). A damaged log covers the whole
// volume.
Status Tap::Impl::OpenActivityLogs() {
  if (options.activity_logs.empty()) return Status::Ok();
  if (options.activity_logs.size() != backings.size()) {
    return Status::InvalidArgument("one activity log per member");
  }
  std::string buf;
  for (size_t i = 0; i < backings.size(); ++i) {
    const std::string& path = options.activity_logs[i];
    const uint64_t size = backings[i]->size_bytes();
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    if (ec) return Status::IOError("cannot create the directory of " + path + ": " + ec.message());
    auto al = ActivityLog::Open(path, size);
    std::vector<Extent> revert;
    if (!al && al.error().code() == Code::kCorruption) {
      // Rewritten from scratch, after the whole volume is reverted below.
      std::filesystem::remove(path, ec);
      if (ec) return Status::IOError("cannot remove " + path + ": " + ec.message());
      al = ActivityLog::Open(path, size);
      revert.push_back({0, size});
    }
    if (!al) return al.error();
    for (const Extent& e : al.value()->recovered()) revert.push_back(e);
    for (const Extent& e : revert) {
      for (uint64_t off = e.offset_bytes; off < e.end_bytes();) {
        const size_t len = std::min<uint64_t>(e.end_bytes() - off, 1 << 20);
        buf.resize(len);
        TM_RETURN_IF_ERROR(recorder->ReadLatest(static_cast<uint32_t>(i), off, buf.data(), len)
                               .Annotate("the power-loss activity log " + path));
        TM_RETURN_IF_ERROR(backings[i]->Write(off, buf));
        reverted_bytes += len;
        off += len;
      }
    }
    if (!revert.empty()) {
      TM_RETURN_IF_ERROR(backings[i]->Sync());
      TM_RETURN_IF_ERROR(al.value()->ClearAll());
    }
    als.push_back(std::move(al.value()));
  }
  return Status::Ok();
}

// Before a batch reaches the backings: each write's extents are in its
// member's activity log, synced when one was added.
Status Tap::Impl::CoverBatch(const std::vector<Item>& items) {
  if (als.empty()) return Status::Ok();
  for (const Item& it : items) {
    if (!it.data_op) continue;
    als[it.member]->Begin(it.request.offset_bytes, it.request.length_bytes);
  }
  for (auto& al : als) TM_RETURN_IF_ERROR(al->Persist());
  return Status::Ok();
}

// The recorder synced everything the backings were given (the applier
// thread covers a batch right before it writes it): their extents leave the
// logs (written, not synced: a stale mark costs only a revert).
Status Tap::Impl::RetireCovered() {
  for (auto& al : als) {
    al->EndAll();
    TM_RETURN_IF_ERROR(al->Persist());
  }
  return Status::Ok();
}

// Writes reach the backing in seq order: a wave of non-overlapping writes
// goes to io_uring together; a write overlapping one of its wave, and every
// zeroing, waits for the wave before it.
Status Tap::Impl::ApplyToBacking(std::vector<Item>& batch) {
  std::vector<size_t> wave;
  auto flush_wave = [&]() -> Status {
    if (wave.empty()) return Status::Ok();
    for (size_t i : wave) {
      const nbd::Request& r = batch[i].request;
      ring->QueueWrite(backings[batch[i].member]->fd(), r.data.data(), r.data.size(),
                       r.offset_bytes, i);
    }
    std::vector<Completion> done;
    Status first;
    size_t n = wave.size();
    wave.clear();
    while (n > 0) {
      done.clear();
      TM_RETURN_IF_ERROR(ring->Wait(1, &done));
      for (const Completion& c : done) {
        if (!c.status.ok() && first.ok()) first = c.status;
        --n;
      }
    }
    return first;
  };
  for (size_t i = 0; i < batch.size(); ++i) {
    Item& it = batch[i];
    if (IsRead(it.request.command)) {
      // A read that overlapped a write queued before it: answered in order.
      TM_RETURN_IF_ERROR(flush_wave());
      Serve(it);
      continue;
    }
    if (!it.data_op) continue;
    const nbd::Request& r = it.request;
    if (r.command == nbd::Command::kWrite) {
      bool overlap = std::any_of(wave.begin(), wave.end(),
                                 [&](size_t j) { return Overlaps(batch[j], it); });
      if (overlap || wave.size() >= ring->capacity()) TM_RETURN_IF_ERROR(flush_wave());
      wave.push_back(i);
    } else {
      TM_RETURN_IF_ERROR(flush_wave());
      bool allocate = r.command == nbd::Command::kWriteZeroes && (r.flags & nbd::kFlagNoHole);
      TM_RETURN_IF_ERROR(backings[it.member]->Zero(r.offset_bytes, r.length_bytes, allocate));
    }
  }
  return flush_wave();
}

void Tap::Impl::Serve(Item& it) {
  nbd::Reply r;
  const nbd::Request& q = it.request;
  const Backing& backing = *backings[it.member];
  if (q.command == nbd::Command::kRead) {
    r.data.resize(q.length_bytes);
    r.status = backing.Read(q.offset_bytes, r.data.data(), r.data.size());
  } else {
    r.status = backing.Allocation(q.offset_bytes, q.length_bytes, &r.extents);
  }
  it.replied = true;
  it.reply(std::move(r));
}

bool Tap::Impl::OverlapsUnapplied(uint32_t member, const nbd::Request& r) const {
  return std::any_of(unapplied.begin(), unapplied.end(), [&](const Unapplied& u) {
    return u.member == member && r.offset_bytes < u.end &&
           u.offset < r.offset_bytes + r.length_bytes;
  });
}

// Stage 1 (recorder thread): record the batch in seq order, then commit:
// the journal is never behind the backing.
void Tap::Impl::RecordBatch(Batch& batch) {
  Status s = Failure();
  for (Item& it : batch.items) {
    if (!s.ok()) break;
    if (it.refresh) {
      s = recorder->RecordRefresh(it.member, it.seq, it.time_ns, it.request.offset_bytes,
                                  it.request.length_bytes);
      batch.newest = it.seq;
    } else if (it.data_op) {
      const nbd::Request& r = it.request;
      TapWrite w{it.seq, it.time_ns, KindOf(r.command), r.offset_bytes, r.length_bytes,
                 r.command == nbd::Command::kWrite ? std::string_view(r.data) : std::string_view(),
                 static_cast<uint8_t>((r.flags & nbd::kFlagFua) ? kSeqFua : 0)};
      s = recorder->Record(it.member, w);
      batch.newest = it.seq;
      batch.need_sync |= (r.flags & nbd::kFlagFua) != 0;
    } else if (it.request.command == nbd::Command::kFlush) {
      s = recorder->MarkFlush(it.seq, it.time_ns);
      batch.need_sync = true;
    }
  }
  if (s.ok()) s = recorder->Commit();
  if (!s.ok()) Fail(s);
  batch.status = s;
}

// Stage 2 (applier thread): the backing in seq order, durability when asked
// for, then the replies. Runs while stage 1 records the next batch.
void Tap::Impl::ApplyBatch(Batch& batch) {
  Status s = batch.status;
  if (s.ok()) s = Failure();
  if (s.ok()) {
    // Recorded and committed: a write that asked for no durability is
    // answered now, before the backing has it (a process crash keeps the
    // journal's WAL in the page cache, and the tail replay at start puts
    // it on the backing; reads of its range wait for it, above).
    for (Item& it : batch.items) {
      if (it.data_op && !(it.request.flags & nbd::kFlagFua)) {
        it.replied = true;
        it.reply(nbd::Reply{});
      }
    }
    s = CoverBatch(batch.items);
    if (s.ok()) s = ApplyToBacking(batch.items);
  }
  if (s.ok() && batch.newest != kNoSeq) {
    applied_seq = batch.newest;
    recorder->Applied(applied_seq);
    std::lock_guard lock(mu);
    while (!unapplied.empty() && unapplied.front().seq <= applied_seq) unapplied.pop_front();
  }
  if (s.ok() && batch.need_sync) {
    s = recorder->Sync();
    if (s.ok()) s = SyncAndCheckpoint(applied_seq);
  } else if (s.ok() && applied_seq != checkpointed_seq &&
             std::chrono::steady_clock::now() - last_checkpoint > options.checkpoint_interval) {
    s = SyncAndCheckpoint(applied_seq);
  }
  if (!s.ok()) Fail(s);
  for (Item& it : batch.items) {
    if (it.replied) continue;
    nbd::Reply reply;
    reply.status = s;
    it.reply(std::move(reply));
  }
}

void Tap::Impl::Run() {
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty() && stopping) break;
      // Up to max_batch items and max_batch_bytes of data (at least one).
      while (!queue.empty() && batch.items.size() < options.max_batch &&
             (batch.items.empty() ||
              batch.data_bytes + queue.front().request.data.size() <= options.max_batch_bytes)) {
        batch.data_bytes += queue.front().request.data.size();
        batch.items.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
    RecordBatch(batch);
    std::unique_lock lock(mu);
    // At most two batches wait for the backing: bounds memory, keeps overlap.
    cv_applied.wait(lock, [&] { return recorded.size() < 2; });
    recorded.push_back(std::move(batch));
    cv_recorded.notify_one();
  }
  std::lock_guard lock(mu);
  recorder_done = true;
  cv_recorded.notify_one();
}

void Tap::Impl::RunApply() {
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(mu);
      bool ready = cv_recorded.wait_for(lock, options.checkpoint_interval,
                                        [&] { return recorder_done || !recorded.empty(); });
      if (ready && recorded.empty()) return;  // recorder_done and nothing left
      if (ready) {
        batch = std::move(recorded.front());
        recorded.pop_front();
        cv_applied.notify_one();
      }
    }
    if (batch.items.empty()) {
      // Idle: make the backing's state durable so a crash replays little.
      if (applied_seq != checkpointed_seq && Failure().ok()) {
        Status s = SyncAndCheckpoint(applied_seq);
        if (!s.ok()) Fail(s);
      }
      continue;
    }
    ApplyBatch(batch);
  }
}

Result<std::shared_ptr<Tap>> Tap::Create(std::unique_ptr<Backing> backing, Recorder* recorder,
                                         TapOptions options) {
  std::vector<std::unique_ptr<Backing>> backings;
  backings.push_back(std::move(backing));
  return Create(std::move(backings), recorder, options);
}

Result<std::shared_ptr<Tap>> Tap::Create(std::vector<std::unique_ptr<Backing>> backings,
                                         Recorder* recorder, TapOptions options) {
  if (backings.empty()) return Status::InvalidArgument("a tap needs at least one volume");
  auto impl = std::make_unique<Impl>();
  BOOST_OUTCOME_TRY(ring, Ring::Create(std::max(1u, options.queue_depth)));
  impl->ring = std::move(ring);
  impl->backings = std::move(backings);
  impl->recorder = recorder;
  impl->options = options;
  impl->last_seq = impl->applied_seq = impl->checkpointed_seq = options.last_seq;
  impl->last_time_ns = options.last_time_ns;
  TM_RETURN_IF_ERROR(impl->OpenActivityLogs());
  auto tap = std::shared_ptr<Tap>(new Tap(std::move(impl)));
  Impl* in = tap->impl_.get();
  in->writer = std::thread([in] { in->Run(); });
  in->applier = std::thread([in] { in->RunApply(); });
  return tap;
}

namespace {

// A group member's NBD device: the tap's Submit with the member's index.
class MemberDevice : public nbd::BlockDevice {
 public:
  MemberDevice(std::shared_ptr<Tap> tap, uint32_t member, uint64_t size)
      : tap_(std::move(tap)), member_(member), size_(size) {}
  uint64_t size_bytes() const override { return size_; }
  bool supports_block_status() const override { return true; }
  void Submit(nbd::Request request, nbd::ReplyFn reply) override {
    tap_->Submit(member_, std::move(request), std::move(reply));
  }

 private:
  std::shared_ptr<Tap> tap_;
  uint32_t member_;
  uint64_t size_;
};

}  // namespace

size_t Tap::members() const { return impl_->backings.size(); }

std::shared_ptr<nbd::BlockDevice> Tap::Member(size_t i) {
  return std::make_shared<MemberDevice>(shared_from_this(), static_cast<uint32_t>(i),
                                        impl_->backings.at(i)->size_bytes());
}

Tap::Tap(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Tap::~Tap() { Shutdown().IgnoreError(); }

uint64_t Tap::size_bytes() const { return impl_->backings[0]->size_bytes(); }

void Tap::Submit(nbd::Request request, nbd::ReplyFn reply) {
  Submit(0, std::move(request), std::move(reply));
}

void Tap::Submit(uint32_t member, nbd::Request request, nbd::ReplyFn reply) {
  Impl& in = *impl_;
  Item it;
  it.member = member;
  it.data_op = IsDataOp(request.command);
  if (IsRead(request.command)) {
    // A read sees every write answered before it: one overlapping a write
    // that is not on the backing yet queues behind it.
    bool behind;
    {
      std::lock_guard lock(in.mu);
      behind = in.OverlapsUnapplied(member, request);
      if (behind) {
        it.seq = in.last_seq;
        it.request = std::move(request);
        it.reply = std::move(reply);
        in.queue.push_back(std::move(it));
      }
    }
    if (behind) {
      in.cv.notify_one();
    } else {
      it.request = std::move(request);
      it.reply = std::move(reply);
      in.Serve(it);
    }
    return;
  }
  {
    std::lock_guard lock(in.mu);
    if (in.stopping || !in.failed.ok()) {
      nbd::Reply r;
      r.status = in.stopping ? Status::Aborted("the tap is shutting down") : in.failed;
      reply(std::move(r));
      return;
    }
    // Receipt order: the seq and the (never decreasing) time are taken here.
    in.last_time_ns = std::max(in.last_time_ns, NowNs());
    it.time_ns = in.last_time_ns;
    it.seq = it.data_op ? ++in.last_seq : in.last_seq;
    if (it.data_op) {
      in.unapplied.push_back({member, it.seq, request.offset_bytes,
                              request.offset_bytes + request.length_bytes});
    }
    it.request = std::move(request);
    it.reply = std::move(reply);
    in.queue.push_back(std::move(it));
  }
  in.cv.notify_one();
}

void Tap::SubmitRefresh(uint32_t member, uint64_t offset_bytes, uint32_t length_bytes) {
  Impl& in = *impl_;
  {
    std::lock_guard lock(in.mu);
    if (in.stopping || !in.failed.ok()) return;
    Item it;
    it.member = member;
    it.refresh = true;
    in.last_time_ns = std::max(in.last_time_ns, NowNs());
    it.time_ns = in.last_time_ns;
    it.seq = ++in.last_seq;
    it.request.command = nbd::Command::kWrite;  // never reaches the backing
    it.request.offset_bytes = offset_bytes;
    it.request.length_bytes = length_bytes;
    it.reply = [](nbd::Reply) {};
    it.replied = true;
    in.queue.push_back(std::move(it));
  }
  in.cv.notify_one();
}

Status Tap::Shutdown() {
  Impl& in = *impl_;
  {
    std::lock_guard lock(in.mu);
    if (in.stopping && !in.writer.joinable()) return in.failed;
    in.stopping = true;
  }
  in.cv.notify_one();
  if (in.writer.joinable()) in.writer.join();
  if (in.applier.joinable()) in.applier.join();
  if (!in.Failure().ok()) return in.Failure();
  Status s = in.recorder->Sync();
  if (s.ok()) s = in.SyncAndCheckpoint(in.applied_seq);
  if (!s.ok()) in.Fail(s);
  return s;
}

Seq Tap::last_seq() const {
  std::lock_guard lock(impl_->mu);
  return impl_->last_seq;
}

Status Tap::failure() const { return impl_->Failure(); }

uint64_t Tap::reverted_bytes() const { return impl_->reverted_bytes; }

}  // namespace tidemark::capture
