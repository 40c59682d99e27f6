// Rows written by a bulk load (Database::CopyInto) where the database has one and the rows are
// many, with statements as the fallback: a load cannot upsert, so it is used for rows its writer
// believes new, and a load that fails for any reason leaves the transaction as it was and the
// statements write the same rows instead.
#pragma once

#include <cstddef>
#include <functional>

#include "store/database.h"

namespace lockstep::store {

// The fewest rows a bulk load is used for: below this, one multi-row statement costs less than
// the load's extra round trips (a savepoint, the load's start and end, the release).
inline constexpr size_t kMinBulkLoadRows = 256;

// Runs `load` (a CopyInto and its Finish) under a savepoint. When it fails, rolls back to the
// savepoint and runs `write`, which writes the same rows with statements: upserts that take a
// row the load did not expect, or that report the error the load met in their own words. Fails
// only when `write` does, or when the savepoint cannot be rolled back (the load's error then).
// REQUIRES: inside a transaction.
Status LoadOrWrite(Database& db, const std::function<Status()>& load,
                   const std::function<Status()>& write);

}  // namespace lockstep::store
