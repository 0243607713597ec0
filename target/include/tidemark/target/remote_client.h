// The CLI side of the target's control API over TLS
// (docs/protocol.md#control-api-over-tls): `tidemark points|bookmark|restore
// --target HOST:PORT`.
//
// A RemoteClient holds one TLS 1.3 connection (ALPN "http/1.1") to a target
// and sends requests on it one at a time, as the tenant it was given
// (Authorization: Bearer TOKEN, X-Tidemark-Tenant: NAME). The server's
// certificate must chain to the CA file given (pinned: the system's trust
// store is not used) and name the host of HOST:PORT. The connection is made
// again when the server closed it between requests.
//
// Asio and OpenSSL stay inside remote_client.cc.
// Thread-safety: one thread per RemoteClient.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tidemark/journal/journal.h"
#include "tidemark/journal/status.h"

namespace tidemark::target {

struct RemoteOptions {
  std::string target;   // HOST:PORT, [IPv6]:PORT
  std::string tenant;   // tenant name
  std::string token;    // the tenant's token (never logged)
  std::string ca_file;  // PEM: the target's CA (its ca.crt)
  // Longest wait for one network step (connect, handshake, one read or write).
  std::chrono::milliseconds step_timeout = std::chrono::seconds(60);
};

class RemoteClient {
 public:
  // Checks the options and loads the CA; connects on the first request.
  // kInvalidArgument for a bad HOST:PORT or an empty tenant or token,
  // naming the CA file when it cannot be loaded.
  static Result<std::unique_ptr<RemoteClient>> Create(const RemoteOptions& options);
  ~RemoteClient();
  RemoteClient(const RemoteClient&) = delete;
  RemoteClient& operator=(const RemoteClient&) = delete;

  // Sends `method` on `path` (already escaped: see VolumePath) with `body`
  // (null: none) and returns the JSON of a 2xx answer. Errors:
  //   - an error answer: the Status its {"error": {"code", "message"}} names
  //     (404 kNotFound, 400 kInvalidArgument, ...: control.h's table);
  //     401 is kAborted "unauthenticated: MESSAGE";
  //   - kIOError "cannot connect to HOST:PORT: ..." / "TLS with HOST:PORT
  //     failed ..." (a certificate the CA does not sign, a host name it
  //     does not carry) / "the target at HOST:PORT does not serve the
  //     control API" (no http/1.1 in ALPN);
  //   - kTryAgain when a step times out or the connection drops before the
  //     answer (the request may or may not have taken effect).
  Result<nlohmann::json> Call(std::string_view method, const std::string& path,
                              const nlohmann::json& body = nullptr);

  // GET /v1/volumes/VOLUME/blocks?seq=SEQ: calls fn, in block order, for
  // every block of `volume` that is not all zeros at seq (block_bytes
  // long), checking the stream's end (block_stream.h): a stream cut short
  // is kCorruption "block stream truncated ...", never a short success.
  // `volume` is the geometry the caller expects (from GET /v1/volumes); an
  // answer for another geometry or seq is kCorruption. fn's first error
  // stops the stream and is returned. Errors as Call's.
  Status StreamBlocks(const journal::VolumeInfo& volume, Seq seq, const journal::BlockFn& fn);

  // GET /v1/volumes/VOLUME/read?seq=SEQ&block=B&count=C: blocks
  // [first_block, first_block + count) of `volume` at `seq` (a point, as
  // resolve answers), with the contract of journal::Journal::ReadBlocks:
  // bytes into `out` unless null, states into `states` unless null. Long
  // ranges are split into several requests (16 MiB of blocks, or 256 Ki
  // states, each). An answer whose length or CRC32C does not check is
  // kCorruption; a seq that is not a point kInvalidArgument; other errors
  // as Call's (another tenant's volume is kNotFound).
  Status ReadBlocks(const journal::VolumeInfo& volume, Seq seq, uint64_t first_block,
                    uint32_t count, char* out, journal::BlockState* states);

  // "/v1/volumes/" + the percent-escaped volume name + "/" + what.
  static std::string VolumePath(std::string_view volume, std::string_view what);

  // The volume's geometry from GET /v1/volumes (kNotFound "no volume 'X'").
  Result<journal::VolumeInfo> FindVolume(std::string_view volume);
  // The tenant's group's volumes, in member order; kNotFound when none.
  Result<journal::GroupInfo> FindGroup(std::string_view group);

  struct Impl;

 private:
  explicit RemoteClient(std::unique_ptr<Impl> impl);
  // One GET .../read of ReadBlocks.
  Status ReadPiece(const journal::VolumeInfo& volume, Seq seq, uint64_t first_block,
                   uint32_t count, char* out, journal::BlockState* states);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidemark::target
