// The shipper's connection thread: TLS, HELLO/WELCOME, the initial sync, the
// stream of queued items, acknowledgements, ping and reconnect (ship_impl.h).
#include "ship_impl.h"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "tidemark/journal/time.h"

namespace tidemark::capture {

using namespace ship_detail;  // NOLINT: this module's constants

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
// from where the target's durable progress ends, then IMPORT_DONE; the
// target acknowledges the volume's image as seq `volume` (its index in the
// group: docs/protocol.md).
asio::awaitable<Status> Shipper::Impl::Import(Stream& s, wire::FrameReader& r, uint16_t volume,
                                              uint64_t from, uint64_t done_before,
                                              uint64_t total) {
  {
    std::lock_guard lock(mu);
    state = "initial-sync";
  }
  std::string chunk;
  const ShipOptions::Volume& v = o.volumes[volume];
  const uint64_t size = v.size_bytes;
  for (uint64_t off = from - from % v.block_bytes; off < size; off += kImportChunkBytes) {
    size_t len = static_cast<size_t>(std::min<uint64_t>(kImportChunkBytes, size - off));
    chunk.resize(len);
    Status rs = members[volume].backing->Read(off, chunk.data(), len);
    if (!rs.ok()) co_return rs;
    if (std::any_of(chunk.begin(), chunk.end(), [](char c) { return c != 0; })) {
      std::string payload = wire::EncodeImport({volume, off, chunk});
      Status ws = co_await WriteFrame(s, wire::FrameType::kImport, payload);
      if (!ws.ok()) co_return ws;
    }
    {
      std::lock_guard lock(mu);
      import_bytes += len;
    }
    if (progress) progress(done_before + off + len, total);
  }
  std::string done = wire::EncodeImportDone({volume, NowNs()});
  Status ds = co_await WriteFrame(s, wire::FrameType::kImportDone, done);
  if (!ds.ok()) co_return ds;
  for (;;) {
    auto f = co_await ReadFrame(s, r);
    if (!f) co_return f.error();
    if (f.value().type != wire::FrameType::kAck) continue;
    auto seq = wire::DecodeAck(f.value().payload);
    if (!seq) co_return seq.error();
    if (seq.value() == volume) co_return Status::Ok();
  }
}

// After a tap crash: the extents the activity log had marked are read from
// the backing and queued as writes with new seqs (the tap is not serving
// yet, so nothing races them).
// They go between UNORDERED markers: the points between them are not
// offered (the target records the interval; docs/format-journal.md).

// HASH_REQUEST frames for a resync's pieces, contiguous pieces of a volume
// merged up to 16 MiB a request.
asio::awaitable<Status> Shipper::Impl::RequestHashes(Stream& s, const std::vector<DirtyRun>& runs,
                                                     Seq seq) {
  constexpr uint64_t kMaxRequestBytes = 16 << 20;
  size_t i = 0;
  while (i < runs.size()) {
    const uint16_t v = runs[i].volume;
    const uint64_t bs = o.volumes[v].block_bytes;
    const uint64_t from = runs[i].extent.offset_bytes;
    uint64_t to = runs[i].extent.end_bytes();
    for (++i; i < runs.size() && runs[i].volume == v && runs[i].extent.offset_bytes == to &&
              runs[i].extent.end_bytes() - from <= kMaxRequestBytes;
         ++i) {
      to = runs[i].extent.end_bytes();
    }
    wire::BlockHashes req{v, static_cast<uint32_t>((to - from + bs - 1) / bs), seq, from, {}};
    std::string payload = wire::EncodeBlockHashes(req);
    Status ws = co_await WriteFrame(s, wire::FrameType::kHashRequest, payload);
    if (!ws.ok()) co_return ws;
  }
  co_return Status::Ok();
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
            Status ps = PersistDirty();  // the resent blocks are durable: clear them on disk
            if (!ps.ok()) last_error = ps.message();
            if (state == "resync") state = "protected";
          }
        }
        OnAckLocked();
        break;
      }
      case wire::FrameType::kHashes: {
        auto h = wire::DecodeBlockHashes(f.value().payload, /*with_hashes=*/true);
        if (!h) co_return h.error();
        std::lock_guard lock(mu);
        if (hash_seq != kNoSeq && h.value().seq == hash_seq) {
          target_hashes[{h.value().volume, h.value().offset_bytes}] = std::move(h.value());
        }
        send_signal->cancel();  // refreshes waiting for them may go
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
  hello.group = o.group;
  for (const ShipOptions::Volume& v : o.volumes) {
    hello.volumes.push_back({v.name, v.size_bytes, v.block_bytes});
  }
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
  const auto& feats = welcome.value().features;
  const bool hashes = std::find(feats.begin(), feats.end(), wire::kFeatureBlockHashes) != feats.end();
  if (welcome.value().volumes.size() != o.volumes.size()) {
    co_return Status::Corruption("WELCOME does not list the volumes HELLO named");
  }
  uint64_t total = 0, done_before = 0;
  for (size_t v = 0; v < o.volumes.size(); ++v) {
    if (welcome.value().volumes[v].state != wire::kStateReady) total += o.volumes[v].size_bytes;
  }
  // Images in member order (the target takes them as seqs 0, 1, ...).
  for (size_t v = 0; v < o.volumes.size(); ++v) {
    const wire::VolumeState& vs = welcome.value().volumes[v];
    if (vs.state == wire::kStateReady) continue;
    // TODO(#4): the target says nothing until IMPORT_DONE, so a blackhole
    // during the initial sync is not noticed yet (PINGs between chunks).
    watch->armed = false;
    Status is = co_await Import(s, reader, static_cast<uint16_t>(v), vs.import_next_offset,
                                done_before, total);
    if (!is.ok()) co_return is;
    done_before += o.volumes[v].size_bytes;
    last_heard = std::chrono::steady_clock::now();
    watch->armed = true;
    durable = v;
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
    size_t recovered = 0;
    for (const Member& m : members) recovered += m.al->recovered().size();
    if (recovered > 0 || AnyDirty()) {
      spdlog::info("resending {} extents the activity log kept and {} KiB of dirty blocks",
                   recovered, DirtyBytes() >> 10);
      Status rs = QueueResync(durable, now);
      if (!rs.ok()) co_return rs;
    }
    std::lock_guard lock(mu);
    ready_point.last_seq = recorded != kNoSeq ? recorded : durable;
    ready_point.last_time_ns = now;
    ready = true;
    if (newest_acked_ns == 0) newest_acked_ns = now;  // RPO lag counts from here until an ack
  }
  std::vector<DirtyRun> rehash;  // a resync's pieces whose hashes a lost connection owed
  Seq rehash_seq = kNoSeq;
  {
    std::lock_guard lock(mu);
    connected = true;
    state = resyncing ? "resync" : "protected";
    sent = 0;
    hash_feature = hashes;
    if (hash_seq != kNoSeq && !hashes) {
      hash_seq = kNoSeq;  // this target does not answer: resend the pieces whole
      target_hashes.clear();
    }
    if (hash_seq != kNoSeq) {
      rehash_seq = hash_seq;
      for (const Item& it : queue) {
        if (it.refresh &&
            HashesOf(it.entry.volume, it.entry.offset_bytes, it.entry.length_bytes) == nullptr) {
          rehash.push_back({it.entry.volume, {it.entry.offset_bytes, it.entry.length_bytes}});
        }
      }
    }
  }
  OnAck(durable);
  if (!rehash.empty()) {
    Status hs = co_await RequestHashes(s, rehash, rehash_seq);
    if (!hs.ok()) co_return hs;
  }
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
    std::vector<DirtyRun> resync_runs;
    Seq hash_seq_now = kNoSeq;
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
        hash_seq_now = hash_seq;
      }
      wire::WritesEncoder enc;
      for (size_t i = sent; i < queue.size(); ++i) {
        if (queue[i].refresh) {
          // A resync reads its refreshes as it sends them: keep the bytes
          // read and not yet acknowledged within the memory queue's cap.
          if (queued_bytes >= o.max_queue_bytes) {
            refresh_wait = true;
            break;
          }
          Fill fill = FillRefresh(i);
          if (fill == Fill::kWait) {
            refresh_wait = true;  // its seq is not on the backing yet, or its hashes
            break;
          }
          if (fill == Fill::kDrop) {  // the target holds it: its seq stays a gap
            queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(i));
            --i;
            continue;
          }
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
    if (!resync_runs.empty() && hash_seq_now != kNoSeq) {
      // Ask for the target's hashes first: the refreshes wait for them.
      Status hs = co_await RequestHashes(s, resync_runs, hash_seq_now);
      if (!hs.ok()) {
        result = hs;
        // Refreshes must still get their seqs (the bitmap was taken).
        for (const DirtyRun& r : resync_runs) {
          tap->SubmitRefresh(r.volume, r.extent.offset_bytes,
                             static_cast<uint32_t>(r.extent.length_bytes));
        }
        std::lock_guard lock(mu);
        resync_submitted = true;
        break;
      }
    }
    if (!resync_runs.empty()) {
      // Refresh seqs come from the tap, in order with its writes.
      for (const DirtyRun& r : resync_runs) {
        tap->SubmitRefresh(r.volume, r.extent.offset_bytes,
                           static_cast<uint32_t>(r.extent.length_bytes));
      }
      std::lock_guard lock(mu);
      resync_submitted = true;
      if (refresh_pending == 0 && resyncing) EndResync(recorded);  // nothing was dirty
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
        // Bitmap mode outlasts connection attempts: a failed attempt must not
        // hide it (a status read between attempts said "connecting").
        state = s.code() == Code::kAborted ? "error" : bitmap_mode ? "bitmap" : "connecting";
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


}  // namespace tidemark::capture
