// Test support: a throwaway PostgreSQL 15 cluster on 127.0.0.1, one per test binary, with a fresh
// database per test. Started on first use (initdb + pg_ctl, as an unprivileged user when the tests
// run as root), always stopped: at exit, and by a watchdog process if the test binary is killed.
// The server itself is a PostgresServer (postgres_server.h); this adds GoogleTest's reporting.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "support/postgres_server.h"

namespace lockstep::testing {

class PostgresCluster {
 public:
  // The cluster of this test binary, started the first time it is asked for (bounded: initdb and
  // a start that waits at most 30 s). Fails the current test when it cannot start.
  static PostgresCluster& Shared();

  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;
  ~PostgresCluster() = default;

  bool running() const { return server_.running(); }
  uint16_t port() const { return server_.port(); }
  // The superuser clients log in as (over TCP, with a SCRAM password).
  const std::string& user() const { return server_.user(); }
  const std::string& password() const { return server_.password(); }

  // Creates an empty database with a fresh name (`hint` plus a counter) and returns its URL,
  // postgres://USER:PASSWORD@127.0.0.1:PORT/NAME.
  std::string CreateDatabase(const std::string& hint);
  // The URL of database `name`, logging in with `password` (the right one by default).
  std::string Url(const std::string& name) const;
  std::string UrlWithPassword(const std::string& name, const std::string& password) const;

 private:
  PostgresCluster() = default;

  PostgresServer server_;
  int databases_ = 0;
};

// Runs `sql` with the real psql on the database at `url` (stopping at the first error, no
// .psqlrc, unaligned output without headers); returns stdout. Fails the current test on a
// non-zero exit.
std::string Psql(const std::string& url, const std::string& sql);

// Like Psql but expects failure; returns stderr.
std::string PsqlFails(const std::string& url, const std::string& sql);

}  // namespace lockstep::testing
