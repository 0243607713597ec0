// Journal::Verify: an end-to-end consistency check, the damage a per-value
// CRC cannot see (a version that went missing, a dangling bookmark).
#include <rocksdb/options.h>

#include "journal_impl.h"

namespace tidemark::journal {

namespace {

bool HasKey(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const std::string& key) {
  std::string v;
  return db->Get({}, cf, key, &v).ok();
}

// Format 2: an extent of `seq` covers block b.
bool HasExtent(const Journal::Impl& in, uint32_t volume, uint64_t chunk_blocks, uint64_t b,
               Seq seq) {
  const uint64_t chunk = b / chunk_blocks;
  const std::string prefix = ExtentKey(volume, chunk, seq, 0).substr(0, 20);
  std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator({}, in.cf[kExtents]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto rec = DecodeExtent(it->value().ToStringView());
    if (rec && rec.value().first <= b % chunk_blocks &&
        b % chunk_blocks < uint64_t{rec.value().first} + rec.value().count) {
      return true;
    }
  }
  return false;
}

}  // namespace

Result<Journal::VerifyStats> Journal::Verify(
    uint32_t volume, const std::function<void(std::string_view)>& problem) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  const Impl& in = *impl_;
  VerifyStats stats;
  auto report = [&](const std::string& line) {
    ++stats.problems;
    problem(line);
  };
  if (in.v2()) {
    // Segment bytes lost below a synced tail: writes answered durable (first).
    std::string damage;
    TM_RETURN_IF_ERROR(impl_->CheckSyncedChains(&damage));
    if (!damage.empty()) report(damage);
  }
  for (const auto& [id, vol] : in.volumes) {
    if (volume != kNoVolume && id != volume) continue;
    const std::string& name = vol.rec.name;
    const uint64_t bs = vol.epoch().block_bytes;
    const uint32_t space = vol.rec.space;
    auto latest = in.Edge(vol, false);
    const Seq last = latest ? latest.value().seq : kNoSeq;

    // 1. Every block version: key shape, CRC, codec, and a seq record.
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    ro.fill_cache = false;
    std::string prefix = IdPrefix(id);
    std::string buf(bs, '\0');
    const uint64_t chunk_blocks = Journal::Impl::ChunkBlocks(vol);
    if (in.v2()) {
      // Format 2: every extent, and its chunk's bytes in the segment.
      std::unique_ptr<rocksdb::Iterator> et(in.db->NewIterator(ro, in.cf[kExtents]));
      ChunkCache cache;
      for (et->Seek(prefix); et->Valid() && et->key().starts_with(prefix); et->Next()) {
        auto key = DecodeExtentKey(et->key().ToStringView());
        auto rec = key ? DecodeExtent(et->value().ToStringView()) : Result<ExtentRecord>(key.error());
        if (!key || !rec) {
          report("volume " + name + ": " + (!key ? key.error() : rec.error()).message());
          continue;
        }
        stats.blocks += rec.value().count;
        const uint64_t block = key.value().chunk * chunk_blocks + rec.value().first;
        const char* bytes = nullptr;
        Status s = in.BlockFromExtent(vol, block, key.value().seq, rec.value(), &cache, &bytes);
        if (!s.ok()) report(s.message());
        if (last == kNoSeq || key.value().seq > last) {
          report("volume " + name + " block " + std::to_string(block) + " seq " +
                 std::to_string(key.value().seq) + ": version above the latest point");
        }
      }
      TM_RETURN_IF_ERROR(FromRocks(et->status(), "verify extents"));
    }
    std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator(ro, in.cf[kBlocks]));
    for (it->Seek(prefix); !in.v2() && it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      auto key = DecodeBlockKey(it->key().ToStringView());
      if (!key) {
        report("volume " + name + ": " + key.error().message());
        continue;
      }
      ++stats.blocks;
      bool zero = false;
      Status s = in.DecodeBlockValue(vol, key.value().block, key.value().seq,
                                     it->value().ToStringView(), buf.data(), &zero);
      if (!s.ok()) report(s.message());
      if (last == kNoSeq || key.value().seq > last) {
        report("volume " + name + " block " + std::to_string(key.value().block) + " seq " +
               std::to_string(key.value().seq) + ": version above the latest point");
      }
    }
    TM_RETURN_IF_ERROR(FromRocks(it->status(), "verify blocks"));

    // 2. Every seq record: the versions (or range) it implies exist.
    std::unique_ptr<rocksdb::Iterator> seqs(in.db->NewIterator(ro, in.cf[kSeqs]));
    std::string sp = IdPrefix(space);
    for (seqs->Seek(sp); seqs->Valid() && seqs->key().starts_with(sp); seqs->Next()) {
      auto key = DecodeSeqKey(seqs->key().ToStringView());
      auto rec = DecodeSeq(seqs->value().ToStringView());
      if (!key || !rec) {
        report("volume " + name + " seq record: " +
               (!key ? key.error().message() : rec.error().message()));
        continue;
      }
      if (rec.value().volume != id) continue;
      ++stats.seqs;
      const Seq seq = key.value().seq;
      auto where = [&](uint64_t b) {
        return "volume " + name + " block " + std::to_string(b) + " seq " + std::to_string(seq);
      };
      if (!HasKey(in.db.get(), in.cf[kTimes], TimeKey(space, rec.value().time_ns, seq))) {
        report("volume " + name + " seq " + std::to_string(seq) + ": missing from the time index");
      }
      const RangeEntry* range = nullptr;
      for (const RangeEntry& r : vol.ranges) {
        if (r.seq == seq) range = &r;
      }
      for (const Extent& e : rec.value().extents) {
        if (e.length_bytes == 0) continue;
        for (uint64_t b = e.offset_bytes / bs; b <= (e.end_bytes() - 1) / bs; ++b) {
          if (range && range->Covers(b)) continue;
          if (in.v2() ? !HasExtent(in, id, chunk_blocks, b, seq)
                      : !HasKey(in.db.get(), in.cf[kBlocks], BlockKey(id, b, seq))) {
            report(where(b) + ": block version missing (the seq record says it was written)");
          }
        }
      }
    }
    TM_RETURN_IF_ERROR(FromRocks(seqs->status(), "verify seq records"));

    // 3. Ranges and bookmarks name existing seqs.
    for (const RangeEntry& r : vol.ranges) {
      if (!HasKey(in.db.get(), in.cf[kSeqs], SeqKey(space, r.seq))) {
        report("volume " + name + " seq " + std::to_string(r.seq) + ": range record without a seq record");
      }
    }
    std::unique_ptr<rocksdb::Iterator> bm(in.db->NewIterator(ro, in.cf[kBookmarks]));
    for (bm->Seek(sp); bm->Valid() && bm->key().starts_with(sp); bm->Next()) {
      std::string bname = bm->key().ToString().substr(4);
      auto b = DecodeBookmark(bm->value().ToStringView());
      if (!b) {
        report("volume " + name + " bookmark '" + bname + "': " + b.error().message());
      } else if (!HasKey(in.db.get(), in.cf[kSeqs], SeqKey(space, b.value().seq))) {
        report("volume " + name + " bookmark '" + bname + "': names seq " +
               std::to_string(b.value().seq) + ", which has no seq record");
      }
    }
    TM_RETURN_IF_ERROR(FromRocks(bm->status(), "verify bookmarks"));
  }
  if (stats.problems) {
    return Status::Corruption(std::to_string(stats.problems) + " problems found");
  }
  return stats;
}

}  // namespace tidemark::journal
