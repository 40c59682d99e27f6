// The SQLite scenario suite with PostgreSQL on one side (PostgreSQL ↔ SQLite) or both
// (PostgreSQL ↔ PostgreSQL): the real `lockstep` binary syncs while psql and the sqlite3 CLI edit
// the databases in between, as users' programs would. One throwaway cluster per test binary.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/postgres.h"
#include "support/process.h"

namespace lockstep::testing {
namespace {

// A database under test, edited with its own command-line client.
struct TestDb {
  std::string target;  // a postgres:// URL or a SQLite file
  bool postgres = false;
};

std::string Query(const TestDb& db, const std::string& sql) {
  return db.postgres ? Psql(db.target, sql) : Sql(db.target, sql);
}

// Every row of `table`, in key order, as both CLIs print them: fields joined by '|', NULL empty.
std::string Dump(const TestDb& db, const std::string& table = "t",
                 const std::string& order = "pk") {
  return Query(db, "SELECT * FROM " + table + " ORDER BY " + order + ";");
}

ProcessResult Sync(std::vector<std::string> args) {
  args.insert(args.begin(), "sync");
  ProcessResult result = Lockstep(args);
  EXPECT_EQ(result.exit_code, 0) << "lockstep sync failed: " << result.err;
  return result;
}

// Edits are ordered by the HLCs the triggers take from the clock in milliseconds: leave a gap.
void LetTheClockTick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

enum class Pair { kPostgresSqlite, kPostgresPostgres };

// Two databases, `a` in PostgreSQL and `b` in SQLite or PostgreSQL, holding t with rows 1..n,
// attached and in step.
class PostgresSyncTest : public ::testing::TestWithParam<Pair> {
 protected:
  void SetUp() override {
    PostgresCluster& cluster = PostgresCluster::Shared();
    ASSERT_TRUE(cluster.running());
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    a_ = {cluster.CreateDatabase("a " + test), true};
    b_ = GetParam() == Pair::kPostgresPostgres ? TestDb{cluster.CreateDatabase("b " + test), true}
                                               : TestDb{(dir_ / "b.db").string(), false};
  }

  void Start(int rows = 3, const std::string& policy = "") {
    std::string sql = "CREATE TABLE t(pk integer PRIMARY KEY, a text, b text);";
    for (int i = 1; i <= rows; ++i) {
      const std::string n = std::to_string(i);
      sql += "INSERT INTO t VALUES (" + n + ", 'a" + n + "', 'b" + n + "');";
    }
    Query(a_, sql);
    std::vector<std::string> args{a_.target, b_.target};
    if (!policy.empty()) args.insert(args.end(), {"--conflict", policy});
    Sync(args);
    ASSERT_EQ(Dump(a_), Dump(b_));
  }

  void SyncBoth() { Sync({a_.target, b_.target}); }

  ScratchDir dir_;
  TestDb a_;
  TestDb b_;
};

TEST_P(PostgresSyncTest, InsertsUpdatesAndDeletesOnBothSidesConverge) {
  Start(4);
  Query(a_,
        "INSERT INTO t VALUES (5, 'a5', 'b5'); UPDATE t SET a = 'a1 by a' WHERE pk = 1;"
        "DELETE FROM t WHERE pk = 2;");
  Query(b_,
        "INSERT INTO t VALUES (6, 'a6', 'b6'); UPDATE t SET b = 'b3 by b' WHERE pk = 3;"
        "DELETE FROM t WHERE pk = 4;");
  SyncBoth();
  const std::string expected = "1|a1 by a|b1\n3|a3|b3 by b\n5|a5|b5\n6|a6|b6\n";
  EXPECT_EQ(Dump(a_), expected);
  EXPECT_EQ(Dump(b_), expected);
  // Nothing comes back: the applied writes were not captured again.
  const ProcessResult again = Sync({a_.target, b_.target});
  EXPECT_NE(again.out.find("nothing to sync"), std::string::npos) << again.out;
}

// TRUNCATE fires no row trigger; its rows must still be deleted on the peer, and rows written
// after it in the same transaction kept.
TEST_P(PostgresSyncTest, TruncateDeletesEveryRowOnThePeer) {
  Start(4);
  Query(a_, "BEGIN; TRUNCATE t; INSERT INTO t VALUES (2, 'again', 'b2'); COMMIT;");
  SyncBoth();
  EXPECT_EQ(Dump(a_), "2|again|b2\n");
  EXPECT_EQ(Dump(b_), "2|again|b2\n");
  const ProcessResult again = Sync({a_.target, b_.target});
  EXPECT_NE(again.out.find("nothing to sync"), std::string::npos) << again.out;
}

// `lockstep verify` with a postgres:// URL: equal after a sync, a write not yet synced listed
// by key (and nothing written by looking).
TEST_P(PostgresSyncTest, VerifyComparesAPostgresDatabase) {
  Start(3);
  const ProcessResult equal = Lockstep({"verify", a_.target, b_.target});
  EXPECT_EQ(equal.exit_code, 0) << equal.out << equal.err;
  EXPECT_NE(equal.out.find("t: equal (3 records)"), std::string::npos) << equal.out;
  Query(a_, "UPDATE t SET a = 'changed' WHERE pk = 2;");
  Query(b_, "DELETE FROM t WHERE pk = 3;");
  const ProcessResult differs = Lockstep({"verify", a_.target, b_.target});
  EXPECT_EQ(differs.exit_code, 1) << differs.out << differs.err;
  EXPECT_NE(differs.out.find("2  changed in "), std::string::npos) << differs.out;
  EXPECT_NE(differs.out.find("3  changed in "), std::string::npos) << differs.out;
  EXPECT_EQ(differs.out.find(PostgresCluster::Shared().password()), std::string::npos);
  SyncBoth();
  EXPECT_EQ(Lockstep({"verify", a_.target, b_.target}).exit_code, 0);
}

TEST_P(PostgresSyncTest, EditsOfDifferentColumnsMerge) {
  Start();
  Query(a_, "UPDATE t SET a = 'a1 by a' WHERE pk = 1;");
  LetTheClockTick();
  Query(b_, "UPDATE t SET b = 'b1 by b' WHERE pk = 1;");
  SyncBoth();
  const std::string expected = "1|a1 by a|b1 by b\n2|a2|b2\n3|a3|b3\n";
  EXPECT_EQ(Dump(a_), expected);
  EXPECT_EQ(Dump(b_), expected);
}

TEST_P(PostgresSyncTest, SameColumnEditedOnBothSidesKeepsTheLaterWrite) {
  Start();
  Query(a_, "UPDATE t SET a = 'early' WHERE pk = 1;");
  Query(b_, "UPDATE t SET a = 'early' WHERE pk = 2;");
  LetTheClockTick();
  Query(b_, "UPDATE t SET a = 'late' WHERE pk = 1;");
  Query(a_, "UPDATE t SET a = 'late' WHERE pk = 2;");
  SyncBoth();
  const std::string expected = "1|late|b1\n2|late|b2\n3|a3|b3\n";
  EXPECT_EQ(Dump(a_), expected);
  EXPECT_EQ(Dump(b_), expected);
  // The losing values are kept in PostgreSQL's conflict log too.
  EXPECT_EQ(Psql(a_.target, "SELECT count(*) FROM _lockstep_conflicts WHERE field = 'a'"), "2\n");
}

// `lockstep conflicts` on a postgres:// URL: the manual policy keeps both values until a person
// picks one there, and the choice reaches the peer.
TEST_P(PostgresSyncTest, ManualConflictsAreListedAndResolvedInPostgres) {
  Start(2, "manual");
  Query(a_, "UPDATE t SET a = 'a1 by a' WHERE pk = 1; UPDATE t SET a = 'a2 by a' WHERE pk = 2;");
  LetTheClockTick();
  Query(b_, "UPDATE t SET a = 'a1 by b' WHERE pk = 1; UPDATE t SET a = 'a2 by b' WHERE pk = 2;");
  SyncBoth();
  const ProcessResult listed = Lockstep({"conflicts", "list", a_.target, "--pending"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("t:1 a: kept"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("t:2 a: kept"), std::string::npos) << listed.out;
  for (const auto& [key, take] : {std::pair{"t:1", "local"}, std::pair{"t:2", "'chosen'"}}) {
    const ProcessResult resolved =
        Lockstep({"conflicts", "resolve", a_.target, key, "--take", take});
    EXPECT_EQ(resolved.exit_code, 0) << key << ": " << resolved.err;
  }
  const std::string expected = "1|a1 by a|b1\n2|chosen|b2\n";
  EXPECT_EQ(Dump(a_), expected);
  EXPECT_EQ(Lockstep({"conflicts", "list", a_.target, "--pending"}).out, "no conflicts\n");
  SyncBoth();
  EXPECT_EQ(Dump(b_), expected);
  EXPECT_EQ(Lockstep({"conflicts", "list", b_.target, "--pending"}).out, "no conflicts\n");
}

TEST_P(PostgresSyncTest, UpdateConcurrentWithDeleteBringsTheRowBackByDefault) {
  Start();
  Query(a_, "DELETE FROM t WHERE pk = 1;");
  Query(b_, "UPDATE t SET a = 'a2 by b' WHERE pk = 2;");
  LetTheClockTick();
  Query(b_, "UPDATE t SET a = 'a1 by b' WHERE pk = 1;");
  Query(a_, "DELETE FROM t WHERE pk = 2;");
  SyncBoth();
  const std::string expected = "1|a1 by b|b1\n2|a2 by b|b2\n3|a3|b3\n";
  EXPECT_EQ(Dump(a_), expected);
  EXPECT_EQ(Dump(b_), expected);
}

TEST_P(PostgresSyncTest, DeleteConcurrentWithUpdateWinsUnderDeleteWins) {
  Start(3, "delete_wins");
  Query(a_, "DELETE FROM t WHERE pk = 1;");
  Query(b_, "UPDATE t SET a = 'a2 by b' WHERE pk = 2;");
  LetTheClockTick();
  Query(b_, "UPDATE t SET a = 'a1 by b' WHERE pk = 1;");
  Query(a_, "DELETE FROM t WHERE pk = 2;");
  SyncBoth();
  EXPECT_EQ(Dump(a_), "3|a3|b3\n");
  EXPECT_EQ(Dump(b_), "3|a3|b3\n");
}

TEST_P(PostgresSyncTest, CompositeKeysNullsAndKeyUpdatesSync) {
  Query(a_,
        "CREATE TABLE c(region text, id bigint, note text, n integer, PRIMARY KEY (region, id));"
        "INSERT INTO c VALUES ('eu', 1, NULL, 1), ('us', 1, 'x', NULL), ('eu', 2, 'y', 2);");
  Sync({a_.target, b_.target});
  Query(a_, "UPDATE c SET id = 3 WHERE region = 'eu' AND id = 2; UPDATE c SET n = NULL;");
  LetTheClockTick();
  Query(b_, "INSERT INTO c VALUES ('us', 2, NULL, NULL); UPDATE c SET note = 'z' WHERE id = 1;");
  Sync({a_.target, b_.target});
  const std::string expected = "eu|1|z|\neu|3|y|\nus|1|z|\nus|2||\n";
  EXPECT_EQ(Dump(a_, "c", "region, id"), expected);
  EXPECT_EQ(Dump(b_, "c", "region, id"), expected);
}

// More rows than any statement of the store or of the apply takes at once (and not a multiple of
// any), so that every batched path runs its full chunks and its remainder, both ways.
TEST_P(PostgresSyncTest, LargeBatchesWithCompositeKeysNullsAndDeletesConverge) {
  Query(a_,
        "CREATE TABLE c(region text, id bigint, note text, n integer, PRIMARY KEY (region, id));"
        "INSERT INTO c SELECT CASE WHEN i % 2 = 0 THEN 'eu' ELSE 'us' END, i,"
        " CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END,"
        " CASE WHEN i % 5 = 0 THEN NULL ELSE i END FROM generate_series(1, 1037) i;");
  Sync({a_.target, b_.target});
  ASSERT_EQ(Dump(a_, "c", "region, id"), Dump(b_, "c", "region, id"));
  Query(a_,
        "UPDATE c SET n = NULL, note = 'by a' WHERE id % 4 = 1;"
        "DELETE FROM c WHERE id % 4 = 3 AND id % 3 = 0;");
  LetTheClockTick();
  // The same statements in both dialects: b is SQLite or PostgreSQL. Each row is edited on one
  // side only (by id % 4), so that no concurrent edit decides what survives.
  Query(b_,
        "WITH RECURSIVE s(i) AS (SELECT 2000 UNION ALL SELECT i + 1 FROM s WHERE i < 2262) "
        "INSERT INTO c SELECT 'ap', i, NULL, i FROM s;"
        "UPDATE c SET note = 'by b' WHERE id % 4 = 2; DELETE FROM c WHERE id % 20 = 0;");
  Sync({a_.target, b_.target});
  const std::string rows = Dump(a_, "c", "region, id");
  EXPECT_EQ(rows, Dump(b_, "c", "region, id"));
  // 1037 + 263 rows, less 87 deleted on a and 65 on b.
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 1300 - 87 - 65);
  EXPECT_NE(rows.find("us|1|by a|\n"), std::string::npos) << rows;
  EXPECT_NE(rows.find("eu|2|by b|2\n"), std::string::npos) << rows;
  EXPECT_NE(rows.find("ap|2001||2001\n"), std::string::npos) << rows;
  EXPECT_EQ(rows.find("ap|2020|"), std::string::npos) << rows;
  const ProcessResult again = Sync({a_.target, b_.target});
  EXPECT_NE(again.out.find("nothing to sync"), std::string::npos) << again.out;
}

// Deletes are applied many keys per statement: more than one statement takes (500), and a
// remainder that is not a power of two, with a single-column key here (composite above).
TEST_P(PostgresSyncTest, ManyDeletesReachThePostgresSide) {
  Start(1203);
  // b deletes all but every twelfth row and one more: 1,102 deletes that a (PostgreSQL) applies.
  Query(b_, "DELETE FROM t WHERE pk % 12 <> 0 OR pk = 600;");
  Query(b_, "UPDATE t SET a = 'kept' WHERE pk = 1200;");
  SyncBoth();
  const std::string rows = Dump(a_);
  EXPECT_EQ(rows, Dump(b_));
  EXPECT_EQ(std::count(rows.begin(), rows.end(), '\n'), 1203 / 12 - 1);
  EXPECT_NE(rows.find("1200|kept|b1200\n"), std::string::npos) << rows;
  EXPECT_EQ(rows.find("\n600|"), std::string::npos) << rows;
  EXPECT_EQ(Query(a_, "SELECT count(*) FROM t WHERE pk % 12 <> 0;"), "0\n");
}

TEST_P(PostgresSyncTest, DetachRemovesEveryLockstepObjectAndKeepsTheRows) {
  Start();
  ProcessResult detach = Lockstep({"detach", a_.target});
  ASSERT_EQ(detach.exit_code, 0) << detach.err;
  EXPECT_EQ(Psql(a_.target,
                 "SELECT (SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_lockstep%') + "
                 "(SELECT count(*) FROM pg_proc WHERE proname LIKE '\\_lockstep%') + "
                 "(SELECT count(*) FROM pg_trigger WHERE tgname LIKE '\\_lockstep%') + "
                 "(SELECT count(*) FROM pg_class WHERE relname LIKE '\\_lockstep%')"),
            "0\n");
  EXPECT_EQ(Dump(a_), "1|a1|b1\n2|a2|b2\n3|a3|b3\n");
  // Users' writes work without Lockstep, and a later sync attaches again.
  Query(a_, "UPDATE t SET a = 'after' WHERE pk = 1;");
  SyncBoth();
  EXPECT_EQ(Dump(b_), Dump(a_));
}

// kill -9 at random points of syncs that carry thousands of rows, with edits on both sides in
// between: nothing half-applied survives, and the next syncs converge to the edits made.
TEST_P(PostgresSyncTest, SyncKilledAtRandomPointsStillConverges) {
  Start(0);
  std::mt19937 random(20261127);
  int killed = 0;
  for (int round = 0; round < 8; ++round) {
    const std::string r = std::to_string(round);
    Query(a_, "INSERT INTO t SELECT g, 'a" + r + "', 'b' FROM generate_series(" +
                  std::to_string(round * 2000 + 1) + ", " + std::to_string(round * 2000 + 2000) +
                  ") g ON CONFLICT (pk) DO UPDATE SET a = excluded.a; "
                  "UPDATE t SET b = 'from a " +
                  r + "' WHERE pk % 7 = " + std::to_string(round % 7));
    if (round > 0) {
      Query(b_, "UPDATE t SET a = 'from b " + r +
                    "' WHERE pk % 11 = " + std::to_string(round % 11) +
                    "; DELETE FROM t WHERE pk % 13 = " + std::to_string(round % 13) + ";");
    }
    const pid_t pid = Spawn({LockstepBinary(), "sync", a_.target, b_.target});
    ASSERT_GT(pid, 0);
    const auto delay = std::chrono::milliseconds(50 + random() % 400);
    std::optional<int> code = WaitWithin(pid, delay, /*kill_when_late=*/false);
    if (!code.has_value()) {
      kill(pid, SIGKILL);
      code = WaitWithin(pid, std::chrono::seconds(10));
      ++killed;
    }
    ASSERT_TRUE(code.has_value());
    ASSERT_TRUE(*code == 0 || *code == -SIGKILL) << "sync failed with " << *code;
  }
  std::cout << killed << " of 8 syncs killed mid-run\n";
  SyncBoth();
  SyncBoth();
  EXPECT_EQ(Dump(a_), Dump(b_));
  EXPECT_EQ(Query(a_, "SELECT count(*) FROM t WHERE b LIKE 'from a%';"),
            Query(b_, "SELECT count(*) FROM t WHERE b LIKE 'from a%';"));
  const ProcessResult last = Sync({a_.target, b_.target});
  EXPECT_NE(last.out.find("nothing to sync"), std::string::npos) << last.out;
}

// A PostgreSQL program keeps writing while syncs run: every one of its writes reaches the peer,
// none is lost to a merge racing its transaction.
TEST_P(PostgresSyncTest, WritesMadeDuringSyncsAllReachThePeer) {
  Start(200);
  const std::string script =
      "DO $$ BEGIN FOR i IN 1..300 LOOP UPDATE t SET a = 'w' || i WHERE pk = 1 + i % 200; "
      "COMMIT; END LOOP; END $$;";
  const pid_t writer = Spawn({(PostgresBin() / "psql").string(), "-X", "-q", "-v",
                              "ON_ERROR_STOP=1", "-d", a_.target, "-c", script});
  ASSERT_GT(writer, 0);
  for (int i = 0; i < 5; ++i) {
    Query(b_, "UPDATE t SET b = 'b" + std::to_string(i) + "' WHERE pk <= 100;");
    SyncBoth();
  }
  ASSERT_EQ(WaitWithin(writer, std::chrono::seconds(60)), 0);
  SyncBoth();
  EXPECT_EQ(Dump(a_), Dump(b_));
  EXPECT_EQ(Query(a_, "SELECT a FROM t WHERE pk = 101;"), "w300\n");
}

std::string PairName(const ::testing::TestParamInfo<Pair>& info) {
  return info.param == Pair::kPostgresSqlite ? "PostgresSqlite" : "PostgresPostgres";
}

INSTANTIATE_TEST_SUITE_P(Pairs, PostgresSyncTest,
                         ::testing::Values(Pair::kPostgresSqlite, Pair::kPostgresPostgres),
                         PairName);

}  // namespace
}  // namespace lockstep::testing
