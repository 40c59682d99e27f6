// The lockstep command: parses the command line and dispatches to one subcommand per file.
#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{
      "Lockstep keeps records and files consistent across databases, devices and services:\n"
      "it captures every change where it happens, carries it to every node that holds the same\n"
      "data, and resolves concurrent edits by a declared policy, keeping every losing value."};
  app.name("lockstep");
  app.set_version_flag("--version", LOCKSTEP_VERSION);
  app.require_subcommand(0, 1);
  app.footer("Run 'lockstep COMMAND --help' for a command's options.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  if (argc == 1) {
    std::cout << app.help();
  }
  return 0;
}
