// Sync scenarios end to end: the real `lockstep` binary keeps SQLite databases in step while the
// real sqlite3 CLI edits them in between, as a user's programs would.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/process.h"

namespace lockstep::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kSchema[] = "CREATE TABLE t(pk INTEGER PRIMARY KEY, a, b);";

// Every row of `table` in key order, as the sqlite3 CLI prints it.
std::string Dump(const fs::path& db, const std::string& table = "t") {
  return Sql(db, "SELECT * FROM " + table + " ORDER BY pk;");
}

// The whole database as SQL text: user tables and Lockstep's own.
std::string FullDump(const fs::path& db) { return Sql(db, ".dump"); }

std::string Bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The names of Lockstep's tables, triggers and indexes in `db`, one a line.
std::string LockstepObjects(const fs::path& db) {
  return Sql(db,
             "SELECT type || ' ' || name FROM sqlite_master "
             "WHERE name LIKE '\\_lockstep\\_%' ESCAPE '\\' ORDER BY name;");
}

// The user's tables in `db`, one a line in name order: all but SQLite's and Lockstep's own.
std::string UserTables(const fs::path& db) {
  return Sql(db,
             "SELECT name FROM sqlite_master WHERE type = 'table' "
             "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
             "AND name NOT LIKE '\\_lockstep\\_%' ESCAPE '\\' ORDER BY name;");
}

// Runs `lockstep sync ARGS...` and expects it to succeed.
ProcessResult Sync(std::vector<std::string> args) {
  args.insert(args.begin(), "sync");
  ProcessResult result = Lockstep(args);
  EXPECT_EQ(result.exit_code, 0) << "lockstep sync failed: " << result.err;
  return result;
}

json ConflictsOn(const fs::path& db, bool pending_only = false) {
  std::vector<std::string> args{"conflicts", "list", db.string(), "--json"};
  if (pending_only) args.push_back("--pending");
  ProcessResult result = Lockstep(args);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  json parsed = json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(parsed.is_array()) << result.out;
  return parsed.is_array() ? parsed : json::array();
}

// The logged conflicts of one field of one record.
std::vector<json> ConflictsOf(const json& conflicts, const std::string& key,
                              const std::string& field) {
  std::vector<json> found;
  for (const json& c : conflicts) {
    if (c.value("key", "") == key && c.value("field", "") == field) found.push_back(c);
  }
  return found;
}

// Edits on two sides must be ordered by their HLCs, which the capture triggers take from the wall
// clock at millisecond precision: leave a clear gap between them.
void LetTheClockTick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

// Two databases holding `t` with rows 1..`rows`, attached and in step.
struct SyncedPair {
  ScratchDir dir;
  fs::path a = dir / "a.db";
  fs::path b = dir / "b.db";

  explicit SyncedPair(int rows = 3, const std::string& policy = "") {
    std::string sql = kSchema;
    for (int i = 1; i <= rows; ++i) {
      const std::string n = std::to_string(i);
      sql += "INSERT INTO t VALUES (" + n + ", 'a" + n + "', 'b" + n + "');";
    }
    Sql(a, sql);
    std::vector<std::string> args{a.string(), b.string()};
    if (!policy.empty()) args.insert(args.end(), {"--conflict", policy});
    Sync(args);
  }
};

TEST(SyncScenarioTest, InsertsUpdatesAndDeletesOnBothSidesConverge) {
  SyncedPair dbs(4);
  Sql(dbs.a,
      "INSERT INTO t VALUES (5, 'a5', 'b5'); UPDATE t SET a = 'a1 by a' WHERE pk = 1;"
      "DELETE FROM t WHERE pk = 2;");
  Sql(dbs.b,
      "INSERT INTO t VALUES (6, 'a6', 'b6'); UPDATE t SET b = 'b3 by b' WHERE pk = 3;"
      "DELETE FROM t WHERE pk = 4;");

  Sync({dbs.a.string(), dbs.b.string()});

  const std::string expected = "1|a1 by a|b1\n3|a3|b3 by b\n5|a5|b5\n6|a6|b6\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
}

TEST(SyncScenarioTest, EditsOfDifferentColumnsMergeWithoutConflict) {
  SyncedPair dbs;
  Sql(dbs.a, "UPDATE t SET a = 'a1 by a' WHERE pk = 1;");
  LetTheClockTick();
  Sql(dbs.b, "UPDATE t SET b = 'b1 by b' WHERE pk = 1;");

  Sync({dbs.a.string(), dbs.b.string()});

  const std::string expected = "1|a1 by a|b1 by b\n2|a2|b2\n3|a3|b3\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
  for (const fs::path& db : {dbs.a, dbs.b}) {
    const json conflicts = ConflictsOn(db);
    EXPECT_TRUE(ConflictsOf(conflicts, "t:1", "a").empty()) << db << ": " << conflicts.dump();
    EXPECT_TRUE(ConflictsOf(conflicts, "t:1", "b").empty()) << db << ": " << conflicts.dump();
  }
}

// Both sides wrote the row, but never the same column: the row existing on both is agreement.
TEST(SyncScenarioTest, EditsOfDifferentColumnsLogNoConflictAtAll) {
  SyncedPair dbs;
  Sql(dbs.a, "UPDATE t SET a = 'a1 by a' WHERE pk = 1;");
  LetTheClockTick();
  Sql(dbs.b, "UPDATE t SET b = 'b1 by b' WHERE pk = 1;");

  const ProcessResult sync = Sync({dbs.a.string(), dbs.b.string(), "--json"});

  const json report = json::parse(sync.out, nullptr, false);
  EXPECT_EQ(report.value("conflicts", -1), 0) << sync.out;
  EXPECT_EQ(ConflictsOn(dbs.a), json::array()) << "a.db";
  EXPECT_EQ(ConflictsOn(dbs.b), json::array()) << "b.db";
}

TEST(SyncScenarioTest, SameColumnEditedOnBothSidesKeepsTheLaterWrite) {
  SyncedPair dbs;
  // Row 1: a writes first; row 2: b writes first. The later write wins whichever side made it.
  Sql(dbs.a, "UPDATE t SET a = 'early' WHERE pk = 1;");
  Sql(dbs.b, "UPDATE t SET a = 'early' WHERE pk = 2;");
  LetTheClockTick();
  Sql(dbs.b, "UPDATE t SET a = 'late' WHERE pk = 1;");
  Sql(dbs.a, "UPDATE t SET a = 'late' WHERE pk = 2;");

  Sync({dbs.a.string(), dbs.b.string()});

  const std::string expected = "1|late|b1\n2|late|b2\n3|a3|b3\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
  for (const fs::path& db : {dbs.a, dbs.b}) {
    const json conflicts = ConflictsOn(db);
    for (const std::string key : {"t:1", "t:2"}) {
      const std::vector<json> logged = ConflictsOf(conflicts, key, "a");
      ASSERT_EQ(logged.size(), 1u) << db << " " << key << ": " << conflicts.dump();
      EXPECT_EQ(logged[0]["winner"], "'late'");
      EXPECT_EQ(logged[0]["loser"], "'early'");
      EXPECT_EQ(logged[0]["pending"], false);
    }
  }
  const ProcessResult text = Lockstep({"conflicts", "list", dbs.b.string()});
  EXPECT_NE(text.out.find("t:1 a: kept 'late'"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("lost 'early'"), std::string::npos) << text.out;
}

TEST(SyncScenarioTest, ManualConflictsAreResolvedByHandAndTheChoiceReplicates) {
  SyncedPair dbs(3, "manual");
  Sql(dbs.a,
      "UPDATE t SET a = 'a1 by a' WHERE pk = 1; UPDATE t SET a = 'a2 by a' WHERE pk = 2;"
      "UPDATE t SET a = 'a3 by a' WHERE pk = 3;");
  LetTheClockTick();
  Sql(dbs.b,
      "UPDATE t SET a = 'a1 by b' WHERE pk = 1; UPDATE t SET a = 'a2 by b' WHERE pk = 2;"
      "UPDATE t SET a = 'a3 by b' WHERE pk = 3;");
  Sync({dbs.a.string(), dbs.b.string()});
  for (const fs::path& db : {dbs.a, dbs.b}) {
    const json pending = ConflictsOn(db, /*pending_only=*/true);
    for (const std::string key : {"t:1", "t:2", "t:3"}) {
      EXPECT_EQ(ConflictsOf(pending, key, "a").size(), 1u) << db << " " << key << pending.dump();
    }
  }

  for (const auto& [key, take] : std::vector<std::pair<std::string, std::string>>{
           {"t:1", "local"}, {"t:2", "remote"}, {"t:3", "'chosen'"}}) {
    const ProcessResult resolve =
        Lockstep({"conflicts", "resolve", dbs.a.string(), key, "--take", take});
    EXPECT_EQ(resolve.exit_code, 0) << key << ": " << resolve.err;
  }
  const std::string expected = "1|a1 by a|b1\n2|a2 by b|b2\n3|chosen|b3\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(ConflictsOn(dbs.a, true), json::array());

  Sync({dbs.a.string(), dbs.b.string()});

  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
}

// The resolution covers every sibling, so once it arrives nothing is left waiting on any replica.
TEST(SyncScenarioTest, ManualResolutionLeavesNoPendingConflictOnAnyDatabase) {
  SyncedPair dbs(1, "manual");
  Sql(dbs.a, "UPDATE t SET a = 'by a' WHERE pk = 1;");
  LetTheClockTick();
  Sql(dbs.b, "UPDATE t SET a = 'by b' WHERE pk = 1;");
  Sync({dbs.a.string(), dbs.b.string()});
  ASSERT_EQ(Lockstep({"conflicts", "resolve", dbs.a.string(), "t:1", "--take", "local"}).exit_code,
            0);

  Sync({dbs.a.string(), dbs.b.string()});

  EXPECT_EQ(Dump(dbs.b), "1|by a|b1\n");
  EXPECT_EQ(ConflictsOn(dbs.a, true), json::array()) << "a.db";
  EXPECT_EQ(ConflictsOn(dbs.b, true), json::array()) << "b.db";
  // A resolved conflict is no longer "a conflict kept by the manual policy": resolving it again
  // on the other side finds nothing to do.
  EXPECT_NE(Lockstep({"conflicts", "resolve", dbs.b.string(), "t:1", "--take", "remote"}).exit_code,
            0);
}

TEST(SyncScenarioTest, UpdateConcurrentWithDeleteBringsTheRowBackByDefault) {
  SyncedPair dbs;
  Sql(dbs.a, "DELETE FROM t WHERE pk = 1;");
  Sql(dbs.b, "UPDATE t SET a = 'a2 by b' WHERE pk = 2;");
  LetTheClockTick();
  Sql(dbs.b, "UPDATE t SET a = 'a1 by b' WHERE pk = 1;");
  Sql(dbs.a, "DELETE FROM t WHERE pk = 2;");

  Sync({dbs.a.string(), dbs.b.string()});

  const std::string expected = "1|a1 by b|b1\n2|a2 by b|b2\n3|a3|b3\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
}

TEST(SyncScenarioTest, DeleteConcurrentWithUpdateWinsUnderDeleteWins) {
  SyncedPair dbs(3, "delete_wins");
  Sql(dbs.a, "DELETE FROM t WHERE pk = 1;");
  Sql(dbs.b, "UPDATE t SET a = 'a2 by b' WHERE pk = 2;");
  LetTheClockTick();
  Sql(dbs.b, "UPDATE t SET a = 'a1 by b' WHERE pk = 1;");
  Sql(dbs.a, "DELETE FROM t WHERE pk = 2;");

  Sync({dbs.a.string(), dbs.b.string()});

  EXPECT_EQ(Dump(dbs.a), "3|a3|b3\n");
  EXPECT_EQ(Dump(dbs.b), "3|a3|b3\n");
}

TEST(SyncScenarioTest, DeletedKeyInsertedAgainSyncsAsANewRow) {
  SyncedPair dbs;
  Sql(dbs.a, "DELETE FROM t WHERE pk IN (1, 2);");
  Sync({dbs.a.string(), dbs.b.string()});
  ASSERT_EQ(Dump(dbs.b), "3|a3|b3\n");

  // One key comes back on the side that deleted it, the other on the side that learned of it.
  Sql(dbs.a, "INSERT INTO t VALUES (1, 'new a1', 'new b1');");
  Sql(dbs.b, "INSERT INTO t VALUES (2, 'new a2', NULL);");
  Sync({dbs.a.string(), dbs.b.string()});

  const std::string expected = "1|new a1|new b1\n2|new a2|\n3|a3|b3\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
}

// Three databases, each with rows of its own, then with edits of shared rows.
using PairOrder = std::vector<std::pair<char, char>>;
class SyncScenarioPairOrderTest : public ::testing::TestWithParam<PairOrder> {};

TEST_P(SyncScenarioPairOrderTest, ThreeDatabasesSyncedPairwiseInAnyOrderConverge) {
  ScratchDir dir;
  auto path = [&](char name) { return (dir / (std::string(1, name) + ".db")).string(); };
  Sql(path('a'), std::string(kSchema) + "INSERT INTO t VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2');");
  Sql(path('b'), std::string(kSchema) + "INSERT INTO t VALUES (10, 'a10', 'b10');");
  Sql(path('c'), std::string(kSchema) + "INSERT INTO t VALUES (20, 'a20', 'b20');");
  auto sync_in_order = [&] {
    for (const auto& [from, to] : GetParam()) Sync({path(from), path(to)});
  };

  sync_in_order();
  const std::string first = "1|a1|b1\n2|a2|b2\n10|a10|b10\n20|a20|b20\n";
  for (char db : {'a', 'b', 'c'}) EXPECT_EQ(Dump(path(db)), first) << db;

  Sql(path('a'), "UPDATE t SET a = 'early' WHERE pk = 1; DELETE FROM t WHERE pk = 20;");
  Sql(path('b'), "UPDATE t SET b = 'b1 by b' WHERE pk = 1; INSERT INTO t VALUES (11, 'x', 'y');");
  LetTheClockTick();
  Sql(path('c'),
      "UPDATE t SET a = 'late' WHERE pk = 1; UPDATE t SET a = 'a10 by c' WHERE pk = 10;");
  sync_in_order();

  const std::string second = "1|late|b1 by b\n2|a2|b2\n10|a10 by c|b10\n11|x|y\n";
  for (char db : {'a', 'b', 'c'}) EXPECT_EQ(Dump(path(db)), second) << db;
  EXPECT_EQ(Lockstep({"sync", path('a'), path('b'), path('c')}).out,
            "nothing to sync: the databases are in step\n");
}

// Every order of the three pairs, each pair named in either direction somewhere.
const std::vector<PairOrder> kPairOrders{
    {{'a', 'b'}, {'a', 'c'}, {'b', 'c'}}, {{'a', 'b'}, {'b', 'c'}, {'a', 'c'}},
    {{'a', 'c'}, {'a', 'b'}, {'b', 'c'}}, {{'a', 'c'}, {'c', 'b'}, {'a', 'b'}},
    {{'b', 'c'}, {'a', 'b'}, {'c', 'a'}}, {{'c', 'b'}, {'c', 'a'}, {'b', 'a'}},
};

std::string PairOrderName(const ::testing::TestParamInfo<PairOrder>& param) {
  std::string joined;
  for (const auto& [from, to] : param.param) {
    if (!joined.empty()) joined += "_";
    joined += from;
    joined += to;
  }
  return joined;
}

INSTANTIATE_TEST_SUITE_P(AllOrders, SyncScenarioPairOrderTest, ::testing::ValuesIn(kPairOrders),
                         PairOrderName);

TEST(SyncScenarioTest, OneSyncOfThreeDatabasesConverges) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db", c = dir / "c.db";
  Sql(a, std::string(kSchema) + "INSERT INTO t VALUES (1, 'a1', 'b1');");
  Sql(b, std::string(kSchema) + "INSERT INTO t VALUES (10, 'a10', 'b10');");
  Sql(c, std::string(kSchema) + "INSERT INTO t VALUES (20, 'a20', 'b20');");
  Sync({a.string(), b.string(), c.string()});
  Sql(b, "UPDATE t SET a = 'a1 by b' WHERE pk = 1;");
  Sql(c, "DELETE FROM t WHERE pk = 10; UPDATE t SET b = 'b1 by c' WHERE pk = 1;");

  Sync({a.string(), b.string(), c.string()});

  const std::string expected = "1|a1 by b|b1 by c\n20|a20|b20\n";
  for (const fs::path& db : {a, b, c}) EXPECT_EQ(Dump(db), expected) << db;
}

TEST(SyncScenarioTest, RerunWithNothingChangedSaysSoAndChangesNothing) {
  SyncedPair dbs;
  Sql(dbs.a, "UPDATE t SET a = 'changed' WHERE pk = 1;");
  Sync({dbs.a.string(), dbs.b.string()});
  // Everything but the cursors, which may still move past changes a peer skipped as its own.
  const std::string state =
      "SELECT * FROM t ORDER BY pk; SELECT * FROM _lockstep_records ORDER BY collection, key;"
      "SELECT * FROM _lockstep_conflicts ORDER BY id; SELECT * FROM _lockstep_meta ORDER BY name;";
  const std::string a_before = Sql(dbs.a, state);
  const std::string b_before = Sql(dbs.b, state);

  const ProcessResult again = Sync({dbs.a.string(), dbs.b.string()});

  EXPECT_EQ(again.out, "nothing to sync: the databases are in step\n");
  EXPECT_EQ(Sql(dbs.a, state), a_before);
  EXPECT_EQ(Sql(dbs.b, state), b_before);
}

TEST(SyncScenarioTest, SettledDatabasesAreNotWrittenByAnotherSync) {
  SyncedPair dbs;
  Sql(dbs.a, "UPDATE t SET a = 'changed' WHERE pk = 1;");
  Sync({dbs.a.string(), dbs.b.string()});
  Sync({dbs.a.string(), dbs.b.string()});
  const std::string a_before = FullDump(dbs.a);
  const std::string b_before = FullDump(dbs.b);

  const ProcessResult again = Sync({dbs.a.string(), dbs.b.string()});

  EXPECT_EQ(again.out, "nothing to sync: the databases are in step\n");
  EXPECT_EQ(FullDump(dbs.a), a_before);
  EXPECT_EQ(FullDump(dbs.b), b_before);
}

TEST(SyncScenarioTest, DryRunOfAFirstSyncReportsButWritesNothing) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a, std::string(kSchema) + "INSERT INTO t VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2');");
  Sql(b, "CREATE TABLE u(id TEXT PRIMARY KEY, v); INSERT INTO u VALUES ('k', 1);");
  const std::string a_bytes = Bytes(a);
  const std::string b_bytes = Bytes(b);

  const ProcessResult dry = Sync({a.string(), b.string(), "--dry-run"});

  EXPECT_NE(dry.out.find("would change"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("dry run"), std::string::npos) << dry.out;
  EXPECT_EQ(Bytes(a), a_bytes);
  EXPECT_EQ(Bytes(b), b_bytes);
  EXPECT_EQ(LockstepObjects(a), "");
  EXPECT_EQ(LockstepObjects(b), "");
  EXPECT_EQ(UserTables(b), "u\n");
}

TEST(SyncScenarioTest, DryRunDoesNotCreateAMissingDatabase) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a, std::string(kSchema) + "INSERT INTO t VALUES (1, 'a1', 'b1');");
  const std::string a_bytes = Bytes(a);

  const ProcessResult dry = Sync({a.string(), b.string(), "--dry-run"});

  EXPECT_NE(dry.out.find("would change 1 record"), std::string::npos) << dry.out;
  EXPECT_EQ(Bytes(a), a_bytes);
  EXPECT_FALSE(fs::exists(b)) << "the dry run created " << b;
}

TEST(SyncScenarioTest, DryRunOfLaterChangesWritesNothingAndLosesNothing) {
  SyncedPair dbs;
  Sql(dbs.a, "UPDATE t SET a = 'by a' WHERE pk = 1; INSERT INTO t VALUES (4, 'a4', 'b4');");
  Sql(dbs.b, "DELETE FROM t WHERE pk = 3;");
  const std::string a_bytes = Bytes(dbs.a);
  const std::string b_bytes = Bytes(dbs.b);

  const ProcessResult dry = Sync({dbs.a.string(), dbs.b.string(), "--dry-run", "--json"});

  const json report = json::parse(dry.out, nullptr, false);
  EXPECT_EQ(report.value("dry_run", false), true) << dry.out;
  // b's delete into a; a's update and insert into b (the delete it took from b is not echoed).
  EXPECT_EQ(report.value("changed", 0), 3) << dry.out;
  EXPECT_EQ(Bytes(dbs.a), a_bytes);
  EXPECT_EQ(Bytes(dbs.b), b_bytes);

  // The captured edits are still there for the real run.
  Sync({dbs.a.string(), dbs.b.string()});
  const std::string expected = "1|by a|b1\n2|a2|b2\n4|a4|b4\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
}

TEST(SyncScenarioTest, JsonSummaryParsesAndNamesWhatMoved) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a, std::string(kSchema) + "INSERT INTO t VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2');");

  const ProcessResult sync = Sync({a.string(), b.string(), "--json"});

  const json report = json::parse(sync.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << sync.out;
  EXPECT_EQ(report["tables"], json::array({"t"}));
  EXPECT_EQ(report["created"], json::array({"t in " + b.string()}));
  EXPECT_EQ(report["skipped"], json::array());
  EXPECT_EQ(report["changed"], 2);
  EXPECT_EQ(report["conflicts"], 0);
  EXPECT_EQ(report["dry_run"], false);
  ASSERT_TRUE(report["transfers"].is_array());
  bool found = false;
  for (const json& t : report["transfers"]) {
    for (const char* field : {"from", "to", "sent", "changed", "conflicts"}) {
      EXPECT_TRUE(t.contains(field)) << t.dump();
    }
    if (t.value("from", "") == a.string() && t.value("to", "") == b.string()) {
      found = true;
      EXPECT_EQ(t["changed"], 2);
    }
  }
  EXPECT_TRUE(found) << sync.out;
}

TEST(SyncScenarioTest, PushOnlyCarriesChangesFromTheFirstDatabase) {
  SyncedPair dbs;
  Sql(dbs.a, "UPDATE t SET a = 'by a' WHERE pk = 1;");
  Sql(dbs.b, "UPDATE t SET a = 'by b' WHERE pk = 2;");
  const std::string a_before = Dump(dbs.a);

  Sync({dbs.a.string(), dbs.b.string(), "--direction", "push"});

  EXPECT_EQ(Dump(dbs.a), a_before);
  EXPECT_EQ(Dump(dbs.b), "1|by a|b1\n2|by b|b2\n3|a3|b3\n");
  Sync({dbs.a.string(), dbs.b.string()});
  EXPECT_EQ(Dump(dbs.a), "1|by a|b1\n2|by b|b2\n3|a3|b3\n");
}

TEST(SyncScenarioTest, PullOnlyCarriesChangesIntoTheFirstDatabase) {
  SyncedPair dbs;
  Sql(dbs.a, "UPDATE t SET a = 'by a' WHERE pk = 1;");
  Sql(dbs.b, "UPDATE t SET a = 'by b' WHERE pk = 2;");
  const std::string b_before = Dump(dbs.b);

  Sync({dbs.a.string(), dbs.b.string(), "--direction", "pull"});

  EXPECT_EQ(Dump(dbs.a), "1|by a|b1\n2|by b|b2\n3|a3|b3\n");
  EXPECT_EQ(Dump(dbs.b), b_before);
  Sync({dbs.a.string(), dbs.b.string()});
  EXPECT_EQ(Dump(dbs.b), "1|by a|b1\n2|by b|b2\n3|a3|b3\n");
}

TEST(SyncScenarioTest, TablesOptionRestrictsTheSyncToTheListedTables) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a, std::string(kSchema) +
             "INSERT INTO t VALUES (1, 'a1', 'b1');"
             "CREATE TABLE u(pk INTEGER PRIMARY KEY, v); INSERT INTO u VALUES (1, 'u1');"
             "CREATE TABLE w(pk INTEGER PRIMARY KEY, v); INSERT INTO w VALUES (1, 'w1');");

  Sync({a.string(), b.string(), "--tables", "t,w"});

  EXPECT_EQ(UserTables(b), "t\nw\n");
  EXPECT_EQ(Dump(b, "w"), "1|w1\n");
  EXPECT_EQ(Sql(a,
                "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'u' AND type = 'trigger' "
                "OR name = '_lockstep_capture_u';"),
            "0\n");
  Sql(a, "INSERT INTO u VALUES (2, 'u2'); INSERT INTO t VALUES (2, 'a2', 'b2');");
  Sync({a.string(), b.string(), "--tables", "t"});
  EXPECT_EQ(Dump(b), "1|a1|b1\n2|a2|b2\n");
  EXPECT_EQ(UserTables(b), "t\nw\n");
}

// Regression: a sync of some tables once moved the cursor past the others' changes, so a later
// sync of every table never sent them.
TEST(SyncScenarioTest, SyncOfSomeTablesDoesNotSkipTheOthersLater) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a, std::string(kSchema) +
             "INSERT INTO t VALUES (1, 'a1', 'b1');"
             "CREATE TABLE w(pk INTEGER PRIMARY KEY, v); INSERT INTO w VALUES (1, 'w1');");
  Sync({a.string(), b.string()});
  Sql(a, "INSERT INTO w VALUES (2, 'w2'); INSERT INTO t VALUES (2, 'a2', 'b2');");

  Sync({a.string(), b.string(), "--tables", "t"});
  EXPECT_EQ(Dump(b, "w"), "1|w1\n");

  Sync({a.string(), b.string()});
  EXPECT_EQ(Dump(b, "w"), "1|w1\n2|w2\n");
  EXPECT_EQ(Dump(b), "1|a1|b1\n2|a2|b2\n");
}

TEST(SyncScenarioTest, TableOnOneSideOnlyIsCreatedOnTheOther) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a, std::string(kSchema) + "INSERT INTO t VALUES (1, 'a1', 'b1');");
  Sql(b,
      "CREATE TABLE u(id TEXT NOT NULL PRIMARY KEY, n INTEGER DEFAULT 7) WITHOUT ROWID;"
      "INSERT INTO u VALUES ('x', 1);");

  const ProcessResult sync = Sync({a.string(), b.string()});

  EXPECT_NE(sync.out.find("created table t in " + b.string()), std::string::npos) << sync.out;
  EXPECT_NE(sync.out.find("created table u in " + a.string()), std::string::npos) << sync.out;
  const std::string schema =
      "SELECT sql FROM sqlite_master WHERE name IN ('t', 'u') ORDER BY name;";
  EXPECT_EQ(Sql(a, schema), Sql(b, schema));
  EXPECT_EQ(Dump(b), "1|a1|b1\n");
  EXPECT_EQ(Sql(a, "SELECT * FROM u;"), "x|1\n");
}

TEST(SyncScenarioTest, DetachRemovesEveryLockstepObjectAndKeepsTheRows) {
  SyncedPair dbs;
  const std::string rows = Dump(dbs.a);
  ASSERT_NE(LockstepObjects(dbs.a), "");

  const ProcessResult detach = Lockstep({"detach", dbs.a.string()});

  EXPECT_EQ(detach.exit_code, 0) << detach.err;
  EXPECT_EQ(LockstepObjects(dbs.a), "");
  EXPECT_EQ(Sql(dbs.a, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger';"), "0\n");
  EXPECT_EQ(UserTables(dbs.a), "t\n");
  EXPECT_EQ(Dump(dbs.a), rows);
  // Without triggers the table is an ordinary one again.
  Sql(dbs.a, "INSERT INTO t VALUES (4, 'a4', 'b4'); DELETE FROM t WHERE pk = 4;");
  EXPECT_NE(Lockstep({"conflicts", "list", dbs.a.string()}).exit_code, 0);
}

TEST(SyncScenarioTest, SyncAfterDetachAttachesAgain) {
  SyncedPair dbs;
  ASSERT_EQ(Lockstep({"detach", dbs.a.string()}).exit_code, 0);
  Sql(dbs.a, "INSERT INTO t VALUES (4, 'a4', 'b4'); UPDATE t SET a = 'by a' WHERE pk = 1;");

  Sync({dbs.a.string(), dbs.b.string()});

  EXPECT_NE(LockstepObjects(dbs.a), "");
  const std::string expected = "1|by a|b1\n2|a2|b2\n3|a3|b3\n4|a4|b4\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
  // Attached again, its edits are captured again.
  Sql(dbs.a, "DELETE FROM t WHERE pk = 4;");
  Sync({dbs.a.string(), dbs.b.string()});
  EXPECT_EQ(Dump(dbs.b), "1|by a|b1\n2|a2|b2\n3|a3|b3\n");
}

// A row that two databases already agree on when they first meet is agreement, not a conflict.
TEST(SyncScenarioTest, RowsEqualOnBothSidesAtFirstAttachAreNoConflict) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  const std::string rows =
      std::string(kSchema) + "INSERT INTO t VALUES (1, 'a1', 'b1'), (2, 2.5, NULL);";
  Sql(a, rows);
  Sql(b, rows);

  const ProcessResult sync = Sync({a.string(), b.string(), "--json"});

  const json report = json::parse(sync.out, nullptr, false);
  EXPECT_EQ(report.value("conflicts", -1), 0) << sync.out;
  EXPECT_EQ(ConflictsOn(a), json::array()) << "a.db";
  EXPECT_EQ(ConflictsOn(b), json::array()) << "b.db";
  EXPECT_EQ(Dump(a), Dump(b));
}

TEST(SyncScenarioTest, SyncAfterDetachLogsNoConflictForUnchangedRows) {
  SyncedPair dbs;
  ASSERT_EQ(Lockstep({"detach", dbs.a.string()}).exit_code, 0);

  Sync({dbs.a.string(), dbs.b.string()});

  EXPECT_EQ(ConflictsOn(dbs.a), json::array()) << "a.db";
  EXPECT_EQ(ConflictsOn(dbs.b), json::array()) << "b.db";
}

}  // namespace
}  // namespace lockstep::testing
