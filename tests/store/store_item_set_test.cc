// The store's ItemSet against brute force: every record's item recomputed from its stored
// encoding, over random stores after inserts, updates, deletes, rolled-back writes and tombstone
// collection.
#include "store/store_item_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "store/record_item.h"
#include "store_test_support.h"

namespace lockstep::store {
namespace {

using reconcile::Item;
using reconcile::PositionRange;
using reconcile::RangeSummary;
using testing::Check;
using testing::Key;
using testing::Take;
using testing::WriteLocal;

// Every item of `collection`, from the stored encodings, in position then key order.
std::vector<Item> BruteItems(Database& db, int64_t collection) {
  auto stmt = Take(db.Prepare("SELECT key, record FROM _lockstep_records WHERE collection = ?"));
  stmt.BindInt(1, collection);
  std::vector<Item> items;
  while (Take(stmt.Step())) {
    const std::string key(stmt.ColumnBlob(0));
    const RecordItem item = ItemOf(key, stmt.ColumnBlob(1));
    items.push_back({item.position, key, item.hash});
  }
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::tie(a.position, a.key) < std::tie(b.position, b.key);
  });
  return items;
}

RangeSummary BruteSummary(const std::vector<Item>& items, const PositionRange& range) {
  RangeSummary summary;
  for (const Item& item : items) {
    if (range.Contains(item.position)) summary.Add(item.hash);
  }
  return summary;
}

std::vector<Item> BruteRange(const std::vector<Item>& items, const PositionRange& range) {
  std::vector<Item> in;
  for (const Item& item : items) {
    if (range.Contains(item.position)) in.push_back(item);
  }
  return in;
}

bool SameItems(const std::vector<Item>& a, const std::vector<Item>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Item& x, const Item& y) {
    return x.position == y.position && x.key == y.key && x.hash == y.hash;
  });
}

// Ranges that exercise every path: whole, empty, bucket-aligned, inside one bucket, across
// buckets with partial edges, and edges exactly at items.
std::vector<PositionRange> InterestingRanges(const std::vector<Item>& items, std::mt19937_64& rng) {
  std::vector<PositionRange> ranges = {{0, 0, true}, {0, 0, false}, {5, 5, false}};
  const uint64_t bucket = uint64_t{1} << kBucketShift;
  for (int i = 0; i < 6; ++i) {
    const uint64_t a = rng();
    const uint64_t b = rng();
    ranges.push_back({std::min(a, b), std::max(a, b), false});
    ranges.push_back({a, 0, true});
    const uint64_t aligned = a & ~(bucket - 1);
    ranges.push_back({aligned, aligned + bucket * (1 + rng() % 3), false});
    ranges.push_back({aligned + 1, aligned + bucket * 2 - 1, false});
    ranges.push_back({aligned + rng() % bucket, aligned + rng() % bucket + 1, false});
  }
  for (size_t i = 0; i + 1 < items.size() && i < 8; ++i) {
    const Item& x = items[rng() % items.size()];
    const Item& y = items[rng() % items.size()];
    const uint64_t lo = std::min(x.position, y.position);
    const uint64_t hi = std::max(x.position, y.position);
    ranges.push_back({lo, hi, false});
    ranges.push_back({lo, hi + 1, false});
    ranges.push_back({lo + 1, hi, false});
  }
  return ranges;
}

void ExpectMatchesBruteForce(ReplicaStore& store, int64_t collection, std::mt19937_64& rng) {
  // The brute force reads the database directly: records still batched in the write must reach it.
  Check(store.FlushWrites());
  const std::vector<Item> all = BruteItems(store.db(), collection);
  StoreItemSet set(store, collection);
  // Read twice with the buckets kept: the second read of a bucket comes from the cache.
  StoreItemSet cached(store, collection);
  cached.CacheBuckets(true);
  for (const PositionRange& range : InterestingRanges(all, rng)) {
    const RangeSummary want = BruteSummary(all, range);
    for (StoreItemSet* reader : {&set, &cached, &cached}) {
      const RangeSummary got = Take(reader->Summarize(range));
      ASSERT_EQ(got.count, want.count) << range.begin << ".." << range.end << " " << range.to_end;
      ASSERT_TRUE(got.sum == want.sum) << range.begin << ".." << range.end;
      ASSERT_TRUE(SameItems(Take(reader->Items(range)), BruteRange(all, range)));
    }
  }
}

class StoreItemSetTest : public ::testing::TestWithParam<Dialect> {};

TEST_P(StoreItemSetTest, MatchesBruteForceThroughInsertsUpdatesDeletesAndRollbacks) {
  base::FakeClock clock(1'700'000'000'000);
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    testing::ScratchStore scratch(clock, "brute", GetParam());
    ReplicaStore& store = scratch.store();
    std::mt19937_64 rng(seed);
    const int64_t a = Take(store.EnsureCollection("a", "lww", "")).id;
    const int64_t b = Take(store.EnsureCollection("b", "lww", "")).id;
    for (int round = 0; round < 8; ++round) {
      const bool roll_back = round % 4 == 3;
      Check(store.BeginWrite());
      // More than one put batch per write, and keys written twice within one write.
      const int writes = 1 + static_cast<int>(rng() % 150);
      for (int i = 0; i < writes; ++i) {
        const int64_t collection = rng() % 3 == 0 ? b : a;
        const int64_t key = static_cast<int64_t>(rng() % 400);
        std::optional<int64_t> value;
        if (rng() % 4 != 0) value = static_cast<int64_t>(rng() % 1000);
        Check(WriteLocal(store, collection, Key(key), value));
      }
      // Read mid-write: the item set must see this write's records too.
      if (round % 3 == 0) ExpectMatchesBruteForce(store, a, rng);
      SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round));
      if (roll_back) {
        store.Rollback();
      } else {
        Check(store.Commit());
      }
      clock.Advance(1000);
      ExpectMatchesBruteForce(store, a, rng);
      ExpectMatchesBruteForce(store, b, rng);
    }
    SCOPED_TRACE("after collection");
    // Tombstone collection takes the collected records out of the sums.
    ASSERT_GT(Take(store.CollectTombstones(clock.NowMillis())), 0U);
    ExpectMatchesBruteForce(store, a, rng);
    ExpectMatchesBruteForce(store, b, rng);
  }
}

// Kept buckets are forgotten when caching stops: a session turns it on for one snapshot only,
// and the store may change between two.
TEST_P(StoreItemSetTest, KeptBucketsAreForgottenWhenCachingStops) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock, "cache", GetParam());
  ReplicaStore& store = scratch.store();
  const int64_t a = Take(store.EnsureCollection("a", "lww", "")).id;
  Check(store.Write([&] { return WriteLocal(store, a, Key(1), 10); }));
  const uint64_t position = reconcile::ItemPosition(Key(1));
  const PositionRange around{position & ~uint64_t{0xffff}, (position | 0xffff) + 1, false};
  StoreItemSet set(store, a);
  set.CacheBuckets(true);
  ASSERT_EQ(Take(set.Items(around)).size(), 1U);
  const RangeSummary before = Take(set.Summarize(around));
  set.CacheBuckets(false);
  Check(store.Write([&] { return WriteLocal(store, a, Key(1), 20); }));
  set.CacheBuckets(true);
  const RangeSummary after = Take(set.Summarize(around));
  ASSERT_EQ(after.count, 1U);
  EXPECT_FALSE(after.sum == before.sum) << "the update is seen";
  EXPECT_TRUE(after.sum == BruteSummary(BruteItems(store.db(), a), around).sum);
}

bool HasBucketIndex(Database& db) {
  auto stmt =
      Take(db.Prepare("SELECT 1 FROM sqlite_master WHERE name = '_lockstep_records_by_bucket'"));
  return Take(stmt.Step());
}

// SQLite only: PostgreSQL keeps the index up to date (FORMATS.md, "The store in PostgreSQL").
TEST(SqliteStoreItemSetTest, BulkWriteDropsTheBucketIndexAndTheItemSetMakesItAgain) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock);
  ReplicaStore& store = scratch.store();
  const int64_t c = Take(store.EnsureCollection("t", "lww", "")).id;
  ASSERT_TRUE(HasBucketIndex(scratch.db()));
  // A small write keeps the index up to date.
  Check(store.Write([&] { return WriteLocal(store, c, Key(-1), 1); }));
  ASSERT_TRUE(HasBucketIndex(scratch.db()));
  const auto n = static_cast<int64_t>(ReplicaStore::kBulkLoadRecords);
  Check(store.Write([&]() -> Status {
    for (int64_t k = 0; k < n + 100; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store, c, Key(k), k));
    return Status::Ok();
  }));
  EXPECT_FALSE(HasBucketIndex(scratch.db()));
  // Writes without the index stay counted in the sums.
  Check(store.Write([&] { return WriteLocal(store, c, Key(5), std::nullopt); }));
  std::mt19937_64 rng(7);
  ExpectMatchesBruteForce(store, c, rng);
  EXPECT_TRUE(HasBucketIndex(scratch.db()));
  StoreItemSet set(store, c);
  EXPECT_EQ(Take(set.Summarize({0, 0, true})).count, static_cast<uint64_t>(n + 101));
}

// Attaching a table stamps its rows while a scan of it reads, when SQLite could not drop the
// index: it is told beforehand how many rows will come.
TEST(SqliteStoreItemSetTest, WriteToldOfABulkLoadDropsTheIndexAtOnce) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock);
  ReplicaStore& store = scratch.store();
  Check(store.BeginWrite());
  Check(store.DropItemIndexForBulkLoad(ReplicaStore::kBulkLoadRecords - 1));
  EXPECT_TRUE(HasBucketIndex(scratch.db()));
  Check(store.DropItemIndexForBulkLoad(ReplicaStore::kBulkLoadRecords));
  EXPECT_FALSE(HasBucketIndex(scratch.db()));
  store.Rollback();
  EXPECT_TRUE(HasBucketIndex(scratch.db()));
}

TEST_P(StoreItemSetTest, RolledBackWriteLeavesBucketSumsUnchanged) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock, "rollback", GetParam());
  ReplicaStore& store = scratch.store();
  const int64_t c = Take(store.EnsureCollection("t", "lww", "")).id;
  Check(store.Write([&]() -> Status {
    for (int64_t k = 0; k < 300; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store, c, Key(k), k));
    return Status::Ok();
  }));
  StoreItemSet set(store, c);
  const RangeSummary before = Take(set.Summarize({0, 0, true}));
  auto rows = [&] {
    auto stmt = Take(scratch.db().Prepare("SELECT id, sums FROM _lockstep_buckets ORDER BY id"));
    std::string all;
    while (Take(stmt.Step())) {
      all += std::to_string(stmt.ColumnInt(0)) + ":" + std::string(stmt.ColumnBlob(1)) + ";";
    }
    return all;
  };
  const std::string stored_before = rows();
  Check(store.BeginWrite());
  for (int64_t k = 0; k < 300; k += 2) Check(WriteLocal(store, c, Key(k), std::nullopt));
  for (int64_t k = 300; k < 400; ++k) Check(WriteLocal(store, c, Key(k), k));
  // Flushed into the database, then rolled back.
  ASSERT_NE(Take(set.Summarize({0, 0, true})).count, before.count);
  store.Rollback();
  EXPECT_EQ(Take(set.Summarize({0, 0, true})), before);
  EXPECT_EQ(rows(), stored_before);
  EXPECT_EQ(before.count, 300U);
}

INSTANTIATE_TEST_SUITE_P(BothDatabases, StoreItemSetTest,
                         ::testing::Values(Dialect::kSqlite, Dialect::kPostgres),
                         testing::DialectName);

}  // namespace
}  // namespace lockstep::store
