// The throwaway cluster the PostgreSQL tests stand on: it runs, as an unprivileged user, and
// checks passwords.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "support/postgres.h"
#include "support/process.h"

namespace lockstep::testing {
namespace {

TEST(PostgresClusterTest, GivesEachTestItsOwnDatabase) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  ASSERT_TRUE(cluster.running());
  const std::string a = cluster.CreateDatabase("cluster a");
  const std::string b = cluster.CreateDatabase("cluster b");
  ASSERT_NE(a, b);
  Psql(a, "CREATE TABLE only_in_a(id int PRIMARY KEY)");
  EXPECT_EQ(Psql(a, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"), "1\n");
  EXPECT_EQ(Psql(b, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"), "0\n");
  EXPECT_EQ(Psql(a, "SHOW server_version_num").substr(0, 2), "15");
}

TEST(PostgresClusterTest, ServerRunsAsAnUnprivilegedUser) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  const std::string url = cluster.CreateDatabase("owner");
  // The postmaster's pid is the first line of postmaster.pid in the data directory.
  std::string data = Psql(url, "SHOW data_directory");
  data.pop_back();
  const std::string pid_file = ReadFile(std::filesystem::path(data) / "postmaster.pid");
  const std::string pid = pid_file.substr(0, pid_file.find('\n'));
  ASSERT_FALSE(pid.empty());
  struct stat info {};
  ASSERT_EQ(stat(("/proc/" + pid).c_str(), &info), 0);
  EXPECT_NE(info.st_uid, 0u);
}

TEST(PostgresClusterTest, RefusesAWrongPassword) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  const std::string error =
      PsqlFails(cluster.UrlWithPassword("postgres", "not-the-password"), "SELECT 1");
  EXPECT_NE(error.find("password authentication failed"), std::string::npos) << error;
}

}  // namespace
}  // namespace lockstep::testing
