// What the parts of the PostgreSQL benchmark (issue 6) share: connections and queries that die
// with one message, the pgbench tables and their keys, the probe table the replication lag is
// read from, and fingerprints that tell whether two copies of the pgbench tables are equal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lockstep/status.h"
#include "store/postgres_db.h"

namespace lockstep::bench {

// A table of pgbench's with its primary key.
struct PgbenchTable {
  std::string name;
  std::vector<std::string> key;
};

// pgbench's four tables. pgbench_history has no primary key of its own: the benchmark gives it
// one (AddHistoryKey) in every arm, since capture triggers and logical replication need one.
const std::vector<PgbenchTable>& PgbenchTables();
// Gives pgbench_history the key PgbenchTables() names: a bigserial `id`.
constexpr const char* kAddHistoryKey =
    "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY";

// The probe table: the lag measurement writes a row every 100 ms on the source and looks for it
// on each replica. `written_at` is the source's clock, kept for inspection only: lags are
// measured on this program's steady clock.
constexpr const char* kProbeTable = "lockstep_bench_probe";
constexpr const char* kCreateProbeTable =
    "CREATE TABLE lockstep_bench_probe (id bigint PRIMARY KEY, written_at timestamptz NOT NULL "
    "DEFAULT clock_timestamp())";

// One query whose single text result is equal on two copies of the pgbench tables exactly when
// they hold the same row counts and sums of balances (and of history deltas and keys). Plain SQL
// that SQLite runs too, for a SQLite replica.
constexpr const char* kFingerprintSql =
    "SELECT (SELECT count(*) || ':' || coalesce(sum(abalance), 0) FROM pgbench_accounts) || ' ' || "
    "(SELECT count(*) || ':' || coalesce(sum(tbalance), 0) FROM pgbench_tellers) || ' ' || "
    "(SELECT count(*) || ':' || coalesce(sum(bbalance), 0) FROM pgbench_branches) || ' ' || "
    "(SELECT count(*) || ':' || coalesce(sum(delta), 0) || ':' || coalesce(max(id), 0) "
    "FROM pgbench_history)";

using PgConnection = std::unique_ptr<store::PostgresDb>;

// Connects to `url`; dies when it cannot.
PgConnection Connect(const std::string& url);
// Runs `sql` (no rows); dies when it fails.
void Exec(store::PostgresDb& db, const std::string& sql);
// The first column of the first row of `sql` as text ("" when there is no row).
Result<std::string> QueryText(store::PostgresDb& db, const std::string& sql);
// The same as an integer; dies when it fails. REQUIRES: the column is an integer type.
int64_t QueryInt(store::PostgresDb& db, const std::string& sql);

}  // namespace lockstep::bench
