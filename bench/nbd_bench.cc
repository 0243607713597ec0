// NBD request path micro-benchmarks (issue #6).
//
//   BM_ParseRequestHeader   the 28-byte request header decode alone
//                           (proto::ParseRequestHeader): ns per header.
//   BM_NbdWrite4KiB/qd:N    4 KiB WRITEs through the real server over a unix
//   BM_NbdRead4KiB/qd:N     socket, N requests in flight (a sliding window:
//                           one more is sent as each reply comes back),
//                           against testutil::MemDevice, which completes each
//                           request inside Submit(). This measures the
//                           protocol path (socket, parse, validate, reply),
//                           not a disk.
//
// items_per_second is requests (or headers) per second and bytes_per_second
// is payload bytes (or header bytes): both land in --benchmark_out_format=json.
// The round trips use real time: the work is spread over the client thread and
// the server's connection thread.
//
// TM_BENCH_QUICK=1 (smoke runs) divides the requests per iteration and the
// device size by 8.
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "nbd_proto.h"
#include "nbd_test_util.h"
#include "tidemark/capture/nbd.h"

namespace tidemark::capture::nbd {
namespace {

using namespace proto;  // NOLINT: wire constants

constexpr uint32_t kBlockBytes = 4096;
constexpr size_t kSimpleReplyBytes = 16;

size_t Scale(size_t n) {
  const char* q = getenv("TM_BENCH_QUICK");
  return (q != nullptr && q[0] == '1') ? std::max<size_t>(n / 8, 1) : n;
}

void BM_ParseRequestHeader(benchmark::State& state) {
  // Distinct headers, walked in turn, so the decode cannot be hoisted out of
  // the loop; 256 of them (7 KiB) stay in L1.
  constexpr size_t kHeaders = 256;
  std::string buf;
  for (size_t i = 0; i < kHeaders; ++i) {
    testutil::RawClient::AppendRequest(&buf, uint16_t(i % 2), /*cookie=*/i,
                                       /*offset=*/i * kBlockBytes, kBlockBytes);
  }
  size_t i = 0;
  for (auto _ : state) {
    RequestHeader h;
    bool ok = ParseRequestHeader(buf.data() + i * kRequestHeaderBytes, &h);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(h);
    i = (i + 1) % kHeaders;
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
  state.SetBytesProcessed(int64_t(state.iterations() * kRequestHeaderBytes));
}
BENCHMARK(BM_ParseRequestHeader);

// A server with one in-memory export on a unix socket in a fresh directory,
// and one client past NBD_OPT_GO (simple replies).
class Rig {
 public:
  explicit Rig(uint64_t device_bytes) {
    char dir[] = "/tmp/nbd_bench.XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = dir;
    sock_ = dir_ + "/nbd.sock";
    ServerOptions o;
    o.listen = "unix:" + sock_;
    o.exports.push_back({"disk", "", std::make_shared<testutil::MemDevice>(device_bytes)});
    auto s = Server::Start(std::move(o));
    if (!s) {
      error_ = "server: " + s.error().ToString();
      return;
    }
    server_ = std::move(s.value());
    int fd = testutil::ConnectUnix(sock_);
    if (fd < 0) {
      error_ = "cannot connect to " + sock_;
      return;
    }
    client_ = std::make_unique<testutil::RawClient>(fd);
    client_->Go("disk");
    error_ = client_->error();
  }
  ~Rig() {
    client_.reset();  // the server sees EOF
    if (server_) server_->Stop();
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  const std::string& error() const { return error_; }
  testutil::RawClient& client() { return *client_; }

 private:
  std::string dir_, sock_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<testutil::RawClient> client_;
  std::string error_;
};

// Each iteration sends `batch` requests with at most `qd` unanswered, then
// waits for the rest: iterations are self-contained, so the ramp down at the
// end of each is part of the figure (qd/batch of it: 32/1024 at QD 32).
void RoundTrip(benchmark::State& state, Command command) {
  const size_t qd = size_t(state.range(0));
  const size_t batch = Scale(1024);
  const uint64_t blocks = Scale(64ull << 20) / kBlockBytes;
  const bool write = command == Command::kWrite;
  Rig rig(blocks * kBlockBytes);
  if (!rig.error().empty()) {
    state.SkipWithError(rig.error().c_str());
    return;
  }
  testutil::RawClient& c = rig.client();

  const std::string payload(kBlockBytes, '\x5a');
  std::string request;
  request.reserve(kRequestHeaderBytes + kBlockBytes);
  std::string reply(kSimpleReplyBytes + kBlockBytes, '\0');
  uint64_t next_cookie = 0, next_block = 0, expect_cookie = 0;
  std::string error;

  auto send_one = [&] {
    request.clear();
    testutil::RawClient::AppendRequest(&request, uint16_t(command), next_cookie++,
                                       next_block * kBlockBytes, kBlockBytes);
    if (write) request += payload;
    next_block = (next_block + 1) % blocks;
    if (!c.SendAll(request.data(), request.size())) error = "send failed";
  };
  // The device completes inside Submit() on the connection's one thread, so
  // replies come back in request order.
  auto recv_one = [&] {
    if (!c.RecvAll(reply.data(), kSimpleReplyBytes)) {
      error = "connection closed";
      return;
    }
    if (Get32(reply.data()) != kSimpleReplyMagic || Get32(reply.data() + 4) != 0 ||
        Get64(reply.data() + 8) != expect_cookie++) {
      error = "unexpected reply";
      return;
    }
    if (!write && !c.RecvAll(reply.data() + kSimpleReplyBytes, kBlockBytes)) {
      error = "connection closed in READ data";
    }
  };

  for (auto _ : state) {
    size_t in_flight = 0;
    for (size_t i = 0; i < batch && error.empty(); ++i) {
      if (in_flight == qd) {
        recv_one();
        --in_flight;
      }
      send_one();
      ++in_flight;
    }
    while (in_flight > 0 && error.empty()) {
      recv_one();
      --in_flight;
    }
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations() * batch));
  state.SetBytesProcessed(int64_t(state.iterations() * batch * kBlockBytes));
  state.counters["qd"] = double(qd);
}

void BM_NbdWrite4KiB(benchmark::State& state) { RoundTrip(state, Command::kWrite); }
void BM_NbdRead4KiB(benchmark::State& state) { RoundTrip(state, Command::kRead); }

// No deadlock: the client (one thread) blocks in send() only while the
// server's reader thread blocks writing replies the client has not read yet
// (the device answers inside Submit(), on that thread). At most qd replies are
// unread, and either the requests (READ: 28 bytes) or the replies (WRITE: 16
// bytes) of a whole window fit in the socket buffers.
BENCHMARK(BM_NbdWrite4KiB)->ArgName("qd")->Arg(1)->Arg(32)->UseRealTime();
BENCHMARK(BM_NbdRead4KiB)->ArgName("qd")->Arg(32)->UseRealTime();

}  // namespace
}  // namespace tidemark::capture::nbd

BENCHMARK_MAIN();
