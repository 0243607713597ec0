// The writer: Apply() turns each write of the ordered stream into block
// versions, range records and a seq record, group-committed in one batch.
#include <rocksdb/options.h>

#include <algorithm>
#include <cstring>

#include "journal_impl.h"

namespace tidemark::journal {

namespace {

// Zero ranges up to this many whole blocks are written as zero-block
// versions; longer ones as one range record (mkfs discards whole devices).
constexpr uint64_t kMaxZeroBlocksInline = 16;
// With the index writer's queue (IndexWriter::kMaxQueued) and the batch it
// writes, a writer holds at most 5 batches' block copies: 80 MiB.
constexpr size_t kMaxPendingBytes = 16 << 20;

}  // namespace

bool AllZero(std::string_view d) {
  const char* p = d.data();
  size_t n = d.size();
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
    if (acc) return false;
  }
  for (; i < n; ++i) acc |= static_cast<uint8_t>(p[i]);
  return acc == 0;
}

bool Journal::Impl::SeqExists(uint32_t space, Seq seq) const {
  if (pending_seqs.count({space, seq})) return true;
  if (!Barrier().ok()) return false;
  std::string v;
  return db->Get({}, cf[kSeqs], SeqKey(space, seq), &v).ok();
}

Status Journal::Impl::PutBlock(const VolumeState& vol, uint64_t block, Seq seq,
                               std::string_view data, TimeNs time_ns, uint8_t flags,
                               uint8_t op) {
  if (v2()) {
    const bool zero = AllZero(data);
    pending_blocks[BlockId{vol.rec.id, block}].assign(data);
    if (!zero) pending_bytes += data.size();
    if (run && run->volume == vol.rec.id && run->seq == seq && run->zeros == zero && run->op == op &&
        run->first_block + run->blocks == block && run->data.size() < (8u << 20)) {
      if (!zero) run->data.append(data);
      ++run->blocks;
      return Status::Ok();
    }
    TM_RETURN_IF_ERROR(FlushRun());
    run.emplace();
    run->volume = vol.rec.id;
    run->seq = seq;
    run->time_ns = time_ns;
    run->flags = flags;
    run->op = op;
    run->first_block = block;
    run->blocks = 1;
    run->zeros = zero;
    run->write_offset = write_offset;
    run->write_end = write_end;
    if (!zero) run->data.assign(data);
    return Status::Ok();
  }
  std::string value;
  if (AllZero(data)) {
    value = EncodeValue(ValueKind::kZeroBlock, Codec::kNone, {});
  } else {
    std::string packed;
    if (Compress(meta.codec, data, &packed)) {
      value = EncodeValue(ValueKind::kBlock, meta.codec, packed);
    } else {
      value = EncodeValue(ValueKind::kBlock, Codec::kNone, data);
    }
  }
  pending_bytes += value.size();
  pending_blocks[BlockId{vol.rec.id, block}].assign(data);
  return FromRocks(batch.Put(cf[kBlocks], BlockKey(vol.rec.id, block, seq), value),
                   "batch put");
}

void Journal::Impl::PruneInflight() {
  if (inflight_blocks.empty()) return;
  const uint64_t written = index_writer->written();
  while (!inflight_blocks.empty() && inflight_blocks.front().first <= written) {
    inflight_blocks.pop_front();
  }
}

Status Journal::Impl::CurrentBlock(const VolumeState& vol, uint64_t block, std::string* out) {
  const BlockId id{vol.rec.id, block};
  auto it = pending_blocks.find(id);
  if (it != pending_blocks.end()) {
    *out = it->second;
    return Status::Ok();
  }
  if (!inflight_blocks.empty()) {
    // Batches the index writer wrote need not be looked at; of the others,
    // the newest holding the block has its newest content.
    PruneInflight();
    for (auto b = inflight_blocks.rbegin(); b != inflight_blocks.rend(); ++b) {
      auto hit = b->second.find(id);
      if (hit != b->second.end()) {
        *out = hit->second;
        return Status::Ok();
      }
    }
  }
  TM_RETURN_IF_ERROR(failed);
  out->resize(vol.epoch().block_bytes);
  return ReadBlockAt(vol, block, kNoSeq, out->data());
}

Status Journal::Impl::Commit(bool async) {
  if (batch.Count() == 0 && !run && closed_runs.empty() && pending_tails.empty()) {
    return async ? failed : Barrier();
  }
  TM_RETURN_IF_ERROR(failed);
  Status s;
  if (v2()) {
    s = WriteBatchV2(async);
  } else {
    rocksdb::WriteOptions wo;
    s = FromRocks(db->Write(wo, &batch), "write batch to journal " + dir);
  }
  if (!s.ok()) {
    failed = s;
    return s;
  }
  for (auto& [space, st] : spaces) st.committed_seq = st.last_seq;
  for (auto& [volume, range] : pending_ranges) volumes[volume].ranges.push_back(range);
  pending_ranges.clear();
  batch.Clear();
  pending_blocks.clear();
  pending_seqs.clear();
  pending_writes = 0;
  pending_bytes = 0;
  return Status::Ok();
}

Status Journal::Apply(uint32_t volume, const WriteOp& op) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  SpaceState& sp = in.spaces[vol->rec.space];
  const std::string& name = vol->rec.name;
  if (sp.last_seq != kNoSeq && op.seq <= sp.last_seq) {
    if (in.SeqExists(vol->rec.space, op.seq)) return Status::Ok();  // a resend
    return Status::InvalidArgument("volume " + name + ": seq " + std::to_string(op.seq) +
                                   " is not after the last seq " + std::to_string(sp.last_seq));
  }
  if (op.seq == kNoSeq) return Status::InvalidArgument("seq out of range");
  const uint64_t size = vol->epoch().size_bytes;
  const uint64_t bs = vol->epoch().block_bytes;
  if (op.length_bytes == 0 || op.offset_bytes % kSectorBytes || op.length_bytes % kSectorBytes ||
      op.offset_bytes > size || op.length_bytes > size - op.offset_bytes) {
    return Status::InvalidArgument(
        "volume " + name + ": extent " + std::to_string(op.offset_bytes) + "+" +
        std::to_string(op.length_bytes) + " is empty, not 512-aligned or past the end (" +
        std::to_string(size) + " bytes)");
  }
  if (op.op == OpKind::kWrite ? op.data.size() != op.length_bytes : !op.data.empty()) {
    return Status::InvalidArgument("volume " + name + ": seq " + std::to_string(op.seq) +
                                   " carries " + std::to_string(op.data.size()) +
                                   " data bytes for a length of " +
                                   std::to_string(op.length_bytes));
  }
  if (op.op != OpKind::kWrite && op.op != OpKind::kTrim && op.op != OpKind::kWriteZeroes) {
    return Status::InvalidArgument("volume " + name + ": op must be write, trim or zeroes");
  }
  if (op.time_ns < sp.last_time_ns) {
    return Status::InvalidArgument("volume " + name + ": time of seq " + std::to_string(op.seq) +
                                   " goes backwards");
  }

  // A failure past this point leaves part of the seq in the batch: the
  // batch is never committed and the journal refuses writes until reopened.
  Status s = [&]() -> Status {
    const uint64_t end = op.offset_bytes + op.length_bytes;
    in.write_offset = op.offset_bytes;
    in.write_end = end;
    const uint8_t seg_op = static_cast<uint8_t>(op.op);  // seg::kOp* are OpKind's numbers
    const uint64_t first_block = op.offset_bytes / bs;
    const uint64_t last_block = (end - 1) / bs;
    std::string scratch;
    if (op.op == OpKind::kWrite) {
      for (uint64_t b = first_block; b <= last_block; ++b) {
        uint64_t b_start = b * bs;
        uint64_t lo = std::max(b_start, op.offset_bytes);
        uint64_t hi = std::min(b_start + bs, end);
        std::string_view src = op.data.substr(lo - op.offset_bytes, hi - lo);
        if (hi - lo == bs) {
          TM_RETURN_IF_ERROR(in.PutBlock(*vol, b, op.seq, src, op.time_ns, op.flags, seg_op));
          continue;
        }
        // Sub-block write: read-modify-write against the newest version.
        TM_RETURN_IF_ERROR(in.CurrentBlock(*vol, b, &scratch));
        std::memcpy(scratch.data() + (lo - b_start), src.data(), src.size());
        TM_RETURN_IF_ERROR(in.PutBlock(*vol, b, op.seq, scratch, op.time_ns, op.flags, seg_op));
      }
    } else {
      // Whole blocks inside the range, and partial edge blocks.
      uint64_t full_lo = (op.offset_bytes + bs - 1) / bs;
      uint64_t full_hi = end / bs;  // exclusive
      bool as_range = full_hi > full_lo && full_hi - full_lo > kMaxZeroBlocksInline;
      if (as_range) TM_RETURN_IF_ERROR(in.Commit());  // ranges are read from memory after commit
      for (uint64_t b = first_block; b <= last_block; ++b) {
        bool whole = b >= full_lo && b < full_hi;
        if (whole && as_range) continue;
        uint64_t b_start = b * bs;
        if (whole) {
          scratch.assign(bs, '\0');
        } else {
          TM_RETURN_IF_ERROR(in.CurrentBlock(*vol, b, &scratch));
          uint64_t lo = std::max(b_start, op.offset_bytes);
          uint64_t hi = std::min(b_start + bs, end);
          std::memset(scratch.data() + (lo - b_start), 0, hi - lo);
        }
        TM_RETURN_IF_ERROR(in.PutBlock(*vol, b, op.seq, scratch, op.time_ns, op.flags, seg_op));
      }
      if (as_range) {
        RangeRecord rr{op.op, full_lo, full_hi - full_lo};
        TM_RETURN_IF_ERROR(FromRocks(
            in.batch.Put(in.cf[kRanges], RangeKey(volume, op.seq), EncodeRange(rr)), "batch put"));
        in.pending_ranges.push_back({volume, RangeEntry{op.seq, rr}});
      }
    }
    if (in.v2()) {
      // The write's last record says so: an open rolls forward only whole
      // writes (docs/format-journal.md#roll-forward).
      if (in.pending_ranges.empty() || in.pending_ranges.back().second.seq != op.seq) {
        if (!in.run || in.run->seq != op.seq || in.run->volume != volume) {
          return Status::Aborted("internal error: seq " + std::to_string(op.seq) + " left no record");
        }
        in.run->last = true;
      } else {
        const RangeRecord& rr = in.pending_ranges.back().second.rec;
        TM_RETURN_IF_ERROR(in.AppendRecord(
            vol->rec.space, seg::RecordKind::kRange, static_cast<uint8_t>(op.flags | seg::kFlagSeqEnd),
            volume, op.seq,
            seg::EncodeRangeBody({seg_op, op.time_ns, rr.first_block, rr.block_count})));
      }
    }
    SeqRecord rec{op.time_ns, volume, op.op, op.flags, {Extent{op.offset_bytes, op.length_bytes}}};
    TM_RETURN_IF_ERROR(FromRocks(
        in.batch.Put(in.cf[kSeqs], SeqKey(vol->rec.space, op.seq), EncodeSeq(rec)), "batch put"));
    TM_RETURN_IF_ERROR(FromRocks(
        in.batch.Put(in.cf[kTimes], TimeKey(vol->rec.space, op.time_ns, op.seq), EncodeTime()),
        "batch put"));
    if (op.flags & kSeqFua) {
      TM_RETURN_IF_ERROR(FromRocks(in.batch.Put(in.cf[kFlushes], FlushKey(vol->rec.space, op.seq),
                                                EncodeFlush({op.time_ns, kSeqFua})),
                                   "batch put"));
      sp.last_flush_seq = op.seq;
    }
    return Status::Ok();
  }();
  in.write_offset = in.write_end = 0;
  if (!s.ok()) {
    in.failed = s;
    return s;
  }
  sp.last_seq = op.seq;
  sp.last_time_ns = op.time_ns;
  in.pending_seqs.insert({vol->rec.space, op.seq});
  ++in.pending_writes;
  // A range must be in memory before any later write reads under it.
  if (!in.pending_ranges.empty() || in.pending_writes >= in.options.group_commit_writes ||
      in.pending_bytes >= kMaxPendingBytes) {
    return in.Commit(/*async=*/in.pending_ranges.empty());
  }
  return Status::Ok();
}

Status Journal::MarkFlush(uint32_t volume, Seq seq, TimeNs time_ns, uint8_t flags) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  const SpaceState& sp = in.spaces[vol->rec.space];
  if (sp.last_seq == kNoSeq || seq > sp.last_seq) {
    return Status::InvalidArgument("volume " + vol->rec.name + ": flush of seq " +
                                   std::to_string(seq) + " which was not written");
  }
  SpaceState& space = in.spaces[vol->rec.space];
  // A FLUSH with nothing written since the last marker adds no point (and
  // must not rewrite the marker's time: a read-only client flushes too).
  if (seq == space.last_flush_seq) return Status::Ok();
  space.last_flush_seq = std::max(seq, space.last_flush_seq == kNoSeq ? seq : space.last_flush_seq);
  if (in.v2()) {
    TM_RETURN_IF_ERROR(in.AppendRecord(vol->rec.space, seg::RecordKind::kFlush, flags, volume, seq,
                                       seg::EncodeFlushBody(time_ns)));
  }
  return FromRocks(in.batch.Put(in.cf[kFlushes], FlushKey(vol->rec.space, seq),
                                EncodeFlush({time_ns, flags})),
                   "batch put");
}

Status Journal::Commit() { return impl_->Commit(/*async=*/true); }

Status Journal::Impl::CommitDurable() {
  TM_RETURN_IF_ERROR(Commit());
  // Segments before the index: a durable entry never names bytes that are not.
  Status s = SyncLogs();
  if (s.ok() && (!v2() || options.sync_index_at_flush)) s = FromRocks(db->SyncWAL(), "sync journal WAL");
  if (!s.ok()) failed = s;
  return s;
}

Result<Seq> Journal::Sync(uint32_t volume) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  TM_RETURN_IF_ERROR(in.CommitDurable());
  return in.spaces[vol->rec.space].committed_seq;
}

Result<Seq> Journal::LastSeq(uint32_t volume) const {
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  auto it = impl_->spaces.find(vol->rec.space);
  return it == impl_->spaces.end() ? kNoSeq : it->second.last_seq;
}

Result<Bookmark> Journal::AddBookmark(uint32_t volume, std::string_view name, TimeNs now_ns) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  if (name.empty() || name.size() > 200) {
    return Status::InvalidArgument("bookmark name must be 1 to 200 bytes");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20) {
      return Status::InvalidArgument("bookmark name has a control character");
    }
  }
  for (const auto& u : in.unordered[vol->rec.space]) {
    if (u.upto == kNoSeq) {
      return Status::InvalidArgument("volume " + vol->rec.name +
                                     " is being resynchronised (writes resent out of order since "
                                     "seq " + std::to_string(u.after) +
                                     "): no consistent point to name yet");
    }
  }
  TM_RETURN_IF_ERROR(in.Commit());
  std::string key = BookmarkKey(vol->rec.space, name);
  std::string existing;
  if (in.db->Get({}, in.cf[kBookmarks], key, &existing).ok()) {
    return Status::InvalidArgument("bookmark '" + std::string(name) + "' already exists on volume " +
                                   vol->rec.name);
  }
  Seq seq = in.spaces[vol->rec.space].committed_seq;
  if (seq == kNoSeq || seq < vol->first_seq) {
    return Status::NotFound("volume " + vol->rec.name + " has no point to bookmark yet");
  }
  BOOST_OUTCOME_TRY(point, in.PointAt(*vol, seq));
  if (in.v2()) {
    // A segment record first: a rebuilt index has it (docs/format-journal.md).
    TM_RETURN_IF_ERROR(in.AppendRecord(vol->rec.space, seg::RecordKind::kBookmark, 0, volume, seq,
                                       seg::EncodeBookmarkBody({now_ns, std::string(name)})));
  }
  TM_RETURN_IF_ERROR(
      FromRocks(in.batch.Put(in.cf[kBookmarks], key, EncodeBookmark({seq, now_ns})), "batch put"));
  TM_RETURN_IF_ERROR(in.CommitDurable());
  return Bookmark{std::string(name), point, now_ns};
}

}  // namespace tidemark::journal
