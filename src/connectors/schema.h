// What Lockstep knows about a user's table in any database: its columns, their types and its
// primary key. Each connector reads it from its own catalog.
#pragma once

#include <string>
#include <vector>

namespace lockstep::connectors {

struct Column {
  std::string name;
  // As the database declares it: SQLite's declared type as written, PostgreSQL's format_type().
  std::string declared_type;
  // The PostgreSQL type the column's values stand for ("numeric(40,10)", "integer[]",
  // "timestamp with time zone", "enum mood"...), remembered wherever the table is synced so that
  // a table created from it in PostgreSQL gets it back. Empty for a column SQLite declared.
  std::string logical_type;
};

struct TableSchema {
  std::string name;
  std::vector<Column> columns;       // writable columns in table order (no generated ones)
  std::vector<std::string> key;      // primary key columns, in key order
  std::vector<std::string> non_key;  // the other writable columns
  std::string create_sql;            // the CREATE TABLE statement in the source's own dialect
};

// Whether any column carries a logical type (the table came from, or was synced with,
// PostgreSQL).
inline bool HasLogicalTypes(const TableSchema& schema) {
  for (const Column& column : schema.columns) {
    if (!column.logical_type.empty()) return true;
  }
  return false;
}

}  // namespace lockstep::connectors
