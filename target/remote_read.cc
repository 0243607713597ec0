// GET /v1/volumes/NAME/read?seq=S&block=B&count=C[&data=0]: random access to
// the blocks of a point, for virtual snapshots mounted from a target
// (`tidemark mount --target`). See docs/protocol.md#block-read.
//
// The answer is small and not streamed: at most kMaxReadBytes of blocks.
// Reads use the tenant's cached read-only journal as it is when it already
// holds S (a point's bytes never change, so it needs no catching up for
// them): a random 4 KiB read costs no directory scan or catch-up.
#include "block_read.h"
#include "remote_api.h"
#include "tidemark/journal/time.h"

namespace tidemark::target {

namespace {

// As remote_routes.cc: the same answer for another tenant's volume.
Status NoVolume(std::string_view volume) {
  return Status::NotFound("volume '" + std::string(volume) + "' not found");
}

ApiReply Error(const Status& s) { return {ErrorResponse(s), {}, {}}; }

// ?name=N: an integer of 0 or more.
Result<uint64_t> QueryU64(const ApiRequest& req, const char* name) {
  auto q = req.query.find(name);
  if (q == req.query.end() || q->second.empty() ||
      q->second.find_first_not_of("0123456789") != std::string::npos || q->second.size() > 19) {
    return Status::InvalidArgument(
        "read needs ?seq=S&block=B&count=C (integers of 0 or more); bad or missing '" +
        std::string(name) + "'");
  }
  return std::stoull(q->second);
}

}  // namespace

ApiReply ApiRoutes::Read(const ApiRequest& req, const std::string& volume) {
  auto seq = QueryU64(req, "seq");
  auto block = QueryU64(req, "block");
  auto count = QueryU64(req, "count");
  for (const auto* r : {&seq, &block, &count}) {
    if (!*r) return Error(r->error());
  }
  auto d = req.query.find("data");
  const bool with_data = d == req.query.end() || (d->second != "0" && d->second != "false");
  if (!readers_.HasJournal(req.tenant)) return Error(NoVolume(volume));

  std::string body;
  auto current = [&](const journal::Journal& j) {
    for (const auto& v : j.Volumes()) {
      if (v.name != volume) continue;
      auto latest = j.Latest(v.id);
      return latest && latest.value().seq >= seq.value();
    }
    return false;
  };
  Status s = readers_.WithCurrent(req.tenant, current, [&](const journal::Journal& j) -> Status {
    journal::VolumeInfo vol;
    bool found = false;
    for (const auto& v : j.Volumes()) {
      if (v.name == volume) {
        vol = v;
        found = true;
      }
    }
    if (!found) return NoVolume(volume);
    const uint64_t max = with_data ? kMaxReadBytes / vol.block_bytes : kMaxReadStates;
    if (count.value() == 0 || count.value() > max) {
      return Status::InvalidArgument("count must be 1 to " + std::to_string(max));
    }
    journal::PointSpec spec;
    spec.kind = journal::PointSpec::Kind::kSeq;
    spec.seq = seq.value();
    BOOST_OUTCOME_TRY(point, j.Resolve(vol.id, spec, NowNs()));
    (void)point;  // refuses a seq that is not a point (out of range, unordered)
    const auto n = static_cast<uint32_t>(count.value());
    std::vector<journal::BlockState> states(n);
    std::string data;
    if (with_data) data.resize(static_cast<size_t>(n) * vol.block_bytes);
    TM_RETURN_IF_ERROR(j.ReadBlocks(vol.id, block.value(), n, seq.value(),
                                    with_data ? data.data() : nullptr, states.data()));
    body = EncodeBlockRead(vol.block_bytes, n, states.data(), with_data ? data.data() : nullptr);
    return Status::Ok();
  });
  if (!s.ok()) return Error(s);
  ApiReply r;
  r.response.text = std::move(body);
  r.response.content_type = "application/octet-stream";
  r.headers = {{"X-Tidemark-Seq", std::to_string(seq.value())}};
  return r;
}

}  // namespace tidemark::target
