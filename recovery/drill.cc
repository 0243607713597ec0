// Drill records (drill.h): JSON files in a drill directory.
#include "tidemark/recovery/drill.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "process.h"
#include "tidemark/journal/time.h"

namespace tidemark::recovery {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string_view DrillResultName(DrillResult r) {
  switch (r) {
    case DrillResult::kPass:
      return "pass";
    case DrillResult::kFail:
      return "fail";
    case DrillResult::kUnknown:
      break;
  }
  return "unknown";
}

Result<DrillResult> ParseDrillResult(std::string_view name) {
  for (DrillResult r : {DrillResult::kUnknown, DrillResult::kPass, DrillResult::kFail}) {
    if (DrillResultName(r) == name) return r;
  }
  return Status::InvalidArgument("unknown drill result '" + std::string(name) +
                                 "' (pass, fail, unknown)");
}

std::string DrillRecord::State() const {
  if (stopped_ns != 0) return "stopped";
  if (pid > 0 && ProcessStartTicks(pid) == pid_start) return "running";
  return "gone";
}

namespace {

json TimeOrNull(TimeNs t) { return t == 0 ? json(nullptr) : json(FormatTime(t)); }
json CountOrNull(const std::optional<uint64_t>& v) { return v ? json(*v) : json(nullptr); }

}  // namespace

json DrillJson(const DrillRecord& r) {
  json j = {{"format", 1},
            {"name", r.name},
            {"volume", r.volume},
            {"group", r.group.empty() ? json(nullptr) : json(r.group)},
            {"volumes", r.volumes},
            {"point", nullptr},
            {"source", r.source},
            {"started", TimeOrNull(r.started_ns)},
            {"stopped", TimeOrNull(r.stopped_ns)},
            {"state", r.State()},
            {"listen", r.listen},
            {"export", r.export_name},
            {"pid", r.pid},
            {"pid_start", r.pid_start},
            {"result", DrillResultName(r.result)},
            {"reason", r.reason},
            {"notes", r.notes},
            {"boot_check", nullptr},
            {"mount_log", r.mount_log},
            {"writes", CountOrNull(r.writes)},
            {"overlay_bytes", CountOrNull(r.overlay_bytes)}};
  if (r.volumes.empty() && r.group.empty() && !r.volume.empty()) j["volumes"] = {r.volume};
  if (r.point) j["point"] = {{"seq", r.point->seq}, {"time", FormatTime(r.point->time_ns)}};
  if (r.boot_check) {
    const BootCheckRecord& b = *r.boot_check;
    j["boot_check"] = {{"result", DrillResultName(b.result)},
                       {"reason", b.reason},
                       {"seconds", b.seconds},
                       {"marker", b.marker},
                       {"console_log", b.console_log}};
  }
  return j;
}

Result<DrillRecord> DrillFromJson(const json& j) {
  DrillRecord r;
  try {
    if (!j.is_object() || j.at("format").get<int>() != 1) {
      return Status::Corruption("not a drill record of format 1");
    }
    auto time = [&](const json& v) -> Result<TimeNs> {
      if (v.is_null()) return TimeNs{0};
      return ParseTime(v.get<std::string>(), NowNs());
    };
    r.name = j.at("name").get<std::string>();
    r.volume = j.at("volume").get<std::string>();
    // Records from before groups have neither: a volume's drill.
    if (j.contains("group") && !j["group"].is_null()) r.group = j["group"].get<std::string>();
    if (j.contains("volumes")) {
      r.volumes = j["volumes"].get<std::vector<std::string>>();
    } else if (!r.volume.empty()) {
      r.volumes = {r.volume};
    }
    if (const json& p = j.at("point"); !p.is_null()) {
      BOOST_OUTCOME_TRY(t, time(p.at("time")));
      r.point = journal::Point{p.at("seq").get<Seq>(), t};
    }
    r.source = j.at("source").get<std::string>();
    BOOST_OUTCOME_TRY(started, time(j.at("started")));
    BOOST_OUTCOME_TRY(stopped, time(j.at("stopped")));
    r.started_ns = started;
    r.stopped_ns = stopped;
    r.listen = j.at("listen").get<std::string>();
    r.export_name = j.at("export").get<std::string>();
    r.pid = j.at("pid").get<int>();
    r.pid_start = j.at("pid_start").get<uint64_t>();
    BOOST_OUTCOME_TRY(result, ParseDrillResult(j.at("result").get<std::string>()));
    r.result = result;
    r.reason = j.at("reason").get<std::string>();
    r.notes = j.at("notes").get<std::string>();
    if (const json& b = j.at("boot_check"); !b.is_null()) {
      BootCheckRecord bc;
      BOOST_OUTCOME_TRY(br, ParseDrillResult(b.at("result").get<std::string>()));
      bc.result = br;
      bc.reason = b.at("reason").get<std::string>();
      bc.seconds = b.at("seconds").get<double>();
      bc.marker = b.at("marker").get<std::string>();
      bc.console_log = b.at("console_log").get<std::string>();
      r.boot_check = bc;
    }
    r.mount_log = j.at("mount_log").get<std::string>();
    if (!j.at("writes").is_null()) r.writes = j.at("writes").get<uint64_t>();
    if (!j.at("overlay_bytes").is_null()) r.overlay_bytes = j.at("overlay_bytes").get<uint64_t>();
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("drill record: ") + e.what());
  }
  return r;
}

Result<DrillStore> DrillStore::Open(const std::string& dir, bool create) {
  std::error_code ec;
  std::string abs = fs::absolute(dir, ec).lexically_normal().string();
  if (ec) return Status::FromErrno(ec.value(), "drill directory " + dir);
  if (!abs.empty() && abs.back() == '/') abs.pop_back();
  if (create && !fs::is_directory(abs)) {
    fs::path parent = fs::path(abs).parent_path();
    if (!fs::is_directory(parent)) return Status::NotFound("no directory " + parent.string());
    if (!fs::create_directory(abs, ec) && ec) {
      return Status::FromErrno(ec.value(), "create " + abs);
    }
  }
  return DrillStore(abs);
}

std::string DrillStore::PathOf(std::string_view name, std::string_view suffix) const {
  return dir_ + "/" + std::string(name) + std::string(suffix);
}

Status DrillStore::CheckName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' && name[0] != '-';
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  }
  if (ok) return Status::Ok();
  return Status::InvalidArgument("bad drill name '" + std::string(name) +
                                 "': 1-64 of A-Z a-z 0-9 . _ -, not starting with . or -");
}

Status DrillStore::Write(const DrillRecord& record, bool create) {
  TM_RETURN_IF_ERROR(CheckName(record.name));
  const std::string path = PathOf(record.name, ".json");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    json j = DrillJson(record);
    j.erase("state");  // computed when read
    out << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    out.flush();
    if (!out) {
      ::unlink(tmp.c_str());
      return Status::IOError("cannot write " + tmp);
    }
  }
  // link() fails when the name exists: a new record never replaces one.
  int rc = create ? ::link(tmp.c_str(), path.c_str()) : ::rename(tmp.c_str(), path.c_str());
  int err = errno;
  if (create) ::unlink(tmp.c_str());
  if (rc == 0) return Status::Ok();
  if (create && err == EEXIST) {
    auto old = Get(record.name);
    std::string when =
        old ? " (started " + FormatTime(old.value().started_ns) + ", " + old.value().State() + ")"
            : "";
    return Status::InvalidArgument("drill " + record.name + " exists in " + dir_ + when +
                                   ": pick another --name");
  }
  if (!create) ::unlink(tmp.c_str());
  return Status::FromErrno(err, (create ? "create " : "rename to ") + path);
}

Status DrillStore::Create(const DrillRecord& record) { return Write(record, /*create=*/true); }

Result<DrillRecord> DrillStore::Get(std::string_view name) const {
  TM_RETURN_IF_ERROR(CheckName(name));
  const std::string path = PathOf(name, ".json");
  std::ifstream in(path);
  if (!in) return Status::NotFound("no drill " + std::string(name) + " in " + dir_);
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  auto r = DrillFromJson(j);
  if (!r) return Status::Corruption(path + ": " + r.error().message());
  return r;
}

Status DrillStore::Update(std::string_view name,
                          const std::function<Status(DrillRecord&)>& change) {
  const std::string lock_path = dir_ + "/.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "open " + lock_path);
  while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  Status s = [&]() -> Status {
    BOOST_OUTCOME_TRY(r, Get(name));
    TM_RETURN_IF_ERROR(change(r));
    return Write(r, /*create=*/false);
  }();
  ::close(fd);
  return s;
}

void DrillStore::Remove(std::string_view name) {
  for (const char* suffix : {".json", ".mount.log", ".sock", ".console.log", ".console.log.qemu"}) {
    ::unlink(PathOf(name, suffix).c_str());
  }
}

Result<std::vector<DrillRecord>> DrillStore::List() const {
  std::vector<DrillRecord> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string file = e.path().filename().string();
    if (file.size() <= 5 || file.compare(file.size() - 5, 5, ".json") != 0 || file[0] == '.') {
      continue;
    }
    const std::string name = file.substr(0, file.size() - 5);
    if (!CheckName(name).ok()) continue;  // not one of ours
    BOOST_OUTCOME_TRY(r, Get(name));
    out.push_back(std::move(r));
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::FromErrno(ec.value(), "list " + dir_);
  }
  std::sort(out.begin(), out.end(), [](const DrillRecord& a, const DrillRecord& b) {
    return a.started_ns != b.started_ns ? a.started_ns < b.started_ns : a.name < b.name;
  });
  return out;
}

Result<std::optional<DrillRecord>> DrillStore::Last(std::string_view volume) const {
  BOOST_OUTCOME_TRY(all, List());
  std::optional<DrillRecord> last;
  for (DrillRecord& r : all) {
    if (r.volume == volume ||
        std::find(r.volumes.begin(), r.volumes.end(), volume) != r.volumes.end()) {
      last = std::move(r);
    }
  }
  return last;
}

}  // namespace tidemark::recovery
