#include "connectors/sqlite/synced_table.h"

#include <algorithm>
#include <map>

#include "connectors/merge_batch.h"
#include "connectors/sqlite/capture.h"
#include "core/key.h"

namespace lockstep::connectors::sqlite {
namespace {

using store::QuoteIdentifier;
using store::Statement;

constexpr int64_t kCaptureChunk = 10'000;
constexpr size_t kRowBatch = 64;
constexpr size_t kMaxParameters = 32'766;  // SQLITE_MAX_VARIABLE_NUMBER since 3.32

std::string ColumnList(const std::vector<Column>& columns) {
  std::string list;
  for (const Column& column : columns)
    list += (list.empty() ? "" : ", ") + QuoteIdentifier(column.name);
  return list;
}

std::string KeyMatch(const std::vector<std::string>& key, int first_parameter) {
  std::string match;
  for (size_t i = 0; i < key.size(); ++i) {
    match += (i == 0 ? "" : " AND ") + QuoteIdentifier(key[i]) + " IS ?" +
             std::to_string(first_parameter + static_cast<int>(i));
  }
  return match;
}

Result<std::unique_ptr<Statement>> PrepareOwned(store::SqliteDb& db, const std::string& sql) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
  return std::make_unique<Statement>(std::move(stmt));
}

}  // namespace

Result<std::unique_ptr<SyncedTable>> SyncedTable::Prepare(store::SqliteDb& db, TableSchema schema,
                                                          store::Collection collection,
                                                          core::MergePolicy policy) {
  std::unique_ptr<SyncedTable> table(
      new SyncedTable(std::move(schema), std::move(collection), std::move(policy)));
  const TableSchema& s = table->schema_;
  for (const std::string& key : s.key) {
    auto it = std::find_if(s.columns.begin(), s.columns.end(),
                           [&](const Column& c) { return c.name == key; });
    table->key_positions_.push_back(static_cast<size_t>(it - s.columns.begin()));
  }
  const std::string name = QuoteIdentifier(s.name);
  const std::string columns = ColumnList(s.columns);
  const std::string capture = QuoteIdentifier(CaptureTableName(s.name));

  std::string placeholders;
  for (size_t i = 0; i < s.columns.size(); ++i) placeholders += (i == 0 ? "?" : ", ?");
  std::string key_list;
  for (const std::string& key : s.key)
    key_list += (key_list.empty() ? "" : ", ") + QuoteIdentifier(key);
  std::string update;
  for (const std::string& column : s.non_key) {
    update += (update.empty() ? "" : ", ") + QuoteIdentifier(column) + " = excluded." +
              QuoteIdentifier(column);
  }
  std::string keys;
  for (size_t i = 0; i < s.key.size(); ++i) keys += ", k" + std::to_string(i);

  LOCKSTEP_ASSIGN_OR_RETURN(table->select_, PrepareOwned(db, "SELECT " + columns + " FROM " + name +
                                                                 " WHERE " + KeyMatch(s.key, 1)));
  // Several rows per upsert, as many as SQLite's limit on parameters allows (up to kRowBatch).
  table->rows_per_upsert_ = std::max<size_t>(
      1, std::min(kRowBatch, kMaxParameters / std::max<size_t>(1, s.columns.size())));
  auto upsert = [&](size_t rows) {
    std::string values;
    for (size_t i = 0; i < rows; ++i) values += (i == 0 ? "(" : ", (") + placeholders + ")";
    return "INSERT INTO " + name + " (" + columns + ") VALUES " + values + " ON CONFLICT (" +
           key_list + ") DO " + (update.empty() ? "NOTHING" : "UPDATE SET " + update);
  };
  LOCKSTEP_ASSIGN_OR_RETURN(table->upsert_, PrepareOwned(db, upsert(1)));
  LOCKSTEP_ASSIGN_OR_RETURN(table->upsert_many_, PrepareOwned(db, upsert(table->rows_per_upsert_)));
  LOCKSTEP_ASSIGN_OR_RETURN(
      table->delete_, PrepareOwned(db, "DELETE FROM " + name + " WHERE " + KeyMatch(s.key, 1)));
  LOCKSTEP_ASSIGN_OR_RETURN(table->captured_, PrepareOwned(db, "SELECT id, ts" + keys + " FROM " +
                                                                   capture + " ORDER BY id LIMIT " +
                                                                   std::to_string(kCaptureChunk)));
  LOCKSTEP_ASSIGN_OR_RETURN(table->forget_captured_,
                            PrepareOwned(db, "DELETE FROM " + capture + " WHERE id <= ?"));
  LOCKSTEP_ASSIGN_OR_RETURN(table->scan_, PrepareOwned(db, "SELECT " + columns + " FROM " + name));
  // Counted only up to what makes a bulk load: a large table costs no full count.
  LOCKSTEP_ASSIGN_OR_RETURN(
      table->count_up_to_bulk_load_,
      PrepareOwned(db, "SELECT count(*) FROM (SELECT 1 FROM " + name + " LIMIT " +
                           std::to_string(store::ReplicaStore::kBulkLoadRecords) + ")"));
  return table;
}

Result<std::optional<std::vector<Value>>> SyncedTable::ReadRow(std::span<const Value> key) {
  LOCKSTEP_RETURN_IF_ERROR(Flush());
  for (size_t i = 0; i < key.size(); ++i) select_->Bind(static_cast<int>(i + 1), key[i]);
  auto row = select_->Step();
  if (!row.has_value() || !*row) {
    select_->Reset();
    if (!row.has_value()) return row.error();
    return std::optional<std::vector<Value>>();
  }
  std::vector<Value> values;
  values.reserve(schema_.columns.size());
  for (size_t i = 0; i < schema_.columns.size(); ++i)
    values.push_back(select_->Column(static_cast<int>(i)));
  select_->Reset();
  return std::optional<std::vector<Value>>(std::move(values));
}

Status SyncedTable::WriteRow(const core::Record& record) { return WriteRowFrom(record, nullptr); }

Status SyncedTable::TakeRow(core::Record& record) { return WriteRowFrom(record, &record); }

Status SyncedTable::WriteRowFrom(const core::Record& record, core::Record* movable) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Value> key, core::DecodeKey(record.key()));
  if (key.size() != schema_.key.size()) {
    return DataLoss("record key of table '" + schema_.name + "' has " + std::to_string(key.size()) +
                    " columns, the table's primary key " + std::to_string(schema_.key.size()));
  }
  if (!core::Exists(record, policy_)) {
    LOCKSTEP_RETURN_IF_ERROR(Flush());  // an upsert of the same row may be waiting
    for (size_t i = 0; i < key.size(); ++i) delete_->Bind(static_cast<int>(i + 1), key[i]);
    return delete_->Run().WithContext("deleting from '" + schema_.name + "'");
  }
  const size_t first = pending_rows_.size();
  const auto& fields = record.fields();
  for (size_t i = 0; i < schema_.columns.size(); ++i) {
    const std::string& name = schema_.columns[i].name;
    const size_t index = FieldIndex(record, i);
    if (index == fields.size()) {
      pending_rows_.push_back(Value::Null());
    } else if (movable != nullptr) {
      // The values move into the batch: text and blobs are not copied once more.
      pending_rows_.push_back(
          core::TakeVisibleValue(movable->mutable_fields()[index].second, name, policy_));
    } else {
      pending_rows_.push_back(core::VisibleValue(fields[index].second, name, policy_));
    }
  }
  // The key columns come from the key itself: a record may lack a field for them only if it was
  // written by a peer that never set them, which a key column always is.
  for (size_t i = 0; i < key.size(); ++i)
    pending_rows_[first + key_positions_[i]] = std::move(key[i]);
  const size_t rows = pending_rows_.size() / schema_.columns.size();
  return rows >= rows_per_upsert_ ? Flush() : Status::Ok();
}

size_t SyncedTable::FieldIndex(const core::Record& record, size_t column) {
  const auto& fields = record.fields();
  const std::string& name = schema_.columns[column].name;
  if (field_guess_.size() != schema_.columns.size()) field_guess_.assign(schema_.columns.size(), 0);
  size_t& guess = field_guess_[column];
  if (guess < fields.size() && fields[guess].first == name) return guess;
  auto it = std::lower_bound(
      fields.begin(), fields.end(), name,
      [](const core::Record::NamedField& field, const std::string& n) { return field.first < n; });
  if (it == fields.end() || it->first != name) return fields.size();
  guess = static_cast<size_t>(it - fields.begin());
  return guess;
}

Status SyncedTable::Flush() {
  const size_t width = schema_.columns.size();
  size_t done = 0;
  const size_t total = pending_rows_.size() / width;
  while (done < total) {
    const size_t rows = total - done >= rows_per_upsert_ ? rows_per_upsert_ : 1;
    store::Statement& stmt = rows == rows_per_upsert_ ? *upsert_many_ : *upsert_;
    // pending_rows_ holds the values until the statement has run (and been reset).
    for (size_t i = 0; i < rows * width; ++i) {
      stmt.BindInPlace(static_cast<int>(i + 1), pending_rows_[done * width + i]);
    }
    Status status = stmt.Run();
    if (!status.ok()) {
      pending_rows_.clear();
      return status.WithContext("writing to '" + schema_.name + "'");
    }
    done += rows;
  }
  pending_rows_.clear();
  return Status::Ok();
}

Result<bool> SyncedTable::StampRow(store::ReplicaStore& store, const std::string& key,
                                   std::optional<store::StoredRecord> stored,
                                   const std::optional<std::vector<Value>>& row, int64_t millis) {
  return connectors::StampRow(store, schema_, collection_.id, policy_, key, std::move(stored), row,
                              millis);
}

Result<size_t> SyncedTable::StampCaptured(store::ReplicaStore& store) {
  size_t writes = 0;
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<size_t> chunk, StampCapturedChunk(store));
    if (!chunk.has_value()) return writes;
    writes += *chunk;
  }
}

Result<std::optional<size_t>> SyncedTable::StampCapturedChunk(store::ReplicaStore& store) {
  size_t writes = 0;
  {
    // One chunk: the latest capture time of each distinct key.
    std::map<std::string, std::pair<std::vector<Value>, int64_t>> keys;
    int64_t last_id = -1;
    for (;;) {
      auto row = captured_->Step();
      if (!row.has_value()) {
        captured_->Reset();
        return row.error().WithContext("reading captured changes of '" + schema_.name + "'");
      }
      if (!*row) break;
      last_id = captured_->ColumnInt(0);
      std::vector<Value> key;
      for (size_t i = 0; i < schema_.key.size(); ++i)
        key.push_back(captured_->Column(static_cast<int>(i + 2)));
      std::string encoded = core::EncodeKey(key);
      auto& entry = keys[std::move(encoded)];
      entry.first = std::move(key);
      entry.second = std::max(entry.second, captured_->ColumnInt(1));
    }
    captured_->Reset();
    if (last_id < 0) return std::optional<size_t>();
    // Stamp in order of capture time (then key). The clock never goes back, so a key stamped
    // after a later write would take that write's time and could beat a newer write elsewhere.
    std::vector<const decltype(keys)::value_type*> order;
    order.reserve(keys.size());
    for (const auto& item : keys) order.push_back(&item);
    std::stable_sort(order.begin(), order.end(), [](const auto* x, const auto* y) {
      return x->second.second < y->second.second;
    });
    for (const auto* captured : order) {
      const auto& [encoded, entry] = *captured;
      LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::vector<Value>> row, ReadRow(entry.first));
      LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::StoredRecord> stored,
                                store.Get(collection_.id, encoded));
      LOCKSTEP_ASSIGN_OR_RETURN(bool wrote,
                                StampRow(store, encoded, std::move(stored), row, entry.second));
      writes += wrote ? 1 : 0;
    }
    LOCKSTEP_RETURN_IF_ERROR(forget_captured_->BindInt(1, last_id).Run());
  }
  return std::optional<size_t>(writes);
}

Result<size_t> SyncedTable::StampAllRows(store::ReplicaStore& store, int64_t now_millis) {
  {
    auto counted = count_up_to_bulk_load_->Step();
    const size_t rows = counted.has_value() && *counted
                            ? static_cast<size_t>(count_up_to_bulk_load_->ColumnInt(0))
                            : 0;
    count_up_to_bulk_load_->Reset();
    if (!counted.has_value()) return counted.error().WithContext("counting '" + schema_.name + "'");
    LOCKSTEP_RETURN_IF_ERROR(store.DropItemIndexForBulkLoad(rows));
  }
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
    for (size_t i = 0; i < schema_.columns.size(); ++i)
      row.push_back(scan_->Column(static_cast<int>(i)));
    std::vector<Value> key;
    for (size_t position : key_positions_) key.push_back(row[position]);
    // A new collection has no stored records: no need to look any up.
    auto wrote = StampRow(store, core::EncodeKey(key), std::nullopt, row, now_millis);
    if (!wrote.has_value()) {
      scan_->Reset();
      return wrote.error();
    }
    writes += *wrote ? 1 : 0;
  }
  scan_->Reset();
  return writes;
}

}  // namespace lockstep::connectors::sqlite
