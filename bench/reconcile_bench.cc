// Range-based set reconciliation (issue 5), in one process over in-memory item sets: for n
// records and d differences, scattered at random or clustered among the most recently changed
// records, the bytes both sides exchange, the round trips and the time, against sending the whole
// collection (every key and an 80-byte record, encoded in the same run). Every message goes
// through its encoding. Printed as a Markdown table with PASS/FAIL against the issue's targets.
// See docs/BENCHMARKS.md for the commands and the recorded figures.
//
//   lockstep_reconcile_bench [--items N] [--runs N] [--diffs D[,D...]]
//                            [--only ORDER[,ORDER...]] [--seed S] [--fingerprint-bytes B]
//                            [--leaf-items L]
//   ORDER: scattered, clustered (positions by key hash, as ItemPosition, no recent changes
//   given); scattered+recent, clustered+recent (each side gives the session the records it
//   changed since the two were equal), clustered+recent×4 (four times as many of its most recent
//   changes), clustered+recent/2 (only half of them); and two what-ifs with positions ordered by
//   last-change time instead, no recent changes given: clustered-by-time, and scattered-by-time
//   (recent writes to records whose previous versions are of any age)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "bench_support.h"
#include "reconcile/memory_item_set.h"
#include "reconcile/reconciler.h"

namespace lockstep::bench {
namespace {

using Clock = std::chrono::steady_clock;
using reconcile::Item;
using reconcile::MemoryItemSet;
using reconcile::Message;

constexpr size_t kRecordBytes = 80;  // a record of 5 columns in its canonical encoding

struct Options {
  size_t items = 1'000'000;
  int runs = 3;
  std::vector<size_t> diffs = {0, 10, 1'000, 100'000};
  std::set<std::string> only;
  uint64_t seed = 42;  // of the random collection and differences
  reconcile::Options reconcile;
};

template <typename T>
T Take(Result<T> result, const std::string& what) {
  if (!result.has_value()) Die(what + ": " + result.error().message());
  return std::move(*result);
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- the collection ---------------------------------------------------------------------------

// One version of one record: its key, when it last changed (a logical time, larger is more
// recent) and which version it is.
struct Version {
  std::string key;
  uint64_t changed = 0;
  uint32_t version = 0;
};

// The canonical encoding of a version, as far as reconciliation cares: 80 bytes that differ
// between versions.
std::string Encoding(const Version& v) {
  std::string bytes(kRecordBytes, 'x');
  const std::string tag = v.key + "#" + std::to_string(v.version);
  std::copy(tag.begin(), tag.end(), bytes.begin());
  return bytes;
}

enum class Order { kKeyHash, kChangeTime };

Item ToItem(const Version& v, Order order, uint64_t time_span) {
  Item item = reconcile::MakeItem(v.key, Encoding(v));
  // The what-if ordering: times spread evenly over the 64-bit space (a best case for it), equal
  // on both sides for the same version.
  if (order == Order::kChangeTime) item.position = v.changed * (UINT64_MAX / time_span);
  return item;
}

// Two replicas of n records that differ in d of them, and the keys that differ.
struct Pair {
  std::vector<Version> a, b;
  std::set<std::string> differing;
};

Pair MakePair(size_t n, size_t d, bool clustered, std::mt19937_64& rng) {
  // Times are a random permutation, so that the order of change is unrelated to the keys.
  std::vector<uint64_t> times(n);
  std::iota(times.begin(), times.end(), 0);
  std::shuffle(times.begin(), times.end(), rng);
  Pair pair;
  pair.a.reserve(n + d);
  for (size_t i = 0; i < n; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "rec:%08zu", i);
    pair.a.push_back({key, times[i], 0});
  }
  pair.b = pair.a;
  // Which records differ: d at random, or the d most recently changed.
  std::vector<size_t> targets(n);
  std::iota(targets.begin(), targets.end(), 0);
  if (clustered) {
    std::sort(targets.begin(), targets.end(),
              [&](size_t x, size_t y) { return times[x] > times[y]; });
  } else {
    std::shuffle(targets.begin(), targets.end(), rng);
  }
  targets.resize(d);
  // Four kinds in turn: updated on A, updated on B (a delete is an update to a tombstone), and a
  // record inserted on A or on B only. Changes happen after every existing one.
  uint64_t now = n;
  std::vector<size_t> a_removed, b_removed;
  for (size_t j = 0; j < d; ++j) {
    const size_t t = targets[j];
    switch (j % 4) {
      case 0:
        pair.a[t] = {pair.a[t].key, now++, 1};
        break;
      case 1:
        pair.b[t] = {pair.b[t].key, now++, 1};
        break;
      case 2:  // the target stays equal; a new record appears on A
        pair.a.push_back({"new:" + std::to_string(j), now++, 0});
        break;
      case 3:
        pair.b.push_back({"new:" + std::to_string(j), now++, 0});
        break;
    }
    pair.differing.insert(j % 4 < 2 ? pair.a[t].key : "new:" + std::to_string(j));
  }
  return pair;
}

// Which recent changes each side gives the session: none; those made since the two sides were
// last equal (what the engine knows from the other side's cursor into this side's log); or four
// times as many of the most recent (the engine knows less and reaches further back); or only
// half of them (the engine knows too little, and the ranges must find the rest).
enum class Window { kNone, kSinceEqual, kFourTimes, kHalf };

// Positions of the recent changes of one side, most recent first. Changes at or after
// `partition` were made since the sides were equal.
std::vector<uint64_t> RecentPositions(const std::vector<Version>& versions, uint64_t partition,
                                      Window window, Order order, uint64_t time_span) {
  if (window == Window::kNone) return {};
  std::vector<const Version*> by_time;
  for (const Version& v : versions) by_time.push_back(&v);
  std::sort(by_time.begin(), by_time.end(),
            [](const Version* x, const Version* y) { return x->changed > y->changed; });
  size_t since = 0;
  while (since < by_time.size() && by_time[since]->changed >= partition) ++since;
  const size_t wanted = window == Window::kSinceEqual  ? since
                        : window == Window::kFourTimes ? 4 * since
                                                       : since / 2;
  const size_t count = std::min(by_time.size(), wanted);
  std::vector<uint64_t> positions;
  for (size_t i = 0; i < count; ++i)
    positions.push_back(ToItem(*by_time[i], order, time_span).position);
  return positions;
}

MemoryItemSet ToSet(const std::vector<Version>& versions, Order order, uint64_t time_span) {
  std::vector<Item> items;
  items.reserve(versions.size());
  for (const Version& v : versions) items.push_back(ToItem(v, order, time_span));
  return MemoryItemSet(std::move(items));
}

// ---- one session ------------------------------------------------------------------------------

struct Outcome {
  int round_trips = 0;
  size_t bytes = 0;
  size_t messages = 0;
  double seconds = 0;
  std::set<std::string> found;  // keys either side sends
  size_t sent_records = 0;      // records both sides send, counted per side
};

// Runs a session wave by wave: all requests, then all their answers. Every message is encoded
// and decoded, as it would be on the wire.
Outcome RunSession(MemoryItemSet& a, MemoryItemSet& b, const reconcile::Options& options,
                   const std::vector<uint64_t>& a_recent, const std::vector<uint64_t>& b_recent) {
  Outcome outcome;
  const auto start = Clock::now();
  reconcile::Options a_options = options, b_options = options;
  a_options.recent_positions = a_recent;
  b_options.recent_positions = b_recent;
  reconcile::Initiator initiator(a, a_options);
  reconcile::Responder responder(b, b_options);
  std::vector<Message> wave = Take(initiator.Start(), "start");
  const auto carry = [&](const Message& message) {
    const std::string bytes = reconcile::EncodeMessage(message);
    outcome.bytes += bytes.size();
    ++outcome.messages;
    return Take(reconcile::DecodeMessage(bytes), "decoding a message");
  };
  while (!wave.empty()) {
    if (++outcome.round_trips > 64) Die("more than 64 round trips");
    std::vector<Message> answers;
    for (const Message& request : wave) {
      auto parts = Take(responder.Receive(carry(request)), "answering");
      answers.insert(answers.end(), parts.begin(), parts.end());
    }
    wave.clear();
    for (const Message& answer : answers) {
      auto next = Take(initiator.Receive(carry(answer)), "receiving an answer");
      wave.insert(wave.end(), next.begin(), next.end());
    }
  }
  if (!initiator.done()) Die("the initiator did not finish");
  const auto at_a = initiator.differences(), at_b = responder.differences();
  outcome.seconds = SecondsSince(start);
  outcome.found.insert(at_a.send.begin(), at_a.send.end());
  outcome.found.insert(at_b.send.begin(), at_b.send.end());
  outcome.sent_records = at_a.send.size() + at_b.send.size();
  return outcome;
}

// ---- the baseline -----------------------------------------------------------------------------

struct Baseline {
  size_t bytes = 0;
  double seconds = 0;
};

// Sending the whole collection: every key and its record, length-prefixed, into one buffer.
Baseline EncodeWholeCollection(const std::vector<Version>& versions) {
  const auto start = Clock::now();
  std::string out;
  base::ByteWriter writer(out);
  for (const Version& v : versions) {
    writer.PutLengthPrefixed(v.key);
    writer.PutLengthPrefixed(Encoding(v));
  }
  return {out.size(), SecondsSince(start)};
}

// ---- report -----------------------------------------------------------------------------------

struct Row {
  std::string order;
  size_t d = 0;
  Outcome outcome;  // of the median run by time
  double seconds = 0;
  Baseline baseline;
  size_t record_bytes = 0;  // the differing records themselves, both ways
};

void PrintRows(const Options& options, const std::vector<Row>& rows) {
  std::cout << "\nn = " << Count(static_cast<int64_t>(options.items)) << " records, "
            << options.runs << " runs, median time; fingerprints "
            << int{options.reconcile.session.fingerprint_bytes} << " B, item hashes "
            << int{options.reconcile.session.item_bytes} << " B, leaf "
            << options.reconcile.leaf_items << " items\n\n";
  std::cout << "| order | d | round trips | messages | bytes | overhead / diff | records | total "
               "vs whole | time | whole: encode | verdict |\n";
  std::cout << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n";
  for (const Row& row : rows) {
    const Outcome& o = row.outcome;
    const double per_diff =
        row.d == 0 ? 0 : static_cast<double>(o.bytes) / static_cast<double>(row.d);
    const double total_ratio =
        static_cast<double>(o.bytes + row.record_bytes) / static_cast<double>(row.baseline.bytes);
    bool pass = o.round_trips <= 6;
    std::string target;
    if (row.d == 0) {
      pass = pass && o.round_trips == 1 && o.bytes < 1024;
      target = "1 RT, < 1 KB";
    } else {
      const double limit = row.order.starts_with("scattered") ? 400 : 64;
      pass = pass && per_diff <= limit;
      target = "≤ " + Fixed(limit, 0) + " B/diff";
    }
    if (row.d == 1000) {
      pass = pass && row.seconds <= 1.0;
      target += ", ≤ 1 s";
    }
    std::cout << "| " << row.order << " | " << Count(static_cast<int64_t>(row.d)) << " | "
              << o.round_trips << " | " << o.messages << " | " << o.bytes << " | "
              << Fixed(per_diff, 1) << " | " << row.record_bytes << " | "
              << Fixed(100 * total_ratio, 3, " %") << " | " << Fixed(row.seconds * 1000, 1, " ms")
              << " | " << Fixed(row.baseline.seconds * 1000, 1, " ms") << " (" << row.baseline.bytes
              << " B) | " << Verdict(pass) << " (" << target << ", ≤ 6 RT) |\n";
  }
}

Options Parse(int argc, char** argv) {
  Options options;
  options.reconcile.session.seed = 0x5eed;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) Die("missing value after " + arg);
    const std::string value = argv[++i];
    if (arg == "--items") {
      options.items = std::stoull(value);
    } else if (arg == "--runs") {
      options.runs = std::max(1, std::stoi(value));
    } else if (arg == "--diffs") {
      options.diffs.clear();
      std::stringstream list(value);
      for (std::string d; std::getline(list, d, ',');) options.diffs.push_back(std::stoull(d));
    } else if (arg == "--only") {
      std::stringstream list(value);
      for (std::string name; std::getline(list, name, ',');) options.only.insert(name);
    } else if (arg == "--fingerprint-bytes") {
      options.reconcile.session.fingerprint_bytes = static_cast<uint8_t>(std::stoi(value));
    } else if (arg == "--seed") {
      options.seed = std::stoull(value);
    } else if (arg == "--leaf-items") {
      options.reconcile.leaf_items = std::stoull(value);
    } else {
      Die("unknown option " + arg);
    }
  }
  return options;
}

int Main(int argc, char** argv) {
  SetDieHandler("lockstep_reconcile_bench", nullptr);
  const Options options = Parse(argc, argv);
  struct Shape {
    std::string name;
    bool clustered;
    Order order;
    Window window;
  };
  const std::vector<Shape> shapes = {
      {"scattered", false, Order::kKeyHash, Window::kNone},
      {"clustered", true, Order::kKeyHash, Window::kNone},
      {"scattered+recent", false, Order::kKeyHash, Window::kSinceEqual},
      {"clustered+recent", true, Order::kKeyHash, Window::kSinceEqual},
      {"clustered+recent×4", true, Order::kKeyHash, Window::kFourTimes},
      {"clustered+recent/2", true, Order::kKeyHash, Window::kHalf},
      {"clustered-by-time", true, Order::kChangeTime, Window::kNone},
      {"scattered-by-time", false, Order::kChangeTime, Window::kNone},
  };
  std::vector<Row> rows;
  for (const Shape& shape : shapes) {
    const std::string& name = shape.name;
    if (!options.only.empty() && !options.only.contains(name)) continue;
    for (size_t d : options.diffs) {
      std::cerr << name << " d=" << d << "\n";
      std::mt19937_64 rng(options.seed + d);
      const Pair pair = MakePair(options.items, d, shape.clustered, rng);
      const uint64_t time_span = options.items + d + 1;
      MemoryItemSet a = ToSet(pair.a, shape.order, time_span);
      MemoryItemSet b = ToSet(pair.b, shape.order, time_span);
      const auto a_recent =
          RecentPositions(pair.a, options.items, shape.window, shape.order, time_span);
      const auto b_recent =
          RecentPositions(pair.b, options.items, shape.window, shape.order, time_span);
      Row row{name, d, {}, 0, {}, 0};
      std::vector<double> times, baseline_times;
      for (int run = 0; run < options.runs; ++run) {
        Outcome outcome = RunSession(a, b, options.reconcile, a_recent, b_recent);
        if (outcome.found != pair.differing) Die(name + ": found other differences than made");
        times.push_back(outcome.seconds);
        row.baseline = EncodeWholeCollection(pair.a);
        baseline_times.push_back(row.baseline.seconds);
        row.outcome = std::move(outcome);
      }
      row.seconds = Median(times);
      row.baseline.seconds = Median(baseline_times);
      row.record_bytes = row.outcome.sent_records * (kRecordBytes + 14);
      rows.push_back(std::move(row));
    }
  }
  PrintRows(options, rows);
  return 0;
}

}  // namespace
}  // namespace lockstep::bench

int main(int argc, char** argv) { return lockstep::bench::Main(argc, argv); }
