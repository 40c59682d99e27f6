// `lockstep run` with a PostgreSQL source: a node on a PostgreSQL database and a node on a SQLite
// file, both live through a `lockstep serve` hub on 127.0.0.1. A row committed in PostgreSQL
// wakes its node through NOTIFY and reaches the SQLite node within seconds; a row written in
// SQLite reaches PostgreSQL. Every wait is bounded; the guards kill every process at the end.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "support/hub.h"
#include "support/node.h"
#include "support/postgres.h"
#include "support/process.h"

namespace lockstep::testing {
namespace {

constexpr auto kArriveLimit = std::chrono::seconds(15);

TEST(PostgresDaemonTest, LiveNodesCarryRowsBetweenPostgresAndSqliteThroughAHub) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.running());
  const std::string pg = cluster.CreateDatabase("daemon");
  Psql(pg,
       "CREATE TABLE t(id integer PRIMARY KEY, owner text NOT NULL, v text NOT NULL, "
       "n integer); INSERT INTO t VALUES (1, 'pg', 'first', NULL);");
  auto hub = Hub::Start({.plaintext = true});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const std::filesystem::path edge = dir / "edge.db";

  ProcessGuard pg_node, sqlite_node;
  hub->StartLiveNode(pg_node, dir.path(), "pg", "postgres = \"" + pg + "\"", token);
  // The SQLite node starts empty and gets the table from the hub.
  hub->StartLiveNode(sqlite_node, dir.path(), "edge", "sqlite = \"" + edge.string() + "\"", token);
  ASSERT_TRUE(WaitFor([&] { return HasRow(edge, 1); }, kArriveLimit))
      << ReadFile(dir / "pg.err") << ReadFile(dir / "edge.err") << hub->Log();

  // Live: a PostgreSQL commit wakes its node (NOTIFY) without waiting for a poll.
  const auto written = std::chrono::steady_clock::now();
  Psql(pg, "INSERT INTO t VALUES (2, 'pg', 'second', 2)");
  ASSERT_TRUE(WaitFor([&] { return HasRow(edge, 2); }, kArriveLimit)) << ReadFile(dir / "pg.err");
  const int64_t took = MsSince(written);
  std::cout << "PostgreSQL -> hub -> SQLite: " << took << " ms\n";
  // Sessions read the log on their own only every 5 s: sooner means NOTIFY woke the node.
  EXPECT_LT(took, 4'000);

  Sql(edge, "INSERT INTO t VALUES (3, 'edge', 'third', 3);");
  ASSERT_TRUE(WaitFor([&] { return Psql(pg, "SELECT count(*) FROM t WHERE id = 3") == "1\n"; },
                      kArriveLimit))
      << ReadFile(dir / "edge.err");
  EXPECT_EQ(Psql(pg, "SELECT * FROM t ORDER BY id"), Dump(edge));

  EXPECT_EQ(pg_node.Terminate(std::chrono::seconds(10)), 0) << ReadFile(dir / "pg.err");
  EXPECT_EQ(sqlite_node.Terminate(std::chrono::seconds(10)), 0);
}

}  // namespace
}  // namespace lockstep::testing
