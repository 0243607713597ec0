#include "tidemark/target/embedded.h"

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "tidemark/journal/time.h"

namespace tidemark::target {

Status EmbeddedTarget::Record(uint32_t member, const capture::TapWrite& w) {
  std::lock_guard lock(mu_);
  if (member >= volumes_.size()) {
    return Status::InvalidArgument("no group member " + std::to_string(member));
  }
  return journal_->Apply(volumes_[member], w);
}

Status EmbeddedTarget::MarkFlush(Seq seq, TimeNs time_ns) {
  std::lock_guard lock(mu_);
  return journal_->MarkFlush(volumes_[0], seq, time_ns, kSeqFlush);
}

Status EmbeddedTarget::Commit() {
  std::lock_guard lock(mu_);
  return journal_->Commit();
}

Status EmbeddedTarget::Sync() {
  std::lock_guard lock(mu_);
  auto s = journal_->Sync(volumes_[0]);
  return s ? Status::Ok() : s.error();
}

Status EmbeddedTarget::Checkpoint(Seq seq) {
  std::lock_guard lock(mu_);
  for (uint32_t v : volumes_) TM_RETURN_IF_ERROR(journal_->SetBackingCheckpoint(v, seq));
  return Status::Ok();
}

Status EmbeddedTarget::ReadLatest(uint32_t member, uint64_t offset_bytes, char* out, size_t len) {
  std::lock_guard lock(mu_);
  if (member >= volumes_.size()) return Status::InvalidArgument("no such member");
  const uint32_t vol = volumes_[member];
  TM_RETURN_IF_ERROR(journal_->Commit());
  BOOST_OUTCOME_TRY(last, journal_->LastSeq(vol));
  std::optional<journal::VolumeInfo> info;
  for (const journal::VolumeInfo& v : journal_->Volumes()) {
    if (v.id == vol) info = v;
  }
  if (!info) return Status::NotFound("volume " + std::to_string(vol) + " is not in the journal");
  const uint64_t bs = info->block_bytes;
  if (offset_bytes > info->size_bytes || len > info->size_bytes - offset_bytes) {
    return Status::InvalidArgument("read past the end of volume " + info->name);
  }
  if (len == 0) return Status::Ok();
  const uint64_t first = offset_bytes / bs;
  const uint64_t end = (offset_bytes + len + bs - 1) / bs;
  std::string blocks((end - first) * bs, '\0');
  TM_RETURN_IF_ERROR(journal_->ReadBlocks(vol, first, static_cast<uint32_t>(end - first), last,
                                          blocks.data(), nullptr));
  std::memcpy(out, blocks.data() + (offset_bytes - first * bs), len);
  return Status::Ok();
}

Result<journal::Bookmark> EmbeddedTarget::AddBookmark(std::string_view name,
                                                      Seq newest_received) {
  // The tap's writer records in batches: wait (briefly) for the writes the
  // tap had received when the bookmark was asked for.
  for (int i = 0; i < 5000; ++i) {
    {
      std::lock_guard lock(mu_);
      BOOST_OUTCOME_TRY(last, journal_->LastSeq(volumes_[0]));
      if (last != kNoSeq && last >= newest_received) {
        return journal_->AddBookmark(volumes_[0], name, NowNs());
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
  return journal_->Latest(volumes_[0]);
}

namespace {

// Replays (checkpoint, last] of the volume onto its backing (a crash between
// recording and writing the backing): idempotent, so replaying writes that
// did reach the backing is harmless. Then syncs and checkpoints.
Status ReplayTail(journal::Journal& j, const journal::VolumeInfo& vol, capture::Backing& backing,
                  uint64_t* replayed_bytes) {
  BOOST_OUTCOME_TRY(last, j.LastSeq(vol.id));
  BOOST_OUTCOME_TRY(checkpoint, j.BackingCheckpoint(vol.id));
  if (checkpoint != kNoSeq && checkpoint >= last) return Status::Ok();
  BOOST_OUTCOME_TRY(extents, j.ChangedExtents(vol.id, checkpoint, last));
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
  return j.SetBackingCheckpoint(vol.id, last);
}

Status CheckSize(const journal::VolumeInfo& vol, const capture::Backing& backing) {
  if (vol.size_bytes == backing.size_bytes()) return Status::Ok();
  return Status::InvalidArgument("volume " + vol.name + " is " + std::to_string(vol.size_bytes) +
                                 " bytes in the journal but " +
                                 std::to_string(backing.size_bytes()) + " bytes on disk");
}

// The volume's seq 0 image from its backing (a group member's at its
// import_seq), checkpointed.
Status ImportImage(journal::Journal& j, const journal::VolumeInfo& vol,
                   capture::Backing& backing) {
  auto read = [&](uint64_t off, char* buf, size_t len) { return backing.Read(off, buf, len); };
  BOOST_OUTCOME_TRY(seq, j.Import(vol.id, read, NowNs()));
  return j.SetBackingCheckpoint(vol.id, seq);
}

}  // namespace

Result<journal::VolumeInfo> PrepareVolume(journal::Journal& j, const std::string& name,
                                          capture::Backing& backing, uint32_t block_bytes,
                                          uint64_t* replayed_bytes) {
  *replayed_bytes = 0;
  auto found = j.FindVolume(name);
  if (!found) {
    if (found.error().code() != Code::kNotFound) return found.error();
    BOOST_OUTCOME_TRY(vol, j.CreateVolume(name, backing.size_bytes(), block_bytes));
    TM_RETURN_IF_ERROR(ImportImage(j, vol, backing));
    return vol;
  }
  journal::VolumeInfo vol = found.value();
  if (!vol.group.empty()) {
    return Status::InvalidArgument("volume " + name + " belongs to group " + vol.group +
                                   ": protect it with the group's other volumes (--group " +
                                   vol.group + ")");
  }
  TM_RETURN_IF_ERROR(CheckSize(vol, backing));
  BOOST_OUTCOME_TRY(last, j.LastSeq(vol.id));
  if (last == kNoSeq) {
    return Status::Corruption("volume " + name + " has no seq 0 (an import never finished)");
  }
  TM_RETURN_IF_ERROR(ReplayTail(j, vol, backing, replayed_bytes));
  return vol;
}

Result<std::vector<journal::VolumeInfo>> PrepareGroup(
    journal::Journal& j, const std::string& group, const std::vector<std::string>& names,
    const std::vector<capture::Backing*>& backings, uint32_t block_bytes,
    uint64_t* replayed_bytes) {
  *replayed_bytes = 0;
  auto found = j.FindGroup(group);
  std::vector<journal::VolumeInfo> vols;
  if (!found) {
    if (found.error().code() != Code::kNotFound) return found.error();
    std::vector<journal::VolumeSpec> specs;
    for (size_t i = 0; i < names.size(); ++i) {
      if (auto v = j.FindVolume(names[i])) {
        return Status::InvalidArgument(
            "volume " + names[i] + " is already in the journal " +
            (v.value().group.empty() ? std::string("on its own")
                                     : "in group " + v.value().group) +
            ": a new group takes new volumes");
      }
      specs.push_back({names[i], backings[i]->size_bytes(), block_bytes});
    }
    BOOST_OUTCOME_TRY(g, j.CreateGroup(group, specs));
    vols = g.volumes;
  } else {
    vols = found.value().volumes;
    std::string have, want;
    for (const auto& v : vols) have += (have.empty() ? "" : ",") + v.name;
    for (const auto& n : names) want += (want.empty() ? "" : ",") + n;
    if (have != want) {
      return Status::InvalidArgument("group " + group + " has volumes " + have + ", not " + want +
                                     " (the same volumes, in the same order)");
    }
  }
  for (size_t i = 0; i < vols.size(); ++i) TM_RETURN_IF_ERROR(CheckSize(vols[i], *backings[i]));
  // Images missing (a new group, or a creation that stopped between
  // imports) go in member order; the rest replay their tails.
  for (size_t i = 0; i < vols.size(); ++i) {
    BOOST_OUTCOME_TRY(last, j.LastSeq(vols[i].id));
    if (last == kNoSeq || last < vols[i].import_seq) {
      TM_RETURN_IF_ERROR(ImportImage(j, vols[i], *backings[i]));
    }
  }
  for (size_t i = 0; i < vols.size(); ++i) {
    TM_RETURN_IF_ERROR(ReplayTail(j, vols[i], *backings[i], replayed_bytes));
  }
  return vols;
}

}  // namespace tidemark::target
