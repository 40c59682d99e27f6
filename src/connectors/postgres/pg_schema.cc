#include "connectors/postgres/pg_schema.h"

#include <algorithm>

#include "connectors/type_mapping.h"

namespace lockstep::connectors::postgres {
namespace {

using store::QuoteIdentifier;

// The logical type of a column SQLite declared.
std::string LogicalTypeOf(const Column& column) {
  return column.logical_type.empty() ? PostgresTypeForSqlite(column.declared_type)
                                     : column.logical_type;
}

}  // namespace

std::string TableName::Quoted() const {
  return QuoteIdentifier(schema) + "." + QuoteIdentifier(table);
}

TableName SplitName(const std::string& name) {
  const size_t dot = name.find('.');
  if (dot == std::string::npos) return {"public", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

Result<std::vector<std::string>> ListUserTables(store::Database& db,
                                                std::unique_ptr<store::Statement>* cache) {
  std::unique_ptr<store::Statement> own;
  LOCKSTEP_ASSIGN_OR_RETURN(
      store::Statement * stmt,
      store::PrepareCached(
          db, cache != nullptr ? *cache : own,
          "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
          "AND c.relname NOT LIKE '\\_lockstep\\_%' ORDER BY c.relname COLLATE \"C\""));
  std::vector<std::string> tables;
  for (;;) {
    auto row = stmt->Step();
    if (!row.has_value()) {
      stmt->Reset();
      return row.error();
    }
    if (!*row) break;
    tables.emplace_back(stmt->ColumnText(0));
  }
  stmt->Reset();
  return tables;
}

namespace {

// Per column: name, type as declared, the type without modifier, its kind (e enum, category A
// array), the array element's kind, the enum's labels, the position in the primary key.
Result<store::Statement*> SchemaQuery(store::Database& db,
                                      std::unique_ptr<store::Statement>& slot) {
  return store::PrepareCached(
      db, slot,
      "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typtype, t.typcategory, "
      "coalesce(e.typtype, ''), "
      "(SELECT string_agg(quote_literal(enumlabel), ', ' ORDER BY enumsortorder) "
      " FROM pg_enum WHERE enumtypid = a.atttypid), "
      "coalesce((SELECT array_position(i.indkey::int2[], a.attnum) + 1 - "
      "  array_lower(i.indkey::int2[], 1) FROM pg_index i "
      "  WHERE i.indrelid = c.oid AND i.indisprimary), 0), a.attgenerated <> '' "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_attribute a ON a.attrelid = c.oid JOIN pg_type t ON t.oid = a.atttypid "
      "LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' "
      "WHERE n.nspname = ? AND c.relname = ? AND c.relkind IN ('r', 'p') AND a.attnum > 0 "
      "AND NOT a.attisdropped ORDER BY a.attnum");
}

}  // namespace

Status SendTableSchemaQuery(store::Database& db, const std::string& name,
                            std::unique_ptr<store::Statement>& cache) {
  const TableName table = SplitName(name);
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement * stmt, SchemaQuery(db, cache));
  stmt->BindText(1, table.schema).BindText(2, table.table).Send();
  return Status::Ok();
}

Result<std::optional<TableSchema>> ReadTableSchema(store::Database& db, const std::string& name,
                                                   std::unique_ptr<store::Statement>* cache) {
  const TableName table = SplitName(name);
  std::unique_ptr<store::Statement> own;
  std::unique_ptr<store::Statement>& slot = cache != nullptr ? *cache : own;
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement * prepared, SchemaQuery(db, slot));
  store::Statement& stmt = *prepared;
  // Reset whatever way this returns, for the next call.
  struct ResetAtEnd {
    store::Statement& stmt;
    ~ResetAtEnd() { stmt.Reset(); }
  } reset_at_end{stmt};
  stmt.BindText(1, table.schema).BindText(2, table.table);
  TableSchema schema{name, {}, {}, {}, {}};
  std::vector<std::pair<int64_t, std::string>> key;
  bool found = false;
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    found = true;
    if (stmt.ColumnInt(7) != 0) continue;  // generated: not written, not synced
    Column column{std::string(stmt.ColumnText(0)), std::string(stmt.ColumnText(1)), {}};
    const std::string typtype(stmt.ColumnText(2));
    const std::string element_typtype(stmt.ColumnText(4));
    if (typtype == "e") {
      column.logical_type =
          "enum " + column.declared_type + " (" + std::string(stmt.ColumnText(5)) + ")";
    } else if (element_typtype != "e") {
      column.logical_type = column.declared_type;
    }
    if (column.logical_type.empty() || KindOf(column.logical_type) == TypeKind::kUnsupported) {
      return FailedPrecondition("column '" + column.name + "' of table '" + name + "' has type " +
                                column.declared_type + ", which lockstep cannot sync");
    }
    if (stmt.ColumnInt(6) > 0) {
      key.emplace_back(stmt.ColumnInt(6), column.name);
    } else {
      schema.non_key.push_back(column.name);
    }
    schema.columns.push_back(std::move(column));
  }
  if (!found) return std::optional<TableSchema>();
  if (key.empty()) {
    return FailedPrecondition("table '" + name +
                              "' has no primary key; lockstep syncs tables by primary key");
  }
  std::sort(key.begin(), key.end());
  for (auto& [position, column] : key) schema.key.push_back(std::move(column));
  schema.create_sql = PostgresCreateSql(schema);
  return std::optional<TableSchema>(std::move(schema));
}

std::string PostgresCreateSql(const TableSchema& schema) {
  std::string sql;
  // Enum types first, unless they exist already.
  for (const Column& column : schema.columns) {
    if (KindOf(column.logical_type) != TypeKind::kEnum) continue;
    const std::string labels = column.logical_type.substr(column.logical_type.find(" (") + 1);
    sql += "DO $$ BEGIN CREATE TYPE " + PostgresTypeName(column.logical_type) + " AS ENUM " +
           labels + "; EXCEPTION WHEN duplicate_object THEN NULL; END $$;\n";
  }
  sql += "CREATE TABLE " + SplitName(schema.name).Quoted() + " (";
  for (const Column& column : schema.columns) {
    const bool in_key =
        std::find(schema.key.begin(), schema.key.end(), column.name) != schema.key.end();
    sql += QuoteIdentifier(column.name) + " " + PostgresTypeName(LogicalTypeOf(column)) +
           (in_key ? " NOT NULL" : "") + ", ";
  }
  sql += "PRIMARY KEY (";
  for (size_t i = 0; i < schema.key.size(); ++i) {
    sql += (i == 0 ? "" : ", ") + QuoteIdentifier(schema.key[i]);
  }
  return sql + "))";
}

TypeKind KindOfColumn(const Column& column) { return KindOf(LogicalTypeOf(column)); }

std::string ReadExpression(const Column& column, const std::string& alias) {
  const std::string name = alias + "." + QuoteIdentifier(column.name);
  switch (KindOf(LogicalTypeOf(column))) {
    case TypeKind::kInteger:
      return name + "::int8";
    case TypeKind::kFloat:
      return name + "::float8";
    case TypeKind::kBoolean:
      return name + "::int4";
    case TypeKind::kBytes:
      return name;
    case TypeKind::kArray:
      return "to_json(" + name + ")::text";
    default:
      return name + "::text";
  }
}

std::string WriteExpression(const Column& column, int parameter) {
  const std::string logical = LogicalTypeOf(column);
  const std::string type = PostgresTypeName(logical);
  const std::string p = "?" + std::to_string(parameter);
  switch (KindOf(logical)) {
    case TypeKind::kArray: {
      // A JSON array back into a one-dimensional array; '[]' is the empty array, not NULL.
      const std::string json = "CAST(" + p + " AS json)";
      return "CASE WHEN " + json + " IS NULL THEN NULL ELSE coalesce((SELECT array_agg(e.v " +
             "ORDER BY e.n) FROM json_array_elements_text(" + json +
             ") WITH ORDINALITY AS e(v, n)), '{}')::" + type + " END";
    }
    case TypeKind::kEnum:
      return "CAST(CAST(" + p + " AS text) AS " + type + ")";
    default:
      return "CAST(" + p + " AS " + type + ")";
  }
}

}  // namespace lockstep::connectors::postgres
