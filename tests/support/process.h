// Test support: running real processes (lockstep, sqlite3) and scratch directories. The bounded
// process helpers themselves (Run, RunWithin, Spawn, ProcessGuard...) are in subprocess.h, which
// knows nothing of GoogleTest so that the benchmarks use them too.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "support/subprocess.h"

namespace lockstep::testing {

// The path of the lockstep binary under test.
std::string LockstepBinary();

// Runs the lockstep binary under test with `args`.
ProcessResult Lockstep(const std::vector<std::string>& args);

// Runs `sql` through the real sqlite3 CLI on `db` (with a 10 s busy timeout); returns stdout.
// Fails the current test on a non-zero exit.
std::string Sql(const std::filesystem::path& db, const std::string& sql);

// Replaces the SQLite file `db` by `copy`, as restoring a backup does (the WAL of the newer file
// goes too).
void RestoreFile(const std::filesystem::path& copy, const std::filesystem::path& db);

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
