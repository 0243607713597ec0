// The tap's shipping (remote mode): see ship.h and docs/protocol.md.
//
// One connection thread runs an Asio io_context: Run() connects, says
// HELLO, runs the initial sync if the target has no seq 0, and then streams
// the queue (Send) while Receive() takes ACKs and BOOKMARK_DONEs; on any
// error it reconnects with backoff and resends everything after the
// target's durable seq (the target ignores seqs it holds: no duplicates).
#include "tidemark/capture/ship.h"

#include <utility>  // before Asio under g++ 12 / C++20 (Boost 1.74)

// g++ 12 reports Asio's coroutine frame allocator (recycling_allocator) as a
// mismatched new/delete: a false positive. Its coroutines also mishandle
// temporaries with destructors in a co_await operand (destroyed twice), so
// every such operand is a named local here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "tidemark/capture/activity_log.h"
#include "tidemark/capture/dirty_bitmap.h"
#include "tidemark/capture/spill.h"
#include "tidemark/journal/time.h"
#include "tidemark/journal/wire.h"

namespace tidemark::capture {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr uint64_t kImportChunkBytes = 1 << 20;
constexpr uint64_t kResyncChunkBytes = 1 << 20;

// A link that drops packets without a reset (a blackhole: a dead router, a
// firewall's expired state, a peer that froze) leaves a TCP read waiting for
// hours, and neither keepalive nor TCP_USER_TIMEOUT sees a middlebox that
// still acknowledges segments. So the tap watches the connection end to end:
// it sends PING once it heard nothing for kPingAfter, and drops the
// connection (then reconnects) when nothing at all arrived for kReadDeadline:
// no ACK, no PONG, no byte. A false alarm (a target stalled that long) costs
// one reconnect and a resend, which the journal ignores.
constexpr auto kPingAfter = std::chrono::seconds(2);
constexpr auto kReadDeadline = std::chrono::seconds(10);

// A queued write entry (its data is `data`, attached when encoded) or a
// bookmark; the same record the spill stores.
using Item = SpillRecord;

bool IsRefusal(std::string_view code) {
  return code == wire::kErrUnauthenticated || code == wire::kErrForbidden ||
         code == wire::kErrUnsupportedVersion || code == wire::kErrInvalid ||
         code == wire::kErrConflict;
}

}  // namespace

class Shipper::Impl {
 public:
  using Stream = ssl::stream<tcp::socket>;

  ShipOptions o;
  const Backing* backing = nullptr;
  std::unique_ptr<ActivityLog> al;
  std::unique_ptr<Spill> spill;  // guarded by mu; newer than every item in `queue`
  std::unique_ptr<DirtyBitmap> dirty;  // guarded by mu
  // Bitmap mode (past the spill cap): writes only mark `dirty`. A resync
  // then takes refresh seqs from the tap for the dirty runs, inside an
  // UNORDERED interval. Guarded by mu.
  bool bitmap_mode = false, resyncing = false, resync_submitted = false;
  uint64_t refresh_pending = 0;  // refreshes taken, not yet read
  Seq resync_end = kNoSeq;       // newest seq recorded when the last refresh was read
  uint64_t queue_epoch = 0;      // bumped when EnterBitmap() drops the queue
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
  asio::awaitable<Status> Import(Stream& s, wire::FrameReader& r, uint64_t from);
  asio::awaitable<Status> Receive(Stream& s, wire::FrameReader& r);
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
  std::vector<Extent> StartResync();
  // Under mu: a refresh item at queue[i] gets its bytes (false: not yet
  // applied on the backing).
  bool FillRefresh(size_t i);
  // Under mu: queues an item, in memory or, when memory is full or the
  // spill holds older items, in the spill (bitmap mode past the spill cap).
  Status Enqueue(std::unique_lock<std::mutex>& lock, Item item);
};

asio::awaitable<Status> Shipper::Impl::WriteFrame(Stream& s, wire::FrameType t,
                                                  std::string_view payload) {
  std::string frame = wire::EncodeFrame(t, payload, o.compress);
  boost::system::error_code ec;
  if (o.bandwidth_bytes_per_s > 0) {
    // Token bucket: up to one second of burst; a frame waits for its bytes.
    const double rate = static_cast<double>(o.bandwidth_bytes_per_s);
    auto now = std::chrono::steady_clock::now();
    tokens = std::min(rate, tokens + rate * std::chrono::duration<double>(now - tokens_at).count());
    tokens_at = now;
    tokens -= static_cast<double>(frame.size());
    if (tokens < 0) {
      asio::steady_timer wait(*io, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::duration<double>(-tokens / rate)));
      co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  co_await asio::async_write(s, asio::buffer(frame), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status::IOError("send to " + o.target + ": " + ec.message());
  std::lock_guard lock(mu);
  sent_bytes += frame.size();
  co_return Status::Ok();
}

asio::awaitable<Result<wire::Frame>> Shipper::Impl::ReadFrame(Stream& s, wire::FrameReader& r) {
  std::vector<char> buf(64 << 10);
  for (;;) {
    auto next = r.Next();
    if (!next) co_return next.error();
    if (next.value()) {
      wire::Frame f = std::move(*next.value());
      if (f.type == wire::FrameType::kError) {
        auto e = wire::DecodeError(f.payload);
        if (!e) co_return e.error();
        std::string msg = "the target refused: " + e.value().message;
        if (IsRefusal(e.value().code)) co_return Status::Aborted(msg);
        if (e.value().code == wire::kErrNoSpace) co_return Status::NoSpace(msg);
        co_return Status::IOError(msg);
      }
      co_return f;
    }
    boost::system::error_code ec;
    size_t n = co_await s.async_read_some(asio::buffer(buf),
                                          asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Status::IOError("connection to " + o.target + " lost: " + ec.message());
    last_heard = std::chrono::steady_clock::now();
    r.Feed(std::string_view(buf.data(), n));
  }
}

// The initial sync: the volume's non-zero 1 MiB chunks as IMPORT frames,
// from where the target's durable progress ends, then IMPORT_DONE.
asio::awaitable<Status> Shipper::Impl::Import(Stream& s, wire::FrameReader& r, uint64_t from) {
  {
    std::lock_guard lock(mu);
    state = "initial-sync";
  }
  std::string chunk;
  const uint64_t size = o.size_bytes;
  for (uint64_t off = from - from % o.block_bytes; off < size; off += kImportChunkBytes) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(kImportChunkBytes, size - off));
    chunk.resize(len);
    Status rs = backing->Read(off, chunk.data(), len);
    if (!rs.ok()) co_return rs;
    if (std::any_of(chunk.begin(), chunk.end(), [](char c) { return c != 0; })) {
      std::string payload = wire::EncodeImport({0, off, chunk});
      Status ws = co_await WriteFrame(s, wire::FrameType::kImport, payload);
      if (!ws.ok()) co_return ws;
    }
    {
      std::lock_guard lock(mu);
      import_bytes += len;
    }
    if (progress) progress(off + len, size);
  }
  std::string done = wire::EncodeImportDone({0, NowNs()});
  Status ds = co_await WriteFrame(s, wire::FrameType::kImportDone, done);
  if (!ds.ok()) co_return ds;
  for (;;) {
    auto f = co_await ReadFrame(s, r);
    if (!f) co_return f.error();
    if (f.value().type != wire::FrameType::kAck) continue;
    auto seq = wire::DecodeAck(f.value().payload);
    if (!seq) co_return seq.error();
    if (seq.value() == 0) co_return Status::Ok();
  }
}

// After a tap crash: the extents the activity log had marked are read from
// the backing and queued as writes with new seqs (the tap is not serving
// yet, so nothing races them).
// They go between UNORDERED markers: the points between them are not
// offered (the target records the interval; docs/format-journal.md).
Status Shipper::Impl::QueueResync(Seq after, TimeNs time_ns) {
  Seq seq = after == kNoSeq ? 1 : after + 1;
  auto marker = [&](int8_t which, Seq s) {
    Item m;
    m.unordered = which;
    m.entry.seq = s;
    m.entry.time_ns = time_ns;
    std::lock_guard lock(mu);
    queue.push_back(std::move(m));
  };
  marker(1, after == kNoSeq ? 0 : after);
  // The activity log's extents, and the dirty bitmap's blocks of a tap that
  // stopped in bitmap mode.
  std::vector<Extent> extents = al->recovered();
  while (!dirty->empty()) {
    auto runs = dirty->TakeRuns(kResyncChunkBytes, 4096);
    if (runs.empty()) break;
    extents.insert(extents.end(), runs.begin(), runs.end());
  }
  for (const Extent& e : extents) {
    for (uint64_t off = e.offset_bytes; off < e.end_bytes(); off += kResyncChunkBytes) {
      uint64_t len = std::min<uint64_t>(kResyncChunkBytes, e.end_bytes() - off);
      Item it;
      it.data.resize(len);
      TM_RETURN_IF_ERROR(backing->Read(off, it.data.data(), len));
      it.entry = {seq, time_ns, 0, wire::EntryOp::kWrite, 0, off, static_cast<uint32_t>(len), {}};
      std::lock_guard lock(mu);
      al->Begin(off, len);
      queued_bytes += len;
      resync_bytes += len;
      recorded = resync_last = seq++;
      newest_write_ns = time_ns;
      queue.push_back(std::move(it));
    }
  }
  marker(-1, resync_last);
  return Status::Ok();
}

void Shipper::Impl::Refill() {
  while (!spill->empty() && queued_bytes < o.max_queue_bytes / 2) {
    std::vector<Item> items;
    // Small batches: a large one would sit beside the queue (peak memory).
    Status s = spill->ReadFront(std::min<uint64_t>(o.max_queue_bytes / 4, 4 << 20), &items);
    if (!s.ok()) {
      last_error = s.message();  // a damaged spill: the activity log still covers it
      return;
    }
    for (Item& it : items) {
      queued_bytes += it.data.size();
      queue.push_back(std::move(it));
    }
    cv.notify_all();  // the spill has room again
  }
}

Status Shipper::Impl::Enqueue(std::unique_lock<std::mutex>& lock, Item item) {
  if (spill->empty() && queued_bytes + item.data.size() <= o.max_queue_bytes) {
    queued_bytes += item.data.size();
    queue.push_back(std::move(item));
    return Status::Ok();
  }
  (void)lock;
  Status s = spill->Append(item);
  if (s.code() != Code::kNoSpace) return s;
  // Past the spill cap: keep only which blocks changed (decision 6).
  if (!item.bookmark && item.unordered == 0 && item.entry.op != wire::EntryOp::kFlush) {
    dirty->Mark(item.entry.offset_bytes, item.entry.length_bytes);
  }
  return EnterBitmap();
}

Status Shipper::Impl::EnterBitmap() {
  auto mark = [&](const Item& it) {
    if (it.bookmark || it.unordered != 0 || it.entry.op == wire::EntryOp::kFlush) return;
    dirty->Mark(it.entry.offset_bytes, it.entry.length_bytes);
    if (!it.refresh) al->End(it.entry.offset_bytes, it.entry.length_bytes);
  };
  for (const Item& it : queue) mark(it);
  while (!spill->empty()) {
    std::vector<Item> items;
    TM_RETURN_IF_ERROR(spill->ReadFront(64 << 20, &items));
    for (const Item& it : items) mark(it);
  }
  spdlog::warn("{}: queue and spill full ({} MiB): dirty-block bitmap mode", o.volume_name,
               (o.max_queue_bytes + o.max_spill_bytes) >> 20);
  queue.clear();
  ++queue_epoch;
  sent = 0;
  queued_bytes = 0;
  bitmap_mode = true;
  resyncing = resync_submitted = false;
  refresh_pending = 0;
  state = "bitmap";
  cv.notify_all();
  return dirty->Persist();
}

std::vector<Extent> Shipper::Impl::StartResync() {
  Item begin;
  begin.unordered = 1;
  begin.entry.seq = acked == kNoSeq ? 0 : acked;
  begin.entry.time_ns = NowNs();
  queue.push_back(std::move(begin));
  bitmap_mode = false;  // writes are queued again, in order after the refreshes taken now
  resyncing = true;
  resync_submitted = false;
  state = "resync";
  std::vector<Extent> runs;
  while (!dirty->empty()) {
    auto more = dirty->TakeRuns(kResyncChunkBytes, 4096);
    if (more.empty()) break;
    runs.insert(runs.end(), more.begin(), more.end());
  }
  refresh_pending += runs.size();
  spdlog::info("{}: resync of {} runs from the dirty bitmap", o.volume_name, runs.size());
  return runs;
}

bool Shipper::Impl::FillRefresh(size_t i) {
  Item& it = queue[i];
  if (applied.load() < it.entry.seq) return false;
  it.data.resize(it.entry.length_bytes);
  Status s = backing->Read(it.entry.offset_bytes, it.data.data(), it.data.size());
  if (!s.ok()) {
    last_error = s.message();
    return false;
  }
  it.refresh = false;  // an ordinary write entry from here on
  queued_bytes += it.data.size();
  resync_bytes += it.data.size();
  // Writes after the refresh's seq may already be in these bytes: the
  // interval ends at the newest seq recorded now.
  resync_end = recorded;
  if (refresh_pending > 0) --refresh_pending;
  if (refresh_pending == 0 && resync_submitted && resyncing) {
    Item end;
    end.unordered = -1;
    end.entry.seq = resync_end;
    end.entry.time_ns = NowNs();
    std::unique_lock<std::mutex> dummy;  // Enqueue's lock parameter is unused
    Enqueue(dummy, std::move(end)).IgnoreError();
    resyncing = false;
  }
  return true;
}

void Shipper::Impl::OnAck(Seq seq) {
  std::lock_guard lock(mu);
  if (seq == kNoSeq || (acked != kNoSeq && seq < acked)) return;
  acked = seq;
  OnAckLocked();
}

void Shipper::Impl::OnAckLocked() {
  if (acked == kNoSeq) return;
  const Seq seq = acked;
  // Bookmarks and UNORDERED markers leave with their own answers.
  while (!queue.empty() && !queue.front().bookmark && queue.front().unordered == 0 &&
         queue.front().entry.seq <= seq) {
    const Item& it = queue.front();
    if (it.entry.op != wire::EntryOp::kFlush) al->End(it.entry.offset_bytes, it.entry.length_bytes);
    queued_bytes -= it.data.size();
    newest_acked_ns = it.entry.time_ns;
    queue.pop_front();
    if (sent > 0) --sent;
  }
  size_t before = queue.size();
  Refill();
  if (queue.size() > before) send_signal->cancel();  // io thread: wake the sender
  if (resync_last != kNoSeq && seq >= resync_last) {
    Status s = al->ClearAll();  // the crash's extents are on the target now
    if (s.ok()) s = dirty->Persist();
    if (!s.ok()) last_error = s.message();
    resync_last = kNoSeq;
  }
  cv.notify_all();
}

asio::awaitable<Status> Shipper::Impl::Receive(Stream& s, wire::FrameReader& r) {
  for (;;) {
    auto f = co_await ReadFrame(s, r);
    if (!f) co_return f.error();
    switch (f.value().type) {
      case wire::FrameType::kAck: {
        auto seq = wire::DecodeAck(f.value().payload);
        if (!seq) co_return seq.error();
        OnAck(seq.value());
        break;
      }
      case wire::FrameType::kBookmarkDone: {
        auto b = wire::DecodeBookmarkDone(f.value().payload);
        if (!b) co_return b.error();
        std::lock_guard lock(mu);
        if (!queue.empty() && queue.front().bookmark && queue.front().name == b.value().name) {
          queue.pop_front();
          if (sent > 0) --sent;
        }
        bookmarks_done[b.value().name] = {b.value().name, b.value().seq, b.value().time_ns};
        OnAckLocked();
        cv.notify_all();
        break;
      }
      case wire::FrameType::kUnordered: {  // the target's echo: the marker is durable
        auto u = wire::DecodeUnordered(f.value().payload);
        if (!u) co_return u.error();
        std::lock_guard lock(mu);
        if (!queue.empty() && queue.front().unordered == (u.value().begin ? 1 : -1)) {
          queue.pop_front();
          if (sent > 0) --sent;
          if (!u.value().begin && !bitmap_mode && !resyncing) {
            Status ps = dirty->Persist();  // the resent blocks are durable: clear them on disk
            if (!ps.ok()) last_error = ps.message();
            if (state == "resync") state = "protected";
          }
        }
        OnAckLocked();
        break;
      }
      case wire::FrameType::kPong: break;
      default:
        co_return Status::Corruption("unexpected " +
                                     std::string(wire::FrameTypeName(f.value().type)) +
                                     " frame from the target");
    }
  }
}

asio::awaitable<void> Shipper::Impl::Watchdog(Stream& s, std::shared_ptr<Watch> w) {
  for (;;) {
    boost::system::error_code ec;
    w->timer.expires_after(std::chrono::milliseconds(500));
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (w->over) co_return;
    if (w->armed && std::chrono::steady_clock::now() - last_heard > kReadDeadline) {
      deadline_expired = true;
      s.lowest_layer().close(ec);  // the pending read and write fail: Connection() ends
      co_return;
    }
  }
}

asio::awaitable<Status> Shipper::Impl::Connection() {
  auto colon = o.target.rfind(':');
  if (colon == std::string::npos) co_return Status::InvalidArgument("--target needs HOST:PORT");
  std::string host = o.target.substr(0, colon), port = o.target.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  tcp::resolver resolver(*io);
  auto endpoints = co_await resolver.async_resolve(host, port,
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status::IOError("cannot resolve " + host + ": " + ec.message());
  Stream s(*io, *tls);
  current = &s;
  struct Clear {
    Impl* in;
    ~Clear() { in->current = nullptr; }
  } clear{this};
  // A connect or handshake that hangs is cut after 10 s.
  asio::steady_timer guard(*io, std::chrono::seconds(10));
  guard.async_wait([&s](boost::system::error_code e) {
    if (!e) s.lowest_layer().close(e);
  });
  co_await asio::async_connect(s.lowest_layer(), endpoints,
                               asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status::IOError("cannot connect to " + o.target + ": " + ec.message());
  s.lowest_layer().set_option(tcp::no_delay(true), ec);
  SSL_set_tlsext_host_name(s.native_handle(), host.c_str());
  s.set_verify_mode(ssl::verify_peer);
  s.set_verify_callback(ssl::host_name_verification(host));
  std::string alpn(1, static_cast<char>(wire::kAlpn.size()));
  alpn += wire::kAlpn;
  SSL_set_alpn_protos(s.native_handle(), reinterpret_cast<const unsigned char*>(alpn.data()),
                      static_cast<unsigned>(alpn.size()));
  co_await s.async_handshake(ssl::stream_base::client,
                             asio::redirect_error(asio::use_awaitable, ec));
  guard.cancel();
  if (ec) {
    co_return Status::IOError("TLS with " + o.target + " failed (is --ca the target's CA?): " +
                              ec.message());
  }
  // From here on the target owes replies: WELCOME, then ACKs and PONGs.
  auto watch = std::make_shared<Watch>(*io);
  struct Unwatch {
    std::shared_ptr<Watch> w;
    ~Unwatch() {
      w->over = true;
      w->timer.cancel();
    }
  } unwatch{watch};
  last_heard = std::chrono::steady_clock::now();
  asio::co_spawn(*io, Watchdog(s, watch), asio::detached);
  wire::Hello hello;
  hello.tenant = o.tenant;
  hello.token = o.token;
  hello.tap_id = o.tap_id;
  hello.volumes = {{o.volume_name, o.size_bytes, o.block_bytes}};
  std::string hello_payload = wire::EncodeHello(hello);
  Status hs = co_await WriteFrame(s, wire::FrameType::kHello, hello_payload);
  if (!hs.ok()) co_return hs;
  wire::FrameReader reader;
  auto wf = co_await ReadFrame(s, reader);
  if (!wf) co_return wf.error();
  if (wf.value().type != wire::FrameType::kWelcome) {
    co_return Status::Corruption("the target answered HELLO with " +
                                 std::string(wire::FrameTypeName(wf.value().type)));
  }
  auto welcome = wire::DecodeWelcome(wf.value().payload);
  if (!welcome) co_return welcome.error();
  Seq durable = welcome.value().durable_seq;
  if (welcome.value().volumes.size() != 1) co_return Status::Corruption("WELCOME without the volume");
  const wire::VolumeState& vs = welcome.value().volumes[0];
  if (vs.state != wire::kStateReady) {
    // TODO(#4): the target says nothing until IMPORT_DONE, so a blackhole
    // during the initial sync is not noticed yet (PINGs between chunks).
    watch->armed = false;
    Status is = co_await Import(s, reader, vs.import_next_offset);
    if (!is.ok()) co_return is;
    last_heard = std::chrono::steady_clock::now();
    watch->armed = true;
    durable = 0;
  }
  bool first;
  {
    std::lock_guard lock(mu);
    first = !ready;
  }
  if (first) {
    // Continue after the target's newest durable seq; resend what the
    // activity log says a crash may have left unacknowledged.
    TimeNs now = NowNs();
    if (!al->recovered().empty() || !dirty->empty()) {
      spdlog::info("resending {} extents the activity log kept and {} dirty blocks from before",
                   al->recovered().size(), dirty->dirty_bytes() / o.block_bytes);
      Status rs = QueueResync(durable, now);
      if (!rs.ok()) co_return rs;
    }
    std::lock_guard lock(mu);
    ready_point.last_seq = recorded != kNoSeq ? recorded : durable;
    ready_point.last_time_ns = now;
    ready = true;
    if (newest_acked_ns == 0) newest_acked_ns = now;  // RPO lag counts from here until an ack
  }
  {
    std::lock_guard lock(mu);
    connected = true;
    state = "protected";
    sent = 0;
  }
  OnAck(durable);
  // Stream the queue while Receive() takes acknowledgements.
  auto receiver_done = std::make_shared<std::optional<Status>>();
  asio::co_spawn(*io, Receive(s, reader), [this, receiver_done](std::exception_ptr, Status st) {
    *receiver_done = st;
    send_signal->cancel();
  });
  Status result;
  auto last_ping = std::chrono::steady_clock::time_point();
  for (;;) {
    if (*receiver_done) break;
    std::string payload;
    size_t items = 0;
    bool refresh_wait = false;
    std::vector<Extent> resync_runs;
    uint64_t epoch = 0;
    wire::FrameType type = wire::FrameType::kWrites;
    wire::Bookmark bm;
    {
      std::lock_guard lock(mu);
      if (stopping) break;
      Refill();
      epoch = queue_epoch;
      if (bitmap_mode && tap != nullptr && queue.empty() && spill->empty()) {
        resync_runs = StartResync();
      }
      wire::WritesEncoder enc;
      for (size_t i = sent; i < queue.size(); ++i) {
        if (queue[i].refresh && !FillRefresh(i)) {
          refresh_wait = true;  // its seq is not on the backing yet
          break;
        }
        const Item& it = queue[i];
        if (it.bookmark || it.unordered != 0) {
          if (items == 0) {  // alone in its frame, after the writes before it
            items = 1;
            if (it.bookmark) {
              Seq before = i > 0 ? queue[i - 1].entry.seq : acked;
              bm = {it.name, before == kNoSeq ? 0 : before, NowNs()};
              payload = wire::EncodeBookmark(bm);
              type = wire::FrameType::kBookmark;
            } else {
              payload = wire::EncodeUnordered({it.unordered > 0, it.entry.seq, it.entry.time_ns});
              type = wire::FrameType::kUnordered;
            }
          }
          break;
        }
        wire::WriteEntry e = it.entry;
        e.data = it.data;
        enc.Add(e);
        ++items;
        if (enc.payload_bytes() >= o.max_frame_bytes) break;
      }
      if (type == wire::FrameType::kWrites && items > 0) payload = enc.Finish();
    }
    if (!resync_runs.empty()) {
      // Refresh seqs come from the tap, in order with its writes.
      for (const Extent& e : resync_runs) {
        tap->SubmitRefresh(e.offset_bytes, static_cast<uint32_t>(e.length_bytes));
      }
      std::lock_guard lock(mu);
      resync_submitted = true;
      if (refresh_pending == 0 && resyncing) {  // nothing was dirty
        Item end;
        end.unordered = -1;
        end.entry.seq = recorded == kNoSeq ? 0 : recorded;
        end.entry.time_ns = NowNs();
        queue.push_back(std::move(end));
        resyncing = false;
      }
    }
    if (items == 0 && refresh_wait) {
      send_signal->expires_after(std::chrono::milliseconds(1));
      co_await send_signal->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (items == 0) {
      // Quiet: ask for a PONG, so that a dead link shows (see kPingAfter).
      auto quiet = std::chrono::steady_clock::now() - last_heard;
      if (quiet >= kPingAfter && std::chrono::steady_clock::now() - last_ping >= kPingAfter) {
        last_ping = std::chrono::steady_clock::now();
        Status ps = co_await WriteFrame(s, wire::FrameType::kPing, std::string_view());
        if (!ps.ok()) {
          result = ps;
          break;
        }
        continue;
      }
      send_signal->expires_after(kPingAfter);
      co_await send_signal->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    Status ws = co_await WriteFrame(s, type, payload);
    if (!ws.ok()) {
      result = ws;
      break;
    }
    std::lock_guard lock(mu);
    if (epoch == queue_epoch) sent = std::min(sent + items, queue.size());
  }
  s.lowest_layer().close(ec);
  while (!*receiver_done) {
    send_signal->expires_after(std::chrono::milliseconds(10));
    co_await send_signal->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (result.ok()) result = **receiver_done;
  co_return result;
}

asio::awaitable<void> Shipper::Impl::Run() {
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    auto started = std::chrono::steady_clock::now();
    deadline_expired = false;
    Status s = co_await Connection();
    if (deadline_expired) {
      s = Status::IOError("nothing heard from " + o.target + " for " +
                          std::to_string(kReadDeadline.count()) +
                          " s (PING unanswered): connection dropped");
    }
    bool stop;
    {
      std::lock_guard lock(mu);
      connected = false;
      stop = stopping;
      if (!stop) {
        last_error = s.message();
        state = s.code() == Code::kAborted ? "error" : "connecting";
        if (s.code() == Code::kAborted && !ready) refusal = s;
      }
      cv.notify_all();
    }
    if (stop) co_return;
    spdlog::warn("target {}: {}; reconnecting in {} ms", o.target, s.message(), backoff.count());
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(10)) {
      backoff = std::chrono::milliseconds(100);
    }
    // Every recorded batch cancels send_signal (Signal()), so a busy
    // workload used to cut the backoff short: hundreds of attempts a second
    // against a target that is down. Sleep until the deadline; only
    // Shutdown() (stopping) ends the wait early.
    const auto retry_at = std::chrono::steady_clock::now() + backoff;
    for (;;) {
      send_signal->expires_at(retry_at);
      boost::system::error_code ec;
      co_await send_signal->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      std::lock_guard lock(mu);
      if (stopping) co_return;
      if (std::chrono::steady_clock::now() >= retry_at) break;
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
    std::lock_guard lock(mu);
    ++reconnects;
  }
}

Result<std::unique_ptr<Shipper>> Shipper::Start(ShipOptions options, const Backing* backing) {
  auto impl = std::make_unique<Impl>();
  std::error_code fec;
  std::filesystem::create_directories(options.state_dir, fec);
  if (fec) return Status::IOError("cannot create " + options.state_dir + ": " + fec.message());
  BOOST_OUTCOME_TRY(al, ActivityLog::Open(options.state_dir + "/activity.log", options.size_bytes));
  impl->al = std::move(al);
  BOOST_OUTCOME_TRY(spill, Spill::Open(options.state_dir + "/spill", options.max_spill_bytes));
  impl->spill = std::move(spill);
  BOOST_OUTCOME_TRY(dirty, DirtyBitmap::Open(options.state_dir + "/dirty.bitmap",
                                             options.size_bytes, options.block_bytes));
  impl->dirty = std::move(dirty);
  impl->tls = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(impl->tls->native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  impl->tls->load_verify_file(options.ca_file, ec);
  if (ec) {
    return Status::InvalidArgument("cannot load the target's CA " + options.ca_file + ": " +
                                   ec.message());
  }
  impl->o = std::move(options);
  impl->backing = backing;
  impl->io = std::make_unique<asio::io_context>(1);
  impl->send_signal = std::make_unique<asio::steady_timer>(*impl->io);
  Impl* in = impl.get();
  asio::co_spawn(*in->io, in->Run(), asio::detached);
  in->thread = std::thread([in] { in->io->run(); });
  return std::unique_ptr<Shipper>(new Shipper(std::move(impl)));
}

Shipper::Shipper(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Shipper::~Shipper() { Shutdown(std::chrono::seconds(0)).IgnoreError(); }

Result<Shipper::Ready> Shipper::WaitReady(std::chrono::seconds timeout,
                                          std::function<void(uint64_t, uint64_t)> progress) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  in.progress = std::move(progress);
  bool done = in.cv.wait_for(lock, timeout, [&] { return in.ready || !in.refusal.ok(); });
  if (!in.refusal.ok()) return in.refusal;
  if (!done) {
    return Status::TryAgain("the target " + in.o.target + " was not reachable within " +
                            std::to_string(timeout.count()) + " s: " + in.last_error);
  }
  return in.ready_point;
}

Status Shipper::Record(const TapWrite& w) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  if (in.stopping) return Status::Aborted("the tap is stopping");
  Item it;
  in.recorded = w.seq;
  in.newest_write_ns = w.time_ns;
  if (in.bitmap_mode) {
    in.dirty->Mark(w.offset_bytes, w.length_bytes);
    return Status::Ok();
  }
  it.entry = wire::ToWriteEntry(0, w);
  it.entry.data = {};
  it.data.assign(w.data);
  in.al->Begin(w.offset_bytes, w.length_bytes);
  return in.Enqueue(lock, std::move(it));
}

Status Shipper::MarkFlush(Seq seq, TimeNs time_ns) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  if (in.recorded == kNoSeq || in.bitmap_mode) return Status::Ok();  // no point to flush
  Item it;
  it.entry = {seq, time_ns, 0, wire::EntryOp::kFlush, 0, 0, 0, {}};
  return in.Enqueue(lock, std::move(it));
}

Status Shipper::Commit() {
  Impl& in = *impl_;
  Status s;
  {
    std::lock_guard lock(in.mu);
    s = in.al->Persist();  // before the batch reaches the backing
    if (s.ok() && in.bitmap_mode) s = in.dirty->Persist();
  }
  in.Signal();
  return s;
}

Status Shipper::Sync() {
  Impl& in = *impl_;
  if (!in.o.sync) return Status::Ok();  // async: the activity log covers the queue
  std::unique_lock lock(in.mu);
  Seq want = in.recorded;
  in.cv.wait(lock, [&] {
    return want == kNoSeq || (in.acked != kNoSeq && in.acked >= want) || in.stopping;
  });
  if (want != kNoSeq && (in.acked == kNoSeq || in.acked < want)) {
    return Status::Aborted("stopped before the target acknowledged seq " + std::to_string(want));
  }
  return Status::Ok();
}

Status Shipper::Checkpoint(Seq) { return Status::Ok(); }

Status Shipper::RecordRefresh(Seq seq, TimeNs time_ns, uint64_t offset_bytes,
                              uint32_t length_bytes) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  in.recorded = seq;
  if (in.bitmap_mode) {  // bitmap mode again before it was read: dirty again
    in.dirty->Mark(offset_bytes, length_bytes);
    return Status::Ok();
  }
  Item it;
  it.refresh = true;
  it.entry = {seq, time_ns, 0, wire::EntryOp::kWrite, 0, offset_bytes, length_bytes, {}};
  return in.Enqueue(lock, std::move(it));
}

void Shipper::Applied(Seq seq) {
  impl_->applied.store(seq);
  impl_->Signal();
}

void Shipper::SetTap(Tap* tap) {
  std::lock_guard lock(impl_->mu);
  impl_->tap = tap;
}

Result<Shipper::BookmarkPoint> Shipper::AddBookmark(const std::string& name, Seq newest_received,
                                                    std::chrono::seconds timeout) {
  Impl& in = *impl_;
  std::unique_lock lock(in.mu);
  in.cv.wait_for(lock, std::chrono::seconds(5), [&] {
    return in.recorded != kNoSeq && in.recorded >= newest_received;
  });
  if (!in.connected) {
    return Status::TryAgain("the target is not connected (" + in.last_error +
                            "): bookmark not taken");
  }
  if (in.bitmap_mode || in.resyncing || in.state == "resync") {
    return Status::TryAgain("the tap is resynchronising blocks out of write order: no "
                            "consistent point to name until it is done");
  }
  in.bookmarks_done.erase(name);
  Item it;
  it.bookmark = true;
  it.name = name;
  TM_RETURN_IF_ERROR(in.Enqueue(lock, std::move(it)));
  lock.unlock();
  in.Signal();
  lock.lock();
  if (!in.cv.wait_for(lock, timeout, [&] { return in.bookmarks_done.count(name) > 0; })) {
    return Status::TryAgain("the target did not confirm bookmark " + name + " within " +
                            std::to_string(timeout.count()) + " s");
  }
  return in.bookmarks_done[name];
}

ShipStatus Shipper::status() const {
  const Impl& in = *impl_;
  std::lock_guard lock(in.mu);
  ShipStatus s;
  s.state = in.state;
  if (s.state == "protected" && (!in.spill->empty() || in.queued_bytes > in.o.max_queue_bytes / 2)) {
    s.state = "backlog";
  }
  s.spilled_bytes = in.spill->bytes();
  s.dirty_bytes = in.dirty->dirty_bytes();
  s.connected = in.connected;
  s.recorded_seq = in.recorded;
  s.acked_seq = in.acked;
  s.queued_entries = in.queue.size() + in.spill->records();
  s.queued_bytes = in.queued_bytes;
  s.newest_write_ns = in.newest_write_ns;
  const bool drained = in.queue.empty() && in.spill->empty();
  s.newest_acked_ns = drained ? in.newest_write_ns : in.newest_acked_ns;
  s.rpo_lag_seconds =
      drained ? 0.0 : static_cast<double>(in.newest_write_ns - in.newest_acked_ns) / 1e9;
  s.reconnects = in.reconnects;
  s.sent_bytes = in.sent_bytes;
  s.import_bytes = in.import_bytes;
  s.resync_bytes = in.resync_bytes;
  s.last_error = in.last_error;
  return s;
}

Status Shipper::Shutdown(std::chrono::seconds timeout) {
  Impl& in = *impl_;
  if (!in.io) return Status::Ok();
  size_t left;
  {
    std::unique_lock lock(in.mu);
    in.cv.wait_for(lock, timeout, [&] { return in.queue.empty() && in.spill->empty(); });
    left = in.queue.size() + in.spill->records();
    // Everything acknowledged: no extent needs a resend at the next start.
    if (left == 0 && in.ready) in.al->ClearAll().IgnoreError();
    in.stopping = true;
    in.cv.notify_all();
  }
  asio::post(*in.io, [&in] {
    boost::system::error_code ec;
    if (in.current) in.current->lowest_layer().close(ec);
    in.send_signal->cancel();
  });
  in.thread.join();
  in.send_signal.reset();
  in.io.reset();  // destroys what the coroutines left
  if (left > 0) {
    return Status::TryAgain(std::to_string(left) +
                            " writes were not acknowledged by the target; the activity log "
                            "keeps their extents for the next start");
  }
  return Status::Ok();
}

}  // namespace tidemark::capture
