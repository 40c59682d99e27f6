// End-to-end benchmarks of PostgreSQL in place (issue 6), on throwaway PostgreSQL 15 servers on
// loopback that it starts and always stops:
//   capture      pgbench transactions/s without capture, with the capture triggers alone, and with
//                them while `lockstep run` keeps the database in sync (a hub and a SQLite node);
//   replication  replication lag (p50, p99) while pgbench runs, and the catch-up time after it
//                ends, of a replicator under test (replicator.h).
// The capture arm attaches the tables with the PostgreSQL connector; the replication measurement
// runs PostgreSQL's own logical replication and Lockstep (a hub and `lockstep run` nodes) in
// alternation.
// Prints a Markdown table; see docs/BENCHMARKS.md for the commands and the recorded figures.
//
//   lockstep_postgres_bench [--runs N] [--seconds N] [--scale N] [--rate N] [--only NAME[,NAME]]
//                           [--dir PATH] [--statements N] [--lockstep PATH] [--probe-log PATH]
//                           [--pg-setting NAME=VALUE]... [--keep-logs DIR]
//   NAME: capture, replication; --rate: every pgbench run at N transactions/s (pgbench -R);
//   --lockstep: the `lockstep` binary under test (default: this build's);
//   --statements: profile the source's statements with pg_stat_statements and print the N
//   costliest of each capture run (the extension's own cost makes those runs no measurement)
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "connectors/postgres/pg_wake.h"
#include "lag_probes.h"
#include "lockstep_capture.h"
#include "postgres_bench_support.h"
#include "replicator.h"
#include "support/postgres_server.h"
#include "support/subprocess.h"

namespace lockstep::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using testing::PostgresServer;

constexpr const char* kTemplate = "pgbench_template";
constexpr const char* kAttachedTemplate = "pgbench_attached";
constexpr int kClients = 4;
constexpr double kInitialCopyLimitS = 600;
constexpr double kCatchUpLimitS = 600;

struct Options {
  int runs = 3;
  int seconds = 30;
  int scale = 10;
  int rate = 0;        // every pgbench's -R: transactions/s in all; 0 as fast as it can
  int statements = 0;  // capture runs: print the N costliest statements (pg_stat_statements)
  std::string lockstep = LOCKSTEP_BIN;  // the binary under test: this build's, or another's
  std::set<std::string> only;
  fs::path probe_log;  // each probe's commit and arrival, on the wall clock (AppendProbeLog)
  std::vector<std::string> pg_settings;  // extra settings of both servers (--pg-setting)
  fs::path keep_logs;                    // where both servers' logs are copied at the end
  fs::path dir;
};

// ---- what is stopped at exit -----------------------------------------------------------------

struct World {
  std::unique_ptr<PostgresServer> source;      // pgbench writes here; wal_level=logical
  std::unique_ptr<PostgresServer> subscriber;  // the replicas live here
  pid_t source_postmaster = 0;                 // whose processes' CPU time is measured
  std::vector<pid_t> children;                 // pgbench while it runs in the background
  fs::path scratch;
  fs::path keep_logs;  // --keep-logs: the servers' logs are copied here before they go
};

World& TheWorld() {
  static World world;
  return world;
}

// Die's cleanup: kills pgbench, stops both servers, removes the scratch directory.
void Cleanup() {
  World& world = TheWorld();
  StopAll();  // hub and nodes of the Lockstep arm
  for (pid_t pid : world.children) {
    kill(pid, SIGKILL);
    (void)testing::Wait(pid);
  }
  world.children.clear();
  if (!world.keep_logs.empty()) {
    std::error_code ec;
    fs::create_directories(world.keep_logs, ec);
    if (world.source) {
      fs::copy_file(world.source->log(), world.keep_logs / "source.log",
                    fs::copy_options::overwrite_existing, ec);
    }
    if (world.subscriber) {
      fs::copy_file(world.subscriber->log(), world.keep_logs / "subscriber.log",
                    fs::copy_options::overwrite_existing, ec);
    }
  }
  world.source.reset();
  world.subscriber.reset();
  if (!world.scratch.empty()) {
    std::error_code ec;
    fs::remove_all(world.scratch, ec);
  }
}

void Check(const Status& status, const std::string& what) {
  if (!status.ok()) Die(what + ": " + status.message());
}

std::unique_ptr<PostgresServer> StartServer(std::vector<std::string> settings) {
  auto server = std::make_unique<PostgresServer>(std::move(settings));
  Check(server->Start(), "starting PostgreSQL");
  return server;
}

// The load averages over 1, 5 and 15 minutes, for the report: the machine is shared.
std::string LoadAverage() {
  std::istringstream fields(ReadFile("/proc/loadavg"));
  std::string one, five, fifteen;
  fields >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// CPU seconds the server of `postmaster` has used so far: the postmaster's own, its live
// processes' (backends, WAL writer, ...), and those of its processes that have ended (their times
// move into the postmaster's children times when it reaps them; a zombie still shows its own).
double ServerCpuSeconds(pid_t postmaster) {
  double total = ProcessCpuSeconds(postmaster, /*ended_children=*/true);
  for (const fs::directory_entry& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (ParentProcess(pid) == postmaster) total += ProcessCpuSeconds(pid);
  }
  return total;
}

// Lets backends whose clients have gone finish exiting, so that no process is half counted
// (reaped between reading the postmaster and reading it).
void SettleServer() { std::this_thread::sleep_for(std::chrono::milliseconds(500)); }

double ChildrenCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  const auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// ---- pgbench ---------------------------------------------------------------------------------

std::string Pgbench() { return (testing::PostgresBin() / "pgbench").string(); }

struct PgbenchResult {
  double tps = 0;  // without initial connection time
  int64_t transactions = 0;
};

// Reads pgbench's report; dies when it shows failed transactions or no rate.
PgbenchResult ParsePgbench(const std::string& out, const std::string& err) {
  PgbenchResult result;
  std::smatch match;
  if (std::regex_search(out, match, std::regex(R"(tps = ([0-9.]+) \(without initial)"))) {
    result.tps = std::stod(match[1]);
  }
  if (std::regex_search(out, match, std::regex(R"(actually processed: ([0-9]+))"))) {
    result.transactions = std::stoll(match[1]);
  }
  if (std::regex_search(out, match, std::regex(R"(failed transactions: ([0-9]+))")) &&
      match[1] != "0") {
    Die("pgbench had failed transactions:\n" + out + err);
  }
  if (result.tps <= 0 || result.transactions <= 0) Die("pgbench reported no rate:\n" + out + err);
  return result;
}

// Runs pgbench with `args` to completion, bounded; dies when it fails. Returns its output.
testing::ProcessResult RunPgbenchCommand(const std::vector<std::string>& args, double limit_s) {
  std::vector<std::string> argv{Pgbench()};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::ProcessResult run = testing::RunWithin(
      argv, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limit_s)));
  if (run.exit_code != 0) Die("pgbench failed: " + CommandLine(argv, 60) + "\n" + run.err);
  return run;
}

// A timed pgbench run and its report.
PgbenchResult RunPgbench(const std::vector<std::string>& args, double limit_s) {
  const testing::ProcessResult run = RunPgbenchCommand(args, limit_s);
  return ParsePgbench(run.out, run.err);
}

// The pgbench tables at --scale with pgbench_history keyed, made once in database kTemplate:
// each run copies it (CREATE DATABASE ... TEMPLATE), so every run starts from the same data.
void MakeTemplate(const Options& options) {
  PostgresServer& source = *TheWorld().source;
  {
    PgConnection admin = Connect(source.Url("postgres"));
    Exec(*admin, std::string("CREATE DATABASE ") + kTemplate);
  }
  std::cerr << "  pgbench -i -s " << options.scale << "\n";
  RunPgbenchCommand({"-i", "-s", std::to_string(options.scale), "-q", source.Url(kTemplate)}, 1800);
  PgConnection db = Connect(source.Url(kTemplate));
  Exec(*db, kAddHistoryKey);
  Exec(*db, "CHECKPOINT");
}

// A fresh copy of `from` (kTemplate by default) called `name`; returns its URL.
std::string CopyTemplate(const std::string& name, const std::string& from = kTemplate) {
  PostgresServer& source = *TheWorld().source;
  PgConnection admin = Connect(source.Url("postgres"));
  Exec(*admin, "CREATE DATABASE " + name + " TEMPLATE " + from);
  return source.Url(name);
}

// kTemplate attached to Lockstep once (attaching makes each of its rows a local write, which
// takes long at scale 10): the capture runs copy it.
void MakeAttachedTemplate() {
  const auto start = Clock::now();
  AttachLockstep(CopyTemplate(kAttachedTemplate), PgbenchTables());
  Exec(*Connect(TheWorld().source->Url(kAttachedTemplate)), "CHECKPOINT");
  std::cerr << "  attached a copy to Lockstep in "
            << Fixed(std::chrono::duration<double>(Clock::now() - start).count(), 1, " s") << "\n";
}

void DropDatabase(const std::string& name) {
  PgConnection admin = Connect(TheWorld().source->Url("postgres"));
  Exec(*admin, "DROP DATABASE " + name + " WITH (FORCE)");
}

// ---- report ----------------------------------------------------------------------------------

struct Row {
  std::string measurement;
  std::string baseline;
  std::string subject;
  std::string ratio;
  std::string target;
  std::string result;
};

std::vector<Row>& Report() {
  static std::vector<Row> rows;
  return rows;
}

// "median (min–max)" of `values`, each with `decimals` and `unit`.
std::string Spread(const std::vector<double>& values, int decimals, const char* unit) {
  const auto [min, max] = std::minmax_element(values.begin(), values.end());
  return Fixed(Median(values), decimals, unit) + " (" + Fixed(*min, decimals) + "–" +
         Fixed(*max, decimals, unit) + ")";
}

void PrintReport(const Options& options, const std::string& load_before) {
  std::cout << "\nscale " << options.scale << ", " << options.seconds << " s per pgbench run, "
            << options.runs << " runs; load average before: " << load_before
            << ", after: " << LoadAverage() << "; figures: median over runs (min–max)\n\n";
  std::cout << "| measurement | baseline | subject | ratio | target | result |\n"
            << "| --- | --- | --- | ---: | --- | --- |\n";
  for (const Row& r : Report()) {
    std::cout << "| " << r.measurement << " | " << r.baseline << " | " << r.subject << " | "
              << r.ratio << " | " << r.target << " | " << r.result << " |\n";
  }
}

// ---- A. capture overhead ---------------------------------------------------------------------

// The arms of A, each run on its own database in every round.
enum class Arm {
  kNone,      // no capture: a fresh copy of kTemplate
  kTriggers,  // the triggers alone: a fresh copy of kAttachedTemplate, no engine
  kLive,      // the triggers while `lockstep run` keeps the database in sync (LiveEngine)
};

const char* ArmName(Arm arm) {
  switch (arm) {
    case Arm::kNone:
      return "without capture";
    case Arm::kTriggers:
      return "with the triggers";
    case Arm::kLive:
      return "with the triggers and a live engine";
  }
  return "";
}

// The live arm's database and its engine: a copy of kAttachedTemplate that a `lockstep run` node
// keeps in sync with a hub and a SQLite node (LockstepToSqlite), made once for every round,
// since the first copy of a million rows through the hub takes minutes. Its processes are frozen
// while the other arms run, so that its backlog costs them nothing, and thawed for its own runs,
// where the engine then works through whatever pgbench and earlier rounds left it.
struct LiveEngine {
  std::string url;
  std::unique_ptr<LockstepProcesses> lockstep;
};

constexpr const char* kLiveDatabase = "capture_live";

LiveEngine StartLiveEngine(const Options& options) {
  LiveEngine live;
  live.url = CopyTemplate(kLiveDatabase, kAttachedTemplate);
  {
    // The node file of LockstepReplication names the probe table too.
    PgConnection db = Connect(live.url);
    Exec(*db, kCreateProbeTable);
    Exec(*db, "VACUUM ANALYZE");
  }
  live.lockstep = LockstepToSqlite(TheWorld().scratch, options.lockstep);
  const auto start = Clock::now();
  Check(live.lockstep->Start(live.url, kInitialCopyLimitS), "starting the live engine");
  std::cerr << "  live engine: the hub and the SQLite node hold the source's rows after "
            << Fixed(std::chrono::duration<double>(Clock::now() - start).count(), 1, " s") << "\n";
  live.lockstep->Freeze(true);
  return live;
}

struct CaptureSample {
  double tps = 0;
  double server_us = 0;  // server CPU per transaction
  double client_us = 0;  // pgbench's CPU per transaction
  double engine_us = 0;  // the hub's and nodes' CPU per transaction (live arm)
  double total_us() const { return server_us + client_us + engine_us; }
};

// The notifications `listener` has received since it began to LISTEN (taken until none come).
size_t CountNotifications(store::PostgresDb& listener) {
  size_t count = 0;
  for (;;) {
    auto taken = listener.TakeNotifications();
    if (!taken.has_value()) Die("counting notifications: " + taken.error().message());
    count += taken->size();
    if (taken->empty()) return count;
    Check(listener.WaitForNotification(std::chrono::milliseconds(20)), "counting notifications");
  }
}

// The statements' counters of pg_stat_statements (--statements), kept in the `postgres` database.
void ResetStatements() {
  PgConnection db = Connect(TheWorld().source->Url("postgres"));
  Exec(*db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  Exec(*db, "SELECT pg_stat_statements_reset()");
}

// The `top` statements by execution time since ResetStatements, on stderr, with their time per
// pgbench transaction. Nested statements (the triggers', PL/pgSQL's) are listed too and also
// count in the statement that ran them.
void PrintStatements(int top, int64_t transactions) {
  PgConnection db = Connect(TheWorld().source->Url("postgres"));
  auto rows =
      QueryText(*db,
                "SELECT string_agg(format('    %s calls, %s rows, %s ms (%s µs/transaction, %s ms "
                "each): %s', calls, rows, round(total_exec_time), round(total_exec_time * 1000 / " +
                    std::to_string(std::max<int64_t>(1, transactions)) +
                    "), round(mean_exec_time::numeric, 3), left(regexp_replace(query, '\\s+', ' ', "
                    "'g'), 220)), E'\n') FROM (SELECT * FROM pg_stat_statements ORDER BY "
                    "total_exec_time DESC LIMIT " +
                    std::to_string(top) + ") s");
  if (!rows.has_value()) Die("reading pg_stat_statements: " + rows.error().message());
  std::cerr << "  statements by execution time:\n" << *rows << "\n";
}

// One pgbench run of `arm`: on a fresh copy of its template, or on the live engine's database.
CaptureSample CaptureRun(const Options& options, int run, Arm arm, LiveEngine& live) {
  const std::string name = "capture_" + std::to_string(run) + (arm == Arm::kNone ? "_off" : "_on");
  const std::string url = arm == Arm::kLive   ? live.url
                          : arm == Arm::kNone ? CopyTemplate(name, kTemplate)
                                              : CopyTemplate(name, kAttachedTemplate);
  if (arm == Arm::kLive) {
    live.lockstep->Freeze(false);
    // Sessions whose peer's silence outlasted their timeout while frozen dial again.
    std::this_thread::sleep_for(std::chrono::seconds(3));
  }
  // What the triggers notify while pgbench runs: with the wake flag, only while an engine sleeps.
  std::optional<PgConnection> listener;
  if (arm != Arm::kNone) {
    listener = Connect(url);
    Check((*listener)->Listen(connectors::postgres::kChannel), "listening");
  }
  const pid_t postmaster = TheWorld().source_postmaster;
  SettleServer();
  if (options.statements > 0) ResetStatements();
  const double server_before = ServerCpuSeconds(postmaster);
  const double client_before = ChildrenCpuSeconds();
  const double engine_before = arm == Arm::kLive ? live.lockstep->CpuSeconds() : 0;
  std::vector<std::string> args = {"-c", std::to_string(kClients),       "-j", "2",
                                   "-T", std::to_string(options.seconds)};
  if (options.rate > 0) args.insert(args.end(), {"-R", std::to_string(options.rate)});
  args.push_back(url);
  const PgbenchResult result = RunPgbench(args, options.seconds + 300.0);
  const double engine_s = arm == Arm::kLive ? live.lockstep->CpuSeconds() - engine_before : 0;
  if (arm == Arm::kLive) live.lockstep->Freeze(true);
  const double client_s = ChildrenCpuSeconds() - client_before;
  SettleServer();
  const double server_s = ServerCpuSeconds(postmaster) - server_before;
  std::string note;
  if (listener.has_value()) {
    note = ", " + std::to_string(CountNotifications(**listener)) + " notifications";
    listener.reset();
  }
  if (arm == Arm::kTriggers) {
    // Each TPC-B-like transaction changes one row of each table; pgbench finishes the
    // transactions it has begun when its time is up, so the counts match.
    const int64_t changes = CapturedChanges(url);
    const int64_t expected = 4 * result.transactions;
    if (changes < expected || changes > expected + 4 * kClients) {
      Die("capture saw " + std::to_string(changes) + " changes for " +
          std::to_string(result.transactions) + " transactions");
    }
  }
  if (arm == Arm::kLive) {
    note += ", " + std::to_string(CapturedChanges(url)) + " of the " +
            std::to_string(4 * result.transactions) +
            " row changes not yet stamped when pgbench ended (plus earlier rounds' backlog)";
  }
  if (options.statements > 0) PrintStatements(options.statements, result.transactions);
  if (arm != Arm::kLive) DropDatabase(name);
  const double transactions = static_cast<double>(result.transactions);
  const CaptureSample sample{result.tps, 1e6 * server_s / transactions,
                             1e6 * client_s / transactions, 1e6 * engine_s / transactions};
  std::cerr << "  run " << run + 1 << " " << ArmName(arm) << ": " << Fixed(sample.tps, 1)
            << " tps (" << result.transactions << " transactions), CPU "
            << Fixed(sample.server_us, 0) << " + " << Fixed(sample.client_us, 0)
            << (arm == Arm::kLive ? " + " + Fixed(sample.engine_us, 0) : std::string())
            << " µs per transaction (server + pgbench" << (arm == Arm::kLive ? " + Lockstep" : "")
            << ")" << note << ", load " << LoadAverage() << "\n";
  return sample;
}

// The figures of one arm over the rounds.
struct ArmFigures {
  std::vector<double> tps;
  std::vector<double> ratios;  // to the round's run without capture
  std::vector<double> cpu_us;  // per transaction, every process counted
};

void ReportArm(const Options& options, const std::string& label, const ArmFigures& plain,
               const ArmFigures& arm, const std::string& cpu_parts) {
  const std::string pgbench = "pgbench -c 4 -j 2 -T " + std::to_string(options.seconds) +
                              (options.rate > 0 ? " -R " + std::to_string(options.rate) : "");
  const double ratio = Median(arm.tps) / Median(plain.tps);
  Report().push_back(
      {"A. " + pgbench + ", transactions/s: " + label + " vs none",
       "no triggers: " + Spread(plain.tps, 0, " tps"), label + ": " + Spread(arm.tps, 0, " tps"),
       Fixed(100 * ratio, 1, " %") + " (of medians); per-run ratios " + Spread(arm.ratios, 1, " %"),
       "≥ 70 %", Verdict(ratio >= 0.70)});
  // On a shared machine throughput swings with the neighbours' load; the CPU each transaction
  // costs swings much less, and bounds the throughput ratio when the machine is CPU-bound.
  const double cpu_ratio = Median(plain.cpu_us) / Median(arm.cpu_us);
  Report().push_back({"A. the same runs: CPU per transaction (" + cpu_parts +
                          "); ratio = the throughput ratio a CPU-bound machine would see",
                      "no triggers: " + Spread(plain.cpu_us, 0, " µs"),
                      label + ": " + Spread(arm.cpu_us, 0, " µs"), Fixed(100 * cpu_ratio, 1, " %"),
                      "≥ 70 %", Verdict(cpu_ratio >= 0.70)});
}

void MeasureCapture(const Options& options) {
  MakeAttachedTemplate();
  LiveEngine live = StartLiveEngine(options);
  std::map<Arm, ArmFigures> figures;
  for (int run = 0; run < options.runs; ++run) {
    // Reversing the order every other round cancels a drift of the machine's load.
    std::vector<Arm> order = {Arm::kNone, Arm::kTriggers, Arm::kLive};
    if (run % 2 == 1) std::reverse(order.begin(), order.end());
    std::map<Arm, CaptureSample> samples;
    for (Arm arm : order) samples[arm] = CaptureRun(options, run, arm, live);
    for (const auto& [arm, sample] : samples) {
      figures[arm].tps.push_back(sample.tps);
      figures[arm].ratios.push_back(100 * sample.tps / samples[Arm::kNone].tps);
      figures[arm].cpu_us.push_back(sample.total_us());
    }
  }
  live.lockstep->Stop();
  DropDatabase(kLiveDatabase);
  ReportArm(options, "Lockstep's triggers", figures[Arm::kNone], figures[Arm::kTriggers],
            "server + pgbench");
  ReportArm(options, "Lockstep's triggers + live engine", figures[Arm::kNone], figures[Arm::kLive],
            "server + pgbench + Lockstep's hub and nodes");
}

// ---- B. replication lag and catch-up ---------------------------------------------------------

double SecondsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

struct ReplicaFigures {
  std::vector<double> lags_s;  // one per probe written while pgbench ran
  double catch_up_s = 0;
};

struct ReplicationRun {
  double tps = 0;
  std::vector<ReplicaFigures> replicas;  // in the replicator's order
};

double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size())));
  return values[std::max<size_t>(rank, 1) - 1];
}

// Once pgbench has ended at `end` and `final_probe` has been written after it: the time until
// `replica` shows the final probe and holds what the source holds (`source_print`). That is when
// the probe became visible if the first fingerprint taken then equals the source's (so for a
// replicator that keeps the source's commit order), else when the first equal fingerprint began.
double CatchUp(Replica& replica, ProbeWatcher& watcher, int64_t final_probe, Clock::time_point end,
               const std::string& source_print, ProbeTimes* seen) {
  const auto deadline = end + std::chrono::seconds(static_cast<int>(kCatchUpLimitS));
  while (watcher.seen() >= 0 && watcher.seen() < final_probe && Clock::now() < deadline) {
    std::this_thread::sleep_for(kWatchEvery);
  }
  auto times = watcher.Stop();
  if (!times.has_value()) Die(replica.name() + ": " + times.error().message());
  if (static_cast<int64_t>(times->size()) < final_probe) {
    Die(replica.name() + " did not catch up within " + Fixed(kCatchUpLimitS, 0, " s"));
  }
  *seen = std::move(*times);
  Clock::time_point caught_up = (*seen)[final_probe - 1];
  for (bool first = true;; first = false) {
    const auto asked = Clock::now();
    auto print = replica.Fingerprint();
    if (!print.has_value()) Die(replica.name() + ": " + print.error().message());
    if (*print == source_print) {
      if (!first) caught_up = asked;
      break;
    }
    if (Clock::now() > deadline) {
      Die(replica.name() + " still differs from the source: " + *print + " against " +
          source_print);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return SecondsBetween(end, caught_up);
}

// Milliseconds since the epoch on the wall clock at `when` (this program's steady clock), so
// that the probes can be lined up with the engine's batch trace (LOCKSTEP_TRACE_BATCHES), whose
// lines carry the wall clock.
double WallMillis(Clock::time_point when) {
  static const auto offset =
      std::chrono::system_clock::now().time_since_epoch() - Clock::now().time_since_epoch();
  return std::chrono::duration<double, std::milli>(when.time_since_epoch() + offset).count();
}

// With --probe-log: one line per probe and replica, appended: who, the probe's number, when its
// commit returned and when the replica showed it (wall clock, ms), and the lag.
void AppendProbeLog(const Options& options, const std::string& who, const ProbeTimes& acked,
                    const ProbeTimes& seen) {
  if (options.probe_log.empty()) return;
  std::ofstream log(options.probe_log, std::ios::app);
  for (size_t probe = 0; probe < acked.size() && probe < seen.size(); ++probe) {
    log << who << " probe=" << probe + 1 << " committed=" << Fixed(WallMillis(acked[probe]), 1)
        << " seen=" << Fixed(WallMillis(seen[probe]), 1)
        << " lag_ms=" << Fixed(1000 * SecondsBetween(acked[probe], seen[probe]), 1) << "\n";
  }
}

// One pgbench run while `replicator` keeps replicas of the database at `url`.
ReplicationRun RunWithProbes(const Options& options, const std::string& url,
                             Replicator& replicator) {
  std::vector<std::unique_ptr<ProbeWatcher>> watchers;
  for (Replica* replica : replicator.replicas()) {
    watchers.push_back(std::make_unique<ProbeWatcher>(*replica));
  }
  auto writer = std::make_unique<ProbeWriter>(url);
  // -n: no vacuum (done before) and, above all, no TRUNCATE of pgbench_history, which is not a
  // row change that row triggers would capture.
  const fs::path out = TheWorld().scratch / "pgbench.out";
  const fs::path err = TheWorld().scratch / "pgbench.err";
  std::vector<std::string> args = {
      Pgbench(), "-n", "-c", std::to_string(kClients), "-T", std::to_string(options.seconds)};
  if (options.rate > 0) args.insert(args.end(), {"-R", std::to_string(options.rate)});
  args.push_back(url);
  const pid_t pid = testing::SpawnWithFiles(args, "/dev/null", out, err);
  if (pid < 0) Die("cannot start pgbench");
  TheWorld().children.push_back(pid);
  const std::optional<int> code =
      testing::WaitWithin(pid, std::chrono::seconds(options.seconds + 300));
  const auto end = Clock::now();
  std::erase(TheWorld().children, pid);
  auto acked = writer->Stop();
  writer.reset();
  if (code != 0) Die("pgbench failed or overran:\n" + ReadFile(err));
  if (!acked.has_value()) Die("probe writer: " + acked.error().message());
  const PgbenchResult result = ParsePgbench(ReadFile(out), ReadFile(err));

  PgConnection source = Connect(url);
  const int64_t final_probe = static_cast<int64_t>(acked->size()) + 1;
  Exec(*source, std::string("INSERT INTO ") + kProbeTable + " (id) VALUES (" +
                    std::to_string(final_probe) + ")");
  auto source_print = QueryText(*source, kFingerprintSql);
  if (!source_print.has_value()) Die("source: " + source_print.error().message());

  ReplicationRun run{result.tps, {}};
  const std::vector<Replica*> replicas = replicator.replicas();
  for (size_t i = 0; i < replicas.size(); ++i) {
    ReplicaFigures figures;
    ProbeTimes seen;
    figures.catch_up_s =
        CatchUp(*replicas[i], *watchers[i], final_probe, end, *source_print, &seen);
    AppendProbeLog(options, replicator.name() + " " + replicas[i]->name(), *acked, seen);
    for (size_t probe = 0; probe < acked->size(); ++probe) {
      // A probe can show up before its writer got the commit's answer: that is no lag.
      figures.lags_s.push_back(std::max(0.0, SecondsBetween((*acked)[probe], seen[probe])));
    }
    run.replicas.push_back(std::move(figures));
  }
  return run;
}

// One round of pgbench under `replicator`, on a fresh copy of the template.
ReplicationRun MeasureReplicator(const Options& options, int run, Replicator& replicator) {
  const std::string name = "replication_" + std::to_string(run);
  const std::string url = CopyTemplate(name);
  {
    PgConnection db = Connect(url);
    Exec(*db, kCreateProbeTable);
    Exec(*db, "VACUUM ANALYZE");
  }
  const auto start = Clock::now();
  Check(replicator.Start(url, kInitialCopyLimitS), replicator.name());
  std::cerr << "  " << replicator.name() << ": initial copy in "
            << Fixed(SecondsBetween(start, Clock::now()), 1, " s") << "\n";
  {
    PgConnection db = Connect(url);
    auto source_print = QueryText(*db, kFingerprintSql);
    if (!source_print.has_value()) Die("source: " + source_print.error().message());
    for (Replica* replica : replicator.replicas()) {
      auto print = replica->Fingerprint();
      if (!print.has_value() || *print != *source_print) {
        Die(replica->name() + " differs from the source after the initial copy");
      }
    }
  }
  ReplicationRun result = RunWithProbes(options, url, replicator);
  const std::vector<Replica*> replicas = replicator.replicas();
  for (size_t i = 0; i < replicas.size(); ++i) {
    const ReplicaFigures& figures = result.replicas[i];
    std::cerr << "  run " << run + 1 << ", " << replicator.name() << ", " << replicas[i]->name()
              << ": " << Fixed(result.tps, 1) << " tps, lag p50 "
              << Fixed(1000 * Percentile(figures.lags_s, 0.5), 1, " ms") << ", p99 "
              << Fixed(1000 * Percentile(figures.lags_s, 0.99), 1, " ms") << ", catch-up "
              << Fixed(1000 * figures.catch_up_s, 1, " ms") << " (" << figures.lags_s.size()
              << " probes), load " << LoadAverage() << "\n";
  }
  replicator.Stop();
  DropDatabase(name);
  return result;
}

// Medians over runs of one replica's figures, in milliseconds.
struct ReplicaSummary {
  std::string name;
  std::vector<double> p50;
  std::vector<double> p99;
  std::vector<double> catch_up;
};

// One summary per replica, named by `names` in the replicator's order.
std::vector<ReplicaSummary> Summarize(const std::vector<ReplicationRun>& runs,
                                      const std::vector<std::string>& names) {
  std::vector<ReplicaSummary> summaries;
  for (size_t i = 0; i < runs.front().replicas.size(); ++i) {
    ReplicaSummary summary;
    summary.name = i < names.size() ? names[i] : "replica " + std::to_string(i + 1);
    for (const ReplicationRun& run : runs) {
      const ReplicaFigures& figures = run.replicas[i];
      summary.p50.push_back(1000 * Percentile(figures.lags_s, 0.5));
      summary.p99.push_back(1000 * Percentile(figures.lags_s, 0.99));
      summary.catch_up.push_back(1000 * figures.catch_up_s);
    }
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

void MeasureReplication(const Options& options) {
  World& world = TheWorld();
  std::unique_ptr<Replicator> native = NativeLogicalReplication(*world.subscriber, options.scale);
  std::unique_ptr<Replicator> lockstep =
      LockstepReplication(*world.subscriber, options.scale, world.scratch, options.lockstep);
  std::vector<ReplicationRun> native_runs;
  std::vector<ReplicationRun> lockstep_runs;
  for (int run = 0; run < options.runs; ++run) {
    // Alternating, as in the capture measurement.
    const bool lockstep_first = run % 2 == 1;
    if (lockstep_first) lockstep_runs.push_back(MeasureReplicator(options, run, *lockstep));
    native_runs.push_back(MeasureReplicator(options, run, *native));
    if (!lockstep_first) lockstep_runs.push_back(MeasureReplicator(options, run, *lockstep));
  }
  std::vector<double> native_tps;
  std::vector<double> lockstep_tps;
  for (const ReplicationRun& run : native_runs) native_tps.push_back(run.tps);
  for (const ReplicationRun& run : lockstep_runs) lockstep_tps.push_back(run.tps);
  // The replicas exist only while a replicator runs; their order is fixed (replicator.h).
  const ReplicaSummary base = Summarize(native_runs, {"PostgreSQL subscriber"}).front();
  const std::vector<ReplicaSummary> subjects =
      Summarize(lockstep_runs, {"PostgreSQL node", "SQLite node"});

  const std::string during = "during pgbench -n -c 4 -T " + std::to_string(options.seconds) +
                             (options.rate > 0 ? " -R " + std::to_string(options.rate) : "");
  const std::string native_label = "native logical replication: ";
  for (const ReplicaSummary& subject : subjects) {
    const std::string who = "Lockstep → " + subject.name + ": ";
    const double p99_ratio = Median(subject.p99) / Median(base.p99);
    const double catch_up_ratio = Median(subject.catch_up) / Median(base.catch_up);
    Report().push_back({"B. lag p50 " + during + " (probe every 100 ms, polled every 5 ms)",
                        native_label + Spread(base.p50, 1, " ms"),
                        who + Spread(subject.p50, 1, " ms"),
                        Fixed(Median(subject.p50) / Median(base.p50), 1, "×"), "—", ""});
    Report().push_back({"B. lag p99 " + during, native_label + Spread(base.p99, 1, " ms"),
                        who + Spread(subject.p99, 1, " ms"), Fixed(p99_ratio, 1, "×"),
                        "≤ 2× native", Verdict(p99_ratio <= 2)});
    Report().push_back({"B. catch-up after pgbench ends",
                        native_label + Spread(base.catch_up, 1, " ms"),
                        who + Spread(subject.catch_up, 1, " ms"), Fixed(catch_up_ratio, 1, "×"),
                        "≤ 2× native", Verdict(catch_up_ratio <= 2)});
  }
  Report().push_back({"B. pgbench transactions/s while replicating",
                      native_label + Spread(native_tps, 0, " tps"),
                      "Lockstep: " + Spread(lockstep_tps, 0, " tps"),
                      Fixed(100 * Median(lockstep_tps) / Median(native_tps), 1, " %"), "—", ""});
}

// ---- main ------------------------------------------------------------------------------------

int Number(const std::string& flag, const std::string& value, int low, int high) {
  char* end = nullptr;
  const long number = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || number < low || number > high) {
    Die(flag + " must be a whole number within " + std::to_string(low) + ".." +
        std::to_string(high));
  }
  return static_cast<int>(number);
}

Options Parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Die("missing value after " + flag);
    const std::string value = argv[++i];
    if (flag == "--runs") {
      options.runs = Number(flag, value, 1, 20);
    } else if (flag == "--seconds") {
      options.seconds = Number(flag, value, 1, 600);
    } else if (flag == "--scale") {
      options.scale = Number(flag, value, 1, 1000);
    } else if (flag == "--rate") {
      options.rate = Number(flag, value, 1, 1'000'000);
    } else if (flag == "--only") {
      std::stringstream names(value);
      for (std::string name; std::getline(names, name, ',');) options.only.insert(name);
    } else if (flag == "--dir") {
      options.dir = value;
    } else if (flag == "--statements") {
      options.statements = Number(flag, value, 1, 100);
    } else if (flag == "--lockstep") {
      options.lockstep = value;
    } else if (flag == "--probe-log") {
      options.probe_log = value;
    } else if (flag == "--pg-setting") {
      options.pg_settings.push_back(value);
    } else if (flag == "--keep-logs") {
      options.keep_logs = value;
    } else {
      Die("unknown flag " + flag +
          " (--runs N, --seconds N, --scale N, --rate N, --only NAME[,NAME], --dir PATH, "
          "--statements N, --lockstep PATH, --probe-log PATH, --pg-setting NAME=VALUE, "
          "--keep-logs DIR; NAME: capture, replication)");
    }
  }
  return options;
}

int Main(int argc, char** argv) {
  SetDieHandler("lockstep_postgres_bench", Cleanup);
  const Options options = Parse(argc, argv);
  const std::vector<std::pair<std::string, void (*)(const Options&)>> benches = {
      {"capture", MeasureCapture},
      {"replication", MeasureReplication},
  };
  for (const std::string& name : options.only) {
    if (std::none_of(benches.begin(), benches.end(), [&](auto& b) { return b.first == name; })) {
      Die("unknown benchmark " + name);
    }
  }
  const auto wanted = [&](const std::string& name) {
    return options.only.empty() || options.only.contains(name);
  };
  const std::string load_before = LoadAverage();
  World& world = TheWorld();
  world.scratch = MakeScratchDir(options.dir, "lockstep-postgres-bench");
  // The source publishes to the subscriber in the replication measurement. Both servers keep
  // the support code's fsync=off (a shared machine's disk flushes would swamp the figures and
  // hide the triggers' cost) and get room for the scale-10 data set in shared buffers. The source
  // commits synchronously, as in production: with synchronous_commit=off, a walsender only sends
  // WAL that the WAL writer has flushed, which would add up to wal_writer_delay (200 ms) to the
  // native lag, a handicap Lockstep's NOTIFY-driven capture would not have.
  world.keep_logs = options.keep_logs;
  std::vector<std::string> source_settings = {"wal_level=logical", "synchronous_commit=on",
                                              "shared_buffers=256MB"};
  std::vector<std::string> subscriber_settings = {"shared_buffers=256MB"};
  if (options.statements > 0) {
    source_settings.insert(source_settings.end(), {"shared_preload_libraries=pg_stat_statements",
                                                   "pg_stat_statements.track=all"});
  }
  for (const std::string& setting : options.pg_settings) {
    source_settings.push_back(setting);
    subscriber_settings.push_back(setting);
  }
  world.source = StartServer(std::move(source_settings));
  if (wanted("replication")) world.subscriber = StartServer(subscriber_settings);
  {
    PgConnection db = Connect(world.source->Url("postgres"));
    world.source_postmaster =
        ParentProcess(static_cast<pid_t>(QueryInt(*db, "SELECT pg_backend_pid()")));
  }
  std::cerr << "source on port " << world.source->port() << ", load " << load_before << "\n";
  MakeTemplate(options);
  for (const auto& [name, run] : benches) {
    if (!wanted(name)) continue;
    std::cerr << name << "\n";
    run(options);
  }
  PrintReport(options, load_before);
  Cleanup();
  return 0;
}

}  // namespace
}  // namespace lockstep::bench

int main(int argc, char** argv) { return lockstep::bench::Main(argc, argv); }
