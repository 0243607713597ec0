#include "cli.h"

#include <cstdio>

#include "tidemark/journal/time.h"

namespace tidemark::tools {

int Fail(const Status& status, bool json) {
  std::string msg = status.message();
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';  // one line, always
  }
  std::fprintf(stderr, "tidemark: %s\n", msg.c_str());
  if (json) {
    nlohmann::json j = {{"error", {{"code", Status::CodeId(status.code())}, {"message", msg}}}};
    std::printf("%s\n", j.dump().c_str());
  }
  return status.code() == Code::kInvalidArgument ? kExitUsage : kExitFailed;
}

Result<std::unique_ptr<journal::Journal>> OpenJournal(const std::string& dir, bool write,
                                                      bool create, Codec codec) {
  journal::OpenOptions o;
  o.read_only = !write;
  o.create_if_missing = create;
  o.codec = codec;
  return journal::Journal::Open(dir, o);
}

void PointArgs::Add(CLI::App* cmd) {
  cmd->add_option("--at", at, "the newest point at or before TIME (RFC 3339 or -15m)");
  cmd->add_option("--seq", seq, "the point at seq N");
  cmd->add_option("--bookmark", bookmark, "the point a bookmark names");
  cmd->add_flag("--latest", latest, "the newest point");
}

Result<journal::PointSpec> PointArgs::Spec(TimeNs now_ns) const {
  int n = !at.empty() + seq.has_value() + !bookmark.empty() + latest;
  if (n != 1) {
    return Status::InvalidArgument("give exactly one of --at, --seq, --bookmark, --latest");
  }
  journal::PointSpec spec;
  if (latest) {
    spec.kind = journal::PointSpec::Kind::kLatest;
  } else if (seq) {
    if (*seq < 0) return Status::InvalidArgument("--seq must be 0 or more");
    spec.kind = journal::PointSpec::Kind::kSeq;
    spec.seq = static_cast<Seq>(*seq);
  } else if (!bookmark.empty()) {
    spec.kind = journal::PointSpec::Kind::kBookmark;
    spec.bookmark = bookmark;
  } else {
    BOOST_OUTCOME_TRY(t, ParseTime(at, now_ns));
    spec.kind = journal::PointSpec::Kind::kTime;
    spec.time_ns = t;
  }
  return spec;
}

nlohmann::json PointJson(const journal::Point& p) {
  return {{"seq", p.seq}, {"time", FormatTime(p.time_ns)}};
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace tidemark::tools
