// What every subcommand file shares: how it registers itself and how it reports failure.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "lockstep/status.h"

namespace lockstep::cli {

// Set by the subcommand the user chose; main runs it after parsing. Returns the exit code.
using Runner = std::function<int()>;

void AddSyncCommand(CLI::App& app, Runner& run);
void AddConflictsCommand(CLI::App& app, Runner& run);
void AddDetachCommand(CLI::App& app, Runner& run);
void AddServeCommand(CLI::App& app, Runner& run);
void AddRunCommand(CLI::App& app, Runner& run);
void AddTokenCommand(CLI::App& app, Runner& run);  // also `init`
void AddVerifyCommand(CLI::App& app, Runner& run);
void AddResetCommand(CLI::App& app, Runner& run);

// Prints "lockstep: <message>" on one line to stderr and returns the exit code for `status`.
int Fail(const Status& status);

}  // namespace lockstep::cli
