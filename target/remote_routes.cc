// The routes of the control API over TLS (docs/protocol.md#control-api-over-tls).
//
// Reads (volumes, points, resolve, blocks, status) use read-only journals
// (tenant_readers.h), never the tenant's ingest worker: a restore's scan of
// a whole volume must not hold up a tap's acknowledgements. Bookmarks are
// writes, ordered with the stream: they run on the ingest worker.
#include <future>

#include "block_stream.h"
#include "remote_api.h"
#include "tidemark/journal/time.h"

namespace tidemark::target {

namespace {

using nlohmann::json;

// A block stream is sent in chunks of about this size.
constexpr size_t kChunkBytes = 1 << 20;

// The same answer for a volume that does not exist and for one of another
// tenant: names never leak across tenants.
Status NoVolume(std::string_view volume) {
  return Status::NotFound("volume '" + std::string(volume) + "' not found");
}

Result<journal::VolumeInfo> Find(const journal::Journal& j, std::string_view volume) {
  for (const auto& v : j.Volumes()) {
    if (v.name == volume) return v;
  }
  return NoVolume(volume);
}

json PointJson(const journal::Point& p) {
  return {{"seq", p.seq}, {"time", FormatTime(p.time_ns)}};
}

ApiReply Ok(json body) { return {{200, std::move(body), {}, {}}, {}, {}}; }
ApiReply Error(const Status& s) { return {ErrorResponse(s), {}, {}}; }

struct SessionInfo {
  std::string tenant, volume, tap_id;
};

// The open tap sessions, read on the io thread (which owns them).
std::optional<std::vector<SessionInfo>> Sessions(TargetServer::Impl* server) {
  auto done = std::make_shared<std::promise<std::vector<SessionInfo>>>();
  auto f = done->get_future();
  asio::post(server->io, [server, done] {
    std::vector<SessionInfo> out;
    for (const auto& s : server->sessions) out.push_back({s->tenant(), s->volume(), s->tap_id()});
    done->set_value(std::move(out));
  });
  if (f.wait_for(std::chrono::seconds(2)) != std::future_status::ready) return std::nullopt;
  return f.get();
}

}  // namespace

ApiRoutes::ApiRoutes(TargetServer::Impl* server)
    : server_(server), readers_(server->config.data_dir) {}
ApiRoutes::~ApiRoutes() = default;

Status ApiRoutes::WithReader(const std::string& tenant, std::string_view volume,
                             const std::function<Status(const journal::Journal&)>& fn) {
  if (!readers_.HasJournal(tenant)) return NoVolume(volume);
  return readers_.With(tenant, fn);
}

ApiReply ApiRoutes::Handle(const ApiRequest& req) {
  const auto& seg = req.segments;
  const bool get = req.method == "GET", post = req.method == "POST";
  if (get && seg.size() == 1 && seg[0] == "metrics") return Metrics();
  if (seg.size() >= 2 && seg[0] == "v1") {
    if (get && seg.size() == 2 && seg[1] == "status") return ServerStatus(req);
    if (get && seg.size() == 2 && seg[1] == "volumes") return Volumes(req);
    if (seg.size() == 4 && seg[1] == "volumes") {
      if (get && seg[3] == "points") return Points(req, seg[2]);
      if (get && seg[3] == "blocks") return Blocks(req, seg[2]);
      if (get && seg[3] == "read") return Read(req, seg[2]);
      if (post && seg[3] == "resolve") return Resolve(req, seg[2]);
      if (post && seg[3] == "bookmarks") return Bookmark(req, seg[2]);
    }
  }
  return Error(Status::NotFound("no route " + req.method + " " + req.path));
}

ApiReply ApiRoutes::Volumes(const ApiRequest& req) {
  json list = json::array();
  Status s = WithReader(req.tenant, "", [&](const journal::Journal& j) {
    for (const auto& v : j.Volumes()) {
      list.push_back(
          {{"name", v.name}, {"size_bytes", v.size_bytes}, {"block_bytes", v.block_bytes},
           {"group", v.group.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.group)},
           {"group_index", v.import_seq}});
    }
    return Status::Ok();
  });
  if (!s.ok() && s.code() != Code::kNotFound) return Error(s);
  return Ok({{"volumes", list}});
}

ApiReply ApiRoutes::Points(const ApiRequest& req, const std::string& volume) {
  auto q = req.query.find("flushes");
  bool flushes = q != req.query.end() && q->second != "0" && q->second != "false";
  json out;
  Status s = WithReader(req.tenant, volume, [&](const journal::Journal& j) -> Status {
    BOOST_OUTCOME_TRY(vol, Find(j, volume));
    BOOST_OUTCOME_TRY(first, j.First(vol.id));
    BOOST_OUTCOME_TRY(latest, j.Latest(vol.id));
    // The contract's `points --json` object, field for field.
    out = {{"format", 1},
           {"volume", vol.name},
           {"first", PointJson(first)},
           {"latest", PointJson(latest)},
           {"bookmarks", json::array()}};
    for (const auto& b : j.Bookmarks(vol.id)) {
      json bj = PointJson(b.point);
      bj["name"] = b.name;
      bj["created"] = FormatTime(b.created_ns);
      out["bookmarks"].push_back(bj);
    }
    if (flushes) {
      BOOST_OUTCOME_TRY(fl, j.Flushes(vol.id));
      out["flushes"] = json::array();
      for (const auto& p : fl) out["flushes"].push_back(PointJson(p));
    }
    return Status::Ok();
  });
  return s.ok() ? Ok(std::move(out)) : Error(s);
}

ApiReply ApiRoutes::Resolve(const ApiRequest& req, const std::string& volume) {
  const json& b = req.body;
  journal::PointSpec spec;
  int given = 0;
  if (b.is_object()) {
    if (b.contains("at")) {
      if (!b["at"].is_string()) return Error(Status::InvalidArgument("'at' must be a string"));
      auto t = ParseTime(b["at"].get<std::string>(), NowNs());
      if (!t) return Error(t.error());
      spec.kind = journal::PointSpec::Kind::kTime;
      spec.time_ns = t.value();
      ++given;
    }
    if (b.contains("seq")) {
      if (!b["seq"].is_number_unsigned()) {
        return Error(Status::InvalidArgument("'seq' must be an integer of 0 or more"));
      }
      spec.kind = journal::PointSpec::Kind::kSeq;
      spec.seq = b["seq"].get<Seq>();
      ++given;
    }
    if (b.contains("bookmark")) {
      if (!b["bookmark"].is_string())
        return Error(Status::InvalidArgument("'bookmark' must be a string"));
      spec.kind = journal::PointSpec::Kind::kBookmark;
      spec.bookmark = b["bookmark"].get<std::string>();
      ++given;
    }
    if (b.contains("latest")) {
      if (b["latest"] != true) return Error(Status::InvalidArgument("'latest' must be true"));
      spec.kind = journal::PointSpec::Kind::kLatest;
      ++given;
    }
  }
  if (given != 1) {
    return Error(Status::InvalidArgument(
        "the body needs exactly one of {\"at\": TIME}, {\"seq\": N}, {\"bookmark\": NAME}, "
        "{\"latest\": true}"));
  }
  json out;
  Status s = WithReader(req.tenant, volume, [&](const journal::Journal& j) -> Status {
    BOOST_OUTCOME_TRY(vol, Find(j, volume));
    BOOST_OUTCOME_TRY(point, j.Resolve(vol.id, spec, NowNs()));
    out = PointJson(point);
    return Status::Ok();
  });
  return s.ok() ? Ok(std::move(out)) : Error(s);
}

ApiReply ApiRoutes::Bookmark(const ApiRequest& req, const std::string& volume) {
  const json& b = req.body;
  if (!b.is_object() || !b.contains("name") || !b["name"].is_string() ||
      b["name"].get_ref<const std::string&>().empty()) {
    return Error(Status::InvalidArgument("the body needs {\"name\": string}"));
  }
  const std::string name = b["name"].get<std::string>();
  if (!readers_.HasJournal(req.tenant)) return Error(NoVolume(volume));
  auto tj = server_->JournalFor(req.tenant);
  if (!tj) return Error(tj.error());
  // On the ingest worker: the bookmark names the newest seq received before
  // it. A refusal (unknown volume, name taken, no seq yet) must not fail
  // the round, which would fail the taps' writes in it too: it is carried
  // beside the work's status.
  struct Outcome {
    Status refused;
    journal::Bookmark bookmark;
  };
  auto outcome = std::make_shared<Outcome>();
  auto done = std::make_shared<std::promise<Status>>();
  auto f = done->get_future();
  tj.value()->Post(
      [outcome, volume, name](journal::Journal& j) -> Status {
        auto vol = Find(j, volume);
        if (!vol) {
          outcome->refused = vol.error();
          return Status::Ok();
        }
        auto added = j.AddBookmark(vol.value().id, name, NowNs());
        if (!added) {
          Code c = added.error().code();
          if (c != Code::kInvalidArgument && c != Code::kNotFound) return added.error();
          outcome->refused = added.error();
          return Status::Ok();
        }
        outcome->bookmark = added.value();
        return Status::Ok();
      },
      [done](Status s) { done->set_value(s); });
  Status s = f.get();
  if (!s.ok()) return Error(s);
  if (!outcome->refused.ok()) return Error(outcome->refused);
  json out = PointJson(outcome->bookmark.point);
  out["volume"] = volume;
  out["name"] = outcome->bookmark.name;
  return Ok(std::move(out));
}

ApiReply ApiRoutes::Blocks(const ApiRequest& req, const std::string& volume) {
  auto q = req.query.find("seq");
  Seq seq = 0;
  try {
    size_t used = 0;
    if (q == req.query.end() || q->second.empty() || q->second[0] == '-')
      throw std::invalid_argument("");
    seq = std::stoull(q->second, &used);
    if (used != q->second.size()) throw std::invalid_argument("");
  } catch (const std::exception&) {
    return Error(Status::InvalidArgument("blocks needs ?seq=N (an integer of 0 or more)"));
  }
  if (!readers_.HasJournal(req.tenant)) return Error(NoVolume(volume));
  // A reader of its own: the scan takes as long as the volume is large, and
  // must not hold the tenant's cached reader meanwhile.
  auto opened = readers_.OpenFresh(req.tenant);
  if (!opened) return Error(opened.error());
  std::shared_ptr<journal::Journal> j = std::move(opened.value());
  auto vol = Find(*j, volume);
  if (!vol) return Error(vol.error());
  journal::PointSpec spec;
  spec.kind = journal::PointSpec::Kind::kSeq;
  spec.seq = seq;
  auto point = j->Resolve(vol.value().id, spec, NowNs());
  if (!point) return Error(point.error());
  ApiReply r;
  const journal::VolumeInfo v = vol.value();
  const Seq at = point.value().seq;
  r.headers = {{"X-Tidemark-Seq", std::to_string(at)},
               {"X-Tidemark-Size-Bytes", std::to_string(v.size_bytes)},
               {"X-Tidemark-Block-Bytes", std::to_string(v.block_bytes)}};
  r.stream = [j, v, at](const std::function<bool(std::string_view)>& write) {
    BlockStreamEncoder enc(v.block_bytes);
    std::string buf;
    buf.reserve(kChunkBytes + v.block_bytes + 64);
    bool gone = false;
    Status s = j->ScanBlocks(v.id, at, [&](uint64_t block, std::string_view data) {
      enc.AppendBlock(&buf, block, data);
      if (buf.size() >= kChunkBytes) {
        if (!write(buf)) {
          gone = true;
          return Status::Aborted("the client went away");
        }
        buf.clear();
      }
      return Status::Ok();
    });
    if (gone) return;
    if (s.ok()) {
      enc.AppendEnd(&buf);
    } else {
      BlockStreamEncoder::AppendError(&buf, s);  // e.g. a damaged block, named
    }
    write(buf);
  };
  return r;
}

ApiReply ApiRoutes::ServerStatus(const ApiRequest& req) {
  json sessions = json::array();
  if (auto all = Sessions(server_)) {
    for (const auto& s : *all) {
      if (s.tenant == req.tenant && !s.volume.empty()) {
        sessions.push_back({{"volume", s.volume}, {"tap_id", s.tap_id}});
      }
    }
  }
  json volumes = json::array();
  Status s = WithReader(req.tenant, "", [&](const journal::Journal& j) {
    for (const auto& v : j.Volumes()) {
      auto latest = j.Latest(v.id);
      volumes.push_back({{"name", v.name},
                         {"latest", latest ? PointJson(latest.value()) : json(nullptr)},
                         {"latest_seq", latest ? json(latest.value().seq) : json(nullptr)}});
    }
    return Status::Ok();
  });
  if (!s.ok() && s.code() != Code::kNotFound) return Error(s);
  return Ok({{"tenant", req.tenant}, {"sessions", sessions}, {"volumes", volumes}});
}

ApiReply ApiRoutes::Metrics() {
  auto all = Sessions(server_);
  std::string text;
  auto metric = [&](const char* name, const char* type, const char* help, uint64_t v) {
    text += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
            name + " " + std::to_string(v) + "\n";
  };
  metric("tidemark_target_sessions", "gauge", "Tap sessions open now.", all ? all->size() : 0);
  metric("tidemark_target_sessions_total", "counter", "Tap sessions accepted since start.",
         server_->sessions_total);
  metric("tidemark_target_writes_total", "counter",
         "Write entries applied to journals (resends included).", server_->writes);
  metric("tidemark_target_write_bytes_total", "counter", "Data bytes of those entries.",
         server_->write_bytes);
  metric("tidemark_target_rejected_total", "counter",
         "Connections refused (authentication, conflicts, bad frames, TLS).", server_->rejected);
  ApiReply r;
  r.response.text = std::move(text);
  r.response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  return r;
}

}  // namespace tidemark::target
