// The options of every command that dials a hub (`sync DB URL`, `verify DB URL`): the token and
// how to trust the hub.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "engine/network_sync.h"

namespace lockstep::cli {

struct HubOptions {
  std::string token;
  std::string token_file;
  std::string trust;
  std::string ca;
  bool plaintext = false;

  void AddTo(CLI::App& command);
  // Sets the token and TLS fields of `options`; kInvalidArgument or kNotFound for bad options.
  Status ApplyTo(engine::NetworkSyncOptions& options) const;
};

}  // namespace lockstep::cli
