// One user table under sync: reading its rows by key, writing merged records back into it, and
// turning captured keys into local writes.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "connectors/merge_batch.h"
#include "connectors/sqlite/table_schema.h"
#include "core/policy.h"
#include "store/replica_store.h"

namespace lockstep::connectors::sqlite {

// Not thread-safe; lives as long as the connection it prepared its statements on.
class SyncedTable final : public RowSink {
 public:
  static Result<std::unique_ptr<SyncedTable>> Prepare(store::SqliteDb& db, TableSchema schema,
                                                      store::Collection collection,
                                                      core::MergePolicy policy);

  const TableSchema& schema() const { return schema_; }
  const store::Collection& collection() const override { return collection_; }
  const core::MergePolicy& policy() const override { return policy_; }

  // Makes the record's visible state the row's: an upsert of every column, or a delete. Upserts
  // are batched, several rows per statement; Flush() (or any read of the table) sends them.
  Status WriteRow(const core::Record& record) override;
  Status TakeRow(core::Record& record) override;
  Status Flush() override;
  // Drops batched upserts: their transaction is being rolled back.
  void Discard() { pending_rows_.clear(); }

  // Turns the keys captured by the triggers into local writes. REQUIRES: inside a write of `store`.
  // Returns the number of writes made.
  Result<size_t> StampCaptured(store::ReplicaStore& store);
  // One chunk of StampCaptured (up to 10,000 captured changes): the writes made, or nullopt when
  // nothing was captured. REQUIRES: inside a write of `store`.
  Result<std::optional<size_t>> StampCapturedChunk(store::ReplicaStore& store);

  // Makes every existing row a local write stamped `now_millis`: the first attach of a table.
  // REQUIRES: inside a write of `store`; no record of this collection is stored yet.
  Result<size_t> StampAllRows(store::ReplicaStore& store, int64_t now_millis);

 private:
  SyncedTable(TableSchema schema, store::Collection collection, core::MergePolicy policy)
      : schema_(std::move(schema)),
        collection_(std::move(collection)),
        policy_(std::move(policy)) {}

  // Compares the row (or its absence) with the stored record (or its absence) and records a
  // local write of the columns that differ. Returns whether a write was made.
  Result<bool> StampRow(store::ReplicaStore& store, const std::string& key,
                        std::optional<store::StoredRecord> stored,
                        const std::optional<std::vector<Value>>& row, int64_t millis);
  Result<std::optional<std::vector<Value>>> ReadRow(std::span<const Value> key);
  // WriteRow, moving the values out of `movable` when it is given (it is `record` then).
  Status WriteRowFrom(const core::Record& record, core::Record* movable);
  // The index in record.fields() of the field of column `column`, or fields().size() when the
  // record has none.
  size_t FieldIndex(const core::Record& record, size_t column);

  TableSchema schema_;
  store::Collection collection_;
  core::MergePolicy policy_;
  std::vector<size_t> key_positions_;  // index of each key column in schema_.columns
  std::unique_ptr<store::Statement> select_;
  std::unique_ptr<store::Statement> upsert_;
  std::unique_ptr<store::Statement> upsert_many_;
  size_t rows_per_upsert_ = 1;
  std::vector<Value> pending_rows_;  // rows waiting for an upsert, one value per column
  // Per column, where the last record written had its field: records of one table mostly have
  // the same fields, so that place is tried before a search.
  std::vector<size_t> field_guess_;
  std::unique_ptr<store::Statement> delete_;
  std::unique_ptr<store::Statement> captured_;
  std::unique_ptr<store::Statement> forget_captured_;
  std::unique_ptr<store::Statement> scan_;
  std::unique_ptr<store::Statement> count_up_to_bulk_load_;
};

}  // namespace lockstep::connectors::sqlite
