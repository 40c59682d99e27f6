// End-to-end benchmarks of network sync (issue 4), on loopback only: live latency from a commit
// on node A to its visibility on node B through a hub, sustained throughput A -> hub -> B,
// catch-up of a node that was offline, and the hub's memory with many idle nodes connected. Each
// measurement has a baseline taken in the same run and is printed as a Markdown table with
// PASS/FAIL against the targets. It runs the real `lockstep` binary (path compiled in)
// as processes; the writer, the reader and the idle nodes live in this process. Every wait is
// bounded, and every process started is stopped at the end (or when the benchmark fails).
// See docs/BENCHMARKS.md for the commands and the recorded figures.
//
//   lockstep_network_bench [--rows N] [--throughput-rows N] [--seconds N] [--nodes N]
//                          [--runs N] [--only NAME[,NAME...]] [--dir PATH]
//   NAME: latency, throughput, catchup, memory
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "protocol/frame_codec.h"
#include "protocol/messages.h"

namespace lockstep::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kLockstep = LOCKSTEP_BIN;
constexpr const char* kCreateTable =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, payload TEXT)";
constexpr auto kPollInterval = std::chrono::milliseconds(1);  // the reader's poll of B
constexpr double kConvergeTimeoutS = 300;  // longest wait for rows to arrive anywhere
constexpr int64_t kInsertBatch = 10'000;   // rows per transaction for bulk inserts

struct Options {
  int64_t rows = 1'000'000;           // catch-up
  int64_t throughput_rows = 200'000;  // sustained throughput
  int seconds = 10;                   // length of each latency run
  int nodes = 1'000;                  // idle nodes of the memory measurement
  int idle_seconds = 12;              // how long they stay connected: > the hub's 5 s heartbeat
  int runs = 0;                       // 0: 3 for throughput, 1 for catch-up
  std::set<std::string> only;
  fs::path dir;
};

// ---- processes: Spawn, RunProcess, StopProcess and StopAll are in bench_support ---------

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double TimeProcess(const std::vector<std::string>& args, const fs::path& err = {}) {
  const auto start = Clock::now();
  RunProcess(args, {}, err);
  return Since(start);
}

// Waits until `done` holds, checking every millisecond; dies after `timeout_s`.
void WaitFor(const std::function<bool()>& done, double timeout_s, const std::string& what) {
  const auto start = Clock::now();
  while (!done()) {
    if (Since(start) > timeout_s) Die("timed out waiting for " + what);
    std::this_thread::sleep_for(kPollInterval);
  }
}

// The resident set of a process, from /proc/PID/status: VmRSS (or VmHWM, its peak), in bytes.
int64_t ProcStatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  }
  return -1;
}

// ---- databases -------------------------------------------------------------------------------

struct StmtCloser {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtCloser>;

Db OpenDb(const fs::path& path, bool read_only = false) {
  sqlite3* db = nullptr;
  const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    Die("cannot open " + path.string());
  }
  sqlite3_busy_timeout(db, 5'000);
  return Db(db);
}

Stmt Prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    Die("prepare " + sql + ": " + sqlite3_errmsg(db));
  }
  return Stmt(stmt);
}

int64_t QueryInt(sqlite3* db, const std::string& sql) {
  Stmt stmt = Prepare(db, sql);
  return sqlite3_step(stmt.get()) == SQLITE_ROW ? sqlite3_column_int64(stmt.get(), 0) : -1;
}

// A fresh database in WAL holding the empty table t.
void CreateDb(const fs::path& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path.string() + suffix);
  Db db = OpenDb(path);
  Exec(db.get(), "PRAGMA journal_mode = WAL");
  Exec(db.get(), kCreateTable);
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Inserts ids first..last with the current time, kInsertBatch rows per transaction.
void InsertRows(sqlite3* db, int64_t first, int64_t last) {
  Stmt insert = Prepare(db, "INSERT INTO t (id, ts, payload) VALUES (?, ?, ?)");
  char payload[64];
  for (int64_t id = first; id <= last; ++id) {
    if ((id - first) % kInsertBatch == 0) Exec(db, "BEGIN");
    const int len = std::snprintf(payload, sizeof payload, "row %lld payload %016llx",
                                  (long long)id, (unsigned long long)(id * 0x9e3779b97f4a7c15));
    sqlite3_bind_int64(insert.get(), 1, id);
    sqlite3_bind_int64(insert.get(), 2, NowMicros());
    sqlite3_bind_text(insert.get(), 3, payload, len, SQLITE_STATIC);
    if (sqlite3_step(insert.get()) != SQLITE_DONE)
      Die(std::string("insert: ") + sqlite3_errmsg(db));
    sqlite3_reset(insert.get());
    if ((id - first + 1) % kInsertBatch == 0 || id == last) Exec(db, "COMMIT");
  }
}

// max(id) of t through a connection kept open (rows of one source arrive in id order).
class MaxIdProbe {
 public:
  explicit MaxIdProbe(const fs::path& path)
      : db_(OpenDb(path, true)), stmt_(Prepare(db_.get(), "SELECT coalesce(max(id), 0) FROM t")) {}
  int64_t Get() {
    const int64_t value =
        sqlite3_step(stmt_.get()) == SQLITE_ROW ? sqlite3_column_int64(stmt_.get(), 0) : -1;
    sqlite3_reset(stmt_.get());
    return value;
  }

 private:
  Db db_;
  Stmt stmt_;
};

void WaitForId(const fs::path& path, int64_t id, const std::string& what) {
  MaxIdProbe probe(path);
  WaitFor([&] { return probe.Get() >= id; }, kConvergeTimeoutS, what);
}

// ---- hub and nodes ---------------------------------------------------------------------------

struct Hub {
  pid_t pid = 0;
  fs::path dir;
  uint16_t port = 0;
  bool plaintext = false;
  std::string fingerprint;
  std::string token;
  std::string Url() const { return "lockstep://127.0.0.1:" + std::to_string(port); }
  // Flags of `lockstep sync DB URL` for this hub.
  std::vector<std::string> SyncFlags() const {
    std::vector<std::string> flags = {"--token", token};
    if (plaintext) {
      flags.push_back("--plaintext");
    } else {
      flags.insert(flags.end(), {"--trust", fingerprint});
    }
    return flags;
  }
};

std::string Trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

// `lockstep serve` on 127.0.0.1, any free port, with a fresh data directory and a token for all
// collections.
Hub StartHub(const Options& options, const std::string& name, bool plaintext) {
  Hub hub;
  hub.dir = options.dir / name;
  hub.plaintext = plaintext;
  fs::remove_all(hub.dir);
  fs::create_directories(hub.dir);
  const fs::path token_file = hub.dir.parent_path() / (name + ".token");
  RunProcess({kLockstep, "token", "create", "--data", hub.dir.string(), "--collections", "*",
              "--mode", "rw"},
             token_file, options.dir / (name + ".token.err"));
  hub.token = Trim(ReadFile(token_file));
  std::vector<std::string> args = {kLockstep,     "serve",  "--listen",
                                   "127.0.0.1:0", "--data", hub.dir.string()};
  if (plaintext) args.push_back("--plaintext");
  const fs::path out = options.dir / (name + ".out");
  hub.pid = Spawn(args, out, options.dir / (name + ".err"));
  WaitFor(
      [&] {
        const std::string text = ReadFile(out);
        const size_t at = text.find("listening on 127.0.0.1:");
        if (at == std::string::npos) return false;
        const size_t fp = text.find("certificate fingerprint: ");
        if (!plaintext && (fp == std::string::npos || text.find('\n', fp) == std::string::npos)) {
          return false;
        }
        hub.port = static_cast<uint16_t>(std::stoi(text.substr(at + 23)));
        if (!plaintext) {
          const size_t start = fp + 25;
          hub.fingerprint = text.substr(start, text.find('\n', start) - start);
        }
        return true;
      },
      10, "the hub to listen");
  return hub;
}

// `lockstep run -c` with one live peer: the hub.
pid_t StartNode(const Options& options, const Hub& hub, const std::string& name,
                const fs::path& db) {
  const fs::path config = options.dir / (name + ".toml");
  std::ofstream out(config);
  out << "[node]\nname = \"" << name << "\"\n\n[[source]]\nname = \"" << name << "\"\nsqlite = \""
      << db.string() << "\"\n\n[[peer]]\nurl = \"" << hub.Url() << "\"\ntoken = \"" << hub.token
      << "\"\nmode = \"live\"\n";
  if (hub.plaintext) {
    out << "plaintext = true\n";
  } else {
    out << "trust = \"" << hub.fingerprint << "\"\n";
  }
  out.close();
  return Spawn({kLockstep, "run", "-c", config.string()}, {}, options.dir / (name + ".err"));
}

// ---- report ----------------------------------------------------------------------------------

struct Row {
  std::string measurement;
  std::string baseline;
  std::string subject;
  std::string figure;  // what the target judges
  std::string target;
  std::string result;  // PASS, FAIL or empty
};

std::vector<Row>& Report() {
  static std::vector<Row> rows;
  return rows;
}

void Add(Row row) {
  std::cerr << "  " << row.measurement << ": " << row.subject << " | " << row.figure << " "
            << row.result << "\n";
  Report().push_back(std::move(row));
}

std::string Rate(double rows_per_s) { return Fixed(rows_per_s / 1000, 1, "k rows/s"); }

// "median (min–max)" of rates in rows/s.
std::string RateCell(const std::vector<double>& rates) {
  const auto [lo, hi] = std::minmax_element(rates.begin(), rates.end());
  return Rate(Median(rates)) + " (" + Fixed(*lo / 1000, 1) + "–" + Fixed(*hi / 1000, 1) + "k)";
}

// ---- 1. live latency -------------------------------------------------------------------------

struct Latency {
  int64_t written = 0;
  int64_t arrived = 0;
  double write_rate = 0;  // achieved
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

// Writes rows first..first+rate*seconds-1 into `write_db` at `rate` rows/s, one per transaction,
// each stamped with its write time; polls `read_db` every kPollInterval from a read-only
// connection and records when each row became visible. Waits at most 10 s for stragglers.
Latency MeasureLatency(const fs::path& write_db, const fs::path& read_db, int rate, int seconds,
                       int64_t first) {
  const int64_t count = static_cast<int64_t>(rate) * seconds;
  const int64_t last = first + count - 1;
  std::atomic<bool> writer_done = false;
  double write_seconds = 0;
  std::thread writer([&] {
    Db db = OpenDb(write_db);
    Exec(db.get(), "PRAGMA synchronous = NORMAL");
    Stmt insert = Prepare(db.get(), "INSERT INTO t (id, ts, payload) VALUES (?, ?, 'live')");
    const auto start = Clock::now();
    for (int64_t i = 0; i < count; ++i) {
      std::this_thread::sleep_until(start + std::chrono::nanoseconds(i * 1'000'000'000 / rate));
      sqlite3_bind_int64(insert.get(), 1, first + i);
      sqlite3_bind_int64(insert.get(), 2, NowMicros());
      if (sqlite3_step(insert.get()) != SQLITE_DONE) {
        Die(std::string("live insert: ") + sqlite3_errmsg(db.get()));
      }
      sqlite3_reset(insert.get());
    }
    write_seconds = Since(start);
    writer_done = true;
  });

  std::vector<double> latencies;
  latencies.reserve(count);
  {
    Db db = OpenDb(read_db, true);
    Stmt select = Prepare(db.get(), "SELECT id, ts FROM t WHERE id > ? AND id <= ? ORDER BY id");
    int64_t seen = first - 1;
    std::optional<Clock::time_point> drain_start;
    while (seen < last) {
      if (writer_done && !drain_start) drain_start = Clock::now();
      if (drain_start && Since(*drain_start) > 10) break;
      sqlite3_bind_int64(select.get(), 1, seen);
      sqlite3_bind_int64(select.get(), 2, last);
      int64_t visible_at = 0;  // taken once the first row is in hand: an upper bound
      while (sqlite3_step(select.get()) == SQLITE_ROW) {
        if (visible_at == 0) visible_at = NowMicros();
        seen = sqlite3_column_int64(select.get(), 0);
        latencies.push_back(
            static_cast<double>(visible_at - sqlite3_column_int64(select.get(), 1)) / 1000.0);
      }
      sqlite3_reset(select.get());
      std::this_thread::sleep_for(kPollInterval);
    }
  }
  writer.join();
  std::sort(latencies.begin(), latencies.end());
  return {count,
          static_cast<int64_t>(latencies.size()),
          static_cast<double>(count) / write_seconds,
          Percentile(latencies, 0.50),
          Percentile(latencies, 0.99),
          latencies.empty() ? 0 : latencies.back()};
}

std::string LatencyCell(const Latency& l) {
  return "p50 " + Fixed(l.p50_ms, 2) + " / p99 " + Fixed(l.p99_ms, 2) + " / max " +
         Fixed(l.max_ms, 1) + " ms; " + std::to_string(l.arrived) + "/" +
         std::to_string(l.written) + " rows, written at " + Fixed(l.write_rate, 0) + "/s";
}

// ---- 2. sustained throughput -----------------------------------------------------------------

struct Throughput {
  double insert_s = 0;  // the bulk insert into A
  double total_s = 0;   // from its start until B holds the last row
};

Throughput MeasureThroughput(const fs::path& a, const fs::path& b, int64_t first, int64_t rows) {
  MaxIdProbe probe(b);
  const int64_t last = first + rows - 1;
  const auto start = Clock::now();
  {
    Db db = OpenDb(a);
    Exec(db.get(), "PRAGMA synchronous = NORMAL");
    InsertRows(db.get(), first, last);
  }
  const double insert_s = Since(start);
  WaitFor([&] { return probe.Get() >= last; }, kConvergeTimeoutS, "B to receive the bulk rows");
  const double total_s = Since(start);
  Db db = OpenDb(b, true);
  const int64_t arrived =
      QueryInt(db.get(), "SELECT count(*) FROM t WHERE id BETWEEN " + std::to_string(first) +
                             " AND " + std::to_string(last));
  if (arrived != rows) Die("B received " + std::to_string(arrived) + " of the bulk rows");
  return {insert_s, total_s};
}

// Baseline: the same rows inserted into a fresh database (raw insert rate), then `lockstep sync`
// of that database into an empty one on the same disk.
std::pair<double, double> LocalBaseline(const Options& options, int64_t rows) {
  const fs::path a = options.dir / "local-a.db";
  const fs::path b = options.dir / "local-b.db";
  CreateDb(a);
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(b.string() + suffix);
  const auto start = Clock::now();
  {
    Db db = OpenDb(a);
    Exec(db.get(), "PRAGMA synchronous = NORMAL");
    InsertRows(db.get(), 1, rows);
  }
  const double insert_s = Since(start);
  const double sync_s = TimeProcess({kLockstep, "sync", a.string(), b.string()});
  if (QueryInt(OpenDb(b, true).get(), "SELECT count(*) FROM t") != rows)
    Die("local sync lost rows");
  return {insert_s, sync_s};
}

// ---- 1 and 2 over one hub: TLS or plain TCP --------------------------------------------------

void BenchLive(const Options& options, bool plaintext, bool latency, bool throughput) {
  const std::string mode = plaintext ? "plain TCP" : "TLS";
  const std::string tag = plaintext ? "plain" : "tls";
  Hub hub = StartHub(options, "hub-" + tag, plaintext);
  const fs::path a = options.dir / ("live-" + tag + "-a.db");
  const fs::path b = options.dir / ("live-" + tag + "-b.db");
  CreateDb(a);
  CreateDb(b);
  StartNode(options, hub, "node-" + tag + "-a", a);
  StartNode(options, hub, "node-" + tag + "-b", b);
  // Warm-up: one row through the whole path, so both sessions are up before timing.
  {
    Db db = OpenDb(a);
    Exec(db.get(), "INSERT INTO t (id, ts, payload) VALUES (1, 0, 'warm-up')");
  }
  WaitForId(b, 1, "the warm-up row to reach B (" + mode + ")");
  int64_t next_id = 2;

  if (latency) {
    for (int rate : {1'000, 10'000}) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      const Latency l = MeasureLatency(a, b, rate, options.seconds, next_id);
      next_id += l.written;
      const bool judged = rate == 1'000;
      Add({"1. live latency A → hub → B, " + mode + ", " + Fixed(rate, 0) + " rows/s for " +
               std::to_string(options.seconds) + " s",
           "see the one-database rows", LatencyCell(l), "p99 " + Fixed(l.p99_ms, 2, " ms"),
           judged ? "p99 ≤ 10 ms at 1,000/s" : "—",
           judged ? Verdict(l.p99_ms <= 10 && l.arrived == l.written) : ""});
    }
  }
  if (latency) {
    // Where the time goes: the first hop alone, seen in the hub's own database.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const Latency l = MeasureLatency(a, hub.dir / "hub.db", 1'000, options.seconds, next_id);
    next_id += l.written;
    Add({"1. first hop only: A → hub (hub.db polled), " + mode + ", 1000 rows/s for " +
             std::to_string(options.seconds) + " s",
         "", LatencyCell(l), "p99 " + Fixed(l.p99_ms, 2, " ms"), "", ""});
  }
  if (throughput) {
    std::vector<double> rates;
    std::vector<double> insert_rates;
    for (int run = 0; run < (options.runs > 0 ? options.runs : 3); ++run) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      const Throughput t = MeasureThroughput(a, b, next_id, options.throughput_rows);
      next_id += options.throughput_rows;
      rates.push_back(static_cast<double>(options.throughput_rows) / t.total_s);
      insert_rates.push_back(static_cast<double>(options.throughput_rows) / t.insert_s);
      std::cerr << "    run " << run << ": insert " << Fixed(t.insert_s, 2) << " s, in B after "
                << Fixed(t.total_s, 2) << " s\n";
    }
    const double rate = Median(rates);
    Add({"2. throughput A → hub → B, " + mode + ", " + Count(options.throughput_rows) +
             " rows inserted " + Count(kInsertBatch) + " per transaction",
         "see the local rows",
         "in B: " + RateCell(rates) + "; insert into A: " + RateCell(insert_rates), Rate(rate),
         "≥ 50k rows/s", Verdict(rate >= 50'000)});
  }
  StopAll();
}

void BenchLatencyBaseline(const Options& options) {
  const fs::path db = options.dir / "one.db";
  CreateDb(db);
  int64_t next_id = 1;
  for (int rate : {1'000, 10'000}) {
    const Latency l = MeasureLatency(db, db, rate, options.seconds, next_id);
    next_id += l.written;
    Add({"1. baseline: the same writer and reader on one database, " + Fixed(rate, 0) + " rows/s",
         "", LatencyCell(l), "p99 " + Fixed(l.p99_ms, 2, " ms"), "", ""});
  }
}

void BenchThroughputBaseline(const Options& options) {
  std::vector<double> insert_rates;
  std::vector<double> sync_rates;
  for (int run = 0; run < (options.runs > 0 ? options.runs : 3); ++run) {
    const auto [insert_s, sync_s] = LocalBaseline(options, options.throughput_rows);
    insert_rates.push_back(static_cast<double>(options.throughput_rows) / insert_s);
    sync_rates.push_back(static_cast<double>(options.throughput_rows) / sync_s);
  }
  Add({"2. baseline: " + Count(options.throughput_rows) + " rows, local", "",
       "raw insert: " + RateCell(insert_rates) +
           "; `lockstep sync a.db b.db` (new b.db): " + RateCell(sync_rates),
       Rate(Median(sync_rates)), "", ""});
}

// ---- 3. catch-up -----------------------------------------------------------------------------

void BenchCatchUp(const Options& options) {
  std::vector<double> push_rates;
  std::vector<double> catch_rates;
  std::vector<double> local_rates;
  for (int run = 0; run < (options.runs > 0 ? options.runs : 1); ++run) {
    Hub hub = StartHub(options, "hub-catchup", false);
    const fs::path a = options.dir / "catchup-a.db";
    const fs::path b = options.dir / "catchup-b.db";
    const fs::path c = options.dir / "catchup-local.db";
    const fs::path err = options.dir / "catchup.err";
    CreateDb(a);
    CreateDb(b);
    auto sync = [&](const fs::path& db) {
      std::vector<std::string> args = {kLockstep, "sync", db.string(), hub.Url()};
      for (const std::string& flag : hub.SyncFlags()) args.push_back(flag);
      return TimeProcess(args, err);
    };
    sync(b);  // B has met the hub, then goes offline
    {
      Db db = OpenDb(a);
      Exec(db.get(), "PRAGMA synchronous = NORMAL");
      InsertRows(db.get(), 1, options.rows);
    }
    const double push_s = sync(a);
    const double catch_s = sync(b);
    if (QueryInt(OpenDb(b, true).get(), "SELECT count(*) FROM t") != options.rows) {
      Die("catch-up left rows behind");
    }
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(c.string() + suffix);
    const double local_s = TimeProcess({kLockstep, "sync", a.string(), c.string()}, err);
    StopAll();
    const double n = static_cast<double>(options.rows);
    push_rates.push_back(n / push_s);
    catch_rates.push_back(n / catch_s);
    local_rates.push_back(n / local_s);
    std::cerr << "    run " << run << ": A → hub " << Fixed(push_s, 2) << " s, hub → B "
              << Fixed(catch_s, 2) << " s, local " << Fixed(local_s, 2) << " s\n";
  }
  const double rate = Median(catch_rates);
  Add({"3. catch-up: " + Count(options.rows) + " rows made while B was offline, TLS",
       "`lockstep sync a.db new.db` (local): " + RateCell(local_rates),
       "`lockstep sync b.db lockstep://…`: " + RateCell(catch_rates) +
           "; A's one-shot push to the hub before it: " + RateCell(push_rates),
       Rate(rate), "≥ 100k rows/s", Verdict(rate >= 100'000)});
}

// ---- 4. hub memory with idle nodes -----------------------------------------------------------

// One simulated node: a TCP connection that said Hello, got its Welcome, and from then on only
// acknowledges batches and answers pings.
struct IdleNode {
  int fd = -1;
  protocol::FrameReader reader;
  bool welcomed = false;
  bool alive = true;
};

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd ready{fd, POLLOUT, 0};
      poll(&ready, 1, 100);
      continue;
    }
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

// Reads what the hub sent and answers it. Returns false when the connection ended.
bool Serve(IdleNode& node) {
  char buffer[16384];
  for (;;) {
    const ssize_t n = recv(node.fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      return false;
    }
    node.reader.Append(std::string_view(buffer, static_cast<size_t>(n)));
  }
  for (;;) {
    auto next = node.reader.Next();
    if (!next.has_value()) Die("idle node: " + next.error().message());
    if (!next->has_value()) return true;
    const protocol::Message& message = **next;
    if (std::holds_alternative<protocol::Welcome>(message)) {
      node.welcomed = true;
    } else if (const auto* ping = std::get_if<protocol::Ping>(&message)) {
      SendAll(node.fd, protocol::EncodeFrame(protocol::Pong{ping->nonce}));
    } else if (const auto* batch = std::get_if<protocol::ChangeBatch>(&message)) {
      SendAll(node.fd, protocol::EncodeFrame(protocol::Ack{batch->id, batch->end}));
    } else if (std::holds_alternative<protocol::ErrorMessage>(message)) {
      Die("the hub refused an idle node: " + std::get<protocol::ErrorMessage>(message).message);
    } else if (std::holds_alternative<protocol::Goodbye>(message)) {
      return false;
    }
  }
}

int Connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    Die(std::string("connect: ") + std::strerror(errno));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Polls every node for up to `millis`, answering what arrived.
void ServeFor(std::vector<IdleNode>& nodes, int millis) {
  std::vector<pollfd> fds;
  for (const IdleNode& node : nodes) fds.push_back({node.alive ? node.fd : -1, POLLIN, 0});
  const auto start = Clock::now();
  for (;;) {
    const int left = millis - static_cast<int>(Since(start) * 1000);
    if (left <= 0) return;
    if (poll(fds.data(), fds.size(), left) <= 0) continue;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (fds[i].revents == 0) continue;
      fds[i].revents = 0;
      if (!Serve(nodes[i])) {
        nodes[i].alive = false;
        fds[i].fd = -1;
      }
    }
  }
}

void RaiseFileLimit(size_t needed) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur >= needed) return;
  limit.rlim_cur = std::min<rlim_t>(needed, limit.rlim_max);
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < needed) Die("RLIMIT_NOFILE is " + std::to_string(limit.rlim_cur));
}

void BenchMemory(const Options& options) {
  RaiseFileLimit(static_cast<size_t>(options.nodes) + 256);  // the hub inherits it
  // A hub that holds table t with a few rows, put there by a real node.
  Hub hub = StartHub(options, "hub-memory", true);
  const fs::path seed = options.dir / "memory-seed.db";
  CreateDb(seed);
  InsertRows(OpenDb(seed).get(), 1, 100);
  std::vector<std::string> args = {kLockstep, "sync", seed.string(), hub.Url()};
  for (const std::string& flag : hub.SyncFlags()) args.push_back(flag);
  RunProcess(args, {}, options.dir / "memory-seed.err");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const int64_t rss_idle = ProcStatusBytes(hub.pid, "VmRSS");

  std::mt19937_64 random(42);
  std::vector<IdleNode> nodes(static_cast<size_t>(options.nodes));
  const auto connect_start = Clock::now();
  for (IdleNode& node : nodes) {
    protocol::Hello hello;
    for (uint8_t& byte : hello.node.bytes) byte = static_cast<uint8_t>(random());
    hello.token = hub.token;
    hello.collections = {"t"};
    node.fd = Connect(hub.port);
    SendAll(node.fd, protocol::EncodeFrame(hello));
    const auto start = Clock::now();
    while (!node.welcomed) {
      if (Since(start) > 10) Die("no Welcome within 10 s");
      pollfd ready{node.fd, POLLIN, 0};
      poll(&ready, 1, 100);
      if (!Serve(node)) Die("the hub closed a new connection");
    }
  }
  const double connect_s = Since(connect_start);
  const double cpu_before = ProcessCpuSeconds(hub.pid);
  int64_t rss_max = 0;
  for (int second = 0; second < options.idle_seconds; ++second) {
    ServeFor(nodes, 1'000);
    rss_max = std::max(rss_max, ProcStatusBytes(hub.pid, "VmRSS"));
  }
  const double idle_cpu = (ProcessCpuSeconds(hub.pid) - cpu_before) / options.idle_seconds;
  const int64_t rss = ProcStatusBytes(hub.pid, "VmRSS");
  const int64_t hwm = ProcStatusBytes(hub.pid, "VmHWM");
  const auto alive = std::count_if(nodes.begin(), nodes.end(), [](auto& n) { return n.alive; });
  for (IdleNode& node : nodes) close(node.fd);
  StopAll();
  const double mb = 1024.0 * 1024.0;
  Add({"4. hub memory, " + std::to_string(options.nodes) + " idle nodes (plain TCP), " +
           std::to_string(options.idle_seconds) + " s idle",
       "hub with no node: VmRSS " + Fixed(rss_idle / mb, 1, " MiB"),
       "VmRSS " + Fixed(rss / mb, 1, " MiB") + " (max sampled " + Fixed(rss_max / mb, 1) +
           ", VmHWM " + Fixed(hwm / mb, 1) + "); " +
           Fixed((rss - rss_idle) / 1024.0 / options.nodes, 1, " KiB") + " per node; " +
           std::to_string(alive) + " still connected; handshakes " + Fixed(connect_s, 2, " s") +
           "; idle CPU " + Fixed(idle_cpu * 100, 1, "%"),
       Fixed(rss_max / mb, 1, " MiB"), "≤ 200 MB",
       Verdict(rss_max <= 200'000'000 && alive == options.nodes)});
}

// ---- main ------------------------------------------------------------------------------------

void PrintReport(const Options& options) {
  std::cout << "\ncatch-up rows: " << options.rows
            << ", throughput rows: " << options.throughput_rows
            << ", latency runs: " << options.seconds << " s, idle nodes: " << options.nodes
            << ", runs: " << (options.runs > 0 ? std::to_string(options.runs) : "3 / 1")
            << "; rates: median (min–max)\n\n";
  std::cout << "| measurement | baseline | subject | figure | target | result |\n"
            << "| --- | --- | --- | ---: | --- | --- |\n";
  for (const Row& r : Report()) {
    std::cout << "| " << r.measurement << " | " << (r.baseline.empty() ? "—" : r.baseline) << " | "
              << r.subject << " | " << r.figure << " | " << (r.target.empty() ? "—" : r.target)
              << " | " << r.result << " |\n";
  }
}

Options Parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) Die("missing value after " + flag);
    const std::string value = argv[++i];
    if (flag == "--rows") {
      options.rows = std::stoll(value);
    } else if (flag == "--throughput-rows") {
      options.throughput_rows = std::stoll(value);
    } else if (flag == "--seconds") {
      options.seconds = std::stoi(value);
    } else if (flag == "--nodes") {
      options.nodes = std::stoi(value);
    } else if (flag == "--runs") {
      options.runs = std::stoi(value);
    } else if (flag == "--only") {
      std::stringstream names(value);
      for (std::string name; std::getline(names, name, ',');) options.only.insert(name);
    } else if (flag == "--dir") {
      options.dir = value;
    } else {
      Die("unknown flag " + flag +
          " (--rows N, --throughput-rows N, --seconds N, --nodes N, --runs N, --only NAME[,NAME],"
          " --dir PATH; NAME: latency, throughput, catchup, memory)");
    }
  }
  if (options.rows < 1 || options.throughput_rows < 1 || options.nodes < 1) {
    Die("--rows, --throughput-rows and --nodes must be positive");
  }
  if (options.seconds < 1 || options.seconds > 120) Die("--seconds must be within 1..120");
  for (const std::string& name : options.only) {
    if (name != "latency" && name != "throughput" && name != "catchup" && name != "memory") {
      Die("unknown benchmark " + name);
    }
  }
  options.dir = MakeScratchDir(options.dir, "lockstep-network-bench");
  return options;
}

int Main(int argc, char** argv) {
  SetDieHandler("lockstep_network_bench", StopAll);
  const Options options = Parse(argc, argv);
  auto wanted = [&](const char* name) {
    return options.only.empty() || options.only.contains(name);
  };
  std::cerr << "lockstep: " << kLockstep << "\nscratch: " << options.dir << "\n";
  const bool latency = wanted("latency");
  const bool throughput = wanted("throughput");
  if (latency) BenchLatencyBaseline(options);
  if (throughput) BenchThroughputBaseline(options);
  if (latency || throughput) {
    BenchLive(options, false, latency, throughput);
    BenchLive(options, true, latency, throughput);
  }
  if (wanted("catchup")) BenchCatchUp(options);
  if (wanted("memory")) BenchMemory(options);
  StopAll();
  PrintReport(options);
  fs::remove_all(options.dir);
  return 0;
}

}  // namespace
}  // namespace lockstep::bench

int main(int argc, char** argv) { return lockstep::bench::Main(argc, argv); }
