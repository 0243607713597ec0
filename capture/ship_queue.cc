// The shipper's queue: memory, spill, dirty bitmap, the resync's refreshes,
// and what acknowledgements release (ship_impl.h, docs/format-tap-state.md).
#include "ship_impl.h"

#include <spdlog/spdlog.h>

#include "tidemark/journal/time.h"

namespace tidemark::capture {

using namespace ship_detail;  // NOLINT: this module's constants

bool Shipper::Impl::AnyDirty() const {
  for (const Member& m : members) {
    if (!m.dirty->empty()) return true;
  }
  return false;
}

uint64_t Shipper::Impl::DirtyBytes() const {
  uint64_t n = 0;
  for (const Member& m : members) n += m.dirty->dirty_bytes();
  return n;
}

Status Shipper::Impl::PersistDirty() {
  for (Member& m : members) TM_RETURN_IF_ERROR(m.dirty->Persist());
  return Status::Ok();
}

Status Shipper::Impl::ClearActivity() {
  for (Member& m : members) TM_RETURN_IF_ERROR(m.al->ClearAll());
  return Status::Ok();
}

void Shipper::Impl::EndActivity(const Item& it) {
  if (it.bookmark || it.unordered != 0 || it.entry.op == wire::EntryOp::kFlush) return;
  if (it.entry.volume < members.size()) {
    members[it.entry.volume].al->End(it.entry.offset_bytes, it.entry.length_bytes);
  }
}

void Shipper::Impl::MarkDirty(const Item& it) {
  if (it.bookmark || it.unordered != 0 || it.entry.op == wire::EntryOp::kFlush) return;
  if (it.entry.volume < members.size()) {
    members[it.entry.volume].dirty->Mark(it.entry.offset_bytes, it.entry.length_bytes);
  }
}

Status Shipper::Impl::QueueResync(Seq after, TimeNs time_ns) {
  Seq seq = after == kNoSeq ? 1 : after + 1;
  {
    std::lock_guard lock(mu);
    queue.push_back(UnorderedMarker(1, after, time_ns));
  }
  // The activity logs' extents, and the dirty bitmaps' blocks of a tap
  // that stopped in bitmap mode.
  std::vector<DirtyRun> extents;
  for (size_t v = 0; v < members.size(); ++v) {
    for (const Extent& e : members[v].al->recovered()) extents.push_back({uint16_t(v), e});
    while (!members[v].dirty->empty()) {
      auto runs = members[v].dirty->TakeRuns(kResyncChunkBytes, 4096);
      if (runs.empty()) break;
      for (const Extent& e : runs) extents.push_back({uint16_t(v), e});
    }
  }
  for (const auto& [v, e] : extents) {
    for (uint64_t off = e.offset_bytes; off < e.end_bytes(); off += kResyncChunkBytes) {
      uint64_t len = std::min<uint64_t>(kResyncChunkBytes, e.end_bytes() - off);
      Item it;
      it.data.resize(len);
      TM_RETURN_IF_ERROR(members[v].backing->Read(off, it.data.data(), len));
      it.entry = {seq, time_ns, v, wire::EntryOp::kWrite, 0, off, static_cast<uint32_t>(len), {}};
      std::lock_guard lock(mu);
      members[v].al->Begin(off, len);
      queued_bytes += len;
      resync_bytes += len;
      recorded = resync_last = seq++;
      newest_write_ns = time_ns;
      queue.push_back(std::move(it));
    }
  }
  {
    std::lock_guard lock(mu);
    queue.push_back(UnorderedMarker(-1, resync_last, time_ns));
  }
  return Status::Ok();
}

void Shipper::Impl::Refill() {
  while (!spill->empty() && queued_bytes < o.max_queue_bytes / 2) {
    std::vector<Item> items;
    // Small batches: a large one would sit beside the queue (peak memory).
    Status s = spill->ReadFront(std::min<uint64_t>(o.max_queue_bytes / 4, 4 << 20), &items);
    if (!s.ok()) {
      last_error = s.message();  // a damaged spill: the activity log still covers it
      return;
    }
    for (Item& it : items) {
      queued_bytes += it.data.size();
      queue.push_back(std::move(it));
    }
    cv.notify_all();  // the spill has room again
  }
}

Status Shipper::Impl::Enqueue(Item item) {
  if (spill->empty() && queued_bytes + item.data.size() <= o.max_queue_bytes) {
    queued_bytes += item.data.size();
    queue.push_back(std::move(item));
    return Status::Ok();
  }
  Status s = spill->Append(item);
  if (s.code() != Code::kNoSpace) return s;
  // Past the spill cap: keep only which blocks changed (decision 6).
  MarkDirty(item);
  return EnterBitmap();
}

Status Shipper::Impl::EnterBitmap() {
  auto mark = [&](const Item& it) {
    MarkDirty(it);
    if (!it.refresh) EndActivity(it);
  };
  for (const Item& it : queue) mark(it);
  while (!spill->empty()) {
    std::vector<Item> items;
    TM_RETURN_IF_ERROR(spill->ReadFront(64 << 20, &items));
    for (const Item& it : items) mark(it);
  }
  spdlog::warn("{}: queue and spill full ({} MiB): dirty-block bitmap mode", label,
               (o.max_queue_bytes + o.max_spill_bytes) >> 20);
  queue.clear();
  ++queue_epoch;
  sent = 0;
  queued_bytes = 0;
  bitmap_mode = true;
  resyncing = resync_submitted = false;
  refresh_pending = 0;
  state = "bitmap";
  cv.notify_all();
  return PersistDirty();
}

std::vector<Shipper::Impl::DirtyRun> Shipper::Impl::StartResync() {
  queue.push_back(UnorderedMarker(1, acked, NowNs()));
  bitmap_mode = false;  // writes are queued again, in order after the refreshes taken now
  resyncing = true;
  resync_submitted = false;
  state = "resync";
  std::vector<DirtyRun> runs;
  for (size_t v = 0; v < members.size(); ++v) {
    while (!members[v].dirty->empty()) {
      auto more = members[v].dirty->TakeRuns(kResyncChunkBytes, 4096);
      if (more.empty()) break;
      for (const Extent& e : more) runs.push_back({uint16_t(v), e});
    }
  }
  refresh_pending += runs.size();
  spdlog::info("{}: resync of {} runs from the dirty bitmap", label, runs.size());
  return runs;
}

bool Shipper::Impl::FillRefresh(size_t i) {
  Item& it = queue[i];
  if (applied.load() < it.entry.seq) return false;
  it.data.resize(it.entry.length_bytes);
  Status s = members[it.entry.volume].backing->Read(it.entry.offset_bytes, it.data.data(),
                                                   it.data.size());
  if (!s.ok()) {
    last_error = s.message();
    return false;
  }
  it.refresh = false;  // an ordinary write entry from here on
  queued_bytes += it.data.size();
  resync_bytes += it.data.size();
  // Writes after the refresh's seq may already be in these bytes: the
  // interval ends at the newest seq recorded now.
  resync_end = recorded;
  if (refresh_pending > 0) --refresh_pending;
  if (refresh_pending == 0 && resync_submitted && resyncing) EndResync(resync_end);
  return true;
}

void Shipper::Impl::EndResync(Seq upto) {
  Enqueue(UnorderedMarker(-1, upto, NowNs())).IgnoreError();
  resyncing = false;
}

void Shipper::Impl::OnAck(Seq seq) {
  std::lock_guard lock(mu);
  if (seq == kNoSeq || (acked != kNoSeq && seq < acked)) return;
  acked = seq;
  OnAckLocked();
}

void Shipper::Impl::OnAckLocked() {
  if (acked == kNoSeq) return;
  const Seq seq = acked;
  // Bookmarks and UNORDERED markers leave with their own answers.
  while (!queue.empty() && !queue.front().bookmark && queue.front().unordered == 0 &&
         queue.front().entry.seq <= seq) {
    const Item& it = queue.front();
    EndActivity(it);
    queued_bytes -= it.data.size();
    newest_acked_ns = it.entry.time_ns;
    queue.pop_front();
    if (sent > 0) --sent;
  }
  size_t before = queue.size();
  Refill();
  if (queue.size() > before) send_signal->cancel();  // io thread: wake the sender
  if (resync_last != kNoSeq && seq >= resync_last) {
    Status s = ClearActivity();  // the crash's extents are on the target now
    if (s.ok()) s = PersistDirty();
    if (!s.ok()) last_error = s.message();
    resync_last = kNoSeq;
  }
  cv.notify_all();
}


}  // namespace tidemark::capture
