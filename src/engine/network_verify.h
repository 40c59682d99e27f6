// `lockstep verify DB lockstep://HOST:PORT`: the network form of verify. A session that only
// reconciles: both sides learn which records differ, nothing is sent or written (the database is
// opened read-only).
#pragma once

#include <filesystem>
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

}  // namespace lockstep::engine
