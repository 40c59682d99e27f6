// The PostgreSQL connector's rounds, in process against the test cluster: a stamping round of
// several tables and an apply each wait for the server a few times, whatever the number of tables
// (statements are queued and sent ahead: store/postgres_db.h), and still stamp and apply exactly
// what they did one statement at a time; a statement of an apply that fails on the server fails
// the apply, and nothing of it is written: not the rows, not the records, not the cursor.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/clock.h"
#include "connectors/postgres/postgres_source.h"
#include "support/postgres.h"
#include "support/result.h"

namespace lockstep::testing {
namespace {

using connectors::postgres::PostgresSource;

constexpr int kTables = 5;

std::string TablesSql() {
  std::string sql;
  for (int i = 0; i < kTables; ++i) {
    sql += "CREATE TABLE t" + std::to_string(i) + "(id bigint PRIMARY KEY, v text);";
  }
  return sql;
}

class PostgresRoundsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PostgresCluster::Shared().running());
    source_url_ = PostgresCluster::Shared().CreateDatabase("rounds source");
    replica_url_ = PostgresCluster::Shared().CreateDatabase("rounds replica");
    Psql(source_url_, TablesSql() + "INSERT INTO t0 VALUES (1, 'first');");
    Psql(replica_url_, TablesSql());
    source_ = Attach(source_url_);
    replica_ = Attach(replica_url_);
  }

  std::unique_ptr<PostgresSource> Attach(const std::string& url) {
    std::unique_ptr<PostgresSource> source = Take(PostgresSource::Open(url, clock_));
    std::vector<connectors::TableSchema> schemas;
    for (int i = 0; i < kTables; ++i) {
      schemas.push_back(*Take(source->Schema("t" + std::to_string(i))));
    }
    Check(source->Attach(schemas, ""));
    return source;
  }

  // The source's changes after `after`, applied to the replica; the apply's result.
  Result<connectors::ApplyStats> Forward(uint64_t after, uint64_t* scanned_to = nullptr) {
    store::ReplicaStore& from = source_->store();
    store::ChangePage page = Take(from.ChangesAfter(after, 10'000, nullptr));
    if (scanned_to != nullptr) *scanned_to = page.scanned_to;
    return replica_->Apply(page.changes, from.node(), replica_->CursorScope(),
                           store::Cursor{from.epoch(), page.scanned_to});
  }

  std::string Rows(const std::string& url) {
    std::string rows;
    for (int i = 0; i < kTables; ++i) {
      rows += Psql(url, "SELECT " + std::to_string(i) + ", id, v FROM t" + std::to_string(i) +
                            " ORDER BY id");
    }
    return rows;
  }

  base::SystemClock clock_;
  std::string source_url_, replica_url_;
  std::unique_ptr<PostgresSource> source_, replica_;
};

// Writes of the same shape each time, `from` the first id: 50 inserts in each of four tables, one
// row updated, one inserted and deleted again (its stamping finds nothing to store: no write).
std::string Writes(int from) {
  std::string writes;
  for (int i = 0; i < kTables - 1; ++i) {
    writes += "INSERT INTO t" + std::to_string(i) + " SELECT g, 'v' || g FROM generate_series(" +
              std::to_string(from) + ", " + std::to_string(from + 49) + ") g;";
  }
  return writes + "UPDATE t0 SET v = 'changed " + std::to_string(from) +
         "' WHERE id = 1; DELETE FROM t1 WHERE id = " + std::to_string(from) + ";";
}

TEST_F(PostgresRoundsTest, AStampingRoundOfEveryTableTakesFourRoundTrips) {
  // The first round prepares the statements of its sizes; the second, of the same shape, is what
  // every round costs.
  Psql(source_url_, Writes(10));
  Check(source_->StampSome());
  Psql(source_url_, Writes(110));
  const uint64_t seq_before = source_->store().last_seq();
  const uint64_t before = source_->db().round_trips();
  Check(source_->StampSome());
  // The look, then BEGIN + lock + counters + every table's chunk, the stored records of all
  // chunks, the writes + COMMIT.
  EXPECT_EQ(source_->db().round_trips() - before, 4u);
  EXPECT_EQ(source_->store().last_seq() - seq_before, 4u * 50 - 1 + 1);
  EXPECT_EQ(Psql(source_url_, "SELECT count(*) FROM _lockstep_capture_1"), "0\n");
  // Nothing is left captured: the next look costs one round trip and stamps nothing.
  const uint64_t again = source_->db().round_trips();
  Check(source_->StampSome());
  EXPECT_EQ(source_->db().round_trips() - again, 1u);
  EXPECT_EQ(source_->store().last_seq() - seq_before, 4u * 50);
}

TEST_F(PostgresRoundsTest, AnApplyTakesFourRoundTripsAndWritesWhatItReceived) {
  // The first two applies prepare the statements of their sizes (the second is the first to
  // look stored records up); the third, of the same shape, is what every apply costs.
  uint64_t applied_to = 0;
  for (int from : {10, 110}) {
    Psql(source_url_, Writes(from));
    Check(source_->StampSome());
    Check(Forward(applied_to, &applied_to).status());
  }
  Psql(source_url_, Writes(210));
  Check(source_->StampSome());
  const uint64_t before = replica_->db().round_trips();
  uint64_t scanned_to = 0;
  connectors::ApplyStats stats = Take(Forward(applied_to, &scanned_to));
  // BEGIN + locks + counters + catalog + captured keys; the largest keys; the stored records;
  // the writes + COMMIT.
  EXPECT_EQ(replica_->db().round_trips() - before, 4u);
  EXPECT_EQ(stats.changed, 4u * 50);
  EXPECT_EQ(Rows(replica_url_), Rows(source_url_));
  auto cursor = Take(replica_->store().GetCursor(source_->store().node(), replica_->CursorScope()));
  ASSERT_TRUE(cursor.has_value());
  EXPECT_EQ(cursor->seq, scanned_to);
}

TEST_F(PostgresRoundsTest, AStatementThatFailsOnTheServerFailsTheApplyAndWritesNothing) {
  Check(Forward(0).status());
  // The replica refuses one of the rows: its upsert fails on the server, after the apply queued
  // it and went on.
  Psql(replica_url_, "ALTER TABLE t3 ADD CONSTRAINT no_bad CHECK (v <> 'bad')");
  Psql(source_url_,
       "INSERT INTO t0 VALUES (2, 'fine'); INSERT INTO t3 VALUES (5, 'bad'); "
       "INSERT INTO t4 VALUES (6, 'fine too');");
  Check(source_->StampSome());
  const std::string rows_before = Rows(replica_url_);
  const uint64_t seq_before = replica_->store().last_seq();
  auto cursor_before =
      Take(replica_->store().GetCursor(source_->store().node(), replica_->CursorScope()));
  auto applied = Forward(0);
  ASSERT_FALSE(applied.has_value());
  EXPECT_NE(applied.error().message().find("t3"), std::string::npos) << applied.error().ToString();
  EXPECT_NE(applied.error().message().find("no_bad"), std::string::npos)
      << applied.error().ToString();
  EXPECT_EQ(Rows(replica_url_), rows_before);
  EXPECT_EQ(Psql(replica_url_, "SELECT count(*) FROM _lockstep_records"), "1\n");
  auto cursor_after =
      Take(replica_->store().GetCursor(source_->store().node(), replica_->CursorScope()));
  ASSERT_EQ(cursor_after.has_value(), cursor_before.has_value());
  if (cursor_before.has_value()) {
    EXPECT_EQ(cursor_after->seq, cursor_before->seq);
  }
  // The connection and the store are usable again: without the constraint the same apply goes
  // through.
  Psql(replica_url_, "ALTER TABLE t3 DROP CONSTRAINT no_bad");
  Check(Forward(0).status());
  EXPECT_EQ(Rows(replica_url_), Rows(source_url_));
  EXPECT_GT(replica_->store().last_seq(), seq_before);
}

}  // namespace
}  // namespace lockstep::testing
