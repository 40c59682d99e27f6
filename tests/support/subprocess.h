// Running child processes with bounded waits, and free loopback ports for them to listen on.
// Shared by the tests and the benchmarks, so it reports through results, never through GoogleTest.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace lockstep::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};

// Runs `argv` to completion with no stdin, capturing stdout and stderr.
ProcessResult Run(const std::vector<std::string>& argv);

// Like Run, but kills `argv` with SIGKILL once it has run for `limit`; the result then has
// exit_code -SIGKILL and says so at the end of `err`.
ProcessResult RunWithin(const std::vector<std::string>& argv,
                        std::chrono::steady_clock::duration limit);

// Starts `argv` in the background with stdout and stderr sent to /dev/null; returns its pid.
pid_t Spawn(const std::vector<std::string>& argv);
// Starts `argv` in the background with stdin read from `in` and stdout, stderr written to `out`,
// `err` (created or truncated); returns its pid, or -1 when it cannot be started.
pid_t SpawnWithFiles(const std::vector<std::string>& argv, const std::filesystem::path& in,
                     const std::filesystem::path& out, const std::filesystem::path& err);
// Waits for `pid`; returns its exit code, or -signal when a signal ended it.
int Wait(pid_t pid);
// The exit code of `pid` (-signal when a signal ended it) if it has ended, else nullopt. Once it
// has returned a code, `pid` is reaped and must not be polled again.
std::optional<int> Poll(pid_t pid);
// Waits for `pid` at most `limit`. Returns its exit code (-signal when a signal ended it), or
// nullopt when it is still running then, after killing it with SIGKILL if `kill_when_late`.
std::optional<int> WaitWithin(pid_t pid, std::chrono::steady_clock::duration limit,
                              bool kill_when_late = true);

// The contents of the file at `path`; empty when it cannot be read.
std::string ReadFile(const std::filesystem::path& path);

// One background process. The guard kills it (SIGKILL) and reaps it when it dies. Not thread-safe.
class ProcessGuard {
 public:
  ProcessGuard() = default;
  ~ProcessGuard() { Kill(); }
  ProcessGuard(const ProcessGuard&) = delete;
  ProcessGuard& operator=(const ProcessGuard&) = delete;

  // Guards `pid` (from Spawn or SpawnWithFiles); false when it is not a process (-1).
  // REQUIRES: no process running under this guard.
  bool Start(pid_t pid);
  // Whether it still runs; reaps it once it has ended, keeping its exit code.
  bool Running();
  // SIGKILL, and waits for it; nothing when it no longer runs.
  void Kill();
  // SIGTERM; the exit code, or nullopt when it still ran after `limit` (it is killed then).
  std::optional<int> Terminate(std::chrono::steady_clock::duration limit);
  // Waits at most `limit` for it to end by itself; nullopt while it still runs.
  std::optional<int> WaitForExit(std::chrono::steady_clock::duration limit);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0, read back, closed); 0
// when there is none.
uint16_t FreeLoopbackPort();

}  // namespace lockstep::testing
