#include "connectors/postgres/pg_capture.h"

#include <algorithm>
#include <set>

#include "connectors/postgres/pg_schema.h"
#include "connectors/postgres/pg_wake.h"
#include "connectors/type_mapping.h"
#include "core/key.h"
#include "store/postgres_db.h"

namespace lockstep::connectors::postgres {
namespace {

using store::QuoteIdentifier;
using store::Statement;

std::string KeyType(const TableSchema& schema, const std::string& key) {
  for (const Column& column : schema.columns) {
    if (column.name == key) return PostgresTypeName(column.logical_type);
  }
  return "text";
}

// "NEW"."a", "NEW"."b" for row = "NEW".
std::string KeyValues(const TableSchema& schema, const std::string& row) {
  std::string values;
  for (const std::string& key : schema.key) values += ", " + row + "." + QuoteIdentifier(key);
  return values;
}

}  // namespace

std::string CaptureTableName(int64_t collection) {
  return "_lockstep_capture_" + std::to_string(collection);
}

Result<std::vector<std::string>> CapturedKeys(store::Database& db, const TableSchema& schema,
                                              int64_t collection) {
  const std::string capture = CaptureTableName(collection);
  LOCKSTEP_ASSIGN_OR_RETURN(Statement exists,
                            db.Prepare("SELECT (to_regclass(?) IS NOT NULL)::int4"));
  LOCKSTEP_ASSIGN_OR_RETURN(bool found, exists.BindText(1, capture).Step());
  std::vector<std::string> keys;
  if (!found || exists.ColumnInt(0) == 0) return keys;
  // Read as stamping reads them (ReadExpression), so that the keys encode alike.
  std::string reads;
  for (size_t i = 0; i < schema.key.size(); ++i) {
    auto column = std::find_if(schema.columns.begin(), schema.columns.end(),
                               [&](const Column& c) { return c.name == schema.key[i]; });
    if (column == schema.columns.end()) return DataLoss("no key column " + schema.key[i]);
    Column as_captured = *column;
    as_captured.name = "k" + std::to_string(i);
    reads += (i == 0 ? "" : ", ") + ReadExpression(as_captured, "c");
  }
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare("SELECT " + reads + " FROM " + QuoteIdentifier(capture) + " c ORDER BY c.id"));
  std::set<std::string> seen;
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    std::vector<Value> key;
    for (int i = 0; i < stmt.column_count(); ++i) key.push_back(stmt.Column(i));
    std::string encoded = core::EncodeKey(key);
    if (seen.insert(encoded).second) keys.push_back(std::move(encoded));
  }
  return keys;
}

Status InstallCapture(store::Database& db, const TableSchema& schema, int64_t collection) {
  const std::string capture = QuoteIdentifier(CaptureTableName(collection));
  const std::string function = QuoteIdentifier(CaptureTableName(collection));
  const std::string table = SplitName(schema.name).Quoted();
  std::string key_columns;
  std::string key_names;
  for (size_t i = 0; i < schema.key.size(); ++i) {
    key_columns += ", k" + std::to_string(i) + " " + KeyType(schema, schema.key[i]);
    key_names += ", k" + std::to_string(i);
  }
  std::string old_key = "(", new_key = "(";
  for (size_t i = 0; i < schema.key.size(); ++i) {
    old_key += (i == 0 ? "OLD." : ", OLD.") + QuoteIdentifier(schema.key[i]);
    new_key += (i == 0 ? "NEW." : ", NEW.") + QuoteIdentifier(schema.key[i]);
  }
  old_key += ")";
  new_key += ")";
  const std::string now = "(extract(epoch FROM clock_timestamp()) * 1000)::int8";
  auto insert = [&](const std::string& row) {
    return "INSERT INTO " + capture + "(ts" + key_names + ") VALUES (" + now +
           KeyValues(schema, row) + "); ";
  };
  const std::string lock = std::to_string(store::PostgresDb::kRowsLock);
  std::string sql = "CREATE TABLE IF NOT EXISTS " + capture +
                    " (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts int8 NOT NULL" +
                    key_columns + ");\n";
  // Every attach makes the flag and the functions again, so a database attached by an earlier
  // Lockstep (a NOTIFY per row, no flag) takes this scheme as soon as an engine attaches it.
  sql += CreateWakeFlagSql();
  // Statement level, before any row is touched: the shared side of the writer lock, then the
  // wake-up, once per statement and only while an engine sleeps (pg_wake.h, point 1: the flag is
  // read after the lock is held).
  const std::string lock_and_wake =
      "PERFORM pg_advisory_xact_lock_shared(" + lock + "); " + NotifyIfAsleepSql();
  sql +=
      "CREATE OR REPLACE FUNCTION _lockstep_writer_lock() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN IF current_setting('lockstep.applying', true) IS DISTINCT FROM 'on' THEN " +
      lock_and_wake + "END IF; RETURN NULL; END $$;\n";
  sql += "CREATE OR REPLACE FUNCTION " + function +
         "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
         "IF current_setting('lockstep.applying', true) = 'on' THEN RETURN NULL; END IF; "
         "IF TG_OP <> 'DELETE' THEN " +
         insert("NEW") +
         "END IF; "
         // An update that changes the key also removes the old key: capture both.
         "IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND " +
         old_key + " IS DISTINCT FROM " + new_key + ") THEN " + insert("OLD") +
         "END IF; RETURN NULL; END $$;\n";
  sql += "DROP TRIGGER IF EXISTS _lockstep_lock ON " + table + ";\n";
  sql += "CREATE TRIGGER _lockstep_lock BEFORE INSERT OR UPDATE OR DELETE ON " + table +
         " FOR EACH STATEMENT EXECUTE FUNCTION _lockstep_writer_lock();\n";
  // TRUNCATE fires no row trigger: every key is captured before the rows go, and is stamped as
  // a deletion like any captured key whose row is gone. The shared writer lock is taken first, as
  // for any other statement.
  std::string all_keys;
  for (const std::string& key : schema.key) all_keys += ", " + QuoteIdentifier(key);
  const std::string truncate = QuoteIdentifier("_lockstep_truncate_" + std::to_string(collection));
  sql += "CREATE OR REPLACE FUNCTION " + truncate +
         "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
         "IF current_setting('lockstep.applying', true) = 'on' THEN RETURN NULL; END IF; " +
         lock_and_wake + "INSERT INTO " + capture + "(ts" + key_names + ") SELECT " + now +
         all_keys + " FROM ONLY " + table + "; RETURN NULL; END $$;\n";
  sql += "DROP TRIGGER IF EXISTS _lockstep_truncate ON " + table + ";\n";
  sql += "CREATE TRIGGER _lockstep_truncate BEFORE TRUNCATE ON " + table +
         " FOR EACH STATEMENT EXECUTE FUNCTION " + truncate + "();\n";
  sql += "DROP TRIGGER IF EXISTS _lockstep_capture ON " + table + ";\n";
  sql += "CREATE TRIGGER _lockstep_capture AFTER INSERT OR UPDATE OR DELETE ON " + table +
         " FOR EACH ROW EXECUTE FUNCTION " + function + "();\n";
  return db.Exec(sql).WithContext("installing capture triggers on '" + schema.name + "'");
}

}  // namespace lockstep::connectors::postgres
