// `lockstep run` with a PostgreSQL source: a node on a PostgreSQL database and a node on a SQLite
// file, both live through a `lockstep serve` hub on 127.0.0.1. A row committed in PostgreSQL
// wakes its node through NOTIFY and reaches the SQLite node within seconds; a row written in
// SQLite reaches PostgreSQL. The triggers notify only while the node sleeps (the wake flag of
// connectors/postgres/pg_wake.h): a sleeping node wakes at once, also after a notifying
// transaction rolled back, and writes made while it is awake notify nobody. Every wait is
// bounded; the guards kill every process at the end.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "store/postgres_db.h"
#include "support/hub.h"
#include "support/node.h"
#include "support/postgres.h"
#include "support/process.h"

namespace lockstep::testing {
namespace {

constexpr auto kArriveLimit = std::chrono::seconds(15);
// The synced table of every test here, with one row written in PostgreSQL before any node runs.
constexpr char kTableWithFirstRow[] =
    "CREATE TABLE t(id integer PRIMARY KEY, owner text NOT NULL, v text NOT NULL, n integer); "
    "INSERT INTO t VALUES (1, 'pg', 'first', NULL);";
// How soon a commit must reach a sleeping node and the SQLite node behind the hub. The nodes'
// own looks come much later: the PostgreSQL node's poll is set to 60 s (`kSlowPoll`) and a
// session reads its log unwoken only every 5 s.
constexpr auto kPromptly = std::chrono::seconds(2);
constexpr char kSlowPoll[] = "\npoll = \"60s\"";
// How long a node may take to fall asleep once there is nothing to do.
constexpr auto kFallAsleepLimit = std::chrono::seconds(10);

// The wake flag of the database at `url`: bit n is set while the engine holding slot n sleeps.
// Only engines set and clear bits; triggers only read them. (No flag yet, before a node has
// attached the database, or never set: NULL, so 0.)
int64_t WakeFlag(const std::string& url) {
  return std::stoll(Psql(url,
                         "SELECT coalesce((SELECT last_value FROM pg_sequences WHERE "
                         "sequencename = '_lockstep_wake'), 0)"));
}

// Whether an engine sleeps on the database at `url`.
bool Asleep(const std::string& url) { return WakeFlag(url) != 0; }

// A session that LISTENs to the triggers' channel and counts what they notify.
class NotificationCounter {
 public:
  explicit NotificationCounter(const std::string& url) {
    auto db = store::PostgresDb::Connect(url);
    EXPECT_TRUE(db.has_value()) << db.error().message();
    if (!db.has_value()) return;
    db_ = std::move(*db);
    const Status listening = db_->Listen("lockstep");
    EXPECT_TRUE(listening.ok()) << listening.message();
  }

  // The notifications received since the last call, waiting `settle` for late ones.
  size_t Take(std::chrono::milliseconds settle) {
    if (!db_) return 0;
    size_t count = 0;
    const auto until = std::chrono::steady_clock::now() + settle;
    for (;;) {
      auto taken = db_->TakeNotifications();
      EXPECT_TRUE(taken.has_value()) << taken.error().message();
      if (!taken.has_value()) return count;
      count += taken->size();
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return count;
      EXPECT_TRUE(db_->WaitForNotification(left).ok());
    }
  }

 private:
  std::unique_ptr<store::PostgresDb> db_;
};

// A database holding t with its first row, a plaintext hub and a token for it, and a directory
// for the nodes' files beside `edge`, a SQLite node's database.
class PostgresHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster.running());
    pg = cluster.CreateDatabase(::testing::UnitTest::GetInstance()->current_test_info()->name());
    Psql(pg, kTableWithFirstRow);
    hub = Hub::Start({.plaintext = true});
    ASSERT_NE(hub, nullptr);
    token = hub->CreateToken("*", "rw");
  }

  PostgresCluster& cluster = PostgresCluster::Shared();
  std::string pg;
  std::unique_ptr<Hub> hub;
  std::string token;
  ScratchDir dir;
  const std::filesystem::path edge = dir / "edge.db";
};

TEST_F(PostgresHubTest, LiveNodesCarryRowsBetweenPostgresAndSqliteThroughAHub) {
  ProcessGuard pg_node, sqlite_node;
  StartLiveNode(pg_node, dir.path(), "pg", "postgres = \"" + pg + "\"", hub->url(), token);
  // The SQLite node starts empty and gets the table from the hub.
  StartLiveNode(sqlite_node, dir.path(), "edge", "sqlite = \"" + edge.string() + "\"", hub->url(),
                token);
  ASSERT_TRUE(WaitFor([&] { return HasRow(edge, 1); }, kArriveLimit))
      << ReadFile(dir / "pg.err") << ReadFile(dir / "edge.err") << hub->Log();

  // Live: a PostgreSQL commit wakes its node (NOTIFY) without waiting for a poll.
  const auto written = std::chrono::steady_clock::now();
  Psql(pg, "INSERT INTO t VALUES (2, 'pg', 'second', 2)");
  ASSERT_TRUE(WaitFor([&] { return HasRow(edge, 2); }, kArriveLimit)) << ReadFile(dir / "pg.err");
  const int64_t took = MsSince(written);
  std::cout << "PostgreSQL -> hub -> SQLite: " << took << " ms\n";
  // Sessions read the log on their own only every 5 s: sooner means NOTIFY woke the node.
  EXPECT_LT(took, 4'000);

  Sql(edge, "INSERT INTO t VALUES (3, 'edge', 'third', 3);");
  ASSERT_TRUE(WaitFor([&] { return Psql(pg, "SELECT count(*) FROM t WHERE id = 3") == "1\n"; },
                      kArriveLimit))
      << ReadFile(dir / "edge.err");
  EXPECT_EQ(Psql(pg, "SELECT * FROM t ORDER BY id"), Dump(edge));

  EXPECT_EQ(pg_node.Terminate(std::chrono::seconds(10)), 0) << ReadFile(dir / "pg.err");
  EXPECT_EQ(sqlite_node.Terminate(std::chrono::seconds(10)), 0);
}

// One-shot: `lockstep sync postgres://... lockstep://HUB` carries rows both ways, like a file's,
// and never prints the password.
TEST_F(PostgresHubTest, OneShotSyncOfAPostgresDatabaseWithAHub) {
  ProcessResult pushed = hub->Sync(pg, token);
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  EXPECT_EQ(pushed.out.find(cluster.password()), std::string::npos) << pushed.out;
  ASSERT_EQ(hub->Sync(edge, token).exit_code, 0);
  ASSERT_TRUE(HasRow(edge, 1));
  Sql(edge, "INSERT INTO t VALUES (2, 'edge', 'second', 2);");
  ASSERT_EQ(hub->Sync(edge, token).exit_code, 0);
  ProcessResult pulled = hub->Sync(pg, token);
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  EXPECT_NE(pulled.out.find("received 1 records"), std::string::npos) << pulled.out;
  EXPECT_EQ(Psql(pg, "SELECT * FROM t ORDER BY id"), Dump(edge));
  ProcessResult again = hub->Sync(pg, token);
  EXPECT_NE(again.out.find("nothing to sync"), std::string::npos) << again.out;

  // `lockstep verify postgres://... lockstep://HUB`, run as `sync` is but with the verb changed.
  std::vector<std::string> verify = hub->SyncArgv(pg, token);
  verify[1] = "verify";
  ProcessResult equal = RunWithin(verify, std::chrono::seconds(60));
  EXPECT_EQ(equal.exit_code, 0) << equal.out << equal.err;
  Psql(pg, "UPDATE t SET v = 'changed' WHERE id = 2");
  ProcessResult differs = RunWithin(verify, std::chrono::seconds(60));
  EXPECT_EQ(differs.exit_code, 1) << differs.out << differs.err;
  EXPECT_NE(differs.out.find("2  changed in "), std::string::npos) << differs.out;
  EXPECT_EQ(differs.out.find(cluster.password()), std::string::npos) << differs.out;
}

// `lockstep reset postgres://... lockstep://HUB`: the database is rebuilt from what the hub holds,
// keeps its unsynced write, and syncs under its new identity.
TEST_F(PostgresHubTest, ResetOfAPostgresDatabaseFromAHub) {
  ASSERT_EQ(hub->Sync(pg, token).exit_code, 0);
  ASSERT_EQ(hub->Sync(edge, token).exit_code, 0);
  Sql(edge, "UPDATE t SET v = 'by edge' WHERE id = 1;");
  ASSERT_EQ(hub->Sync(edge, token).exit_code, 0);
  Psql(pg, "INSERT INTO t VALUES (2, 'pg', 'unsynced', 2)");

  std::vector<std::string> reset = hub->SyncArgv(pg, token);
  reset[1] = "reset";
  ProcessResult result = RunWithin(reset, std::chrono::seconds(60));
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("kept 1 unsynced write and 0 unsynced deletes"), std::string::npos)
      << result.out;
  EXPECT_EQ(result.out.find(cluster.password()), std::string::npos) << result.out;
  ASSERT_EQ(hub->Sync(edge, token).exit_code, 0);
  EXPECT_EQ(Psql(pg, "SELECT v FROM t WHERE id = 1"), "by edge\n");
  EXPECT_EQ(Psql(pg, "SELECT * FROM t ORDER BY id"), Dump(edge));
}

TEST_F(PostgresHubTest, ASleepingNodeWakesAtOnceAlsoAfterARolledBackNotification) {
  ProcessGuard pg_node, sqlite_node;
  StartLiveNode(pg_node, dir.path(), "pg", "postgres = \"" + pg + "\"" + kSlowPoll, hub->url(),
                token);
  StartLiveNode(sqlite_node, dir.path(), "edge", "sqlite = \"" + edge.string() + "\"", hub->url(),
                token);
  ASSERT_TRUE(WaitFor([&] { return HasRow(edge, 1); }, kArriveLimit))
      << ReadFile(dir / "pg.err") << ReadFile(dir / "edge.err") << hub->Log();
  NotificationCounter notifications(pg);

  // Five commits, each made while the node sleeps, two of them after a rolled-back transaction.
  // Without the wake-up each would wait for the session's own look, 5 s after it was last woken
  // (the previous row, just before the node fell asleep): well past kPromptly.
  for (int row = 2; row <= 6; ++row) {
    ASSERT_TRUE(WaitFor([&] { return Asleep(pg); }, kFallAsleepLimit)) << ReadFile(dir / "pg.err");
    notifications.Take(std::chrono::milliseconds(0));
    if (row % 2 == 1) {
      // A transaction that notified and rolled back wakes no one (PostgreSQL drops its
      // notification) and must not clear the flag: the next commit still has to notify.
      Psql(pg, "BEGIN; INSERT INTO t VALUES (" + std::to_string(100 + row) +
                   ", 'pg', 'rolled back', 0); ROLLBACK;");
      EXPECT_EQ(notifications.Take(std::chrono::milliseconds(300)), 0u);
      ASSERT_TRUE(Asleep(pg)) << "a rolled-back transaction cleared the wake flag";
    }
    const auto written = std::chrono::steady_clock::now();
    Psql(pg, "INSERT INTO t VALUES (" + std::to_string(row) + ", 'pg', 'v', " +
                 std::to_string(row) + ")");
    const bool arrived = WaitFor([&] { return HasRow(edge, row); }, kPromptly);
    const int64_t took = MsSince(written);
    EXPECT_TRUE(arrived) << "row " << row << " not on the SQLite node after " << took << " ms\n"
                         << ReadFile(dir / "pg.err");
    std::cout << "row " << row << ": PostgreSQL -> sleeping node -> hub -> SQLite: " << took
              << " ms\n";
    // The commit notified, once.
    EXPECT_EQ(notifications.Take(std::chrono::milliseconds(100)), 1u) << "row " << row;
  }
  for (int row = 103; row <= 105; row += 2) EXPECT_FALSE(HasRow(edge, row));
  EXPECT_EQ(pg_node.Terminate(std::chrono::seconds(10)), 0) << ReadFile(dir / "pg.err");
  EXPECT_EQ(sqlite_node.Terminate(std::chrono::seconds(10)), 0);
  // A node that stops takes its bit with it: writers notify no one again.
  EXPECT_FALSE(Asleep(pg));
}

TEST(PostgresDaemonTest, WritesWhileTheNodeIsAwakeNotifyNobody) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.running());
  const std::string pg = cluster.CreateDatabase("busy");
  Psql(pg, "CREATE TABLE t(id integer PRIMARY KEY, v text NOT NULL);");
  ScratchDir dir;
  ProcessGuard pg_node;
  // The peer never answers, so no session stamps what the triggers capture: once woken, the
  // node has work waiting and stays awake.
  const std::string nowhere = "lockstep://127.0.0.1:" + std::to_string(FreePort());
  StartLiveNode(pg_node, dir.path(), "pg", "postgres = \"" + pg + "\"" + kSlowPoll, nowhere,
                "token");
  ASSERT_TRUE(WaitFor([&] { return Asleep(pg); }, kFallAsleepLimit)) << ReadFile(dir / "pg.err");
  NotificationCounter notifications(pg);

  Psql(pg, "INSERT INTO t VALUES (1, 'wakes the node')");
  ASSERT_TRUE(WaitFor([&] { return !Asleep(pg); }, kPromptly)) << ReadFile(dir / "pg.err");
  EXPECT_EQ(notifications.Take(std::chrono::milliseconds(200)), 1u);

  for (int row = 2; row <= 11; ++row) {
    Psql(pg, "INSERT INTO t VALUES (" + std::to_string(row) + ", 'while awake')");
  }
  Psql(pg, "UPDATE t SET v = 'all of them' WHERE id > 1");
  EXPECT_EQ(notifications.Take(std::chrono::milliseconds(500)), 0u);
  EXPECT_FALSE(Asleep(pg));
  // The triggers captured all of it: the node will stamp it once a session runs.
  EXPECT_EQ(Psql(pg,
                 "SELECT count(*) FROM _lockstep_capture_1 c "
                 "JOIN _lockstep_collections l ON l.id = 1 AND l.name = 't'"),
            "21\n");
  EXPECT_EQ(pg_node.Terminate(std::chrono::seconds(10)), 0) << ReadFile(dir / "pg.err");
}

// A database attached by a Lockstep without the wake flag (its statement trigger never reads
// one, and there is none) switches over when a node starts on it: attaching makes the flag and
// the triggers again, so the node sleeps and a commit wakes it.
TEST(PostgresDaemonTest, ADatabaseAttachedBeforeTheWakeFlagSwitchesOverWhenANodeStarts) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.running());
  const std::string pg = cluster.CreateDatabase("older");
  Psql(pg, kTableWithFirstRow);
  ScratchDir dir;
  const ProcessResult attached = Lockstep({"sync", pg, (dir / "first.db").string()});
  ASSERT_EQ(attached.exit_code, 0) << attached.err;
  Psql(pg,
       "DROP SEQUENCE _lockstep_wake; CREATE OR REPLACE FUNCTION _lockstep_writer_lock() "
       "RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;");
  Psql(pg, "INSERT INTO t VALUES (2, 'pg', 'before the node', 2)");

  auto hub = Hub::Start({.plaintext = true});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  const std::filesystem::path edge = dir / "edge.db";
  ProcessGuard pg_node, sqlite_node;
  StartLiveNode(pg_node, dir.path(), "pg", "postgres = \"" + pg + "\"" + kSlowPoll, hub->url(),
                token);
  StartLiveNode(sqlite_node, dir.path(), "edge", "sqlite = \"" + edge.string() + "\"", hub->url(),
                token);
  ASSERT_TRUE(WaitFor([&] { return HasRow(edge, 1) && HasRow(edge, 2); }, kArriveLimit))
      << ReadFile(dir / "pg.err") << ReadFile(dir / "edge.err") << hub->Log();
  ASSERT_TRUE(WaitFor([&] { return Asleep(pg); }, kFallAsleepLimit)) << ReadFile(dir / "pg.err");
  const auto written = std::chrono::steady_clock::now();
  Psql(pg, "INSERT INTO t VALUES (3, 'pg', 'after', 3)");
  EXPECT_TRUE(WaitFor([&] { return HasRow(edge, 3); }, kPromptly))
      << "after " << MsSince(written) << " ms\n"
      << ReadFile(dir / "pg.err");
  EXPECT_EQ(pg_node.Terminate(std::chrono::seconds(10)), 0) << ReadFile(dir / "pg.err");
  EXPECT_EQ(sqlite_node.Terminate(std::chrono::seconds(10)), 0);
}

// Two engines on one database, each with its own hub and SQLite node: both sleep at once (a bit
// each), one write wakes both (NOTIFY is broadcast), and the bit of an engine killed while it
// slept is cleared by the next engine that starts on the database.
TEST(PostgresDaemonTest, TwoNodesOnOneDatabaseBothWakeAndAKilledOnesBitIsCleared) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.running());
  const std::string pg = cluster.CreateDatabase("two");
  Psql(pg, kTableWithFirstRow);
  auto hub1 = Hub::Start({.plaintext = true});
  auto hub2 = Hub::Start({.plaintext = true});
  ASSERT_NE(hub1, nullptr);
  ASSERT_NE(hub2, nullptr);
  const std::string token1 = hub1->CreateToken("*", "rw");
  const std::string token2 = hub2->CreateToken("*", "rw");
  ScratchDir dir;
  const std::filesystem::path edge1 = dir / "edge1.db";
  const std::filesystem::path edge2 = dir / "edge2.db";
  const std::string source = "postgres = \"" + pg + "\"" + kSlowPoll;
  ProcessGuard pg1, pg2, sqlite1, sqlite2;
  // One after the other, so that the first takes slot 0 (bit 1) and the second slot 1 (bit 2).
  StartLiveNode(pg1, dir.path(), "pg1", source, hub1->url(), token1);
  ASSERT_TRUE(WaitFor([&] { return WakeFlag(pg) == 1; }, kFallAsleepLimit))
      << ReadFile(dir / "pg1.err");
  StartLiveNode(pg2, dir.path(), "pg2", source, hub2->url(), token2);
  StartLiveNode(sqlite1, dir.path(), "edge1", "sqlite = \"" + edge1.string() + "\"", hub1->url(),
                token1);
  StartLiveNode(sqlite2, dir.path(), "edge2", "sqlite = \"" + edge2.string() + "\"", hub2->url(),
                token2);
  ASSERT_TRUE(WaitFor([&] { return HasRow(edge1, 1) && HasRow(edge2, 1); }, kArriveLimit))
      << ReadFile(dir / "pg1.err") << ReadFile(dir / "pg2.err");

  ASSERT_TRUE(WaitFor([&] { return WakeFlag(pg) == 3; }, kFallAsleepLimit));
  const auto written = std::chrono::steady_clock::now();
  Psql(pg, "INSERT INTO t VALUES (2, 'pg', 'both', 2)");
  EXPECT_TRUE(WaitFor([&] { return HasRow(edge1, 2) && HasRow(edge2, 2); }, kPromptly))
      << "after " << MsSince(written) << " ms";
  std::cout << "one write, two sleeping engines, both SQLite nodes: " << MsSince(written)
            << " ms\n";

  // Killed in its sleep, the second engine leaves its bit; the first clears its own on its way
  // out; started again, it takes slot 0 and clears slot 1's bit, whose holder is gone.
  ASSERT_TRUE(WaitFor([&] { return WakeFlag(pg) == 3; }, kFallAsleepLimit));
  pg2.Kill();
  EXPECT_EQ(pg1.Terminate(std::chrono::seconds(10)), 0) << ReadFile(dir / "pg1.err");
  EXPECT_EQ(WakeFlag(pg), 2);
  ProcessGuard pg1_again;
  StartLiveNode(pg1_again, dir.path(), "pg1_again", source, hub1->url(), token1);
  EXPECT_TRUE(WaitFor([&] { return WakeFlag(pg) == 1; }, kFallAsleepLimit))
      << WakeFlag(pg) << "\n"
      << ReadFile(dir / "pg1_again.err");
  const auto again = std::chrono::steady_clock::now();
  Psql(pg, "INSERT INTO t VALUES (3, 'pg', 'again', 3)");
  EXPECT_TRUE(WaitFor([&] { return HasRow(edge1, 3); }, kPromptly))
      << "after " << MsSince(again) << " ms";
  EXPECT_EQ(pg1_again.Terminate(std::chrono::seconds(10)), 0);
  EXPECT_EQ(sqlite1.Terminate(std::chrono::seconds(10)), 0);
  EXPECT_EQ(sqlite2.Terminate(std::chrono::seconds(10)), 0);
}

}  // namespace
}  // namespace lockstep::testing
