// Unit tests of the NBD server, driven by a raw-socket client (no libnbd)
// against an in-memory BlockDevice, both in nbd_test_util.h.
#include "tidemark/capture/nbd.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "nbd_proto.h"
#include "nbd_test_util.h"

namespace tidemark::capture::nbd {
namespace {

using namespace proto;  // NOLINT: wire constants

using testutil::MemDevice;

// The shared raw client (nbd_test_util.h), its failed checks reported to gtest.
class Client : public testutil::RawClient {
 public:
  using RawClient::RawClient;

 protected:
  void Fail(const std::string& message) override { ADD_FAILURE() << message; }
};

constexpr uint64_t kSize = 1 << 20;
constexpr uint16_t kRead = 0, kWrite = 1, kDisc = 2, kFlush = 3, kTrim = 4, kZeroes = 6,
                   kBlockStatus = 7;

TEST(NbdProtoTest, ParseRequestHeader) {
  std::string b;
  Put32(&b, kRequestMagic);
  Put16(&b, kCmdFlagFua | kCmdFlagNoHole);
  Put16(&b, kZeroes);
  Put64(&b, 0x0102030405060708ull);
  Put64(&b, 0xfedcba9876543210ull);  // high bits set: no sign extension
  Put32(&b, 0x80001000u);
  ASSERT_EQ(b.size(), kRequestHeaderBytes);
  RequestHeader h;
  ASSERT_TRUE(ParseRequestHeader(b.data(), &h));
  EXPECT_EQ(h.flags, kCmdFlagFua | kCmdFlagNoHole);
  EXPECT_EQ(h.type, kZeroes);
  EXPECT_EQ(h.cookie, 0x0102030405060708ull);
  EXPECT_EQ(h.offset, 0xfedcba9876543210ull);
  EXPECT_EQ(h.length, 0x80001000u);
}

TEST(NbdProtoTest, ParseRequestHeaderBadMagicLeavesOutputAlone) {
  std::string b;
  Put32(&b, kSimpleReplyMagic);  // a reply's magic where a request's belongs
  Put16(&b, 0);
  Put16(&b, kRead);
  Put64(&b, 1);
  Put64(&b, 0);
  Put32(&b, 512);
  RequestHeader h;
  h.cookie = 99;
  EXPECT_FALSE(ParseRequestHeader(b.data(), &h));
  EXPECT_EQ(h.cookie, 99u);
  EXPECT_EQ(h.length, 0u);
  std::string one_bit_off;
  Put32(&one_bit_off, kRequestMagic ^ 1);
  b.replace(0, 4, one_bit_off);
  EXPECT_FALSE(ParseRequestHeader(b.data(), &h));
  EXPECT_EQ(h.cookie, 99u);
}

class NbdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/nbd_test.XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    sock_ = dir_ + "/nbd.sock";
    dev_ = std::make_shared<MemDevice>(kSize);
    ro_ = std::make_shared<MemDevice>(kSize, true);
  }
  void TearDown() override {
    server_.reset();
    ::rmdir(dir_.c_str());
  }
  void StartServer(std::string listen = {}, bool defer_listen = false) {
    ServerOptions o;
    o.listen = listen.empty() ? "unix:" + sock_ : listen;
    o.defer_listen = defer_listen;
    o.exports.push_back({"disk", "a test disk", dev_});
    o.exports.push_back({"ro", "", ro_});
    auto s = Server::Start(std::move(o));
    ASSERT_TRUE(s) << s.error().ToString();
    server_ = std::move(s.value());
  }
  std::unique_ptr<Client> Connect() {
    int fd = testutil::ConnectUnix(sock_);
    EXPECT_GE(fd, 0);
    return std::make_unique<Client>(fd);
  }

  std::string dir_, sock_;
  std::shared_ptr<MemDevice> dev_, ro_;
  std::unique_ptr<Server> server_;
};

TEST_F(NbdTest, ListInfoAndUnknownOption) {
  StartServer();
  auto c = Connect();
  c->Hello();
  c->Option(99, "junk");
  auto r = c->ReadOptReply();
  EXPECT_EQ(r.option, 99u);
  EXPECT_EQ(r.type, kRepErrUnsup);
  c->Option(kOptStartTls, "");
  EXPECT_EQ(c->ReadOptReply().type, kRepErrUnsup);

  c->Option(kOptList, "");
  r = c->ReadOptReply();
  EXPECT_EQ(r.type, kRepServer);
  EXPECT_EQ(r.data.substr(4), "disk");
  EXPECT_EQ(c->ReadOptReply().data.substr(4), "ro");
  EXPECT_EQ(c->ReadOptReply().type, kRepAck);
  c->Option(kOptList, "x");
  EXPECT_EQ(c->ReadOptReply().type, kRepErrInvalid);

  c->Option(kOptInfo, Client::InfoPayload("", {kInfoName, kInfoDescription, kInfoBlockSize}));
  bool saw_export = false, saw_name = false, saw_desc = false, saw_bs = false;
  for (;;) {
    r = c->ReadOptReply();
    if (r.type == kRepAck) break;
    ASSERT_EQ(r.type, kRepInfo);
    switch (Get16(r.data.data())) {
      case kInfoExport:
        saw_export = true;
        EXPECT_EQ(Get64(r.data.data() + 2), kSize);
        EXPECT_EQ(Get16(r.data.data() + 10), kTransHasFlags | kTransSendFlush | kTransSendFua |
                                                 kTransSendTrim | kTransSendWriteZeroes);
        break;
      case kInfoName:
        saw_name = true;
        EXPECT_EQ(r.data.substr(2), "disk");  // the default export's real name
        break;
      case kInfoDescription:
        saw_desc = true;
        EXPECT_EQ(r.data.substr(2), "a test disk");
        break;
      case kInfoBlockSize:
        saw_bs = true;
        EXPECT_EQ(Get32(r.data.data() + 2), 512u);
        EXPECT_EQ(Get32(r.data.data() + 6), 4096u);
        EXPECT_EQ(Get32(r.data.data() + 10), 32u << 20);
        break;
    }
  }
  EXPECT_TRUE(saw_export && saw_name && saw_desc && saw_bs);
  c->Option(kOptInfo, Client::InfoPayload("nope", {}));
  EXPECT_EQ(c->ReadOptReply().type, kRepErrUnknown);
  c->Option(kOptInfo, "\0\0");
  EXPECT_EQ(c->ReadOptReply().type, kRepErrInvalid);
  // SET_META_CONTEXT needs structured replies first.
  c->Option(kOptSetMetaContext, Client::MetaPayload("disk", {"base:allocation"}));
  EXPECT_EQ(c->ReadOptReply().type, kRepErrInvalid);
  // LIST_META_CONTEXT with no queries lists base:allocation.
  c->Option(kOptListMetaContext, Client::MetaPayload("disk", {}));
  r = c->ReadOptReply();
  EXPECT_EQ(r.type, kRepMetaContext);
  EXPECT_EQ(r.data.substr(4), "base:allocation");
  EXPECT_EQ(c->ReadOptReply().type, kRepAck);
  c->Option(kOptListMetaContext, Client::MetaPayload("disk", {"qemu:dirty-bitmap:x"}));
  EXPECT_EQ(c->ReadOptReply().type, kRepAck);

  c->Option(kOptAbort, "");
  EXPECT_EQ(c->ReadOptReply().type, kRepAck);
  EXPECT_TRUE(c->AtEof());
}

TEST_F(NbdTest, ExportNameWithAndWithoutZeroes) {
  StartServer();
  auto c = Connect();
  c->Hello();
  c->Option(kOptExportName, "ro");
  std::string r = c->Recv(10);
  ASSERT_EQ(r.size(), 10u);
  EXPECT_EQ(Get64(r.data()), kSize);
  EXPECT_EQ(Get16(r.data() + 8), kTransHasFlags | kTransReadOnly | kTransSendFlush);
  c->Request(kRead, 1, 0, 512);
  std::string data;
  EXPECT_EQ(c->SimpleReply(1, &data, 512), 0u);

  auto d = Connect();
  d->Hello(kClientFlagFixedNewstyle);
  d->Option(kOptExportName, "disk");
  EXPECT_EQ(d->Recv(10 + 124).size(), 134u);
  d->Request(kFlush, 2, 0, 0);
  EXPECT_EQ(d->SimpleReply(2), 0u);

  auto e = Connect();
  e->Hello();
  e->Option(kOptExportName, "nope");  // no error reply exists: hang up
  EXPECT_TRUE(e->AtEof());
}

TEST_F(NbdTest, ReadWriteRoundTrip) {
  StartServer();
  auto c = Connect();
  c->Go("disk");
  std::string pattern(8192, '\0');
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = char(i * 7 + 1);
  c->Request(kWrite, 10, 4096, 8192, kCmdFlagFua, pattern);
  EXPECT_EQ(c->SimpleReply(10), 0u);
  std::string back;
  c->Request(kRead, 11, 4096, 8192);
  EXPECT_EQ(c->SimpleReply(11, &back, 8192), 0u);
  EXPECT_EQ(back, pattern);
  EXPECT_EQ(dev_->data().substr(4096, 8192), pattern);
  EXPECT_EQ(dev_->flags()[0], kFlagFua);

  c->Request(kZeroes, 12, 4096, 512, kCmdFlagNoHole | kCmdFlagFua);
  EXPECT_EQ(c->SimpleReply(12), 0u);
  c->Request(kTrim, 13, 8192, 512);
  EXPECT_EQ(c->SimpleReply(13), 0u);
  c->Request(kFlush, 14, 0, 0);
  EXPECT_EQ(c->SimpleReply(14), 0u);
  EXPECT_EQ(dev_->data().substr(4096, 512), std::string(512, '\0'));
  EXPECT_EQ(dev_->flags()[2], kFlagNoHole | kFlagFua);
}

TEST_F(NbdTest, BadRequestsGetErrorsAndTheConnectionStaysUp) {
  StartServer();
  auto c = Connect();
  c->Go("disk");
  c->Request(kRead, 1, 100, 512);  // misaligned offset
  EXPECT_EQ(c->SimpleReply(1), kEInval);
  c->Request(kRead, 2, 0, 100);  // misaligned length
  EXPECT_EQ(c->SimpleReply(2), kEInval);
  c->Request(kRead, 3, kSize - 512, 1024);  // past the end
  EXPECT_EQ(c->SimpleReply(3), kEInval);
  c->Request(kRead, 4, ~0ull - 511, 1024);  // offset + length overflows
  EXPECT_EQ(c->SimpleReply(4), kEInval);
  c->Request(kRead, 5, 0, 0);  // empty
  EXPECT_EQ(c->SimpleReply(5), kEInval);
  c->Request(42, 6, 0, 512);  // unknown command
  EXPECT_EQ(c->SimpleReply(6), kEInval);
  c->Request(kWrite, 7, kSize, 512, 0, std::string(512, 'x'));  // write past the end
  EXPECT_EQ(c->SimpleReply(7), kENoSpc);
  c->Request(kWrite, 8, 1, 512, 0, std::string(512, 'x'));  // misaligned write: payload skipped
  EXPECT_EQ(c->SimpleReply(8), kEInval);
  c->Request(kFlush, 9, 512, 0);
  EXPECT_EQ(c->SimpleReply(9), kEInval);
  c->Request(kRead, 10, 0, 512, kCmdFlagFua);  // flag not valid on READ
  EXPECT_EQ(c->SimpleReply(10), kEInval);
  c->Request(kBlockStatus, 11, 0, 512);  // no meta context negotiated
  EXPECT_EQ(c->SimpleReply(11), kEInval);
  EXPECT_TRUE(dev_->submitted().empty());  // none of them reached the device

  // Device errors map to NBD errnos.
  dev_->FailNext(Status::NoSpace("full"));
  c->Request(kWrite, 20, 0, 512, 0, std::string(512, 'y'));
  EXPECT_EQ(c->SimpleReply(20), kENoSpc);
  dev_->FailNext(Status::NotSupported("no"));
  c->Request(kTrim, 21, 0, 512);
  EXPECT_EQ(c->SimpleReply(21), kENotSup);
  dev_->FailNext(Status::Corruption("crc"));
  c->Request(kRead, 22, 0, 512);
  EXPECT_EQ(c->SimpleReply(22), kEIO);
  dev_->FailNext(Status::InvalidArgument("bad"));
  c->Request(kRead, 23, 0, 512);
  EXPECT_EQ(c->SimpleReply(23), kEInval);

  std::string data;
  c->Request(kRead, 30, 0, 512);
  EXPECT_EQ(c->SimpleReply(30, &data, 512), 0u);
  EXPECT_EQ(data.size(), 512u);
}

TEST_F(NbdTest, ReadOnlyExportRefusesWrites) {
  StartServer();
  auto c = Connect();
  uint16_t flags = c->Go("ro");
  EXPECT_TRUE(flags & kTransReadOnly);
  c->Request(kWrite, 1, 0, 512, 0, std::string(512, 'x'));
  EXPECT_EQ(c->SimpleReply(1), kEPerm);
  c->Request(kTrim, 2, 0, 512);
  EXPECT_EQ(c->SimpleReply(2), kEPerm);
  c->Request(kZeroes, 3, 0, 512);
  EXPECT_EQ(c->SimpleReply(3), kEPerm);
  std::string data;
  c->Request(kRead, 4, 0, 512);
  EXPECT_EQ(c->SimpleReply(4, &data, 512), 0u);
  EXPECT_EQ(ro_->submitted(), std::vector<Command>{Command::kRead});
}

TEST_F(NbdTest, StructuredRepliesAndBlockStatus) {
  StartServer();
  auto c = Connect();
  c->Go("disk", /*structured=*/true, /*meta=*/true);
  dev_->data().replace(0, 4, "abcd");
  c->Request(kRead, 1, 0, 4096);
  auto ch = c->ReadChunk();
  EXPECT_EQ(ch.type, kReplyTypeOffsetData);
  EXPECT_EQ(ch.flags, kReplyFlagDone);
  EXPECT_EQ(ch.cookie, 1u);
  ASSERT_EQ(ch.payload.size(), 8u + 4096);
  EXPECT_EQ(Get64(ch.payload.data()), 0u);
  EXPECT_EQ(ch.payload.substr(8, 4), "abcd");

  c->Request(kBlockStatus, 2, 0, 65536);
  ch = c->ReadChunk();
  EXPECT_EQ(ch.type, kReplyTypeBlockStatus);
  EXPECT_EQ(ch.flags, kReplyFlagDone);
  ASSERT_EQ(ch.payload.size(), 4u + 16);
  EXPECT_EQ(Get32(ch.payload.data()), kBaseAllocationId);
  EXPECT_EQ(Get32(ch.payload.data() + 4), 4096u);
  EXPECT_EQ(Get32(ch.payload.data() + 8), 0u);
  EXPECT_EQ(Get32(ch.payload.data() + 12), 65536u - 4096);  // clipped to the request
  EXPECT_EQ(Get32(ch.payload.data() + 16), kStateHole | kStateZero);

  c->Request(kBlockStatus, 3, 0, 65536, kCmdFlagReqOne);
  ch = c->ReadChunk();
  EXPECT_EQ(ch.payload.size(), 4u + 8);

  // Errors on READ come as an NBD_REPLY_TYPE_ERROR chunk.
  c->Request(kRead, 4, 3, 512);
  ch = c->ReadChunk();
  EXPECT_EQ(ch.type, kReplyTypeError);
  EXPECT_EQ(ch.flags, kReplyFlagDone);
  EXPECT_EQ(Get32(ch.payload.data()), kEInval);
  EXPECT_EQ(Get16(ch.payload.data() + 4), ch.payload.size() - 6);
  // Writes still get simple replies.
  c->Request(kWrite, 5, 0, 512, 0, std::string(512, 'z'));
  EXPECT_EQ(c->SimpleReply(5), 0u);
}

TEST_F(NbdTest, OutOfOrderRepliesAndDisconnectAfterInFlight) {
  StartServer();
  auto c = Connect();
  c->Go("disk");
  dev_->SetAsync(true);
  c->Request(kWrite, 1, 0, 512, 0, std::string(512, 'a'));
  c->Request(kWrite, 2, 512, 512, 0, std::string(512, 'b'));
  c->Request(kDisc, 3, 0, 0);
  while (dev_->parked() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(dev_->closed(), 0);  // still waiting for the two replies
  dev_->ReleaseReversed();
  EXPECT_EQ(c->SimpleReply(2), 0u);  // newest first
  EXPECT_EQ(c->SimpleReply(1), 0u);
  EXPECT_TRUE(c->AtEof());
  EXPECT_EQ(dev_->data().substr(0, 1024), std::string(512, 'a') + std::string(512, 'b'));
  for (int i = 0; i < 1000 && dev_->closed() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(dev_->closed(), 1);
}

TEST_F(NbdTest, TwoConnectionsAtOnce) {
  StartServer();
  auto a = Connect();
  auto b = Connect();
  a->Go("disk");
  b->Go("");
  a->Request(kWrite, 1, 0, 512, 0, std::string(512, 'q'));
  EXPECT_EQ(a->SimpleReply(1), 0u);
  std::string data;
  b->Request(kRead, 2, 0, 512);
  EXPECT_EQ(b->SimpleReply(2, &data, 512), 0u);
  EXPECT_EQ(data, std::string(512, 'q'));
}

TEST_F(NbdTest, TruncatedWritePayloadEndsTheConnection) {
  StartServer();
  auto c = Connect();
  c->Go("disk");
  c->Request(kWrite, 1, 0, 4096, 0, std::string(100, 'x'));
  ::shutdown(c->fd(), SHUT_WR);
  EXPECT_TRUE(c->AtEof());
  EXPECT_TRUE(dev_->submitted().empty());
}

TEST_F(NbdTest, StopUnblocksIdleClients) {
  StartServer();
  auto c = Connect();
  auto d = Connect();
  c->Go("disk");
  d->Hello();  // stuck in the handshake
  server_->Stop();
  EXPECT_TRUE(c->AtEof());
  EXPECT_TRUE(d->AtEof());
  EXPECT_NE(::access(sock_.c_str(), F_OK), 0);  // the socket file is gone
}

TEST_F(NbdTest, StopCutsOffClientsThatDoNotReadReplies) {
  ServerOptions o;
  o.listen = "unix:" + sock_;
  o.exports.push_back({"disk", "", dev_});
  o.stop_grace = std::chrono::milliseconds(200);
  auto s = Server::Start(std::move(o));
  ASSERT_TRUE(s);
  server_ = std::move(s.value());
  auto c = Connect();
  c->Go("disk");
  for (uint64_t i = 0; i < 32; ++i) c->Request(kRead, i, 0, kSize);  // 32 MiB of replies, unread
  while (dev_->submitted().empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(NbdTest, TcpEphemeralPort) {
  StartServer("127.0.0.1:0");
  std::string addr = server_->address();
  ASSERT_EQ(addr.rfind("127.0.0.1:", 0), 0u) << addr;
  int port = std::atoi(addr.c_str() + 10);
  ASSERT_GT(port, 0);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(uint16_t(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  Client c(fd);
  c.Go("disk");
  c.Request(kFlush, 1, 0, 0);
  EXPECT_EQ(c.SimpleReply(1), 0u);
}

// docs/design.md#readiness: bound at Start(), reachable only after Ready().
TEST_F(NbdTest, DeferredUnixSocketAppearsAtReady) {
  StartServer({}, /*defer_listen=*/true);
  struct stat st;
  EXPECT_NE(::stat(sock_.c_str(), &st), 0) << "the socket exists before Ready()";
  EXPECT_EQ(::stat((sock_ + ".tmp").c_str(), &st), 0) << "not bound as SOCK.tmp";
  ASSERT_TRUE(server_->Ready().ok());
  EXPECT_TRUE(server_->Ready().ok());  // idempotent
  EXPECT_NE(::stat((sock_ + ".tmp").c_str(), &st), 0);
  auto c = Connect();
  c->Go("disk");
  c->Request(kFlush, 1, 0, 0);
  EXPECT_EQ(c->SimpleReply(1), 0u);
  c.reset();
  server_.reset();
  EXPECT_NE(::stat(sock_.c_str(), &st), 0) << "Stop() leaves the socket";
}

TEST_F(NbdTest, DeferredStopBeforeReadyRemovesTheTempSocket) {
  StartServer({}, /*defer_listen=*/true);
  server_.reset();
  struct stat st;
  EXPECT_NE(::stat((sock_ + ".tmp").c_str(), &st), 0);
  EXPECT_NE(::stat(sock_.c_str(), &st), 0);
}

TEST_F(NbdTest, DeferredTcpRefusesUntilReady) {
  StartServer("127.0.0.1:0", /*defer_listen=*/true);
  std::string addr = server_->address();
  int port = std::atoi(addr.c_str() + 10);
  ASSERT_GT(port, 0) << addr;  // the port is known (bound) before Ready()
  auto connect = [port] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(uint16_t(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    return std::make_pair(rc, fd);
  };
  auto [rc, fd] = connect();
  EXPECT_NE(rc, 0) << "a client got in before Ready()";
  ::close(fd);
  ASSERT_TRUE(server_->Ready().ok());
  auto [rc2, fd2] = connect();
  ASSERT_EQ(rc2, 0);
  Client c(fd2);
  c.Go("disk");
  c.Request(kFlush, 1, 0, 0);
  EXPECT_EQ(c.SimpleReply(1), 0u);
}

TEST_F(NbdTest, BadOptions) {
  for (std::string listen : {"nonsense", "127.0.0.1:99999", "unix:", "127.0.0.1:x"}) {
    ServerOptions o;
    o.listen = listen;
    o.exports.push_back({"disk", "", dev_});
    auto s = Server::Start(std::move(o));
    ASSERT_FALSE(s) << listen;
    EXPECT_EQ(s.error().code(), Code::kInvalidArgument) << listen;
  }
  ServerOptions o;
  o.listen = "unix:" + sock_;
  auto s = Server::Start(std::move(o));  // no exports
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tidemark::capture::nbd
