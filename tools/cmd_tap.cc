// tidemark tap --volume PATH --target HOST:PORT --tenant T --token-file F --name NAME
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
  std::string volume, target, tenant, token_file, name, listen, ca, state_dir;
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
                          const std::string& listen, const capture::Tap& tap) {
  auto seq = [](Seq v) { return v == kNoSeq ? nlohmann::json(nullptr) : nlohmann::json(v); };
  std::string state = tap.failure().ok() ? s.state : "error";
  nlohmann::json v = {{"name", name}, {"listen", listen}, {"state", state},
                      {"connected", s.connected}, {"last_seq", tap.last_seq()},
                      {"recorded_seq", seq(s.recorded_seq)}, {"acked_seq", seq(s.acked_seq)},
                      {"queued_writes", s.queued_entries}, {"queued_bytes", s.queued_bytes},
                      {"spilled_bytes", s.spilled_bytes}, {"dirty_bytes", s.dirty_bytes},
                      {"rpo_lag_seconds", s.rpo_lag_seconds}, {"reconnects", s.reconnects},
                      {"sent_bytes", s.sent_bytes}, {"import_bytes", s.import_bytes},
                      {"resync_bytes", s.resync_bytes}};
  if (!s.last_error.empty()) v["last_error"] = s.last_error;
  if (!tap.failure().ok()) v["error"] = tap.failure().message();
  return v;
}

int RunTap(TapArgs a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(token, ReadToken(a.token_file));
    BOOST_OUTCOME_TRY(backing, capture::Backing::Open(a.volume));
    if (a.state_dir.empty()) a.state_dir = DefaultStateDir(a.name);
    BOOST_OUTCOME_TRY(lock, DaemonLock::Acquire(a.state_dir));
    BOOST_OUTCOME_TRY(tap_id, TapId(a.state_dir));
    auto device = std::make_shared<DeferredDevice>(backing->size_bytes());
    capture::nbd::ServerOptions sopts;
    sopts.listen = a.listen;
    sopts.exports.push_back({a.name, "tidemark protected volume (remote)", device});
    BOOST_OUTCOME_TRY(server, capture::nbd::Server::Start(sopts));
    struct AbortOnExit {
      DeferredDevice* device;
      ~AbortOnExit() { device->Abort(); }
    } abort_on_exit{device.get()};

    capture::ShipOptions so;
    so.target = a.target;
    so.ca_file = a.ca;
    so.tenant = a.tenant;
    so.token = token;
    so.tap_id = tap_id;
    so.volume_name = a.name;
    so.size_bytes = backing->size_bytes();
    so.block_bytes = a.block_bytes;
    so.state_dir = a.state_dir;
    so.sync = a.sync;
    so.max_queue_bytes = a.max_queue_mib << 20;
    so.max_spill_bytes = a.max_spill_mib << 20;
    so.bandwidth_bytes_per_s = a.bandwidth_limit;
    so.compress = !a.no_compress;
    BOOST_OUTCOME_TRY(shipper, capture::Shipper::Start(so, backing.get()));
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
    backing->DropCache();
    capture::TapOptions topts;
    topts.last_seq = ready.value().last_seq;
    topts.last_time_ns = ready.value().last_time_ns;
    BOOST_OUTCOME_TRY(tap, capture::Tap::Create(std::move(backing), shipper.get(), topts));
    shipper->SetTap(tap.get());
    device->Set(tap);
    std::string control_path = a.state_dir + "/control.sock";
    auto handler = [&](const target::ControlRequest& r) -> target::ControlResponse {
      if (r.method == "POST" && r.target == "/v1/volumes/" + a.name + "/bookmarks") {
        if (!r.body.is_object() || !r.body.contains("name") || !r.body["name"].is_string()) {
          return target::ErrorResponse(Status::InvalidArgument("body needs {\"name\": string}"));
        }
        auto b = shipper->AddBookmark(r.body["name"].get<std::string>(), tap->last_seq());
        if (!b) return target::ErrorResponse(b.error());
        nlohmann::json out = PointJson({b.value().seq, b.value().time_ns});
        out["volume"] = a.name;
        out["name"] = b.value().name;
        return {200, out, {}, {}};
      }
      if (r.method == "GET" && r.target == "/v1/status") {
        return {200,
                {{"volumes", nlohmann::json::array(
                                 {StatusJson(shipper->status(), a.name, server->address(), *tap)})}},
                {},
                {}};
      }
      return target::ErrorResponse(Status::NotFound("no route " + r.method + " " + r.target));
    };
    BOOST_OUTCOME_TRY(control, target::ControlServer::Start(control_path, handler));
    TM_RETURN_IF_ERROR(lock->Publish({{"pid", getpid()},
                                      {"control", fs::absolute(control_path)},
                                      {"listen", server->address()},
                                      {"volume", a.name},
                                      {"target", a.target},
                                      {"path", fs::absolute(a.volume)}}));
    g_server = server.get();
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::printf("tapping %s (%s) at %s; shipping to %s as tenant %s from seq %llu\n",
                a.name.c_str(), a.volume.c_str(), server->address().c_str(), a.target.c_str(),
                a.tenant.c_str(), static_cast<unsigned long long>(topts.last_seq));
    std::fflush(stdout);
    server->Wait();
    server->Stop();
    g_server = nullptr;
    control->Stop();
    Status s = tap->Shutdown();
    Status drained = shipper->Shutdown(std::chrono::seconds(30));
    std::printf("stopped %s at seq %llu\n", a.name.c_str(),
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
  cmd->add_option("--volume", a->volume, "file or block device to protect")->required();
  cmd->add_option("--target", a->target, "HOST:PORT of `tidemark target serve`")->required();
  cmd->add_option("--tenant", a->tenant, "tenant name on the target")->required();
  cmd->add_option("--token-file", a->token_file, "file holding the tenant's token")->required();
  cmd->add_option("--name", a->name, "volume name on the target")->required();
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
