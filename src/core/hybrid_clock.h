// The hybrid logical clock (Kulkarni et al., 2014) that stamps every local write.
#pragma once

#include <cstdint>
#include <mutex>

#include "base/clock.h"
#include "core/dot.h"
#include "lockstep/status.h"

namespace lockstep::core {

// Issues strictly increasing Hlc values that stay close to the injected physical clock and move
// past every remote timestamp it is told about. Thread-safe.
//
// When the 16-bit counter would overflow (more than 65,536 stamps in one millisecond, or a remote
// clock that keeps us at its millisecond), the clock moves to the next millisecond instead: it
// then runs slightly ahead of wall time, which is what an HLC does anyway after seeing a fast
// remote clock.
class HybridClock {
 public:
  static constexpr int64_t kDefaultMaxSkewMillis = 5 * 60 * 1000;

  explicit HybridClock(const base::Clock& physical, int64_t max_skew_millis = kDefaultMaxSkewMillis)
      : physical_(physical), max_skew_millis_(max_skew_millis) {}

  // A timestamp for a local write, greater than every one issued or observed before.
  Hlc Tick();
  // Tick() as if the physical clock read `physical_millis`: stamps a write with the time it was
  // made (recorded by a capture trigger) rather than the time it is stamped.
  Hlc TickAt(int64_t physical_millis);

  // Folds in a timestamp received from another node and returns one greater than both it and
  // every timestamp issued before. A remote timestamp more than the maximum skew ahead of our
  // physical clock is refused with kFailedPrecondition and changes nothing: adopting it would drag
  // every later write into the future.
  Result<Hlc> Update(Hlc remote);

  // Ensures later timestamps exceed `floor` without a skew check; for restoring a persisted clock.
  void Restore(Hlc floor);

  Hlc last() const;

 private:
  Hlc Advance(uint64_t millis, uint64_t counter_floor);  // REQUIRES: mu_ held

  const base::Clock& physical_;
  const int64_t max_skew_millis_;
  mutable std::mutex mu_;
  Hlc last_;
};

}  // namespace lockstep::core
