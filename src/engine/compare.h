// `lockstep verify A.db B.db`: compares the collections of two databases through their item sets
// (store/store_item_set.h), changing nothing. For now a full comparison of the items; the network
// form will run set reconciliation instead.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/clock.h"
#include "lockstep/status.h"

namespace lockstep::engine {

struct CollectionDifference {
  std::string collection;
  size_t records_a = 0;  // items on each side, tombstones included
  size_t records_b = 0;
  bool only_in_a = false;  // the collection is registered on one side only
  bool only_in_b = false;
  std::vector<std::string> only_a;   // keys (as text, core/key.h) held by A alone
  std::vector<std::string> only_b;   // held by B alone
  std::vector<std::string> changed;  // held by both in different states
  size_t collected_tombstones = 0;  // tombstones on one side, gone from the other: not a difference
  // Rows users changed since the side's last sync (captured, not stamped yet): they may differ,
  // and only a sync can tell.
  std::vector<std::string> unsynced_a;
  std::vector<std::string> unsynced_b;

  bool differs() const {
    return only_in_a || only_in_b || !only_a.empty() || !only_b.empty() || !changed.empty() ||
           !unsynced_a.empty() || !unsynced_b.empty();
  }
};

struct Comparison {
  std::vector<CollectionDifference> collections;  // by name
  bool differs() const;
};

// Opens both databases read-only. kNotFound when one is missing or was never synced (has no
// metadata); kFailedPrecondition when one's metadata is of another version.
Result<Comparison> CompareDatabases(const std::filesystem::path& a, const std::filesystem::path& b,
                                    const base::Clock& clock);

}  // namespace lockstep::engine
