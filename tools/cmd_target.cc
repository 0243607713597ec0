// tidemark target init --data DIR [--listen ADDR] [--host NAME]... [--json]
// tidemark tenant add NAME | list | token NAME  --config F [--json]
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "tidemark/journal/time.h"
#include "tidemark/target/config.h"
#include "tidemark/target/tenants.h"
#include "tidemark/target/tls.h"

namespace tidemark::tools {

namespace {

namespace fs = std::filesystem;

struct InitArgs {
  std::string data_dir;
  std::string listen = target::TargetConfig().listen;
  std::vector<std::string> hosts;
  bool json = false;
};

Status MakePrivateDir(const fs::path& dir) {
  std::error_code ec;
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), ec);
  if (ec) return Status::FromErrno(ec.value(), "create " + dir.parent_path().string());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "create " + dir.string());
  }
  if (!fs::is_directory(dir)) return Status::InvalidArgument(dir.string() + " is not a directory");
  return Status::Ok();
}

int RunInit(const InitArgs& a) {
  auto run = [&]() -> Status {
    if (a.data_dir.empty()) return Status::InvalidArgument("--data must not be empty");
    const fs::path dir = fs::absolute(a.data_dir).lexically_normal();
    const std::string d = dir.string();
    const std::string config_path = (dir / target::kConfigFile).string();
    target::TargetConfig c;
    c.data_dir = d;
    c.listen = a.listen;
    c.cert = (dir / target::kServerCertFile).string();
    c.key = (dir / target::kServerKeyFile).string();
    c.ca = (dir / target::kCaCertFile).string();
    TM_RETURN_IF_ERROR(ValidateTargetConfig(c));
    if (fs::exists(config_path)) {
      return Status::InvalidArgument(d + " already holds a target (" + config_path +
                                     "); use another directory");
    }
    TM_RETURN_IF_ERROR(MakePrivateDir(dir));
    std::vector<std::string> hosts = a.hosts.empty() ? target::DefaultTargetHosts() : a.hosts;
    TM_RETURN_IF_ERROR(target::CreateTargetPki(d, hosts));
    // Keeps the tenants of an earlier, unfinished init; creates an empty file otherwise.
    BOOST_OUTCOME_TRY(tenants, target::TenantStore::Load((dir / target::kTenantsFile).string()));
    TM_RETURN_IF_ERROR(tenants.Save());
    // Written last: its presence means the directory is complete.
    TM_RETURN_IF_ERROR(target::WriteFileAtomically(config_path, target::RenderTargetConfig(c, d),
                                                   0644, /*replace=*/false));
    BOOST_OUTCOME_TRY(fingerprint, target::CertificateFingerprint(c.ca));
    const std::vector<std::string> next = {"tidemark tenant add NAME --config " + config_path,
                                           "tidemark target serve --config " + config_path};
    if (a.json) {
      nlohmann::json out = {
          {"data", d},      {"config", config_path}, {"ca", c.ca},     {"ca_sha256", fingerprint},
          {"cert", c.cert}, {"listen", c.listen},    {"hosts", hosts}, {"next", next}};
      std::printf("%s\n", out.dump().c_str());
      return Status::Ok();
    }
    std::string host_list;
    for (const auto& h : hosts) host_list += (host_list.empty() ? "" : ", ") + h;
    std::printf("initialized target in %s\n", d.c_str());
    std::printf("  config:      %s (listen %s)\n", config_path.c_str(), c.listen.c_str());
    std::printf("  server cert: %s for %s\n", c.cert.c_str(), host_list.c_str());
    std::printf("  CA:          %s (copy it to every tap)\n", c.ca.c_str());
    std::printf("  CA SHA-256:  %s\n", fingerprint.c_str());
    std::printf("next:\n  %s\n  %s\n", next[0].c_str(), next[1].c_str());
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

enum class TenantOp { kAdd, kList, kToken };

struct TenantArgs {
  std::string config;
  std::string name;
  bool json = false;
};

int RunTenant(TenantOp op, const TenantArgs& a) {
  auto run = [&]() -> Status {
    BOOST_OUTCOME_TRY(c, target::LoadTargetConfig(a.config));
    const std::string path = (fs::path(c.data_dir) / target::kTenantsFile).string();
    if (!fs::is_directory(c.data_dir)) {
      return Status::NotFound("data directory " + c.data_dir + " (from " + a.config +
                              ") does not exist");
    }
    BOOST_OUTCOME_TRY(store, target::TenantStore::Load(path));
    if (op == TenantOp::kList) {
      auto list = store.List();
      if (a.json) {
        nlohmann::json out = {{"tenants", nlohmann::json::array()}};
        for (const auto& t : list) {
          out["tenants"].push_back({{"name", t.name}, {"created", FormatTime(t.created_ns)}});
        }
        std::printf("%s\n", out.dump().c_str());
      } else {
        std::printf("tenants: %zu\n", list.size());
        for (const auto& t : list) {
          std::printf("  %-32s created %s\n", t.name.c_str(), FormatTime(t.created_ns).c_str());
        }
      }
      return Status::Ok();
    }
    Result<std::string> token = op == TenantOp::kAdd ? store.Add(a.name) : store.Rotate(a.name);
    if (!token) return token.error();
    if (a.json) {
      std::printf("%s\n",
                  nlohmann::json{{"tenant", a.name}, {"token", token.value()}}.dump().c_str());
    } else {
      std::printf(
          "%s %s; its token (shown only this once, keep it in a file for the tap's "
          "--token-file):\n%s\n",
          op == TenantOp::kAdd ? "added tenant" : "new token for tenant", a.name.c_str(),
          token.value().c_str());
      if (op == TenantOp::kToken) {
        std::printf("the old token no longer authenticates (a running target reloads %s)\n",
                    path.c_str());
      }
    }
    return Status::Ok();
  };
  Status s = run();
  return s.ok() ? 0 : Fail(s, a.json);
}

}  // namespace

CLI::App* AddTargetCommand(CLI::App& app, int* exit_code) {
  CLI::App* target = app.add_subcommand("target", "set up and run a remote target");
  target->require_subcommand(1);

  auto a = std::make_shared<InitArgs>();
  CLI::App* init = target->add_subcommand(
      "init", "create a target's data directory: CA and server certificate, tenants, config");
  init->add_option("--data", a->data_dir, "data directory to create (mode 0700)")->required();
  init->add_option("--listen", a->listen, "HOST:PORT the target will listen on for taps")
      ->capture_default_str();
  init->add_option("--host", a->hosts,
                   "a name or IP address taps use to reach the target (repeat; default "
                   "localhost, 127.0.0.1, ::1 and this machine's hostname)")
      ->allow_extra_args(false);
  init->add_flag("--json", a->json, "print JSON");
  init->callback([a, exit_code] { *exit_code = RunInit(*a); });
  return target;
}

void AddTenantCommand(CLI::App& app, int* exit_code) {
  CLI::App* tenant = app.add_subcommand("tenant", "add tenants, list them, rotate their tokens");
  tenant->require_subcommand(1);
  auto add = [&](TenantOp op, const char* name, const char* help, bool takes_name) {
    auto a = std::make_shared<TenantArgs>();
    CLI::App* cmd = tenant->add_subcommand(name, help);
    if (takes_name) cmd->add_option("NAME", a->name, "tenant name")->required();
    cmd->add_option("--config", a->config, "the target's config (DIR/target.toml)")->required();
    cmd->add_flag("--json", a->json, "print JSON");
    cmd->callback([op, a, exit_code] { *exit_code = RunTenant(op, *a); });
  };
  add(TenantOp::kAdd, "add", "add a tenant and print its token (shown only once)", true);
  add(TenantOp::kList, "list", "list the tenants", false);
  add(TenantOp::kToken, "token",
      "give a tenant a new token and print it; the old one stops working", true);
}

}  // namespace tidemark::tools
