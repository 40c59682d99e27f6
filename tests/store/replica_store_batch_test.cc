// The store's batched reads and writes, against SQLite and PostgreSQL: GetMany returns exactly what
// Get returns key by key, and bucket sums flushed many rows per statement equal sums recomputed
// from the records. Batches are larger than any chunk (kGetBatch keys, 64 rows per statement) and
// of sizes that leave a remainder, with composite keys, NULLs, deletes, repeated and missing keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "core/key.h"
#include "core/local_write.h"
#include "store/bucket_sums.h"
#include "store/replica_store.h"
#include "store_test_support.h"

namespace lockstep::store {
namespace {

using testing::Check;
using testing::DialectName;
using testing::ScratchStore;
using testing::Take;

// A composite key of a text and an integer, like (region, id).
std::string CompositeKey(int64_t id) {
  const Value key[] = {Value::Text(id % 2 == 0 ? "eu" : "us"), Value::Int(id)};
  return core::EncodeKey(key);
}

// A local write to `key`: a NULL and an integer field, or a delete.
Status Write(ReplicaStore& store, int64_t collection, const std::string& key, bool exists,
             int64_t value) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<StoredRecord> stored, store.Get(collection, key));
  if (!stored.has_value()) stored = StoredRecord{core::Record(key), {}, 0, {}};
  core::LocalWrite write;
  write.dot = store.NextDot();
  write.hlc = store.clock().Tick();
  write.exists = exists;
  if (exists) {
    write.fields.emplace_back("n", value % 3 == 0 ? Value::Null() : Value::Int(value));
    write.fields.emplace_back("note", Value::Null());
  }
  LOCKSTEP_ASSIGN_OR_RETURN(core::MergePolicy policy, core::ParsePolicy("lww"));
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> changed,
                            core::ApplyLocalWrite(stored->record, write, policy));
  return store.Put(collection, *stored, changed, nullptr);
}

void ExpectSame(const std::optional<StoredRecord>& batched, const std::optional<StoredRecord>& one,
                const std::string& key) {
  ASSERT_EQ(batched.has_value(), one.has_value()) << core::KeyToString(key);
  if (!one.has_value()) return;
  EXPECT_EQ(batched->record, one->record) << core::KeyToString(key);
  EXPECT_EQ(batched->field_seqs, one->field_seqs) << core::KeyToString(key);
  EXPECT_EQ(batched->seq, one->seq) << core::KeyToString(key);
  EXPECT_EQ(batched->encoded, one->encoded) << core::KeyToString(key);
}

class ReplicaStoreBatchTest : public ::testing::TestWithParam<Dialect> {
 protected:
  ReplicaStoreBatchTest() : scratch_(clock_, "batch", GetParam()) {}

  // Records 0..count-1 (composite keys), then a second write that updates every third and
  // deletes every seventh: several seqs per record, NULLs and tombstones.
  int64_t Fill(int64_t count) {
    ReplicaStore& store = scratch_.store();
    const int64_t items = Take(store.EnsureCollection("items", "lww", "")).id;
    Check(store.Write([&]() -> Status {
      for (int64_t id = 0; id < count; ++id) {
        LOCKSTEP_RETURN_IF_ERROR(Write(store, items, CompositeKey(id), true, id));
      }
      return Status::Ok();
    }));
    Check(store.Write([&]() -> Status {
      for (int64_t id = 0; id < count; ++id) {
        if (id % 7 == 0) {
          LOCKSTEP_RETURN_IF_ERROR(Write(store, items, CompositeKey(id), false, 0));
        } else if (id % 3 == 0) {
          LOCKSTEP_RETURN_IF_ERROR(Write(store, items, CompositeKey(id), true, id + 1));
        }
      }
      return Status::Ok();
    }));
    return items;
  }

  // Keys 0..count+9 (the last ten missing) shuffled, with some repeated.
  static std::vector<std::string> ShuffledKeys(int64_t count) {
    std::vector<std::string> keys;
    for (int64_t id = 0; id < count + 10; ++id) keys.push_back(CompositeKey(id));
    for (int64_t id = 0; id < count; id += 97) keys.push_back(CompositeKey(id));
    std::mt19937 random(7);
    std::shuffle(keys.begin(), keys.end(), random);
    return keys;
  }

  base::FakeClock clock_{1'700'000'000'000};
  ScratchStore scratch_;
};

TEST_P(ReplicaStoreBatchTest, GetManyReturnsWhatGetReturnsForEachKey) {
  constexpr int64_t kCount = 3 * ReplicaStore::kGetBatch + 37;
  const int64_t items = Fill(kCount);
  ReplicaStore& store = scratch_.store();
  const std::vector<std::string> keys = ShuffledKeys(kCount);
  const auto batched = Take(store.GetMany(items, keys));
  ASSERT_EQ(batched.size(), keys.size());
  size_t held = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    ExpectSame(batched[i], Take(store.Get(items, keys[i])), keys[i]);
    held += batched[i].has_value() ? 1 : 0;
  }
  EXPECT_EQ(held, keys.size() - 10);  // every key but the ten never written
  // Another collection's records are not found under this one.
  const int64_t other = Take(store.EnsureCollection("other", "lww", "")).id;
  for (const auto& record : Take(store.GetMany(other, keys))) EXPECT_FALSE(record.has_value());
  EXPECT_TRUE(Take(store.GetMany(items, {})).empty());
}

TEST_P(ReplicaStoreBatchTest, GetManySeesWritesStillWaitingInTheBatch) {
  constexpr int64_t kCount = 300;
  const int64_t items = Fill(kCount);
  ReplicaStore& store = scratch_.store();
  const std::vector<std::string> keys = ShuffledKeys(kCount);
  Check(store.BeginWrite());
  // Fewer puts than a batch holds, so that they are not flushed yet, among them a new record.
  for (int64_t id : {int64_t{1}, int64_t{2}, int64_t{14}, kCount + 3}) {
    Check(Write(store, items, CompositeKey(id), id != 2, id * 10));
  }
  const auto batched = Take(store.GetMany(items, keys));
  for (size_t i = 0; i < keys.size(); ++i) {
    ExpectSame(batched[i], Take(store.Get(items, keys[i])), keys[i]);
  }
  const auto written = Take(store.GetMany(items, std::vector{CompositeKey(1)}));
  ASSERT_TRUE(written[0].has_value());
  EXPECT_EQ(core::VisibleValue(*written[0]->record.Find("n"), "n", Take(core::ParsePolicy("lww"))),
            Value::Int(10));
  store.Rollback();
}

TEST_P(ReplicaStoreBatchTest, BucketSumsFlushedInBatchesEqualSumsRebuiltFromTheRecords) {
  constexpr int64_t kCount = 2'000;  // several hundred dirty rows of buckets per write
  const int64_t items = Fill(kCount);
  ReplicaStore& store = scratch_.store();
  // Collecting the tombstones empties buckets, whose rows are then erased.
  clock_.Advance(1'000);
  EXPECT_GT(Take(store.CollectTombstones(clock_.NowMillis())), 0U);
  auto all_sums = [&] {
    std::vector<reconcile::RangeSummary> sums;
    for (uint32_t first = 0; first < kBucketCount; first += 509) {
      sums.push_back(
          Take(store.bucket_sums().Read(items, first, std::min(kBucketCount - 1, first + 508))));
    }
    return sums;
  };
  const auto kept = all_sums();
  uint64_t counted = 0;
  for (const auto& sum : kept) counted += sum.count;
  EXPECT_EQ(counted, static_cast<uint64_t>(kCount - (kCount + 6) / 7));
  Check(store.BeginWrite());
  Check(BucketSums::Rebuild(store.db()));
  const auto rebuilt = all_sums();
  store.Rollback();
  ASSERT_EQ(kept.size(), rebuilt.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_EQ(kept[i].count, rebuilt[i].count) << "range " << i;
    EXPECT_EQ(kept[i].sum, rebuilt[i].sum) << "range " << i;
  }
}

// A record of `key` made from nothing, as a write that finds no stored record makes it: `note`
// as its text field, or a delete.
StoredRecord FreshRecord(ReplicaStore& store, const std::string& key, bool exists,
                         const std::string& note, std::vector<std::string>& changed) {
  StoredRecord stored{core::Record(key), {}, 0, {}};
  core::LocalWrite write;
  write.dot = store.NextDot();
  write.hlc = store.clock().Tick();
  write.exists = exists;
  if (exists) {
    write.fields.emplace_back("n", Value::Null());
    write.fields.emplace_back("note", Value::Text(note));
  }
  changed = Take(core::ApplyLocalWrite(stored.record, write, Take(core::ParsePolicy("lww"))));
  return stored;
}

// Records new to the store are bulk loaded on PostgreSQL (COPY, more of them than one load takes)
// and read back exactly as written: the records, their seqs, origins, tombstones and items.
TEST_P(ReplicaStoreBatchTest, NewRecordsWrittenInBulkReadBackAsWritten) {
  constexpr int64_t kCount = 9'000;
  ReplicaStore& store = scratch_.store();
  const int64_t items = Take(store.EnsureCollection("items", "lww", "")).id;
  const bool postgres = GetParam() == Dialect::kPostgres;
  if (postgres) {
    // Notes the start of each statement that writes records: a load shows as COPY.
    Check(scratch_.db().Exec(
        "CREATE TABLE seen(query text);"
        "CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO seen VALUES (left(current_query(), 4)); RETURN NULL; END $$;"
        "CREATE TRIGGER note BEFORE INSERT ON _lockstep_records "
        "FOR EACH STATEMENT EXECUTE FUNCTION note();"));
  }
  core::NodeId peer;
  peer.bytes.fill(7);
  std::map<std::string, core::Record> written;
  Check(store.Write([&]() -> Status {
    for (int64_t id = 0; id < kCount; ++id) {
      std::string note = id % 1'000 == 1 ? std::string(200'000, 'x') : "\u65e5\u672c \t\n\\ ";
      note += std::to_string(id);
      std::vector<std::string> changed;
      StoredRecord stored = FreshRecord(store, CompositeKey(id), id % 11 != 0, note, changed);
      written.emplace(stored.record.key(), stored.record);
      // Every other record as if taken whole from `peer`.
      LOCKSTEP_RETURN_IF_ERROR(store.Put(items, stored, changed, id % 2 == 0 ? &peer : nullptr));
    }
    return Status::Ok();
  }));
  const ChangePage all = Take(store.ChangesAfter(0, 2 * kCount, nullptr));
  ASSERT_EQ(all.changes.size(), static_cast<size_t>(kCount));
  for (size_t i = 0; i < all.changes.size(); ++i) {
    const StoredRecord& stored = all.changes[i].stored;
    EXPECT_EQ(stored.seq, i + 1);
    EXPECT_EQ(stored.field_seqs, std::vector<uint64_t>(stored.record.fields().size(), i + 1));
    EXPECT_EQ(stored.record, written.at(stored.record.key())) << i;
  }
  // The origin was stored: records from `peer` are skipped when sending to it.
  EXPECT_EQ(Take(store.ChangesAfter(0, 2 * kCount, &peer)).changes.size(),
            static_cast<size_t>(kCount / 2));
  for (int64_t id : {int64_t{0}, int64_t{1}, int64_t{1'001}, kCount - 1}) {
    const auto stored = Take(store.Get(items, CompositeKey(id)));
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->record, written.at(CompositeKey(id)));
  }
  // The items' bucket sums and the tombstones' times were stored with them.
  uint64_t counted = 0;
  for (uint32_t first = 0; first < kBucketCount; first += 4'096) {
    counted += Take(store.bucket_sums().Read(items, first, first + 4'095)).count;
  }
  EXPECT_EQ(counted, static_cast<uint64_t>(kCount));
  clock_.Advance(1'000);
  EXPECT_EQ(Take(store.CollectTombstones(clock_.NowMillis())),
            static_cast<size_t>((kCount + 10) / 11));
  if (postgres) {
    // Two loads (one when the puts waiting filled up, one at the commit) and no INSERT.
    Statement seen =
        Take(scratch_.db().Prepare("SELECT string_agg(query, ',' ORDER BY query) FROM seen"));
    ASSERT_TRUE(Take(seen.Step()));
    EXPECT_EQ(seen.ColumnText(0), "COPY,COPY");
  }
}

// A caller that takes a stored record for new (it did not read it first) still updates it: on
// PostgreSQL the bulk load meets the stored row and the upserts take over in the same write.
TEST_P(ReplicaStoreBatchTest, RecordsTakenForNewThoughStoredAreUpdatedNotDuplicated) {
  constexpr int64_t kCount = 600;
  const int64_t items = Fill(kCount);
  ReplicaStore& store = scratch_.store();
  Check(store.Write([&]() -> Status {
    for (int64_t id = 0; id < kCount; ++id) {
      std::vector<std::string> changed;
      StoredRecord stored = FreshRecord(store, CompositeKey(id), true, "again", changed);
      LOCKSTEP_RETURN_IF_ERROR(store.Put(items, stored, changed, nullptr));
    }
    return Status::Ok();
  }));
  const ChangePage all = Take(store.ChangesAfter(0, 10 * kCount, nullptr));
  ASSERT_EQ(all.changes.size(), static_cast<size_t>(kCount));
  const core::MergePolicy lww = Take(core::ParsePolicy("lww"));
  for (const Change& change : all.changes) {
    const core::Field* note = change.stored.record.Find("note");
    ASSERT_NE(note, nullptr);
    EXPECT_EQ(core::VisibleValue(*note, "note", lww), Value::Text("again"));
  }
}

INSTANTIATE_TEST_SUITE_P(BothDatabases, ReplicaStoreBatchTest,
                         ::testing::Values(Dialect::kSqlite, Dialect::kPostgres), DialectName);

}  // namespace
}  // namespace lockstep::store
