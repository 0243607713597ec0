#include "tidemark/target/tenants.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "tidemark/journal/time.h"
#include "tidemark/target/config.h"

namespace tidemark::target {

namespace {

using Digest = std::array<uint8_t, 32>;

constexpr int kFormat = 1;
constexpr size_t kTokenBytes = 32;
constexpr std::string_view kTokenPrefix = "tmk_";

Digest Sha256(std::string_view data) {
  Digest d;
  unsigned int n = 0;
  // Fails only without memory or with a broken OpenSSL: a bug, not an error.
  TM_CHECK(EVP_Digest(data.data(), data.size(), d.data(), &n, EVP_sha256(), nullptr) == 1 &&
           n == d.size());
  return d;
}

std::string Hex(const Digest& d) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool FromHex(const std::string& s, Digest* d) {
  if (s.size() != 2 * d->size()) return false;
  auto nibble = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  for (size_t i = 0; i < d->size(); ++i) {
    int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*d)[i] = uint8_t(hi << 4 | lo);
  }
  return true;
}

// "tmk_" + the 32 random bytes in unpadded base64url (43 characters).
Result<std::string> NewToken() {
  unsigned char raw[kTokenBytes];
  if (RAND_bytes(raw, sizeof raw) != 1) return Status::IOError("no random bytes for a token");
  unsigned char b64[4 * ((kTokenBytes + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, raw, sizeof raw);
  OPENSSL_cleanse(raw, sizeof raw);
  std::string token(kTokenPrefix);
  for (int i = 0; i < n; ++i) {
    char c = char(b64[i]);
    if (c == '=') break;
    token += c == '+' ? '-' : c == '/' ? '_' : c;
  }
  return token;
}

Status Corrupt(const std::string& path, const std::string& what) {
  return Status::Corruption("tenants file " + path + ": " + what);
}

// Holds an exclusive flock on PATH.lock while alive.
class FileLock {
 public:
  static Result<FileLock> Acquire(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FromErrno(errno, "open " + path);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "lock " + path);
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

Status CheckTenantName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.' && name.front() != '-';
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (ok) return Status::Ok();
  std::string shown;  // the name as given, minus what would break a one-line message
  for (char c : name.substr(0, 80)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  return Status::InvalidArgument("bad tenant name '" + shown +
                                 "': use 1-64 characters of A-Z a-z 0-9 . _ -, beginning with a "
                                 "letter or digit");
}

Result<TenantStore> TenantStore::Load(const std::string& path) {
  TenantStore store(path);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return store;
    return Status::FromErrno(errno, "open tenants file " + path);
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  int err = errno;
  ::close(fd);
  if (n < 0) return Status::FromErrno(err, "read tenants file " + path);

  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Corrupt(path, "not valid JSON");
  if (!j.is_object() || !j.contains("format") || !j["format"].is_number_integer()) {
    return Corrupt(path, "no integer \"format\"");
  }
  if (j["format"].get<int64_t>() > kFormat) {
    return Status::NotSupported("tenants file " + path + " has format " + j["format"].dump() +
                                "; this build reads format " + std::to_string(kFormat));
  }
  if (j["format"].get<int64_t>() != kFormat)
    return Corrupt(path, "bad format " + j["format"].dump());
  if (!j.contains("tenants") || !j["tenants"].is_array())
    return Corrupt(path, "no \"tenants\" array");
  for (const auto& t : j["tenants"]) {
    auto str = [&](const char* key) -> const std::string* {
      if (!t.is_object() || !t.contains(key) || !t[key].is_string()) return nullptr;
      return t[key].get_ptr<const std::string*>();
    };
    const std::string *name = str("name"), *hash = str("token_sha256"), *created = str("created");
    if (!name || !hash || !created) {
      return Corrupt(path, "a tenant lacks a string \"name\", \"token_sha256\" or \"created\"");
    }
    Entry e;
    e.name = *name;
    if (Status bad = CheckTenantName(e.name); !bad.ok()) return Corrupt(path, bad.message());
    if (!FromHex(*hash, &e.token_sha256)) {
      return Corrupt(path, "tenant " + e.name + ": token_sha256 is not 64 lower-case hex digits");
    }
    auto time = ParseTime(*created, NowNs());
    if (!time) return Corrupt(path, "tenant " + e.name + ": bad created time '" + *created + "'");
    e.created_ns = time.value();
    store.entries_.push_back(std::move(e));
  }
  auto by_name = [](const Entry& a, const Entry& b) { return a.name < b.name; };
  std::sort(store.entries_.begin(), store.entries_.end(), by_name);
  auto dup = std::adjacent_find(store.entries_.begin(), store.entries_.end(),
                                [](const Entry& a, const Entry& b) { return a.name == b.name; });
  if (dup != store.entries_.end()) return Corrupt(path, "tenant " + dup->name + " appears twice");
  return store;
}

Status TenantStore::Save() const {
  nlohmann::json tenants = nlohmann::json::array();
  for (const Entry& e : entries_) {
    tenants.push_back({{"name", e.name},
                       {"token_sha256", Hex(e.token_sha256)},
                       {"created", FormatTime(e.created_ns)}});
  }
  nlohmann::json j = {{"format", kFormat}, {"tenants", tenants}};
  return WriteFileAtomically(path_, j.dump(2) + "\n", 0600, /*replace=*/true);
}

template <class F>
Result<std::string> TenantStore::Mutate(F&& change) {
  auto lock = FileLock::Acquire(path_ + ".lock");  // held until we return
  if (!lock) return lock.error();
  // Another process may have changed the file since this store was loaded.
  BOOST_OUTCOME_TRY(fresh, Load(path_));
  BOOST_OUTCOME_TRY(token, change(fresh.entries_));
  TM_RETURN_IF_ERROR(fresh.Save());
  entries_ = std::move(fresh.entries_);
  return token;
}

Result<std::string> TenantStore::Add(const std::string& name) {
  TM_RETURN_IF_ERROR(CheckTenantName(name));
  return Mutate([&](std::vector<Entry>& entries) -> Result<std::string> {
    auto it = std::lower_bound(entries.begin(), entries.end(), name,
                               [](const Entry& e, const std::string& n) { return e.name < n; });
    if (it != entries.end() && it->name == name) {
      return Status::InvalidArgument("tenant " + name + " already exists");
    }
    BOOST_OUTCOME_TRY(token, NewToken());
    Entry e;
    e.name = name;
    e.token_sha256 = Sha256(token);
    e.created_ns = NowNs();
    entries.insert(it, std::move(e));
    return token;
  });
}

Result<std::string> TenantStore::Rotate(const std::string& name) {
  TM_RETURN_IF_ERROR(CheckTenantName(name));
  return Mutate([&](std::vector<Entry>& entries) -> Result<std::string> {
    auto it = std::find_if(entries.begin(), entries.end(),
                           [&](const Entry& e) { return e.name == name; });
    if (it == entries.end()) return Status::NotFound("no tenant " + name);
    BOOST_OUTCOME_TRY(token, NewToken());
    it->token_sha256 = Sha256(token);
    return token;
  });
}

std::vector<TenantInfo> TenantStore::List() const {
  std::vector<TenantInfo> out;
  for (const Entry& e : entries_) out.push_back({e.name, e.created_ns});
  return out;
}

bool TenantStore::Authenticate(std::string_view name, std::string_view token) const {
  const Digest got = Sha256(token);
  // An unknown name is compared against a digest no token has, so that it
  // costs what a known one does.
  static const Digest kNoToken{};
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const Entry& e) { return e.name == name; });
  const Digest& want = it != entries_.end() ? it->token_sha256 : kNoToken;
  bool same = CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
  return same && it != entries_.end();
}

}  // namespace tidemark::target
