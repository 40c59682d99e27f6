// What the store tests share: a replica store on a scratch database and local writes made the way
// the SQLite connector makes them.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "core/key.h"
#include "core/local_write.h"
#include "core/policy.h"
#include "store/replica_store.h"

namespace lockstep::store::testing {

template <typename T>
T Take(Result<T> result) {
  EXPECT_TRUE(result.has_value()) << result.error().ToString();
  if (!result.has_value()) throw std::runtime_error(result.error().ToString());
  return std::move(*result);
}

inline void Check(const Status& status) { ASSERT_TRUE(status.ok()) << status.ToString(); }

inline std::string Key(int64_t n) { return core::EncodeKey(std::vector<Value>{Value::Int(n)}); }

// A local write of `value` (or a delete) to the record at `key`, at the store's clock. REQUIRES:
// inside a write of `store`.
inline Status WriteLocal(ReplicaStore& store, int64_t collection, const std::string& key,
                         std::optional<int64_t> value) {
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
  return store.Put(collection, *stored, changed, nullptr);
}

// A store in a fresh file of its own, removed at the end.
class ScratchStore {
 public:
  explicit ScratchStore(const base::Clock& clock, std::string name = "store") {
    dir_ = std::filesystem::temp_directory_path() /
           ("lockstep-store-test-" + std::to_string(::getpid()) + "-" + name + "-" +
            std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = std::make_unique<SqliteDb>(
        Take(SqliteDb::Open(dir_ / "db.sqlite", {.create_if_missing = true})));
    store_ = Take(ReplicaStore::Open(*db_, clock));
  }
  ~ScratchStore() {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  ReplicaStore& store() { return *store_; }
  SqliteDb& db() { return *db_; }
  std::filesystem::path path() const { return dir_ / "db.sqlite"; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<SqliteDb> db_;
  std::unique_ptr<ReplicaStore> store_;
};

}  // namespace lockstep::store::testing
