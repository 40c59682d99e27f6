#include "engine/reset.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "connectors/sqlite/capture.h"
#include "connectors/sqlite/sqlite_source.h"
#include "core/key.h"
#include "core/policy.h"
#include "engine/local_sync.h"
#include "engine/network_verify.h"
#include "engine/open_database.h"
#include "store/metadata_schema.h"
#include "store/postgres_db.h"

namespace lockstep::engine {
namespace {

using connectors::sqlite::SqliteSource;
using connectors::sqlite::TableSchema;

// One of DB's writes the peer has not seen: the row as DB shows it now, or nullopt when DB
// deleted it.
struct KeptWrite {
  std::vector<Value> key;
  std::optional<std::vector<Value>> row;
};

// What reset learns from the peer: the highest dot of DB's node it holds (DB's writes above it
// never reached the peer) and its tables' conflict policies.
struct PeerFacts {
  uint64_t highest_dot_of_db = 0;
  std::map<std::string, std::string> policies;
};

struct TablePlan {
  TableSchema schema;
  std::string policy;
  std::vector<KeptWrite> kept;
};

bool WrittenAfter(const core::Record& record, const core::NodeId& node, uint64_t counter) {
  for (const auto& [name, field] : record.fields()) {
    for (const core::Version& version : field.versions) {
      if (version.dot.node == node && version.dot.counter > counter) return true;
    }
  }
  return false;
}

std::string KeyCondition(const TableSchema& schema, int first_parameter) {
  std::string where;
  for (size_t i = 0; i < schema.key.size(); ++i) {
    where += (i == 0 ? "" : " AND ") + store::QuoteIdentifier(schema.key[i]) + " IS ?" +
             std::to_string(first_parameter + static_cast<int>(i));
  }
  return where;
}

Result<std::optional<std::vector<Value>>> ReadRow(store::SqliteDb& db, const TableSchema& schema,
                                                  const std::vector<Value>& key) {
  std::string columns;
  for (const auto& column : schema.columns) {
    columns += (columns.empty() ? "" : ", ") + store::QuoteIdentifier(column.name);
  }
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement stmt, db.Prepare("SELECT " + columns + " FROM " +
                                                              store::QuoteIdentifier(schema.name) +
                                                              " WHERE " + KeyCondition(schema, 1)));
  for (size_t i = 0; i < key.size(); ++i) stmt.Bind(static_cast<int>(i + 1), key[i]);
  LOCKSTEP_ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return std::optional<std::vector<Value>>();
  std::vector<Value> row;
  for (size_t i = 0; i < schema.columns.size(); ++i)
    row.push_back(stmt.Column(static_cast<int>(i)));
  return std::optional<std::vector<Value>>(std::move(row));
}

// What DB holds that the peer has not seen, table by table; read before anything is changed.
Result<std::vector<TablePlan>> PlanReset(SqliteSource& source, const PeerFacts& peer) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> collections,
                            source.store().Collections());
  const std::map<std::string, std::string>& peer_policies = peer.policies;
  std::vector<TableSchema> schemas;
  std::vector<TablePlan> plans;
  for (const store::Collection& collection : collections) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> schema, source.Schema(collection.name));
    if (!schema.has_value()) continue;  // dropped by the user since: nothing to keep
    auto peer_policy = peer_policies.find(collection.name);
    plans.push_back({*schema,
                     peer_policy != peer_policies.end() ? peer_policy->second : collection.policy,
                     {}});
    schemas.push_back(std::move(*schema));
  }
  if (plans.empty()) return NotFound(source.path().string() + " has no synced table to reset");
  // Users' edits not stamped yet become writes of this node first, so that they count as unsynced.
  LOCKSTEP_RETURN_IF_ERROR(source.Attach(schemas, ""));
  const core::NodeId me = source.store().node();
  const uint64_t seen = peer.highest_dot_of_db;
  for (TablePlan& plan : plans) {
    connectors::sqlite::SyncedTable* table = source.Table(plan.schema.name);
    if (table == nullptr) return Internal("table '" + plan.schema.name + "' was not attached");
    std::vector<std::vector<Value>> keys;
    LOCKSTEP_RETURN_IF_ERROR(source.store().ForEachRecord(
        table->collection().id, [&](const store::StoredRecord& stored) -> Status {
          if (!WrittenAfter(stored.record, me, seen)) return Status::Ok();
          LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Value> key, core::DecodeKey(stored.record.key()));
          keys.push_back(std::move(key));
          return Status::Ok();
        }));
    for (std::vector<Value>& key : keys) {
      LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::vector<Value>> row,
                                ReadRow(source.db(), plan.schema, key));
      plan.kept.push_back({std::move(key), std::move(row)});
    }
  }
  return plans;
}

Status InsertRow(store::SqliteDb& db, const TableSchema& schema, const std::vector<Value>& row) {
  std::string columns;
  std::string values;
  for (size_t i = 0; i < schema.columns.size(); ++i) {
    columns += (i == 0 ? "" : ", ") + store::QuoteIdentifier(schema.columns[i].name);
    values += (i == 0 ? "?" : ", ?");
  }
  LOCKSTEP_ASSIGN_OR_RETURN(store::Statement stmt,
                            db.Prepare("INSERT INTO " + store::QuoteIdentifier(schema.name) + "(" +
                                       columns + ") VALUES (" + values + ")"));
  for (size_t i = 0; i < row.size(); ++i) stmt.Bind(static_cast<int>(i + 1), row[i]);
  return stmt.Run();
}

// In one transaction: the old metadata and every row go, a new store (a new node identity) takes
// their place with the tables registered under the peer's policies and capture installed, and the
// kept rows come back as captured user writes.
Status Rebuild(const std::filesystem::path& path, const std::vector<TablePlan>& plans,
               const base::Clock& clock) {
  LOCKSTEP_ASSIGN_OR_RETURN(store::SqliteDb db, store::SqliteDb::Open(path, {}));
  LOCKSTEP_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status status = [&]() -> Status {
    LOCKSTEP_RETURN_IF_ERROR(store::DropMetadata(db));
    for (const TablePlan& plan : plans) {
      LOCKSTEP_RETURN_IF_ERROR(db.Exec("DELETE FROM " + store::QuoteIdentifier(plan.schema.name)));
    }
    {
      LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<store::ReplicaStore> fresh,
                                store::ReplicaStore::Open(db, clock));
      for (const TablePlan& plan : plans) {
        LOCKSTEP_RETURN_IF_ERROR(
            fresh->EnsureCollection(plan.schema.name, plan.policy, plan.schema.create_sql)
                .status());
      }
    }
    for (const TablePlan& plan : plans) {
      LOCKSTEP_RETURN_IF_ERROR(connectors::sqlite::InstallCapture(db, plan.schema));
      for (const KeptWrite& kept : plan.kept) {
        if (kept.row.has_value()) LOCKSTEP_RETURN_IF_ERROR(InsertRow(db, plan.schema, *kept.row));
      }
    }
    return db.Exec("COMMIT");
  }();
  if (!status.ok()) (void)db.Exec("ROLLBACK");
  return status;
}

// DB's unsynced deletes, made again now that the peer's rows are back, so that capture sees them.
Status DeleteAgain(const std::filesystem::path& path, const std::vector<TablePlan>& plans) {
  LOCKSTEP_ASSIGN_OR_RETURN(store::SqliteDb db, store::SqliteDb::Open(path, {}));
  LOCKSTEP_RETURN_IF_ERROR(db.Exec("BEGIN IMMEDIATE"));
  Status status = [&]() -> Status {
    for (const TablePlan& plan : plans) {
      for (const KeptWrite& kept : plan.kept) {
        if (kept.row.has_value()) continue;
        LOCKSTEP_ASSIGN_OR_RETURN(
            store::Statement stmt,
            db.Prepare("DELETE FROM " + store::QuoteIdentifier(plan.schema.name) + " WHERE " +
                       KeyCondition(plan.schema, 1)));
        for (size_t i = 0; i < kept.key.size(); ++i)
          stmt.Bind(static_cast<int>(i + 1), kept.key[i]);
        LOCKSTEP_RETURN_IF_ERROR(stmt.Run());
      }
    }
    return db.Exec("COMMIT");
  }();
  if (!status.ok()) (void)db.Exec("ROLLBACK");
  return status;
}

Result<ResetReport> Reset(
    const std::filesystem::path& db,
    const std::function<Result<PeerFacts>(const core::NodeId& db_node)>& learn,
    const std::function<Status(const std::vector<std::string>&)>& sync, const base::Clock& clock) {
  std::vector<TablePlan> plans;
  {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<SqliteSource> source,
                              SqliteSource::Open(db, false, clock));
    LOCKSTEP_ASSIGN_OR_RETURN(bool synced, store::HasMetadata(source->db()));
    if (!synced) return InvalidArgument(db.string() + " was never synced: nothing to reset");
    LOCKSTEP_RETURN_IF_ERROR(source->OpenStore());
    LOCKSTEP_ASSIGN_OR_RETURN(PeerFacts peer, learn(source->store().node()));
    LOCKSTEP_ASSIGN_OR_RETURN(plans, PlanReset(*source, peer));
  }
  LOCKSTEP_RETURN_IF_ERROR(Rebuild(db, plans, clock).WithContext("rebuilding " + db.string()));
  ResetReport report;
  report.tables = plans.size();
  std::vector<std::string> tables;
  for (const TablePlan& plan : plans) {
    tables.push_back(plan.schema.name);
    for (const KeptWrite& kept : plan.kept) {
      report.kept_writes += kept.row.has_value() ? 1 : 0;
      report.kept_deletes += kept.row.has_value() ? 0 : 1;
    }
  }
  // The peer's state comes in; the kept rows, captured, are stamped and go out.
  LOCKSTEP_RETURN_IF_ERROR(sync(tables));
  if (report.kept_deletes > 0) {
    LOCKSTEP_RETURN_IF_ERROR(DeleteAgain(db, plans));
    LOCKSTEP_RETURN_IF_ERROR(sync(tables));
  }
  return report;
}

}  // namespace

Result<ResetReport> ResetFromPeer(const std::filesystem::path& db,
                                  const std::filesystem::path& peer, int64_t retention_ms,
                                  const base::Clock& clock) {
  // The peer may be any database; the one reset must be a SQLite file for now.
  if (store::IsPostgresUrl(db.string())) {
    return InvalidArgument("reset rebuilds SQLite files only, not yet PostgreSQL databases (" +
                           store::RedactPassword(db.string()) + ")");
  }
  std::error_code ec;
  if (!store::IsPostgresUrl(peer.string()) && std::filesystem::equivalent(db, peer, ec))
    return InvalidArgument(db.string() + " is named twice");
  LocalSyncOptions options;
  options.retention_ms = retention_ms;
  auto learn = [&](const core::NodeId& db_node) -> Result<PeerFacts> {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<connectors::Source> other,
                              OpenDatabase(peer.string(), false, clock));
    LOCKSTEP_ASSIGN_OR_RETURN(bool peer_synced, store::HasMetadata(other->database()));
    if (!peer_synced)
      return InvalidArgument(other->name() + " was never synced: reset from a peer");
    LOCKSTEP_RETURN_IF_ERROR(other->OpenStore());
    PeerFacts facts;
    LOCKSTEP_ASSIGN_OR_RETURN(facts.policies, store::ReadPolicies(other->database()));
    LOCKSTEP_ASSIGN_OR_RETURN(facts.highest_dot_of_db, other->store().HighestDotOf(db_node));
    return facts;
  };
  auto sync = [&](const std::vector<std::string>& tables) {
    options.tables = tables;
    const std::vector<std::filesystem::path> paths = {db, peer};
    return SyncDatabases(paths, options, clock).status();
  };
  return Reset(db, learn, sync, clock);
}

Result<ResetReport> ResetFromListener(const std::filesystem::path& db,
                                      const NetworkSyncOptions& options, const base::Clock& clock) {
  auto learn = [&](const core::NodeId&) -> Result<PeerFacts> {
    LOCKSTEP_ASSIGN_OR_RETURN(ListenerView view, ProbeListener(db, options, clock));
    return PeerFacts{view.highest_dot_of_me, std::move(view.policies)};
  };
  auto sync = [&](const std::vector<std::string>&) {
    return SyncWithListener(db, options, clock).status();
  };
  return Reset(db, learn, sync, clock);
}

}  // namespace lockstep::engine
