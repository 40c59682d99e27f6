// Test support for scenarios with `lockstep run` nodes on 127.0.0.1: the table they sync, bounded
// waits, free ports, what a database holds, and a printed seed for random choices.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace lockstep::testing {

// The table the node scenarios write: an owner, a value and a counter per row.
inline constexpr char kCreateTable[] =
    "CREATE TABLE t(id INTEGER PRIMARY KEY, owner TEXT NOT NULL, v TEXT NOT NULL, n INTEGER);";

// Milliseconds from `start` until now.
int64_t MsSince(std::chrono::steady_clock::time_point start);

// Calls `done` every `poll_every` (25 ms unless given) until it holds or `limit` has passed;
// returns the last answer. A check that itself costs much (sums over a million rows) polls less
// often, so as not to take the CPU from what it waits for.
bool WaitFor(const std::function<bool()>& done, std::chrono::steady_clock::duration limit,
             std::chrono::steady_clock::duration poll_every = std::chrono::milliseconds(25));

// A TCP port on 127.0.0.1 that was free a moment ago: bound with port 0, read back, closed.
// Fails the current test when there is none.
uint16_t FreePort();

// Whether `db` exists and holds table t.
bool HasTable(const std::filesystem::path& db);
// Whether `db` holds row `id` of table t.
bool HasRow(const std::filesystem::path& db, int64_t id);
// Every row of table t in `db`, in id order, as the sqlite3 CLI prints them.
std::string Dump(const std::filesystem::path& db);

// A fresh seed for each run, printed; LOCKSTEP_TEST_SEED=N repeats a run's random choices (as far
// as the processes' timing lets them repeat).
uint32_t Seed();

}  // namespace lockstep::testing
