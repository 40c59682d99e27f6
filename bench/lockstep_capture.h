// Lockstep's capture on a PostgreSQL database, for the capture-overhead measurement: attaching
// tables through the PostgreSQL connector (as `lockstep sync` and `lockstep run` do), and
// counting what the triggers have captured and nothing has stamped yet.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "postgres_bench_support.h"

namespace lockstep::bench {

// Attaches `tables` of the database at `url` with connectors::postgres::PostgresSource: capture
// triggers, the replica store, and every existing row made a local write. Dies when it fails.
void AttachLockstep(const std::string& url, std::span<const PgbenchTable> tables);

// The changes waiting in the database's capture tables (`_lockstep_capture_*`).
int64_t CapturedChanges(const std::string& url);

}  // namespace lockstep::bench
