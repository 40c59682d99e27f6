#include "store/batched_statements.h"

#include <algorithm>
#include <bit>

namespace lockstep::store {

std::string RowPlaceholders(size_t rows, size_t columns) {
  std::string group = "(";
  for (size_t i = 0; i < columns; ++i) group += i == 0 ? "?" : ", ?";
  group += ")";
  std::string sql;
  sql.reserve(rows * (group.size() + 2));
  for (size_t i = 0; i < rows; ++i) sql += (i == 0 ? "" : ", ") + group;
  return sql;
}

std::string ListPlaceholders(size_t count) {
  std::string sql;
  sql.reserve(count * 3);
  for (size_t i = 0; i < count; ++i) sql += i == 0 ? "?" : ", ?";
  return sql;
}

size_t BatchedStatements::WriteChunk(size_t remaining) const {
  if (remaining >= max_rows_) return max_rows_;
  return std::bit_floor(remaining < 1 ? size_t{1} : remaining);
}

size_t BatchedStatements::ReadChunk(size_t remaining) const {
  if (remaining >= max_rows_) return max_rows_;
  return std::min(max_rows_, std::bit_ceil(remaining < 1 ? size_t{1} : remaining));
}

Result<Statement*> BatchedStatements::For(Database& db, size_t rows) {
  std::unique_ptr<Statement>& slot = by_rows_[rows];
  // The SQL is made only to prepare it: a batch of 64 rows has 600 placeholders, and an apply
  // asks for its statement once per batch.
  if (slot) return slot.get();
  return PrepareCached(db, slot, sql_(rows));
}

}  // namespace lockstep::store
