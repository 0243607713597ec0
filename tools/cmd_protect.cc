// tidemark protect --volume PATH --journal DIR --listen unix:SOCK|HOST:PORT [--name NAME]
//                  [--volume PATH --name NAME ... --group G]
// The embedded daemon: NBD tap + local journal in one process.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli.h"
#include "daemon.h"
#include "deferred_device.h"
#include "tidemark/capture/nbd.h"
#include "tidemark/capture/tap.h"
#include "tidemark/target/control.h"
#include "tidemark/target/embedded.h"

namespace tidemark::tools {

namespace {

struct ProtectArgs {
  VolumeArgs volumes;
  std::string journal_dir;
  std::string listen;
  uint32_t block_bytes = 4096;
  bool block_given = false;
};

capture::nbd::Server* g_server = nullptr;
void OnSignal(int) {
  if (g_server) g_server->StopFromSignal();
}

target::ControlResponse Handle(const target::ControlRequest& req,
                               const std::vector<std::string>& names, const std::string& group,
                               target::EmbeddedTarget& embedded, capture::Tap& tap,
                               const std::string& listen) {
  for (const std::string& name : names) {
    // A member's bookmark is its group's: one seq of every volume.
    if (req.method == "POST" && req.target == "/v1/volumes/" + name + "/bookmarks") {
      if (!req.body.is_object() || !req.body.contains("name") || !req.body["name"].is_string()) {
        return target::ErrorResponse(Status::InvalidArgument("body needs {\"name\": string}"));
      }
      auto b = embedded.AddBookmark(req.body["name"].get<std::string>(), tap.last_seq());
      if (!b) return target::ErrorResponse(b.error());
      nlohmann::json out = PointJson(b.value().point);
      out["volume"] = name;
      if (!group.empty()) out["group"] = group;
      out["name"] = b.value().name;
      return {200, out, {}, {}};
    }
  }
  if (req.method == "GET" && req.target == "/v1/status") {
    auto latest = embedded.Latest();
    nlohmann::json vols = nlohmann::json::array();
    for (const std::string& name : names) {
      nlohmann::json v = {{"name", name}, {"listen", listen},
                          {"state", tap.failure().ok() ? "protected" : "error"},
                          {"last_seq", tap.last_seq()}};
      if (!group.empty()) v["group"] = group;
      if (latest) v["latest"] = PointJson(latest.value());
      if (!tap.failure().ok()) v["error"] = tap.failure().message();
      vols.push_back(v);
    }
    return {200, {{"volumes", vols}}, {}, {}};
  }
  if (req.target.rfind("/v1/volumes/", 0) == 0) {
    std::string all;
    for (const std::string& n : names) all += (all.empty() ? "" : ", ") + n;
    return target::ErrorResponse(Status::NotFound("this daemon protects only " + all));
  }
  return target::ErrorResponse(Status::NotFound("no route " + req.method + " " + req.target));
}

int RunProtect(const ProtectArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(names, VolumeNames(a.volumes, /*names_required=*/false));
    std::vector<std::unique_ptr<capture::Backing>> backings;
    for (const std::string& path : a.volumes.paths) {
      BOOST_OUTCOME_TRY(backing, capture::Backing::Open(path));
      backings.push_back(std::move(backing));
    }
    // Readiness (docs/design.md#readiness): the lock and a "starting"
    // record first, then the NBD address is bound (a bad --listen fails
    // before the import), and clients get the socket only once the journal,
    // the tap, the control socket and daemon.json are all there.
    BOOST_OUTCOME_TRY(lock, DaemonLock::Acquire(a.journal_dir));
    capture::nbd::ServerOptions sopts;
    sopts.listen = a.listen;
    sopts.defer_listen = true;
    std::vector<std::shared_ptr<DeferredDevice>> devices;
    for (size_t i = 0; i < backings.size(); ++i) {
      devices.push_back(std::make_shared<DeferredDevice>(backings[i]->size_bytes(), i));
      sopts.exports.push_back({names[i], "tidemark protected volume", devices.back()});
    }
    BOOST_OUTCOME_TRY(server, capture::nbd::Server::Start(sopts));
    // Destroyed before `server`: releases readers waiting in the devices,
    // so that stopping the server on an error path cannot hang.
    struct AbortOnExit {
      std::vector<std::shared_ptr<DeferredDevice>>* devices;
      ~AbortOnExit() {
        for (auto& d : *devices) d->Abort();
      }
    } abort_on_exit{&devices};
    journal::OpenOptions jo;
    jo.create_if_missing = true;
    BOOST_OUTCOME_TRY(j, journal::Journal::Open(a.journal_dir, jo));  // we hold its lock
    for (const std::string& name : names) {
      if (auto existing = j->FindVolume(name);
          existing && a.block_given && existing.value().block_bytes != a.block_bytes) {
        return Status::InvalidArgument("volume " + name + " has " +
                                       std::to_string(existing.value().block_bytes) +
                                       "-byte blocks in the journal, not " +
                                       std::to_string(a.block_bytes));
      }
    }
    uint64_t replayed = 0;
    std::vector<journal::VolumeInfo> vols;
    if (a.volumes.group.empty()) {
      BOOST_OUTCOME_TRY(vol, target::PrepareVolume(*j, names[0], *backings[0], a.block_bytes,
                                                   &replayed));
      vols.push_back(vol);
    } else {
      std::vector<capture::Backing*> raw;
      for (auto& b : backings) raw.push_back(b.get());
      BOOST_OUTCOME_TRY(group, target::PrepareGroup(*j, a.volumes.group, names, raw,
                                                    a.block_bytes, &replayed));
      vols = group;
    }
    for (auto& b : backings) b->DropCache();  // the import read it all: see Backing::DropCache
    BOOST_OUTCOME_TRY(latest, j->Latest(vols[0].id));
    std::vector<uint32_t> ids;
    for (const auto& v : vols) ids.push_back(v.id);
    target::EmbeddedTarget embedded(j.get(), ids);
    capture::TapOptions topts;
    topts.last_seq = latest.seq;
    topts.last_time_ns = latest.time_ns;
    // Power loss: the backing is never ahead of the journal (docs/format-journal.md#power-loss).
    for (const auto& v : vols) {
      topts.activity_logs.push_back(a.journal_dir + "/activity/volume-" + std::to_string(v.id) +
                                    ".al");
    }
    BOOST_OUTCOME_TRY(tap, capture::Tap::Create(std::move(backings), &embedded, topts));
    if (tap->reverted_bytes()) {
      std::fprintf(stderr,
                   "tidemark: power-loss activity log: %s of the volumes set back to the "
                   "journal's latest\n",
                   HumanBytes(tap->reverted_bytes()).c_str());
    }
    for (auto& d : devices) d->Set(tap);
    std::string control_path = a.journal_dir + "/control.sock";
    auto handler = [&](const target::ControlRequest& r) {
      return Handle(r, names, a.volumes.group, embedded, *tap, server->address());
    };
    BOOST_OUTCOME_TRY(control, target::ControlServer::Start(control_path, handler));
    nlohmann::json paths = nlohmann::json::array();
    for (const std::string& p : a.volumes.paths) paths.push_back(std::filesystem::absolute(p));
    nlohmann::json record = {{"pid", getpid()},
                             {"control", std::filesystem::absolute(control_path)},
                             {"listen", server->address()},
                             {"volume", names[0]},
                             {"volumes", names},
                             {"path", paths[0]},
                             {"paths", paths}};
    if (!a.volumes.group.empty()) record["group"] = a.volumes.group;
    TM_RETURN_IF_ERROR(lock->Publish(record));
    g_server = server.get();
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    TM_RETURN_IF_ERROR(server->Ready());
    if (replayed) {
      std::fprintf(stderr, "tidemark: replayed %s of the journal's tail onto the volumes\n",
                   HumanBytes(replayed).c_str());
    }
    for (size_t i = 0; i < vols.size(); ++i) {
      std::printf("protecting %s (%s, %s)%s at %s; journal %s from seq %llu\n", names[i].c_str(),
                  a.volumes.paths[i].c_str(), HumanBytes(vols[i].size_bytes).c_str(),
                  a.volumes.group.empty() ? "" : (" in group " + a.volumes.group).c_str(),
                  server->address().c_str(), a.journal_dir.c_str(),
                  static_cast<unsigned long long>(latest.seq));
    }
    std::fflush(stdout);
    NotifyReady("protecting " + (a.volumes.group.empty() ? names[0] : a.volumes.group) + " at " +
                server->address());
    server->Wait();
    NotifyStopping();
    server->Stop();
    g_server = nullptr;
    control->Stop();
    Status s = tap->Shutdown();
    std::printf("stopped %s at seq %llu\n",
                a.volumes.group.empty() ? names[0].c_str() : a.volumes.group.c_str(),
                static_cast<unsigned long long>(tap->last_seq()));
    return s;
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, false);
}

}  // namespace

void AddProtectCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<ProtectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "protect", "serve a volume over NBD and record every write in a local journal");
  cmd->add_option("--volume", a->volumes.paths,
                  "file or block device to protect (repeat with --group for a consistency "
                  "group)")
      ->required();
  cmd->add_option("--journal", a->journal_dir, "journal directory (created if missing)")
      ->required();
  cmd->add_option("--listen", a->listen, "unix:SOCKET or HOST:PORT for NBD clients")->required();
  cmd->add_option("--name", a->volumes.names,
                  "volume name (default: the volume's file name); one per --volume");
  cmd->add_option("--group", a->volumes.group,
                  "consistency group of the volumes: one seq space, group bookmarks and restores");
  cmd->add_option("--block-size", a->block_bytes,
                  "journal block size of a new volume (an existing one must match)")
      ->capture_default_str()
      ->each([a](const std::string&) { a->block_given = true; });
  cmd->callback([a, exit_code] { *exit_code = RunProtect(*a); });
}

}  // namespace tidemark::tools
