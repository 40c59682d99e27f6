#include "store/sqlite_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>

namespace lockstep::store {
namespace {

StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return StatusCode::kUnavailable;
    case SQLITE_NOTADB:
      return StatusCode::kInvalidArgument;
    case SQLITE_CORRUPT:
      return StatusCode::kDataLoss;
    case SQLITE_FULL:
      return StatusCode::kResourceExhausted;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN:
      return StatusCode::kNotFound;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return StatusCode::kInvalidArgument;
    case SQLITE_ABORT:
    case SQLITE_INTERRUPT:
      return StatusCode::kAborted;
    default:
      return StatusCode::kInternal;
  }
}

Status FromRc(int rc, sqlite3* db, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Status(CodeFor(rc), std::move(message));
}

// A statement over sqlite3_stmt. SQLite's columns hold any value, so BindAny and ColumnAny are
// Bind and Column.
class SqliteStatement final : public StatementBackend {
 public:
  explicit SqliteStatement(sqlite3_stmt* stmt) : stmt_(stmt) {}

  void Bind(int index, const Value& value) override { BindValue(index, value, SQLITE_TRANSIENT); }
  void BindInt(int index, int64_t value) override { sqlite3_bind_int64(stmt_.get(), index, value); }
  void BindText(int index, std::string_view text) override {
    BindTextWith(index, text, SQLITE_TRANSIENT);
  }
  void BindBlob(int index, std::string_view bytes) override {
    BindBlobWith(index, bytes, SQLITE_TRANSIENT);
  }
  // SQLITE_STATIC: SQLite reads the caller's bytes until the next reset instead of copying them
  // into a buffer of its own (a malloc, a copy and a free per value of every row applied).
  void BindInPlace(int index, const Value& value) override {
    BindValue(index, value, SQLITE_STATIC);
  }
  void BindBlobInPlace(int index, std::string_view bytes) override {
    BindBlobWith(index, bytes, SQLITE_STATIC);
  }
  void BindNull(int index) override { sqlite3_bind_null(stmt_.get(), index); }
  void BindAny(int index, const Value& value) override { Bind(index, value); }

  Result<bool> Step() override {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3* db = sqlite3_db_handle(stmt_.get());
    Status error = FromRc(rc, db, "executing statement");
    sqlite3_reset(stmt_.get());
    return error;
  }
  void Reset() override {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
  }

  Value Column(int index) const override {
    switch (sqlite3_column_type(stmt_.get(), index)) {
      case SQLITE_INTEGER:
        return Value::Int(sqlite3_column_int64(stmt_.get(), index));
      case SQLITE_FLOAT:
        return Value::Float(sqlite3_column_double(stmt_.get(), index));
      case SQLITE_TEXT:
        return Value::Text(std::string(ColumnText(index)));
      case SQLITE_BLOB:
        return Value::Bytes(std::string(ColumnBlob(index)));
      default:
        return Value::Null();
    }
  }
  Value ColumnAny(int index) const override { return Column(index); }
  int64_t ColumnInt(int index) const override { return sqlite3_column_int64(stmt_.get(), index); }
  std::string_view ColumnText(int index) const override {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), index));
    return text == nullptr ? std::string_view()
                           : std::string_view(text, sqlite3_column_bytes(stmt_.get(), index));
  }
  std::string_view ColumnBlob(int index) const override {
    const auto* blob = static_cast<const char*>(sqlite3_column_blob(stmt_.get(), index));
    return blob == nullptr ? std::string_view()
                           : std::string_view(blob, sqlite3_column_bytes(stmt_.get(), index));
  }
  bool ColumnIsNull(int index) const override {
    return sqlite3_column_type(stmt_.get(), index) == SQLITE_NULL;
  }
  int column_count() const override { return sqlite3_column_count(stmt_.get()); }

 private:
  void BindValue(int index, const Value& value, sqlite3_destructor_type lifetime) {
    switch (value.type()) {
      case ValueType::kNull:
        return BindNull(index);
      case ValueType::kInt:
        return BindInt(index, value.as_int());
      case ValueType::kFloat:
        sqlite3_bind_double(stmt_.get(), index, value.as_float());
        return;
      case ValueType::kText:
        return BindTextWith(index, value.as_text(), lifetime);
      case ValueType::kBlob:
        return BindBlobWith(index, value.as_blob(), lifetime);
    }
  }
  void BindTextWith(int index, std::string_view text, sqlite3_destructor_type lifetime) {
    sqlite3_bind_text64(stmt_.get(), index, text.data(), text.size(), lifetime, SQLITE_UTF8);
  }
  void BindBlobWith(int index, std::string_view bytes, sqlite3_destructor_type lifetime) {
    // A zero-length blob must stay a blob, not become NULL: bind a non-null pointer.
    static const char kEmpty = 0;
    sqlite3_bind_blob64(stmt_.get(), index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                        lifetime);
  }

  struct Finalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  std::unique_ptr<sqlite3_stmt, Finalizer> stmt_;
};

}  // namespace

void ConfigureSqlite() {
  static std::once_flag once;
  std::call_once(once, [] {
    // SQLite's malloc statistics (on in Debian's build) take a global mutex around every
    // allocation and free, several per row written, for figures Lockstep never reads. Fails
    // harmlessly (SQLITE_MISUSE) once SQLite is initialized.
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}

Result<SqliteDb> SqliteDb::Open(const std::filesystem::path& path, const OpenOptions& options) {
  ConfigureSqlite();
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (!exists && !options.create_if_missing) return NotFound(path.string() + ": no such file");
  if (exists && std::filesystem::is_directory(path, ec)) {
    return InvalidArgument(path.string() + ": is a directory, not a SQLite database");
  }
  if (exists && access(path.c_str(), R_OK | (options.read_only ? 0 : W_OK)) != 0) {
    return PermissionDenied(path.string() +
                            (options.read_only ? ": not readable" : ": not writable"));
  }
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create_if_missing && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, Closer> db(raw);
  if (rc != SQLITE_OK) return FromRc(rc, raw, path.string());
  sqlite3_extended_result_codes(raw, 1);
  SqliteDb result(std::move(db), path);
  result.busy_ = std::make_unique<BusyWait>(BusyWait{options.busy_timeout_ms, 0});
  sqlite3_busy_handler(raw, &SqliteDb::OnBusy, result.busy_.get());
  // SQLite opens lazily: reading the schema is what reveals a file that is not a database.
  // A lock held past the busy timeout (a busy writer in rollback-journal mode) can fail either
  // step: that is a database to retry, not one that is not a database.
  auto refused = [&](const Status& error) {
    if (error.code() == StatusCode::kUnavailable)
      return Unavailable(path.string() + ": " + error.message());
    return InvalidArgument(path.string() + ": not a SQLite database (" + error.message() + ")");
  };
  auto probe = result.Prepare("SELECT count(*) FROM sqlite_master");
  if (!probe.has_value()) return refused(probe.error());
  auto stepped = probe->Step();
  if (!stepped.has_value()) return refused(stepped.error());
  return result;
}

// SQLite's own busy timeout sleeps ever longer, up to 100 ms, between attempts: against a
// program that commits back to back, each attempt lands while the lock is taken again and
// Lockstep can starve. Short, jittered sleeps find the gaps between its transactions.
int SqliteDb::OnBusy(void* context, int attempt) {
  auto* wait = static_cast<BusyWait*>(context);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  if (attempt == 0) wait->started_ms = now;
  if (now - wait->started_ms >= wait->timeout_ms) return 0;
  thread_local std::minstd_rand jitter(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::microseconds(200 + jitter() % 800));
  return 1;
}

Result<SqliteDb> SqliteDb::OpenInMemory() {
  ConfigureSqlite();
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, nullptr);
  std::unique_ptr<sqlite3, Closer> db(raw);
  if (rc != SQLITE_OK) return FromRc(rc, raw, "opening an in-memory database");
  return SqliteDb(std::move(db), ":memory:");
}

Status SqliteDb::Exec(std::string_view sql) {
  const std::string text(sql);
  char* error = nullptr;
  const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return Status(CodeFor(rc), std::move(message));
}

Result<Statement> SqliteDb::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return FromRc(rc, db_.get(), "preparing statement");
  return Statement(std::make_unique<SqliteStatement>(stmt));
}

Result<bool> SqliteDb::HasTable(std::string_view name) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement stmt, Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"));
  stmt.BindText(1, name);
  return stmt.Step();
}

Status SqliteDb::DisableTriggers() {
  int enabled = -1;
  const int rc = sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &enabled);
  if (rc != SQLITE_OK || enabled != 0) return Internal("could not turn off triggers");
  return Status::Ok();
}

Status SqliteDb::SyncWal() {
  // Nothing committed since the last sync: nothing to make durable.
  const int64_t changes = sqlite3_total_changes64(db_.get());
  if (changes == synced_changes_) return Status::Ok();
  synced_changes_ = changes;
  const std::string wal = path_.string() + "-wal";
  const int fd = open(wal.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Status::Ok() : Internal("opening " + wal + " to sync it");
  const int rc = fdatasync(fd);
  close(fd);
  if (rc != 0) return Unavailable("syncing " + wal + " to disk failed");
  return Status::Ok();
}

Status SqliteDb::CheckpointInBackground(CheckpointOptions options) {
  const char* file = sqlite3_db_filename(db_.get(), "main");
  if (checkpointer_ || file == nullptr || *file == '\0' || read_only()) return Status::Ok();
  if (sqlite3_threadsafe() == 0) {
    const int rc = sqlite3_wal_autocheckpoint(db_.get(), options.start_pages);
    return rc == SQLITE_OK ? Status::Ok() : FromRc(rc, db_.get(), "setting checkpoints");
  }
  checkpointer_ = std::make_unique<WalCheckpointer>(db_.get(), file, std::move(options));
  return Status::Ok();
}

Status SqliteDb::StopBackgroundCheckpoints() {
  if (!checkpointer_) return Status::Ok();
  Status status = checkpointer_->Stop();
  checkpointer_.reset();
  return status;
}

WalCheckpointer::Counters SqliteDb::checkpoint_counters() const {
  return checkpointer_ ? checkpointer_->counters() : WalCheckpointer::Counters{};
}

Status SqliteDb::Error(std::string_view what) const {
  return FromRc(sqlite3_extended_errcode(db_.get()), db_.get(), what);
}

bool SqliteDb::Reading() const {
  for (sqlite3_stmt* stmt = sqlite3_next_stmt(db_.get(), nullptr); stmt != nullptr;
       stmt = sqlite3_next_stmt(db_.get(), stmt)) {
    if (sqlite3_stmt_busy(stmt) != 0) return true;
  }
  return false;
}

std::string QuoteIdentifier(std::string_view name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace lockstep::store
