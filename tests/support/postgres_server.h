// A throwaway PostgreSQL 15 server on 127.0.0.1 for the tests and the benchmarks: initdb and
// pg_ctl on a free port, in a fresh directory, as an unprivileged user when run as root, with
// SCRAM passwords over TCP. Always stopped: by its destructor, and by a watchdog process if the
// program that started it dies first. Reports through Status, never through GoogleTest.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lockstep/status.h"

namespace lockstep::testing {

// The directory holding PostgreSQL 15's programs (initdb, pg_ctl, psql, pgbench).
std::filesystem::path PostgresBin();

// One server and its data directory. Not thread-safe.
class PostgresServer {
 public:
  // Makes the directory (under the system's temporary directory); starts nothing. `settings` are
  // server settings, "name=value" each, applied after the defaults (fsync, synchronous_commit
  // and full_page_writes off; 200 connections; 32 MB of shared buffers), which they override:
  // for example "wal_level=logical" for a publisher.
  explicit PostgresServer(std::vector<std::string> settings = {});
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  // Stops the server and removes its directory.
  ~PostgresServer();

  // Creates the cluster on first use (initdb), then starts it on a free port, trying a few
  // ports. Bounded: initdb at most 60 s, each start at most 40 s. kUnavailable when it cannot
  // start, with pg_ctl's output and the server log in the message.
  Status Start();
  // Stops it at once (pg_ctl -m immediate, at most 40 s); nothing when it does not run.
  void Stop();

  bool running() const { return running_; }
  uint16_t port() const { return port_; }
  // The superuser clients log in as (over TCP, with a SCRAM password).
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  // Where the server writes its log.
  std::filesystem::path log() const { return dir_ / "server.log"; }

  // The URL of database `name`: postgres://USER:PASSWORD@127.0.0.1:PORT/NAME.
  std::string Url(const std::string& name) const;
  // The same URL logging in with `password` instead.
  std::string UrlWithPassword(const std::string& name, const std::string& password) const;

 private:
  Status Initialize();
  Status StartOnce(int attempt);

  std::vector<std::string> settings_;
  std::filesystem::path dir_;  // data/, the socket, the server log, the password file
  std::string user_ = "lockstep";
  std::string password_;
  uint16_t port_ = 0;
  bool running_ = false;
  pid_t watchdog_ = -1;  // the process that stops the server when its starter dies
};

}  // namespace lockstep::testing
