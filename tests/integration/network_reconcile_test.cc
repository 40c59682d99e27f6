// Reconciliation over the network, with real processes: when a cursor is lost or void, a node
// and its hub find their differences by range fingerprints instead of resending whole logs, and
// still end equal.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/hub.h"
#include "support/process.h"

namespace lockstep::integration {
namespace {

using lockstep::testing::Hub;
using lockstep::testing::ProcessResult;
using lockstep::testing::RestoreFile;
using lockstep::testing::ScratchDir;
using lockstep::testing::Sql;

constexpr int kRows = 5'000;

std::string Dump(const std::filesystem::path& db) { return Sql(db, "SELECT * FROM t ORDER BY 1;"); }

// The JSON summary of one `sync --json`; fails the test unless the sync worked.
nlohmann::json SyncJson(const Hub& hub, const std::filesystem::path& db, const std::string& token) {
  const ProcessResult result = hub.Sync(db, token, {"--json"});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  if (result.exit_code != 0) return {};
  return nlohmann::json::parse(result.out);
}

void CreateRows(const std::filesystem::path& db) {
  Sql(db,
      "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT, n INTEGER);"
      "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < " +
          std::to_string(kRows) + ") INSERT INTO t SELECT i, 'row ' || i, i * 7 FROM s;");
}

// Forgets every cursor of `db`, as a store that lost them (or a peer it never met) would.
void ForgetCursors(const std::filesystem::path& db) { Sql(db, "DELETE FROM _lockstep_cursors;"); }

TEST(NetworkReconcileTest, LostCursorsSendOnlyTheDifferencesBothWays) {
  auto hub = Hub::Start({});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  CreateRows(a);
  EXPECT_EQ(SyncJson(*hub, a, token)["sent"], kRows);
  EXPECT_EQ(SyncJson(*hub, b, token)["received"], kRows);

  // a and the hub both forget how far they got; meanwhile both sides change (b's edits reach
  // the hub through its own cursor, which the hub forgets afterwards too).
  Sql(a,
      "UPDATE t SET x = 'a' WHERE id IN (10, 20, 30);"
      "INSERT INTO t VALUES (100001, 'new a', 1);"
      "DELETE FROM t WHERE id = 40;");
  Sql(b,
      "UPDATE t SET n = -1 WHERE id IN (50, 60);"
      "INSERT INTO t VALUES (100002, 'new b', 2);");
  SyncJson(*hub, b, token);
  ForgetCursors(a);
  ForgetCursors(hub->db());

  // Set reconciliation sees versions, not which one is newer: for a record both hold in
  // different versions (4 changed by a, 2 by b), each side sends its own, and merging keeps the
  // newer; a record only one side holds (one insert each) goes one way.
  const nlohmann::json reconciled = SyncJson(*hub, a, token);
  EXPECT_EQ(reconciled["sent"], 7) << "the differences only, not all " << kRows << " records";
  EXPECT_EQ(reconciled["received"], 7);
  EXPECT_EQ(reconciled["changed"], 3) << "b's three changes";
  EXPECT_TRUE(Dump(a) == Dump(hub->db())) << "a and the hub differ";
  SyncJson(*hub, b, token);
  EXPECT_TRUE(Dump(b) == Dump(a)) << "b and a differ";

  // The reconciliation left cursors behind: the next sync is the usual no-op.
  const nlohmann::json again = SyncJson(*hub, a, token);
  EXPECT_EQ(again["sent"], 0);
  EXPECT_EQ(again["received"], 0);
}

TEST(NetworkReconcileTest, EqualStoresWithLostCursorsExchangeNoRecords) {
  auto hub = Hub::Start({});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  CreateRows(a);
  SyncJson(*hub, a, token);
  ForgetCursors(a);
  ForgetCursors(hub->db());
  const nlohmann::json reconciled = SyncJson(*hub, a, token);
  EXPECT_EQ(reconciled["sent"], 0);
  EXPECT_EQ(reconciled["received"], 0);
  EXPECT_TRUE(Dump(a) == Dump(hub->db())) << "a and the hub differ";
}

TEST(NetworkReconcileTest, AnEmptyNodeIsSentTheLogWithoutReconciling) {
  auto hub = Hub::Start({});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  CreateRows(a);
  SyncJson(*hub, a, token);
  EXPECT_EQ(SyncJson(*hub, b, token)["received"], kRows);
  EXPECT_EQ(hub->Log().find("reconcil"), std::string::npos) << hub->Log();
  EXPECT_TRUE(Dump(b) == Dump(a)) << "b and a differ";
}

// The node's file goes back to an older copy after it synced newer writes: its dot counter and log
// went back too. Writes made after the restore must not reuse dots the hub has seen (they would be
// taken for writes it already has, and lost), and what the node had sent before the restore must
// come back to it.
TEST(NetworkReconcileTest, ANodeRestoredFromAnOlderCopyLosesNothing) {
  auto hub = Hub::Start({});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto backup = dir / "a-backup.db";
  CreateRows(a);
  SyncJson(*hub, a, token);
  Sql(a, ".backup '" + backup.string() + "'");
  Sql(a,
      "UPDATE t SET x = 'before restore' WHERE id <= 5;"
      "INSERT INTO t VALUES (200001, 'made before the restore', 0);");
  SyncJson(*hub, a, token);

  RestoreFile(backup, a);
  Sql(a,
      "UPDATE t SET x = 'after restore' WHERE id = 10;"
      "INSERT INTO t VALUES (300001, 'made after the restore', 1);");
  SyncJson(*hub, a, token);

  const std::string expected_changes =
      "1|before restore\n2|before restore\n3|before restore\n4|before restore\n"
      "5|before restore\n10|after restore\n200001|made before the restore\n"
      "300001|made after the restore\n";
  const std::string query =
      "SELECT id, x FROM t WHERE id <= 10 AND x NOT LIKE 'row %' OR id > "
      "100000 ORDER BY id;";
  EXPECT_EQ(Sql(hub->db(), query), expected_changes);
  EXPECT_EQ(Sql(a, query), expected_changes);
  EXPECT_TRUE(Dump(a) == Dump(hub->db())) << "a and the hub differ";
}

// The restored node's cursor of the hub (from its backup) still tells the hub what to offer as
// recent, but the hub's cursor of the node is of the node's old epoch: the node offers its latest
// changes in growing windows (engine::kFirstRecentWindow, 16, then 128: fewer than the 300 rows
// it wrote since the restore, so a third window, or the ranges, must find the rest). Deletions made
// before the restore, which the backup does not have, stay deleted.
TEST(NetworkReconcileTest,
     ARestoredNodeWithMoreWritesThanItOffersAsRecentLosesAndResurrectsNothing) {
  auto hub = Hub::Start({});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto backup = dir / "a-backup.db";
  CreateRows(a);
  SyncJson(*hub, a, token);
  Sql(a, ".backup '" + backup.string() + "'");
  Sql(a,
      "DELETE FROM t WHERE id BETWEEN 1 AND 5;"
      "UPDATE t SET x = 'before restore' WHERE id BETWEEN 6 AND 8;");
  SyncJson(*hub, a, token);

  RestoreFile(backup, a);
  Sql(a, "UPDATE t SET x = 'after restore ' || id WHERE id BETWEEN 1001 AND 1300;");
  SyncJson(*hub, a, token);

  const std::string summary =
      "SELECT count(*), sum(id BETWEEN 1 AND 5), sum(x = 'before restore'), "
      "sum(x = 'after restore ' || id) FROM t;";
  const std::string expected = std::to_string(kRows - 5) + "|0|3|300\n";
  EXPECT_EQ(Sql(hub->db(), summary), expected);
  EXPECT_EQ(Sql(a, summary), expected);
  EXPECT_TRUE(Dump(a) == Dump(hub->db())) << "a and the hub differ";
}

// `lockstep verify DB URL`, run as `sync` is but with the verb changed.
ProcessResult Verify(const Hub& hub, const std::filesystem::path& db, const std::string& token) {
  std::vector<std::string> argv = hub.SyncArgv(db, token);
  argv[1] = "verify";
  return lockstep::testing::RunWithin(argv, std::chrono::seconds(60));
}

TEST(NetworkReconcileTest, VerifyAgainstAHubListsTheDifferingKeysAndChangesNothing) {
  auto hub = Hub::Start({});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  const std::string read_only = hub->CreateToken("*", "r");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  CreateRows(a);
  SyncJson(*hub, a, token);
  SyncJson(*hub, b, token);

  const ProcessResult equal = Verify(*hub, a, read_only);
  EXPECT_EQ(equal.exit_code, 0) << equal.out << equal.err;
  EXPECT_NE(equal.out.find("are equal"), std::string::npos) << equal.out;

  // The hub moves on through b; a changes a row it has not synced yet.
  Sql(b, "UPDATE t SET x = 'b' WHERE id = 8; INSERT INTO t VALUES (100003, 'b', 3);");
  SyncJson(*hub, b, token);
  Sql(a, "UPDATE t SET x = 'a' WHERE id = 7;");
  const std::string a_before = Dump(a);
  const std::string hub_before = Dump(hub->db());
  const std::string a_files_before = Sql(a, "SELECT count(*) FROM _lockstep_records;");

  const ProcessResult differs = Verify(*hub, a, token);
  EXPECT_EQ(differs.exit_code, 1) << differs.out << differs.err;
  EXPECT_NE(differs.out.find("3 keys differ"), std::string::npos) << differs.out;
  EXPECT_NE(differs.out.find("8  differs"), std::string::npos) << differs.out;
  EXPECT_NE(differs.out.find("100003  only at"), std::string::npos) << differs.out;
  EXPECT_NE(differs.out.find("7  changed in"), std::string::npos) << differs.out;
  EXPECT_TRUE(Dump(a) == a_before) << "verify changed a";
  EXPECT_TRUE(Dump(hub->db()) == hub_before) << "verify changed the hub";
  EXPECT_EQ(Sql(a, "SELECT count(*) FROM _lockstep_records;"), a_files_before);

  SyncJson(*hub, a, token);
  const ProcessResult synced = Verify(*hub, a, token);
  EXPECT_EQ(synced.exit_code, 0) << synced.out << synced.err;
}

TEST(NetworkReconcileTest, ResetFromAHubKeepsUnsyncedWritesAndResurrectsNothing) {
  auto hub = Hub::Start({});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  CreateRows(a);
  SyncJson(*hub, a, token);
  SyncJson(*hub, b, token);
  Sql(b, "DELETE FROM t WHERE id = 5; UPDATE t SET x = 'b' WHERE id = 6;");
  SyncJson(*hub, b, token);
  Sql(a, "UPDATE t SET x = 'kept' WHERE id = 7; INSERT INTO t VALUES (100004, 'kept', 4);");

  std::vector<std::string> argv = hub->SyncArgv(a, token);
  argv[1] = "reset";
  const ProcessResult reset = lockstep::testing::RunWithin(argv, std::chrono::seconds(60));
  ASSERT_EQ(reset.exit_code, 0) << reset.out << reset.err;
  EXPECT_NE(reset.out.find("kept 2 unsynced writes"), std::string::npos) << reset.out;

  const std::string query = "SELECT id, x FROM t WHERE id BETWEEN 5 AND 7 OR id > 100000;";
  EXPECT_EQ(Sql(a, query), "6|b\n7|kept\n100004|kept\n");
  EXPECT_EQ(Sql(hub->db(), query), "6|b\n7|kept\n100004|kept\n");
  EXPECT_TRUE(Dump(a) == Dump(hub->db())) << "a and the hub differ";
  const nlohmann::json again = SyncJson(*hub, a, token);
  EXPECT_EQ(again["received"], 0);
}

// A node away longer than the hub's tombstone retention could bring back rows deleted meanwhile:
// the hub refuses it with "reset required", and a reset from the hub brings it back in step.
TEST(NetworkReconcileTest, ANodeAwayBeyondTheRetentionIsRefusedUntilReset) {
  auto hub = Hub::Start({.extra_args = {"--retention", "1s"}});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  CreateRows(a);
  SyncJson(*hub, a, token);
  SyncJson(*hub, b, token);
  Sql(b, "DELETE FROM t WHERE id = 5;");
  SyncJson(*hub, b, token);
  std::this_thread::sleep_for(std::chrono::milliseconds(1'500));
  SyncJson(*hub, b, token);  // a session: the hub collects the tombstone, now beyond 1 s

  const ProcessResult refused = hub->Sync(a, token);
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("reset required"), std::string::npos) << refused.err;
  EXPECT_EQ(Sql(a, "SELECT count(*) FROM t WHERE id = 5;"), "1\n") << "refused before any change";

  std::vector<std::string> argv = hub->SyncArgv(a, token);
  argv[1] = "reset";
  const ProcessResult reset = lockstep::testing::RunWithin(argv, std::chrono::seconds(60));
  ASSERT_EQ(reset.exit_code, 0) << reset.out << reset.err;
  EXPECT_EQ(Sql(a, "SELECT count(*) FROM t WHERE id = 5;"), "0\n") << "row 5 was resurrected";
  EXPECT_TRUE(Dump(a) == Dump(hub->db())) << "a and the hub differ";
  const ProcessResult again = hub->Sync(a, token);
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
}

}  // namespace
}  // namespace lockstep::integration
