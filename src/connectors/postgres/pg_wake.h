// Waking a running engine when users write to a synced PostgreSQL table, without making every
// writer NOTIFY. A transaction that notifies takes a cluster-wide lock at commit, which serialises
// the users' commits: pgbench made 897 transactions/s without capture, 902 with the capture
// triggers but no NOTIFY, 480 with a NOTIFY per captured row. So the triggers notify only while an
// engine sleeps, and an engine that is awake looks for work itself.
//
// The flag is the sequence `_lockstep_wake`: setval() is not transactional (never rolled back) and
// reading it is one buffer read. It holds one bit per sleeping engine, the bit of the slot the
// engine holds (a session advisory lock, kFirstWakeSlot + n) while it runs. Invariants:
//
//  1. A writer's statement on a synced table takes PostgresDb::kRowsLock shared (its trigger does,
//     before any row is touched), then reads the flag, and notifies (at commit) when any bit is
//     set. Triggers never clear a bit, so a notifying transaction that rolls back loses no
//     wake-up: the next writer notifies again.
//  2. An engine sets its bit before it sleeps, then takes kRowsLock exclusively without waiting
//     (pg_try_advisory_xact_lock, which never queues ahead of writers, and holds it only for its
//     own one-statement transaction). Once it gets it, every
//     writer that read the flag before the bit was set has ended, and its commit is visible: the
//     engine looks once more (committed captures not yet stamped, the store's log moved) and
//     sleeps only when there is nothing. Until it gets it, it looks again shortly; writers that
//     start meanwhile see the bit and notify.
//  3. Awake, an engine keeps its bit clear and looks every 10 ms while captures wait (backing off
//     up to the poll interval while nothing moves, e.g. no session is connected to stamp), and
//     every 10–200 ms while only its log moves (applies): busy writers notify nobody.
//  4. Asleep, it still looks once per poll interval (1 s by default): a bound for what no NOTIFY
//     announces (another engine's stamps and applies into the shared store, an older Lockstep's
//     triggers), so no interleaving strands a change for longer.
//  5. Engines change the flag only under an advisory lock of their own (kWakeLock), so that
//     concurrent engines never overwrite each other's bits. NOTIFY is broadcast: one writer's
//     notification wakes every sleeping engine of the database.
//
// An engine that crashes leaves its bit set: writers then notify (slower, never wrong) until an
// engine starts on the database, which clears the bits of slots nobody holds.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "store/postgres_db.h"

namespace lockstep::connectors::postgres {

// The channel the triggers notify.
inline constexpr char kChannel[] = "lockstep";
// The flag: one bit per sleeping engine.
inline constexpr char kWakeSequence[] = "_lockstep_wake";
// Engines that can sleep on NOTIFY at once on one database; more poll instead.
inline constexpr int kWakeSlots = 32;
// Serialises engines' changes of the flag (never taken by users' writers).
inline constexpr int64_t kWakeLock = store::PostgresDb::kWriterLock + 2;
// Slot n is held by the engine whose bit is 1 << n, as a session advisory lock.
inline constexpr int64_t kFirstWakeSlot = store::PostgresDb::kWriterLock + 16;

// Creates the flag when missing (every engine awake). Part of InstallCapture.
std::string CreateWakeFlagSql();

// PL/pgSQL statements for a trigger that holds kRowsLock: notify when an engine sleeps.
std::string NotifyIfAsleepSql();

// The engine's side: one per running engine and database, on a connection of its own that
// LISTENs. Not thread-safe.
class ChangeWatcher {
 public:
  struct Options {
    // Between looks while there is work.
    std::chrono::milliseconds busy_poll{10};
    // Between looks while asleep (and the longest backoff while awake): the bound of point 4.
    std::chrono::milliseconds idle_poll{1'000};
    // How often the sessions are woken, at most, for a log that moves with no capture waiting
    // (applies, stamps): also the longest a capture then waits to be seen.
    std::chrono::milliseconds log_nudge_every{200};
  };

  // Connects to `url`, LISTENs, claims a slot (none when all are held: it then polls) and
  // clears the bits of slots nobody holds. REQUIRES: the database is attached (the flag exists).
  static Result<std::unique_ptr<ChangeWatcher>> Open(std::string_view url, const Options& options);
  // Clears its bit (best effort: a lost connection leaves it to the next engine, see above).
  ~ChangeWatcher();
  ChangeWatcher(const ChangeWatcher&) = delete;
  ChangeWatcher& operator=(const ChangeWatcher&) = delete;

  // Waits at most `max_wait` for a notification or the next look; returns true when the engine's
  // sessions should look at the database now (stamp captures, read the log). Errors are
  // kUnavailable when the connection is lost; open a new watcher then.
  Result<bool> Next(std::chrono::milliseconds max_wait);

  // Whether this engine's bit is set (it sleeps or is falling asleep). For tests and logs.
  bool asleep() const { return state_ != State::kAwake; }
  // The slot this engine holds, if any.
  std::optional<int> slot() const { return slot_; }

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { kAwake, kFallingAsleep, kAsleep };
  // What a look finds.
  struct Look {
    int64_t seq = 0;       // the store's highest seq: moves on every stamp and apply
    bool pending = false;  // committed captures that no one has stamped yet
  };

  ChangeWatcher(std::unique_ptr<store::PostgresDb> db, const Options& options)
      : db_(std::move(db)), options_(options), wait_(options.busy_poll) {}

  Status ClaimSlot();
  // Sets or clears this engine's bit (point 5).
  Status SetBit(bool on);
  // Waits until `until` or a notification; returns whether one came.
  Result<bool> Wait(Clock::time_point until);
  Result<Look> LookAtDatabase();
  // (Re)prepares the look for the capture tables that exist now.
  Status PrepareLook();
  Result<bool> LookWhileAwake();
  Result<bool> LookWhileFallingAsleep();
  Result<bool> LookWhileAsleep();
  // Clears the bit and looks again after busy_poll; returns true (wake the sessions).
  Result<bool> WakeUp();
  // Whether `look` shows work, remembering the seq it saw.
  bool Work(const Look& look);
  // Returns true (wake the sessions), remembering when.
  bool Nudge(Clock::time_point now);

  // Declared first: destroyed last, after the statements prepared on it.
  std::unique_ptr<store::PostgresDb> db_;
  Options options_;
  std::optional<int> slot_;
  State state_ = State::kAwake;
  std::chrono::milliseconds wait_;              // until the next look
  Clock::time_point next_look_ = Clock::now();  // the first call looks at once
  int64_t last_seq_ = -1;
  Clock::time_point last_nudge_;
  bool owed_ = false;         // the log moved since the sessions were last woken
  int64_t collections_ = -1;  // how many collections the look was prepared for
  std::optional<store::Statement> look_;
  std::optional<store::Statement> quiet_;
};

}  // namespace lockstep::connectors::postgres
