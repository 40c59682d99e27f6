#include "store/metadata_schema.h"

#include <string>
#include <vector>

namespace lockstep::store {
namespace {

constexpr std::string_view kVersion1 = R"sql(
CREATE TABLE _lockstep_meta(name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE _lockstep_collections(
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  policy TEXT NOT NULL DEFAULT 'lww',
  create_sql TEXT);
CREATE TABLE _lockstep_records(
  collection INTEGER NOT NULL,
  key BLOB NOT NULL,
  seq INTEGER NOT NULL,
  record BLOB NOT NULL,
  field_seqs BLOB NOT NULL,
  origin INTEGER,
  PRIMARY KEY (collection, key)) WITHOUT ROWID;
CREATE INDEX _lockstep_records_by_seq ON _lockstep_records(seq, origin);
CREATE TABLE _lockstep_peers(id INTEGER PRIMARY KEY, node BLOB NOT NULL UNIQUE);
CREATE TABLE _lockstep_cursors(
  peer BLOB PRIMARY KEY,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE _lockstep_conflicts(
  id INTEGER PRIMARY KEY,
  logged_ms INTEGER NOT NULL,
  collection TEXT NOT NULL,
  key BLOB NOT NULL,
  field TEXT NOT NULL,
  winner_value, winner_node BLOB NOT NULL, winner_hlc INTEGER NOT NULL,
  loser_value, loser_node BLOB NOT NULL, loser_hlc INTEGER NOT NULL,
  pending INTEGER NOT NULL);
)sql";

// Migrations[i] takes the metadata from version i + 1 to version i + 2. Append, never edit.
const std::vector<std::string_view> kMigrations = {};

Result<int64_t> ReadVersion(SqliteDb& db) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db.Prepare("SELECT value FROM _lockstep_meta WHERE name = 'version'"));
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return DataLoss("lockstep metadata has no version");
  return stmt.ColumnInt(0);
}

Status WriteVersion(SqliteDb& db, int64_t version) {
  return db.Exec("INSERT OR REPLACE INTO _lockstep_meta VALUES ('version', " +
                 std::to_string(version) + ")");
}

}  // namespace

Result<bool> HasMetadata(SqliteDb& db) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_lockstep_meta'"));
  return stmt.Step();
}

Result<std::map<std::string, std::string>> ReadPolicies(SqliteDb& db) {
  std::map<std::string, std::string> policies;
  LOCKSTEP_ASSIGN_OR_RETURN(bool installed, HasMetadata(db));
  if (!installed) return policies;
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db.Prepare("SELECT name, policy FROM _lockstep_collections"));
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    policies.emplace(stmt.ColumnText(0), stmt.ColumnText(1));
  }
  return policies;
}

Status InstallMetadata(SqliteDb& db) {
  LOCKSTEP_ASSIGN_OR_RETURN(bool installed, HasMetadata(db));
  if (!installed) {
    LOCKSTEP_RETURN_IF_ERROR(db.Exec(kVersion1));
    return WriteVersion(db, kMetadataVersion);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(int64_t version, ReadVersion(db));
  if (version > kMetadataVersion) {
    return FailedPrecondition("metadata version " + std::to_string(version) +
                              " was written by a newer lockstep (this one knows up to " +
                              std::to_string(kMetadataVersion) + ")");
  }
  if (version < 1) return DataLoss("metadata version " + std::to_string(version) + " is invalid");
  for (int64_t v = version; v < kMetadataVersion; ++v) {
    LOCKSTEP_RETURN_IF_ERROR(db.Exec(kMigrations[static_cast<size_t>(v - 1)]));
  }
  return version == kMetadataVersion ? Status::Ok() : WriteVersion(db, kMetadataVersion);
}

Status DropMetadata(SqliteDb& db) {
  std::vector<std::string> drops;
  {
    LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                              db.Prepare("SELECT type, name FROM sqlite_master "
                                         "WHERE name LIKE '\\_lockstep\\_%' ESCAPE '\\' "
                                         "AND type IN ('table', 'trigger')"));
    for (;;) {
      LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      const std::string type(stmt.ColumnText(0));
      drops.push_back("DROP " + std::string(type == "table" ? "TABLE" : "TRIGGER") + " IF EXISTS " +
                      QuoteIdentifier(stmt.ColumnText(1)));
    }
  }
  for (const std::string& drop : drops) LOCKSTEP_RETURN_IF_ERROR(db.Exec(drop));
  return Status::Ok();
}

}  // namespace lockstep::store
