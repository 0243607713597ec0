#include "tidemark/target/control.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

namespace tidemark::target {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A connected raw client socket, for what ControlCall cannot send; -1 on error.
int RawConnect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Sends `request` and returns everything the server writes until it closes.
std::string RawExchange(const std::string& path, const std::string& request) {
  int fd = RawConnect(path);
  if (fd < 0) return "";
  EXPECT_EQ(::write(fd, request.data(), request.size()),
            ssize_t(request.size()));
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, size_t(n));
  ::close(fd);
  return out;
}

ControlResponse Route(const ControlRequest& req) {
  if (req.method == "POST" && req.target == "/v1/echo")
    return {200, req.body, "", ""};
  if (req.method == "GET" && req.target == "/v1/status") {
    return {200, json{{"state", "running"}, {"volumes", 2}}, "", ""};
  }
  if (req.target == "/v1/missing")
    return ErrorResponse(Status::NotFound("volume vm9"));
  if (req.target == "/v1/busy")
    return ErrorResponse(Status::TryAgain("journal busy"));
  if (req.target == "/v1/full")
    return ErrorResponse(Status::NoSpace("journal full"));
  if (req.target == "/v1/throw") throw std::runtime_error("boom");
  if (req.target == "/v1/slow") {
    std::this_thread::sleep_for(milliseconds(300));
    return {200, json{{"slow", true}}, "", ""};
  }
  if (req.target == "/v1/empty") return {204, nullptr, "", ""};
  if (req.target == "/metrics") {
    return {200, nullptr, "tidemark_up 1\n", "text/plain; version=0.0.4"};
  }
  return ErrorResponse(
      Status::NotFound("no route " + req.method + " " + req.target));
}

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tm-ctl-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/control.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<ControlServer> StartServer(ControlHandler h = Route) {
    auto r = ControlServer::Start(path_, std::move(h));
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r.has_value() ? std::move(r).value() : nullptr;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(ControlTest, EchoAndStatus) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  json in = {{"volume", "vm1"}, {"name", "before-upgrade"}, {"n", {1, 2, 3}}};
  auto echo = ControlCall(path_, "POST", "/v1/echo", in);
  ASSERT_TRUE(echo.has_value()) << echo.error().ToString();
  EXPECT_EQ(echo.value(), in);
  auto status = ControlCall(path_, "GET", "/v1/status", nullptr);
  ASSERT_TRUE(status.has_value()) << status.error().ToString();
  EXPECT_EQ(status.value()["state"], "running");
  auto empty = ControlCall(path_, "DELETE", "/v1/empty", nullptr);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty.value().is_null());
}

TEST_F(ControlTest, SocketFileModeAndRemoval) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  server->Stop();
  server->Stop();  // idempotent
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(ControlTest, ErrorsMapToStatusCodes) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  auto missing = ControlCall(path_, "GET", "/v1/missing", nullptr);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_EQ(missing.error().message(), "volume vm9");
  auto busy = ControlCall(path_, "POST", "/v1/busy", json::object());
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.error().code(), Code::kTryAgain);
  auto full = ControlCall(path_, "POST", "/v1/full", nullptr);
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code(), Code::kNoSpace);
  auto thrown = ControlCall(path_, "POST", "/v1/throw", nullptr);
  ASSERT_FALSE(thrown.has_value());
  EXPECT_EQ(thrown.error().code(), Code::kAborted);
  EXPECT_NE(thrown.error().message().find("boom"), std::string::npos);
  auto bad_verb = ControlCall(path_, "FROB", "/v1/status", nullptr);
  ASSERT_FALSE(bad_verb.has_value());
  EXPECT_EQ(bad_verb.error().code(), Code::kInvalidArgument);
}

TEST_F(ControlTest, ErrorHelpers) {
  EXPECT_EQ(ErrorBody(Status::NotFound("x")),
            (json{{"error", {{"code", "not_found"}, {"message", "x"}}}}));
  EXPECT_EQ(ErrorResponse(Status::NotFound("x")).status, 404u);
  EXPECT_EQ(ErrorResponse(Status::InvalidArgument("x")).status, 400u);
  EXPECT_EQ(ErrorResponse(Status::TryAgain("x")).status, 503u);
  EXPECT_EQ(ErrorResponse(Status::Aborted("x")).status, 409u);
  EXPECT_EQ(ErrorResponse(Status::NotSupported("x")).status, 501u);
  EXPECT_EQ(ErrorResponse(Status::Corruption("x")).status, 500u);
  EXPECT_EQ(HttpStatusFor(Code::kOk), 200u);
}

TEST_F(ControlTest, NonJsonBodyIs400) {
  std::atomic<int> calls{0};
  auto server = StartServer([&](const ControlRequest& r) {
    ++calls;
    return Route(r);
  });
  ASSERT_TRUE(server);
  std::string answer =
      RawExchange(path_,
                  "POST /v1/echo HTTP/1.1\r\nHost: x\r\n"
                  "Content-Type: application/json\r\nContent-Length: 9\r\n"
                  "Connection: close\r\n\r\n{not json");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
  EXPECT_NE(answer.find(R"("code":"invalid_argument")"), std::string::npos)
      << answer;
  EXPECT_EQ(calls.load(), 0);
}

TEST_F(ControlTest, OversizedBodyIs413) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  std::string raw = RawExchange(
      path_,
      "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 2000000\r\n\r\n\"aaaa");
  EXPECT_EQ(raw.rfind("HTTP/1.1 413", 0), 0u) << raw;
  auto r =
      ControlCall(path_, "POST", "/v1/echo", json(std::string(2 << 20, 'a')));
  ASSERT_FALSE(r.has_value());
  // Either the 413 arrives, or the server closed while the client still wrote.
  EXPECT_TRUE(r.error().code() == Code::kInvalidArgument ||
              r.error().code() == Code::kTryAgain)
      << r.error().ToString();
}

TEST_F(ControlTest, MetricsText) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  std::string answer = RawExchange(
      path_, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(answer.find("Content-Type: text/plain; version=0.0.4"),
            std::string::npos)
      << answer;
  auto r = ControlCall(path_, "GET", "/metrics", nullptr);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r.value(), "tidemark_up 1\n");
}

TEST_F(ControlTest, KeepAliveServesSeveralRequests) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  std::string get = "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string answer = RawExchange(
      path_,
      get + get +
          "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t count = 0;
  for (size_t pos = 0;
       (pos = answer.find("HTTP/1.1 200", pos)) != std::string::npos; ++pos) {
    ++count;
  }
  EXPECT_EQ(count, 3u) << answer;
}

TEST_F(ControlTest, ConcurrentClients) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  constexpr int kThreads = 8, kCalls = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        json in = {{"thread", t}, {"i", i}};
        auto r = ControlCall(path_, "POST", "/v1/echo", in);
        if (r.has_value() && r.value() == in) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kCalls);
}

TEST_F(ControlTest, StopWithIdleClientConnectedDoesNotHang) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  int fd = RawConnect(path_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "GET /v1/st", 10),
            10);  // a request that never completes
  auto start = Clock::now();
  server->Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  char c;
  // The server closed the connection: EOF, or a reset when it had not read
  // (or accepted) it yet; never the 5 s receive timeout.
  ssize_t n = ::read(fd, &c, 1);
  EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << n << " " << errno;
  ::close(fd);
}

TEST_F(ControlTest, StopDuringSlowHandler) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  std::thread client([&] {
    auto r = ControlCall(path_, "GET", "/v1/slow", nullptr);
    if (!r.has_value()) {
      EXPECT_EQ(r.error().code(), Code::kTryAgain) << r.error().ToString();
    }
  });
  std::this_thread::sleep_for(milliseconds(100));
  auto start = Clock::now();
  server->Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  client.join();
}

TEST_F(ControlTest, MissingSocketIsTryAgainQuickly) {
  auto start = Clock::now();
  auto r = ControlCall(path_, "GET", "/v1/status", nullptr);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kTryAgain);
  EXPECT_EQ(r.error().message(), "no daemon answers at " + path_);
}

TEST_F(ControlTest, SilentServerTimesOutAsTryAgain) {
  // Listens but never accepts: connect succeeds, no answer ever comes.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  auto start = Clock::now();
  auto r = ControlCall(path_, "GET", "/v1/status", nullptr, milliseconds(200));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kTryAgain);
  EXPECT_NE(r.error().message().find("timed out"), std::string::npos)
      << r.error().message();
  ::close(fd);
}

TEST_F(ControlTest, StaleSocketIsRefusedThenReplaced) {
  {
    auto server = StartServer();
    ASSERT_TRUE(server);
    // A second server on a live socket is refused.
    auto second = ControlServer::Start(path_, Route);
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error().code(), Code::kInvalidArgument);
  }
  // A socket file nobody listens on, as a crashed daemon leaves it.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
  auto stale = ControlCall(path_, "GET", "/v1/status", nullptr);
  ASSERT_FALSE(stale.has_value());
  EXPECT_EQ(stale.error().code(), Code::kTryAgain);
  auto server = StartServer();
  ASSERT_TRUE(server);
  EXPECT_TRUE(ControlCall(path_, "GET", "/v1/status", nullptr).has_value());
}

TEST_F(ControlTest, BadPaths) {
  std::string regular = dir_ + "/file";
  std::FILE* f = std::fopen(regular.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  auto not_socket = ControlServer::Start(regular, Route);
  ASSERT_FALSE(not_socket.has_value());
  EXPECT_EQ(not_socket.error().code(), Code::kInvalidArgument);
  std::string too_long = dir_ + "/" + std::string(200, 's');
  auto r = ControlServer::Start(too_long, Route);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Code::kInvalidArgument);
  auto call = ControlCall(too_long, "GET", "/", nullptr);
  ASSERT_FALSE(call.has_value());
  EXPECT_EQ(call.error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tidemark::target
