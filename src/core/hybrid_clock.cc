#include "core/hybrid_clock.h"

#include <algorithm>
#include <string>

namespace lockstep::core {
namespace {

uint64_t PhysicalMillis(int64_t now) {
  if (now < 0) return 0;
  return std::min<uint64_t>(static_cast<uint64_t>(now), Hlc::kMaxMillis);
}

}  // namespace

Hlc HybridClock::Advance(uint64_t millis, uint64_t counter_floor) {
  // `millis` is the largest physical time known; the counter orders stamps within it.
  uint64_t counter = 0;
  if (millis == last_.millis())
    counter = std::max(last_.counter() + 1, counter_floor);
  else if (counter_floor > 0)
    counter = counter_floor;
  if (counter > Hlc::kMaxCounter) {
    millis = std::min(millis + 1, Hlc::kMaxMillis);
    counter = 0;
  }
  last_ = Hlc::Make(millis, counter);
  return last_;
}

Hlc HybridClock::Tick() { return TickAt(physical_.NowMillis()); }

Hlc HybridClock::TickAt(int64_t physical_millis) {
  std::lock_guard lock(mu_);
  const uint64_t millis = std::max(PhysicalMillis(physical_millis), last_.millis());
  return Advance(millis, 0);
}

Result<Hlc> HybridClock::Update(Hlc remote) {
  std::lock_guard lock(mu_);
  const uint64_t physical = PhysicalMillis(physical_.NowMillis());
  if (remote.millis() > physical + static_cast<uint64_t>(max_skew_millis_)) {
    return FailedPrecondition("remote clock is " + std::to_string(remote.millis() - physical) +
                              " ms ahead of ours, beyond the allowed skew of " +
                              std::to_string(max_skew_millis_) + " ms");
  }
  const uint64_t millis = std::max({physical, last_.millis(), remote.millis()});
  // Past a remote stamp in the same millisecond, the counter must also pass the remote counter.
  const uint64_t floor = millis == remote.millis() ? remote.counter() + 1 : 0;
  return Advance(millis, floor);
}

void HybridClock::Restore(Hlc floor) {
  std::lock_guard lock(mu_);
  last_ = std::max(last_, floor);
}

Hlc HybridClock::last() const {
  std::lock_guard lock(mu_);
  return last_;
}

}  // namespace lockstep::core
