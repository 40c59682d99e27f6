// End-to-end benchmarks of PostgreSQL in place (issue 6), on a throwaway PostgreSQL 15 cluster on
// loopback: pgbench transactions/s on tables with Lockstep's triggers (and `lockstep run` keeping a
// second PostgreSQL database and a SQLite node in sync through a hub) against the same pgbench on
// tables without them; replication lag during that run, and the catch-up after it, against
// PostgreSQL's own logical replication (PUBLICATION / SUBSCRIPTION) of the same tables measured
// in the same run. Lag is measured by a probe: a row of `lag_probe` updated every 100 ms in the
// source, polled every 2 ms in the replica. Prints a Markdown table with PASS/FAIL against the
// issue's targets. Every wait is bounded; every process started is stopped at the end.
//
//   lockstep_postgres_bench [--scale N] [--clients N] [--seconds N] [--dir PATH]
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "store/postgres_db.h"

namespace lockstep::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kLockstep = LOCKSTEP_BIN;
const fs::path kPgBin = "/usr/lib/postgresql/15/bin";
constexpr char kPassword[] = "bench-password";
constexpr char kTables[] = "pgbench_accounts, pgbench_branches, pgbench_tellers, lag_probe";
constexpr char kSums[] =
    "SELECT (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts) || ' ' || "
    "(SELECT coalesce(sum(tbalance), 0) FROM pgbench_tellers) || ' ' || "
    "(SELECT coalesce(sum(bbalance), 0) FROM pgbench_branches) || ' ' || "
    "(SELECT max(n) FROM lag_probe)";
constexpr double kWaitS = 900;  // longest wait for a replica to catch up

struct Options {
  int scale = 10;
  int clients = 4;
  int seconds = 30;
  fs::path dir;
};

fs::path g_data;  // the cluster's data directory, for the cleanup

std::vector<std::string> AsServerUser(std::vector<std::string> args) {
  if (geteuid() != 0) return args;
  args.insert(args.begin(), {"runuser", "-u", "postgres", "--"});
  return args;
}

void StopCluster() {
  StopAll();
  if (!g_data.empty() && fs::exists(g_data / "postmaster.pid")) {
    RunProcess(
        AsServerUser({(kPgBin / "pg_ctl").string(), "-D", g_data.string(), "-m", "fast", "stop"}));
  }
}

std::string Url(int port, const std::string& db) {
  return "postgres://lockstep:" + std::string(kPassword) + "@127.0.0.1:" + std::to_string(port) +
         "/" + db;
}

std::unique_ptr<store::PostgresDb> Connect(const std::string& url) {
  auto db = store::PostgresDb::Connect(url);
  if (!db.has_value()) Die(db.error().ToString());
  return std::move(*db);
}

void Exec(store::PostgresDb& db, const std::string& sql) {
  Status status = db.Exec(sql);
  if (!status.ok()) Die(status.ToString() + "\nSQL: " + sql);
}

std::string Text(store::PostgresDb& db, const std::string& sql) {
  auto stmt = db.Prepare(sql);
  if (!stmt.has_value()) Die(stmt.error().ToString());
  auto row = stmt->Step();
  if (!row.has_value()) Die(row.error().ToString());
  return *row ? std::string(stmt->ColumnText(0)) : std::string();
}

// The integer in the first column of the first row; 0 when there is none (or it is NULL).
int64_t Int(store::PostgresDb& db, const std::string& sql) {
  auto stmt = db.Prepare(sql);
  if (!stmt.has_value()) Die(stmt.error().ToString());
  auto row = stmt->Step();
  if (!row.has_value()) Die(row.error().ToString());
  return *row ? stmt->ColumnInt(0) : 0;
}

// Starts the cluster: initdb (as the postgres user when root) and pg_ctl on a free port.
int StartCluster(const fs::path& dir) {
  const fs::path pwfile = dir / "password";
  std::ofstream(pwfile) << kPassword << "\n";
  if (geteuid() == 0) {
    const passwd* owner = getpwnam("postgres");
    if (owner == nullptr) Die("no postgres user to run the server as");
    for (const fs::path& p : {dir, pwfile}) {
      if (chown(p.c_str(), owner->pw_uid, owner->pw_gid) != 0) Die("chown " + p.string());
    }
  }
  g_data = dir / "data";
  RunProcess(AsServerUser({(kPgBin / "initdb").string(), "-D", g_data.string(), "-U", "lockstep",
                           "--pwfile=" + pwfile.string(), "--auth-host=scram-sha-256",
                           "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"}),
             dir / "initdb.out", dir / "initdb.err");
  const int port = 20000 + static_cast<int>(getpid() % 20000);
  RunProcess(AsServerUser({(kPgBin / "pg_ctl").string(), "-D", g_data.string(), "-l",
                           (dir / "server.log").string(), "-w", "-t", "60", "-o",
                           "-p " + std::to_string(port) + " -k " + dir.string() +
                               " -c listen_addresses=127.0.0.1 -c wal_level=logical"
                               " -c max_connections=100 -c shared_buffers=256MB",
                           "start"}),
             dir / "pg_ctl.out", dir / "pg_ctl.err");
  return port;
}

// pgbench -i at `scale`, or only the tables and keys (no rows) when `empty`; plus lag_probe.
void Initialize(const std::string& url, int scale, bool empty) {
  std::vector<std::string> args{(kPgBin / "pgbench").string(), "-i", "-q", "-s",
                                std::to_string(scale)};
  if (empty) args.insert(args.end(), {"-I", "dtp"});
  args.push_back(url);
  RunProcess(args, {}, {}, kWaitS);
  auto db = Connect(url);
  Exec(*db, "CREATE TABLE lag_probe(id int PRIMARY KEY, n bigint NOT NULL)");
  if (!empty) Exec(*db, "INSERT INTO lag_probe VALUES (1, 0)");
}

// Runs pgbench for `seconds`; returns its tps.
double Pgbench(const std::string& url, const Options& options, const fs::path& out) {
  RunProcess({(kPgBin / "pgbench").string(), "-n", "-c", std::to_string(options.clients), "-j", "2",
              "-T", std::to_string(options.seconds), url},
             out, {}, options.seconds + kWaitS);
  const std::string text = ReadFile(out);
  const size_t at = text.find("tps = ");
  if (at == std::string::npos) Die("no tps in pgbench's output:\n" + text);
  return std::stod(text.substr(at + 6));
}

// Waits until `replica` holds what `source` holds; returns the seconds it took.
double WaitForEqual(const std::string& source, const std::string& replica) {
  auto from = Connect(source);
  auto to = Connect(replica);
  const std::string wanted = Text(*from, kSums);
  const auto start = Clock::now();
  while (Text(*to, kSums) != wanted) {
    if (std::chrono::duration<double>(Clock::now() - start).count() > kWaitS) {
      Die("the replica did not catch up: " + Text(*to, kSums) + " against " + wanted);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Updates the probe row every 100 ms in `source` and times its arrival in `replica`, until stop.
std::vector<double> ProbeLag(const std::string& source, const std::string& replica,
                             const std::atomic<bool>& stop) {
  auto from = Connect(source);
  auto to = Connect(replica);
  std::vector<double> lags_ms;
  int64_t n = Int(*from, "SELECT n FROM lag_probe WHERE id = 1");
  while (!stop) {
    ++n;
    const auto written = Clock::now();
    Exec(*from, "UPDATE lag_probe SET n = " + std::to_string(n) + " WHERE id = 1");
    while (!stop && Int(*to, "SELECT n FROM lag_probe WHERE id = 1") < n) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (stop) break;
    lags_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - written).count());
    std::this_thread::sleep_until(written + std::chrono::milliseconds(100));
  }
  return lags_ms;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * values.size()))];
}

struct Replication {
  double tps = 0;
  std::vector<double> lags_ms;
  double catch_up_s = 0;
};

// pgbench on `source` with the lag probe running against `replica`, then the catch-up.
Replication MeasureUnderLoad(const std::string& source, const std::string& replica,
                             const Options& options, const fs::path& out) {
  WaitForEqual(source, replica);
  std::atomic<bool> stop = false;
  Replication result;
  std::thread probe([&] { result.lags_ms = ProbeLag(source, replica, stop); });
  result.tps = Pgbench(source, options, out);
  stop = true;
  probe.join();
  result.catch_up_s = WaitForEqual(source, replica);
  return result;
}

void WriteNode(const fs::path& file, const std::string& name, const std::string& source,
               const std::string& hub, const std::string& token) {
  std::ofstream(file) << "[node]\nname = \"" << name << "\"\n\n[[source]]\n"
                      << source << "\ntables = [\"pgbench_accounts\", \"pgbench_branches\", "
                      << "\"pgbench_tellers\", \"lag_probe\"]\n\n[[peer]]\nurl = \"" << hub
                      << "\"\ntoken = \"" << token << "\"\nplaintext = true\nmode = \"live\"\n";
}

int Main(const Options& options) {
  SetDieHandler("lockstep_postgres_bench", StopCluster);
  std::cout << std::unitbuf;  // progress lines appear as they happen
  const fs::path dir = MakeScratchDir(options.dir, "lockstep-postgres-bench");
  const int port = StartCluster(dir);
  auto admin = Connect(Url(port, "postgres"));
  for (const char* db : {"plain", "synced", "replica", "native_source", "native_replica"}) {
    Exec(*admin, std::string("CREATE DATABASE ") + db);
  }
  std::cout << "pgbench -s " << options.scale << " -c " << options.clients << " -T "
            << options.seconds << ", PostgreSQL 15 on 127.0.0.1\n";

  // 1. Baseline: no triggers, nothing replicating.
  Initialize(Url(port, "plain"), options.scale, false);
  const double plain_tps = Pgbench(Url(port, "plain"), options, dir / "plain.out");
  std::cout << "without lockstep: " << Fixed(plain_tps, 0, " tps") << "\n";

  // 1b. The triggers alone: attached once by a one-shot sync (which installs them), then pgbench
  //     with nothing stamping or sending.
  Exec(*admin, "CREATE DATABASE triggers");
  Initialize(Url(port, "triggers"), options.scale, false);
  RunProcess({kLockstep, "sync", Url(port, "triggers"), (dir / "triggers.db").string(), "--tables",
              "pgbench_accounts,pgbench_branches,pgbench_tellers,lag_probe"},
             dir / "triggers-sync.out", dir / "triggers-sync.err", kWaitS);
  const double triggers_tps = Pgbench(Url(port, "triggers"), options, dir / "triggers.out");
  std::cout << "with lockstep's triggers, no sync running: " << Fixed(triggers_tps, 0, " tps")
            << "\n";

  // 2. Lockstep: triggers on the source, `lockstep run` for it, a PostgreSQL replica and a SQLite
  //    node, all through a hub.
  Initialize(Url(port, "synced"), options.scale, false);
  Initialize(Url(port, "replica"), options.scale, true);
  const fs::path hub_dir = dir / "hub";
  fs::create_directories(hub_dir);
  RunProcess({kLockstep, "token", "create", "--data", hub_dir.string(), "--collections", "*",
              "--mode", "rw"},
             dir / "token.out");
  std::string token = ReadFile(dir / "token.out");
  token = token.substr(0, token.find('\n'));
  const int hub_port = port + 1;
  Spawn({kLockstep, "serve", "--listen", "127.0.0.1:" + std::to_string(hub_port), "--data",
         hub_dir.string(), "--plaintext"},
        dir / "hub.out", dir / "hub.err");
  const std::string hub = "lockstep://127.0.0.1:" + std::to_string(hub_port);
  WriteNode(dir / "synced.toml", "synced", "postgres = \"" + Url(port, "synced") + "\"", hub,
            token);
  WriteNode(dir / "replica.toml", "replica", "postgres = \"" + Url(port, "replica") + "\"", hub,
            token);
  WriteNode(dir / "edge.toml", "edge", "sqlite = \"" + (dir / "edge.db").string() + "\"", hub,
            token);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (const char* node : {"synced", "replica", "edge"}) {
    Spawn({kLockstep, "run", "-c", (dir / (std::string(node) + ".toml")).string()},
          dir / (std::string(node) + ".out"), dir / (std::string(node) + ".err"));
  }
  const auto copy_start = Clock::now();
  WaitForEqual(Url(port, "synced"), Url(port, "replica"));
  std::cout << "lockstep: first copy to the replica "
            << Fixed(std::chrono::duration<double>(Clock::now() - copy_start).count(), 1, " s")
            << "\n";
  const Replication lockstep =
      MeasureUnderLoad(Url(port, "synced"), Url(port, "replica"), options, dir / "synced.out");
  StopAll();

  // 3. PostgreSQL's logical replication of the same tables.
  Initialize(Url(port, "native_source"), options.scale, false);
  Initialize(Url(port, "native_replica"), options.scale, true);
  {
    // On one cluster the slot must exist before the subscription: CREATE SUBSCRIPTION would
    // wait for its own transaction while creating it.
    auto publisher = Connect(Url(port, "native_source"));
    Exec(*publisher, std::string("CREATE PUBLICATION bench FOR TABLE ") + kTables);
    Exec(*publisher, "SELECT pg_create_logical_replication_slot('bench', 'pgoutput')");
  }
  Exec(*Connect(Url(port, "native_replica")),
       "CREATE SUBSCRIPTION bench CONNECTION 'host=127.0.0.1 port=" + std::to_string(port) +
           " user=lockstep password=" + kPassword +
           " dbname=native_source' PUBLICATION bench WITH (create_slot = false, "
           "slot_name = 'bench')");
  const Replication native = MeasureUnderLoad(
      Url(port, "native_source"), Url(port, "native_replica"), options, dir / "native.out");
  Exec(*Connect(Url(port, "native_replica")), "DROP SUBSCRIPTION bench");

  const double ratio = lockstep.tps / plain_tps;
  const double p50 = Percentile(lockstep.lags_ms, 0.5), p99 = Percentile(lockstep.lags_ms, 0.99);
  const double n50 = Percentile(native.lags_ms, 0.5), n99 = Percentile(native.lags_ms, 0.99);
  std::cout << "\n| measure | lockstep | baseline | ratio | target | verdict |\n"
            << "| --- | --- | --- | --- | --- | --- |\n"
            << "| pgbench tps (triggers + live sync vs none) | " << Fixed(lockstep.tps, 0) << " | "
            << Fixed(plain_tps, 0) << " | " << Fixed(100 * ratio, 0, " %") << " | >= 70 % | "
            << Verdict(ratio >= 0.7) << " |\n"
            << "| pgbench tps (triggers only, no sync running) | " << Fixed(triggers_tps, 0)
            << " | " << Fixed(plain_tps, 0) << " | "
            << Fixed(100 * triggers_tps / plain_tps, 0, " %") << " | info | |\n"
            << "| pgbench tps (logical replication running) | " << Fixed(native.tps, 0) << " | "
            << Fixed(plain_tps, 0) << " | " << Fixed(100 * native.tps / plain_tps, 0, " %")
            << " | info | |\n"
            << "| lag p50 (ms), " << lockstep.lags_ms.size() << " / " << native.lags_ms.size()
            << " probes | " << Fixed(p50, 1) << " | " << Fixed(n50, 1) << " (native) | "
            << Fixed(p50 / std::max(n50, 0.001), 1, "x") << " | info | |\n"
            << "| lag p99 (ms) | " << Fixed(p99, 1) << " | " << Fixed(n99, 1) << " (native) | "
            << Fixed(p99 / std::max(n99, 0.001), 1, "x") << " | <= 2x | " << Verdict(p99 <= 2 * n99)
            << " |\n"
            << "| catch-up after pgbench (s) | " << Fixed(lockstep.catch_up_s, 2) << " | "
            << Fixed(native.catch_up_s, 2) << " (native) | "
            << Fixed(lockstep.catch_up_s / std::max(native.catch_up_s, 0.001), 1, "x")
            << " | <= 2x | " << Verdict(lockstep.catch_up_s <= 2 * native.catch_up_s) << " |\n";
  StopCluster();
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace lockstep::bench

int main(int argc, char** argv) {
  lockstep::bench::Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--scale")
      options.scale = std::stoi(value);
    else if (flag == "--clients")
      options.clients = std::stoi(value);
    else if (flag == "--seconds")
      options.seconds = std::stoi(value);
    else if (flag == "--dir")
      options.dir = value;
    else
      lockstep::bench::Die("unknown option " + flag);
  }
  try {
    return lockstep::bench::Main(options);
  } catch (const std::exception& e) {
    lockstep::bench::Die(e.what());  // stops the processes and the cluster
  }
}
