// Running drills (drill.h): the mount process, boot checks, stopping.
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "process.h"
#include "tidemark/journal/time.h"
#include "tidemark/recovery/drill.h"

namespace tidemark::recovery {

namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

// The JSON lines of the mount's log (it prints its ready line, its final
// line or an {"error"} object as JSON; the rest is log text).
std::vector<json> JsonLines(const std::string& path, std::string* last_text) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '{') {
      json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) {
        out.push_back(std::move(j));
        continue;
      }
    }
    if (last_text && !line.empty()) *last_text = line;
  }
  return out;
}

// The mount's {"error": {"code", "message"}} as the Status it was.
Status ErrorStatus(const json& e) {
  const std::string id = e.value("code", std::string());
  const std::string msg = e.value("message", std::string("the mount failed"));
  for (Code c : {Code::kNotFound, Code::kCorruption, Code::kIOError, Code::kInvalidArgument,
                 Code::kNotSupported, Code::kNoSpace, Code::kTryAgain, Code::kAborted}) {
    if (Status::CodeId(c) == id) return Status(c, msg);
  }
  return Status::IOError(msg);
}

std::string Ms(milliseconds ms) { return std::to_string(ms.count() / 1000) + " s"; }

}  // namespace

std::string NbdDrive(const std::string& listen, const std::string& export_name) {
  if (listen.rfind("unix:", 0) == 0) {
    return "nbd:unix:" + listen.substr(5) + ":exportname=" + export_name;
  }
  return "nbd://" + listen + "/" + export_name;
}

Result<DrillRecord> StartDrill(DrillStore& store, DrillRecord rec,
                               const std::vector<std::string>& mount_argv,
                               milliseconds ready_timeout) {
  rec.mount_log = store.PathOf(rec.name, ".mount.log");
  TM_RETURN_IF_ERROR(store.Create(rec));
  // From here on a failure removes the record: the drill never existed.
  auto fail = [&](Status s) -> Result<DrillRecord> {
    store.Remove(rec.name);
    return s;
  };
  { std::ofstream truncate(rec.mount_log, std::ios::trunc); }
  auto spawned = Spawn(mount_argv, {rec.mount_log, /*new_session=*/true});
  if (!spawned) return fail(spawned.error());
  const pid_t pid = spawned.value();
  const uint64_t start = ProcessStartTicks(pid).value_or(0);
  const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
  for (;;) {
    const std::optional<int> exited = ExitedChild(pid);
    std::string last;
    for (const json& j : JsonLines(rec.mount_log, &last)) {
      if (j.contains("error") && j["error"].is_object()) {
        if (!exited) TerminateProcess(pid, start, milliseconds(5000));
        return fail(ErrorStatus(j["error"]));
      }
      if (!exited && j.contains("listen") && j.contains("point")) {
        try {
          BOOST_OUTCOME_TRY(t, ParseTime(j["point"]["time"].get<std::string>(), NowNs()));
          rec.point = journal::Point{j["point"]["seq"].get<Seq>(), t};
          rec.listen = j["listen"].get<std::string>();
          if (rec.group.empty()) {
            rec.export_name = j.value("export", rec.volume);
            rec.volumes = {rec.volume};
          } else {  // one export per member, named by it; the first boots
            rec.volumes.clear();
            for (const json& v : j.at("volumes")) {
              rec.volumes.push_back(v.at("export").get<std::string>());
            }
            if (!rec.volumes.empty()) rec.volume = rec.export_name = rec.volumes[0];
          }
        } catch (const json::exception& e) {
          TerminateProcess(pid, start, milliseconds(5000));
          return fail(Status::IOError(std::string("the mount's ready line: ") + e.what()));
        }
        if (rec.volumes.empty()) {
          TerminateProcess(pid, start, milliseconds(5000));
          return fail(Status::IOError("the mount's ready line names no volumes"));
        }
        rec.pid = pid;
        rec.pid_start = start;
        TM_RETURN_IF_ERROR(store.Update(rec.name, [&](DrillRecord& r) {
          r = rec;
          return Status::Ok();
        }));
        return rec;
      }
    }
    if (exited) {
      return fail(Status::IOError("the drill's mount process exited with " +
                                  DescribeWaitStatus(*exited) + (last.empty() ? "" : ": " + last)));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      TerminateProcess(pid, start, milliseconds(5000));
      return fail(Status::TryAgain("the drill's mount was not ready within " + Ms(ready_timeout) +
                                   " (see " + rec.mount_log + ")"));
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
}

Result<DrillRecord> BootCheckDrill(DrillStore& store, std::string_view name,
                                   BootCheckOptions options) {
  BOOST_OUTCOME_TRY(rec, store.Get(name));
  if (rec.State() != "running") {
    return Status::InvalidArgument("drill " + rec.name + " is not running (" + rec.State() + ")");
  }
  options.drive = NbdDrive(rec.listen, rec.export_name);
  options.extra_drives.clear();
  for (size_t i = 1; i < rec.volumes.size(); ++i) {
    options.extra_drives.push_back(NbdDrive(rec.listen, rec.volumes[i]));
  }
  options.console_log = store.PathOf(rec.name, ".console.log");
  if (!options.abort_reason) {
    options.abort_reason = [pid = rec.pid, start = rec.pid_start]() -> std::string {
      (void)ExitedChild(pid);  // reap it if it is our child
      if (ProcessStartTicks(pid) == start) return "";
      return "the drill's mount process (pid " + std::to_string(pid) + ") ended";
    };
  }
  BOOST_OUTCOME_TRY(check, BootCheck(options));
  BootCheckRecord b;
  b.result = check.passed ? DrillResult::kPass : DrillResult::kFail;
  b.reason = check.reason;
  b.seconds = static_cast<double>(check.elapsed.count()) / 1000;
  b.marker = options.marker;
  b.console_log = options.console_log;
  DrillRecord out;
  TM_RETURN_IF_ERROR(store.Update(name, [&](DrillRecord& r) {
    r.boot_check = b;
    r.result = b.result;
    r.reason = "boot check: " + b.reason;
    out = r;
    return Status::Ok();
  }));
  return out;
}

Result<DrillRecord> StopDrill(DrillStore& store, std::string_view name,
                              std::optional<DrillResult> result, const std::string& notes,
                              milliseconds grace) {
  BOOST_OUTCOME_TRY(rec, store.Get(name));
  if (rec.stopped_ns != 0) {
    return Status::InvalidArgument("drill " + rec.name + " was already stopped at " +
                                   FormatTime(rec.stopped_ns));
  }
  const bool was_running = rec.State() == "running";
  if (was_running) TerminateProcess(rec.pid, rec.pid_start, grace);
  std::optional<uint64_t> writes, overlay;
  for (const json& j : JsonLines(rec.mount_log, nullptr)) {
    if (j.contains("stopped")) {
      writes = j.value("writes", uint64_t{0});
      overlay = j.value("overlay_bytes", uint64_t{0});
    }
  }
  if (rec.listen == "unix:" + store.PathOf(rec.name, ".sock")) {
    ::unlink(store.PathOf(rec.name, ".sock").c_str());  // left by a SIGKILLed mount
  }
  DrillRecord out;
  TM_RETURN_IF_ERROR(store.Update(name, [&](DrillRecord& r) {
    r.stopped_ns = NowNs();
    r.writes = writes;
    r.overlay_bytes = overlay;
    if (result) {
      r.result = *result;
      r.reason = "set by drill stop" +
                 (r.boot_check ? "; boot check: " + r.boot_check->reason : std::string());
    }
    std::string add = notes;
    if (!was_running) add += std::string(add.empty() ? "" : " ") + "(the mount had already ended)";
    if (!add.empty()) r.notes += (r.notes.empty() ? "" : "; ") + add;
    out = r;
    return Status::Ok();
  }));
  return out;
}

}  // namespace tidemark::recovery
