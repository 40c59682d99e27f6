// What the store tests share: a replica store on a scratch database (a SQLite file, or a fresh
// database of the test binary's PostgreSQL cluster) and local writes made the way the connectors
// make them.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "core/key.h"
#include "core/local_write.h"
#include "core/policy.h"
#include "store/metadata_schema.h"
#include "store/postgres_db.h"
#include "store/replica_store.h"
#include "store/sqlite_db.h"
#include "support/postgres.h"
#include "support/result.h"

namespace lockstep::store::testing {

using lockstep::testing::Check;
using lockstep::testing::Take;

inline std::string Key(int64_t n) { return core::EncodeKey(std::vector<Value>{Value::Int(n)}); }

// A local write of `value` (or a delete) to the record at `key`, at the store's clock, stored as
// taken verbatim from `origin` when given. REQUIRES: inside a write of `store`.
inline Status WriteLocal(ReplicaStore& store, int64_t collection, const std::string& key,
                         std::optional<int64_t> value, const core::NodeId* origin = nullptr) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<StoredRecord> stored, store.Get(collection, key));
  if (!stored.has_value()) stored = StoredRecord{core::Record(key), {}, 0, {}};
  core::LocalWrite write;
  write.dot = store.NextDot();
  write.hlc = store.clock().Tick();
  write.exists = value.has_value();
  if (value.has_value()) write.fields.emplace_back("v", Value::Int(*value));
  LOCKSTEP_ASSIGN_OR_RETURN(core::MergePolicy policy, core::ParsePolicy("lww"));
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> changed,
                            core::ApplyLocalWrite(stored->record, write, policy));
  return store.Put(collection, *stored, changed, origin);
}

// Takes a store's metadata back from version 4 to version 3 (the log gone, the records listed by
// the seq index again), as the tests of older versions' migrations need it.
inline void TakeBackToVersion3(Database& db) {
  Check(db.Exec("CREATE INDEX _lockstep_records_by_seq ON _lockstep_records(seq, origin)"));
  Check(db.Exec("DROP TABLE _lockstep_log"));
  Check(db.Exec("DELETE FROM _lockstep_meta WHERE name IN ('log_stale', 'log_trim_at')"));
  Check(WriteMeta(db, "version", Value::Int(3)));
}

// A store in a fresh database of its own (a SQLite file, removed at the end, or a PostgreSQL
// database of the shared cluster).
class ScratchStore {
 public:
  explicit ScratchStore(const base::Clock& clock, std::string name = "store",
                        Dialect dialect = Dialect::kSqlite) {
    dir_ = std::filesystem::temp_directory_path() /
           ("lockstep-store-test-" + std::to_string(::getpid()) + "-" + name + "-" +
            std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (dialect == Dialect::kPostgres) {
      db_ = Take(PostgresDb::Connect(
          lockstep::testing::PostgresCluster::Shared().CreateDatabase("scratch_" + name)));
    } else {
      db_ = std::make_unique<SqliteDb>(
          Take(SqliteDb::Open(dir_ / "db.sqlite", {.create_if_missing = true})));
    }
    store_ = Take(ReplicaStore::Open(*db_, clock));
  }
  ~ScratchStore() {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  ReplicaStore& store() { return *store_; }
  Database& db() { return *db_; }
  // The SQLite file (a scratch directory's, for PostgreSQL).
  std::filesystem::path path() const { return dir_ / "db.sqlite"; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<ReplicaStore> store_;
};

// Test suites run against both databases name their instances by dialect.
inline std::string DialectName(const ::testing::TestParamInfo<Dialect>& info) {
  return info.param == Dialect::kPostgres ? "Postgres" : "Sqlite";
}

}  // namespace lockstep::store::testing
