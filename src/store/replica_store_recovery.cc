// ReplicaStore's answers to a past that went missing: the highest dots it holds (so that a peer
// restored from an older copy of its file can learn where its counter was), restore detection,
// and tombstone collection after the retention with the horizon that says which peers must reset.
#include <algorithm>
#include <string>
#include <string_view>

#include "store/metadata_schema.h"
#include "store/record_item.h"
#include "store/replica_store.h"

namespace lockstep::store {
namespace {

std::string_view AsBytes(const core::NodeId& node) {
  return {reinterpret_cast<const char*>(node.bytes.data()), node.bytes.size()};
}

Result<int64_t> ReadMetaInt(Database& db, std::string_view name) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<Value> value, ReadMeta(db, name));
  if (!value.has_value()) return int64_t{0};
  if (value->type() != ValueType::kInt)
    return DataLoss("metadata '" + std::string(name) + "' is malformed");
  return value->as_int();
}

}  // namespace

void ReplicaStore::NoteDots(const core::VersionVector& vv) {
  // A handful of nodes at most: a linear search beats any map.
  for (const auto& [node, counter] : vv.entries()) {
    auto it = std::find_if(dirty_dots_.begin(), dirty_dots_.end(),
                           [&](const auto& entry) { return entry.first == node; });
    if (it == dirty_dots_.end()) {
      dirty_dots_.emplace_back(node, counter);
    } else {
      it->second = std::max(it->second, counter);
    }
  }
}

Status ReplicaStore::FlushHighestDots() {
  if (dirty_dots_.empty()) return Status::Ok();
  LOCKSTEP_ASSIGN_OR_RETURN(Statement * stmt,
                            Cached(note_dot_,
                                   "INSERT INTO _lockstep_node_dots VALUES (?, ?) "
                                   "ON CONFLICT(node) DO UPDATE SET counter = excluded.counter "
                                   "WHERE excluded.counter > _lockstep_node_dots.counter"));
  Status status;
  for (const auto& [node, counter] : dirty_dots_) {
    status = stmt->BindBlob(1, AsBytes(node))
                 .BindInt(2, static_cast<int64_t>(counter))
                 .Queue("noting the highest dots held");
    if (!status.ok()) break;
  }
  dirty_dots_.clear();
  return status.WithContext("noting the highest dots held");
}

Result<uint64_t> ReplicaStore::HighestDotOf(const core::NodeId& node) {
  LOCKSTEP_RETURN_IF_ERROR(FlushWrites());
  LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt,
                            db_.Prepare("SELECT counter FROM _lockstep_node_dots WHERE node = ?"));
  stmt.BindBlob(1, AsBytes(node));
  LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? static_cast<uint64_t>(stmt.ColumnInt(0)) : uint64_t{0};
}

Result<bool> ReplicaStore::AdoptPeerView(const core::NodeId& peer, uint64_t highest_dot_of_me,
                                         std::optional<Cursor> peer_cursor_of_me) {
  bool restored = false;
  const int64_t fresh_epoch = NewEpoch();
  Status status = Write([&]() -> Status {
    // Counters as committed, reloaded by BeginWrite: another process may have moved them.
    const bool dots_behind = highest_dot_of_me > dot_counter_;
    const bool log_behind = peer_cursor_of_me.has_value() && peer_cursor_of_me->epoch == epoch_ &&
                            peer_cursor_of_me->seq > seq_;
    if (!dots_behind && !log_behind) return Status::Ok();
    restored = true;
    // A dot is never issued twice: the next one is above everything the peer has seen.
    dot_counter_ = std::max(dot_counter_, highest_dot_of_me);
    return WriteMeta(db_, "epoch", Value::Int(fresh_epoch));
  });
  if (!status.ok()) {
    return status.WithContext("taking in what " + peer.ToString() + " knows of this store");
  }
  if (restored) epoch_ = fresh_epoch;
  return restored;
}

Status ReplicaStore::ForgetOrigin(const core::NodeId& peer) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<int64_t> number, PeerNumber(peer, false));
  if (!number.has_value()) return Status::Ok();
  // The readers of the log test the origin there; the records keep it too, as they always did.
  return Write([&]() -> Status {
    for (std::string_view table : {"_lockstep_log", "_lockstep_records"}) {
      LOCKSTEP_ASSIGN_OR_RETURN(Statement stmt, db_.Prepare("UPDATE " + std::string(table) +
                                                            " SET origin = NULL WHERE origin = ?"));
      LOCKSTEP_RETURN_IF_ERROR(stmt.BindInt(1, *number).Run());
    }
    return Status::Ok();
  });
}

Result<ReplicaStore::GcHorizon> ReplicaStore::Horizon() {
  GcHorizon horizon;
  LOCKSTEP_ASSIGN_OR_RETURN(int64_t seq, ReadMetaInt(db_, "gc_seq"));
  LOCKSTEP_ASSIGN_OR_RETURN(horizon.millis, ReadMetaInt(db_, "gc_ms"));
  horizon.seq = static_cast<uint64_t>(seq);
  return horizon;
}

Result<size_t> ReplicaStore::CollectTombstones(int64_t deleted_before_ms) {
  size_t collected = 0;
  Status status = Write([&]() -> Status {
    struct Tombstone {
      int64_t collection;
      std::string key;
      RecordItem item;
      uint64_t seq;
      int64_t deleted_ms;
    };
    std::vector<Tombstone> tombstones;
    {
      LOCKSTEP_ASSIGN_OR_RETURN(
          Statement scan, db_.Prepare("SELECT collection, key, position, hash, seq, deleted_ms "
                                      "FROM _lockstep_records WHERE deleted_ms < ?"));
      scan.BindInt(1, deleted_before_ms);
      for (;;) {
        LOCKSTEP_ASSIGN_OR_RETURN(bool row, scan.Step());
        if (!row) break;
        LOCKSTEP_ASSIGN_OR_RETURN(reconcile::Hash128 hash, HashFromColumn(scan.ColumnBlob(3)));
        tombstones.push_back({scan.ColumnInt(0),
                              std::string(scan.ColumnBlob(1)),
                              {PositionFromColumn(scan.ColumnInt(2)), hash},
                              static_cast<uint64_t>(scan.ColumnInt(4)),
                              scan.ColumnInt(5)});
      }
    }
    if (tombstones.empty()) return Status::Ok();
    LOCKSTEP_ASSIGN_OR_RETURN(GcHorizon horizon, Horizon());
    LOCKSTEP_ASSIGN_OR_RETURN(
        Statement erase,
        db_.Prepare("DELETE FROM _lockstep_records WHERE collection = ? AND key = ?"));
    // The tombstone's own log entry goes with it; its older, stale ones wait for the trim.
    LOCKSTEP_ASSIGN_OR_RETURN(Statement unlog,
                              db_.Prepare("DELETE FROM _lockstep_log WHERE seq = ?"));
    for (const Tombstone& tombstone : tombstones) {
      LOCKSTEP_RETURN_IF_ERROR(
          erase.BindInt(1, tombstone.collection).BindBlob(2, tombstone.key).Run());
      LOCKSTEP_RETURN_IF_ERROR(unlog.BindInt(1, static_cast<int64_t>(tombstone.seq)).Run());
      sums_.Subtract(tombstone.collection, tombstone.item);
      horizon.seq = std::max(horizon.seq, tombstone.seq);
      horizon.millis = std::max(horizon.millis, tombstone.deleted_ms);
    }
    collected = tombstones.size();
    // Fewer records keep a current entry: the next trim comes as many stale entries sooner.
    log_trim_at_ -= std::min<uint64_t>(log_trim_at_, collected);
    LOCKSTEP_RETURN_IF_ERROR(
        WriteMeta(db_, "gc_seq", Value::Int(static_cast<int64_t>(horizon.seq))));
    return WriteMeta(db_, "gc_ms", Value::Int(horizon.millis));
  });
  if (!status.ok()) return status.WithContext("collecting tombstones");
  return collected;
}

Result<bool> ReplicaStore::PeerNeedsReset(std::optional<Cursor> peer_cursor_of_me,
                                          std::optional<int64_t> peer_synced_ms) {
  if (!peer_cursor_of_me.has_value()) return false;
  LOCKSTEP_ASSIGN_OR_RETURN(GcHorizon horizon, Horizon());
  if (horizon.seq == 0) return false;
  // Within this epoch the log says exactly what the peer has read: every tombstone above its
  // cursor reached it, unless it was collected.
  if (peer_cursor_of_me->epoch == epoch_) return peer_cursor_of_me->seq < horizon.seq;
  // A cursor of another epoch says nothing by seq: the time of the peer's last sync must be
  // after the newest deletion collected.
  return !peer_synced_ms.has_value() || *peer_synced_ms < horizon.millis;
}

}  // namespace lockstep::store
