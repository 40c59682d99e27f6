// The probes that measure replication lag without trusting any clock but this program's: a
// writer commits probe 1, 2, ... on the source every 100 ms and notes when each commit returned;
// a watcher per replica polls for the highest probe visible there and notes when each appeared.
// Each runs on its own thread; all times are this process's steady clock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lockstep/status.h"
#include "postgres_bench_support.h"
#include "replicator.h"

namespace lockstep::bench {

using ProbeClock = std::chrono::steady_clock;
using ProbeTimes = std::vector<ProbeClock::time_point>;  // [i]: probe i + 1

inline constexpr auto kProbeEvery = std::chrono::milliseconds(100);
inline constexpr auto kWatchEvery = std::chrono::milliseconds(5);  // the lag's resolution

// Writes the probes into kProbeTable of the database at `url` (connecting dies on failure).
// Thread-compatible: call Stop() from one thread.
class ProbeWriter {
 public:
  explicit ProbeWriter(const std::string& url);
  ~ProbeWriter() { (void)Stop(); }
  ProbeWriter(const ProbeWriter&) = delete;
  ProbeWriter& operator=(const ProbeWriter&) = delete;

  // Stops at once (waking the writer from its wait); returns when each probe's commit returned,
  // or the error that stopped the writer.
  Result<ProbeTimes> Stop();

 private:
  void Loop();

  PgConnection db_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mutex_
  ProbeTimes acked_;
  Status error_;
  std::thread thread_;
};

// Watches one replica for probes every kWatchEvery. seen() may be read from any thread.
class ProbeWatcher {
 public:
  // REQUIRES: `replica` outlives the watcher and nothing else reads it until Stop().
  explicit ProbeWatcher(Replica& replica);
  ~ProbeWatcher() { (void)Stop(); }
  ProbeWatcher(const ProbeWatcher&) = delete;
  ProbeWatcher& operator=(const ProbeWatcher&) = delete;

  // How many probes have been seen so far; -1 once reading the replica failed.
  int64_t seen() const { return seen_count_; }
  // Stops; returns when each probe became visible, or the error that stopped the watcher.
  Result<ProbeTimes> Stop();

 private:
  void Loop();

  Replica& replica_;
  std::atomic<bool> stop_ = false;
  std::atomic<int64_t> seen_count_ = 0;
  ProbeTimes seen_;
  Status error_;
  std::thread thread_;
};

}  // namespace lockstep::bench
