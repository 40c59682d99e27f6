// PostgreSQL's pipeline (PostgresDb: Statement::Queue and Statement::Send inside a transaction):
// statements queued and sent ahead take one round trip together and return what they would have
// returned alone; a queued statement that fails fails the next statement that waits for an
// answer, and COMMIT, so that nothing of its transaction is written; a rollback makes the
// connection usable again; outside a transaction everything runs at once.
#include <gtest/gtest.h>

#include <string>

#include "store/postgres_db.h"
#include "store_test_support.h"
#include "support/postgres.h"

namespace lockstep::store {
namespace {

using lockstep::testing::PostgresCluster;
using lockstep::testing::Psql;
using testing::Check;
using testing::Take;

class PostgresPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PostgresCluster::Shared().running());
    url_ = PostgresCluster::Shared().CreateDatabase("pipeline");
    db_ = Take(PostgresDb::Connect(url_));
    Check(db_->Exec("CREATE TABLE t(id bigint PRIMARY KEY, v text)"));
  }

  std::string Rows() { return Psql(url_, "SELECT id, v FROM t ORDER BY id"); }

  std::string url_;
  std::unique_ptr<PostgresDb> db_;
};

TEST_F(PostgresPipelineTest, QueuedWritesAndSentReadsShareOneRoundTrip) {
  Statement insert = Take(db_->Prepare("INSERT INTO t VALUES (?, ?)"));
  Statement count = Take(db_->Prepare("SELECT count(*) FROM t"));
  Statement max = Take(db_->Prepare("SELECT max(id) FROM t WHERE id < ?"));
  Check(db_->BeginWrite());
  const uint64_t before = db_->round_trips();
  for (int i = 1; i <= 100; ++i) {
    Check(insert.BindInt(1, i).BindText(2, "v" + std::to_string(i)).Queue("inserting"));
  }
  count.Send();
  max.BindInt(1, 50).Send();
  // The BEGIN, the lock, 100 inserts and both reads: one wait for the server.
  ASSERT_TRUE(Take(count.Step()));
  EXPECT_EQ(count.ColumnInt(0), 100);
  ASSERT_TRUE(Take(max.Step()));
  EXPECT_EQ(max.ColumnInt(0), 49);
  EXPECT_EQ(db_->round_trips() - before, 1u);
  count.Reset();
  max.Reset();
  Check(db_->Exec("COMMIT"));
  EXPECT_EQ(db_->round_trips() - before, 2u);
  EXPECT_EQ(Psql(url_, "SELECT count(*), min(v), max(id) FROM t"), "100|v1|100\n");
}

TEST_F(PostgresPipelineTest, AQueuedFailureFailsTheNextReadAndNothingCommits) {
  Psql(url_, "INSERT INTO t VALUES (7, 'there before')");
  Statement insert = Take(db_->Prepare("INSERT INTO t VALUES (?, ?)"));
  Statement count = Take(db_->Prepare("SELECT count(*) FROM t"));
  Check(db_->BeginWrite());
  Check(insert.BindInt(1, 6).BindText(2, "six").Queue("inserting six"));
  // Accepted now: the duplicate key is known only when the answers come.
  Check(insert.BindInt(1, 7).BindText(2, "seven").Queue("inserting seven"));
  Check(insert.BindInt(1, 8).BindText(2, "eight").Queue("inserting eight"));
  auto read = count.Step();
  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code(), StatusCode::kInvalidArgument) << read.error().ToString();
  EXPECT_NE(read.error().message().find("inserting seven"), std::string::npos)
      << read.error().ToString();
  count.Reset();
  // Every later statement meets the same failure, COMMIT included: nothing is written.
  Status queued = insert.BindInt(1, 9).BindText(2, "nine").Queue("inserting nine");
  EXPECT_FALSE(queued.ok());
  Status commit = db_->Exec("COMMIT");
  EXPECT_FALSE(commit.ok());
  EXPECT_NE(commit.message().find("inserting seven"), std::string::npos) << commit.ToString();
  Check(db_->Exec("ROLLBACK"));
  EXPECT_EQ(Rows(), "7|there before\n");
  // The connection works again.
  Check(db_->BeginWrite());
  Check(insert.BindInt(1, 10).BindText(2, "ten").Queue("inserting ten"));
  Check(db_->Exec("COMMIT"));
  EXPECT_EQ(Rows(), "7|there before\n10|ten\n");
}

TEST_F(PostgresPipelineTest, AFailureAtCommitIsReportedAndNothingCommits) {
  Psql(url_, "INSERT INTO t VALUES (2, 'there before')");
  Statement insert = Take(db_->Prepare("INSERT INTO t VALUES (?, ?)"));
  Check(db_->BeginWrite());
  Check(insert.BindInt(1, 1).BindText(2, "one").Queue("inserting one"));
  Check(insert.BindInt(1, 2).BindText(2, "two").Queue("inserting two"));
  // No read in between: COMMIT is the first statement that waits.
  Status commit = db_->Exec("COMMIT");
  ASSERT_FALSE(commit.ok());
  EXPECT_NE(commit.message().find("inserting two"), std::string::npos) << commit.ToString();
  Check(db_->Exec("ROLLBACK"));
  EXPECT_FALSE(db_->InTransaction());
  EXPECT_EQ(Rows(), "2|there before\n");
}

TEST_F(PostgresPipelineTest, ALockTimeoutFailsTheFirstReadWithUnavailable) {
  // Another connection holds the writers' lock: BeginWrite queues its wait, and the wait's
  // timeout (10 s) is what the transaction's first read meets.
  std::unique_ptr<PostgresDb> other = Take(PostgresDb::Connect(url_));
  Check(other->BeginWrite());
  Statement theirs = Take(other->Prepare("SELECT count(*) FROM t"));
  ASSERT_TRUE(Take(theirs.Step()));  // an answer came: the lock is held
  theirs.Reset();
  Statement mine = Take(db_->Prepare("SELECT count(*) FROM t"));
  Check(db_->BeginWrite());
  auto read = mine.Step();
  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code(), StatusCode::kUnavailable) << read.error().ToString();
  mine.Reset();
  Check(db_->Exec("ROLLBACK"));
  Check(other->Exec("COMMIT"));
  Check(db_->BeginWrite());
  ASSERT_TRUE(Take(mine.Step()));
  mine.Reset();
  Check(db_->Exec("COMMIT"));
}

TEST_F(PostgresPipelineTest, OutsideATransactionAQueuedStatementRunsAtOnce) {
  Statement insert = Take(db_->Prepare("INSERT INTO t VALUES (?, ?)"));
  const uint64_t before = db_->round_trips();
  Check(insert.BindInt(1, 1).BindText(2, "one").Queue("inserting one"));
  EXPECT_EQ(db_->round_trips() - before, 1u);
  EXPECT_EQ(Rows(), "1|one\n");
  Status again = insert.BindInt(1, 1).BindText(2, "again").Queue("inserting one again");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("inserting one again"), std::string::npos) << again.ToString();
  EXPECT_FALSE(db_->InTransaction());
}

TEST_F(PostgresPipelineTest, AReadSentAndResetIsNotReadByItsNextRun) {
  Psql(url_, "INSERT INTO t VALUES (1, 'one'), (2, 'two')");
  Statement value = Take(db_->Prepare("SELECT v FROM t WHERE id = ?"));
  Check(db_->BeginWrite());
  value.BindInt(1, 1).Send();
  value.Reset();  // its answer, when it comes, is dropped
  Statement count = Take(db_->Prepare("SELECT count(*) FROM t"));
  ASSERT_TRUE(Take(count.Step()));
  EXPECT_EQ(count.ColumnInt(0), 2);
  count.Reset();
  value.BindInt(1, 2);
  ASSERT_TRUE(Take(value.Step()));
  EXPECT_EQ(value.ColumnText(0), "two");
  value.Reset();
  // Sent twice: the second answer is the one read.
  value.BindInt(1, 1).Send();
  ASSERT_TRUE(Take(count.Step()));  // the first answer arrives, unread
  count.Reset();
  value.BindInt(1, 2).Send();
  ASSERT_TRUE(Take(value.Step()));
  EXPECT_EQ(value.ColumnText(0), "two");
  value.Reset();
  Check(db_->Exec("COMMIT"));
}

}  // namespace
}  // namespace lockstep::store
