// The PostgreSQL source's stamping rounds under a stream of commits, in process against the test
// cluster: paced (Source::PaceRounds), rounds that follow a busy one wait for the rest of the
// gather interval, so a stream is stamped in few large rounds, every change exactly once; a
// capture after a quiet interval, and a backlog larger than a round's chunk, are stamped at once.
// Also: a connection that opens a store the planner's statistics already know does not refresh
// them after its first few thousand records (an ANALYZE of a large store costs the server most of
// a second).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "connectors/postgres/postgres_source.h"
#include "store/postgres_db.h"
#include "support/postgres.h"
#include "support/result.h"

namespace lockstep::testing {
namespace {

using connectors::postgres::PostgresSource;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class PostgresPacingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PostgresCluster::Shared().running());
    url_ = PostgresCluster::Shared().CreateDatabase("pacing");
    Psql(url_, "CREATE TABLE t(id bigint PRIMARY KEY, v text)");
    source_ = Take(PostgresSource::Open(url_, clock_));
    std::vector<connectors::TableSchema> schemas = {*Take(source_->Schema("t"))};
    Check(source_->Attach(schemas, ""));
  }

  double SecondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  base::SystemClock clock_;
  std::string url_;
  std::unique_ptr<PostgresSource> source_;
};

TEST_F(PostgresPacingTest, AStreamOfCommitsIsStampedInFewRoundsEachChangeOnce) {
  constexpr milliseconds kGather{100};
  constexpr int kCommits = 300;
  source_->PaceRounds(kGather);
  const uint64_t seq_before = source_->store().last_seq();
  const size_t rounds_before = source_->rounds();
  // A writer commits one row at a time, as fast as it can, while this thread stamps as a session
  // does: again as soon as a round returns.
  std::atomic<bool> written{false};
  std::thread writer([&] {
    auto db = store::PostgresDb::Connect(url_);
    ASSERT_TRUE(db.has_value()) << db.error().ToString();
    for (int i = 1; i <= kCommits; ++i) {
      Status status = (*db)->Exec("INSERT INTO t VALUES (" + std::to_string(i) + ", 'v')");
      ASSERT_TRUE(status.ok()) << status.ToString();
    }
    written = true;
  });
  const auto start = Clock::now();
  for (;;) {
    const bool done = written.load();
    Status status = source_->StampSome();
    if (!status.ok()) {
      writer.join();
      FAIL() << status.ToString();
    }
    // Everything committed before `done` was read has been looked for.
    if (done && Psql(url_, "SELECT count(*) FROM _lockstep_capture_1") == "0\n") break;
  }
  const double elapsed = SecondsSince(start);
  writer.join();
  const size_t rounds = source_->rounds() - rounds_before;
  // Each round after the first began a gather interval after the one before it at the earliest.
  EXPECT_LE(rounds, 1 + static_cast<size_t>(elapsed / 0.1)) << "in " << elapsed << " s";
  EXPECT_LT(rounds, static_cast<size_t>(kCommits / 3));
  // Each insert stamped exactly once: one seq each, and the store holds every row.
  EXPECT_EQ(source_->store().last_seq() - seq_before, static_cast<uint64_t>(kCommits));
  EXPECT_EQ(Psql(url_,
                 "SELECT count(*) FROM _lockstep_records r JOIN _lockstep_collections c "
                 "ON c.id = r.collection WHERE c.name = 't'"),
            std::to_string(kCommits) + "\n");
}

TEST_F(PostgresPacingTest, ACaptureAfterAQuietIntervalIsStampedAtOnceAndOneRightAfterWaits) {
  constexpr milliseconds kGather{3'000};
  source_->PaceRounds(kGather);
  const uint64_t seq_before = source_->store().last_seq();
  // The first round of this source: nothing to wait for.
  Psql(url_, "INSERT INTO t VALUES (1, 'first')");
  auto start = Clock::now();
  Check(source_->StampSome());
  EXPECT_LT(SecondsSince(start), 1.5);
  EXPECT_EQ(source_->store().last_seq() - seq_before, 1u);
  // Right after it, a round waits for the rest of the interval, then takes what came meanwhile.
  Psql(url_, "INSERT INTO t VALUES (2, 'second'); INSERT INTO t VALUES (3, 'third')");
  Check(source_->StampSome());
  EXPECT_GE(SecondsSince(start), 2.9);
  EXPECT_EQ(source_->store().last_seq() - seq_before, 3u);
  // Quiet for longer than the interval: at once again.
  std::this_thread::sleep_for(kGather);
  Psql(url_, "UPDATE t SET v = 'changed' WHERE id = 1");
  start = Clock::now();
  Check(source_->StampSome());
  EXPECT_LT(SecondsSince(start), 1.5);
  EXPECT_EQ(source_->store().last_seq() - seq_before, 4u);
  // Nothing captured: a look, no wait, however recent the last round.
  start = Clock::now();
  Check(source_->StampSome());
  EXPECT_LT(SecondsSince(start), 1.5);
}

TEST_F(PostgresPacingTest, ABacklogLargerThanAChunkIsStampedWithoutWaiting) {
  // Far longer than the test may take: a wait would show.
  constexpr milliseconds kGather{120'000};
  source_->PaceRounds(kGather);
  Psql(url_, "INSERT INTO t SELECT g, 'v' FROM generate_series(1, 25000) g");
  const uint64_t seq_before = source_->store().last_seq();
  const auto start = Clock::now();
  // Chunks of 10,000 captures: the first two rounds are full, the third takes the rest.
  for (int round = 0; round < 3; ++round) Check(source_->StampSome());
  EXPECT_LT(SecondsSince(start), 60.0);
  EXPECT_EQ(source_->store().last_seq() - seq_before, 25'000u);
  EXPECT_EQ(Psql(url_, "SELECT count(*) FROM _lockstep_capture_1"), "0\n");
}

}  // namespace
}  // namespace lockstep::testing
