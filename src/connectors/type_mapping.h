// How a column's type carries over between databases, and where the logical types of a table
// are remembered. The PostgreSQL type names are PostgreSQL's own format_type() text; the table
// of the mapping is in docs/FORMATS.md.
#pragma once

#include <string>

#include "connectors/schema.h"
#include "store/database.h"

namespace lockstep::connectors {

// The kind of value a PostgreSQL type is synced as.
enum class TypeKind {
  kInteger,  // smallint, integer, bigint: int64
  kFloat,    // real, double precision: float64 (NaN and infinities included)
  kBoolean,  // boolean: int64 0 or 1
  kBytes,    // bytea: blob
  kNumeric,  // numeric: exact decimal text ('NaN', 'Infinity' too)
  kText,     // text, varchar, char, uuid, date, timestamp(tz), interval, json, jsonb: text
  kArray,    // one-dimensional arrays of the above: JSON text
  kEnum,     // enums: the label as text
  kUnsupported,
};

// The kind of a logical type ("numeric(40,10)", "integer[]", "enum mood ('a', 'b')").
TypeKind KindOf(const std::string& logical_type);

// Fails unless `logical_type` is one this mapping supports, written as PostgreSQL's format_type()
// writes it (and "enum NAME ('label', ...)" for enums). Logical types from a peer end up in
// PostgreSQL DDL: this is what keeps a hostile one from carrying SQL along.
Status CheckLogicalType(const std::string& logical_type);

// The type name to declare in PostgreSQL for a logical type ("enum mood (...)" is "mood").
std::string PostgresTypeName(const std::string& logical_type);

// The SQLite declared type for a logical type: one whose affinity keeps every value exactly
// (numeric as TEXT, booleans as BOOLEAN holding 0 and 1, bytea as BLOB, ...).
std::string SqliteTypeFor(const std::string& logical_type);

// The PostgreSQL type for a column SQLite declared as `declared_type`, by SQLite's affinity rules:
// INTEGER affinity bigint, TEXT text, REAL double precision, BLOB (or none) bytea, NUMERIC numeric.
std::string PostgresTypeForSqlite(const std::string& declared_type);

// CREATE TABLE in SQLite for a schema that carries logical types.
std::string SqliteCreateSql(const TableSchema& schema);

// Remembers the logical types of `schema`'s columns in the store's metadata (`_lockstep_meta`,
// under "types TABLE"), so that a table later created from this database gets them back.
// REQUIRES: inside a write; the metadata is installed.
Status RememberLogicalTypes(store::Database& db, const TableSchema& schema);
// Fills in the logical types remembered for `schema`'s table, if any. Reads only.
Status RecallLogicalTypes(store::Database& db, TableSchema& schema);

}  // namespace lockstep::connectors
