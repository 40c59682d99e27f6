#include "lockstep_capture.h"

#include <sstream>
#include <vector>

#include "base/clock.h"
#include "bench_support.h"
#include "connectors/postgres/postgres_source.h"

namespace lockstep::bench {

void AttachLockstep(const std::string& url, std::span<const PgbenchTable> tables) {
  auto source = connectors::postgres::PostgresSource::Open(url, base::SystemClock::Get());
  if (!source.has_value()) Die("opening " + url + ": " + source.error().message());
  std::vector<connectors::TableSchema> schemas;
  for (const PgbenchTable& table : tables) {
    auto schema = (*source)->Schema(table.name);
    if (!schema.has_value()) Die("schema of " + table.name + ": " + schema.error().message());
    if (!schema->has_value()) Die("no table " + table.name);
    schemas.push_back(std::move(**schema));
  }
  const Status attached = (*source)->Attach(schemas, "");
  if (!attached.ok()) Die("attaching: " + attached.message());
}

int64_t CapturedChanges(const std::string& url) {
  PgConnection db = Connect(url);
  auto tables = QueryText(*db,
                          "SELECT coalesce(string_agg(quote_ident(tablename), ' '), '') FROM "
                          "pg_tables WHERE tablename LIKE '\\_lockstep\\_capture\\_%'");
  if (!tables.has_value()) Die("listing capture tables: " + tables.error().message());
  int64_t changes = 0;
  std::istringstream names(*tables);
  for (std::string name; names >> name;) {
    changes += QueryInt(*db, "SELECT count(*) FROM " + name);
  }
  return changes;
}

}  // namespace lockstep::bench
