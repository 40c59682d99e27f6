#include "store/store_item_set.h"

#include <limits>
#include <optional>

#include "store/record_item.h"

namespace lockstep::store {
namespace {

// A range as inclusive bounds, or nullopt when it is empty.
std::optional<std::pair<uint64_t, uint64_t>> Bounds(const reconcile::PositionRange& range) {
  if (range.to_end) return std::make_pair(range.begin, std::numeric_limits<uint64_t>::max());
  if (range.end <= range.begin) return std::nullopt;
  return std::make_pair(range.begin, range.end - 1);
}

constexpr uint64_t kBucketSpan = uint64_t{1} << kBucketShift;

uint64_t BucketLast(uint32_t bucket) { return BucketStart(bucket) + (kBucketSpan - 1); }

}  // namespace

void StoreItemSet::CacheBuckets(bool on) {
  caching_ = on;
  if (!on) {
    cache_.clear();
    cached_bytes_ = 0;
  }
}

Result<const std::vector<reconcile::Item>*> StoreItemSet::CachedBucket(uint32_t bucket) {
  auto it = cache_.find(bucket);
  if (it != cache_.end()) return &it->second;
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<reconcile::Item> items,
                            ReadItems(BucketStart(bucket), BucketLast(bucket)));
  size_t bytes = sizeof(items) + 64;  // the vector and its hash map node, about
  for (const reconcile::Item& item : items) {
    bytes += sizeof(item) + (item.key.capacity() > 15 ? item.key.capacity() : 0);
  }
  if (cached_bytes_ + bytes > kMaxCachedBytes) {
    cache_.clear();
    cached_bytes_ = 0;
  }
  cached_bytes_ += bytes;
  return &cache_.emplace(bucket, std::move(items)).first->second;
}

Result<reconcile::RangeSummary> StoreItemSet::SumItems(uint64_t first, uint64_t last) {
  if (caching_) {
    LOCKSTEP_ASSIGN_OR_RETURN(const std::vector<reconcile::Item>* bucket,
                              CachedBucket(BucketOf(first)));
    reconcile::RangeSummary summary;
    for (const reconcile::Item& item : *bucket) {
      if (item.position >= first && item.position <= last) summary.Add(item.hash);
    }
    return summary;
  }
  // The bucket bounds let SQLite search the bucket index; on the position alone it scans every
  // record of the collection, once per summary (1,024 recent ranges times n rows).
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * stmt,
      PrepareCached(store_.db(), sum_items_,
                    "SELECT hash FROM _lockstep_records WHERE collection = ?1 AND "
                    "(position >> 48) BETWEEN ?2 AND ?3 AND position BETWEEN ?4 AND ?5"));
  stmt->BindInt(1, collection_)
      .BindInt(2, BucketColumn(BucketOf(first)))
      .BindInt(3, BucketColumn(BucketOf(last)))
      .BindInt(4, PositionColumn(first))
      .BindInt(5, PositionColumn(last));
  reconcile::RangeSummary summary;
  for (;;) {
    auto row = stmt->Step();
    if (!row.has_value()) return row.error();
    if (!*row) break;
    auto hash = HashFromColumn(stmt->ColumnBlob(0));
    if (!hash.has_value()) {
      stmt->Reset();
      return hash.error();
    }
    summary.Add(*hash);
  }
  stmt->Reset();
  return summary;
}

Status StoreItemSet::Prepare() {
  LOCKSTEP_RETURN_IF_ERROR(store_.FlushWrites());
  if (!indexed_) {
    // Once per item set: a write after that which drops the index again, or appends bucket-sum
    // changes, makes the reads slower, not wrong.
    LOCKSTEP_RETURN_IF_ERROR(store_.PrepareItemReads());
    indexed_ = true;
  }
  return Status::Ok();
}

Result<reconcile::RangeSummary> StoreItemSet::Summarize(const reconcile::PositionRange& range) {
  LOCKSTEP_RETURN_IF_ERROR(Prepare());
  const auto bounds = Bounds(range);
  if (!bounds.has_value()) return reconcile::RangeSummary{};
  const auto [first, last] = *bounds;
  const uint32_t first_bucket = BucketOf(first);
  const uint32_t last_bucket = BucketOf(last);
  const bool whole_first = first == BucketStart(first_bucket);
  const bool whole_last = last == BucketLast(last_bucket);
  if (first_bucket == last_bucket) {
    if (whole_first && whole_last) {
      return store_.bucket_sums().Read(collection_, first_bucket, first_bucket);
    }
    return SumItems(first, last);
  }
  reconcile::RangeSummary total;
  uint32_t from = first_bucket;
  uint32_t to = last_bucket;
  if (!whole_first) {
    LOCKSTEP_ASSIGN_OR_RETURN(reconcile::RangeSummary edge,
                              SumItems(first, BucketLast(first_bucket)));
    total.Add(edge);
    ++from;
  }
  if (!whole_last) {
    LOCKSTEP_ASSIGN_OR_RETURN(reconcile::RangeSummary edge,
                              SumItems(BucketStart(last_bucket), last));
    total.Add(edge);
    --to;
  }
  if (from <= to) {
    LOCKSTEP_ASSIGN_OR_RETURN(reconcile::RangeSummary middle,
                              store_.bucket_sums().Read(collection_, from, to));
    total.Add(middle);
  }
  return total;
}

Result<std::vector<reconcile::Item>> StoreItemSet::Items(const reconcile::PositionRange& range) {
  LOCKSTEP_RETURN_IF_ERROR(Prepare());
  const auto bounds = Bounds(range);
  if (!bounds.has_value()) return std::vector<reconcile::Item>();
  const auto [first, last] = *bounds;
  if (caching_ && BucketOf(first) == BucketOf(last)) {
    LOCKSTEP_ASSIGN_OR_RETURN(const std::vector<reconcile::Item>* bucket,
                              CachedBucket(BucketOf(first)));
    std::vector<reconcile::Item> items;
    for (const reconcile::Item& item : *bucket) {
      if (item.position >= first && item.position <= last) items.push_back(item);
    }
    return items;
  }
  return ReadItems(first, last);
}

Result<std::vector<reconcile::Item>> StoreItemSet::ReadItems(uint64_t first, uint64_t last) {
  std::vector<reconcile::Item> items;
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * stmt,
      PrepareCached(store_.db(), items_,
                    "SELECT position, key, hash FROM _lockstep_records WHERE collection = ?1 AND "
                    "(position >> 48) BETWEEN ?2 AND ?3 AND position BETWEEN ?4 AND ?5 "
                    "ORDER BY position, key"));
  stmt->BindInt(1, collection_)
      .BindInt(2, BucketColumn(BucketOf(first)))
      .BindInt(3, BucketColumn(BucketOf(last)))
      .BindInt(4, PositionColumn(first))
      .BindInt(5, PositionColumn(last));
  for (;;) {
    auto row = stmt->Step();
    if (!row.has_value()) return row.error();
    if (!*row) break;
    auto hash = HashFromColumn(stmt->ColumnBlob(2));
    if (!hash.has_value()) {
      stmt->Reset();
      return hash.error();
    }
    items.push_back(
        {PositionFromColumn(stmt->ColumnInt(0)), std::string(stmt->ColumnBlob(1)), *hash});
  }
  stmt->Reset();
  return items;
}

}  // namespace lockstep::store
