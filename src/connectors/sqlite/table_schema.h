// What Lockstep needs to know about a user's SQLite table: its columns and primary key.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "connectors/schema.h"
#include "store/sqlite_db.h"

namespace lockstep::connectors::sqlite {

using Column = connectors::Column;
using TableSchema = connectors::TableSchema;

// The user's tables that can be synced: every table except SQLite's and Lockstep's own, in name
// order. Tables without a primary key are included; ReadTableSchema refuses them.
Result<std::vector<std::string>> ListUserTables(store::SqliteDb& db);

// The schema of `table`, or nullopt when it does not exist. Fails with kFailedPrecondition when
// it has no declared primary key (a rowid alone is not stable across VACUUM).
Result<std::optional<TableSchema>> ReadTableSchema(store::SqliteDb& db, const std::string& table);

// The schema a CREATE TABLE statement in SQLite's dialect makes (a peer over the network sends
// no more than that and the columns' logical types), read by running it in a scratch database.
Result<TableSchema> ReadCreateStatement(const std::string& table, const std::string& create_sql);

// Fails with kFailedPrecondition, naming the difference, unless both tables have the same columns
// and the same primary key.
Status CheckSameShape(const TableSchema& a, const std::string& a_name, const TableSchema& b,
                      const std::string& b_name);

}  // namespace lockstep::connectors::sqlite
