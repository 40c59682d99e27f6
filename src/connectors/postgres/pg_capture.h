// Capture in PostgreSQL: a PL/pgSQL trigger on each synced table appends the key of every row
// inserted, updated or deleted, with the time of the write (clock_timestamp(), in milliseconds),
// to `_lockstep_capture_<collection id>`; a statement trigger NOTIFYs `lockstep` when a running
// engine sleeps, so that it wakes (pg_wake.h: only then, NOTIFY serialises commits).
//
// Lockstep's own applies set `lockstep.applying` (SET LOCAL) and are not captured: no echo. Every
// statement on a synced table first takes a shared advisory lock (PostgresDb::kRowsLock) that an
// apply takes exclusively: Lockstep never merges into a row that a transaction it cannot see yet
// has written, which would lose that write when both commit. Stamping does not take it.
#pragma once

#include <string>
#include <vector>

#include "connectors/schema.h"
#include "store/database.h"

namespace lockstep::connectors::postgres {

std::string CaptureTableName(int64_t collection);

// The encoded keys captured in `schema`'s table (collection `collection`) and not stamped yet, in
// the order they were captured, each once. Reads only.
Result<std::vector<std::string>> CapturedKeys(store::Database& db, const TableSchema& schema,
                                              int64_t collection);

// Creates the capture table, the trigger functions and the triggers when missing.
// REQUIRES: inside a transaction.
Status InstallCapture(store::Database& db, const TableSchema& schema, int64_t collection);

}  // namespace lockstep::connectors::postgres
