// What every connector does the same way: merging a peer's batch into the store and the user's
// rows, and turning a changed row into a local write.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "connectors/schema.h"
#include "connectors/source.h"
#include "core/policy.h"
#include "store/replica_store.h"

namespace lockstep::connectors {

// A synced table as a merge writes to it.
class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual const store::Collection& collection() const = 0;
  virtual const core::MergePolicy& policy() const = 0;
  // Makes the record's visible state the row's (an upsert or a delete), possibly batched.
  virtual Status WriteRow(const core::Record& record) = 0;
  // The same, free to move the visible values out of `record` rather than copy them: the caller
  // reads no more of it than its key and how many versions each field holds. By default WriteRow.
  virtual Status TakeRow(core::Record& record) { return WriteRow(record); }
};

// Merges `changes` from `from` in key order: stored records, the user's rows (through
// `table(collection)`, nullptr for a collection not synced here) and the conflict log. The
// caller flushes the tables and stores the cursor. REQUIRES: inside a write of `store`.
Result<ApplyStats> MergeBatch(store::ReplicaStore& store, std::span<store::Change> changes,
                              const core::NodeId& from,
                              const std::function<RowSink*(const std::string&)>& table);

// Compares `row` (nullopt: the row is gone) with the stored record (nullopt: none) and records a
// local write of the columns that differ, stamped with an HLC at `millis`. Returns whether a
// write was made. REQUIRES: inside a write of `store`; `row` has one value per schema column.
Result<bool> StampRow(store::ReplicaStore& store, const TableSchema& schema, int64_t collection,
                      const core::MergePolicy& policy, const std::string& key,
                      std::optional<store::StoredRecord> stored,
                      const std::optional<std::vector<Value>>& row, int64_t millis);

}  // namespace lockstep::connectors
