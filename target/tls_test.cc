#include "tidemark/target/tls.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace tidemark::target {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/tls_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string NewDir(const std::string& name) {
    std::string d = root_ + "/" + name;
    std::filesystem::create_directory(d);
    return d;
  }
  static std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static unsigned Mode(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 0777;
  }

  std::string root_;
};

TEST_F(TlsTest, ServerCertificateVerifiesForEachHostOnly) {
  std::string d = NewDir("a");
  const std::vector<std::string> hosts = {"tm.example.com", "10.1.2.3", "[fd00::7]", "backup-01"};
  Status s = CreateTargetPki(d, hosts);
  ASSERT_TRUE(s.ok()) << s.message();
  for (const char* h : {"tm.example.com", "TM.example.com", "10.1.2.3", "fd00::7", "[fd00::7]",
                        "fd00:0:0::7", "backup-01"}) {
    Status v = VerifyServerCertificate(d + "/ca.crt", d + "/server.crt", h);
    EXPECT_TRUE(v.ok()) << h << ": " << v.message();
  }
  for (const char* h :
       {"other.example.com", "example.com", "x.tm.example.com", "10.1.2.4", "::1", "localhost"}) {
    Status v = VerifyServerCertificate(d + "/ca.crt", d + "/server.crt", h);
    EXPECT_EQ(v.code(), Code::kInvalidArgument) << h;
    EXPECT_NE(v.message().find("not valid for host"), std::string::npos) << v.message();
  }
}

TEST_F(TlsTest, FailsAgainstAnotherCa) {
  std::string a = NewDir("a"), b = NewDir("b");
  ASSERT_TRUE(CreateTargetPki(a, {"localhost"}).ok());
  ASSERT_TRUE(CreateTargetPki(b, {"localhost"}).ok());
  EXPECT_TRUE(VerifyServerCertificate(b + "/ca.crt", b + "/server.crt", "localhost").ok());
  Status v = VerifyServerCertificate(b + "/ca.crt", a + "/server.crt", "localhost");
  EXPECT_EQ(v.code(), Code::kInvalidArgument);
  EXPECT_NE(v.message().find("does not verify"), std::string::npos) << v.message();
  // A CA certificate is not a server certificate for anything.
  EXPECT_FALSE(VerifyServerCertificate(a + "/ca.crt", a + "/ca.crt", "localhost").ok());
  EXPECT_NE(CertificateFingerprint(a + "/ca.crt").value(),
            CertificateFingerprint(b + "/ca.crt").value());
}

TEST_F(TlsTest, DefaultHostsAndFileModes) {
  std::vector<std::string> defaults = DefaultTargetHosts();
  ASSERT_GE(defaults.size(), 3u);
  EXPECT_EQ(defaults[0], "localhost");
  EXPECT_EQ(defaults[1], "127.0.0.1");
  EXPECT_EQ(defaults[2], "::1");
  std::string d = NewDir("a");
  ASSERT_TRUE(CreateTargetPki(d, {}).ok());
  for (const std::string& h : defaults) {
    Status v = VerifyServerCertificate(d + "/ca.crt", d + "/server.crt", h);
    EXPECT_TRUE(v.ok()) << h << ": " << v.message();
  }
  EXPECT_EQ(Mode(d + "/ca.key"), 0600u);
  EXPECT_EQ(Mode(d + "/server.key"), 0600u);
  EXPECT_EQ(Mode(d + "/ca.crt"), 0644u);
  EXPECT_EQ(Mode(d + "/server.crt"), 0644u);
  EXPECT_EQ(Read(d + "/ca.key").rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  EXPECT_EQ(Read(d + "/server.crt").rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  // Nothing else is left behind (no temporary files).
  EXPECT_EQ(
      std::distance(std::filesystem::directory_iterator(d), std::filesystem::directory_iterator()),
      4);
}

TEST_F(TlsTest, RefusesToReplaceExistingKeys) {
  std::string d = NewDir("a");
  ASSERT_TRUE(CreateTargetPki(d, {"localhost"}).ok());
  const std::string ca_key = Read(d + "/ca.key"), server_crt = Read(d + "/server.crt");
  Status again = CreateTargetPki(d, {"localhost"});
  EXPECT_EQ(again.code(), Code::kInvalidArgument);
  EXPECT_NE(again.message().find(d + "/ca.key"), std::string::npos) << again.message();
  EXPECT_EQ(Read(d + "/ca.key"), ca_key);
  EXPECT_EQ(Read(d + "/server.crt"), server_crt);

  // Any one of the four files is enough to refuse, and nothing is written then.
  std::string e = NewDir("e");
  std::ofstream(e + "/server.key") << "precious";
  Status s = CreateTargetPki(e, {"localhost"});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("server.key"), std::string::npos) << s.message();
  EXPECT_EQ(Read(e + "/server.key"), "precious");
  EXPECT_FALSE(std::filesystem::exists(e + "/ca.key"));
}

TEST_F(TlsTest, BadHostsAndMissingDirectory) {
  std::string d = NewDir("a");
  for (const char* bad : {"", "bad host", "a,b", "x..y", ".x", "host/1", "caf\xc3\xa9"}) {
    Status s = CreateTargetPki(d, {"localhost", bad});
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("bad host"), std::string::npos) << s.message();
  }
  EXPECT_TRUE(std::filesystem::is_empty(d));
  EXPECT_EQ(CreateTargetPki(root_ + "/missing", {"localhost"}).code(), Code::kNotFound);
}

TEST_F(TlsTest, Fingerprint) {
  std::string d = NewDir("a");
  ASSERT_TRUE(CreateTargetPki(d, {"localhost"}).ok());
  auto fp = CertificateFingerprint(d + "/ca.crt");
  ASSERT_TRUE(fp) << fp.error().message();
  ASSERT_EQ(fp.value().size(), 32u * 3 - 1);
  for (size_t i = 0; i < fp.value().size(); ++i) {
    char c = fp.value()[i];
    if (i % 3 == 2) {
      EXPECT_EQ(c, ':');
    } else {
      EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')) << fp.value();
    }
  }
  EXPECT_EQ(CertificateFingerprint(d + "/ca.crt").value(), fp.value());  // stable
  EXPECT_NE(CertificateFingerprint(d + "/server.crt").value(), fp.value());
  EXPECT_EQ(CertificateFingerprint(d + "/nope.crt").error().code(), Code::kNotFound);
  auto not_cert = CertificateFingerprint(d + "/ca.key");
  ASSERT_FALSE(not_cert);
  EXPECT_EQ(not_cert.error().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tidemark::target
