// Issue 5 end to end, on the store side: `lockstep verify`, a database restored from an older copy
// of its file, tombstones collected after the retention, `lockstep reset`, and pairs of 100k-row
// databases that differ in d records. The real lockstep binary and the real sqlite3 CLI.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support/process.h"

namespace lockstep::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kSchema[] = "CREATE TABLE t(pk INTEGER PRIMARY KEY, a, b);";
constexpr int64_t kDayMs = 86'400'000;

std::string Dump(const fs::path& db) { return Sql(db, "SELECT * FROM t ORDER BY pk;"); }

std::string Bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

ProcessResult Sync(const fs::path& a, const fs::path& b, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"sync", a.string(), b.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return Lockstep(args);
}

void SyncOk(const fs::path& a, const fs::path& b) {
  ProcessResult result = Sync(a, b);
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

ProcessResult Verify(const fs::path& a, const fs::path& b) {
  return Lockstep({"verify", a.string(), b.string()});
}

// Two databases holding `t` with rows 1..rows, attached and in step.
struct SyncedPair {
  ScratchDir dir;
  fs::path a = dir / "a.db";
  fs::path b = dir / "b.db";

  explicit SyncedPair(int rows) {
    Sql(a, std::string(kSchema) +
               "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
               std::to_string(rows) + ") INSERT INTO t SELECT i, 'a' || i, 'b' || i FROM n;");
    SyncOk(a, b);
  }
};

// ---- verify ----------------------------------------------------------------------------------

TEST(VerifyTest, EqualDatabasesExitZeroAndStayByteForByteUnchanged) {
  SyncedPair dbs(20);
  const std::string a_before = Bytes(dbs.a);
  const std::string b_before = Bytes(dbs.b);
  ProcessResult result = Verify(dbs.a, dbs.b);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("t: equal (20 records)"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("are equal"), std::string::npos) << result.out;
  EXPECT_EQ(Bytes(dbs.a), a_before);
  EXPECT_EQ(Bytes(dbs.b), b_before);
  EXPECT_FALSE(fs::exists(dbs.a.string() + "-wal") && fs::file_size(dbs.a.string() + "-wal") > 0);
}

TEST(VerifyTest, ListsEachDifferingKeyAndExitsOne) {
  SyncedPair dbs(5);
  // c takes a's later changes; b does not: a and b then differ in their stores.
  const fs::path c = dbs.dir / "c.db";
  SyncOk(dbs.a, c);
  Sql(dbs.a,
      "UPDATE t SET a = 'changed' WHERE pk = 2; DELETE FROM t WHERE pk = 3;"
      "INSERT INTO t VALUES (9, 'new', 'x');");
  SyncOk(dbs.a, c);
  Sql(dbs.b, "INSERT INTO t VALUES (77, 'b only', 'x');");
  SyncOk(dbs.b, dbs.dir / "d.db");  // stamps b's insert without telling a

  const std::string a_before = Bytes(dbs.a);
  ProcessResult result = Verify(dbs.a, dbs.b);
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.out.find("t: 4 keys differ"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("  2  differs"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("  3  differs"), std::string::npos) << result.out;  // a tombstone
  EXPECT_NE(result.out.find("  9  only in " + dbs.a.string()), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("  77  only in " + dbs.b.string()), std::string::npos) << result.out;
  EXPECT_EQ(Bytes(dbs.a), a_before);
  EXPECT_EQ(Verify(dbs.a, c).exit_code, 0);
}

TEST(VerifyTest, RowsChangedSinceTheLastSyncCountAsDifferences) {
  SyncedPair dbs(3);
  Sql(dbs.b, "UPDATE t SET a = 'edited' WHERE pk = 1;");
  ProcessResult result = Verify(dbs.a, dbs.b);
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.out.find("  1  changed in " + dbs.b.string() + " since its last sync"),
            std::string::npos)
      << result.out;
  // Verify stamped nothing: the sync still finds the edit.
  SyncOk(dbs.a, dbs.b);
  EXPECT_EQ(Sql(dbs.a, "SELECT a FROM t WHERE pk = 1;"), "edited\n");
  EXPECT_EQ(Verify(dbs.a, dbs.b).exit_code, 0);
}

TEST(VerifyTest, BadInputExitsTwoWithOneLine) {
  SyncedPair dbs(1);
  const fs::path plain = dbs.dir / "plain.db";
  Sql(plain, kSchema);
  ProcessResult never = Verify(dbs.a, plain);
  EXPECT_EQ(never.exit_code, 2);
  EXPECT_EQ(never.err,
            "lockstep: " + plain.string() + " has no lockstep metadata: it was never synced\n");
  EXPECT_FALSE(Sql(plain, ".tables").find("_lockstep") != std::string::npos);
  EXPECT_EQ(Verify(dbs.a, dbs.dir / "missing.db").exit_code, 2);
  EXPECT_FALSE(fs::exists(dbs.dir / "missing.db"));
  EXPECT_EQ(Verify(dbs.a, dbs.a).exit_code, 2);
  EXPECT_EQ(Lockstep({"verify", dbs.a.string()}).exit_code, 2);
}

// ---- a database restored from an older copy of its file --------------------------------------

TEST(RestoreTest, RestoredCopyConvergesWithoutResurrectingOrLosingWrites) {
  SyncedPair dbs(10);
  const fs::path backup = dbs.dir / "a-backup.db";
  fs::copy_file(dbs.a, backup);
  const std::string old_epoch =
      Sql(dbs.a, "SELECT value FROM _lockstep_meta WHERE name = 'epoch';");

  // After the backup: a deletes, updates and inserts, and so does b; both sync.
  Sql(dbs.a,
      "DELETE FROM t WHERE pk = 1; UPDATE t SET a = 'before restore' WHERE pk = 4;"
      "INSERT INTO t VALUES (100, 'a100', 'b100');");
  SyncOk(dbs.a, dbs.b);
  Sql(dbs.b, "DELETE FROM t WHERE pk = 3; UPDATE t SET b = 'by b' WHERE pk = 5;");
  SyncOk(dbs.a, dbs.b);

  // a comes back from the backup, and its users write on before the next sync: the same record
  // a changed after the backup (its dots went back: a reused dot would be taken as old news).
  RestoreFile(backup, dbs.a);
  Sql(dbs.a,
      "UPDATE t SET a = 'after restore' WHERE pk = 4; INSERT INTO t VALUES (200, 'n', 'n');");
  SyncOk(dbs.a, dbs.b);

  const std::string expected =
      "2|a2|b2\n4|after restore|b4\n5|a5|by b\n6|a6|b6\n7|a7|b7\n8|a8|b8\n9|a9|b9\n"
      "10|a10|b10\n100|a100|b100\n200|n|n\n";
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Dump(dbs.b), expected);
  EXPECT_NE(Sql(dbs.a, "SELECT value FROM _lockstep_meta WHERE name = 'epoch';"), old_epoch);
  ProcessResult verify = Verify(dbs.a, dbs.b);
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
  // And it stays settled.
  SyncOk(dbs.a, dbs.b);
  EXPECT_EQ(Dump(dbs.b), expected);
}

TEST(RestoreTest, RestoredCopyIsDetectedWhicheverSideIsNamedFirst) {
  SyncedPair dbs(3);
  const fs::path backup = dbs.dir / "b-backup.db";
  fs::copy_file(dbs.b, backup);
  Sql(dbs.b, "UPDATE t SET a = 'x' WHERE pk = 1;");
  SyncOk(dbs.a, dbs.b);
  RestoreFile(backup, dbs.b);
  Sql(dbs.b, "UPDATE t SET a = 'y' WHERE pk = 1;");
  SyncOk(dbs.a, dbs.b);
  EXPECT_EQ(Sql(dbs.a, "SELECT a FROM t WHERE pk = 1;"), "y\n");
  EXPECT_EQ(Dump(dbs.a), Dump(dbs.b));
  EXPECT_EQ(Verify(dbs.a, dbs.b).exit_code, 0);
}

// ---- retention and reset ---------------------------------------------------------------------

// Makes every tombstone in `db` `days` older, as if its deletes had happened that long ago.
void AgeTombstones(const fs::path& db, int days) {
  Sql(db, "UPDATE _lockstep_records SET deleted_ms = deleted_ms - " +
              std::to_string(days * kDayMs) + " WHERE deleted_ms IS NOT NULL;");
}

TEST(RetentionTest, TombstonesWithinTheRetentionAreKept) {
  SyncedPair dbs(4);
  const fs::path c = dbs.dir / "c.db";
  SyncOk(dbs.a, c);
  Sql(dbs.a, "DELETE FROM t WHERE pk = 2;");
  SyncOk(dbs.a, c);  // b is away
  AgeTombstones(dbs.a, 40);
  ProcessResult result = Sync(dbs.a, dbs.b, {"--retention", "60d"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Dump(dbs.b), "1|a1|b1\n3|a3|b3\n4|a4|b4\n");
  EXPECT_EQ(Sql(dbs.a, "SELECT count(*) FROM _lockstep_records WHERE deleted_ms IS NOT NULL;"),
            "1\n");
  EXPECT_EQ(Sync(dbs.a, dbs.b, {"--retention", "30x"}).exit_code, 2);
}

TEST(RetentionTest, PeerAwayBeyondTheRetentionIsRefusedThenResetKeepsItsEdits) {
  SyncedPair dbs(6);
  const fs::path c = dbs.dir / "c.db";
  SyncOk(dbs.a, c);
  // While b is away: a deletes row 2 (and c learns it); b edits on its own.
  Sql(dbs.a, "DELETE FROM t WHERE pk = 2; UPDATE t SET a = 'by a' WHERE pk = 1;");
  SyncOk(dbs.a, c);
  Sql(dbs.b,
      "UPDATE t SET b = 'by b' WHERE pk = 3; INSERT INTO t VALUES (50, 'b50', 'b50');"
      "DELETE FROM t WHERE pk = 4;");
  AgeTombstones(dbs.a, 40);

  ProcessResult refused = Sync(dbs.a, dbs.b);
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_EQ(refused.err.find("lockstep: reset required: " + dbs.b.string() +
                             " has not synced with " + dbs.a.string() + " since "),
            0U)
      << refused.err;
  EXPECT_NE(refused.err.find("beyond the retention of 30 days; run `lockstep reset " +
                             dbs.b.string() + " " + dbs.a.string() + "`\n"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1);
  // Nothing moved: b still has the row a deleted, a has none of b's edits.
  EXPECT_EQ(Sql(dbs.b, "SELECT count(*) FROM t WHERE pk = 2;"), "1\n");
  EXPECT_EQ(Sql(dbs.a, "SELECT count(*) FROM t WHERE pk = 50;"), "0\n");
  EXPECT_EQ(Sync(dbs.b, dbs.a).exit_code, 2);  // whichever is named first

  ProcessResult reset = Lockstep({"reset", dbs.b.string(), dbs.a.string()});
  ASSERT_EQ(reset.exit_code, 0) << reset.err << reset.out;
  EXPECT_NE(reset.out.find("kept 2 unsynced writes and 1 unsynced delete"), std::string::npos)
      << reset.out;
  const std::string expected = "1|by a|b1\n3|a3|by b\n5|a5|b5\n6|a6|b6\n50|b50|b50\n";
  EXPECT_EQ(Dump(dbs.b), expected);
  EXPECT_EQ(Dump(dbs.a), expected);
  EXPECT_EQ(Verify(dbs.a, dbs.b).exit_code, 0);
  // From now on they sync as usual, and c catches up too.
  SyncOk(dbs.a, dbs.b);
  SyncOk(dbs.a, c);
  EXPECT_EQ(Dump(c), expected);
}

TEST(ResetTest, RefusesWhatItCannotReset) {
  SyncedPair dbs(1);
  const fs::path plain = dbs.dir / "plain.db";
  Sql(plain, kSchema);
  EXPECT_EQ(Lockstep({"reset", plain.string(), dbs.a.string()}).exit_code, 2);
  EXPECT_EQ(Lockstep({"reset", dbs.a.string(), plain.string()}).exit_code, 2);
  EXPECT_EQ(Lockstep({"reset", dbs.a.string(), dbs.a.string()}).exit_code, 2);
  EXPECT_EQ(Lockstep({"reset", dbs.a.string(), "lockstep://127.0.0.1:1"}).exit_code, 2);
}

// A reset killed with SIGKILL at points spread over its run, then run again to completion, ends
// where an uninterrupted one does: the unsynced deletes it keeps stay deleted even when the kill
// fell between the rebuild and the deletes (which are owed in `_lockstep_pending_deletes` then),
// and even when a plain sync ran in between.
TEST(ResetTest, AResetKilledAtAnyPointFinishesWhenRunAgain) {
  constexpr int kRows = 20'000;
  constexpr int kMaxAttempts = 16;
  constexpr int kWantedKillsWhileOwed = 2;
  constexpr auto kResetLimit = std::chrono::seconds(120);
  SyncedPair dbs(kRows);
  const fs::path c = dbs.dir / "c.db";
  SyncOk(dbs.a, c);
  // While b is away beyond the retention: a deletes row 2, b deletes rows 4 and 7 and edits.
  Sql(dbs.a, "DELETE FROM t WHERE pk = 2;");
  SyncOk(dbs.a, c);
  Sql(dbs.b,
      "DELETE FROM t WHERE pk IN (4, 7); UPDATE t SET a = 'by b' WHERE pk = 3;"
      "INSERT INTO t VALUES (50000, 'b', 'b');");
  AgeTombstones(dbs.a, 40);
  ASSERT_EQ(Sync(dbs.a, dbs.b).exit_code, 2);

  auto copy_pair = [&](const fs::path& to) {
    fs::create_directories(to);
    fs::copy_file(dbs.a, to / "a.db", fs::copy_options::overwrite_existing);
    fs::copy_file(dbs.b, to / "b.db", fs::copy_options::overwrite_existing);
  };
  auto reset = [&](const fs::path& dir) {
    return RunWithin({LockstepBinary(), "reset", (dir / "b.db").string(), (dir / "a.db").string()},
                     kResetLimit);
  };

  // Uninterrupted, for the expected contents and the run's length.
  const fs::path whole = dbs.dir / "whole";
  copy_pair(whole);
  const auto started = std::chrono::steady_clock::now();
  ProcessResult uninterrupted = reset(whole);
  const auto length = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(uninterrupted.exit_code, 0) << uninterrupted.err;
  const std::string expected = Dump(whole / "a.db");
  ASSERT_EQ(Dump(whole / "b.db"), expected);
  ASSERT_EQ(Sql(whole / "b.db", "SELECT count(*) FROM t WHERE pk IN (2, 4, 7);"), "0\n");
  ASSERT_EQ(Sql(whole / "b.db", "SELECT a FROM t WHERE pk IN (3, 50000) ORDER BY pk;"),
            "by b\nb\n");

  int kills_while_owed = 0;
  for (int attempt = 0; attempt < kMaxAttempts && kills_while_owed < kWantedKillsWhileOwed;
       ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    const fs::path dir = dbs.dir / ("killed" + std::to_string(attempt));
    copy_pair(dir);
    // Spread over the run, most of them in its second half, where the first sync runs.
    const auto delay = length * (4 + attempt % 8) / 12;
    ProcessGuard killed;
    ASSERT_TRUE(killed.Start(
        Spawn({LockstepBinary(), "reset", (dir / "b.db").string(), (dir / "a.db").string()})));
    std::this_thread::sleep_for(delay);
    killed.Kill();
    const bool owed =
        Sql(dir / "b.db",
            "SELECT count(*) FROM sqlite_master WHERE name = '_lockstep_pending_deletes';") ==
        "1\n";
    kills_while_owed += owed ? 1 : 0;
    if (owed) {
      // A plain sync in between warns, and neither makes the owed deletes nor forgets them.
      ProcessResult plain = Sync(dir / "b.db", dir / "a.db");
      ASSERT_EQ(plain.exit_code, 0) << plain.err;
      EXPECT_NE(plain.err.find("lockstep: warning: " + (dir / "b.db").string() +
                               " still owes 2 deletes of a `lockstep reset` that was stopped"),
                std::string::npos)
          << plain.err;
    }
    ProcessResult again = reset(dir);
    ASSERT_EQ(again.exit_code, 0) << again.err << again.out;
    if (owed) {
      EXPECT_NE(again.out.find("finished the reset of"), std::string::npos) << again.out;
    }
    EXPECT_EQ(Dump(dir / "b.db"), expected);
    EXPECT_EQ(Dump(dir / "a.db"), expected);
    EXPECT_EQ(Verify(dir / "a.db", dir / "b.db").exit_code, 0);
    EXPECT_EQ(Sql(dir / "b.db",
                  "SELECT count(*) FROM sqlite_master WHERE name = '_lockstep_pending_deletes';"),
              "0\n");
  }
  // Otherwise the test never saw the window it is about.
  EXPECT_GE(kills_while_owed, 1);
  std::cout << kills_while_owed << " of the kills fell while deletes were owed\n";
}

// ---- 100k records differing in d -------------------------------------------------------------

// Two copies of one synced 100k-row pair made to differ in d records, synced once, must verify
// equal and hold the same rows.
void ExpectEqualAfterOneSync(const SyncedPair& base, int d) {
  SCOPED_TRACE("d = " + std::to_string(d));
  ScratchDir dir;
  const fs::path a = dir / "a.db";
  const fs::path b = dir / "b.db";
  fs::copy_file(base.a, a);
  fs::copy_file(base.b, b);
  // d changes, spread over inserts, updates and deletes on either side, at random rows.
  const int per = d / 6;
  const int rest = d - 5 * per;
  auto edits = [](int inserts, int updates, int deletes, int64_t first_new, const char* tag) {
    const std::string t(tag);
    return "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < " +
           std::to_string(inserts) + " - 1) INSERT INTO t SELECT " + std::to_string(first_new) +
           " + i, 'new " + t + "', i FROM n WHERE " + std::to_string(inserts) +
           " > 0; UPDATE t SET a = 'updated " + t +
           "' WHERE pk IN (SELECT pk FROM t WHERE pk <= 100000 ORDER BY random() LIMIT " +
           std::to_string(updates) +
           "); DELETE FROM t WHERE pk IN (SELECT pk FROM t WHERE pk <= "
           "100000 ORDER BY random() LIMIT " +
           std::to_string(deletes) + ");";
  };
  Sql(a, edits(per, per, per, 200'000, "a"));
  Sql(b, edits(per, per, rest, 300'000, "b"));
  if (d > 0) {
    ProcessResult before = Verify(a, b);
    EXPECT_EQ(before.exit_code, 1);
  }
  SyncOk(a, b);
  ProcessResult verify = Verify(a, b);
  EXPECT_EQ(verify.exit_code, 0) << verify.out.substr(0, 2000);
  EXPECT_NE(verify.out.find("are equal"), std::string::npos);
  EXPECT_EQ(Sql(a, "SELECT count(*), sum(pk), total(length(a)) FROM t;"),
            Sql(b, "SELECT count(*), sum(pk), total(length(a)) FROM t;"));
  EXPECT_EQ(Dump(a), Dump(b));
}

// One test for every d, so that the 100k-row pair (its first sync takes most of the time) is
// made once.
TEST(DifferingPairTest, HundredThousandRecordsDifferingInDEndEqual) {
  const SyncedPair base(100'000);
  for (int d : {0, 1, 100, 10'000}) ExpectEqualAfterOneSync(base, d);
}

}  // namespace
}  // namespace lockstep::testing
