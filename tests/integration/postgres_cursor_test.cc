// A session's batches without records (the peer's answer to each batch a source sends: its
// records are echoes the peer skipped) move the peer's cursor without a transaction of their own
// on a PostgreSQL source: the first of a session is written, later ones wait for the next batch
// with records, a read of the log a second later, or the end of the session.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "connectors/postgres/postgres_source.h"
#include "engine/source_session.h"
#include "support/postgres.h"
#include "support/result.h"

namespace lockstep::testing {
namespace {

using connectors::postgres::PostgresSource;

constexpr int64_t kHubEpoch = 42;

protocol::ChangeBatch WithoutRecords(uint64_t end_seq) {
  protocol::ChangeBatch batch;
  batch.end = {kHubEpoch, end_seq};
  batch.caught_up = true;
  return batch;
}

TEST(PostgresCursorTest, BatchesWithoutRecordsMoveTheCursorWithoutATransactionEach) {
  ASSERT_TRUE(PostgresCluster::Shared().running());
  const std::string url = PostgresCluster::Shared().CreateDatabase("cursor");
  Psql(url, "CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a');");
  base::SystemClock clock;
  std::unique_ptr<PostgresSource> source = Take(PostgresSource::Open(url, clock));
  connectors::TableSchema schema = *Take(source->Schema("t"));
  Check(source->Attach({&schema, 1}, ""));

  core::NodeId hub;
  hub.bytes[0] = 7;
  engine::DialerHandler handler(*source, "lockstep://127.0.0.1:1", {"t"});
  protocol::Welcome welcome;
  welcome.node = hub;
  welcome.collections = {"t"};
  welcome.epoch = kHubEpoch;
  Check(handler.Welcomed(welcome));
  auto cursor = [&] { return Take(source->store().GetCursor(hub, "t")); };

  // The first of the session is written at once: the hub learns where this node stands.
  Check(handler.Apply(WithoutRecords(5)));
  ASSERT_TRUE(cursor().has_value());
  EXPECT_EQ(cursor()->seq, 5u);

  // Later ones cost the server nothing.
  const uint64_t before = source->db().round_trips();
  Check(handler.Apply(WithoutRecords(9)));
  Check(handler.Apply(WithoutRecords(12)));
  EXPECT_EQ(source->db().round_trips(), before);
  EXPECT_EQ(cursor()->seq, 5u);

  // A read of the log within the second leaves it waiting; once it is a second old, it is written.
  Check(handler.ReadChanges({source->store().epoch(), 0}, 100).status());
  EXPECT_EQ(cursor()->seq, 5u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1'100));
  Check(handler.ReadChanges({source->store().epoch(), 0}, 100).status());
  EXPECT_EQ(cursor()->seq, 12u);

  // The end of a session writes what is left.
  Check(handler.Apply(WithoutRecords(20)));
  EXPECT_EQ(cursor()->seq, 12u);
  Check(handler.WriteDeferredCursor());
  EXPECT_EQ(cursor()->seq, 20u);
}

}  // namespace
}  // namespace lockstep::testing
