// The lockstep command: parses the command line and runs one subcommand (one file each).
#include <algorithm>
#include <iostream>

#include "cli/command.h"

namespace lockstep::cli {

int Fail(const Status& status) {
  std::string message = status.message();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::cerr << "lockstep: " << message << "\n";
  // Distinct codes let scripts tell bad input (2) from a failure to retry (3) and the rest (1).
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kPermissionDenied:
    case StatusCode::kUnauthenticated:
      return 2;
    case StatusCode::kUnavailable:
      return 3;
    default:
      return 1;
  }
}

}  // namespace lockstep::cli

int main(int argc, char** argv) {
  CLI::App app{
      "Lockstep keeps records and files consistent across databases, devices and services:\n"
      "it captures every change where it happens, carries it to every database that holds the\n"
      "same data, and resolves concurrent edits by a declared policy, keeping every losing value."};
  app.name("lockstep");
  app.set_version_flag("--version", LOCKSTEP_VERSION);
  app.require_subcommand(0, 1);
  app.footer("Run 'lockstep COMMAND --help' for a command's options.");
  lockstep::cli::Runner run;
  lockstep::cli::AddSyncCommand(app, run);
  lockstep::cli::AddConflictsCommand(app, run);
  lockstep::cli::AddDetachCommand(app, run);
  lockstep::cli::AddServeCommand(app, run);
  lockstep::cli::AddRunCommand(app, run);
  lockstep::cli::AddTokenCommand(app, run);
  lockstep::cli::AddVerifyCommand(app, run);
  lockstep::cli::AddResetCommand(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version end parsing too; a usage error is a failure like any other: one line.
    if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(error);
    std::string message = error.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    std::cerr << "lockstep: " << message << " (see lockstep --help)\n";
    return 2;
  }
  if (!run) {
    std::cout << app.help();
    return 0;
  }
  return run();
}
