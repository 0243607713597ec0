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

}  // namespace

Result<Journal::VerifyStats> Journal::Verify(
    uint32_t volume, const std::function<void(std::string_view)>& problem) const {
  const Impl& in = *impl_;
  VerifyStats stats;
  auto report = [&](const std::string& line) {
    ++stats.problems;
    problem(line);
  };
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
    std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator(ro, in.cf[kBlocks]));
    std::string buf(bs, '\0');
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
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
          if (!HasKey(in.db.get(), in.cf[kBlocks], BlockKey(id, b, seq))) {
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
