// The per-bucket sums of a collection's items (record_item.h), changed one item at a time.
//
// A write accumulates its changes per dirty bucket in memory and, at Flush(), appends them as one
// sparse row per collection to `_lockstep_bucket_deltas` (a few pages) rather than rewriting every
// touched row of `_lockstep_buckets` (128 buckets, 3 KiB each; a commit of 1,000 scattered records
// touches about 440 of a collection's 512). The appended changes are folded into
// `_lockstep_buckets` later, in one transaction with their removal: when they exceed a bound,
// before reconciliation reads (ReplicaStore::PrepareItemReads), or at once when one write alone
// exceeds it (a bulk load). Readers add the changes not yet folded, so the sums read are always
// exact.
//
// Items arrive in random bucket order (positions are hashes), so they are queued and added to the
// accumulated changes a few thousand at a time in bucket order: adding each at once cost several
// cache misses in 1.5 MB of changes per record.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
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

  // Appends the accumulated changes to the pending ones, or folds them all when the pending
  // changes would exceed kMaxPendingEntries or kMaxPendingRows, or the accumulated ones alone
  // reach half of kMaxPendingEntries. REQUIRES: inside a write transaction.
  Status Flush();
  // Adds every pending change (and the accumulated ones) to `_lockstep_buckets` and removes the
  // pending rows. REQUIRES: inside a write transaction.
  Status Fold();
  // Whether changes are waiting to be folded. Reads only.
  Result<bool> HasPending();
  // Forgets the accumulated changes: their transaction is rolled back.
  void Discard() {
    deltas_.clear();
    queued_.clear();
    pending_known_.reset();
  }
  // At the start of a write (under its lock): sends the query of the pending changes' size ahead
  // (Statement::Send), so that Flush need not wait for it; only this write changes them until it
  // ends, and it counts its own.
  Status SendPendingSize();
  // At the end of a write: other writers may change the pending changes from now on.
  void ForgetPendingSize() { pending_known_.reset(); }

  // The sum of buckets first..last (inclusive) of `collection`, as written: the folded sums plus
  // the pending changes, read in one statement (one snapshot), not counting changes accumulated
  // but not yet flushed.
  Result<reconcile::RangeSummary> Read(int64_t collection, uint32_t first, uint32_t last);

  // Recomputes every bucket of every collection from the records' item columns: the migration
  // to metadata version 2. REQUIRES: inside a transaction.
  static Status Rebuild(Database& db);

  // Bounds on the pending changes: a reader decodes all of a collection's, and a fold rewrites
  // the rows they touch. 64k entries of about 19 bytes are 1.2 MB (a fold of them rewrites at
  // most every row, 1.5 MB per collection), about 64 commits of 1,000 scattered records.
  static constexpr uint64_t kMaxPendingEntries = 65'536;
  static constexpr uint64_t kMaxPendingRows = 1'024;

 private:
  using Row = std::array<reconcile::RangeSummary, kBucketsPerRow>;
  Row& DeltaRow(int64_t collection, uint32_t bucket);
  // Appends deltas_ to the pending changes, one row per collection.
  Status Append();
  // Adds the pending changes to deltas_; returns the highest pending row id read (0 when none).
  Result<int64_t> TakePending();
  // Adds deltas_ (and the queued items) to the stored rows of buckets and clears it.
  Status WriteRows();
  // An item added or subtracted, not yet in deltas_.
  struct Queued {
    int64_t slot;  // collection * kBucketCount + bucket: the row number * 128 + the index in it
    bool subtract;
    reconcile::Hash128 hash;
  };
  void Queue(int64_t collection, const RecordItem& item, bool subtract);
  // Adds the queued items to deltas_, in bucket order.
  void AddQueued();
  static constexpr size_t kAddEvery = 4096;  // 128 KiB of queued items, sorted in cache
  // Adds the deltas of `rows` (sorted, distinct) to the stored rows.
  Status FlushRows(std::span<const int64_t> rows);
  static constexpr size_t kRowsPerFlushStatement = 64;

  // The pending changes' rows and entries: known from SendPendingSize's answer plus this write's
  // own appends (a fold leaves none), or read.
  struct PendingSize {
    uint64_t rows = 0, entries = 0;
  };
  Result<PendingSize> ReadPendingSize();
  std::optional<PendingSize> pending_known_;

  Database& db_;
  std::unordered_map<int64_t, Row> deltas_;  // by row number
  std::vector<Queued> queued_;
  std::vector<Queued> sort_scratch_;  // AddQueued's radix sort: kept, not allocated per sort
  // Each in a few statements per flush, not one per row: on PostgreSQL a statement is a round
  // trip, and an apply of a thousand scattered records touches hundreds of rows.
  BatchedStatements read_;
  BatchedStatements write_;
  BatchedStatements erase_;
  std::unique_ptr<Statement> range_;
  std::unique_ptr<Statement> append_;
  std::unique_ptr<Statement> pending_size_;
};

}  // namespace lockstep::store
