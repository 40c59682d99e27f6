// `lockstep reset DB PEER`: rebuilds DB's metadata from a peer after DB was refused as "reset
// required" (away longer than the peer's tombstone retention). DB and PEER are SQLite files or
// postgres:// URLs. DB ends with the peer's state plus
// its own writes the peer had not seen, re-stamped as new writes and sent to the peer; rows the
// peer deleted are not resurrected.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "base/clock.h"
#include "engine/network_sync.h"
#include "lockstep/status.h"
#include "store/database.h"

namespace lockstep::engine {

struct ResetReport {
  size_t kept_writes = 0;   // DB's unsynced inserts and updates, re-stamped and sent
  size_t kept_deletes = 0;  // DB's unsynced deletes, re-stamped and sent
  size_t tables = 0;
  // An earlier reset of DB was stopped after its rebuild: this one synced and made the deletes
  // it still owed (kept_deletes; kept_writes is then 0, those went out with any sync).
  bool resumed = false;
};

// Which of DB's writes are unsynced is decided by the highest dot of DB the peer holds: a write
// of DB's node with a higher dot never reached the peer. DB keeps its tables' schemas; its node
// gets a new identity, so no dot it issued before can be issued again.
Result<ResetReport> ResetFromPeer(const std::filesystem::path& db,
                                  const std::filesystem::path& peer, int64_t retention_ms,
                                  const base::Clock& clock);

// The same with a hub (`lockstep reset DB lockstep://HOST:PORT`): what the hub has seen of DB is
// learned by a verify session, then DB syncs with it under its new identity.
Result<ResetReport> ResetFromListener(const std::filesystem::path& db,
                                      const NetworkSyncOptions& options, const base::Clock& clock);

// A reset stopped after its rebuild leaves DB owing the deletes it kept until it is run again: a
// plain sync neither makes them (made before the peer's version of a row has arrived, a delete
// would not cover that version) nor forgets them. The one-line warning that says so for `db`
// (named `name`), or nullopt when nothing is owed. Reads only.
Result<std::optional<std::string>> UnfinishedResetWarning(store::Database& db,
                                                          const std::string& name);

}  // namespace lockstep::engine
