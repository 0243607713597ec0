#include <openssl/ssl.h>
#include <sys/stat.h>

#include <filesystem>
#include <future>

#include "remote_api.h"
#include "server_impl.h"

namespace tidemark::target {

namespace {

// ALPN: "tidemark/1" (the tap stream) and "http/1.1" (the control API over
// TLS), the first of them the client lists (Dispatch chose the same one).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
  std::string_view chosen = ChooseAlpn(in, inlen);
  if (chosen.empty()) return SSL_TLSEXT_ERR_ALERT_FATAL;
  for (unsigned i = 0; i < inlen; i += 1 + in[i]) {
    if (std::string_view(reinterpret_cast<const char*>(in + i + 1), in[i]) == chosen) {
      *out = in + i + 1;
      *outlen = in[i];
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// How long a new connection may take to send its ClientHello.
constexpr auto kClientHelloTimeout = std::chrono::seconds(10);

Result<tcp::endpoint> ParseEndpoint(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("listen address '" + listen + "' is not HOST:PORT");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned long port = 0;
  try {
    size_t used = 0;
    port = std::stoul(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    return Status::InvalidArgument("listen address '" + listen + "' has a bad port");
  }
  boost::system::error_code ec;
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty()) {
    return Status::InvalidArgument("cannot resolve listen host '" + host + "': " + ec.message());
  }
  return results.begin()->endpoint();
}

}  // namespace

bool TargetServer::Impl::Authenticate(const std::string& tenant, const std::string& token) {
  std::lock_guard lock(mu);
  std::string path = config.data_dir + "/" + std::string(kTenantsFile);
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 &&
      (!tenants || st.st_mtim.tv_sec != tenants_mtime.tv_sec ||
       st.st_mtim.tv_nsec != tenants_mtime.tv_nsec)) {
    auto store = TenantStore::Load(path);
    if (store) {
      tenants = std::make_unique<TenantStore>(std::move(store.value()));
      tenants_mtime = st.st_mtim;
    }
  }
  return tenants && tenants->Authenticate(tenant, token);
}

Result<std::shared_ptr<TenantJournal>> TargetServer::Impl::JournalFor(const std::string& tenant) {
  std::lock_guard lock(mu);
  auto it = journals.find(tenant);
  if (it != journals.end()) return it->second;
  std::string dir = config.data_dir + "/tenants/" + tenant;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  BOOST_OUTCOME_TRY(tj, TenantJournal::Open(dir + "/journal", config.group_commit));
  journals.emplace(tenant, tj);
  return tj;
}

std::shared_ptr<Session> TargetServer::Impl::SessionOf(const std::string& tenant,
                                                       const std::string& volume) {
  for (const auto& s : sessions) {
    if (s->tenant() == tenant && s->volume() == volume) return s;
  }
  return nullptr;
}

asio::awaitable<void> TargetServer::Impl::Accept() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopped || ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. EMFILE: keep serving the sessions we have
    }
    socket.set_option(tcp::no_delay(true), ec);
    socket.set_option(asio::socket_base::keep_alive(true), ec);
    asio::co_spawn(io, Dispatch(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> TargetServer::Impl::Dispatch(tcp::socket socket) {
  auto sock = std::make_shared<tcp::socket>(std::move(socket));
  std::string proto = co_await PeekAlpn(sock, kClientHelloTimeout);
  if (stopped) co_return;
  if (proto == kHttpAlpn) {
    api->Adopt(std::move(*sock));
    co_return;
  }
  // Everything else is the tap stream's, as before the API existed: a
  // client without ALPN is a tap; one offering neither protocol, or bytes
  // that are no ClientHello, fail the Session's handshake.
  ++sessions_total;
  auto session = std::make_shared<Session>(this, std::move(*sock));
  sessions.insert(session);
  session->Start();
}

Result<std::unique_ptr<TargetServer>> TargetServer::Start(const TargetConfig& config,
                                                          bool defer_listen) {
  TM_RETURN_IF_ERROR(ValidateTargetConfig(config));
  auto impl = std::make_unique<Impl>(config);
  boost::system::error_code ec;
  SSL_CTX* ctx = impl->tls.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  impl->tls.use_certificate_chain_file(config.cert, ec);
  if (ec) return Status::InvalidArgument("cannot load certificate " + config.cert + ": " + ec.message());
  impl->tls.use_private_key_file(config.key, ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument("cannot load key " + config.key + ": " + ec.message());
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, nullptr);
  auto tenants = TenantStore::Load(config.data_dir + "/" + std::string(kTenantsFile));
  if (!tenants) return tenants.error();

  BOOST_OUTCOME_TRY(endpoint, ParseEndpoint(config.listen));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (ec) return Status::IOError("cannot listen on " + config.listen + ": " + ec.message());

  Impl* in = impl.get();
  in->api = std::make_shared<RemoteApi>(in);
  std::unique_ptr<TargetServer> server(new TargetServer(std::move(impl)));
  if (!defer_listen) TM_RETURN_IF_ERROR(server->Ready());
  return server;
}

Status TargetServer::Ready() {
  Impl* in = impl_.get();
  if (in->thread.joinable()) return Status::Ok();
  boost::system::error_code ec;
  in->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + in->config.listen + ": " + ec.message());
  asio::co_spawn(in->io, in->Accept(), asio::detached);
  in->thread = std::thread([in] { in->io.run(); });
  return Status::Ok();
}

TargetServer::TargetServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TargetServer::~TargetServer() { Stop(); }

std::string TargetServer::listen_address() const {
  boost::system::error_code ec;
  tcp::endpoint ep = impl_->acceptor.local_endpoint(ec);
  if (ec) return impl_->config.listen;
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

ServerStats TargetServer::stats() const {
  ServerStats s;
  if (impl_->thread.joinable()) {
    auto open = std::make_shared<std::promise<uint64_t>>();
    auto f = open->get_future();
    Impl* in = impl_.get();
    asio::post(in->io, [in, open] { open->set_value(in->sessions.size()); });
    if (f.wait_for(std::chrono::seconds(2)) == std::future_status::ready) s.sessions = f.get();
  }
  s.sessions_total = impl_->sessions_total;
  s.writes = impl_->writes;
  s.write_bytes = impl_->write_bytes;
  s.rejected = impl_->rejected;
  return s;
}

void TargetServer::Stop() {
  Impl& in = *impl_;
  if (!in.thread.joinable()) return;
  in.api->Stop();  // API connections first: they may wait on the journals
  asio::post(in.io, [&in] {
    in.stopped = true;
    boost::system::error_code ec;
    in.acceptor.close(ec);
    for (const auto& s : std::vector<std::shared_ptr<Session>>(in.sessions.begin(), in.sessions.end())) {
      s->Close();
    }
  });
  // Sessions end once their sockets are closed and pending journal calls
  // returned; then io.run() runs out of work.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::make_shared<std::promise<size_t>>();
    auto f = left->get_future();
    asio::post(in.io, [&in, left] { left->set_value(in.sessions.size()); });
    if (f.wait_for(std::chrono::seconds(1)) == std::future_status::ready && f.get() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  in.io.stop();
  in.thread.join();
  std::lock_guard lock(in.mu);
  in.journals.clear();  // joins the workers: their last rounds are synced
}

}  // namespace tidemark::target
