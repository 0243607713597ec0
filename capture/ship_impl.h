// Private to capture/: the shipper's state (ship.h), shared by ship.cc (the
// Recorder and the public calls), ship_queue.cc (queue, spill, bitmap and
// resync bookkeeping) and ship_connection.cc (the TLS connection thread).
//
// One connection thread runs an Asio io_context: Run() connects, says
// HELLO, runs the initial sync if the target has no seq 0, and then streams
// the queue while Receive() takes ACKs and BOOKMARK_DONEs; on any error it
// reconnects with backoff and resends everything after the target's durable
// seq (the target ignores seqs it holds: no duplicates).
#pragma once

#include <utility>  // before Asio under g++ 12 / C++20 (Boost 1.74)

// g++ 12 reports Asio's coroutine frame allocator (recycling_allocator) as a
// mismatched new/delete: a false positive. Its coroutines also mishandle
// temporaries with destructors in a co_await operand (destroyed twice), so
// every such operand is a named local here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "tidemark/capture/activity_log.h"
#include "tidemark/capture/dirty_bitmap.h"
#include "tidemark/capture/ship.h"
#include "tidemark/capture/spill.h"
#include "tidemark/journal/wire.h"

namespace tidemark::capture {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace ship_detail {

inline constexpr uint64_t kImportChunkBytes = 1 << 20;
inline constexpr uint64_t kResyncChunkBytes = 1 << 20;
// With block hashes (docs/protocol.md, HASH_REQUEST), a resync's refreshes
// are cut into pieces of this size: a piece whose blocks the target already
// holds is not sent, one that differs is sent from its first to its last
// differing block.
inline constexpr uint64_t kHashPieceBytes = 64 << 10;

// A link that drops packets without a reset (a blackhole: a dead router, a
// firewall's expired state, a peer that froze) leaves a TCP read waiting for
// hours, and neither keepalive nor TCP_USER_TIMEOUT sees a middlebox that
// still acknowledges segments. So the tap watches the connection end to end:
// it sends PING once it heard nothing for kPingAfter, and drops the
// connection (then reconnects) when nothing at all arrived for kReadDeadline:
// no ACK, no PONG, no byte. A false alarm (a target stalled that long) costs
// one reconnect and a resend, which the journal ignores.
inline constexpr auto kPingAfter = std::chrono::seconds(2);
inline constexpr auto kReadDeadline = std::chrono::seconds(10);

// A queued write entry (its data is `data`, attached when encoded) or a
// bookmark; the same record the spill stores.
using Item = SpillRecord;

inline bool IsRefusal(std::string_view code) {
  return code == wire::kErrUnauthenticated || code == wire::kErrForbidden ||
         code == wire::kErrUnsupportedVersion || code == wire::kErrInvalid ||
         code == wire::kErrConflict;
}

}  // namespace ship_detail

using ship_detail::Item;

namespace ship_detail {
// An UNORDERED marker item: +1 opens an interval after `seq`, -1 closes it
// at `seq`.
inline Item UnorderedMarker(int8_t which, Seq seq, TimeNs time_ns) {
  Item m;
  m.unordered = which;
  m.entry.seq = seq == kNoSeq ? 0 : seq;
  m.entry.time_ns = time_ns;
  return m;
}
}  // namespace ship_detail

class Shipper::Impl {
 public:
  using Stream = ssl::stream<tcp::socket>;

  // A run of dirty blocks of one volume (a resync's refresh).
  struct DirtyRun {
    uint16_t volume;
    Extent extent;
  };

  ShipOptions o;
  std::string label;  // the volume's or the group's name, for logs
  // One per volume: its backing, activity log and dirty bitmap (guarded by
  // mu). A queued item's entry.volume indexes it.
  struct Member {
    const Backing* backing = nullptr;
    std::unique_ptr<ActivityLog> al;
    std::unique_ptr<DirtyBitmap> dirty;
  };
  std::vector<Member> members;
  std::unique_ptr<Spill> spill;  // guarded by mu; newer than every item in `queue`
  bool AnyDirty() const;
  uint64_t DirtyBytes() const;
  Status PersistDirty();
  Status ClearActivity();
  // The item's extent ends (acknowledged) or becomes dirty.
  void EndActivity(const Item& it);
  void MarkDirty(const Item& it);
  // Bitmap mode (past the spill cap): writes only mark `dirty`. A resync
  // then takes refresh seqs from the tap for the dirty runs, inside an
  // UNORDERED interval. Guarded by mu.
  bool bitmap_mode = false, resyncing = false, resync_submitted = false;
  uint64_t refresh_pending = 0;  // refreshes taken, not yet read
  Seq resync_end = kNoSeq;       // newest seq recorded when the last refresh was read
  uint64_t queue_epoch = 0;      // bumped when EnterBitmap() drops the queue
  // Block hashes (guarded by mu): the current connection's target answers
  // HASH_REQUEST; the resync compares with the target's blocks at hash_seq
  // (kNoSeq: this resync does not compare); the answers, by (volume, offset).
  bool hash_feature = false;
  Seq hash_seq = kNoSeq;
  std::map<std::pair<uint16_t, uint64_t>, wire::BlockHashes> target_hashes;
  uint64_t resync_skipped_bytes = 0;
  // The target's hashes of the piece at (volume, offset) of `len` bytes;
  // nullptr while they have not arrived.
  const char* HashesOf(uint16_t volume, uint64_t offset, uint64_t len) const;
  std::atomic<Seq> applied{0};   // Recorder::Applied
  Tap* tap = nullptr;
  std::unique_ptr<ssl::context> tls;
  std::unique_ptr<asio::io_context> io;
  std::unique_ptr<asio::steady_timer> send_signal;  // io thread
  std::thread thread;

  mutable std::mutex mu;
  std::condition_variable cv;  // acks, queue space, readiness, bookmarks
  std::deque<Item> queue;      // unacknowledged, in seq order
  size_t sent = 0;             // items at the queue's front sent on this connection
  uint64_t queued_bytes = 0;
  Seq recorded = kNoSeq, acked = kNoSeq;
  TimeNs newest_write_ns = 0, newest_acked_ns = 0;
  Seq resync_last = kNoSeq;  // the activity log's resend ends here
  bool connected = false, ready = false, stopping = false;
  Status refusal;
  std::string state = "connecting", last_error;
  std::map<std::string, BookmarkPoint> bookmarks_done;
  uint64_t reconnects = 0, sent_bytes = 0, import_bytes = 0, resync_bytes = 0;
  std::function<void(uint64_t, uint64_t)> progress;
  Ready ready_point;
  Stream* current = nullptr;  // io thread
  double tokens = 0;          // io thread: --bandwidth-limit's bucket, in bytes
  std::chrono::steady_clock::time_point tokens_at = std::chrono::steady_clock::now();
  // The read deadline (io thread): when bytes last arrived on the current
  // connection, and whether it expired (the connection was dropped for it).
  std::chrono::steady_clock::time_point last_heard;
  bool deadline_expired = false;
  struct Watch {
    explicit Watch(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    bool armed = true;   // false while no reply is due (the initial sync)
    bool over = false;   // the connection ended: its stream is gone
  };

  void Signal() {
    asio::post(*io, [this] { send_signal->cancel(); });
  }
  asio::awaitable<void> Run();
  asio::awaitable<Status> Connection();
  asio::awaitable<Status> WriteFrame(Stream& s, wire::FrameType t, std::string_view payload);
  asio::awaitable<Result<wire::Frame>> ReadFrame(Stream& s, wire::FrameReader& r);
  // The initial sync of one volume from byte `from`; progress reports
  // done_before + its bytes of `total`.
  asio::awaitable<Status> Import(Stream& s, wire::FrameReader& r, uint16_t volume, uint64_t from,
                                 uint64_t done_before, uint64_t total);
  asio::awaitable<Status> Receive(Stream& s, wire::FrameReader& r);
  asio::awaitable<Status> RequestHashes(Stream& s, const std::vector<DirtyRun>& runs, Seq seq);
  // Closes `s` once the read deadline passes while `w` is armed; ends when
  // w->over is set (and its timer cancelled).
  asio::awaitable<void> Watchdog(Stream& s, std::shared_ptr<Watch> w);
  Status QueueResync(Seq after, TimeNs time_ns);
  void OnAck(Seq seq);
  // Under mu: drops the front items the durable seq `acked` covers.
  void OnAckLocked();
  // Under mu: moves spilled items back to memory while it has room.
  void Refill();
  // Under mu: everything queued becomes dirty blocks; writes only mark.
  Status EnterBitmap();
  // Under mu: the dirty runs to refresh, once the queue is empty.
  std::vector<DirtyRun> StartResync();
  // Under mu: a refresh item at queue[i] gets its bytes: kWait while its
  // seq is not on the backing (or the target's hashes are awaited), kDrop
  // when the target already holds every block of it (the caller erases it).
  enum class Fill { kFilled, kWait, kDrop };
  Fill FillRefresh(size_t i);
  // Under mu: queues an item, in memory or, when memory is full or the
  // spill holds older items, in the spill (bitmap mode past the spill cap).
  Status Enqueue(Item item);
  // Under mu: the resync's last refresh is queued: close its interval at
  // `upto` (queued after every item up to it).
  void EndResync(Seq upto);
};


}  // namespace tidemark::capture
