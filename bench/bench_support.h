// Support shared by the end-to-end benchmarks, which run the lockstep binary as processes: dying
// with one message, starting processes, SQLite handles, and the figures of their reports.
#pragma once

#include <sqlite3.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lockstep::bench {

// Names the benchmark in Die's message and sets what Die runs before it exits (nothing when
// null). Call it first in main. Not thread-safe.
void SetDieHandler(const char* program, void (*cleanup)());
// Prints "PROGRAM: message" to stderr, runs the cleanup, and exits with 1.
[[noreturn]] void Die(const std::string& message);

// Starts args[0] (looked up in PATH) without waiting for it, its stdout written to `out` and its
// stderr to `err` (/dev/null when empty; files are created or truncated), or stderr left as this
// process's when `err` is nullopt. Returns its pid; dies when it cannot be started.
pid_t StartProcess(const std::vector<std::string>& args, const std::filesystem::path& out,
                   const std::optional<std::filesystem::path>& err);
// Children started with Spawn, stopped by StopAll (a Die handler) if the benchmark ends early.
// Spawn starts args[0] with stdout and stderr sent to files (/dev/null when empty).
pid_t Spawn(const std::vector<std::string>& args, const std::filesystem::path& out = {},
            const std::filesystem::path& err = {});
// Runs a command to completion within `timeout_s`; dies (showing its stderr) if it fails.
void RunProcess(const std::vector<std::string>& args, const std::filesystem::path& out = {},
                const std::filesystem::path& err = {}, double timeout_s = 600);
// Stops a child: SIGTERM (a node finishes its batch and says goodbye), SIGKILL after 5 s.
void StopProcess(pid_t pid);
void StopAll();

// The command line for a message: each argument cut to `width` characters and followed by a space.
std::string CommandLine(const std::vector<std::string>& args, size_t width);

// CPU seconds (user + sys) process `pid` has used, from /proc/PID/stat, plus with
// `ended_children` those of its children that have ended and been waited for; 0 when it is gone.
double ProcessCpuSeconds(pid_t pid, bool ended_children = false);
// The parent of process `pid`; 0 when it is gone.
pid_t ParentProcess(pid_t pid);

// The contents of the file at `path`; empty when it cannot be read.
std::string ReadFile(const std::filesystem::path& path);

// A directory of our own, NAME-PID, inside `dir` (the system's temporary directory when empty),
// created. The benchmark removes it at the end.
std::filesystem::path MakeScratchDir(const std::filesystem::path& dir, const std::string& name);

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

// Runs `sql` on `db`; dies with SQLite's message when it fails.
void Exec(sqlite3* db, const std::string& sql);

// `value` with `decimals` decimals, followed by `suffix`.
std::string Fixed(double value, int decimals, const char* suffix = "");
// `n` as 3M, 20k or 1234: whole millions and thousands shortened.
std::string Count(int64_t n);
std::string Verdict(bool pass);  // PASS or FAIL
// The median of `values`; 0 when there are none.
double Median(std::vector<double> values);

}  // namespace lockstep::bench
