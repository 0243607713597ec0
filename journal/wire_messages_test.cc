// Tests of the tap->target stream's payloads (docs/protocol.md): ACK,
// IMPORT, HASH_REQUEST/HASHES and the JSON messages: round trips and
// leveldb-style damage tests. Frames, WRITES and the golden bytes are in
// wire_test.cc.
#include <gtest/gtest.h>

#include <string>

#include "tidemark/journal/wire.h"
#include "wire_test_util.h"

namespace tidemark::wire {
namespace {

using namespace testing_util;  // NOLINT: the shared fixtures

// ---- ACK and IMPORT --------------------------------------------------------

TEST(AckTest, RoundTripAndDamage) {
  for (Seq s : {Seq{0}, Seq{1}, Seq{43}, kNoSeq - 1, kNoSeq}) {
    EXPECT_EQ(EncodeAck(s).size(), 8u);
    EXPECT_EQ(DecodeAck(EncodeAck(s)).value(), s);
  }
  for (size_t n : {0, 7, 9, 16}) {
    EXPECT_TRUE(IsCorruption(DecodeAck(std::string(n, '\0')), "expected 8")) << n;
  }
}

TEST(ImportTest, RoundTripAndDamage) {
  for (const ImportChunk& c :
       {FixedImport(), ImportChunk{0, 0, {}}, ImportChunk{0xffff, ~0ull - 511, ImportData()}}) {
    std::string p = EncodeImport(c);
    EXPECT_EQ(p.size(), kImportHeaderBytes + c.data.size());
    auto d = DecodeImport(p);
    ASSERT_TRUE(d) << d.error().ToString();
    EXPECT_EQ(d.value(), c);
    if (!c.data.empty()) {
      EXPECT_EQ(d.value().data.data(), p.data() + kImportHeaderBytes);
    }
  }
  const std::string good = EncodeImport(FixedImport());
  EXPECT_EQ(good.substr(0, 16), LE(1, 2) + LE(0, 2) + LE(512, 4) + LE(1 << 20, 8));
  std::string reserved = good;
  reserved[3] = 1;
  EXPECT_TRUE(IsCorruption(DecodeImport(reserved), "reserved"));
  EXPECT_TRUE(IsCorruption(DecodeImport(good.substr(0, 15)), "shorter than its header"));
  EXPECT_TRUE(IsCorruption(DecodeImport(good.substr(0, good.size() - 1)), "but 511 data bytes"));
  EXPECT_TRUE(IsCorruption(DecodeImport(good + "x"), "but 513 data bytes"));
  std::string odd = LE(0, 2) + LE(0, 2) + LE(100, 4) + LE(0, 8) + std::string(100, 'x');
  EXPECT_TRUE(IsCorruption(DecodeImport(odd), "not a multiple of 512"));
  std::string off = LE(0, 2) + LE(0, 2) + LE(512, 4) + LE(7, 8) + std::string(512, 'x');
  EXPECT_TRUE(IsCorruption(DecodeImport(off), "offset 7"));
}

TEST(HashesTest, RoundTripAndDamage) {
  BlockHashes req{3, 256, 41, 1 << 20, {}};
  std::string p = EncodeBlockHashes(req);
  EXPECT_EQ(p, LE(3, 2) + LE(0, 2) + LE(256, 4) + LE(41, 8) + LE(1 << 20, 8));
  EXPECT_EQ(DecodeBlockHashes(p, false).value(), req);
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(p, true), "0 hash bytes for 256 blocks"));
  BlockHashes rep = req;
  rep.hashes = std::string(256 * kBlockHashBytes, 'h');
  std::string q = EncodeBlockHashes(rep);
  EXPECT_EQ(DecodeBlockHashes(q, true).value(), rep);
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(q, false), "hash bytes"));
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(q.substr(0, q.size() - 1), true), "hash bytes"));
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(p.substr(0, 23), false), "shorter than its header"));
  std::string reserved = p;
  reserved[2] = 1;
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(reserved, false), "reserved"));
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(EncodeBlockHashes({0, 0, 1, 0, {}}), false), "count 0"));
  EXPECT_TRUE(IsCorruption(
      DecodeBlockHashes(EncodeBlockHashes({0, kMaxHashBlocks + 1, 1, 0, {}}), false), "count"));
  EXPECT_TRUE(IsCorruption(DecodeBlockHashes(EncodeBlockHashes({0, 1, 1, 100, {}}), false),
                           "not a multiple of 512"));
}

TEST(MessagesTest, WelcomeFeaturesAreOptional) {
  Welcome w = FixedWelcome();
  EXPECT_EQ(EncodeWelcome(w).find("features"), std::string::npos);  // golden bytes unchanged
  w.features = {std::string(kFeatureBlockHashes), "later"};
  EXPECT_EQ(DecodeWelcome(EncodeWelcome(w)).value(), w);
}

// ---- JSON messages ---------------------------------------------------------

TEST(MessagesTest, RoundTrips) {
  Hello h = FixedHello();
  EXPECT_EQ(DecodeHello(EncodeHello(h)).value(), h);
  h = Hello{};
  EXPECT_EQ(DecodeHello(EncodeHello(h)).value(), h);  // empty group, no volumes
  h.volumes.push_back({"a \"quoted\" name \u00e9\n", ~0ull, 512});
  EXPECT_EQ(DecodeHello(EncodeHello(h)).value(), h);

  Welcome w = FixedWelcome();
  EXPECT_EQ(DecodeWelcome(EncodeWelcome(w)).value(), w);
  w.durable_seq = kNoSeq;  // nothing durable yet: JSON null
  EXPECT_NE(EncodeWelcome(w).find(R"("durable_seq":null)"), std::string::npos);
  EXPECT_EQ(DecodeWelcome(EncodeWelcome(w)).value(), w);
  w.durable_seq = 0;
  EXPECT_EQ(DecodeWelcome(EncodeWelcome(w)).value(), w);

  for (TimeNs t : {TimeNs{0}, TimeNs{-1}, kT, INT64_MIN, INT64_MAX}) {
    Bookmark b{"b", kNoSeq - 1, t};
    EXPECT_EQ(DecodeBookmark(EncodeBookmark(b)).value(), b);
    BookmarkDone bd{"", 0, t};
    EXPECT_EQ(DecodeBookmarkDone(EncodeBookmarkDone(bd)).value(), bd);
    ImportDone id{0xffff, t};
    EXPECT_EQ(DecodeImportDone(EncodeImportDone(id)).value(), id);
    for (bool begin : {true, false}) {
      Unordered u{begin, 5, t};
      EXPECT_EQ(DecodeUnordered(EncodeUnordered(u)).value(), u);
    }
  }
  for (std::string_view code : {kErrUnauthenticated, kErrForbidden, kErrInvalid, kErrNoSpace,
                                kErrConflict, kErrInternal, kErrUnsupportedVersion}) {
    Error e{std::string(code), "why"};
    EXPECT_EQ(DecodeError(EncodeError(e)).value(), e);
  }
}

TEST(MessagesTest, DeterministicEncoding) {
  EXPECT_EQ(EncodeError(FixedError()),
            R"({"code":"no_space","message":"tenant acme is over its quota"})");
  EXPECT_EQ(EncodeImportDone(ImportDone{1, 5}), R"({"time_ns":5,"volume":1})");
  EXPECT_EQ(EncodeHello(FixedHello()),
            R"({"group":"vm1","protocol":1,"tap_id":"tap-7f3a","tenant":"acme",)"
            R"("token":"s3cret-token","volumes":[{"block_bytes":4096,"name":"vm1-disk0",)"
            R"("size_bytes":1073741824},{"block_bytes":4096,"name":"vm1-disk1",)"
            R"("size_bytes":536870912}]})");
  // Invalid UTF-8 is replaced, never thrown.
  Error bad{"internal", "bytes \xff\xfe"};
  EXPECT_EQ(DecodeError(EncodeError(bad)).value().message, "bytes \ufffd\ufffd");
}

TEST(MessagesTest, IgnoresUnknownFields) {
  auto b = DecodeBookmark(R"({"name":"n","seq":3,"time_ns":-4,"future":{"x":[1,2]},"zzz":null})");
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(b.value(), (Bookmark{"n", 3, -4}));
  auto w = DecodeWelcome(
      R"({"protocol":2,"durable_seq":null,"extra":1,)"
      R"("volumes":[{"name":"v","state":"ready","import_next_offset":0,"new":true}]})");
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(w.value().protocol, 2u);
  EXPECT_EQ(w.value().durable_seq, kNoSeq);
  ASSERT_EQ(w.value().volumes.size(), 1u);
  EXPECT_EQ(w.value().volumes[0].state, "ready");
}

TEST(MessagesTest, Damage) {
  struct Case {
    Status status;
    std::string want;
  };
  const Case cases[] = {
      {StatusOf(DecodeError("")), "ERROR: invalid JSON"},
      {StatusOf(DecodeError(R"({"code":"x","message":"y")")), "ERROR: invalid JSON"},
      {StatusOf(DecodeError(R"({"code":"x","message":"y"} x)")), "ERROR: invalid JSON"},
      {StatusOf(DecodeError("\xff")), "ERROR: invalid JSON"},
      {StatusOf(DecodeError(R"("code")")), "ERROR: not a JSON object"},
      {StatusOf(DecodeError(R"([{"code":"x","message":"y"}])")), "not a JSON object"},
      {StatusOf(DecodeError(R"({"code":"x"})")), "ERROR: field 'message' is missing"},
      {StatusOf(DecodeError(R"({"code":1,"message":"y"})")), "field 'code' is not a string"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":-1,"time_ns":0})")),
       "BOOKMARK: field 'seq' is not an unsigned integer"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":1.5,"time_ns":0})")), "'seq' is not an uns"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":"1","time_ns":0})")), "'seq' is not an uns"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":1,"time_ns":9223372036854775808})")),
       "'time_ns' is out of range"},
      {StatusOf(DecodeBookmark(R"({"name":"n","seq":1,"time_ns":1e3})")),
       "'time_ns' is not an integer"},
      {StatusOf(DecodeBookmarkDone(R"({"name":"n","time_ns":1})")),
       "BOOKMARK_DONE: field 'seq' is missing"},
      {StatusOf(DecodeImportDone(R"({"volume":65536,"time_ns":1})")),
       "IMPORT_DONE: field 'volume' is out of range"},
      {StatusOf(DecodeUnordered(R"({"begin":1,"seq":1,"time_ns":1})")),
       "UNORDERED: field 'begin' is not a boolean"},
      {StatusOf(DecodeHello(R"({"protocol":4294967296,"tenant":"","token":"","group":"",)"
                            R"("tap_id":"","volumes":[]})")),
       "HELLO: field 'protocol' is out of range"},
      {StatusOf(DecodeHello(R"({"protocol":1,"tenant":"","token":"","group":"","tap_id":""})")),
       "HELLO: field 'volumes' is missing"},
      {StatusOf(DecodeHello(R"({"protocol":1,"tenant":"","token":"","group":"","tap_id":"",)"
                            R"("volumes":{}})")),
       "field 'volumes' is not an array"},
      {StatusOf(DecodeHello(R"({"protocol":1,"tenant":"","token":"","group":"","tap_id":"",)"
                            R"("volumes":[{"name":"a","size_bytes":1,"block_bytes":512},3]})")),
       "field 'volumes' holds a non-object"},
      {StatusOf(DecodeHello(R"({"protocol":1,"tenant":"","token":"","group":"","tap_id":"",)"
                            R"("volumes":[{"name":"a","size_bytes":1,"block_bytes":512},)"
                            R"({"name":"b","block_bytes":512}]})")),
       "HELLO: volumes[1]: field 'size_bytes' is missing"},
      {StatusOf(DecodeWelcome(R"({"protocol":1,"durable_seq":18446744073709551615,"volumes":[]})")),
       "WELCOME: field 'durable_seq' is out of range"},
      {StatusOf(DecodeWelcome(R"({"protocol":1,"durable_seq":true,"volumes":[]})")),
       "field 'durable_seq' is not an unsigned integer"},
      {StatusOf(DecodeWelcome(R"({"protocol":1,"volumes":[]})")), "field 'durable_seq' is missing"},
      {StatusOf(DecodeWelcome(R"({"protocol":1,"durable_seq":1,"volumes":[{"name":"v",)"
                              R"("state":"ready","import_next_offset":-1}]})")),
       "WELCOME: volumes[0]: field 'import_next_offset' is not an unsigned integer"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), Code::kCorruption) << c.want << ": " << c.status.ToString();
    EXPECT_NE(c.status.message().find(c.want), std::string::npos)
        << "'" << c.status.message() << "' lacks '" << c.want << "'";
  }
}

}  // namespace
}  // namespace tidemark::wire
