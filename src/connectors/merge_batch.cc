#include "connectors/merge_batch.h"

#include <algorithm>
#include <numeric>

#include "core/key.h"
#include "core/local_write.h"

namespace lockstep::connectors {
namespace {

// Whether `merged` is exactly the sender's state: then the sender needs nothing of it back.
bool TookIncomingState(const core::Record& merged, const core::Record& incoming) {
  if (merged.vv() != incoming.vv()) return false;
  return std::all_of(incoming.fields().begin(), incoming.fields().end(), [&](const auto& field) {
    const core::Field* mine = merged.Find(field.first);
    return mine != nullptr && *mine == field.second;
  });
}

bool HasSiblings(const core::Record& record) {
  return std::any_of(record.fields().begin(), record.fields().end(),
                     [](const auto& field) { return field.second.versions.size() > 1; });
}

core::Hlc LatestHlc(const core::Record& record) {
  core::Hlc latest;
  for (const auto& [name, field] : record.fields()) {
    for (const core::Version& version : field.versions) latest = std::max(latest, version.hlc);
  }
  return latest;
}

// A batch's records are a few hundred scattered heap blocks each (fields, versions, values, the
// encoding), usually cold by the time they are merged: reading them was the largest part of the
// merge's own time. Their memory is requested some records ahead, in two steps, since the
// versions' addresses are known only once the fields have arrived.
constexpr size_t kPrefetchFieldsAhead = 8;
constexpr size_t kPrefetchVersionsAhead = 4;

void PrefetchBytes(const void* data, size_t size) {
  constexpr size_t kLine = 64;
  const char* bytes = static_cast<const char*>(data);
  for (size_t offset = 0; offset < size; offset += kLine) __builtin_prefetch(bytes + offset);
}

void PrefetchFields(const store::Change& change) {
  const core::Record& record = change.stored.record;
  PrefetchBytes(record.fields().data(), record.fields().size() * sizeof(core::Record::NamedField));
  PrefetchBytes(record.vv().entries().data(),
                record.vv().entries().size() * sizeof(core::VersionVector::Entry));
  PrefetchBytes(change.stored.encoded.data(), change.stored.encoded.size());
}

void PrefetchVersions(const store::Change& change) {
  for (const auto& [name, field] : change.stored.record.fields()) {
    PrefetchBytes(field.versions.data(), field.versions.size() * sizeof(core::Version));
  }
}

}  // namespace

Result<ApplyStats> MergeBatch(store::ReplicaStore& store, std::span<store::Change> changes,
                              const core::NodeId& from,
                              const std::function<RowSink*(const std::string&)>& table) {
  // Applying in key order keeps both the user's table and the store's index writes sequential:
  // scattered upserts are an order of magnitude slower in SQLite.
  std::vector<size_t> order(changes.size());
  std::iota(order.begin(), order.end(), 0);
  auto before = [&](size_t a, size_t b) {
    const auto& x = changes[a];
    const auto& y = changes[b];
    if (x.collection != y.collection) return x.collection < y.collection;
    return x.stored.record.key() < y.stored.record.key();
  };
  // A first sync's pages come in key order already: checking costs one comparison a record.
  if (!std::is_sorted(order.begin(), order.end(), before)) {
    std::sort(order.begin(), order.end(), before);
  }
  ApplyStats stats;
  stats.received = changes.size();
  // What the store holds of the batch's records, read before merging in a few queries rather
  // than one per record (on PostgreSQL each query is a round trip). A key the batch names twice
  // is looked up again when met a second time, so that it sees the first merge's write. Only the
  // records looked up are kept, by their place in `order` (ascending): a first sync looks up
  // almost none, and a slot per record would be megabytes to clear for nothing.
  std::vector<std::pair<size_t, store::StoredRecord>> held;
  std::vector<size_t> repeated;  // places in `order`, ascending
  struct Lookup {
    int64_t collection;
    std::vector<std::string> keys;
    std::vector<size_t> positions;
  };
  std::vector<Lookup> lookups;
  // The largest key of each collection, asked for all at once (one round trip on PostgreSQL).
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& name = changes[order[i]].collection;
    if (i > 0 && name == changes[order[i - 1]].collection) continue;
    if (RowSink* sink = table(name))
      LOCKSTEP_RETURN_IF_ERROR(store.SendMaxKey(sink->collection().id));
  }
  for (size_t begin = 0, end = 0; begin < order.size(); begin = end) {
    const std::string& name = changes[order[begin]].collection;
    end = static_cast<size_t>(
        std::find_if(order.begin() + static_cast<std::ptrdiff_t>(begin), order.end(),
                     [&](size_t index) { return changes[index].collection != name; }) -
        order.begin());
    RowSink* sink = table(name);
    if (sink == nullptr) continue;
    // Keys above the largest this store holds are new: no need to look them up. Pages of a first
    // sync arrive in key order, so this spares almost every lookup when it matters most.
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::string> largest,
                              store.MaxKey(sink->collection().id));
    std::vector<std::string> keys;
    std::vector<size_t> positions;
    for (size_t i = begin; i < end; ++i) {
      const std::string& key = changes[order[i]].stored.record.key();
      if (i > begin && key == changes[order[i - 1]].stored.record.key()) {
        repeated.push_back(i);
      } else if (largest.has_value() && key <= *largest) {
        keys.push_back(key);
        positions.push_back(i);
      }
    }
    if (keys.empty()) continue;
    LOCKSTEP_RETURN_IF_ERROR(store.SendGetMany(sink->collection().id, keys));
    lookups.push_back({sink->collection().id, std::move(keys), std::move(positions)});
  }
  // Read once all are sent: one round trip for all on PostgreSQL.
  for (Lookup& lookup : lookups) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::optional<store::StoredRecord>> found,
                              store.GetMany(lookup.collection, lookup.keys));
    for (size_t k = 0; k < found.size(); ++k) {
      if (found[k].has_value()) held.emplace_back(lookup.positions[k], std::move(*found[k]));
    }
  }
  // (`held` is ascending: the lookups went in the order of `order`.)
  // The clock passes the latest HLC taken in, once for the batch (it reads the time): nothing in
  // the batch reads the clock meanwhile, and a failure still rolls back the whole batch.
  core::Hlc latest_taken;
  std::string latest_key;
  const std::string* latest_collection = nullptr;
  size_t next_held = 0;
  size_t next_repeated = 0;
  // The batch is sorted by collection: its table is looked up once per run of one collection.
  const std::string* sink_name = nullptr;
  RowSink* sink = nullptr;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i + kPrefetchFieldsAhead < order.size()) {
      PrefetchFields(changes[order[i + kPrefetchFieldsAhead]]);
    }
    if (i + kPrefetchVersionsAhead < order.size()) {
      PrefetchVersions(changes[order[i + kPrefetchVersionsAhead]]);
    }
    store::Change& change = changes[order[i]];
    if (sink_name == nullptr || *sink_name != change.collection) {
      sink_name = &change.collection;
      sink = table(change.collection);
    }
    if (sink == nullptr) continue;  // a collection this database does not sync
    core::Record& incoming = change.stored.record;
    const int64_t collection = sink->collection().id;
    std::optional<store::StoredRecord> stored;
    if (next_held < held.size() && held[next_held].first == i) {
      stored = std::move(held[next_held++].second);
    }
    if (next_repeated < repeated.size() && repeated[next_repeated] == i) {
      ++next_repeated;
      LOCKSTEP_ASSIGN_OR_RETURN(stored, store.Get(collection, incoming.key()));
    }
    const core::Hlc latest = LatestHlc(incoming);
    core::MergeEffects effects;
    bool verbatim = true;
    bool had_siblings = false;
    std::string encoding;
    const bool new_here = !stored.has_value();
    if (new_here) {
      // New here: the record is taken whole, moved rather than copied, and so is its encoding.
      // Its field seqs are this store's to set (Put does): only the sender's list's memory is
      // reused, saving an allocation per record.
      std::vector<uint64_t> seqs = std::move(change.stored.field_seqs);
      seqs.clear();
      stored = store::StoredRecord{core::Record(incoming.key()), std::move(seqs), 0, {}};
      effects = core::MergeInto(stored->record, std::move(incoming), sink->policy());
      encoding = std::move(change.stored.encoded);
    } else {
      had_siblings = HasSiblings(stored->record);
      effects = core::MergeInto(stored->record, incoming, sink->policy());
      verbatim = TookIncomingState(stored->record, incoming);
    }
    const std::string& key = stored->record.key();
    if (!effects.changed()) continue;
    if (latest > latest_taken) {
      latest_taken = latest;
      latest_key.assign(key);  // reuses its buffer: no allocation per record
      latest_collection = &change.collection;
    }
    // `stored` is dropped after this record: its encoding moves into the write.
    LOCKSTEP_RETURN_IF_ERROR(store.Put(collection, *stored, effects.changed_fields,
                                       verbatim ? &from : nullptr, std::move(encoding),
                                       store::ReplicaStore::KeepEncoding::kNo));
    LOCKSTEP_RETURN_IF_ERROR(new_here ? sink->TakeNewRow(stored->record)
                                      : sink->TakeRow(stored->record));
    for (const core::Conflict& conflict : effects.conflicts) {
      LOCKSTEP_RETURN_IF_ERROR(store.LogConflict(change.collection, conflict));
      stats.conflicts += conflict.losers.size();
    }
    // A write that replaced every sibling (a resolution made elsewhere) settles them here too.
    if (had_siblings && !HasSiblings(stored->record)) {
      LOCKSTEP_RETURN_IF_ERROR(store.MarkResolved(change.collection, key));
    }
    ++stats.changed;
    stats.verbatim += verbatim ? 1 : 0;
  }
  if (stats.changed > 0) {
    if (auto updated = store.clock().Update(latest_taken); !updated.has_value()) {
      return updated.error().WithContext("record " + core::KeyToString(latest_key) + " of " +
                                         *latest_collection + " from " + from.ToString());
    }
  }
  return stats;
}

Result<bool> StampRow(store::ReplicaStore& store, const TableSchema& schema, int64_t collection,
                      const core::MergePolicy& policy, const std::string& key,
                      std::optional<store::StoredRecord> stored,
                      const std::optional<std::vector<Value>>& row, int64_t millis) {
  const bool alive = stored.has_value() && core::Exists(stored->record, policy);
  core::LocalWrite write;
  if (!row.has_value()) {
    if (!alive) return false;
    write.exists = false;
  } else {
    for (size_t i = 0; i < schema.columns.size(); ++i) {
      const std::string& name = schema.columns[i].name;
      const core::Field* field = alive ? stored->record.Find(name) : nullptr;
      // Exact equality: 1 and 1.0 differ in SQLite (typeof), so changing one into the other is a
      // write like any other.
      if (field != nullptr && core::VisibleValue(*field, name, policy) == (*row)[i]) continue;
      write.fields.emplace_back(name, (*row)[i]);
    }
    if (alive && write.fields.empty()) return false;  // an update that changed nothing
  }
  write.dot = store.NextDot();
  write.hlc = store.clock().TickAt(millis);
  if (!stored.has_value()) stored = store::StoredRecord{core::Record(key), {}, 0, {}};
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> changed,
                            core::ApplyLocalWrite(stored->record, write, policy));
  LOCKSTEP_RETURN_IF_ERROR(
      store.Put(collection, *stored, changed, nullptr, {}, store::ReplicaStore::KeepEncoding::kNo));
  return true;
}

}  // namespace lockstep::connectors
