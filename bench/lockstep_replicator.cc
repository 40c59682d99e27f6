// The Lockstep arm of the replication measurement: a hub and three `lockstep run` nodes (two
// without the PostgreSQL replica, for the capture measurement's live arm).
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "bench_support.h"
#include "replicator.h"

namespace lockstep::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr double kHubStartLimitS = 30;

// A replica that is a SQLite file written by a `lockstep run` node.
class SqliteReplica final : public Replica {
 public:
  explicit SqliteReplica(fs::path path) : path_(std::move(path)) {}

  const std::string& name() const override { return name_; }
  Result<int64_t> LastProbe() override {
    LOCKSTEP_ASSIGN_OR_RETURN(std::string last, Query(std::string("SELECT coalesce(max(id), 0) "
                                                                  "FROM ") +
                                                      kProbeTable));
    return static_cast<int64_t>(std::stoll("0" + last));
  }
  Result<std::string> Fingerprint() override { return Query(kFingerprintSql); }

 private:
  // The first column of the first row as text. The file appears, and its tables, only once the
  // node has created them: until then, an error the caller retries.
  Result<std::string> Query(const std::string& sql) {
    if (!db_) {
      if (!fs::exists(path_)) return Unavailable(path_.string() + " does not exist yet");
      sqlite3* db = nullptr;
      if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        sqlite3_close_v2(db);
        return Unavailable("cannot open " + path_.string());
      }
      sqlite3_busy_timeout(db, 5'000);
      db_.reset(db);
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      return Unavailable(std::string(sqlite3_errmsg(db_.get())));
    }
    std::string text;
    const int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
      return Unavailable(std::string(sqlite3_errmsg(db_.get())));
    }
    return text;
  }

  std::string name_ = "SQLite node";
  fs::path path_;
  Db db_;
};

// `server`: where the PostgreSQL replica goes; none without one.
class LockstepReplicator final : public LockstepProcesses {
 public:
  LockstepReplicator(testing::PostgresServer* server, int scale, fs::path dir, std::string lockstep)
      : server_(server), scale_(scale), dir_(std::move(dir)), lockstep_(std::move(lockstep)) {}
  ~LockstepReplicator() override { Stop(); }

  std::string name() const override { return "Lockstep"; }

  Status Start(const std::string& source_url, double limit_s) override {
    static int started = 0;
    const std::string tag = "lockstep_nodes_" + std::to_string(++started);
    run_dir_ = dir_ / tag;
    fs::create_directories(run_dir_);
    if (server_ != nullptr) {
      database_ = tag;
      LOCKSTEP_RETURN_IF_ERROR(CreateReplicaDatabase(*server_, database_, scale_));
    }
    LOCKSTEP_ASSIGN_OR_RETURN(std::string hub, StartHub());
    const std::string token = CreateToken();
    const fs::path edge = run_dir_ / "edge.db";
    std::vector<std::pair<std::string, std::string>> nodes = {
        {"source", "postgres = \"" + source_url + "\""},
        {"edge", "sqlite = \"" + edge.string() + "\""}};
    if (server_ != nullptr) {
      nodes.insert(nodes.begin() + 1,
                   {"replica", "postgres = \"" + server_->Url(database_) + "\""});
    }
    for (const auto& [name, source] : nodes) {
      const fs::path config = run_dir_ / (name + ".toml");
      WriteNode(config, name, source, hub, token);
      nodes_.push_back(Spawn({lockstep_, "run", "-c", config.string()}, run_dir_ / (name + ".out"),
                             run_dir_ / (name + ".err")));
    }
    if (server_ != nullptr) {
      LOCKSTEP_ASSIGN_OR_RETURN(PgConnection replica, ConnectBounded(server_->Url(database_)));
      replicas_.push_back(NewPostgresReplica("PostgreSQL node", std::move(replica)));
    }
    replicas_.push_back(std::make_unique<SqliteReplica>(edge));
    return WaitForInitialCopy(source_url, limit_s);
  }

  std::vector<Replica*> replicas() override {
    std::vector<Replica*> replicas;
    for (const auto& replica : replicas_) replicas.push_back(replica.get());
    return replicas;
  }

  void Freeze(bool frozen) override {
    const int signal = frozen ? SIGSTOP : SIGCONT;
    if (hub_ > 0) kill(hub_, signal);
    for (pid_t pid : nodes_) kill(pid, signal);
  }

  double CpuSeconds() const override {
    double seconds = hub_ > 0 ? ProcessCpuSeconds(hub_) : 0;
    for (pid_t pid : nodes_) seconds += ProcessCpuSeconds(pid);
    return seconds;
  }

  void Stop() override {
    replicas_.clear();
    for (pid_t pid : nodes_) StopProcess(pid);
    nodes_.clear();
    if (hub_ > 0) StopProcess(hub_);
    hub_ = -1;
    if (!database_.empty()) DropReplicaDatabase(*server_, database_);
    database_.clear();
    if (!run_dir_.empty()) {
      std::error_code ec;
      fs::remove_all(run_dir_, ec);
    }
    run_dir_.clear();
  }

 private:
  // Starts `lockstep serve` on a port of its choosing; returns its URL once it listens.
  Result<std::string> StartHub() {
    const fs::path out = run_dir_ / "hub.out";
    hub_ = Spawn({lockstep_, "serve", "--listen", "127.0.0.1:0", "--data",
                  (run_dir_ / "hub").string(), "--plaintext"},
                 out, run_dir_ / "hub.err");
    static const std::regex kPort(R"(listening on 127\.0\.0\.1:(\d+))");
    const auto deadline = Clock::now() + std::chrono::duration<double>(kHubStartLimitS);
    for (;;) {
      const std::string text = ReadFile(out);
      std::smatch port;
      if (std::regex_search(text, port, kPort)) return "lockstep://127.0.0.1:" + port[1].str();
      if (Clock::now() > deadline) {
        return Unavailable("lockstep serve did not listen: " + ReadFile(run_dir_ / "hub.err"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  std::string CreateToken() {
    const fs::path out = run_dir_ / "token.out";
    RunProcess({lockstep_, "token", "create", "--data", (run_dir_ / "hub").string(),
                "--collections", "*", "--mode", "rw"},
               out, run_dir_ / "token.err", 60);
    const std::string token = ReadFile(out);
    return token.substr(0, token.find('\n'));
  }

  void WriteNode(const fs::path& file, const std::string& name, const std::string& source,
                 const std::string& hub, const std::string& token) {
    std::string tables = "\"" + std::string(kProbeTable) + "\"";
    for (const PgbenchTable& table : PgbenchTables()) tables += ", \"" + table.name + "\"";
    std::ofstream(file) << "[node]\nname = \"" << name << "\"\n\n[[source]]\n"
                        << source << "\ntables = [" << tables << "]\n\n[[peer]]\nurl = \"" << hub
                        << "\"\ntoken = \"" << token << "\"\nplaintext = true\nmode = \"live\"\n";
  }

  // Waits until every replica holds what the source holds.
  Status WaitForInitialCopy(const std::string& source_url, double limit_s) {
    LOCKSTEP_ASSIGN_OR_RETURN(PgConnection source, ConnectBounded(source_url));
    LOCKSTEP_ASSIGN_OR_RETURN(std::string wanted, QueryText(*source, kFingerprintSql));
    const auto deadline = Clock::now() + std::chrono::duration<double>(limit_s);
    for (const auto& replica : replicas_) {
      for (;;) {
        Result<std::string> print = replica->Fingerprint();
        if (print.has_value() && *print == wanted) break;
        if (Clock::now() > deadline) {
          return Unavailable(replica->name() + " did not receive the initial copy within " +
                             std::to_string(static_cast<int>(limit_s)) + " s (" +
                             (print.has_value() ? *print : print.error().message()) + ")");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    return Status::Ok();
  }

  testing::PostgresServer* server_;
  int scale_;
  fs::path dir_;
  std::string lockstep_;
  fs::path run_dir_;
  std::string database_;
  pid_t hub_ = -1;
  std::vector<pid_t> nodes_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

}  // namespace

std::unique_ptr<Replicator> LockstepReplication(testing::PostgresServer& replicas, int scale,
                                                const fs::path& dir, const std::string& lockstep) {
  return std::make_unique<LockstepReplicator>(&replicas, scale, dir, lockstep);
}

std::unique_ptr<LockstepProcesses> LockstepToSqlite(const fs::path& dir,
                                                    const std::string& lockstep) {
  return std::make_unique<LockstepReplicator>(nullptr, 0, dir, lockstep);
}

}  // namespace lockstep::bench
