// A stand-in for the capture triggers of Lockstep's PostgreSQL connector (issue 6), which is not
// written yet: what the connector is specified to install, in PL/pgSQL, so that the overhead of
// capture on pgbench can be measured now. Replaced by the connector's own install call later.
#pragma once

#include <span>
#include <string>

#include "postgres_bench_support.h"

namespace lockstep::bench {

// The SQL that puts `table` under capture: a capture table of keys with the time of the change,
// and an AFTER INSERT OR UPDATE OR DELETE ... FOR EACH ROW trigger that records the key (both
// keys when an update changes it) with clock_timestamp() and wakes the engine with pg_notify.
// Changes made while `lockstep.applying` is set (SET LOCAL by the engine's apply) are skipped,
// as the connector's echo suppression will skip them.
std::string StandInCaptureSql(const PgbenchTable& table);

// Installs capture on `tables` in the database at `url`; dies when it fails.
void InstallCapture(const std::string& url, std::span<const PgbenchTable> tables);

// The number of changes captured on `tables` so far.
int64_t CapturedChanges(const std::string& url, std::span<const PgbenchTable> tables);

}  // namespace lockstep::bench
