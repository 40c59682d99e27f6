// Timings of each batch a session reads or applies, for finding where a change's time goes
// between nodes. Off unless the environment names a file prefix: LOCKSTEP_TRACE_BATCHES=/tmp/t
// makes each process append one line per batch to /tmp/t.<pid>. Each line starts with the wall
// clock in milliseconds, so the lines of several processes on one machine can be merged, and
// gives a batch's age: now minus the newest and the oldest write time (HLC) among its records.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "protocol/messages.h"

namespace lockstep::engine {

class BatchTrace {
 public:
  using Clock = std::chrono::steady_clock;

  // Whether tracing is on in this process (read once).
  static bool enabled();
  // Appends `what` and its fields as one line, with the batch's records' ages. No-op when off.
  static void Write(std::string_view who, std::string_view what, const protocol::ChangeBatch& batch,
                    const std::string& fields);
  // Milliseconds since `start`, as text with one decimal.
  static std::string Since(Clock::time_point start);
  // `ms` as text with one decimal.
  static std::string Millis(double ms);
};

}  // namespace lockstep::engine
