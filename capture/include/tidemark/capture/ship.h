// Shipping: the tap's recorder in remote mode (`tidemark tap`;
// docs/design.md#durable-before-acknowledged, docs/design.md#the-source-queue,
// docs/design.md#security). Recorded writes wait in a queue until the target
// acknowledges them durable; a connection thread streams them over TLS 1.3
// (docs/protocol.md), reconnects with backoff and resends from the last
// acknowledged seq. Before a write reaches the backing its extent is marked
// in the activity log (activity_log.h), so after a tap crash only those
// extents are resent.
//
// Thread-safety: the Recorder methods from the tap's recorder/applier
// threads; the rest from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tidemark/capture/tap.h"
#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::capture {

struct ShipOptions {
  std::string target;       // HOST:PORT of `tidemark target serve`
  std::string ca_file;      // the target's CA certificate (pinned: no other CA is trusted)
  std::string tenant;
  std::string token;        // never logged
  std::string tap_id;       // stable across restarts of this tap
  // The volumes shipped: one, or a consistency group's members in member
  // order (one seq space; docs/design.md#consistency-groups).
  struct Volume {
    std::string name;
    uint64_t size_bytes = 0;
    uint32_t block_bytes = 4096;
  };
  std::vector<Volume> volumes;
  std::string group;        // the group's name; empty for a single volume
  std::string state_dir;    // activity log (created if missing)
  uint64_t max_queue_bytes = 256ull << 20;  // unacknowledged write data kept in memory
  uint64_t max_spill_bytes = 4ull << 30;    // ... then in STATE/spill (disk)
  uint32_t max_frame_bytes = 4u << 20;      // WRITES payload per frame
  bool sync = false;        // FLUSH/FUA wait for the target too (RPO 0)
  bool compress = true;     // zstd on the wire when it helps
  uint64_t bandwidth_bytes_per_s = 0;  // cap on bytes sent (frames as sent); 0: none
};

struct ShipStatus {
  std::string state;        // initial-sync, protected, backlog, error, connecting
  bool connected = false;
  Seq recorded_seq = kNoSeq;  // newest seq queued
  Seq acked_seq = kNoSeq;     // newest seq durable on the target
  uint64_t queued_entries = 0;
  uint64_t queued_bytes = 0;    // in memory
  uint64_t spilled_bytes = 0;   // in the spill segments
  uint64_t dirty_bytes = 0;     // blocks marked in the dirty bitmap
  TimeNs newest_write_ns = 0;  // time of the newest queued write
  TimeNs newest_acked_ns = 0;  // time of the newest acknowledged one
  double rpo_lag_seconds = 0;  // newest write seen minus newest durable
  uint64_t reconnects = 0;
  uint64_t sent_bytes = 0;      // frames sent, all connections
  uint64_t import_bytes = 0;    // initial-sync bytes sent
  uint64_t resync_bytes = 0;    // bytes resent: activity log after a crash, dirty bitmap
  uint64_t resync_skipped_bytes = 0;  // dirty bytes not resent: the target held them
  std::string last_error;
};

class Shipper : public Recorder {
 public:
  // Opens the activity logs in options.state_dir and starts the connection
  // thread. `backings` (the volumes, in options.volumes order) are read for
  // the initial sync and the activity log's resend; they must outlive the
  // Shipper.
  static Result<std::unique_ptr<Shipper>> Start(ShipOptions options,
                                                std::vector<const Backing*> backings);
  ~Shipper() override;

  // Waits until the target holds the volume's seq 0 (running the initial
  // sync when it has none, resumable) and the activity log's extents were
  // queued again; returns the newest seq and its time, for TapOptions.
  // Network errors are retried until `timeout`; a refusal (unauthenticated,
  // conflict, invalid geometry) returns at once. `progress` gets the bytes
  // of the initial sync done and total.
  struct Ready {
    Seq last_seq = 0;
    TimeNs last_time_ns = 0;
  };
  Result<Ready> WaitReady(std::chrono::seconds timeout,
                          std::function<void(uint64_t done, uint64_t total)> progress = {});

  // Recorder
  Status Record(uint32_t member, const TapWrite& write) override;
  Status MarkFlush(Seq seq, TimeNs time_ns) override;
  Status Commit() override;
  Status Sync() override;
  Status Checkpoint(Seq seq) override;
  Status RecordRefresh(uint32_t member, Seq seq, TimeNs time_ns, uint64_t offset_bytes,
                       uint32_t length_bytes) override;
  void Applied(Seq seq) override;

  // The tap whose writes this ships: the resync from the dirty bitmap takes
  // its refresh seqs from it (Tap::SubmitRefresh). Set once it exists.
  void SetTap(Tap* tap);

  // A bookmark, in-band after every write recorded once `newest_received`
  // is; returns the point the target named. kTryAgain when the target does
  // not confirm within `timeout`.
  struct BookmarkPoint {
    std::string name;
    Seq seq = 0;
    TimeNs time_ns = 0;
  };
  Result<BookmarkPoint> AddBookmark(const std::string& name, Seq newest_received,
                                    std::chrono::seconds timeout = std::chrono::seconds(30));

  ShipStatus status() const;
  // Waits up to `timeout` for the queue to drain (everything acknowledged),
  // then stops the connection thread. kTryAgain when writes were left
  // unacknowledged (the activity log keeps them for the next start).
  Status Shutdown(std::chrono::seconds timeout);

  class Impl;

 private:
  explicit Shipper(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::capture
