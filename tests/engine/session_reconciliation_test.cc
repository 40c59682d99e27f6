// The reconciliation phase of a session on real SQLite stores, in one process: which changes each
// side offers as recent (only those since the peer's cursor of its log, when it has one), and
// that the session finds every difference whatever is offered.
#include "engine/session_reconciliation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "connectors/sqlite/sqlite_source.h"
#include "core/key.h"
#include "engine/local_sync.h"
#include "reconcile/item.h"
#include "support/process.h"

namespace lockstep::engine {
namespace {

namespace fs = std::filesystem;
using connectors::sqlite::SqliteSource;
using lockstep::testing::ScratchDir;
using lockstep::testing::Sql;

constexpr int kRows = 300;

uint64_t PositionOf(int64_t id) {
  const Value key[] = {Value::Int(id)};
  return reconcile::ItemPosition(core::EncodeKey(key));
}

std::set<uint64_t> PositionsOf(const std::vector<int64_t>& ids) {
  std::set<uint64_t> positions;
  for (int64_t id : ids) positions.insert(PositionOf(id));
  return positions;
}

// a.db and b.db holding the same kRows rows of `t`, synced (twice: nothing pending, cursors
// both ways), then changed apart: a partition.
class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Sql(a_path_,
        "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT);"
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < " +
            std::to_string(kRows) + ") INSERT INTO t SELECT i, 'row ' || i FROM s;");
    const std::vector<fs::path> paths = {a_path_, b_path_};
    for (int i = 0; i < 2; ++i) {
      auto synced = SyncDatabases(paths, LocalSyncOptions{}, base::SystemClock::Get());
      ASSERT_TRUE(synced.has_value()) << synced.error().ToString();
    }
    // Five changes on a (two updates, an insert, a delete, an update), two on b.
    Sql(a_path_,
        "UPDATE t SET x = 'a' WHERE id IN (10, 20);"
        "INSERT INTO t VALUES (1001, 'new on a');"
        "DELETE FROM t WHERE id = 30;"
        "UPDATE t SET x = 'a again' WHERE id = 40;");
    Sql(b_path_, "UPDATE t SET x = 'b' WHERE id IN (50, 60);");
    a_ = Open(a_path_);
    b_ = Open(b_path_);
  }

  // Opened and attached as `lockstep sync` does, which stamps the users' writes.
  static std::unique_ptr<SqliteSource> Open(const fs::path& path) {
    auto source = SqliteSource::Open(path, false, base::SystemClock::Get());
    EXPECT_TRUE(source.has_value()) << source.error().ToString();
    if (!source.has_value()) return nullptr;
    auto schema = (*source)->Schema("t");
    EXPECT_TRUE(schema.has_value() && schema->has_value());
    const Status attached = (*source)->Attach(std::span(&**schema, 1), "");
    EXPECT_TRUE(attached.ok()) << attached.ToString();
    return std::move(*source);
  }

  static int64_t CollectionId(store::ReplicaStore& store) {
    auto collections = store.Collections();
    EXPECT_TRUE(collections.has_value());
    for (const store::Collection& c : *collections) {
      if (c.name == "t") return c.id;
    }
    ADD_FAILURE() << "no collection t";
    return -1;
  }

  // What `store`'s peer `other` tells it in the handshake: its cursor of `store`'s log.
  static PeerView ViewOf(store::ReplicaStore& store, store::ReplicaStore& other) {
    auto cursor = other.GetCursor(store.node(), "t");
    EXPECT_TRUE(cursor.has_value() && cursor->has_value());
    return {other.node(), cursor.has_value() && cursor->has_value() ? **cursor : store::Cursor{}};
  }

  static std::vector<uint64_t> Recent(store::ReplicaStore& store, const PeerView& peer) {
    auto positions = RecentPositions(store, CollectionId(store), peer);
    EXPECT_TRUE(positions.has_value()) << positions.error().ToString();
    return positions.has_value() ? *positions : std::vector<uint64_t>();
  }

  // A whole session between a (dialer) and b (listener), as both SourceHandlers set it up; the
  // keys each side must send, as one set.
  std::set<std::string> Reconcile(const PeerView& a_view, const PeerView& b_view) {
    reconcile::Options options;
    options.session.seed = 7;
    SessionReconciliation dialer(StoreItemSets(a_->store(), a_view), options, &a_->store());
    SessionReconciliation listener(StoreItemSets(b_->store(), b_view), options, &b_->store());
    auto wave = dialer.Start({"t"});
    EXPECT_TRUE(wave.has_value()) << wave.error().ToString();
    for (int round = 0; wave.has_value() && !wave->empty() && round < 64; ++round) {
      std::vector<protocol::Reconcile> answers;
      for (const protocol::Reconcile& step : *wave) {
        auto parts = listener.Continue(step);
        EXPECT_TRUE(parts.has_value()) << parts.error().ToString();
        if (parts.has_value()) answers.insert(answers.end(), parts->begin(), parts->end());
      }
      wave->clear();
      for (const protocol::Reconcile& answer : answers) {
        auto next = dialer.Continue(answer);
        EXPECT_TRUE(next.has_value()) << next.error().ToString();
        if (next.has_value()) wave->insert(wave->end(), next->begin(), next->end());
      }
    }
    EXPECT_TRUE(dialer.done() && listener.done());
    std::set<std::string> keys;
    for (const auto& [collection, key] : dialer.ToSend()) keys.insert(key);
    for (const auto& [collection, key] : listener.ToSend()) keys.insert(key);
    return keys;
  }

  static std::set<std::string> KeysOf(const std::vector<int64_t>& ids) {
    std::set<std::string> keys;
    for (int64_t id : ids) {
      const Value key[] = {Value::Int(id)};
      keys.insert(core::EncodeKey(key));
    }
    return keys;
  }

  ScratchDir dir_;
  fs::path a_path_ = dir_ / "a.db";
  fs::path b_path_ = dir_ / "b.db";
  std::unique_ptr<SqliteSource> a_, b_;
  const std::vector<int64_t> a_changed_ = {10, 20, 1001, 30, 40};
  const std::vector<int64_t> b_changed_ = {50, 60};
};

TEST_F(PartitionTest, EachSideOffersOnlyItsChangesSinceThePeersCursor) {
  ASSERT_NE(a_, nullptr);
  ASSERT_NE(b_, nullptr);
  const std::vector<uint64_t> a_recent = Recent(a_->store(), ViewOf(a_->store(), b_->store()));
  EXPECT_EQ(a_recent.size(), a_changed_.size());
  EXPECT_EQ(std::set<uint64_t>(a_recent.begin(), a_recent.end()), PositionsOf(a_changed_));
  const std::vector<uint64_t> b_recent = Recent(b_->store(), ViewOf(b_->store(), a_->store()));
  EXPECT_EQ(std::set<uint64_t>(b_recent.begin(), b_recent.end()), PositionsOf(b_changed_));
  EXPECT_EQ(b_recent.size(), b_changed_.size());

  std::vector<int64_t> all = a_changed_;
  all.insert(all.end(), b_changed_.begin(), b_changed_.end());
  EXPECT_EQ(Reconcile(ViewOf(a_->store(), b_->store()), ViewOf(b_->store(), a_->store())),
            KeysOf(all));
}

TEST_F(PartitionTest, WithoutAUsableCursorTheLatestChangesAreOfferedAndStillEverythingIsFound) {
  ASSERT_NE(a_, nullptr);
  ASSERT_NE(b_, nullptr);
  store::ReplicaStore& a = a_->store();
  const PeerView exact = ViewOf(a, b_->store());
  const std::vector<uint64_t> since = Recent(a, exact);
  EXPECT_EQ(RecentWindow(a, exact), 0u);  // exact: offered all at once
  const std::vector<store::Cursor> void_cursors = {
      {},                             // the peer sent none (it lost it, or never synced)
      {a.epoch(), 0},                 // a reconciliation cut short left it void
      {a.epoch() + 1, 5},             // of another epoch: this store was restored since
      {a.epoch(), a.last_seq() + 1},  // past the end of the log
  };
  for (const store::Cursor& cursor : void_cursors) {
    const std::vector<uint64_t> latest = Recent(a, {exact.node, cursor});
    // From the last kMaxRecentChanges seqs of a's log: its changes since the sync first, then
    // rows of the first sync that a wrote itself (it made the table), offered in windows.
    EXPECT_LE(latest.size(), kMaxRecentChanges);
    EXPECT_EQ(RecentWindow(a, {exact.node, cursor}), kFirstRecentWindow);
    ASSERT_GT(latest.size(), since.size());
    EXPECT_TRUE(std::equal(since.begin(), since.end(), latest.begin()));
  }
  // b's rows came from a verbatim in the first sync: a holds them as they are, so even without
  // a cursor b offers only its own changes.
  const std::vector<uint64_t> b_latest = Recent(b_->store(), {a.node(), {}});
  EXPECT_EQ(std::set<uint64_t>(b_latest.begin(), b_latest.end()), PositionsOf(b_changed_));

  // Nothing is known on either side: ranges find what the recent changes do not cover.
  std::vector<int64_t> all = a_changed_;
  all.insert(all.end(), b_changed_.begin(), b_changed_.end());
  EXPECT_EQ(Reconcile({b_->store().node(), {}}, {a.node(), {}}), KeysOf(all));
  // A cursor that names a later point than the truth (a peer restored behind it would): the
  // changes before it are not offered, and the ranges find them.
  EXPECT_EQ(Reconcile({b_->store().node(), {a.epoch(), a.last_seq()}},
                      {a.node(), {b_->store().epoch(), b_->store().last_seq()}}),
            KeysOf(all));
}

}  // namespace
}  // namespace lockstep::engine
