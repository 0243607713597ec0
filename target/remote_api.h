// Private to target/: the control API over TLS (docs/protocol.md#control-api-over-tls).
//
// The target's one TLS port serves two ALPN protocols: "tidemark/1" (the tap
// stream, Session) and "http/1.1" (this API). The accept path reads the
// protocol a client offers from its ClientHello before the handshake
// (PeekAlpn, without consuming a byte), then gives the connection to a
// Session or to RemoteApi::Adopt.
//
// RemoteApi serves each HTTP connection on a thread of its own with
// synchronous Beast calls over TLS (a block stream of a whole volume may
// take minutes, and journal reads block: none of it may run on the ingest
// io thread). Every request but GET /metrics carries
//   Authorization: Bearer TOKEN
//   X-Tidemark-Tenant: NAME
// checked with TargetServer::Impl::Authenticate; a missing or wrong pair is
// 401 {"error": {"code": "unauthenticated", ...}}. A tenant reaches only its
// own journal, DATA/tenants/NAME/journal.
//
// Thread-safety: Adopt() from the io thread, Stop() from any thread but a
// connection's; routes are called on connection threads, concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "server_impl.h"
#include "tenant_readers.h"
#include "tidemark/target/control.h"

namespace tidemark::target {

inline constexpr std::string_view kHttpAlpn = "http/1.1";

// The protocol the server selects from a client's ALPN list (the wire
// format: length-prefixed names): the first the client lists that the
// server speaks (wire::kAlpn or kHttpAlpn); empty when there is none.
// SelectAlpn (the handshake) and PeekAlpn (the dispatch) both use it, so
// they always agree.
std::string_view ChooseAlpn(const unsigned char* list, unsigned list_bytes);

// Waits (at most `timeout`) for the client's ClientHello on `socket`, peeks
// at it (MSG_PEEK: the handshake still reads it whole) and returns
// ChooseAlpn of its ALPN extension: empty when it offers none we speak,
// when the bytes are not a TLS ClientHello, or on timeout.
asio::awaitable<std::string> PeekAlpn(const std::shared_ptr<tcp::socket>& socket,
                                      std::chrono::milliseconds timeout);

struct ApiRequest {
  std::string method;                 // "GET", "POST", ...
  std::string path;                   // as sent, without the query
  std::vector<std::string> segments;  // of path, each percent-decoded: {"v1", "volumes", ...}
  std::map<std::string, std::string> query;  // decoded; "a=1&b" gives a:"1", b:""
  std::string tenant;                        // authenticated (empty for GET /metrics)
  nlohmann::json body;                       // parsed JSON body; null when empty
};

// A route's answer: `response` (JSON, or text) unless `stream` is set. A
// streamed answer has status 200, `headers`, and its body sent chunked:
// `stream` calls `write` for each piece, which returns false once the
// client is gone (the stream should then stop).
struct ApiReply {
  ControlResponse response;
  std::vector<std::pair<std::string, std::string>> headers;
  std::function<void(const std::function<bool(std::string_view)>& write)> stream;
};

// The routes (remote_routes.cc). Reads use readers_, bookmarks the
// tenant's ingest worker.
class ApiRoutes {
 public:
  explicit ApiRoutes(TargetServer::Impl* server);
  ~ApiRoutes();
  ApiReply Handle(const ApiRequest& req);
  // Most block bytes one GET .../read answers, and most states with data=0.
  static constexpr uint64_t kMaxReadBytes = 32 << 20;
  static constexpr uint64_t kMaxReadStates = 1 << 20;

 private:
  // readers_.With(), but "volume 'VOLUME' not found" when the tenant has no
  // journal.
  Status WithReader(const std::string& tenant, std::string_view volume,
                    const std::function<Status(const journal::Journal&)>& fn);
  ApiReply Points(const ApiRequest& req, const std::string& volume);
  ApiReply Resolve(const ApiRequest& req, const std::string& volume);
  ApiReply Bookmark(const ApiRequest& req, const std::string& volume);
  ApiReply Blocks(const ApiRequest& req, const std::string& volume);
  // GET .../read (remote_read.cc): random access to a point's blocks.
  ApiReply Read(const ApiRequest& req, const std::string& volume);
  ApiReply Volumes(const ApiRequest& req);
  ApiReply ServerStatus(const ApiRequest& req);
  ApiReply Metrics();

  TargetServer::Impl* server_;
  TenantReaders readers_;
};

class RemoteApi {
 public:
  explicit RemoteApi(TargetServer::Impl* server) : server_(server), routes_(server) {}
  ~RemoteApi() { Stop(); }
  RemoteApi(const RemoteApi&) = delete;
  RemoteApi& operator=(const RemoteApi&) = delete;

  // Serves `socket` (its ClientHello offered http/1.1) on a new thread: TLS
  // handshake with the server's context, then HTTP requests until the
  // client closes, 60 s of idleness, or Stop(). Beyond kMaxConnections at
  // once, or after Stop(), the connection is closed at once.
  void Adopt(tcp::socket socket);
  // Closes every connection and joins their threads. Idempotent.
  void Stop();

  static constexpr size_t kMaxConnections = 32;

 private:
  struct Conn {
    std::thread thread;
    int fd = -1;        // guarded by mu_; -1 once the connection closes it
    bool done = false;  // guarded by mu_
  };
  // The connection's thread: TLS and HTTP over the socket `fd` (owned).
  void Serve(Conn* conn, tcp protocol, int fd);
  // The answer to one request: authentication, then routes_.
  ApiReply Route(ApiRequest& req, std::string_view authorization, std::string_view tenant,
                 std::string_view body);
  void Reap();  // joins finished threads; mu_ held

  TargetServer::Impl* server_;
  ApiRoutes routes_;
  std::mutex mu_;
  std::list<Conn> conns_;  // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
};

}  // namespace tidemark::target
