#include "engine/batch_trace.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

namespace lockstep::engine {
namespace {

std::FILE* TraceFile() {
  static std::FILE* file = []() -> std::FILE* {
    const char* prefix = std::getenv("LOCKSTEP_TRACE_BATCHES");
    if (prefix == nullptr || *prefix == '\0') return nullptr;
    const std::string path = std::string(prefix) + "." + std::to_string(getpid());
    return std::fopen(path.c_str(), "a");
  }();
  return file;
}

int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool BatchTrace::enabled() { return TraceFile() != nullptr; }

void BatchTrace::Write(std::string_view who, std::string_view what,
                       const protocol::ChangeBatch& batch, const std::string& fields) {
  std::FILE* file = TraceFile();
  if (file == nullptr) return;
  uint64_t newest = 0;
  uint64_t oldest = std::numeric_limits<uint64_t>::max();
  // Records per collection, in the order met: a batch that carries a marker table's row (the
  // benchmark's probes) can be followed from hop to hop.
  std::vector<std::pair<std::string_view, size_t>> per_collection;
  for (const protocol::Change& change : batch.changes) {
    auto seen = std::find_if(per_collection.begin(), per_collection.end(),
                             [&](const auto& entry) { return entry.first == change.collection; });
    if (seen == per_collection.end()) {
      per_collection.emplace_back(change.collection, 1);
    } else {
      ++seen->second;
    }
    uint64_t record_newest = 0;
    for (const auto& [name, field] : change.delta.record.fields()) {
      for (const core::Version& version : field.versions) {
        record_newest = std::max(record_newest, version.hlc.millis());
      }
    }
    newest = std::max(newest, record_newest);
    oldest = std::min(oldest, record_newest);
  }
  const int64_t now = WallMillis();
  std::string line = std::to_string(now) + " " + std::string(who) + " " + std::string(what) +
                     " n=" + std::to_string(batch.changes.size());
  if (!batch.changes.empty()) {
    line += " age_newest=" + std::to_string(now - static_cast<int64_t>(newest)) +
            " age_oldest=" + std::to_string(now - static_cast<int64_t>(oldest)) +
            " newest=" + std::to_string(newest) + " cols=";
    for (size_t i = 0; i < per_collection.size(); ++i) {
      line += (i > 0 ? "," : "") + std::string(per_collection[i].first) + ":" +
              std::to_string(per_collection[i].second);
    }
  }
  line += " " + fields + "\n";
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::fputs(line.c_str(), file);
  std::fflush(file);
}

std::string BatchTrace::Since(Clock::time_point start) {
  return Millis(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
}

std::string BatchTrace::Millis(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", ms);
  return text;
}

}  // namespace lockstep::engine
