// The target's configuration file (target.toml) and data directory.
//
// `tidemark target init --data DIR` creates DIR/target.toml; `tidemark
// target serve --config F` and `tidemark tenant ... --config F` read it.
// Layout (every key optional except target.data):
//
//   [target]
//   data = "/abs/dir"          # data directory: tenants.json, journals
//   listen = "0.0.0.0:7443"    # HOST:PORT for taps ([v6]:PORT for IPv6)
//   [tls]
//   cert = "server.crt"        # default DATA/server.crt
//   key = "server.key"         # default DATA/server.key
//   ca = "ca.crt"              # default DATA/ca.crt
//   [ingest]
//   group_commit_ms = 2        # 0..1000
//   max_inflight_mib = 256     # 1..1048576
//
// Relative paths resolve against the directory of the config file. Unknown
// tables or keys are errors naming the key (a typo must not silently fall
// back to a default), as are values of the wrong type or out of range.
//
// toml++ stays inside config.cc.
// Thread-safety: value types and free functions without shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "tidemark/journal/status.h"

namespace tidemark::target {

inline constexpr std::string_view kConfigFile = "target.toml";

struct TargetConfig {
  std::string data_dir;                        // absolute
  std::string listen = "0.0.0.0:7443";         // HOST:PORT or [IPv6]:PORT
  std::string cert, key, ca;                   // absolute; default data_dir/server.crt,
                                               // server.key, ca.crt
  std::chrono::milliseconds group_commit{2};   // how long ingest waits to batch a WAL sync
  uint64_t max_inflight_bytes = 256ull << 20;  // unacknowledged bytes per connection
};

// Reads and checks the config at `path`. kNotFound / kIOError when it cannot
// be read; kInvalidArgument with one line naming the file and the key (or
// the line, for TOML syntax errors) otherwise.
Result<TargetConfig> LoadTargetConfig(const std::string& path);

// Checks a config built in code (as LoadTargetConfig checks a file): data_dir,
// cert, key and ca absolute and non-empty, listen a HOST:PORT with a port in
// 1..65535, group_commit and max_inflight_bytes within the ranges above
// (max_inflight_bytes a whole number of MiB). kInvalidArgument naming the
// field otherwise.
Status ValidateTargetConfig(const TargetConfig& config);

// The config as a TOML file in the layout above, with comments. Paths under
// `relative_to` (an absolute directory, normally the one the file goes to)
// are written relative to it, data_dir always absolute. LoadTargetConfig of
// the result, placed in `relative_to`, gives back `config`.
std::string RenderTargetConfig(const TargetConfig& config, const std::string& relative_to = "");

// Writes `data` to `path` atomically and durably: a temporary file beside
// it with mode `mode`, fsync, then into place, then fsync of the directory.
// With `replace` false the file is linked into place and an existing `path`
// is kInvalidArgument naming it (race-free: nothing is overwritten); with
// `replace` true it is renamed over any old one. kIOError / kNoSpace from
// the file system. Shared by the target's setup files (keys, tenants.json,
// target.toml).
Status WriteFileAtomically(const std::string& path, std::string_view data, unsigned mode,
                           bool replace);

}  // namespace tidemark::target
