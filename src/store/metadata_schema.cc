#include "store/metadata_schema.h"

#include <map>
#include <string>
#include <vector>

#include "core/codec.h"
#include "store/bucket_sums.h"
#include "store/record_item.h"

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

// Version 2: what set reconciliation and tombstone collection need, kept beside each record
// (record_item.h computes it) and per collection (bucket_sums.h), and the highest dot this store
// holds of each node, which a restored peer must learn (ReplicaStore::AdoptPeerView).
constexpr std::string_view kVersion2Tables = R"sql(
ALTER TABLE _lockstep_records ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
ALTER TABLE _lockstep_records ADD COLUMN hash BLOB NOT NULL DEFAULT x'';
ALTER TABLE _lockstep_records ADD COLUMN deleted_ms INTEGER;
ALTER TABLE _lockstep_cursors ADD COLUMN synced_ms INTEGER;
CREATE TABLE _lockstep_buckets(id INTEGER PRIMARY KEY, sums BLOB NOT NULL);
CREATE TABLE _lockstep_node_dots(node BLOB PRIMARY KEY, counter INTEGER NOT NULL) WITHOUT ROWID;
)sql";

// Made after the columns are filled in, so that filling them moves no index entry.
constexpr std::string_view kVersion2Indexes = R"sql(
CREATE INDEX _lockstep_tombstones ON _lockstep_records(deleted_ms) WHERE deleted_ms IS NOT NULL;
)sql";

Status MigrateTo2(SqliteDb& db) {
  LOCKSTEP_RETURN_IF_ERROR(db.Exec(kVersion2Tables));
  std::map<core::NodeId, uint64_t> highest_dots;
  {
    LOCKSTEP_ASSIGN_OR_RETURN(Statement scan,
                              db.Prepare("SELECT collection, key, record FROM _lockstep_records"));
    // Only the row being read is updated, and only columns no index holds yet: the scan is safe.
    LOCKSTEP_ASSIGN_OR_RETURN(
        Statement update,
        db.Prepare("UPDATE _lockstep_records SET position = ?, hash = ?, deleted_ms = ? "
                   "WHERE collection = ? AND key = ?"));
    for (;;) {
      LOCKSTEP_ASSIGN_OR_RETURN(bool row, scan.Step());
      if (!row) break;
      const std::string_view key = scan.ColumnBlob(1);
      const std::string_view encoding = scan.ColumnBlob(2);
      LOCKSTEP_ASSIGN_OR_RETURN(core::Record record, core::DecodeRecord(encoding));
      for (const auto& [node, counter] : record.vv().entries()) {
        uint64_t& highest = highest_dots[node];
        highest = std::max(highest, counter);
      }
      const RecordItem item = ItemOf(key, encoding);
      update.BindInt(1, PositionColumn(item.position)).BindBlob(2, HashColumn(item.hash));
      if (auto deleted = TombstoneMillis(record); deleted.has_value()) update.BindInt(3, *deleted);
      LOCKSTEP_RETURN_IF_ERROR(update.BindInt(4, scan.ColumnInt(0)).BindBlob(5, key).Run());
    }
  }
  LOCKSTEP_RETURN_IF_ERROR(db.Exec(kVersion2Indexes));
  LOCKSTEP_RETURN_IF_ERROR(db.Exec(kItemIndexSql));
  LOCKSTEP_RETURN_IF_ERROR(BucketSums::Rebuild(db));
  LOCKSTEP_ASSIGN_OR_RETURN(Statement dots,
                            db.Prepare("INSERT INTO _lockstep_node_dots VALUES (?, ?)"));
  for (const auto& [node, counter] : highest_dots) {
    LOCKSTEP_RETURN_IF_ERROR(
        dots.BindBlob(1, std::string_view(reinterpret_cast<const char*>(node.bytes.data()),
                                          node.bytes.size()))
            .BindInt(2, static_cast<int64_t>(counter))
            .Run());
  }
  return Status::Ok();
}

// Migrations[i] takes the metadata from version i + 1 to version i + 2. Append, never edit. A
// new store is made at version 1 and migrated, so that there is one definition of each version.
using Migration = Status (*)(SqliteDb&);
const std::vector<Migration> kMigrations = {MigrateTo2};

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

Result<int64_t> MetadataVersion(SqliteDb& db) {
  LOCKSTEP_ASSIGN_OR_RETURN(bool installed, HasMetadata(db));
  if (!installed) return int64_t{0};
  return ReadVersion(db);
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
  int64_t version = 1;
  if (!installed) {
    LOCKSTEP_RETURN_IF_ERROR(db.Exec(kVersion1));
  } else {
    LOCKSTEP_ASSIGN_OR_RETURN(version, ReadVersion(db));
  }
  if (version > kMetadataVersion) {
    return FailedPrecondition("metadata version " + std::to_string(version) +
                              " was written by a newer lockstep (this one knows up to " +
                              std::to_string(kMetadataVersion) + ")");
  }
  if (version < 1) return DataLoss("metadata version " + std::to_string(version) + " is invalid");
  for (int64_t v = version; v < kMetadataVersion; ++v) {
    LOCKSTEP_RETURN_IF_ERROR(kMigrations[static_cast<size_t>(v - 1)](db).WithContext(
        "migrating lockstep metadata to version " + std::to_string(v + 1)));
  }
  return installed && version == kMetadataVersion ? Status::Ok()
                                                  : WriteVersion(db, kMetadataVersion);
}

Result<std::optional<Value>> ReadMeta(SqliteDb& db, std::string_view name) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db.Prepare("SELECT value FROM _lockstep_meta WHERE name = ?"));
  stmt.BindText(1, name);
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Value>();
  return std::optional<Value>(stmt.Column(0));
}

Status WriteMeta(SqliteDb& db, std::string_view name, const Value& value) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db.Prepare("INSERT OR REPLACE INTO _lockstep_meta VALUES (?, ?)"));
  return stmt.BindText(1, name).Bind(2, value).Run();
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
