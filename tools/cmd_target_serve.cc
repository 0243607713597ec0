// tidemark target serve --config target.toml
// The remote target daemon: TLS ingest of taps into per-tenant journals.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "daemon.h"
#include "tidemark/target/config.h"
#include "tidemark/target/server.h"

namespace tidemark::tools {

namespace {

int RunServe(const std::string& config_path) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(config, target::LoadTargetConfig(config_path));
    BOOST_OUTCOME_TRY(lock, DaemonLock::Acquire(config.data_dir));
    // Block the stop signals before any thread starts; this thread waits
    // for them below.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
    // Readiness (docs/design.md#readiness): bound at once, listening only
    // once daemon.json says where.
    BOOST_OUTCOME_TRY(server, target::TargetServer::Start(config, /*defer_listen=*/true));
    TM_RETURN_IF_ERROR(lock->Publish({{"pid", getpid()},
                                      {"listen", server->listen_address()},
                                      {"config", std::filesystem::absolute(config_path)}}));
    TM_RETURN_IF_ERROR(server->Ready());
    std::printf("target serving %s on %s (TLS 1.3)\n", config.data_dir.c_str(),
                server->listen_address().c_str());
    std::fflush(stdout);
    NotifyReady("target serving " + config.data_dir + " on " + server->listen_address());
    int sig = 0;
    sigwait(&stop, &sig);
    NotifyStopping();
    server->Stop();
    target::ServerStats st = server->stats();
    std::printf("target stopped: %llu sessions, %llu writes (%s) ingested\n",
                static_cast<unsigned long long>(st.sessions_total),
                static_cast<unsigned long long>(st.writes), HumanBytes(st.write_bytes).c_str());
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, false);
}

}  // namespace

void AddTargetServeCommand(CLI::App* target, int* exit_code) {
  auto config = std::make_shared<std::string>();
  CLI::App* serve = target->add_subcommand(
      "serve", "run the target: taps stream their writes to it over TLS 1.3");
  serve->add_option("--config", *config, "the target.toml written by `target init`")->required();
  serve->callback([config, exit_code] { *exit_code = RunServe(*config); });
}

}  // namespace tidemark::tools
