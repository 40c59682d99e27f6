// Test support: running real processes (lockstep, sqlite3) and scratch directories.
#pragma once

#include <sys/types.h>

#include <filesystem>
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

// Runs the lockstep binary under test with `args`.
ProcessResult Lockstep(const std::vector<std::string>& args);

// Runs `sql` through the real sqlite3 CLI on `db` (with a 10 s busy timeout); returns stdout.
// Fails the current test on a non-zero exit.
std::string Sql(const std::filesystem::path& db, const std::string& sql);

// Starts `argv` in the background with stdout and stderr sent to /dev/null; returns its pid.
pid_t Spawn(const std::vector<std::string>& argv);
// Waits for `pid`; returns its exit code, or -signal when a signal ended it.
int Wait(pid_t pid);

// The path of the lockstep binary under test.
std::string LockstepBinary();

// A fresh directory removed (with its contents) when the object dies.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace lockstep::testing
