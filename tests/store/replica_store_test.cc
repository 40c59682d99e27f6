// One suite of replica store tests, run against SQLite (a scratch file) and PostgreSQL (a fresh
// database in the test binary's throwaway cluster): the store must behave the same on both.
#include "store/replica_store.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "base/clock.h"
#include "core/key.h"
#include "core/local_write.h"
#include "reconcile/item.h"
#include "store/metadata_schema.h"
#include "store/postgres_db.h"
#include "store/sqlite_db.h"
#include "store_test_support.h"
#include "support/postgres.h"
#include "support/process.h"

namespace lockstep::store {
namespace {

using lockstep::testing::PostgresCluster;
using lockstep::testing::ScratchDir;
using testing::DialectName;

::testing::AssertionResult Ok(const Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status.ToString();
}

std::string KeyOf(int64_t id) {
  const Value key[] = {Value::Int(id)};
  return core::EncodeKey(key);
}

class ReplicaStoreTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    if (GetParam() == Dialect::kPostgres) {
      url_ = PostgresCluster::Shared().CreateDatabase(
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
  }

  // A new connection to this test's database.
  std::unique_ptr<Database> Connect() {
    if (GetParam() == Dialect::kPostgres) {
      auto db = PostgresDb::Connect(url_);
      EXPECT_TRUE(db.has_value()) << db.error().ToString();
      return db.has_value() ? std::move(*db) : nullptr;
    }
    auto db = SqliteDb::Open(dir_ / "store.db", {.create_if_missing = true});
    EXPECT_TRUE(db.has_value()) << db.error().ToString();
    if (!db.has_value()) return nullptr;
    EXPECT_TRUE(Ok(db->Exec("PRAGMA journal_mode = WAL")));
    return std::make_unique<SqliteDb>(std::move(*db));
  }

  std::unique_ptr<ReplicaStore> OpenStore(Database& db) {
    auto store = ReplicaStore::Open(db, clock_);
    EXPECT_TRUE(store.has_value()) << store.error().ToString();
    return store.has_value() ? std::move(*store) : nullptr;
  }

  // A local write of `fields` to the record at `id`, as a connector makes one.
  static Status WriteRecord(ReplicaStore& store, int64_t collection, int64_t id,
                            std::vector<std::pair<std::string, Value>> fields,
                            const core::NodeId* origin = nullptr) {
    const std::string key = KeyOf(id);
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<StoredRecord> stored, store.Get(collection, key));
    if (!stored.has_value()) stored = StoredRecord{core::Record(key), {}, 0, {}};
    core::LocalWrite write{store.NextDot(), store.clock().Tick(), std::move(fields), true};
    LOCKSTEP_ASSIGN_OR_RETURN(core::MergePolicy policy, core::ParsePolicy(""));
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> changed,
                              core::ApplyLocalWrite(stored->record, write, policy));
    return store.Put(collection, *stored, changed, origin);
  }

  static core::NodeId Peer(uint8_t fill) {
    core::NodeId node;
    node.bytes.fill(fill);
    return node;
  }

  base::FakeClock clock_{1'700'000'000'000};
  ScratchDir dir_;
  std::string url_;
};

TEST_P(ReplicaStoreTest, KeepsItsIdentityAcrossConnections) {
  core::NodeId node;
  int64_t epoch = 0;
  {
    auto db = Connect();
    auto store = OpenStore(*db);
    ASSERT_NE(store, nullptr);
    EXPECT_NE(store->node(), core::NodeId{});
    EXPECT_GT(store->epoch(), 0);
    node = store->node();
    epoch = store->epoch();
  }
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->node(), node);
  EXPECT_EQ(store->epoch(), epoch);
  EXPECT_TRUE(*HasMetadata(*db));
}

TEST_P(ReplicaStoreTest, ReadsItsChangeLogInSeqOrder) {
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  auto items = store->EnsureCollection("items", "", "CREATE TABLE items(id INTEGER PRIMARY KEY)");
  ASSERT_TRUE(items.has_value()) << items.error().ToString();
  ASSERT_TRUE(Ok(store->Write([&]() -> Status {
    for (int64_t id : {3, 1, 2}) {
      LOCKSTEP_RETURN_IF_ERROR(
          WriteRecord(*store, items->id, id, {{"v", Value::Text("v" + std::to_string(id))}}));
    }
    return Status::Ok();
  })));
  ASSERT_TRUE(Ok(store->Write([&] {
    return WriteRecord(*store, items->id, 3, {{"v", Value::Int(7)}});
  })));
  EXPECT_EQ(store->last_seq(), 4u);

  auto page = store->ChangesAfter(0, 100, nullptr);
  ASSERT_TRUE(page.has_value()) << page.error().ToString();
  ASSERT_EQ(page->changes.size(), 3u);  // record 3 once, at its latest seq
  EXPECT_EQ(page->changes[0].stored.record.key(), KeyOf(1));
  EXPECT_EQ(page->changes[1].stored.record.key(), KeyOf(2));
  EXPECT_EQ(page->changes[2].stored.record.key(), KeyOf(3));
  EXPECT_EQ(page->changes[2].stored.seq, 4u);
  EXPECT_EQ(page->changes[2].collection, "items");
  EXPECT_EQ(page->scanned_to, 4u);
  EXPECT_EQ(page->changes[2].stored.record.Find("v")->versions[0].value, Value::Int(7));

  auto after = store->ChangesAfter(2, 1, nullptr);
  ASSERT_TRUE(after.has_value());
  ASSERT_EQ(after->changes.size(), 1u);
  EXPECT_EQ(after->scanned_to, 3u);

  auto stored = store->Get(items->id, KeyOf(2));
  ASSERT_TRUE(stored.has_value() && stored->has_value());
  EXPECT_EQ((*stored)->seq, 3u);
  auto max = store->MaxKey(items->id);
  ASSERT_TRUE(max.has_value() && max->has_value());
  EXPECT_EQ(**max, KeyOf(3));
}

TEST_P(ReplicaStoreTest, ARecordPutTwiceInOneWriteIsStoredOnceAtItsLatestState) {
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  auto items = store->EnsureCollection("items", "", "");
  ASSERT_TRUE(items.has_value());
  // More puts than one batch holds, each record several times.
  ASSERT_TRUE(Ok(store->Write([&]() -> Status {
    for (int round = 0; round < 3; ++round) {
      for (int64_t id = 0; id < 100; ++id) {
        LOCKSTEP_RETURN_IF_ERROR(
            WriteRecord(*store, items->id, id, {{"round", Value::Int(round)}}));
      }
    }
    return Status::Ok();
  })));
  auto page = store->ChangesAfter(0, 1000, nullptr);
  ASSERT_TRUE(page.has_value()) << page.error().ToString();
  ASSERT_EQ(page->changes.size(), 100u);
  for (const Change& change : page->changes) {
    EXPECT_EQ(change.stored.record.Find("round")->versions[0].value, Value::Int(2));
  }
}

TEST_P(ReplicaStoreTest, AFailedWriteLeavesNothingBehind) {
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  auto items = store->EnsureCollection("items", "", "");
  ASSERT_TRUE(items.has_value());
  Status failed = store->Write([&]() -> Status {
    LOCKSTEP_RETURN_IF_ERROR(WriteRecord(*store, items->id, 1, {{"v", Value::Int(1)}}));
    return Aborted("the caller gave up");
  });
  EXPECT_EQ(failed.code(), StatusCode::kAborted);
  EXPECT_FALSE(db->InTransaction());
  auto page = store->ChangesAfter(0, 10, nullptr);
  ASSERT_TRUE(page.has_value());
  EXPECT_TRUE(page->changes.empty());
  // The next write takes the seq the failed one did not keep.
  ASSERT_TRUE(Ok(store->Write([&] {
    return WriteRecord(*store, items->id, 2, {{"v", Value::Int(2)}});
  })));
  EXPECT_EQ(store->last_seq(), 1u);
}

TEST_P(ReplicaStoreTest, SkipsRecordsThatCameFromThePeerItSendsTo) {
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  auto items = store->EnsureCollection("items", "", "");
  ASSERT_TRUE(items.has_value());
  const core::NodeId peer = Peer(0xab);
  const core::NodeId other = Peer(0xcd);
  ASSERT_TRUE(Ok(store->Write([&]() -> Status {
    LOCKSTEP_RETURN_IF_ERROR(WriteRecord(*store, items->id, 1, {{"v", Value::Int(1)}}, &peer));
    return WriteRecord(*store, items->id, 2, {{"v", Value::Int(2)}});
  })));
  auto to_peer = store->ChangesAfter(0, 10, &peer);
  ASSERT_TRUE(to_peer.has_value()) << to_peer.error().ToString();
  ASSERT_EQ(to_peer->changes.size(), 1u);
  EXPECT_EQ(to_peer->changes[0].stored.record.key(), KeyOf(2));
  EXPECT_EQ(to_peer->scanned_to, 2u);
  auto to_other = store->ChangesAfter(0, 10, &other);
  ASSERT_TRUE(to_other.has_value());
  EXPECT_EQ(to_other->changes.size(), 2u);
}

// The recent positions a reconciliation offers: the collection's records changed after a seq,
// newest first, without the peer's own, read from the last `limit` seqs of the log only.
TEST_P(ReplicaStoreTest, ListsThePositionsOfTheRecordsChangedAfterASeqNewestFirst) {
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  auto items = store->EnsureCollection("items", "", "");
  auto others = store->EnsureCollection("others", "", "");
  ASSERT_TRUE(items.has_value() && others.has_value());
  const core::NodeId peer = Peer(0xab);
  // seq 1..6: items 1, 2, 3; others 4; items 5 from the peer; items 1 again.
  ASSERT_TRUE(Ok(store->Write([&]() -> Status {
    for (int64_t id : {1, 2, 3}) {
      LOCKSTEP_RETURN_IF_ERROR(WriteRecord(*store, items->id, id, {{"v", Value::Int(id)}}));
    }
    LOCKSTEP_RETURN_IF_ERROR(WriteRecord(*store, others->id, 4, {{"v", Value::Int(4)}}));
    LOCKSTEP_RETURN_IF_ERROR(WriteRecord(*store, items->id, 5, {{"v", Value::Int(5)}}, &peer));
    return WriteRecord(*store, items->id, 1, {{"v", Value::Int(10)}});
  })));
  ASSERT_EQ(store->last_seq(), 6u);
  const auto position = [](int64_t id) { return reconcile::ItemPosition(KeyOf(id)); };
  using Positions = std::vector<uint64_t>;

  auto after_2 = store->ChangedPositions(items->id, 2, 100, &peer);
  ASSERT_TRUE(after_2.has_value()) << after_2.error().ToString();
  EXPECT_EQ(*after_2, (Positions{position(1), position(3)}))
      << "record 1 (seq 6) then 3 (seq 3); 2 is older, 4 of another collection, 5 the peer's";
  auto for_another_peer = store->ChangedPositions(items->id, 0, 100, nullptr);
  ASSERT_TRUE(for_another_peer.has_value());
  EXPECT_EQ(*for_another_peer, (Positions{position(1), position(5), position(3), position(2)}));
  // Only seqs 5 and 6 are looked at: the limit bounds the scan, not the rows it keeps.
  auto last_two = store->ChangedPositions(items->id, 0, 2, nullptr);
  ASSERT_TRUE(last_two.has_value());
  EXPECT_EQ(*last_two, (Positions{position(1), position(5)}));
  auto none = store->ChangedPositions(items->id, 6, 100, nullptr);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

TEST_P(ReplicaStoreTest, KeepsCursorsPerPeerAndScope) {
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  const core::NodeId peer = Peer(1);
  auto none = store->GetCursor(peer, "a,b");
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(Ok(store->Write([&] { return store->SetCursor(peer, "a,b", {42, 7}); })));
  ASSERT_TRUE(Ok(store->Write([&] { return store->SetCursor(peer, "a,b", {42, 9}); })));
  ASSERT_TRUE(Ok(store->Write([&] { return store->SetCursor(peer, "a", {5, 1}); })));
  auto cursor = store->GetCursor(peer, "a,b");
  ASSERT_TRUE(cursor.has_value() && cursor->has_value());
  EXPECT_EQ((*cursor)->epoch, 42);
  EXPECT_EQ((*cursor)->seq, 9u);
  auto narrow = store->GetCursor(peer, "a");
  ASSERT_TRUE(narrow.has_value() && narrow->has_value());
  EXPECT_EQ((*narrow)->seq, 1u);

  EXPECT_FALSE(store->ListenerAt("lockstep://h:1")->has_value());
  ASSERT_TRUE(Ok(store->Write([&] { return store->RememberListener("lockstep://h:1", peer); })));
  auto listener = store->ListenerAt("lockstep://h:1");
  ASSERT_TRUE(listener.has_value() && listener->has_value());
  EXPECT_EQ(**listener, peer);
}

TEST_P(ReplicaStoreTest, LogsConflictsWithValuesOfEveryKind) {
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  const std::vector<Value> values = {Value::Null(),      Value::Int(-5),
                                     Value::Float(2.5),  Value::Float(-0.0),
                                     Value::Text("été"), Value::Bytes(std::string("\0\xff", 2)),
                                     Value::Bytes("")};
  core::Conflict conflict;
  conflict.key = KeyOf(1);
  conflict.field = "v";
  conflict.winner = {Value::Int(1), {Peer(1), 3}, core::Hlc{99}};
  for (size_t i = 0; i < values.size(); ++i) {
    conflict.losers.push_back({values[i], {Peer(2), i + 1}, core::Hlc{i}});
  }
  conflict.pending = true;
  ASSERT_TRUE(Ok(store->Write([&] { return store->LogConflict("items", conflict); })));
  auto logged = store->Conflicts();
  ASSERT_TRUE(logged.has_value()) << logged.error().ToString();
  ASSERT_EQ(logged->size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const LoggedConflict& c = (*logged)[i];
    EXPECT_EQ(c.loser.value, values[i]) << i;
    EXPECT_EQ(c.loser.dot.node, Peer(2));
    EXPECT_EQ(c.loser.hlc.raw, i);
    EXPECT_EQ(c.winner.value, Value::Int(1));
    EXPECT_EQ(c.collection, "items");
    EXPECT_EQ(c.key, conflict.key);
    EXPECT_TRUE(c.pending);
  }
  ASSERT_TRUE(Ok(store->Write([&] { return store->MarkResolved("items", conflict.key); })));
  EXPECT_FALSE((*store->Conflicts())[0].pending);
}

TEST_P(ReplicaStoreTest, RegistersCollectionsOnceInNameOrder) {
  auto db = Connect();
  auto store = OpenStore(*db);
  ASSERT_NE(store, nullptr);
  auto lower = store->EnsureCollection("alpha", "lww", "CREATE TABLE alpha(id)");
  auto upper = store->EnsureCollection("Zeta", "", "");
  auto again = store->EnsureCollection("alpha", "manual", "other");
  ASSERT_TRUE(lower.has_value() && upper.has_value() && again.has_value());
  EXPECT_EQ(again->id, lower->id);
  EXPECT_EQ(again->create_sql, "CREATE TABLE alpha(id)");
  ASSERT_TRUE(Ok(store->SetPolicy(lower->id, "manual")));
  auto all = store->Collections();
  ASSERT_TRUE(all.has_value());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "Zeta");  // bytewise, as SQLite sorts
  EXPECT_EQ((*all)[1].policy, "manual");
}

TEST_P(ReplicaStoreTest, WritersOnTwoConnectionsTakeTurns) {
  auto db_a = Connect();
  auto db_b = Connect();
  auto a = OpenStore(*db_a);
  ASSERT_NE(a, nullptr);
  auto b = OpenStore(*db_b);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->node(), b->node());
  auto items = a->EnsureCollection("items", "", "");
  ASSERT_TRUE(items.has_value());
  constexpr int kWrites = 20;
  auto writer = [&](ReplicaStore& store, int64_t first_id) {
    for (int i = 0; i < kWrites; ++i) {
      Status status = store.Write([&] {
        return WriteRecord(store, items->id, first_id + i, {{"v", Value::Int(i)}});
      });
      EXPECT_TRUE(status.ok()) << status.ToString();
    }
  };
  std::thread other([&] { writer(*b, 1000); });
  writer(*a, 0);
  other.join();
  // Every write took its own seq and dot: none was lost or reused.
  auto page = a->ChangesAfter(0, 1000, nullptr);
  ASSERT_TRUE(page.has_value());
  EXPECT_EQ(page->changes.size(), 2u * kWrites);
  EXPECT_EQ(page->scanned_to, 2u * kWrites);
  std::set<uint64_t> dots;
  for (const Change& change : page->changes) {
    dots.insert(change.stored.record.vv().Get(a->node()));
  }
  EXPECT_EQ(dots.size(), 2u * kWrites);
}

TEST_P(ReplicaStoreTest, RefusesMetadataFromANewerLockstepAndDetachesCleanly) {
  auto db = Connect();
  ASSERT_NE(OpenStore(*db), nullptr);
  {
    auto stmt = db->Prepare("UPDATE _lockstep_meta SET value = ? WHERE name = 'version'");
    ASSERT_TRUE(stmt.has_value());
    ASSERT_TRUE(Ok(stmt->BindAny(1, Value::Int(kMetadataVersion + 1)).Run()));
  }
  auto refused = ReplicaStore::Open(*db, clock_);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("newer lockstep"), std::string::npos);

  ASSERT_TRUE(Ok(db->BeginWrite()));
  ASSERT_TRUE(Ok(DropMetadata(*db)));
  ASSERT_TRUE(Ok(db->Exec("COMMIT")));
  EXPECT_FALSE(*HasMetadata(*db));
}

INSTANTIATE_TEST_SUITE_P(BothDatabases, ReplicaStoreTest,
                         ::testing::Values(Dialect::kSqlite, Dialect::kPostgres), DialectName);

}  // namespace
}  // namespace lockstep::store
