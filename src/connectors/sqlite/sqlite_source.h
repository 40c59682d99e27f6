// A user's SQLite database synced in place: its tables, their capture triggers, and the replica
// store that lives beside them in the same file.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "connectors/source.h"
#include "connectors/sqlite/synced_table.h"
#include "connectors/sqlite/table_schema.h"
#include "store/replica_store.h"

namespace lockstep::connectors::sqlite {

using ApplyStats = connectors::ApplyStats;

// Not thread-safe. Opening inspects without modifying; Attach() is the first write.
class SqliteSource final : public Source {
 public:
  // `checkpoints`: when the store's connection checkpoints its WAL in the background (the
  // defaults, except in tests that want checkpoints sooner).
  static Result<std::unique_ptr<SqliteSource>> Open(const std::filesystem::path& path,
                                                    bool create_if_missing,
                                                    const base::Clock& clock,
                                                    store::CheckpointOptions checkpoints = {});

  const std::filesystem::path& path() const { return path_; }
  const std::string& name() const override { return name_; }
  store::SqliteDb& db() { return db_; }
  store::Database& database() override { return db_; }
  // REQUIRES: OpenStore() or Attach() succeeded.
  store::ReplicaStore& store() override { return *store_; }

  Result<std::vector<std::string>> ListTables() override { return ListUserTables(db_); }
  // The schema of a user table (nullopt where the table is missing), read without writing; with
  // the logical types the store remembers for it.
  Result<std::optional<TableSchema>> Schema(const std::string& table) override;
  Result<std::map<std::string, std::string>> Policies() override;
  Status MakeDurable() override { return db_.SyncWal(); }

  // Opens (creating the file if it is still missing) the replica store: metadata tables and the
  // node's identity.
  Status OpenStore() override;
  void CloseStore() override;

  // Puts `schemas` under sync: creates tables missing here from the schema's CREATE statement,
  // registers their collections (setting `policy` when not empty), installs capture triggers,
  // makes the existing rows of newly attached tables local writes (one transaction), then stamps
  // pending captures (StampPending).
  // Switches the database to WAL so that users' programs keep writing while Lockstep reads.
  // With kLater, captured writes wait for the next StampPending (see Source::Stamping).
  Status Attach(std::span<const TableSchema> schemas, const std::string& policy,
                Stamping stamping = Stamping::kNow) override;

  // Turns captured changes into local writes, in transactions of up to 10,000 changes each.
  Status StampPending() override;

  // Merges `changes` (from the peer `from`, whose change log they come from up to `cursor`) in one
  // transaction with the new cursor (kept for `scope`, see ReplicaStore::GetCursor): the records,
  // the user's rows, the conflict log. The records of `changes` may be moved from.
  Result<ApplyStats> Apply(std::span<store::Change> changes, const core::NodeId& from,
                           std::string_view scope, const store::Cursor& cursor) override;

  // The names of the synced tables, sorted and joined by commas: the scope of cursors.
  std::string CursorScope() const override;

  // The synced table called `name`, or nullptr.
  SyncedTable* Table(const std::string& name) override;

 private:
  SqliteSource(store::SqliteDb db, std::filesystem::path path, bool missing,
               const base::Clock& clock, store::CheckpointOptions checkpoints)
      : db_(std::move(db)),
        path_(std::move(path)),
        name_(path_.string()),
        missing_(missing),
        clock_(clock),
        checkpoints_(std::move(checkpoints)) {}
  Status CreateIfMissing();
  Status AttachInTransaction(std::span<const TableSchema> schemas, const std::string& policy);
  Result<size_t> StampAll();
  Result<ApplyStats> ApplyInTransaction(std::span<store::Change> changes, const core::NodeId& from,
                                        std::string_view scope, const store::Cursor& cursor);

  store::SqliteDb db_;
  std::filesystem::path path_;
  std::string name_;
  // A file that does not exist yet is an empty in-memory database until the first write, so
  // that a refused sync or a dry run never leaves an empty file behind.
  bool missing_;
  const base::Clock& clock_;
  store::CheckpointOptions checkpoints_;
  std::unique_ptr<store::ReplicaStore> store_;
  std::map<std::string, std::unique_ptr<SyncedTable>> tables_;
};

}  // namespace lockstep::connectors::sqlite
