#include "connectors/sqlite/capture.h"

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
