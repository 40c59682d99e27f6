// The physical-time seam: core logic never reads the wall clock itself, so tests can drive time.
#pragma once

#include <atomic>
#include <cstdint>

namespace lockstep::base {

// A source of wall-clock milliseconds since the Unix epoch. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMillis() const = 0;
};

// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  int64_t NowMillis() const override;
  // A process-wide instance, for production wiring.
  static const SystemClock& Get();
};

// A clock that moves only when told to, for tests. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_millis = 0) : now_(now_millis) {}
  int64_t NowMillis() const override { return now_.load(); }
  void Set(int64_t now_millis) { now_.store(now_millis); }
  void Advance(int64_t millis) { now_.fetch_add(millis); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace lockstep::base
