// Sync over the network: `lockstep sync DB lockstep://HOST:PORT` (one-shot, dialing a listener)
// and `lockstep serve` (the hub, listening).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "connectors/sqlite/sqlite_source.h"
#include "engine/source_session.h"
#include "net/transport.h"

namespace lockstep::engine {

struct NetworkSyncOptions {
  std::string url;                  // lockstep://HOST:PORT
  std::string token;                // a secret: never logged
  std::vector<std::string> tables;  // empty: every collection the token allows
  protocol::Direction direction = protocol::Direction::kBoth;
  net::TlsOptions tls;
};

struct NetworkSyncReport {
  SessionCounts counts;
  std::vector<std::string> warnings;  // one line each, e.g. a stopped reset's owed deletes
};

// Syncs the SQLite database at `path` with the listener at `options.url` until both are caught
// up. The database is created when missing and gets the listener's tables it lacks.
Result<NetworkSyncReport> SyncWithListener(const std::filesystem::path& path,
                                           const NetworkSyncOptions& options,
                                           const base::Clock& clock);

struct ServeOptions {
  net::Endpoint listen;
  std::filesystem::path data_dir;  // the hub's store (hub.db), identity and tokens
  bool plaintext = false;
  int64_t retention_ms = 30LL * 24 * 3600 * 1000;  // tombstones kept this long
};

// Runs the hub until SIGINT or SIGTERM. `ready` is called once listening, with the bound port
// and the certificate fingerprint clients pin (empty in plaintext mode).
Status Serve(const ServeOptions& options, const base::Clock& clock,
             const std::function<void(uint16_t port, const std::string& fingerprint)>& ready);

}  // namespace lockstep::engine
