// End-to-end benchmarks of SQLite sync (issue 3): capture overhead on inserts, initial sync,
// incremental and no-change re-sync, and apply throughput, each beside a baseline measured in the
// same run (runs alternate), printed as a Markdown table with PASS/FAIL against the issue's
// targets. It runs the real `lockstep` binary and the `sqlite3` CLI as processes and calls the
// library in-process. See docs/BENCHMARKS.md for the commands and the recorded figures.
//
//   lockstep_sqlite_bench [--rows N] [--runs N] [--only NAME[,NAME...]] [--dir PATH]
//   NAME: capture, capture-normal, capture-floor, initial, incremental, nochange, apply
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/clock.h"
#include "bench_support.h"
#include "connectors/sqlite/sqlite_source.h"
#include "store/replica_store.h"
#include "store/sqlite_db.h"

namespace lockstep::bench {
namespace {

namespace fs = std::filesystem;
using connectors::sqlite::SqliteSource;

constexpr const char* kLockstep = LOCKSTEP_BIN;
constexpr const char* kTable = "t";
constexpr const char* kCreateTable =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c REAL, d TEXT)";
constexpr int64_t kSmallRows = 10'000;  // the small table of the incremental comparison
constexpr int kChangedRows = 1'000;     // rows updated before an incremental sync
constexpr size_t kApplyPage = 100'000;  // records per Apply, as read by ChangesAfter

struct Options {
  int64_t rows = 1'000'000;
  int runs = 0;  // 0: 3 for long measurements, 5 for short ones
  std::set<std::string> only;
  fs::path dir;
};

void Check(const Status& status, const std::string& what) {
  if (!status.ok()) Die(what + ": " + status.message());
}

template <typename T>
T Take(Result<T> result, const std::string& what) {
  if (!result.has_value()) Die(what + ": " + result.error().message());
  return std::move(*result);
}

// ---- timing ----------------------------------------------------------------------------------

struct Sample {
  double wall_s = 0;
  double cpu_s = 0;  // user + sys
};

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

double CpuSeconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  return Seconds(usage.ru_utime) + Seconds(usage.ru_stime);
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Tells a `perf record --control fifo:PATH -D -1` started around this benchmark to sample only
// the measured sections, when LOCKSTEP_BENCH_PERF_CTL names its control fifo: "enable" or
// "disable". Profiles of the setup (making and attaching a million rows) would drown the rest.
void ProfilerControl(const char* command) {
  static FILE* fifo = [] {
    const char* path = std::getenv("LOCKSTEP_BENCH_PERF_CTL");
    return path == nullptr ? nullptr : std::fopen(path, "w");
  }();
  if (fifo == nullptr) return;
  std::fprintf(fifo, "%s\n", command);
  std::fflush(fifo);
}

// Measures `body` (RUSAGE_SELF for in-process work, RUSAGE_CHILDREN for processes it waits for).
template <typename Body>
Sample Measure(int who, Body body) {
  const double cpu = CpuSeconds(who);
  const double wall = WallSeconds();
  body();
  return {WallSeconds() - wall, CpuSeconds(who) - cpu};
}

// Measure, with the profiler (if any) sampling only `body`.
template <typename Body>
Sample MeasureProfiled(int who, Body body) {
  ProfilerControl("enable");
  const Sample sample = Measure(who, body);
  ProfilerControl("disable");
  return sample;
}

struct Stats {
  double wall = 0;  // medians
  double cpu = 0;
  double min_wall = 0;
  double max_wall = 0;
};

Stats Summarize(const std::vector<Sample>& samples) {
  std::vector<double> walls;
  std::vector<double> cpus;
  for (const Sample& s : samples) {
    walls.push_back(s.wall_s);
    cpus.push_back(s.cpu_s);
  }
  return {Median(walls), Median(cpus), *std::min_element(walls.begin(), walls.end()),
          *std::max_element(walls.begin(), walls.end())};
}

// ---- processes -------------------------------------------------------------------------------

// Runs argv[0] (looked up in PATH) with stdout sent to `out` (/dev/null when empty) and waits.
void RunProcess(const std::vector<std::string>& args, const fs::path& out = {}) {
  const pid_t pid = StartProcess(args, out, std::nullopt);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) Die("waitpid failed for " + args[0]);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("command failed: " + CommandLine(args, 200));
  }
}

std::string Quote(const fs::path& path) { return "'" + path.string() + "'"; }

Sample TimeProcess(const std::vector<std::string>& args, const fs::path& out = {}) {
  return Measure(RUSAGE_CHILDREN, [&] { RunProcess(args, out); });
}

// ---- databases -------------------------------------------------------------------------------

void RemoveDb(const fs::path& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path.string() + suffix);
}

Db OpenDb(const fs::path& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Die("cannot open " + path.string());
  return Db(db);
}

int64_t QueryInt(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) Die("prepare: " + sql);
  const int64_t value = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  return value;
}

uint64_t Mix(uint64_t x) {  // splitmix64: deterministic row contents
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

// Inserts rows 1..rows with a prepared INSERT, one transaction per `batch` rows. Row i has a
// ~20-byte text, an integer, a real and a ~36-byte text: about 64 MB for a million rows.
void InsertRows(sqlite3* db, int64_t rows, int64_t batch) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO t (id, a, b, c, d) VALUES (?, ?, ?, ?, ?)", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    Die("prepare insert");
  }
  char a[32];
  char d[64];
  for (int64_t id = 1; id <= rows; ++id) {
    if ((id - 1) % batch == 0) Exec(db, "BEGIN");
    const uint64_t h = Mix(static_cast<uint64_t>(id));
    const int a_len = std::snprintf(a, sizeof a, "name-%014llu", (unsigned long long)(h >> 16));
    const int d_len =
        std::snprintf(d, sizeof d, "note %016llx row %lld", (unsigned long long)h, (long long)id);
    sqlite3_bind_int64(stmt, 1, id);
    sqlite3_bind_text(stmt, 2, a, a_len, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, static_cast<int64_t>(h % 1'000'000));
    sqlite3_bind_double(stmt, 4, static_cast<double>(h % 100'000) / 7.0);
    sqlite3_bind_text(stmt, 5, d, d_len, SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE) Die(std::string("insert: ") + sqlite3_errmsg(db));
    sqlite3_reset(stmt);
    if (id % batch == 0 || id == rows) Exec(db, "COMMIT");
  }
  sqlite3_finalize(stmt);
}

// A plain database holding `rows` rows (rollback journal, no Lockstep tables), made once.
fs::path Template(const Options& options, int64_t rows) {
  const fs::path path = options.dir / ("template-" + std::to_string(rows) + ".db");
  if (fs::exists(path)) return path;
  Db db = OpenDb(path);
  Exec(db.get(), "PRAGMA synchronous = OFF");
  Exec(db.get(), kCreateTable);
  InsertRows(db.get(), rows, 100'000);
  return path;
}

void CopyDb(const fs::path& from, const fs::path& to) {
  RemoveDb(to);
  fs::copy_file(from, to);
}

// Installs Lockstep's capture triggers the way `lockstep sync` does, on a database holding
// table t (empty).
void AttachInProcess(const fs::path& path) {
  auto source = Take(SqliteSource::Open(path, false, base::SystemClock::Get()), "open");
  auto schema = Take(source->Schema(kTable), "schema");
  if (!schema.has_value()) Die("table t missing in " + path.string());
  Check(source->Attach(std::span(&*schema, 1), ""), "attach");
}

// A pair a.db / b.db of `rows` rows synced once by `lockstep sync` (and re-synced so that
// nothing is pending), made once per process.
struct Pair {
  fs::path a;
  fs::path b;
};

Pair SyncedPair(const Options& options, int64_t rows) {
  static std::map<int64_t, Pair> made;
  if (auto it = made.find(rows); it != made.end()) return it->second;
  const std::string tag = std::to_string(rows);
  Pair pair{options.dir / ("pair-" + tag + "-a.db"), options.dir / ("pair-" + tag + "-b.db")};
  CopyDb(Template(options, rows), pair.a);
  RemoveDb(pair.b);
  std::cerr << "  preparing synced pair of " << rows << " rows\n";
  RunProcess({kLockstep, "sync", pair.a.string(), pair.b.string()});
  RunProcess({kLockstep, "sync", pair.a.string(), pair.b.string()});
  made[rows] = pair;
  return pair;
}

// ---- report ----------------------------------------------------------------------------------

struct Row {
  std::string measurement;
  std::string baseline;
  std::optional<Stats> base;
  std::string subject;
  Stats subj;
  std::string ratio;
  std::string figure;  // what the target judges
  std::string target;
  std::string result;  // PASS, FAIL or empty
};

std::string Ms(double seconds) {
  char text[32];
  if (seconds >= 10) {
    std::snprintf(text, sizeof text, "%.1f s", seconds);
  } else if (seconds >= 1) {
    std::snprintf(text, sizeof text, "%.2f s", seconds);
  } else {
    std::snprintf(text, sizeof text, "%.1f ms", seconds * 1000);
  }
  return text;
}

std::string Cell(const std::string& label, const Stats& s) {
  return label + ": " + Ms(s.wall) + " (" + Ms(s.min_wall) + "–" + Ms(s.max_wall) + "), CPU " +
         Ms(s.cpu);
}

std::vector<Row>& Report() {
  static std::vector<Row> rows;
  return rows;
}

void Add(Row row) {
  std::cerr << "  " << row.measurement << ": " << Cell(row.subject, row.subj) << " " << row.figure
            << " " << row.result << "\n";
  Report().push_back(std::move(row));
}

void PrintReport(const Options& options) {
  std::cout << "\nrows: " << options.rows
            << ", runs: " << (options.runs > 0 ? std::to_string(options.runs) : "3 long / 5 short")
            << "; wall: median (min–max), CPU: median user+sys\n\n";
  std::cout << "| measurement | baseline | subject | ratio (wall) | figure | target | result |\n"
            << "| --- | --- | --- | ---: | ---: | --- | --- |\n";
  for (const Row& r : Report()) {
    std::cout << "| " << r.measurement << " | " << (r.base ? Cell(r.baseline, *r.base) : "—")
              << " | " << Cell(r.subject, r.subj) << " | " << r.ratio << " | " << r.figure << " | "
              << r.target << " | " << r.result << " |\n";
  }
}

int Runs(const Options& options, int fallback) {
  return options.runs > 0 ? options.runs : fallback;
}

// ---- 1. capture overhead ---------------------------------------------------------------------

Sample InsertRun(const Options& options, bool captured, const std::string& synchronous) {
  const fs::path path = options.dir / (captured ? "capture-on.db" : "capture-off.db");
  RemoveDb(path);
  {
    Db db = OpenDb(path);
    Exec(db.get(), kCreateTable);
  }
  if (captured) AttachInProcess(path);  // also switches the file to WAL
  Db db = OpenDb(path);
  Exec(db.get(), "PRAGMA journal_mode = WAL");
  Exec(db.get(), "PRAGMA synchronous = " + synchronous);
  const Sample sample = Measure(RUSAGE_SELF, [&] { InsertRows(db.get(), options.rows, 1'000); });
  const int64_t captured_rows =
      captured ? QueryInt(db.get(), "SELECT count(*) FROM _lockstep_capture_t") : 0;
  if (captured && captured_rows != options.rows) Die("capture triggers did not fire");
  return sample;
}

void BenchCapture(const Options& options, const std::string& synchronous) {
  std::vector<Sample> base;
  std::vector<Sample> subject;
  for (int i = 0; i < Runs(options, 3); ++i) {
    base.push_back(InsertRun(options, false, synchronous));
    subject.push_back(InsertRun(options, true, synchronous));
  }
  const Stats b = Summarize(base);
  const Stats s = Summarize(subject);
  const double ratio = s.wall / b.wall;
  Add({"1. capture: " + Count(options.rows) +
           " inserts, 1,000 per transaction, WAL, synchronous=" + synchronous,
       "no triggers", b, "capture triggers", s, Fixed(ratio, 2, "×"),
       "CPU " + Fixed(s.cpu / b.cpu, 2, "×"), "≤ 1.5×", Verdict(ratio <= 1.5)});
}

// What any trigger costs, before it does anything: the same inserts into the table with and
// without a trigger that never fires, on the benchmark's table and on the same table without a
// primary key. A trigger makes SQLite open a statement journal for each INSERT that may abort
// (a primary key's uniqueness check may), and copy the pages it changes into it; without a
// constraint that may abort there is none. CPU is the figure: synchronous=NORMAL, few fsyncs.
Sample FloorRun(const Options& options, const std::string& create, const std::string& trigger) {
  const fs::path path = options.dir / "capture-floor.db";
  RemoveDb(path);
  Db db = OpenDb(path);
  Exec(db.get(), "PRAGMA journal_mode = WAL");
  Exec(db.get(), "PRAGMA synchronous = NORMAL");
  Exec(db.get(), create);
  if (!trigger.empty()) Exec(db.get(), trigger);
  return Measure(RUSAGE_SELF, [&] { InsertRows(db.get(), options.rows, 1'000); });
}

void BenchCaptureFloor(const Options& options) {
  const std::string without_key = "CREATE TABLE t (id INTEGER, a TEXT, b INTEGER, c REAL, d TEXT)";
  const std::string never_fires =
      "CREATE TRIGGER never AFTER INSERT ON t WHEN 0 BEGIN SELECT 1; END";
  std::vector<Sample> keyed;
  std::vector<Sample> keyed_trigger;
  std::vector<Sample> unkeyed;
  std::vector<Sample> unkeyed_trigger;
  for (int i = 0; i < Runs(options, 3); ++i) {
    keyed.push_back(FloorRun(options, kCreateTable, ""));
    keyed_trigger.push_back(FloorRun(options, kCreateTable, never_fires));
    unkeyed.push_back(FloorRun(options, without_key, ""));
    unkeyed_trigger.push_back(FloorRun(options, without_key, never_fires));
  }
  const std::string what = Count(options.rows) +
                           " inserts, 1,000 per transaction, WAL, "
                           "synchronous=NORMAL: a trigger that never fires (WHEN 0)";
  auto add = [&](const std::string& table, const Stats& b, const Stats& s) {
    Add({"1b. floor: " + what + ", " + table, "no trigger", b, "trigger", s,
         Fixed(s.wall / b.wall, 2, "×"), "CPU " + Fixed(s.cpu / b.cpu, 2, "×"), "", ""});
  };
  add("table with a primary key", Summarize(keyed), Summarize(keyed_trigger));
  add("table without a primary key", Summarize(unkeyed), Summarize(unkeyed_trigger));
}

// ---- 2. initial sync -------------------------------------------------------------------------

void BenchInitial(const Options& options) {
  const fs::path source = Template(options, options.rows);
  const fs::path a = options.dir / "initial-a.db";
  const fs::path b = options.dir / "initial-b.db";
  std::vector<Sample> base;
  std::vector<Sample> subject;
  for (int i = 0; i < Runs(options, 3); ++i) {
    CopyDb(source, a);
    RemoveDb(b);
    sync();  // write back the copy outside the timing
    base.push_back(
        TimeProcess({"/bin/sh", "-c", "sqlite3 " + Quote(a) + " .dump | sqlite3 " + Quote(b)}));
    if (QueryInt(OpenDb(b).get(), "SELECT count(*) FROM t") != options.rows) Die(".dump lost rows");
    CopyDb(source, a);
    RemoveDb(b);
    sync();
    subject.push_back(TimeProcess({kLockstep, "sync", a.string(), b.string()}));
    if (QueryInt(OpenDb(b).get(), "SELECT count(*) FROM t") != options.rows) Die("sync lost rows");
  }
  const Stats bs = Summarize(base);
  const Stats ss = Summarize(subject);
  const double ratio = ss.wall / bs.wall;
  Add({"2. initial sync of " + Count(options.rows) + " rows into an empty database",
       "`sqlite3 a.db .dump \\| sqlite3 b.db`", bs, "`lockstep sync a.db b.db`", ss,
       Fixed(ratio, 2, "×"), "CPU " + Fixed(ss.cpu / bs.cpu, 2, "×"), "≤ 3×", Verdict(ratio <= 3)});
}

// ---- 3. incremental and 4. nothing changed ---------------------------------------------------

// Updates kChangedRows random rows of `db` through the sqlite3 CLI, marking d with `mark`.
void UpdateRandomRows(const fs::path& db, int64_t rows, uint64_t seed, const std::string& mark) {
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<int64_t> pick(1, rows);
  std::unordered_set<int64_t> ids;
  while (ids.size() < static_cast<size_t>(kChangedRows)) ids.insert(pick(random));
  std::string sql = "UPDATE t SET b = b + 1, d = '" + mark + "' || id WHERE id IN (";
  bool first = true;
  for (int64_t id : ids) {
    sql += (first ? "" : ",") + std::to_string(id);
    first = false;
  }
  RunProcess({"sqlite3", db.string(), sql + ")"});
}

void CheckArrived(const fs::path& b, const std::string& mark) {
  const int64_t arrived =
      QueryInt(OpenDb(b).get(), "SELECT count(*) FROM t WHERE d LIKE '" + mark + "%'");
  if (arrived != kChangedRows) Die("incremental sync moved " + std::to_string(arrived) + " rows");
}

void BenchIncremental(const Options& options) {
  const Pair small = SyncedPair(options, std::min(kSmallRows, options.rows));
  const Pair big = SyncedPair(options, options.rows);
  std::vector<Sample> startup;
  std::vector<Sample> small_sync;
  std::vector<Sample> big_sync;
  for (int i = 0; i < Runs(options, 5); ++i) {
    const std::string mark = "inc-" + std::to_string(i) + "-";
    UpdateRandomRows(small.a, std::min(kSmallRows, options.rows), 2 * i, mark);
    UpdateRandomRows(big.a, options.rows, 2 * i + 1, mark);
    startup.push_back(TimeProcess({kLockstep, "--version"}));
    small_sync.push_back(TimeProcess({kLockstep, "sync", small.a.string(), small.b.string()}));
    big_sync.push_back(TimeProcess({kLockstep, "sync", big.a.string(), big.b.string()}));
    CheckArrived(small.b, mark);
    CheckArrived(big.b, mark);
  }
  const Stats up = Summarize(startup);
  const Stats sm = Summarize(small_sync);
  const Stats bg = Summarize(big_sync);
  Add({"start-up: `lockstep --version`", "", std::nullopt, "`lockstep --version`", up, "", "", "",
       ""});
  const double small_net = sm.wall - up.wall;
  const double big_net = bg.wall - up.wall;
  Add({"3. incremental: 1,000 random rows updated, " + Count(std::min(kSmallRows, options.rows)) +
           "-row table",
       "", std::nullopt, "`lockstep sync`", sm, "", "net " + Ms(small_net), "≤ 50 ms net",
       Verdict(small_net <= 0.050)});
  Add({"3. incremental: 1,000 random rows updated, " + Count(options.rows) + "-row table",
       Count(std::min(kSmallRows, options.rows)) + "-row table", sm, "`lockstep sync`", bg,
       Fixed(bg.wall / sm.wall, 2, "×"), "net " + Ms(big_net),
       "≤ 50 ms net; ≤ 1.5× the small table",
       Verdict(big_net <= 0.050 && bg.wall <= 1.5 * sm.wall)});
}

void BenchNothingChanged(const Options& options) {
  const Pair big = SyncedPair(options, options.rows);
  const fs::path out = options.dir / "nochange.out";
  RunProcess({kLockstep, "sync", big.a.string(), big.b.string()});  // settle anything pending
  std::vector<Sample> startup;
  std::vector<Sample> resync;
  for (int i = 0; i < Runs(options, 5); ++i) {
    startup.push_back(TimeProcess({kLockstep, "--version"}));
    resync.push_back(TimeProcess({kLockstep, "sync", big.a.string(), big.b.string()}, out));
    if (ReadFile(out).find("nothing to sync") == std::string::npos) {
      Die("re-sync found changes: " + ReadFile(out));
    }
  }
  const Stats up = Summarize(startup);
  const Stats rs = Summarize(resync);
  const double net = rs.wall - up.wall;
  Add({"4. re-sync, nothing changed, " + Count(options.rows) + " rows", "`lockstep --version`", up,
       "`lockstep sync`", rs, Fixed(rs.wall / up.wall, 2, "×"), "net " + Ms(net), "≤ 20 ms net",
       Verdict(net <= 0.020)});
}

// ---- 5. apply throughput ---------------------------------------------------------------------

struct ChangeLog {
  core::NodeId node;
  int64_t epoch = 0;
  std::vector<store::ChangePage> pages;
  connectors::sqlite::TableSchema schema;
  size_t records = 0;
};

ChangeLog ReadChangeLog(const fs::path& path) {
  auto source = Take(SqliteSource::Open(path, false, base::SystemClock::Get()), "open source");
  auto schema = Take(source->Schema(kTable), "schema");
  if (!schema.has_value()) Die("table t missing in " + path.string());
  Check(source->Attach(std::span(&*schema, 1), ""), "attach source");
  ChangeLog log{source->store().node(), source->store().epoch(), {}, *schema, 0};
  uint64_t cursor = 0;
  for (;;) {
    auto page = Take(source->store().ChangesAfter(cursor, kApplyPage, nullptr), "changes");
    if (page.scanned_to == cursor) break;
    cursor = page.scanned_to;
    log.records += page.changes.size();
    log.pages.push_back(std::move(page));
  }
  return log;
}

Sample ApplyRun(const Options& options, const ChangeLog& log) {
  const fs::path path = options.dir / "apply-dest.db";
  RemoveDb(path);
  auto dest = Take(SqliteSource::Open(path, true, base::SystemClock::Get()), "open destination");
  Check(dest->Attach(std::span(&log.schema, 1), ""), "attach destination");
  size_t changed = 0;
  // Apply may move records out of its input: each run gets its own copy, made before timing.
  std::vector<store::ChangePage> pages = log.pages;
  // Closing is timed too: a checkpoint still running in the background, and the last one that
  // closing the file runs, are part of the work, as they are of a sync.
  const double writer_cpu = CpuSeconds(RUSAGE_THREAD);
  const Sample sample = MeasureProfiled(RUSAGE_SELF, [&] {
    for (store::ChangePage& page : pages) {
      auto stats = Take(
          dest->Apply(page.changes, log.node, dest->CursorScope(), {log.epoch, page.scanned_to}),
          "apply");
      changed += stats.changed;
    }
    dest.reset();
  });
  if (changed != log.records) Die("apply changed " + std::to_string(changed) + " records");
  // The applying thread's own share: the rest is the background checkpoints' thread, which runs
  // beside it when a core is free.
  std::cerr << "  apply: wall " << sample.wall_s << " s, CPU " << sample.cpu_s
            << " s, of which the applying thread " << CpuSeconds(RUSAGE_THREAD) - writer_cpu
            << " s\n";
  return sample;
}

// Baseline: the same rows inserted in key order, 100k per transaction, WAL and synchronous=NORMAL
// as Lockstep's connection uses, then the file closed.
Sample PlainInsertRun(const Options& options) {
  const fs::path path = options.dir / "apply-plain.db";
  RemoveDb(path);
  Db db = OpenDb(path);
  Exec(db.get(), "PRAGMA journal_mode = WAL");
  Exec(db.get(), "PRAGMA synchronous = NORMAL");
  Exec(db.get(), kCreateTable);
  return Measure(RUSAGE_SELF, [&] {
    InsertRows(db.get(), options.rows, kApplyPage);
    db.reset();
  });
}

void BenchApply(const Options& options) {
  const Pair big = SyncedPair(options, options.rows);
  const ChangeLog log = ReadChangeLog(big.a);
  if (static_cast<int64_t>(log.records) != options.rows) Die("source change log is incomplete");
  std::vector<Sample> base;
  std::vector<Sample> subject;
  for (int i = 0; i < Runs(options, 3); ++i) {
    base.push_back(PlainInsertRun(options));
    subject.push_back(ApplyRun(options, log));
  }
  const Stats b = Summarize(base);
  const Stats s = Summarize(subject);
  const double rate = static_cast<double>(options.rows) / s.wall;
  const double base_rate = static_cast<double>(options.rows) / b.wall;
  Add({"5. apply " + Count(options.rows) + " records into an empty attached database, pages of " +
           Count(kApplyPage),
       "sorted INSERTs (" + Fixed(base_rate / 1000, 0, "k rows/s") + ")", b,
       "`SqliteSource::Apply`", s, Fixed(s.wall / b.wall, 2, "×"),
       Fixed(rate / 1000, 0, "k rows/s"), "≥ 500k rows/s", Verdict(rate >= 500'000)});
}

// ---- main ------------------------------------------------------------------------------------

Options Parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Die("missing value after " + flag);
    const std::string value = argv[++i];
    if (flag == "--rows") {
      options.rows = std::stoll(value);
    } else if (flag == "--runs") {
      options.runs = std::stoi(value);
    } else if (flag == "--only") {
      std::stringstream names(value);
      for (std::string name; std::getline(names, name, ',');) options.only.insert(name);
    } else if (flag == "--dir") {
      options.dir = value;
    } else {
      Die("unknown flag " + flag +
          " (--rows N, --runs N, --only NAME[,NAME], --dir PATH; NAME: capture, capture-normal, "
          "capture-floor, initial, incremental, nochange, apply)");
    }
  }
  if (options.rows < 1) Die("--rows must be positive");
  options.dir = MakeScratchDir(options.dir, "lockstep-sqlite-bench");
  return options;
}

int Main(int argc, char** argv) {
  SetDieHandler("lockstep_sqlite_bench", nullptr);
  // As in the lockstep binary, before the baselines' own connections initialize SQLite: the
  // baselines run with the same process-wide settings as the subject.
  store::ConfigureSqlite();
  const Options options = Parse(argc, argv);
  const std::vector<std::pair<std::string, void (*)(const Options&)>> benches = {
      {"capture", [](const Options& o) { BenchCapture(o, "FULL"); }},
      {"capture-normal", [](const Options& o) { BenchCapture(o, "NORMAL"); }},
      {"capture-floor", BenchCaptureFloor},
      {"initial", BenchInitial},
      {"incremental", BenchIncremental},
      {"nochange", BenchNothingChanged},
      {"apply", BenchApply},
  };
  for (const std::string& name : options.only) {
    if (std::none_of(benches.begin(), benches.end(), [&](auto& b) { return b.first == name; })) {
      Die("unknown benchmark " + name);
    }
  }
  std::cerr << "lockstep: " << kLockstep << "\nscratch: " << options.dir << "\n";
  for (const auto& [name, run] : benches) {
    if (!options.only.empty() && !options.only.contains(name)) continue;
    std::cerr << name << "\n";
    run(options);
  }
  PrintReport(options);
  fs::remove_all(options.dir);
  return 0;
}

}  // namespace
}  // namespace lockstep::bench

int main(int argc, char** argv) { return lockstep::bench::Main(argc, argv); }
