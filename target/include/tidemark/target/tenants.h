// Tenants and their tokens (docs/design.md#security): DATA/tenants.json.
//
// A tap authenticates as a tenant with a bearer token, "tmk_" followed by 43
// base64url characters (32 random bytes from RAND_bytes). The target keeps
// only the SHA-256 of each token; the clear token is shown once, when
// `tidemark tenant add` or `tidemark tenant token` makes it, and is never
// written anywhere.
//
// File (JSON, mode 0600, written atomically: temp file, fsync, rename, fsync
// of the directory, so a reader sees the old or the new file, whole):
//   {"format": 1, "tenants": [{"name": N, "token_sha256": 64 lower-case hex,
//                              "created": RFC 3339 UTC}, ...]}
// A format above 1 is kNotSupported. Tenants are kept sorted by name.
//
// Thread-safety: a TenantStore is a value. Its const members (List,
// Authenticate, path) may be called from many threads at once; Add, Rotate
// and Save need exclusive access. The server keeps a
// std::shared_ptr<const TenantStore> and, when the file's mtime changes,
// Loads a new store and swaps the pointer, so it never mutates one that
// readers use. Across processes, Add and Rotate hold an flock on
// DATA/tenants.json.lock while they re-read, change and save the file, so
// two `tidemark tenant` commands at once do not lose each other's change.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tidemark/journal/status.h"
#include "tidemark/journal/types.h"

namespace tidemark::target {

inline constexpr std::string_view kTenantsFile = "tenants.json";

struct TenantInfo {
  std::string name;
  TimeNs created_ns = 0;  // when the tenant was added (not when its token was rotated)
};

// Ok for 1-64 characters of [A-Za-z0-9._-] beginning with a letter or digit
// (so that a name is also a safe file name and never reads as an option);
// kInvalidArgument saying so otherwise.
Status CheckTenantName(std::string_view name);

class TenantStore {
 public:
  // Reads the store at `path` (normally DATA/tenants.json). A missing file
  // is an empty store (Save creates it). kCorruption naming the file and
  // what is wrong when it is not a valid tenants file (bad JSON, a bad name,
  // hash or time, a duplicate name); kNotSupported for a newer format;
  // kIOError when it cannot be read.
  static Result<TenantStore> Load(const std::string& path);

  // Adds tenant `name` and returns its new token (the only copy: the caller
  // shows it once). kInvalidArgument when the name is bad or already exists;
  // errors of Save (the store is then unchanged).
  Result<std::string> Add(const std::string& name);

  // Gives tenant `name` a new token and returns it; the old token stops
  // authenticating at once (in this store; a server after its reload).
  // kNotFound when there is no such tenant; errors of Save.
  Result<std::string> Rotate(const std::string& name);

  // Every tenant, sorted by name.
  std::vector<TenantInfo> List() const;

  // True when `token` is the current token of tenant `name`. Compares
  // SHA-256 digests with CRYPTO_memcmp, so the time taken does not depend on
  // how much of the token matches; an unknown name costs the same hash and
  // comparison (tenant names are not secret, tokens are).
  bool Authenticate(std::string_view name, std::string_view token) const;

  // Writes the store to its path atomically (see above).
  Status Save() const;

  const std::string& path() const { return path_; }

 private:
  struct Entry {
    std::string name;
    std::array<uint8_t, 32> token_sha256{};
    TimeNs created_ns = 0;
  };
  explicit TenantStore(std::string path) : path_(std::move(path)) {}
  // Re-reads the file under the cross-process lock, applies `change` to the
  // fresh store, saves it and adopts it.
  template <class F>
  Result<std::string> Mutate(F&& change);

  std::string path_;
  std::vector<Entry> entries_;  // sorted by name, unique
};

}  // namespace tidemark::target
