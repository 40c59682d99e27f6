// Runs a reconciliation between two in-memory item sets in one process, every message through
// its encoding, for the reconcile tests.
#pragma once

#include <string>
#include <vector>

#include "reconcile/memory_item_set.h"
#include "reconcile/reconciler.h"

namespace lockstep::reconcile::testing {

// The items of records key -> encoding.
MemoryItemSet MakeSet(const std::vector<std::pair<std::string, std::string>>& records);

struct SessionResult {
  Differences initiator;
  Differences responder;
  int round_trips = 0;  // waves of requests
  size_t bytes = 0;     // encoded, both ways
};

// Runs to completion with no loss. Fails the calling test (and returns what it has) on error.
SessionResult Reconcile(MemoryItemSet& initiator_items, MemoryItemSet& responder_items,
                        const Options& options = {});
// The same between two sides made by the caller, which must not have started.
SessionResult Reconcile(Initiator& initiator, Responder& responder);

}  // namespace lockstep::reconcile::testing
