// Opening a database synced in place by the name a user gives it on the command line.
#pragma once

#include <memory>
#include <string>

#include "base/clock.h"
#include "connectors/source.h"
#include "lockstep/status.h"

namespace lockstep::engine {

// A postgres:// URL opens a PostgreSQL database, anything else a SQLite file (created when missing
// only with `create_if_missing`). Connects and inspects; writes nothing.
Result<std::unique_ptr<connectors::Source>> OpenDatabase(const std::string& name,
                                                         bool create_if_missing,
                                                         const base::Clock& clock);

}  // namespace lockstep::engine
