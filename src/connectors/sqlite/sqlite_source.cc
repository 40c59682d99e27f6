#include "connectors/sqlite/sqlite_source.h"

#include <algorithm>
#include <chrono>

#include "connectors/sqlite/capture.h"
#include "connectors/type_mapping.h"
#include "core/key.h"
#include "store/metadata_schema.h"

namespace lockstep::connectors::sqlite {

Result<std::unique_ptr<SqliteSource>> SqliteSource::Open(const std::filesystem::path& path,
                                                         bool create_if_missing,
                                                         const base::Clock& clock,
                                                         store::CheckpointOptions checkpoints) {
  std::error_code ec;
  const bool missing = create_if_missing && !std::filesystem::exists(path, ec);
  auto db = missing ? store::SqliteDb::OpenInMemory() : store::SqliteDb::Open(path, {});
  if (!db.has_value()) return db.error();
  return std::unique_ptr<SqliteSource>(
      new SqliteSource(std::move(*db), path, missing, clock, std::move(checkpoints)));
}

Status SqliteSource::CreateIfMissing() {
  // Inside a caller's transaction (a dry run) the in-memory stand-in does the work instead.
  if (!missing_ || sqlite3_get_autocommit(db_.handle()) == 0) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(db_, store::SqliteDb::Open(path_, {.create_if_missing = true}));
  missing_ = false;
  return Status::Ok();
}

Status SqliteSource::OpenStore() {
  if (store_) return Status::Ok();
  LOCKSTEP_RETURN_IF_ERROR(CreateIfMissing());
  // Lockstep's own writes must never be captured again (no echo); users' writes still are.
  LOCKSTEP_RETURN_IF_ERROR(db_.DisableTriggers());
  // Batches dirty pages of three B-trees; a cache that holds them avoids spilling mid-batch.
  LOCKSTEP_RETURN_IF_ERROR(db_.Exec("PRAGMA cache_size = -65536"));
  // Multi-row statements keep a statement journal so that one can be undone alone; in memory it
  // costs nothing, in a temporary file it doubled the writes of an apply.
  LOCKSTEP_RETURN_IF_ERROR(db_.Exec("PRAGMA temp_store = MEMORY"));
  // Checkpoints run on a thread of their own, every 40 MB of WAL rather than every 4 MB: copying
  // pages into the file and syncing it overlap the next batches on another core, and a sync that
  // changes scattered rows dirties interior pages again and again, which each checkpoint would
  // copy (and sync) anew. Closing the last connection still checkpoints everything.
  LOCKSTEP_RETURN_IF_ERROR(db_.CheckpointInBackground(checkpoints_));
  // In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the process or the
  // OS loses nothing committed and never corrupts; a power cut may undo the last commits, which
  // the peers' cursors then simply send again. That halves the cost of small batches.
  // SQLite refuses to change it inside a transaction; a dry run holds one and commits nothing.
  if (sqlite3_get_autocommit(db_.handle()) != 0) {
    LOCKSTEP_RETURN_IF_ERROR(db_.Exec("PRAGMA synchronous = NORMAL"));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(store_, store::ReplicaStore::Open(db_, clock_));
  return Status::Ok();
}

Result<std::optional<TableSchema>> SqliteSource::Schema(const std::string& table) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> schema, ReadTableSchema(db_, table));
  if (schema.has_value()) LOCKSTEP_RETURN_IF_ERROR(RecallLogicalTypes(db_, *schema));
  return schema;
}

Result<std::map<std::string, std::string>> SqliteSource::Policies() {
  return store::ReadPolicies(db_);
}

void SqliteSource::CloseStore() {
  tables_.clear();  // their statements name the store's tables
  store_.reset();
}

Status SqliteSource::Attach(std::span<const TableSchema> schemas, const std::string& policy,
                            Stamping stamping) {
  LOCKSTEP_RETURN_IF_ERROR(CreateIfMissing());
  if (sqlite3_get_autocommit(db_.handle()) != 0) {
    // Outside a caller's transaction (a dry run holds one), WAL lets readers and one writer work
    // side by side; it is a property of the file and stays on.
    LOCKSTEP_RETURN_IF_ERROR(db_.Exec("PRAGMA journal_mode = WAL")
                                 .WithContext("switching " + path().string() + " to WAL"));
  }
  LOCKSTEP_RETURN_IF_ERROR(OpenStore());
  LOCKSTEP_RETURN_IF_ERROR(store_->BeginWrite());
  Status status = AttachInTransaction(schemas, policy);
  if (!status.ok()) {
    store_->Rollback();
    tables_.clear();
    return status.WithContext("attaching " + path().string());
  }
  LOCKSTEP_RETURN_IF_ERROR(store_->Commit());
  return stamping == Stamping::kNow ? StampPending() : Status::Ok();
}

Status SqliteSource::AttachInTransaction(std::span<const TableSchema> schemas,
                                         const std::string& policy) {
  for (const TableSchema& wanted : schemas) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> existing,
                              ReadTableSchema(db_, wanted.name));
    if (!existing.has_value()) {
      // A table from PostgreSQL is created with the SQLite types that keep its values exactly;
      // any other statement is checked to be one CREATE TABLE of that name before it runs.
      std::string create;
      if (HasLogicalTypes(wanted)) {
        create = SqliteCreateSql(wanted);
      } else {
        LOCKSTEP_ASSIGN_OR_RETURN(TableSchema checked,
                                  ReadCreateStatement(wanted.name, wanted.create_sql));
        create = std::move(checked.create_sql);
      }
      LOCKSTEP_RETURN_IF_ERROR(
          db_.Exec(create).WithContext("creating table '" + wanted.name + "'"));
      LOCKSTEP_ASSIGN_OR_RETURN(existing, ReadTableSchema(db_, wanted.name));
    }
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> known, store_->Collections());
    auto found = std::find_if(known.begin(), known.end(),
                              [&](const auto& c) { return c.name == wanted.name; });
    const bool new_collection = found == known.end();
    store::Collection collection;
    if (new_collection) {
      LOCKSTEP_ASSIGN_OR_RETURN(
          collection, store_->EnsureCollection(wanted.name, policy, existing->create_sql));
    } else {
      collection = std::move(*found);
    }
    if (!policy.empty() && collection.policy != policy) {
      LOCKSTEP_RETURN_IF_ERROR(store_->SetPolicy(collection.id, policy));
      collection.policy = policy;
    }
    LOCKSTEP_ASSIGN_OR_RETURN(core::MergePolicy merge_policy, core::ParsePolicy(collection.policy));
    LOCKSTEP_RETURN_IF_ERROR(RememberLogicalTypes(db_, wanted));
    LOCKSTEP_RETURN_IF_ERROR(InstallCapture(db_, *existing));
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<SyncedTable> table,
                              SyncedTable::Prepare(db_, std::move(*existing), std::move(collection),
                                                   std::move(merge_policy)));
    if (new_collection) {
      LOCKSTEP_RETURN_IF_ERROR(table->StampAllRows(*store_, clock_.NowMillis()).status());
    }
    tables_[wanted.name] = std::move(table);
  }
  return Status::Ok();
}

Result<size_t> SqliteSource::StampAll() {
  size_t writes = 0;
  for (auto& [name, table] : tables_) {
    LOCKSTEP_ASSIGN_OR_RETURN(size_t stamped, table->StampCaptured(*store_));
    writes += stamped;
  }
  return writes;
}

Status SqliteSource::StampPending() {
  // A transaction per chunk: a backlog of captures (a sync killed early, a busy day) is worked
  // off in steps that each survive a crash, and users' writers wait at most one chunk.
  for (;;) {
    bool stamped = false;
    Status status = store_->Write([&]() -> Status {
      for (auto& [name, table] : tables_) {
        LOCKSTEP_ASSIGN_OR_RETURN(std::optional<size_t> chunk, table->StampCapturedChunk(*store_));
        stamped = stamped || chunk.has_value();
      }
      return Status::Ok();
    });
    if (!status.ok()) return status.WithContext("stamping changes in " + path().string());
    if (!stamped) return Status::Ok();
  }
}

std::string SqliteSource::CursorScope() const {
  std::vector<std::string> names;
  for (const auto& [name, table] : tables_) names.push_back(name);
  return CursorScopeOf(std::move(names));
}

SyncedTable* SqliteSource::Table(const std::string& name) {
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second.get();
}

Result<ApplyStats> SqliteSource::Apply(std::span<store::Change> changes, const core::NodeId& from,
                                       std::string_view scope, const store::Cursor& cursor) {
  LOCKSTEP_RETURN_IF_ERROR(store_->BeginWrite());
  auto stats = ApplyInTransaction(changes, from, scope, cursor);
  if (!stats.has_value()) {
    store_->Rollback();
    for (auto& [name, table] : tables_) table->Discard();
    return stats.error().WithContext("applying changes to " + path().string());
  }
  const auto committing = std::chrono::steady_clock::now();
  LOCKSTEP_RETURN_IF_ERROR(store_->Commit());
  stats->commit_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - committing)
          .count();
  return stats;
}

Result<ApplyStats> SqliteSource::ApplyInTransaction(std::span<store::Change> changes,
                                                    const core::NodeId& from,
                                                    std::string_view scope,
                                                    const store::Cursor& cursor) {
  // Users' writes made since the last stamp become writes first, so a merge sees them.
  LOCKSTEP_ASSIGN_OR_RETURN(size_t stamped, StampAll());
  LOCKSTEP_ASSIGN_OR_RETURN(ApplyStats stats,
                            MergeBatch(*store_, changes, from, [&](const std::string& name) {
                              return static_cast<RowSink*>(Table(name));
                            }));
  stats.stamped = stamped;
  for (auto& [name, table] : tables_) LOCKSTEP_RETURN_IF_ERROR(table->Flush());
  LOCKSTEP_RETURN_IF_ERROR(store_->SetCursor(from, scope, cursor));
  return stats;
}

}  // namespace lockstep::connectors::sqlite
