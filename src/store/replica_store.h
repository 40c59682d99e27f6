// The replica store: records with their versions, the change log, peer cursors and the conflict
// log, kept in `_lockstep_*` tables inside a SQLite or PostgreSQL database (see metadata_schema.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/clock.h"
#include "core/hybrid_clock.h"
#include "core/merge.h"
#include "core/record.h"
#include "store/database.h"

namespace lockstep::store {

// A record as stored: the record, and for each of its fields (in the record's field order) the
// seq of this store's change log at which that field last changed. `seq` is their maximum.
struct StoredRecord {
  core::Record record;
  std::vector<uint64_t> field_seqs;
  uint64_t seq = 0;
  std::string encoded;  // the record's canonical encoding as read, empty when not read
};

struct Collection {
  int64_t id = 0;
  std::string name;
  std::string policy;      // as written by the user: see core::ParsePolicy
  std::string create_sql;  // the table's CREATE statement, to create it where it is missing
};

// A record read from the change log, named by its collection.
struct Change {
  std::string collection;
  StoredRecord stored;
};

// One page of the change log. `scanned_to` is the highest seq looked at, which can exceed the
// last change returned when changes were skipped: a cursor advances to it.
struct ChangePage {
  std::vector<Change> changes;
  uint64_t scanned_to = 0;
};

// How far this store has merged a peer's change log. A cursor from another epoch is void.
struct Cursor {
  int64_t epoch = 0;
  uint64_t seq = 0;
};

// One entry of the conflict log: a value that lost, and the one that beat it.
struct LoggedConflict {
  int64_t logged_ms = 0;
  std::string collection;
  std::string key;
  std::string field;
  core::Version winner;
  core::Version loser;  // its dot's counter is not kept: node and HLC name it
  bool pending = false;
};

// One store on one connection; not thread-safe. Reads outside a write transaction see the last
// committed state. Writes happen between BeginWrite() and Commit(): one transaction (a savepoint
// when the caller already opened one, which is how a dry run rolls everything back).
class ReplicaStore {
 public:
  // Opens the store in `db`, creating its metadata and identity (a random node id and log epoch)
  // when missing. `physical` must outlive the store.
  static Result<std::unique_ptr<ReplicaStore>> Open(Database& db, const base::Clock& physical);

  const core::NodeId& node() const { return node_; }
  int64_t epoch() const { return epoch_; }
  Database& db() { return db_; }
  core::HybridClock& clock() { return clock_; }

  // Database::BeginWrite (waiting out other writers for a bounded time), then reloads the
  // counters in case another process wrote since.
  Status BeginWrite();
  Status Commit();
  void Rollback();
  // Runs `body` between BeginWrite and Commit, rolling back when it fails.
  Status Write(const std::function<Status()>& body);

  // The next dot of this node. REQUIRES: inside a write.
  core::Dot NextDot();

  Result<std::vector<Collection>> Collections();
  // The collection called `name`, registered with `policy` and `create_sql` when new.
  Result<Collection> EnsureCollection(const std::string& name, const std::string& policy,
                                      const std::string& create_sql);
  Status SetPolicy(int64_t collection, const std::string& policy);

  Result<std::optional<StoredRecord>> Get(int64_t collection, std::string_view key);
  // The largest key stored in `collection`, or nullopt when it holds none.
  Result<std::optional<std::string>> MaxKey(int64_t collection);
  // Writes `stored`, moving `changed_fields` (and the record) to the next seq. Writes are
  // batched: they reach SQLite by Commit() at the latest; Get() sees them before that. `origin` is
  // the peer whose state the record now equals, or nullptr. REQUIRES: inside a write;
  // `changed_fields` name fields of stored.record, sorted.
  // `encoding`, when given, is the record's canonical encoding, known to the caller (a record
  // taken unchanged from a peer): it spares encoding it again.
  Status Put(int64_t collection, StoredRecord& stored, std::span<const std::string> changed_fields,
             const core::NodeId* origin, std::string encoding = {});

  // Records whose seq is above `after`, in seq order, at most `limit` of them looked at,
  // skipping those whose origin is `skip_origin` (the peer they would go to: it has them).
  Result<ChangePage> ChangesAfter(uint64_t after, size_t limit, const core::NodeId* skip_origin);
  uint64_t last_seq() const { return seq_; }

  // Cursors are kept per peer and per set of collections (`scope`, their sorted names joined by
  // commas): records of collections outside the set are skipped, so a cursor says nothing about
  // them, and syncing another set later starts that set from the beginning.
  Result<std::optional<Cursor>> GetCursor(const core::NodeId& peer, std::string_view scope);
  Status SetCursor(const core::NodeId& peer, std::string_view scope, const Cursor& cursor);

  // The node that answered at `url` last time, so that a dialer can name its cursor before the
  // listener has introduced itself.
  Result<std::optional<core::NodeId>> ListenerAt(std::string_view url);
  Status RememberListener(std::string_view url, const core::NodeId& node);

  Status LogConflict(const std::string& collection, const core::Conflict& conflict);
  // The conflict log, oldest first.
  Result<std::vector<LoggedConflict>> Conflicts();
  // Marks the pending conflicts of one record resolved. REQUIRES: inside a write.
  Status MarkResolved(const std::string& collection, std::string_view key);

 private:
  ReplicaStore(Database& db, const base::Clock& physical)
      : db_(db), physical_(physical), clock_(physical) {}
  // The small number standing for `peer` in this store, assigned when `assign` and new.
  Result<std::optional<int64_t>> PeerNumber(const core::NodeId& peer, bool assign);
  Status FlushPuts();
  void DropSupersededPuts();
  Result<ChangePage> ReadChanges(uint64_t after, size_t limit, std::optional<int64_t> skip);
  Status LoadIdentity();
  Status LoadCounters();
  Status SaveCounters();
  Result<Statement*> Cached(std::unique_ptr<Statement>& slot, std::string_view sql);

  Database& db_;
  const base::Clock& physical_;
  core::HybridClock clock_;
  core::NodeId node_;
  int64_t epoch_ = 0;
  uint64_t dot_counter_ = 0;
  uint64_t seq_ = 0;
  bool in_savepoint_ = false;
  struct SavedCounters {
    uint64_t dot_counter = 0, seq = 0, hlc = 0;
    friend bool operator==(const SavedCounters&, const SavedCounters&) = default;
  };
  SavedCounters saved_;  // as last loaded or saved
  std::map<core::NodeId, int64_t> peer_numbers_;

  // Records written but not yet handed to SQLite, at most kPutBatch.
  struct PendingPut {
    int64_t collection;
    std::string key;
    uint64_t seq;
    std::string record;
    std::string seqs;
    std::optional<int64_t> origin;
  };
  static constexpr size_t kPutBatch = 64;
  std::vector<PendingPut> pending_;

  std::unique_ptr<Statement> get_;
  std::unique_ptr<Statement> put_;
  std::unique_ptr<Statement> put_many_;
  std::unique_ptr<Statement> changes_;
  std::unique_ptr<Statement> conflict_;
};

}  // namespace lockstep::store
