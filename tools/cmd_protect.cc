// tidemark protect --volume PATH --journal DIR --listen unix:SOCK|HOST:PORT [--name NAME]
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
  std::string volume;
  std::string journal_dir;
  std::string listen;
  std::string name;
  uint32_t block_bytes = 4096;
  bool block_given = false;
};

capture::nbd::Server* g_server = nullptr;
void OnSignal(int) {
  if (g_server) g_server->StopFromSignal();
}

target::ControlResponse Handle(const target::ControlRequest& req, const std::string& name,
                               target::EmbeddedTarget& embedded, capture::Tap& tap,
                               const std::string& listen) {
  const std::string bookmarks = "/v1/volumes/" + name + "/bookmarks";
  if (req.method == "POST" && req.target == bookmarks) {
    if (!req.body.is_object() || !req.body.contains("name") || !req.body["name"].is_string()) {
      return target::ErrorResponse(Status::InvalidArgument("body needs {\"name\": string}"));
    }
    auto b = embedded.AddBookmark(req.body["name"].get<std::string>(), tap.last_seq());
    if (!b) return target::ErrorResponse(b.error());
    nlohmann::json out = PointJson(b.value().point);
    out["volume"] = name;
    out["name"] = b.value().name;
    return {200, out, {}, {}};
  }
  if (req.method == "GET" && req.target == "/v1/status") {
    auto latest = embedded.Latest();
    nlohmann::json v = {{"name", name}, {"listen", listen},
                        {"state", tap.failure().ok() ? "protected" : "error"},
                        {"last_seq", tap.last_seq()}};
    if (latest) v["latest"] = PointJson(latest.value());
    if (!tap.failure().ok()) v["error"] = tap.failure().message();
    return {200, {{"volumes", nlohmann::json::array({v})}}, {}, {}};
  }
  if (req.target.rfind("/v1/volumes/", 0) == 0) {
    return target::ErrorResponse(Status::NotFound("this daemon protects only volume " + name));
  }
  return target::ErrorResponse(Status::NotFound("no route " + req.method + " " + req.target));
}

int RunProtect(const ProtectArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(backing, capture::Backing::Open(a.volume));
    std::string name = a.name.empty() ? std::filesystem::path(a.volume).filename().string()
                                      : a.name;
    BOOST_OUTCOME_TRY(lock, DaemonLock::Acquire(a.journal_dir));
    auto device = std::make_shared<DeferredDevice>(backing->size_bytes());
    capture::nbd::ServerOptions sopts;
    sopts.listen = a.listen;
    sopts.exports.push_back({name, "tidemark protected volume", device});
    BOOST_OUTCOME_TRY(server, capture::nbd::Server::Start(sopts));
    // Destroyed before `server`: releases readers waiting in the device, so
    // that stopping the server on an error path cannot hang.
    struct AbortOnExit {
      DeferredDevice* device;
      ~AbortOnExit() { device->Abort(); }
    } abort_on_exit{device.get()};
    BOOST_OUTCOME_TRY(j, OpenJournal(a.journal_dir, /*write=*/true, /*create=*/true));
    if (auto existing = j->FindVolume(name);
        existing && a.block_given && existing.value().block_bytes != a.block_bytes) {
      return Status::InvalidArgument("volume " + name + " has " +
                                     std::to_string(existing.value().block_bytes) +
                                     "-byte blocks in the journal, not " +
                                     std::to_string(a.block_bytes));
    }
    uint64_t replayed = 0;
    BOOST_OUTCOME_TRY(vol, target::PrepareVolume(*j, name, *backing, a.block_bytes, &replayed));
    backing->DropCache();  // the import read it all: see Backing::DropCache
    BOOST_OUTCOME_TRY(latest, j->Latest(vol.id));
    target::EmbeddedTarget embedded(j.get(), vol.id);
    capture::TapOptions topts;
    topts.last_seq = latest.seq;
    topts.last_time_ns = latest.time_ns;
    BOOST_OUTCOME_TRY(tap, capture::Tap::Create(std::move(backing), &embedded, topts));
    device->Set(tap);
    std::string control_path = a.journal_dir + "/control.sock";
    auto handler = [&](const target::ControlRequest& r) {
      return Handle(r, name, embedded, *tap, server->address());
    };
    BOOST_OUTCOME_TRY(control, target::ControlServer::Start(control_path, handler));
    TM_RETURN_IF_ERROR(lock->Publish({{"pid", getpid()},
                                      {"control", std::filesystem::absolute(control_path)},
                                      {"listen", server->address()},
                                      {"volume", name},
                                      {"path", std::filesystem::absolute(a.volume)}}));
    g_server = server.get();
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    if (replayed) {
      std::fprintf(stderr, "tidemark: replayed %s of the journal's tail onto %s\n",
                   HumanBytes(replayed).c_str(), a.volume.c_str());
    }
    std::printf("protecting %s (%s, %s) at %s; journal %s from seq %llu\n", name.c_str(),
                a.volume.c_str(), HumanBytes(vol.size_bytes).c_str(), server->address().c_str(),
                a.journal_dir.c_str(), static_cast<unsigned long long>(latest.seq));
    std::fflush(stdout);
    server->Wait();
    server->Stop();
    g_server = nullptr;
    control->Stop();
    Status s = tap->Shutdown();
    std::printf("stopped %s at seq %llu\n", name.c_str(),
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
  cmd->add_option("--volume", a->volume, "file or block device to protect")->required();
  cmd->add_option("--journal", a->journal_dir, "journal directory (created if missing)")
      ->required();
  cmd->add_option("--listen", a->listen, "unix:SOCKET or HOST:PORT for NBD clients")->required();
  cmd->add_option("--name", a->name, "volume name (default: the volume's file name)");
  cmd->add_option("--block-size", a->block_bytes,
                  "journal block size of a new volume (an existing one must match)")
      ->capture_default_str()
      ->each([a](const std::string&) { a->block_given = true; });
  cmd->callback([a, exit_code] { *exit_code = RunProtect(*a); });
}

}  // namespace tidemark::tools
