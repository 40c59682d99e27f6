#include "connectors/sqlite/capture.h"

#include <set>

#include "core/key.h"

namespace lockstep::connectors::sqlite {
namespace {

using store::QuoteIdentifier;

constexpr std::string_view kNowMillis =
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

std::string KeyColumns(size_t count) {
  std::string columns;
  for (size_t i = 0; i < count; ++i) columns += ", k" + std::to_string(i);
  return columns;
}

// "NEW.a, NEW.b" for row = "NEW".
std::string KeyValues(const TableSchema& schema, std::string_view row) {
  std::string values;
  for (const std::string& column : schema.key) {
    values += ", " + std::string(row) + "." + QuoteIdentifier(column);
  }
  return values;
}

std::string Insert(const std::string& capture, const TableSchema& schema, std::string_view row) {
  return "INSERT INTO " + capture + "(ts" + KeyColumns(schema.key.size()) + ") VALUES (" +
         std::string(kNowMillis) + KeyValues(schema, row) + ");";
}

}  // namespace

std::string CaptureTableName(const std::string& table) { return "_lockstep_capture_" + table; }

Result<std::vector<std::string>> CapturedKeys(store::SqliteDb& db, const std::string& table) {
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement exists,
                            db.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                       "name = ?"));
  exists.BindText(1, CaptureTableName(table));
  LOCKSTEP_ASSIGN_OR_RETURN(bool found, exists.Step());
  std::vector<std::string> keys;
  if (!found) return keys;
  LOCKSTEP_ASSIGN_OR_RETURN(
      store::Statement stmt,
      db.Prepare("SELECT * FROM " + QuoteIdentifier(CaptureTableName(table)) + " ORDER BY id"));
  std::set<std::string> seen;
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    std::vector<Value> key;
    for (int i = 2; i < stmt.column_count(); ++i) key.push_back(stmt.Column(i));  // id, ts, k0..
    std::string encoded = core::EncodeKey(key);
    if (seen.insert(encoded).second) keys.push_back(std::move(encoded));
  }
  return keys;
}

Status InstallCapture(store::SqliteDb& db, const TableSchema& schema) {
  const std::string capture = QuoteIdentifier(CaptureTableName(schema.name));
  const std::string table = QuoteIdentifier(schema.name);
  auto trigger = [&](std::string_view suffix) {
    return QuoteIdentifier("_lockstep_" + schema.name + "_" + std::string(suffix));
  };
  // Key columns without declared types keep every storage class exactly as written.
  std::string key_changed;
  for (const std::string& column : schema.key) {
    if (!key_changed.empty()) key_changed += " OR ";
    key_changed += "OLD." + QuoteIdentifier(column) + " IS NOT NEW." + QuoteIdentifier(column);
  }
  std::string sql = "CREATE TABLE IF NOT EXISTS " + capture +
                    "(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL" + KeyColumns(schema.key.size()) +
                    ");\n";
  sql += "CREATE TRIGGER IF NOT EXISTS " + trigger("insert") + " AFTER INSERT ON " + table +
         " BEGIN " + Insert(capture, schema, "NEW") + " END;\n";
  // An update that changes the key also removes the old key: capture both.
  sql += "CREATE TRIGGER IF NOT EXISTS " + trigger("update") + " AFTER UPDATE ON " + table +
         " BEGIN " + Insert(capture, schema, "NEW") + " INSERT INTO " + capture + "(ts" +
         KeyColumns(schema.key.size()) + ") SELECT " + std::string(kNowMillis) +
         KeyValues(schema, "OLD") + " WHERE " + key_changed + "; END;\n";
  sql += "CREATE TRIGGER IF NOT EXISTS " + trigger("delete") + " AFTER DELETE ON " + table +
         " BEGIN " + Insert(capture, schema, "OLD") + " END;\n";
  return db.Exec(sql).WithContext("installing capture triggers on '" + schema.name + "'");
}

}  // namespace lockstep::connectors::sqlite
