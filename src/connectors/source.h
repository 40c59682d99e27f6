// A database synced in place, as the engine drives it: SQLite files and PostgreSQL databases
// alike. Each keeps its replica store beside the user's tables.
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "connectors/row_sink.h"
#include "connectors/schema.h"
#include "store/replica_store.h"

namespace lockstep::connectors {

// What applying a batch of changes did.
struct ApplyStats {
  size_t received = 0;   // records in the batch
  size_t changed = 0;    // records whose state changed here
  size_t verbatim = 0;   // of those, records that took the sender's state exactly
  size_t stamped = 0;    // local writes stamped first (users' edits made meanwhile)
  size_t conflicts = 0;  // losing values logged
  double commit_ms = 0;  // of the time Apply took, its COMMIT's (for the batch trace)
};

// Not thread-safe. Opening inspects without modifying; Attach() is the first write.
class Source {
 public:
  virtual ~Source() = default;

  // How messages name it: a path, or a URL without its password.
  virtual const std::string& name() const = 0;
  // The connection, for a caller's own transaction (a dry run).
  virtual store::Database& database() = 0;

  // The user's tables that could be synced, in name order.
  virtual Result<std::vector<std::string>> ListTables() = 0;
  // The schema of `table`, or nullopt when it is missing. Reads only.
  virtual Result<std::optional<TableSchema>> Schema(const std::string& table) = 0;
  // The conflict policy of each registered collection; empty before the first attach. Reads only.
  virtual Result<std::map<std::string, std::string>> Policies() = 0;

  // With kLater, Attach leaves captured writes for the next StampPending: a node about to meet a
  // peer stamps only once the handshake has told it whether it was restored from an older copy
  // (ReplicaStore::AdoptPeerView), so that it issues no dot the peer has seen.
  enum class Stamping { kNow, kLater };

  // Opens the replica store (its metadata and the node's identity), creating what is missing.
  virtual Status OpenStore() = 0;
  // Forgets the open store and the attached tables (their statements go), so that the next
  // OpenStore or Attach reads the metadata afresh: a reset drops it and attaches again within
  // one transaction.
  virtual void CloseStore() = 0;
  // Puts `schemas` under sync: opens the store, creates missing tables, registers collections
  // (setting `policy` when not empty), installs capture, makes the rows of newly attached tables
  // local writes, then (with kNow) stamps pending captures.
  virtual Status Attach(std::span<const TableSchema> schemas, const std::string& policy,
                        Stamping stamping = Stamping::kNow) = 0;
  // REQUIRES: OpenStore() or Attach() succeeded.
  virtual store::ReplicaStore& store() = 0;
  // The user's table `name` as attached, or nullptr when it is not: its collection, policy and
  // rows, for writes made outside a peer's batch (a conflict resolved by hand).
  virtual RowSink* Table(const std::string& name) = 0;
  // Turns captured changes into local writes.
  virtual Status StampPending() = 0;
  // The same, except that it may return once it has made some writes, leaving the rest to the next
  // call: a session sends what it stamped before stamping more, so that a source written faster
  // than it stamps still sends as it goes, not only once its writers pause. By default, all.
  virtual Status StampSome() { return StampPending(); }
  // Lets StampSome gather a stream of commits into rounds at least `gather` apart: a round that
  // follows a round which found changes less than `gather` ago waits for the rest of it first,
  // unless that round was full (a backlog). A capture after a quiet `gather` is stamped at once.
  // For a source that one live session reads (a node dialing its peer): the wait blocks its
  // caller. Zero (the default) stamps whenever asked. A source may ignore it.
  virtual void PaceRounds(std::chrono::milliseconds gather) { (void)gather; }
  // Merges `changes` from the peer `from` in one transaction with the new cursor (kept for
  // `scope`): the records, the user's rows, the conflict log. Records may be moved from.
  virtual Result<ApplyStats> Apply(std::span<store::Change> changes, const core::NodeId& from,
                                   std::string_view scope, const store::Cursor& cursor) = 0;
  // The names of the synced tables, sorted and joined by commas: the scope of cursors
  // (CursorScopeOf).
  virtual std::string CursorScope() const = 0;
  // Makes everything committed durable before it leaves (SQLite syncs its WAL).
  virtual Status MakeDurable() = 0;
};

// The scope of cursors when `tables` are synced: their names, sorted, without repeats, joined by
// commas. Known before the tables are attached.
inline std::string CursorScopeOf(std::vector<std::string> tables) {
  std::sort(tables.begin(), tables.end());
  tables.erase(std::unique(tables.begin(), tables.end()), tables.end());
  std::string scope;
  for (const std::string& name : tables) scope += (scope.empty() ? "" : ",") + name;
  return scope;
}

}  // namespace lockstep::connectors
