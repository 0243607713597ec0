#include "tidemark/target/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>
#include <sstream>

#include "tidemark/journal/files.h"

namespace tidemark::target {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxGroupCommitMs = 1000;
constexpr int64_t kMaxInflightMib = int64_t{1} << 20;  // 1 TiB

std::string Quoted(const std::string& s) {
  // toml++ escapes quotes, backslashes and control characters; without
  // allow_literal_strings it always writes "basic" strings, as people do.
  const toml::value<std::string> v(s);
  std::ostringstream o;
  o << toml::toml_formatter(v, toml::format_flags::allow_unicode_strings);
  return o.str();
}

// One [table] of the file: each key is read at most once, and whatever is
// left unread at the end is an unknown key.
class Section {
 public:
  Section(const std::string& file, std::string name, const toml::table* table)
      : file_(file), name_(std::move(name)), table_(table) {}

  // Sets *out when the key is present; an error when it is not a string.
  Status String(const char* key, std::string* out) {
    const toml::node* n = Take(key);
    if (!n) return Status::Ok();
    if (!n->is_string()) return Wrong(key, "a string");
    *out = n->as_string()->get();
    return Status::Ok();
  }
  Status Integer(const char* key, int64_t lo, int64_t hi, int64_t* out) {
    const toml::node* n = Take(key);
    if (!n) return Status::Ok();
    if (!n->is_integer()) return Wrong(key, "an integer");
    int64_t v = n->as_integer()->get();
    if (v < lo || v > hi) {
      return Wrong(key, "an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    *out = v;
    return Status::Ok();
  }
  Status CheckNoneLeft() const {
    if (!table_) return Status::Ok();
    for (auto&& [k, v] : *table_) {
      if (!taken_.count(std::string(k.str()))) {
        return Status::InvalidArgument("config " + file_ + " line " +
                                       std::to_string(v.source().begin.line) + ": unknown key '" +
                                       name_ + "." + std::string(k.str()) + "'");
      }
    }
    return Status::Ok();
  }

 private:
  const toml::node* Take(const char* key) {
    if (!table_) return nullptr;
    taken_.insert(key);
    return table_->get(key);
  }
  Status Wrong(const char* key, const std::string& what) const {
    return Status::InvalidArgument("config " + file_ + ": '" + name_ + "." + key + "' must be " +
                                   what);
  }
  const std::string& file_;
  std::string name_;
  const toml::table* table_;
  std::set<std::string> taken_;
};

std::string Resolve(const fs::path& base, const std::string& p) {
  return (fs::path(p).is_absolute() ? fs::path(p) : base / p).lexically_normal().string();
}

Result<std::string> ReadWhole(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("config " + path + " does not exist");
    return Status::FromErrno(errno, "open config " + path);
  }
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, size_t(n));
  int err = errno;
  ::close(fd);
  if (n < 0) return Status::FromErrno(err, "read config " + path);
  return data;
}

}  // namespace

Result<TargetConfig> LoadTargetConfig(const std::string& path) {
  BOOST_OUTCOME_TRY(text, ReadWhole(path));
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument("config " + path + " line " +
                                   std::to_string(e.source().begin.line) + ": " +
                                   std::string(e.description()));
  }
  const fs::path base = fs::absolute(path).parent_path();
  TargetConfig c;
  std::string data, cert, key, ca;
  int64_t group_commit_ms = c.group_commit.count();
  int64_t inflight_mib = int64_t(c.max_inflight_bytes >> 20);

  const toml::table* tables[3] = {};
  const char* names[3] = {"target", "tls", "ingest"};
  for (auto&& [k, v] : root) {
    auto it = std::find(std::begin(names), std::end(names), k.str());
    if (it == std::end(names)) {
      return Status::InvalidArgument("config " + path + " line " +
                                     std::to_string(v.source().begin.line) + ": unknown key '" +
                                     std::string(k.str()) + "'");
    }
    if (!v.is_table()) {
      return Status::InvalidArgument("config " + path + ": '" + std::string(k.str()) +
                                     "' must be a table ([" + std::string(k.str()) + "])");
    }
    tables[it - std::begin(names)] = v.as_table();
  }
  Section target(path, "target", tables[0]), tls(path, "tls", tables[1]),
      ingest(path, "ingest", tables[2]);
  TM_RETURN_IF_ERROR(target.String("data", &data));
  TM_RETURN_IF_ERROR(target.String("listen", &c.listen));
  TM_RETURN_IF_ERROR(tls.String("cert", &cert));
  TM_RETURN_IF_ERROR(tls.String("key", &key));
  TM_RETURN_IF_ERROR(tls.String("ca", &ca));
  TM_RETURN_IF_ERROR(ingest.Integer("group_commit_ms", 0, kMaxGroupCommitMs, &group_commit_ms));
  TM_RETURN_IF_ERROR(ingest.Integer("max_inflight_mib", 1, kMaxInflightMib, &inflight_mib));
  for (const Section* s : {&target, &tls, &ingest}) TM_RETURN_IF_ERROR(s->CheckNoneLeft());
  if (data.empty()) {
    return Status::InvalidArgument("config " + path + ": 'target.data' (the data directory) " +
                                   "is missing");
  }
  c.data_dir = Resolve(base, data);
  c.cert = cert.empty() ? Resolve(c.data_dir, "server.crt") : Resolve(base, cert);
  c.key = key.empty() ? Resolve(c.data_dir, "server.key") : Resolve(base, key);
  c.ca = ca.empty() ? Resolve(c.data_dir, "ca.crt") : Resolve(base, ca);
  c.group_commit = std::chrono::milliseconds(group_commit_ms);
  c.max_inflight_bytes = uint64_t(inflight_mib) << 20;
  Status s = ValidateTargetConfig(c);
  if (!s.ok()) return s.Annotate("config " + path);
  return c;
}

Status ValidateTargetConfig(const TargetConfig& c) {
  const std::pair<const char*, const std::string*> paths[] = {
      {"target.data", &c.data_dir}, {"tls.cert", &c.cert}, {"tls.key", &c.key}, {"tls.ca", &c.ca}};
  for (const auto& [name, p] : paths) {
    if (p->empty() || (*p)[0] != '/') {
      return Status::InvalidArgument(std::string("'") + name + "' must be an absolute path, not '" +
                                     *p + "'");
    }
  }
  // HOST:PORT, where HOST may be a bracketed IPv6 address; the server
  // resolves HOST, so here only the shape and the port are checked.
  const std::string& l = c.listen;
  size_t colon = l.rfind(':');
  bool ok =
      colon != std::string::npos && colon > 0 && colon + 1 < l.size() && colon + 6 >= l.size();
  if (ok && l[0] == '[') ok = l[colon - 1] == ']' && colon > 2;
  if (ok && l[0] != '[') ok = l.find(':') == colon;  // a bare IPv6 needs brackets
  long port = 0;
  for (size_t i = colon + 1; ok && i < l.size(); ++i) {
    ok = l[i] >= '0' && l[i] <= '9';
    port = port * 10 + (l[i] - '0');
  }
  if (!ok || port < 1 || port > 65535) {
    return Status::InvalidArgument("'target.listen' must be HOST:PORT ([IPv6]:PORT) with a " +
                                   std::string("port in 1..65535, not '") + l + "'");
  }
  if (c.group_commit.count() < 0 || c.group_commit.count() > kMaxGroupCommitMs) {
    return Status::InvalidArgument("'ingest.group_commit_ms' must be in 0..1000");
  }
  uint64_t mib = c.max_inflight_bytes >> 20;
  if (c.max_inflight_bytes % (1 << 20) != 0 || mib < 1 || mib > uint64_t(kMaxInflightMib)) {
    return Status::InvalidArgument("'ingest.max_inflight_mib' must be a whole number in 1.." +
                                   std::to_string(kMaxInflightMib));
  }
  return Status::Ok();
}

std::string RenderTargetConfig(const TargetConfig& c, const std::string& relative_to) {
  auto rel = [&](const std::string& p) {
    if (relative_to.empty()) return p;
    fs::path r = fs::path(p).lexically_relative(relative_to);
    bool inside = !r.empty() && *r.begin() != ".." && r != ".";
    return inside ? r.string() : p;
  };
  std::ostringstream o;
  o << "# tidemark target configuration (see `tidemark target serve --help`).\n"
    << "# Relative paths resolve against this file's directory.\n\n"
    << "[target]\n"
    << "data = " << Quoted(c.data_dir) << "  # tenants.json and the journals\n"
    << "listen = " << Quoted(c.listen) << "  # HOST:PORT for taps\n\n"
    << "[tls]\n"
    << "cert = " << Quoted(rel(c.cert)) << "\n"
    << "key = " << Quoted(rel(c.key)) << "\n"
    << "ca = " << Quoted(rel(c.ca)) << "  # taps need a copy of this one\n\n"
    << "[ingest]\n"
    << "group_commit_ms = " << c.group_commit.count() << "\n"
    << "max_inflight_mib = " << (c.max_inflight_bytes >> 20) << "\n";
  return o.str();
}

Status WriteFileAtomically(const std::string& path, std::string_view data, unsigned mode,
                           bool replace) {
  const fs::path target(path);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Status::FromErrno(errno, "create a temporary file beside " + path);
  auto fail = [&](int err, const std::string& what) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, what);
  };
  if (::fchmod(fd, mode) != 0) return fail(errno, "chmod " + tmp);
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, "write " + tmp);
    done += size_t(n);
  }
  if (::fsync(fd) != 0) return fail(errno, "fsync " + tmp);
  if (::close(fd) != 0) {
    fd = -1;
    return fail(errno, "close " + tmp);
  }
  fd = -1;
  if (replace) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(errno, "rename to " + path);
  } else {
    // link(2) fails on an existing target: nothing is ever overwritten, even
    // by a concurrent writer that checked before us.
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      if (err == EEXIST) return Status::InvalidArgument(path + " already exists; not replacing it");
      return Status::FromErrno(err, "link " + path);
    }
    ::unlink(tmp.c_str());
  }
  return SyncDirectory(dir);
}

}  // namespace tidemark::target
