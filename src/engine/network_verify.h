// `lockstep verify DB lockstep://HOST:PORT`: the network form of verify. A session that only
// reconciles: both sides learn which records differ, nothing is sent or written (the database is
// opened read-only).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "engine/network_sync.h"

namespace lockstep::engine {

struct RemoteDifference {
  std::string collection;
  std::vector<std::string> changed;     // keys (as text, core/key.h) held by both, differently
  std::vector<std::string> only_here;   // held here only
  std::vector<std::string> only_there;  // held by the listener only
  std::vector<std::string> unsynced;    // changed here since the last sync (not stamped yet)
  bool differs() const {
    return !changed.empty() || !only_here.empty() || !only_there.empty() || !unsynced.empty();
  }
};

// The differences between the database at `path` and the listener, per collection the token
// grants (`options.tables`, or all). kNotFound when the database was never synced.
Result<std::vector<RemoteDifference>> VerifyWithListener(const std::filesystem::path& path,
                                                         const NetworkSyncOptions& options,
                                                         const base::Clock& clock);

// What a listener knows of the database at `path`, learned by a verify session.
struct ListenerView {
  uint64_t highest_dot_of_me = 0;               // of this database's node
  std::map<std::string, std::string> policies;  // of the collections granted
};
Result<ListenerView> ProbeListener(const std::filesystem::path& path,
                                   const NetworkSyncOptions& options, const base::Clock& clock);

}  // namespace lockstep::engine
