#include "tidemark/target/embedded.h"

#include <chrono>
#include <thread>

#include "tidemark/journal/time.h"

namespace tidemark::target {

Status EmbeddedTarget::Record(const capture::TapWrite& w) {
  std::lock_guard lock(mu_);
  return journal_->Apply(volume_, w);
}

Status EmbeddedTarget::MarkFlush(Seq seq, TimeNs time_ns) {
  std::lock_guard lock(mu_);
  return journal_->MarkFlush(volume_, seq, time_ns, kSeqFlush);
}

Status EmbeddedTarget::Commit() {
  std::lock_guard lock(mu_);
  return journal_->Commit();
}

Status EmbeddedTarget::Sync() {
  std::lock_guard lock(mu_);
  auto s = journal_->Sync(volume_);
  return s ? Status::Ok() : s.error();
}

Status EmbeddedTarget::Checkpoint(Seq seq) {
  std::lock_guard lock(mu_);
  return journal_->SetBackingCheckpoint(volume_, seq);
}

Result<journal::Bookmark> EmbeddedTarget::AddBookmark(std::string_view name,
                                                      Seq newest_received) {
  // The tap's writer records in batches: wait (briefly) for the writes the
  // tap had received when the bookmark was asked for.
  for (int i = 0; i < 5000; ++i) {
    {
      std::lock_guard lock(mu_);
      BOOST_OUTCOME_TRY(last, journal_->LastSeq(volume_));
      if (last != kNoSeq && last >= newest_received) {
        return journal_->AddBookmark(volume_, name, NowNs());
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::TryAgain("the tap did not record seq " + std::to_string(newest_received) +
                          " within 5 s");
}

Result<journal::Point> EmbeddedTarget::Latest() {
  std::lock_guard lock(mu_);
  TM_RETURN_IF_ERROR(journal_->Commit());
  return journal_->Latest(volume_);
}

Result<journal::VolumeInfo> PrepareVolume(journal::Journal& j, const std::string& name,
                                          capture::Backing& backing, uint32_t block_bytes,
                                          uint64_t* replayed_bytes) {
  *replayed_bytes = 0;
  auto found = j.FindVolume(name);
  if (!found) {
    if (found.error().code() != Code::kNotFound) return found.error();
    BOOST_OUTCOME_TRY(vol, j.CreateVolume(name, backing.size_bytes(), block_bytes));
    auto read = [&](uint64_t off, char* buf, size_t len) { return backing.Read(off, buf, len); };
    BOOST_OUTCOME_TRY(seq0, j.Import(vol.id, read, NowNs()));
    TM_RETURN_IF_ERROR(j.SetBackingCheckpoint(vol.id, seq0));
    return vol;
  }
  journal::VolumeInfo vol = found.value();
  if (vol.size_bytes != backing.size_bytes()) {
    return Status::InvalidArgument("volume " + name + " is " + std::to_string(vol.size_bytes) +
                                   " bytes in the journal but " +
                                   std::to_string(backing.size_bytes()) + " bytes on disk");
  }
  BOOST_OUTCOME_TRY(last, j.LastSeq(vol.id));
  if (last == kNoSeq) {
    return Status::Corruption("volume " + name + " has no seq 0 (an import never finished)");
  }
  BOOST_OUTCOME_TRY(checkpoint, j.BackingCheckpoint(vol.id));
  if (checkpoint == kNoSeq || checkpoint < last) {
    // Replay (checkpoint, last] from the journal: idempotent, so replaying
    // writes that did reach the backing is harmless.
    Seq after = checkpoint == kNoSeq ? kNoSeq : checkpoint;
    BOOST_OUTCOME_TRY(extents, j.ChangedExtents(vol.id, after, last));
    std::string block(vol.block_bytes, '\0');
    for (const Extent& e : extents) {
      uint64_t first = e.offset_bytes / vol.block_bytes;
      uint64_t end_block = (e.end_bytes() + vol.block_bytes - 1) / vol.block_bytes;
      for (uint64_t b = first; b < end_block; ++b) {
        TM_RETURN_IF_ERROR(j.ReadBlock(vol.id, b, last, block.data()));
        uint64_t off = b * vol.block_bytes;
        uint64_t len = std::min<uint64_t>(vol.block_bytes, vol.size_bytes - off);
        TM_RETURN_IF_ERROR(backing.Write(off, std::string_view(block).substr(0, len)));
        *replayed_bytes += len;
      }
    }
    TM_RETURN_IF_ERROR(backing.Sync());
    TM_RETURN_IF_ERROR(j.SetBackingCheckpoint(vol.id, last));
  }
  return vol;
}

}  // namespace tidemark::target
