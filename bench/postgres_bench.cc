// End-to-end benchmarks of PostgreSQL in place (issue 6), on throwaway PostgreSQL 15 servers on
// loopback that it starts and always stops:
//   capture      pgbench transactions/s with capture triggers versus without, runs alternating;
//   replication  replication lag (p50, p99) while pgbench runs, and the catch-up time after it
//                ends, of a replicator under test (replicator.h).
// The capture arm attaches the tables with the PostgreSQL connector; the replication measurement
// runs PostgreSQL's own logical replication and Lockstep (a hub and `lockstep run` nodes) in
// alternation.
// Prints a Markdown table; see docs/BENCHMARKS.md for the commands and the recorded figures.
//
//   lockstep_postgres_bench [--runs N] [--seconds N] [--scale N] [--only NAME[,NAME]] [--dir PATH]
//   NAME: capture, replication
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
#include <iostream>
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
  std::set<std::string> only;
  fs::path dir;
};

// ---- what is stopped at exit -----------------------------------------------------------------

struct World {
  std::unique_ptr<PostgresServer> source;      // pgbench writes here; wal_level=logical
  std::unique_ptr<PostgresServer> subscriber;  // the replicas live here
  pid_t source_postmaster = 0;                 // whose processes' CPU time is measured
  std::vector<pid_t> children;                 // pgbench while it runs in the background
  fs::path scratch;
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

struct CaptureSample {
  double tps = 0;
  double server_us = 0;  // server CPU per transaction
  double client_us = 0;  // pgbench's CPU per transaction
};

// One pgbench run on a fresh copy of the template, attached to Lockstep or not.
CaptureSample CaptureRun(const Options& options, int run, bool captured) {
  const std::string name = "capture_" + std::to_string(run) + (captured ? "_on" : "_off");
  const std::string url = CopyTemplate(name, captured ? kAttachedTemplate : kTemplate);
  const pid_t postmaster = TheWorld().source_postmaster;
  SettleServer();
  const double server_before = ServerCpuSeconds(postmaster);
  const double client_before = ChildrenCpuSeconds();
  const PgbenchResult result = RunPgbench(
      {"-c", std::to_string(kClients), "-j", "2", "-T", std::to_string(options.seconds), url},
      options.seconds + 300.0);
  const double client_s = ChildrenCpuSeconds() - client_before;
  SettleServer();
  const double server_s = ServerCpuSeconds(postmaster) - server_before;
  if (captured) {
    // Each TPC-B-like transaction changes one row of each table; pgbench finishes the
    // transactions it has begun when its time is up, so the counts match.
    const int64_t changes = CapturedChanges(url);
    const int64_t expected = 4 * result.transactions;
    if (changes < expected || changes > expected + 4 * kClients) {
      Die("capture saw " + std::to_string(changes) + " changes for " +
          std::to_string(result.transactions) + " transactions");
    }
  }
  DropDatabase(name);
  const double transactions = static_cast<double>(result.transactions);
  const CaptureSample sample{result.tps, 1e6 * server_s / transactions,
                             1e6 * client_s / transactions};
  std::cerr << "  run " << run + 1 << (captured ? " with capture: " : " without: ")
            << Fixed(sample.tps, 1) << " tps (" << result.transactions << " transactions), CPU "
            << Fixed(sample.server_us, 0) << " + " << Fixed(sample.client_us, 0)
            << " µs per transaction (server + pgbench), load " << LoadAverage() << "\n";
  return sample;
}

void MeasureCapture(const Options& options) {
  MakeAttachedTemplate();
  std::vector<double> plain;
  std::vector<double> captured;
  std::vector<double> ratios;
  std::vector<double> plain_cpu;
  std::vector<double> captured_cpu;
  for (int run = 0; run < options.runs; ++run) {
    // Alternating which arm goes first cancels a drift of the machine's load over the runs.
    const bool capture_first = run % 2 == 1;
    CaptureSample off;
    CaptureSample on;
    if (capture_first) on = CaptureRun(options, run, true);
    off = CaptureRun(options, run, false);
    if (!capture_first) on = CaptureRun(options, run, true);
    plain.push_back(off.tps);
    captured.push_back(on.tps);
    ratios.push_back(100 * on.tps / off.tps);
    plain_cpu.push_back(off.server_us + off.client_us);
    captured_cpu.push_back(on.server_us + on.client_us);
  }
  const std::string pgbench = "pgbench -c 4 -j 2 -T " + std::to_string(options.seconds);
  const double ratio = Median(captured) / Median(plain);
  Report().push_back(
      {"A. " + pgbench + ", transactions/s: Lockstep's capture triggers vs none",
       "no triggers: " + Spread(plain, 0, " tps"),
       "Lockstep's triggers: " + Spread(captured, 0, " tps"),
       Fixed(100 * ratio, 1, " %") + " (of medians); per-run ratios " + Spread(ratios, 1, " %"),
       "≥ 70 %", Verdict(ratio >= 0.70)});
  // On a shared machine throughput swings with the neighbours' load; the CPU each transaction
  // costs swings much less, and bounds the throughput ratio when the machine is CPU-bound.
  const double cpu_ratio = Median(plain_cpu) / Median(captured_cpu);
  Report().push_back(
      {"A. the same runs: CPU per transaction (server + pgbench); ratio = the "
       "throughput ratio a CPU-bound machine would see",
       "no triggers: " + Spread(plain_cpu, 0, " µs"),
       "Lockstep's triggers: " + Spread(captured_cpu, 0, " µs"), Fixed(100 * cpu_ratio, 1, " %"),
       "≥ 70 %", Verdict(cpu_ratio >= 0.70)});
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
  const pid_t pid = testing::SpawnWithFiles(
      {Pgbench(), "-n", "-c", std::to_string(kClients), "-T", std::to_string(options.seconds), url},
      "/dev/null", out, err);
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
      LockstepReplication(*world.subscriber, options.scale, world.scratch, LOCKSTEP_BIN);
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

  const std::string during = "during pgbench -n -c 4 -T " + std::to_string(options.seconds);
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
    } else if (flag == "--only") {
      std::stringstream names(value);
      for (std::string name; std::getline(names, name, ',');) options.only.insert(name);
    } else if (flag == "--dir") {
      options.dir = value;
    } else {
      Die("unknown flag " + flag +
          " (--runs N, --seconds N, --scale N, --only NAME[,NAME], --dir PATH; NAME: capture, "
          "replication)");
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
  world.source =
      StartServer({"wal_level=logical", "synchronous_commit=on", "shared_buffers=256MB"});
  if (wanted("replication")) world.subscriber = StartServer({"shared_buffers=256MB"});
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
