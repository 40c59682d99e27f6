// Capture triggers: every insert, update and delete on a synced table appends the row's key and
// the time of the write to `_lockstep_capture_<table>`. The engine later stamps them into writes.
//
// The triggers use only built-in SQL, so any SQLite client keeps working unchanged. The write
// time is taken in the trigger — julianday('now') has millisecond precision — so that an HLC
// reflects when the row was written, not when Lockstep got round to stamping it.
#pragma once

#include <string>
#include <vector>

#include "connectors/sqlite/table_schema.h"
#include "store/sqlite_db.h"

namespace lockstep::connectors::sqlite {

std::string CaptureTableName(const std::string& table);

// The distinct keys (encoded, core/key.h) captured in `table` and not stamped yet: rows users
// changed since the last sync. Empty when the table has no capture. Reads only.
Result<std::vector<std::string>> CapturedKeys(store::SqliteDb& db, const std::string& table);

// Creates the capture table and the three triggers when missing. REQUIRES: inside a transaction.
Status InstallCapture(store::SqliteDb& db, const TableSchema& schema);

}  // namespace lockstep::connectors::sqlite
