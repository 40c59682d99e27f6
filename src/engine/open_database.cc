#include "engine/open_database.h"

#include "connectors/postgres/postgres_source.h"
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

}  // namespace lockstep::engine
