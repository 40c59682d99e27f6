#include "store/wal_checkpointer.h"

#include <cstdio>
#include <cstring>
#include <system_error>

#include "store/sqlite_db.h"

namespace lockstep::store {
namespace {

void ReportToStderr(const Status& error) {
  std::fprintf(stderr, "lockstep: %s\n", error.message().c_str());
}

// A PASSIVE checkpoint meets SQLITE_BUSY when another connection (a user's program, or the
// writer at the limit) is checkpointing the same file: that one does the work, nothing failed.
bool CheckpointFailed(int rc) { return rc != SQLITE_OK && rc != SQLITE_BUSY; }

}  // namespace

WalCheckpointer::WalCheckpointer(sqlite3* writer, std::filesystem::path path,
                                 CheckpointOptions options)
    : writer_(writer), path_(std::move(path)), options_(std::move(options)) {
  // Replaces the autocheckpoint hook: SQLite keeps one WAL hook per connection.
  sqlite3_wal_hook(writer_, &WalCheckpointer::OnCommit, this);
}

int WalCheckpointer::OnCommit(void* self, sqlite3* /*writer*/, const char* schema, int pages) {
  auto& checkpointer = *static_cast<WalCheckpointer*>(self);
  if (std::strcmp(schema, "main") != 0 || pages < checkpointer.options_.start_pages) {
    return SQLITE_OK;
  }
  if (pages < checkpointer.options_.limit_pages && checkpointer.Request()) return SQLITE_OK;
  checkpointer.CheckpointOnWriter();
  // The commit itself succeeded whatever the checkpoint did; an error here would fail it.
  return SQLITE_OK;
}

bool WalCheckpointer::Request() {
  std::lock_guard lock(mutex_);
  if (broken_) return false;
  requested_ = true;
  if (!thread_.joinable()) {
    try {
      thread_ = std::jthread([this](std::stop_token stop) { Run(std::move(stop)); });
    } catch (const std::system_error& error) {
      broken_ = true;
      requested_ = false;
      RecordFailure(
          Unavailable(path_.string() + ": cannot start the checkpoint thread: " + error.what()));
      return false;
    }
  }
  wake_.notify_one();
  return true;
}

void WalCheckpointer::CheckpointOnWriter() {
  {
    // The thread holds SQLite's checkpoint lock during its pass: a second checkpointer would
    // only meet SQLITE_BUSY, and the pass copies most of what the writer would.
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return broken_ || (!requested_ && !running_); });
  }
  int log = 0;
  int copied = 0;
  const int rc =
      sqlite3_wal_checkpoint_v2(writer_, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  std::lock_guard lock(mutex_);
  ++counters_.writer_checkpoints;
  if (CheckpointFailed(rc)) {
    RecordFailure(
        Status(StatusCode::kUnavailable,
               path_.string() + ": checkpoint on the writer failed: " + sqlite3_errmsg(writer_)));
  }
}

void WalCheckpointer::Run(std::stop_token stop) {
  // Its own connection, opened, used and closed on this thread only.
  auto db = SqliteDb::Open(path_, {});
  std::unique_lock lock(mutex_);
  if (!db.has_value()) {
    broken_ = true;
    requested_ = false;
    RecordFailure(db.error().WithContext("background checkpoints"));
    idle_.notify_all();
    return;
  }
  while (wake_.wait(lock, stop, [&] { return requested_; }) && !stop.stop_requested()) {
    requested_ = false;
    running_ = true;
    lock.unlock();
    int log = 0;
    int copied = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(db->handle(), "main", SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    const Status error = CheckpointFailed(rc)
                             ? db->Error(path_.string() + ": background checkpoint failed")
                             : Status::Ok();
    lock.lock();
    running_ = false;
    ++counters_.passes;
    if (!error.ok()) RecordFailure(error);
    idle_.notify_all();
  }
}

// REQUIRES: mutex_ held.
void WalCheckpointer::RecordFailure(const Status& error) {
  ++counters_.failures;
  if (!first_error_.ok()) return;
  first_error_ = error;
  (options_.report ? options_.report : ReportToStderr)(error);
}

Status WalCheckpointer::Stop() {
  if (!stopped_) {
    stopped_ = true;
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
    // The connection may live on, and the hook must not outlive this object: SQLite's own
    // checkpoints bound its WAL from here, and closing the last connection checkpoints it all.
    sqlite3_wal_autocheckpoint(writer_, options_.start_pages);
  }
  std::lock_guard lock(mutex_);
  return first_error_;
}

WalCheckpointer::Counters WalCheckpointer::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

}  // namespace lockstep::store
