// Checkpoints of one writer connection's WAL, run on a thread of their own: copying the WAL's
// pages into the database file and syncing it then overlap the writer's next transactions on
// another core instead of stalling its commits.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>

#include "lockstep/status.h"

namespace lockstep::store {

struct CheckpointOptions {
  // A commit that leaves at least this many pages in the WAL asks the thread for a checkpoint.
  // SQLite's autocheckpoint took 1,000; a sync that rewrites scattered rows dirties the same
  // interior pages again and again, and each checkpoint would copy and sync them anew.
  int start_pages = 10'000;
  // A commit that leaves at least this many pages waits for the thread's pass in flight, then
  // checkpoints on the writer's own connection: the thread cannot keep up (a slow disk), or its
  // connection failed. The next transaction then starts the WAL over, so it stays bounded.
  int limit_pages = 40'000;
  // Where a failed checkpoint is reported, once per checkpointer; by default standard error.
  std::function<void(const Status&)> report;
};

// Installed as the WAL hook of one writer connection, in place of SQLite's autocheckpoint. The
// thread opens its own connection to the same file on the first request, so a sync that writes
// little never starts it, and runs PASSIVE checkpoints: they copy what no reader still needs
// and never block the writer or a reader. A reader that holds an old snapshot pins the WAL
// past its start, as it would with SQLite's own checkpoints; once it ends, the next pass
// catches up. A failed checkpoint loses nothing (the WAL still holds every commit); it is
// reported once and returned by Stop().
//
// The hook and Stop() run on the writer's thread, the checkpoints on the checkpointer's; each
// connection is only ever used by one thread. Not movable (SQLite holds a pointer to it).
class WalCheckpointer {
 public:
  // REQUIRES: `writer` is a connection to the database file `path` and outlives this object,
  // which is used on `writer`'s thread only; sqlite3_threadsafe() != 0.
  WalCheckpointer(sqlite3* writer, std::filesystem::path path, CheckpointOptions options);
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;
  ~WalCheckpointer() { (void)Stop(); }

  // Stops and joins the thread (a pass in flight finishes first) and gives the writer SQLite's
  // autocheckpoint back. Returns the first checkpoint error, OK if none. Idempotent.
  Status Stop();

  struct Counters {
    int64_t passes = 0;              // checkpoints the thread ran
    int64_t writer_checkpoints = 0;  // checkpoints the writer ran at the limit
    int64_t failures = 0;            // checkpoints that failed (either connection)
  };
  Counters counters() const;

 private:
  static int OnCommit(void* self, sqlite3* writer, const char* schema, int pages);
  // Wakes the thread, starting it on the first call. False when it cannot run.
  bool Request();
  // The writer's fallback: waits for the pass in flight, then checkpoints on its own connection.
  void CheckpointOnWriter();
  void Run(std::stop_token stop);
  // Counts a failure; reports the first one. REQUIRES: mutex_ held.
  void RecordFailure(const Status& error);

  sqlite3* const writer_;
  const std::filesystem::path path_;
  const CheckpointOptions options_;
  bool stopped_ = false;  // writer's thread only

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;  // a pass was requested, or stop
  std::condition_variable idle_;      // a pass ended, or the thread gave up
  bool requested_ = false;
  bool running_ = false;  // a pass is in flight
  bool broken_ = false;   // the thread could not start or open its connection
  Counters counters_;
  Status first_error_;
  std::jthread thread_;  // last member: joins before the state it uses goes
};

}  // namespace lockstep::store
