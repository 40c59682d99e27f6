// A thin RAII layer over the SQLite C API that turns result codes into Status and binds Values.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "lockstep/status.h"
#include "lockstep/value.h"
#include "store/database.h"
#include "store/wal_checkpointer.h"

namespace lockstep::store {

// Process-wide SQLite settings, which only take effect before SQLite's first use in the process:
// SqliteDb's Open calls it, and a program that uses SQLite before (a benchmark's baseline) calls
// it first. Idempotent and thread-safe.
void ConfigureSqlite();

struct OpenOptions {
  bool create_if_missing = false;
  bool read_only = false;
  int busy_timeout_ms = 10'000;
};

// One connection. Not thread-safe; move-only.
class SqliteDb final : public Database {
 public:
  // Opens `path`. Errors: kNotFound (missing, unless create_if_missing), kInvalidArgument (not a
  // SQLite database), kPermissionDenied (cannot be read or, unless read_only, written).
  static Result<SqliteDb> Open(const std::filesystem::path& path, const OpenOptions& options);
  // An empty database in memory: what a file that does not exist yet looks like.
  static Result<SqliteDb> OpenInMemory();

  SqliteDb(SqliteDb&&) noexcept = default;
  SqliteDb& operator=(SqliteDb&& other) noexcept {
    checkpointer_.reset();  // its thread joins, its connection closes before this one
    db_.reset();            // close while its busy handler's state is still alive
    busy_ = std::move(other.busy_);
    db_ = std::move(other.db_);
    checkpointer_ = std::move(other.checkpointer_);
    path_ = std::move(other.path_);
    name_ = std::move(other.name_);
    synced_changes_ = other.synced_changes_;
    return *this;
  }

  Dialect dialect() const override { return Dialect::kSqlite; }
  const std::string& name() const override { return name_; }
  Status Exec(std::string_view sql) override;
  Result<Statement> Prepare(std::string_view sql) override;
  bool InTransaction() const override { return sqlite3_get_autocommit(db_.get()) == 0; }
  // BEGIN IMMEDIATE, waiting out other writers up to the busy timeout.
  Status BeginWrite() override { return Exec("BEGIN IMMEDIATE"); }
  // In WAL mode a read transaction sees one snapshot from its first read.
  Status BeginRead() override { return Exec("BEGIN"); }
  Result<bool> HasTable(std::string_view name) override;
  bool read_only() const override { return sqlite3_db_readonly(db_.get(), "main") == 1; }
  bool Reading() const override;

  // Turns trigger enforcement off for this connection only (SQLITE_DBCONFIG_ENABLE_TRIGGER):
  // writes Lockstep applies are then never captured again, while every other connection's
  // writes still are — the SQLite counterpart of PostgreSQL's session_replication_role.
  Status DisableTriggers();

  // Makes every committed transaction durable by syncing the write-ahead log to disk. Lockstep
  // commits with synchronous=NORMAL (no sync per commit) and calls this before it lets anything
  // it committed leave the database, so a power cut can never take back a seq or a dot that a
  // peer has already seen. A no-op when the database has no WAL file.
  Status SyncWal();

  // Checkpoints this connection's WAL on a thread of its own instead of inline after its commits
  // (WalCheckpointer). A no-op for a database in memory, a read-only connection, or when already
  // on; SQLite's autocheckpoint at `options.start_pages` where SQLite is built without threads.
  // Closing the connection stops the thread first, then checkpoints everything as before when it
  // is the file's last connection.
  Status CheckpointInBackground(CheckpointOptions options = {});
  // Stops the background checkpoints, if on (SQLite's autocheckpoint takes over), and returns
  // the first error they met: the WAL still holds what they could not copy.
  Status StopBackgroundCheckpoints();
  // The background checkpoints' counters, zero when off.
  WalCheckpointer::Counters checkpoint_counters() const;

  // The last error of this connection as a Status with `code`, message prefixed by `what`.
  Status Error(std::string_view what) const;
  int64_t changes() const { return sqlite3_changes64(db_.get()); }
  const std::filesystem::path& path() const { return path_; }
  sqlite3* handle() const { return db_.get(); }

 private:
  struct Closer {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  // How long to keep retrying a locked database, and since when; heap-held because SQLite keeps
  // a pointer to it while the SqliteDb itself may move.
  struct BusyWait {
    int timeout_ms = 0;
    int64_t started_ms = 0;
  };
  static int OnBusy(void* wait, int attempt);

  SqliteDb(std::unique_ptr<sqlite3, Closer> db, std::filesystem::path path)
      : db_(std::move(db)), path_(std::move(path)), name_(path_.string()) {}

  std::unique_ptr<BusyWait> busy_;  // declared before db_, so the connection closes first
  std::unique_ptr<sqlite3, Closer> db_;
  // Declared after db_, so that it stops (joining its thread) before the connection closes.
  std::unique_ptr<WalCheckpointer> checkpointer_;
  std::filesystem::path path_;
  std::string name_;
  int64_t synced_changes_ = 0;  // sqlite3_total_changes64 at the last SyncWal
};

}  // namespace lockstep::store
