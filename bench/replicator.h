// The replicator under test in the PostgreSQL replication benchmark (issue 6): whatever keeps
// copies ("replicas") of a source database's pgbench tables while pgbench writes to it. The
// benchmark measures every replicator the same way, through these two interfaces: it writes
// probes on the source and watches them arrive on each replica, then compares fingerprints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lockstep/status.h"
#include "postgres_bench_support.h"
#include "support/postgres_server.h"

namespace lockstep::bench {

// One copy of the source's pgbench and probe tables, read by the benchmark. Not thread-safe:
// one thread at a time reads it.
class Replica {
 public:
  virtual ~Replica() = default;
  // How the report names it ("PostgreSQL subscriber", "SQLite node").
  virtual const std::string& name() const = 0;
  // The highest probe id visible here, 0 before the first.
  virtual Result<int64_t> LastProbe() = 0;
  // kFingerprintSql's answer here.
  virtual Result<std::string> Fingerprint() = 0;
};

// Keeps replicas of one source database. Not thread-safe.
class Replicator {
 public:
  virtual ~Replicator() = default;
  // How the report names it.
  virtual std::string name() const = 0;
  // Starts keeping replicas of the database at `source_url`, which holds the pgbench tables
  // (filled, with pgbench_history keyed) and the empty probe table; returns once every replica
  // holds the initial copy, waiting at most `limit_s` seconds.
  virtual Status Start(const std::string& source_url, double limit_s) = 0;
  // The replicas. REQUIRES: Start() succeeded; valid until Stop().
  virtual std::vector<Replica*> replicas() = 0;
  // Stops replicating and removes what Start() made on every server (bounded).
  virtual void Stop() = 0;
};

// PostgreSQL's own logical replication, the baseline: a PUBLICATION of the tables on the source
// (whose server needs wal_level=logical) and a SUBSCRIPTION in a fresh database on `subscriber`,
// whose schema pgbench creates (pgbench -i -I dtp) before the initial copy.
std::unique_ptr<Replicator> NativeLogicalReplication(testing::PostgresServer& subscriber,
                                                     int scale);

// Lockstep, the system under test: `lockstep serve` as a hub (plain TCP on loopback) and three
// `lockstep run` nodes: the source database, a fresh database on `replicas` with pgbench's schema,
// and a new SQLite file in `dir`, whose tables Lockstep creates. The replicas are the second
// PostgreSQL database and the SQLite node. `lockstep` is the binary to run.
std::unique_ptr<Replicator> LockstepReplication(testing::PostgresServer& replicas, int scale,
                                                const std::filesystem::path& dir,
                                                const std::string& lockstep);

// Lockstep's processes as the capture measurement runs them beside pgbench: the Lockstep
// replicator without the PostgreSQL replica (the hub, the source's node and the SQLite node),
// which can be frozen while other measurements run, and whose CPU time can be read.
class LockstepProcesses : public Replicator {
 public:
  // Stops (SIGSTOP) or resumes (SIGCONT) the hub and the nodes.
  virtual void Freeze(bool frozen) = 0;
  // The CPU seconds the hub and the nodes have used so far.
  virtual double CpuSeconds() const = 0;
};

// LockstepReplication with the SQLite node as its only replica.
std::unique_ptr<LockstepProcesses> LockstepToSqlite(const std::filesystem::path& dir,
                                                    const std::string& lockstep);

// Shared by the replicators:
// A replica that reads the PostgreSQL database of `db`.
std::unique_ptr<Replica> NewPostgresReplica(std::string name, PgConnection db);
// Connects without dying, with a statement timeout of 120 s.
Result<PgConnection> ConnectBounded(const std::string& url);
// Creates database `name` on `server` with pgbench's tables and keys, pgbench_history's key and
// the probe table, all empty.
Status CreateReplicaDatabase(testing::PostgresServer& server, const std::string& name, int scale);
// Drops database `name` on `server`, closing its sessions; errors are ignored.
void DropReplicaDatabase(testing::PostgresServer& server, const std::string& name);

}  // namespace lockstep::bench
