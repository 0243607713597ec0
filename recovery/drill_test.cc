// Drill records and the drill's process: JSON round trip, names, exclusive
// creation, updates, listing, the newest drill of a volume; StartDrill and
// StopDrill against a fake mount (a shell that prints the mount's JSON
// lines).
#include "tidemark/recovery/drill.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace tidemark::recovery {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class DrillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A directory of its own: two builds' test runs may run this test at once.
    std::string tmpl = ::testing::TempDir() + "/drill-test-" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                       ".XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    auto s = DrillStore::Open(base_ + "/drills", /*create=*/true);
    ASSERT_TRUE(s) << s.error().ToString();
    store_.emplace(std::move(s.value()));
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  DrillRecord Record(const std::string& name, const std::string& volume, TimeNs started) {
    DrillRecord r;
    r.name = name;
    r.volume = volume;
    r.source = "journal " + base_;
    r.started_ns = started;
    return r;
  }
  std::string base_;
  std::optional<DrillStore> store_;
};

TEST_F(DrillTest, JsonRoundTrip) {
  DrillRecord r = Record("d1", "vm", 1'700'000'000'123'456'789);
  r.point = journal::Point{42, 1'700'000'000'000'000'001};
  r.stopped_ns = 1'700'000'100'000'000'000;
  r.listen = "unix:/x.sock";
  r.export_name = "vm";
  r.pid = 77;
  r.pid_start = 1234;
  r.result = DrillResult::kFail;
  r.reason = "boot check: no marker";
  r.notes = "monthly";
  r.boot_check = BootCheckRecord{DrillResult::kFail, "no marker", 30.5, "login:", "/c.log"};
  r.writes = 9;
  r.overlay_bytes = 65536;
  nlohmann::json j = DrillJson(r);
  EXPECT_EQ(j["state"], "stopped");
  EXPECT_EQ(j["point"]["seq"], 42);
  EXPECT_EQ(j["started"], "2023-11-14T22:13:20.123456789Z");
  auto back = DrillFromJson(j);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(DrillJson(back.value()), j);
  j.erase("volume");
  EXPECT_EQ(DrillFromJson(j).error().code(), Code::kCorruption);
  EXPECT_EQ(DrillFromJson(nlohmann::json::array()).error().code(), Code::kCorruption);
}

TEST_F(DrillTest, Names) {
  for (const char* ok : {"d", "monthly-2026.11_a", "A9"}) {
    EXPECT_TRUE(DrillStore::CheckName(ok).ok()) << ok;
  }
  for (std::string bad :
       std::vector<std::string>{"", ".hidden", "-x", "a/b", "a b", std::string(65, 'a')}) {
    EXPECT_EQ(DrillStore::CheckName(bad).code(), Code::kInvalidArgument) << bad;
  }
}

TEST_F(DrillTest, CreateGetUpdateList) {
  ASSERT_TRUE(store_->Create(Record("b", "vm", 200)).ok());
  ASSERT_TRUE(store_->Create(Record("a", "vm", 300)).ok());
  ASSERT_TRUE(store_->Create(Record("c", "other", 100)).ok());
  Status dup = store_->Create(Record("a", "vm", 400));
  EXPECT_EQ(dup.code(), Code::kInvalidArgument);
  EXPECT_NE(dup.message().find("drill a exists"), std::string::npos) << dup.message();
  EXPECT_EQ(store_->Get("a").value().started_ns, 300);  // not replaced
  EXPECT_EQ(store_->Get("nosuch").error().code(), Code::kNotFound);
  ASSERT_TRUE(store_
                  ->Update("b",
                           [](DrillRecord& r) {
                             r.result = DrillResult::kPass;
                             return Status::Ok();
                           })
                  .ok());
  EXPECT_EQ(store_->Get("b").value().result, DrillResult::kPass);
  EXPECT_EQ(store_->Update("nosuch", [](DrillRecord&) { return Status::Ok(); }).code(),
            Code::kNotFound);
  auto all = store_->List();
  ASSERT_TRUE(all) << all.error().ToString();
  ASSERT_EQ(all.value().size(), 3u);
  EXPECT_EQ(all.value()[0].name, "c");
  EXPECT_EQ(all.value()[2].name, "a");
  EXPECT_EQ(store_->Last("vm").value()->name, "a");
  EXPECT_FALSE(store_->Last("none").value().has_value());
  EXPECT_EQ(store_->Get("a").value().State(), "gone");  // never had a process

  std::ofstream(store_->PathOf("broken", ".json")) << "{not json";
  EXPECT_EQ(store_->List().error().code(), Code::kCorruption);
}

TEST_F(DrillTest, GroupRecords) {
  DrillRecord g = Record("g1", "sda", 500);
  g.group = "vm1";
  g.volumes = {"sda", "sdb"};
  nlohmann::json j = DrillJson(g);
  EXPECT_EQ(j["group"], "vm1");
  EXPECT_EQ(j["volumes"], nlohmann::json({"sda", "sdb"}));
  auto back = DrillFromJson(j);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back.value().volumes, g.volumes);
  EXPECT_EQ(DrillJson(back.value()), j);

  // A volume's drill: "group" null, "volumes" [V]; a record from before
  // groups (neither key) reads as one.
  nlohmann::json v = DrillJson(Record("v1", "sdb", 400));
  EXPECT_TRUE(v["group"].is_null());
  EXPECT_EQ(v["volumes"], nlohmann::json({"sdb"}));
  v.erase("group");
  v.erase("volumes");
  auto old = DrillFromJson(v);
  ASSERT_TRUE(old) << old.error().ToString();
  EXPECT_EQ(old.value().group, "");
  EXPECT_EQ(old.value().volumes, std::vector<std::string>{"sdb"});

  // The last drill of a volume counts the drills of its group.
  ASSERT_TRUE(store_->Create(Record("v1", "sdb", 400)).ok());
  ASSERT_TRUE(store_->Create(g).ok());
  ASSERT_TRUE(store_->Create(Record("v2", "sda", 300)).ok());
  EXPECT_EQ(store_->Last("sda").value()->name, "g1");
  EXPECT_EQ(store_->Last("sdb").value()->name, "g1");
  EXPECT_FALSE(store_->Last("vm1").value().has_value());  // a group is not a volume
}

TEST_F(DrillTest, MissingDirectory) {
  auto empty = DrillStore::Open(base_ + "/nothing/drills", /*create=*/false);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.value().List().value().empty());
  EXPECT_EQ(DrillStore::Open(base_ + "/nothing/drills", true).error().code(), Code::kNotFound);
}

TEST_F(DrillTest, NbdDrive) {
  EXPECT_EQ(NbdDrive("unix:/run/d.sock", "vm"), "nbd:unix:/run/d.sock:exportname=vm");
  EXPECT_EQ(NbdDrive("127.0.0.1:10809", "vm"), "nbd://127.0.0.1:10809/vm");
}

// A fake `tidemark mount --json`: the ready line, then on SIGTERM the final one.
std::vector<std::string> FakeMount(const std::string& ready) {
  return {"/bin/sh", "-c",
          "trap 'echo \"{\\\"stopped\\\":\\\"vm\\\",\\\"writes\\\":3,"
          "\\\"overlay_bytes\\\":131072}\"; exit 0' TERM\n"
          "echo 'some log text'\necho '" +
              ready + "'\nwhile :; do sleep 0.05; done"};
}

TEST_F(DrillTest, StartAndStop) {
  auto started = StartDrill(
      *store_, Record("d1", "vm", 1),
      FakeMount(R"({"volume":"vm","point":{"seq":7,"time":"2026-01-02T03:04:05.000000006Z"},)"
                R"("listen":"unix:/tmp/x.sock","export":"vm","writable":true})"),
      milliseconds(10000));
  ASSERT_TRUE(started) << started.error().ToString();
  DrillRecord r = store_->Get("d1").value();
  EXPECT_EQ(r.point->seq, 7u);
  EXPECT_EQ(r.listen, "unix:/tmp/x.sock");
  EXPECT_EQ(r.State(), "running");
  EXPECT_EQ(StartDrill(*store_, Record("d1", "vm", 2), FakeMount("{}"), milliseconds(1000))
                .error()
                .code(),
            Code::kInvalidArgument);

  auto stopped = StopDrill(*store_, "d1", DrillResult::kPass, "looked fine", milliseconds(5000));
  ASSERT_TRUE(stopped) << stopped.error().ToString();
  r = store_->Get("d1").value();
  EXPECT_EQ(r.State(), "stopped");
  EXPECT_EQ(r.writes, 3u);
  EXPECT_EQ(r.overlay_bytes, 131072u);
  EXPECT_EQ(r.result, DrillResult::kPass);
  EXPECT_EQ(r.notes, "looked fine");
  EXPECT_EQ(StopDrill(*store_, "d1", std::nullopt, "", milliseconds(100)).error().code(),
            Code::kInvalidArgument);
}

TEST_F(DrillTest, GroupDrillStartsBootsEveryMemberAndStops) {
  DrillRecord g = Record("g", "", 1);
  g.group = "vm1";
  auto started = StartDrill(
      *store_, g,
      FakeMount(R"({"group":"vm1","point":{"seq":9,"time":"2026-01-02T03:04:05.000000006Z"},)"
                R"("listen":"unix:/tmp/g.sock","writable":true,"volumes":[)"
                R"({"volume":"sda","export":"sda","size_bytes":4096},)"
                R"({"volume":"sdb","export":"sdb","size_bytes":8192}]})"),
      milliseconds(10000));
  ASSERT_TRUE(started) << started.error().ToString();
  DrillRecord r = store_->Get("g").value();
  EXPECT_EQ(r.group, "vm1");
  EXPECT_EQ(r.volumes, (std::vector<std::string>{"sda", "sdb"}));
  EXPECT_EQ(r.volume, "sda");
  EXPECT_EQ(r.export_name, "sda");
  EXPECT_EQ(r.point->seq, 9u);

  // The boot check boots sda and attaches sdb: a fake qemu that prints its
  // -drive files and the marker.
  const std::string qemu = base_ + "/fake-qemu";
  {
    std::ofstream out(qemu, std::ios::trunc);
    out << "#!/bin/sh\nlog=\nd=\nwhile [ $# -gt 0 ]; do\n"
           "  case $1 in -serial) log=${2#file:}; shift ;;\n"
           "    -drive) d=\"$d[${2%%,*}]\"; shift ;; esac\n  shift\ndone\n"
           "echo \"$d login:\" >\"$log\"\nexit 0\n";
  }
  fs::permissions(qemu, fs::perms::owner_all);
  BootCheckOptions o;
  o.qemu = qemu;
  auto checked = BootCheckDrill(*store_, "g", o);
  ASSERT_TRUE(checked) << checked.error().ToString();
  EXPECT_EQ(checked.value().result, DrillResult::kPass) << checked.value().reason;
  std::ifstream console(store_->PathOf("g", ".console.log"));
  std::string line;
  std::getline(console, line);
  EXPECT_EQ(line,
            "[file=nbd:unix:/tmp/g.sock:exportname=sda][file=nbd:unix:/tmp/g.sock:exportname=sdb]"
            " login:");
  ASSERT_TRUE(StopDrill(*store_, "g", std::nullopt, "", milliseconds(5000)));
  EXPECT_EQ(store_->Get("g").value().State(), "stopped");

  // A group mount whose ready line lists no volumes: no drill.
  DrillRecord e = Record("empty", "", 1);
  e.group = "vm1";
  auto none =
      StartDrill(*store_, e,
                 FakeMount(R"({"group":"vm1","point":{"seq":9,"time":"2026-01-02T03:04:05Z"},)"
                           R"("listen":"unix:/tmp/g.sock","volumes":[]})"),
                 milliseconds(10000));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), "the mount's ready line names no volumes");
  EXPECT_EQ(store_->Get("empty").error().code(), Code::kNotFound);
}

TEST_F(DrillTest, MountErrorRemovesTheRecord) {
  auto r =
      StartDrill(*store_, Record("bad", "vm", 1),
                 {"/bin/sh", "-c",
                  "echo 'tidemark: no bookmark x' >&2\n"
                  R"(echo '{"error":{"code":"not_found","message":"no bookmark x"}}'; exit 1)"},
                 milliseconds(10000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Code::kNotFound);
  EXPECT_EQ(r.error().message(), "no bookmark x");
  EXPECT_EQ(store_->Get("bad").error().code(), Code::kNotFound);
  EXPECT_FALSE(fs::exists(store_->PathOf("bad", ".mount.log")));

  auto died =
      StartDrill(*store_, Record("died", "vm", 1),
                 {"/bin/sh", "-c", "echo 'Segmentation fault'; exit 139"}, milliseconds(10000));
  ASSERT_FALSE(died);
  EXPECT_EQ(died.error().message(),
            "the drill's mount process exited with status 139: Segmentation fault");
  auto slow = StartDrill(*store_, Record("slow", "vm", 1), {"/bin/sh", "-c", "exec sleep 30"},
                         milliseconds(300));
  ASSERT_FALSE(slow);
  EXPECT_EQ(slow.error().code(), Code::kTryAgain);
}

}  // namespace
}  // namespace tidemark::recovery
