// The shipper's queue: memory, spill, dirty bitmap, the resync's refreshes,
// and what acknowledgements release (ship_impl.h, docs/format-tap-state.md).
#include "ship_impl.h"

#include <malloc.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cstring>

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
  // Drop the queue before reading the spill back (in small batches): the
  // peak stays near the queue's cap (a 10-minute outage measured 658 MiB
  // VmHWM with 64 MiB batches read beside the full queue).
  std::deque<Item>().swap(queue);
  while (!spill->empty()) {
    std::vector<Item> items;
    TM_RETURN_IF_ERROR(spill->ReadFront(4 << 20, &items));
    for (const Item& it : items) mark(it);
  }
  // The queue's 4 KiB strings went back to malloc's free lists, which keep
  // them: give them back to the system (measured: RSS stayed at 296 MiB
  // through a whole outage in bitmap mode without this).
  malloc_trim(0);
  spdlog::warn("{}: queue and spill full ({} MiB): dirty-block bitmap mode", label,
               (o.max_queue_bytes + o.max_spill_bytes) >> 20);
  ++queue_epoch;
  sent = 0;
  queued_bytes = 0;
  hash_seq = kNoSeq;
  target_hashes.clear();
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
  // With block hashes, each run's refreshes go in pieces (kHashPieceBytes)
  // compared with the target's blocks at the acknowledged seq: the queue is
  // empty, so the target holds everything before the interval.
  hash_seq = hash_feature && acked != kNoSeq ? acked : kNoSeq;
  target_hashes.clear();
  if (hash_seq != kNoSeq) {
    std::vector<DirtyRun> pieces;
    for (const DirtyRun& r : runs) {
      const uint64_t piece = std::max<uint64_t>(kHashPieceBytes, o.volumes[r.volume].block_bytes);
      for (uint64_t off = r.extent.offset_bytes; off < r.extent.end_bytes(); off += piece) {
        pieces.push_back({r.volume, {off, std::min(piece, r.extent.end_bytes() - off)}});
      }
    }
    runs = std::move(pieces);
  }
  refresh_pending += runs.size();
  spdlog::info("{}: resync of {} runs from the dirty bitmap{}", label, runs.size(),
               hash_seq != kNoSeq ? " (comparing block hashes with the target)" : "");
  return runs;
}

const char* Shipper::Impl::HashesOf(uint16_t volume, uint64_t offset, uint64_t len) const {
  auto it = target_hashes.upper_bound({volume, offset});
  if (it == target_hashes.begin()) return nullptr;
  --it;
  const wire::BlockHashes& h = it->second;
  const uint64_t bs = o.volumes[volume].block_bytes;
  if (it->first.first != volume || offset < h.offset_bytes ||
      offset + len > h.offset_bytes + uint64_t{h.count} * bs) {
    return nullptr;
  }
  return h.hashes.data() + (offset - h.offset_bytes) / bs * wire::kBlockHashBytes;
}

Shipper::Impl::Fill Shipper::Impl::FillRefresh(size_t i) {
  Item& it = queue[i];
  if (applied.load() < it.entry.seq) return Fill::kWait;
  const uint16_t v = it.entry.volume;
  const char* theirs = nullptr;
  if (hash_seq != kNoSeq) {
    theirs = HashesOf(v, it.entry.offset_bytes, it.entry.length_bytes);
    if (theirs == nullptr) return Fill::kWait;
  }
  it.data.resize(it.entry.length_bytes);
  Status s = members[v].backing->Read(it.entry.offset_bytes, it.data.data(), it.data.size());
  if (!s.ok()) {
    last_error = s.message();
    return Fill::kWait;
  }
  if (theirs != nullptr) {
    // The target holds its blocks as of hash_seq plus every write queued
    // before this refresh, which the backing's bytes include too: a block
    // equal to the target's at hash_seq needs no resend (docs/protocol.md).
    const uint64_t bs = o.volumes[v].block_bytes;
    const uint64_t blocks = (it.data.size() + bs - 1) / bs;
    int64_t first = -1, last = -1;
    std::string block;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    for (uint64_t b = 0; b < blocks; ++b) {
      block.assign(it.data, b * bs, bs);
      block.resize(bs, '\0');  // the volume's last block, past its end
      EVP_Digest(block.data(), block.size(), md, &md_len, EVP_sha256(), nullptr);
      if (std::memcmp(md, theirs + b * wire::kBlockHashBytes, wire::kBlockHashBytes) != 0) {
        if (first < 0) first = static_cast<int64_t>(b);
        last = static_cast<int64_t>(b);
      }
    }
    const uint64_t before = it.data.size();
    if (first < 0) {
      resync_skipped_bytes += before;
      resync_end = recorded;
      if (refresh_pending > 0) --refresh_pending;
      if (refresh_pending == 0 && resync_submitted && resyncing) EndResync(resync_end);
      return Fill::kDrop;
    }
    const uint64_t from = static_cast<uint64_t>(first) * bs;
    const uint64_t to = std::min<uint64_t>(before, static_cast<uint64_t>(last + 1) * bs);
    it.data = it.data.substr(from, to - from);
    it.entry.offset_bytes += from;
    it.entry.length_bytes = static_cast<uint32_t>(to - from);
    resync_skipped_bytes += before - it.data.size();
  }
  it.refresh = false;  // an ordinary write entry from here on
  queued_bytes += it.data.size();
  resync_bytes += it.data.size();
  // Writes after the refresh's seq may already be in these bytes: the
  // interval ends at the newest seq recorded now.
  resync_end = recorded;
  if (refresh_pending > 0) --refresh_pending;
  if (refresh_pending == 0 && resync_submitted && resyncing) EndResync(resync_end);
  return Fill::kFilled;
}

void Shipper::Impl::EndResync(Seq upto) {
  Enqueue(UnorderedMarker(-1, upto, NowNs())).IgnoreError();
  resyncing = false;
  hash_seq = kNoSeq;  // every refresh is filled: the hashes served their turn
  target_hashes.clear();
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
