// The small SQL seam the replica store stands on, so that one store serves both SQLite (the user's
// file, `SqliteDb`) and PostgreSQL (`PostgresDb`, in its own library: only it links libpq).
//
// The store's SQL is written once, in the subset both speak: `?` and `?N` parameters (PostgreSQL's
// side renumbers them `$N`), INSERT ... ON CONFLICT, RETURNING, IS DISTINCT FROM. What differs is
// behind this interface: how a writer transaction serializes (BEGIN IMMEDIATE / an advisory
// lock), how a read sees one snapshot, the DDL (metadata_schema.cc), and columns that hold any
// value (SQLite's untyped columns, PostgreSQL's tagged bytea: BindAny and ColumnAny).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "lockstep/status.h"
#include "lockstep/value.h"

namespace lockstep::store {

enum class Dialect { kSqlite, kPostgres };

// One prepared statement of one database kind. Bind indexes start at 1, column indexes at 0.
class StatementBackend {
 public:
  virtual ~StatementBackend() = default;
  virtual void Bind(int index, const Value& value) = 0;
  virtual void BindInt(int index, int64_t value) = 0;
  virtual void BindText(int index, std::string_view text) = 0;
  virtual void BindBlob(int index, std::string_view bytes) = 0;
  virtual void BindNull(int index) = 0;
  virtual void BindAny(int index, const Value& value) = 0;
  // Bind and BindBlob of bytes that stay valid and unchanged until the statement is next reset:
  // a backend may then read them in place rather than copy them (SQLite does; the default copies).
  virtual void BindInPlace(int index, const Value& value) { Bind(index, value); }
  virtual void BindBlobInPlace(int index, std::string_view bytes) { BindBlob(index, bytes); }
  virtual Result<bool> Step() = 0;
  virtual void Reset() = 0;
  // Statement::Queue and Statement::Send; by default the statement runs now (Queue) or at its
  // first Step (Send).
  virtual Status Queue(std::string_view what) {
    auto stepped = Step();
    Reset();
    return stepped.has_value() ? Status::Ok() : stepped.error().WithContext(what);
  }
  virtual void Send() {}
  virtual Value Column(int index) const = 0;
  virtual Value ColumnAny(int index) const = 0;
  virtual int64_t ColumnInt(int index) const = 0;
  virtual std::string_view ColumnText(int index) const = 0;
  virtual std::string_view ColumnBlob(int index) const = 0;
  virtual bool ColumnIsNull(int index) const = 0;
  virtual int column_count() const = 0;
};

// A prepared statement: a value that owns its backend. Not thread-safe; must not outlive the
// database that prepared it.
class Statement {
 public:
  explicit Statement(std::unique_ptr<StatementBackend> backend) : backend_(std::move(backend)) {}
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;

  Statement& Bind(int index, const Value& value) {
    backend_->Bind(index, value);
    return *this;
  }
  Statement& BindInt(int index, int64_t value) {
    backend_->BindInt(index, value);
    return *this;
  }
  Statement& BindText(int index, std::string_view text) {
    backend_->BindText(index, text);
    return *this;
  }
  Statement& BindBlob(int index, std::string_view bytes) {
    backend_->BindBlob(index, bytes);
    return *this;
  }
  Statement& BindNull(int index) {
    backend_->BindNull(index);
    return *this;
  }
  // Without a copy where the backend can: `value` (`bytes`) must stay valid and unchanged until
  // the statement is reset (Run() resets it). For the hot loops that bind many rows at once.
  Statement& BindInPlace(int index, const Value& value) {
    backend_->BindInPlace(index, value);
    return *this;
  }
  Statement& BindBlobInPlace(int index, std::string_view bytes) {
    backend_->BindBlobInPlace(index, bytes);
    return *this;
  }
  // For a column that holds any kind of value (an untyped column in SQLite).
  Statement& BindAny(int index, const Value& value) {
    backend_->BindAny(index, value);
    return *this;
  }

  // Advances: true while a row is available, false when done, an error otherwise.
  Result<bool> Step() { return backend_->Step(); }
  // Runs a statement that returns no rows, then resets it for reuse.
  Status Run() {
    auto stepped = Step();
    Reset();
    return stepped.status();
  }
  // Resets for another execution and clears bindings.
  void Reset() { backend_->Reset(); }

  // Runs a statement that returns no rows, like Run(), but possibly later: on PostgreSQL, inside
  // a transaction, it is sent without waiting for its answer, which comes back with the next round
  // trip (the next statement whose rows are read, or the commit). A failure then fails that
  // statement instead, with `what` in its message, and the transaction with it: nothing it wrote
  // commits. The statement is reset at once and may be bound and queued again. Elsewhere (SQLite,
  // outside a transaction) it runs now, its error prefixed with `what`.
  Status Queue(std::string_view what) { return backend_->Queue(what); }
  // Starts the bound statement so that its rows come back in the same round trip as those of the
  // statements sent with it (PostgreSQL, inside a transaction: reading several tables at the cost
  // of one wait); Step() reads them as usual. Bindings must not change until the first Step().
  // Elsewhere it does nothing and the statement runs at its first Step().
  void Send() { backend_->Send(); }

  Value Column(int index) const { return backend_->Column(index); }
  // What BindAny stored.
  Value ColumnAny(int index) const { return backend_->ColumnAny(index); }
  int64_t ColumnInt(int index) const { return backend_->ColumnInt(index); }
  std::string_view ColumnText(int index) const { return backend_->ColumnText(index); }
  std::string_view ColumnBlob(int index) const { return backend_->ColumnBlob(index); }
  bool ColumnIsNull(int index) const { return backend_->ColumnIsNull(index); }
  int column_count() const { return backend_->column_count(); }

 private:
  std::unique_ptr<StatementBackend> backend_;
};

// How a bulk load sends its values (Database::CopyInto).
enum class CopyFormat {
  // Each value in its column type's binary form: an Int only into bigint columns, Bytes and Text
  // into bytea or text ones (and a Float into double precision). The fastest: nothing is parsed.
  kBinary,
  // Each value as the text its column's type reads, as a text parameter cast to the type would be:
  // integers and floats as decimal text, text as is, Bytes as bytea's hex form. Any column type.
  kText,
};

// The rows of one bulk load into one table (PostgreSQL's COPY ... FROM STDIN): one statement for
// any number of rows, the values streamed in pieces rather than bound as parameters. Values go
// a row at a time in the order of the columns named when it started. It fails as a whole: the
// rows are all written by Finish(), or none. Not thread-safe; while it runs, its connection runs
// nothing else. Destroyed without Finish() it abandons the load, which fails the transaction.
class RowCopy {
 public:
  virtual ~RowCopy() = default;
  virtual void Put(const Value& value) = 0;
  virtual void PutInt(int64_t value) = 0;
  virtual void PutBytes(std::string_view bytes) = 0;
  virtual void PutNull() = 0;
  // Ends the current row, which must have one value per column.
  virtual void EndRow() = 0;
  // Sends what is left and ends the load: the first error of any step, with the rows not written.
  virtual Status Finish() = 0;
};

// One connection to a database. Not thread-safe.
class Database {
 public:
  virtual ~Database() = default;

  virtual Dialect dialect() const = 0;
  // How messages name the database: a path, or a URL without its password.
  virtual const std::string& name() const = 0;

  // Runs one or more statements that return no rows.
  virtual Status Exec(std::string_view sql) = 0;
  virtual Result<Statement> Prepare(std::string_view sql) = 0;
  // A statement planned afresh at every run, for a query over tables whose size changes by orders
  // of magnitude while the connection lives: PostgreSQL keeps a prepared statement's first plan
  // (always, for one without parameters) until the tables' statistics change, so a lookup
  // prepared while a table was empty keeps scanning it whole once it holds thousands of rows.
  // SQLite's plans do not depend on the tables' sizes: there it is Prepare.
  virtual Result<Statement> PrepareReplanned(std::string_view sql) { return Prepare(sql); }

  // Whether CopyInto can load rows (PostgreSQL): SQLite has no bulk load faster than its
  // prepared multi-row inserts.
  virtual bool can_copy() const { return false; }
  // Starts a bulk load of `columns` (quoted and joined by commas) of `table` (quoted).
  // REQUIRES: can_copy().
  virtual Result<std::unique_ptr<RowCopy>> CopyInto(std::string_view table,
                                                    std::string_view columns, size_t column_count,
                                                    CopyFormat format) {
    (void)table, (void)columns, (void)column_count, (void)format;
    return FailedPrecondition(name() + " has no bulk load");
  }

  // Whether a transaction is open on this connection.
  virtual bool InTransaction() const = 0;
  // Opens a transaction that is the only writer of Lockstep's tables until it ends, waiting out
  // other writers for a bounded time (then kUnavailable).
  virtual Status BeginWrite() = 0;
  // Opens a transaction whose reads all see one snapshot.
  virtual Status BeginRead() = 0;

  // Whether a table called `name` exists (in the current schema, for PostgreSQL).
  virtual Result<bool> HasTable(std::string_view name) = 0;

  // Whether this connection can only read (a SQLite file opened read-only).
  virtual bool read_only() const = 0;
  // Whether a statement of this connection is in the middle of its rows. SQLite refuses some
  // schema changes then; PostgreSQL statements return all their rows at once, so never.
  virtual bool Reading() const = 0;
};

// The statement in `slot`, prepared from `sql` on first use: how an object that lives as long as
// its connection keeps the statements it runs often.
inline Result<Statement*> PrepareCached(Database& db, std::unique_ptr<Statement>& slot,
                                        std::string_view sql) {
  if (!slot) {
    LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
    slot = std::make_unique<Statement>(std::move(stmt));
  }
  return slot.get();
}

// Quotes an identifier for SQL: "name" with inner quotes doubled.
std::string QuoteIdentifier(std::string_view name);

}  // namespace lockstep::store
