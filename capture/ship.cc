// The tap's shipping (remote mode): the Recorder calls and the public API
// (ship.h); the state is in ship_impl.h, see there.
#include "ship_impl.h"

#include <openssl/ssl.h>

#include <filesystem>

#include "tidemark/journal/time.h"

namespace tidemark::capture {

using namespace ship_detail;  // NOLINT: this module's constants

Result<std::unique_ptr<Shipper>> Shipper::Start(ShipOptions options,
                                                std::vector<const Backing*> backings) {
  auto impl = std::make_unique<Impl>();
  if (options.volumes.empty() || options.volumes.size() != backings.size() ||
      options.volumes.size() > 65535) {
    return Status::InvalidArgument("a tap ships 1 to 65535 volumes, each with its backing");
  }
  std::error_code fec;
  std::filesystem::create_directories(options.state_dir, fec);
  if (fec) return Status::IOError("cannot create " + options.state_dir + ": " + fec.message());
  for (size_t i = 0; i < backings.size(); ++i) {
    // Member 0 keeps a single volume's file names (docs/format-tap-state.md).
    const std::string suffix = i == 0 ? "" : "." + std::to_string(i);
    const ShipOptions::Volume& v = options.volumes[i];
    Impl::Member m;
    m.backing = backings[i];
    BOOST_OUTCOME_TRY(al, ActivityLog::Open(options.state_dir + "/activity" + suffix + ".log",
                                            v.size_bytes));
    m.al = std::move(al);
    BOOST_OUTCOME_TRY(dirty, DirtyBitmap::Open(options.state_dir + "/dirty" + suffix + ".bitmap",
                                               v.size_bytes, v.block_bytes));
    m.dirty = std::move(dirty);
    impl->members.push_back(std::move(m));
  }
  impl->label = options.group.empty() ? options.volumes[0].name : "group " + options.group;
  BOOST_OUTCOME_TRY(spill, Spill::Open(options.state_dir + "/spill", options.max_spill_bytes));
  impl->spill = std::move(spill);
  impl->tls = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(impl->tls->native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  impl->tls->load_verify_file(options.ca_file, ec);
  if (ec) {
    return Status::InvalidArgument("cannot load the target's CA " + options.ca_file + ": " +
                                   ec.message());
  }
  impl->o = std::move(options);
  impl->io = std::make_unique<asio::io_context>(1);
  impl->send_signal = std::make_unique<asio::steady_timer>(*impl->io);
  Impl* in = impl.get();
  asio::co_spawn(*in->io, in->Run(), asio::detached);
  in->thread = std::thread([in] { in->io->run(); });
  return std::unique_ptr<Shipper>(new Shipper(std::move(impl)));
}

Shipper::Shipper(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Shipper::~Shipper() { Shutdown(std::chrono::seconds(0)).IgnoreError(); }

Result<Shipper::Ready> Shipper::WaitReady(std::chrono::seconds timeout,
                                          std::function<void(uint64_t, uint64_t)> progress) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  in.progress = std::move(progress);
  bool done = in.cv.wait_for(lock, timeout, [&] { return in.ready || !in.refusal.ok(); });
  if (!in.refusal.ok()) return in.refusal;
  if (!done) {
    return Status::TryAgain("the target " + in.o.target + " was not reachable within " +
                            std::to_string(timeout.count()) + " s: " + in.last_error);
  }
  return in.ready_point;
}

Status Shipper::Record(uint32_t member, const TapWrite& w) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  if (in.stopping) return Status::Aborted("the tap is stopping");
  if (member >= in.members.size()) return Status::InvalidArgument("no volume " + std::to_string(member));
  Item it;
  in.recorded = w.seq;
  in.newest_write_ns = w.time_ns;
  if (in.bitmap_mode) {
    in.members[member].dirty->Mark(w.offset_bytes, w.length_bytes);
    return Status::Ok();
  }
  it.entry = wire::ToWriteEntry(static_cast<uint16_t>(member), w);
  it.entry.data = {};
  it.data.assign(w.data);
  in.members[member].al->Begin(w.offset_bytes, w.length_bytes);
  return in.Enqueue(std::move(it));
}

Status Shipper::MarkFlush(Seq seq, TimeNs time_ns) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  if (in.recorded == kNoSeq || in.bitmap_mode) return Status::Ok();  // no point to flush
  Item it;
  it.entry = {seq, time_ns, 0, wire::EntryOp::kFlush, 0, 0, 0, {}};
  return in.Enqueue(std::move(it));
}

Status Shipper::Commit() {
  Impl& in = *impl_;
  Status s;
  {
    std::lock_guard lock(in.mu);
    for (auto& m : in.members) {  // before the batch reaches the backings
      if (s.ok()) s = m.al->Persist();
    }
    if (s.ok() && in.bitmap_mode) s = in.PersistDirty();
  }
  in.Signal();
  return s;
}

Status Shipper::Sync() {
  Impl& in = *impl_;
  if (!in.o.sync) return Status::Ok();  // async: the activity log covers the queue
  std::unique_lock lock(in.mu);
  Seq want = in.recorded;
  in.cv.wait(lock, [&] {
    return want == kNoSeq || (in.acked != kNoSeq && in.acked >= want) || in.stopping;
  });
  if (want != kNoSeq && (in.acked == kNoSeq || in.acked < want)) {
    return Status::Aborted("stopped before the target acknowledged seq " + std::to_string(want));
  }
  return Status::Ok();
}

Status Shipper::Checkpoint(Seq) { return Status::Ok(); }

Status Shipper::RecordRefresh(uint32_t member, Seq seq, TimeNs time_ns, uint64_t offset_bytes,
                              uint32_t length_bytes) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  if (member >= in.members.size()) return Status::InvalidArgument("no volume " + std::to_string(member));
  in.recorded = seq;
  if (in.bitmap_mode) {  // bitmap mode again before it was read: dirty again
    in.members[member].dirty->Mark(offset_bytes, length_bytes);
    return Status::Ok();
  }
  Item it;
  it.refresh = true;
  it.entry = {seq,          time_ns,     static_cast<uint16_t>(member), wire::EntryOp::kWrite, 0,
              offset_bytes, length_bytes, {}};
  return in.Enqueue(std::move(it));
}

void Shipper::Applied(Seq seq) {
  impl_->applied.store(seq);
  impl_->Signal();
}

void Shipper::SetTap(Tap* tap) {
  std::lock_guard lock(impl_->mu);
  impl_->tap = tap;
}

Result<Shipper::BookmarkPoint> Shipper::AddBookmark(const std::string& name, Seq newest_received,
                                                    std::chrono::seconds timeout) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  in.cv.wait_for(lock, std::chrono::seconds(5), [&] {
    return in.recorded != kNoSeq && in.recorded >= newest_received;
  });
  if (!in.connected) {
    return Status::TryAgain("the target is not connected (" + in.last_error +
                            "): bookmark not taken");
  }
  if (in.bitmap_mode || in.resyncing || in.state == "resync") {
    return Status::TryAgain("the tap is resynchronising blocks out of write order: no "
                            "consistent point to name until it is done");
  }
  in.bookmarks_done.erase(name);
  Item it;
  it.bookmark = true;
  it.name = name;
  TM_RETURN_IF_ERROR(in.Enqueue(std::move(it)));
  lock.unlock();
  in.Signal();
  lock.lock();
  if (!in.cv.wait_for(lock, timeout, [&] { return in.bookmarks_done.count(name) > 0; })) {
    return Status::TryAgain("the target did not confirm bookmark " + name + " within " +
                            std::to_string(timeout.count()) + " s");
  }
  return in.bookmarks_done[name];
}

ShipStatus Shipper::status() const {
  const Impl& in = *impl_;
  std::lock_guard lock(in.mu);
  ShipStatus s;
  s.state = in.state;
  if (s.state == "protected" && (!in.spill->empty() || in.queued_bytes > in.o.max_queue_bytes / 2)) {
    s.state = "backlog";
  }
  s.spilled_bytes = in.spill->bytes();
  s.dirty_bytes = in.DirtyBytes();
  s.connected = in.connected;
  s.recorded_seq = in.recorded;
  s.acked_seq = in.acked;
  s.queued_entries = in.queue.size() + in.spill->records();
  s.queued_bytes = in.queued_bytes;
  s.newest_write_ns = in.newest_write_ns;
  const bool drained = in.queue.empty() && in.spill->empty();
  s.newest_acked_ns = drained ? in.newest_write_ns : in.newest_acked_ns;
  s.rpo_lag_seconds =
      drained ? 0.0 : static_cast<double>(in.newest_write_ns - in.newest_acked_ns) / 1e9;
  s.reconnects = in.reconnects;
  s.sent_bytes = in.sent_bytes;
  s.import_bytes = in.import_bytes;
  s.resync_bytes = in.resync_bytes;
  s.resync_skipped_bytes = in.resync_skipped_bytes;
  s.last_error = in.last_error;
  return s;
}

Status Shipper::Shutdown(std::chrono::seconds timeout) {
  Impl& in = *impl_;
  if (!in.io) return Status::Ok();
  size_t left;
  {
    std::unique_lock lock(in.mu);
    in.cv.wait_for(lock, timeout, [&] { return in.queue.empty() && in.spill->empty(); });
    left = in.queue.size() + in.spill->records();
    // Everything acknowledged: no extent needs a resend at the next start.
    if (left == 0 && in.ready) in.ClearActivity().IgnoreError();
    in.stopping = true;
    in.cv.notify_all();
  }
  asio::post(*in.io, [&in] {
    boost::system::error_code ec;
    if (in.current) in.current->lowest_layer().close(ec);
    in.send_signal->cancel();
  });
  in.thread.join();
  in.send_signal.reset();
  in.io.reset();  // destroys what the coroutines left
  if (left > 0) {
    return Status::TryAgain(std::to_string(left) +
                            " writes were not acknowledged by the target; the activity log "
                            "keeps their extents for the next start");
  }
  return Status::Ok();
}


}  // namespace tidemark::capture
