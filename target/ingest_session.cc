// One tap's session on the target: TLS, HELLO, then its frames in order
// (docs/protocol.md). Every frame that changes the journal runs on the
// tenant journal's worker in arrival order; ACKs go out once it is durable.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include "server_impl.h"

// g++ 12: Asio's coroutine frame allocator trips -Wmismatched-new-delete (a
// false positive). Its coroutines also mishandle temporaries with
// destructors in a co_await operand (destroyed twice: seen as a double
// free), so every such operand is a named local here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#include "tidemark/journal/time.h"

namespace tidemark::target {

namespace {

constexpr auto kHelloTimeout = std::chrono::seconds(10);

Status CheckGeometry(const journal::VolumeInfo& vol, const wire::VolumeSpec& spec) {
  if (vol.size_bytes == spec.size_bytes && vol.block_bytes == spec.block_bytes) {
    return Status::Ok();
  }
  return Status::InvalidArgument(
      "volume " + spec.name + " is " + std::to_string(vol.size_bytes) + " bytes with " +
      std::to_string(vol.block_bytes) + "-byte blocks on the target, but the tap has " +
      std::to_string(spec.size_bytes) + " and " + std::to_string(spec.block_bytes));
}

// The journal's volumes for a HELLO: its one volume, or its group's, created
// when new. A group must have exactly the HELLO's volumes in its order; a
// volume of a group is shipped only with its group.
Result<std::vector<journal::VolumeInfo>> ResolveVolumes(journal::Journal& j,
                                                       const std::string& group,
                                                       const std::vector<wire::VolumeSpec>& specs) {
  if (group.empty()) {
    const wire::VolumeSpec& spec = specs[0];
    auto found = j.FindVolume(spec.name);
    if (!found) {
      if (found.error().code() != Code::kNotFound) return found.error();
      BOOST_OUTCOME_TRY(created, j.CreateVolume(spec.name, spec.size_bytes, spec.block_bytes));
      return std::vector<journal::VolumeInfo>{created};
    }
    if (!found.value().group.empty()) {
      return Status::InvalidArgument("volume " + spec.name + " belongs to group " +
                                     found.value().group + ": ship it with its group (--group)");
    }
    TM_RETURN_IF_ERROR(CheckGeometry(found.value(), spec));
    return std::vector<journal::VolumeInfo>{found.value()};
  }
  auto found = j.FindGroup(group);
  if (!found) {
    if (found.error().code() != Code::kNotFound) return found.error();
    std::vector<journal::VolumeSpec> create;
    for (const wire::VolumeSpec& spec : specs) {
      if (j.FindVolume(spec.name)) {
        return Status::InvalidArgument("volume " + spec.name +
                                       " is already on the target: a new group takes new volumes");
      }
      create.push_back({spec.name, spec.size_bytes, spec.block_bytes});
    }
    BOOST_OUTCOME_TRY(created, j.CreateGroup(group, create));
    return created.volumes;
  }
  const auto& vols = found.value().volumes;
  std::string have, want;
  for (const auto& v : vols) have += (have.empty() ? "" : ",") + v.name;
  for (const auto& v : specs) want += (want.empty() ? "" : ",") + v.name;
  if (have != want) {
    return Status::InvalidArgument("group " + group + " has volumes " + have + " on the target, not " +
                                   want + " (the same volumes, in the same order)");
  }
  for (size_t i = 0; i < vols.size(); ++i) TM_RETURN_IF_ERROR(CheckGeometry(vols[i], specs[i]));
  return vols;
}

std::string_view ErrorCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kNoSpace: return wire::kErrNoSpace;
    case Code::kInvalidArgument:
    case Code::kCorruption: return wire::kErrInvalid;
    case Code::kNotFound: return wire::kErrInvalid;
    default: return wire::kErrInternal;
  }
}

}  // namespace

void Session::Start() {
  auto self = shared_from_this();
  hello_timer_.expires_after(kHelloTimeout);
  hello_timer_.async_wait([self](boost::system::error_code ec) {
    if (!ec && self->tenant_.empty()) self->Close();  // no HELLO in time
  });
  asio::co_spawn(server_->io, [self]() -> asio::awaitable<void> { co_await self->Run(); },
                 asio::detached);
}

void Session::Close() {
  if (closed_) return;
  closed_ = closing_ = true;
  boost::system::error_code ec;
  stream_.lowest_layer().shutdown(tcp::socket::shutdown_both, ec);
  stream_.lowest_layer().close(ec);
  hello_timer_.cancel();
  inflight_signal_.cancel();
  Wake();
}

void Session::Send(wire::FrameType type, std::string_view payload) {
  if (closing_) return;
  wire::AppendFrame(&out_, type, payload, false);
  Wake();
}

void Session::SendError(std::string_view code, const std::string& message) {
  if (closing_) return;
  if (!tenant_.empty()) {
    spdlog::warn("tenant {} volume {}: {}: {}", tenant_, volume_name_, code, message);
  }
  wire::AppendFrame(&out_, wire::FrameType::kError,
                    wire::EncodeError({std::string(code), message}), false);
  closing_ = true;  // the writer sends out_, then closes
  ++server_->rejected;
  Wake();
}

void Session::SendError(const Status& s) { SendError(ErrorCodeFor(s), s.message()); }

asio::awaitable<void> Session::WriteLoop() {
  auto self = shared_from_this();
  for (;;) {
    if (out_.empty()) {
      if (closing_) break;
      boost::system::error_code ec;
      out_signal_.expires_at(asio::steady_timer::time_point::max());
      co_await out_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    std::string buf;
    buf.swap(out_);
    boost::system::error_code ec;
    co_await asio::async_write(stream_, asio::buffer(buf),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  writer_done_ = true;
  Close();
}

asio::awaitable<Result<wire::Frame>> Session::ReadFrame() {
  for (;;) {
    auto next = reader_.Next();
    if (!next) co_return next.error();
    if (next.value()) co_return std::move(*next.value());
    boost::system::error_code ec;
    size_t n = co_await stream_.async_read_some(asio::buffer(read_buf_),
                                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return Status::Aborted("connection closed: " + ec.message());
    reader_.Feed(std::string_view(read_buf_.data(), n));
  }
}

asio::awaitable<Status> Session::Call(TenantJournal::Work work) {
  struct State {
    explicit State(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    Status status;
    bool done = false;
  };
  auto st = std::make_shared<State>(server_->io);
  journal_->Post(std::move(work), [st, io = &server_->io](Status s) {
    asio::post(*io, [st, s] {
      st->status = s;
      st->done = true;
      st->timer.cancel();
    });
  });
  while (!st->done) {
    boost::system::error_code ec;
    st->timer.expires_at(asio::steady_timer::time_point::max());
    co_await st->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return st->status;
}

asio::awaitable<Status> Session::OnHello(const wire::Frame& frame) {
  if (frame.type != wire::FrameType::kHello) {
    co_return Status::InvalidArgument("expected HELLO, got " +
                                      std::string(wire::FrameTypeName(frame.type)));
  }
  auto hello = wire::DecodeHello(frame.payload);
  if (!hello) co_return hello.error();
  const wire::Hello& h = hello.value();
  if (h.protocol != wire::kProtocolVersion) {
    SendError(wire::kErrUnsupportedVersion,
              "protocol " + std::to_string(h.protocol) + " is not supported (this target speaks " +
                  std::to_string(wire::kProtocolVersion) + ")");
    co_return Status::Ok();
  }
  if (!server_->Authenticate(h.tenant, h.token)) {
    SendError(wire::kErrUnauthenticated, "tenant '" + h.tenant + "' or its token was not accepted");
    co_return Status::Ok();
  }
  if (h.volumes.empty() || (h.group.empty() && h.volumes.size() != 1)) {
    SendError(wire::kErrInvalid, "a session carries one volume, or a group (HELLO's group) of "
                                 "one or more");
    co_return Status::Ok();
  }
  tenant_ = h.tenant;
  tap_id_ = h.tap_id;
  hello_timer_.cancel();
  const wire::VolumeSpec spec = h.volumes[0];
  const std::vector<wire::VolumeSpec> specs = h.volumes;
  const std::string group = h.group;
  // '/' is in no volume name: a group's claim cannot collide with one.
  const std::string claim = group.empty() ? spec.name : "group/" + group;
  const std::string what = group.empty() ? "volume " + spec.name : "group " + group;
  auto tj = server_->JournalFor(tenant_);
  if (!tj) co_return tj.error();
  journal_ = tj.value();
  // One session per volume; the same tap reconnecting takes over from its
  // old connection (which may not have noticed a network cut yet).
  for (int i = 0; !journal_->Claim(claim, this); ++i) {
    auto owner = server_->SessionOf(tenant_, claim);
    if (!owner || owner->tap_id() != tap_id_ || tap_id_.empty() || i >= 100) {
      SendError(wire::kErrConflict, what + " is being ingested by another tap");
      co_return Status::Ok();
    }
    owner->Close();
    asio::steady_timer t(server_->io, std::chrono::milliseconds(50));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  claimed_ = true;
  volume_name_ = claim;

  auto welcome = std::make_shared<wire::Welcome>();
  auto vol_ids = std::make_shared<std::vector<uint32_t>>();
  TenantJournal::Work work = [specs, group, welcome, vol_ids](journal::Journal& j) -> Status {
    BOOST_OUTCOME_TRY(vols, ResolveVolumes(j, group, specs));
    for (const journal::VolumeInfo& vol : vols) {
      vol_ids->push_back(vol.id);
      wire::VolumeState state{vol.name, std::string(wire::kStateReady), 0};
      BOOST_OUTCOME_TRY(last, j.LastSeq(vol.id));
      if (last == kNoSeq || last < vol.import_seq) {  // its image is not a seq yet
        BOOST_OUTCOME_TRY(end, j.StagedImportEnd(vol.id));
        state.state = end == 0 ? wire::kStateNew : wire::kStateImporting;
        state.import_next_offset = end;
      }
      welcome->volumes.push_back(state);
    }
    BOOST_OUTCOME_TRY(durable, j.Sync(vols[0].id));
    welcome->durable_seq = durable;
    return Status::Ok();
  };
  Status s = co_await Call(std::move(work));
  if (!s.ok()) {
    SendError(s);
    co_return Status::Ok();
  }
  volume_ids_ = *vol_ids;
  volume_id_ = volume_ids_[0];
  welcome->features = {std::string(wire::kFeatureBlockHashes)};
  acked_ = welcome->durable_seq;
  Send(wire::FrameType::kWelcome, wire::EncodeWelcome(*welcome));
  spdlog::info("tenant {} volume {}: tap {} connected (durable seq {})", tenant_, volume_name_,
               tap_id_, acked_ == kNoSeq ? std::string("none") : std::to_string(acked_));
  co_return Status::Ok();
}

Status Session::OnWrites(wire::Frame& frame) {
  auto payload = std::make_shared<std::string>(std::move(frame.payload));
  auto decoded = wire::DecodeWrites(*payload);
  if (!decoded) return decoded.error();
  auto entries = std::make_shared<std::vector<wire::WriteEntry>>(std::move(decoded.value()));
  Seq newest = kNoSeq;
  uint64_t data_bytes = 0;
  for (const auto& e : *entries) {
    if (e.volume >= volume_ids_.size()) {
      return Status::InvalidArgument("WRITES entry for volume index " + std::to_string(e.volume) +
                                     " (HELLO named " + std::to_string(volume_ids_.size()) + ")");
    }
    newest = newest == kNoSeq ? e.seq : std::max(newest, e.seq);
    data_bytes += e.data.size();
  }
  const uint64_t cost = payload->size();
  inflight_bytes_ += cost;
  auto ids = std::make_shared<std::vector<uint32_t>>(volume_ids_);
  auto self = shared_from_this();
  TargetServer::Impl* server = server_;
  journal_->Post(
      [payload, entries, ids, server, data_bytes](journal::Journal& j) -> Status {
        const uint32_t vol = (*ids)[0];
        BOOST_OUTCOME_TRY(last, j.LastSeq(vol));
        if (last == kNoSeq || last + 1 < ids->size()) {
          return Status::InvalidArgument("the volume has no seq 0 yet: finish the initial sync");
        }
        for (const auto& e : *entries) {
          if (e.op == wire::EntryOp::kFlush) {
            TM_RETURN_IF_ERROR(j.MarkFlush(vol, e.seq, e.time_ns, kSeqFlush));
          } else {
            TM_RETURN_IF_ERROR(j.Apply((*ids)[e.volume], wire::ToWriteOp(e)));
          }
        }
        server->writes += entries->size();
        server->write_bytes += data_bytes;
        return Status::Ok();
      },
      [self, cost, newest, io = &server_->io](Status s) {
        asio::post(*io, [self, cost, newest, s] {
          self->inflight_bytes_ -= cost;
          self->inflight_signal_.cancel();
          if (!self->failed_.ok()) return;
          if (!s.ok()) {
            self->failed_ = s;
            self->SendError(s);
            return;
          }
          // Every batch is answered, even one that adds nothing newer (a
          // FLUSH marker of an acknowledged seq): the tap drops what an ACK
          // covers.
          if (newest != kNoSeq && (self->acked_ == kNoSeq || newest > self->acked_)) {
            self->acked_ = newest;
          }
          if (self->acked_ != kNoSeq) {
            self->Send(wire::FrameType::kAck, wire::EncodeAck(self->acked_));
          }
        });
      });
  return Status::Ok();
}

Status Session::OnImport(wire::Frame& frame) {
  auto payload = std::make_shared<std::string>(std::move(frame.payload));
  auto chunk = wire::DecodeImport(*payload);
  if (!chunk) return chunk.error();
  if (chunk.value().volume >= volume_ids_.size()) {
    return Status::InvalidArgument("IMPORT for an unknown volume");
  }
  const uint64_t cost = payload->size();
  inflight_bytes_ += cost;
  uint32_t vol = volume_ids_[chunk.value().volume];
  wire::ImportChunk c = chunk.value();
  auto self = shared_from_this();
  journal_->Post(
      [payload, c, vol](journal::Journal& j) { return j.StageImport(vol, c.offset_bytes, c.data); },
      [self, cost, io = &server_->io](Status s) {
        asio::post(*io, [self, cost, s] {
          self->inflight_bytes_ -= cost;
          self->inflight_signal_.cancel();
          if (!s.ok() && self->failed_.ok()) {
            self->failed_ = s;
            self->SendError(s);
          }
        });
      });
  return Status::Ok();
}

asio::awaitable<Status> Session::OnImportDone(const wire::Frame& frame) {
  auto done = wire::DecodeImportDone(frame.payload);
  if (!done) co_return done.error();
  if (done.value().volume >= volume_ids_.size()) {
    co_return Status::InvalidArgument("IMPORT_DONE for an unknown volume");
  }
  uint32_t vol = volume_ids_[done.value().volume];
  TimeNs t = done.value().time_ns;
  auto seq = std::make_shared<Seq>(0);
  TenantJournal::Work work = [vol, t, seq](journal::Journal& j) -> Status {
    auto seq0 = j.FinishStagedImport(vol, t);
    if (seq0) *seq = seq0.value();
    return seq0 ? Status::Ok() : seq0.error();
  };
  Status s = co_await Call(std::move(work));
  if (!s.ok()) co_return s;
  acked_ = *seq;
  Send(wire::FrameType::kAck, wire::EncodeAck(acked_));
  spdlog::info("tenant {} {}: initial sync of volume {} complete (seq {})", tenant_, volume_name_,
               done.value().volume, acked_);
  co_return Status::Ok();
}

// An interval the tap resends out of order (its resync): recorded in order
// with the writes, so that no point inside it is offered.
Status Session::OnUnordered(const wire::Frame& frame) {
  auto u = wire::DecodeUnordered(frame.payload);
  if (!u) return u.error();
  uint32_t vol = volume_id_;
  wire::Unordered m = u.value();
  auto self = shared_from_this();
  journal_->Post(
      [vol, m](journal::Journal& j) {
        return m.begin ? j.BeginUnordered(vol, m.seq, m.time_ns) : j.EndUnordered(vol, m.seq);
      },
      [self, echo = std::string(frame.payload), io = &server_->io](Status s) {
        asio::post(*io, [self, echo, s] {
          if (!s.ok()) {
            if (self->failed_.ok()) {
              self->failed_ = s;
              self->SendError(s);
            }
            return;
          }
          // The same UNORDERED back: the marker is durable (the tap drops it).
          self->Send(wire::FrameType::kUnordered, echo);
        });
      });
  return Status::Ok();
}

// The hashes of blocks at a seq, for a tap's resync to skip the blocks the
// target already holds (docs/protocol.md, HASH_REQUEST). Read-only: runs on
// the worker only because the journal is used by one thread at a time.
Status Session::OnHashRequest(const wire::Frame& frame) {
  auto req = wire::DecodeBlockHashes(frame.payload, /*with_hashes=*/false);
  if (!req) return req.error();
  if (req.value().volume >= volume_ids_.size()) {
    return Status::InvalidArgument("HASH_REQUEST for an unknown volume");
  }
  uint32_t vol = volume_ids_[req.value().volume];
  auto out = std::make_shared<wire::BlockHashes>(req.value());
  auto self = shared_from_this();
  journal_->Post(
      [vol, out](journal::Journal& j) -> Status {
        journal::VolumeInfo info;
        for (const auto& v : j.Volumes()) {
          if (v.id == vol) info = v;
        }
        if (info.id != vol) return Status::NotFound("no volume " + std::to_string(vol));
        const uint64_t bs = info.block_bytes;
        if (out->offset_bytes % bs != 0 || out->offset_bytes / bs + out->count > info.blocks()) {
          return Status::InvalidArgument("HASH_REQUEST range past the volume or not block-aligned");
        }
        BOOST_OUTCOME_TRY(last, j.LastSeq(vol));
        if (last == kNoSeq || out->seq > last) {
          return Status::InvalidArgument("HASH_REQUEST at seq " + std::to_string(out->seq) +
                                         ", after the newest seq");
        }
        std::string block(bs, '\0');
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        out->hashes.clear();
        out->hashes.reserve(out->count * wire::kBlockHashBytes);
        for (uint64_t b = 0; b < out->count; ++b) {
          TM_RETURN_IF_ERROR(j.ReadBlock(vol, out->offset_bytes / bs + b, out->seq, block.data()));
          EVP_Digest(block.data(), block.size(), md, &md_len, EVP_sha256(), nullptr);
          out->hashes.append(reinterpret_cast<const char*>(md), wire::kBlockHashBytes);
        }
        return Status::Ok();
      },
      [self, out, io = &server_->io](Status s) {
        asio::post(*io, [self, out, s] {
          if (!s.ok()) {
            if (self->failed_.ok()) {
              self->failed_ = s;
              self->SendError(s);
            }
            return;
          }
          self->Send(wire::FrameType::kHashes, wire::EncodeBlockHashes(*out));
        });
      });
  return Status::Ok();
}

Status Session::OnBookmark(const wire::Frame& frame) {
  auto bm = wire::DecodeBookmark(frame.payload);
  if (!bm) return bm.error();
  auto result = std::make_shared<journal::Bookmark>();
  uint32_t vol = volume_id_;
  wire::Bookmark b = bm.value();
  auto self = shared_from_this();
  journal_->Post(
      [vol, b, result](journal::Journal& j) -> Status {
        // A bookmark the tap sends again after a reconnect names the point
        // it already named; a failure here would fail the whole round.
        for (const journal::Bookmark& have : j.Bookmarks(vol)) {
          if (have.name == b.name) {
            *result = have;
            return Status::Ok();
          }
        }
        BOOST_OUTCOME_TRY(added, j.AddBookmark(vol, b.name, b.time_ns));
        *result = added;
        return Status::Ok();
      },
      [self, result, io = &server_->io](Status s) {
        asio::post(*io, [self, result, s] {
          if (!s.ok()) {
            if (self->failed_.ok()) self->SendError(s);
            return;
          }
          self->Send(wire::FrameType::kBookmarkDone,
                     wire::EncodeBookmarkDone(
                         {result->name, result->point.seq, result->point.time_ns}));
        });
      });
  return Status::Ok();
}

asio::awaitable<void> Session::Run() {
  auto self = shared_from_this();
  boost::system::error_code ec;
  co_await stream_.async_handshake(ssl::stream_base::server,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    writer_started_ = true;
    asio::co_spawn(server_->io, WriteLoop(), asio::detached);
    Status s;
    auto first = co_await ReadFrame();
    if (first) {
      s = co_await OnHello(first.value());
    } else {
      s = first.error();
    }
    if (!s.ok()) SendError(s);
    while (!closing_) {
      // Backpressure: stop reading while too much waits for the journal.
      while (inflight_bytes_ > server_->config.max_inflight_bytes && !closing_) {
        inflight_signal_.expires_at(asio::steady_timer::time_point::max());
        co_await inflight_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      auto frame = co_await ReadFrame();
      if (!frame) {
        if (frame.error().code() != Code::kAborted) SendError(frame.error());
        break;
      }
      wire::Frame& f = frame.value();
      switch (f.type) {
        case wire::FrameType::kWrites: s = OnWrites(f); break;
        case wire::FrameType::kImport: s = OnImport(f); break;
        case wire::FrameType::kImportDone: s = co_await OnImportDone(f); break;
        case wire::FrameType::kBookmark: s = OnBookmark(f); break;
        case wire::FrameType::kUnordered: s = OnUnordered(f); break;
        case wire::FrameType::kHashRequest: s = OnHashRequest(f); break;
        case wire::FrameType::kPing: Send(wire::FrameType::kPong, {}); s = Status::Ok(); break;
        case wire::FrameType::kPong: s = Status::Ok(); break;
        default:
          s = Status::InvalidArgument("unexpected " + std::string(wire::FrameTypeName(f.type)) +
                                      " frame");
      }
      if (!s.ok()) SendError(s);
    }
  } else {
    ++server_->rejected;
  }
  // Wait for journal calls still running: their replies need this object.
  while (inflight_bytes_ > 0) {
    inflight_signal_.expires_at(asio::steady_timer::time_point::max());
    co_await inflight_signal_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  // Let the writer flush what is queued (an ERROR); it closes the socket.
  closing_ = true;
  Wake();
  for (int i = 0; i < 200 && writer_started_ && !writer_done_; ++i) {
    asio::steady_timer t(server_->io, std::chrono::milliseconds(10));
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  Close();
  if (claimed_) journal_->Release(volume_name_, this);
  if (!tenant_.empty()) spdlog::info("tenant {} volume {}: tap {} disconnected", tenant_, volume_name_, tap_id_);
  server_->sessions.erase(self);
}

}  // namespace tidemark::target
