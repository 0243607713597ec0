// Private to target/: the server's state and one tap session.
#pragma once

#include <utility>  // before Asio under g++ 12 / C++20 (Boost 1.74)

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <atomic>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tenant_journal.h"
#include "tidemark/journal/wire.h"
#include "tidemark/target/server.h"
#include "tidemark/target/tenants.h"

namespace tidemark::target {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

class Session;
class RemoteApi;

struct TargetServer::Impl {
  explicit Impl(TargetConfig c) : config(std::move(c)) {}
  TargetConfig config;
  asio::io_context io{1};
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread thread;
  std::set<std::shared_ptr<Session>> sessions;  // io thread only
  bool stopped = false;                         // io thread only

  std::mutex mu;  // guards the three below
  std::map<std::string, std::shared_ptr<TenantJournal>> journals;  // by tenant
  std::unique_ptr<TenantStore> tenants;
  struct timespec tenants_mtime {};

  std::atomic<uint64_t> sessions_total{0}, writes{0}, write_bytes{0}, rejected{0};
  // The control API over TLS (remote_api.h): connections whose ClientHello
  // asks for http/1.1. Declared last: destroyed first.
  std::shared_ptr<RemoteApi> api;

  // Re-reads tenants.json when it changed (tenant add / token rotation take
  // effect without a restart).
  bool Authenticate(const std::string& tenant, const std::string& token);
  Result<std::shared_ptr<TenantJournal>> JournalFor(const std::string& tenant);
  // The session of `tenant` that claimed `volume`, if any (io thread).
  std::shared_ptr<Session> SessionOf(const std::string& tenant, const std::string& volume);
  asio::awaitable<void> Accept();
  // Gives an accepted connection to a Session (tap stream) or to the API,
  // by the ALPN protocol its ClientHello asks for.
  asio::awaitable<void> Dispatch(tcp::socket socket);
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(TargetServer::Impl* server, tcp::socket socket)
      : server_(server), stream_(std::move(socket), server->tls),
        out_signal_(server->io), hello_timer_(server->io), inflight_signal_(server->io) {}
  void Start();
  // Closes the connection (io thread); Run() then ends and releases claims.
  void Close();
  const std::string& tenant() const { return tenant_; }
  // The volume's name, or "group/G" for a consistency group's session (a
  // name that no volume can have).
  const std::string& volume() const { return volume_name_; }
  const std::string& tap_id() const { return tap_id_; }

 private:
  asio::awaitable<void> Run();
  asio::awaitable<void> WriteLoop();
  asio::awaitable<Result<wire::Frame>> ReadFrame();
  // Runs `work` on the tenant journal's worker; resumes once it is durable.
  asio::awaitable<Status> Call(TenantJournal::Work work);
  asio::awaitable<Status> OnHello(const wire::Frame& frame);
  Status OnWrites(wire::Frame& frame);
  Status OnImport(wire::Frame& frame);
  asio::awaitable<Status> OnImportDone(const wire::Frame& frame);
  Status OnBookmark(const wire::Frame& frame);
  Status OnUnordered(const wire::Frame& frame);
  Status OnHashRequest(const wire::Frame& frame);
  void Send(wire::FrameType type, std::string_view payload);
  // Sends ERROR and closes after it.
  void SendError(std::string_view code, const std::string& message);
  void SendError(const Status& s);
  void Wake() { out_signal_.cancel(); }

  TargetServer::Impl* server_;
  ssl::stream<tcp::socket> stream_;
  wire::FrameReader reader_;
  std::vector<char> read_buf_ = std::vector<char>(256 << 10);
  std::string out_;          // frames to send
  bool closing_ = false;     // no more frames are read; out_ drains, then close
  bool closed_ = false;
  bool writer_started_ = false, writer_done_ = false;
  asio::steady_timer out_signal_;
  asio::steady_timer hello_timer_;
  uint64_t inflight_bytes_ = 0;  // WRITES/IMPORT payload bytes posted, not yet durable
  asio::steady_timer inflight_signal_;

  std::string tenant_, tap_id_, volume_name_;
  std::shared_ptr<TenantJournal> journal_;
  uint32_t volume_id_ = 0;           // the first volume's (the group's seq space)
  std::vector<uint32_t> volume_ids_;  // by the WriteEntry's volume index
  bool claimed_ = false;
  Seq acked_ = kNoSeq;
  Status failed_;  // the first failed journal round: later replies stop
};

}  // namespace tidemark::target
