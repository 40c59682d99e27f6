// A connection to a PostgreSQL database through libpq, behind the same seam as SqliteDb so that
// the replica store runs on either. The only store code that links libpq (library store_postgres).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/database.h"

struct pg_conn;

namespace lockstep::store {

class Pipeline;

// True for postgres:// and postgresql:// URLs.
bool IsPostgresUrl(std::string_view text);

// `url` with its password, if any, replaced by "***": how messages name a database.
std::string RedactPassword(std::string_view url);

// One connection. Not thread-safe; move-only through its unique_ptr.
//
// Statements are server-side prepared statements; parameters go as text (numbers, text) or
// binary (bytea), results come back in binary. Inside a transaction, statements queued
// (Statement::Queue) or sent ahead (Statement::Send) go in libpq's pipeline mode: they are sent
// at once and their answers are read together at the next statement that needs an answer (a
// read, COMMIT), so that a round of many statements waits for the server a few times, not once
// per statement. The first failure among them fails that read or that COMMIT, and every later
// statement until the transaction is rolled back (the server has aborted it anyway). Columns that
// hold any value (BindAny) are bytea holding a tag byte (the ValueType) and the value: an int64 or
// float64 big-endian, text and blob bytes as they are; NULL is SQL NULL.
class PostgresDb final : public Database {
 public:
  // Connects to `url` (postgres://USER:PASSWORD@HOST:PORT/DB, any libpq URL), giving up after
  // 10 s unless the URL sets connect_timeout. Errors name the database without its password:
  // kUnauthenticated for a refused login, kNotFound for a missing database, kUnavailable when
  // the server cannot be reached.
  static Result<std::unique_ptr<PostgresDb>> Connect(std::string_view url);
  ~PostgresDb() override;
  PostgresDb(const PostgresDb&) = delete;
  PostgresDb& operator=(const PostgresDb&) = delete;

  // The advisory lock that serializes Lockstep's writers ("lockstep" in ASCII).
  static constexpr int64_t kWriterLock = 7813874148681863280;
  // The advisory lock users' statements on synced tables take shared, and an apply exclusively
  // (see connectors/postgres/pg_capture.h). Stamping does not take it: users keep writing.
  static constexpr int64_t kRowsLock = kWriterLock + 1;

  // Takes advisory lock `key` for the rest of the transaction, waiting at most 10 s. Queued (see
  // above): a timeout fails the next statement that waits for an answer, with kUnavailable.
  // REQUIRES: inside a transaction.
  Status LockForTransaction(int64_t key);

  // The round trips to the server so far: each statement run alone, each pipeline's sync.
  uint64_t round_trips() const;

  Dialect dialect() const override { return Dialect::kPostgres; }
  const std::string& name() const override { return name_; }
  Status Exec(std::string_view sql) override;
  Result<Statement> Prepare(std::string_view sql) override;
  Result<Statement> PrepareReplanned(std::string_view sql) override;
  bool can_copy() const override { return true; }
  Result<std::unique_ptr<RowCopy>> CopyInto(std::string_view table, std::string_view columns,
                                            size_t column_count, CopyFormat format) override;
  bool InTransaction() const override;
  // BEGIN, then a transaction-scoped advisory lock that every Lockstep writer of this database
  // takes: writers of the store are serialized, so seqs commit in order. Waits up to 10 s. Both
  // are queued: a timeout fails the transaction's first read (or its COMMIT), with kUnavailable.
  Status BeginWrite() override;
  // BEGIN ISOLATION LEVEL REPEATABLE READ: every statement sees the snapshot of the first. Queued,
  // with the first read.
  Status BeginRead() override;
  Result<bool> HasTable(std::string_view name) override;
  bool read_only() const override { return false; }
  bool Reading() const override { return false; }

  // LISTEN on `channel` and wait for notifications: the socket to poll, and the channels notified
  // since the last call (consumed).
  Status Listen(std::string_view channel);
  int socket() const;
  Result<std::vector<std::string>> TakeNotifications();
  // Waits up to `limit` for the socket to become readable (a notification, or the server gone).
  Status WaitForNotification(std::chrono::milliseconds limit);

 private:
  PostgresDb(pg_conn* conn, std::string name);

  pg_conn* conn_;
  std::string name_;
  int64_t statements_ = 0;  // names prepared statements on this connection
  std::unique_ptr<Pipeline> pipeline_;
};

// Translates `?` and `?N` parameters (SQLite's) into `$N` (PostgreSQL's), leaving quoted text
// and identifiers alone. Returns the SQL and the number of parameters.
std::pair<std::string, int> NumberParameters(std::string_view sql);

}  // namespace lockstep::store
