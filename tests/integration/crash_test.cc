// Crash tests with real processes: a large two-way `lockstep sync` is killed with SIGKILL at many
// points while users keep editing both databases between the kills. Once a sync finally runs to
// completion, both databases must hold exactly the rows the edits imply: none lost, none
// duplicated, every value the one the edits and last-writer-wins call for.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/process.h"

namespace lockstep::integration {
namespace {

using lockstep::testing::LockstepBinary;
using lockstep::testing::ProcessResult;
using lockstep::testing::RunWithin;
using lockstep::testing::ScratchDir;
using lockstep::testing::Spawn;
using lockstep::testing::Sql;
using lockstep::testing::WaitWithin;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Row ids name their owner, so that every row has one writer and its final value is certain;
// the contested rows alone are written by both sides, far apart in time, for lww to decide.
constexpr int64_t kRowsInA = 20'000;  // ids 1..kRowsInA
constexpr int64_t kRowsInB = 2'000;   // ids kBBase + 1..kBBase + kRowsInB
constexpr int64_t kBBase = 1'000'000;
constexpr int64_t kNewInA = 500'000;           // rows inserted later in A
constexpr int64_t kNewInB = 1'500'000;         // rows inserted later in B
constexpr int64_t kContestedBase = 2'000'000;  // ids kContestedBase + 1..+ kContested
constexpr int64_t kContested = 300;
// Kills go on until kWantedMidRunKills landed while the sync ran, or kMaxAttempts were made.
constexpr int kWantedMidRunKills = 24;
constexpr int kMaxAttempts = 40;
constexpr int kMinMidRunKills = 20;
constexpr auto kSyncLimit = std::chrono::seconds(90);

enum class Side { kA, kB };

const char* Name(Side side) { return side == Side::kA ? "a" : "b"; }

// `lockstep sync a b` to completion, bounded in time; fails the test unless it exits 0.
ProcessResult SyncToCompletion(const std::filesystem::path& a, const std::filesystem::path& b) {
  ProcessResult result = RunWithin({LockstepBinary(), "sync", a.string(), b.string()}, kSyncLimit);
  EXPECT_EQ(result.exit_code, 0) << "lockstep sync failed\nstdout: " << result.out
                                 << "\nstderr: " << result.err;
  return result;
}

// The rows that table t must hold in both databases once they are in step, and the edits that
// lead there: each edit is applied to the model and returned as SQL for the sqlite3 CLI.
class Model {
 public:
  explicit Model(uint32_t seed) : random_(seed) {
    for (int64_t id = 1; id <= kRowsInA; ++id) rows_[id] = "a" + std::to_string(id);
    for (int64_t id = kBBase + 1; id <= kBBase + kRowsInB; ++id)
      rows_[id] = "b" + std::to_string(id);
    for (int64_t id = kContestedBase + 1; id <= kContestedBase + kContested; ++id) rows_[id] = "c0";
  }

  const std::map<int64_t, std::string>& rows() const { return rows_; }

  // The starting contents of each database, written as one INSERT of a generated series.
  static std::string InitialSql(Side side) {
    std::string sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);";
    const bool a = side == Side::kA;
    const int64_t first = a ? 1 : kBBase + 1;
    const int64_t last = a ? kRowsInA : kBBase + kRowsInB;
    sql += "WITH RECURSIVE s(x) AS (SELECT " + std::to_string(first) +
           " UNION ALL SELECT x + 1 FROM s WHERE x < " + std::to_string(last) +
           ") INSERT INTO t SELECT x, '" + Name(side) + "' || x FROM s;";
    sql += "WITH RECURSIVE s(x) AS (SELECT " + std::to_string(kContestedBase + 1) +
           " UNION ALL SELECT x + 1 FROM s WHERE x < " +
           std::to_string(kContestedBase + kContested) + ") INSERT INTO t SELECT x, 'c0' FROM s;";
    return sql;
  }

  // Updates, deletes, inserts and re-inserts of rows `side` owns, in one transaction. A `bulk`
  // round rewrites a long run of rows, so that the next sync has plenty to move again.
  std::string OwnEdits(Side side, int round, bool bulk) {
    const bool a = side == Side::kA;
    const int64_t base = a ? 0 : kBBase;
    const int64_t count = a ? kRowsInA : kRowsInB;
    const std::string tag = std::string(Name(side)) + "' || id || '.r" + std::to_string(round);
    std::string sql = "BEGIN;";

    const int64_t length = a ? (bulk ? 8'000 : 2'000) : (bulk ? 1'000 : 200);
    const int64_t lo = base + 1 + Uniform(0, count - length);
    const int64_t hi = lo + length - 1;
    sql += "UPDATE t SET v = '" + tag + "' WHERE id BETWEEN " + std::to_string(lo) + " AND " +
           std::to_string(hi) + ";";
    for (auto it = rows_.lower_bound(lo); it != rows_.end() && it->first <= hi; ++it) {
      it->second =
          std::string(Name(side)) + std::to_string(it->first) + ".r" + std::to_string(round);
    }

    std::vector<std::pair<int64_t, int>>& deleted = a ? deleted_a_ : deleted_b_;
    std::string ids;
    for (int i = 0; i < 25; ++i) {
      const int64_t id = base + 1 + Uniform(0, count - 1);
      if (rows_.erase(id) == 0) continue;
      deleted.emplace_back(id, round);
      ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    }
    if (!ids.empty()) sql += "DELETE FROM t WHERE id IN (" + ids + ");";

    // Rows deleted in an earlier round come back: a tombstone must yield to the newer write.
    std::string values;
    auto insert = [&](int64_t id) {
      const std::string value =
          std::string(Name(side)) + "new" + std::to_string(id) + ".r" + std::to_string(round);
      rows_[id] = value;
      values += (values.empty() ? "(" : ", (") + std::to_string(id) + ", '" + value + "')";
    };
    for (int i = 0; i < 10 && !deleted.empty() && deleted.front().second < round; ++i) {
      insert(deleted.front().first);
      deleted.erase(deleted.begin());
    }
    int64_t& next = a ? next_a_ : next_b_;
    for (int i = 0; i < 50; ++i) insert((a ? kNewInA : kNewInB) + ++next);
    sql += "INSERT INTO t VALUES " + values + ";";
    return sql + "COMMIT;";
  }

  // Sets a run of the contested rows on `side`. REQUIRES: the caller leaves time between two
  // contested edits, so that the later one has the later timestamp beyond doubt.
  std::string ContestedEdit(Side side, int round) {
    const int64_t lo = kContestedBase + 1 + Uniform(0, kContested - 100);
    const int64_t hi = lo + 99;
    const std::string value = "c.r" + std::to_string(round) + "." + Name(side);
    for (int64_t id = lo; id <= hi; ++id) rows_[id] = value;
    return "UPDATE t SET v = '" + value + "' WHERE id BETWEEN " + std::to_string(lo) + " AND " +
           std::to_string(hi) + ";";
  }

 private:
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(random_);
  }

  std::mt19937 random_;
  std::map<int64_t, std::string> rows_;
  std::vector<std::pair<int64_t, int>> deleted_a_;  // id, round deleted in; oldest first
  std::vector<std::pair<int64_t, int>> deleted_b_;
  int64_t next_a_ = 0;
  int64_t next_b_ = 0;
};

// Compares table t of `db` with the model, naming the first differences.
void ExpectMatchesModel(const std::filesystem::path& db, const Model& model) {
  const std::string dump = Sql(db, "SELECT id, v FROM t ORDER BY id;");
  std::map<int64_t, std::string> actual;
  size_t duplicates = 0;
  size_t start = 0;
  while (start < dump.size()) {
    size_t end = dump.find('\n', start);
    if (end == std::string::npos) end = dump.size();
    const std::string line = dump.substr(start, end - start);
    start = end + 1;
    const size_t bar = line.find('|');
    if (bar == std::string::npos) continue;
    if (!actual.emplace(std::stoll(line.substr(0, bar)), line.substr(bar + 1)).second) ++duplicates;
  }
  EXPECT_EQ(duplicates, 0u) << db;
  EXPECT_EQ(actual.size(), model.rows().size()) << db;
  int reported = 0;
  for (const auto& [id, value] : model.rows()) {
    auto it = actual.find(id);
    if (it != actual.end() && it->second == value) continue;
    if (++reported > 10) break;
    ADD_FAILURE() << db.filename() << ": row " << id << " should be '" << value << "', is "
                  << (it == actual.end() ? "missing" : "'" + it->second + "'");
  }
  for (const auto& [id, value] : actual) {
    if (model.rows().count(id) > 0) continue;
    if (++reported > 20) break;
    ADD_FAILURE() << db.filename() << ": row " << id << " = '" << value << "' should not exist";
  }
}

TEST(CrashTest, SyncKilledAtManyPointsStillConvergesToTheExpectedRows) {
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  const uint32_t seed = 20240611;
  Model model(seed);
  Sql(a, Model::InitialSql(Side::kA));
  Sql(b, Model::InitialSql(Side::kB));

  // The length of one uninterrupted first sync, on copies, times the first kills.
  ScratchDir calibration;
  std::filesystem::copy_file(a, calibration / "a.db");
  std::filesystem::copy_file(b, calibration / "b.db");
  const auto started = SteadyClock::now();
  SyncToCompletion(calibration / "a.db", calibration / "b.db");
  const auto first_run = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started);
  std::cout << "uninterrupted first sync: " << first_run.count() << " ms\n";

  // Each round rewrites thousands of rows in a.db, so every sync has work of its own. Kill times
  // spread over the expected length of the next run: that of the last run that finished, grown
  // by a fifth for each kill since, as a killed run leaves its work to the next one.
  std::mt19937 random(seed);
  auto estimate = first_run;
  int mid_run = 0;
  int completed = 0;
  std::vector<int64_t> kill_times;
  for (int round = 0; round < kMaxAttempts && mid_run < kWantedMidRunKills; ++round) {
    const double fraction = std::uniform_real_distribution<double>(0.02, 0.95)(random);
    const auto delay = milliseconds(static_cast<int64_t>(fraction * estimate.count()));
    const auto spawned = SteadyClock::now();
    const pid_t pid = Spawn({LockstepBinary(), "sync", a.string(), b.string()});
    ASSERT_GT(pid, 0);
    std::optional<int> code = WaitWithin(pid, delay, /*kill_when_late=*/false);
    if (!code.has_value()) {
      kill(pid, SIGKILL);
      code = WaitWithin(pid, std::chrono::seconds(10), /*kill_when_late=*/true);
      ASSERT_TRUE(code.has_value());
    }
    if (*code == -SIGKILL) {
      ++mid_run;
      kill_times.push_back(delay.count());
      // Killed runs leave their work to the next, which has new edits too: give it longer.
      estimate = estimate * 6 / 5;
    } else {
      ASSERT_EQ(*code, 0) << "a sync that was not killed failed";
      ++completed;
      estimate = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - spawned);
    }

    // Users write between the kills: a.db every round, b.db and the contested rows most rounds.
    const bool bulk = round % 4 == 0;
    Sql(a, model.OwnEdits(Side::kA, round, bulk));
    if (round % 3 != 2) Sql(b, model.OwnEdits(Side::kB, round, bulk));
    if (round % 5 != 4) {
      // One side per round, 50 ms clear of the last change on either side: lww decides for sure.
      std::this_thread::sleep_for(milliseconds(50));
      const Side side = round % 2 == 0 ? Side::kA : Side::kB;
      Sql(side == Side::kA ? a : b, model.ContestedEdit(side, round));
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  std::sort(kill_times.begin(), kill_times.end());
  std::cout << "kills: " << mid_run << " mid-run, " << completed << " syncs finished first; "
            << "mid-run kill times (ms):";
  for (int64_t t : kill_times) std::cout << " " << t;
  std::cout << "\n";
  EXPECT_GE(mid_run, kMinMidRunKills);

  SyncToCompletion(a, b);
  SyncToCompletion(a, b);
  for (const auto& db : {a, b}) {
    EXPECT_EQ(Sql(db, "PRAGMA integrity_check;"), "ok\n") << db;
    ExpectMatchesModel(db, model);
  }
  const ProcessResult last = SyncToCompletion(a, b);
  EXPECT_NE(last.out.find("nothing to sync"), std::string::npos) << last.out;
}

// Regression: captures left for a later sync (by killed syncs, or just a long gap) were stamped in
// key order, and the clock never goes back, so a key stamped after a later write took that
// write's time: here b's older write of row 2 got row 1's later time and beat a's newer write.
TEST(CrashTest, CapturesStampedLateKeepTheTimeOfTheirWrite) {
  ScratchDir dir;
  const auto a = dir / "a.db";
  const auto b = dir / "b.db";
  Sql(a,
      "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'x');");
  SyncToCompletion(a, b);
  Sql(b, "UPDATE t SET v = 'b-older' WHERE id = 2;");
  std::this_thread::sleep_for(milliseconds(50));
  Sql(a, "UPDATE t SET v = 'a-newer' WHERE id = 2;");
  std::this_thread::sleep_for(milliseconds(50));
  Sql(b, "UPDATE t SET v = 'b-newest' WHERE id = 1;");
  SyncToCompletion(a, b);
  for (const auto& db : {a, b}) {
    EXPECT_EQ(Sql(db, "SELECT id, v FROM t ORDER BY id;"), "1|b-newest\n2|a-newer\n") << db;
  }
}

}  // namespace
}  // namespace lockstep::integration
