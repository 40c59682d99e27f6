// The node daemon, `lockstep run -c node.toml`: keeps one source (a SQLite file or a PostgreSQL
// database) in sync with its peers, live (a session kept open, woken by local commits: inotify
// for SQLite; for PostgreSQL, NOTIFY while the node sleeps and a 10 ms look while it is busy,
// see connectors/postgres/pg_wake.h) or on a schedule, and optionally listens for peers itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "base/clock.h"
#include "engine/node_config.h"

namespace lockstep::engine {

// A stop request that sleeping threads wake up for. Thread-safe.
class StopSignal {
 public:
  void Stop();
  bool stopped() const;
  // Sleeps for `millis` or until Stop(); returns whether stopped.
  bool SleepFor(int64_t millis);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

// Runs the node until `stop` is signalled: each peer on a thread of its own (reconnecting with
// exponential backoff and jitter), a listener if configured, and a watcher that wakes live
// sessions when the database's files change. Returns after every session said goodbye.
// Progress and failures are one line each on stderr; secrets never appear.
Status RunNode(const NodeConfig& config, const base::Clock& clock, StopSignal& stop);

}  // namespace lockstep::engine
