// ControlServer: an Asio io_context run by a few threads, one acceptor on a
// unix socket, and one HttpSession per connection.
//
// HttpSession is a template over the Beast stream so that the TLS listener
// (decision 10) can instantiate it with beast::ssl_stream<beast::tcp_stream>:
// it then needs a handshake before Run() and its own CloseStream() overload.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <mutex>
#include <thread>
#include <vector>

#include "control_internal.h"
#include "tidemark/target/control.h"

namespace tidemark::target {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using nlohmann::json;
using UnixProtocol = net::local::stream_protocol;
using UnixStream = beast::basic_stream<UnixProtocol>;

// Enough for "handler may block briefly" without starving other callers.
constexpr int kServerThreads = 2;
// An idle or stalled connection is dropped after this long.
constexpr std::chrono::seconds kIdleTimeout(60);

void CloseStream(UnixStream& stream) {
  error_code ec;
  stream.socket().shutdown(UnixProtocol::socket::shutdown_send, ec);
  stream.close();
}

// Runs the handler and turns its answer (or failure) into an HTTP response.
http::response<http::string_body> Serve(
    const ControlHandler& handler,
    const http::request<http::string_body>& req) {
  ControlResponse answer;
  ControlRequest creq;
  creq.method = std::string(req.method_string());
  creq.target = std::string(req.target());
  bool parsed = true;
  if (!req.body().empty()) {
    creq.body = json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
    parsed = !creq.body.is_discarded();
  }
  if (!parsed) {
    answer = ErrorResponse(Status::InvalidArgument("request body is not JSON"));
  } else {
    try {
      answer = handler(creq);
    } catch (const std::exception& e) {
      answer = ErrorResponse(Status::Aborted(creq.method + " " + creq.target +
                                             ": internal error: " + e.what()));
      answer.status = 500;
    } catch (...) {
      answer = ErrorResponse(Status::Aborted(creq.method + " " + creq.target +
                                             ": internal error"));
      answer.status = 500;
    }
  }

  http::response<http::string_body> res;
  res.version(req.version());
  res.result(answer.status >= 100 && answer.status <= 599 ? answer.status
                                                          : 500);
  res.set(http::field::server, "tidemark");
  res.keep_alive(req.keep_alive());
  if (!answer.text.empty()) {
    res.set(http::field::content_type,
            answer.content_type.empty()
                ? std::string("text/plain; charset=utf-8")
                : answer.content_type);
    res.body() = std::move(answer.text);
  } else if (!answer.body.is_null()) {
    res.set(http::field::content_type, "application/json");
    // replace: a handler's invalid UTF-8 must not throw here.
    res.body() =
        answer.body.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  res.prepare_payload();
  return res;
}

template <class Stream>
class HttpSession : public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(Stream stream, const ControlHandler& handler)
      : stream_(std::move(stream)), handler_(handler) {}

  void Run() { DoRead(); }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(internal::kMaxBodyBytes);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::OnRead,
                                               this->shared_from_this()));
  }

  void OnRead(error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::body_limit) {
      ControlResponse too_big =
          ErrorResponse(Status::InvalidArgument("request body over 1 MiB"));
      res_ = {};
      res_.result(413);
      res_.set(http::field::content_type, "application/json");
      res_.body() = too_big.body.dump();
      res_.keep_alive(false);
      res_.prepare_payload();
      return DoWrite();
    }
    // end_of_stream: the client is done; timeouts and resets: drop it.
    if (ec) return CloseStream(stream_);
    // The handler may block; no timer runs meanwhile, Stop() waits for it.
    beast::get_lowest_layer(stream_).expires_never();
    res_ = Serve(handler_, parser_->get());
    DoWrite();
  }

  void DoWrite() {
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&HttpSession::OnWrite,
                                                this->shared_from_this()));
  }

  void OnWrite(error_code ec, std::size_t /*bytes*/) {
    if (ec || !res_.keep_alive()) return CloseStream(stream_);
    DoRead();
  }

  Stream stream_;
  const ControlHandler&
      handler_;  // Owned by ControlServer::Impl, which outlives sessions.
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

Status Errno(std::string_view what, const std::string& path) {
  return Status::FromErrno(errno, std::string(what) + " " + path);
}

// Whether some process accepts connections on the socket file `path`.
bool SomeoneListens(const std::string& path) {
  net::io_context ioc;
  UnixProtocol::socket probe(ioc);
  error_code ec;
  probe.connect(UnixProtocol::endpoint(path), ec);
  return !ec;
}

}  // namespace

struct ControlServer::Impl {
  std::string path;
  ControlHandler handler;
  std::unique_ptr<net::io_context> ioc;
  std::unique_ptr<UnixProtocol::acceptor> acceptor;
  std::unique_ptr<net::steady_timer> retry_timer;
  std::vector<std::thread> threads;
  struct stat bound {};  // Identity of our socket file, to unlink only ours.
  std::mutex stop_mu;
  bool stopped = false;

  void DoAccept() {
    acceptor->async_accept(
        net::make_strand(*ioc),
        [this](error_code ec, UnixProtocol::socket sock) {
          if (ec == net::error::operation_aborted) return;
          if (!ec) {
            std::make_shared<HttpSession<UnixStream>>(
                UnixStream(std::move(sock)), handler)
                ->Run();
            return DoAccept();
          }
          // EMFILE and friends: back off rather than spin on the failing
          // accept.
          retry_timer->expires_after(std::chrono::milliseconds(100));
          retry_timer->async_wait([this](error_code wait_ec) {
            if (!wait_ec) DoAccept();
          });
        });
  }

  Status Listen() {
    TM_RETURN_IF_ERROR(internal::CheckUnixPath(path));
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        return Status::InvalidArgument(path + " exists and is not a socket");
      }
      if (SomeoneListens(path)) {
        return Status::InvalidArgument("a server already answers at " + path);
      }
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return Errno("remove stale socket", path);
      }
    }
    ioc = std::make_unique<net::io_context>(kServerThreads);
    acceptor = std::make_unique<UnixProtocol::acceptor>(*ioc);
    retry_timer = std::make_unique<net::steady_timer>(*ioc);
    error_code ec;
    if (acceptor->open(UnixProtocol(), ec)) {
      return Status::IOError("create socket for " + path + ": " + ec.message());
    }
    // Linux gives the socket file the mode of the socket inode: set it before
    // bind so the file is never reachable with a wider mode; chmod after too.
    if (::fchmod(acceptor->native_handle(), 0600) != 0)
      return Errno("fchmod socket", path);
    if (acceptor->bind(UnixProtocol::endpoint(path), ec)) {
      return Status::IOError("bind " + path + ": " + ec.message());
    }
    if (::chmod(path.c_str(), 0600) != 0 ||
        ::lstat(path.c_str(), &bound) != 0) {
      return Errno("chmod socket", path);
    }
    if (acceptor->listen(net::socket_base::max_listen_connections, ec)) {
      return Status::IOError("listen on " + path + ": " + ec.message());
    }
    DoAccept();
    for (int i = 0; i < kServerThreads; ++i)
      threads.emplace_back([this] { ioc->run(); });
    return Status::Ok();
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu);
    if (stopped) return;
    stopped = true;
    if (ioc) ioc->stop();
    for (std::thread& t : threads) t.join();
    threads.clear();
    // Destroying the io_context destroys the pending handlers and with them
    // the sessions and their sockets; the acceptor and timer must go first.
    retry_timer.reset();
    acceptor.reset();
    ioc.reset();
    struct stat st {};
    if (bound.st_ino != 0 && ::lstat(path.c_str(), &st) == 0 &&
        st.st_ino == bound.st_ino && st.st_dev == bound.st_dev) {
      ::unlink(path.c_str());
    }
  }
};

Result<std::unique_ptr<ControlServer>> ControlServer::Start(
    const std::string& unix_path, ControlHandler handler) {
  auto impl = std::make_unique<Impl>();
  impl->path = unix_path;
  impl->handler = std::move(handler);
  Status s = impl->Listen();
  if (!s.ok()) {
    impl->Stop();
    return s;
  }
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

ControlServer::ControlServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

ControlServer::~ControlServer() { Stop(); }

void ControlServer::Stop() { impl_->Stop(); }

const std::string& ControlServer::path() const { return impl_->path; }

}  // namespace tidemark::target
