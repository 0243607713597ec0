// tidemark tap --volume PATH --target HOST:PORT --tenant T --token-file F --name NAME
//              [--volume PATH --name NAME ... --group G]
//              --listen unix:SOCK|HOST:PORT --ca FILE [--state DIR] [--sync]
// The remote tap: NBD in front of the volume, writes shipped to a target.
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "cli.h"
#include "daemon.h"
#include "deferred_device.h"
#include "tidemark/capture/nbd.h"
#include "tidemark/capture/ship.h"
#include "tidemark/capture/tap.h"
#include "tidemark/target/control.h"

namespace tidemark::tools {

namespace {

namespace fs = std::filesystem;

struct TapArgs {
  VolumeArgs volumes;
  std::string target, tenant, token_file, listen, ca, state_dir;
  uint32_t block_bytes = 4096;
  unsigned connect_timeout_s = 60;
  uint64_t max_queue_mib = 256, max_spill_mib = 4096;
  uint64_t bandwidth_limit = 0;
  bool no_compress = false;
  bool sync = false;
};

capture::nbd::Server* g_server = nullptr;
void OnSignal(int) {
  if (g_server) g_server->StopFromSignal();
}

Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read token file " + path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) return Status::InvalidArgument("token file " + path + " is empty");
  return token;
}

// A random id kept in the state directory: the target lets the same tap
// take its volume over after a reconnect.
Result<std::string> TapId(const std::string& state_dir) {
  std::string path = state_dir + "/tap-id";
  std::ifstream in(path);
  std::string id;
  if (in && std::getline(in, id) && !id.empty()) return id;
  std::random_device rd;
  char buf[33];
  for (int i = 0; i < 32; ++i) buf[i] = "0123456789abcdef"[rd() % 16];
  buf[32] = 0;
  id = buf;
  std::ofstream out(path, std::ios::trunc);
  out << id << "\n";
  if (!out) return Status::IOError("cannot write " + path);
  return id;
}

std::string DefaultStateDir(const std::string& name) {
  if (geteuid() == 0) return "/var/lib/tidemark/tap/" + name;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.local/state/tidemark/tap/" + name;
}

nlohmann::json StatusJson(const capture::ShipStatus& s, const std::string& name,
                          const std::string& group, const std::string& listen,
                          const capture::Tap& tap) {
  auto seq = [](Seq v) { return v == kNoSeq ? nlohmann::json(nullptr) : nlohmann::json(v); };
  std::string state = tap.failure().ok() ? s.state : "error";
  nlohmann::json v = {{"name", name}, {"listen", listen}, {"state", state},
                      {"connected", s.connected}, {"last_seq", tap.last_seq()},
                      {"recorded_seq", seq(s.recorded_seq)}, {"acked_seq", seq(s.acked_seq)},
                      {"queued_writes", s.queued_entries}, {"queued_bytes", s.queued_bytes},
                      {"spilled_bytes", s.spilled_bytes}, {"dirty_bytes", s.dirty_bytes},
                      {"rpo_lag_seconds", s.rpo_lag_seconds}, {"reconnects", s.reconnects},
                      {"sent_bytes", s.sent_bytes}, {"import_bytes", s.import_bytes},
                      {"resync_bytes", s.resync_bytes},
                      {"resync_skipped_bytes", s.resync_skipped_bytes}};
  if (!group.empty()) v["group"] = group;  // the figures are the group's
  if (!s.last_error.empty()) v["last_error"] = s.last_error;
  if (!tap.failure().ok()) v["error"] = tap.failure().message();
  return v;
}

int RunTap(TapArgs a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(names, VolumeNames(a.volumes, /*names_required=*/true));
    const std::string& group = a.volumes.group;
    BOOST_OUTCOME_TRY(token, ReadToken(a.token_file));
    std::vector<std::unique_ptr<capture::Backing>> backings;
    std::vector<const capture::Backing*> raw;
    for (const std::string& path : a.volumes.paths) {
      BOOST_OUTCOME_TRY(backing, capture::Backing::Open(path));
      raw.push_back(backing.get());
      backings.push_back(std::move(backing));
    }
    if (a.state_dir.empty()) a.state_dir = DefaultStateDir(group.empty() ? names[0] : group);
    // Readiness as `protect` (docs/design.md#readiness): the NBD socket
    // appears only once the target took the volumes and daemon.json is there.
    BOOST_OUTCOME_TRY(lock, DaemonLock::Acquire(a.state_dir));
    BOOST_OUTCOME_TRY(tap_id, TapId(a.state_dir));
    capture::nbd::ServerOptions sopts;
    sopts.listen = a.listen;
    sopts.defer_listen = true;
    std::vector<std::shared_ptr<DeferredDevice>> devices;
    for (size_t i = 0; i < backings.size(); ++i) {
      devices.push_back(std::make_shared<DeferredDevice>(backings[i]->size_bytes(), i));
      sopts.exports.push_back({names[i], "tidemark protected volume (remote)", devices.back()});
    }
    BOOST_OUTCOME_TRY(server, capture::nbd::Server::Start(sopts));
    struct AbortOnExit {
      std::vector<std::shared_ptr<DeferredDevice>>* devices;
      ~AbortOnExit() {
        for (auto& d : *devices) d->Abort();
      }
    } abort_on_exit{&devices};

    capture::ShipOptions so;
    so.target = a.target;
    so.ca_file = a.ca;
    so.tenant = a.tenant;
    so.token = token;
    so.tap_id = tap_id;
    for (size_t i = 0; i < backings.size(); ++i) {
      so.volumes.push_back({names[i], backings[i]->size_bytes(), a.block_bytes});
    }
    so.group = group;
    so.state_dir = a.state_dir;
    so.sync = a.sync;
    so.max_queue_bytes = a.max_queue_mib << 20;
    so.max_spill_bytes = a.max_spill_mib << 20;
    so.bandwidth_bytes_per_s = a.bandwidth_limit;
    so.compress = !a.no_compress;
    BOOST_OUTCOME_TRY(shipper, capture::Shipper::Start(so, raw));
    uint64_t last_report = 0;
    auto progress = [&](uint64_t done, uint64_t total) {
      if (done - last_report < (256u << 20) && done != total) return;
      last_report = done;
      std::fprintf(stderr, "tidemark: initial sync %s of %s\n", HumanBytes(done).c_str(),
                   HumanBytes(total).c_str());
    };
    auto ready = shipper->WaitReady(std::chrono::seconds(a.connect_timeout_s), progress);
    if (!ready) {
      shipper->Shutdown(std::chrono::seconds(0)).IgnoreError();
      return ready.error();
    }
    for (auto& b : backings) b->DropCache();
    capture::TapOptions topts;
    topts.last_seq = ready.value().last_seq;
    topts.last_time_ns = ready.value().last_time_ns;
    BOOST_OUTCOME_TRY(tap, capture::Tap::Create(std::move(backings), shipper.get(), topts));
    shipper->SetTap(tap.get());
    for (auto& d : devices) d->Set(tap);
    std::string control_path = a.state_dir + "/control.sock";
    auto handler = [&](const target::ControlRequest& r) -> target::ControlResponse {
      for (const std::string& name : names) {
        // A member's bookmark is its group's: one seq of every volume.
        if (r.method != "POST" || r.target != "/v1/volumes/" + name + "/bookmarks") continue;
        if (!r.body.is_object() || !r.body.contains("name") || !r.body["name"].is_string()) {
          return target::ErrorResponse(Status::InvalidArgument("body needs {\"name\": string}"));
        }
        auto b = shipper->AddBookmark(r.body["name"].get<std::string>(), tap->last_seq());
        if (!b) return target::ErrorResponse(b.error());
        nlohmann::json out = PointJson({b.value().seq, b.value().time_ns});
        out["volume"] = name;
        if (!group.empty()) out["group"] = group;
        out["name"] = b.value().name;
        return {200, out, {}, {}};
      }
      if (r.method == "GET" && r.target == "/v1/status") {
        nlohmann::json vols = nlohmann::json::array();
        const capture::ShipStatus st = shipper->status();
        for (const std::string& name : names) {
          vols.push_back(StatusJson(st, name, group, server->address(), *tap));
        }
        return {200, {{"volumes", vols}}, {}, {}};
      }
      return target::ErrorResponse(Status::NotFound("no route " + r.method + " " + r.target));
    };
    BOOST_OUTCOME_TRY(control, target::ControlServer::Start(control_path, handler));
    nlohmann::json paths = nlohmann::json::array();
    for (const std::string& p : a.volumes.paths) paths.push_back(fs::absolute(p));
    nlohmann::json record = {{"pid", getpid()},         {"control", fs::absolute(control_path)},
                             {"listen", server->address()}, {"volume", names[0]},
                             {"volumes", names},        {"target", a.target},
                             {"path", paths[0]},        {"paths", paths}};
    if (!group.empty()) record["group"] = group;
    TM_RETURN_IF_ERROR(lock->Publish(record));
    g_server = server.get();
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    TM_RETURN_IF_ERROR(server->Ready());
    for (size_t i = 0; i < names.size(); ++i) {
      std::printf("tapping %s (%s)%s at %s; shipping to %s as tenant %s from seq %llu\n",
                  names[i].c_str(), a.volumes.paths[i].c_str(),
                  group.empty() ? "" : (" in group " + group).c_str(), server->address().c_str(),
                  a.target.c_str(), a.tenant.c_str(), static_cast<unsigned long long>(topts.last_seq));
    }
    std::fflush(stdout);
    NotifyReady("tapping " + (group.empty() ? names[0] : group) + " at " + server->address() +
                ", shipping to " + a.target);
    server->Wait();
    NotifyStopping();
    server->Stop();
    g_server = nullptr;
    control->Stop();
    Status s = tap->Shutdown();
    Status drained = shipper->Shutdown(std::chrono::seconds(30));
    std::printf("stopped %s at seq %llu\n", group.empty() ? names[0].c_str() : group.c_str(),
                static_cast<unsigned long long>(tap->last_seq()));
    return s.ok() ? drained : s;
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, false);
}

}  // namespace

void AddTapCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<TapArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tap", "serve a volume over NBD and ship every write to a remote target");
  cmd->add_option("--volume", a->volumes.paths,
                  "file or block device to protect (repeat with --group for a consistency "
                  "group)")
      ->required();
  cmd->add_option("--target", a->target, "HOST:PORT of `tidemark target serve`")->required();
  cmd->add_option("--tenant", a->tenant, "tenant name on the target")->required();
  cmd->add_option("--token-file", a->token_file, "file holding the tenant's token")->required();
  cmd->add_option("--name", a->volumes.names, "volume name on the target; one per --volume")
      ->required();
  cmd->add_option("--group", a->volumes.group,
                  "consistency group of the volumes: one seq space, group bookmarks and restores");
  cmd->add_option("--listen", a->listen, "unix:SOCKET or HOST:PORT for NBD clients")->required();
  cmd->add_option("--ca", a->ca, "the target's CA certificate (ca.crt from `target init`)")
      ->required();
  cmd->add_option("--state", a->state_dir,
                  "state directory: activity log, control socket (default "
                  "/var/lib/tidemark/tap/NAME, or ~/.local/state/... when not root)");
  cmd->add_option("--block-size", a->block_bytes, "journal block size of a new volume")
      ->capture_default_str();
  cmd->add_option("--connect-timeout", a->connect_timeout_s,
                  "seconds to wait for the target at start")
      ->capture_default_str();
  cmd->add_option("--max-queue-mib", a->max_queue_mib,
                  "unacknowledged writes kept in memory before they spill to disk")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-spill-mib", a->max_spill_mib,
                  "unacknowledged writes kept in STATE/spill (disk)")
      ->capture_default_str();
  cmd->add_option("--bandwidth-limit", a->bandwidth_limit,
                  "bytes per second sent to the target (suffixes K, M, G: powers of 1024); "
                  "0: no limit")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_flag("--no-compress", a->no_compress, "send frames uncompressed (default: zstd when it helps)");
  cmd->add_flag("--sync", a->sync,
                "FLUSH and FUA wait until the target made the write durable (RPO 0)");
  cmd->callback([a, exit_code] { *exit_code = RunTap(*a); });
}

}  // namespace tidemark::tools
