#include "store/replica_store.h"

#include <algorithm>
#include <random>

#include "base/bytes.h"
#include "core/codec.h"
#include "store/bulk_load.h"
#include "store/metadata_schema.h"
#include "store/record_item.h"

namespace lockstep::store {
namespace {

std::string_view AsBytes(const core::NodeId& node) {
  return {reinterpret_cast<const char*>(node.bytes.data()), node.bytes.size()};
}

// Field seqs as stored: empty when every field changed at the record's seq (a fresh insert or
// a record taken whole from a peer, by far the most common), else one varint per field.
std::string EncodeSeqs(const std::vector<uint64_t>& seqs, uint64_t record_seq) {
  if (std::all_of(seqs.begin(), seqs.end(), [&](uint64_t s) { return s == record_seq; })) {
    return {};
  }
  std::string bytes;
  base::ByteWriter out(bytes);
  for (uint64_t seq : seqs) out.PutVarint(seq);
  return bytes;
}

Result<std::vector<uint64_t>> DecodeSeqs(std::string_view bytes, size_t count, uint64_t seq) {
  if (bytes.empty()) return std::vector<uint64_t>(count, seq);
  base::ByteReader in(bytes);
  std::vector<uint64_t> seqs(count);
  for (uint64_t& field_seq : seqs) {
    LOCKSTEP_ASSIGN_OR_RETURN(field_seq, in.ReadVarint("field seq"));
  }
  if (!in.empty()) return DataLoss("field seqs do not match the record's fields");
  return seqs;
}

Result<StoredRecord> DecodeStored(std::string_view record, std::string_view seqs, uint64_t seq) {
  StoredRecord stored;
  LOCKSTEP_ASSIGN_OR_RETURN(stored.record, core::DecodeRecord(record));
  LOCKSTEP_ASSIGN_OR_RETURN(stored.field_seqs,
                            DecodeSeqs(seqs, stored.record.fields().size(), seq));
  stored.seq = seq;
  stored.encoded = std::string(record);
  return stored;
}

// The log entries joined with their records, for readers that walk the log in seq order: a
// stale entry finds no record at its seq and drops out. SQLite: CROSS JOIN makes it walk the log
// and look each record up by key. PostgreSQL estimates the three-column join at one row and
// would hash the whole records table for every page instead (770 ms against 17 ms for a page of
// 10,000 entries of a 1M-record log): a LATERAL lookup behind OFFSET 0, which the planner cannot
// flatten, keeps it walking the log's index.
struct LogJoin {
  std::string from;       // binds `l` (the log) and `r` (the record's `columns`)
  std::string condition;  // for the WHERE clause
};

LogJoin LogWithRecords(Dialect dialect, std::string_view columns) {
  if (dialect == Dialect::kPostgres) {
    return {"_lockstep_log l CROSS JOIN LATERAL (SELECT " + std::string(columns) +
                " FROM _lockstep_records WHERE collection = l.collection AND key = l.key AND "
                "seq = l.seq OFFSET 0) r",
            "TRUE"};
  }
  return {"_lockstep_log l CROSS JOIN _lockstep_records r",
          "r.collection = l.collection AND r.key = l.key AND r.seq = l.seq"};
}

// The columns a put writes, in the order of its values (WritePuts, LoadNewPuts).
constexpr std::string_view kRecordColumns =
    "collection, key, seq, record, field_seqs, origin, position, hash, deleted_ms";
constexpr size_t kRecordColumnCount = 9;
// The columns of a log entry, in the order of its values.
constexpr std::string_view kLogColumns = "seq, collection, key, origin";
constexpr size_t kLogColumnCount = 4;

}  // namespace

ReplicaStore::ReplicaStore(Database& db, const base::Clock& physical)
    : db_(db),
      physical_(physical),
      clock_(physical),
      sums_(db),
      put_(db.dialect() == Dialect::kPostgres ? kPostgresPutBatch : kPutBatch,
           [postgres = db.dialect() == Dialect::kPostgres](size_t rows) {
             // An update in place, not a delete and an insert: the bucket index entry of a record
             // that changed (same key, same position) is left alone instead of rewritten on a
             // random page. (And PostgreSQL has no INSERT OR REPLACE.)
             std::string upsert =
                 "INSERT INTO _lockstep_records(" + std::string(kRecordColumns) + ") VALUES " +
                 RowPlaceholders(rows, kRecordColumnCount) +
                 " ON CONFLICT(collection, key) DO UPDATE SET seq = excluded.seq, "
                 "record = excluded.record, field_seqs = excluded.field_seqs, "
                 "origin = excluded.origin, position = excluded.position, hash = excluded.hash, "
                 "deleted_ms = excluded.deleted_ms";
             if (!postgres) return upsert;
             // The log entries in the same statement: one round trip for both.
             return "WITH put AS (" + upsert + " RETURNING " + std::string(kLogColumns) +
                    ") INSERT INTO _lockstep_log(" + std::string(kLogColumns) + ") SELECT " +
                    std::string(kLogColumns) + " FROM put";
           }),
      log_(kPutBatch, [](size_t rows) {
        return "INSERT INTO _lockstep_log(" + std::string(kLogColumns) + ") VALUES " +
               RowPlaceholders(rows, kLogColumnCount);
      }) {
  max_pending_ = db.can_copy() ? kPostgresPendingPuts : put_.max_rows();
}

int64_t ReplicaStore::NewEpoch() {
  // Random, so that a cursor into any other epoch of this log is recognised as void.
  std::random_device random;
  return static_cast<int64_t>((uint64_t{random()} << 32 | random()) >> 1);
}

Result<std::unique_ptr<ReplicaStore>> ReplicaStore::Open(Database& db,
                                                         const base::Clock& physical) {
  std::unique_ptr<ReplicaStore> store(new ReplicaStore(db, physical));
  LOCKSTEP_RETURN_IF_ERROR(store->BeginWrite());
  Status status = InstallMetadata(db);
  if (status.ok()) status = store->LoadIdentity();
  if (status.ok()) status = store->Commit();
  if (!status.ok()) {
    store->Rollback();
    return status.WithContext("opening replica store in " + db.name());
  }
  return store;
}

Result<std::unique_ptr<ReplicaStore>> ReplicaStore::OpenReadOnly(Database& db,
                                                                 const base::Clock& physical) {
  LOCKSTEP_ASSIGN_OR_RETURN(int64_t version, MetadataVersion(db));
  if (version == 0) {
    return NotFound(db.name() + " has no lockstep metadata: it was never synced");
  }
  if (version != kMetadataVersion) {
    return FailedPrecondition(db.name() + " has lockstep metadata version " +
                              std::to_string(version) + ", this lockstep reads version " +
                              std::to_string(kMetadataVersion) +
                              (version < kMetadataVersion ? " (a sync upgrades it)" : ""));
  }
  // LoadIdentity writes only when the store has no identity yet.
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<Value> node, ReadMeta(db, "node"));
  if (!node.has_value()) return DataLoss(db.name() + " has no node id");
  std::unique_ptr<ReplicaStore> store(new ReplicaStore(db, physical));
  LOCKSTEP_RETURN_IF_ERROR(store->LoadIdentity().WithContext(db.name()));
  return store;
}

Status ReplicaStore::LoadIdentity() {
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<Value> node, ReadMeta(db_, "node"));
  if (!node.has_value()) {
    std::random_device random;
    for (auto& byte : node_.bytes) byte = static_cast<uint8_t>(random());
    epoch_ = NewEpoch();
    LOCKSTEP_RETURN_IF_ERROR(WriteMeta(db_, "node", Value::Bytes(std::string(AsBytes(node_)))));
    LOCKSTEP_RETURN_IF_ERROR(WriteMeta(db_, "epoch", Value::Int(epoch_)));
    return LoadCounters();
  }
  if (node->type() != ValueType::kBlob || node->as_blob().size() != node_.bytes.size()) {
    return DataLoss("stored node id is malformed");
  }
  node_ = core::NodeId::FromBytes(node->as_blob());
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<Value> epoch, ReadMeta(db_, "epoch"));
  if (!epoch.has_value() || epoch->type() != ValueType::kInt) {
    return DataLoss("stored log epoch is malformed");
  }
  epoch_ = epoch->as_int();
  return LoadCounters();
}

Result<Statement*> ReplicaStore::CountersQuery() {
  // Kept prepared: every write starts here, and on PostgreSQL preparing is a round trip.
  return Cached(load_counters_,
                "SELECT name, value FROM _lockstep_meta "
                "WHERE name IN ('dot_counter', 'seq', 'hlc', 'log_stale', 'log_trim_at')");
}

Status ReplicaStore::LoadCounters() {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * cached, CountersQuery());
  Statement& stmt = *cached;
  // Counters not stored yet are zero: a rolled-back first write must not leave its own behind.
  dot_counter_ = 0;
  seq_ = 0;
  log_stale_ = 0;
  log_trim_at_ = 0;
  for (;;) {
    auto row = stmt.Step();
    if (!row.has_value()) {
      stmt.Reset();
      return row.error();
    }
    if (!*row) break;
    const std::string_view name = stmt.ColumnText(0);
    const Value stored = stmt.ColumnAny(1);
    if (stored.type() != ValueType::kInt) {
      const std::string named(name);
      stmt.Reset();
      return DataLoss("stored " + named + " is malformed");
    }
    const auto value = static_cast<uint64_t>(stored.as_int());
    if (name == "dot_counter") dot_counter_ = value;
    if (name == "seq") seq_ = value;
    if (name == "hlc") clock_.Restore(core::Hlc{value});
    if (name == "log_stale") log_stale_ = value;
    if (name == "log_trim_at") log_trim_at_ = value;
  }
  stmt.Reset();
  saved_ = {dot_counter_, seq_, clock_.last().raw, log_stale_, log_trim_at_};
  return Status::Ok();
}

Status ReplicaStore::SaveCounters() {
  const SavedCounters now{dot_counter_, seq_, clock_.last().raw, log_stale_, log_trim_at_};
  // A transaction that wrote nothing stays a transaction that wrote nothing: no WAL frame, no sync.
  if (now == saved_) return Status::Ok();
  saved_ = now;
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt,
                            Cached(save_counters_,
                                   "INSERT INTO _lockstep_meta VALUES "
                                   "('dot_counter', ?1), ('seq', ?2), ('hlc', ?3), "
                                   "('log_stale', ?4), ('log_trim_at', ?5) "
                                   "ON CONFLICT(name) DO UPDATE SET value = excluded.value"));
  return stmt->BindAny(1, Value::Int(static_cast<int64_t>(dot_counter_)))
      .BindAny(2, Value::Int(static_cast<int64_t>(seq_)))
      .BindAny(3, Value::Int(static_cast<int64_t>(clock_.last().raw)))
      .BindAny(4, Value::Int(static_cast<int64_t>(log_stale_)))
      .BindAny(5, Value::Int(static_cast<int64_t>(log_trim_at_)))
      .Queue("saving the store's counters");
}

Status ReplicaStore::BeginWrite(const std::function<void()>& send_ahead) {
  new_in_write_ = 0;
  index_dropped_ = false;
  in_savepoint_ = db_.InTransaction();
  LOCKSTEP_RETURN_IF_ERROR((in_savepoint_ ? db_.Exec("SAVEPOINT lockstep_write") : db_.BeginWrite())
                               .WithContext("starting a write transaction on " + db_.name()));
  writing_ = true;
  // Before the metadata exists (the first open) there is nothing to read.
  const bool opened = node_ != core::NodeId{};
  // On PostgreSQL the BEGIN, the lock and these reads take one round trip. The counters go before
  // `send_ahead`'s statements, whose failure would otherwise be theirs.
  Status loaded = opened ? sums_.SendPendingSize() : Status::Ok();
  if (loaded.ok() && opened && send_ahead) {
    auto counters = CountersQuery();
    if (counters.has_value()) {
      (*counters)->Send();
      send_ahead();
    } else {
      loaded = counters.error();
    }
  }
  if (loaded.ok() && opened) loaded = LoadCounters();
  if (!loaded.ok()) Rollback();
  return loaded;
}

Status ReplicaStore::FlushWrites() {
  if (!db_.InTransaction()) return Status::Ok();
  LOCKSTEP_RETURN_IF_ERROR(FlushPuts());
  LOCKSTEP_RETURN_IF_ERROR(sums_.Flush());
  return FlushHighestDots();
}

Status ReplicaStore::Commit() {
  Status status = FlushPuts();
  if (status.ok() && log_stale_ >= std::max(log_trim_minimum_, log_trim_at_)) status = TrimLog();
  if (status.ok()) status = sums_.Flush();
  if (status.ok()) status = FlushHighestDots();
  if (status.ok() && node_ != core::NodeId{}) status = SaveCounters();
  if (status.ok()) status = db_.Exec(in_savepoint_ ? "RELEASE lockstep_write" : "COMMIT");
  if (!status.ok()) {
    Rollback();
    return status.WithContext("committing to " + db_.name());
  }
  writing_ = false;
  sums_.ForgetPendingSize();
  added_since_analyze_ += new_in_write_;
  if (!in_savepoint_) AnalyzeAfterGrowth();
  return Status::Ok();
}

void ReplicaStore::AnalyzeAfterGrowth() {
  // PostgreSQL plans by its statistics, which autovacuum refreshes only a minute or more after a
  // bulk load: until then it takes a table of a million records for a few hundred and looks keys
  // up by scanning the collection. Refreshed here each time the records this connection added
  // reach those it had seen at the last refresh (so a log number of times). SQLite needs none:
  // its plans for these statements do not depend on statistics.
  if (db_.dialect() != Dialect::kPostgres || added_since_analyze_ < kBulkLoadRecords ||
      added_since_analyze_ < analyzed_records_) {
    return;
  }
  analyzed_records_ += added_since_analyze_;
  added_since_analyze_ = 0;
  // Best effort, never waiting long: an autovacuum of the table holds the lock ANALYZE needs.
  Status status = db_.Exec(
      "BEGIN; SET LOCAL lock_timeout = '200ms'; ANALYZE _lockstep_records, _lockstep_log; COMMIT");
  if (!status.ok()) (void)db_.Exec("ROLLBACK");
}

void ReplicaStore::Rollback() {
  writing_ = false;
  pending_.clear();
  sums_.Discard();
  dirty_dots_.clear();
  // Errors are ignored on purpose: a failed rollback leaves SQLite's own rollback on close.
  (void)db_.Exec(in_savepoint_ ? "ROLLBACK TO lockstep_write; RELEASE lockstep_write" : "ROLLBACK");
}

Status ReplicaStore::Write(const std::function<Status()>& body) {
  LOCKSTEP_RETURN_IF_ERROR(BeginWrite());
  Status status = body();
  if (!status.ok()) {
    Rollback();
    return status;
  }
  return Commit();
}

core::Dot ReplicaStore::NextDot() { return core::Dot{node_, ++dot_counter_}; }

Result<std::vector<Collection>> ReplicaStore::Collections() {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement stmt,
      db_.Prepare("SELECT id, name, policy, create_sql FROM _lockstep_collections ORDER BY name"));
  std::vector<Collection> collections;
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    collections.push_back({stmt.ColumnInt(0), std::string(stmt.ColumnText(1)),
                           std::string(stmt.ColumnText(2)), std::string(stmt.ColumnText(3))});
  }
  return collections;
}

Result<Collection> ReplicaStore::EnsureCollection(const std::string& name,
                                                  const std::string& policy,
                                                  const std::string& create_sql) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement insert,
      db_.Prepare("INSERT INTO _lockstep_collections(name, policy, create_sql) VALUES (?, ?, ?) "
                  "ON CONFLICT(name) DO NOTHING"));
  LOCKSTEP_RETURN_IF_ERROR(
      insert.BindText(1, name).BindText(2, policy).BindText(3, create_sql).Run());
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Collection> all, Collections());
  for (Collection& collection : all) {
    if (collection.name == name) return std::move(collection);
  }
  return Internal("collection '" + name + "' vanished after registering it");
}

Status ReplicaStore::SetPolicy(int64_t collection, const std::string& policy) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement stmt, db_.Prepare("UPDATE _lockstep_collections SET policy = ? WHERE id = ?"));
  return stmt.BindText(1, policy).BindInt(2, collection).Run();
}

Result<Statement*> ReplicaStore::Cached(std::unique_ptr<Statement>& slot, std::string_view sql) {
  return PrepareCached(db_, slot, sql);
}

Result<std::optional<StoredRecord>> ReplicaStore::Get(int64_t collection, std::string_view key) {
  const std::string keys[] = {std::string(key)};
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::optional<StoredRecord>> found,
                            GetMany(collection, keys));
  return std::move(found.front());
}

BatchedStatements& ReplicaStore::LookupsOf(int64_t collection) {
  auto it = gets_.find(collection);
  if (it == gets_.end()) {
    it = gets_
             .emplace(collection, BatchedStatements(kGetBatch,
                                                    [](size_t keys) {
                                                      return "SELECT key, record, field_seqs, seq "
                                                             "FROM _lockstep_records WHERE "
                                                             "collection = ? AND key IN (" +
                                                             ListPlaceholders(keys) + ")";
                                                    }))
             .first;
  }
  return it->second;
}

std::vector<std::string_view> ReplicaStore::KeysToRead(
    int64_t collection, std::span<const std::string> keys,
    std::map<std::string_view, const PendingPut*>& waiting) const {
  // A record written in this transaction may still wait in the batch: the last put of it wins.
  for (const PendingPut& put : pending_) {
    if (put.collection == collection) waiting[put.key] = &put;
  }
  std::vector<std::string_view> to_read;
  to_read.reserve(keys.size());
  for (const std::string& key : keys) {
    if (!waiting.contains(key)) to_read.push_back(key);
  }
  std::sort(to_read.begin(), to_read.end());
  to_read.erase(std::unique(to_read.begin(), to_read.end()), to_read.end());
  return to_read;
}

Result<Statement*> ReplicaStore::BindLookup(int64_t collection,
                                            std::span<const std::string_view> keys, size_t done,
                                            size_t slots) {
  const size_t count = std::min(slots, keys.size() - done);
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt, LookupsOf(collection).For(db_, slots));
  stmt->BindInt(1, collection);
  // The last key fills the slots left over: the IN list does not mind a repeat.
  for (size_t i = 0; i < slots; ++i) {
    stmt->BindBlob(static_cast<int>(i + 2), keys[done + std::min(i, count - 1)]);
  }
  return stmt;
}

Status ReplicaStore::SendGetMany(int64_t collection, std::span<const std::string> keys) {
  std::map<std::string_view, const PendingPut*> waiting;
  const std::vector<std::string_view> to_read = KeysToRead(collection, keys, waiting);
  if (to_read.empty()) return Status::Ok();
  // The first chunk, bound as ReadStored will bind it (it reads the answer).
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * stmt,
      BindLookup(collection, to_read, 0, LookupsOf(collection).ReadChunk(to_read.size())));
  stmt->Send();
  return Status::Ok();
}

Result<std::vector<std::optional<StoredRecord>>> ReplicaStore::GetMany(
    int64_t collection, std::span<const std::string> keys) {
  std::map<std::string_view, const PendingPut*> waiting;
  const std::vector<std::string_view> to_read = KeysToRead(collection, keys, waiting);
  std::map<std::string_view, StoredRecord> found;
  LOCKSTEP_RETURN_IF_ERROR(ReadStored(collection, to_read, found));
  std::vector<std::optional<StoredRecord>> records;
  records.reserve(keys.size());
  for (const std::string& key : keys) {
    if (auto put = waiting.find(key); put != waiting.end()) {
      const PendingPut& pending = *put->second;
      LOCKSTEP_ASSIGN_OR_RETURN(StoredRecord stored,
                                DecodeStored(pending.record, pending.seqs, pending.seq));
      records.emplace_back(std::move(stored));
    } else if (auto row = found.find(key); row != found.end()) {
      records.emplace_back(row->second);
    } else {
      records.emplace_back();
    }
  }
  return records;
}

Status ReplicaStore::ReadStored(int64_t collection, std::span<const std::string_view> keys,
                                std::map<std::string_view, StoredRecord>& found) {
  size_t done = 0;
  while (done < keys.size()) {
    const size_t slots = LookupsOf(collection).ReadChunk(keys.size() - done);
    const size_t count = std::min(keys.size() - done, slots);
    LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt, BindLookup(collection, keys, done, slots));
    for (;;) {
      auto row = stmt->Step();
      if (!row.has_value()) {
        stmt->Reset();
        return row.error();
      }
      if (!*row) break;
      // The key as the caller holds it, which outlives the row.
      const auto first = keys.begin() + static_cast<std::ptrdiff_t>(done);
      const auto last = first + static_cast<std::ptrdiff_t>(count);
      const auto key = std::lower_bound(first, last, stmt->ColumnBlob(0));
      if (key == last || *key != stmt->ColumnBlob(0)) {
        stmt->Reset();
        return Internal("a lookup of stored records returned a key it did not ask for");
      }
      auto stored = DecodeStored(stmt->ColumnBlob(1), stmt->ColumnBlob(2),
                                 static_cast<uint64_t>(stmt->ColumnInt(3)));
      if (!stored.has_value()) {
        stmt->Reset();
        return stored.error().WithContext("reading stored record");
      }
      found.insert_or_assign(*key, std::move(*stored));
    }
    stmt->Reset();
    done += count;
  }
  return Status::Ok();
}

Status ReplicaStore::ForEachRecord(int64_t collection,
                                   const std::function<Status(const StoredRecord&)>& visit) {
  LOCKSTEP_RETURN_IF_ERROR(FlushPuts());
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db_.Prepare("SELECT record, field_seqs, seq FROM _lockstep_records "
                                        "WHERE collection = ? ORDER BY key"));
  stmt.BindInt(1, collection);
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return Status::Ok();
    LOCKSTEP_ASSIGN_OR_RETURN(StoredRecord stored,
                              DecodeStored(stmt.ColumnBlob(0), stmt.ColumnBlob(1),
                                           static_cast<uint64_t>(stmt.ColumnInt(2))));
    LOCKSTEP_RETURN_IF_ERROR(visit(stored));
  }
}

Result<Statement*> ReplicaStore::MaxKeyQuery(int64_t collection) {
  // One per collection, kept prepared, so that those of a batch's collections can be sent at once.
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt,
                            Cached(max_key_[collection],
                                   "SELECT key FROM _lockstep_records WHERE collection = ? "
                                   "ORDER BY key DESC LIMIT 1"));
  stmt->BindInt(1, collection);
  return stmt;
}

Status ReplicaStore::SendMaxKey(int64_t collection) {
  LOCKSTEP_RETURN_IF_ERROR(FlushPuts());
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt, MaxKeyQuery(collection));
  stmt->Send();
  return Status::Ok();
}

Result<std::optional<std::string>> ReplicaStore::MaxKey(int64_t collection) {
  LOCKSTEP_RETURN_IF_ERROR(FlushPuts());
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt, MaxKeyQuery(collection));
  auto row = stmt->Step();
  std::optional<std::string> key;
  if (row.has_value() && *row && !stmt->ColumnIsNull(0)) key = std::string(stmt->ColumnBlob(0));
  stmt->Reset();
  if (!row.has_value()) return row.error();
  return key;
}

Status ReplicaStore::Put(int64_t collection, StoredRecord& stored,
                         std::span<const std::string> changed_fields, const core::NodeId* origin,
                         std::string encoding, KeepEncoding keep) {
  const uint64_t seq = ++seq_;
  const auto& fields = stored.record.fields();
  stored.field_seqs.resize(fields.size(), 0);
  // Both lists are sorted by name, so one pass pairs them.
  size_t f = 0;
  for (const std::string& name : changed_fields) {
    while (f < fields.size() && fields[f].first < name) ++f;
    if (f < fields.size() && fields[f].first == name) stored.field_seqs[f] = seq;
  }
  stored.seq = seq;
  if (encoding.empty()) encoding = core::EncodeRecord(stored.record);
  const std::string& key = stored.record.key();
  // The bucket sums lose the record's old item and gain its new one.
  const bool replaces = !stored.encoded.empty();
  if (replaces) {
    sums_.Subtract(collection, ItemOf(key, stored.encoded));
  } else {
    ++new_in_write_;
  }
  const RecordItem item = ItemOf(key, encoding);
  sums_.Add(collection, item);
  NoteDots(stored.record.vv());
  if (keep == KeepEncoding::kYes) {
    stored.encoded = encoding;
  } else {
    stored.encoded.clear();
  }
  PendingPut put{collection,
                 key,
                 seq,
                 std::move(encoding),
                 EncodeSeqs(stored.field_seqs, seq),
                 std::nullopt,
                 PositionColumn(item.position),
                 item.hash,
                 TombstoneMillis(stored.record),
                 replaces};
  if (origin != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(put.origin, PeerNumber(*origin, true));
  }
  pending_.push_back(std::move(put));
  return pending_.size() >= max_pending_ ? FlushPuts() : Status::Ok();
}

Status ReplicaStore::DropItemIndexForBulkLoad(size_t new_records) {
  if (index_dropped_ || new_records < kBulkLoadRecords || !db_.InTransaction()) {
    return Status::Ok();
  }
  // PostgreSQL keeps the index up to date: dropping it would lock every reader out of the records
  // until this write commits. SQLite refuses to drop an index while a statement of this
  // connection is reading (a scan of a user table that stamps as it goes): then it is kept too.
  if (db_.dialect() != Dialect::kSqlite || db_.Reading()) return Status::Ok();
  index_dropped_ = true;
  return db_.Exec("DROP INDEX IF EXISTS _lockstep_records_by_bucket");
}

Status ReplicaStore::EnsureItemIndex() {
  // Only SQLite ever drops it (DropItemIndexForBulkLoad).
  if (db_.dialect() != Dialect::kSqlite || db_.read_only()) return Status::Ok();
  return db_.Exec(kItemIndexSql).WithContext("indexing records by bucket");
}

Status ReplicaStore::PrepareItemReads() {
  LOCKSTEP_RETURN_IF_ERROR(EnsureItemIndex());
  if (db_.read_only()) return Status::Ok();
  // Inside this store's write: its own transaction folds. Inside a read snapshot nothing may be
  // written: the reads add the pending changes themselves.
  if (writing_) return sums_.Fold();
  if (db_.InTransaction()) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(bool pending, sums_.HasPending());
  if (!pending) return Status::Ok();
  // Best effort: when another writer holds the database too long, reads still add the pending
  // changes, only each read costs more.
  (void)Write([this] { return sums_.Fold(); });
  return Status::Ok();
}

Result<std::vector<uint64_t>> ReplicaStore::ChangedPositions(int64_t collection, uint64_t after,
                                                             size_t limit,
                                                             const core::NodeId* skip_origin) {
  LOCKSTEP_RETURN_IF_ERROR(FlushPuts());
  std::optional<int64_t> skip;
  if (skip_origin != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(skip, PeerNumber(*skip_origin, false));
  }
  // Seqs are unique, so the last `limit` of them hold at most `limit` records: the scan of the
  // log stops there even when this collection changed little. (`seq_` may lag another
  // process's writes: the LIMIT still bounds what is returned.) A stale entry finds no record
  // at its seq and is skipped. CROSS JOIN makes SQLite walk the log and look the records up.
  const uint64_t from = std::max(after, seq_ > limit ? seq_ - limit : uint64_t{0});
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * stmt, Cached(changed_positions_, [&] {
        const LogJoin log = LogWithRecords(db_.dialect(), "position");
        return "SELECT r.position FROM " + log.from +
               " WHERE l.seq > ?1 AND l.collection = ?2 AND "
               "(CAST(?3 AS BIGINT) IS NULL OR l.origin IS DISTINCT FROM ?3) AND " +
               log.condition + " ORDER BY l.seq DESC LIMIT ?4";
      }()));
  stmt->BindInt(1, static_cast<int64_t>(from))
      .BindInt(2, collection)
      .BindInt(4, static_cast<int64_t>(limit));
  if (skip.has_value()) stmt->BindInt(3, *skip);
  std::vector<uint64_t> positions;
  for (;;) {
    auto row = stmt->Step();
    if (!row.has_value()) return row.error();
    if (!*row) break;
    positions.push_back(PositionFromColumn(stmt->ColumnInt(0)));
  }
  stmt->Reset();
  return positions;
}

void ReplicaStore::DropSupersededPuts() {
  if (pending_.size() < 2) return;
  // An apply writes in key order: keys that only ever increase cannot repeat.
  auto before = [](const PendingPut& x, const PendingPut& y) {
    return x.collection < y.collection || (x.collection == y.collection && x.key < y.key);
  };
  bool increasing = true;
  for (size_t i = 1; i < pending_.size() && increasing; ++i) {
    increasing = before(pending_[i - 1], pending_[i]);
  }
  if (increasing) return;
  // Each record's last put, and whether its first replaced a stored record: only then is there a
  // log entry in the database that the last one's makes stale.
  std::map<std::pair<int64_t, std::string_view>, std::pair<size_t, bool>> last;
  for (size_t i = 0; i < pending_.size(); ++i) {
    auto [it, fresh] =
        last.try_emplace({pending_[i].collection, pending_[i].key}, i, pending_[i].replaces);
    if (!fresh) it->second.first = i;
  }
  if (last.size() == pending_.size()) return;
  // Decided before anything moves: the map's keys view the pending puts' keys.
  std::vector<bool> keep(pending_.size(), false);
  for (const auto& [record, chain] : last) {
    keep[chain.first] = true;
    pending_[chain.first].replaces = chain.second;
  }
  std::vector<PendingPut> kept;
  kept.reserve(last.size());
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (keep[i]) kept.push_back(std::move(pending_[i]));
  }
  pending_ = std::move(kept);
}

Status ReplicaStore::FlushPuts() {
  LOCKSTEP_RETURN_IF_ERROR(DropItemIndexForBulkLoad(new_in_write_));
  // One statement must not name a record twice (PostgreSQL refuses to upsert a row twice, and a
  // bulk load would add it twice): the last put of a record wins.
  DropSupersededPuts();
  Status status = LoadNewPuts();
  if (status.ok()) status = WritePuts(pending_);
  pending_.clear();
  return status.WithContext("writing records");
}

Status ReplicaStore::WritePuts(std::span<const PendingPut> puts) {
  // Many rows per INSERT: SQLite spends about a third of a single-row insert on the statement
  // itself, and batches of records are what an apply writes.
  size_t done = 0;
  while (done < puts.size()) {
    const size_t rows = put_.WriteChunk(puts.size() - done);
    LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt, put_.For(db_, rows));
    // Filled before any is bound: binding in place needs the buffer not to move.
    hash_columns_.clear();
    for (size_t i = 0; i < rows; ++i) AppendHashColumn(puts[done + i].hash, hash_columns_);
    for (size_t i = 0; i < rows; ++i) {
      const PendingPut& put = puts[done + i];
      const int base = static_cast<int>(i * kRecordColumnCount);
      // `puts` holds the bytes until the statement has run (and been reset).
      stmt->BindInt(base + 1, put.collection)
          .BindBlobInPlace(base + 2, put.key)
          .BindInt(base + 3, static_cast<int64_t>(put.seq))
          .BindBlobInPlace(base + 4, put.record)
          .BindBlobInPlace(base + 5, put.seqs)
          .BindInt(base + 7, put.position)
          .BindBlobInPlace(base + 8, std::string_view(hash_columns_).substr(i * 16, 16));
      if (put.origin.has_value()) stmt->BindInt(base + 6, *put.origin);
      if (put.deleted_ms.has_value()) stmt->BindInt(base + 9, *put.deleted_ms);
    }
    // Queued on PostgreSQL: their answers come with the next read or the commit.
    Status status = stmt->Queue("upserting records");
    // The log entries (PostgreSQL's statement appended them already): appended at the end of
    // the log, where an index of the records by seq would move each entry from a random page.
    if (status.ok() && db_.dialect() == Dialect::kSqlite) {
      LOCKSTEP_ASSIGN_OR_RETURN(Statement * log, log_.For(db_, rows));
      for (size_t i = 0; i < rows; ++i) {
        const PendingPut& put = puts[done + i];
        const int base = static_cast<int>(i * kLogColumnCount);
        log->BindInt(base + 1, static_cast<int64_t>(put.seq))
            .BindInt(base + 2, put.collection)
            .BindBlobInPlace(base + 3, put.key);
        if (put.origin.has_value()) log->BindInt(base + 4, *put.origin);
      }
      status = log->Run();
    }
    LOCKSTEP_RETURN_IF_ERROR(status);
    // A record stored before leaves a stale entry; a new one will need its entry kept.
    for (size_t i = 0; i < rows; ++i) ++(puts[done + i].replaces ? log_stale_ : log_trim_at_);
    done += rows;
  }
  return Status::Ok();
}

Status ReplicaStore::LoadNewPuts() {
  if (!db_.can_copy()) return Status::Ok();
  // The new records last, in their order: the rest are upserted as before.
  const auto first_new = std::stable_partition(pending_.begin(), pending_.end(),
                                               [](const PendingPut& put) { return put.replaces; });
  const std::span<const PendingPut> fresh(first_new, pending_.end());
  if (fresh.size() < kMinBulkLoadRows) return Status::Ok();
  auto load = [&]() -> Status {
    LOCKSTEP_ASSIGN_OR_RETURN(
        std::unique_ptr<RowCopy> copy,
        db_.CopyInto("_lockstep_records", kRecordColumns, kRecordColumnCount, CopyFormat::kBinary));
    for (const PendingPut& put : fresh) {
      hash_columns_.clear();
      AppendHashColumn(put.hash, hash_columns_);
      copy->PutInt(put.collection);
      copy->PutBytes(put.key);
      copy->PutInt(static_cast<int64_t>(put.seq));
      copy->PutBytes(put.record);
      copy->PutBytes(put.seqs);
      put.origin.has_value() ? copy->PutInt(*put.origin) : copy->PutNull();
      copy->PutInt(put.position);
      copy->PutBytes(hash_columns_);
      put.deleted_ms.has_value() ? copy->PutInt(*put.deleted_ms) : copy->PutNull();
      copy->EndRow();
    }
    LOCKSTEP_RETURN_IF_ERROR(copy->Finish());
    // Their log entries, loaded the same way: new records make none stale.
    LOCKSTEP_ASSIGN_OR_RETURN(
        std::unique_ptr<RowCopy> log,
        db_.CopyInto("_lockstep_log", kLogColumns, kLogColumnCount, CopyFormat::kBinary));
    for (const PendingPut& put : fresh) {
      log->PutInt(static_cast<int64_t>(put.seq));
      log->PutInt(put.collection);
      log->PutBytes(put.key);
      put.origin.has_value() ? log->PutInt(*put.origin) : log->PutNull();
      log->EndRow();
    }
    LOCKSTEP_RETURN_IF_ERROR(log->Finish());
    log_trim_at_ += fresh.size();  // new records: entries a trim keeps (WritePuts counts its own)
    return Status::Ok();
  };
  // A record taken for new may be stored after all (a caller that did not read it first): the
  // upserts then take it.
  LOCKSTEP_RETURN_IF_ERROR(LoadOrWrite(db_, load, [&] { return WritePuts(fresh); }));
  pending_.erase(first_new, pending_.end());
  return Status::Ok();
}

Status ReplicaStore::TrimLog() {
  LOCKSTEP_RETURN_IF_ERROR(FlushPuts());
  // One pass over the log, a record lookup per entry: the stale entries are about as many as the
  // kept ones by the time this runs, so its cost is about two lookups per write that made one.
  LOCKSTEP_RETURN_IF_ERROR(
      db_.Exec("DELETE FROM _lockstep_log WHERE NOT EXISTS (SELECT 1 FROM _lockstep_records r "
               "WHERE r.collection = _lockstep_log.collection AND r.key = _lockstep_log.key "
               "AND r.seq = _lockstep_log.seq)")
          .WithContext("trimming the change log"));
  LOCKSTEP_ASSIGN_OR_RETURN(Statement count, db_.Prepare("SELECT count(*) FROM _lockstep_log"));
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, count.Step());
  // Both saved with the other counters at commit.
  log_trim_at_ = row ? static_cast<uint64_t>(count.ColumnInt(0)) : 0;
  log_stale_ = 0;
  return Status::Ok();
}

Result<ChangePage> ReplicaStore::ChangesAfter(uint64_t after, size_t limit,
                                              const core::NodeId* skip_origin) {
  LOCKSTEP_RETURN_IF_ERROR(FlushPuts());
  std::optional<int64_t> skip;
  if (skip_origin != nullptr) {
    LOCKSTEP_ASSIGN_OR_RETURN(skip, PeerNumber(*skip_origin, false));
  }
  // Both queries must see one snapshot, or a commit between them could be skipped unread.
  const bool own_snapshot = !db_.InTransaction();
  if (own_snapshot) LOCKSTEP_RETURN_IF_ERROR(db_.BeginRead());
  auto page = ReadChanges(after, limit, skip);
  if (own_snapshot) (void)db_.Exec(page.has_value() ? "COMMIT" : "ROLLBACK");
  return page;
}

Result<ChangePage> ReplicaStore::ReadChanges(uint64_t after, size_t limit,
                                             std::optional<int64_t> skip) {
  // The origin test is answered from the log, so skipped records cost a log entry, not a record
  // lookup: scanning past a whole first sync's worth of echoes stays cheap. A stale entry finds
  // no record at its seq and is skipped, so the LIMIT counts records, as it always did. CROSS
  // JOIN makes SQLite walk the log in seq order and look each record up by key.
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * stmt, Cached(changes_, [&] {
        const LogJoin log = LogWithRecords(db_.dialect(), "record, field_seqs");
        return "SELECT c.name, r.record, r.field_seqs, l.seq FROM " + log.from +
               " CROSS JOIN _lockstep_collections c "
               "WHERE l.seq > ?1 AND (CAST(?3 AS BIGINT) IS NULL OR l.origin IS DISTINCT FROM ?3) "
               "AND " +
               log.condition + " AND c.id = l.collection ORDER BY l.seq LIMIT ?2";
      }()));
  // The end of the log and the collection horizon, needed when the page is short (a live reader,
  // nearly always), sent with the page's query: one round trip for both on PostgreSQL.
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * last,
                            Cached(log_end_,
                                   "SELECT (SELECT max(seq) FROM _lockstep_log), "
                                   "(SELECT value FROM _lockstep_meta WHERE name = 'gc_seq')"));
  stmt->BindInt(1, static_cast<int64_t>(after)).BindInt(2, static_cast<int64_t>(limit));
  if (skip.has_value()) stmt->BindInt(3, *skip);
  stmt->Send();
  last->Send();
  ChangePage page{{}, after};
  for (;;) {
    auto row = stmt->Step();
    if (!row.has_value()) {
      stmt->Reset();
      last->Reset();
      return row.error();
    }
    if (!*row) break;
    page.scanned_to = static_cast<uint64_t>(stmt->ColumnInt(3));
    auto stored = DecodeStored(stmt->ColumnBlob(1), stmt->ColumnBlob(2), page.scanned_to);
    if (!stored.has_value()) {
      stmt->Reset();
      last->Reset();
      return stored.error().WithContext("reading the change log");
    }
    page.changes.push_back({std::string(stmt->ColumnText(0)), std::move(*stored)});
  }
  stmt->Reset();
  if (page.changes.size() < limit) {
    // The scan reached the end of the log: everything up to its last seq has been looked at.
    // (The last entry is a record's current one, or a stale one of a collected tombstone, whose
    // seq is at most the horizon.) Seqs of collected tombstones are gone from the log; a reader
    // that reached its end has seen past them too, and its cursor must say so (PeerNeedsReset
    // compares it with the horizon).
    // (Read in the same snapshot: every record up to the horizon is in it.) One statement, kept
    // prepared: a live session reads here after every batch.
    auto found = last->Step();
    if (!found.has_value()) {
      last->Reset();
      return found.error();
    }
    if (*found && !last->ColumnIsNull(0)) {
      page.scanned_to = std::max(page.scanned_to, static_cast<uint64_t>(last->ColumnInt(0)));
    }
    const Value horizon = *found ? last->ColumnAny(1) : Value::Null();
    last->Reset();
    if (!horizon.is_null() && horizon.type() != ValueType::kInt) {
      return DataLoss("metadata 'gc_seq' is malformed");
    }
    if (!horizon.is_null()) {
      page.scanned_to = std::max(page.scanned_to, static_cast<uint64_t>(horizon.as_int()));
    }
  } else {
    last->Reset();  // its answer is not needed
  }
  return page;
}

Result<std::optional<int64_t>> ReplicaStore::PeerNumber(const core::NodeId& peer, bool assign) {
  if (auto it = peer_numbers_.find(peer); it != peer_numbers_.end()) return {it->second};
  // Kept prepared: a peer that never sent a record verbatim is looked up at every read of the log
  // for it (the number is cached only once known).
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * cached,
                            Cached(find_peer_, "SELECT id FROM _lockstep_peers WHERE node = ?"));
  cached->BindBlob(1, AsBytes(peer));
  auto stepped = cached->Step();
  const bool found = stepped.has_value() && *stepped;
  int64_t number = found ? cached->ColumnInt(0) : 0;
  cached->Reset();
  if (!stepped.has_value()) return stepped.error();
  if (!found && !assign) return std::optional<int64_t>();
  if (!found) {
    LOCKSTEP_ASSIGN_OR_RETURN(
        Statement insert, db_.Prepare("INSERT INTO _lockstep_peers(node) VALUES (?) RETURNING id"));
    insert.BindBlob(1, AsBytes(peer));
    LOCKSTEP_ASSIGN_OR_RETURN(bool inserted, insert.Step());
    if (!inserted) return Internal("registering a peer returned no id");
    number = insert.ColumnInt(0);
  }
  // Cached only once committed numbers are certain: a rollback could undo a fresh one.
  if (found) peer_numbers_[peer] = number;
  return std::optional<int64_t>(number);
}

namespace {

std::string CursorKey(const core::NodeId& peer, std::string_view scope) {
  std::string key(AsBytes(peer));
  key += scope;
  return key;
}

}  // namespace

Result<std::optional<Cursor>> ReplicaStore::GetCursor(const core::NodeId& peer,
                                                      std::string_view scope) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db_.Prepare("SELECT epoch, seq FROM _lockstep_cursors WHERE peer = ?"));
  stmt.BindBlob(1, CursorKey(peer, scope));
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<Cursor>();
  return std::optional<Cursor>(Cursor{stmt.ColumnInt(0), static_cast<uint64_t>(stmt.ColumnInt(1))});
}

Status ReplicaStore::SetCursor(const core::NodeId& peer, std::string_view scope,
                               const Cursor& cursor) {
  // Kept prepared: every applied batch ends here.
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt,
                            Cached(set_cursor_,
                                   "INSERT INTO _lockstep_cursors VALUES (?, ?, ?, ?) "
                                   "ON CONFLICT(peer) DO UPDATE SET epoch = excluded.epoch, "
                                   "seq = excluded.seq, synced_ms = excluded.synced_ms"));
  return stmt->BindBlob(1, CursorKey(peer, scope))
      .BindInt(2, cursor.epoch)
      .BindInt(3, static_cast<int64_t>(cursor.seq))
      .BindInt(4, physical_.NowMillis())
      .Queue("setting a cursor");
}

Result<std::optional<int64_t>> ReplicaStore::CursorSyncedAt(const core::NodeId& peer,
                                                            std::string_view scope) {
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db_.Prepare("SELECT synced_ms FROM _lockstep_cursors WHERE peer = ?"));
  stmt.BindBlob(1, CursorKey(peer, scope));
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row || stmt.ColumnIsNull(0)) return std::optional<int64_t>();
  return std::optional<int64_t>(stmt.ColumnInt(0));
}

Result<std::optional<core::NodeId>> ReplicaStore::ListenerAt(std::string_view url) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<Value> node,
                            ReadMeta(db_, "listener " + std::string(url)));
  if (!node.has_value() || node->type() != ValueType::kBlob || node->as_blob().size() != 16) {
    return std::optional<core::NodeId>();
  }
  return std::optional<core::NodeId>(core::NodeId::FromBytes(node->as_blob()));
}

Status ReplicaStore::RememberListener(std::string_view url, const core::NodeId& node) {
  return WriteMeta(db_, "listener " + std::string(url), Value::Bytes(std::string(AsBytes(node))));
}

Status ReplicaStore::LogConflict(const std::string& collection, const core::Conflict& conflict) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement * stmt,
      Cached(conflict_,
             "INSERT INTO _lockstep_conflicts(logged_ms, collection, key, field, winner_value, "
             "winner_node, winner_hlc, loser_value, loser_node, loser_hlc, pending) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  for (const core::Version& loser : conflict.losers) {
    LOCKSTEP_RETURN_IF_ERROR(stmt->BindInt(1, physical_.NowMillis())
                                 .BindText(2, collection)
                                 .BindBlob(3, conflict.key)
                                 .BindText(4, conflict.field)
                                 .BindAny(5, conflict.winner.value)
                                 .BindBlob(6, AsBytes(conflict.winner.dot.node))
                                 .BindInt(7, static_cast<int64_t>(conflict.winner.hlc.raw))
                                 .BindAny(8, loser.value)
                                 .BindBlob(9, AsBytes(loser.dot.node))
                                 .BindInt(10, static_cast<int64_t>(loser.hlc.raw))
                                 .BindInt(11, conflict.pending ? 1 : 0)
                                 .Queue("logging a conflict"));
  }
  return Status::Ok();
}

}  // namespace lockstep::store

namespace lockstep::store {

Result<std::vector<LoggedConflict>> ReplicaStore::Conflicts() {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement stmt,
      db_.Prepare("SELECT logged_ms, collection, key, field, winner_value, winner_node, "
                  "winner_hlc, loser_value, loser_node, loser_hlc, pending "
                  "FROM _lockstep_conflicts ORDER BY id"));
  std::vector<LoggedConflict> conflicts;
  auto node = [&](int column) {
    const std::string_view raw = stmt.ColumnBlob(column);
    return raw.size() == 16 ? core::NodeId::FromBytes(raw) : core::NodeId{};
  };
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    LoggedConflict c;
    c.logged_ms = stmt.ColumnInt(0);
    c.collection = std::string(stmt.ColumnText(1));
    c.key = std::string(stmt.ColumnBlob(2));
    c.field = std::string(stmt.ColumnText(3));
    c.winner = {
        stmt.ColumnAny(4), {node(5), 0}, core::Hlc{static_cast<uint64_t>(stmt.ColumnInt(6))}};
    c.loser = {
        stmt.ColumnAny(7), {node(8), 0}, core::Hlc{static_cast<uint64_t>(stmt.ColumnInt(9))}};
    c.pending = stmt.ColumnInt(10) != 0;
    conflicts.push_back(std::move(c));
  }
  return conflicts;
}

Status ReplicaStore::MarkResolved(const std::string& collection, std::string_view key) {
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement stmt,
      db_.Prepare("UPDATE _lockstep_conflicts SET pending = 0 WHERE collection = ? AND key = ?"));
  return stmt.BindText(1, collection).BindBlob(2, key).Run();
}

}  // namespace lockstep::store
