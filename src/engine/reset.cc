#include "engine/reset.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "core/policy.h"
#include "engine/local_edit.h"
#include "engine/local_sync.h"
#include "engine/network_verify.h"
#include "engine/open_database.h"
#include "store/metadata_schema.h"
#include "store/pending_deletes.h"
#include "store/postgres_db.h"

namespace lockstep::engine {
namespace {

using connectors::RowSink;
using connectors::Source;
using connectors::TableSchema;

// What reset learns from the peer: the highest dot of DB's node it holds (DB's writes above it
// never reached the peer) and its tables' conflict policies.
struct PeerFacts {
  uint64_t highest_dot_of_db = 0;
  std::map<std::string, std::string> policies;
};

// One of DB's records holding a write the peer has not seen.
struct KeptWrite {
  std::string key;
  bool deleted = false;  // DB deleted the row
};

struct TablePlan {
  TableSchema schema;
  std::string policy;
  std::vector<KeptWrite> kept;
  // DB's rows whose every write the peer holds: the peer sends them back, or their deletion if
  // it deleted them since (its tombstone may be long gone, so DB must not keep them).
  std::vector<std::string> held_by_peer;
};

bool WrittenAfter(const core::Record& record, const core::NodeId& node, uint64_t counter) {
  for (const auto& [name, field] : record.fields()) {
    for (const core::Version& version : field.versions) {
      if (version.dot.node == node && version.dot.counter > counter) return true;
    }
  }
  return false;
}

// What DB holds that the peer has not seen, table by table; read before anything is changed.
Result<std::vector<TablePlan>> PlanReset(Source& source, const PeerFacts& peer) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> collections,
                            source.store().Collections());
  std::vector<TableSchema> schemas;
  std::vector<TablePlan> plans;
  for (const store::Collection& collection : collections) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> schema, source.Schema(collection.name));
    if (!schema.has_value()) continue;  // dropped by the user since: nothing to keep
    auto peer_policy = peer.policies.find(collection.name);
    plans.push_back({*schema,
                     peer_policy != peer.policies.end() ? peer_policy->second : collection.policy,
                     {},
                     {}});
    schemas.push_back(std::move(*schema));
  }
  if (plans.empty()) return NotFound(source.name() + " has no synced table to reset");
  // Users' edits not stamped yet become writes of this node first, so that they count as unsynced.
  LOCKSTEP_RETURN_IF_ERROR(source.Attach(schemas, ""));
  const core::NodeId me = source.store().node();
  for (TablePlan& plan : plans) {
    RowSink* table = source.Table(plan.schema.name);
    if (table == nullptr) return Internal("table '" + plan.schema.name + "' was not attached");
    LOCKSTEP_RETURN_IF_ERROR(source.store().ForEachRecord(
        table->collection().id, [&](const store::StoredRecord& stored) -> Status {
          const bool exists = core::Exists(stored.record, table->policy());
          if (WrittenAfter(stored.record, me, peer.highest_dot_of_db)) {
            plan.kept.push_back({stored.record.key(), !exists});
          } else if (exists) {
            plan.held_by_peer.push_back(stored.record.key());
          }
          return Status::Ok();
        }));
  }
  return plans;
}

// In one transaction: DB's rows that the peer holds go, the old metadata goes, and DB attaches
// afresh under a new node identity and the peer's policies, so that the rows left, DB's unsynced
// writes, become the new node's writes. A failure leaves DB as it was.
Status Rebuild(Source& source, const std::vector<TablePlan>& plans) {
  store::Database& db = source.database();
  LOCKSTEP_RETURN_IF_ERROR(db.BeginWrite());
  Status status = [&]() -> Status {
    for (const TablePlan& plan : plans) {
      RowSink* table = source.Table(plan.schema.name);
      if (table == nullptr) return Internal("table '" + plan.schema.name + "' was not attached");
      for (const std::string& key : plan.held_by_peer) {
        // A record never written does not exist: its row is deleted.
        LOCKSTEP_RETURN_IF_ERROR(table->WriteRow(core::Record(key)));
      }
      LOCKSTEP_RETURN_IF_ERROR(table->Flush());
    }
    source.CloseStore();
    LOCKSTEP_RETURN_IF_ERROR(store::DropMetadata(db));
    std::vector<store::PendingDelete> owed;
    for (const TablePlan& plan : plans) {
      LOCKSTEP_RETURN_IF_ERROR(source.Attach({&plan.schema, 1}, plan.policy));
      for (const KeptWrite& kept : plan.kept) {
        if (kept.deleted) owed.push_back({plan.schema.name, kept.key});
      }
    }
    // Owed from now on, until DeleteAgain makes them: a reset killed before then finishes them
    // when it is run again.
    LOCKSTEP_RETURN_IF_ERROR(store::RememberPendingDeletes(db, owed));
    return db.Exec("COMMIT");
  }();
  if (!status.ok() && db.InTransaction()) (void)db.Exec("ROLLBACK");
  source.CloseStore();
  return status;
}

// The deletes the rebuild left owed, made now that the peer's rows are back, and forgotten in the
// same transaction.
Status DeleteAgain(Source& source, const std::vector<store::PendingDelete>& owed) {
  std::map<std::string, TableSchema> schemas;
  for (const store::PendingDelete& pending : owed) {
    if (schemas.count(pending.collection) > 0) continue;
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> schema, source.Schema(pending.collection));
    if (schema.has_value()) schemas.emplace(pending.collection, std::move(*schema));
  }
  std::vector<TableSchema> attached;
  for (auto& [name, schema] : schemas) attached.push_back(schema);
  LOCKSTEP_RETURN_IF_ERROR(source.Attach(attached, ""));
  store::ReplicaStore& store = source.store();
  return store.Write([&]() -> Status {
    for (const store::PendingDelete& pending : owed) {
      RowSink* table = source.Table(pending.collection);
      if (table == nullptr) continue;  // the user dropped the table since: nothing to delete
      LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::StoredRecord> stored,
                                store.Get(table->collection().id, pending.key));
      if (!stored.has_value() || !core::Exists(stored->record, table->policy())) continue;
      core::LocalWrite deletion;
      deletion.exists = false;
      LOCKSTEP_RETURN_IF_ERROR(WriteLocally(store, *table, *stored, std::move(deletion)));
    }
    return store::ForgetPendingDeletes(source.database());
  });
}

Result<ResetReport> Reset(
    const std::string& db,
    const std::function<Result<PeerFacts>(const core::NodeId& db_node)>& learn,
    const std::function<Status(const std::vector<std::string>&)>& sync, const base::Clock& clock) {
  ResetReport report;
  std::vector<std::string> tables;
  {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<Source> source, OpenDatabase(db, false, clock));
    LOCKSTEP_ASSIGN_OR_RETURN(bool synced, store::HasMetadata(source->database()));
    if (!synced) return InvalidArgument(source->name() + " was never synced: nothing to reset");
    LOCKSTEP_RETURN_IF_ERROR(source->OpenStore());
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::PendingDelete> owed,
                              store::ReadPendingDeletes(source->database()));
    if (!owed.empty()) {
      // An earlier reset rebuilt DB and was stopped before it made the deletes it kept: DB is
      // already the new node, so only its sync and those deletes are left to do.
      report.resumed = true;
      report.kept_deletes = owed.size();
      LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> collections,
                                source->store().Collections());
      for (const store::Collection& collection : collections) tables.push_back(collection.name);
      report.tables = tables.size();
    } else {
      LOCKSTEP_ASSIGN_OR_RETURN(PeerFacts peer, learn(source->store().node()));
      LOCKSTEP_ASSIGN_OR_RETURN(std::vector<TablePlan> plans, PlanReset(*source, peer));
      LOCKSTEP_RETURN_IF_ERROR(Rebuild(*source, plans).WithContext("rebuilding " + source->name()));
      report.tables = plans.size();
      for (const TablePlan& plan : plans) {
        tables.push_back(plan.schema.name);
        for (const KeptWrite& kept : plan.kept) {
          report.kept_writes += kept.deleted ? 0 : 1;
          report.kept_deletes += kept.deleted ? 1 : 0;
        }
      }
    }
  }
  // The peer's state comes in; the kept rows, now the new node's writes, go out.
  LOCKSTEP_RETURN_IF_ERROR(sync(tables));
  if (report.kept_deletes > 0) {
    {
      LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<Source> source, OpenDatabase(db, false, clock));
      LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::PendingDelete> owed,
                                store::ReadPendingDeletes(source->database()));
      LOCKSTEP_RETURN_IF_ERROR(DeleteAgain(*source, owed));
    }
    LOCKSTEP_RETURN_IF_ERROR(sync(tables));
  }
  return report;
}

}  // namespace

Result<std::optional<std::string>> UnfinishedResetWarning(store::Database& db,
                                                          const std::string& name) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::PendingDelete> owed, store::ReadPendingDeletes(db));
  if (owed.empty()) return std::optional<std::string>();
  return std::optional<std::string>(
      name + " still owes " + std::to_string(owed.size()) + " delete" +
      (owed.size() == 1 ? "" : "s") +
      " of a `lockstep reset` that was stopped: run that reset again to make them");
}

Result<ResetReport> ResetFromPeer(const std::filesystem::path& db,
                                  const std::filesystem::path& peer, int64_t retention_ms,
                                  const base::Clock& clock) {
  std::error_code ec;
  const bool postgres = store::IsPostgresUrl(db.string()) || store::IsPostgresUrl(peer.string());
  if (postgres ? db == peer : std::filesystem::equivalent(db, peer, ec))
    return InvalidArgument(store::RedactPassword(db.string()) + " is named twice");
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
  return Reset(db.string(), learn, sync, clock);
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
  return Reset(db.string(), learn, sync, clock);
}

}  // namespace lockstep::engine
