#include "lag_probes.h"

#include <algorithm>

namespace lockstep::bench {

ProbeWriter::ProbeWriter(const std::string& url) : db_(Connect(url)) {
  thread_ = std::thread([this] { Loop(); });
}

Result<ProbeTimes> ProbeWriter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  // Without the wake-up the final probe would wait for the next tick, up to 100 ms that the
  // catch-up time would wrongly include.
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!error_.ok()) return error_;
  return acked_;
}

void ProbeWriter::Loop() {
  auto insert = db_->Prepare(std::string("INSERT INTO ") + kProbeTable + " (id) VALUES (?)");
  if (!insert.has_value()) {
    error_ = insert.error();
    return;
  }
  auto next = ProbeClock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    lock.unlock();
    insert->BindInt(1, static_cast<int64_t>(acked_.size()) + 1);
    if (Status status = insert->Run(); !status.ok()) {
      error_ = status;
      return;
    }
    acked_.push_back(ProbeClock::now());
    // A probe that took longer than the period delays the next rather than bunching them.
    next = std::max(next + kProbeEvery, ProbeClock::now());
    lock.lock();
    wake_.wait_until(lock, next, [this] { return stop_; });
  }
}

ProbeWatcher::ProbeWatcher(Replica& replica) : replica_(replica) {
  thread_ = std::thread([this] { Loop(); });
}

Result<ProbeTimes> ProbeWatcher::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (!error_.ok()) return error_;
  return seen_;
}

void ProbeWatcher::Loop() {
  while (!stop_) {
    Result<int64_t> last = replica_.LastProbe();
    const auto now = ProbeClock::now();
    if (!last.has_value()) {
      error_ = last.error();
      seen_count_ = -1;
      return;
    }
    // Probes commit one after another: a replicator that applies the source's commits in order
    // (or in whole batches) shows every probe up to the highest it shows.
    while (static_cast<int64_t>(seen_.size()) < *last) seen_.push_back(now);
    seen_count_ = static_cast<int64_t>(seen_.size());
    std::this_thread::sleep_for(kWatchEvery);
  }
}

}  // namespace lockstep::bench
