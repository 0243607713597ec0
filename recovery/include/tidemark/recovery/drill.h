// DR drills (docs/design.md#reads-of-the-past, issue #5): a drill is a named, writable
// virtual snapshot of one point of a volume, or of every member of a
// consistency group at one group point (a `tidemark mount --writable`
// process: recovery/snapshot.h) with a record of what was checked and what
// came out of it. The drill's writes go to the mount's private overlay and
// die with it; the journal is never written.
//
// Records: one JSON file per drill, DIR/NAME.json, in a drill directory:
// `drills/` in the journal directory (`--journal J`: J/drills), or in the
// state directory given with `--target ... --state S` (S/drills). Beside
// each record: NAME.mount.log (the mount process's output), NAME.sock (its
// default NBD socket) and NAME.console.log (a boot check's serial console).
// A record is written to a temporary file and renamed into place; a new
// one is linked into place, so that two drills of one name cannot both be
// created. Records stay after the drill stops: they are its history (names
// are never reused in one directory).
//
// The record, format 1 (times RFC 3339 UTC with nine fraction digits):
//   {"format": 1, "name": N, "volume": V, "group": G | null, "volumes": [V...],
//    "point": {"seq", "time"} | null,
//    "source": "journal DIR" | "target HOST:PORT tenant T",
//    "started": TIME, "stopped": TIME | null, "listen": "unix:SOCK" |
//    "HOST:PORT", "export": V, "pid": P, "pid_start": TICKS,
//    "result": "pass" | "fail" | "unknown", "reason": TEXT, "notes": TEXT,
//    "boot_check": null | {"result", "reason", "seconds", "marker",
//                          "console_log"},
//    "mount_log": PATH, "writes": N | null, "overlay_bytes": N | null}
// A group drill serves one export per member, named by the member:
// "volumes" lists them in member order and "volume" and "export" are the
// first, the boot disk (the rest are attached as extra disks). A volume's
// drill has "group": null and "volumes": [V]. Records written before groups
// lack "group" and "volumes": read as a volume's drill.
// `result` is the boot check's unless `drill stop --result` set it.
// DrillJson() adds "state" (DrillRecord::State()), which is not stored.
//
// Thread-safety: a DrillStore is a directory handle; Update() takes an
// flock on DIR/.lock, so processes updating one record do not lose changes.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tidemark/journal/journal.h"
#include "tidemark/journal/status.h"
#include "tidemark/recovery/boot_check.h"

namespace tidemark::recovery {

inline constexpr std::string_view kDrillSubdir = "drills";

enum class DrillResult : uint8_t { kUnknown, kPass, kFail };
std::string_view DrillResultName(DrillResult r);  // "unknown", "pass", "fail"
// kInvalidArgument for anything else.
Result<DrillResult> ParseDrillResult(std::string_view name);

struct BootCheckRecord {
  DrillResult result = DrillResult::kUnknown;
  std::string reason;
  double seconds = 0;
  std::string marker;
  std::string console_log;
};

struct DrillRecord {
  std::string name;
  std::string volume;  // a group drill's first member (set when its mount is ready)
  std::string group;   // empty: a volume's drill
  // The volumes served, one export each, named by the volume, the boot disk
  // first: [volume], or a group's members (set when the mount is ready).
  std::vector<std::string> volumes;
  std::optional<journal::Point> point;  // unset until the mount is ready
  std::string source;
  TimeNs started_ns = 0;
  TimeNs stopped_ns = 0;  // 0: not stopped
  std::string listen;
  std::string export_name;
  int pid = 0;             // the mount process
  uint64_t pid_start = 0;  // its start time (process.h), against pid reuse
  DrillResult result = DrillResult::kUnknown;
  std::string reason;
  std::string notes;
  std::optional<BootCheckRecord> boot_check;
  std::string mount_log;
  std::optional<uint64_t> writes, overlay_bytes;  // from the mount's last line

  // "stopped" once stopped; "running" while its mount process lives,
  // else "gone" (it died, or the machine rebooted, without `drill stop`).
  std::string State() const;
};

nlohmann::json DrillJson(const DrillRecord& r);  // the record, plus "state"
// kCorruption naming what is missing or of the wrong type.
Result<DrillRecord> DrillFromJson(const nlohmann::json& j);

class DrillStore {
 public:
  // The drill directory `dir` (BASE/drills), created when `create` (its
  // parent must exist: kNotFound otherwise). Without create a missing
  // directory is an empty store.
  static Result<DrillStore> Open(const std::string& dir, bool create);
  const std::string& dir() const { return dir_; }
  // DIR/NAME + suffix (".json", ".mount.log", ".sock", ".console.log").
  std::string PathOf(std::string_view name, std::string_view suffix) const;

  // Names are 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'.
  static Status CheckName(std::string_view name);
  // kInvalidArgument "drill NAME exists ..." when the name is taken.
  Status Create(const DrillRecord& record);
  Result<DrillRecord> Get(std::string_view name) const;  // kNotFound
  // Reads, applies `change`, writes back, under the directory's lock.
  Status Update(std::string_view name, const std::function<Status(DrillRecord&)>& change);
  // Removes the record and the files beside it (a drill that never started).
  void Remove(std::string_view name);
  // Every record, oldest start first. A file that does not parse is an
  // error naming it (kCorruption).
  Result<std::vector<DrillRecord>> List() const;
  // The newest drill of `volume` (by start), if any: a drill of the
  // volume, or of a group it is a member of.
  Result<std::optional<DrillRecord>> Last(std::string_view volume) const;

 private:
  explicit DrillStore(std::string dir) : dir_(std::move(dir)) {}
  Status Write(const DrillRecord& record, bool create);
  std::string dir_;
};

// Running drills (drill_run.cc). Each call updates the record in `store`.

// Starts drill `record.name`: creates its record (kInvalidArgument when the
// name is taken), runs `mount_argv` (a `tidemark mount ... --writable
// --json` command line, built by the caller) as a process of its own
// session with its output in NAME.mount.log, and waits up to ready_timeout
// for the mount's JSON ready line, whose point and address go into the
// record; for a group (record.group set) also its "volumes" (member order):
// the record's volumes, volume and export come from there. When the mount
// fails first, its {"error"} line becomes the Status (same code and
// message) and the record is removed.
Result<DrillRecord> StartDrill(DrillStore& store, DrillRecord record,
                               const std::vector<std::string>& mount_argv,
                               std::chrono::milliseconds ready_timeout);

// The -drive file= value for an NBD export at `listen` ("unix:SOCK" or
// "HOST:PORT", as the mount prints it).
std::string NbdDrive(const std::string& listen, const std::string& export_name);

// Boots the running drill `name` (options.drive, extra_drives and
// console_log are set here: its first export, the exports of the other
// volumes of a group drill, NAME.console.log) and records the result as the
// drill's. Ends early when the drill's mount process dies. Errors: those of
// the store and of BootCheck(); a failed boot is a result.
Result<DrillRecord> BootCheckDrill(DrillStore& store, std::string_view name,
                                   BootCheckOptions options);

// Stops drill `name`: SIGTERM to its mount process (SIGKILL after `grace`),
// which throws the overlay away; records the stop time, the mount's write
// count and overlay size, `result` when given (else the boot check's),
// and appends `notes`. kInvalidArgument when it was already stopped.
Result<DrillRecord> StopDrill(DrillStore& store, std::string_view name,
                              std::optional<DrillResult> result, const std::string& notes,
                              std::chrono::milliseconds grace);

}  // namespace tidemark::recovery
