// The per-bucket sums of a collection's items (record_item.h), kept in `_lockstep_buckets` and
// changed one item at a time. A write accumulates its changes per dirty bucket in memory and
// writes each touched row once, at Flush(): an apply of many records pays one read and one write
// per dirty row of 128 buckets, not per record. Items arrive in random bucket order (positions
// are hashes), so they are queued and added a few thousand at a time in bucket order: adding
// each at once cost several cache misses in 1.5 MB of deltas per record.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "reconcile/item.h"
#include "store/batched_statements.h"
#include "store/database.h"
#include "store/record_item.h"

namespace lockstep::store {

// Buckets are stored 128 to a row (3 KiB, within one SQLite page), the row numbered
// `collection * 512 + bucket / 128`.
inline constexpr uint32_t kBucketsPerRow = 128;
inline constexpr uint32_t kRowsPerCollection = kBucketCount / kBucketsPerRow;

// Not thread-safe; lives as long as its connection.
class BucketSums {
 public:
  explicit BucketSums(Database& db);

  void Add(int64_t collection, const RecordItem& item);
  void Subtract(int64_t collection, const RecordItem& item);
  bool dirty() const { return !deltas_.empty() || !queued_.empty(); }

  // Writes the accumulated changes. REQUIRES: inside a transaction.
  Status Flush();
  // Forgets the accumulated changes: their transaction is rolled back.
  void Discard() {
    deltas_.clear();
    queued_.clear();
  }

  // The sum of buckets first..last (inclusive) of `collection`, as written (not counting changes
  // not yet flushed).
  Result<reconcile::RangeSummary> Read(int64_t collection, uint32_t first, uint32_t last);

  // Recomputes every bucket of every collection from the records' item columns: the migration
  // to metadata version 2. REQUIRES: inside a transaction.
  static Status Rebuild(Database& db);

 private:
  using Row = std::array<reconcile::RangeSummary, kBucketsPerRow>;
  // An item added or subtracted, not yet in deltas_.
  struct Queued {
    int64_t slot;  // collection * kBucketCount + bucket: the row number * 128 + the index in it
    bool subtract;
    reconcile::Hash128 hash;
  };
  void Queue(int64_t collection, const RecordItem& item, bool subtract);
  // Adds the queued items to deltas_, in bucket order.
  void Fold();
  static constexpr size_t kFoldEvery = 4096;  // 128 KiB of queued items, sorted in cache
  // Adds the deltas of `rows` (sorted, distinct) to the stored rows.
  Status FlushRows(std::span<const int64_t> rows);
  static constexpr size_t kRowsPerFlushStatement = 64;

  Database& db_;
  std::unordered_map<int64_t, Row> deltas_;  // by row number
  std::vector<Queued> queued_;
  // Each in a few statements per flush, not one per row: on PostgreSQL a statement is a round
  // trip, and an apply of a thousand scattered records touches hundreds of rows.
  BatchedStatements read_;
  BatchedStatements write_;
  BatchedStatements erase_;
  std::unique_ptr<Statement> range_;
};

}  // namespace lockstep::store
