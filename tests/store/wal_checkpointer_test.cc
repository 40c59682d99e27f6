// Background checkpoints of a writer's WAL (store/wal_checkpointer.h) on real files: the WAL
// stays bounded through large writes, through Lockstep's apply path too; a reader that holds an
// old snapshot breaks nothing and is caught up with once it ends; a checkpointer that cannot run
// reports it once while the writer keeps the WAL bounded itself; a SIGKILL while checkpoints run
// loses no commit. Every database is checked from outside by the real sqlite3 CLI.
#include "store/wal_checkpointer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "connectors/sqlite/sqlite_source.h"
#include "store/replica_store.h"
#include "store/sqlite_db.h"
#include "support/process.h"

namespace lockstep::store {
namespace {

namespace fs = std::filesystem;
using lockstep::testing::ScratchDir;
using lockstep::testing::Sql;

constexpr int64_t kRowsPerCommit = 100;  // of about 2 KB each: about 55 WAL pages a commit
constexpr int64_t kFrameBytes = 4096 + 24;
// Thresholds small enough for a test to pass them many times over.
CheckpointOptions Thresholds(int start_pages, int limit_pages) {
  CheckpointOptions options;
  options.start_pages = start_pages;
  options.limit_pages = limit_pages;
  return options;
}
const CheckpointOptions kSmall = Thresholds(128, 512);

template <typename T>
T Take(Result<T> result) {
  if (!result.has_value()) throw std::runtime_error(result.error().ToString());
  return std::move(*result);
}

void Check(const Status& status) {
  if (!status.ok()) throw std::runtime_error(status.ToString());
}

int64_t FileSize(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

fs::path WalOf(const fs::path& db) { return db.string() + "-wal"; }

SqliteDb OpenWriter(const fs::path& path) {
  SqliteDb db = Take(SqliteDb::Open(path, {.create_if_missing = true}));
  Check(db.Exec("PRAGMA journal_mode = WAL"));
  Check(db.Exec("PRAGMA synchronous = NORMAL"));
  Check(db.Exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"));
  return db;
}

// Row `id`'s value, which the CLI rebuilds in ContentsAsSeenByCli.
std::string ValueOf(int64_t id) {
  return std::string(2000, static_cast<char>('a' + id % 26)) + std::to_string(id);
}

// Rows first..first+count-1 in one transaction.
Status WriteRows(SqliteDb& db, int64_t first, int64_t count) {
  LOCKSTEP_RETURN_IF_ERROR(db.BeginWrite());
  LOCKSTEP_ASSIGN_OR_RETURN(Statement insert, db.Prepare("INSERT INTO t (id, v) VALUES (?, ?)"));
  for (int64_t id = first; id < first + count; ++id) {
    insert.BindInt(1, id);
    insert.BindText(2, ValueOf(id));
    LOCKSTEP_RETURN_IF_ERROR(insert.Step().status());
    insert.Reset();
  }
  return db.Exec("COMMIT");
}

// What the sqlite3 CLI finds in `db`: "ok" from the integrity check, the row count, the number of
// rows whose value is the one written, and the highest id; one per line.
std::string ContentsAsSeenByCli(const fs::path& db) {
  return Sql(db,
             "PRAGMA integrity_check; SELECT count(*) FROM t; SELECT count(*) FROM t WHERE v = "
             "substr(replace(hex(zeroblob(1000)), '0', char(97 + id % 26)), 1, 2000) || id; "
             "SELECT coalesce(max(id), 0) FROM t;");
}

std::string Expected(int64_t rows) {
  const std::string n = std::to_string(rows);
  return "ok\n" + n + "\n" + n + "\n" + n + "\n";
}

TEST(SqliteCheckpointTest, LargeWriteKeepsTheWalBoundedAndTheDatabaseWhole) {
  ScratchDir dir;
  const fs::path path = dir / "big.db";
  constexpr int kCommits = 150;  // about 30 MB of rows
  int64_t largest_wal = 0;
  {
    SqliteDb db = OpenWriter(path);
    Check(db.CheckpointInBackground(kSmall));
    for (int i = 0; i < kCommits; ++i) {
      Check(WriteRows(db, i * kRowsPerCommit + 1, kRowsPerCommit));
      largest_wal = std::max(largest_wal, FileSize(WalOf(path)));
    }
    const WalCheckpointer::Counters counters = db.checkpoint_counters();
    EXPECT_GT(counters.passes, 0);
    EXPECT_EQ(counters.failures, 0);
    Check(db.StopBackgroundCheckpoints());
  }
  const int64_t written = FileSize(path);
  // Without checkpoints the WAL would hold every page written; with them it restarts once the
  // limit is passed, after at most a commit or two beyond it.
  EXPECT_LT(largest_wal, (kSmall.limit_pages + 200) * kFrameBytes);
  EXPECT_LT(largest_wal * 5, written);
  // Closing the last connection checkpointed everything and removed the WAL.
  EXPECT_FALSE(fs::exists(WalOf(path)));
  EXPECT_EQ(ContentsAsSeenByCli(path), Expected(kCommits * kRowsPerCommit));
}

TEST(SqliteCheckpointTest, ClosingJoinsTheThreadAndCheckpointsEverything) {
  ScratchDir dir;
  const fs::path path = dir / "close.db";
  {
    SqliteDb db = OpenWriter(path);
    Check(db.CheckpointInBackground(kSmall));
    for (int i = 0; i < 10; ++i) Check(WriteRows(db, i * kRowsPerCommit + 1, kRowsPerCommit));
    EXPECT_GT(db.checkpoint_counters().passes, 0);
    // Closing with a pass possibly in flight: the thread joins before the connection closes.
  }
  EXPECT_FALSE(fs::exists(WalOf(path)));
  EXPECT_EQ(ContentsAsSeenByCli(path), Expected(10 * kRowsPerCommit));
}

TEST(SqliteCheckpointTest, AReaderPinsTheWalUntilItEndsAndIsCaughtUpWithThen) {
  ScratchDir dir;
  const fs::path path = dir / "pinned.db";
  SqliteDb db = OpenWriter(path);
  Check(db.CheckpointInBackground(kSmall));
  int64_t next = 1;
  auto commit = [&] {
    Check(WriteRows(db, next, kRowsPerCommit));
    next += kRowsPerCommit;
  };
  for (int i = 0; i < 5; ++i) commit();
  // How many of the database's pages are in the file itself, not only in the WAL.
  auto backfilled = [&] {
    SqliteDb probe = Take(SqliteDb::Open(path, {}));
    Statement count = Take(probe.Prepare("PRAGMA page_count"));
    EXPECT_TRUE(Take(count.Step()));
    return std::make_pair(FileSize(path) / 4096, count.ColumnInt(0));
  };

  SqliteDb reader = Take(SqliteDb::Open(path, {}));
  Check(reader.BeginRead());
  Statement rows = Take(reader.Prepare("SELECT count(*) FROM t"));
  ASSERT_TRUE(Take(rows.Step()));
  const int64_t seen = rows.ColumnInt(0);
  rows.Reset();

  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 40; ++i) commit();  // far past the limit
  // The writer never waits for the reader.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60));
  ASSERT_TRUE(Take(rows.Step()));
  EXPECT_EQ(rows.ColumnInt(0), seen);  // the reader's snapshot is intact
  rows.Reset();
  const auto [in_file, pages] = backfilled();
  EXPECT_LT(in_file, pages);  // what the reader may still need stayed in the WAL
  EXPECT_GT(FileSize(WalOf(path)), kSmall.limit_pages * kFrameBytes);

  Check(reader.Exec("COMMIT"));
  commit();  // past the limit: the writer makes sure it is caught up with
  const auto [in_file_after, pages_after] = backfilled();
  EXPECT_EQ(in_file_after, pages_after);
  EXPECT_EQ(db.checkpoint_counters().failures, 0);
  Check(db.StopBackgroundCheckpoints());
  db = Take(SqliteDb::OpenInMemory());  // closes the file's last connection
  reader = Take(SqliteDb::OpenInMemory());
  EXPECT_EQ(ContentsAsSeenByCli(path), Expected(next - 1));
}

TEST(SqliteCheckpointTest, ACheckpointerThatCannotRunReportsOnceAndTheWriterTakesOver) {
  ScratchDir dir;
  const fs::path path = dir / "writer.db";
  int reports = 0;
  std::string reported;
  int64_t largest_wal = 0;
  constexpr int kCommits = 60;
  {
    SqliteDb db = OpenWriter(path);
    CheckpointOptions options = kSmall;
    options.report = [&](const Status& error) {
      ++reports;
      reported = error.message();
    };
    // The thread's connection is to a file that does not exist: it cannot open it.
    WalCheckpointer checkpointer(db.handle(), dir / "missing.db", options);
    for (int i = 0; i < kCommits; ++i) {
      Check(WriteRows(db, i * kRowsPerCommit + 1, kRowsPerCommit));
      largest_wal = std::max(largest_wal, FileSize(WalOf(path)));
    }
    const Status stopped = checkpointer.Stop();
    EXPECT_FALSE(stopped.ok());
    EXPECT_NE(stopped.message().find("missing.db"), std::string::npos) << stopped.ToString();
    EXPECT_GT(checkpointer.counters().writer_checkpoints, 0);
    EXPECT_EQ(checkpointer.counters().passes, 0);
  }
  EXPECT_EQ(reports, 1);
  EXPECT_NE(reported.find("missing.db"), std::string::npos) << reported;
  EXPECT_LT(largest_wal, (kSmall.limit_pages + 200) * kFrameBytes);
  EXPECT_FALSE(fs::exists(WalOf(path)));
  EXPECT_EQ(ContentsAsSeenByCli(path), Expected(kCommits * kRowsPerCommit));
}

// A child process writes with background checkpoints until it is killed, telling the parent
// after each commit the highest id committed and the checkpoints run so far.
[[noreturn]] void WriteUntilKilled(const fs::path& path, int report_fd) {
  auto opened = SqliteDb::Open(path, {});
  if (!opened.has_value()) _exit(2);
  SqliteDb db = std::move(*opened);
  if (!db.Exec("PRAGMA synchronous = NORMAL").ok()) _exit(3);
  if (!db.CheckpointInBackground(Thresholds(64, 256)).ok()) _exit(4);
  auto top = db.Prepare("SELECT coalesce(max(id), 0) FROM t");
  if (!top.has_value() || !top->Step().has_value()) _exit(5);
  int64_t next = top->ColumnInt(0) + 1;
  top->Reset();
  for (;;) {
    if (!WriteRows(db, next, 50).ok()) _exit(6);
    next += 50;
    const int64_t report[2] = {next - 1, db.checkpoint_counters().passes};
    if (write(report_fd, report, sizeof report) != sizeof report) _exit(7);
  }
}

TEST(SqliteCheckpointTest, SigkillWhileCheckpointsRunLosesNoCommit) {
  ScratchDir dir;
  const fs::path path = dir / "killed.db";
  Sql(path, "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);");
  std::mt19937 random(7);
  constexpr int kRounds = 12;
  int killed_after_checkpoints = 0;
  for (int round = 0; round < kRounds; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(fds[0]);
      WriteUntilKilled(path, fds[1]);
    }
    close(fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + random() % 350));
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer exited with " << WEXITSTATUS(status);
    int64_t acknowledged = 0;
    int64_t passes = 0;
    for (int64_t report[2]; read(fds[0], report, sizeof report) == sizeof report;) {
      acknowledged = report[0];
      passes = report[1];
    }
    close(fds[0]);
    if (passes > 0) ++killed_after_checkpoints;
    // Every commit the writer saw succeed is there, whole; nothing half-written is.
    const std::string seen = ContentsAsSeenByCli(path);
    const int64_t rows = std::stoll(seen.substr(seen.rfind('\n', seen.size() - 2) + 1));
    EXPECT_GE(rows, acknowledged) << "round " << round;
    EXPECT_EQ(rows % 50, 0) << "round " << round;
    EXPECT_EQ(seen, Expected(rows)) << "round " << round;
  }
  // The kills landed while the thread was checkpointing, not before it ever ran.
  EXPECT_GE(killed_after_checkpoints, kRounds / 2);
}

// Lockstep's own connection: a source's Apply of a large batch, page after page.
TEST(SqliteCheckpointTest, ApplyThroughASourceKeepsTheWalBounded) {
  ScratchDir dir;
  const fs::path a = dir / "a.db";
  const fs::path b = dir / "b.db";
  constexpr int64_t kRows = 30'000;
  Sql(a,
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); WITH RECURSIVE n(i) AS "
      "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000) INSERT INTO t SELECT i, "
      "substr(replace(hex(zeroblob(1000)), '0', char(97 + i % 26)), 1, 2000) || i FROM n;");
  const base::Clock& clock = base::SystemClock::Get();
  auto source = Take(connectors::sqlite::SqliteSource::Open(a, false, clock));
  auto schema = Take(source->Schema("t"));
  ASSERT_TRUE(schema.has_value());
  Check(source->Attach(std::span(&*schema, 1), ""));

  auto dest = Take(connectors::sqlite::SqliteSource::Open(b, true, clock, kSmall));
  Check(dest->Attach(std::span(&*schema, 1), ""));
  int64_t largest_wal = 0;
  size_t changed = 0;
  for (uint64_t cursor = 0;;) {
    ChangePage page = Take(source->store().ChangesAfter(cursor, 200, nullptr));
    if (page.scanned_to == cursor) break;
    cursor = page.scanned_to;
    const auto stats = Take(dest->Apply(page.changes, source->store().node(), dest->CursorScope(),
                                        {source->store().epoch(), page.scanned_to}));
    changed += stats.changed;
    largest_wal = std::max(largest_wal, FileSize(WalOf(b)));
  }
  EXPECT_EQ(changed, static_cast<size_t>(kRows));
  EXPECT_GT(dest->db().checkpoint_counters().passes, 0);
  EXPECT_EQ(dest->db().checkpoint_counters().failures, 0);
  dest.reset();
  const int64_t written = FileSize(b);
  // A batch of 200 records writes about 250 WAL pages (the rows, their records, the log).
  EXPECT_LT(largest_wal, (kSmall.limit_pages + 1'000) * kFrameBytes);
  EXPECT_LT(largest_wal * 3, written);
  EXPECT_FALSE(fs::exists(WalOf(b)));
  EXPECT_EQ(ContentsAsSeenByCli(b), Expected(kRows));
}

}  // namespace
}  // namespace lockstep::store
