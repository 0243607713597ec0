#include "tidemark/target/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace tidemark::target {
namespace {

using std::chrono::milliseconds;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/config_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = std::filesystem::path(tmpl).lexically_normal().string();
    path_ = dir_ + "/target.toml";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<TargetConfig> LoadText(const std::string& text) {
    std::ofstream(path_, std::ios::trunc) << text;
    return LoadTargetConfig(path_);
  }
  // The error of loading `text`; fails the test when it loads.
  Status Error(const std::string& text) {
    auto r = LoadText(text);
    EXPECT_FALSE(r) << text;
    if (r) return Status::Ok();
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find(path_), std::string::npos) << r.error().message();
    return r.error();
  }

  std::string dir_, path_;
};

TEST_F(ConfigTest, Defaults) {
  auto r = LoadText("[target]\ndata = \"/srv/tm\"\n");
  ASSERT_TRUE(r) << r.error().message();
  const TargetConfig& c = r.value();
  EXPECT_EQ(c.data_dir, "/srv/tm");
  EXPECT_EQ(c.listen, "0.0.0.0:7443");
  EXPECT_EQ(c.cert, "/srv/tm/server.crt");
  EXPECT_EQ(c.key, "/srv/tm/server.key");
  EXPECT_EQ(c.ca, "/srv/tm/ca.crt");
  EXPECT_EQ(c.group_commit, milliseconds(2));
  EXPECT_EQ(c.max_inflight_bytes, 256ull << 20);
}

TEST_F(ConfigTest, EveryKey) {
  auto r = LoadText(R"([target]
data = "/srv/tm"
listen = "[::]:9000"
[tls]
cert = "/etc/tm/cert.pem"
key = "/etc/tm/key.pem"
ca = "/etc/tm/ca.pem"
[ingest]
group_commit_ms = 0
max_inflight_mib = 64
)");
  ASSERT_TRUE(r) << r.error().message();
  const TargetConfig& c = r.value();
  EXPECT_EQ(c.listen, "[::]:9000");
  EXPECT_EQ(c.cert, "/etc/tm/cert.pem");
  EXPECT_EQ(c.key, "/etc/tm/key.pem");
  EXPECT_EQ(c.ca, "/etc/tm/ca.pem");
  EXPECT_EQ(c.group_commit, milliseconds(0));
  EXPECT_EQ(c.max_inflight_bytes, 64ull << 20);
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheConfigsDirectory) {
  auto r =
      LoadText("[target]\ndata = \"data\"\n[tls]\ncert = \"../pki/./s.crt\"\nca = \"ca.crt\"\n");
  ASSERT_TRUE(r) << r.error().message();
  const TargetConfig& c = r.value();
  EXPECT_EQ(c.data_dir, dir_ + "/data");
  EXPECT_EQ(c.cert, std::filesystem::path(dir_).parent_path().string() + "/pki/s.crt");
  EXPECT_EQ(c.ca, dir_ + "/ca.crt");
  EXPECT_EQ(c.key, dir_ + "/data/server.key");  // a default: inside data
}

TEST_F(ConfigTest, UnknownKeysAreErrorsNamingThem) {
  for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
           {"[target]\ndata = \"/d\"\nlisten_addr = \"x:1\"\n", "'target.listen_addr'"},
           {"[target]\ndata = \"/d\"\n[tls]\ncrt = \"a\"\n", "'tls.crt'"},
           {"[target]\ndata = \"/d\"\n[ingest]\ngroup_commit = 2\n", "'ingest.group_commit'"},
           {"[target]\ndata = \"/d\"\n[server]\n", "'server'"},
           {"data = \"/d\"\n", "'data'"},
       }) {
    Status s = Error(text);
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.message().find("unknown key " + key), std::string::npos) << s.message();
  }
}

TEST_F(ConfigTest, WrongTypesAndValuesAreErrorsNamingTheKey) {
  for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
           {"[target]\ndata = 5\n", "'target.data'"},
           {"[target]\ndata = \"/d\"\nlisten = 7443\n", "'target.listen'"},
           {"[target]\ndata = \"/d\"\n[tls]\ncert = [\"a\"]\n", "'tls.cert'"},
           {"[target]\ndata = \"/d\"\n[ingest]\ngroup_commit_ms = \"2\"\n",
            "'ingest.group_commit_ms'"},
           {"[target]\ndata = \"/d\"\n[ingest]\ngroup_commit_ms = 2.5\n",
            "'ingest.group_commit_ms'"},
           {"[target]\ndata = \"/d\"\n[ingest]\ngroup_commit_ms = -1\n",
            "'ingest.group_commit_ms'"},
           {"[target]\ndata = \"/d\"\n[ingest]\nmax_inflight_mib = 0\n",
            "'ingest.max_inflight_mib'"},
           {"target = \"x\"\n", "'target'"},
           {"[tls]\n", "'target.data'"},
           {"[target]\ndata = \"/d\"\nlisten = \"7443\"\n", "'target.listen'"},
           {"[target]\ndata = \"/d\"\nlisten = \"host:99999\"\n", "'target.listen'"},
           {"[target]\ndata = \"/d\"\nlisten = \":::7443\"\n", "'target.listen'"},
           {"[target]\ndata = \"\"\n", "'target.data'"},
       }) {
    Status s = Error(text);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(key), std::string::npos) << text << ": " << s.message();
  }
}

TEST_F(ConfigTest, SyntaxErrorsNameTheLineAndMissingFilesAreNotFound) {
  Status s = Error("[target]\ndata = \"/d\"\nlisten = \n");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("line 3"), std::string::npos) << s.message();
  auto missing = LoadTargetConfig(dir_ + "/nope.toml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
  EXPECT_NE(missing.error().message().find("nope.toml"), std::string::npos);
}

TEST_F(ConfigTest, RenderRoundTrips) {
  TargetConfig c;
  c.data_dir = dir_;
  c.listen = "[::1]:8443";
  c.cert = dir_ + "/server.crt";
  c.key = dir_ + "/keys/server.key";
  c.ca = "/etc/ssl/tm \"ca\"\\.crt";  // outside the directory, and needs escaping
  c.group_commit = milliseconds(7);
  c.max_inflight_bytes = 32ull << 20;
  ASSERT_TRUE(ValidateTargetConfig(c).ok());
  std::string text = RenderTargetConfig(c, dir_);
  EXPECT_NE(text.find("cert = \"server.crt\""), std::string::npos) << text;
  EXPECT_NE(text.find("key = \"keys/server.key\""), std::string::npos) << text;
  auto r = LoadText(text);
  ASSERT_TRUE(r) << r.error().message() << "\n" << text;
  EXPECT_EQ(r.value().data_dir, c.data_dir);
  EXPECT_EQ(r.value().listen, c.listen);
  EXPECT_EQ(r.value().cert, c.cert);
  EXPECT_EQ(r.value().key, c.key);
  EXPECT_EQ(r.value().ca, c.ca);
  EXPECT_EQ(r.value().group_commit, c.group_commit);
  EXPECT_EQ(r.value().max_inflight_bytes, c.max_inflight_bytes);
  // Without relative_to every path is absolute.
  EXPECT_NE(RenderTargetConfig(c).find("cert = \"" + dir_ + "/server.crt\""), std::string::npos);
}

TEST_F(ConfigTest, ValidateRejectsRelativePathsAndOddSizes) {
  TargetConfig c;
  c.data_dir = "/d";
  c.cert = c.key = c.ca = "/d/x";
  EXPECT_TRUE(ValidateTargetConfig(c).ok());
  TargetConfig rel = c;
  rel.cert = "x";
  EXPECT_NE(ValidateTargetConfig(rel).message().find("'tls.cert'"), std::string::npos);
  TargetConfig odd = c;
  odd.max_inflight_bytes = (1 << 20) + 1;
  EXPECT_EQ(ValidateTargetConfig(odd).code(), Code::kInvalidArgument);
}

TEST_F(ConfigTest, WriteFileAtomically) {
  const std::string f = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomically(f, "one", 0600, /*replace=*/false).ok());
  struct stat st;
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Status again = WriteFileAtomically(f, "two", 0600, /*replace=*/false);
  EXPECT_EQ(again.code(), Code::kInvalidArgument);
  EXPECT_NE(again.message().find(f), std::string::npos);
  ASSERT_TRUE(WriteFileAtomically(f, "three", 0644, /*replace=*/true).ok());
  std::ifstream in(f);
  std::string got((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(got, "three");
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // No temporary files are left, after success or refusal.
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) n += e.path() != f;
  EXPECT_EQ(n, 0);
  EXPECT_FALSE(WriteFileAtomically(dir_ + "/no/such/f", "x", 0600, true).ok());
}

}  // namespace
}  // namespace tidemark::target
