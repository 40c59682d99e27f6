// Statements that take many rows or keys at once, kept prepared in a few sizes. On PostgreSQL each
// statement is a round trip to the server, so a store or a connector that writes (or looks up) a
// batch of records one by one waits for the network once per record; one statement per chunk
// makes that once per chunk. The sizes are powers of two up to a maximum, so that a batch of any
// size takes few statements and few sizes are ever prepared.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "store/database.h"

namespace lockstep::store {

// "(?, ?), (?, ?)": `rows` groups of `columns` parameters, for a multi-row VALUES list. With one
// column, `ListPlaceholders` gives "?, ?" for an IN list.
std::string RowPlaceholders(size_t rows, size_t columns);
std::string ListPlaceholders(size_t count);

// Not thread-safe; must not outlive the database that prepared its statements.
class BatchedStatements {
 public:
  // `sql(rows)` is the statement for `rows` rows; `max_rows` bounds a chunk (any value ≥ 1).
  BatchedStatements(size_t max_rows, std::function<std::string(size_t)> sql)
      : max_rows_(max_rows < 1 ? 1 : max_rows), sql_(std::move(sql)) {}

  // How many rows the next write takes when `remaining` (≥ 1) are left: `max_rows`, else the
  // largest power of two not above `remaining`. A write must not repeat a row (PostgreSQL refuses
  // to upsert a row twice in one statement), so its chunks cover the rows exactly.
  size_t WriteChunk(size_t remaining) const;
  // How many parameters the next lookup takes when `remaining` (≥ 1) keys are left: `max_rows`,
  // else the smallest power of two not below `remaining`, the caller repeating a key to fill it
  // (an IN list does not mind): one statement for the rest, whatever its size.
  size_t ReadChunk(size_t remaining) const;

  // The statement for `rows` rows, prepared on first use.
  Result<Statement*> For(Database& db, size_t rows);

  size_t max_rows() const { return max_rows_; }

 private:
  size_t max_rows_;
  std::function<std::string(size_t)> sql_;
  std::map<size_t, std::unique_ptr<Statement>> by_rows_;
};

}  // namespace lockstep::store
