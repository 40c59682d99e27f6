// Opening a database synced in place by the name a user gives it on the command line.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "connectors/source.h"
#include "lockstep/status.h"
#include "store/database.h"

namespace lockstep::engine {

// A postgres:// URL opens a PostgreSQL database, anything else a SQLite file (created when missing
// only with `create_if_missing`). Connects and inspects; writes nothing.
Result<std::unique_ptr<connectors::Source>> OpenDatabase(const std::string& name,
                                                         bool create_if_missing,
                                                         const base::Clock& clock);

// The connection alone, for the store and Lockstep's tables without a source: a SQLite file
// (kNotFound when it is missing; opened read-only with `read_only`), or a PostgreSQL database.
Result<std::unique_ptr<store::Database>> OpenConnection(const std::string& name, bool read_only);

// The encoded keys of table `table` (collection `collection`) that users wrote since the last
// stamp: captured, not yet in the store. Reads only.
Result<std::vector<std::string>> UnstampedKeys(store::Database& db, const std::string& table,
                                               int64_t collection);

}  // namespace lockstep::engine
