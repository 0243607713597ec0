// RemoteApi: the HTTP/1.1 connections of the control API over TLS, one
// thread each (remote_api.h). Each thread runs Beast's asynchronous calls
// on a private io_context to completion, one at a time: synchronous code
// with beast::tcp_stream's timeouts.
#include "remote_api.h"

#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace tidemark::target {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(60);  // between requests
constexpr auto kIoTimeout = std::chrono::seconds(60);    // one read or write step
constexpr uint64_t kMaxBodyBytes = 1 << 20;

// Starts one asynchronous operation with a handler that records its result
// and runs `ioc` until it completes.
template <class Start>
error_code Await(asio::io_context& ioc, Start&& start) {
  error_code result;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes `s` ('+' stays '+'); false on a bad escape.
bool Decode(std::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || Hex(s[i + 1]) < 0 || Hex(s[i + 2]) < 0) return false;
    out->push_back(static_cast<char>(Hex(s[i + 1]) * 16 + Hex(s[i + 2])));
    i += 2;
  }
  return true;
}

// Splits "/a/b%2Fc?x=1&y" into its decoded segments and query.
Status ParseTarget(std::string_view target, ApiRequest* req) {
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  req->path = std::string(path);
  if (path.empty() || path[0] != '/') return Status::InvalidArgument("bad request target");
  std::string part;
  for (size_t at = 1; at <= path.size();) {
    size_t end = std::min(path.find('/', at), path.size());
    if (!Decode(path.substr(at, end - at), &part)) {
      return Status::InvalidArgument("bad percent escape in " + std::string(path));
    }
    req->segments.push_back(part);
    at = end + 1;
  }
  if (q == std::string_view::npos) return Status::Ok();
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    std::string_view item = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), item.size() + 1));
    size_t eq = item.find('=');
    std::string key, value;
    if (!Decode(item.substr(0, eq), &key) ||
        (eq != std::string_view::npos && !Decode(item.substr(eq + 1), &value))) {
      return Status::InvalidArgument("bad percent escape in the query");
    }
    if (!key.empty()) req->query[key] = value;
  }
  return Status::Ok();
}

ApiReply Unauthenticated(std::string message) {
  ApiReply r;
  r.response.status = 401;
  r.response.body = {{"error", {{"code", "unauthenticated"}, {"message", std::move(message)}}}};
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tidemark\"");
  return r;
}

http::response<http::string_body> Render(ApiReply& reply, unsigned version, bool keep_alive) {
  ControlResponse& a = reply.response;
  http::response<http::string_body> res;
  res.version(version);
  res.result(a.status >= 100 && a.status <= 599 ? a.status : 500);
  res.set(http::field::server, "tidemark");
  for (const auto& [name, value] : reply.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  if (!a.text.empty()) {
    res.set(http::field::content_type,
            a.content_type.empty() ? std::string("text/plain; charset=utf-8") : a.content_type);
    res.body() = std::move(a.text);
  } else if (!a.body.is_null()) {
    res.set(http::field::content_type, "application/json");
    res.body() = a.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  res.prepare_payload();
  return res;
}

}  // namespace

ApiReply RemoteApi::Route(ApiRequest& req, std::string_view authorization, std::string_view tenant,
                          std::string_view body) {
  bool metrics = req.method == "GET" && req.segments == std::vector<std::string>{"metrics"};
  if (!metrics) {
    // "Bearer TOKEN"; the scheme is case-insensitive (RFC 7235).
    std::string_view token;
    if (authorization.size() > 7 && strncasecmp(authorization.data(), "Bearer ", 7) == 0) {
      token = authorization.substr(7);
    }
    if (token.empty() || tenant.empty()) {
      return Unauthenticated(
          "requests need 'Authorization: Bearer TOKEN' and 'X-Tidemark-Tenant: NAME'");
    }
    if (!server_->Authenticate(std::string(tenant), std::string(token))) {
      return Unauthenticated("tenant '" + std::string(tenant) + "' or its token was not accepted");
    }
    req.tenant = std::string(tenant);
  }
  if (!body.empty()) {
    req.body = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (req.body.is_discarded()) {
      return {ErrorResponse(Status::InvalidArgument("request body is not JSON")), {}, {}};
    }
  }
  try {
    return routes_.Handle(req);
  } catch (const std::exception& e) {
    ApiReply r{ErrorResponse(
                   Status::Aborted(req.method + " " + req.path + ": internal error: " + e.what())),
               {},
               {}};
    r.response.status = 500;
    return r;
  }
}

void RemoteApi::Serve(Conn* conn, tcp protocol, int fd) {
  asio::io_context ioc(1);
  beast::tcp_stream tcp_stream(ioc);
  error_code ec;
  tcp_stream.socket().assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    std::lock_guard lock(mu_);
    conn->fd = -1;
    return;
  }
  TlsStream stream(std::move(tcp_stream), server_->tls);
  auto& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(kHandshakeTimeout);
  ec = Await(ioc, [&](auto h) { stream.async_handshake(ssl::stream_base::server, h); });
  const unsigned char* alpn = nullptr;
  unsigned alpn_len = 0;
  if (!ec) SSL_get0_alpn_selected(stream.native_handle(), &alpn, &alpn_len);
  bool open = !ec && std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) == kHttpAlpn;
  if (!open) ++server_->rejected;
  beast::flat_buffer buffer;
  while (open) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxBodyBytes);
    lowest.expires_after(kIdleTimeout);
    ec = Await(ioc, [&](auto h) { http::async_read(stream, buffer, parser, h); });
    ApiReply reply;
    bool keep = false;
    unsigned version = 11;
    if (ec == http::error::body_limit) {
      reply.response = ErrorResponse(Status::InvalidArgument("request body over 1 MiB"));
      reply.response.status = 413;
    } else if (ec) {
      break;  // the client closed, went idle, or sent garbage
    } else {
      const auto& req = parser.get();
      version = req.version();
      keep = req.keep_alive();
      lowest.expires_never();  // a route may take long (journal open, bookmark)
      ApiRequest areq;
      areq.method = std::string(req.method_string());
      Status parsed =
          ParseTarget(std::string_view(req.target().data(), req.target().size()), &areq);
      if (!parsed.ok()) {
        reply.response = ErrorResponse(parsed);
      } else {
        auto auth = req[http::field::authorization];
        auto tenant = req["X-Tidemark-Tenant"];
        reply = Route(areq, std::string_view(auth.data(), auth.size()),
                      std::string_view(tenant.data(), tenant.size()), req.body());
      }
    }
    {
      std::lock_guard lock(mu_);
      keep = keep && !stopping_;
    }
    if (!reply.stream) {
      auto res = Render(reply, version, keep);
      lowest.expires_after(kIoTimeout);
      ec = Await(ioc, [&](auto h) { http::async_write(stream, res, h); });
    } else {
      http::response<http::empty_body> res{http::status::ok, version};
      res.set(http::field::server, "tidemark");
      res.set(http::field::content_type, "application/octet-stream");
      for (const auto& [name, value] : reply.headers) res.set(name, value);
      res.keep_alive(keep);
      res.chunked(true);
      http::response_serializer<http::empty_body> sr{res};
      lowest.expires_after(kIoTimeout);
      ec = Await(ioc, [&](auto h) { http::async_write_header(stream, sr, h); });
      auto write = [&](std::string_view bytes) {
        if (ec || bytes.empty()) return !ec;
        lowest.expires_after(kIoTimeout);
        auto chunk = http::make_chunk(asio::buffer(bytes.data(), bytes.size()));
        ec = Await(ioc, [&](auto h) { asio::async_write(stream, chunk, h); });
        return !ec;
      };
      reply.stream(write);
      if (!ec) {
        auto last = http::make_chunk_last();
        ec = Await(ioc, [&](auto h) { asio::async_write(stream, last, h); });
      }
    }
    if (ec || !keep) break;
  }
  if (open) {
    // close_notify, best effort: a client that does not answer is cut.
    lowest.expires_after(std::chrono::seconds(1));
    Await(ioc, [&](auto h) { stream.async_shutdown(h); });
  }
  {
    std::lock_guard lock(mu_);
    conn->fd = -1;  // Stop() must not shut down a descriptor number reused later
  }
  lowest.close();
}

void RemoteApi::Reap() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (it->done) {
      it->thread.join();
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void RemoteApi::Adopt(tcp::socket socket) {
  std::lock_guard lock(mu_);
  Reap();
  error_code ec;
  if (stopping_ || conns_.size() >= kMaxConnections) {
    ++server_->rejected;
    socket.close(ec);
    return;
  }
  tcp protocol = socket.local_endpoint(ec).protocol();
  if (ec) return;
  // Off the io thread's reactor: the connection's thread owns it now.
  int fd = socket.release(ec);
  if (ec) return;
  Conn& c = conns_.emplace_back();
  c.fd = fd;
  c.thread = std::thread([this, conn = &c, protocol, fd] {
    Serve(conn, protocol, fd);
    std::lock_guard lock(mu_);
    conn->done = true;
  });
}

void RemoteApi::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    // Unblocks every read and write of the connections: they end soon.
    for (Conn& c : conns_) {
      if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);
    }
  }
  // Adopt() adds nothing once stopping_ is set: conns_ is stable here.
  for (Conn& c : conns_) c.thread.join();
  std::lock_guard lock(mu_);
  conns_.clear();
}

}  // namespace tidemark::target
