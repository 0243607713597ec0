// The reader: points, block reads at a seq, and changed extents.
#include <rocksdb/options.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "coding.h"
#include "journal_impl.h"
#include "tidemark/journal/time.h"

namespace tidemark::journal {

namespace {

// After this many Next() calls inside one block, Seek instead: versions
// newer than the point are skipped cheaply when few, in O(log) when many.
constexpr int kNextsBeforeSeek = 8;

// Upper bound of all keys with the 4-byte id prefix.
std::string PrefixEnd(uint32_t id) {
  return id == ~uint32_t{0} ? std::string(4, '\xff') + "\xff" : IdPrefix(id + 1);
}

}  // namespace

Result<SeqRecord> Journal::Impl::GetSeq(uint32_t space, Seq seq) const {
  std::string v;
  rocksdb::Status s = db->Get({}, cf[kSeqs], SeqKey(space, seq), &v);
  if (s.IsNotFound()) return Status::NotFound("no seq " + std::to_string(seq));
  TM_RETURN_IF_ERROR(FromRocks(s, "read seq record"));
  auto rec = DecodeSeq(v);
  if (!rec) return rec.error().Annotate("seq record " + std::to_string(seq));
  return rec;
}

Result<Point> Journal::Impl::PointAt(const VolumeState& vol, Seq seq) const {
  LastAtOrBefore it(db.get(), cf[kSeqs], vol.rec.space, SeqKey(vol.rec.space, seq));
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read seq records"));
  if (!it->Valid()) {
    return Status::NotFound("volume " + vol.rec.name + " has no point at or before seq " +
                            std::to_string(seq));
  }
  BOOST_OUTCOME_TRY(key, DecodeSeqKey(it->key().ToStringView()));
  auto rec = DecodeSeq(it->value().ToStringView());
  if (!rec) return rec.error().Annotate("volume " + vol.rec.name + " seq " + std::to_string(key.seq));
  return Point{key.seq, rec.value().time_ns};
}

Result<Point> Journal::Impl::Edge(const VolumeState& vol, bool first) const {
  if (!first) return PointAt(vol, kNoSeq - 1);
  std::string upper = PrefixEnd(vol.rec.space);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf[kSeqs]));
  // A group's first point is its last member's image: nothing before it
  // holds every volume.
  it->Seek(SeqKey(vol.rec.space, vol.first_seq));
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read seq records"));
  if (!it->Valid()) return Status::NotFound("volume " + vol.rec.name + " has no points yet");
  BOOST_OUTCOME_TRY(key, DecodeSeqKey(it->key().ToStringView()));
  auto rec = DecodeSeq(it->value().ToStringView());
  if (!rec) return rec.error().Annotate("volume " + vol.rec.name + " seq " + std::to_string(key.seq));
  return Point{key.seq, rec.value().time_ns};
}

bool Journal::Impl::ZeroedByRange(const VolumeState& vol, uint64_t block, Seq version,
                                  Seq at) const {
  const auto& r = vol.ranges;
  auto it = std::upper_bound(r.begin(), r.end(), at,
                             [](Seq s, const RangeEntry& e) { return s < e.seq; });
  while (it != r.begin()) {
    --it;
    if (version != kNoSeq && it->seq <= version) return false;
    if (it->Covers(block)) return true;
  }
  return false;
}

Status Journal::Impl::DecodeBlockValue(const VolumeState& vol, uint64_t block, Seq version,
                                       std::string_view stored, char* out, bool* zero) const {
  const uint32_t bs = vol.epoch().block_bytes;
  auto where = [&] {
    return "volume " + vol.rec.name + " block " + std::to_string(block) + " seq " +
           std::to_string(version);
  };
  auto v = DecodeValue(stored);
  if (!v) return Status(Code::kCorruption, where() + ": " + v.error().message());
  if (v.value().kind == ValueKind::kZeroBlock) {
    std::memset(out, 0, bs);
    *zero = true;
    return Status::Ok();
  }
  if (v.value().kind != ValueKind::kBlock) {
    return Status::Corruption(where() + ": not a block record (kind " +
                              std::to_string(static_cast<int>(v.value().kind)) + ")");
  }
  *zero = false;
  Status s = Decompress(v.value().codec, v.value().payload, out, bs);
  if (!s.ok()) return Status::Corruption(where() + ": " + s.message());
  return Status::Ok();
}

Status Journal::Impl::ReadBlockAt(const VolumeState& vol, uint64_t block, Seq seq,
                                  char* out) const {
  if (v2()) return ReadBlockAtV2(vol, block, seq, out);
  const uint32_t bs = vol.epoch().block_bytes;
  std::string upper = BlockKey(vol.rec.id, block + 1, kNoSeq);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf[kBlocks]));
  it->Seek(BlockKey(vol.rec.id, block, seq));
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read block"));
  Seq version = kNoSeq;
  if (it->Valid()) {
    BOOST_OUTCOME_TRY(key, DecodeBlockKey(it->key().ToStringView()));
    version = key.seq;
  }
  if (version == kNoSeq || ZeroedByRange(vol, block, version, seq)) {
    std::memset(out, 0, bs);
    return Status::Ok();
  }
  bool zero = false;
  return DecodeBlockValue(vol, block, version, it->value().ToStringView(), out, &zero);
}

Result<Point> Journal::First(uint32_t volume) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  return impl_->Edge(*vol, true);
}

Result<Point> Journal::Latest(uint32_t volume) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  return impl_->ConsistentLatest(*vol);
}

Result<Point> Journal::PointAt(uint32_t volume, Seq seq) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  return impl_->PointAt(*vol, seq);
}

Result<Point> Journal::Resolve(uint32_t volume, const PointSpec& spec, TimeNs now_ns) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  const std::string& name = vol->rec.name;
  BOOST_OUTCOME_TRY(first, impl_->Edge(*vol, true));
  BOOST_OUTCOME_TRY(latest, impl_->ConsistentLatest(*vol));
  switch (spec.kind) {
    case PointSpec::Kind::kLatest:
      return latest;
    case PointSpec::Kind::kSeq:
      if (spec.seq < first.seq || spec.seq > latest.seq) {
        return Status::InvalidArgument("volume " + name + " has no seq " +
                                       std::to_string(spec.seq) + ": its points are seq " +
                                       std::to_string(first.seq) + " to " +
                                       std::to_string(latest.seq));
      }
      if (const UnorderedInterval* u = impl_->Unordered(vol->rec.space, spec.seq)) {
        return Status::InvalidArgument(
            "seq " + std::to_string(spec.seq) + " of volume " + name +
            " lies in an interval resent out of order (after seq " + std::to_string(u->after) +
            (u->upto == kNoSeq ? std::string(", still open") : " up to " + std::to_string(u->upto)) +
            "): not a point");
      }
      return impl_->PointAt(*vol, spec.seq);
    case PointSpec::Kind::kTime: {
      if (spec.time_ns > now_ns) {
        return Status::InvalidArgument("time " + FormatTime(spec.time_ns) + " is in the future");
      }
      if (spec.time_ns < first.time_ns) {
        return Status::InvalidArgument("time " + FormatTime(spec.time_ns) +
                                       " is before the first point of volume " + name + " (" +
                                       FormatTime(first.time_ns) + ", seq " +
                                       std::to_string(first.seq) + ")");
      }
      LastAtOrBefore it(impl_->db.get(), impl_->cf[kTimes], vol->rec.space,
                        TimeKey(vol->rec.space, spec.time_ns, kNoSeq));
      TM_RETURN_IF_ERROR(FromRocks(it->status(), "read time index"));
      if (!it->Valid()) return Status::Corruption("volume " + name + ": time index is empty");
      BOOST_OUTCOME_TRY(key, DecodeTimeKey(it->key().ToStringView()));
      if (key.seq > latest.seq) return latest;  // a time key of an uncommitted tail
      if (const UnorderedInterval* u = impl_->Unordered(vol->rec.space, key.seq)) {
        return impl_->PointAt(*vol, u->after);  // the last point before it
      }
      return Point{key.seq, key.time_ns};
    }
    case PointSpec::Kind::kBookmark: {
      std::string v;
      rocksdb::Status s = impl_->db->Get({}, impl_->cf[kBookmarks],
                                         BookmarkKey(vol->rec.space, spec.bookmark), &v);
      if (s.IsNotFound()) {
        return Status::NotFound("volume " + name + " has no bookmark '" + spec.bookmark + "'");
      }
      TM_RETURN_IF_ERROR(FromRocks(s, "read bookmark"));
      auto b = DecodeBookmark(v);
      if (!b) return b.error().Annotate("bookmark '" + spec.bookmark + "'");
      return impl_->PointAt(*vol, b.value().seq);
    }
  }
  return Status::InvalidArgument("bad point spec");
}

std::vector<Bookmark> Journal::Bookmarks(uint32_t volume) const {
  impl_->Barrier().IgnoreError();  // what was committed is indexed (a failure sticks)
  std::vector<Bookmark> out;
  auto vol = impl_->Volume(volume);
  if (!vol) return out;
  std::string prefix = IdPrefix(vol.value()->rec.space);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, impl_->cf[kBookmarks]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    auto b = DecodeBookmark(it->value().ToStringView());
    if (!b) continue;  // `journal dump` reports damaged records
    auto p = impl_->PointAt(*vol.value(), b.value().seq);
    if (!p) continue;
    out.push_back({it->key().ToString().substr(4), p.value(), b.value().created_ns});
  }
  std::sort(out.begin(), out.end(), [](const Bookmark& a, const Bookmark& b) {
    return a.point.seq != b.point.seq ? a.point.seq < b.point.seq : a.name < b.name;
  });
  return out;
}

Result<std::vector<Point>> Journal::Flushes(uint32_t volume) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  std::vector<Point> out;
  std::string prefix = IdPrefix(vol->rec.space);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator({}, impl_->cf[kFlushes]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    BOOST_OUTCOME_TRY(key, DecodeSeqKey(it->key().ToStringView()));
    auto rec = impl_->GetSeq(vol->rec.space, key.seq);
    if (!rec) continue;  // a marker above the committed tail
    if (impl_->Unordered(vol->rec.space, key.seq)) continue;  // not a point
    out.push_back({key.seq, rec.value().time_ns});
  }
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read flush markers"));
  return out;
}

Status Journal::ReadBlock(uint32_t volume, uint64_t block, Seq seq, char* out) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  if (block >= vol->Info().blocks()) {
    return Status::InvalidArgument("block " + std::to_string(block) + " is past the end of " +
                                   vol->rec.name);
  }
  return impl_->ReadBlockAt(*vol, block, seq, out);
}

Status Journal::ScanBlocks(uint32_t volume, Seq seq, const BlockFn& fn) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  return ScanBlockRange(volume, seq, 0, ~uint64_t{0}, fn);
}

Status Journal::ScanBlockRange(uint32_t volume, Seq seq, uint64_t first_block,
                               uint64_t end_block, const BlockFn& fn) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  const uint32_t id = vol->rec.id;
  end_block = std::min(end_block, vol->Info().blocks());
  if (first_block >= end_block) return Status::Ok();
  if (impl_->v2()) {
    ChunkCache cache;
    return impl_->ForEachExtent(
        *vol, seq, first_block, end_block,
        [&](uint64_t block, Seq version, const ExtentRecord& rec) -> Status {
          if ((rec.flags & kExtentZero) || impl_->ZeroedByRange(*vol, block, version, seq)) {
            return Status::Ok();
          }
          const char* bytes = nullptr;
          TM_RETURN_IF_ERROR(impl_->BlockFromExtent(*vol, block, version, rec, &cache, &bytes));
          return fn(block, std::string_view(bytes, vol->epoch().block_bytes));
        });
  }
  // Every key of blocks before end_block sorts below its 12-byte prefix.
  std::string upper = end_block == vol->Info().blocks()
                          ? PrefixEnd(id)
                          : BlockKey(id, end_block, seq).substr(0, 12);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.total_order_seek = true;  // crosses block prefixes
  ro.readahead_size = 2 << 20;
  ro.fill_cache = false;
  ro.async_io = true;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf[kBlocks]));
  std::string buf(vol->epoch().block_bytes, '\0');
  it->Seek(BlockKey(id, first_block, seq));
  while (it->Valid()) {
    BOOST_OUTCOME_TRY(key, DecodeBlockKey(it->key().ToStringView()));
    if (key.seq > seq) {
      // Versions newer than the point: step over a few, else seek.
      int n = 0;
      uint64_t block = key.block;
      for (; it->Valid() && n < kNextsBeforeSeek; ++n) {
        it->Next();
        if (!it->Valid()) break;
        std::string_view k = it->key().ToStringView();
        if (k.size() != 20 || coding::GetBE(k.data() + 4, 8) != block ||
            ~coding::GetBE(k.data() + 12, 8) <= seq) {
          break;
        }
      }
      if (n == kNextsBeforeSeek) it->Seek(BlockKey(id, block, seq));
      continue;
    }
    // The newest version of key.block at or before the point.
    if (!impl_->ZeroedByRange(*vol, key.block, key.seq, seq)) {
      std::string_view stored = it->value().ToStringView();
      auto raw = DecodeValue(stored);
      if (raw && raw.value().kind == ValueKind::kBlock && raw.value().codec == Codec::kNone &&
          raw.value().payload.size() == buf.size()) {
        // Uncompressed and checked: hand over the iterator's bytes, no copy.
        TM_RETURN_IF_ERROR(fn(key.block, raw.value().payload));
      } else {
        bool zero = false;
        TM_RETURN_IF_ERROR(
            impl_->DecodeBlockValue(*vol, key.block, key.seq, stored, buf.data(), &zero));
        if (!zero) TM_RETURN_IF_ERROR(fn(key.block, buf));
      }
    }
    // Older versions of the same block: step over a few, else seek.
    int n = 0;
    for (; n < kNextsBeforeSeek; ++n) {
      it->Next();
      if (!it->Valid()) break;
      std::string_view k = it->key().ToStringView();
      if (k.size() != 20 || coding::GetBE(k.data() + 4, 8) != key.block) break;
    }
    if (n == kNextsBeforeSeek) it->Seek(BlockKey(id, key.block + 1, seq));
  }
  return FromRocks(it->status(), "scan blocks of " + vol->rec.name);
}

Result<ReadPlan> Journal::PlanRead(uint32_t volume, Seq seq, uint64_t first_block,
                                   uint64_t end_block) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  if (!impl_->v2()) return Status::NotSupported("a read plan needs a format-2 journal");
  ReadPlan plan;
  plan.volume = vol->rec.name;
  plan.block_bytes = vol->epoch().block_bytes;
  end_block = std::min(end_block, vol->Info().blocks());
  if (first_block >= end_block) return plan;
  const uint64_t n = Impl::ChunkBlocks(*vol);
  const uint64_t bs = plan.block_bytes;
  std::map<uint64_t, uint32_t> files;  // segment -> index
  const seg::SegmentLog* log = nullptr;
  Status s = impl_->ForEachExtent(
      *vol, seq, first_block, end_block,
      [&](uint64_t block, Seq version, const ExtentRecord& rec) -> Status {
        if ((rec.flags & kExtentZero) || impl_->ZeroedByRange(*vol, block, version, seq)) {
          return Status::Ok();
        }
        const uint32_t skip = static_cast<uint32_t>(block % n - rec.first);
        if (!plan.pieces.empty()) {
          ReadPiece& p = plan.pieces.back();
          if (p.segment == rec.segment && p.offset == rec.offset &&
              p.first_block + p.blocks == block && p.skip_blocks + p.blocks == skip) {
            ++p.blocks;
            return Status::Ok();
          }
        }
        if (!log) {
          auto l = impl_->Log(vol->rec.space, /*append=*/false);
          if (!l) return l.error().Annotate("volume " + vol->rec.name);
          log = l.value();
        }
        auto [f, added] = files.emplace(rec.segment, static_cast<uint32_t>(plan.files.size()));
        if (added) plan.files.push_back(log->SegmentPath(rec.segment));
        ReadPiece p;
        p.first_block = block;
        p.blocks = 1;
        p.skip_blocks = skip;
        p.file = f->second;
        p.segment = rec.segment;
        p.offset = rec.offset;
        p.chunk.volume_offset = (block / n * n + rec.first) * bs;
        p.chunk.raw_len = static_cast<uint32_t>(uint64_t{rec.count} * bs);
        p.chunk.stored_len = rec.stored_len;
        p.chunk.codec = rec.codec;
        p.chunk.crc = rec.crc;
        p.seq = version;
        plan.pieces.push_back(p);
        return Status::Ok();
      });
  TM_RETURN_IF_ERROR(s);
  return plan;
}

Result<std::vector<Extent>> Journal::ChangedExtents(uint32_t volume, Seq after, Seq upto) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  BOOST_OUTCOME_TRY(vol, impl_->Volume(volume));
  std::vector<Extent> out;
  if (after != kNoSeq && upto <= after) return out;
  const uint32_t space = vol->rec.space;
  std::string upper = upto == kNoSeq ? PrefixEnd(space) : SeqKey(space, upto + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf[kSeqs]));
  for (it->Seek(SeqKey(space, after == kNoSeq ? 0 : after + 1)); it->Valid(); it->Next()) {
    auto rec = DecodeSeq(it->value().ToStringView());
    if (!rec) return rec.error().Annotate("volume " + vol->rec.name + " seq record");
    if (rec.value().volume != volume) continue;
    out.insert(out.end(), rec.value().extents.begin(), rec.value().extents.end());
  }
  TM_RETURN_IF_ERROR(FromRocks(it->status(), "read seq records"));
  CoalesceExtents(&out);
  return out;
}

}  // namespace tidemark::journal
