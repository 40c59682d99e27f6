// What Lockstep needs to know about a user's SQLite table: its columns and primary key.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "store/sqlite_db.h"

namespace lockstep::connectors::sqlite {

struct Column {
  std::string name;
  std::string declared_type;  // as written in CREATE TABLE; SQLite stores any class anyway
};

struct TableSchema {
  std::string name;
  std::vector<Column> columns;       // writable columns in table order (no generated ones)
  std::vector<std::string> key;      // primary key columns, in key order
  std::vector<std::string> non_key;  // the other writable columns
  std::string create_sql;            // the CREATE TABLE statement from sqlite_master
};

// The user's tables that can be synced: every table except SQLite's and Lockstep's own, in name
// order. Tables without a primary key are included; ReadTableSchema refuses them.
Result<std::vector<std::string>> ListUserTables(store::SqliteDb& db);

// The schema of `table`, or nullopt when it does not exist. Fails with kFailedPrecondition when
// it has no declared primary key (a rowid alone is not stable across VACUUM).
Result<std::optional<TableSchema>> ReadTableSchema(store::SqliteDb& db, const std::string& table);

// Fails with kFailedPrecondition, naming the difference, unless both tables have the same columns
// and the same primary key.
Status CheckSameShape(const TableSchema& a, const std::string& a_name, const TableSchema& b,
                      const std::string& b_name);

}  // namespace lockstep::connectors::sqlite
