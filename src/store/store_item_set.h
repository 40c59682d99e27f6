// One collection of a replica store as reconciliation sees it (reconcile/item_set.h): answered
// from the item columns of `_lockstep_records` and the bucket sums, never by decoding records.
#pragma once

#include <memory>

#include "reconcile/item_set.h"
#include "store/replica_store.h"

namespace lockstep::store {

// Reads the store's committed state plus whatever the current write of `store` has accumulated
// (it is flushed first). Not thread-safe; must not outlive `store`.
class StoreItemSet final : public reconcile::ItemSet {
 public:
  StoreItemSet(ReplicaStore& store, int64_t collection) : store_(store), collection_(collection) {}

  // Whole buckets come from their sums; only the items of a partly covered bucket at either
  // edge are read, so a summary costs at most two buckets' worth of items.
  Result<reconcile::RangeSummary> Summarize(const reconcile::PositionRange& range) override;
  Result<std::vector<reconcile::Item>> Items(const reconcile::PositionRange& range) override;

 private:
  // The items with positions first..last (inclusive), summed.
  Result<reconcile::RangeSummary> SumItems(uint64_t first, uint64_t last);
  // Flushes the store's write and makes sure the bucket index exists.
  Status Prepare();

  ReplicaStore& store_;
  int64_t collection_;
  bool indexed_ = false;
  std::unique_ptr<Statement> sum_items_;
  std::unique_ptr<Statement> items_;
};

}  // namespace lockstep::store
