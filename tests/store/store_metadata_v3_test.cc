// The replica store's metadata version 3: bucket-sum changes appended per write and folded into
// `_lockstep_buckets` later (bucket_sums.h). The sums read must equal those recomputed from the
// records whatever the order of writes, folds, rollbacks and reads, on both databases; and a
// version 2 store migrates with its sums intact.
#include <gtest/gtest.h>

#include <random>

#include "store/metadata_schema.h"
#include "store/record_item.h"
#include "store/replica_store.h"
#include "store/store_item_set.h"
#include "store_test_support.h"

namespace lockstep::store {
namespace {

using reconcile::RangeSummary;
using testing::Check;
using testing::Key;
using testing::Take;
using testing::WriteLocal;

// The sum of the items of `collection` whose bucket is first..last, from the records themselves.
RangeSummary Recomputed(Database& db, int64_t collection, uint32_t first, uint32_t last) {
  auto stmt = Take(db.Prepare("SELECT position, hash FROM _lockstep_records WHERE collection = ?"));
  stmt.BindInt(1, collection);
  RangeSummary sum;
  while (Take(stmt.Step())) {
    const uint32_t bucket = BucketOf(PositionFromColumn(stmt.ColumnInt(0)));
    if (bucket >= first && bucket <= last) sum.Add(Take(HashFromColumn(stmt.ColumnBlob(1))));
  }
  return sum;
}

int64_t PendingRows(Database& db) {
  auto stmt = Take(db.Prepare("SELECT count(*) FROM _lockstep_bucket_deltas"));
  EXPECT_TRUE(Take(stmt.Step()));
  return stmt.ColumnInt(0);
}

class StoreV3Test : public ::testing::TestWithParam<Dialect> {
 protected:
  StoreV3Test() : clock_(1'700'000'000'000), scratch_(clock_, "v3", GetParam()) {}
  ReplicaStore& store() { return scratch_.store(); }

  // Compares the bucket sums of several ranges, and the item set's summaries, with the records.
  void ExpectExact(int64_t collection, std::mt19937_64& rng) {
    Check(store().FlushWrites());
    std::vector<std::pair<uint32_t, uint32_t>> ranges = {{0, kBucketCount - 1}};
    for (int i = 0; i < 6; ++i) {
      uint32_t a = static_cast<uint32_t>(rng() % kBucketCount);
      uint32_t b = static_cast<uint32_t>(rng() % kBucketCount);
      if (a > b) std::swap(a, b);
      ranges.emplace_back(a, b);
    }
    for (const auto& [first, last] : ranges) {
      EXPECT_EQ(Take(store().bucket_sums().Read(collection, first, last)),
                Recomputed(scratch_.db(), collection, first, last))
          << "buckets " << first << ".." << last;
    }
  }

  base::FakeClock clock_;
  testing::ScratchStore scratch_;
};

TEST_P(StoreV3Test, ScatteredCommitAppendsOneRowInsteadOfRewritingBucketRows) {
  const int64_t c = Take(store().EnsureCollection("t", "lww", "")).id;
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 2'000; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k), k));
    return Status::Ok();
  }));
  Check(store().PrepareItemReads());  // folds, outside any transaction
  EXPECT_EQ(PendingRows(scratch_.db()), 0);
  auto rows = [&] {
    auto stmt = Take(scratch_.db().Prepare("SELECT id, sums FROM _lockstep_buckets ORDER BY id"));
    std::string all;
    while (Take(stmt.Step())) {
      all += std::to_string(stmt.ColumnInt(0)) + ":" + std::string(stmt.ColumnBlob(1)) + ";";
    }
    return all;
  };
  const std::string folded = rows();
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 2'000; k += 2)
      LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k), -k));
    return Status::Ok();
  }));
  // The bucket rows are as they were; the 1,000 changes wait in one row.
  EXPECT_EQ(rows(), folded);
  EXPECT_EQ(PendingRows(scratch_.db()), 1);
  std::mt19937_64 rng(3);
  ExpectExact(c, rng);
  StoreItemSet set(store(), c);
  EXPECT_EQ(Take(set.Summarize({0, 0, true})).count, 2'000U);
  // Reading the item set folded them.
  EXPECT_EQ(PendingRows(scratch_.db()), 0);
  EXPECT_NE(rows(), folded);
  ExpectExact(c, rng);
}

TEST_P(StoreV3Test, ManySmallCommitsFoldAtTheRowBound) {
  const int64_t c = Take(store().EnsureCollection("t", "lww", "")).id;
  const int64_t commits = static_cast<int64_t>(BucketSums::kMaxPendingRows) + 40;
  for (int64_t k = 0; k < commits; ++k) {
    Check(store().Write([&] { return WriteLocal(store(), c, Key(k % 300), k); }));
    ASSERT_LE(PendingRows(scratch_.db()), static_cast<int64_t>(BucketSums::kMaxPendingRows));
  }
  EXPECT_LT(PendingRows(scratch_.db()), 100);  // folded once, about 40 commits ago
  std::mt19937_64 rng(5);
  ExpectExact(c, rng);
}

// Writes, deletes, rollbacks, folds inside and outside writes, and reads inside writes, in a
// random order over two collections: every read equals the records.
TEST_P(StoreV3Test, InterleavedWritesFoldsAndReadsStayExact) {
  const int64_t a = Take(store().EnsureCollection("a", "lww", "")).id;
  const int64_t b = Take(store().EnsureCollection("b", "lww", "")).id;
  std::mt19937_64 rng(11);
  for (int round = 0; round < 60; ++round) {
    const int kind = static_cast<int>(rng() % 5);
    if (kind == 0) {
      Check(store().PrepareItemReads());
    } else {
      Check(store().BeginWrite());
      const int writes = static_cast<int>(rng() % 40) + 1;
      for (int i = 0; i < writes; ++i) {
        const int64_t c = rng() % 3 == 0 ? b : a;
        const int64_t k = static_cast<int64_t>(rng() % 150);
        const std::optional<int64_t> value =
            rng() % 4 == 0 ? std::nullopt : std::optional<int64_t>(static_cast<int64_t>(rng()));
        Check(WriteLocal(store(), c, Key(k), value));
        if (rng() % 10 == 0) ExpectExact(c, rng);  // flushes mid-write: a pending row, then more
        if (rng() % 20 == 0) Check(store().PrepareItemReads());  // folds inside the write
      }
      ExpectExact(a, rng);
      if (kind == 1) {
        store().Rollback();
      } else {
        Check(store().Commit());
      }
    }
    ExpectExact(a, rng);
    ExpectExact(b, rng);
  }
}

// A store as version 2 left it (its sums all in _lockstep_buckets, no table of pending changes)
// migrates to version 3 with the same sums and keeps them exact as it writes on.
TEST_P(StoreV3Test, Version2StoreMigratesWithItsSums) {
  const int64_t c = Take(store().EnsureCollection("t", "lww", "")).id;
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 500; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k), k));
    return Status::Ok();
  }));
  Check(store().Write([&] { return WriteLocal(store(), c, Key(3), std::nullopt); }));
  Check(store().PrepareItemReads());
  Database& db = scratch_.db();
  testing::TakeBackToVersion3(db);
  Check(db.Exec("DROP TABLE _lockstep_bucket_deltas"));
  Check(WriteMeta(db, "version", Value::Int(2)));
  ASSERT_EQ(Take(MetadataVersion(db)), 2);
  // Opened read-only, a version 2 store is refused until a sync upgrades it.
  EXPECT_FALSE(ReplicaStore::OpenReadOnly(db, clock_).has_value());

  auto migrated = Take(ReplicaStore::Open(db, clock_));
  EXPECT_EQ(Take(MetadataVersion(db)), kMetadataVersion);
  EXPECT_EQ(PendingRows(db), 0);
  StoreItemSet set(*migrated, c);
  EXPECT_EQ(Take(set.Summarize({0, 0, true})), Recomputed(db, c, 0, kBucketCount - 1));
  Check(migrated->Write([&]() -> Status {
    for (int64_t k = 0; k < 500; k += 3)
      LOCKSTEP_RETURN_IF_ERROR(WriteLocal(*migrated, c, Key(k), -k));
    return Status::Ok();
  }));
  EXPECT_EQ(PendingRows(db), 1);
  EXPECT_EQ(Take(migrated->bucket_sums().Read(c, 0, kBucketCount - 1)),
            Recomputed(db, c, 0, kBucketCount - 1));
}

TEST_P(StoreV3Test, CorruptPendingChangesAreDataLossNotACrash) {
  const int64_t c = Take(store().EnsureCollection("t", "lww", "")).id;
  Check(store().Write([&] { return WriteLocal(store(), c, Key(1), 1); }));
  auto insert = Take(scratch_.db().Prepare(
      "INSERT INTO _lockstep_bucket_deltas(collection, entries, changes) VALUES (?, 1, ?)"));
  // Bucket 65,536 does not exist.
  Check(insert.BindInt(1, c)
            .BindBlob(2, std::string("\x80\x80\x04\x02", 4) + std::string(16, '\0'))
            .Run());
  auto read = store().bucket_sums().Read(c, 0, kBucketCount - 1);
  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code(), StatusCode::kDataLoss);
}

INSTANTIATE_TEST_SUITE_P(BothDatabases, StoreV3Test,
                         ::testing::Values(Dialect::kSqlite, Dialect::kPostgres),
                         testing::DialectName);

}  // namespace
}  // namespace lockstep::store
