#include "connectors/type_mapping.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "store/metadata_schema.h"

namespace lockstep::connectors {
namespace {

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// The type's name without its modifier: "numeric(40,10)" is "numeric".
std::string BaseName(const std::string& type) {
  const size_t paren = type.find('(');
  std::string base = paren == std::string::npos ? type : type.substr(0, paren);
  while (!base.empty() && base.back() == ' ') base.pop_back();
  // "timestamp(3) with time zone" keeps its zone.
  if (paren != std::string::npos) {
    const size_t close = type.find(')', paren);
    if (close != std::string::npos && close + 1 < type.size()) base += type.substr(close + 1);
  }
  return base;
}

const std::map<std::string, TypeKind>& Scalars() {
  static const auto* kinds = new std::map<std::string, TypeKind>{
      {"smallint", TypeKind::kInteger},
      {"integer", TypeKind::kInteger},
      {"bigint", TypeKind::kInteger},
      {"real", TypeKind::kFloat},
      {"double precision", TypeKind::kFloat},
      {"boolean", TypeKind::kBoolean},
      {"bytea", TypeKind::kBytes},
      {"numeric", TypeKind::kNumeric},
      {"text", TypeKind::kText},
      {"character varying", TypeKind::kText},
      {"character", TypeKind::kText},
      {"uuid", TypeKind::kText},
      {"date", TypeKind::kText},
      {"timestamp without time zone", TypeKind::kText},
      {"timestamp with time zone", TypeKind::kText},
      {"interval", TypeKind::kText},
      {"json", TypeKind::kText},
      {"jsonb", TypeKind::kText},
  };
  return *kinds;
}

std::string MetaName(const TableSchema& schema) { return "types " + schema.name; }

// A scalar type as format_type() writes it: a known name, with at most one modifier of digits
// ("numeric(40,10)", "timestamp(3) with time zone").
bool IsScalarType(const std::string& type) {
  const size_t open = type.find('(');
  if (open != std::string::npos) {
    const size_t close = type.find(')', open);
    if (close == std::string::npos || close == open + 1 ||
        type.find('(', open + 1) != std::string::npos) {
      return false;
    }
    for (size_t i = open + 1; i < close; ++i) {
      if (std::isdigit(static_cast<unsigned char>(type[i])) == 0 && type[i] != ',') return false;
    }
  }
  return Scalars().contains(BaseName(type));
}

// Consumes a PostgreSQL identifier at `at`: plain (letters, digits, _ and $) or double-quoted.
bool TakeIdentifier(const std::string& text, size_t& at) {
  if (at < text.size() && text[at] == '"') {
    for (++at; at < text.size(); ++at) {
      if (text[at] != '"') continue;
      if (at + 1 < text.size() && text[at + 1] == '"') {
        ++at;
        continue;
      }
      ++at;
      return true;
    }
    return false;
  }
  const size_t start = at;
  while (at < text.size() && (std::isalnum(static_cast<unsigned char>(text[at])) != 0 ||
                              text[at] == '_' || text[at] == '$')) {
    ++at;
  }
  return at > start && std::isdigit(static_cast<unsigned char>(text[start])) == 0;
}

// Consumes a string literal as quote_literal() writes it: '...' with '' inside, or E'...' where
// a backslash also escapes the character after it.
bool TakeLiteral(const std::string& text, size_t& at) {
  const bool escapes = at < text.size() && text[at] == 'E';
  if (escapes) ++at;
  if (at >= text.size() || text[at] != '\'') return false;
  for (++at; at < text.size(); ++at) {
    if (escapes && text[at] == '\\') {
      ++at;
      continue;
    }
    if (text[at] != '\'') continue;
    if (at + 1 < text.size() && text[at + 1] == '\'') {
      ++at;
      continue;
    }
    ++at;
    return true;
  }
  return false;
}

// "enum NAME ('label', ...)", NAME possibly schema-qualified.
bool IsEnumType(const std::string& type) {
  size_t at = 5;  // after "enum "
  do {
    if (!TakeIdentifier(type, at)) return false;
  } while (at < type.size() && type[at] == '.' && ++at);
  if (type.compare(at, 2, " (") != 0) return false;
  at += 2;
  if (at + 1 == type.size() && type[at] == ')') return true;  // an enum without labels
  do {
    if (!TakeLiteral(type, at)) return false;
  } while (type.compare(at, 2, ", ") == 0 && (at += 2));
  return at + 1 == type.size() && type[at] == ')';
}

}  // namespace

TypeKind KindOf(const std::string& logical_type) {
  if (logical_type.starts_with("enum ")) return TypeKind::kEnum;
  if (logical_type.ends_with("[]")) {
    const TypeKind element = KindOf(logical_type.substr(0, logical_type.size() - 2));
    return element == TypeKind::kUnsupported || element == TypeKind::kArray ||
                   element == TypeKind::kEnum
               ? TypeKind::kUnsupported
               : TypeKind::kArray;
  }
  auto it = Scalars().find(BaseName(logical_type));
  return it == Scalars().end() ? TypeKind::kUnsupported : it->second;
}

Status CheckLogicalType(const std::string& logical_type) {
  const bool valid = logical_type.starts_with("enum ") ? IsEnumType(logical_type)
                     : logical_type.ends_with("[]")
                         ? IsScalarType(logical_type.substr(0, logical_type.size() - 2))
                         : IsScalarType(logical_type);
  if (valid) return Status::Ok();
  return InvalidArgument("unsupported or malformed logical type '" + logical_type + "'");
}

std::string PostgresTypeName(const std::string& logical_type) {
  if (!logical_type.starts_with("enum ")) return logical_type;
  const std::string rest = logical_type.substr(5);
  return rest.substr(0, rest.find(" ("));
}

std::string SqliteTypeFor(const std::string& logical_type) {
  switch (KindOf(logical_type)) {
    case TypeKind::kInteger:
      return Upper(BaseName(logical_type));  // SMALLINT, INTEGER, BIGINT
    case TypeKind::kFloat:
      return "REAL";
    case TypeKind::kBoolean:
      return "BOOLEAN";
    case TypeKind::kBytes:
      return "BLOB";
    default:
      return "TEXT";
  }
}

std::string PostgresTypeForSqlite(const std::string& declared_type) {
  // SQLite's affinity rules, in its order (https://sqlite.org/datatype3.html, 3.1).
  const std::string type = Upper(declared_type);
  if (type.find("INT") != std::string::npos) return "bigint";
  if (type.find("CHAR") != std::string::npos || type.find("CLOB") != std::string::npos ||
      type.find("TEXT") != std::string::npos) {
    return "text";
  }
  if (type.empty() || type.find("BLOB") != std::string::npos) return "bytea";
  if (type.find("REAL") != std::string::npos || type.find("FLOA") != std::string::npos ||
      type.find("DOUB") != std::string::npos) {
    return "double precision";
  }
  return "numeric";
}

std::string SqliteCreateSql(const TableSchema& schema) {
  std::string sql = "CREATE TABLE " + store::QuoteIdentifier(schema.name) + "(";
  for (const Column& column : schema.columns) {
    sql +=
        store::QuoteIdentifier(column.name) + " " +
        (column.logical_type.empty() ? column.declared_type : SqliteTypeFor(column.logical_type)) +
        ", ";
  }
  sql += "PRIMARY KEY (";
  for (size_t i = 0; i < schema.key.size(); ++i) {
    sql += (i == 0 ? "" : ", ") + store::QuoteIdentifier(schema.key[i]);
  }
  return sql + "))";
}

Status RememberLogicalTypes(store::Database& db, const TableSchema& schema) {
  std::string types;
  for (const Column& column : schema.columns) {
    if (!column.logical_type.empty()) types += column.name + "\t" + column.logical_type + "\n";
  }
  if (types.empty()) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement stmt,
                            db.Prepare("INSERT INTO _lockstep_meta VALUES (?, ?) "
                                       "ON CONFLICT(name) DO UPDATE SET value = excluded.value"));
  return stmt.BindText(1, MetaName(schema)).BindAny(2, Value::Text(types)).Run();
}

Status RecallLogicalTypes(store::Database& db, TableSchema& schema) {
  LOCKSTEP_ASSIGN_OR_RETURN(bool installed, store::HasMetadata(db));
  if (!installed) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement stmt,
                            db.Prepare("SELECT value FROM _lockstep_meta WHERE name = ?"));
  stmt.BindText(1, MetaName(schema));
  LOCKSTEP_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return Status::Ok();
  const Value value = stmt.ColumnAny(0);
  if (value.type() != ValueType::kText) return Status::Ok();
  const std::string& types = value.as_text();
  size_t start = 0;
  while (start < types.size()) {
    const size_t end = std::min(types.find('\n', start), types.size());
    const std::string line = types.substr(start, end - start);
    start = end + 1;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    for (Column& column : schema.columns) {
      if (column.name == line.substr(0, tab)) column.logical_type = line.substr(tab + 1);
    }
  }
  return Status::Ok();
}

}  // namespace lockstep::connectors
