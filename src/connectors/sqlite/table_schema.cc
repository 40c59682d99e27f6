#include "connectors/sqlite/table_schema.h"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>

namespace lockstep::connectors::sqlite {
namespace {

std::string Join(const std::vector<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) joined += (joined.empty() ? "" : ", ") + name;
  return joined;
}

std::vector<std::string> ColumnNames(const TableSchema& schema) {
  std::vector<std::string> names;
  for (const Column& column : schema.columns) names.push_back(column.name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

Result<std::vector<std::string>> ListUserTables(store::SqliteDb& db) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      store::Statement stmt,
      db.Prepare("SELECT name FROM sqlite_master WHERE type = 'table' "
                 "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                 "AND name NOT LIKE '\\_lockstep\\_%' ESCAPE '\\' ORDER BY name"));
  std::vector<std::string> tables;
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    tables.emplace_back(stmt.ColumnText(0));
  }
  return tables;
}

Result<std::optional<TableSchema>> ReadTableSchema(store::SqliteDb& db, const std::string& table) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      store::Statement master,
      db.Prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?"));
  master.BindText(1, table);
  LOCKSTEP_ASSIGN_OR_RETURN(bool found, master.Step());
  if (!found) return std::optional<TableSchema>();
  TableSchema schema{table, {}, {}, {}, std::string(master.ColumnText(0))};
  if (schema.create_sql.find("VIRTUAL") != std::string::npos) {
    return FailedPrecondition("table '" + table + "' is a virtual table");
  }

  // hidden: 0 ordinary, 1 hidden column of a virtual table, 2 and 3 generated columns.
  LOCKSTEP_ASSIGN_OR_RETURN(
      store::Statement info,
      db.Prepare("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid"));
  info.BindText(1, table);
  std::vector<std::pair<int64_t, std::string>> key;
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, info.Step());
    if (!row) break;
    if (info.ColumnInt(3) != 0) continue;
    Column column{std::string(info.ColumnText(0)), std::string(info.ColumnText(1)), {}};
    if (info.ColumnInt(2) > 0) {
      key.emplace_back(info.ColumnInt(2), column.name);
    } else {
      schema.non_key.push_back(column.name);
    }
    schema.columns.push_back(std::move(column));
  }
  if (key.empty()) {
    return FailedPrecondition("table '" + table +
                              "' has no primary key; lockstep syncs tables by primary key");
  }
  std::sort(key.begin(), key.end());
  for (auto& [position, name] : key) schema.key.push_back(std::move(name));
  return std::optional<TableSchema>(std::move(schema));
}

Result<TableSchema> ReadCreateStatement(const std::string& table, const std::string& create_sql) {
  // The statement comes from a peer and is later run in a user's database: it must be exactly
  // one statement, and it runs first where it can touch nothing (in memory, no ATTACH).
  const std::string context = "the CREATE statement of '" + table + "'";
  LOCKSTEP_ASSIGN_OR_RETURN(store::SqliteDb scratch, store::SqliteDb::OpenInMemory());
  sqlite3_limit(scratch.handle(), SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(scratch.handle(), create_sql.c_str(),
                              static_cast<int>(create_sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK || stmt == nullptr) {
    sqlite3_finalize(stmt);
    return InvalidArgument(context + " does not parse: " + sqlite3_errmsg(scratch.handle()));
  }
  const bool one_statement = std::all_of(tail, create_sql.c_str() + create_sql.size(), [](char c) {
    return c == ';' || std::isspace(static_cast<unsigned char>(c)) != 0;
  });
  rc = one_statement ? sqlite3_step(stmt) : SQLITE_MISUSE;
  sqlite3_finalize(stmt);
  if (!one_statement) return InvalidArgument(context + " holds more than one statement");
  if (rc != SQLITE_DONE) {
    return InvalidArgument(context + " fails: " + sqlite3_errmsg(scratch.handle()));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> schema, ReadTableSchema(scratch, table));
  if (!schema.has_value()) return InvalidArgument(context + " creates no table of that name");
  return std::move(*schema);
}

Status CheckSameShape(const TableSchema& a, const std::string& a_name, const TableSchema& b,
                      const std::string& b_name) {
  const auto a_columns = ColumnNames(a);
  const auto b_columns = ColumnNames(b);
  if (a_columns != b_columns) {
    return FailedPrecondition("table '" + a.name + "' has different columns in " + a_name + " (" +
                              Join(a_columns) + ") and " + b_name + " (" + Join(b_columns) + ")");
  }
  if (a.key != b.key) {
    return FailedPrecondition("table '" + a.name + "' has a different primary key in " + a_name +
                              " (" + Join(a.key) + ") and " + b_name + " (" + Join(b.key) + ")");
  }
  return Status::Ok();
}

}  // namespace lockstep::connectors::sqlite
