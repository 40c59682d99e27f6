// The replica store's metadata version 2 and what it is for: the migration from version 1 (of a
// SQLite file), restore detection (AdoptPeerView) and tombstone retention, on both databases.
#include <gtest/gtest.h>

#include "core/codec.h"
#include "store/metadata_schema.h"
#include "store/record_item.h"
#include "store/replica_store.h"
#include "store/store_item_set.h"
#include "store_test_support.h"

namespace lockstep::store {
namespace {

using testing::Check;
using testing::Key;
using testing::Take;
using testing::WriteLocal;

constexpr int64_t kDay = 24 * 3600 * 1000;

std::string Bytes(const core::NodeId& node) {
  return {reinterpret_cast<const char*>(node.bytes.data()), node.bytes.size()};
}

core::NodeId Node(uint8_t fill) {
  core::NodeId node;
  node.bytes.fill(fill);
  return node;
}

// A file exactly as Lockstep wrote metadata version 1.
void WriteVersion1File(SqliteDb& db, const std::vector<core::Record>& records) {
  Check(db.Exec(R"sql(
CREATE TABLE _lockstep_meta(name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE _lockstep_collections(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, policy TEXT NOT NULL DEFAULT 'lww',
  create_sql TEXT);
CREATE TABLE _lockstep_records(
  collection INTEGER NOT NULL, key BLOB NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,
  field_seqs BLOB NOT NULL, origin INTEGER, PRIMARY KEY (collection, key)) WITHOUT ROWID;
CREATE INDEX _lockstep_records_by_seq ON _lockstep_records(seq, origin);
CREATE TABLE _lockstep_peers(id INTEGER PRIMARY KEY, node BLOB NOT NULL UNIQUE);
CREATE TABLE _lockstep_cursors(
  peer BLOB PRIMARY KEY, epoch INTEGER NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE _lockstep_conflicts(
  id INTEGER PRIMARY KEY, logged_ms INTEGER NOT NULL, collection TEXT NOT NULL, key BLOB NOT NULL,
  field TEXT NOT NULL, winner_value, winner_node BLOB NOT NULL, winner_hlc INTEGER NOT NULL,
  loser_value, loser_node BLOB NOT NULL, loser_hlc INTEGER NOT NULL, pending INTEGER NOT NULL);
INSERT INTO _lockstep_meta VALUES ('version', 1), ('epoch', 77), ('dot_counter', 3), ('seq', 3);
INSERT INTO _lockstep_collections(id, name, policy) VALUES (1, 't', 'lww');
INSERT INTO _lockstep_cursors VALUES (x'00', 5, 9);
)sql"));
  auto node = Take(db.Prepare("INSERT INTO _lockstep_meta VALUES ('node', ?)"));
  Check(node.BindBlob(1, Bytes(Node(0xaa))).Run());
  auto insert = Take(db.Prepare("INSERT INTO _lockstep_records VALUES (1, ?, ?, ?, x'', NULL)"));
  int64_t seq = 0;
  for (const core::Record& record : records) {
    Check(insert.BindBlob(1, record.key())
              .BindInt(2, ++seq)
              .BindBlob(3, core::EncodeRecord(record))
              .Run());
  }
}

core::Record MakeRecord(int64_t key, const core::NodeId& node, uint64_t counter, bool exists,
                        int64_t millis) {
  core::Record record(Key(key));
  core::LocalWrite write{
      {node, counter}, core::Hlc::Make(static_cast<uint64_t>(millis), 0), {}, exists};
  if (exists) write.fields.emplace_back("v", Value::Int(key));
  auto policy = Take(core::ParsePolicy("lww"));
  Take(core::ApplyLocalWrite(record, write, policy));
  return record;
}

TEST(MetadataMigrationTest, Version1FileGainsItemColumnsBucketSumsAndHighestDots) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock, "unused");  // only for a scratch directory
  const auto path = scratch.path().parent_path() / "v1.sqlite";
  std::vector<core::Record> records = {
      MakeRecord(1, Node(0xaa), 1, true, 1000),
      MakeRecord(2, Node(0xaa), 2, false, 2000),
      MakeRecord(3, Node(0xbb), 7, true, 3000),
  };
  {
    auto db = Take(SqliteDb::Open(path, {.create_if_missing = true}));
    WriteVersion1File(db, records);
  }
  auto db = Take(SqliteDb::Open(path, {}));
  auto store = Take(ReplicaStore::Open(db, clock));
  EXPECT_EQ(Take(ReadMeta(db, "version"))->as_int(), kMetadataVersion);
  EXPECT_EQ(store->node(), Node(0xaa));
  EXPECT_EQ(store->epoch(), 77);

  auto rows = Take(db.Prepare(
      "SELECT key, record, position, hash, deleted_ms FROM _lockstep_records ORDER BY key"));
  reconcile::RangeSummary want;
  int seen = 0;
  while (Take(rows.Step())) {
    const RecordItem item = ItemOf(rows.ColumnBlob(0), rows.ColumnBlob(1));
    EXPECT_EQ(PositionFromColumn(rows.ColumnInt(2)), item.position);
    EXPECT_EQ(Take(HashFromColumn(rows.ColumnBlob(3))), item.hash);
    // Only the deleted record (key 2) is a tombstone, deleted at 2000 ms.
    EXPECT_EQ(rows.ColumnIsNull(4), seen != 1);
    if (seen == 1) {
      EXPECT_EQ(rows.ColumnInt(4), 2000);
    }
    want.Add(item.hash);
    ++seen;
  }
  EXPECT_EQ(seen, 3);
  StoreItemSet set(*store, 1);
  EXPECT_EQ(Take(set.Summarize({0, 0, true})), want);
  EXPECT_EQ(Take(store->HighestDotOf(Node(0xaa))), 2U);
  EXPECT_EQ(Take(store->HighestDotOf(Node(0xbb))), 7U);
  EXPECT_EQ(Take(store->HighestDotOf(Node(0xcc))), 0U);
  // The version 1 cursor survives, with no sync time.
  auto cursor = Take(db.Prepare("SELECT epoch, seq, synced_ms FROM _lockstep_cursors"));
  ASSERT_TRUE(Take(cursor.Step()));
  EXPECT_EQ(cursor.ColumnInt(0), 5);
  EXPECT_EQ(cursor.ColumnInt(1), 9);
  EXPECT_TRUE(cursor.ColumnIsNull(2));

  // And the migrated store keeps its sums up to date as it writes on.
  Check(store->Write([&] { return WriteLocal(*store, 1, Key(1), 42); }));
  want.Subtract(ItemOf(Key(1), core::EncodeRecord(records[0])).hash);
  auto updated = Take(store->Get(1, Key(1)));
  want.Add(ItemOf(Key(1), updated->encoded).hash);
  EXPECT_EQ(Take(set.Summarize({0, 0, true})), want);
}

class StoreV2Test : public ::testing::TestWithParam<Dialect> {};

TEST_P(StoreV2Test, NewerVersionIsRefused) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock, "newer", GetParam());
  Check(WriteMeta(scratch.db(), "version", Value::Int(99)));
  auto again = ReplicaStore::Open(scratch.db(), clock);
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().message().find("newer lockstep"), std::string::npos);
}

TEST_P(StoreV2Test, HighestDotsKeptAtCommitForEveryNodeWhoseDotsAreHeld) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock, "dots", GetParam());
  ReplicaStore& store = scratch.store();
  const int64_t c = Take(store.EnsureCollection("t", "lww", "")).id;
  Check(store.Write([&]() -> Status {
    for (int64_t k = 0; k < 5; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store, c, Key(k), k));
    StoredRecord other{MakeRecord(100, Node(0x11), 40, true, 5), {}, 0, {}};
    const std::vector<std::string> all = {"_exists", "v"};
    return store.Put(c, other, all, nullptr);
  }));
  EXPECT_EQ(Take(store.HighestDotOf(store.node())), 5U);
  EXPECT_EQ(Take(store.HighestDotOf(Node(0x11))), 40U);
  // A rolled-back write notes nothing.
  Check(store.BeginWrite());
  Check(WriteLocal(store, c, Key(9), 9));
  store.Rollback();
  EXPECT_EQ(Take(store.HighestDotOf(store.node())), 5U);
}

// A store taken back to version 1 (the version 2 columns, tables and indexes dropped) and
// reopened is migrated back to the same item columns, bucket sums and highest dots: the migration
// of the database's own dialect.
TEST_P(StoreV2Test, StoreTakenBackToVersion1MigratesToTheSameState) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock, "downgrade", GetParam());
  ReplicaStore& store = scratch.store();
  const int64_t c = Take(store.EnsureCollection("t", "lww", "")).id;
  Check(store.Write([&]() -> Status {
    for (int64_t k = 0; k < 300; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store, c, Key(k), k));
    StoredRecord other{MakeRecord(1000, Node(0x22), 70, true, 5), {}, 0, {}};
    const std::vector<std::string> all = {"_exists", "v"};
    return store.Put(c, other, all, nullptr);
  }));
  Check(store.Write([&] { return WriteLocal(store, c, Key(7), std::nullopt); }));
  StoreItemSet set(store, c);
  const reconcile::RangeSummary before = Take(set.Summarize({0, 0, true}));
  const auto items_before = Take(set.Items({0, 0, true}));
  ASSERT_EQ(before.count, 301U);

  Database& db = scratch.db();
  testing::TakeBackToVersion3(db);
  Check(db.Exec("DROP INDEX _lockstep_records_by_bucket"));
  Check(db.Exec("DROP INDEX _lockstep_tombstones"));
  for (const char* column : {"position", "hash", "deleted_ms"}) {
    Check(db.Exec(std::string("ALTER TABLE _lockstep_records DROP COLUMN ") + column));
  }
  Check(db.Exec("ALTER TABLE _lockstep_cursors DROP COLUMN synced_ms"));
  Check(db.Exec("DROP TABLE _lockstep_buckets"));
  Check(db.Exec("DROP TABLE _lockstep_bucket_deltas"));  // version 3's
  Check(db.Exec("DROP TABLE _lockstep_node_dots"));
  Check(WriteMeta(db, "version", Value::Int(1)));
  ASSERT_EQ(Take(MetadataVersion(db)), 1);

  auto migrated = Take(ReplicaStore::Open(db, clock));
  EXPECT_EQ(Take(MetadataVersion(db)), kMetadataVersion);
  StoreItemSet again(*migrated, c);
  EXPECT_EQ(Take(again.Summarize({0, 0, true})), before);
  const auto items_after = Take(again.Items({0, 0, true}));
  ASSERT_EQ(items_after.size(), items_before.size());
  for (size_t i = 0; i < items_after.size(); ++i) {
    EXPECT_EQ(items_after[i].position, items_before[i].position);
    EXPECT_EQ(items_after[i].key, items_before[i].key);
    EXPECT_TRUE(items_after[i].hash == items_before[i].hash);
  }
  EXPECT_EQ(Take(migrated->HighestDotOf(migrated->node())), 301U);
  EXPECT_EQ(Take(migrated->HighestDotOf(Node(0x22))), 70U);
  // The tombstone's deletion time is back: it is collected after the retention.
  clock.Advance(kDay);
  EXPECT_EQ(Take(migrated->CollectTombstones(clock.NowMillis())), 1U);
}

// ---- restore detection -----------------------------------------------------------------------

class AdoptPeerViewTest : public ::testing::TestWithParam<Dialect> {
 protected:
  AdoptPeerViewTest() : clock_(1'700'000'000'000), scratch_(clock_, "adopt", GetParam()) {
    collection_ = Take(store().EnsureCollection("t", "lww", "")).id;
    Check(store().Write([&]() -> Status {
      for (int64_t k = 0; k < 10; ++k)
        LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store(), collection_, Key(k), k));
      return Status::Ok();
    }));
  }
  ReplicaStore& store() { return scratch_.store(); }

  base::FakeClock clock_;
  testing::ScratchStore scratch_;
  int64_t collection_ = 0;
};

TEST_P(AdoptPeerViewTest, PeerThatKnowsNoMoreChangesNothing) {
  const int64_t epoch = store().epoch();
  EXPECT_FALSE(Take(store().AdoptPeerView(Node(1), 10, Cursor{epoch, 10})));
  EXPECT_FALSE(Take(store().AdoptPeerView(Node(1), 3, Cursor{epoch, 4})));
  EXPECT_FALSE(Take(store().AdoptPeerView(Node(1), 0, std::nullopt)));
  // A cursor past the end of another epoch of this log says nothing about this one.
  EXPECT_FALSE(Take(store().AdoptPeerView(Node(1), 0, Cursor{epoch + 1, 500})));
  EXPECT_EQ(store().epoch(), epoch);
  EXPECT_EQ(store().dot_counter(), 10U);
}

TEST_P(AdoptPeerViewTest, HigherDotHeldByPeerMeansRestored) {
  const int64_t epoch = store().epoch();
  EXPECT_TRUE(Take(store().AdoptPeerView(Node(1), 25, std::nullopt)));
  EXPECT_NE(store().epoch(), epoch);
  // The next dot is above every dot the peer holds, and so stays after reopening.
  Check(store().Write([&] { return WriteLocal(store(), collection_, Key(50), 50); }));
  auto record = Take(store().Get(collection_, Key(50)));
  EXPECT_EQ(record->record.vv().Get(store().node()), 26U);
  auto reopened = Take(ReplicaStore::Open(scratch_.db(), clock_));
  EXPECT_EQ(reopened->epoch(), store().epoch());
  Check(reopened->BeginWrite());
  EXPECT_EQ(reopened->NextDot().counter, 27U);
  reopened->Rollback();
}

TEST_P(AdoptPeerViewTest, CursorPastTheEndOfThisEpochMeansRestored) {
  const int64_t epoch = store().epoch();
  EXPECT_TRUE(Take(store().AdoptPeerView(Node(1), 10, Cursor{epoch, 11})));
  EXPECT_NE(store().epoch(), epoch);
  EXPECT_EQ(store().dot_counter(), 10U);
  // Only once: the peer's cursor is now of another epoch.
  EXPECT_FALSE(Take(store().AdoptPeerView(Node(1), 10, Cursor{epoch, 11})));
}

// A copy of a SQLite file; a PostgreSQL database restored from a dump is the same to the store.
TEST(SqliteAdoptPeerViewTest, RestoredCopyOfTheFileIsDetected) {
  base::FakeClock clock(1'700'000'000'000);
  testing::ScratchStore scratch(clock);
  ReplicaStore& store = scratch.store();
  const int64_t collection = Take(store.EnsureCollection("t", "lww", "")).id;
  Check(store.Write([&]() -> Status {
    for (int64_t k = 0; k < 10; ++k)
      LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store, collection, Key(k), k));
    return Status::Ok();
  }));
  // The file is copied, the store writes on (a peer takes those writes), and the copy comes back.
  const auto copy = scratch.path().parent_path() / "copy.sqlite";
  Check(scratch.db().Exec("VACUUM INTO '" + copy.string() + "'"));
  Check(store.Write([&]() -> Status {
    for (int64_t k = 10; k < 20; ++k)
      LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store, collection, Key(k), k));
    return Status::Ok();
  }));
  const uint64_t peer_holds = Take(store.HighestDotOf(store.node()));
  const Cursor peer_cursor{store.epoch(), store.last_seq()};
  ASSERT_EQ(peer_holds, 20U);
  auto db = Take(SqliteDb::Open(copy, {}));
  auto restored = Take(ReplicaStore::Open(db, clock));
  ASSERT_EQ(restored->dot_counter(), 10U);
  EXPECT_TRUE(Take(restored->AdoptPeerView(Node(1), peer_holds, peer_cursor)));
  EXPECT_NE(restored->epoch(), peer_cursor.epoch);
  Check(restored->BeginWrite());
  EXPECT_EQ(restored->NextDot().counter, 21U);
  restored->Rollback();
}

// ---- retention -------------------------------------------------------------------------------

TEST_P(StoreV2Test, RetentionCollectsOnlyTombstonesOlderThanTheHorizonAndRecordsIt) {
  base::FakeClock clock(100 * kDay);
  testing::ScratchStore scratch(clock, "retention", GetParam());
  ReplicaStore& store = scratch.store();
  const int64_t c = Take(store.EnsureCollection("t", "lww", "")).id;
  Check(store.Write([&]() -> Status {
    for (int64_t k = 0; k < 6; ++k) LOCKSTEP_RETURN_IF_ERROR(WriteLocal(store, c, Key(k), k));
    return Status::Ok();
  }));
  Check(store.Write([&] { return WriteLocal(store, c, Key(0), std::nullopt); }));  // day 100
  Check(store.Write([&] { return WriteLocal(store, c, Key(1), std::nullopt); }));
  const uint64_t old_deletes_seq = store.last_seq();
  clock.Set(120 * kDay);
  Check(store.Write([&] { return WriteLocal(store, c, Key(2), std::nullopt); }));  // day 120
  EXPECT_EQ(Take(store.Horizon()).seq, 0U);

  clock.Set(140 * kDay);
  // Retention 30 days: the deletes of day 100 go, the one of day 120 stays, live records stay.
  EXPECT_EQ(Take(store.CollectTombstones(clock.NowMillis() - 30 * kDay)), 2U);
  EXPECT_FALSE(Take(store.Get(c, Key(0))).has_value());
  EXPECT_FALSE(Take(store.Get(c, Key(1))).has_value());
  EXPECT_TRUE(Take(store.Get(c, Key(2))).has_value());
  EXPECT_TRUE(Take(store.Get(c, Key(3))).has_value());
  const ReplicaStore::GcHorizon horizon = Take(store.Horizon());
  EXPECT_EQ(horizon.seq, old_deletes_seq);
  EXPECT_EQ(horizon.millis, 100 * kDay);
  EXPECT_EQ(Take(store.CollectTombstones(clock.NowMillis() - 30 * kDay)), 0U);

  // A peer that read the log up to before the collected deletes must reset; one past them, or one
  // that never synced, need not.
  const int64_t epoch = store.epoch();
  EXPECT_TRUE(Take(store.PeerNeedsReset(Cursor{epoch, old_deletes_seq - 1}, 99 * kDay)));
  EXPECT_FALSE(Take(store.PeerNeedsReset(Cursor{epoch, old_deletes_seq}, 101 * kDay)));
  EXPECT_FALSE(Take(store.PeerNeedsReset(std::nullopt, std::nullopt)));
  // A cursor of another epoch is judged by when the peer last synced.
  EXPECT_TRUE(Take(store.PeerNeedsReset(Cursor{epoch + 1, 0}, 99 * kDay)));
  EXPECT_TRUE(Take(store.PeerNeedsReset(Cursor{epoch + 1, 0}, std::nullopt)));
  EXPECT_FALSE(Take(store.PeerNeedsReset(Cursor{epoch + 1, 0}, 101 * kDay)));
}

TEST_P(StoreV2Test, RetentionReadingToTheEndOfTheLogPassesTheHorizon) {
  // The last change of the log is a delete that gets collected: the log then ends below the
  // horizon, but a peer that reads it to the end from scratch has missed nothing.
  base::FakeClock clock(100 * kDay);
  testing::ScratchStore scratch(clock, "horizon", GetParam());
  ReplicaStore& store = scratch.store();
  const int64_t c = Take(store.EnsureCollection("t", "lww", "")).id;
  Check(store.Write([&] { return WriteLocal(store, c, Key(1), 1); }));
  Check(store.Write([&] { return WriteLocal(store, c, Key(2), 2); }));
  Check(store.Write([&] { return WriteLocal(store, c, Key(2), std::nullopt); }));
  clock.Set(200 * kDay);
  ASSERT_EQ(Take(store.CollectTombstones(clock.NowMillis() - 30 * kDay)), 1U);
  const ChangePage page = Take(store.ChangesAfter(0, 100, nullptr));
  EXPECT_EQ(page.changes.size(), 1U);
  EXPECT_EQ(page.scanned_to, 3U);
  EXPECT_FALSE(Take(store.PeerNeedsReset(Cursor{store.epoch(), page.scanned_to}, std::nullopt)));
  // Reading a page that stops before the end says nothing past what it read.
  const ChangePage partial = Take(store.ChangesAfter(0, 1, nullptr));
  EXPECT_EQ(partial.scanned_to, 1U);
}

TEST_P(StoreV2Test, RetentionLeavesAResurrectedRecord) {
  base::FakeClock clock(100 * kDay);
  testing::ScratchStore scratch(clock, "resurrected", GetParam());
  ReplicaStore& store = scratch.store();
  const int64_t c = Take(store.EnsureCollection("t", "lww", "")).id;
  Check(store.Write([&] { return WriteLocal(store, c, Key(0), 1); }));
  Check(store.Write([&] { return WriteLocal(store, c, Key(0), std::nullopt); }));
  Check(store.Write([&] { return WriteLocal(store, c, Key(0), 2); }));
  clock.Set(200 * kDay);
  EXPECT_EQ(Take(store.CollectTombstones(clock.NowMillis())), 0U);
  EXPECT_TRUE(Take(store.Get(c, Key(0))).has_value());
}

TEST_P(StoreV2Test, SyncTimeIsNotedWithTheCursor) {
  base::FakeClock clock(5 * kDay);
  testing::ScratchStore scratch(clock, "cursor", GetParam());
  ReplicaStore& store = scratch.store();
  EXPECT_FALSE(Take(store.CursorSyncedAt(Node(3), "t")).has_value());
  Check(store.Write([&] { return store.SetCursor(Node(3), "t", {1, 2}); }));
  EXPECT_EQ(Take(store.CursorSyncedAt(Node(3), "t")), std::optional<int64_t>(5 * kDay));
}

INSTANTIATE_TEST_SUITE_P(BothDatabases, StoreV2Test,
                         ::testing::Values(Dialect::kSqlite, Dialect::kPostgres),
                         testing::DialectName);
INSTANTIATE_TEST_SUITE_P(BothDatabases, AdoptPeerViewTest,
                         ::testing::Values(Dialect::kSqlite, Dialect::kPostgres),
                         testing::DialectName);

}  // namespace
}  // namespace lockstep::store
