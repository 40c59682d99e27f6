#include "connectors/postgres/postgres_source.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "connectors/postgres/pg_capture.h"
#include "connectors/postgres/pg_schema.h"
#include "connectors/sqlite/table_schema.h"
#include "connectors/type_mapping.h"
#include "store/metadata_schema.h"

namespace lockstep::connectors::postgres {
namespace {

// A schema known only by its CREATE statement: the statement is SQLite's, so SQLite reads the
// columns and their declared types from it.
Result<TableSchema> WithColumns(const TableSchema& wanted) {
  if (!wanted.columns.empty()) return wanted;
  return sqlite::ReadCreateStatement(wanted.name, wanted.create_sql);
}

}  // namespace

Result<std::unique_ptr<PostgresSource>> PostgresSource::Open(std::string_view url,
                                                             const base::Clock& clock) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<store::PostgresDb> db, store::PostgresDb::Connect(url));
  return std::unique_ptr<PostgresSource>(new PostgresSource(std::move(db), clock));
}

PgTable* PostgresSource::Table(const std::string& name) {
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second.get();
}

Result<std::optional<TableSchema>> PostgresSource::Schema(const std::string& table) {
  return ReadTableSchema(*db_, table);
}

Result<std::map<std::string, std::string>> PostgresSource::Policies() {
  return store::ReadPolicies(*db_);
}

Status PostgresSource::OpenStore() {
  if (store_) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(store_, store::ReplicaStore::Open(*db_, clock_));
  return Status::Ok();
}

void PostgresSource::CloseStore() {
  tables_.clear();  // their statements name the store's tables
  schema_queries_.clear();
  store_.reset();
}

Status PostgresSource::Attach(std::span<const TableSchema> schemas, const std::string& policy,
                              Stamping stamping) {
  LOCKSTEP_RETURN_IF_ERROR(OpenStore());
  LOCKSTEP_RETURN_IF_ERROR(store_->BeginWrite());
  Status status = AttachInTransaction(schemas, policy);
  if (!status.ok()) {
    store_->Rollback();
    tables_.clear();
    return status.WithContext("attaching " + name());
  }
  LOCKSTEP_RETURN_IF_ERROR(store_->Commit());
  return stamping == Stamping::kNow ? StampPending() : Status::Ok();
}

Status PostgresSource::AttachInTransaction(std::span<const TableSchema> schemas,
                                           const std::string& policy) {
  for (const TableSchema& wanted : schemas) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> existing,
                              ReadTableSchema(*db_, wanted.name));
    if (!existing.has_value()) {
      LOCKSTEP_ASSIGN_OR_RETURN(TableSchema columns, WithColumns(wanted));
      LOCKSTEP_RETURN_IF_ERROR(db_->Exec(PostgresCreateSql(columns))
                                   .WithContext("creating table '" + wanted.name + "'"));
      LOCKSTEP_ASSIGN_OR_RETURN(existing, ReadTableSchema(*db_, wanted.name));
      if (!existing.has_value()) return Internal("table '" + wanted.name + "' vanished");
    }
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> known, store_->Collections());
    auto found = std::find_if(known.begin(), known.end(),
                              [&](const auto& c) { return c.name == wanted.name; });
    const bool new_collection = found == known.end();
    store::Collection collection;
    if (new_collection) {
      // Peers get the table's CREATE statement in SQLite's dialect, which every node can run,
      // with the types that keep the values exactly.
      LOCKSTEP_ASSIGN_OR_RETURN(
          collection, store_->EnsureCollection(wanted.name, policy, SqliteCreateSql(*existing)));
    } else {
      collection = std::move(*found);
    }
    if (!policy.empty() && collection.policy != policy) {
      LOCKSTEP_RETURN_IF_ERROR(store_->SetPolicy(collection.id, policy));
      collection.policy = policy;
    }
    LOCKSTEP_ASSIGN_OR_RETURN(core::MergePolicy merge_policy, core::ParsePolicy(collection.policy));
    LOCKSTEP_RETURN_IF_ERROR(RememberLogicalTypes(*db_, *existing));
    LOCKSTEP_RETURN_IF_ERROR(InstallCapture(*db_, *existing, collection.id));
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<PgTable> table,
                              PgTable::Prepare(*db_, std::move(*existing), std::move(collection),
                                               std::move(merge_policy)));
    if (new_collection) {
      LOCKSTEP_RETURN_IF_ERROR(table->StampAllRows(*store_, clock_.NowMillis()).status());
    }
    tables_[wanted.name] = std::move(table);
  }
  return Status::Ok();
}

Status PostgresSource::SendSchemaQueries() {
  for (const auto& [table_name, table] : tables_) {
    LOCKSTEP_RETURN_IF_ERROR(SendTableSchemaQuery(*db_, table_name, schema_queries_[table_name]));
  }
  return Status::Ok();
}

void PostgresSource::DropSentQueries() {
  for (auto& [table_name, table] : tables_) table->Discard();
  for (auto& [table_name, query] : schema_queries_) {
    if (query) query->Reset();
  }
}

void PostgresSource::SendCapturedQueries() {
  for (auto& [table_name, table] : tables_) table->SendCapturedQuery();
}

Status PostgresSource::CheckTablesUnchanged() {
  for (const auto& [table_name, table] : tables_) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> now,
                              ReadTableSchema(*db_, table_name, &schema_queries_[table_name]));
    if (!now.has_value()) {
      return FailedPrecondition("table '" + table_name + "' was dropped while synced");
    }
    std::vector<std::pair<std::string, std::string>> before, after;
    for (const Column& c : table->schema().columns) before.emplace_back(c.name, c.logical_type);
    for (const Column& c : now->columns) after.emplace_back(c.name, c.logical_type);
    if (before != after || now->key != table->schema().key) {
      return FailedPrecondition("table '" + table_name +
                                "' was altered while synced; run lockstep again to pick up its "
                                "new shape");
    }
  }
  return Status::Ok();
}

Status PostgresSource::StampPending() { return Stamp(/*until_written=*/false); }

Status PostgresSource::StampSome() { return Stamp(/*until_written=*/true); }

Result<bool> PostgresSource::AnythingCaptured() {
  std::string sql;
  for (const auto& [table_name, table] : tables_) {
    sql += (sql.empty() ? "SELECT " : " OR ") + std::string("EXISTS (SELECT 1 FROM ") +
           store::QuoteIdentifier(CaptureTableName(table->collection().id)) + ")";
  }
  if (sql.empty()) return false;
  if (sql != captured_query_sql_ || captured_query_ == nullptr) {
    captured_query_.reset();
    LOCKSTEP_ASSIGN_OR_RETURN(store::Statement query, db_->Prepare(sql));
    captured_query_ = std::make_unique<store::Statement>(std::move(query));
    captured_query_sql_ = std::move(sql);
  }
  auto row = captured_query_->Step();
  const bool any = row.has_value() && *row && captured_query_->ColumnInt(0) != 0;
  captured_query_->Reset();
  if (!row.has_value()) return row.error();
  return any;
}

void PostgresSource::WaitToGather() const {
  if (gather_.count() <= 0 || rounds_ == 0 || last_round_full_) return;
  std::this_thread::sleep_until(last_round_ + gather_);
}

Status PostgresSource::Stamp(bool until_written) {
  // Most looks find nothing (a replica's, after each batch it applied): then no transaction. A
  // capture that commits after this look is seen at the next one, as it would be after a round.
  LOCKSTEP_ASSIGN_OR_RETURN(bool captured_any, AnythingCaptured());
  if (!captured_any) return Status::Ok();
  // Under a stream of commits, a round costs the server a fixed set of statements and a
  // transaction, the peer a batch and the user's writers the cores they share: a round that
  // found a few dozen changes costs several times what one that gathers a few hundred costs per
  // change. So a round follows the last one only `gather_` after it began, taking all that
  // committed meanwhile; a capture after a quiet `gather_`, and a backlog, go at once.
  if (until_written) WaitToGather();
  // A transaction per chunk, as in the SQLite connector. On the server, three round trips: the
  // BEGIN, the lock, the counters and every table's chunk; the stored records of all chunks; the
  // writes and the COMMIT.
  for (;;) {
    bool captured = false;
    bool full = false;
    size_t writes = 0;
    const auto began = std::chrono::steady_clock::now();
    Status status = store_->BeginWrite([this] { SendCapturedQueries(); });
    if (status.ok()) {
      status = [&]() -> Status {
        std::vector<PgTable*> read;
        for (auto& [table_name, table] : tables_) {
          LOCKSTEP_ASSIGN_OR_RETURN(bool chunk, table->ReadCapturedChunk(*store_));
          if (chunk) read.push_back(table.get());
          full = full || table->chunk_full();
        }
        captured = !read.empty();
        for (PgTable* table : read) {
          LOCKSTEP_ASSIGN_OR_RETURN(size_t written, table->StampReadChunk(*store_));
          writes += written;
        }
        return Status::Ok();
      }();
      if (!status.ok()) store_->Rollback();
    }
    if (status.ok()) status = store_->Commit();
    if (!status.ok()) {
      DropSentQueries();
      return status.WithContext("stamping changes in " + name());
    }
    if (captured) {
      ++rounds_;
      last_round_ = began;
      last_round_full_ = full;
    }
    // Captures that changed nothing (an UPDATE to the same values) are no reason to stop: the
    // caller, finding nothing new to send, would not call again until the next wake-up.
    if (!captured || (until_written && writes > 0)) return Status::Ok();
  }
}

std::string PostgresSource::CursorScope() const {
  std::vector<std::string> names;
  for (const auto& [table_name, table] : tables_) names.push_back(table_name);
  return CursorScopeOf(std::move(names));
}

Result<ApplyStats> PostgresSource::Apply(std::span<store::Change> changes, const core::NodeId& from,
                                         std::string_view scope, const store::Cursor& cursor) {
  if (changes.empty()) {
    // Nothing to merge (a peer saying how far its log was read: every batch this node sends is
    // answered so, its records being echoes the peer skips): the cursor alone moves. Without the
    // lock that holds the users' writers back, and without stamping under it, which a busy
    // source would otherwise pay once per batch it sends.
    Status status = store_->Write([&] { return store_->SetCursor(from, scope, cursor); });
    if (!status.ok()) return status.WithContext("applying changes to " + name());
    return ApplyStats{};
  }
  // The catalog queries, the users' writers' lock and the captured keys go with the BEGIN, the
  // writer lock and the counters, in one round trip (the server runs them in this order).
  Status sent;
  Status begun = store_->BeginWrite([&] {
    sent = SendSchemaQueries();
    // Every user transaction that wrote a synced table has committed, and new ones wait: what is
    // stamped next is all there is (see pg_capture.h).
    if (sent.ok()) sent = db_->LockForTransaction(store::PostgresDb::kRowsLock);
    if (sent.ok()) SendCapturedQueries();
  });
  if (!begun.ok()) {
    DropSentQueries();
    return begun;
  }
  auto stats =
      sent.ok() ? ApplyInTransaction(changes, from, scope, cursor) : Result<ApplyStats>(sent);
  if (!stats.has_value()) {
    store_->Rollback();
    DropSentQueries();
    return stats.error().WithContext("applying changes to " + name());
  }
  const auto committing = std::chrono::steady_clock::now();
  LOCKSTEP_RETURN_IF_ERROR(store_->Commit());
  stats->commit_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - committing)
          .count();
  return stats;
}

Result<ApplyStats> PostgresSource::ApplyInTransaction(std::span<store::Change> changes,
                                                      const core::NodeId& from,
                                                      std::string_view scope,
                                                      const store::Cursor& cursor) {
  // The prepared statements name the columns they were prepared with: a table altered since
  // would take values into the wrong columns, or fail halfway. (The captured keys were read with
  // the catalog (Apply): a capture query that failed on an altered table failed the transaction,
  // but the check reads its own answers first and says what happened.)
  LOCKSTEP_RETURN_IF_ERROR(CheckTablesUnchanged());
  size_t stamped = 0;
  for (bool first = true;; first = false) {
    if (!first) SendCapturedQueries();
    bool more = false;
    for (auto& [table_name, table] : tables_) {
      LOCKSTEP_ASSIGN_OR_RETURN(std::optional<size_t> chunk, table->StampCapturedChunk(*store_));
      if (chunk.has_value()) {
        stamped += *chunk;
        more = true;
      }
    }
    if (!more) break;
  }
  // From here on this transaction's writes to the user's tables are not captured (SET LOCAL, as
  // a statement that can be queued).
  LOCKSTEP_ASSIGN_OR_RETURN(
      store::Statement * applying,
      store::PrepareCached(*db_, applying_, "SELECT set_config('lockstep.applying', 'on', true)"));
  LOCKSTEP_RETURN_IF_ERROR(applying->Queue("marking the transaction as an apply"));
  LOCKSTEP_ASSIGN_OR_RETURN(ApplyStats stats,
                            MergeBatch(*store_, changes, from, [&](const std::string& table_name) {
                              return static_cast<RowSink*>(Table(table_name));
                            }));
  stats.stamped = stamped;
  for (auto& [table_name, table] : tables_) LOCKSTEP_RETURN_IF_ERROR(table->Flush());
  LOCKSTEP_RETURN_IF_ERROR(store_->SetCursor(from, scope, cursor));
  return stats;
}

}  // namespace lockstep::connectors::postgres
