#include "tidemark/target/tenants.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tidemark/journal/time.h"

namespace tidemark::target {
namespace {

class TenantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/tenants_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/tenants.json";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void Write(const std::string& text) { std::ofstream(path_) << text; }
  TenantStore Load() {
    auto s = TenantStore::Load(path_);
    EXPECT_TRUE(s) << s.error().message();
    return std::move(s).value();
  }

  std::string dir_, path_;
};

TEST_F(TenantsTest, MissingFileIsEmptyAndSaveCreatesIt) {
  TenantStore s = Load();
  EXPECT_TRUE(s.List().empty());
  EXPECT_FALSE(std::filesystem::exists(path_));
  ASSERT_TRUE(s.Save().ok());
  EXPECT_TRUE(Load().List().empty());
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(TenantsTest, AddGivesATokenThatIsNeverStored) {
  TenantStore s = Load();
  TimeNs before = NowNs();
  auto token = s.Add("acme");
  ASSERT_TRUE(token) << token.error().message();
  const std::string& t = token.value();
  ASSERT_EQ(t.size(), 4u + 43u) << t;
  EXPECT_EQ(t.substr(0, 4), "tmk_");
  EXPECT_EQ(
      t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 4),
      std::string::npos)
      << t;
  // Neither the token nor its random part appears in any file of the directory.
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    std::string content = Read(f.path());
    EXPECT_EQ(content.find(t.substr(4)), std::string::npos) << f.path();
  }
  TenantStore again = Load();
  auto list = again.List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].name, "acme");
  EXPECT_GE(list[0].created_ns, before);
  EXPECT_LE(list[0].created_ns, NowNs());
  EXPECT_TRUE(again.Authenticate("acme", t));
}

TEST_F(TenantsTest, AuthenticateRightWrongUnknown) {
  TenantStore s = Load();
  std::string a = s.Add("a").value();
  std::string b = s.Add("b").value();
  EXPECT_NE(a, b);
  EXPECT_TRUE(s.Authenticate("a", a));
  EXPECT_TRUE(s.Authenticate("b", b));
  EXPECT_FALSE(s.Authenticate("a", b));  // another tenant's token
  EXPECT_FALSE(s.Authenticate("b", a));
  std::string almost = a;
  almost.back() = almost.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(s.Authenticate("a", almost));
  EXPECT_FALSE(s.Authenticate("a", a.substr(0, a.size() - 1)));
  EXPECT_FALSE(s.Authenticate("a", ""));
  EXPECT_FALSE(s.Authenticate("nobody", a));
  EXPECT_FALSE(s.Authenticate("", ""));
}

TEST_F(TenantsTest, RotateInvalidatesTheOldToken) {
  TenantStore s = Load();
  std::string old_token = s.Add("acme").value();
  TimeNs created = s.List()[0].created_ns;
  auto fresh = s.Rotate("acme");
  ASSERT_TRUE(fresh) << fresh.error().message();
  EXPECT_NE(fresh.value(), old_token);
  EXPECT_FALSE(s.Authenticate("acme", old_token));
  EXPECT_TRUE(s.Authenticate("acme", fresh.value()));
  TenantStore reloaded = Load();
  EXPECT_FALSE(reloaded.Authenticate("acme", old_token));
  EXPECT_TRUE(reloaded.Authenticate("acme", fresh.value()));
  EXPECT_EQ(reloaded.List()[0].created_ns, created);

  auto missing = s.Rotate("nobody");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Code::kNotFound);
}

TEST_F(TenantsTest, BadAndDuplicateNames) {
  TenantStore s = Load();
  for (const std::string& bad : std::vector<std::string>{
           "", "a b", "a/b", "..", ".hidden", "-x", "caf\xc3\xa9", "x\n", std::string(65, 'a')}) {
    auto r = s.Add(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  }
  EXPECT_TRUE(s.Add(std::string(64, 'a')));
  EXPECT_TRUE(s.Add("Acme.prod_2-eu"));
  auto dup = s.Add("Acme.prod_2-eu");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), Code::kInvalidArgument);
  EXPECT_NE(dup.error().message().find("already exists"), std::string::npos);
  EXPECT_EQ(Load().List().size(), 2u);
}

TEST_F(TenantsTest, ListIsSortedByName) {
  TenantStore s = Load();
  for (const char* n : {"zeta", "alpha", "mid"}) ASSERT_TRUE(s.Add(n));
  std::vector<std::string> names;
  for (const auto& t : Load().List()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "mid", "zeta"}));
}

TEST_F(TenantsTest, TwoStoresDoNotLoseEachOthersTenants) {
  TenantStore one = Load();
  TenantStore two = Load();
  std::string a = one.Add("a").value();
  std::string b = two.Add("b").value();  // re-reads the file under its lock first
  TenantStore s = Load();
  EXPECT_EQ(s.List().size(), 2u);
  EXPECT_TRUE(s.Authenticate("a", a));
  EXPECT_TRUE(s.Authenticate("b", b));
}

TEST_F(TenantsTest, CorruptedFilesAreClearErrors) {
  const std::string hash(64, 'a');
  const std::string ok_tenant =
      R"({"name": "a", "token_sha256": ")" + hash + R"(", "created": "2026-11-23T10:00:00Z"})";
  struct Case {
    std::string text;
    Code code;
    const char* says;
  } cases[] = {
      {"", Code::kCorruption, "not valid JSON"},
      {"{\"format\": 1, \"tenants\": [", Code::kCorruption, "not valid JSON"},
      {"[]", Code::kCorruption, "format"},
      {"{\"tenants\": []}", Code::kCorruption, "format"},
      {"{\"format\": 2, \"tenants\": []}", Code::kNotSupported, "format 2"},
      {"{\"format\": 1}", Code::kCorruption, "tenants"},
      {"{\"format\": 1, \"tenants\": [{\"name\": \"a\"}]}", Code::kCorruption, "token_sha256"},
      {"{\"format\": 1, \"tenants\": [" + ok_tenant + ", " + ok_tenant + "]}", Code::kCorruption,
       "twice"},
      {R"({"format": 1, "tenants": [{"name": "a b", "token_sha256": ")" + hash +
           R"(", "created": "2026-11-23T10:00:00Z"}]})",
       Code::kCorruption, "bad tenant name"},
      {R"({"format": 1, "tenants": [{"name": "a", "token_sha256": "xyz", "created": "2026-11-23T10:00:00Z"}]})",
       Code::kCorruption, "hex"},
      {R"({"format": 1, "tenants": [{"name": "a", "token_sha256": ")" + hash +
           R"(", "created": "yesterday"}]})",
       Code::kCorruption, "created"},
  };
  for (const Case& c : cases) {
    Write(c.text);
    auto s = TenantStore::Load(path_);
    ASSERT_FALSE(s) << c.text;
    EXPECT_EQ(s.error().code(), c.code) << c.text << ": " << s.error().message();
    EXPECT_NE(s.error().message().find(c.says), std::string::npos) << s.error().message();
    EXPECT_NE(s.error().message().find(path_), std::string::npos) << s.error().message();
    EXPECT_EQ(s.error().message().find('\n'), std::string::npos) << s.error().message();
  }
  Write("{\"format\": 1, \"tenants\": [" + ok_tenant + "]}");
  auto s = TenantStore::Load(path_);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s.value().List().size(), 1u);
}

TEST_F(TenantsTest, AddAfterTheFileWasCorruptedFailsAndKeepsIt) {
  TenantStore s = Load();
  ASSERT_TRUE(s.Add("a"));
  Write("not json");
  auto r = s.Add("b");  // re-reads the file first
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kCorruption);
  EXPECT_EQ(Read(path_), "not json");
}

}  // namespace
}  // namespace tidemark::target
