// tidemark status [--journal DIR]... [--state DIR]... [--config target.toml]
//                 [--target HOST:PORT --tenant T --token-file F --ca FILE] [--json]
// What the daemons on this machine are doing: each `protect` (by journal
// directory), each `tap` (by state directory; default: every directory under
// /var/lib/tidemark/tap or ~/.local/state/tidemark/tap) and a target (by its
// config): state, seqs, queue and RPO lag, read from their control sockets,
// and each volume's last drill (recorded in DIR/drills).
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "daemon.h"
#include "tidemark/target/config.h"
#include "tidemark/target/control.h"

namespace tidemark::tools {

namespace {

namespace fs = std::filesystem;

struct StatusArgs {
  std::vector<std::string> journals, states;
  std::string config;
  RemoteArgs remote;  // a target's control API, as one of its tenants
  bool json = false;
};

std::vector<std::string> DefaultStateDirs() {
  std::string root = geteuid() == 0 ? "/var/lib/tidemark/tap"
                                    : std::string(std::getenv("HOME") ? std::getenv("HOME") : ".") +
                                          "/.local/state/tidemark/tap";
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (e.is_directory()) dirs.push_back(e.path().string());
  }
  return dirs;
}

// One daemon's volumes, each tagged with where it came from; a daemon that
// is not running (or does not answer) is one entry with its state.
void Collect(const std::string& dir, const char* kind, nlohmann::json* volumes) {
  auto record = RunningDaemon(dir);
  if (!record) {
    volumes->push_back({{"daemon", kind}, {"dir", dir}, {"state", "stopped"}});
    return;
  }
  if (record->value("state", "") != "ready") {  // importing, syncing: not serving yet
    volumes->push_back({{"daemon", kind}, {"dir", dir}, {"state", "starting"},
                        {"pid", record->value("pid", 0)}});
    return;
  }
  std::string control = record->value("control", "");
  auto body = control.empty() ? Result<nlohmann::json>(Status::NotFound("no control socket"))
                              : target::ControlCall(control, "GET", "/v1/status", nullptr,
                                                    std::chrono::seconds(5));
  if (!body || !body.value().contains("volumes")) {
    volumes->push_back({{"daemon", kind}, {"dir", dir}, {"pid", record->value("pid", 0)},
                        {"state", "unknown"},
                        {"error", body ? std::string("bad answer") : body.error().message()}});
    return;
  }
  for (nlohmann::json v : body.value()["volumes"]) {
    v["daemon"] = kind;
    v["dir"] = dir;
    v["pid"] = record->value("pid", 0);
    if (v.contains("name")) v["last_drill"] = LastDrillJson(dir, v["name"].get<std::string>());
    volumes->push_back(v);
  }
}

int RunStatus(StatusArgs a) {
  auto run = [&]() -> Status {
    if (a.remote.given()) {
      TM_RETURN_IF_ERROR(a.remote.Check(""));
    } else if (!a.remote.tenant.empty() || !a.remote.token_file.empty() || !a.remote.ca.empty()) {
      return Status::InvalidArgument("--tenant, --token-file and --ca go with --target only");
    }
    if (a.journals.empty() && a.states.empty() && a.config.empty() && !a.remote.given()) {
      a.states = DefaultStateDirs();
    }
    nlohmann::json volumes = nlohmann::json::array(), targets = nlohmann::json::array();
    for (const auto& d : a.journals) Collect(d, "protect", &volumes);
    for (const auto& d : a.states) Collect(d, "tap", &volumes);
    if (!a.config.empty()) {
      BOOST_OUTCOME_TRY(config, target::LoadTargetConfig(a.config));
      auto record = RunningDaemon(config.data_dir);
      nlohmann::json t = {{"config", a.config}, {"data", config.data_dir}};
      if (record) {
        t["state"] = record->value("state", "") == "ready" ? "running" : "starting";
        t["pid"] = record->value("pid", 0);
        t["listen"] = record->value("listen", "");
      } else {
        t["state"] = "stopped";
      }
      targets.push_back(t);
    }
    if (a.remote.given()) {
      // The tenant's view of a target: its volumes' latest points and the
      // taps connected now.
      BOOST_OUTCOME_TRY(client, a.remote.Client());
      BOOST_OUTCOME_TRY(body, client->Call("GET", "/v1/status"));
      nlohmann::json t = {{"target", a.remote.target}, {"state", "running"},
                          {"tenant", a.remote.tenant}};
      t["sessions"] = body.value("sessions", nlohmann::json::array());
      t["volumes"] = body.value("volumes", nlohmann::json::array());
      targets.push_back(t);
    }
    if (a.json) {
      std::printf("%s\n", nlohmann::json{{"volumes", volumes}, {"targets", targets}}.dump().c_str());
      return Status::Ok();
    }
    if (volumes.empty() && targets.empty()) {
      std::printf("no daemons found (give --journal, --state or --config)\n");
    }
    for (const auto& v : volumes) {
      std::printf("%-8s %-16s %-12s", v.value("daemon", "").c_str(), v.value("name", "-").c_str(),
                  v.value("state", "").c_str());
      if (v.contains("last_seq")) std::printf(" seq %s", v["last_seq"].dump().c_str());
      if (v.contains("acked_seq")) std::printf(" acked %s", v["acked_seq"].dump().c_str());
      if (v.contains("rpo_lag_seconds")) {
        std::printf(" rpo %.3fs queued %s", v["rpo_lag_seconds"].get<double>(),
                    HumanBytes(v.value("queued_bytes", uint64_t{0}) +
                               v.value("spilled_bytes", uint64_t{0}))
                        .c_str());
      }
      if (v.contains("error")) std::printf(" error: %s", v["error"].get<std::string>().c_str());
      if (v.contains("last_drill")) {
        std::printf(" last drill: %s", LastDrillText(v["last_drill"]).c_str());
      }
      std::printf("  (%s)\n", v.value("dir", "").c_str());
    }
    for (const auto& t : targets) {
      if (t.contains("tenant")) {
        std::printf("target   %-16s %-12s tenant %s, %zu taps connected\n",
                    t.value("target", "-").c_str(), t.value("state", "").c_str(),
                    t.value("tenant", "").c_str(), t["sessions"].size());
        for (const auto& v : t["volumes"]) {
          std::printf("  volume %-16s latest seq %s\n", v.value("name", "-").c_str(),
                      v.contains("latest_seq") ? v["latest_seq"].dump().c_str() : "-");
        }
        continue;
      }
      std::printf("target   %-16s %-12s %s\n", t.value("listen", "-").c_str(),
                  t.value("state", "").c_str(), t.value("data", "").c_str());
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

}  // namespace

void AddStatusCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand("status", "what the protect, tap and target daemons are doing");
  cmd->add_option("--journal", a->journals, "journal directory of a `protect` daemon (repeatable)");
  cmd->add_option("--state", a->states, "state directory of a `tap` daemon (repeatable)");
  cmd->add_option("--config", a->config, "a target's target.toml");
  a->remote.Add(cmd);
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->callback([a, exit_code] { *exit_code = RunStatus(*a); });
}

}  // namespace tidemark::tools
