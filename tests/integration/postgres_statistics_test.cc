// When the PostgreSQL store refreshes the planner's statistics of its records (ANALYZE, in the
// session's own thread): after a bulk load, and then each time the records have doubled, counting
// from what the statistics held when the store was opened. A node restarted on a table of a
// million records must not pay an ANALYZE (about a second under load, during which no change
// moves) after the first ten thousand records it adds.
#include <gtest/gtest.h>

#include <string>

#include "base/clock.h"
#include "connectors/postgres/postgres_source.h"
#include "support/postgres.h"

namespace lockstep::testing {
namespace {

using connectors::postgres::PostgresSource;

template <typename T>
T Take(Result<T> result) {
  EXPECT_TRUE(result.has_value()) << result.error().ToString();
  if (!result.has_value()) throw std::runtime_error(result.error().ToString());
  return std::move(*result);
}

void Check(const Status& status) { ASSERT_TRUE(status.ok()) << status.ToString(); }

// How many times the records' statistics were refreshed by an ANALYZE statement.
std::string AnalyzeCount(const std::string& url) {
  return Psql(url,
              "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = '_lockstep_records'");
}

std::string InsertRows(int from, int count) {
  return "INSERT INTO t SELECT g, 'v' || g FROM generate_series(" + std::to_string(from) + ", " +
         std::to_string(from + count - 1) + ") g;";
}

TEST(PostgresStatisticsTest, AReopenedStoreAnalyzesOnlyOnceItsRecordsHaveDoubled) {
  ASSERT_TRUE(PostgresCluster::Shared().running());
  const std::string url = PostgresCluster::Shared().CreateDatabase("statistics");
  Psql(url, "CREATE TABLE t (id bigint PRIMARY KEY, v text);" + InsertRows(1, 20'000));
  base::SystemClock clock;
  {
    // Attaching stamps 20,000 rows, a bulk load: the store refreshes the statistics.
    std::unique_ptr<PostgresSource> source = Take(PostgresSource::Open(url, clock));
    connectors::TableSchema schema = *Take(source->Schema("t"));
    Check(source->Attach({&schema, 1}, ""));
  }
  // Autovacuum's own analyses are counted apart (autoanalyze_count), but they would change what
  // the statistics count: none from here.
  Psql(url, "ALTER TABLE _lockstep_records SET (autovacuum_enabled = off)");
  ASSERT_EQ(AnalyzeCount(url), "1\n");

  // A node restarting: a new store on the same table, whose statistics count 20,000 records.
  std::unique_ptr<PostgresSource> source = Take(PostgresSource::Open(url, clock));
  connectors::TableSchema schema = *Take(source->Schema("t"));
  Check(source->Attach({&schema, 1}, ""));
  Psql(url, InsertRows(20'001, 12'000));
  Check(source->StampPending());
  EXPECT_EQ(Psql(url, "SELECT count(*) FROM _lockstep_records"), "32000\n");
  EXPECT_EQ(AnalyzeCount(url), "1\n") << "12,000 new records of 32,000 need no new statistics";

  // Once the records added reach those the statistics counted, they are refreshed.
  Psql(url, InsertRows(32'001, 9'000));
  Check(source->StampPending());
  EXPECT_EQ(AnalyzeCount(url), "2\n");
}

}  // namespace
}  // namespace lockstep::testing
