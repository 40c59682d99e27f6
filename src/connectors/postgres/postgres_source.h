// A user's PostgreSQL database synced in place: its tables, their capture triggers, and the
// replica store in `_lockstep_*` tables of the same database (its current schema).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "connectors/postgres/pg_schema.h"
#include "connectors/postgres/pg_table.h"
#include "connectors/source.h"
#include "store/postgres_db.h"
#include "store/replica_store.h"

namespace lockstep::connectors::postgres {

// Not thread-safe. Opening connects and inspects without modifying; Attach() is the first write.
class PostgresSource final : public Source {
 public:
  // Connects to `url` (see store::PostgresDb::Connect for the errors).
  static Result<std::unique_ptr<PostgresSource>> Open(std::string_view url,
                                                      const base::Clock& clock);

  const std::string& name() const override { return db_->name(); }
  store::Database& database() override { return *db_; }
  store::PostgresDb& db() { return *db_; }
  store::ReplicaStore& store() override { return *store_; }
  PgTable* Table(const std::string& name) override;

  Result<std::vector<std::string>> ListTables() override {
    return ListUserTables(*db_, &list_tables_);
  }
  Result<std::optional<TableSchema>> Schema(const std::string& table) override;
  Result<std::map<std::string, std::string>> Policies() override;

  // As Source::Attach. A table is attached in the same transaction as its triggers, so a write
  // made meanwhile is either in the first scan or captured.
  Status OpenStore() override;
  void CloseStore() override;
  Status Attach(std::span<const TableSchema> schemas, const std::string& policy,
                Stamping stamping = Stamping::kNow) override;
  Status StampPending() override;
  Status StampSome() override;
  void PaceRounds(std::chrono::milliseconds gather) override { gather_ = gather; }
  // The stamping rounds that found captures so far (each one transaction), for tests.
  size_t rounds() const { return rounds_; }
  // As Source::Apply, with `lockstep.applying` set for the transaction so that the triggers let
  // these writes pass uncaptured.
  Result<ApplyStats> Apply(std::span<store::Change> changes, const core::NodeId& from,
                           std::string_view scope, const store::Cursor& cursor) override;
  std::string CursorScope() const override;
  // A PostgreSQL commit is durable when it returns.
  Status MakeDurable() override { return Status::Ok(); }

 private:
  PostgresSource(std::unique_ptr<store::PostgresDb> db, const base::Clock& clock)
      : db_(std::move(db)), clock_(clock) {}
  Status AttachInTransaction(std::span<const TableSchema> schemas, const std::string& policy);
  // Stamps chunks until nothing is captured, or (`until_written`) until a round wrote something,
  // paced by PaceRounds.
  Status Stamp(bool until_written);
  // PaceRounds' wait, before a round of StampSome that has found captures.
  void WaitToGather() const;
  // Whether any capture table holds a row: one round trip, where a stamping round that finds
  // nothing costs a write transaction (about eight, on a busy server ten to twenty milliseconds).
  Result<bool> AnythingCaptured();
  Result<ApplyStats> ApplyInTransaction(std::span<store::Change> changes, const core::NodeId& from,
                                        std::string_view scope, const store::Cursor& cursor);
  // Sends the catalog queries of CheckTablesUnchanged ahead (Statement::Send).
  Status SendSchemaQueries();
  // Checks that every synced table still has the columns it was attached with.
  Status CheckTablesUnchanged();
  // Sends every table's captured-keys query ahead, so that one round trip brings all their
  // chunks: a stamping round then waits for the server a few times, not once per table.
  void SendCapturedQueries();
  // After a failed transaction: drops the batched writes and every answer sent for and not read.
  void DropSentQueries();

  // Declared first: destroyed last, after the statements prepared on it.
  std::unique_ptr<store::PostgresDb> db_;
  const base::Clock& clock_;
  std::unique_ptr<store::ReplicaStore> store_;
  std::map<std::string, std::unique_ptr<PgTable>> tables_;
  // CheckTablesUnchanged's catalog query of each table, kept prepared (one per table, so that
  // all are sent at once).
  std::map<std::string, std::unique_ptr<store::Statement>> schema_queries_;
  std::unique_ptr<store::Statement> applying_;        // sets lockstep.applying for the transaction
  std::unique_ptr<store::Statement> list_tables_;     // ListTables', kept prepared
  std::unique_ptr<store::Statement> captured_query_;  // AnythingCaptured's, for the tables of
  std::string captured_query_sql_;                    // this text
  // Pacing (PaceRounds): the interval, and the last round that found captures: when it began, and
  // whether a table's chunk was full (a backlog: the next round goes at once).
  std::chrono::milliseconds gather_{0};
  std::chrono::steady_clock::time_point last_round_;
  bool last_round_full_ = false;
  size_t rounds_ = 0;
};

}  // namespace lockstep::connectors::postgres
