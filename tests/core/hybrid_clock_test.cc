#include "core/hybrid_clock.h"

#include <gtest/gtest.h>

#include "base/clock.h"

namespace lockstep::core {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;  // a plausible wall time in ms

TEST(HybridClockTest, TicksStrictlyIncreaseWithinOneMillisecond) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  Hlc previous = clock.Tick();
  EXPECT_EQ(previous, Hlc::Make(kStart, 0));
  for (int i = 1; i < 100; ++i) {
    const Hlc next = clock.Tick();
    EXPECT_GT(next, previous);
    EXPECT_EQ(next.millis(), static_cast<uint64_t>(kStart));
    EXPECT_EQ(next.counter(), static_cast<uint64_t>(i));
    previous = next;
  }
  EXPECT_EQ(clock.last(), previous);
}

TEST(HybridClockTest, FollowsPhysicalTimeAndResetsTheCounter) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  clock.Tick();
  clock.Tick();
  physical.Advance(5);
  EXPECT_EQ(clock.Tick(), Hlc::Make(kStart + 5, 0));
  physical.Set(kStart + 1000);
  EXPECT_EQ(clock.Tick(), Hlc::Make(kStart + 1000, 0));
}

TEST(HybridClockTest, StillIncreasesWhenPhysicalClockGoesBackwards) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  const Hlc before = clock.Tick();
  physical.Set(kStart - 60'000);
  const Hlc after = clock.Tick();
  EXPECT_GT(after, before);
  EXPECT_EQ(after, Hlc::Make(kStart, 1));
  EXPECT_GT(clock.Tick(), after);
}

TEST(HybridClockTest, UpdateWithRemoteAheadMovesPastIt) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  clock.Tick();
  const Hlc remote = Hlc::Make(kStart + 2000, 7);
  Result<Hlc> updated = clock.Update(remote);
  ASSERT_TRUE(updated.has_value()) << updated.error().ToString();
  EXPECT_GT(*updated, remote);
  EXPECT_EQ(*updated, Hlc::Make(kStart + 2000, 8));
  // Later local writes stay past the remote stamp though physical time has not caught up.
  const Hlc next = clock.Tick();
  EXPECT_GT(next, *updated);
  EXPECT_EQ(next, Hlc::Make(kStart + 2000, 9));
}

TEST(HybridClockTest, UpdateWithRemoteBehindStillAdvances) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  const Hlc local = clock.Tick();
  Result<Hlc> updated = clock.Update(Hlc::Make(kStart - 100, 500));
  ASSERT_TRUE(updated.has_value());
  EXPECT_GT(*updated, local);
  EXPECT_EQ(*updated, Hlc::Make(kStart, 1));
}

TEST(HybridClockTest, UpdateInTheSameMillisecondPassesTheLargerCounter) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  clock.Tick();  // (kStart, 0)
  Result<Hlc> updated = clock.Update(Hlc::Make(kStart, 40));
  ASSERT_TRUE(updated.has_value());
  EXPECT_EQ(*updated, Hlc::Make(kStart, 41));
  // A remote counter below ours still moves ours on by one.
  updated = clock.Update(Hlc::Make(kStart, 3));
  ASSERT_TRUE(updated.has_value());
  EXPECT_EQ(*updated, Hlc::Make(kStart, 42));
}

TEST(HybridClockTest, UpdateBeyondDefaultMaxSkewIsRefusedAndChangesNothing) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  const Hlc local = clock.Tick();
  EXPECT_EQ(HybridClock::kDefaultMaxSkewMillis, 5 * 60 * 1000);
  Result<Hlc> refused = clock.Update(Hlc::Make(kStart + 5 * 60 * 1000 + 1, 0));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.error().message().find("skew"), std::string::npos);
  EXPECT_EQ(clock.last(), local);
  EXPECT_EQ(clock.Tick(), Hlc::Make(kStart, 1));
}

TEST(HybridClockTest, UpdateExactlyAtMaxSkewIsAccepted) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  const Hlc remote = Hlc::Make(kStart + HybridClock::kDefaultMaxSkewMillis, 0);
  Result<Hlc> accepted = clock.Update(remote);
  ASSERT_TRUE(accepted.has_value());
  EXPECT_GT(*accepted, remote);
}

TEST(HybridClockTest, MaxSkewIsConfigurable) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical, /*max_skew_millis=*/10);
  EXPECT_TRUE(clock.Update(Hlc::Make(kStart + 10, 0)).has_value());
  const Hlc last = clock.last();
  Result<Hlc> refused = clock.Update(Hlc::Make(kStart + 11, 0));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(clock.last(), last);
}

TEST(HybridClockTest, CounterOverflowMovesToTheNextMillisecondAndStaysMonotonic) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  Hlc previous = clock.Tick();
  for (uint64_t i = 1; i <= Hlc::kMaxCounter; ++i) {
    const Hlc next = clock.Tick();
    ASSERT_GT(next, previous);
    previous = next;
  }
  EXPECT_EQ(previous, Hlc::Make(kStart, 65'535));
  const Hlc overflowed = clock.Tick();
  EXPECT_EQ(overflowed, Hlc::Make(kStart + 1, 0));
  // Physical time is still at kStart: the clock keeps running ahead, monotonically.
  EXPECT_EQ(clock.Tick(), Hlc::Make(kStart + 1, 1));
  physical.Advance(1);
  EXPECT_EQ(clock.Tick(), Hlc::Make(kStart + 1, 2));
  physical.Advance(1);
  EXPECT_EQ(clock.Tick(), Hlc::Make(kStart + 2, 0));
}

TEST(HybridClockTest, UpdateWithRemoteAtMaxCounterMovesToTheNextMillisecond) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  const Hlc remote = Hlc::Make(kStart, Hlc::kMaxCounter);
  Result<Hlc> updated = clock.Update(remote);
  ASSERT_TRUE(updated.has_value());
  EXPECT_GT(*updated, remote);
  EXPECT_EQ(*updated, Hlc::Make(kStart + 1, 0));
}

TEST(HybridClockTest, RestoreMakesLaterStampsExceedTheFloor) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  const Hlc floor = Hlc::Make(kStart + 10 * 60 * 1000, 3);  // beyond max skew: no check
  clock.Restore(floor);
  EXPECT_EQ(clock.last(), floor);
  EXPECT_EQ(clock.Tick(), Hlc::Make(kStart + 10 * 60 * 1000, 4));
}

TEST(HybridClockTest, RestoreNeverMovesTheClockBack) {
  base::FakeClock physical(kStart);
  HybridClock clock(physical);
  clock.Tick();
  const Hlc current = clock.Tick();
  clock.Restore(Hlc::Make(kStart - 1, 0));
  EXPECT_EQ(clock.last(), current);
  EXPECT_GT(clock.Tick(), current);
}

TEST(HybridClockTest, NegativePhysicalTimeIsTreatedAsZero) {
  base::FakeClock physical(-5);
  HybridClock clock(physical);
  const Hlc first = clock.Tick();
  EXPECT_EQ(first.millis(), 0u);
  EXPECT_GT(clock.Tick(), first);
}

}  // namespace
}  // namespace lockstep::core
