// Journal::Upgrade: a format-1 journal copied into a new format-2 journal,
// seq by seq (docs/format-journal.md#versioning). Every seq is applied
// again through the format-2 writer with the bytes it had; flush markers,
// bookmarks, unordered intervals and backing checkpoints are copied as they
// are, so that every point reads the same.
#include <rocksdb/options.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "coding.h"
#include "journal_impl.h"

namespace tidemark::journal {

namespace {

// Bytes [offset, offset + len) of `vol` at `seq`, read as whole blocks.
Status ReadAt(const Journal& j, const VolumeInfo& vol, Seq seq, uint64_t offset, char* out,
              size_t len, std::string* scratch) {
  const uint64_t bs = vol.block_bytes;
  const uint64_t first = offset / bs;
  const uint64_t end = (offset + len + bs - 1) / bs;
  scratch->resize((end - first) * bs);
  for (uint64_t b = first; b < end;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(end - b, 1024));
    TM_RETURN_IF_ERROR(j.ReadBlocks(vol.id, b, n, seq, scratch->data() + (b - first) * bs, nullptr));
    b += n;
  }
  std::memcpy(out, scratch->data() + (offset - first * bs), len);
  return Status::Ok();
}

// The key `k` of a record of space or volume `from`, for `to` (be32 id first).
std::string Rekey(std::string_view k, uint32_t to) {
  std::string out = IdPrefix(to);
  out.append(k.substr(4));
  return out;
}

}  // namespace

Result<Journal::UpgradeStats> Journal::Upgrade(const std::string& to,
                                               const std::function<void(uint64_t, uint64_t)>& progress) const {
  const Impl& in = *impl_;
  if (in.v2()) return Status::InvalidArgument("journal " + in.dir + " is format 2 already");
  OpenOptions o;
  o.create_if_missing = true;
  o.format = 2;
  o.codec = in.meta.codec;
  BOOST_OUTCOME_TRY(dst, Journal::Open(to, o));
  if (!dst->Volumes().empty()) return Status::InvalidArgument(to + " is not an empty journal");
  UpgradeStats stats;

  // Volumes and groups, in id order; a group is made when its first member comes.
  std::map<uint32_t, uint32_t> vol_map, space_map;  // old id -> new id
  for (const auto& [id, v] : in.volumes) {
    if (vol_map.count(id)) continue;
    if (!v.group.empty()) {
      auto g = in.groups.find(v.group);
      if (g == in.groups.end()) return Status::Corruption("volume " + v.rec.name + ": no group");
      std::vector<VolumeSpec> specs;
      for (uint32_t m : g->second.volumes) {
        const VolumeState& mv = in.volumes.at(m);
        specs.push_back({mv.rec.name, mv.epoch().size_bytes, mv.epoch().block_bytes});
      }
      BOOST_OUTCOME_TRY(made, dst->CreateGroup(v.group, specs));
      for (size_t i = 0; i < g->second.volumes.size(); ++i) {
        vol_map[g->second.volumes[i]] = made.volumes[i].id;
      }
      space_map[g->second.space] = made.space;
    } else {
      BOOST_OUTCOME_TRY(made, dst->CreateVolume(v.rec.name, v.epoch().size_bytes,
                                                v.epoch().block_bytes));
      vol_map[id] = made.id;
      space_map[v.rec.space] = made.space;
    }
    ++stats.volumes;
  }

  uint64_t total = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator({}, in.cf[kSeqs]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++total;
    TM_RETURN_IF_ERROR(FromRocks(it->status(), "count seq records"));
  }

  // Every seq, space by space, in order.
  std::string scratch, data;
  for (const auto& [old_space, new_space] : space_map) {
    const std::string prefix = IdPrefix(old_space);
    std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator({}, in.cf[kSeqs]));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      BOOST_OUTCOME_TRY(key, DecodeSeqKey(it->key().ToStringView()));
      auto rec = DecodeSeq(it->value().ToStringView());
      if (!rec) return rec.error().Annotate("seq " + std::to_string(key.seq));
      const SeqRecord& r = rec.value();
      auto vit = in.volumes.find(r.volume);
      if (vit == in.volumes.end()) {
        return Status::Corruption("seq " + std::to_string(key.seq) + " names no volume");
      }
      const VolumeInfo vol = vit->second.Info();
      const uint32_t nvol = vol_map.at(r.volume);
      auto where = [&] {
        return "volume " + vol.name + " seq " + std::to_string(key.seq);
      };
      if (r.op == OpKind::kImport) {
        auto read = [&](uint64_t off, char* buf, size_t len) {
          return ReadAt(*this, vol, key.seq, off, buf, len, &scratch);
        };
        auto got = dst->Import(nvol, read, r.time_ns, key.seq);
        if (!got) return got.error().Annotate(where());
        if (got.value() != key.seq) {
          return Status::Corruption(where() + ": the import became seq " +
                                    std::to_string(got.value()));
        }
      } else {
        if (r.extents.size() != 1) {
          return Status::Corruption(where() + ": a write of " + std::to_string(r.extents.size()) +
                                    " extents");
        }
        WriteOp op;
        op.seq = key.seq;
        op.time_ns = r.time_ns;
        op.op = r.op;
        op.offset_bytes = r.extents[0].offset_bytes;
        op.length_bytes = r.extents[0].length_bytes;
        op.flags = r.flags & kSeqFua;
        if (r.op == OpKind::kWrite) {
          data.resize(op.length_bytes);
          TM_RETURN_IF_ERROR(ReadAt(*this, vol, key.seq, op.offset_bytes, data.data(),
                                    data.size(), &scratch));
          op.data = data;
          stats.bytes += data.size();
        }
        Status s = dst->Apply(nvol, op);
        if (!s.ok()) return s.Annotate(where());
      }
      ++stats.seqs;
      if (progress) progress(stats.seqs, total);
    }
    TM_RETURN_IF_ERROR(FromRocks(it->status(), "read seq records"));
  }
  TM_RETURN_IF_ERROR(dst->Commit());

  // The records that are not seqs, as they are: flush markers, bookmarks,
  // unordered intervals, backing checkpoints (in format 2 as segment records
  // too, so that a rebuilt index has them).
  Impl& out = *dst->impl_;
  const bool records = out.v2();
  rocksdb::WriteBatch wb;
  for (Cf cf : {kFlushes, kBookmarks}) {
    std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator({}, in.cf[cf]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string_view k = it->key().ToStringView();
      if (k.size() < 5) return Status::Corruption("short key");
      auto sm = space_map.find(static_cast<uint32_t>(coding::GetBE(k.data(), 4)));
      if (sm == space_map.end()) continue;
      TM_RETURN_IF_ERROR(
          FromRocks(wb.Put(out.cf[cf], Rekey(k, sm->second), it->value()), "batch put"));
      if (!records) continue;
      if (cf == kFlushes) {
        BOOST_OUTCOME_TRY(key, DecodeSeqKey(k));  // flush keys are seq keys
        BOOST_OUTCOME_TRY(f, DecodeFlush(it->value().ToStringView()));
        TM_RETURN_IF_ERROR(out.AppendRecord(sm->second, seg::RecordKind::kFlush, f.flags, 0,
                                            key.seq, seg::EncodeFlushBody(f.time_ns)));
      } else {
        BOOST_OUTCOME_TRY(bm, DecodeBookmark(it->value().ToStringView()));
        TM_RETURN_IF_ERROR(
            out.AppendRecord(sm->second, seg::RecordKind::kBookmark, 0, 0, bm.seq,
                             seg::EncodeBookmarkBody({bm.created_ns, std::string(k.substr(4))})));
      }
    }
    TM_RETURN_IF_ERROR(FromRocks(it->status(), "copy records"));
  }
  for (char kind : {'U', 'B'}) {
    std::unique_ptr<rocksdb::Iterator> it(in.db->NewIterator({}, in.cf[kDefault]));
    const std::string p(1, kind);
    for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
      std::string_view k = it->key().ToStringView();
      if (k.size() < 5) return Status::Corruption("short key");
      const uint32_t id = static_cast<uint32_t>(coding::GetBE(k.data() + 1, 4));
      const auto& m = kind == 'U' ? space_map : vol_map;
      auto found = m.find(id);
      if (found == m.end()) continue;
      std::string nk = p + Rekey(k.substr(1), found->second);
      TM_RETURN_IF_ERROR(FromRocks(wb.Put(out.cf[kDefault], nk, it->value()), "batch put"));
      if (!records) continue;
      if (kind == 'U') {
        if (k.size() != 13) continue;  // not an interval key: copied, no record
        BOOST_OUTCOME_TRY(rec, DecodeUnordered(it->value().ToStringView()));
        const Seq after = coding::GetBE(k.data() + 5, 8);
        TM_RETURN_IF_ERROR(
            out.AppendRecord(found->second, seg::RecordKind::kUnordered, 0, 0, after,
                             seg::EncodeUnorderedBody({seg::kUnorderedBegin, rec.begin_ns})));
        if (rec.upto != kNoSeq) {
          TM_RETURN_IF_ERROR(out.AppendRecord(
              found->second, seg::RecordKind::kUnordered, 0, 0, after,
              seg::EncodeUnorderedBody({seg::kUnorderedEnd, rec.begin_ns, rec.upto})));
        }
      } else {
        BOOST_OUTCOME_TRY(seq, DecodeCheckpoint(it->value().ToStringView()));
        BOOST_OUTCOME_TRY(nv, out.Volume(found->second));
        if (seq == kNoSeq) continue;
        TM_RETURN_IF_ERROR(out.AppendRecord(nv->rec.space, seg::RecordKind::kCheckpoint, 0,
                                            found->second, seq, seg::EncodeCheckpointBody(0)));
      }
    }
    TM_RETURN_IF_ERROR(FromRocks(it->status(), "copy records"));
  }
  // Format 2: the records written before the index names them.
  if (records) TM_RETURN_IF_ERROR(out.Commit());
  TM_RETURN_IF_ERROR(out.SyncLogs());
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TM_RETURN_IF_ERROR(FromRocks(out.db->Write(wo, &wb), "write copied records"));
  return stats;
}

}  // namespace tidemark::journal
