// Bad input to the real `lockstep` binary: each is refused with a non-zero exit and one line on
// stderr starting "lockstep: ", and leaves every file exactly as it was.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "support/process.h"

namespace lockstep::testing {
namespace {

namespace fs = std::filesystem;

using Snapshot = std::map<std::string, std::string>;  // file name → bytes

std::string Bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Snapshot Take(const fs::path& dir) {
  Snapshot files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    files[entry.path().filename().string()] = Bytes(entry.path());
  }
  return files;
}

// Whether `db` holds any table, trigger or index of Lockstep's.
bool HasLockstepObjects(const fs::path& db) {
  return Sql(db,
             "SELECT count(*) FROM sqlite_master "
             "WHERE name LIKE '\\_lockstep\\_%' ESCAPE '\\';") != "0\n";
}

// The user's tables in `db`, one a line in name order: all but SQLite's and Lockstep's own.
std::string UserTables(const fs::path& db) {
  return Sql(db,
             "SELECT name FROM sqlite_master WHERE type = 'table' "
             "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
             "AND name NOT LIKE '\\_lockstep\\_%' ESCAPE '\\' ORDER BY name;");
}

void ExpectOneErrorLine(const ProcessResult& result) {
  EXPECT_GT(result.exit_code, 0) << "exit code " << result.exit_code;
  EXPECT_TRUE(result.err.starts_with("lockstep: ")) << "stderr: " << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << "stderr: " << result.err;
  EXPECT_TRUE(result.err.ends_with("\n")) << "stderr: " << result.err;
}

// Two databases that could be synced, in a fresh directory; each test spoils them its own way.
class BadInputTest : public ::testing::Test {
 protected:
  BadInputTest() {
    Sql(a_, "CREATE TABLE t(pk INTEGER PRIMARY KEY, x); INSERT INTO t VALUES (1, 'one');");
    Sql(b_, "CREATE TABLE t(pk INTEGER PRIMARY KEY, x); INSERT INTO t VALUES (2, 'two');");
  }

  // Runs lockstep, expects the one-line refusal, and that no file in the directory changed, none
  // appeared or vanished, and no database gained Lockstep's tables.
  ProcessResult ExpectRefused(const std::vector<std::string>& args) {
    const Snapshot before = Take(dir_.path());
    ProcessResult result = Lockstep(args);
    ExpectOneErrorLine(result);
    ExpectNothingChanged(before);
    return result;
  }

  void ExpectNothingChanged(const Snapshot& before) {
    const Snapshot after = Take(dir_.path());
    for (const auto& [name, bytes] : after) {
      auto it = before.find(name);
      if (it == before.end()) {
        ADD_FAILURE() << name << " was created (" << bytes.size() << " bytes)";
      } else {
        EXPECT_TRUE(it->second == bytes) << name << " was modified";
      }
    }
    for (const auto& [name, bytes] : before) {
      EXPECT_TRUE(after.contains(name)) << name << " was removed";
    }
    for (const fs::path& db : {a_, b_}) {
      if (fs::exists(db) && Bytes(db).starts_with("SQLite format 3")) {
        EXPECT_FALSE(HasLockstepObjects(db)) << db;
      }
    }
  }

  ScratchDir dir_;
  fs::path a_ = dir_ / "a.db";
  fs::path b_ = dir_ / "b.db";
};

TEST_F(BadInputTest, FirstArgumentThatIsNotASqliteFileIsRefused) {
  const fs::path text = dir_ / "notes.txt";
  std::ofstream(text) << "these are notes, not a database\n";

  const ProcessResult result = ExpectRefused({"sync", text.string(), b_.string()});

  EXPECT_NE(result.err.find("notes.txt"), std::string::npos) << result.err;
}

TEST_F(BadInputTest, LaterArgumentThatIsNotASqliteFileIsRefused) {
  const fs::path text = dir_ / "notes.txt";
  std::ofstream(text) << "these are notes, not a database\n";

  ExpectRefused({"sync", a_.string(), text.string()});
  ExpectRefused({"sync", a_.string(), b_.string(), text.string()});
}

TEST_F(BadInputTest, MissingFirstDatabaseIsRefused) {
  const ProcessResult result = ExpectRefused({"sync", (dir_ / "missing.db").string(), b_.string()});

  EXPECT_NE(result.err.find("missing.db"), std::string::npos) << result.err;
  ExpectRefused({"sync", (dir_ / "missing.db").string(), (dir_ / "also-missing.db").string()});
}

TEST_F(BadInputTest, ReadOnlyDatabaseIsRefused) {
  std::vector<std::string> as_user;
  if (geteuid() == 0) {
    // Root writes through any mode bits: drop to an unprivileged user for the run instead.
    if (testing::Run({"setpriv", "--version"}).exit_code != 0) {
      GTEST_SKIP() << "running as root, where chmod 0444 does not stop writes, and setpriv is "
                      "missing to run lockstep as an unprivileged user";
    }
    as_user = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  }
  fs::permissions(dir_.path(), fs::perms::all);
  for (const auto& [read_only, writable] : {std::pair{a_, b_}, std::pair{b_, a_}}) {
    SCOPED_TRACE("read-only " + read_only.filename().string());
    fs::permissions(read_only,
                    fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    fs::permissions(writable, fs::perms::owner_read | fs::perms::owner_write |
                                  fs::perms::group_read | fs::perms::group_write |
                                  fs::perms::others_read | fs::perms::others_write);
    const Snapshot before = Take(dir_.path());
    std::vector<std::string> argv = as_user;
    argv.insert(argv.end(), {LockstepBinary(), "sync", a_.string(), b_.string()});

    const ProcessResult result = testing::Run(argv);

    ExpectOneErrorLine(result);
    ExpectNothingChanged(before);
    EXPECT_NE(result.err.find(read_only.filename().string()), std::string::npos) << result.err;
  }
}

TEST_F(BadInputTest, TableWithoutPrimaryKeyNamedInTablesIsRefused) {
  Sql(a_, "CREATE TABLE log(at, message); INSERT INTO log VALUES (1, 'started');");

  const ProcessResult result = ExpectRefused({"sync", a_.string(), b_.string(), "--tables", "log"});

  EXPECT_NE(result.err.find("log"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("primary key"), std::string::npos) << result.err;
  ExpectRefused({"sync", a_.string(), b_.string(), "--tables", "t,log"});
}

// Found by looking rather than named, a table without a primary key is only skipped.
TEST_F(BadInputTest, TableWithoutPrimaryKeyFoundByLookingIsSkipped) {
  Sql(a_, "CREATE TABLE log(at, message); INSERT INTO log VALUES (1, 'started');");

  const ProcessResult result = Lockstep({"sync", a_.string(), b_.string()});

  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("skipped table log"), std::string::npos) << result.out;
  EXPECT_EQ(UserTables(b_), "t\n");
}

TEST_F(BadInputTest, SameTableWithDifferentColumnsIsRefused) {
  Sql(b_, "ALTER TABLE t ADD COLUMN y;");

  const ProcessResult result = ExpectRefused({"sync", a_.string(), b_.string()});

  EXPECT_NE(result.err.find("'t'"), std::string::npos) << result.err;
  ExpectRefused({"sync", b_.string(), a_.string(), "--tables", "t"});
}

TEST_F(BadInputTest, SameTableWithADifferentPrimaryKeyIsRefused) {
  Sql(b_, "DROP TABLE t; CREATE TABLE t(pk INTEGER, x PRIMARY KEY);");

  ExpectRefused({"sync", a_.string(), b_.string()});
}

// A third database that is fine must not be written either when the other two disagree.
TEST_F(BadInputTest, DisagreementBetweenTwoDatabasesLeavesTheThirdUntouched) {
  const fs::path c = dir_ / "c.db";
  Sql(c, "CREATE TABLE t(pk INTEGER PRIMARY KEY, x); CREATE TABLE u(pk INTEGER PRIMARY KEY);");
  Sql(b_, "CREATE TABLE u(pk TEXT PRIMARY KEY, other);");

  ExpectRefused({"sync", a_.string(), c.string(), b_.string()});
  EXPECT_EQ(
      Sql(c, "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_lockstep%' ESCAPE '\\';"),
      "0\n");
}

TEST_F(BadInputTest, UnknownConflictPolicyIsRefused) {
  const ProcessResult result =
      ExpectRefused({"sync", a_.string(), b_.string(), "--conflict", "sometimes"});

  EXPECT_NE(result.err.find("sometimes"), std::string::npos) << result.err;
  ExpectRefused({"sync", a_.string(), b_.string(), "--conflict", "lww,x=never"});
}

TEST_F(BadInputTest, FewerThanTwoDatabasesIsRefused) {
  ExpectRefused({"sync", a_.string()});
  ExpectRefused({"sync"});
}

// A refused sync must not leave behind an empty file where a missing database was named.
TEST_F(BadInputTest, RefusedSyncDoesNotCreateTheMissingDatabase) {
  const fs::path missing = dir_ / "new.db";

  ExpectRefused({"sync", a_.string(), missing.string(), "--conflict", "sometimes"});
  Sql(a_, "CREATE TABLE log(at, message);");
  ExpectRefused({"sync", a_.string(), missing.string(), "--tables", "log"});

  EXPECT_FALSE(fs::exists(missing));
}

TEST_F(BadInputTest, GarbageOptionsPrintAUsageErrorAndFail) {
  const std::vector<std::vector<std::string>> garbage{
      {"sync", a_.string(), b_.string(), "--frobnicate"},
      {"frobnicate", a_.string()},
      {"sync", a_.string(), b_.string(), "--direction", "sideways"},
      {"sync", a_.string(), b_.string(), "--tables"},
      {"conflicts"},
      {"conflicts", "resolve", a_.string(), "t:1"},
      {"detach"},
  };
  for (const std::vector<std::string>& args : garbage) {
    std::string command;
    for (const std::string& arg : args) command += " " + arg;
    SCOPED_TRACE("lockstep" + command);
    const Snapshot before = Take(dir_.path());

    const ProcessResult result = Lockstep(args);

    EXPECT_GT(result.exit_code, 0);
    EXPECT_EQ(result.out, "");
    EXPECT_NE(result.err, "");
    EXPECT_NE(result.err.find("help"), std::string::npos) << result.err;
    ExpectNothingChanged(before);
  }
}

TEST_F(BadInputTest, ConflictsOfADatabaseNeverSyncedAreRefused) {
  ExpectRefused({"conflicts", "list", a_.string()});
  ExpectRefused({"conflicts", "resolve", a_.string(), "t:1", "--take", "local"});
}

TEST_F(BadInputTest, DetachOfAFileThatIsNotADatabaseIsRefused) {
  const fs::path text = dir_ / "notes.txt";
  std::ofstream(text) << "these are notes, not a database\n";

  ExpectRefused({"detach", text.string()});
  ExpectRefused({"detach", (dir_ / "missing.db").string()});
}

}  // namespace
}  // namespace lockstep::testing
