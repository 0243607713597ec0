#include "cli.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "daemon.h"
#include "tidemark/journal/time.h"
#include "tidemark/recovery/drill.h"

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
  switch (status.code()) {
    case Code::kInvalidArgument: return kExitUsage;
    case Code::kTryAgain: return kExitBusy;
    default: return kExitFailed;
  }
}

namespace {
double g_wait_s = 60;  // --wait of the command that runs (one per process)
}  // namespace

void AddWaitOption(CLI::App* cmd) {
  cmd->add_option("--wait", g_wait_s,
                  "seconds to wait for a daemon that is starting on the directory; then exit 4")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
}

std::chrono::milliseconds DaemonWait() {
  return std::chrono::milliseconds(static_cast<int64_t>(g_wait_s * 1000));
}

Result<std::unique_ptr<journal::Journal>> OpenJournal(const std::string& dir,
                                                      const journal::OpenOptions& o) {
  // A starting daemon is creating or importing the journal: wait for it,
  // rather than read a half-made journal or collide with its lock.
  BOOST_OUTCOME_TRY(daemon, ReadyDaemon(dir, DaemonWait()));
  (void)daemon;
  return journal::Journal::Open(dir, o);
}

Result<std::unique_ptr<journal::Journal>> OpenJournal(const std::string& dir, bool write,
                                                      bool create, Codec codec) {
  journal::OpenOptions o;
  o.read_only = !write;
  o.create_if_missing = create;
  o.codec = codec;
  return OpenJournal(dir, o);
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

void RemoteArgs::Add(CLI::App* cmd) {
  cmd->add_option("--target", target, "HOST:PORT of a target (instead of --journal)");
  cmd->add_option("--tenant", tenant, "with --target: the tenant to act as");
  cmd->add_option("--token-file", token_file, "with --target: file holding the tenant's token");
  cmd->add_option("--ca", ca, "with --target: the target's CA certificate (its ca.crt)");
}

Status RemoteArgs::Check(const std::string& journal_dir) const {
  if (journal_dir.empty() == target.empty()) {
    return Status::InvalidArgument("give exactly one of --journal DIR and --target HOST:PORT");
  }
  if (journal_dir.empty()) {
    if (tenant.empty() || token_file.empty() || ca.empty()) {
      return Status::InvalidArgument("--target needs --tenant, --token-file and --ca");
    }
  } else if (!tenant.empty() || !token_file.empty() || !ca.empty()) {
    return Status::InvalidArgument("--tenant, --token-file and --ca go with --target only");
  }
  return Status::Ok();
}

Result<std::unique_ptr<target::RemoteClient>> RemoteArgs::Client() const {
  std::ifstream in(token_file);
  std::string token;
  if (!in || !std::getline(in, token)) {
    return Status::InvalidArgument("cannot read token file " + token_file);
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) return Status::InvalidArgument("token file " + token_file + " is empty");
  target::RemoteOptions o;
  o.target = target;
  o.tenant = tenant;
  o.token = token;
  o.ca_file = ca;
  return target::RemoteClient::Create(o);
}

void DrillDirArgs::Add(CLI::App* cmd) {
  cmd->add_option("--journal", journal_dir, "journal directory (drill records in DIR/drills)");
  remote.Add(cmd);
  cmd->add_option("--state", state_dir,
                  "with --target: directory of the drill records, in DIR/drills (e.g. the "
                  "tap's state directory)");
}

Result<recovery::DrillStore> DrillDirArgs::Open(bool mounting) const {
  if (mounting) TM_RETURN_IF_ERROR(remote.Check(journal_dir));
  if (!journal_dir.empty() && !state_dir.empty()) {
    return Status::InvalidArgument(
        "--state goes with --target (with --journal DIR the drill records are in DIR/drills)");
  }
  if (journal_dir.empty() && state_dir.empty()) {
    return Status::InvalidArgument(remote.given()
                                       ? "--target needs --state DIR: the drill records live in "
                                         "DIR/drills"
                                       : "give --journal DIR or --state DIR");
  }
  std::error_code ec;
  if (!state_dir.empty() && mounting) std::filesystem::create_directories(state_dir, ec);
  const std::string& base = journal_dir.empty() ? state_dir : journal_dir;
  if (mounting && !std::filesystem::is_directory(base)) {
    return Status::NotFound("no directory " + base);
  }
  return recovery::DrillStore::Open(base + "/" + std::string(recovery::kDrillSubdir), mounting);
}

std::string DrillDirArgs::Option() const {
  return journal_dir.empty() ? "--state " + state_dir : "--journal " + journal_dir;
}

std::string AbsPath(const std::string& path) {
  return std::filesystem::absolute(path).lexically_normal().string();
}

Result<journal::Point> RemoteResolve(target::RemoteClient& client, const std::string& volume,
                                     const journal::PointSpec& spec) {
  nlohmann::json body;
  switch (spec.kind) {
    case journal::PointSpec::Kind::kLatest: body = {{"latest", true}}; break;
    case journal::PointSpec::Kind::kSeq: body = {{"seq", spec.seq}}; break;
    case journal::PointSpec::Kind::kBookmark: body = {{"bookmark", spec.bookmark}}; break;
    case journal::PointSpec::Kind::kTime: body = {{"at", FormatTime(spec.time_ns)}}; break;
  }
  BOOST_OUTCOME_TRY(p, client.Call("POST", target::RemoteClient::VolumePath(volume, "resolve"),
                                   body));
  if (!p.is_object() || !p.contains("seq") || !p["seq"].is_number_unsigned() ||
      !p.contains("time") || !p["time"].is_string()) {
    return Status::IOError("the target's resolve answer is not a point: " + p.dump());
  }
  journal::Point point;
  point.seq = p["seq"].get<Seq>();
  BOOST_OUTCOME_TRY(t, ParseTime(p["time"].get<std::string>(), NowNs()));
  point.time_ns = t;
  return point;
}

nlohmann::json PointJson(const journal::Point& p) {
  return {{"seq", p.seq}, {"time", FormatTime(p.time_ns)}};
}

nlohmann::json LastDrillJson(const std::string& base_dir, const std::string& volume) {
  auto store = recovery::DrillStore::Open(base_dir + "/" + std::string(recovery::kDrillSubdir),
                                          /*create=*/false);
  if (!store) return {{"error", store.error().message()}};
  auto last = store.value().Last(volume);
  if (!last) return {{"error", last.error().message()}};
  if (!last.value()) return nullptr;
  nlohmann::json d = recovery::DrillJson(*last.value()), out;
  for (const char* k : {"name", "started", "stopped", "point", "state", "result", "reason"}) {
    out[k] = d[k];
  }
  return out;
}

std::string LastDrillText(const nlohmann::json& d) {
  if (d.is_null()) return "none";
  if (d.contains("error")) return "unknown (" + d["error"].get<std::string>() + ")";
  std::string s = d["name"].get<std::string>();
  if (!d["point"].is_null()) s += " at seq " + d["point"]["seq"].dump();
  s += " started " + d["started"].get<std::string>() + " (" + d["state"].get<std::string>() +
       "): " + d["result"].get<std::string>();
  std::string reason = d["reason"].get<std::string>();
  return reason.empty() ? s : s + " (" + reason + ")";
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
