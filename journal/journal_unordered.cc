// Unordered intervals: seqs a remote tap resent out of order (its resync
// after bitmap mode or a crash) are kept, but none of them is a point.
// See docs/format-journal-1.md (the 'U' key) and
// docs/design.md#the-source-queue.
#include "coding.h"
#include "journal_impl.h"

namespace tidemark::journal {

const Journal::UnorderedInterval* Journal::Impl::Unordered(uint32_t space, Seq seq) const {
  auto it = unordered.find(space);
  if (it == unordered.end()) return nullptr;
  for (const auto& u : it->second) {
    if (seq > u.after && (u.upto == kNoSeq || seq < u.upto)) return &u;
  }
  return nullptr;
}

Result<Point> Journal::Impl::ConsistentLatest(const VolumeState& vol) const {
  BOOST_OUTCOME_TRY(latest, Edge(vol, false));
  const Journal::UnorderedInterval* u = Unordered(vol.rec.space, latest.seq);
  if (!u) return latest;
  return PointAt(vol, u->after);
}

Status Journal::BeginUnordered(uint32_t volume, Seq after, TimeNs time_ns) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  auto& list = in.unordered[vol->rec.space];
  for (const auto& u : list) {
    if (u.upto == kNoSeq) return Status::Ok();  // already open: a reconnect
  }
  SpaceState& sp = in.spaces[vol->rec.space];
  if (sp.last_seq == kNoSeq || after > sp.last_seq) {
    return Status::InvalidArgument("volume " + vol->rec.name + ": an unordered interval after seq " +
                                   std::to_string(after) + ", which it does not hold");
  }
  if (in.v2()) {
    TM_RETURN_IF_ERROR(in.AppendRecord(vol->rec.space, seg::RecordKind::kUnordered, 0, volume, after,
                                       seg::EncodeUnorderedBody({seg::kUnorderedBegin, time_ns})));
  }
  TM_RETURN_IF_ERROR(FromRocks(in.batch.Put(in.cf[kDefault], UnorderedKey(vol->rec.space, after),
                                            EncodeUnordered({kNoSeq, time_ns})),
                               "batch put"));
  list.push_back({after, kNoSeq, time_ns});
  return in.Commit();
}

Status Journal::EndUnordered(uint32_t volume, Seq upto) {
  Impl& in = *impl_;
  TM_RETURN_IF_ERROR(in.Writable());
  BOOST_OUTCOME_TRY(vol, in.Volume(volume));
  for (auto& u : in.unordered[vol->rec.space]) {
    if (u.upto != kNoSeq) continue;
    if (upto <= u.after) upto = u.after;  // nothing was resent
    if (in.v2()) {
      TM_RETURN_IF_ERROR(
          in.AppendRecord(vol->rec.space, seg::RecordKind::kUnordered, 0, volume, u.after,
                          seg::EncodeUnorderedBody({seg::kUnorderedEnd, u.begin_ns, upto})));
    }
    TM_RETURN_IF_ERROR(FromRocks(
        in.batch.Put(in.cf[kDefault], UnorderedKey(vol->rec.space, u.after),
                     EncodeUnordered({upto, u.begin_ns})),
        "batch put"));
    u.upto = upto;
    return in.Commit();
  }
  return Status::Ok();
}

std::vector<Journal::UnorderedInterval> Journal::UnorderedIntervals(uint32_t volume) const {
  auto vol = impl_->Volume(volume);
  if (!vol) return {};
  auto it = impl_->unordered.find(vol.value()->rec.space);
  return it == impl_->unordered.end() ? std::vector<UnorderedInterval>{} : it->second;
}

}  // namespace tidemark::journal
