// The bucket sums of metadata version 3 (bucket_sums.h) under random interleavings of writes
// (puts and deletes over two collections, in commits of any size), rollbacks, folds inside and
// outside writes, and reads inside and outside writes: every read equals the sum recomputed from
// the records. And the change log of version 4 under the same steps, with trims: read in pages
// of any size it lists exactly the records, each once at its seq, in seq order, and its entries
// are the records' plus the ones counted stale. On SQLite: a thousand cases on one store, each in
// collections of its own.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <tuple>
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

// (collection, key, seq) of every record changed after `after`, from the records themselves.
std::vector<std::tuple<int64_t, std::string, uint64_t>> RecordsAfter(Database& db, uint64_t after) {
  auto stmt = Get(
      db.Prepare("SELECT collection, key, seq FROM _lockstep_records WHERE seq > ? ORDER BY seq"));
  stmt.BindInt(1, static_cast<int64_t>(after));
  std::vector<std::tuple<int64_t, std::string, uint64_t>> records;
  while (Get(stmt.Step())) {
    records.emplace_back(stmt.ColumnInt(0), std::string(stmt.ColumnBlob(1)),
                         static_cast<uint64_t>(stmt.ColumnInt(2)));
  }
  return records;
}

// The same through the change log, read as a sender reads it, in pages of `page`.
std::vector<std::tuple<int64_t, std::string, uint64_t>> LogAfter(
    ReplicaStore& store, uint64_t after, size_t page, const std::map<std::string, int64_t>& ids) {
  std::vector<std::tuple<int64_t, std::string, uint64_t>> changes;
  for (;;) {
    const ChangePage read = Get(store.ChangesAfter(after, page, nullptr));
    RC_ASSERT(read.changes.size() <= page);
    RC_ASSERT(read.scanned_to >= after);
    for (const Change& change : read.changes) {
      changes.emplace_back(ids.at(change.collection), change.stored.record.key(),
                           change.stored.seq);
    }
    after = read.scanned_to;
    if (read.changes.size() < page) return changes;
  }
}

int64_t Count(Database& db, std::string_view sql) {
  auto stmt = Get(db.Prepare(sql));
  RC_ASSERT(Get(stmt.Step()));
  return stmt.ColumnInt(0);
}

struct Step {
  enum Kind { kCommit, kRollback, kFold, kRead } kind;
  // For writes: (collection 0 or 1, key, value or a delete); a read inside the write after
  // `read_after` of them (when below their count); a fold inside after `fold_after`.
  std::vector<std::tuple<int, int, std::optional<int>>> writes;
  size_t read_after = 0;
  size_t fold_after = 0;
  uint32_t first = 0, last = 0;  // a bucket range to read
  size_t page = 1;               // the page size the change log is read in
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
    step.page = *rc::gen::inRange<size_t>(1, 50);
    return step;
  });
}

RC_GTEST_PROP(BucketSumsProperty, EveryReadEqualsTheRecordsWhateverTheOrderOfFoldsAndWrites, ()) {
  static base::FakeClock clock(1'700'000'000'000);
  static testing::ScratchStore scratch(clock, "bucket-property");
  static int cases = 0;
  ReplicaStore& store = scratch.store();
  Database& db = scratch.db();
  const std::string names[] = {"a" + std::to_string(cases), "b" + std::to_string(cases)};
  const int64_t collections[] = {Get(store.EnsureCollection(names[0], "lww", "")).id,
                                 Get(store.EnsureCollection(names[1], "lww", "")).id};
  const std::map<std::string, int64_t> ids = {{names[0], collections[0]},
                                              {names[1], collections[1]}};
  ++cases;
  // Trims often enough to happen in the run: at 64 stale entries, then as many as the log kept.
  store.set_log_trim_minimum(64);
  // Records of earlier cases never change again: the log after this seq is this case's.
  const uint64_t case_start = store.last_seq();
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
    RC_ASSERT(LogAfter(store, case_start, step.page, ids) == RecordsAfter(db, case_start));
  }
  // Read outside a write, the counters are the committed ones.
  Ok(store.Write([] { return Status::Ok(); }));
  RC_ASSERT(Count(db, "SELECT count(*) FROM _lockstep_log") ==
            Count(db, "SELECT count(*) FROM _lockstep_records") +
                static_cast<int64_t>(store.log_stale()));
}

}  // namespace
}  // namespace lockstep::store
