#include "replicator.h"

#include <chrono>
#include <optional>
#include <thread>

#include "support/subprocess.h"

namespace lockstep::bench {

using Clock = std::chrono::steady_clock;

Result<PgConnection> ConnectBounded(const std::string& url) {
  LOCKSTEP_ASSIGN_OR_RETURN(PgConnection db, store::PostgresDb::Connect(url));
  // No statement of the benchmark's should wait forever on a lock or a stuck worker.
  LOCKSTEP_RETURN_IF_ERROR(db->Exec("SET statement_timeout = '120s'"));
  return db;
}

Status CreateReplicaDatabase(testing::PostgresServer& server, const std::string& name, int scale) {
  LOCKSTEP_ASSIGN_OR_RETURN(PgConnection admin, ConnectBounded(server.Url("postgres")));
  LOCKSTEP_RETURN_IF_ERROR(admin->Exec("CREATE DATABASE " + name));
  const std::string url = server.Url(name);
  // pgbench's own tables and primary keys, without data (steps d, t, p of pgbench -i).
  const testing::ProcessResult schema =
      testing::RunWithin({(testing::PostgresBin() / "pgbench").string(), "-i", "-I", "dtp", "-s",
                          std::to_string(scale), "-q", url},
                         std::chrono::seconds(120));
  if (schema.exit_code != 0) return Internal("pgbench -i -I dtp failed: " + schema.err);
  LOCKSTEP_ASSIGN_OR_RETURN(PgConnection replica, ConnectBounded(url));
  LOCKSTEP_RETURN_IF_ERROR(replica->Exec(kAddHistoryKey));
  return replica->Exec(kCreateProbeTable);
}

void DropReplicaDatabase(testing::PostgresServer& server, const std::string& name) {
  if (auto admin = ConnectBounded(server.Url("postgres")); admin.has_value()) {
    (void)(*admin)->Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }
}

namespace {

// A replica that is a PostgreSQL database.
class PostgresReplica final : public Replica {
 public:
  PostgresReplica(std::string name, PgConnection db) : name_(std::move(name)), db_(std::move(db)) {}

  const std::string& name() const override { return name_; }

  Result<int64_t> LastProbe() override {
    if (!last_probe_.has_value()) {
      LOCKSTEP_ASSIGN_OR_RETURN(
          store::Statement statement,
          db_->Prepare(std::string("SELECT coalesce(max(id), 0) FROM ") + kProbeTable));
      last_probe_.emplace(std::move(statement));
    }
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, last_probe_->Step());
    const int64_t id = row ? last_probe_->ColumnInt(0) : 0;
    last_probe_->Reset();
    return id;
  }

  Result<std::string> Fingerprint() override { return QueryText(*db_, kFingerprintSql); }

 private:
  std::string name_;
  PgConnection db_;
  std::optional<store::Statement> last_probe_;  // prepared on first use, before db_ goes
};

class NativeReplicator final : public Replicator {
 public:
  NativeReplicator(testing::PostgresServer& subscriber, int scale)
      : subscriber_(subscriber), scale_(scale) {}
  ~NativeReplicator() override { Stop(); }

  std::string name() const override { return "PostgreSQL logical replication"; }

  Status Start(const std::string& source_url, double limit_s) override {
    static int started = 0;
    const std::string tag = "lockstep_bench_" + std::to_string(++started);
    source_url_ = source_url;
    database_ = tag;
    subscription_ = tag;
    LOCKSTEP_RETURN_IF_ERROR(CreateReplicaDatabase(subscriber_, database_, scale_));
    LOCKSTEP_ASSIGN_OR_RETURN(PgConnection replica, ConnectBounded(subscriber_.Url(database_)));

    LOCKSTEP_ASSIGN_OR_RETURN(PgConnection source, ConnectBounded(source_url));
    std::string tables = kProbeTable;
    for (const PgbenchTable& table : PgbenchTables()) tables += ", " + table.name;
    LOCKSTEP_RETURN_IF_ERROR(source->Exec("CREATE PUBLICATION lockstep_bench FOR TABLE " + tables));
    published_ = true;
    // The subscription's slot on the source takes its name, so names are unique per run.
    LOCKSTEP_RETURN_IF_ERROR(replica->Exec("CREATE SUBSCRIPTION " + subscription_ +
                                           " CONNECTION '" + source_url +
                                           "' PUBLICATION lockstep_bench"));
    subscribed_ = true;
    LOCKSTEP_RETURN_IF_ERROR(WaitForInitialCopy(*replica, PgbenchTables().size() + 1, limit_s));
    replica_ = NewPostgresReplica("PostgreSQL subscriber", std::move(replica));
    return Status::Ok();
  }

  std::vector<Replica*> replicas() override { return {replica_.get()}; }

  void Stop() override {
    replica_.reset();
    if (database_.empty()) return;
    // Dropping the subscription drops its slot on the source, so the source's WAL is released.
    if (subscribed_) {
      if (auto replica = ConnectBounded(subscriber_.Url(database_)); replica.has_value()) {
        (void)(*replica)->Exec("DROP SUBSCRIPTION IF EXISTS " + subscription_);
      }
    }
    DropReplicaDatabase(subscriber_, database_);
    if (published_) {
      if (auto source = ConnectBounded(source_url_); source.has_value()) {
        (void)(*source)->Exec("DROP PUBLICATION IF EXISTS lockstep_bench");
      }
    }
    database_.clear();
    subscribed_ = published_ = false;
  }

 private:
  // Waits until the subscription has copied all `tables` and streams (state 'r', ready).
  Status WaitForInitialCopy(store::PostgresDb& replica, size_t tables, double limit_s) {
    const std::string sql =
        "SELECT (count(*) FILTER (WHERE r.srsubstate = 'r'))::text FROM pg_subscription_rel r "
        "JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = '" +
        subscription_ + "'";
    const auto deadline = Clock::now() + std::chrono::duration<double>(limit_s);
    for (;;) {
      LOCKSTEP_ASSIGN_OR_RETURN(std::string ready, QueryText(replica, sql));
      if (ready == std::to_string(tables)) return Status::Ok();
      if (Clock::now() > deadline) {
        return Unavailable("the subscription's initial copy did not finish within " +
                           std::to_string(static_cast<int>(limit_s)) + " s (" + ready + " of " +
                           std::to_string(tables) + " tables ready)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  testing::PostgresServer& subscriber_;
  int scale_;
  std::string source_url_;
  std::string database_;
  std::string subscription_;
  bool published_ = false;
  bool subscribed_ = false;
  std::unique_ptr<Replica> replica_;
};

}  // namespace

std::unique_ptr<Replica> NewPostgresReplica(std::string name, PgConnection db) {
  return std::make_unique<PostgresReplica>(std::move(name), std::move(db));
}

std::unique_ptr<Replicator> NativeLogicalReplication(testing::PostgresServer& subscriber,
                                                     int scale) {
  return std::make_unique<NativeReplicator>(subscriber, scale);
}

}  // namespace lockstep::bench
