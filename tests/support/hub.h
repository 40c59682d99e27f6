// Test support: a real `lockstep serve` hub on 127.0.0.1, started in the background and stopped
// when the test is done, with the commands that sync a node with it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"

namespace lockstep::testing {

// One `lockstep serve --listen 127.0.0.1:0` process with a data directory of its own. The
// destructor stops it (SIGTERM, then SIGKILL), so no test leaves a hub behind. Not thread-safe.
class Hub {
 public:
  struct Options {
    bool plaintext = false;
    std::chrono::seconds start_limit{30};      // for the port (and fingerprint) lines to appear
    std::vector<std::string> extra_args = {};  // appended to `lockstep serve ...`
  };

  // Starts the hub and waits for it to announce its port and, over TLS, its fingerprint. Fails
  // the current test and returns nullptr when it does not within `options.start_limit`.
  static std::unique_ptr<Hub> Start(const Options& options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  bool plaintext() const { return plaintext_; }
  const std::string& fingerprint() const { return fingerprint_; }  // empty in plaintext mode
  std::string url() const { return "lockstep://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::filesystem::path db() const { return data_dir_ / "hub.db"; }

  // What the hub wrote to stderr so far: one line per ended session.
  std::string Log() const { return ReadFile(err_file_); }
  // Waits at most `limit` for the log to hold `count` lines containing `needle`.
  bool WaitForLog(const std::string& needle, size_t count, std::chrono::milliseconds limit) const;
  // Whether the process is still running.
  bool Running() const;
  // Resident memory in KiB (VmRSS), nullopt when it cannot be read.
  std::optional<int64_t> RssKib() const;

  // `lockstep token create` on this hub's data directory; fails the test unless it works.
  std::string CreateToken(const std::string& collections, const std::string& mode) const;
  // The argument list of `lockstep sync DB URL --token TOKEN` plus how to trust this hub (its
  // pinned fingerprint, or --plaintext), followed by `extra`.
  std::vector<std::string> SyncArgv(const std::filesystem::path& db, const std::string& token,
                                    const std::vector<std::string>& extra = {}) const;
  // Runs that command, bounded in time (killed after 60 s).
  ProcessResult Sync(const std::filesystem::path& db, const std::string& token,
                     const std::vector<std::string>& extra = {}) const;

  // SIGTERM, then SIGKILL if it has not ended within 10 s. Returns its exit code (-signal when
  // a signal ended it). Called by the destructor when the test did not.
  int Stop();

 private:
  Hub() = default;

  ScratchDir dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path out_file_;
  std::filesystem::path err_file_;
  bool plaintext_ = false;
  pid_t pid_ = -1;
  mutable std::optional<int> exit_code_;  // once reaped
  uint16_t port_ = 0;
  std::string fingerprint_;
};

// Starts `lockstep run` in `guard` on a node file `dir/NAME.toml` with one [[source]] (`source`
// is its lines, e.g. `sqlite = "a.db"`) and one live plaintext peer at `peer_url` (a hub's
// url()); the node's stdout and stderr go to `dir/NAME.out` and `dir/NAME.err`. Fails the test
// unless it starts.
void StartLiveNode(ProcessGuard& guard, const std::filesystem::path& dir, const std::string& name,
                   const std::string& source, const std::string& peer_url,
                   const std::string& token);

}  // namespace lockstep::testing
