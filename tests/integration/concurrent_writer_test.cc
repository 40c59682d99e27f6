// Concurrency tests with real processes: a user's program (the sqlite3 CLI) keeps writing to a
// database, one small transaction after another, while `lockstep sync` runs over and over. The
// writer must never see "database is locked", and every one of its writes must reach the peer.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/process.h"

namespace lockstep::integration {
namespace {

using lockstep::testing::LockstepBinary;
using lockstep::testing::Poll;
using lockstep::testing::ProcessResult;
using lockstep::testing::ReadFile;
using lockstep::testing::ScratchDir;
using lockstep::testing::SpawnWithFiles;
using lockstep::testing::Sql;
using lockstep::testing::WaitWithin;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int64_t kInitialRows = 5'000;       // ids 1..kInitialRows, v = 0
constexpr int64_t kWrites = 20'000;           // single-row transactions by the writer
constexpr int64_t kInsertedBase = 1'000'000;  // the writer inserts ids kInsertedBase + 1..kWrites
constexpr auto kWriterLimit = std::chrono::seconds(150);
constexpr auto kSyncLimit = std::chrono::seconds(60);
constexpr int kMinOverlappingSyncs = 3;
// The writer pauses 5 ms after every kBurst transactions. SQLite's busy handler polls at growing
// intervals, so a program committing back to back with no pause at all keeps every other writer
// out until it stops (a sync then just waits); real programs pause, and the pauses let the syncs
// interleave with the writes, which is what this test is about.
constexpr int64_t kBurst = 20;
constexpr std::string_view kPause = ".shell sleep 0.005\n";

// `lockstep sync a b`, bounded in time, its output in files beside `a`.
ProcessResult SyncWithin(const std::filesystem::path& a, const std::filesystem::path& b) {
  const auto out = a.parent_path() / "sync.out";
  const auto err = a.parent_path() / "sync.err";
  const pid_t pid =
      SpawnWithFiles({LockstepBinary(), "sync", a.string(), b.string()}, "/dev/null", out, err);
  ProcessResult result;
  if (pid < 0) {
    result.err = "could not start lockstep";
    return result;
  }
  const std::optional<int> code = WaitWithin(pid, kSyncLimit);
  result.exit_code = code.value_or(-SIGKILL);
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  if (!code.has_value()) result.err += "\n(killed: still running after the time limit)";
  return result;
}

// Runs the sqlite3 CLI on `db` with `script` on its stdin, the way a user's program would write:
// one autocommit transaction per statement, waiting up to 10 s for a lock like Sql() does. While
// it runs, syncs `db` with `peer` again and again. Returns the writer's stderr.
std::string WriteWhileSyncing(const ScratchDir& dir, const std::filesystem::path& db,
                              const std::filesystem::path& peer, const std::string& script) {
  const auto script_path = dir / "writer.sql";
  const auto writer_err = dir / "writer.err";
  std::ofstream(script_path) << script;
  const auto started = SteadyClock::now();
  const pid_t writer = SpawnWithFiles({"sqlite3", "-cmd", ".timeout 10000", db.string()},
                                      script_path, "/dev/null", writer_err);
  EXPECT_GT(writer, 0);
  if (writer < 0) return "could not start sqlite3";

  int syncs = 0;
  int overlapping = 0;  // syncs that both started and ended while the writer was writing
  std::optional<int> writer_code = Poll(writer);
  while (!writer_code.has_value()) {
    if (SteadyClock::now() - started > kWriterLimit) {
      ADD_FAILURE() << "the writer did not finish within " << kWriterLimit.count() << " s";
      kill(writer, SIGKILL);
      writer_code = lockstep::testing::Wait(writer);
      break;
    }
    const ProcessResult sync = SyncWithin(db, peer);
    ++syncs;
    EXPECT_EQ(sync.exit_code, 0) << "sync " << syncs
                                 << " failed while the writer ran\nstdout: " << sync.out
                                 << "\nstderr: " << sync.err;
    if (sync.exit_code != 0) {
      kill(writer, SIGKILL);
      writer_code = lockstep::testing::Wait(writer);
      break;
    }
    writer_code = Poll(writer);  // once reaped, a pid cannot be polled again
    if (!writer_code.has_value()) ++overlapping;
  }
  const auto elapsed =
      std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started).count();
  std::cout << "writer: " << kWrites << " transactions in " << elapsed << " ms; " << syncs
            << " syncs, " << overlapping << " wholly while it wrote\n";
  EXPECT_EQ(writer_code, 0) << "sqlite3 writer exit";
  EXPECT_GE(overlapping, kMinOverlappingSyncs);
  return ReadFile(writer_err);
}

std::string CreateTable(const std::filesystem::path& db) {
  return Sql(db,
             "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);"
             "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < " +
                 std::to_string(kInitialRows) + ") INSERT INTO t SELECT x, 0 FROM s;");
}

// "count|sum(id)|sum(v)" of table t.
std::string Totals(const std::filesystem::path& db) {
  return Sql(db, "SELECT count(*), sum(id), sum(v) FROM t;");
}

void ExpectInStep(const std::filesystem::path& a, const std::filesystem::path& b) {
  const ProcessResult final_sync = SyncWithin(a, b);
  ASSERT_EQ(final_sync.exit_code, 0) << final_sync.out << final_sync.err;
  EXPECT_EQ(Totals(b), Totals(a));
  const std::string dump = "SELECT id, v FROM t ORDER BY id;";
  EXPECT_TRUE(Sql(a, dump) == Sql(b, dump)) << "rows of a.db and b.db differ";
  for (const auto& db : {a, b}) EXPECT_EQ(Sql(db, "PRAGMA integrity_check;"), "ok\n") << db;
  const ProcessResult again = SyncWithin(a, b);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("nothing to sync"), std::string::npos) << again.out;
}

TEST(ConcurrentWriterTest, InsertingWriterSeesNoLockErrorAndEveryRowReachesThePeer) {
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  CreateTable(a);
  // The first sync, which installs the triggers and stamps every row, runs while the writer
  // writes. a.db is in WAL mode already: in rollback-journal mode a writer committing back to
  // back starves every reader (SQLite's locking), so lockstep could not even open it.
  Sql(a, "PRAGMA journal_mode = WAL;");
  std::string script;
  for (int64_t i = 1; i <= kWrites; ++i) {
    script += "INSERT INTO t VALUES(" + std::to_string(kInsertedBase + i) + ", " +
              std::to_string(i) + ");\n";
    if (i % kBurst == 0) script += kPause;
  }
  const std::string writer_errors = WriteWhileSyncing(dir, a, b, script);
  EXPECT_EQ(writer_errors, "") << "the writer saw errors";

  const int64_t ids =
      kInitialRows * (kInitialRows + 1) / 2 + kInsertedBase * kWrites + kWrites * (kWrites + 1) / 2;
  const int64_t values = kWrites * (kWrites + 1) / 2;
  const std::string expected = std::to_string(kInitialRows + kWrites) + "|" + std::to_string(ids) +
                               "|" + std::to_string(values) + "\n";
  EXPECT_EQ(Totals(a), expected);
  ExpectInStep(a, b);
  EXPECT_EQ(Totals(b), expected);
}

TEST(ConcurrentWriterTest, UpdatingWriterSeesNoLockErrorAndEveryUpdateReachesThePeer) {
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  CreateTable(a);
  ASSERT_EQ(SyncWithin(a, b).exit_code, 0);
  // Each row is incremented kWrites / kInitialRows times, a row at a time, round-robin.
  std::string script;
  for (int64_t i = 0; i < kWrites; ++i) {
    script += "UPDATE t SET v = v + 1 WHERE id = " + std::to_string(1 + i % kInitialRows) + ";\n";
    if (i % kBurst == kBurst - 1) script += kPause;
  }
  const std::string writer_errors = WriteWhileSyncing(dir, a, b, script);
  EXPECT_EQ(writer_errors, "") << "the writer saw errors";

  const int64_t per_row = kWrites / kInitialRows;
  const std::string expected = std::to_string(kInitialRows) + "|" +
                               std::to_string(kInitialRows * (kInitialRows + 1) / 2) + "|" +
                               std::to_string(kWrites) + "\n";
  EXPECT_EQ(Totals(a), expected);
  EXPECT_EQ(Sql(a, "SELECT count(*) FROM t WHERE v != " + std::to_string(per_row) + ";"), "0\n");
  ExpectInStep(a, b);
  EXPECT_EQ(Sql(b, "SELECT count(*) FROM t WHERE v != " + std::to_string(per_row) + ";"), "0\n");
}

}  // namespace
}  // namespace lockstep::integration
