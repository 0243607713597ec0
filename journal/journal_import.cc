// Import of a whole image as one seq: seq 0 of a new volume, or the changed
// blocks of a later copy.
//
// An import can be larger than a write batch should be, so its blocks are
// written in several batches and the seq record, which makes the seq a
// point, goes last. A marker written first ('I' be32 volume -> seq) lets a
// later open remove the block versions of an import that a crash cut off.
#include <rocksdb/options.h>

#include <algorithm>
#include <cstring>

#include "coding.h"
#include "journal_impl.h"

namespace tidemark::journal {

namespace {

constexpr size_t kImportChunkBytes = 4 << 20;

std::string MarkerKey(uint32_t volume) {
  std::string k = "I";
  coding::PutBE(&k, volume, 4);
  return k;
}

}  // namespace

Status Journal::Impl::AbandonImport(const std::string& marker_key) {
  std::string v;
  TM_RETURN_IF_ERROR(FromRocks(db->Get({}, cf[kDefault], marker_key, &v), "read import marker"));
  if (marker_key.size() != 5 || v.size() != 8) return Status::Corruption("bad import marker");
  uint32_t volume = static_cast<uint32_t>(coding::GetBE(marker_key.data() + 1, 4));
  Seq seq = coding::GetBE(v.data(), 8);
  rocksdb::WriteBatch wb;
  std::string rec;
  auto vit = volumes.find(volume);
  uint32_t space = vit == volumes.end() ? volume : vit->second.rec.space;
  if (db->Get({}, cf[kSeqs], SeqKey(space, seq), &rec).ok()) {
    // The seq is a point already (it cannot be, as the marker goes in the
    // same batch as the seq record): never delete a point's blocks.
    return FromRocks(db->Delete({}, cf[kDefault], marker_key), "remove import marker");
  }
  std::string prefix = IdPrefix(volume);
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;
  // Format 2: the extents go; the segment bytes they named are dead (never
  // a point's), left for retention to reclaim.
  const Cf where = v2() ? kExtents : kBlocks;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf[where]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    Seq key_seq = kNoSeq;
    if (v2()) {
      auto key = DecodeExtentKey(it->key().ToStringView());
      if (key) key_seq = key.value().seq;
    } else {
      auto key = DecodeBlockKey(it->key().ToStringView());
      if (key) key_seq = key.value().seq;
    }
    if (key_seq == seq) {
      TM_RETURN_IF_ERROR(FromRocks(wb.Delete(cf[where], it->key()), "batch delete"));
    }
  }
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "scan blocks"));
  TM_RETURN_IF_ERROR(FromRocks(wb.Delete(cf[kDefault], marker_key), "batch delete"));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TM_RETURN_IF_ERROR(FromRocks(db->Write(wo, &wb), "remove interrupted import"));
  if (!v2() || vit == volumes.end()) return Status::Ok();
  // The log says so too: a rebuilt index drops the import's data records.
  TM_RETURN_IF_ERROR(AppendRecord(space, seg::RecordKind::kImport, 0, volume, seq,
                                  seg::EncodeImportBody({seg::kImportAbandoned, 0})));
  return Commit();
}

Status Journal::Impl::AppendImportEnd(const VolumeState& vol, Seq seq, TimeNs time_ns,
                                      rocksdb::WriteBatch* wb) {
  const uint32_t space = vol.rec.space;
  TM_RETURN_IF_ERROR(AppendRecord(space, seg::RecordKind::kImport, seg::kFlagSeqEnd, vol.rec.id,
                                  seq, seg::EncodeImportBody({seg::kImportEnd, time_ns})));
  BOOST_OUTCOME_TRY(log, Log(space, /*append=*/true));
  TM_RETURN_IF_ERROR(log->Flush());
  const seg::Location t = log->tail();
  pending_tails.erase(space);
  return FromRocks(wb->Put(cf[kDefault], TailKey(space), EncodeTail({t.segment, t.offset, kNoSeq})),
                   "batch put");
}

Result<Seq> Journal::Import(uint32_t volume, const ReadFn& read, TimeNs time_ns, Seq seq) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  TM_RETURN_IF_ERROR(in.Commit());
  SpaceState& sp = in.spaces[vol->rec.space];
  const bool first = in.AwaitsImage(*vol);
  if (first) {
    TM_RETURN_IF_ERROR(in.ImageIsNext(*vol));
    if (seq == kNoSeq) seq = vol->import_seq;
  }
  if (seq == kNoSeq) seq = sp.last_seq + 1;
  if (sp.last_seq != kNoSeq && seq <= sp.last_seq) {
    return Status::InvalidArgument("import seq " + std::to_string(seq) +
                                   " is not after the last seq " + std::to_string(sp.last_seq));
  }
  if (time_ns < sp.last_time_ns) time_ns = sp.last_time_ns;  // time never goes backwards
  const uint64_t size = vol->epoch().size_bytes;
  const uint32_t bs = vol->epoch().block_bytes;
  rocksdb::WriteOptions sync_wo;
  sync_wo.sync = true;
  TM_RETURN_IF_ERROR(in.SyncLogs());  // segments before a synced WAL
  std::string marker_value;
  coding::PutBE(&marker_value, seq, 8);
  TM_RETURN_IF_ERROR(FromRocks(
      in.db->Put(sync_wo, in.cf[kDefault], MarkerKey(volume), marker_value), "write import marker"));

  // From here on, a failure must not leave the import's block versions at
  // `seq`: the next write would take that seq and inherit them.
  bool unchanged = false;
  Status s = [&]() -> Status {
    std::vector<Extent> changed;
    std::string chunk(kImportChunkBytes, '\0');
    std::string current(bs, '\0');
    for (uint64_t off = 0; off < size; off += kImportChunkBytes) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(kImportChunkBytes, size - off));
      TM_RETURN_IF_ERROR(read(off, chunk.data(), len));
      for (size_t pos = 0; pos < len; pos += bs) {
        uint64_t block = (off + pos) / bs;
        std::string_view data(chunk.data() + pos, std::min<size_t>(bs, len - pos));
        std::string padded;
        if (data.size() < bs) {  // a volume size that is not a multiple of the block
          padded.assign(data);
          padded.resize(bs, '\0');
          data = padded;
        }
        if (first) {
          if (AllZero(data)) continue;
        } else {
          TM_RETURN_IF_ERROR(in.ReadBlockAt(*vol, block, kNoSeq, current.data()));
          if (std::memcmp(current.data(), data.data(), bs) == 0) continue;
        }
        TM_RETURN_IF_ERROR(in.PutBlock(*vol, block, seq, data, time_ns, 0, seg::kOpImport));
        changed.push_back({block * bs, std::min<uint64_t>(bs, size - block * bs)});
      }
      // The blocks stay invisible (no seq record yet): commit to bound memory.
      if (in.v2()) {
        TM_RETURN_IF_ERROR(in.WriteBatchV2());
      } else {
        TM_RETURN_IF_ERROR(FromRocks(in.db->Write({}, &in.batch), "write import batch"));
      }
      in.batch.Clear();
      in.pending_blocks.clear();
      in.pending_bytes = 0;
    }
    CoalesceExtents(&changed);
    if (!first && changed.empty()) {
      TM_RETURN_IF_ERROR(
          FromRocks(in.db->Delete(sync_wo, in.cf[kDefault], MarkerKey(volume)), "remove marker"));
      unchanged = true;
      return Status::Ok();
    }
    rocksdb::WriteBatch wb;
    SeqRecord rec{time_ns, volume, OpKind::kImport, 0, changed};
    TM_RETURN_IF_ERROR(FromRocks(wb.Put(in.cf[kSeqs], SeqKey(vol->rec.space, seq), EncodeSeq(rec)),
                                 "batch put"));
    TM_RETURN_IF_ERROR(FromRocks(
        wb.Put(in.cf[kTimes], TimeKey(vol->rec.space, time_ns, seq), EncodeTime()), "batch put"));
    TM_RETURN_IF_ERROR(FromRocks(wb.Delete(in.cf[kDefault], MarkerKey(volume)), "batch delete"));
    if (in.v2()) TM_RETURN_IF_ERROR(in.AppendImportEnd(*vol, seq, time_ns, &wb));
    TM_RETURN_IF_ERROR(in.SyncLogs());  // the blocks before the seq record that names them
    TM_RETURN_IF_ERROR(FromRocks(in.db->Write(sync_wo, &wb), "write import seq record"));
    return Status::Ok();
  }();
  if (!s.ok()) {
    in.run.reset();
    in.closed_runs.clear();
    in.closed_bytes = 0;
    in.pending_tails.clear();
    in.batch.Clear();
    in.pending_blocks.clear();
    in.pending_bytes = 0;
    Status undo = in.AbandonImport(MarkerKey(volume));
    if (!undo.ok()) in.failed = undo;  // reopening finishes the cleanup
    return s;
  }
  if (unchanged) return kNoSeq;
  sp.last_seq = sp.committed_seq = seq;
  sp.last_time_ns = time_ns;
  return seq;
}

}  // namespace tidemark::journal

namespace tidemark::journal {

namespace {

// A staged import's marker value: be64 seq (the volume's import_seq), be64
// end of the furthest chunk. The 8-byte form is a local import, abandoned
// when reopened.
std::string StagedMarker(Seq seq, uint64_t end_bytes) {
  std::string v;
  coding::PutBE(&v, seq, 8);
  coding::PutBE(&v, end_bytes, 8);
  return v;
}

}  // namespace

Result<uint64_t> Journal::StagedImportEnd(uint32_t volume) const {
  const Impl& in = *impl_;
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  (void)vol;
  auto pending = in.staged_end.find(volume);
  if (pending != in.staged_end.end()) return pending->second;
  std::string v;
  rocksdb::Status s = in.db->Get({}, in.cf[kDefault], MarkerKey(volume), &v);
  if (s.IsNotFound()) return uint64_t{0};
  TM_RETURN_IF_ERROR(FromRocks(s, "read import marker"));
  if (v.size() != 16) return uint64_t{0};
  return coding::GetBE(v.data() + 8, 8);
}

Status Journal::StageImport(uint32_t volume, uint64_t offset_bytes, std::string_view data) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  const std::string& name = vol->rec.name;
  if (!in.AwaitsImage(*vol)) {
    return Status::InvalidArgument("volume " + name + " already has seqs: nothing to import");
  }
  const uint64_t size = vol->epoch().size_bytes;
  const uint32_t bs = vol->epoch().block_bytes;
  const uint64_t end = offset_bytes + data.size();
  if (offset_bytes % bs != 0 || offset_bytes > size || data.size() > size - offset_bytes ||
      (data.size() % bs != 0 && end != size)) {
    return Status::InvalidArgument("volume " + name + ": import chunk " +
                                   std::to_string(offset_bytes) + "+" +
                                   std::to_string(data.size()) +
                                   " is not block-aligned or past the end");
  }
  BOOST_OUTCOME_TRY(prev_end, StagedImportEnd(volume));
  std::string padded;
  for (uint64_t pos = 0; pos < data.size(); pos += bs) {
    std::string_view block = data.substr(pos, bs);
    if (AllZero(block)) continue;
    if (block.size() < bs) {
      padded.assign(block);
      padded.resize(bs, '\0');
      block = padded;
    }
    TM_RETURN_IF_ERROR(
        in.PutBlock(*vol, (offset_bytes + pos) / bs, vol->import_seq, block, 0, 0, seg::kOpImport));
  }
  uint64_t new_end = std::max(prev_end, end);
  TM_RETURN_IF_ERROR(FromRocks(
      in.batch.Put(in.cf[kDefault], MarkerKey(volume), StagedMarker(vol->import_seq, new_end)), "batch put"));
  in.staged_end[volume] = new_end;
  // The chunk's blocks stay invisible (no seq record): write them now.
  return in.Commit();
}

Result<Seq> Journal::FinishStagedImport(uint32_t volume, TimeNs time_ns) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  SpaceState& sp = in.spaces[vol->rec.space];
  if (!in.AwaitsImage(*vol)) {
    return Status::InvalidArgument("volume " + vol->rec.name + " already has seqs");
  }
  TM_RETURN_IF_ERROR(in.ImageIsNext(*vol));
  const Seq seq = vol->import_seq;
  TM_RETURN_IF_ERROR(in.Commit());
  const uint32_t bs = vol->epoch().block_bytes;
  const uint64_t size = vol->epoch().size_bytes;
  // The seq record lists what seq 0 holds: every block staged at seq 0.
  std::vector<Extent> changed;
  auto add = [&](uint64_t first_block, uint64_t blocks) {
    uint64_t off = first_block * bs;
    uint64_t len = std::min<uint64_t>(blocks * bs, size - off);
    if (!changed.empty() && changed.back().end_bytes() == off) {
      changed.back().length_bytes += len;
    } else {
      changed.push_back({off, len});
    }
  };
  std::string prefix = IdPrefix(volume);
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;
  std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator(ro, in.cf[in.v2() ? kExtents : kBlocks]));
  const uint64_t chunk_blocks = Impl::ChunkBlocks(*vol);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (in.v2()) {
      BOOST_OUTCOME_TRY(key, DecodeExtentKey(it->key().ToStringView()));
      if (key.seq != seq) continue;
      BOOST_OUTCOME_TRY(rec, DecodeExtent(it->value().ToStringView()));
      add(key.chunk * chunk_blocks + rec.first, rec.count);
      continue;
    }
    BOOST_OUTCOME_TRY(key, DecodeBlockKey(it->key().ToStringView()));
    if (key.seq != seq) continue;
    add(key.block, 1);
  }
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "scan staged blocks"));
  if (time_ns < sp.last_time_ns) time_ns = sp.last_time_ns;  // time never goes backwards
  rocksdb::WriteBatch wb;
  SeqRecord rec{time_ns, volume, OpKind::kImport, 0, changed};
  TM_RETURN_IF_ERROR(
      FromRocks(wb.Put(in.cf[kSeqs], SeqKey(vol->rec.space, seq), EncodeSeq(rec)), "batch put"));
  TM_RETURN_IF_ERROR(
      FromRocks(wb.Put(in.cf[kTimes], TimeKey(vol->rec.space, time_ns, seq), EncodeTime()),
                "batch put"));
  TM_RETURN_IF_ERROR(FromRocks(wb.Delete(in.cf[kDefault], MarkerKey(volume)), "batch delete"));
  if (in.v2()) TM_RETURN_IF_ERROR(in.AppendImportEnd(*vol, seq, time_ns, &wb));
  TM_RETURN_IF_ERROR(in.SyncLogs());  // the blocks before the seq record that names them
  rocksdb::WriteOptions sync_wo;
  sync_wo.sync = true;
  TM_RETURN_IF_ERROR(FromRocks(in.db->Write(sync_wo, &wb), "write import seq record"));
  in.staged_end.erase(volume);
  sp.last_seq = sp.committed_seq = seq;
  sp.last_time_ns = std::max(sp.last_time_ns, time_ns);
  return seq;
}

}  // namespace tidemark::journal
