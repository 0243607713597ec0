// tidemark drill start (--journal DIR | --target ... --state DIR) (VOLUME | --group G) (point)
//                     [--name N] [--listen ADDR] [--boot-check [--marker T] [--timeout S]
//                     [--stop-after-check]] [--notes T] [--json]
// tidemark drill stop  (--journal DIR | --state DIR) NAME [--result R] [--notes T] [--json]
// tidemark drill list  (--journal DIR | --state DIR) [VOLUME] [--json]
// A drill is a `tidemark mount --writable` process of its own with a record
// in DIR/drills (recovery/drill.h); it runs until `drill stop`. A group
// drill mounts every member at one group point (`mount --group`); its boot
// check boots the first member with the others attached as extra disks.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "cli.h"
#include "tidemark/journal/time.h"
#include "tidemark/recovery/drill.h"
#include "volume_set.h"

namespace tidemark::tools {

namespace {

using recovery::DrillRecord;
using recovery::DrillStore;
// Notes and markers come from the command line: not always UTF-8.
constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

struct StartArgs {
  DrillDirArgs where;
  std::string volume, group, name, listen, overlay_dir, notes, marker = "login:";
  PointArgs point;
  bool boot_check = false, stop_after_check = false, json = false;
  double timeout_s = 120;
};

// The `tidemark mount` command line of a drill (the point resolved by the
// mount itself, which prints it in its ready line).
std::vector<std::string> MountArgv(const StartArgs& a, const std::string& listen) {
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::vector<std::string> v = {n > 0 ? std::string(exe, static_cast<size_t>(n)) : "tidemark",
                                "mount"};
  const RemoteArgs& r = a.where.remote;
  if (r.given()) {
    v.insert(v.end(), {"--target=" + r.target, "--tenant=" + r.tenant,
                       "--token-file=" + AbsPath(r.token_file), "--ca=" + AbsPath(r.ca)});
  } else {
    v.push_back("--journal=" + AbsPath(a.where.journal_dir));
  }
  v.push_back(a.group.empty() ? a.volume : "--group=" + a.group);
  // --at=VALUE: a relative time such as -15m must not look like an option.
  if (!a.point.at.empty()) v.push_back("--at=" + a.point.at);
  if (a.point.seq) v.push_back("--seq=" + std::to_string(*a.point.seq));
  if (!a.point.bookmark.empty()) v.push_back("--bookmark=" + a.point.bookmark);
  if (a.point.latest) v.push_back("--latest");
  v.insert(v.end(), {"--listen=" + listen, "--writable", "--json",
                     "--wait=" + std::to_string(DaemonWait().count() / 1000.0)});
  if (!a.overlay_dir.empty()) v.push_back("--overlay-dir=" + AbsPath(a.overlay_dir));
  return v;
}

// "sda" or "group vm1: sda, sdb".
std::string VolumesText(const DrillRecord& r) {
  if (r.group.empty()) return r.volume;
  std::string s = "group " + r.group + ":";
  for (size_t i = 0; i < r.volumes.size(); ++i) s += (i ? ", " : " ") + r.volumes[i];
  return s;
}

std::string Describe(const DrillRecord& r) {
  std::string s = "drill " + r.name + " (" + VolumesText(r);
  if (r.point) s += " at seq " + std::to_string(r.point->seq) + ", " + FormatTime(r.point->time_ns);
  return s + ")";
}

int RunStart(const StartArgs& a) {
  std::optional<DrillRecord> last;  // the record as it ended, for --json
  auto run = [&]() -> Status {
    TM_RETURN_IF_ERROR(CheckVolumeOrGroup(a.volume, a.group));
    BOOST_OUTCOME_TRY(store, a.where.Open(/*mounting=*/true));
    // The point's own errors, before anything starts (the mount resolves it).
    if (auto spec = a.point.Spec(NowNs()); !spec) return spec.error();
    if (!(a.timeout_s > 0)) return Status::InvalidArgument("--timeout must be over 0 seconds");
    DrillRecord rec;
    rec.volume = a.volume;  // a group's first member, once its mount is ready
    rec.group = a.group;
    rec.name = a.name;
    rec.started_ns = NowNs();
    if (rec.name.empty()) {  // VOLUME-2026-11-23T101459Z (or GROUP-...)
      std::string t = FormatTime(rec.started_ns).substr(0, 19) + "Z";
      rec.name = (a.group.empty() ? a.volume : a.group) + "-" + t.erase(13, 1).erase(15, 1);
    }
    TM_RETURN_IF_ERROR(DrillStore::CheckName(rec.name));
    std::string listen = a.listen.empty() ? "unix:" + store.PathOf(rec.name, ".sock") : a.listen;
    if (listen.rfind("unix:", 0) == 0 && listen.size() - 5 >= 108) {
      return Status::InvalidArgument("socket path " + listen.substr(5) +
                                     " is too long for unix sockets: give --listen");
    }
    rec.source = a.where.remote.given()
                     ? "target " + a.where.remote.target + " tenant " + a.where.remote.tenant
                     : "journal " + AbsPath(a.where.journal_dir);
    rec.notes = a.notes;
    BOOST_OUTCOME_TRY(
        started, recovery::StartDrill(store, rec, MountArgv(a, listen), std::chrono::seconds(60)));
    last = started;
    if (!a.json) {
      std::string exports;
      for (const std::string& v : started.volumes) exports += (exports.empty() ? "" : ", ") + v;
      std::printf(
          "%s started: writable export%s %s on %s (stop it with `tidemark drill stop %s %s`)\n",
          Describe(started).c_str(), started.volumes.size() > 1 ? "s" : "", exports.c_str(),
          started.listen.c_str(), a.where.Option().c_str(), started.name.c_str());
      std::fflush(stdout);
    }
    if (!a.boot_check) return Status::Ok();
    recovery::BootCheckOptions o;
    o.marker = a.marker;
    o.timeout = std::chrono::milliseconds(static_cast<int64_t>(a.timeout_s * 1000));
    BOOST_OUTCOME_TRY(checked, recovery::BootCheckDrill(store, rec.name, o));
    last = checked;
    if (!a.json) {
      std::printf("boot check of %s: %s: %s (console: %s)\n", checked.name.c_str(),
                  std::string(DrillResultName(checked.result)).c_str(),
                  checked.boot_check->reason.c_str(), checked.boot_check->console_log.c_str());
    }
    if (a.stop_after_check) {
      BOOST_OUTCOME_TRY(stopped, recovery::StopDrill(store, rec.name, std::nullopt, "",
                                                     std::chrono::seconds(10)));
      last = stopped;
      if (!a.json) std::printf("drill %s stopped\n", stopped.name.c_str());
    }
    if (checked.result != recovery::DrillResult::kPass) {
      return Status::Aborted("drill " + checked.name +
                             " failed its boot check: " + checked.boot_check->reason);
    }
    return Status::Ok();
  };
  Status s = run();
  if (a.json && last) {  // one object: the record, and the error when there is one
    nlohmann::json out = recovery::DrillJson(*last);
    if (!s.ok()) {
      out = {{"error", {{"code", Status::CodeId(s.code())}, {"message", s.message()}}},
             {"drill", out}};
    }
    std::printf("%s\n", out.dump(-1, ' ', false, kReplace).c_str());
    return s.ok() ? 0 : Fail(s, /*json=*/false);
  }
  return s.ok() ? 0 : Fail(s, a.json);
}

struct StopArgs {
  DrillDirArgs where;
  std::string name, result, notes;
  bool json = false;
};

int RunStop(const StopArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(store, a.where.Open(/*mounting=*/false));
    std::optional<recovery::DrillResult> result;
    if (!a.result.empty()) {
      BOOST_OUTCOME_TRY(r, recovery::ParseDrillResult(a.result));
      result = r;
    }
    BOOST_OUTCOME_TRY(
        rec, recovery::StopDrill(store, a.name, result, a.notes, std::chrono::seconds(10)));
    if (a.json) {
      std::printf("%s\n", recovery::DrillJson(rec).dump(-1, ' ', false, kReplace).c_str());
    } else {
      std::printf("%s stopped: %s writes, %s overlay thrown away; result %s\n",
                  Describe(rec).c_str(), rec.writes ? std::to_string(*rec.writes).c_str() : "?",
                  rec.overlay_bytes ? HumanBytes(*rec.overlay_bytes).c_str() : "?",
                  std::string(DrillResultName(rec.result)).c_str());
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

struct ListArgs {
  DrillDirArgs where;
  std::string volume;
  bool json = false;
};

int RunList(const ListArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(store, a.where.Open(/*mounting=*/false));
    BOOST_OUTCOME_TRY(all, store.List());
    nlohmann::json drills = nlohmann::json::array();
    for (const DrillRecord& r : all) {
      if (a.volume.empty() ||
          std::find(r.volumes.begin(), r.volumes.end(), a.volume) != r.volumes.end()) {
        drills.push_back(recovery::DrillJson(r));
      }
    }
    if (a.json) {
      nlohmann::json out = {{"format", 1}, {"dir", store.dir()}, {"drills", drills}};
      std::printf("%s\n", out.dump(-1, ' ', false, kReplace).c_str());
      return Status::Ok();
    }
    if (drills.empty()) std::printf("no drills in %s\n", store.dir().c_str());
    for (const auto& d : drills) {
      std::string what = d["volume"].get<std::string>();  // a group's drill: GROUP[sda,sdb]
      if (!d["group"].is_null()) {
        std::string names;
        for (const auto& v : d["volumes"]) {
          names += (names.empty() ? "" : ",") + v.get<std::string>();
        }
        what = d["group"].get<std::string>() + "[" + names + "]";
      }
      std::printf("%-24s %-12s seq %-8s %s %-8s %-7s %s\n", d["name"].get<std::string>().c_str(),
                  what.c_str(), d["point"].is_null() ? "-" : d["point"]["seq"].dump().c_str(),
                  d["started"].get<std::string>().c_str(), d["state"].get<std::string>().c_str(),
                  d["result"].get<std::string>().c_str(), d["reason"].get<std::string>().c_str());
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

}  // namespace

void AddDrillCommand(CLI::App& app, int* exit_code) {
  CLI::App* drill =
      app.add_subcommand("drill", "DR drills: writable virtual snapshots with a record");
  drill->require_subcommand(1);

  auto s = std::make_shared<StartArgs>();
  CLI::App* start =
      drill->add_subcommand("start", "mount a point writable as a drill; boot it in qemu");
  s->where.Add(start);
  start->add_option("VOLUME", s->volume, "volume name (or --group)");
  start->add_option("--group", s->group,
                    "drill every volume of a consistency group at one point: one export per "
                    "volume; --boot-check boots the first member with the others attached as "
                    "extra virtio disks (vdb, vdc, ...)");
  s->point.Add(start);
  start->add_option("--name", s->name, "drill name (default: VOLUME-<UTC time>)");
  start->add_option("--listen", s->listen,
                    "unix:SOCKET or HOST:PORT of the drill's export "
                    "(default: unix:<records>/NAME.sock)");
  start->add_option("--overlay-dir", s->overlay_dir, "directory of the overlay's temp file");
  CLI::Option* bc =
      start->add_flag("--boot-check", s->boot_check,
                      "boot the export in qemu (TCG, no network); pass on the marker (a "
                      "group: the first member boots, the others are extra virtio disks)");
  start->add_option("--marker", s->marker, "console text that means booted")
      ->needs(bc)
      ->capture_default_str();
  start->add_option("--timeout", s->timeout_s, "seconds to wait for the marker")
      ->needs(bc)
      ->capture_default_str();
  start->add_flag("--stop-after-check", s->stop_after_check, "stop the drill after its boot check")
      ->needs(bc);
  start->add_option("--notes", s->notes, "free text kept in the record");
  start->add_flag("--json", s->json, "print the record as JSON");
  AddWaitOption(start);
  start->callback([s, exit_code] { *exit_code = RunStart(*s); });

  auto t = std::make_shared<StopArgs>();
  CLI::App* stop = drill->add_subcommand("stop", "stop a drill and throw its writes away");
  t->where.Add(stop);
  stop->add_option("NAME", t->name, "drill name")->required();
  stop->add_option("--result", t->result, "pass, fail or unknown (default: the boot check's)");
  stop->add_option("--notes", t->notes, "text appended to the record's notes");
  stop->add_flag("--json", t->json, "print the record as JSON");
  stop->callback([t, exit_code] { *exit_code = RunStop(*t); });

  auto l = std::make_shared<ListArgs>();
  CLI::App* list = drill->add_subcommand("list", "list drills and their results");
  l->where.Add(list);
  list->add_option("VOLUME", l->volume, "only this volume's drills (with its group's)");
  list->add_flag("--json", l->json, "print JSON");
  list->callback([l, exit_code] { *exit_code = RunList(*l); });
}

}  // namespace tidemark::tools
