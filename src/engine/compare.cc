#include "engine/compare.h"

#include <map>
#include <memory>
#include <tuple>

#include "core/key.h"
#include "engine/open_database.h"
#include "store/postgres_db.h"
#include "store/record_item.h"
#include "store/replica_store.h"
#include "store/store_item_set.h"

namespace lockstep::engine {
namespace {

struct Side {
  std::unique_ptr<store::Database> db;
  std::unique_ptr<store::ReplicaStore> store;
  std::map<std::string, int64_t> collections;  // name -> id
};

Result<Side> OpenSide(const std::filesystem::path& path, const base::Clock& clock) {
  Side side;
  LOCKSTEP_ASSIGN_OR_RETURN(side.db, OpenConnection(path.string(), /*read_only=*/true));
  LOCKSTEP_ASSIGN_OR_RETURN(side.store, store::ReplicaStore::OpenReadOnly(*side.db, clock));
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> collections, side.store->Collections());
  for (const store::Collection& collection : collections) {
    side.collections.emplace(collection.name, collection.id);
  }
  return side;
}

Result<std::vector<reconcile::Item>> AllItems(Side& side, int64_t collection) {
  store::StoreItemSet set(*side.store, collection);
  return set.Items({0, 0, true});
}

// Whether `key` is a tombstone in `side`: a tombstone the other side has collected is no
// difference anyone can see.
Result<bool> IsTombstone(Side& side, int64_t collection, const std::string& key) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<store::StoredRecord> stored,
                            side.store->Get(collection, key));
  return stored.has_value() && store::TombstoneMillis(stored->record).has_value();
}

Result<CollectionDifference> CompareCollection(Side& a, Side& b, const std::string& name) {
  CollectionDifference difference;
  difference.collection = name;
  auto in_a = a.collections.find(name);
  auto in_b = b.collections.find(name);
  std::vector<reconcile::Item> items_a;
  std::vector<reconcile::Item> items_b;
  if (in_a != a.collections.end()) {
    LOCKSTEP_ASSIGN_OR_RETURN(items_a, AllItems(a, in_a->second));
  }
  if (in_b != b.collections.end()) {
    LOCKSTEP_ASSIGN_OR_RETURN(items_b, AllItems(b, in_b->second));
  }
  for (auto [side, out] : {std::pair{&a, &difference.unsynced_a}, {&b, &difference.unsynced_b}}) {
    auto collection = side->collections.find(name);
    if (collection == side->collections.end()) continue;
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                              UnstampedKeys(*side->db, name, collection->second));
    for (const std::string& key : keys) out->push_back(core::KeyToString(key));
  }
  difference.records_a = items_a.size();
  difference.records_b = items_b.size();
  difference.only_in_a = in_b == b.collections.end();
  difference.only_in_b = in_a == a.collections.end();
  if (difference.only_in_a || difference.only_in_b) return difference;
  // Both lists are in (position, key) order: one merge walk pairs them.
  auto order = [](const reconcile::Item& item) { return std::tie(item.position, item.key); };
  size_t i = 0;
  size_t j = 0;
  while (i < items_a.size() || j < items_b.size()) {
    const bool take_a =
        j == items_b.size() || (i < items_a.size() && order(items_a[i]) < order(items_b[j]));
    const bool take_b =
        i == items_a.size() || (j < items_b.size() && order(items_b[j]) < order(items_a[i]));
    if (take_a) {
      LOCKSTEP_ASSIGN_OR_RETURN(bool tombstone, IsTombstone(a, in_a->second, items_a[i].key));
      if (tombstone) {
        ++difference.collected_tombstones;
      } else {
        difference.only_a.push_back(core::KeyToString(items_a[i].key));
      }
      ++i;
    } else if (take_b) {
      LOCKSTEP_ASSIGN_OR_RETURN(bool tombstone, IsTombstone(b, in_b->second, items_b[j].key));
      if (tombstone) {
        ++difference.collected_tombstones;
      } else {
        difference.only_b.push_back(core::KeyToString(items_b[j].key));
      }
      ++j;
    } else {
      if (items_a[i].hash != items_b[j].hash) {
        difference.changed.push_back(core::KeyToString(items_a[i].key));
      }
      ++i;
      ++j;
    }
  }
  return difference;
}

}  // namespace

bool Comparison::differs() const {
  for (const CollectionDifference& collection : collections) {
    if (collection.differs()) return true;
  }
  return false;
}

Result<Comparison> CompareDatabases(const std::filesystem::path& a, const std::filesystem::path& b,
                                    const base::Clock& clock) {
  std::error_code ec;
  if (a == b || (!store::IsPostgresUrl(a.string()) && std::filesystem::equivalent(a, b, ec))) {
    return InvalidArgument(store::RedactPassword(a.string()) + " is named twice");
  }
  LOCKSTEP_ASSIGN_OR_RETURN(Side side_a, OpenSide(a, clock));
  LOCKSTEP_ASSIGN_OR_RETURN(Side side_b, OpenSide(b, clock));
  std::map<std::string, bool> names;
  for (const auto& [name, id] : side_a.collections) names[name] = true;
  for (const auto& [name, id] : side_b.collections) names[name] = true;
  Comparison comparison;
  // One snapshot of each database, so that a sync running meanwhile cannot tear the comparison.
  LOCKSTEP_RETURN_IF_ERROR(side_a.db->BeginRead());
  LOCKSTEP_RETURN_IF_ERROR(side_b.db->BeginRead());
  for (const auto& [name, unused] : names) {
    LOCKSTEP_ASSIGN_OR_RETURN(CollectionDifference difference,
                              CompareCollection(side_a, side_b, name));
    comparison.collections.push_back(std::move(difference));
  }
  (void)side_a.db->Exec("COMMIT");
  (void)side_b.db->Exec("COMMIT");
  return comparison;
}

}  // namespace lockstep::engine
