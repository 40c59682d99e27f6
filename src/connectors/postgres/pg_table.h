// One PostgreSQL table under sync: writing merged records back into it, and turning captured keys
// (and, on first attach, every row) into local writes.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "connectors/merge_batch.h"
#include "core/policy.h"
#include "store/batched_statements.h"
#include "store/replica_store.h"

namespace lockstep::connectors::postgres {

// Not thread-safe; lives as long as the connection it prepared its statements on.
class PgTable final : public RowSink {
 public:
  static Result<std::unique_ptr<PgTable>> Prepare(store::Database& db, TableSchema schema,
                                                  store::Collection collection,
                                                  core::MergePolicy policy);

  const TableSchema& schema() const { return schema_; }
  const store::Collection& collection() const override { return collection_; }
  const core::MergePolicy& policy() const override { return policy_; }

  // Makes the record's visible state the row's: an upsert of every column, or a delete. Both are
  // batched, up to 500 rows per statement; Flush() sends them.
  Status WriteRow(const core::Record& record) override;
  // A row new to the store: gathered, up to kMaxNewRows, for one bulk load (COPY) into the table
  // rather than upserts, when the table's types allow (store/bulk_load.h: upserts take over when
  // the load fails, a row that exists after all).
  Status TakeNewRow(core::Record& record) override;
  Status Flush() override;
  // Drops batched writes: their transaction is being rolled back.
  void Discard();

  // One chunk of captured keys (up to 10,000) made local writes and forgotten: the writes made,
  // or nullopt when nothing was captured. REQUIRES: inside a write of `store`.
  Result<std::optional<size_t>> StampCapturedChunk(store::ReplicaStore& store);
  // Sends the query of StampCapturedChunk ahead (Statement::Send), so that the chunks of all
  // tables come back in one round trip.
  void SendCapturedQuery() { captured_->Send(); }
  // StampCapturedChunk in two steps, so that several tables' steps share round trips: reads the
  // chunk (false when nothing was captured) and sends the lookup of its stored records ahead;
  // then stamps it. Nothing may be put into this collection in between.
  Result<bool> ReadCapturedChunk(store::ReplicaStore& store);
  Result<size_t> StampReadChunk(store::ReplicaStore& store);
  // Whether the last ReadCapturedChunk read as many captures as a chunk holds: more may wait.
  bool chunk_full() const { return chunk_full_; }
  // Makes every existing row a local write stamped `now_millis`: the first attach of a table.
  // REQUIRES: inside a write of `store`; no record of this collection is stored yet.
  Result<size_t> StampAllRows(store::ReplicaStore& store, int64_t now_millis);

 private:
  PgTable(store::Database& db, TableSchema schema, store::Collection collection,
          core::MergePolicy policy)
      : db_(&db),
        schema_(std::move(schema)),
        collection_(std::move(collection)),
        policy_(std::move(policy)) {}

  store::Database* db_;
  TableSchema schema_;
  store::Collection collection_;
  core::MergePolicy policy_;
  std::vector<size_t> key_positions_;  // index of each key column in schema_.columns
  Status FlushUpserts();
  Status FlushDeletes();
  Status FlushNewRows();
  // The record's visible state as one value per column, appended to `row`.
  Status AppendRow(const core::Record& record, std::vector<Value>& row) const;

  // Upserts and deletes of several rows each: every statement is a round trip to the server.
  std::unique_ptr<store::BatchedStatements> upsert_;
  std::vector<Value> pending_rows_;  // rows waiting for an upsert, one value per column
  std::unique_ptr<store::BatchedStatements> delete_;
  std::vector<Value> pending_deletes_;  // keys waiting for a delete, one value per key column
  // The encoded keys of each, so that a row written twice is written in order.
  std::set<std::string> upsert_keys_;
  std::set<std::string> delete_keys_;
  // Rows new to the store waiting for a bulk load, one value per column, and their keys.
  static constexpr size_t kMaxNewRows = 8192;
  std::vector<Value> pending_new_;
  std::set<std::string> new_keys_;
  // Whether a bulk load in text can write every column as a parameter would (not arrays, which
  // the upsert builds from JSON), the columns it names, and which are bytea.
  bool loadable_ = false;
  std::string load_columns_;
  std::vector<bool> bytes_columns_;
  std::unique_ptr<store::Statement> captured_;
  // The chunk read and not stamped yet: its keys in order of capture, each with its latest capture
  // time and its row as it is now (none when gone), and the captures' ids ("{1,2,3}").
  struct CapturedRow {
    int64_t ts = 0;
    std::optional<std::vector<Value>> row;
  };
  struct Chunk {
    std::vector<std::string> keys;
    std::vector<CapturedRow> rows;
    std::string ids;
  };
  std::optional<Chunk> chunk_;
  bool chunk_full_ = false;
  std::unique_ptr<store::Statement> forget_captured_;
  std::unique_ptr<store::Statement> scan_;
};

}  // namespace lockstep::connectors::postgres
