#include "support/hub.h"

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

namespace lockstep::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr auto kStopLimit = std::chrono::seconds(10);
constexpr auto kSyncLimit = std::chrono::seconds(60);
constexpr auto kPollEvery = std::chrono::milliseconds(10);

size_t CountLinesWith(const std::string& text, const std::string& needle) {
  size_t count = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (text.substr(start, end - start).find(needle) != std::string::npos) ++count;
    start = end + 1;
  }
  return count;
}

}  // namespace

std::unique_ptr<Hub> Hub::Start(const Options& options) {
  std::unique_ptr<Hub> hub(new Hub());
  hub->plaintext_ = options.plaintext;
  hub->data_dir_ = hub->dir_ / "data";
  hub->out_file_ = hub->dir_ / "serve.out";
  hub->err_file_ = hub->dir_ / "serve.err";
  std::vector<std::string> argv{LockstepBinary(), "serve",  "--listen",
                                "127.0.0.1:0",    "--data", hub->data_dir_.string()};
  if (options.plaintext) argv.push_back("--plaintext");
  argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
  hub->pid_ = SpawnWithFiles(argv, "/dev/null", hub->out_file_, hub->err_file_);
  if (hub->pid_ < 0) {
    ADD_FAILURE() << "could not start lockstep serve";
    return nullptr;
  }
  // The port line comes first; over TLS the fingerprint line follows in the same flush.
  static const std::regex kPort(R"(lockstep serve: listening on 127\.0\.0\.1:(\d+))");
  static const std::regex kFingerprint(R"(certificate fingerprint: (SHA256:[0-9a-fA-F:]+))");
  const auto deadline = SteadyClock::now() + options.start_limit;
  std::string out;
  for (;;) {
    out = ReadFile(hub->out_file_);
    std::smatch port;
    std::smatch fingerprint;
    const bool has_port = std::regex_search(out, port, kPort);
    const bool has_fingerprint = std::regex_search(out, fingerprint, kFingerprint);
    if (has_port && (options.plaintext || has_fingerprint)) {
      hub->port_ = static_cast<uint16_t>(std::stoi(port[1].str()));
      if (has_fingerprint) hub->fingerprint_ = fingerprint[1].str();
      return hub;
    }
    if (!hub->Running() || SteadyClock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollEvery);
  }
  ADD_FAILURE() << "lockstep serve did not announce its port within " << options.start_limit.count()
                << " s (exit: "
                << (hub->exit_code_ ? std::to_string(*hub->exit_code_) : "still running")
                << ")\nstdout: " << out << "\nstderr: " << hub->Log();
  return nullptr;  // the destructor stops it
}

Hub::~Hub() { (void)Stop(); }

bool Hub::Running() const {
  if (exit_code_.has_value() || pid_ < 0) return false;
  // Poll reaps the process once it has ended: remember its code.
  std::optional<int> code = Poll(pid_);
  if (!code.has_value()) return true;
  exit_code_ = code;
  return false;
}

int Hub::Stop() {
  if (pid_ < 0) return -1;
  if (Running()) {
    kill(pid_, SIGTERM);
    exit_code_ = WaitWithin(pid_, kStopLimit, /*kill_when_late=*/true);
    if (!exit_code_.has_value()) {
      ADD_FAILURE() << "lockstep serve ignored SIGTERM for " << kStopLimit.count() << " s";
      exit_code_ = -SIGKILL;
    }
  }
  return *exit_code_;
}

bool Hub::WaitForLog(const std::string& needle, size_t count,
                     std::chrono::milliseconds limit) const {
  const auto deadline = SteadyClock::now() + limit;
  for (;;) {
    if (CountLinesWith(Log(), needle) >= count) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollEvery);
  }
}

std::optional<int64_t> Hub::RssKib() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return std::nullopt;
}

std::string Hub::CreateToken(const std::string& collections, const std::string& mode) const {
  ProcessResult result =
      RunWithin({LockstepBinary(), "token", "create", "--data", data_dir_.string(), "--collections",
                 collections, "--mode", mode},
                kSyncLimit);
  EXPECT_EQ(result.exit_code, 0) << "token create failed: " << result.err;
  std::string token = result.out;
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  EXPECT_FALSE(token.empty());
  EXPECT_EQ(token.find('\n'), std::string::npos) << "token create printed more than a token";
  return token;
}

std::vector<std::string> Hub::SyncArgv(const std::filesystem::path& db, const std::string& token,
                                       const std::vector<std::string>& extra) const {
  std::vector<std::string> argv{LockstepBinary(), "sync", db.string(), url(), "--token", token};
  if (plaintext_) {
    argv.push_back("--plaintext");
  } else {
    argv.insert(argv.end(), {"--trust", fingerprint_});
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

ProcessResult Hub::Sync(const std::filesystem::path& db, const std::string& token,
                        const std::vector<std::string>& extra) const {
  return RunWithin(SyncArgv(db, token, extra), kSyncLimit);
}

void StartLiveNode(ProcessGuard& guard, const std::filesystem::path& dir, const std::string& name,
                   const std::string& source, const std::string& peer_url,
                   const std::string& token) {
  const std::filesystem::path file = dir / (name + ".toml");
  std::ofstream(file) << "[node]\nname = \"" << name << "\"\n\n[[source]]\n"
                      << source << "\n\n[[peer]]\nurl = \"" << peer_url << "\"\ntoken = \"" << token
                      << "\"\nplaintext = true\nmode = \"live\"\n";
  ASSERT_TRUE(
      guard.Start(SpawnWithFiles({LockstepBinary(), "run", "-c", file.string()}, "/dev/null",
                                 dir / (name + ".out"), dir / (name + ".err"))));
}

}  // namespace lockstep::testing
