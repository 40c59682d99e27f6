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
#include "store/batched_statements.h"
#include "store/bucket_sums.h"
#include "store/database.h"

namespace lockstep::store {

// A record as stored: the record, and for each of its fields (in the record's field order) the
// seq of this store's change log at which that field last changed. `seq` is their maximum.
struct StoredRecord {
  core::Record record;
  std::vector<uint64_t> field_seqs;
  uint64_t seq = 0;
  // The record's canonical encoding as this store holds it, empty when the store does not hold
  // the record (or it was not read). Put() subtracts the item of this encoding from the bucket
  // sums, so it must be the stored one: a record from Get() keeps it while it is changed.
  std::string encoded;
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
  // Opens an existing store without writing anything (`db` may be read-only): kNotFound when
  // `db` has no Lockstep metadata, kFailedPrecondition when its metadata is of another version
  // (an older one is migrated by the next sync). Only reads may be made through it.
  static Result<std::unique_ptr<ReplicaStore>> OpenReadOnly(Database& db,
                                                            const base::Clock& physical);

  const core::NodeId& node() const { return node_; }
  int64_t epoch() const { return epoch_; }
  Database& db() { return db_; }
  core::HybridClock& clock() { return clock_; }

  // Database::BeginWrite (waiting out other writers for a bounded time), then reloads the
  // counters in case another process wrote since. `send_ahead`, when given, sends statements
  // ahead (Statement::Send) to come back with the counters, in the write's first round trip.
  Status BeginWrite(const std::function<void()>& send_ahead = nullptr);
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
  // What Get() returns for each of `keys` (duplicates allowed), in their order, with one query per
  // chunk of up to kGetBatch keys rather than one per key: on PostgreSQL a query is a round trip.
  Result<std::vector<std::optional<StoredRecord>>> GetMany(int64_t collection,
                                                           std::span<const std::string> keys);
  static constexpr size_t kGetBatch = 1024;
  // Sends GetMany's first query for `keys` ahead (Statement::Send): the next GetMany of the same
  // keys reads its answer, which comes back with those of the other collections sent. Nothing
  // may be put into `collection` in between.
  Status SendGetMany(int64_t collection, std::span<const std::string> keys);
  // Calls `visit` with every record of `collection` (tombstones included), in key order.
  Status ForEachRecord(int64_t collection, const std::function<Status(const StoredRecord&)>& visit);
  // The largest key stored in `collection`, or nullopt when it holds none.
  Result<std::optional<std::string>> MaxKey(int64_t collection);
  // Sends MaxKey's query ahead (Statement::Send): the next MaxKey of `collection` reads its
  // answer, which comes back with those of the other collections sent.
  Status SendMaxKey(int64_t collection);
  // Writes `stored`, moving `changed_fields` (and the record) to the next seq. Writes are
  // batched: they reach the database by Commit() at the latest; Get() sees them before that.
  // `origin` is the peer whose state the record now equals, or nullptr. REQUIRES: inside a write;
  // `changed_fields` name fields of stored.record, sorted.
  // `encoding`, when given, is the record's canonical encoding, known to the caller (a record
  // taken unchanged from a peer): it spares encoding it again.
  // `keep` says whether `stored.encoded` is left holding the new encoding (kYes: a caller that
  // may write the same record again) or is emptied, the encoding moving into the write instead of
  // being copied (kNo: a caller about to drop `stored`, such as an apply; a copy per record).
  enum class KeepEncoding { kYes, kNo };
  Status Put(int64_t collection, StoredRecord& stored, std::span<const std::string> changed_fields,
             const core::NodeId* origin, std::string encoding = {},
             KeepEncoding keep = KeepEncoding::kYes);

  // Records whose seq is above `after`, in seq order, at most `limit` of them returned,
  // skipping those whose origin is `skip_origin` (the peer they would go to: it has them). Read
  // from the change log (`_lockstep_log`), whose stale entries are skipped.
  Result<ChangePage> ChangesAfter(uint64_t after, size_t limit, const core::NodeId* skip_origin);
  uint64_t last_seq() const { return seq_; }

  // ---- what reconciliation reads (store_item_set.h) -------------------------------------------

  // Hands everything this write has accumulated (records, bucket sums, highest dots) to the
  // database, so that reads of the item columns and bucket sums see it. Does nothing outside a
  // write.
  Status FlushWrites();
  BucketSums& bucket_sums() { return sums_; }
  // Makes the index of records by bucket if a large write dropped it (a sort of the collection's
  // positions, once); does nothing on a read-only connection, whose reads then scan.
  Status EnsureItemIndex();
  // What reconciliation's reads want first: the bucket index (EnsureItemIndex) and the pending
  // bucket-sum changes folded (BucketSums::Fold), in this store's write when inside one, else in a
  // write of its own when any are pending. Inside a read snapshot or on a read-only connection it
  // folds nothing: the reads add the pending changes.
  Status PrepareItemReads();
  // The item positions of the records of `collection` whose seq is above `after`, newest first,
  // skipping those whose origin is `skip_origin` (it holds them as they are). Only the last
  // `limit` seqs of the log are looked at, so at most `limit` positions come back, read from the
  // change log and the item column without decoding a record.
  Result<std::vector<uint64_t>> ChangedPositions(int64_t collection, uint64_t after, size_t limit,
                                                 const core::NodeId* skip_origin);
  // A write that adds at least this many new records drops the bucket index rather than insert
  // into it in random order: a first sync, or any bulk load.
  static constexpr size_t kBulkLoadRecords = 10'000;
  // Drops the bucket index if this write adds at least kBulkLoadRecords: called with the number of
  // new records so far at each flush, and before a scan that stamps the rows of a table as it
  // reads them, with the rows it will stamp (SQLite refuses to drop an index while a statement of
  // the connection is reading, so the scan could not drop it later).
  Status DropItemIndexForBulkLoad(size_t new_records);

  // ---- restore detection -----------------------------------------------------------------------

  // The highest dot counter of `node` held in this store's records (0 when none). A peer
  // compares what it holds of itself with its own counter: see AdoptPeerView.
  Result<uint64_t> HighestDotOf(const core::NodeId& node);
  uint64_t dot_counter() const { return dot_counter_; }

  // Takes in what `peer` knows of this store: the highest dot of this node it holds and its
  // cursor into this store's log. When the peer holds a dot above this store's counter, or its
  // cursor (of this epoch) points past the end of this store's log, this store was restored from
  // an older copy of its file: its counter jumps to the peer's highest dot, so that no dot a peer
  // has seen is issued again, and a new log epoch starts, so that every peer's cursor of it is
  // void and falls back to reconciliation. Returns whether it did. Call it before stamping the
  // writes users made since the restore, so that they get fresh dots. REQUIRES: not in a write.
  Result<bool> AdoptPeerView(const core::NodeId& peer, uint64_t highest_dot_of_me,
                             std::optional<Cursor> peer_cursor_of_me);

  // Forgets that records came verbatim from `peer`, so that they are sent back to it: `peer` was
  // restored from an older copy and no longer holds them. Call it when `peer`'s log epoch is not
  // the one this store's cursor of it names. REQUIRES: not in a write.
  Status ForgetOrigin(const core::NodeId& peer);

  // ---- the change log's stale entries -----------------------------------------------------------

  // Each write of a record that was already stored leaves its previous log entry stale. A commit
  // that brings the stale entries to about the number of records (the entries the last trim
  // kept plus the records added since; at least `log_trim_minimum()`) trims them all, in one pass
  // over the log: a cost proportional to the writes that made them stale, paid once in a while
  // rather than a random page per update.
  static constexpr uint64_t kLogTrimMinimum = 65'536;
  uint64_t log_trim_minimum() const { return log_trim_minimum_; }
  // Tests lower it, to trim small logs.
  void set_log_trim_minimum(uint64_t entries) { log_trim_minimum_ = entries; }
  // The stale entries in the log now, as committed (and counted by this write inside one).
  uint64_t log_stale() const { return log_stale_; }
  // Removes every stale entry of the log now. REQUIRES: inside a write.
  Status TrimLog();

  // ---- retention -------------------------------------------------------------------------------

  // How far tombstone collection has gone: tombstones up to log seq `seq`, deleted up to
  // `millis`, may be gone. Zero when none ever was collected.
  struct GcHorizon {
    uint64_t seq = 0;
    int64_t millis = 0;
  };
  Result<GcHorizon> Horizon();
  // Removes the tombstones (records deleted under every policy) deleted before
  // `deleted_before_ms` and moves the horizon past them. Returns how many went. REQUIRES: not in
  // a write.
  Result<size_t> CollectTombstones(int64_t deleted_before_ms);
  // Whether a peer, whose cursor into this store's log is `peer_cursor_of_me` and who last merged
  // it at `peer_synced_ms`, may have missed a deletion whose tombstone is gone: it must be reset
  // rather than synced. A peer that never synced with this store (no cursor) has nothing to
  // resurrect from this store's past and is not refused.
  Result<bool> PeerNeedsReset(std::optional<Cursor> peer_cursor_of_me,
                              std::optional<int64_t> peer_synced_ms);

  // Cursors are kept per peer and per set of collections (`scope`, their sorted names joined by
  // commas): records of collections outside the set are skipped, so a cursor says nothing about
  // them, and syncing another set later starts that set from the beginning.
  Result<std::optional<Cursor>> GetCursor(const core::NodeId& peer, std::string_view scope);
  // Also notes when, by this store's clock, as the time of the last sync with `peer`.
  Status SetCursor(const core::NodeId& peer, std::string_view scope, const Cursor& cursor);
  // When the cursor for `peer` and `scope` was last set (Unix ms), if known.
  Result<std::optional<int64_t>> CursorSyncedAt(const core::NodeId& peer, std::string_view scope);

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
  ReplicaStore(Database& db, const base::Clock& physical);
  static int64_t NewEpoch();
  // The small number standing for `peer` in this store, assigned when `assign` and new.
  Result<std::optional<int64_t>> PeerNumber(const core::NodeId& peer, bool assign);
  Status FlushPuts();
  void AnalyzeAfterGrowth();
  void DropSupersededPuts();
  Status FlushHighestDots();
  void NoteDots(const core::VersionVector& vv);
  Result<ChangePage> ReadChanges(uint64_t after, size_t limit, std::optional<int64_t> skip);
  Status LoadIdentity();
  Status LoadCounters();
  Result<Statement*> CountersQuery();
  Status SaveCounters();
  Result<Statement*> Cached(std::unique_ptr<Statement>& slot, std::string_view sql);
  // MaxKey's statement for `collection`, bound.
  Result<Statement*> MaxKeyQuery(int64_t collection);
  // Adds to `found` the stored rows of `keys` (distinct, not waiting in the batch).
  Status ReadStored(int64_t collection, std::span<const std::string_view> keys,
                    std::map<std::string_view, StoredRecord>& found);

  Database& db_;
  const base::Clock& physical_;
  core::HybridClock clock_;
  core::NodeId node_;
  int64_t epoch_ = 0;
  uint64_t dot_counter_ = 0;
  uint64_t seq_ = 0;
  bool in_savepoint_ = false;
  bool writing_ = false;      // between BeginWrite and Commit or Rollback
  uint64_t log_stale_ = 0;    // entries of the log whose record has moved on
  uint64_t log_trim_at_ = 0;  // entries kept by the last trim + records added: trim when as many
                              // are stale
  uint64_t log_trim_minimum_ = kLogTrimMinimum;
  struct SavedCounters {
    uint64_t dot_counter = 0, seq = 0, hlc = 0, log_stale = 0, log_trim_at = 0;
    friend bool operator==(const SavedCounters&, const SavedCounters&) = default;
  };
  SavedCounters saved_;  // as last loaded or saved
  std::map<core::NodeId, int64_t> peer_numbers_;

  // Records written but not yet handed to the database, at most max_pending_.
  struct PendingPut {
    int64_t collection;
    std::string key;
    uint64_t seq;
    std::string record;
    std::string seqs;
    std::optional<int64_t> origin;
    int64_t position;
    reconcile::Hash128 hash;
    std::optional<int64_t> deleted_ms;
    // Whether the record was stored before this put (in the database or in the batch): its
    // previous log entry goes stale when this one is written.
    bool replaces;
  };
  // On PostgreSQL, where each statement is a round trip to the server, more rows per statement.
  static constexpr size_t kPutBatch = 64;
  static constexpr size_t kPostgresPutBatch = 512;
  // Puts waiting at most, where new records are bulk loaded: a load costs a few round trips
  // whatever its size, so it takes many (a first sync's batch of 10,000, a table's attach).
  static constexpr size_t kPostgresPendingPuts = 8192;
  size_t max_pending_ = 0;
  // Writes `puts` with multi-row upserts.
  Status WritePuts(std::span<const PendingPut> puts);
  // Takes the puts of records new to this store out of pending_ and bulk loads them, when there
  // are enough of them and the database can (PostgreSQL's COPY).
  Status LoadNewPuts();
  std::vector<PendingPut> pending_;
  std::string hash_columns_;  // the hashes of one INSERT's rows, bound in place
  // Changes to the bucket sums and the highest dots held, written at Commit().
  BucketSums sums_;
  std::vector<core::VersionVector::Entry> dirty_dots_;
  size_t new_in_write_ = 0;     // records this write added (not replaced)
  bool index_dropped_ = false;  // by this write
  // Records added since the planner's statistics were last refreshed, and those added before.
  size_t added_since_analyze_ = 0;
  size_t analyzed_records_ = 0;

  // Lookups by key, one set per collection, so that those of several can be sent at once.
  std::map<int64_t, BatchedStatements> gets_;
  BatchedStatements& LookupsOf(int64_t collection);
  // The distinct keys of `keys` that GetMany reads from the database (sorted), the others being
  // put in this write and still waiting in the batch (added to `waiting`).
  std::vector<std::string_view> KeysToRead(
      int64_t collection, std::span<const std::string> keys,
      std::map<std::string_view, const PendingPut*>& waiting) const;
  // The lookup of the chunk of `keys` from `done`, `slots` wide, bound.
  Result<Statement*> BindLookup(int64_t collection, std::span<const std::string_view> keys,
                                size_t done, size_t slots);
  BatchedStatements put_;
  BatchedStatements log_;  // SQLite's; on PostgreSQL put_ appends the log entries itself
  std::unique_ptr<Statement> changes_;
  std::unique_ptr<Statement> changed_positions_;
  std::unique_ptr<Statement> load_counters_;
  std::unique_ptr<Statement> log_end_;
  std::unique_ptr<Statement> set_cursor_;
  std::unique_ptr<Statement> save_counters_;
  std::unique_ptr<Statement> conflict_;
  std::unique_ptr<Statement> note_dot_;
  std::unique_ptr<Statement> find_peer_;
  std::map<int64_t, std::unique_ptr<Statement>> max_key_;  // by collection
};

}  // namespace lockstep::store
