#include "capture_stand_in.h"

namespace lockstep::bench {
namespace {

using store::QuoteIdentifier;

std::string CaptureTable(const PgbenchTable& table) { return "_lockstep_capture_" + table.name; }

// "k0, k1" for a two-column key.
std::string KeyColumns(const PgbenchTable& table) {
  std::string columns;
  for (size_t i = 0; i < table.key.size(); ++i) {
    columns += (i == 0 ? "k" : ", k") + std::to_string(i);
  }
  return columns;
}

// "NEW.a, NEW.b" for row "NEW".
std::string KeyValues(const PgbenchTable& table, const std::string& row) {
  std::string values;
  for (const std::string& column : table.key) {
    values += (values.empty() ? "" : ", ") + row + "." + QuoteIdentifier(column);
  }
  return values;
}

// An INSERT of the key of `row` (NEW or OLD) into the capture table; `op` is an SQL expression.
std::string Insert(const PgbenchTable& table, const std::string& op, const std::string& row) {
  return "INSERT INTO " + QuoteIdentifier(CaptureTable(table)) + " (op, at, " + KeyColumns(table) +
         ") VALUES (" + op + ", clock_timestamp(), " + KeyValues(table, row) + ");";
}

}  // namespace

std::string StandInCaptureSql(const PgbenchTable& table) {
  const std::string capture = QuoteIdentifier(CaptureTable(table));
  const std::string function = QuoteIdentifier("_lockstep_capture_" + table.name + "_fn");
  // pgbench's keys are all integers; the connector will copy each key column's own type.
  std::string key_columns;
  std::string key_changed;
  for (size_t i = 0; i < table.key.size(); ++i) {
    key_columns += ", k" + std::to_string(i) + " bigint NOT NULL";
    const std::string column = QuoteIdentifier(table.key[i]);
    key_changed += (i == 0 ? "" : " OR ") + ("OLD." + column + " IS DISTINCT FROM NEW." + column);
  }
  std::string sql = "CREATE TABLE " + capture +
                    " (seq bigserial PRIMARY KEY, op \"char\" NOT NULL, at timestamptz NOT NULL" +
                    key_columns + ");\n";
  // op: 'i', 'u' or 'd'. An update that changes the key also removes the old key: capture both.
  sql += "CREATE FUNCTION " + function + "() RETURNS trigger LANGUAGE plpgsql AS $fn$\nBEGIN\n";
  sql += "  IF current_setting('lockstep.applying', true) = 'on' THEN RETURN NULL; END IF;\n";
  sql += "  IF TG_OP = 'DELETE' THEN\n    " + Insert(table, "'d'", "OLD") + "\n";
  sql += "  ELSE\n    " + Insert(table, "lower(left(TG_OP, 1))", "NEW") + "\n";
  sql += "    IF TG_OP = 'UPDATE' AND (" + key_changed + ") THEN\n      " +
         Insert(table, "'d'", "OLD") + "\n    END IF;\n  END IF;\n";
  sql += "  PERFORM pg_notify('lockstep', TG_TABLE_NAME);\n  RETURN NULL;\nEND\n$fn$;\n";
  sql += "CREATE TRIGGER _lockstep_capture AFTER INSERT OR UPDATE OR DELETE ON " +
         QuoteIdentifier(table.name) + " FOR EACH ROW EXECUTE FUNCTION " + function + "();\n";
  return sql;
}

void InstallCapture(const std::string& url, std::span<const PgbenchTable> tables) {
  // TODO(issue 6): once src/connectors/postgres exists, install Lockstep's own capture instead:
  // open the database with the connector (connectors::postgres's Source for `url`) and call
  // Source::Attach(schemas, "") (src/connectors/source.h) with the schemas of `tables`; Attach
  // also stamps the rows already there, so it belongs before the timed pgbench run, as here.
  // CapturedChanges() then reads the connector's capture tables.
  PgConnection db = Connect(url);
  for (const PgbenchTable& table : tables) Exec(*db, StandInCaptureSql(table));
}

int64_t CapturedChanges(const std::string& url, std::span<const PgbenchTable> tables) {
  PgConnection db = Connect(url);
  int64_t changes = 0;
  for (const PgbenchTable& table : tables) {
    changes += QueryInt(*db, "SELECT count(*) FROM " + QuoteIdentifier(CaptureTable(table)));
  }
  return changes;
}

}  // namespace lockstep::bench
