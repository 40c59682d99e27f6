// The node daemon with real processes on 127.0.0.1: a `lockstep serve` hub and nodes running
// `lockstep run -c node.toml`, live or on a schedule, while one long-running sqlite3 process per
// node writes to its database. Every node and the hub must end with the same rows, none of them
// lost, through hub and node crashes (SIGKILL); directions must hold; SIGTERM ends a node with 0,
// a bad node file with 2 and one line. Every wait is bounded and every process is killed by its
// guard when a test ends, however it ends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/node.h"
#include "support/process.h"

extern char** environ;

namespace lockstep::integration {
namespace {

namespace fs = std::filesystem;
using lockstep::testing::Dump;
using lockstep::testing::FreePort;
using lockstep::testing::HasRow;
using lockstep::testing::HasTable;
using lockstep::testing::kCreateTable;
using lockstep::testing::LockstepBinary;
using lockstep::testing::MsSince;
using lockstep::testing::ProcessGuard;
using lockstep::testing::ProcessResult;
using lockstep::testing::ReadFile;
using lockstep::testing::RunWithin;
using lockstep::testing::ScratchDir;
using lockstep::testing::Seed;
using lockstep::testing::SpawnWithFiles;
using lockstep::testing::Sql;
using lockstep::testing::WaitFor;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kStartLimit = seconds(30);     // for a hub to announce its port
constexpr auto kStopLimit = seconds(5);       // for SIGTERM to end a process
constexpr auto kArriveLimit = seconds(10);    // for a single write to reach where it should
constexpr auto kConvergeLimit = seconds(10);  // for every database to agree after the writes
constexpr auto kPollEvery = milliseconds(25);
constexpr int64_t kConvergeGoalMs = 2'000;

// A `lockstep serve` hub over TLS on a port fixed at construction, so that it can be killed and
// started again where its nodes expect it, on the same data directory.
class HubProcess {
 public:
  explicit HubProcess(fs::path dir) : dir_(std::move(dir)), port_(FreePort()) {
    fs::create_directories(dir_);
  }

  // Starts it and waits for it to announce its port and fingerprint (the same at every start:
  // the identity lives in the data directory). A start that fails at once (the port still
  // held, say) is tried again until kStartLimit.
  bool Start() {
    static const std::regex kFingerprint(R"(certificate fingerprint: (SHA256:[0-9a-fA-F:]+))");
    const auto deadline = SteadyClock::now() + kStartLimit;
    while (SteadyClock::now() < deadline) {
      ++starts_;
      const fs::path out = dir_ / ("serve." + std::to_string(starts_) + ".out");
      process_.Start(
          SpawnWithFiles({LockstepBinary(), "serve", "--listen",
                          "127.0.0.1:" + std::to_string(port_), "--data", data_dir().string()},
                         "/dev/null", out, ErrFile(starts_)));
      while (SteadyClock::now() < deadline) {
        std::smatch match;
        const std::string text = ReadFile(out);
        if (std::regex_search(text, match, kFingerprint)) {
          fingerprint_ = match[1].str();
          return true;
        }
        if (!process_.Running()) break;
        std::this_thread::sleep_for(kPollEvery);
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
    ADD_FAILURE() << "lockstep serve did not start on port " << port_ << "\n" << Log();
    return false;
  }
  void KillHard() { process_.Kill(); }
  std::optional<int> Terminate() { return process_.Terminate(kStopLimit); }
  bool Running() { return process_.Running(); }

  std::string CreateToken() const {
    const ProcessResult result =
        RunWithin({LockstepBinary(), "token", "create", "--data", data_dir().string(),
                   "--collections", "*", "--mode", "rw"},
                  kStartLimit);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    std::string token = result.out;
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
      token.pop_back();
    }
    return token;
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "lockstep://127.0.0.1:" + std::to_string(port_); }
  const std::string& fingerprint() const { return fingerprint_; }
  fs::path data_dir() const { return dir_ / "data"; }
  fs::path db() const { return data_dir() / "hub.db"; }
  // stderr of every run so far.
  std::string Log() const {
    std::string log;
    for (int i = 1; i <= starts_; ++i) log += ReadFile(ErrFile(i));
    return log;
  }

 private:
  fs::path ErrFile(int start) const { return dir_ / ("serve." + std::to_string(start) + ".err"); }

  fs::path dir_;
  uint16_t port_;
  int starts_ = 0;
  std::string fingerprint_;
  ProcessGuard process_;
};

struct PeerOptions {
  std::string direction = "both";
  std::string every;  // empty: mode = "live"
};

// A node file next to its database (`NAME.db`, relative), and `lockstep run -c NAME.toml`.
class Node {
 public:
  Node(const fs::path& dir, std::string name, const std::string& url, const std::string& trust,
       const std::string& token, const PeerOptions& options = {})
      : dir_(dir), name_(std::move(name)) {
    std::ofstream(dir_ / (name_ + ".tok")) << token << "\n";
    std::ofstream file(config());
    file << "[node]\nname = \"" << name_ << "\"\n\n[[source]]\nname = \"main\"\nsqlite = \""
         << name_ << ".db\"\n\n[[peer]]\nurl = \"" << url << "\"\ntoken_file = \"" << name_
         << ".tok\"\ntrust = \"" << trust << "\"\n"
         << (options.every.empty() ? "mode = \"live\"\n" : "every = \"" + options.every + "\"\n")
         << "direction = \"" << options.direction << "\"\n";
  }

  bool Start() {
    ++starts_;
    return process_.Start(SpawnWithFiles({LockstepBinary(), "run", "-c", config().string()},
                                         "/dev/null", ErrFile(starts_, "out"),
                                         ErrFile(starts_, "err")));
  }
  void KillHard() { process_.Kill(); }
  std::optional<int> Terminate() { return process_.Terminate(kStopLimit); }
  bool Running() { return process_.Running(); }

  fs::path db() const { return dir_ / (name_ + ".db"); }
  fs::path config() const { return dir_ / (name_ + ".toml"); }
  const std::string& name() const { return name_; }
  std::string Log() const {
    std::string log;
    for (int i = 1; i <= starts_; ++i) log += ReadFile(ErrFile(i, "err"));
    return log;
  }

 private:
  fs::path ErrFile(int start, const char* kind) const {
    return dir_ / (name_ + "." + std::to_string(start) + "." + kind);
  }

  fs::path dir_;
  std::string name_;
  int starts_ = 0;
  ProcessGuard process_;
};

// One sqlite3 process fed SQL through a pipe for as long as a test writes: no process start per
// transaction, so writes come as fast as a user's would. It stops at the first error (.bail).
class SqlWriter {
 public:
  SqlWriter(const fs::path& db, const fs::path& log) : log_(log) {
    std::signal(SIGPIPE, SIG_IGN);  // a writer that died fails Send, not the whole test binary
    int fds[2];
    // Close-on-exec, so that no other child holds the write end and sqlite3 sees end of input.
    if (pipe2(fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2 failed";
      return;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv{"sqlite3", "-batch", db.string()};
    std::vector<char*> raw;
    for (std::string& arg : argv) raw.push_back(arg.data());
    raw.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawnp(&pid, raw[0], &actions, nullptr, raw.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(fds[0]);
    fd_ = fds[1];
    EXPECT_TRUE(process_.Start(pid)) << "cannot start sqlite3";
    Send(".timeout 10000\n.bail on\n");
  }
  ~SqlWriter() {
    if (fd_ >= 0) close(fd_);
  }
  SqlWriter(const SqlWriter&) = delete;
  SqlWriter& operator=(const SqlWriter&) = delete;

  bool Send(const std::string& sql) {
    for (size_t done = 0; done < sql.size();) {
      const ssize_t n = write(fd_, sql.data() + done, sql.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Ends the input and waits for sqlite3 to commit what it was sent. Succeeds when it exited 0
  // and said nothing: then every transaction sent is committed.
  ::testing::AssertionResult Finish() {
    close(fd_);
    fd_ = -1;
    const std::optional<int> code = process_.WaitForExit(seconds(30));
    const std::string err = ReadFile(log_);
    if (code == 0 && err.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "sqlite3 writer " << log_ << " exit "
                                         << (code ? std::to_string(*code) : "none") << ": " << err;
  }

 private:
  fs::path log_;
  int fd_ = -1;
  ProcessGuard process_;
};

// Random inserts, updates and deletes by one node, as transactions of one to four statements,
// with the rows it owns (ids kOwnedBase * (node + 1) + 1 ..) tracked as they must end up
// everywhere. Rows 1..kShared are written by every node: only their agreement is checked, as
// last-writer-wins between processes decides them.
class RandomWrites {
 public:
  static constexpr int64_t kOwnedBase = 100'000;
  static constexpr int64_t kOwned = 300;
  static constexpr int64_t kShared = 40;

  RandomWrites(int node, uint32_t seed) : node_(node), random_(seed) {}

  std::string Next(bool shared) {
    std::string sql = "BEGIN;";
    const int statements = static_cast<int>(Uniform(1, 4));
    for (int i = 0; i < statements; ++i) sql += OwnedWrite();
    if (shared && Uniform(0, 3) == 0) sql += SharedWrite();
    return sql + "COMMIT;\n";
  }

  const std::map<int64_t, std::string>& rows() const { return rows_; }
  int64_t statements() const { return serial_; }

 private:
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(random_);
  }

  std::string Value() { return "n" + std::to_string(node_) + "." + std::to_string(++serial_); }

  std::string OwnedWrite() {
    const int64_t id = kOwnedBase * (node_ + 1) + Uniform(1, kOwned);
    const std::string key = std::to_string(id);
    auto it = rows_.find(id);
    const std::string value = Value();
    const std::string n = std::to_string(serial_);
    if (it == rows_.end()) {
      rows_[id] = value;
      return "INSERT INTO t VALUES (" + key + ", 'n" + std::to_string(node_) + "', '" + value +
             "', " + n + ");";
    }
    if (Uniform(0, 3) == 0) {
      rows_.erase(it);
      return "DELETE FROM t WHERE id = " + key + ";";
    }
    it->second = value;
    return "UPDATE t SET v = '" + value + "', n = " + n + " WHERE id = " + key + ";";
  }

  std::string SharedWrite() {
    const std::string key = std::to_string(Uniform(1, kShared));
    if (Uniform(0, 4) == 0) return "DELETE FROM t WHERE id = " + key + ";";
    const std::string value = Value();
    return "INSERT INTO t VALUES (" + key + ", 'shared', '" + value + "', " +
           std::to_string(serial_) +
           ") ON CONFLICT(id) DO UPDATE SET v = excluded.v, n = excluded.n;";
  }

  int node_;
  std::mt19937 random_;
  std::map<int64_t, std::string> rows_;
  int64_t serial_ = 0;
};

// Sends random transactions to the writers, one every 2 to 8 ms, while `more()`.
void WriteRandomly(std::vector<std::unique_ptr<SqlWriter>>& writers,
                   std::vector<RandomWrites>& writes, bool shared, uint32_t seed,
                   const std::function<bool()>& more) {
  std::mt19937 random(seed);
  while (more()) {
    const size_t i = std::uniform_int_distribution<size_t>(0, writers.size() - 1)(random);
    if (!writers[i]->Send(writes[i].Next(shared))) {
      ADD_FAILURE() << "writer " << i << " stopped taking input";
      return;
    }
    std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(2, 8)(random)));
  }
}

// Polls until every database holds the same rows, at most `limit`. Returns how long that took.
std::optional<int64_t> WaitForAgreement(const std::vector<fs::path>& dbs,
                                        SteadyClock::duration limit) {
  const auto start = SteadyClock::now();
  const bool agreed = WaitFor(
      [&] {
        const std::string first = Dump(dbs.front());
        return std::all_of(dbs.begin() + 1, dbs.end(),
                           [&](const fs::path& db) { return Dump(db) == first; });
      },
      limit);
  if (!agreed) return std::nullopt;
  return MsSince(start);
}

// Every owned row of `writes` (and nothing else of theirs) in `db`, with its last value.
void ExpectOwnedRows(const fs::path& db, const std::vector<RandomWrites>& writes) {
  std::map<int64_t, std::string> expected;
  for (const RandomWrites& w : writes) expected.insert(w.rows().begin(), w.rows().end());
  std::map<int64_t, std::string> actual;
  const std::string dump = Sql(db, "SELECT id, v FROM t WHERE id > " +
                                       std::to_string(RandomWrites::kShared) + " ORDER BY id;");
  std::istringstream lines(dump);
  for (std::string line; std::getline(lines, line);) {
    const size_t bar = line.find('|');
    if (bar != std::string::npos) actual[std::stoll(line.substr(0, bar))] = line.substr(bar + 1);
  }
  EXPECT_EQ(actual.size(), expected.size()) << db;
  int reported = 0;
  for (const auto& [id, value] : expected) {
    auto it = actual.find(id);
    if (it != actual.end() && it->second == value) continue;
    if (++reported > 10) break;
    ADD_FAILURE() << db << ": row " << id << " should be '" << value << "', is "
                  << (it == actual.end() ? "missing" : "'" + it->second + "'");
  }
  for (const auto& [id, value] : actual) {
    if (expected.count(id) > 0) continue;
    if (++reported > 20) break;
    ADD_FAILURE() << db << ": row " << id << " = '" << value << "' should have been deleted";
  }
}

std::string Logs(HubProcess& hub, const std::vector<std::unique_ptr<Node>>& nodes) {
  std::string logs = "--- hub\n" + hub.Log();
  for (const auto& node : nodes) logs += "--- " + node->name() + "\n" + node->Log();
  return logs;
}

// A hub and three live nodes: a.db has the table, b.db and c.db start empty and get it from the
// hub. The guards kill whatever still runs when it dies.
class LiveCluster {
 public:
  explicit LiveCluster(const fs::path& dir) : dir_(dir), hub_(dir / "hub") {}

  ::testing::AssertionResult Start() {
    if (!hub_.Start()) return ::testing::AssertionFailure() << "hub did not start";
    const std::string token = hub_.CreateToken();
    Sql(dir_ / "a.db", kCreateTable);
    for (const char* name : {"a", "b", "c"}) {
      nodes_.push_back(std::make_unique<Node>(dir_, name, hub_.url(), hub_.fingerprint(), token));
    }
    if (!nodes_[0]->Start()) return ::testing::AssertionFailure() << "cannot start lockstep run";
    if (!WaitFor([&] { return HasTable(hub_.db()); }, kArriveLimit)) {
      return ::testing::AssertionFailure() << "the table never reached the hub\n" << Logs();
    }
    if (!nodes_[1]->Start() || !nodes_[2]->Start()) {
      return ::testing::AssertionFailure() << "cannot start lockstep run";
    }
    for (const auto& node : nodes_) {
      if (!WaitFor([&] { return HasTable(node->db()); }, kArriveLimit)) {
        return ::testing::AssertionFailure() << node->name() << " never got the table\n" << Logs();
      }
    }
    return ::testing::AssertionSuccess();
  }

  std::vector<fs::path> dbs() const {
    std::vector<fs::path> dbs{hub_.db()};
    for (const auto& node : nodes_) dbs.push_back(node->db());
    return dbs;
  }
  std::string Logs() { return integration::Logs(hub_, nodes_); }

  // One sqlite3 writer per node, and the random writes each will make.
  void Writers(const fs::path& dir, uint32_t seed, std::vector<std::unique_ptr<SqlWriter>>& writers,
               std::vector<RandomWrites>& writes) const {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      writers.push_back(
          std::make_unique<SqlWriter>(nodes_[i]->db(), dir / (nodes_[i]->name() + ".sql.err")));
      writes.emplace_back(static_cast<int>(i), seed + static_cast<uint32_t>(i) + 1);
    }
  }
  HubProcess& hub() { return hub_; }
  Node& node(size_t i) { return *nodes_[i]; }
  size_t size() const { return nodes_.size(); }

 private:
  fs::path dir_;
  HubProcess hub_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST(DaemonTest, ThreeLiveNodesAgreeWithTheHubSoonAfterRandomWritesStop) {
  ScratchDir dir;
  LiveCluster cluster(dir.path());
  ASSERT_TRUE(cluster.Start());
  const uint32_t seed = Seed();
  std::vector<std::unique_ptr<SqlWriter>> writers;
  std::vector<RandomWrites> writes;
  cluster.Writers(dir.path(), seed, writers, writes);
  // 30 s of writes, as the issue asks: long enough for reconnects, checkpoints and thousands of
  // transactions through every node.
  const auto end = SteadyClock::now() + seconds(30);
  WriteRandomly(writers, writes, /*shared=*/true, seed, [&] { return SteadyClock::now() < end; });
  for (auto& writer : writers) ASSERT_TRUE(writer->Finish());
  const std::optional<int64_t> took = WaitForAgreement(cluster.dbs(), kConvergeLimit);
  int64_t statements = 0;
  for (const RandomWrites& w : writes) statements += w.statements();
  std::cout << "writes: " << statements << "; all four agreed "
            << (took ? std::to_string(*took) + " ms" : "never (10 s)")
            << " after the writes stopped\n";
  ASSERT_TRUE(took.has_value()) << cluster.Logs();
  EXPECT_LE(*took, kConvergeGoalMs);
  for (const fs::path& db : cluster.dbs()) ExpectOwnedRows(db, writes);
  for (size_t i = 0; i < cluster.size(); ++i) {
    EXPECT_EQ(cluster.node(i).Terminate(), 0) << cluster.node(i).Log();
  }
}

// Kills the hub (SIGKILL) four times, 0.6..1.8 s apart, and starts it again on the same port and
// data directory after 50..600 ms; kills node b once in between and starts it again likewise.
// Returns the time of the last restart, in ms from `start`.
int KillAndRestart(LiveCluster& cluster, std::mt19937& random, SteadyClock::time_point start) {
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random); };
  auto at = [&](int ms) { std::this_thread::sleep_until(start + milliseconds(ms)); };
  int next = 0;
  std::cout << "hub killed at (ms):";
  for (int round = 0; round < 4; ++round) {
    next += uniform(600, 1'800);
    at(next);
    cluster.hub().KillHard();
    std::cout << " " << next;
    next += uniform(50, 600);
    at(next);
    if (!cluster.hub().Start()) return next;
    if (round == 1) {
      next += uniform(100, 1'000);
      at(next);
      cluster.node(1).KillHard();
      std::cout << " (b at " << next << ")";
      next += uniform(100, 1'000);
      at(next);
      EXPECT_TRUE(cluster.node(1).Start());
    }
  }
  std::cout << "; last restart at " << next << " ms\n";
  return next;
}

// Kills (SIGKILL) during the writes: the hub at random moments, started again on the same port
// and data directory after a random pause, and node b once. Rows are disjoint per node, so every
// row any writer committed has one certain final value, which every database must hold.
// Regression: a live session never ends ok, so the daemon's backoff never started over and each
// lost connection doubled the next wait: after a few hub restarts nodes took up to 30 s to return.
TEST(DaemonTest, NodesConvergeLosingNothingThroughHubAndNodeKills) {
  ScratchDir dir;
  LiveCluster cluster(dir.path());
  ASSERT_TRUE(cluster.Start());
  const uint32_t seed = Seed();
  std::mt19937 random(seed);
  std::vector<std::unique_ptr<SqlWriter>> writers;
  std::vector<RandomWrites> writes;
  cluster.Writers(dir.path(), seed, writers, writes);
  std::jthread writer([&](std::stop_token stop) {
    WriteRandomly(writers, writes, /*shared=*/false, seed, [&] { return !stop.stop_requested(); });
  });

  const auto start = SteadyClock::now();
  const int last_restart = KillAndRestart(cluster, random, start);
  if (::testing::Test::HasFatalFailure()) return;
  // The writes go on for 3 s after the last restart, time enough to reconnect (the backoff
  // starts over at 0.5 s once a working session is lost), so that convergence once they stop is
  // as quick as without kills.
  std::this_thread::sleep_until(start + milliseconds(last_restart + 3'000));
  writer.request_stop();
  writer.join();
  std::cout << "writes stopped at " << MsSince(start) << " ms\n";
  for (auto& w : writers) ASSERT_TRUE(w->Finish());
  const std::optional<int64_t> took = WaitForAgreement(cluster.dbs(), kConvergeLimit);
  std::cout << "after the kills, all four agreed "
            << (took ? std::to_string(*took) + " ms" : "never (10 s)")
            << " after the writes stopped\n";
  // Agreement within kConvergeLimit, not the 2 s goal of the test without kills: after a kill a
  // node may be waiting out a jittered reconnect backoff of several seconds (seen: 6.4 s), which
  // says nothing about losing writes, the point of this test. Live latency is measured in bench/.
  ASSERT_TRUE(took.has_value()) << cluster.Logs();
  for (const fs::path& db : cluster.dbs()) ExpectOwnedRows(db, writes);
  for (size_t i = 0; i < cluster.size(); ++i) {
    EXPECT_EQ(cluster.node(i).Terminate(), 0) << cluster.node(i).Log();
  }
}

// Regression: a live session carried the collections granted at its handshake, so a node that
// connected while the hub held no table never got a table that reached the hub later. The hub now
// ends such a session with `aborted` when a collection appears, and the node reconnects at once.
TEST(DaemonTest, ANodeThatConnectedFirstGetsATableCreatedLater) {
  ScratchDir dir;
  HubProcess hub(dir / "hub");
  ASSERT_TRUE(hub.Start());
  const std::string token = hub.CreateToken();
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.push_back(std::make_unique<Node>(dir.path(), "b", hub.url(), hub.fingerprint(), token));
  ASSERT_TRUE(nodes[0]->Start());
  std::this_thread::sleep_for(seconds(1));  // b's session is open, with nothing to carry
  Sql(dir / "a.db", std::string(kCreateTable) + "INSERT INTO t VALUES (1, 'a', 'x', 1);");
  nodes.push_back(std::make_unique<Node>(dir.path(), "a", hub.url(), hub.fingerprint(), token));
  ASSERT_TRUE(nodes[1]->Start());
  ASSERT_TRUE(WaitFor([&] { return HasRow(hub.db(), 1); }, kArriveLimit)) << Logs(hub, nodes);
  EXPECT_TRUE(WaitFor([&] { return HasRow(nodes[0]->db(), 1); }, kArriveLimit)) << Logs(hub, nodes);
}

// `every = "1s"`: a node syncs once a second, not live. Its write reaches the hub within a few
// seconds, and a live node's write reaches it the same way.
TEST(DaemonTest, AScheduledNodeSyncsWithinAFewSeconds) {
  ScratchDir dir;
  HubProcess hub(dir / "hub");
  ASSERT_TRUE(hub.Start());
  const std::string token = hub.CreateToken();
  Sql(dir / "s.db", std::string(kCreateTable) + "INSERT INTO t VALUES (1, 's', 'first', 1);");
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.push_back(std::make_unique<Node>(dir.path(), "s", hub.url(), hub.fingerprint(), token,
                                         PeerOptions{.every = "1s"}));
  ASSERT_TRUE(nodes[0]->Start());
  ASSERT_TRUE(WaitFor([&] { return HasRow(hub.db(), 1); }, kArriveLimit)) << Logs(hub, nodes);
  nodes.push_back(std::make_unique<Node>(dir.path(), "l", hub.url(), hub.fingerprint(), token));
  ASSERT_TRUE(nodes[1]->Start());
  ASSERT_TRUE(WaitFor([&] { return HasRow(nodes[1]->db(), 1); }, kArriveLimit)) << Logs(hub, nodes);

  auto written = SteadyClock::now();
  Sql(nodes[0]->db(), "INSERT INTO t VALUES (2, 's', 'scheduled', 2);");
  ASSERT_TRUE(WaitFor([&] { return HasRow(hub.db(), 2); }, kArriveLimit)) << Logs(hub, nodes);
  const int64_t up = MsSince(written);
  written = SteadyClock::now();
  Sql(nodes[1]->db(), "INSERT INTO t VALUES (3, 'l', 'live', 3);");
  ASSERT_TRUE(WaitFor([&] { return HasRow(nodes[0]->db(), 3); }, kArriveLimit)) << Logs(hub, nodes);
  const int64_t down = MsSince(written);
  std::cout << "scheduled node: its write at the hub after " << up
            << " ms, a live node's write at it after " << down << " ms\n";
  EXPECT_LE(up, 5'000);
  EXPECT_LE(down, 5'000);
  EXPECT_EQ(Dump(nodes[0]->db()), Dump(hub.db()));
  for (auto& node : nodes) EXPECT_EQ(node->Terminate(), 0) << node->Log();
}

// A pull-only node receives everyone's writes and sends none of its own; a push-only node sends
// its writes and receives none.
TEST(DaemonTest, PullOnlyAndPushOnlyNodesMoveRowsOneWay) {
  ScratchDir dir;
  HubProcess hub(dir / "hub");
  ASSERT_TRUE(hub.Start());
  const std::string token = hub.CreateToken();
  std::vector<std::unique_ptr<Node>> nodes;
  Sql(dir / "a.db", kCreateTable);
  nodes.push_back(std::make_unique<Node>(dir.path(), "a", hub.url(), hub.fingerprint(), token));
  ASSERT_TRUE(nodes[0]->Start());
  ASSERT_TRUE(WaitFor([&] { return HasTable(hub.db()); }, kArriveLimit)) << Logs(hub, nodes);
  // The pull-only node starts empty and gets the table; the push-only one, which receives
  // nothing, starts with the table of its own.
  Sql(dir / "push.db", kCreateTable);
  nodes.push_back(std::make_unique<Node>(dir.path(), "pull", hub.url(), hub.fingerprint(), token,
                                         PeerOptions{.direction = "pull", .every = ""}));
  nodes.push_back(std::make_unique<Node>(dir.path(), "push", hub.url(), hub.fingerprint(), token,
                                         PeerOptions{.direction = "push", .every = ""}));
  Node& a = *nodes[0];
  Node& pull = *nodes[1];
  Node& push = *nodes[2];
  ASSERT_TRUE(pull.Start());
  ASSERT_TRUE(push.Start());
  ASSERT_TRUE(WaitFor([&] { return HasTable(pull.db()); }, kArriveLimit)) << Logs(hub, nodes);
  // Give the push-only node's session time to open, so that its row is not merely late.
  std::this_thread::sleep_for(milliseconds(500));

  Sql(a.db(), "INSERT INTO t VALUES (1, 'a', 'from a', 1);");
  Sql(pull.db(), "INSERT INTO t VALUES (2, 'pull', 'from pull', 2);");
  Sql(push.db(), "INSERT INTO t VALUES (3, 'push', 'from push', 3);");
  for (const fs::path& db : {hub.db(), a.db(), pull.db()}) {
    for (int64_t id : {1, 3}) {
      EXPECT_TRUE(WaitFor([&] { return HasRow(db, id); }, kArriveLimit))
          << db << " lacks row " << id << "\n"
          << Logs(hub, nodes);
    }
  }
  EXPECT_TRUE(HasRow(push.db(), 3));
  // What must not arrive has had three more seconds: live writes arrive in milliseconds.
  std::this_thread::sleep_for(seconds(3));
  for (const fs::path& db : {hub.db(), a.db(), push.db()}) {
    EXPECT_FALSE(HasRow(db, 2)) << db << " got the pull-only node's row";
  }
  EXPECT_FALSE(HasRow(push.db(), 1)) << "the push-only node received a's row";
  EXPECT_EQ(Sql(push.db(), "SELECT id FROM t ORDER BY id;"), "3\n");
  EXPECT_EQ(Sql(pull.db(), "SELECT id FROM t ORDER BY id;"), "1\n2\n3\n");
  for (auto& node : nodes) EXPECT_EQ(node->Terminate(), 0) << node->Log();
}

// SIGTERM ends `lockstep run` with 0 within a few seconds, in a live session, between scheduled
// syncs, and while it waits to reconnect to a hub that is not there.
TEST(DaemonTest, SigtermEndsANodeWithZeroWithinSeconds) {
  ScratchDir dir;
  HubProcess hub(dir / "hub");
  ASSERT_TRUE(hub.Start());
  const std::string token = hub.CreateToken();
  const std::string nowhere = "lockstep://127.0.0.1:" + std::to_string(FreePort());
  std::vector<std::unique_ptr<Node>> nodes;
  nodes.push_back(std::make_unique<Node>(dir.path(), "live", hub.url(), hub.fingerprint(), token));
  nodes.push_back(std::make_unique<Node>(dir.path(), "sched", hub.url(), hub.fingerprint(), token,
                                         PeerOptions{.every = "1h"}));
  nodes.push_back(std::make_unique<Node>(dir.path(), "lost", nowhere, hub.fingerprint(), token));
  for (size_t i = 0; i < nodes.size(); ++i) {
    Sql(nodes[i]->db(), std::string(kCreateTable) + "INSERT INTO t VALUES (" +
                            std::to_string(i + 1) + ", 'x', 'y', 0);");
    ASSERT_TRUE(nodes[i]->Start());
  }
  // The first two have synced once (the scheduled one now sleeps for an hour); the third has
  // failed to connect at least once and waits to try again.
  EXPECT_TRUE(WaitFor([&] { return HasRow(hub.db(), 1) && HasRow(hub.db(), 2); }, kArriveLimit))
      << Logs(hub, nodes);
  EXPECT_TRUE(
      WaitFor([&] { return nodes[2]->Log().find("retrying") != std::string::npos; }, kArriveLimit))
      << nodes[2]->Log();
  for (auto& node : nodes) {
    const auto start = SteadyClock::now();
    EXPECT_EQ(node->Terminate(), 0) << node->name() << "\n" << node->Log();
    std::cout << node->name() << ": exited " << MsSince(start) << " ms after SIGTERM\n";
  }
}

// A node file that cannot be used ends `lockstep run` at once with exit code 2 and one line on
// stderr naming the file and, where there is one to name, the line at fault.
TEST(DaemonTest, ABadNodeFileExitsWithTwoAndOneLineNamingIt) {
  ScratchDir dir;
  const std::string peer =
      "[[peer]]\nurl = \"lockstep://127.0.0.1:1\"\ntoken = \"t\"\nplaintext = true\n";
  struct Case {
    std::string name;
    std::string text;
    std::string where;  // what the line must name after the file: ":LINE:" or ":"
  };
  const std::vector<Case> cases = {
      {"garbage", "[node]\nname = \"g\"\nthis is = = not toml\n", ":3:"},
      {"no_source", "[node]\nname = \"n\"\n\n" + peer, ":"},
      {"direction",
       "[node]\nname = \"d\"\n\n[[source]]\nsqlite = \"d.db\"\n\n" + peer +
           "direction = \"sideways\"\n",
       ":11:"},
      {"mode",
       "[node]\nname = \"m\"\n\n[[source]]\nsqlite = \"m.db\"\n\n" + peer + "mode = \"often\"\n",
       ":11:"},
      {"poll",
       "[node]\nname = \"p\"\n\n[[source]]\npostgres = \"postgres://127.0.0.1:1/p\"\npoll = "
       "\"now and then\"\n\n" +
           peer,
       ":6:"},
  };
  for (const Case& c : cases) {
    const fs::path file = dir / (c.name + ".toml");
    std::ofstream(file) << c.text;
    const ProcessResult result =
        RunWithin({LockstepBinary(), "run", "-c", file.string()}, kArriveLimit);
    EXPECT_EQ(result.exit_code, 2) << c.name << ": " << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1)
        << c.name << ": " << result.err;
    EXPECT_NE(result.err.find(file.string() + c.where), std::string::npos)
        << c.name << ": " << result.err;
    std::cout << c.name << ": " << result.err;
  }
}

}  // namespace
}  // namespace lockstep::integration
