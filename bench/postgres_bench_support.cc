#include "postgres_bench_support.h"

#include "bench_support.h"

namespace lockstep::bench {

const std::vector<PgbenchTable>& PgbenchTables() {
  static const std::vector<PgbenchTable> tables = {
      {"pgbench_accounts", {"aid"}},
      {"pgbench_branches", {"bid"}},
      {"pgbench_tellers", {"tid"}},
      {"pgbench_history", {"id"}},
  };
  return tables;
}

PgConnection Connect(const std::string& url) {
  auto db = store::PostgresDb::Connect(url);
  if (!db.has_value()) Die(db.error().message());
  return std::move(*db);
}

void Exec(store::PostgresDb& db, const std::string& sql) {
  const Status status = db.Exec(sql);
  if (!status.ok()) Die(sql.substr(0, 100) + ": " + status.message());
}

Result<std::string> QueryText(store::PostgresDb& db, const std::string& sql) {
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement statement, db.Prepare(sql));
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, statement.Step());
  return row ? std::string(statement.ColumnText(0)) : std::string();
}

int64_t QueryInt(store::PostgresDb& db, const std::string& sql) {
  auto statement = db.Prepare(sql);
  if (!statement.has_value()) Die(sql.substr(0, 100) + ": " + statement.error().message());
  auto row = statement->Step();
  if (!row.has_value()) Die(sql.substr(0, 100) + ": " + row.error().message());
  return *row ? statement->ColumnInt(0) : 0;
}

}  // namespace lockstep::bench
