// Network faults and hubless topologies with real processes on 127.0.0.1. A relay in this process
// stands between nodes and a plaintext hub and, at seeded random moments, cuts connections,
// truncates what it forwards or delays it; once it behaves, every node and the hub must agree,
// with no acknowledged write lost and none applied twice (a counter field would show either).
// Then `lockstep run` nodes that listen themselves: two peers, and a chain of three, no hub.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/hub.h"
#include "support/node.h"
#include "support/process.h"

namespace lockstep::integration {
namespace {

namespace fs = std::filesystem;
using lockstep::testing::Dump;
using lockstep::testing::FreePort;
using lockstep::testing::HasRow;
using lockstep::testing::Hub;
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

constexpr auto kCommandLimit = seconds(15);  // for one `lockstep sync` or `token create`
constexpr auto kStopLimit = seconds(5);      // for SIGTERM to end a node
constexpr auto kArriveLimit = seconds(10);   // for one write to reach where it should
constexpr int kPollMs = 50;  // the relay's threads look at their stop token this often

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

std::string LocalUrl(uint16_t port) { return "lockstep://127.0.0.1:" + std::to_string(port); }

std::string CreateToken(const fs::path& data_dir) {
  const ProcessResult result = RunWithin(
      {LockstepBinary(), "token", "create", "--data", data_dir.string(), "--collections", "*"},
      kCommandLimit);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::string token = result.out;
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

// --- The relay --------------------------------------------------------------------------------

// Forwards TCP connections from 127.0.0.1:port() to 127.0.0.1:target, one thread per connection
// plus one accepting. While faulty, each chunk read is, at random (seeded per connection), cut
// (both sides closed), truncated (a part forwarded, then both closed), delayed a few ms, or
// forwarded. The destructor closes everything and joins. SetFaulty and Report are thread-safe.
class FaultyRelay {
 public:
  FaultyRelay(uint16_t target, uint32_t seed) : target_(target), seed_(seed) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = Loopback(0);
    socklen_t length = sizeof address;
    if (listener_ < 0 ||
        bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        listen(listener_, 64) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "relay: cannot listen on 127.0.0.1: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(address.sin_port);
    acceptor_ = std::jthread([this](std::stop_token stop) { AcceptLoop(stop); });
  }
  ~FaultyRelay() {
    acceptor_.request_stop();
    if (acceptor_.joinable()) acceptor_.join();
    std::lock_guard lock(mu_);
    pipes_.clear();  // each stops, closes its sockets and joins
    if (listener_ >= 0) close(listener_);
  }
  FaultyRelay(const FaultyRelay&) = delete;
  FaultyRelay& operator=(const FaultyRelay&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return LocalUrl(port_); }
  void SetFaulty(bool faulty) { faulty_ = faulty; }
  int faults() const { return cuts_ + truncations_; }
  std::string Report() const {
    return std::to_string(connections_) + " connections, " + std::to_string(cuts_) + " cut, " +
           std::to_string(truncations_) + " truncated, " + std::to_string(delays_) +
           " chunks delayed";
  }

 private:
  enum class Fate { kForward, kDelay, kTruncate, kCut };

  void AcceptLoop(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      pollfd ready{listener_, POLLIN, 0};
      if (poll(&ready, 1, kPollMs) <= 0) continue;
      const int client = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      const int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_in target = Loopback(target_);
      if (upstream < 0 ||
          connect(upstream, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
        close(client);
        if (upstream >= 0) close(upstream);
        continue;
      }
      // A peer that stops reading cannot hold a pipe thread (and so the destructor) for long.
      const timeval send_limit{1, 0};
      for (int fd : {client, upstream}) {
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_limit, sizeof send_limit);
      }
      const uint32_t seed = seed_ + static_cast<uint32_t>(++connections_);
      std::lock_guard lock(mu_);
      pipes_.emplace_back([this, client, upstream, seed](std::stop_token pipe_stop) {
        Pipe(pipe_stop, client, upstream, seed);
      });
    }
  }

  Fate Choose(std::mt19937& random) {
    if (!faulty_) return Fate::kForward;
    const int roll = std::uniform_int_distribution<int>(0, 999)(random);
    if (roll < 40) return Fate::kCut;
    if (roll < 80) return Fate::kTruncate;
    if (roll < 200) return Fate::kDelay;
    return Fate::kForward;
  }

  // Relays between `a` and `b` until either side closes, a fault ends it, or `stop`.
  void Pipe(const std::stop_token& stop, int a, int b, uint32_t seed) {
    std::mt19937 random(seed);
    std::vector<char> chunk(16 << 10);
    while (!stop.stop_requested()) {
      pollfd ready[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(ready, 2, kPollMs) <= 0) continue;
      const int from = (ready[0].revents != 0) ? a : b;
      const int to = from == a ? b : a;
      const ssize_t n = read(from, chunk.data(), chunk.size());
      if (n <= 0) break;
      size_t forward = static_cast<size_t>(n);
      const Fate fate = Choose(random);
      if (fate == Fate::kCut) {
        ++cuts_;
        break;
      }
      if (fate == Fate::kTruncate) {
        ++truncations_;
        forward = std::uniform_int_distribution<size_t>(0, forward - 1)(random);
      }
      if (fate == Fate::kDelay) {
        ++delays_;
        std::this_thread::sleep_for(
            milliseconds(std::uniform_int_distribution<int>(1, 20)(random)));
      }
      if (!WriteAll(to, chunk.data(), forward) || fate == Fate::kTruncate) break;
    }
    close(a);
    close(b);
  }

  static bool WriteAll(int fd, const char* data, size_t size) {
    for (size_t done = 0; done < size;) {
      const ssize_t n = send(fd, data + done, size - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  uint16_t target_;
  uint32_t seed_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> faulty_ = false;
  std::atomic<int> connections_ = 0;
  std::atomic<int> cuts_ = 0;
  std::atomic<int> truncations_ = 0;
  std::atomic<int> delays_ = 0;
  std::mutex mu_;
  std::vector<std::jthread> pipes_;  // guarded by mu_
  std::jthread acceptor_;            // last member: starts after the others, joins before them
};

// --- Nodes ------------------------------------------------------------------------------------

struct Peer {
  std::string url;
  std::string token;
};

// A node file `NAME.toml` next to `NAME.db` (and, when it listens, `NAME-data`), and the
// `lockstep run -c NAME.toml` process, killed by the guard if it still runs when the test ends.
class Node {
 public:
  // `listen`: a port to listen on in plaintext, or 0 for none.
  Node(const fs::path& dir, std::string name, uint16_t listen, const std::vector<Peer>& peers)
      : dir_(dir), name_(std::move(name)), listen_(listen) {
    std::ofstream file(config());
    file << "[node]\nname = \"" << name_ << "\"\n";
    if (listen_ != 0) {
      file << "listen = \"127.0.0.1:" << listen_ << "\"\ndata_dir = \"" << name_
           << "-data\"\nplaintext = true\n";
    }
    file << "\n[[source]]\nname = \"main\"\nsqlite = \"" << name_ << ".db\"\n";
    for (const Peer& peer : peers) {
      file << "\n[[peer]]\nurl = \"" << peer.url << "\"\ntoken = \"" << peer.token
           << "\"\nplaintext = true\nmode = \"live\"\n";
    }
  }
  ~Node() { (void)Terminate(); }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Starts it and, when it listens, waits for it to say so.
  bool Start() {
    if (!process_.Start(SpawnWithFiles({LockstepBinary(), "run", "-c", config().string()},
                                       "/dev/null", dir_ / (name_ + ".out"), err_file()))) {
      return false;
    }
    if (listen_ == 0) return true;
    const std::string line = "listening on 127.0.0.1:" + std::to_string(listen_);
    return WaitFor([&] { return Log().find(line) != std::string::npos || !Running(); },
                   kArriveLimit) &&
           Running();
  }
  bool Running() { return process_.Running(); }
  // SIGTERM; the exit code, or nullopt when it still ran after kStopLimit (then it is killed).
  std::optional<int> Terminate() { return process_.Terminate(kStopLimit); }

  fs::path db() const { return dir_ / (name_ + ".db"); }
  fs::path data_dir() const { return dir_ / (name_ + "-data"); }
  std::string url() const { return LocalUrl(listen_); }
  const std::string& name() const { return name_; }
  std::string Log() const { return ReadFile(err_file()); }

 private:
  fs::path config() const { return dir_ / (name_ + ".toml"); }
  fs::path err_file() const { return dir_ / (name_ + ".err"); }

  fs::path dir_;
  std::string name_;
  uint16_t listen_;
  ProcessGuard process_;
};

std::string Logs(const std::vector<Node*>& nodes) {
  std::string logs;
  for (const Node* node : nodes) logs += "--- " + node->name() + "\n" + node->Log();
  return logs;
}

// --- Faults between nodes and a hub
// ---------------------------------------------------------------

// One node's writes: the rows it owns (ids 1000 * (index + 1) + 1 ..), with the value each must
// end with everywhere (absent when deleted), and how many times it incremented the shared
// counter row 0.
class OwnedWrites {
 public:
  OwnedWrites(int index, uint32_t seed) : index_(index), random_(seed) {}

  std::string Next() {
    std::string sql = "BEGIN;";
    for (int64_t k = Uniform(1, 3); k > 0; --k) {
      const int64_t id = 1'000 * (index_ + 1) + Uniform(1, 30);
      if (Uniform(0, 5) == 0) {
        sql += "DELETE FROM t WHERE id = " + std::to_string(id) + ";";
        expected_.erase(id);
        continue;
      }
      const std::string v = std::string(1, Tag()) + std::to_string(++writes_);
      sql += "INSERT INTO t VALUES (" + std::to_string(id) + ", '" + std::string(1, Tag()) +
             "', '" + v + "', 0) ON CONFLICT(id) DO UPDATE SET v = excluded.v;";
      expected_[id] = v;
    }
    if (Uniform(0, 1) == 0) {
      sql += "UPDATE t SET n = n + 1 WHERE id = 0;";
      ++increments_;
    }
    return sql + "COMMIT;";
  }

  // What `SELECT id, v FROM t WHERE owner = TAG ORDER BY id` must print.
  std::string Expected() const {
    std::string rows;
    for (const auto& [id, v] : expected_) rows += std::to_string(id) + "|" + v + "\n";
    return rows;
  }
  char Tag() const { return static_cast<char>('a' + index_); }
  int64_t increments() const { return increments_; }

 private:
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(random_);
  }

  int index_;
  std::mt19937 random_;
  std::map<int64_t, std::string> expected_;
  int64_t writes_ = 0;
  int64_t increments_ = 0;
};

// How the one-shot syncs through the relay ended: exit code and first stderr line, digits
// dropped, with how often each occurred. Thread-safe.
class Outcomes {
 public:
  void Add(const ProcessResult& result) {
    std::string line = result.err.substr(0, result.err.find('\n'));
    line.erase(std::remove_if(line.begin(), line.end(), [](char c) { return std::isdigit(c); }),
               line.end());
    std::lock_guard lock(mu_);
    ++counts_["exit " + std::to_string(result.exit_code) + (line.empty() ? "" : ": " + line)];
  }
  std::string Report() const {
    std::lock_guard lock(mu_);
    std::string report;
    for (const auto& [what, count] : counts_)
      report += "  " + std::to_string(count) + " x " + what + "\n";
    return report;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> counts_;
};

// Three nodes write rows of their own and increment one counter row while the relay between them
// and a plaintext hub cuts, truncates and delays: a and b with `lockstep sync` after each write,
// c as a live `lockstep run` node. Then the relay behaves, and all four must agree: every node's
// rows as it last wrote them, and the counter equal to the number of increments made, neither
// more (a batch applied twice) nor less (one lost).
TEST(NetworkFaultTest, NodesConvergeThroughARelayThatCutsTruncatesAndDelays) {
  const uint32_t seed = Seed();
  auto hub = Hub::Start({.plaintext = true});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  FaultyRelay relay(hub->port(), seed);
  ASSERT_NE(relay.port(), 0);
  ScratchDir dir;
  const fs::path a = dir / "a.db";
  const fs::path b = dir / "b.db";
  // a brings the table and its policy (a counter field n, set by a local sync) to the hub
  // directly; b and c take both from there, through the relay while it still behaves.
  Sql(a, std::string(kCreateTable) + "INSERT INTO t VALUES (0, 'shared', 'counter', 0);");
  const ProcessResult local = RunWithin(
      {LockstepBinary(), "sync", a.string(), (dir / "seed.db").string(), "--conflict", "n=counter"},
      kCommandLimit);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  ASSERT_EQ(hub->Sync(a, token).exit_code, 0);
  const auto through_relay = [&](const fs::path& db) {
    return RunWithin(
        {LockstepBinary(), "sync", db.string(), relay.url(), "--plaintext", "--token", token},
        kCommandLimit);
  };
  ASSERT_EQ(through_relay(b).exit_code, 0);
  Node c(dir.path(), "c", 0, {{relay.url(), token}});
  ASSERT_TRUE(c.Start());
  ASSERT_TRUE(WaitFor([&] { return HasRow(c.db(), 0); }, kArriveLimit)) << c.Log();

  relay.SetFaulty(true);
  std::mt19937 random(seed);
  std::vector<OwnedWrites> writes;
  for (int i = 0; i < 3; ++i) writes.emplace_back(i, seed + static_cast<uint32_t>(i) + 1);
  Outcomes outcomes;
  const auto start = SteadyClock::now();
  const auto end = start + seconds(8);
  {
    std::vector<std::jthread> writers;
    for (int i = 0; i < 2; ++i) {
      writers.emplace_back([&, i] {
        const fs::path db = i == 0 ? a : b;
        while (SteadyClock::now() < end) {
          Sql(db, writes[i].Next());
          outcomes.Add(through_relay(db));
        }
      });
    }
    writers.emplace_back([&] {
      while (SteadyClock::now() < end) {
        Sql(c.db(), writes[2].Next());
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  relay.SetFaulty(false);
  std::cout << "writes stopped at " << MsSince(start) << " ms; relay: " << relay.Report()
            << "\none-shot syncs while faulty:\n"
            << outcomes.Report();
  EXPECT_GT(relay.faults(), 0) << "the relay never cut a connection: nothing was tested";

  const std::vector<fs::path> dbs{hub->db(), a, b, c.db()};
  const auto agreed = [&] {
    for (const fs::path& db : {a, b}) {
      const ProcessResult result = through_relay(db);
      if (result.exit_code != 0) return false;
    }
    const std::string first = Dump(dbs[0]);
    return std::all_of(dbs.begin(), dbs.end(),
                       [&](const fs::path& db) { return Dump(db) == first; });
  };
  const auto settling = SteadyClock::now();
  ASSERT_TRUE(WaitFor(agreed, kArriveLimit)) << "no agreement\n" << Logs({&c}) << hub->Log();
  std::cout << "all four agreed " << MsSince(settling) << " ms after the relay behaved\n";

  int64_t increments = 0;
  for (const OwnedWrites& w : writes) increments += w.increments();
  std::cout << "counter: " << increments << " increments by the three nodes\n";
  for (const fs::path& db : dbs) {
    for (const OwnedWrites& w : writes) {
      EXPECT_EQ(
          Sql(db, std::string("SELECT id, v FROM t WHERE owner = '") + w.Tag() + "' ORDER BY id;"),
          w.Expected())
          << db << ": the rows of " << w.Tag();
    }
    EXPECT_EQ(Sql(db, "SELECT n FROM t WHERE id = 0;"), std::to_string(increments) + "\n")
        << db << ": the counter";
  }
  const std::string hub_log = hub->Log();
  EXPECT_EQ(hub_log.find("data_loss"), std::string::npos) << hub_log;
  EXPECT_EQ(hub_log.find("internal"), std::string::npos) << hub_log;
  EXPECT_EQ(c.Terminate(), 0) << c.Log();
}

// --- Peer to peer -------------------------------------------------------------------------------

// Waits for row `id` at `db`; the time it took in ms, or -1 when it never came.
int64_t Arrival(const fs::path& db, int64_t id) {
  const auto start = SteadyClock::now();
  return WaitFor([&] { return HasRow(db, id); }, kArriveLimit) ? MsSince(start) : -1;
}

constexpr int64_t kArriveGoalMs = 2'000;

// a listens (plaintext, loopback) and dials no one; b dials a with a token of a's. a's table
// reaches b, and a write on either reaches the other within a couple of seconds.
TEST(PeerToPeerTest, TwoNodesWithoutAHubExchangeWritesBothWays) {
  ScratchDir dir;
  Node a(dir.path(), "a", FreePort(), {});
  Sql(a.db(), std::string(kCreateTable) + "INSERT INTO t VALUES (1, 'a', 'first', 0);");
  const std::string token = CreateToken(a.data_dir());
  ASSERT_FALSE(token.empty());
  ASSERT_TRUE(a.Start()) << a.Log();
  Node b(dir.path(), "b", 0, {{a.url(), token}});
  ASSERT_TRUE(b.Start());
  ASSERT_GE(Arrival(b.db(), 1), 0) << Logs({&a, &b});

  Sql(a.db(), "INSERT INTO t VALUES (2, 'a', 'from a', 0);");
  const int64_t a_to_b = Arrival(b.db(), 2);
  Sql(b.db(), "INSERT INTO t VALUES (3, 'b', 'from b', 0);");
  const int64_t b_to_a = Arrival(a.db(), 3);
  std::cout << "a -> b: " << a_to_b << " ms; b -> a: " << b_to_a << " ms\n";
  ASSERT_GE(a_to_b, 0) << Logs({&a, &b});
  ASSERT_GE(b_to_a, 0) << Logs({&a, &b});
  EXPECT_LE(a_to_b, kArriveGoalMs);
  EXPECT_LE(b_to_a, kArriveGoalMs);
  EXPECT_TRUE(WaitFor([&] { return Dump(a.db()) == Dump(b.db()); }, kArriveLimit));
  EXPECT_EQ(Dump(a.db()), "1|a|first|0\n2|a|from a|0\n3|b|from b|0\n");
  for (Node* node : {&b, &a}) EXPECT_EQ(node->Terminate(), 0) << node->Log();
}

// a <- b <- c: b dials a and listens; c dials b. A write on a reaches c, and one on c reaches a,
// each through b, within a couple of seconds.
TEST(PeerToPeerTest, AChainOfThreeCarriesWritesFromEndToEnd) {
  ScratchDir dir;
  Node a(dir.path(), "a", FreePort(), {});
  Sql(a.db(), std::string(kCreateTable) + "INSERT INTO t VALUES (1, 'a', 'first', 0);");
  const std::string a_token = CreateToken(a.data_dir());
  ASSERT_TRUE(a.Start()) << a.Log();
  Node b(dir.path(), "b", FreePort(), {{a.url(), a_token}});
  const std::string b_token = CreateToken(b.data_dir());
  ASSERT_TRUE(b.Start()) << b.Log();
  Node c(dir.path(), "c", 0, {{b.url(), b_token}});
  ASSERT_TRUE(c.Start());
  ASSERT_GE(Arrival(c.db(), 1), 0) << Logs({&a, &b, &c});

  Sql(a.db(), "INSERT INTO t VALUES (2, 'a', 'from a', 0);");
  const int64_t a_to_c = Arrival(c.db(), 2);
  Sql(c.db(), "INSERT INTO t VALUES (3, 'c', 'from c', 0);");
  const int64_t c_to_a = Arrival(a.db(), 3);
  std::cout << "a -> b -> c: " << a_to_c << " ms; c -> b -> a: " << c_to_a << " ms\n";
  ASSERT_GE(a_to_c, 0) << Logs({&a, &b, &c});
  ASSERT_GE(c_to_a, 0) << Logs({&a, &b, &c});
  EXPECT_LE(a_to_c, kArriveGoalMs);
  EXPECT_LE(c_to_a, kArriveGoalMs);
  const std::string expected = "1|a|first|0\n2|a|from a|0\n3|c|from c|0\n";
  EXPECT_TRUE(WaitFor(
      [&] {
        return Dump(a.db()) == expected && Dump(b.db()) == expected && Dump(c.db()) == expected;
      },
      kArriveLimit))
      << Dump(a.db()) << Dump(b.db()) << Dump(c.db());
  for (Node* node : {&c, &b, &a}) EXPECT_EQ(node->Terminate(), 0) << node->Log();
}

}  // namespace
}  // namespace lockstep::integration
