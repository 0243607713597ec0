// The embedded target: `tidemark protect` records the tap's writes straight
// into a local journal, in process (docs/design.md#durable-before-acknowledged, embedded).
//
// Thread-safety: every method may be called from any thread; calls are
// serialised on one mutex (the tap's writer thread and the control API
// share the journal).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tidemark/capture/tap.h"
#include "tidemark/journal/journal.h"

namespace tidemark::target {

class EmbeddedTarget : public capture::Recorder {
 public:
  // `journal` must outlive this object. `volumes`: the journal's volume ids
  // of the tap's members, in member order (one seq space).
  EmbeddedTarget(journal::Journal* journal, uint32_t volume)
      : journal_(journal), volumes_{volume} {}
  EmbeddedTarget(journal::Journal* journal, std::vector<uint32_t> volumes)
      : journal_(journal), volumes_(std::move(volumes)) {}

  // Recorder
  Status Record(uint32_t member, const capture::TapWrite& write) override;
  Status MarkFlush(Seq seq, TimeNs time_ns) override;
  Status Commit() override;
  Status Sync() override;
  Status Checkpoint(Seq seq) override;
  Status ReadLatest(uint32_t member, uint64_t offset_bytes, char* out, size_t len) override;

  // Names the newest recorded point (waits until `newest_received` is
  // recorded, so a bookmark taken after a write names a point holding it).
  Result<journal::Bookmark> AddBookmark(std::string_view name, Seq newest_received);
  Result<journal::Point> Latest();

 private:
  std::mutex mu_;
  journal::Journal* journal_;
  std::vector<uint32_t> volumes_;
};

// Makes the journal's volume `name` ready to protect `backing`:
// - a new volume is created with the backing's geometry and the backing's
//   content imported as seq 0 (zero blocks skipped);
// - an existing one must have the backing's size (kInvalidArgument);
// - the journal's tail after the backing checkpoint is replayed onto the
//   backing (a crash between recording and writing the backing), which is
//   then synced and checkpointed.
// Returns the volume; *replayed_bytes says how much the tail replay wrote.
Result<journal::VolumeInfo> PrepareVolume(journal::Journal& journal, const std::string& name,
                                          capture::Backing& backing, uint32_t block_bytes,
                                          uint64_t* replayed_bytes);

// The same for a consistency group: `names[i]` is protected by
// `backings[i]`. A new group is created with every volume, and their images
// imported in member order (a creation interrupted between imports goes on
// where it stopped); an existing one must have exactly these volumes, in
// this order, with these sizes (kInvalidArgument naming the difference).
// None of the names may be a volume outside the group.
Result<std::vector<journal::VolumeInfo>> PrepareGroup(
    journal::Journal& journal, const std::string& group, const std::vector<std::string>& names,
    const std::vector<capture::Backing*>& backings, uint32_t block_bytes,
    uint64_t* replayed_bytes);

}  // namespace tidemark::target
