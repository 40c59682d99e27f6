#include "engine/local_sync.h"

#include <algorithm>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "connectors/sqlite/table_schema.h"
#include "core/policy.h"
#include "engine/open_database.h"
#include "engine/reset.h"
#include "engine/restore_and_retention.h"
#include "store/postgres_db.h"

namespace lockstep::engine {
namespace {

using connectors::Source;
using connectors::TableSchema;

using Sources = std::vector<std::unique_ptr<Source>>;

// The tables to sync and the schema each should have, decided before anything is written.
struct Plan {
  std::vector<TableSchema> schemas;
  std::vector<std::string> skipped;
};

Result<std::set<std::string>> CandidateTables(Sources& sources, const LocalSyncOptions& options) {
  if (!options.tables.empty())
    return std::set<std::string>(options.tables.begin(), options.tables.end());
  std::set<std::string> names;
  for (auto& source : sources) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> tables, source->ListTables());
    names.insert(tables.begin(), tables.end());
  }
  return names;
}

// Every database must resolve conflicts the same way, or their states would differ.
Status CheckPoliciesAgree(Sources& sources, const Plan& plan) {
  std::map<std::string, std::pair<std::string, std::string>> seen;  // table -> (policy, path)
  for (auto& source : sources) {
    LOCKSTEP_ASSIGN_OR_RETURN(auto policies, source->Policies());
    for (const TableSchema& schema : plan.schemas) {
      auto it = policies.find(schema.name);
      if (it == policies.end()) continue;
      auto [first, inserted] =
          seen.emplace(schema.name, std::make_pair(it->second, source->name()));
      if (!inserted && first->second.first != it->second) {
        return FailedPrecondition("table '" + schema.name + "' resolves conflicts by '" +
                                  first->second.first + "' in " + first->second.second +
                                  " but by '" + it->second + "' in " + source->name() +
                                  "; choose one with --conflict");
      }
    }
  }
  return Status::Ok();
}

Result<Plan> MakePlan(Sources& sources, const LocalSyncOptions& options) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::set<std::string> names, CandidateTables(sources, options));
  Plan plan;
  for (const std::string& name : names) {
    std::optional<TableSchema> reference;
    std::string reference_path;
    Status refused;
    for (auto& source : sources) {
      auto schema = source->Schema(name);
      if (!schema.has_value()) {
        refused = schema.error().WithContext(source->name());
        break;
      }
      if (!schema->has_value()) continue;
      if (!reference.has_value()) {
        reference = std::move(**schema);
        reference_path = source->name();
        continue;
      }
      LOCKSTEP_RETURN_IF_ERROR(
          connectors::sqlite::CheckSameShape(*reference, reference_path, **schema, source->name()));
    }
    if (!refused.ok()) {
      // Asked for by name, a table we cannot sync is an error; found by looking, it is a note.
      if (!options.tables.empty()) return refused;
      plan.skipped.push_back(name + " (" + refused.message() + ")");
      continue;
    }
    if (!reference.has_value()) return NotFound("table '" + name + "' exists in no database");
    plan.schemas.push_back(std::move(*reference));
  }
  return plan;
}

// After `from` sent its changes to `to`, every record `to` wrote may be one it took verbatim
// from `from`. If `from` had already seen all of `to`'s log before, its cursor into that log can
// jump to the end: reading it back would only find the echoes of what `from` just sent.
Status SkipEchoes(Source& from, Source& to, uint64_t receiver_last, size_t verbatim,
                  size_t stamped) {
  store::ReplicaStore& receiver = to.store();
  if (stamped > 0 || receiver.last_seq() != receiver_last + verbatim) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::Cursor> known,
                            from.store().GetCursor(receiver.node(), from.CursorScope()));
  // No cursor yet is as good as one at the start, when the receiver's log was empty.
  const bool seen_all = known.has_value()
                            ? known->epoch == receiver.epoch() && known->seq == receiver_last
                            : receiver_last == 0;
  // Nothing to move: a settled pair is not written to (the cursor's sync time included).
  if (!seen_all || receiver.last_seq() == receiver_last) return Status::Ok();
  return from.store().Write([&] {
    return from.store().SetCursor(receiver.node(), from.CursorScope(),
                                  {receiver.epoch(), receiver.last_seq()});
  });
}

Result<Transfer> Move(Source& from, Source& to, size_t batch_size) {
  Transfer transfer{from.name(), to.name()};
  store::ReplicaStore& sender = from.store();
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::Cursor> saved,
                            to.store().GetCursor(sender.node(), to.CursorScope()));
  // A cursor into another epoch of the sender's log, or beyond its end (the sender was restored
  // from a backup), is void: start over. Merging is idempotent, so that costs time, not data.
  uint64_t cursor = 0;
  if (saved.has_value() && saved->epoch == sender.epoch() && saved->seq <= sender.last_seq()) {
    cursor = saved->seq;
  }
  const core::NodeId receiver = to.store().node();
  LOCKSTEP_RETURN_IF_ERROR(from.MakeDurable());
  const uint64_t receiver_last = to.store().last_seq();
  size_t verbatim = 0;
  size_t stamped = 0;
  // The sender's next page is read while the receiver applies this one, as `.dump | sqlite3`
  // reads and writes in two processes: the two databases share nothing, and each is used by one
  // thread at a time. (A returning error waits for the read in flight: the future's destructor.)
  auto read_after = [&sender, &receiver, batch_size](uint64_t after) {
    return std::async(std::launch::async, [&sender, &receiver, batch_size, after] {
      return sender.ChangesAfter(after, batch_size, &receiver);
    });
  };
  std::future<Result<store::ChangePage>> next = read_after(cursor);
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(store::ChangePage page, next.get());
    if (page.scanned_to == cursor) break;
    next = read_after(page.scanned_to);
    LOCKSTEP_ASSIGN_OR_RETURN(connectors::ApplyStats stats,
                              to.Apply(page.changes, sender.node(), to.CursorScope(),
                                       store::Cursor{sender.epoch(), page.scanned_to}));
    transfer.sent += stats.received;
    transfer.changed += stats.changed;
    transfer.conflicts += stats.conflicts;
    verbatim += stats.verbatim;
    stamped += stats.stamped;
    cursor = page.scanned_to;
  }
  LOCKSTEP_RETURN_IF_ERROR(SkipEchoes(from, to, receiver_last, verbatim, stamped));
  return transfer;
}

// The pairs that changes will move between, as (from, to).
std::vector<std::pair<Source*, Source*>> Moves(Sources& sources, const LocalSyncOptions& options) {
  std::vector<std::pair<Source*, Source*>> moves;
  Source* first = sources.front().get();
  // Through the first database, like a hub: everything flows into it, then out to the others.
  if (options.direction != Direction::kPush) {
    for (size_t i = 1; i < sources.size(); ++i) moves.emplace_back(sources[i].get(), first);
  }
  if (options.direction != Direction::kPull) {
    for (size_t i = 1; i < sources.size(); ++i) moves.emplace_back(first, sources[i].get());
  }
  return moves;
}

// Before any user write is stamped or any change moves: restores detected, tombstones beyond
// the retention collected, pairs that would resurrect deletions refused.
Status Prepare(Sources& sources, const Plan& plan, const LocalSyncOptions& options,
               const base::Clock& clock) {
  std::vector<std::string> names;
  for (const TableSchema& schema : plan.schemas) names.push_back(schema.name);
  const std::string scope = connectors::CursorScopeOf(std::move(names));
  for (auto& source : sources) LOCKSTEP_RETURN_IF_ERROR(source->OpenStore());
  for (size_t i = 1; i < sources.size(); ++i) {
    LOCKSTEP_RETURN_IF_ERROR(ExchangeViews(*sources.front(), *sources[i], scope));
  }
  for (auto& source : sources) {
    LOCKSTEP_RETURN_IF_ERROR(source->store()
                                 .CollectTombstones(clock.NowMillis() - options.retention_ms)
                                 .status()
                                 .WithContext(source->name()));
  }
  for (auto [from, to] : Moves(sources, options)) {
    LOCKSTEP_RETURN_IF_ERROR(CheckRetention(*from, *to, scope, options.retention_ms));
  }
  return Status::Ok();
}

Status Run(Sources& sources, const Plan& plan, const LocalSyncOptions& options,
           const base::Clock& clock, LocalSyncReport& report) {
  LOCKSTEP_RETURN_IF_ERROR(Prepare(sources, plan, options, clock));
  for (auto& source : sources) {
    for (const TableSchema& schema : plan.schemas) {
      LOCKSTEP_ASSIGN_OR_RETURN(std::optional<TableSchema> existing, source->Schema(schema.name));
      if (!existing.has_value()) report.created.push_back(schema.name + " in " + source->name());
    }
    LOCKSTEP_RETURN_IF_ERROR(source->Attach(plan.schemas, options.policy));
  }
  for (auto [from, to] : Moves(sources, options)) {
    LOCKSTEP_ASSIGN_OR_RETURN(Transfer transfer, Move(*from, *to, options.batch_size));
    report.transfers.push_back(std::move(transfer));
  }
  return Status::Ok();
}

}  // namespace

size_t LocalSyncReport::changed() const {
  size_t total = 0;
  for (const Transfer& t : transfers) total += t.changed;
  return total;
}

size_t LocalSyncReport::conflicts() const {
  size_t total = 0;
  for (const Transfer& t : transfers) total += t.conflicts;
  return total;
}

Result<LocalSyncReport> SyncDatabases(std::span<const std::filesystem::path> paths,
                                      const LocalSyncOptions& options, const base::Clock& clock) {
  if (paths.size() < 2) return InvalidArgument("sync needs at least two databases");
  LOCKSTEP_RETURN_IF_ERROR(core::ParsePolicy(options.policy).status());
  for (size_t i = 0; i < paths.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      std::error_code ec;
      if (paths[i] == paths[j] || (!store::IsPostgresUrl(paths[i].string()) &&
                                   std::filesystem::equivalent(paths[i], paths[j], ec))) {
        return InvalidArgument(store::RedactPassword(paths[i].string()) + " is named twice");
      }
    }
  }
  Sources sources;
  for (size_t i = 0; i < paths.size(); ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<Source> source,
                              OpenDatabase(paths[i].string(), /*create_if_missing=*/i > 0, clock));
    sources.push_back(std::move(source));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(Plan plan, MakePlan(sources, options));
  if (plan.schemas.empty()) return NotFound("no table with a primary key to sync");
  if (options.policy.empty()) LOCKSTEP_RETURN_IF_ERROR(CheckPoliciesAgree(sources, plan));

  LocalSyncReport report;
  report.dry_run = options.dry_run;
  for (const TableSchema& schema : plan.schemas) report.tables.push_back(schema.name);
  report.skipped = plan.skipped;
  for (auto& source : sources) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::string> warning,
                              UnfinishedResetWarning(source->database(), source->name()));
    if (warning.has_value()) report.warnings.push_back(std::move(*warning));
  }
  if (options.dry_run) {
    // Everything happens inside one transaction per database, rolled back at the end.
    for (auto& source : sources) LOCKSTEP_RETURN_IF_ERROR(source->database().BeginWrite());
  }
  if (options.retention_ms <= 0) return InvalidArgument("the retention must be positive");
  Status status = Run(sources, plan, options, clock, report);
  for (auto& source : sources) {
    if (options.dry_run) {
      (void)source->database().Exec("ROLLBACK");
    } else if (status.ok()) {
      status = source->MakeDurable();
    }
  }
  if (!status.ok()) return status;
  return report;
}

}  // namespace lockstep::engine
