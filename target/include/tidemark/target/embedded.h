// The embedded target: `tidemark protect` records the tap's writes straight
// into a local journal, in process (DESIGN.md decision 5, embedded).
//
// Thread-safety: every method may be called from any thread; calls are
// serialised on one mutex (the tap's writer thread and the control API
// share the journal).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "tidemark/capture/tap.h"
#include "tidemark/journal/journal.h"

namespace tidemark::target {

class EmbeddedTarget : public capture::Recorder {
 public:
  // `journal` must outlive this object.
  EmbeddedTarget(journal::Journal* journal, uint32_t volume) : journal_(journal), volume_(volume) {}

  // Recorder
  Status Record(const capture::TapWrite& write) override;
  Status MarkFlush(Seq seq, TimeNs time_ns) override;
  Status Commit() override;
  Status Sync() override;
  Status Checkpoint(Seq seq) override;

  // Names the newest recorded point (waits until `newest_received` is
  // recorded, so a bookmark taken after a write names a point holding it).
  Result<journal::Bookmark> AddBookmark(std::string_view name, Seq newest_received);
  Result<journal::Point> Latest();

 private:
  std::mutex mu_;
  journal::Journal* journal_;
  uint32_t volume_;
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

}  // namespace tidemark::target
