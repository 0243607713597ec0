// Journal::Dump: every record of a journal, one a line (`tidemark journal
// dump`): metadata, groups, volumes, format 2's segment records, then every
// column family's records, each checked.
#include <rocksdb/options.h>

#include <algorithm>
#include <set>

#include "journal_impl.h"
#include "tidemark/journal/time.h"

namespace tidemark::journal {

Status Journal::Dump(uint32_t volume, const std::function<void(std::string_view)>& out) const {
  TM_RETURN_IF_ERROR(impl_->Barrier());  // what was committed is indexed
  Status first_error;
  auto note = [&](const Status& s, std::string_view cf_name, std::string_view key) {
    out("corrupt " + std::string(cf_name) + " key=" + Hex(key) + ": " + s.ToString());
    if (first_error.ok()) first_error = s;
  };
  const auto& m = impl_->meta;
  out("meta version=" + std::to_string(m.format_version) + " read_floor=" +
      std::to_string(m.read_floor) + " write_floor=" + std::to_string(m.write_floor) +
      " uuid=" + UuidString(m.uuid) + " codec=" + std::string(CodecName(m.codec)) +
      " checksum=crc32c created=" + FormatTime(m.created_ns));
  for (const auto& [name, g] : impl_->groups) {
    if (volume != kNoVolume &&
        std::find(g.volumes.begin(), g.volumes.end(), volume) == g.volumes.end()) {
      continue;
    }
    std::string line = "group name=" + name + " space=" + std::to_string(g.space) + " volumes=";
    for (size_t i = 0; i < g.volumes.size(); ++i) {
      line += (i ? "," : "") + std::to_string(g.volumes[i]);
    }
    out(line);
  }
  for (const auto& [id, v] : impl_->volumes) {
    if (volume != kNoVolume && id != volume) continue;
    std::string line = "volume id=" + std::to_string(id) + " space=" +
                       std::to_string(v.rec.space) + " name=" + v.rec.name;
    for (const Epoch& e : v.rec.epochs) {
      line += " epoch=" + std::to_string(e.epoch) + "@seq" + std::to_string(e.from_seq) +
              ":size=" + std::to_string(e.size_bytes) + ",block=" + std::to_string(e.block_bytes);
    }
    out(line);
    auto cp = BackingCheckpoint(id);
    if (cp && cp.value() != kNoSeq) {
      out("checkpoint volume=" + std::to_string(id) + " seq=" + std::to_string(cp.value()));
    }
    for (const UnorderedInterval& u : UnorderedIntervals(id)) {
      out("unordered space=" + std::to_string(v.rec.space) + " after=" + std::to_string(u.after) +
          " upto=" + (u.upto == kNoSeq ? std::string("open") : std::to_string(u.upto)) +
          " begin=" + FormatTime(u.begin_ns));
    }
  }
  if (impl_->v2()) {
    // Format 2: each space's segment records, in log order, with their CRCs checked.
    std::set<uint32_t> spaces;
    for (const auto& [id, v] : impl_->volumes) {
      if (volume == kNoVolume || id == volume) spaces.insert(v.rec.space);
    }
    for (uint32_t space : spaces) {
      auto log = impl_->Log(space, /*append=*/false);
      if (!log) {
        if (log.error().code() == Code::kNotFound) continue;  // nothing written yet
        note(log.error(), "segments", IdPrefix(space));
        continue;
      }
      auto end = log.value()->Scan({}, /*check_chunks=*/true,
                                   [&](const seg::Location& at, const seg::Record& r) {
        std::string line = "segment-record space=" + std::to_string(space) + " segment=" +
                           std::to_string(at.segment) + " offset=" + std::to_string(at.offset) +
                           " kind=" + std::string(seg::KindName(r.header.kind)) + " volume=" +
                           std::to_string(r.header.volume) + " seq=" +
                           std::to_string(r.header.seq) + " flags=" +
                           std::to_string(r.header.flags) + " length=" +
                           std::to_string(r.header.length);
        if (r.header.kind == seg::RecordKind::kData) {
          static constexpr const char* kOps[] = {"?", "write", "trim", "zeroes", "import"};
          line += std::string(" op=") + kOps[r.data.op < 5 ? r.data.op : 0] +
                  " time=" + FormatTime(r.data.time_ns) + " extent=" +
                  std::to_string(r.data.offset_bytes) + "+" + std::to_string(r.data.length_bytes) +
                  " chunks=" + std::to_string(r.chunks.size());
          if (r.data.head_skip_sectors || r.data.tail_skip_sectors) {
            line += " skip=" + std::to_string(r.data.head_skip_sectors) + "," +
                    std::to_string(r.data.tail_skip_sectors);
          }
        }
        if (r.header.kind == seg::RecordKind::kBookmark) {
          if (auto b = seg::DecodeBookmarkBody(r.body)) line += " name=" + b.value().name;
        } else if (r.header.kind == seg::RecordKind::kUnordered) {
          if (auto u = seg::DecodeUnorderedBody(r.body)) {
            line += u.value().what == seg::kUnorderedBegin
                        ? std::string(" begin")
                        : " end upto=" + std::to_string(u.value().upto);
          }
        }
        out(line);
        return Status::Ok();
      });
      if (!end) {
        note(end.error(), "segments", IdPrefix(space));
      } else if (end.value().torn) {
        // Past the committed tail a crash may leave a torn record (cut at the
        // next write); before it, that is damage.
        seg::Location tail;
        if (auto t = impl_->ReadTail(space, /*synced=*/false); t && t.value()) {
          tail = {t.value()->segment, t.value()->offset};
        }
        if (end.value().end < tail) {
          note(Status::Corruption(end.value().file + ": " + end.value().reason), "segments",
               IdPrefix(space));
        } else {
          out("segment-tail space=" + std::to_string(space) + " uncommitted bytes after segment=" +
              std::to_string(end.value().end.segment) + " offset=" +
              std::to_string(end.value().end.offset) + ": " + end.value().reason);
        }
      }
    }
  }
  for (size_t cf = kBlocks; cf < kCfCount; ++cf) {
    if (!impl_->cf[cf]) continue;  // a column family this journal lacks
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf[cf]));
    std::string prefix = volume == kNoVolume ? "" : IdPrefix(volume);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      std::string_view k = it->key().ToStringView();
      std::string_view val = it->value().ToStringView();
      auto dv = DecodeValue(val);
      if (!dv) {
        note(dv.error(), kColumnFamilies[cf], k);
        continue;
      }
      std::string line = std::string(ValueKindName(dv.value().kind));
      Status s;
      switch (cf) {
        case kBlocks: {
          auto key = DecodeBlockKey(k);
          if (!key) { s = key.error(); break; }
          line += " volume=" + std::to_string(key.value().volume) + " block=" +
                  std::to_string(key.value().block) + " seq=" + std::to_string(key.value().seq) +
                  " codec=" + std::string(CodecName(dv.value().codec)) +
                  " stored=" + std::to_string(dv.value().payload.size()) +
                  " crc=" + Hex(val.substr(4, 4));
          break;
        }
        case kExtents: {
          auto key = DecodeExtentKey(k);
          auto rec = DecodeExtent(val);
          if (!key || !rec) { s = !key ? key.error() : rec.error(); break; }
          const ExtentRecord& e = rec.value();
          line += " volume=" + std::to_string(key.value().volume) + " chunk=" +
                  std::to_string(key.value().chunk) + " seq=" + std::to_string(key.value().seq) +
                  " blocks=" + std::to_string(e.first) + "+" + std::to_string(e.count) +
                  ((e.flags & kExtentZero) ? std::string(" zero")
                                           : " segment=" + std::to_string(e.segment) +
                                                 " offset=" + std::to_string(e.offset) +
                                                 " stored=" + std::to_string(e.stored_len) +
                                                 " codec=" + std::string(CodecName(e.codec)));
          break;
        }
        case kSeqs: {
          auto key = DecodeSeqKey(k);
          auto rec = DecodeSeq(val);
          if (!key || !rec) { s = !key ? key.error() : rec.error(); break; }
          const SeqRecord& r = rec.value();
          line += " space=" + std::to_string(key.value().id) + " seq=" +
                  std::to_string(key.value().seq) + " time=" + FormatTime(r.time_ns) +
                  " volume=" + std::to_string(r.volume) + " op=" +
                  std::to_string(static_cast<int>(r.op)) + " flags=" +
                  std::to_string(r.flags) + " extents=" + std::to_string(r.extents.size());
          for (size_t i = 0; i < r.extents.size() && i < 8; ++i) {
            line += " " + std::to_string(r.extents[i].offset_bytes) + "+" +
                    std::to_string(r.extents[i].length_bytes);
          }
          if (r.extents.size() > 8) line += " ... crc=" + Hex(val.substr(4, 4));
          break;
        }
        case kTimes: {
          auto key = DecodeTimeKey(k);
          if (!key) { s = key.error(); break; }
          s = CheckTime(val);
          line += " space=" + std::to_string(key.value().space) + " time=" +
                  FormatTime(key.value().time_ns) + " seq=" + std::to_string(key.value().seq);
          break;
        }
        case kRanges: {
          auto key = DecodeSeqKey(k);
          auto rec = DecodeRange(val);
          if (!key || !rec) { s = !key ? key.error() : rec.error(); break; }
          line += " volume=" + std::to_string(key.value().id) + " seq=" +
                  std::to_string(key.value().seq) + " op=" +
                  std::to_string(static_cast<int>(rec.value().op)) + " blocks=" +
                  std::to_string(rec.value().first_block) + "+" +
                  std::to_string(rec.value().block_count);
          break;
        }
        case kBookmarks: {
          auto rec = DecodeBookmark(val);
          if (!rec || k.size() < 4) { s = !rec ? rec.error() : Status::Corruption("short key"); break; }
          line += " space=" + Hex(k.substr(0, 4)) + " name=" + std::string(k.substr(4)) +
                  " seq=" + std::to_string(rec.value().seq) +
                  " created=" + FormatTime(rec.value().created_ns);
          break;
        }
        case kFlushes: {
          auto key = DecodeSeqKey(k);
          auto rec = DecodeFlush(val);
          if (!key || !rec) { s = !key ? key.error() : rec.error(); break; }
          line += " space=" + std::to_string(key.value().id) + " seq=" +
                  std::to_string(key.value().seq) + " flags=" +
                  std::to_string(rec.value().flags) + " time=" + FormatTime(rec.value().time_ns);
          break;
        }
        default: break;
      }
      if (!s.ok()) {
        note(s, kColumnFamilies[cf], k);
        continue;
      }
      out(line);
    }
    Status is = FromRocks(it->status(), "dump");
    if (!is.ok() && first_error.ok()) first_error = is;
  }
  return first_error;
}

}  // namespace tidemark::journal
