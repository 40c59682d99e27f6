// Network sync with real processes on loopback: a `lockstep serve` hub and nodes running
// `lockstep sync DB lockstep://127.0.0.1:PORT`. Nodes that only ever talk to the hub must end
// with the same rows as each other and as the hub; tokens, trust and transport options must
// refuse what they should with one clear line, and leave the hub serving.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/hub.h"
#include "support/process.h"

namespace lockstep::integration {
namespace {

using lockstep::testing::Hub;
using lockstep::testing::LockstepBinary;
using lockstep::testing::ProcessResult;
using lockstep::testing::RunWithin;
using lockstep::testing::ScratchDir;
using lockstep::testing::Sql;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Far enough apart that the later write has the later timestamp beyond doubt.
constexpr auto kLwwGap = milliseconds(50);
constexpr auto kCommandLimit = seconds(30);
constexpr auto kLogLimit = milliseconds(10'000);

std::string Dump(const std::filesystem::path& db, const std::string& table = "t") {
  return Sql(db, "SELECT * FROM " + table + " ORDER BY 1;");
}

void ExpectSynced(const ProcessResult& result, const std::string& what = "") {
  EXPECT_EQ(result.exit_code, 0) << what << "\nstdout: " << result.out
                                 << "\nstderr: " << result.err;
}

// A failure reported the way the CLI promises: non-zero exit, one line on stderr naming it.
void ExpectOneLineError(const ProcessResult& result, const std::string& needle) {
  EXPECT_NE(result.exit_code, 0) << "stdout: " << result.out;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_NE(result.err.find(needle), std::string::npos) << result.err;
}

std::unique_ptr<Hub> StartHub(bool plaintext = false) {
  auto hub = Hub::Start({.plaintext = plaintext});
  if (hub != nullptr && !plaintext) {
    EXPECT_FALSE(hub->fingerprint().empty());
  }
  return hub;
}

TEST(NetworkSyncTest, TwoNodesConvergeThroughATlsHub) {
  auto hub = StartHub();
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  Sql(a,
      "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT, y TEXT);"
      "INSERT INTO t VALUES (1, 'x1', 'y1'), (2, 'x2', 'y2'), (3, 'x3', 'y3'), (4, 'x4', 'y4'),"
      "  (5, 'x5', 'y5'), (6, 'x6', 'y6');");
  ExpectSynced(hub->Sync(a, token), "a, first");
  EXPECT_EQ(Dump(hub->db()), Dump(a));

  // b is a new, empty database: it gets the table and its rows.
  ASSERT_FALSE(std::filesystem::exists(b));
  ExpectSynced(hub->Sync(b, token), "b, first");
  EXPECT_EQ(Dump(b), Dump(a));
  EXPECT_EQ(Sql(b, "SELECT sql FROM sqlite_master WHERE name = 't';"),
            Sql(a, "SELECT sql FROM sqlite_master WHERE name = 't';"));

  // Different rows; one row, different fields; one field written on both sides, far apart in
  // time, once with the newer write synced first (5) and once last (4).
  Sql(a,
      "UPDATE t SET x = 'a1' WHERE id = 1; UPDATE t SET x = 'a3' WHERE id = 3;"
      "INSERT INTO t VALUES (10, 'a10', 'a10');");
  Sql(b,
      "UPDATE t SET x = 'b2' WHERE id = 2; UPDATE t SET y = 'b3' WHERE id = 3;"
      "INSERT INTO t VALUES (20, 'b20', 'b20');");
  Sql(a, "UPDATE t SET y = 'a-older' WHERE id = 4;");
  Sql(b, "UPDATE t SET x = 'b-older' WHERE id = 5;");
  std::this_thread::sleep_for(kLwwGap);
  Sql(b, "UPDATE t SET y = 'b-newer' WHERE id = 4;");
  Sql(a, "UPDATE t SET x = 'a-newer' WHERE id = 5;");
  ExpectSynced(hub->Sync(a, token), "a, edits");
  ExpectSynced(hub->Sync(b, token), "b, edits");
  ExpectSynced(hub->Sync(a, token), "a, catching up");
  const std::string expected =
      "1|a1|y1\n2|b2|y2\n3|a3|b3\n4|x4|b-newer\n5|a-newer|y5\n6|x6|y6\n10|a10|a10\n20|b20|b20\n";
  EXPECT_EQ(Dump(a), expected);
  EXPECT_EQ(Dump(b), expected);
  EXPECT_EQ(Dump(hub->db()), expected);

  // Deletes on either side reach everyone.
  Sql(a, "DELETE FROM t WHERE id = 10;");
  Sql(b, "DELETE FROM t WHERE id IN (2, 6);");
  ExpectSynced(hub->Sync(a, token), "a, deletes");
  ExpectSynced(hub->Sync(b, token), "b, deletes");
  ExpectSynced(hub->Sync(a, token), "a, catching up on deletes");
  const std::string after_deletes = "1|a1|y1\n3|a3|b3\n4|x4|b-newer\n5|a-newer|y5\n20|b20|b20\n";
  EXPECT_EQ(Dump(a), after_deletes);
  EXPECT_EQ(Dump(b), after_deletes);
  EXPECT_EQ(Dump(hub->db()), after_deletes);

  const ProcessResult again = hub->Sync(a, token);
  ExpectSynced(again, "a, nothing changed");
  EXPECT_NE(again.out.find("nothing to sync"), std::string::npos) << again.out;
  EXPECT_EQ(Dump(a), after_deletes);
}

// Random updates, upserts and deletes of shared rows on three nodes; after each round every node
// syncs, in a random order. Once all have synced twice more, all equal each other and the hub.
TEST(NetworkSyncTest, ThreeNodesWithRandomWritesEndEqualToEachOtherAndTheHub) {
  constexpr int kRounds = 5;
  constexpr int kIds = 40;
  auto hub = StartHub();
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("t", "rw");
  ScratchDir dir;
  std::vector<std::filesystem::path> nodes{dir / "a.db", dir / "b.db", dir / "c.db"};
  Sql(nodes[0],
      "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER);"
      "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 30)"
      "  INSERT INTO t SELECT x, 'v' || x, x FROM s;");
  for (const auto& node : nodes) ExpectSynced(hub->Sync(node, token), node.filename());

  std::mt19937 random(20240611);
  auto id = [&] { return std::to_string(std::uniform_int_distribution<int>(1, kIds)(random)); };
  for (int round = 0; round < kRounds; ++round) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      const std::string tag =
          "'" + std::string(1, static_cast<char>('a' + i)) + ".r" + std::to_string(round) + "'";
      std::string sql = "BEGIN;";
      for (int k = 0; k < 4; ++k) sql += "UPDATE t SET v = " + tag + " WHERE id = " + id() + ";";
      sql += "UPDATE t SET n = n + 1 WHERE id = " + id() + ";";
      sql += "INSERT INTO t VALUES (" + id() + ", " + tag + ", 0)" +
             " ON CONFLICT(id) DO UPDATE SET v = excluded.v;";
      sql += "DELETE FROM t WHERE id = " + id() + ";";
      Sql(nodes[i], sql + "COMMIT;");
    }
    std::vector<size_t> order{0, 1, 2};
    std::shuffle(order.begin(), order.end(), random);
    for (size_t i : order) {
      ExpectSynced(hub->Sync(nodes[i], token),
                   "round " + std::to_string(round) + ", " + nodes[i].filename().string());
    }
  }
  for (size_t i : {0, 1, 2, 0, 1}) ExpectSynced(hub->Sync(nodes[i], token), "final");
  const std::string hub_rows = Dump(hub->db());
  EXPECT_NE(hub_rows, "");
  for (const auto& node : nodes) EXPECT_EQ(Dump(node), hub_rows) << node.filename();
}

TEST(NetworkSyncTest, PlaintextWorksOnLoopback) {
  auto hub = StartHub(/*plaintext=*/true);
  ASSERT_NE(hub, nullptr);
  EXPECT_EQ(hub->fingerprint(), "");
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  Sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one');");
  ExpectSynced(hub->Sync(a, token), "a");
  ExpectSynced(hub->Sync(b, token), "b");
  Sql(b, "INSERT INTO t VALUES (2, 'two');");
  ExpectSynced(hub->Sync(b, token), "b, insert");
  ExpectSynced(hub->Sync(a, token), "a, catching up");
  EXPECT_EQ(Dump(a), "1|one\n2|two\n");
  EXPECT_EQ(Dump(b), "1|one\n2|two\n");
  EXPECT_EQ(Dump(hub->db()), "1|one\n2|two\n");
  EXPECT_TRUE(hub->WaitForLog("ended: ok", 4, kLogLimit)) << hub->Log();
}

TEST(NetworkSyncTest, PlaintextDialToATlsHubFailsWithOneLineAndTheHubKeepsServing) {
  auto hub = StartHub();
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  Sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one');");
  const ProcessResult plain =
      RunWithin({LockstepBinary(), "sync", a.string(), hub->url(), "--token", token, "--plaintext"},
                kCommandLimit);
  ExpectOneLineError(plain, "lockstep: ");
  EXPECT_NE(plain.exit_code, -SIGKILL) << "the dialer hung";
  std::cout << "--plaintext to a TLS hub: exit " << plain.exit_code << ", " << plain.err;

  ExpectSynced(hub->Sync(a, token), "a, over TLS after the plaintext attempt");
  EXPECT_EQ(Dump(hub->db()), "1|one\n");
  EXPECT_TRUE(hub->Running());
}

// --- Tokens and trust -------------------------------------------------------------------------

TEST(NetworkAuthTest, UnknownTokenIsRefusedAndNeverLogged) {
  auto hub = StartHub();
  ASSERT_NE(hub, nullptr);
  (void)hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  Sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one');");
  const std::string bogus = "lst_bogus_3f9c1a7e5d2b4c6a8e0f";
  const ProcessResult result = hub->Sync(a, bogus);
  EXPECT_EQ(result.exit_code, 2);
  ExpectOneLineError(result, "unknown token");
  EXPECT_EQ(result.err.find(bogus), std::string::npos) << result.err;
  ASSERT_TRUE(hub->WaitForLog("ended:", 1, kLogLimit)) << hub->Log();
  EXPECT_EQ(hub->Log().find(bogus), std::string::npos) << hub->Log();
  EXPECT_EQ(Sql(hub->db(), "SELECT count(*) FROM sqlite_master WHERE name = 't';"), "0\n");
}

TEST(NetworkAuthTest, TokenForOneCollectionCannotSyncAnother) {
  auto hub = StartHub();
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("x", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  Sql(a,
      "CREATE TABLE x(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO x VALUES (1, 'x1');"
      "CREATE TABLE y(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO y VALUES (1, 'y1');");
  const ProcessResult denied = hub->Sync(a, token, {"--tables", "y"});
  EXPECT_EQ(denied.exit_code, 2);
  ExpectOneLineError(denied, "collection 'y'");
  ASSERT_TRUE(hub->WaitForLog("permission_denied", 1, kLogLimit)) << hub->Log();

  ExpectSynced(hub->Sync(a, token, {"--tables", "x"}), "x, which the token covers");
  EXPECT_EQ(Dump(hub->db(), "x"), "1|x1\n");
  EXPECT_EQ(Sql(hub->db(), "SELECT count(*) FROM sqlite_master WHERE name = 'y';"), "0\n");
  EXPECT_EQ(hub->Log().find(token), std::string::npos) << "a valid token was logged";
}

TEST(NetworkAuthTest, ReadOnlyTokenPullsButItsWritesNeverReachTheHub) {
  auto hub = StartHub();
  ASSERT_NE(hub, nullptr);
  const std::string writer_token = hub->CreateToken("*", "rw");
  const std::string reader_token = hub->CreateToken("t", "r");
  ScratchDir dir;
  const auto writer = dir / "writer.db";
  const auto reader = dir / "reader.db";
  Sql(writer,
      "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'w1'), (2, 'w2');");
  ExpectSynced(hub->Sync(writer, writer_token), "writer");

  ExpectSynced(hub->Sync(reader, reader_token), "reader, first pull");
  EXPECT_EQ(Dump(reader), "1|w1\n2|w2\n");

  Sql(reader, "INSERT INTO t VALUES (99, 'r99'); UPDATE t SET v = 'r1' WHERE id = 1;");
  Sql(writer, "UPDATE t SET v = 'w2b' WHERE id = 2;");
  ExpectSynced(hub->Sync(writer, writer_token), "writer, update");
  ExpectSynced(hub->Sync(reader, reader_token), "reader, with local writes");
  EXPECT_EQ(Dump(hub->db()), "1|w1\n2|w2b\n");
  EXPECT_EQ(Dump(reader), "1|r1\n2|w2b\n99|r99\n") << "the reader's pull";

  const ProcessResult push = hub->Sync(reader, reader_token, {"--direction", "push"});
  EXPECT_EQ(push.exit_code, 2);
  ExpectOneLineError(push, "read-only");

  ExpectSynced(hub->Sync(writer, writer_token), "writer, again");
  EXPECT_EQ(Dump(hub->db()), "1|w1\n2|w2b\n");
  EXPECT_EQ(Dump(writer), "1|w1\n2|w2b\n");
}

TEST(NetworkAuthTest, WrongFingerprintOrNoTrustIsRefusedWithOneLine) {
  auto hub = StartHub();
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const auto a = dir / "a.db";
  Sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one');");
  const std::string wrong = "SHA256:" + std::string(64, '0');
  const ProcessResult mismatch = RunWithin(
      {LockstepBinary(), "sync", a.string(), hub->url(), "--token", token, "--trust", wrong},
      kCommandLimit);
  EXPECT_EQ(mismatch.exit_code, 2);
  ExpectOneLineError(mismatch, "fingerprint");

  const ProcessResult no_trust = RunWithin(
      {LockstepBinary(), "sync", a.string(), hub->url(), "--token", token}, kCommandLimit);
  EXPECT_EQ(no_trust.exit_code, 2);
  ExpectOneLineError(no_trust, "--trust");

  EXPECT_EQ(Sql(hub->db(), "SELECT count(*) FROM sqlite_master WHERE name = 't';"), "0\n");
  ExpectSynced(hub->Sync(a, token), "with the right fingerprint");
  EXPECT_EQ(Dump(hub->db()), "1|one\n");
}

TEST(NetworkAuthTest, PlaintextToANonLoopbackHostIsRefusedBeforeDialing) {
  ScratchDir dir;
  const auto a = dir / "a.db";
  Sql(a, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);");
  const auto started = std::chrono::steady_clock::now();
  // 10.0.0.1:1 is never reached: the check comes first (a dial would take its connect timeout).
  const ProcessResult result = RunWithin({LockstepBinary(), "sync", a.string(),
                                          "lockstep://10.0.0.1:1", "--token", "t", "--plaintext"},
                                         kCommandLimit);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.exit_code, 2);
  ExpectOneLineError(result, "loopback");
  EXPECT_LT(took, seconds(5));
}

}  // namespace
}  // namespace lockstep::integration
