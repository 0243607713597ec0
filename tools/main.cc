// tidemark: the command. Each subcommand lives in its own cmd_*.cc.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli.h"

int main(int argc, char** argv) {
  using namespace tidemark::tools;
  CLI::App app{
      "tidemark: block-level continuous data protection.\n"
      "Every write to a protected volume is kept in a journal; any point can be restored."};
  app.name("tidemark");
  app.require_subcommand(1);
  app.set_version_flag("--version", "tidemark 0.1.0");
  int exit_code = 0;
  AddRestoreCommand(app, &exit_code);
  AddPointsCommands(app, &exit_code);
  AddJournalCommand(app, &exit_code);
  AddProtectCommand(app, &exit_code);
  AddTargetServeCommand(AddTargetCommand(app, &exit_code), &exit_code);
  AddTenantCommand(app, &exit_code);
  AddTapCommand(app, &exit_code);
  AddStatusCommand(app, &exit_code);
  AddMountCommand(app, &exit_code);
  AddDrillCommand(app, &exit_code);
  const std::string first = argc > 1 ? argv[1] : "";
  auto named = [&](const CLI::App* sub) { return sub->get_name() == first; };
  if (!first.empty() && first[0] != '-' && app.get_subcommands(named).empty()) {
    return Fail(tidemark::Status::InvalidArgument(std::string("unknown command '") + argv[1] +
                                                  "' (see --help)"),
                false);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    bool json = false;
    for (int i = 1; i < argc; ++i) json |= std::strcmp(argv[i], "--json") == 0;
    std::string msg = e.what();
    if (msg.empty()) msg = "bad arguments";
    return Fail(tidemark::Status::InvalidArgument(msg + " (see --help)"), json);
  }
  return exit_code;
}
