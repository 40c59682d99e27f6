// One collection of a replica store as reconciliation sees it (reconcile/item_set.h): answered
// from the item columns of `_lockstep_records` and the bucket sums, never by decoding records.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

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

  // While on, the items of each bucket read in part are read whole once and kept (at most
  // kMaxCachedBytes of them, then all are forgotten), so that the several reads of one narrow
  // range a session makes (its items, their summary, the rest of its bucket) cost one query: a
  // query of part of a bucket costs as much as one of all of it, since the bucket index holds no
  // positions. 64 MiB keeps every bucket of 1M records with short keys, so that a session with
  // 100k recent ranges reads each bucket once rather than once per pass over them. Only while
  // the store cannot change under it: inside one read transaction. Off forgets them.
  void CacheBuckets(bool on);
  static constexpr size_t kMaxCachedBytes = size_t{64} << 20;

 private:
  // The items with positions first..last (inclusive), summed.
  Result<reconcile::RangeSummary> SumItems(uint64_t first, uint64_t last);
  // Flushes the store's write and makes sure the bucket index exists.
  Status Prepare();
  // The items with positions first..last (inclusive), by position then key, from the database.
  Result<std::vector<reconcile::Item>> ReadItems(uint64_t first, uint64_t last);
  // The items of `bucket`, from the cache (read into it when missing).
  Result<const std::vector<reconcile::Item>*> CachedBucket(uint32_t bucket);

  ReplicaStore& store_;
  int64_t collection_;
  bool indexed_ = false;
  std::unique_ptr<Statement> sum_items_;
  std::unique_ptr<Statement> items_;
  bool caching_ = false;
  std::unordered_map<uint32_t, std::vector<reconcile::Item>> cache_;
  size_t cached_bytes_ = 0;
};

}  // namespace lockstep::store
