// The bucket sums of metadata version 3 (bucket_sums.h) under random interleavings of writes
// (puts and deletes over two collections, in commits of any size), rollbacks, folds inside and
// outside writes, and reads inside and outside writes: every read equals the sum recomputed from
// the records. On SQLite: a thousand cases on one store, each in collections of its own.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "store/record_item.h"
#include "store/store_item_set.h"
#include "store_test_support.h"

namespace lockstep::store {
namespace {

using reconcile::RangeSummary;
using testing::Key;
using testing::WriteLocal;

void Ok(const Status& status) { RC_ASSERT(status.ok()); }

template <typename T>
T Get(Result<T> result) {
  RC_ASSERT(result.has_value());
  return std::move(*result);
}

RangeSummary Recomputed(Database& db, int64_t collection, uint32_t first, uint32_t last) {
  auto stmt = Get(db.Prepare("SELECT position, hash FROM _lockstep_records WHERE collection = ?"));
  stmt.BindInt(1, collection);
  RangeSummary sum;
  while (Get(stmt.Step())) {
    const uint32_t bucket = BucketOf(PositionFromColumn(stmt.ColumnInt(0)));
    if (bucket >= first && bucket <= last) sum.Add(Get(HashFromColumn(stmt.ColumnBlob(1))));
  }
  return sum;
}

struct Step {
  enum Kind { kCommit, kRollback, kFold, kRead } kind;
  // For writes: (collection 0 or 1, key, value or a delete); a read inside the write after
  // `read_after` of them (when below their count); a fold inside after `fold_after`.
  std::vector<std::tuple<int, int, std::optional<int>>> writes;
  size_t read_after = 0;
  size_t fold_after = 0;
  uint32_t first = 0, last = 0;  // a bucket range to read
};

rc::Gen<Step> GenStep() {
  return rc::gen::exec([] {
    Step step;
    step.kind =
        *rc::gen::element(Step::kCommit, Step::kCommit, Step::kRollback, Step::kFold, Step::kRead);
    const auto writes = *rc::gen::inRange<size_t>(1, 30);
    for (size_t i = 0; i < writes; ++i) {
      const int collection = *rc::gen::inRange(0, 2);
      const int key = *rc::gen::inRange(0, 60);
      const int value = *rc::gen::inRange(-1, 5);  // -1: a delete
      step.writes.emplace_back(collection, key,
                               value < 0 ? std::nullopt : std::optional<int>(value));
    }
    step.read_after = *rc::gen::inRange<size_t>(0, 40);
    step.fold_after = *rc::gen::inRange<size_t>(0, 40);
    step.first = *rc::gen::inRange<uint32_t>(0, kBucketCount);
    step.last = *rc::gen::inRange<uint32_t>(step.first, kBucketCount);
    return step;
  });
}

RC_GTEST_PROP(BucketSumsProperty, EveryReadEqualsTheRecordsWhateverTheOrderOfFoldsAndWrites, ()) {
  static base::FakeClock clock(1'700'000'000'000);
  static testing::ScratchStore scratch(clock, "bucket-property");
  static int cases = 0;
  ReplicaStore& store = scratch.store();
  Database& db = scratch.db();
  const int64_t collections[] = {
      Get(store.EnsureCollection("a" + std::to_string(cases), "lww", "")).id,
      Get(store.EnsureCollection("b" + std::to_string(cases), "lww", "")).id};
  ++cases;
  auto expect_exact = [&](int64_t collection, uint32_t first, uint32_t last) {
    Ok(store.FlushWrites());
    RC_ASSERT(Get(store.bucket_sums().Read(collection, first, last)) ==
              Recomputed(db, collection, first, last));
    RC_ASSERT(Get(store.bucket_sums().Read(collection, 0, kBucketCount - 1)) ==
              Recomputed(db, collection, 0, kBucketCount - 1));
  };
  // A few steps a case keep a thousand cases within a minute; durability is not under test.
  static const Status unsynced = db.Exec("PRAGMA synchronous = OFF");
  Ok(unsynced);
  const auto count = *rc::gen::inRange<size_t>(1, 12);
  const auto steps = *rc::gen::container<std::vector<Step>>(count, GenStep());
  for (const Step& step : steps) {
    if (step.kind == Step::kFold) {
      Ok(store.PrepareItemReads());
    } else if (step.kind == Step::kRead) {
      StoreItemSet set(store, collections[0]);
      RC_ASSERT(Get(set.Summarize({0, 0, true})) ==
                Recomputed(db, collections[0], 0, kBucketCount - 1));
    } else {
      Ok(store.BeginWrite());
      for (size_t i = 0; i < step.writes.size(); ++i) {
        const auto& [c, key, value] = step.writes[i];
        Ok(WriteLocal(store, collections[c], Key(key),
                      value.has_value() ? std::optional<int64_t>(*value) : std::nullopt));
        if (i + 1 == step.read_after) expect_exact(collections[c], step.first, step.last);
        if (i + 1 == step.fold_after) Ok(store.PrepareItemReads());
      }
      if (step.kind == Step::kRollback) {
        store.Rollback();
      } else {
        Ok(store.Commit());
      }
    }
    for (int64_t collection : collections) expect_exact(collection, step.first, step.last);
  }
}

}  // namespace
}  // namespace lockstep::store
