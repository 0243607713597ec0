// Server: listening socket, accept loop, one thread per connection, Stop().
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "nbd_connection.h"
#include "tidemark/capture/nbd.h"

namespace tidemark::capture::nbd {

namespace {

Status Errno(std::string_view what) { return Status::FromErrno(errno, what); }

// Binds `listen` and, unless `defer`, listens; fills *address with what was
// bound. A unix socket is bound at *unix_path: PATH, or PATH.tmp when
// deferred (Server::Ready() renames it).
Result<int> Listen(const std::string& listen, bool defer, std::string* address,
                   std::string* unix_path) {
  if (listen.rfind("unix:", 0) == 0) {
    std::string path = listen.substr(5);
    struct sockaddr_un sa = {};
    if (path.empty() || path.size() >= sizeof(sa.sun_path))
      return Status::InvalidArgument("bad unix socket path: " + listen);
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return Status::InvalidArgument(path + " exists and is not a socket");
      // Replace a stale socket from an earlier run, never a live one.
      int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (probe >= 0) {
        struct sockaddr_un pa = {};
        pa.sun_family = AF_UNIX;
        std::memcpy(pa.sun_path, path.data(), path.size());
        bool live = ::connect(probe, reinterpret_cast<struct sockaddr*>(&pa), sizeof(pa)) == 0;
        ::close(probe);
        if (live) return Status::InvalidArgument(path + " is in use by another server");
      }
      ::unlink(path.c_str());
    }
    std::string bind_path = defer ? path + ".tmp" : path;
    if (bind_path.size() >= sizeof(sa.sun_path))
      return Status::InvalidArgument("unix socket path too long: " + listen);
    ::unlink(bind_path.c_str());  // PATH.tmp: left by a daemon that died starting
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno("socket");
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, bind_path.data(), bind_path.size());
    if (::bind(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof(sa)) < 0 ||
        (!defer && ::listen(fd, 64) < 0)) {
      Status s = Status::IOError("bind/listen " + listen + ": " + std::strerror(errno));
      ::close(fd);
      return s;
    }
    *address = listen;
    *unix_path = bind_path;
    return fd;
  }

  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("no port in " + listen);
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
      port.size() > 5 || std::stoul(port) > 65535)
    return Status::InvalidArgument("bad port in " + listen);
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  struct addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return Status::InvalidArgument("bad address " + listen + ": " + ::gai_strerror(rc));
  Status last = Status::IOError("no address for " + listen);
  int fd = -1;
  for (struct addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last = Errno("socket");
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && (defer || ::listen(fd, 64) == 0)) break;
    last = Status::IOError("bind/listen " + listen + ": " + std::strerror(errno));
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) return last;

  struct sockaddr_storage ss = {};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len);
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<struct sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text));
    *address = "[" + std::string(text) + "]:" + std::to_string(ntohs(sin6->sin6_port));
  } else {
    auto* sin = reinterpret_cast<struct sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text));
    *address = std::string(text) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  return fd;
}

}  // namespace

class Server::Impl {
 public:
  explicit Impl(ServerOptions options) : options_(std::move(options)) {}
  ~Impl() {
    Stop();
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }

  Status Init() {
    if (options_.exports.empty()) return Status::InvalidArgument("nbd: no exports");
    std::set<std::string> names;
    for (const Export& e : options_.exports) {
      if (!e.device) return Status::InvalidArgument("nbd: export '" + e.name + "' has no device");
      if (e.name.size() > 4096) return Status::InvalidArgument("nbd: export name too long");
      if (!names.insert(e.name).second)
        return Status::InvalidArgument("nbd: duplicate export name '" + e.name + "'");
      uint32_t min = e.device->min_block_bytes();
      uint32_t pref = e.device->preferred_block_bytes();
      uint32_t max = e.device->max_block_bytes();
      // proto.md: powers of two, min <= 64 KiB, min <= pref <= max (pref may
      // exceed max only for tiny exports; we do not allow it).
      auto pow2 = [](uint32_t v) { return v != 0 && (v & (v - 1)) == 0; };
      if (!pow2(min) || !pow2(pref) || min > 65536 || pref < min || max < pref || max % min != 0)
        return Status::InvalidArgument("nbd: bad block sizes for export '" + e.name + "'");
    }
    if (options_.max_connections == 0)
      return Status::InvalidArgument("nbd: max_connections must be at least 1");
    if (::pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) < 0) return Errno("pipe2");
    Result<int> fd = Listen(options_.listen, options_.defer_listen, &address_, &unix_path_);
    if (!fd) return fd.error();
    listen_fd_ = fd.value();
    if (!options_.defer_listen) StartAccepting();
    return Status::Ok();
  }

  Status Ready() {
    std::lock_guard<std::mutex> lock(ready_mu_);
    if (accepting_ || !options_.defer_listen) return Status::Ok();
    if (listen_fd_ < 0) return Status::Aborted("nbd: the server is stopped");
    if (::listen(listen_fd_, 64) < 0) {
      return Status::IOError("listen " + options_.listen + ": " + std::strerror(errno));
    }
    if (!unix_path_.empty()) {
      // The name appears only now, listening: waiting for it means ready.
      std::string path = options_.listen.substr(5);
      if (::rename(unix_path_.c_str(), path.c_str()) != 0) {
        return Status::IOError("rename " + unix_path_ + " to " + path + ": " +
                               std::strerror(errno));
      }
      unix_path_ = path;
    }
    StartAccepting();
    return Status::Ok();
  }

  void Stop() {
    std::call_once(stop_once_, [this] {
      RequestStop();
      {
        std::lock_guard<std::mutex> lock(ready_mu_);  // no Ready() from here on
        if (accept_thread_.joinable()) accept_thread_.join();
        accepting_ = true;
      }
      std::map<uint64_t, Entry> conns;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
        conns.swap(conns_);
        finished_.clear();
      }
      for (auto& [id, entry] : conns) entry.conn->Shutdown();
      const auto deadline = std::chrono::steady_clock::now() + options_.stop_grace;
      for (auto& [id, entry] : conns) {
        if (!entry.conn->WaitDone(deadline)) {
          spdlog::warn("nbd: a client does not read its replies; cutting it off");
          entry.conn->Shutdown(/*hard=*/true);
        }
        entry.thread.join();
      }
      if (listen_fd_ >= 0) ::close(listen_fd_);
      listen_fd_ = -1;
      if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
    });
  }

  // Async-signal-safe: the pipe is never drained, so it stays readable.
  void RequestStop() {
    char byte = 's';
    ssize_t n = ::write(stop_pipe_[1], &byte, 1);
    (void)n;  // a full pipe is already readable
  }

  void Wait() {
    struct pollfd p = {stop_pipe_[0], POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    Stop();
  }

  const std::string& address() const { return address_; }

 private:
  struct Entry {
    std::shared_ptr<Connection> conn;
    std::thread thread;
  };

  void ReapLocked() {
    for (uint64_t id : finished_) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      it->second.thread.join();  // it has returned from Run() already
      conns_.erase(it);
    }
    finished_.clear();
  }

  void StartAccepting() {
    accepting_ = true;
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  void AcceptLoop() {
    for (;;) {
      struct pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        spdlog::error("nbd: poll: {}", std::strerror(errno));
        return;
      }
      if (p[1].revents != 0) return;
      if (p[0].revents == 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
          spdlog::warn("nbd: accept: {}", std::strerror(errno));
        if (errno == EMFILE || errno == ENFILE) ::usleep(100 * 1000);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails on unix: fine
      std::lock_guard<std::mutex> lock(mu_);
      ReapLocked();
      if (stopping_ || conns_.size() >= options_.max_connections) {
        if (!stopping_) spdlog::warn("nbd: connection limit reached, refusing a client");
        ::close(fd);
        continue;
      }
      uint64_t id = next_id_++;
      auto conn = std::make_shared<Connection>(fd, &options_.exports);
      Entry& entry = conns_[id];
      entry.conn = conn;
      entry.thread = std::thread([this, conn, id] {
        conn->Run();
        std::lock_guard<std::mutex> lock(mu_);
        if (!stopping_) finished_.push_back(id);
      });
    }
  }

  const ServerOptions options_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::string address_;
  std::string unix_path_;
  std::thread accept_thread_;
  std::once_flag stop_once_;
  std::mutex ready_mu_;    // Ready() against Stop()
  bool accepting_ = false;  // guarded by ready_mu_ after Init()

  std::mutex mu_;
  bool stopping_ = false;            // guarded by mu_
  std::map<uint64_t, Entry> conns_;  // guarded by mu_
  std::vector<uint64_t> finished_;   // guarded by mu_
  uint64_t next_id_ = 0;             // guarded by mu_
};

Result<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  TM_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;  // ~Impl() stops
void Server::Stop() { impl_->Stop(); }
Status Server::Ready() { return impl_->Ready(); }
std::string Server::address() const { return impl_->address(); }
void Server::Wait() { impl_->Wait(); }
void Server::StopFromSignal() { impl_->RequestStop(); }

}  // namespace tidemark::capture::nbd
