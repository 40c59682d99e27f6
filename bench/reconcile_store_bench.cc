// Set reconciliation through the real stores (issue 5): two SQLite databases with Lockstep
// metadata, synced once, then made to differ in d records (scattered at random, or clustered among
// the most recently changed ones) by SQL on the user table, and reconciled in one process through
// engine::SessionReconciliation exactly as a session does (engine::StoreItemSets, with the
// recent positions since the peer's cursor, and one read snapshot per step on both sides), every
// step carried as a wire frame. Reports the bytes both ways, the round trips, the records each side
// must send and the time, against reading the whole collection with ReplicaStore::ChangesAfter in
// the same run, as a Markdown table with PASS/FAIL. See docs/BENCHMARKS.md for the commands and the
// recorded figures.
//
//   lockstep_reconcile_store_bench [--rows N] [--diffs D[,D...]] [--runs N]
//                                  [--only SHAPE[,SHAPE...]] [--dir PATH] [--seed S]
//                                  [--known both|dialer|none] [--baseline 0|1]
//   SHAPE: scattered, clustered. With --dir, the synced pair of N rows is kept there and reused.
//   --known: which sides are told the peer's cursor of their log (default both). --baseline 0
//   skips reading the whole collection (to profile the sessions alone).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "bench_support.h"
#include "connectors/sqlite/sqlite_source.h"
#include "engine/local_sync.h"
#include "engine/session_reconciliation.h"
#include "protocol/frame_codec.h"
#include "store/store_item_set.h"

namespace lockstep::bench {
namespace {

namespace fs = std::filesystem;
using connectors::sqlite::SqliteSource;
using Clock = std::chrono::steady_clock;

constexpr const char* kTable = "t";
constexpr size_t kPageRecords = 10'000;  // records per ChangesAfter page, as a sync batch

struct Options {
  int64_t rows = 1'000'000;
  std::vector<int64_t> diffs = {0, 10, 1'000, 100'000};
  int runs = 3;
  std::set<std::string> only;
  fs::path dir;  // empty: a scratch directory, removed at the end
  uint64_t seed = 42;
  // Which sides learn the peer's cursor of their log in the handshake: "both" (each offers only
  // its changes since), "dialer" (the listener gets none: the dialer lost its cursor), "none".
  std::string known = "both";
  bool baseline = true;  // --baseline 0: sessions only (for profiling them)
};

fs::path g_scratch;
void RemoveScratch() {
  if (!g_scratch.empty()) fs::remove_all(g_scratch);
}

void Check(const Status& status, const std::string& what) {
  if (!status.ok()) Die(what + ": " + status.message());
}

template <typename T>
T Take(Result<T> result, const std::string& what) {
  if (!result.has_value()) Die(what + ": " + result.error().message());
  return std::move(*result);
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Sample {
  double wall = 0;
  double cpu = 0;
};

template <typename Body>
Sample Measure(Body body) {
  const double cpu = CpuSeconds();
  const auto start = Clock::now();
  body();
  return {std::chrono::duration<double>(Clock::now() - start).count(), CpuSeconds() - cpu};
}

// ---- databases --------------------------------------------------------------------------------

Db OpenDb(const fs::path& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Die("cannot open " + path.string());
  return Db(db);
}

void RemoveDb(const fs::path& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(path.string() + suffix);
}

void CopyDb(const fs::path& from, const fs::path& to) {
  RemoveDb(to);
  fs::copy_file(from, to);
}

// A table of `rows` rows made by one INSERT over a recursive CTE: about 64 bytes of columns each
// (a 19-byte text, an integer, a real, a ~30-byte text), deterministic.
void MakeTable(const fs::path& path, int64_t rows) {
  RemoveDb(path);
  Db db = OpenDb(path);
  Exec(db.get(), "PRAGMA synchronous = OFF");
  Exec(db.get(), "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c REAL, d TEXT)");
  Exec(db.get(),
       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
           std::to_string(rows) +
           ") INSERT INTO t SELECT i, printf('name-%014d', (i * 2654435761) % 100000000000000), "
           "(i * 7919) % 1000000, (i % 100000) / 7.0, printf('note %016x row %d', i * "
           "2654435761, i) FROM n");
}

// a.db and b.db holding the same `rows` rows, synced by engine::SyncDatabases (twice, so that
// nothing is pending), made once per directory.
struct Pair {
  fs::path a, b;
};

Pair SyncedPair(const Options& options) {
  const std::string tag = std::to_string(options.rows);
  Pair pair{options.dir / ("synced-" + tag + "-a.db"), options.dir / ("synced-" + tag + "-b.db")};
  const fs::path done = options.dir / ("synced-" + tag + ".done");
  if (fs::exists(done)) return pair;
  std::cerr << "preparing a synced pair of " << tag << " rows\n";
  const Sample made = Measure([&] { MakeTable(pair.a, options.rows); });
  RemoveDb(pair.b);
  const std::vector<fs::path> paths = {pair.a, pair.b};
  const Sample synced = Measure([&] {
    for (int i = 0; i < 2; ++i) {
      Take(engine::SyncDatabases(paths, engine::LocalSyncOptions{}, base::SystemClock::Get()),
           "syncing the pair");
    }
  });
  std::cerr << "  table " << Fixed(made.wall, 1, " s") << ", sync " << Fixed(synced.wall, 1, " s")
            << "\n";
  Exec(OpenDb(done).get(), "SELECT 1");
  return pair;
}

// ---- the differences --------------------------------------------------------------------------

// The ids of the rows that `d` differences target: the d most recently changed rows (after the
// initial sync, each store's log holds the rows in id order, so the highest ids), or d at random.
std::vector<int64_t> Targets(int64_t rows, int64_t d, bool clustered, uint64_t seed) {
  std::vector<int64_t> ids(static_cast<size_t>(rows));
  std::iota(ids.begin(), ids.end(), 1);
  if (clustered) {
    std::reverse(ids.begin(), ids.end());
  } else {
    std::mt19937_64 rng(seed);
    std::shuffle(ids.begin(), ids.end(), rng);
  }
  ids.resize(static_cast<size_t>(d));
  return ids;
}

// Makes the j-th difference of six kinds in turn: target updated on A, updated on B, a new row
// inserted on A only, on B only, target deleted on A, deleted on B. Through SQL on the user
// table, so that the capture triggers see it as a user's write.
void MakeDifferences(const fs::path& path, bool on_a, int64_t rows,
                     const std::vector<int64_t>& targets) {
  Db db = OpenDb(path);
  sqlite3* h = db.get();
  Exec(h, "BEGIN");
  Exec(h, "CREATE TEMP TABLE targets (j INTEGER PRIMARY KEY, id INTEGER)");
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(h, "INSERT INTO temp.targets VALUES (?, ?)", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    Die("prepare targets");
  }
  for (size_t j = 0; j < targets.size(); ++j) {
    sqlite3_bind_int64(stmt, 1, static_cast<int64_t>(j));
    sqlite3_bind_int64(stmt, 2, targets[j]);
    if (sqlite3_step(stmt) != SQLITE_DONE) Die(std::string("targets: ") + sqlite3_errmsg(h));
    sqlite3_reset(stmt);
  }
  sqlite3_finalize(stmt);
  const std::string side = on_a ? "0" : "1";  // j % 6 = kind * 2 + side
  Exec(h, "UPDATE t SET b = b + 1, d = 'changed on " + path.filename().string() +
              "' WHERE id IN (SELECT id FROM temp.targets WHERE j % 6 = " + side + ")");
  Exec(h, "INSERT INTO t SELECT " + std::to_string(rows) +
              " + 1 + j, 'new', j, 0.5, 'inserted' FROM temp.targets WHERE j % 6 = 2 + " + side);
  Exec(h, "DELETE FROM t WHERE id IN (SELECT id FROM temp.targets WHERE j % 6 = 4 + " + side + ")");
  Exec(h, "DROP TABLE temp.targets");
  Exec(h, "COMMIT");
}

std::unique_ptr<SqliteSource> OpenSource(const fs::path& path) {
  auto source = Take(SqliteSource::Open(path, false, base::SystemClock::Get()), "open");
  auto schema = Take(source->Schema(kTable), "schema");
  if (!schema.has_value()) Die("table t missing in " + path.string());
  // As `lockstep sync` does: the table is attached again, and the users' writes are stamped.
  Check(source->Attach(std::span(&*schema, 1), ""), "attach and stamp " + path.string());
  return source;
}

int64_t CollectionId(store::ReplicaStore& store) {
  for (const store::Collection& c : Take(store.Collections(), "collections")) {
    if (c.name == kTable) return c.id;
  }
  Die("no collection t");
}

// ---- one session ------------------------------------------------------------------------------

// What the handshake tells `store` of its peer `other`: who it is and its cursor of `store`'s log
// (Welcome.cursor for the dialer, Hello.cursor for the listener), here read from the other file:
// after the initial sync, each side's changes since are exactly those after that cursor. With
// `known` false the peer sends no cursor (it lost it, or this side was restored).
engine::PeerView ViewOf(store::ReplicaStore& store, store::ReplicaStore& other, bool known) {
  engine::PeerView view{other.node(), {}};
  if (known) {
    auto cursor = Take(other.GetCursor(store.node(), kTable), "the peer's cursor");
    if (!cursor.has_value()) Die("no cursor of the pair's initial sync");
    view.cursor_of_me = *cursor;
  }
  return view;
}

struct Outcome {
  Sample time;
  int round_trips = 0;
  size_t frames = 0;
  size_t bytes_to_listener = 0;  // frames, length prefix included
  size_t bytes_to_dialer = 0;
  size_t step_bytes = 0;  // the reconcile messages inside the frames
  std::vector<engine::RecordName> a_sends, b_sends;
};

Outcome RunSession(SqliteSource& a, SqliteSource& b, uint64_t seed, const std::string& known) {
  Outcome o;
  const auto carry = [&](const protocol::Reconcile& step, size_t& bytes) {
    const std::string frame = protocol::EncodeFrame(protocol::Message{step});
    bytes += frame.size();
    o.step_bytes += step.step.size();
    ++o.frames;
    protocol::Message message =
        Take(protocol::DecodeFramePayload(std::string_view(frame).substr(4)), "decoding a frame");
    if (!std::holds_alternative<protocol::Reconcile>(message)) Die("not a reconcile frame");
    return std::get<protocol::Reconcile>(std::move(message));
  };
  o.time = Measure([&] {
    // Both sides as BeginReconciliation: users' writes stamped first (none are pending here).
    Check(a.StampPending(), "stamping a");
    Check(b.StampPending(), "stamping b");
    reconcile::Options options;
    options.session.seed = seed;
    // As SourceHandler::BeginReconciliation sets them up: item sets with the recent positions
    // since the peer's cursor, each call in one read snapshot of the store.
    const engine::PeerView a_view = ViewOf(a.store(), b.store(), known != "none");
    const engine::PeerView b_view = ViewOf(b.store(), a.store(), known == "both");
    engine::SessionReconciliation dialer(engine::StoreItemSets(a.store(), a_view), options,
                                         &a.store());
    engine::SessionReconciliation listener(engine::StoreItemSets(b.store(), b_view), options,
                                           &b.store());
    std::vector<protocol::Reconcile> wave = Take(dialer.Start({kTable}), "start");
    while (!wave.empty()) {
      std::vector<protocol::Reconcile> answers;
      bool requests = false;
      for (const protocol::Reconcile& step : wave) {
        requests = requests || !(step.last && step.step.empty());
        auto parts =
            Take(listener.Continue(carry(step, o.bytes_to_listener)), "the listener answering");
        answers.insert(answers.end(), parts.begin(), parts.end());
      }
      if (requests && ++o.round_trips > 64) Die("more than 64 round trips");
      wave.clear();
      for (const protocol::Reconcile& answer : answers) {
        auto next =
            Take(dialer.Continue(carry(answer, o.bytes_to_dialer)), "the dialer continuing");
        wave.insert(wave.end(), next.begin(), next.end());
      }
    }
    if (!dialer.done() || !listener.done()) Die("the session did not finish");
    o.a_sends = dialer.ToSend();
    o.b_sends = listener.ToSend();
  });
  return o;
}

// The stored encodings of the records `names` of `store`: what sending them costs, roughly.
size_t RecordBytes(store::ReplicaStore& store, const std::vector<engine::RecordName>& names) {
  const int64_t id = CollectionId(store);
  size_t bytes = 0;
  for (const auto& [collection, key] : names) {
    auto stored = Take(store.Get(id, key), "get");
    if (stored.has_value()) bytes += stored->encoded.size();
  }
  return bytes;
}

// ---- the baseline -----------------------------------------------------------------------------

struct Whole {
  Sample time;
  size_t records = 0;
  size_t bytes = 0;  // the records' stored encodings
};

// What sending the whole collection costs the sender: every record read by ChangesAfter from 0.
Whole ReadWholeCollection(store::ReplicaStore& store) {
  Whole whole;
  whole.time = Measure([&] {
    uint64_t after = 0;
    while (after < store.last_seq()) {
      store::ChangePage page = Take(store.ChangesAfter(after, kPageRecords, nullptr), "read");
      for (const store::Change& change : page.changes) whole.bytes += change.stored.encoded.size();
      whole.records += page.changes.size();
      if (page.scanned_to <= after) Die("ChangesAfter made no progress");
      after = page.scanned_to;
    }
  });
  return whole;
}

// The same as change-batch frames (zstd-compressed, as on the wire): bytes and time, once.
Whole FrameWholeCollection(store::ReplicaStore& store) {
  Whole whole;
  whole.time = Measure([&] {
    uint64_t after = 0;
    while (after < store.last_seq()) {
      store::ChangePage page = Take(store.ChangesAfter(after, kPageRecords, nullptr), "read");
      protocol::ChangeBatch batch;
      for (store::Change& change : page.changes) {
        batch.changes.push_back(
            {change.collection, core::RecordDelta{std::move(change.stored.record), {}}});
      }
      whole.records += batch.changes.size();
      whole.bytes += protocol::EncodeFrame(protocol::Message{std::move(batch)}).size();
      after = page.scanned_to;
    }
  });
  return whole;
}

// ---- report -----------------------------------------------------------------------------------

struct Row {
  std::string shape;
  int64_t d = 0;
  Outcome outcome;  // of the last run; bytes and round trips are the same in every run
  Sample first_read;
  double wall = 0, cpu = 0;  // medians
  double first_wall = 0;     // the first run
  size_t a_record_bytes = 0, b_record_bytes = 0;
  Whole whole;  // median time
};

std::string Ms(double seconds) { return Fixed(seconds * 1000, 1, " ms"); }

void PrintRows(const Options& options, const std::vector<Row>& rows, const Whole& frames) {
  std::cout << "\nn = " << Count(options.rows) << " rows, " << options.runs
            << " runs, peer cursors known: " << options.known
            << ", median wall (CPU); whole collection as change-batch frames: " << frames.bytes
            << " B in " << Ms(frames.time.wall) << "\n\n";
  std::cout << "| shape | d | round trips | frames | bytes A→B / B→A | overhead / diff | "
               "records A / B sends | their bytes | first item read | time (CPU) | first run | "
               "whole: ChangesAfter | verdict |\n";
  std::cout << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
               "---: | --- |\n";
  for (const Row& r : rows) {
    const Outcome& o = r.outcome;
    const size_t bytes = o.bytes_to_listener + o.bytes_to_dialer;
    const double per_diff = r.d == 0 ? 0 : static_cast<double>(bytes) / static_cast<double>(r.d);
    bool pass = o.round_trips <= 6;
    std::string target;
    if (r.d == 0) {
      pass = pass && o.round_trips == 1 && bytes < 1024;
      target = "1 RT, < 1 KB";
    } else {
      const double limit = r.shape == "scattered" ? 400 : 64;
      pass = pass && per_diff <= limit;
      target = "≤ " + Fixed(limit, 0) + " B/diff";
    }
    if (r.d == 1000) {
      pass = pass && r.wall <= 1.0;
      target += ", ≤ 1 s";
    }
    std::cout << "| " << r.shape << " | " << Count(r.d) << " | " << o.round_trips << " | "
              << o.frames << " | " << o.bytes_to_listener << " / " << o.bytes_to_dialer << " | "
              << Fixed(per_diff, 1) << " | " << o.a_sends.size() << " / " << o.b_sends.size()
              << " | " << r.a_record_bytes + r.b_record_bytes << " | " << Ms(r.first_read.wall)
              << " | " << Ms(r.wall) << " (" << Ms(r.cpu) << ") | " << Ms(r.first_wall) << " | "
              << Ms(r.whole.time.wall) << " (" << r.whole.records << " records, " << r.whole.bytes
              << " B) | " << Verdict(pass) << " (" << target << ", ≤ 6 RT) |\n";
  }
}

// ---- main -------------------------------------------------------------------------------------

Options Parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) Die("missing value after " + arg);
    const std::string value = argv[++i];
    try {
      if (arg == "--rows") {
        options.rows = std::stoll(value);
      } else if (arg == "--diffs") {
        options.diffs.clear();
        std::stringstream list(value);
        for (std::string d; std::getline(list, d, ',');) options.diffs.push_back(std::stoll(d));
      } else if (arg == "--runs") {
        options.runs = std::max(1, std::stoi(value));
      } else if (arg == "--only") {
        std::stringstream list(value);
        for (std::string name; std::getline(list, name, ',');) options.only.insert(name);
      } else if (arg == "--dir") {
        options.dir = value;
      } else if (arg == "--seed") {
        options.seed = std::stoull(value);
      } else if (arg == "--baseline") {
        options.baseline = value != "0";
      } else if (arg == "--known") {
        if (value != "both" && value != "dialer" && value != "none") {
          Die("--known must be both, dialer or none");
        }
        options.known = value;
      } else {
        Die("unknown option " + arg);
      }
    } catch (const std::logic_error&) {
      Die("bad value for " + arg + ": " + value);
    }
  }
  if (options.rows < 1) Die("--rows must be positive");
  for (int64_t d : options.diffs) {
    if (d < 0 || d > options.rows) Die("--diffs must be between 0 and --rows");
  }
  return options;
}

int Main(int argc, char** argv) {
  SetDieHandler("lockstep_reconcile_store_bench", RemoveScratch);
  Options options = Parse(argc, argv);
  if (options.dir.empty()) {
    g_scratch = MakeScratchDir("", "lockstep_reconcile_store_bench");
    options.dir = g_scratch;
  } else {
    fs::create_directories(options.dir);
  }
  const Pair synced = SyncedPair(options);
  Whole frames;
  {
    auto a = OpenSource(synced.a);
    if (options.baseline) frames = FrameWholeCollection(a->store());
  }
  std::vector<Row> rows;
  for (const std::string shape : {"scattered", "clustered"}) {
    if (!options.only.empty() && !options.only.contains(shape)) continue;
    for (int64_t d : options.diffs) {
      std::cerr << shape << " d=" << d << "\n";
      const Pair pair{options.dir / "case-a.db", options.dir / "case-b.db"};
      CopyDb(synced.a, pair.a);
      CopyDb(synced.b, pair.b);
      const auto targets = Targets(options.rows, d, shape == std::string("clustered"),
                                   options.seed + static_cast<uint64_t>(d));
      MakeDifferences(pair.a, true, options.rows, targets);
      MakeDifferences(pair.b, false, options.rows, targets);
      auto a = OpenSource(pair.a);  // stamps the differences
      auto b = OpenSource(pair.b);
      Row row{shape, d, {}, {}, 0, 0, 0, 0, 0, {}};
      // The first read of each item set: makes the bucket index where a bulk load dropped it
      // (a one-time cost, kept in the file).
      row.first_read = Measure([&] {
        for (SqliteSource* side : {a.get(), b.get()}) {
          store::StoreItemSet items(side->store(), CollectionId(side->store()));
          Take(items.Summarize({0, 0, true}), "first summary");
        }
      });
      std::vector<double> walls, cpus, whole_walls, whole_cpus;
      for (int run = 0; run < options.runs; ++run) {
        row.outcome = RunSession(*a, *b, options.seed * 0x100000000 + static_cast<uint64_t>(run),
                                 options.known);
        walls.push_back(row.outcome.time.wall);
        cpus.push_back(row.outcome.time.cpu);
        if (options.baseline) row.whole = ReadWholeCollection(a->store());
        whole_walls.push_back(row.whole.time.wall);
        whole_cpus.push_back(row.whole.time.cpu);
      }
      row.first_wall = walls.front();
      row.wall = Median(walls);
      row.cpu = Median(cpus);
      row.whole.time = {Median(whole_walls), Median(whole_cpus)};
      // Every difference made is found: each side sends what it holds newer or alone.
      std::set<std::string> found;
      for (const auto& [c, key] : row.outcome.a_sends) found.insert(key);
      for (const auto& [c, key] : row.outcome.b_sends) found.insert(key);
      if (found.size() != static_cast<size_t>(d)) {
        Die(shape + " d=" + std::to_string(d) + ": found " + std::to_string(found.size()) +
            " differing records");
      }
      row.a_record_bytes = RecordBytes(a->store(), row.outcome.a_sends);
      row.b_record_bytes = RecordBytes(b->store(), row.outcome.b_sends);
      std::cerr << "  " << row.outcome.round_trips << " RT, "
                << row.outcome.bytes_to_listener + row.outcome.bytes_to_dialer << " B, "
                << Ms(row.wall) << " (first item read " << Ms(row.first_read.wall) << ")\n";
      rows.push_back(std::move(row));
    }
  }
  PrintRows(options, rows, frames);
  RemoveScratch();
  return 0;
}

}  // namespace
}  // namespace lockstep::bench

int main(int argc, char** argv) { return lockstep::bench::Main(argc, argv); }
