// The replica store's metadata version 4: the change log as a table appended by every write
// (`_lockstep_log`) instead of an index of the records by seq. Readers must see exactly the
// records as the index showed them (in seq order, the latest state of each, echoes skipped)
// whatever the stale entries left behind by updates; the trim must remove those and only those,
// once they are about as many as the records; a version 3 store migrates with every change
// readable. On both databases.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "reconcile/item.h"
#include "store/metadata_schema.h"
#include "store/replica_store.h"
#include "store_test_support.h"

namespace lockstep::store {
namespace {

using testing::Check;
using testing::Key;
using testing::Take;
using testing::WriteLocal;

int64_t Count(Database& db, const std::string& sql) {
  auto stmt = Take(db.Prepare(sql));
  EXPECT_TRUE(Take(stmt.Step()));
  return stmt.ColumnInt(0);
}

// (collection name, key, seq) of a change.
using Logged = std::tuple<std::string, std::string, uint64_t>;

// The whole change log after `after`, read through ChangesAfter in pages of `page`, the way a
// sender reads it: each page from the last one's `scanned_to`.
std::vector<Logged> ReadLog(ReplicaStore& store, uint64_t after, size_t page,
                            const core::NodeId* skip) {
  std::vector<Logged> all;
  for (int pages = 0; pages < 10'000; ++pages) {
    const ChangePage read = Take(store.ChangesAfter(after, page, skip));
    EXPECT_LE(read.changes.size(), page);
    EXPECT_GE(read.scanned_to, after);
    for (const Change& change : read.changes) {
      all.emplace_back(change.collection, change.stored.record.key(), change.stored.seq);
    }
    after = read.scanned_to;
    if (read.changes.size() < page) return all;
  }
  ADD_FAILURE() << "the change log did not end";
  return all;
}

// The same, from the records themselves (and their own origin column): what the seq index of
// version 3 listed.
std::vector<Logged> FromRecords(Database& db, uint64_t after, const core::NodeId* skip) {
  auto stmt =
      Take(db.Prepare("SELECT c.name, r.key, r.seq FROM _lockstep_records r "
                      "JOIN _lockstep_collections c ON c.id = r.collection WHERE r.seq > ? AND "
                      "(CAST(? AS BIGINT) IS NULL OR r.origin IS DISTINCT FROM "
                      "(SELECT id FROM _lockstep_peers WHERE node = ?)) ORDER BY r.seq"));
  stmt.BindInt(1, static_cast<int64_t>(after));
  if (skip != nullptr) {
    stmt.BindInt(2, 1).BindBlob(
        3, std::string(reinterpret_cast<const char*>(skip->bytes.data()), skip->bytes.size()));
  }
  std::vector<Logged> all;
  while (Take(stmt.Step())) {
    all.emplace_back(std::string(stmt.ColumnText(0)), std::string(stmt.ColumnBlob(1)),
                     static_cast<uint64_t>(stmt.ColumnInt(2)));
  }
  return all;
}

core::NodeId Peer(uint8_t fill) {
  core::NodeId node;
  node.bytes.fill(fill);
  return node;
}

class StoreV4Test : public ::testing::TestWithParam<Dialect> {
 protected:
  StoreV4Test() : clock_(1'700'000'000'000), scratch_(clock_, "v4", GetParam()) {}
  ReplicaStore& store() { return scratch_.store(); }
  Database& db() { return scratch_.db(); }

  int64_t LogEntries() { return Count(db(), "SELECT count(*) FROM _lockstep_log"); }
  int64_t Records() { return Count(db(), "SELECT count(*) FROM _lockstep_records"); }

  // What every reader must see, and the count of stale entries the store keeps, against the
  // records: read in pages of several sizes, from several cursors, skipping a peer or not.
  void ExpectLogMatchesRecords(const core::NodeId* peer = nullptr) {
    EXPECT_EQ(LogEntries(), Records() + static_cast<int64_t>(store().log_stale()))
        << "every entry is a record's current one or counted stale";
    const auto stored_stale = Take(ReadMeta(db(), "log_stale"));
    EXPECT_EQ(stored_stale.has_value() ? stored_stale->as_int() : 0,
              static_cast<int64_t>(store().log_stale()));
    for (uint64_t after : {uint64_t{0}, store().last_seq() / 2, store().last_seq()}) {
      for (size_t page : {size_t{1}, size_t{3}, size_t{1000}}) {
        EXPECT_EQ(ReadLog(store(), after, page, nullptr), FromRecords(db(), after, nullptr))
            << "after " << after << ", pages of " << page;
        if (peer != nullptr) {
          EXPECT_EQ(ReadLog(store(), after, page, peer), FromRecords(db(), after, peer))
              << "skipping the peer, after " << after << ", pages of " << page;
        }
      }
    }
  }

  Status Update(int64_t collection, int64_t key, std::optional<int64_t> value,
                const core::NodeId* origin = nullptr) {
    return store().Write([&] { return WriteLocal(store(), collection, Key(key), value, origin); });
  }

  base::FakeClock clock_;
  testing::ScratchStore scratch_;
};

TEST_P(StoreV4Test, TheRecordsHaveNoSeqIndexAndUpdatesAppendToTheLog) {
  const std::string indexes =
      GetParam() == Dialect::kPostgres
          ? "SELECT count(*) FROM pg_indexes WHERE indexname = '_lockstep_records_by_seq'"
          : "SELECT count(*) FROM sqlite_master WHERE name = '_lockstep_records_by_seq'";
  EXPECT_EQ(Count(db(), indexes), 0);
  const int64_t c = Take(store().EnsureCollection("t", "lww", "")).id;
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 20; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k), k));
    return Status::Ok();
  }));
  EXPECT_EQ(LogEntries(), 20);
  EXPECT_EQ(store().log_stale(), 0U);
  for (int64_t k : {3, 7, 11, 3}) Check(Update(c, k, -k));
  EXPECT_EQ(LogEntries(), 24) << "each update appends; the entry it supersedes stays";
  EXPECT_EQ(store().log_stale(), 4U);
  // The newest seq is the log's end: a reader that reaches it is told so.
  EXPECT_EQ(Take(store().ChangesAfter(0, 1000, nullptr)).scanned_to, store().last_seq());
  ExpectLogMatchesRecords();
}

TEST_P(StoreV4Test, StaleEntriesAreSkippedByEveryReader) {
  const int64_t a = Take(store().EnsureCollection("a", "lww", "")).id;
  const int64_t b = Take(store().EnsureCollection("b", "lww", "")).id;
  const core::NodeId peer = Peer(0xab);
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 12; ++k) {
      LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), k % 3 == 0 ? b : a, Key(k), k));
    }
    return Status::Ok();
  }));
  // Updates of all kinds, one per commit, so that each leaves a stale entry: local, from the
  // peer (echoes to skip), deletes, the same record several times.
  Check(Update(a, 1, 10, &peer));
  Check(Update(a, 2, std::nullopt));
  Check(Update(b, 3, 30, &peer));
  Check(Update(a, 1, 11));  // no longer the peer's: sent to it again
  Check(Update(a, 2, 20, &peer));
  Check(Update(a, 4, 40));
  ExpectLogMatchesRecords(&peer);

  // The item positions reconciliation offers: the same as the records list, newest first.
  const core::NodeId* skips[] = {nullptr, &peer};
  for (const core::NodeId* skip : skips) {
    std::vector<uint64_t> expected;
    for (const auto& [collection, key, seq] : FromRecords(db(), 5, skip)) {
      if (collection == "a") expected.insert(expected.begin(), reconcile::ItemPosition(key));
    }
    EXPECT_EQ(Take(store().ChangedPositions(a, 5, 1000, skip)), expected);
  }
  // Only the last 2 seqs are looked at: 17 (record 2) and 18 (record 4).
  const std::vector<uint64_t> last_two = {reconcile::ItemPosition(Key(4)),
                                          reconcile::ItemPosition(Key(2))};
  EXPECT_EQ(Take(store().ChangedPositions(a, 0, 2, nullptr)), last_two);
}

TEST_P(StoreV4Test, StaleEntriesAreCountedExactlyAcrossBatchesFlushesAndRollbacks) {
  const int64_t c = Take(store().EnsureCollection("t", "lww", "")).id;
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 10; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k), k));
    // A new record put twice before any flush: one entry, none stale.
    LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(100), 1));
    return WriteLocal(store(), c, Key(100), 2);
  }));
  ExpectLogMatchesRecords();
  EXPECT_EQ(store().log_stale(), 0U);
  Check(store().Write([&]() -> Status {
    // A stored record put three times in one batch: one entry, its old one stale.
    for (int64_t v : {1, 2, 3}) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(5), v));
    // Put, flushed by a read inside the write, put again: two entries, both earlier ones stale.
    LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(6), 1));
    LOCKSTEP_RETURN_IF_ERROR(store().ChangesAfter(0, 1, nullptr).status());
    return WriteLocal(store(), c, Key(6), 2);
  }));
  EXPECT_EQ(store().log_stale(), 3U);
  ExpectLogMatchesRecords();
  // A rolled-back write leaves neither entries nor a count behind.
  Check(store().BeginWrite());
  Check(WriteLocal(store(), c, Key(7), 9));
  Check(store().FlushWrites());
  store().Rollback();
  Check(store().Write([] { return Status::Ok(); }));
  EXPECT_EQ(store().log_stale(), 3U);
  ExpectLogMatchesRecords();
  // Many updates in one write: on SQLite spread over flushes of 64 puts, each writing each of the
  // 10 records once and making its last entry stale; PostgreSQL holds up to 8,192 puts before a
  // flush, so there the 600 make only the 10 entries before them stale.
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 600; ++k) {
      LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k % 10), k));
    }
    return Status::Ok();
  }));
  EXPECT_EQ(store().log_stale(), 3U + (GetParam() == Dialect::kPostgres ? 10U : 100U));
  ExpectLogMatchesRecords();
}

TEST_P(StoreV4Test, TrimsOnceTheStaleEntriesAreAsManyAsTheRecords) {
  store().set_log_trim_minimum(10);
  const int64_t c = Take(store().EnsureCollection("t", "lww", "")).id;
  auto trim_at = [&] { return Take(ReadMeta(db(), "log_trim_at"))->as_int(); };
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 3; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k), k));
    return Status::Ok();
  }));
  EXPECT_EQ(trim_at(), 3) << "the records added since the last trim";
  // Fewer records than the minimum: the trim waits for the minimum.
  for (int64_t k = 0; k < 9; ++k) Check(Update(c, k % 3, k));
  EXPECT_EQ(store().log_stale(), 9U);
  EXPECT_EQ(LogEntries(), 12);
  ExpectLogMatchesRecords();
  // The tenth stale entry trims them all, in that commit.
  Check(Update(c, 0, -1));
  EXPECT_EQ(store().log_stale(), 0U);
  EXPECT_EQ(LogEntries(), 3);
  EXPECT_EQ(trim_at(), 3);
  ExpectLogMatchesRecords();

  // 30 records: the next trim waits for 30 stale entries, not 10.
  Check(store().Write([&]() -> Status {
    for (int64_t k = 3; k < 30; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k), k));
    return Status::Ok();
  }));
  EXPECT_EQ(trim_at(), 30);
  for (int64_t k = 0; k < 29; ++k) Check(Update(c, k % 7, k));
  EXPECT_EQ(store().log_stale(), 29U);
  EXPECT_EQ(LogEntries(), 59);
  ExpectLogMatchesRecords();
  Check(store().Write([&]() -> Status {
    // A delete, an update and a new record in the trimming write (31 stale entries, 31
    // records): the trim sees them all.
    LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(20), std::nullopt));
    LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(21), -21));
    return WriteLocal(store(), c, Key(31), 31);
  }));
  EXPECT_EQ(store().log_stale(), 0U);
  EXPECT_EQ(LogEntries(), 31);
  EXPECT_EQ(trim_at(), 31);
  ExpectLogMatchesRecords();
  // The counters are the committed ones on another store over the connection too.
  auto again = Take(ReplicaStore::Open(db(), clock_));
  Check(again->Write([] { return Status::Ok(); }));
  EXPECT_EQ(again->log_stale(), 0U);
}

TEST_P(StoreV4Test, ForgettingAnOriginAndCollectingTombstonesKeepTheLogExact) {
  const int64_t c = Take(store().EnsureCollection("t", "lww", "")).id;
  const core::NodeId peer = Peer(0xcd);
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 8; ++k) {
      LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), c, Key(k), k, k % 2 == 0 ? &peer : nullptr));
    }
    return Status::Ok();
  }));
  EXPECT_EQ(Take(store().ChangesAfter(0, 100, &peer)).changes.size(), 4U);
  Check(store().ForgetOrigin(peer));
  EXPECT_EQ(Take(store().ChangesAfter(0, 100, &peer)).changes.size(), 8U)
      << "the records that came from the peer go back to it";
  ExpectLogMatchesRecords(&peer);

  // Deleted twice (a stale entry of a tombstone) and once; collected after the retention.
  Check(Update(c, 1, std::nullopt));
  Check(Update(c, 1, std::nullopt));
  Check(Update(c, 2, std::nullopt));
  Check(Update(c, 3, 33));
  const uint64_t stale = store().log_stale();
  clock_.Advance(3'600'000);
  EXPECT_EQ(Take(store().CollectTombstones(clock_.NowMillis())), 2U);
  EXPECT_EQ(Records(), 6);
  EXPECT_EQ(store().log_stale(), stale) << "the tombstones' own entries went with them";
  ExpectLogMatchesRecords(&peer);
  // A reader at the end of the log is told so, past the collected seqs.
  const ReplicaStore::GcHorizon horizon = Take(store().Horizon());
  EXPECT_GE(Take(store().ChangesAfter(0, 100, nullptr)).scanned_to, horizon.seq);
  // The trim removes the collected tombstones' stale entries too.
  Check(store().Write([&] { return store().TrimLog(); }));
  EXPECT_EQ(LogEntries(), Records());
  ExpectLogMatchesRecords(&peer);
}

// A store as version 3 left it (every record listed by the seq index, no log) migrates to
// version 4 with every change readable as before, echoes still skipped.
TEST_P(StoreV4Test, Version3StoreMigratesWithEveryChangeReadable) {
  const int64_t a = Take(store().EnsureCollection("a", "lww", "")).id;
  const int64_t b = Take(store().EnsureCollection("b", "lww", "")).id;
  const core::NodeId peer = Peer(0xef);
  Check(store().Write([&]() -> Status {
    for (int64_t k = 0; k < 40; ++k) {
      LOCKSTEP_RETURN_IF_ERROR(
          WriteLocal(store(), k % 4 == 0 ? b : a, Key(k), k, k % 3 == 0 ? &peer : nullptr));
    }
    return Status::Ok();
  }));
  for (int64_t k : {1, 2, 5, 1}) Check(Update(a, k, std::nullopt));
  Check(Update(b, 4, 44, &peer));
  const std::vector<Logged> all = ReadLog(store(), 0, 7, nullptr);
  const std::vector<Logged> to_peer = ReadLog(store(), 0, 7, &peer);
  const std::vector<uint64_t> positions = Take(store().ChangedPositions(a, 10, 1000, &peer));
  ASSERT_EQ(all.size(), 40U);
  ASSERT_LT(to_peer.size(), all.size());

  Database& db = scratch_.db();
  testing::TakeBackToVersion3(db);
  ASSERT_EQ(Take(MetadataVersion(db)), 3);
  // Opened read-only, a version 3 store is refused until a sync upgrades it.
  EXPECT_FALSE(ReplicaStore::OpenReadOnly(db, clock_).has_value());

  auto migrated = Take(ReplicaStore::Open(db, clock_));
  EXPECT_EQ(Take(MetadataVersion(db)), 4);
  EXPECT_EQ(LogEntries(), 40) << "one entry per record, none stale";
  EXPECT_EQ(Take(ReadMeta(db, "log_trim_at"))->as_int(), 40);
  EXPECT_EQ(ReadLog(*migrated, 0, 7, nullptr), all);
  EXPECT_EQ(ReadLog(*migrated, 0, 1, &peer), to_peer);
  EXPECT_EQ(Take(migrated->ChangedPositions(a, 10, 1000, &peer)), positions);
  // And it writes on: an update appends behind the migrated entries.
  Check(migrated->Write([&] { return WriteLocal(*migrated, a, Key(7), 77); }));
  EXPECT_EQ(migrated->log_stale(), 1U);
  const std::vector<Logged> after = ReadLog(*migrated, 0, 1000, nullptr);
  ASSERT_EQ(after.size(), 40U);
  EXPECT_EQ(after.back(), Logged("a", Key(7), migrated->last_seq()));
  EXPECT_EQ(after, FromRecords(db, 0, nullptr));
}

INSTANTIATE_TEST_SUITE_P(BothDatabases, StoreV4Test,
                         ::testing::Values(Dialect::kSqlite, Dialect::kPostgres),
                         testing::DialectName);

}  // namespace
}  // namespace lockstep::store
