#include "support/process.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace lockstep::testing {

std::string LockstepBinary() { return LOCKSTEP_BINARY; }

ProcessResult Lockstep(const std::vector<std::string>& args) {
  std::vector<std::string> argv{LockstepBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

std::string Sql(const std::filesystem::path& db, const std::string& sql) {
  ProcessResult result = Run({"sqlite3", "-cmd", ".timeout 10000", db.string(), sql});
  EXPECT_EQ(result.exit_code, 0) << "sqlite3 " << db << " failed: " << result.err
                                 << "\nSQL: " << sql;
  return result.out;
}

void RestoreFile(const std::filesystem::path& copy, const std::filesystem::path& db) {
  std::filesystem::remove(db.string() + "-wal");
  std::filesystem::remove(db.string() + "-shm");
  std::filesystem::copy_file(copy, db, std::filesystem::copy_options::overwrite_existing);
}

ScratchDir::ScratchDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "lockstep-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace lockstep::testing
