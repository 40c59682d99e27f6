// pgbench against a PostgreSQL source while `lockstep run` keeps a second PostgreSQL database and
// a SQLite node in sync with it through a hub: afterwards all three hold equal data (ordered dumps
// of every table with a primary key). pgbench runs as the issue asks (-c 4 -T 30) but on scale 1:
// the first copy of scale 10's million accounts takes minutes in the sanitized debug build the
// suite runs (docs/BENCHMARKS.md, "Bulk loads"); bench/postgres_bench.cc runs scale 10 and
// measures.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <string>

#include "support/hub.h"
#include "support/node.h"
#include "support/postgres.h"
#include "support/process.h"

namespace lockstep::testing {
namespace {

// Bounded so that the whole test stays under ctest's 600 s: the first copy, 30 s of pgbench and the
// catch-up after it.
constexpr auto kFirstCopyLimit = std::chrono::seconds(240);
constexpr auto kCatchUpLimit = std::chrono::seconds(240);

constexpr char kAccounts[] = "SELECT aid, bid, abalance FROM pgbench_accounts ORDER BY aid";
constexpr char kTellers[] = "SELECT tid, bid, tbalance FROM pgbench_tellers ORDER BY tid";
constexpr char kBranches[] = "SELECT bid, bbalance FROM pgbench_branches ORDER BY bid";
constexpr char kSums[] =
    "SELECT (SELECT count(*) FROM pgbench_accounts) || ' ' || "
    "(SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts) || ' ' || "
    "(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers) || ' ' || "
    "(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches)";

// The [[source]] lines of a node on `source`, syncing pgbench's tables that have a key.
std::string PgbenchSource(const std::string& source) {
  return source + "\ntables = [\"pgbench_accounts\", \"pgbench_branches\", \"pgbench_tellers\"]";
}

std::string Tail(const std::filesystem::path& file) {
  const std::string text = ReadFile(file);
  return file.filename().string() + ":\n" +
         text.substr(text.size() > 3000 ? text.size() - 3000 : 0);
}

// The sums of the SQLite node, empty until it has every table.
std::string SqliteSums(const std::filesystem::path& db) {
  if (!std::filesystem::exists(db) ||
      Sql(db,
          "SELECT count(*) FROM sqlite_master WHERE name IN ('pgbench_accounts', "
          "'pgbench_branches', 'pgbench_tellers');") != "3\n") {
    return "";
  }
  return Sql(db, std::string(kSums) + ";");
}

TEST(PostgresPgbenchTest, SourceReplicaAndSqliteNodeEndEqualAfterPgbench) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.running());
  const std::string source = cluster.CreateDatabase("pgbench source");
  const std::string replica = cluster.CreateDatabase("pgbench replica");
  const std::string pgbench = (PostgresBin() / "pgbench").string();
  ProcessResult init =
      RunWithin({pgbench, "-i", "-s", "1", "-q", source}, std::chrono::seconds(120));
  ASSERT_EQ(init.exit_code, 0) << init.err;
  // The replica has the tables (with their types and keys) but no rows.
  ProcessResult empty =
      RunWithin({pgbench, "-i", "-I", "dtp", "-s", "1", replica}, std::chrono::seconds(120));
  ASSERT_EQ(empty.exit_code, 0) << empty.err;

  auto hub = Hub::Start({.plaintext = true});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ScratchDir dir;
  const std::filesystem::path edge = dir / "edge.db";
  ProcessGuard source_node, replica_node, edge_node;
  StartLiveNode(source_node, dir.path(), "source", PgbenchSource("postgres = \"" + source + "\""),
                hub->url(), token);
  StartLiveNode(replica_node, dir.path(), "replica",
                PgbenchSource("postgres = \"" + replica + "\""), hub->url(), token);
  StartLiveNode(edge_node, dir.path(), "edge", PgbenchSource("sqlite = \"" + edge.string() + "\""),
                hub->url(), token);
  const std::string initial = Psql(source, kSums);
  ASSERT_TRUE(
      WaitFor([&] { return SqliteSums(edge) == initial && Psql(replica, kSums) == initial; },
              kFirstCopyLimit))
      << "source " << initial << "replica " << Psql(replica, kSums) << "edge " << SqliteSums(edge)
      << "hub " << Sql(hub->db(), std::string(kSums) + ";") << "\n"
      << Tail(dir / "source.err") << Tail(dir / "replica.err") << Tail(dir / "edge.err")
      << Tail(hub->data_dir().parent_path() / "serve.err");
  std::cout << "initial copy done\n";

  ProcessResult run =
      RunWithin({pgbench, "-n", "-c", "4", "-T", "30", source}, std::chrono::seconds(90));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const size_t tps = run.out.find("tps = ");
  std::cout << (tps == std::string::npos ? run.out : run.out.substr(tps, 40)) << "\n";

  const std::string final_sums = Psql(source, kSums);
  const auto ended = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      WaitFor([&] { return SqliteSums(edge) == final_sums && Psql(replica, kSums) == final_sums; },
              kCatchUpLimit))
      << "source " << final_sums << "replica " << Psql(replica, kSums) << "edge "
      << SqliteSums(edge) << "hub " << Sql(hub->db(), std::string(kSums) + ";") << "\n"
      << Tail(dir / "source.err") << Tail(dir / "replica.err") << Tail(dir / "edge.err")
      << Tail(hub->data_dir().parent_path() / "serve.err");
  std::cout << "caught up " << MsSince(ended) << " ms after pgbench ended\n";
  for (const char* dump : {kAccounts, kTellers, kBranches}) {
    const std::string expected = Psql(source, dump);
    EXPECT_EQ(Psql(replica, dump), expected) << dump;
    EXPECT_EQ(Sql(edge, std::string(dump) + ";"), expected) << dump;
  }
}

}  // namespace
}  // namespace lockstep::testing
