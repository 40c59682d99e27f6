#include "engine/source_session.h"

#include <algorithm>
#include <random>

#include "connectors/sqlite/table_schema.h"
#include "connectors/type_mapping.h"
#include "engine/batch_trace.h"
#include "engine/restore_and_retention.h"
#include "protocol/frame_codec.h"
#include "store/store_item_set.h"

namespace lockstep::engine {
namespace {

std::vector<std::string> SortedUnique(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string Join(const std::vector<std::string>& names) {
  std::string joined;
  for (const std::string& name : names) joined += (joined.empty() ? "" : ",") + name;
  return joined;
}

// Takes the logical types the peer knows for columns that have none here, so that they are
// remembered and offered onwards (a hub passes PostgreSQL's types from one node to the next).
Status AdoptColumnTypes(connectors::TableSchema& schema,
                        const std::vector<protocol::ColumnType>& offered) {
  for (const protocol::ColumnType& type : offered) {
    LOCKSTEP_RETURN_IF_ERROR(
        connectors::CheckLogicalType(type.logical_type)
            .WithContext("column '" + type.column + "' of '" + schema.name + "' from the peer"));
    for (connectors::Column& column : schema.columns) {
      if (column.name == type.column && column.logical_type.empty()) {
        column.logical_type = type.logical_type;
      }
    }
  }
  return Status::Ok();
}

// Attaches the collections `names`: with this source's own table where it has one, else with the
// table the peer offered. A collection new here takes the peer's conflict policy; one both sides
// hold must resolve conflicts the same way on both, or their states would differ.
Status AttachGranted(connectors::Source& source, const std::vector<std::string>& names,
                     const std::vector<protocol::Schema>& offered) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> known, source.store().Collections());
  for (const std::string& name : names) {
    auto peer = std::find_if(offered.begin(), offered.end(),
                             [&](const protocol::Schema& s) { return s.collection == name; });
    auto mine = std::find_if(known.begin(), known.end(),
                             [&](const store::Collection& c) { return c.name == name; });
    if (mine != known.end() && peer != offered.end() && !peer->policy.empty() &&
        peer->policy != mine->policy) {
      return FailedPrecondition("collection '" + name + "' resolves conflicts by '" + mine->policy +
                                "' here but by '" + peer->policy + "' at the peer");
    }
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<connectors::TableSchema> local, source.Schema(name));
    connectors::TableSchema schema;
    if (local.has_value()) {
      schema = std::move(*local);
    } else if (peer != offered.end() && !peer->create_sql.empty()) {
      LOCKSTEP_ASSIGN_OR_RETURN(schema,
                                connectors::sqlite::ReadCreateStatement(name, peer->create_sql));
    } else {
      return NotFound("collection '" + name + "' exists on neither side");
    }
    if (peer != offered.end()) {
      LOCKSTEP_RETURN_IF_ERROR(AdoptColumnTypes(schema, peer->column_types));
    }
    const std::string policy =
        mine == known.end() && peer != offered.end() ? peer->policy : std::string();
    LOCKSTEP_RETURN_IF_ERROR(source.Attach({&schema, 1}, policy));
  }
  return Status::Ok();
}

}  // namespace

void SourceHandler::Grant(const core::NodeId& peer, std::vector<std::string> collections) {
  peer_ = peer;
  collections_ = SortedUnique(std::move(collections));
  scope_ = Join(collections_);
}

Result<std::vector<protocol::Schema>> SourceHandler::SchemasOf(
    const std::vector<std::string>& names) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> known, source_.store().Collections());
  std::vector<protocol::Schema> schemas;
  for (const std::string& name : names) {
    auto it = std::find_if(known.begin(), known.end(),
                           [&](const store::Collection& c) { return c.name == name; });
    if (it == known.end()) continue;
    protocol::Schema schema{name, it->create_sql, it->policy, {}};
    // The types are an extra: a table this side cannot read now is still offered by statement.
    Result<std::optional<connectors::TableSchema>> table = source_.Schema(name);
    if (table.has_value() && table->has_value()) {
      for (const connectors::Column& column : (*table)->columns) {
        if (!column.logical_type.empty()) {
          schema.column_types.push_back({column.name, column.logical_type});
        }
      }
    }
    schemas.push_back(std::move(schema));
  }
  return schemas;
}

Result<bool> SourceHandler::TakePeerView(const core::NodeId& peer, int64_t peer_epoch,
                                         uint64_t highest_dot_of_me,
                                         const protocol::Cursor& peer_cursor_of_me) {
  store::ReplicaStore& store = source_.store();
  std::optional<store::Cursor> cursor;
  if (peer_cursor_of_me.epoch != 0) cursor = {peer_cursor_of_me.epoch, peer_cursor_of_me.seq};
  peer_cursor_of_me_ = {peer_cursor_of_me.epoch, peer_cursor_of_me.seq};
  // Before anything is stamped in this session: a store restored from an older copy must not
  // hand out again dots the peer has seen.
  LOCKSTEP_ASSIGN_OR_RETURN(bool restored, store.AdoptPeerView(peer, highest_dot_of_me, cursor));
  // The peer's log is of another epoch than our cursor of it: it was restored (or recreated),
  // and what we took from it verbatim may be gone from it, so those records go back.
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::Cursor> ours, store.GetCursor(peer, scope_));
  if (ours.has_value() && ours->epoch != peer_epoch) {
    LOCKSTEP_RETURN_IF_ERROR(store.ForgetOrigin(peer));
  }
  // A peer that last read our log before tombstones we have since collected could resurrect
  // what they deleted.
  LOCKSTEP_ASSIGN_OR_RETURN(bool reset, store.PeerNeedsReset(cursor, std::nullopt));
  if (reset) {
    return FailedPrecondition("reset required: node " + peer.ToString() +
                              " has not synced with this node since before tombstones it has "
                              "collected; run `lockstep reset` on it");
  }
  return restored;
}

Result<bool> SourceHandler::HoldsRecords(const std::vector<std::string>& names, bool all) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> known, source_.store().Collections());
  for (const store::Collection& c : known) {
    if (!all && std::find(names.begin(), names.end(), c.name) == names.end()) continue;
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::string> any, source_.store().MaxKey(c.id));
    if (any.has_value()) return true;
  }
  return false;
}

Status SourceHandler::BeginReconciliation(std::optional<protocol::Cursor> verify_at) {
  // Users' writes so far take part; later ones follow in the log, from `resume_`.
  LOCKSTEP_RETURN_IF_ERROR(source_.StampPending());
  store::ReplicaStore& store = source_.store();
  resume_ = verify_at.value_or(protocol::Cursor{store.epoch(), store.last_seq()});
  verifying_ = verify_at.has_value();
  reconcile::Options options;
  // Fresh per session: what collides by chance in one session almost surely does not in the next.
  options.session.seed = std::random_device{}() * uint64_t{0x100000000} + std::random_device{}();
  // Only what changed since the peer's cursor of this log is offered as recent, when it has one.
  reconciliation_.emplace(StoreItemSets(store, PeerView{peer_, peer_cursor_of_me_}), options,
                          &store);
  return Status::Ok();
}

void SourceHandler::FinishReconciliation() {
  if (!reconciliation_.has_value() || !reconciliation_->done()) return;
  // A verifying peer learns the differences and is sent nothing.
  backlog_ = Backlog{verifying_ ? std::vector<RecordName>() : reconciliation_->ToSend(), 0};
  reconciliation_.reset();
}

Result<std::vector<protocol::Reconcile>> SourceHandler::StartReconcile() {
  LOCKSTEP_RETURN_IF_ERROR(BeginReconciliation());
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<protocol::Reconcile> steps,
                            reconciliation_->Start(collections_));
  FinishReconciliation();
  return steps;
}

Result<std::vector<protocol::Reconcile>> SourceHandler::ContinueReconcile(
    const protocol::Reconcile& step) {
  if (!reconciliation_.has_value()) {
    return FailedPrecondition("reconcile step when no reconciliation is under way");
  }
  const bool closing = step.last && step.step.empty();
  if (!closing && !std::binary_search(collections_.begin(), collections_.end(), step.collection)) {
    return PermissionDenied("reconcile step for collection '" + step.collection +
                            "', which this session was not granted");
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<protocol::Reconcile> steps,
                            reconciliation_->Continue(step));
  FinishReconciliation();
  return steps;
}

Result<protocol::ChangeBatch> SourceHandler::ReadBacklog(size_t limit) {
  store::ReplicaStore& store = source_.store();
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> known, store.Collections());
  // The next `limit` records of the backlog, read with one query per collection and chunk of keys
  // rather than one per record (a round trip each on PostgreSQL); those the size bound leaves out
  // are read again for the next batch.
  const size_t first = backlog_->next;
  const size_t end = std::min(backlog_->records.size(), first + limit);
  std::vector<std::optional<store::StoredRecord>> read(end - first);
  for (const store::Collection& c : known) {
    std::vector<std::string> keys;
    std::vector<size_t> positions;
    for (size_t i = first; i < end; ++i) {
      if (backlog_->records[i].first != c.name) continue;
      keys.push_back(backlog_->records[i].second);
      positions.push_back(i - first);
    }
    if (keys.empty()) continue;
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::optional<store::StoredRecord>> found,
                              store.GetMany(c.id, keys));
    for (size_t k = 0; k < found.size(); ++k) read[positions[k]] = std::move(found[k]);
  }
  protocol::ChangeBatch batch;
  size_t bytes = 0;
  while (backlog_->next < end && batch.changes.size() < limit &&
         bytes < protocol::kBatchTargetBytes) {
    const size_t i = backlog_->next++;
    std::optional<store::StoredRecord>& stored = read[i - first];
    // Not found: gone since (collected), or of a collection no longer known; nothing to send.
    if (!stored.has_value()) continue;
    bytes += stored->encoded.size();
    batch.changes.push_back(
        {backlog_->records[i].first, core::RecordDelta{std::move(stored->record), {}}});
  }
  // Until the last of them, the peer's cursor stays void (seq 0), so that a session cut short
  // reconciles again; the last batch moves it to where the log resumes.
  const bool finished = backlog_->next == backlog_->records.size();
  batch.end = finished ? resume_ : protocol::Cursor{store.epoch(), 0};
  if (finished) backlog_.reset();
  if (!batch.changes.empty()) LOCKSTEP_RETURN_IF_ERROR(source_.MakeDurable());
  counts_.sent += batch.changes.size();
  return batch;
}

Result<protocol::ChangeBatch> SourceHandler::ReadChanges(const protocol::Cursor& after,
                                                         size_t limit) {
  if (backlog_.has_value()) return ReadBacklog(limit);
  LOCKSTEP_RETURN_IF_ERROR(CheckGrant());
  if (deferred_cursor_.has_value() &&
      std::chrono::steady_clock::now() - deferred_since_ >= kDeferCursorFor) {
    LOCKSTEP_RETURN_IF_ERROR(WriteDeferredCursor());
  }
  const auto started = BatchTrace::Clock::now();
  // Users' writes since the last look become writes of this node first (some of them, when there
  // are many: the rest after this batch, so that sending keeps pace with busy writers).
  LOCKSTEP_RETURN_IF_ERROR(source_.StampSome());
  const auto stamped = BatchTrace::Clock::now();
  store::ReplicaStore& store = source_.store();
  // A cursor into another epoch of this log (or another store) is void: start over.
  const uint64_t from = after.epoch == store.epoch() ? after.seq : 0;
  LOCKSTEP_ASSIGN_OR_RETURN(store::ChangePage page, store.ChangesAfter(from, limit, &peer_));
  const auto paged = BatchTrace::Clock::now();
  protocol::ChangeBatch batch;
  // Nothing new: the cursor stays as it was. Else the batch ends where the scan did (past any
  // skipped echoes) — unless large records cut it short, at the last record it carries.
  batch.end = page.scanned_to == from ? after : protocol::Cursor{store.epoch(), page.scanned_to};
  size_t bytes = 0;
  for (size_t i = 0; i < page.changes.size(); ++i) {
    store::Change& change = page.changes[i];
    bytes += change.stored.encoded.size();
    if (i > 0 && bytes > protocol::kBatchTargetBytes) {
      batch.end = {store.epoch(), page.changes[i - 1].stored.seq};
      break;
    }
    if (!std::binary_search(collections_.begin(), collections_.end(), change.collection)) {
      continue;  // outside this session's grant: the peer neither gets nor needs it
    }
    batch.changes.push_back(
        {std::move(change.collection), core::RecordDelta{std::move(change.stored.record), {}}});
  }
  // Only echoes of the peer's own records after `from` (skipped: the cursor moves), and nothing
  // left to stamp (stamping would have put records of ours in the page): the peer may take this
  // batch as our caught-up one, and no empty batch needs to follow it.
  batch.caught_up = page.changes.empty();
  // What leaves must be durable first: a power cut must not take back a seq the peer has seen.
  if (!batch.changes.empty()) LOCKSTEP_RETURN_IF_ERROR(source_.MakeDurable());
  counts_.sent += batch.changes.size();
  if (BatchTrace::enabled() && (batch.end.seq != after.seq || !batch.changes.empty())) {
    BatchTrace::Write(source_.name(), "read", batch,
                      "peer=" + peer_.ToString().substr(0, 8) + " limit=" + std::to_string(limit) +
                          " scanned=" + std::to_string(page.scanned_to - from) + " stamp_ms=" +
                          BatchTrace::Since(started) + " page_ms=" + BatchTrace::Since(stamped) +
                          " durable_ms=" + BatchTrace::Since(paged));
  }
  return batch;
}

Status SourceHandler::WriteDeferredCursor() {
  if (!deferred_cursor_.has_value()) return Status::Ok();
  const store::Cursor cursor = *deferred_cursor_;
  LOCKSTEP_RETURN_IF_ERROR(source_.Apply({}, peer_, scope_, cursor).status());
  deferred_cursor_.reset();
  return Status::Ok();
}

Status SourceHandler::Apply(const protocol::ChangeBatch& batch) {
  std::vector<store::Change> changes;
  changes.reserve(batch.changes.size());
  for (const protocol::Change& change : batch.changes) {
    if (!std::binary_search(collections_.begin(), collections_.end(), change.collection)) {
      return PermissionDenied("change to collection '" + change.collection +
                              "', which this session was not granted");
    }
    if (!change.delta.base.empty()) {
      return InvalidArgument("partial record deltas are not accepted by this node yet");
    }
    changes.push_back({change.collection, store::StoredRecord{change.delta.record, {}, 0, {}}});
  }
  const store::Cursor end{batch.end.epoch, batch.end.seq};
  if (changes.empty() && cursor_written_) {
    // Nothing to merge: the peer's answer to a batch of ours (its records are echoes it skipped)
    // or its caught-up mark. Writing the cursor alone cost a PostgreSQL source a transaction per
    // batch it sent (7 ms a batch, 8 % of its session's time while pgbench ran). Kept, and
    // written with the next batch that has records, or by a read once it is kDeferCursorFor old.
    // Lost when the process stops, it costs the next session a read of records that are all
    // echoes again. The first of a session is written, so that the peer knows this session.
    if (!deferred_cursor_.has_value()) deferred_since_ = std::chrono::steady_clock::now();
    deferred_cursor_ = end;
    return Status::Ok();
  }
  const auto started = BatchTrace::Clock::now();
  if (BatchTrace::enabled()) {
    BatchTrace::Write(source_.name(), "apply-start", batch,
                      "peer=" + peer_.ToString().substr(0, 8));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(connectors::ApplyStats stats,
                            source_.Apply(changes, peer_, scope_, end));
  cursor_written_ = true;
  deferred_cursor_.reset();
  if (BatchTrace::enabled()) {
    BatchTrace::Write(source_.name(), "apply-end", batch,
                      "peer=" + peer_.ToString().substr(0, 8) +
                          " ms=" + BatchTrace::Since(started) +
                          " commit_ms=" + BatchTrace::Millis(stats.commit_ms) +
                          " stamped=" + std::to_string(stats.stamped));
  }
  counts_.received += stats.received;
  counts_.changed += stats.changed;
  counts_.conflicts += stats.conflicts;
  if (stats.changed > 0 && on_change_) on_change_();
  return Status::Ok();
}

Result<protocol::Hello> DialerHandler::MakeHello(const std::string& token,
                                                 protocol::Direction direction) {
  store::ReplicaStore& store = source_.store();
  protocol::Hello hello;
  hello.node = store.node();
  hello.token = token;
  hello.collections = SortedUnique(tables_);
  hello.direction = direction;
  hello.epoch = store.epoch();
  if (all_tables_) hello.features |= protocol::kFeatureAllCollections;
  LOCKSTEP_ASSIGN_OR_RETURN(hello.schemas, SchemasOf(hello.collections));
  // Our cursor into the listener's log, if we know who answers there.
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<core::NodeId> listener, store.ListenerAt(url_));
  if (listener.has_value()) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::Cursor> cursor,
                              store.GetCursor(*listener, Join(hello.collections)));
    if (cursor.has_value()) hello.cursor = {cursor->epoch, cursor->seq};
  }
  LOCKSTEP_ASSIGN_OR_RETURN(hello.holds_records, HoldsRecords(hello.collections, all_tables_));
  if (listener.has_value()) {
    LOCKSTEP_ASSIGN_OR_RETURN(hello.highest_dot_of_peer, store.HighestDotOf(*listener));
  }
  return hello;
}

Status DialerHandler::CheckGrant() {
  if (!all_tables_) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> tables, source_.ListTables());
  // New means neither asked for nor granted. Not merely "not granted": a table the listener
  // refused is asked for again at every reconnect and refused with an error, which backs off; it
  // must not loop here.
  const std::vector<std::string> asked = SortedUnique(tables_);
  for (const std::string& table : tables) {
    if (std::binary_search(asked.begin(), asked.end(), table) ||
        std::binary_search(collections_.begin(), collections_.end(), table)) {
      continue;
    }
    // A table without a primary key cannot be synced; it is no reason to reconnect.
    if (source_.Schema(table).has_value()) {
      return Aborted("table '" + table + "' appeared: reconnecting to sync it");
    }
  }
  return Status::Ok();
}

Result<protocol::Welcome> DialerHandler::Accept(const protocol::Hello&) {
  return Internal("a dialer does not accept sessions");
}

Status DialerHandler::Welcomed(const protocol::Welcome& welcome) {
  Grant(welcome.node, welcome.collections);
  LOCKSTEP_ASSIGN_OR_RETURN(
      bool restored,
      TakePeerView(welcome.node, welcome.epoch, welcome.highest_dot_of_peer, welcome.cursor));
  // The listener keeps a cursor of our old epoch and marks of what came from us: a new session,
  // whose Hello names our new epoch, makes it send those records back and reconcile.
  if (restored) return Aborted("this store was restored from an older copy: reconnecting");
  LOCKSTEP_RETURN_IF_ERROR(AttachGranted(source_, welcome.collections, welcome.schemas));
  store::ReplicaStore& store = source_.store();
  return store.Write([&] { return store.RememberListener(url_, welcome.node); });
}

Result<protocol::Welcome> HubHandler::Accept(const protocol::Hello& hello) {
  LOCKSTEP_ASSIGN_OR_RETURN(security::TokenStore tokens, security::TokenStore::Open(data_dir_));
  LOCKSTEP_ASSIGN_OR_RETURN(security::TokenGrant grant, tokens.Verify(hello.token));
  std::vector<std::string> wanted = hello.collections;
  if (wanted.empty() || (hello.features & protocol::kFeatureAllCollections) != 0) {
    // Also everything the token allows that the hub holds, now and (by reconnecting) later.
    all_of_ = grant;
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> held, source_.store().Collections());
    for (const store::Collection& c : held) {
      if (security::TokenStore::Covers(grant, c.name)) wanted.push_back(c.name);
    }
  }
  wanted = SortedUnique(std::move(wanted));
  for (const std::string& name : wanted) {
    if (!security::TokenStore::Covers(grant, name)) {
      return PermissionDenied("the token does not cover collection '" + name + "'");
    }
  }
  protocol::Direction direction = hello.direction;
  if (grant.mode == security::TokenMode::kRead) {
    if (direction == protocol::Direction::kPush) {
      return PermissionDenied("the token is read-only: it cannot push");
    }
    direction = protocol::Direction::kPull;
  }
  Grant(hello.node, wanted);
  LOCKSTEP_RETURN_IF_ERROR(
      TakePeerView(hello.node, hello.epoch, hello.highest_dot_of_peer, hello.cursor).status());
  LOCKSTEP_RETURN_IF_ERROR(AttachGranted(source_, wanted, hello.schemas));

  protocol::Welcome welcome;
  welcome.node = source_.store().node();
  welcome.collections = collections_;
  welcome.direction = direction;
  LOCKSTEP_ASSIGN_OR_RETURN(welcome.schemas, SchemasOf(collections_));
  store::ReplicaStore& store = source_.store();
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::Cursor> cursor,
                            store.GetCursor(hello.node, scope_));
  if (cursor.has_value()) welcome.cursor = {cursor->epoch, cursor->seq};
  welcome.epoch = store.epoch();
  LOCKSTEP_ASSIGN_OR_RETURN(welcome.highest_dot_of_peer, store.HighestDotOf(hello.node));

  // Reconcile when a cursor this session would use is void and both sides hold records: sending
  // the whole log instead would cost as much as the collections, whatever the differences.
  const bool as_asked = std::is_permutation(collections_.begin(), collections_.end(),
                                            hello.collections.begin(), hello.collections.end());
  // The dialer's cursor was kept for the collections it asked for: of another set it says
  // nothing, and no recent change is left out by it.
  if (!as_asked) ForgetPeerCursor();
  const bool dialer_knows_us = as_asked && hello.cursor.epoch == store.epoch() &&
                               hello.cursor.seq > 0 && hello.cursor.seq <= store.last_seq();
  const bool we_know_dialer = cursor.has_value() && cursor->epoch == hello.epoch && cursor->seq > 0;
  const bool we_send =
      hello.direction != protocol::Direction::kPush && direction != protocol::Direction::kPush;
  const bool we_receive =
      hello.direction != protocol::Direction::kPull && direction != protocol::Direction::kPull;
  if (hello.holds_records && ((we_send && !dialer_knows_us) || (we_receive && !we_know_dialer))) {
    LOCKSTEP_ASSIGN_OR_RETURN(welcome.reconcile, HoldsRecords(collections_, /*all=*/false));
  }
  const bool verify = (hello.features & protocol::kFeatureVerify) != 0;
  if (verify) {
    if (direction != protocol::Direction::kPull) {
      return InvalidArgument("a verify session must ask to pull only");
    }
    welcome.reconcile = true;
  }
  if (welcome.reconcile) {
    LOCKSTEP_RETURN_IF_ERROR(
        BeginReconciliation(verify ? std::optional(hello.cursor) : std::nullopt));
  }
  return welcome;
}

Status HubHandler::CheckGrant() {
  if (!all_of_.has_value()) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> held, source_.store().Collections());
  for (const store::Collection& c : held) {
    if (security::TokenStore::Covers(*all_of_, c.name) &&
        !std::binary_search(collections_.begin(), collections_.end(), c.name)) {
      return Aborted("collection '" + c.name + "' appeared on the hub: reconnect to receive it");
    }
  }
  return Status::Ok();
}

Status HubHandler::Welcomed(const protocol::Welcome&) { return Internal("a hub does not dial"); }

}  // namespace lockstep::engine
