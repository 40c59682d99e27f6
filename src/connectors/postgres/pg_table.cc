#include "connectors/postgres/pg_table.h"

#include <algorithm>
#include <map>

#include "connectors/postgres/pg_capture.h"
#include "connectors/postgres/pg_schema.h"
#include "core/key.h"
#include "store/bulk_load.h"

namespace lockstep::connectors::postgres {
namespace {

using store::QuoteIdentifier;
using store::Statement;

constexpr int64_t kCaptureChunk = 10'000;
constexpr size_t kRowBatch = 500;
constexpr size_t kMaxParameters = 65'535;  // PostgreSQL's limit per statement

Result<std::unique_ptr<Statement>> PrepareOwned(store::Database& db, const std::string& sql) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  return std::make_unique<Statement>(std::move(stmt));
}

// For the statements over the capture table and the user's table read while they grow or
// shrink by orders of magnitude (see Database::PrepareReplanned).
Result<std::unique_ptr<Statement>> PrepareReplannedOwned(store::Database& db,
                                                         const std::string& sql) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt, db.PrepareReplanned(sql));
  return std::make_unique<Statement>(std::move(stmt));
}

const Column& ColumnNamed(const TableSchema& schema, const std::string& name) {
  return *std::find_if(schema.columns.begin(), schema.columns.end(),
                       [&](const Column& c) { return c.name == name; });
}

}  // namespace

Result<std::unique_ptr<PgTable>> PgTable::Prepare(store::Database& db, TableSchema schema,
                                                  store::Collection collection,
                                                  core::MergePolicy policy) {
  std::unique_ptr<PgTable> table(
      new PgTable(db, std::move(schema), std::move(collection), std::move(policy)));
  const TableSchema& s = table->schema_;
  for (const std::string& key : s.key) {
    auto it = std::find_if(s.columns.begin(), s.columns.end(),
                           [&](const Column& c) { return c.name == key; });
    table->key_positions_.push_back(static_cast<size_t>(it - s.columns.begin()));
  }
  const std::string name = SplitName(s.name).Quoted();
  const std::string capture = QuoteIdentifier(CaptureTableName(table->collection_.id));

  std::string columns, reads, update, key_list, join;
  for (size_t i = 0; i < s.columns.size(); ++i) {
    const Column& column = s.columns[i];
    columns += (i == 0 ? "" : ", ") + QuoteIdentifier(column.name);
    reads += ", " + ReadExpression(column, "t");
  }
  for (const std::string& column : s.non_key) {
    update += (update.empty() ? "" : ", ") + QuoteIdentifier(column) + " = excluded." +
              QuoteIdentifier(column);
  }
  std::string captured_keys, capture_columns;
  for (size_t i = 0; i < s.key.size(); ++i) {
    capture_columns += ", k" + std::to_string(i);
    const Column& column = ColumnNamed(s, s.key[i]);
    key_list += (i == 0 ? "" : ", ") + QuoteIdentifier(column.name);
    join += (i == 0 ? "" : " AND ") + std::string("t.") + QuoteIdentifier(column.name) + " = c.k" +
            std::to_string(i);
    Column as_captured = column;
    as_captured.name = "k" + std::to_string(i);
    captured_keys += ", " + ReadExpression(as_captured, "c");
  }
  // Several rows per upsert: each statement is a round trip to the server.
  const size_t rows_per_upsert = std::max<size_t>(
      1, std::min(kRowBatch, kMaxParameters / std::max<size_t>(1, s.columns.size())));
  auto upsert = [s, name, columns, key_list, update](size_t rows) {
    std::string all_values;
    for (size_t row = 0; row < rows; ++row) {
      all_values += row == 0 ? "(" : ", (";
      for (size_t i = 0; i < s.columns.size(); ++i) {
        all_values +=
            (i == 0 ? "" : ", ") +
            WriteExpression(s.columns[i], static_cast<int>(row * s.columns.size() + i + 1));
      }
      all_values += ")";
    }
    return "INSERT INTO " + name + " (" + columns + ") VALUES " + all_values + " ON CONFLICT (" +
           key_list + ") DO " + (update.empty() ? "NOTHING" : "UPDATE SET " + update);
  };
  table->upsert_ = std::make_unique<store::BatchedStatements>(rows_per_upsert, upsert);
  table->loadable_ = db.can_copy();
  table->load_columns_ = columns;
  for (const Column& column : s.columns) {
    const TypeKind kind = KindOfColumn(column);
    table->loadable_ = table->loadable_ && kind != TypeKind::kArray;
    table->bytes_columns_.push_back(kind == TypeKind::kBytes);
  }
  // Prepared now, so that a table the statement does not fit fails at attach, not at apply.
  LOCKSTEP_RETURN_IF_ERROR(table->upsert_->For(db, 1).status());
  // Several keys per delete, as for upserts: `(k1, k2) IN ((?, ?), (?, ?))`.
  std::vector<const Column*> key_columns;
  for (const std::string& key : s.key) key_columns.push_back(&ColumnNamed(s, key));
  const size_t keys_per_delete = std::max<size_t>(
      1, std::min(kRowBatch, kMaxParameters / std::max<size_t>(1, key_columns.size())));
  auto remove = [name, key_list, key_columns](size_t rows) {
    std::string all_keys;
    for (size_t row = 0; row < rows; ++row) {
      all_keys += row == 0 ? "(" : ", (";
      for (size_t i = 0; i < key_columns.size(); ++i) {
        all_keys +=
            (i == 0 ? "" : ", ") +
            WriteExpression(*key_columns[i], static_cast<int>(row * key_columns.size() + i + 1));
      }
      all_keys += ")";
    }
    return "DELETE FROM " + name + " WHERE (" + key_list + ") IN (" + all_keys + ")";
  };
  table->delete_ = std::make_unique<store::BatchedStatements>(keys_per_delete, remove);
  LOCKSTEP_RETURN_IF_ERROR(table->delete_->For(db, 1).status());
  // Each distinct key of a chunk of captures, with the captures' ids, the latest capture time,
  // and the row as it is now (all NULL, and `present` 0, when it is gone). A hot row written by
  // every transaction (pgbench's branches) is captured hundreds of times per chunk and looked up
  // and sent once. The chunk is taken first and each row then looked up by its key (LATERAL,
  // and OFFSET 0 so that the planner cannot turn it back into a join): a plain join may scan the
  // whole table to match a few thousand keys, hundreds of milliseconds per chunk on a table of a
  // million.
  const std::string first_key = "t." + QuoteIdentifier(s.key[0]);
  // Planned at every run: prepared while the capture table and a table like pgbench_history were
  // empty, the plan would look each key up by scanning the whole table, once it holds thousands.
  LOCKSTEP_ASSIGN_OR_RETURN(
      table->captured_,
      PrepareReplannedOwned(
          db, "SELECT c.ids::text, c.ts, (" + first_key + " IS NOT NULL)::int4" + captured_keys +
                  reads + " FROM (SELECT array_agg(id) AS ids, max(ts) AS ts, min(id) AS first" +
                  capture_columns + " FROM (SELECT * FROM " + capture + " ORDER BY id LIMIT " +
                  std::to_string(kCaptureChunk) + ") chunk GROUP BY " + capture_columns.substr(2) +
                  ") c LEFT JOIN LATERAL (SELECT * FROM " + name + " t WHERE " + join +
                  " OFFSET 0) t ON true ORDER BY c.first"));
  LOCKSTEP_ASSIGN_OR_RETURN(
      table->forget_captured_,
      PrepareReplannedOwned(db, "DELETE FROM " + capture + " WHERE id = ANY(CAST(? AS int8[]))"));
  LOCKSTEP_ASSIGN_OR_RETURN(table->scan_,
                            PrepareOwned(db, "SELECT " + reads.substr(2) + " FROM " + name + " t"));
  return table;
}

Status PgTable::AppendRow(const core::Record& record, std::vector<Value>& row) const {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Value> key, core::DecodeKey(record.key()));
  if (key.size() != schema_.key.size()) {
    return DataLoss("record key of table '" + schema_.name + "' has " + std::to_string(key.size()) +
                    " columns, the table's primary key " + std::to_string(schema_.key.size()));
  }
  const size_t first = row.size();
  for (size_t i = 0; i < schema_.columns.size(); ++i) {
    const core::Field* field = record.Find(schema_.columns[i].name);
    row.push_back(field == nullptr ? Value::Null()
                                   : core::VisibleValue(*field, schema_.columns[i].name, policy_));
  }
  // The key columns come from the key itself (see the SQLite connector).
  for (size_t i = 0; i < key.size(); ++i) row[first + key_positions_[i]] = std::move(key[i]);
  return Status::Ok();
}

Status PgTable::WriteRow(const core::Record& record) {
  // A row waiting for the bulk load goes first (a batch names a record once; a caller may not).
  if (new_keys_.contains(record.key())) LOCKSTEP_RETURN_IF_ERROR(FlushNewRows());
  if (!core::Exists(record, policy_)) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Value> key, core::DecodeKey(record.key()));
    if (key.size() != schema_.key.size()) {
      return DataLoss("record key of table '" + schema_.name + "' has " +
                      std::to_string(key.size()) + " columns, the table's primary key " +
                      std::to_string(schema_.key.size()));
    }
    // An upsert of the same row waiting goes first.
    if (upsert_keys_.contains(record.key())) LOCKSTEP_RETURN_IF_ERROR(FlushUpserts());
    delete_keys_.insert(record.key());
    pending_deletes_.insert(pending_deletes_.end(), key.begin(), key.end());
    return pending_deletes_.size() / key.size() >= delete_->max_rows() ? FlushDeletes()
                                                                       : Status::Ok();
  }
  if (delete_keys_.contains(record.key())) LOCKSTEP_RETURN_IF_ERROR(FlushDeletes());
  LOCKSTEP_RETURN_IF_ERROR(AppendRow(record, pending_rows_));
  upsert_keys_.insert(record.key());
  const size_t rows = pending_rows_.size() / schema_.columns.size();
  return rows >= upsert_->max_rows() ? FlushUpserts() : Status::Ok();
}

Status PgTable::TakeNewRow(core::Record& record) {
  if (!loadable_ || !core::Exists(record, policy_) || upsert_keys_.contains(record.key()) ||
      delete_keys_.contains(record.key()) || new_keys_.contains(record.key())) {
    return WriteRow(record);
  }
  const size_t first = pending_new_.size();
  LOCKSTEP_RETURN_IF_ERROR(AppendRow(record, pending_new_));
  // A blob bound to a column of another type is read in that type's binary form, which the
  // load's text cannot say: such a row is upserted.
  for (size_t i = 0; i < bytes_columns_.size(); ++i) {
    if (!bytes_columns_[i] && pending_new_[first + i].type() == ValueType::kBlob) {
      pending_new_.resize(first);
      return WriteRow(record);
    }
  }
  new_keys_.insert(record.key());
  return pending_new_.size() / schema_.columns.size() >= kMaxNewRows ? FlushNewRows()
                                                                     : Status::Ok();
}

void PgTable::Discard() {
  captured_->Reset();  // an answer sent for and not read (SendCapturedQuery)
  chunk_.reset();
  pending_new_.clear();
  new_keys_.clear();
  pending_rows_.clear();
  pending_deletes_.clear();
  upsert_keys_.clear();
  delete_keys_.clear();
}

Status PgTable::Flush() {
  // Each key is in one list at most (WriteRow flushes the others first): any order will do.
  LOCKSTEP_RETURN_IF_ERROR(FlushDeletes());
  LOCKSTEP_RETURN_IF_ERROR(FlushUpserts());
  return FlushNewRows();
}

Status PgTable::FlushNewRows() {
  const size_t width = schema_.columns.size();
  const size_t rows = pending_new_.size() / width;
  if (rows == 0) return Status::Ok();
  // Upserted instead: too few for a load, or the load failed.
  auto upsert = [&] {
    pending_rows_.insert(pending_rows_.end(), std::make_move_iterator(pending_new_.begin()),
                         std::make_move_iterator(pending_new_.end()));
    upsert_keys_.merge(new_keys_);
    pending_new_.clear();
    new_keys_.clear();
    return FlushUpserts();
  };
  if (rows < store::kMinBulkLoadRows) return upsert();
  auto load = [&]() -> Status {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<store::RowCopy> copy,
                              db_->CopyInto(SplitName(schema_.name).Quoted(), load_columns_, width,
                                            store::CopyFormat::kText));
    for (size_t row = 0; row < rows; ++row) {
      for (size_t i = 0; i < width; ++i) copy->Put(pending_new_[row * width + i]);
      copy->EndRow();
    }
    return copy->Finish();
  };
  Status status = store::LoadOrWrite(*db_, load, upsert);
  pending_new_.clear();
  new_keys_.clear();
  if (!status.ok()) Discard();
  return status;
}

Status PgTable::FlushDeletes() {
  const size_t width = schema_.key.size();
  const size_t total = pending_deletes_.size() / width;
  size_t done = 0;
  while (done < total) {
    // A lookup's chunk: the last key repeated to fill a size already prepared (an IN list does
    // not mind), so that the rest takes one statement.
    const size_t rows = delete_->ReadChunk(total - done);
    auto stmt = delete_->For(*db_, rows);
    Status status = stmt.status();
    if (status.ok()) {
      for (size_t row = 0; row < rows; ++row) {
        const size_t from = std::min(done + row, total - 1) * width;
        for (size_t i = 0; i < width; ++i) {
          (*stmt)->Bind(static_cast<int>(row * width + i + 1), pending_deletes_[from + i]);
        }
      }
      status = (*stmt)->Queue("deleting from '" + schema_.name + "'");
    }
    if (!status.ok()) {
      Discard();
      return status;
    }
    done += std::min(rows, total - done);
  }
  pending_deletes_.clear();
  delete_keys_.clear();
  return Status::Ok();
}

Status PgTable::FlushUpserts() {
  const size_t width = schema_.columns.size();
  const size_t total = pending_rows_.size() / width;
  size_t done = 0;
  while (done < total) {
    const size_t rows = upsert_->WriteChunk(total - done);
    auto stmt = upsert_->For(*db_, rows);
    Status status = stmt.status();
    if (status.ok()) {
      for (size_t i = 0; i < rows * width; ++i) {
        (*stmt)->Bind(static_cast<int>(i + 1), pending_rows_[done * width + i]);
      }
      status = (*stmt)->Queue("writing to '" + schema_.name + "'");
    }
    if (!status.ok()) {
      Discard();
      return status;
    }
    done += rows;
  }
  pending_rows_.clear();
  upsert_keys_.clear();
  return Status::Ok();
}

Result<std::optional<size_t>> PgTable::StampCapturedChunk(store::ReplicaStore& store) {
  LOCKSTEP_ASSIGN_OR_RETURN(bool captured, ReadCapturedChunk(store));
  if (!captured) return std::optional<size_t>();
  LOCKSTEP_ASSIGN_OR_RETURN(size_t writes, StampReadChunk(store));
  return std::optional<size_t>(writes);
}

Result<bool> PgTable::ReadCapturedChunk(store::ReplicaStore& store) {
  chunk_.reset();
  chunk_full_ = false;
  int64_t captures = 0;
  // The latest capture time of each distinct key, and the row as it is now.
  std::map<std::string, CapturedRow> keys;
  // The captures read, deleted by id: not "up to the last id read", as a capture of a
  // transaction that commits meanwhile may hold a smaller id, and it has not been stamped.
  std::string ids;
  const size_t key_count = schema_.key.size();
  const int first_value = 3 + static_cast<int>(key_count);
  for (;;) {
    auto row = captured_->Step();
    if (!row.has_value()) {
      captured_->Reset();
      return row.error().WithContext("reading captured changes of '" + schema_.name + "'");
    }
    if (!*row) break;
    // The key's captures, as "{1,5,9}".
    const std::string_view key_ids = captured_->ColumnText(0);
    if (key_ids.size() < 3 || key_ids.front() != '{' || key_ids.back() != '}') {
      captured_->Reset();
      return DataLoss("captured changes of '" + schema_.name + "': unexpected ids " +
                      std::string(key_ids));
    }
    captures += 1 + std::count(key_ids.begin(), key_ids.end(), ',');
    ids += (ids.empty() ? "{" : ",");
    ids += key_ids.substr(1, key_ids.size() - 2);
    std::vector<Value> key;
    for (size_t i = 0; i < key_count; ++i)
      key.push_back(captured_->Column(3 + static_cast<int>(i)));
    CapturedRow& entry = keys[core::EncodeKey(key)];
    entry.ts = std::max(entry.ts, captured_->ColumnInt(1));
    if (captured_->ColumnInt(2) != 0) {
      std::vector<Value> values;
      values.reserve(schema_.columns.size());
      for (size_t i = 0; i < schema_.columns.size(); ++i) {
        values.push_back(captured_->Column(first_value + static_cast<int>(i)));
      }
      entry.row = std::move(values);
    } else {
      entry.row.reset();
    }
  }
  captured_->Reset();
  chunk_full_ = captures >= kCaptureChunk;
  if (ids.empty()) return false;
  // In order of capture time: the clock never goes back (see the SQLite connector).
  std::vector<std::pair<const std::string, CapturedRow>*> order;
  for (auto& item : keys) order.push_back(&item);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto* x, const auto* y) { return x->second.ts < y->second.ts; });
  Chunk chunk;
  chunk.ids = ids + "}";
  chunk.keys.reserve(order.size());
  chunk.rows.reserve(order.size());
  for (auto* captured : order) {
    chunk.keys.push_back(captured->first);
    chunk.rows.push_back(std::move(captured->second));
  }
  // The stored records of the whole chunk in a few queries, not a round trip per key; the first
  // sent now, so that every table's come back together.
  LOCKSTEP_RETURN_IF_ERROR(store.SendGetMany(collection_.id, chunk.keys));
  chunk_ = std::move(chunk);
  return true;
}

Result<size_t> PgTable::StampReadChunk(store::ReplicaStore& store) {
  if (!chunk_.has_value()) return size_t{0};
  Chunk chunk = std::move(*chunk_);
  chunk_.reset();
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::optional<store::StoredRecord>> stored,
                            store.GetMany(collection_.id, chunk.keys));
  size_t writes = 0;
  for (size_t i = 0; i < chunk.keys.size(); ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool wrote,
                              StampRow(store, schema_, collection_.id, policy_, chunk.keys[i],
                                       std::move(stored[i]), chunk.rows[i].row, chunk.rows[i].ts));
    writes += wrote ? 1 : 0;
  }
  LOCKSTEP_RETURN_IF_ERROR(forget_captured_->BindText(1, chunk.ids)
                               .Queue("forgetting captured changes of '" + schema_.name + "'"));
  return writes;
}

Result<size_t> PgTable::StampAllRows(store::ReplicaStore& store, int64_t now_millis) {
  size_t writes = 0;
  for (;;) {
    auto stepped = scan_->Step();
    if (!stepped.has_value()) {
      scan_->Reset();
      return stepped.error().WithContext("reading '" + schema_.name + "'");
    }
    if (!*stepped) break;
    std::vector<Value> row;
    row.reserve(schema_.columns.size());
    for (size_t i = 0; i < schema_.columns.size(); ++i) {
      row.push_back(scan_->Column(static_cast<int>(i)));
    }
    std::vector<Value> key;
    for (size_t position : key_positions_) key.push_back(row[position]);
    auto wrote = StampRow(store, schema_, collection_.id, policy_, core::EncodeKey(key),
                          std::nullopt, row, now_millis);
    if (!wrote.has_value()) {
      scan_->Reset();
      return wrote.error();
    }
    writes += *wrote ? 1 : 0;
  }
  scan_->Reset();
  return writes;
}

}  // namespace lockstep::connectors::postgres
