// Format 2's roll-forward (docs/format-journal.md#roll-forward): the
// segments are the log, the RocksDB index follows them. A writer's open
// indexes the whole writes, ranges and flush markers that a space's segments
// hold after its committed tail (and the bookmarks, unordered intervals and
// backing checkpoints between them), so a write answered once its record's
// write(2) returned is never lost to a crash before its index entries were.
#include <rocksdb/options.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "journal_impl.h"

namespace tidemark::journal {

namespace {

// The seq whose records are being read: its index entries are in the batch
// after a save point, kept once its last record (kFlagSeqEnd) is whole.
struct OpenSeq {
  Seq seq = kNoSeq;
  SeqRecord rec;
  uint64_t lo = ~uint64_t{0}, hi = 0;  // the write's bytes
  std::vector<Extent> imported;        // an import's blocks
};

}  // namespace

Status Journal::Impl::RollForward(bool* rolled, std::vector<std::string>* stopped) {
  *rolled = false;
  std::set<uint32_t> all;
  for (const auto& [id, v] : volumes) all.insert(v.rec.space);
  for (uint32_t space : all) {
    seg::Location from;
    BOOST_OUTCOME_TRY(t, ReadTail(space, /*synced=*/false));
    if (t) from = {t->segment, t->offset};
    auto log = Log(space, /*append=*/false);
    if (!log) {
      if (log.error().code() == Code::kNotFound) continue;  // no segment yet
      return log.error();
    }
    auto sp = spaces.find(space);
    Seq last = sp == spaces.end() ? kNoSeq : sp->second.last_seq;
    rocksdb::WriteBatch done;  // whole seqs and flush markers
    seg::Location done_end = from;
    size_t rolled_seqs = 0;
    std::optional<OpenSeq> open;
    const Status kStop = Status::Aborted("not a record to roll forward");
    auto after = [](const seg::Location& at, const seg::Record& r) {
      return seg::Location{at.segment, at.offset + r.header.total()};
    };
    auto scan = log.value()->Scan(from, /*check_chunks=*/true,
                                  [&](const seg::Location& at, const seg::Record& r) -> Status {
      const seg::RecordHeader& h = r.header;
      if (h.kind == seg::RecordKind::kFlush) {
        if (open || last == kNoSeq || h.seq > last) return kStop;
        auto time = seg::DecodeFlushBody(r.body);
        if (!time) return kStop;
        TM_RETURN_IF_ERROR(FromRocks(
            done.Put(cf[kFlushes], FlushKey(space, h.seq), EncodeFlush({time.value(), h.flags})),
            "batch put"));
        done_end = after(at, r);
        return Status::Ok();
      }
      if (h.kind == seg::RecordKind::kBookmark || h.kind == seg::RecordKind::kUnordered ||
          h.kind == seg::RecordKind::kCheckpoint) {
        // Records between writes, on a seq the space holds.
        if (open || last == kNoSeq || h.seq > last) return kStop;
        Status put;
        if (h.kind == seg::RecordKind::kBookmark) {
          auto b = seg::DecodeBookmarkBody(r.body);
          if (!b) return kStop;
          put = FromRocks(done.Put(cf[kBookmarks], BookmarkKey(space, b.value().name),
                                   EncodeBookmark({h.seq, b.value().time_ns})),
                          "batch put");
        } else if (h.kind == seg::RecordKind::kUnordered) {
          auto b = seg::DecodeUnorderedBody(r.body);
          if (!b) return kStop;
          put = FromRocks(done.Put(cf[kDefault], UnorderedKey(space, h.seq),
                                   EncodeUnordered({b.value().upto, b.value().time_ns})),
                          "batch put");
        } else {
          auto cv = Volume(h.volume);
          if (!cv || cv.value()->rec.space != space || !seg::DecodeCheckpointBody(r.body)) {
            return kStop;
          }
          put = FromRocks(done.Put(cf[kDefault], CheckpointKey(h.volume), EncodeCheckpoint(h.seq)),
                          "batch put");
        }
        TM_RETURN_IF_ERROR(put);
        done_end = after(at, r);
        return Status::Ok();
      }
      auto vol = Volume(h.volume);
      if (!vol || vol.value()->rec.space != space) return kStop;
      const VolumeState& vs = *vol.value();
      const uint64_t bs = vs.epoch().block_bytes;
      if (h.kind == seg::RecordKind::kImport) {
        auto b = seg::DecodeImportBody(r.body);
        if (!b) return kStop;
        if (b.value().what == seg::kImportAbandoned) {
          // A crash cut the import off: its data records are dead.
          if (open && open->seq != h.seq) return kStop;
          if (open) {
            TM_RETURN_IF_ERROR(FromRocks(done.RollbackToSavePoint(), "batch save point"));
            open.reset();
          }
          done_end = after(at, r);
          return Status::Ok();
        }
      }
      if (open && open->seq != h.seq) return kStop;  // a write cut short
      if (!open && last != kNoSeq && h.seq <= last) return kStop;
      if (!open) {
        done.SetSavePoint();
        open.emplace();
        open->seq = h.seq;
        open->rec.volume = h.volume;
        open->rec.flags = h.flags & seg::kFlagFua;
      }
      if (h.kind == seg::RecordKind::kData) {
        const seg::DataHeader& d = r.data;
        if (d.op < seg::kOpWrite || d.op > seg::kOpImport) return kStop;
        if (d.block_bytes != bs) return kStop;
        if ((d.op == seg::kOpImport) != (open->rec.op == OpKind::kImport) && open->lo != ~uint64_t{0}) {
          return kStop;  // an import and a write under one seq
        }
        open->rec.op = static_cast<OpKind>(d.op);
        if (d.op == seg::kOpImport) {
          // The blocks it changed (the seq record's extents), up to the volume's end.
          const uint64_t size = vs.epoch().size_bytes;
          if (d.offset_bytes < size) {
            open->imported.push_back(
                {d.offset_bytes, std::min<uint64_t>(d.length_bytes, size - d.offset_bytes)});
          }
          open->lo = 0;
          TM_RETURN_IF_ERROR(IndexChunks(vs, h.seq, at, r.chunks, &done));
          return Status::Ok();  // an import ends with its import record
        }
        open->rec.time_ns = d.time_ns;
        open->lo = std::min(open->lo, d.offset_bytes + uint64_t{d.head_skip_sectors} * kSectorBytes);
        open->hi = std::max(open->hi, d.offset_bytes + d.length_bytes -
                                          uint64_t{d.tail_skip_sectors} * kSectorBytes);
        TM_RETURN_IF_ERROR(IndexChunks(vs, h.seq, at, r.chunks, &done));
      } else if (h.kind == seg::RecordKind::kRange) {
        auto b = seg::DecodeRangeBody(r.body);
        if (!b) return kStop;
        const seg::RangeBody& rb = b.value();
        if (rb.first_block + rb.block_count > vs.epoch().size_bytes / bs) return kStop;
        open->rec.op = static_cast<OpKind>(rb.op);
        open->rec.time_ns = rb.time_ns;
        open->lo = std::min(open->lo, rb.first_block * bs);
        open->hi = std::max(open->hi, (rb.first_block + rb.block_count) * bs);
        RangeRecord rr{static_cast<OpKind>(rb.op), rb.first_block, rb.block_count};
        TM_RETURN_IF_ERROR(FromRocks(
            done.Put(cf[kRanges], RangeKey(h.volume, h.seq), EncodeRange(rr)),
            "batch put"));
      } else if (h.kind == seg::RecordKind::kImport) {
        if (!(h.flags & seg::kFlagSeqEnd)) return kStop;
        open->rec.op = OpKind::kImport;
        open->rec.time_ns = seg::DecodeImportBody(r.body).value().time_ns;
      } else {
        return kStop;
      }
      if (!(h.flags & seg::kFlagSeqEnd)) return Status::Ok();
      // The write is whole: its seq, time and FUA entries, then its blocks'.
      SeqRecord& rec = open->rec;
      if (rec.op == OpKind::kImport) {
        std::sort(open->imported.begin(), open->imported.end(),
                  [](const Extent& a, const Extent& b) { return a.offset_bytes < b.offset_bytes; });
        rec.extents.clear();
        for (const Extent& e : open->imported) {
          if (!rec.extents.empty() && rec.extents.back().end_bytes() >= e.offset_bytes) {
            rec.extents.back().length_bytes =
                std::max(rec.extents.back().end_bytes(), e.end_bytes()) - rec.extents.back().offset_bytes;
          } else {
            rec.extents.push_back(e);
          }
        }
      } else {
        rec.extents = {Extent{open->lo, open->hi - open->lo}};
      }
      TM_RETURN_IF_ERROR(
          FromRocks(done.Put(cf[kSeqs], SeqKey(space, h.seq), EncodeSeq(rec)), "batch put"));
      TM_RETURN_IF_ERROR(FromRocks(
          done.Put(cf[kTimes], TimeKey(space, rec.time_ns, h.seq), EncodeTime()), "batch put"));
      if (rec.flags & kSeqFua) {
        TM_RETURN_IF_ERROR(FromRocks(
            done.Put(cf[kFlushes], FlushKey(space, h.seq), EncodeFlush({rec.time_ns, kSeqFua})),
            "batch put"));
      }
      TM_RETURN_IF_ERROR(FromRocks(done.PopSavePoint(), "batch save point"));
      last = h.seq;
      ++rolled_seqs;
      open.reset();
      done_end = after(at, r);
      return Status::Ok();
    });
    if (!scan && scan.error().code() != Code::kAborted) return scan.error();
    if (open) TM_RETURN_IF_ERROR(FromRocks(done.RollbackToSavePoint(), "batch save point"));
    if (stopped) {
      auto vol = volumes.begin();
      while (vol != volumes.end() && vol->second.rec.space != space) ++vol;
      const std::string who = vol == volumes.end() ? "space " + std::to_string(space)
                                                   : "volume " + vol->second.rec.name;
      if (!scan) {
        stopped->push_back(who + ": stopped at segment " + std::to_string(done_end.segment) +
                           " offset " + std::to_string(done_end.offset) +
                           ": a record that does not follow (" + scan.error().message() + ")");
      } else if (scan.value().torn) {
        stopped->push_back(who + ": stopped at segment " + std::to_string(done_end.segment) +
                           " offset " + std::to_string(done_end.offset) + ": " + scan.value().file +
                           ": " + scan.value().reason);
      } else if (done_end < scan.value().end) {
        stopped->push_back(who + ": the last write (seq after " + std::to_string(last) +
                           ") is cut short at " + scan.value().file);
      }
    }
    if (done_end == from) continue;
    TM_RETURN_IF_ERROR(FromRocks(
        done.Put(cf[kDefault], TailKey(space), EncodeTail({done_end.segment, done_end.offset, kNoSeq})),
        "batch put"));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    TM_RETURN_IF_ERROR(FromRocks(db->Write(wo, &done), "roll the index of journal " + dir +
                                                           " forward"));
    (void)rolled_seqs;
    *rolled = true;
  }
  return Status::Ok();
}

Status Journal::RebuildIndex(std::vector<std::string>* stopped) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  if (!in.v2()) return Status::NotSupported("journal " + in.dir + " is format 1: no segments");
  TM_RETURN_IF_ERROR(in.Commit());
  TM_RETURN_IF_ERROR(in.SyncLogs());
  // Everything the segments say goes; what they do not hold stays.
  rocksdb::WriteBatch wb;
  const std::string all_keys(64, '\xff');
  for (Cf c : {kExtents, kSeqs, kTimes, kRanges, kFlushes, kBookmarks}) {
    TM_RETURN_IF_ERROR(FromRocks(wb.DeleteRange(in.cf[c], "", all_keys), "batch delete"));
  }
  std::set<uint32_t> spaces;
  for (const auto& [id, v] : in.volumes) {
    spaces.insert(v.rec.space);
    TM_RETURN_IF_ERROR(FromRocks(wb.Delete(in.cf[kDefault], CheckpointKey(id)), "batch delete"));
  }
  for (uint32_t space : spaces) {
    TM_RETURN_IF_ERROR(FromRocks(wb.Delete(in.cf[kDefault], TailKey(space)), "batch delete"));
    TM_RETURN_IF_ERROR(FromRocks(wb.Delete(in.cf[kDefault], SyncedTailKey(space)), "batch delete"));
    // Unordered intervals: the 'U' keys of the space.
    const std::string lo = UnorderedKey(space, 0);
    const std::string hi = UnorderedKey(space, kNoSeq);
    TM_RETURN_IF_ERROR(FromRocks(wb.DeleteRange(in.cf[kDefault], lo, hi), "batch delete"));
    TM_RETURN_IF_ERROR(FromRocks(wb.Delete(in.cf[kDefault], hi), "batch delete"));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TM_RETURN_IF_ERROR(FromRocks(in.db->Write(wo, &wb), "clear the index of journal " + in.dir));
  {
    std::lock_guard lock(in.logs_mu);
    in.logs.clear();  // the next append cuts at the rebuilt committed tail
    in.appending.clear();
  }
  auto reload = [&]() -> Status {
    in.volumes.clear();
    in.spaces.clear();
    in.groups.clear();
    in.unordered.clear();
    return in.LoadState();
  };
  TM_RETURN_IF_ERROR(reload());
  bool rolled = false;
  TM_RETURN_IF_ERROR(in.RollForward(&rolled, stopped));
  TM_RETURN_IF_ERROR(reload());
  return in.SyncLogs();
}

Status Journal::Impl::CheckSyncedChains(std::string* damage) {
  damage->clear();
  std::map<uint32_t, std::string> names;  // space -> its volumes' names
  for (const auto& [id, v] : volumes) {
    std::string& n = names[v.rec.space];
    n += (n.empty() ? "" : ",") + v.rec.name;
  }
  for (const auto& [space, vols] : names) {
    BOOST_OUTCOME_TRY(synced, ReadTail(space, /*synced=*/true));
    if (!synced || synced->segment == 0) continue;  // never synced
    const TailRecord& t = *synced;
    auto log = Log(space, /*append=*/false);
    std::vector<uint64_t> segs;
    if (log) segs = log.value()->Segments();
    auto lost = [&](const std::string& file, const std::string& what) {
      *damage = "volume " + vols + ": segment file " + file + " " + what +
                ", but seqs up to " + std::to_string(t.seq) +
                " were made durable there (run tidemark journal check)";
    };
    const std::string path = log ? log.value()->SegmentPath(t.segment)
                                 : dir + "/segments/ (space " + std::to_string(space) + ")";
    if (segs.empty() || segs.back() < t.segment) {
      lost(path, "is missing");
      return Status::Ok();
    }
    for (size_t i = 1; i < segs.size() && segs[i] <= t.segment; ++i) {
      if (segs[i] != segs[i - 1] + 1) {
        lost(log.value()->SegmentPath(segs[i - 1] + 1), "is missing");
        return Status::Ok();
      }
    }
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (ec || size < t.offset) {
      lost(path, ec ? "is missing" : "ends at byte " + std::to_string(size) +
                                         " before the synced tail at " + std::to_string(t.offset));
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace tidemark::journal
