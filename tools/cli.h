// Shared pieces of the `tidemark` subcommands: error reporting, opening a
// journal, point options and JSON shapes. tools/ holds main()-level wiring
// only; everything else lives in the modules.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "tidemark/journal/journal.h"
#include "tidemark/recovery/drill.h"
#include "tidemark/target/remote_client.h"

namespace tidemark::tools {

// Exit codes: 0 ok, 1 the command failed, 2 bad usage, 4 busy or starting
// (kTryAgain: another daemon holds it, or it is not ready yet).
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitBusy = 4;

// Prints `tidemark: <message>` as one line on stderr and, with json, the
// contract's {"error": {"code": C, "message": M}} on stdout. Returns the exit code.
int Fail(const Status& status, bool json);

// --wait S on a command that uses a journal or state directory: how long it
// waits for a daemon that is starting there (docs/design.md#readiness);
// default 60 s. DaemonWait() is the value given to the command that runs.
void AddWaitOption(CLI::App* cmd);
std::chrono::milliseconds DaemonWait();

// Opens the journal in dir, read-only unless `write`. A daemon starting on
// dir is waited for first (DaemonWait(); kTryAgain "DIR: daemon starting").
Result<std::unique_ptr<journal::Journal>> OpenJournal(const std::string& dir, bool write,
                                                      bool create = false,
                                                      Codec codec = Codec::kZstd);
// The same with every option, for `mount` (its block cache size).
Result<std::unique_ptr<journal::Journal>> OpenJournal(const std::string& dir,
                                                      const journal::OpenOptions& o);

// --at TIME | --seq N | --bookmark NAME | --latest: exactly one.
struct PointArgs {
  std::string at;
  std::optional<int64_t> seq;  // signed, so that -1 is an error, not 2^64-1
  std::string bookmark;
  bool latest = false;
  void Add(CLI::App* cmd);
  Result<journal::PointSpec> Spec(TimeNs now_ns) const;
};

// --target HOST:PORT --tenant T --token-file F --ca FILE: the remote form of
// points, bookmark and restore (the target's control API over TLS), beside
// their --journal DIR form.
struct RemoteArgs {
  std::string target, tenant, token_file, ca;
  void Add(CLI::App* cmd);
  bool given() const { return !target.empty(); }
  // Exactly one of --journal (`journal_dir`) and --target; --tenant,
  // --token-file and --ca go with --target only, and all three are needed
  // then. kInvalidArgument, one line, otherwise.
  Status Check(const std::string& journal_dir) const;
  // A client for the target (reads the token file; connects on first use).
  Result<std::unique_ptr<target::RemoteClient>> Client() const;
};

// Where a drill's records are (recovery/drill.h): --journal DIR (in
// DIR/drills), or with --target (--tenant, --token-file, --ca) the
// directory --state DIR (in DIR/drills).
struct DrillDirArgs {
  std::string journal_dir, state_dir;
  RemoteArgs remote;
  void Add(CLI::App* cmd);
  // The records' store. `mounting` (drill start) checks the remote options
  // whole and creates DIR/drills (and the --state directory); stop and list
  // need only the directory. kInvalidArgument for a bad combination,
  // kNotFound for a missing --journal directory when mounting.
  Result<recovery::DrillStore> Open(bool mounting) const;
  // "--journal DIR" or "--state DIR", for hints.
  std::string Option() const;
};

std::string AbsPath(const std::string& path);

// POST .../resolve on a target: the point `spec` names there (a relative
// --at is made absolute by this machine's clock first, as --journal does).
Result<journal::Point> RemoteResolve(target::RemoteClient& client, const std::string& volume,
                                     const journal::PointSpec& spec);

nlohmann::json PointJson(const journal::Point& p);
// The newest drill of `volume` recorded in BASE/drills (BASE: a journal or a
// tap's state directory; recovery/drill.h), as `points` and `status` show
// it: {"name", "started", "stopped", "point", "state", "result", "reason"};
// null when there is none; {"error": M} when the records cannot be read.
nlohmann::json LastDrillJson(const std::string& base_dir, const std::string& volume);
// "d1 at seq 12 started 2026-...Z (stopped): pass (boot check: ...)", or "none".
std::string LastDrillText(const nlohmann::json& last_drill);
std::string HumanBytes(uint64_t bytes);

// Registration of the subcommands; each sets *exit_code when it runs.
void AddRestoreCommand(CLI::App& app, int* exit_code);
void AddPointsCommands(CLI::App& app, int* exit_code);  // points, bookmark
void AddJournalCommand(CLI::App& app, int* exit_code);  // journal import|replay|dump|verify|set-floors
void AddProtectCommand(CLI::App& app, int* exit_code);
// `target` with its `init` subcommand; returns `target` so that `serve` can be
// added to it. `tenant add|list|token`.
CLI::App* AddTargetCommand(CLI::App& app, int* exit_code);
void AddTenantCommand(CLI::App& app, int* exit_code);
void AddTargetServeCommand(CLI::App* target, int* exit_code);  // target serve
void AddTapCommand(CLI::App& app, int* exit_code);
void AddStatusCommand(CLI::App& app, int* exit_code);
void AddMountCommand(CLI::App& app, int* exit_code);
void AddDrillCommand(CLI::App& app, int* exit_code);  // drill start|stop|list

}  // namespace tidemark::tools
