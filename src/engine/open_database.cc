#include "engine/open_database.h"

#include <filesystem>

#include "connectors/postgres/pg_capture.h"
#include "connectors/postgres/pg_schema.h"
#include "connectors/postgres/postgres_source.h"
#include "connectors/sqlite/capture.h"
#include "connectors/sqlite/sqlite_source.h"
#include "store/postgres_db.h"

namespace lockstep::engine {

Result<std::unique_ptr<connectors::Source>> OpenDatabase(const std::string& name,
                                                         bool create_if_missing,
                                                         const base::Clock& clock) {
  if (store::IsPostgresUrl(name)) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<connectors::postgres::PostgresSource> source,
                              connectors::postgres::PostgresSource::Open(name, clock));
    return std::unique_ptr<connectors::Source>(std::move(source));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<connectors::sqlite::SqliteSource> source,
                            connectors::sqlite::SqliteSource::Open(name, create_if_missing, clock));
  return std::unique_ptr<connectors::Source>(std::move(source));
}

Result<std::unique_ptr<store::Database>> OpenConnection(const std::string& name, bool read_only) {
  if (store::IsPostgresUrl(name)) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<store::PostgresDb> db,
                              store::PostgresDb::Connect(name));
    return std::unique_ptr<store::Database>(std::move(db));
  }
  if (!std::filesystem::exists(name)) return NotFound(name + " does not exist");
  LOCKSTEP_ASSIGN_OR_RETURN(store::SqliteDb db,
                            store::SqliteDb::Open(name, {.read_only = read_only}));
  return std::unique_ptr<store::Database>(std::make_unique<store::SqliteDb>(std::move(db)));
}

Result<std::vector<std::string>> UnstampedKeys(store::Database& db, const std::string& table,
                                               int64_t collection) {
  if (db.dialect() == store::Dialect::kSqlite) {
    return connectors::sqlite::CapturedKeys(static_cast<store::SqliteDb&>(db), table);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<connectors::TableSchema> schema,
                            connectors::postgres::ReadTableSchema(db, table));
  if (!schema.has_value()) return std::vector<std::string>{};
  return connectors::postgres::CapturedKeys(db, *schema, collection);
}

}  // namespace lockstep::engine
