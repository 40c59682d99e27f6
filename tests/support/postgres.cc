#include "support/postgres.h"

#include <gtest/gtest.h>

#include <cctype>
#include <memory>

#include "support/process.h"

namespace lockstep::testing {

PostgresCluster& PostgresCluster::Shared() {
  // Destroyed at exit, which stops the server.
  static std::unique_ptr<PostgresCluster> cluster(new PostgresCluster());
  if (!cluster->running()) {
    const Status started = cluster->server_.Start();
    if (!started.ok()) ADD_FAILURE() << started.message();
  }
  return *cluster;
}

std::string PostgresCluster::UrlWithPassword(const std::string& name,
                                             const std::string& password) const {
  return server_.UrlWithPassword(name, password);
}

std::string PostgresCluster::Url(const std::string& name) const { return server_.Url(name); }

std::string PostgresCluster::CreateDatabase(const std::string& hint) {
  std::string name;
  for (char c : hint) {
    name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  }
  name = name.substr(0, 40) + "_" + std::to_string(++databases_);
  Psql(Url("postgres"), "CREATE DATABASE " + name);
  return Url(name);
}

std::string Psql(const std::string& url, const std::string& sql) {
  ProcessResult result = RunWithin({(PostgresBin() / "psql").string(), "-X", "-q", "-A", "-t", "-v",
                                    "ON_ERROR_STOP=1", "-d", url, "-c", sql},
                                   std::chrono::seconds(60));
  EXPECT_EQ(result.exit_code, 0) << "psql failed: " << result.err << "\nSQL: " << sql;
  return result.out;
}

std::string PsqlFails(const std::string& url, const std::string& sql) {
  ProcessResult result = RunWithin({(PostgresBin() / "psql").string(), "-X", "-q", "-A", "-t", "-v",
                                    "ON_ERROR_STOP=1", "-d", url, "-c", sql},
                                   std::chrono::seconds(60));
  EXPECT_NE(result.exit_code, 0) << "psql succeeded: " << result.out << "\nSQL: " << sql;
  return result.err;
}

}  // namespace lockstep::testing
