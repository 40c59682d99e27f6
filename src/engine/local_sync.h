// One-shot sync of databases reachable from this machine: `lockstep sync a.db b.db [more ...]`,
// where each is a SQLite file or a postgres:// URL.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "lockstep/status.h"

namespace lockstep::engine {

enum class Direction {
  kBoth,  // every database ends with every change
  kPush,  // changes flow from the first database to the others only
  kPull,  // changes flow from the others into the first only
};

struct LocalSyncOptions {
  std::vector<std::string> tables;  // empty: every table with a primary key
  Direction direction = Direction::kBoth;
  std::string policy;          // empty: each collection keeps its policy (lww when new)
  bool dry_run = false;        // do everything, then roll every database back
  size_t batch_size = 10'000;  // records per transaction
  // Tombstones older than this are collected before syncing; a database that has not synced
  // with another since before the tombstones it collected is refused ("reset required").
  int64_t retention_ms = 30LL * 24 * 3600 * 1000;
};

// What moved from one database to another.
struct Transfer {
  std::string from;
  std::string to;
  size_t sent = 0;       // records read from `from`'s change log and offered
  size_t changed = 0;    // records that changed in `to`
  size_t conflicts = 0;  // losing values logged in `to`
};

struct LocalSyncReport {
  std::vector<std::string> tables;   // the synced tables
  std::vector<std::string> created;  // "table in path" for tables created from a peer's schema
  std::vector<std::string> skipped;  // tables left out, with why
  std::vector<Transfer> transfers;
  std::vector<std::string> warnings;  // one line each, e.g. a stopped reset's owed deletes
  bool dry_run = false;

  size_t changed() const;
  size_t conflicts() const;
};

// Syncs `paths` (at least two: SQLite files or postgres:// URLs). Before anything moves, each pair
// tells each other what it knows of the other (a database restored from an older copy is detected
// and never reuses a dot, see ReplicaStore::AdoptPeerView), tombstones beyond the retention are
// collected, and a pair one of which missed collected deletions is refused with
// kFailedPrecondition. The first database must exist; SQLite files after it are created when
// missing. Everything is validated before anything is written: a table without a primary key that
// was asked for, or one whose columns differ between
// databases, fails with kFailedPrecondition and leaves every file untouched.
Result<LocalSyncReport> SyncDatabases(std::span<const std::filesystem::path> paths,
                                      const LocalSyncOptions& options, const base::Clock& clock);

}  // namespace lockstep::engine
