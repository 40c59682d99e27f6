// The node file of `lockstep run -c node.toml` (DESIGN.md shows one), parsed and checked.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/transport.h"
#include "protocol/messages.h"

namespace lockstep::engine {

struct PeerConfig {
  std::string url;
  std::string token;  // from `token` or the file named by `token_file`: a secret
  net::TlsOptions tls;
  std::vector<std::string> collections;  // empty: the source's tables
  protocol::Direction direction = protocol::Direction::kBoth;
  bool live = true;      // `mode = "live"`
  int64_t every_ms = 0;  // `every = "5m"`: sync on a schedule instead
};

struct NodeConfig {
  std::string name;
  std::filesystem::path data_dir;  // identity and tokens, for `listen`
  std::optional<net::Endpoint> listen;
  bool listen_plaintext = false;
  std::filesystem::path sqlite;  // the one source: a SQLite file,
  std::string postgres;          // or a PostgreSQL database (a postgres:// URL)
  int64_t poll_ms = 1'000;       // `poll = "1s"`: how often a PostgreSQL source is looked at anyway
  std::vector<std::string> tables;              // empty: every table with a primary key
  std::map<std::string, std::string> policies;  // collection -> policy spec (core::ParsePolicy)
  std::vector<PeerConfig> peers;
  int64_t retention_ms = 30LL * 24 * 3600 * 1000;  // [node] retention = "30d": tombstones kept
};

// Reads and checks a node file. Errors are kInvalidArgument naming the file, the line and what
// is wrong; relative paths are taken from the file's directory.
Result<NodeConfig> LoadNodeConfig(const std::filesystem::path& path);

// "500ms", "30s", "5m", "1h", "30d" in milliseconds. kInvalidArgument otherwise.
Result<int64_t> ParseDuration(std::string_view text);

}  // namespace lockstep::engine
