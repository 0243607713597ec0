// Format 2's block store (docs/format-journal.md): a write's blocks go to
// its seq space's segment log once, as one data record cut into aligned
// chunks; RocksDB keeps an extent index (volume, chunk, ~seq, first block)
// pointing at them. Reads find the newest extent at or before a point and
// fetch only its chunk.
#include <rocksdb/options.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <future>
#include <set>

#include "coding.h"
#include "journal_impl.h"
#include "tidemark/journal/crc32c.h"
#include "tidemark/journal/time.h"

namespace tidemark::journal {

namespace {

constexpr uint64_t kChunkBytes = uint64_t{1} << seg::kDefaultChunkLog2;
// A run is appended once it holds this much: a record's chunks are read
// separately, so longer records buy nothing.
constexpr size_t kMaxRunBytes = 8 << 20;

}  // namespace

uint64_t Journal::Impl::ChunkBlocks(const VolumeState& vol) {
  const uint64_t bs = vol.epoch().block_bytes;
  return std::max<uint64_t>(kChunkBytes, bs) / bs;
}

Result<seg::SegmentLog*> Journal::Impl::Log(uint32_t space, bool append) const {
  std::lock_guard lock(logs_mu);
  auto it = logs.find(space);
  if (it == logs.end()) {
    seg::LogOptions lo;
    lo.segment_bytes = options.segment_bytes;
    auto l = seg::SegmentLog::Open(dir, space, meta.uuid, lo, /*create=*/append);
    if (!l) return l.error();
    it = logs.emplace(space, std::move(l.value())).first;
  }
  if (append && !appending.count(space)) {
    // The first append since open: cut what a crash appended after the
    // committed tail (never acknowledged: Sync commits first).
    seg::Location tail;
    auto t = ReadTail(space, /*synced=*/false);
    if (!t) return t.error();
    if (t.value()) tail = {t.value()->segment, t.value()->offset};
    auto sp = spaces.find(space);
    const Seq next = sp == spaces.end() || sp->second.last_seq == kNoSeq ? 0 : sp->second.last_seq + 1;
    TM_RETURN_IF_ERROR(it->second->StartAppend(tail, next, NowNs()));
    appending.insert(space);
  }
  return it->second.get();
}

Status Journal::Impl::FlushRun() {
  if (!run) return Status::Ok();
  // Small compressed runs wait for the commit, where two threads encode them;
  // the others go now, while their bytes are in the cache.
  const bool now = meta.codec == Codec::kNone || run->data.size() >= (256u << 10);
  closed_bytes += run->data.size();
  closed_runs.push_back(std::move(*run));
  run.reset();
  return now || closed_bytes >= kMaxClosedBytes ? EncodeRuns() : Status::Ok();
}

Status Journal::Impl::EncodeRun(const PendingRun& r, std::string* rec,
                                std::vector<seg::ChunkDesc>* chunks, bool split) {
  BOOST_OUTCOME_TRY(vol, Volume(r.volume));
  const uint32_t bs = vol->epoch().block_bytes;
  seg::DataIn in;
  in.volume = r.volume;
  in.seq = r.seq;
  in.flags = r.flags;
  in.header.time_ns = r.time_ns;
  in.header.op = r.op;
  in.header.offset_bytes = r.first_block * bs;
  in.header.length_bytes = static_cast<uint32_t>(r.blocks * bs);
  in.header.block_bytes = bs;
  in.header.chunk_log2 = seg::kDefaultChunkLog2;
  in.zeros = r.zeros;
  in.data = r.data;
  in.codec = meta.codec;
  const uint64_t rec_start = r.first_block * bs, rec_end = rec_start + r.blocks * bs;
  if (r.write_end > r.write_offset) {
    in.header.head_skip_sectors =
        static_cast<uint16_t>(r.write_offset > rec_start ? (r.write_offset - rec_start) / kSectorBytes : 0);
    in.header.tail_skip_sectors =
        static_cast<uint16_t>(rec_end > r.write_end ? (rec_end - r.write_end) / kSectorBytes : 0);
  }
  if (r.last) in.flags |= seg::kFlagSeqEnd;
  const size_t n = seg::ChunkCount(in);
  if (!split || in.zeros || in.codec == Codec::kNone || n < 2) return seg::EncodeData(in, rec, chunks);
  // A long record's chunks on two threads: the codec is most of its CPU.
  std::vector<seg::PackedChunk> packed(n);
  const size_t half = n / 2;
  OnTwoThreads([&] { seg::PackChunks(in, half, n, &packed); },
               [&] { seg::PackChunks(in, 0, half, &packed); });
  return seg::EncodeData(in, rec, chunks, &packed);
}

void Journal::Impl::OnTwoThreads(const std::function<void()>& there,
                                 const std::function<void()>& here) {
  if (!encoder) encoder = std::make_unique<boost::asio::thread_pool>(1);
  std::packaged_task<void()> task(there);
  auto done = task.get_future();
  boost::asio::post(*encoder, std::move(task));
  here();
  done.get();
}

Status Journal::Impl::EncodeRuns() {
  if (closed_runs.empty()) return Status::Ok();
  std::vector<PendingRun> runs = std::move(closed_runs);
  closed_runs.clear();
  const uint64_t total = closed_bytes;
  closed_bytes = 0;
  struct Encoded {
    std::string rec;
    std::vector<seg::ChunkDesc> chunks;
    Status status;
  };
  std::vector<Encoded> out(runs.size());
  auto encode = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) out[i].status = EncodeRun(runs[i], &out[i].rec, &out[i].chunks, false);
  };
  // The codec is most of a write's CPU: a second thread takes the runs past
  // half the bytes (records keep their order in the log), or half the chunks
  // of a long run.
  const bool two_threads = meta.codec != Codec::kNone && total >= (256u << 10);
  if (two_threads && runs.size() >= 4) {
    size_t half = 0;
    for (uint64_t bytes = 0; half < runs.size() && bytes < total / 2; ++half) bytes += runs[half].data.size();
    OnTwoThreads([&] { encode(half, runs.size()); }, [&] { encode(0, half); });
  } else {
    for (size_t i = 0; i < runs.size(); ++i) {
      out[i].status = EncodeRun(runs[i], &out[i].rec, &out[i].chunks,
                                /*split=*/two_threads && runs[i].data.size() >= (256u << 10));
    }
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    TM_RETURN_IF_ERROR(out[i].status);
    const PendingRun& r = runs[i];
    BOOST_OUTCOME_TRY(vol, Volume(r.volume));
    BOOST_OUTCOME_TRY(log, Log(vol->rec.space, /*append=*/true));
    BOOST_OUTCOME_TRY(at, log->Append(out[i].rec, r.seq, NowNs()));
    TM_RETURN_IF_ERROR(IndexChunks(*vol, r.seq, at, out[i].chunks, &batch));
    pending_tails[vol->rec.space] = log->tail();
    unsynced_spaces.insert(vol->rec.space);
  }
  return Status::Ok();
}

Status Journal::Impl::IndexChunks(const VolumeState& vol, Seq seq, const seg::Location& at,
                                  const std::vector<seg::ChunkDesc>& chunks,
                                  rocksdb::WriteBatch* wb) const {
  const uint32_t bs = vol.epoch().block_bytes;
  const uint64_t chunk_blocks = ChunkBlocks(vol);
  for (const seg::ChunkDesc& c : chunks) {
    const uint64_t block = c.volume_offset / bs;
    ExtentRecord e;
    e.segment = at.segment;
    e.offset = at.offset + c.payload_offset;
    e.stored_len = c.stored_len;
    e.codec = c.codec;
    e.flags = (c.flags & seg::kChunkZero) ? kExtentZero : 0;
    e.first = static_cast<uint16_t>(block % chunk_blocks);
    e.count = static_cast<uint16_t>(c.raw_len / bs);
    e.crc = c.crc;
    TM_RETURN_IF_ERROR(FromRocks(
        wb->Put(cf[kExtents], ExtentKey(vol.rec.id, block / chunk_blocks, seq, e.first),
                EncodeExtent(e)),
        "batch put"));
  }
  return Status::Ok();
}

Status Journal::Impl::AppendRecord(uint32_t space, seg::RecordKind kind, uint8_t flags,
                                   uint32_t volume, Seq seq, std::string_view body) {
  TM_RETURN_IF_ERROR(FlushRun());
  TM_RETURN_IF_ERROR(EncodeRuns());  // records keep their order
  std::string rec;
  seg::EncodeRecord(kind, flags, volume, seq, body, &rec);
  BOOST_OUTCOME_TRY(log, Log(space, /*append=*/true));
  auto at = log->Append(rec, seq, NowNs());
  if (!at) return at.error();
  pending_tails[space] = log->tail();
  unsynced_spaces.insert(space);
  return Status::Ok();
}

Status Journal::Impl::WriteBatchV2(bool async) {
  TM_RETURN_IF_ERROR(FlushRun());
  TM_RETURN_IF_ERROR(EncodeRuns());
  // The records' write(2) before the index names them (and before any
  // write is answered: callers answer after Commit).
  for (const auto& [space, t] : pending_tails) {
    BOOST_OUTCOME_TRY(log, Log(space, /*append=*/true));
    TM_RETURN_IF_ERROR(log->Flush());
  }
  if (g_test_skip_index_writes) {
    pending_tails.clear();
    batch.Clear();
    return Status::Ok();
  }
  for (const auto& [space, t] : pending_tails) {
    TM_RETURN_IF_ERROR(FromRocks(
        batch.Put(cf[kDefault], TailKey(space), EncodeTail({t.segment, t.offset, kNoSeq})),
        "batch put"));
  }
  if (batch.Count() == 0) return Status::Ok();
  if (async && index_writer) {
    uint64_t number = 0;
    TM_RETURN_IF_ERROR(index_writer->Submit(&batch, &number));
    inflight_blocks.emplace_back(number, std::move(pending_blocks));
    pending_blocks.clear();
    PruneInflight();
  } else {
    TM_RETURN_IF_ERROR(Barrier());  // in order after what was queued
    rocksdb::WriteOptions wo;
    TM_RETURN_IF_ERROR(FromRocks(db->Write(wo, &batch), "write batch to journal " + dir));
  }
  pending_tails.clear();
  batch.Clear();
  return Status::Ok();
}

Result<std::optional<TailRecord>> Journal::Impl::ReadTail(uint32_t space, bool synced) const {
  std::string v;
  rocksdb::Status s = db->Get({}, cf[kDefault], synced ? SyncedTailKey(space) : TailKey(space), &v);
  if (s.IsNotFound()) return std::optional<TailRecord>();
  TM_RETURN_IF_ERROR(FromRocks(s, "read segment tail"));
  auto t = DecodeTail(v);
  if (!t) {
    return t.error().Annotate("journal " + dir + " space " + std::to_string(space) +
                              (synced ? " synced tail" : " committed tail"));
  }
  return std::optional<TailRecord>(t.value());
}

Status Journal::Impl::Barrier() const {
  if (!index_writer) return Status::Ok();
  Status s = index_writer->Drain();
  if (!s.ok() && failed.ok()) failed = s;
  return s;
}

Status Journal::Impl::SyncLogs() {
  if (unsynced_spaces.empty()) return Status::Ok();
  if (!options.sync_index_at_flush) {  // measurement only (OpenOptions)
    for (uint32_t space : unsynced_spaces) {
      BOOST_OUTCOME_TRY(log, Log(space, /*append=*/true));
      TM_RETURN_IF_ERROR(log->Sync());
    }
    unsynced_spaces.clear();
    return Status::Ok();
  }
  TM_RETURN_IF_ERROR(Barrier());  // the synced tails name committed seqs
  rocksdb::WriteBatch synced;
  for (uint32_t space : unsynced_spaces) {
    BOOST_OUTCOME_TRY(log, Log(space, /*append=*/true));
    TM_RETURN_IF_ERROR(log->Sync());
    // Where the durable log ends, and its newest seq: an open checks only what
    // lies after it (CheckUnsyncedTails). Durable with the WAL's next sync.
    auto sp = spaces.find(space);
    const Seq seq = sp == spaces.end() ? kNoSeq : sp->second.committed_seq;
    const seg::Location t = log->tail();
    TM_RETURN_IF_ERROR(FromRocks(
        synced.Put(cf[kDefault], SyncedTailKey(space), EncodeTail({t.segment, t.offset, seq})),
        "batch put"));
  }
  unsynced_spaces.clear();
  return FromRocks(db->Write({}, &synced), "write synced tails");
}

Status Journal::Impl::CutSeqs(uint32_t space, Seq from, const seg::Location& end) {
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, cf[kSeqs]));
  const std::string prefix = IdPrefix(space);
  for (it->Seek(SeqKey(space, from)); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    BOOST_OUTCOME_TRY(key, DecodeSeqKey(it->key().ToStringView()));
    auto rec = DecodeSeq(it->value().ToStringView());
    if (!rec) return rec.error().Annotate("seq " + std::to_string(key.seq));
    const SeqRecord& r = rec.value();
    TM_RETURN_IF_ERROR(FromRocks(wb.Delete(cf[kSeqs], it->key()), "batch delete"));
    TM_RETURN_IF_ERROR(
        FromRocks(wb.Delete(cf[kTimes], TimeKey(space, r.time_ns, key.seq)), "batch delete"));
    TM_RETURN_IF_ERROR(FromRocks(wb.Delete(cf[kFlushes], FlushKey(space, key.seq)), "batch delete"));
    TM_RETURN_IF_ERROR(FromRocks(wb.Delete(cf[kRanges], RangeKey(r.volume, key.seq)), "batch delete"));
    auto vol = Volume(r.volume);
    if (!vol) continue;
    const uint64_t bs = vol.value()->epoch().block_bytes;
    const uint64_t n = ChunkBlocks(*vol.value());
    for (const Extent& e : r.extents) {
      if (e.length_bytes == 0) continue;
      for (uint64_t c = e.offset_bytes / bs / n; c <= (e.end_bytes() - 1) / bs / n; ++c) {
        const std::string p = ExtentKey(r.volume, c, key.seq, 0).substr(0, 20);
        std::unique_ptr<rocksdb::Iterator> x(db->NewIterator({}, cf[kExtents]));
        for (x->Seek(p); x->Valid() && x->key().starts_with(p); x->Next()) {
          TM_RETURN_IF_ERROR(FromRocks(wb.Delete(cf[kExtents], x->key()), "batch delete"));
        }
      }
    }
  }
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read seq records"));
  TM_RETURN_IF_ERROR(FromRocks(
      wb.Put(cf[kDefault], TailKey(space), EncodeTail({end.segment, end.offset, kNoSeq})),
      "batch put"));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db->Write(wo, &wb), "cut journal " + dir);
}

Status Journal::Impl::CheckUnsyncedTails(bool* cut) {
  *cut = false;
  std::set<uint32_t> all;
  for (const auto& [id, v] : volumes) all.insert(v.rec.space);
  for (uint32_t space : all) {
    BOOST_OUTCOME_TRY(t, ReadTail(space, /*synced=*/false));
    if (!t) continue;  // nothing committed to a segment yet
    const seg::Location committed{t->segment, t->offset};
    seg::Location synced;
    Seq synced_seq = kNoSeq;
    BOOST_OUTCOME_TRY(st, ReadTail(space, /*synced=*/true));
    if (st) {
      synced = {st->segment, st->offset};
      synced_seq = st->seq;
    }
    if (!(synced < committed)) continue;
    auto log = Log(space, /*append=*/false);
    Seq last_good = kNoSeq;  // the newest seq of a whole record after the synced tail
    seg::Location end = synced;
    bool bad = false;
    std::string why;
    if (!log) {
      bad = true;
      why = log.error().message();
    } else {
      const Status kStop = Status::Aborted("at the committed tail");
      auto e = log.value()->Scan(synced, /*check_chunks=*/true,
                                 [&](const seg::Location& at, const seg::Record& r) {
                                   if (!(at < committed)) return kStop;
                                   last_good = r.header.seq;
                                   return Status::Ok();
                                 });
      if (!e) {
        if (e.error().code() != Code::kAborted) return e.error();
      } else if (e.value().end < committed) {
        bad = true;
        end = e.value().end;
        why = e.value().file + ": " + e.value().reason;
      }
    }
    if (!bad) continue;
    // Nothing after the synced tail was acknowledged as durable: the seqs
    // from the first incomplete one on leave the index (the last whole
    // record's seq too: the lost record may have been its next piece).
    Seq from = last_good != kNoSeq ? last_good : (synced_seq == kNoSeq ? 0 : synced_seq + 1);
    if (synced_seq != kNoSeq && from <= synced_seq) from = synced_seq + 1;
    (void)why;
    TM_RETURN_IF_ERROR(CutSeqs(space, from, end));
    *cut = true;
  }
  return Status::Ok();
}

Status Journal::Impl::ForEachExtent(const VolumeState& vol, Seq seq, uint64_t first, uint64_t end,
                                    const ExtentFn& fn) const {
  if (first >= end) return Status::Ok();
  const uint32_t id = vol.rec.id;
  const uint64_t n = ChunkBlocks(vol);
  const uint64_t first_chunk = first / n, last_chunk = (end - 1) / n;
  rocksdb::ReadOptions ro;
  if (first_chunk == last_chunk) {
    ro.prefix_same_as_start = true;  // one chunk: the prefix bloom filter helps
  } else {
    ro.total_order_seek = true;  // crosses chunk prefixes
    ro.readahead_size = 2 << 20;
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf[kExtents]));
  struct Hit {
    Seq seq;
    ExtentRecord rec;
  };
  std::vector<int> owner(n);
  std::vector<Hit> hits;
  it->Seek(ExtentKey(id, first_chunk, seq, 0));
  while (it->Valid()) {
    BOOST_OUTCOME_TRY(key, DecodeExtentKey(it->key().ToStringView()));
    if (key.volume != id || key.chunk > last_chunk) break;
    if (key.seq > seq) {  // versions newer than the point: seek past them
      it->Seek(ExtentKey(id, key.chunk, seq, 0));
      continue;
    }
    // The chunk's versions at or before the point, newest first, until
    // every block of it inside [first, end) has its newest.
    const uint64_t chunk = key.chunk;
    const uint64_t lo = std::max(first, chunk * n) - chunk * n;
    const uint64_t hi = std::min(end, (chunk + 1) * n) - chunk * n;
    std::fill(owner.begin(), owner.end(), -1);
    hits.clear();
    uint64_t unresolved = hi - lo;
    while (unresolved > 0) {
      auto rec = DecodeExtent(it->value().ToStringView());
      if (!rec) {
        return rec.error().Annotate("volume " + vol.rec.name + " chunk " + std::to_string(chunk) +
                                    " seq " + std::to_string(key.seq));
      }
      const uint64_t a = std::max<uint64_t>(lo, rec.value().first);
      const uint64_t b = std::min<uint64_t>(hi, uint64_t{rec.value().first} + rec.value().count);
      bool used = false;
      for (uint64_t i = a; i < b; ++i) {
        if (owner[i] >= 0) continue;
        owner[i] = static_cast<int>(hits.size());
        used = true;
        --unresolved;
      }
      if (used) hits.push_back({key.seq, rec.value()});
      it->Next();
      if (!it->Valid()) break;
      auto next = DecodeExtentKey(it->key().ToStringView());
      if (!next) return next.error();
      if (next.value().volume != id || next.value().chunk != chunk) break;
      key = next.value();
    }
    for (uint64_t i = lo; i < hi; ++i) {
      if (owner[i] < 0) continue;
      const Hit& h = hits[owner[i]];
      TM_RETURN_IF_ERROR(fn(chunk * n + i, h.seq, h.rec));
    }
    if (chunk == last_chunk) break;
    it->Seek(ExtentKey(id, chunk + 1, seq, 0));
  }
  return FromRocks(it->status(), "read extents of " + vol.rec.name);
}

Status Journal::Impl::BlockFromExtent(const VolumeState& vol, uint64_t block, Seq version,
                                      const ExtentRecord& rec, ChunkCache* cache,
                                      const char** bytes) const {
  const uint32_t bs = vol.epoch().block_bytes;
  if (cache->segment != rec.segment || cache->offset != rec.offset) {
    auto where = [&] {
      return "volume " + vol.rec.name + " block " + std::to_string(block) + " seq " +
             std::to_string(version);
    };
    cache->segment = ~uint64_t{0};
    const uint64_t raw_len = uint64_t{rec.count} * bs;
    cache->raw.resize(raw_len);
    if (rec.flags & kExtentZero) {
      std::memset(cache->raw.data(), 0, raw_len);
    } else {
      auto log = Log(vol.rec.space, /*append=*/false);
      if (!log) return Status(log.error().code(), where() + ": " + log.error().message());
      std::string stored(rec.stored_len, '\0');
      Status s = log.value()->Read(rec.segment, rec.offset, stored.size(), stored.data());
      if (!s.ok()) return Status(s.code(), where() + ": " + s.message());
      seg::ChunkDesc c;
      c.volume_offset = block / ChunkBlocks(vol) * ChunkBlocks(vol) * bs + uint64_t{rec.first} * bs;
      c.raw_len = static_cast<uint32_t>(raw_len);
      c.stored_len = rec.stored_len;
      c.codec = rec.codec;
      c.crc = rec.crc;
      s = seg::ReadChunk(c, stored, cache->raw.data());
      if (!s.ok()) {
        return Status(s.code(), where() + ": " + log.value()->SegmentPath(rec.segment) + " offset " +
                                    std::to_string(rec.offset) + ": " + s.message());
      }
    }
    cache->segment = rec.segment;
    cache->offset = rec.offset;
  }
  const uint64_t n = ChunkBlocks(vol);
  *bytes = cache->raw.data() + (block % n - rec.first) * bs;
  return Status::Ok();
}

Status Journal::Impl::ReadBlockAtV2(const VolumeState& vol, uint64_t block, Seq seq,
                                    char* out) const {
  const uint32_t bs = vol.epoch().block_bytes;
  std::memset(out, 0, bs);
  ChunkCache cache;
  return ForEachExtent(vol, seq, block, block + 1,
                       [&](uint64_t b, Seq version, const ExtentRecord& rec) -> Status {
                         if (ZeroedByRange(vol, b, version, seq) || (rec.flags & kExtentZero)) {
                           return Status::Ok();
                         }
                         const char* bytes = nullptr;
                         TM_RETURN_IF_ERROR(BlockFromExtent(vol, b, version, rec, &cache, &bytes));
                         std::memcpy(out, bytes, bs);
                         return Status::Ok();
                       });
}

}  // namespace tidemark::journal
