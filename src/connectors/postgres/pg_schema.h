// What Lockstep needs to know about a PostgreSQL table: its columns with their logical types, its
// primary key, and how each column's values are read as Lockstep values and written back.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "connectors/schema.h"
#include "connectors/type_mapping.h"
#include "store/database.h"

namespace lockstep::connectors::postgres {

// A table named as Lockstep names it: "table" for the public schema, "schema.table" otherwise.
struct TableName {
  std::string schema;
  std::string table;
  std::string Quoted() const;  // "schema"."table"
};
TableName SplitName(const std::string& name);

// The tables of the public schema (not Lockstep's own), in name order. Tables without a primary
// key are included; ReadTableSchema refuses them.
// `cache`, when given, keeps the query prepared (a node that syncs every table lists them before
// each read of its log).
Result<std::vector<std::string>> ListUserTables(store::Database& db,
                                                std::unique_ptr<store::Statement>* cache = nullptr);

// The schema of `name`, or nullopt when there is no such table. Fails with kFailedPrecondition
// when it has no primary key, or a column of a type Lockstep does not sync (naming the column).
// `cache`, when given, keeps the catalog query prepared for the next call on the same connection
// (preparing it is a round trip, and planning it costs more than running it).
Result<std::optional<TableSchema>> ReadTableSchema(
    store::Database& db, const std::string& name,
    std::unique_ptr<store::Statement>* cache = nullptr);
// Sends ReadTableSchema's query for `name` ahead on `cache` (Statement::Send): a ReadTableSchema
// with the same cache then reads its answer, so that the schemas of several tables, each with its
// own cache, come back in one round trip.
Status SendTableSchemaQuery(store::Database& db, const std::string& name,
                            std::unique_ptr<store::Statement>& cache);

// CREATE TABLE (and CREATE TYPE for its enums) in PostgreSQL for `schema`: its logical types where
// it has them, else the types for SQLite's declared types.
std::string PostgresCreateSql(const TableSchema& schema);

// The kind of value `column` is synced as (its logical type's, or for a column SQLite declared,
// that of the PostgreSQL type it gets).
TypeKind KindOfColumn(const Column& column);

// The SQL expression that reads `column` (of a row aliased `alias`) as a Lockstep value: int8,
// float8, bytea or text.
std::string ReadExpression(const Column& column, const std::string& alias);
// The SQL expression that turns parameter `parameter` (?N) into a value of the column's type.
std::string WriteExpression(const Column& column, int parameter);

}  // namespace lockstep::connectors::postgres
