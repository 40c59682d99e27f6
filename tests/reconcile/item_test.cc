#include "reconcile/item.h"

#include <gtest/gtest.h>

namespace lockstep::reconcile {
namespace {

TEST(ItemTest, HashDependsOnKeyAndEncodingAndTheirBoundary) {
  EXPECT_EQ(ItemHash("k", "v"), ItemHash("k", "v"));
  EXPECT_NE(ItemHash("k", "v"), ItemHash("k", "w"));
  EXPECT_NE(ItemHash("k", "v"), ItemHash("j", "v"));
  EXPECT_NE(ItemHash("ab", "c"), ItemHash("a", "bc"));
}

TEST(ItemTest, PositionDependsOnKeyOnly) {
  EXPECT_EQ(ItemPosition("k"), ItemPosition("k"));
  EXPECT_NE(ItemPosition("k"), ItemPosition("j"));
}

TEST(ItemTest, SumsAddAndSubtractInAnyOrderWithCarries) {
  const Hash128 a{~0ULL, 5}, b{3, ~0ULL}, c{7, 9};
  RangeSummary forward, backward;
  forward.Add(a);
  forward.Add(b);
  forward.Add(c);
  backward.Add(c);
  backward.Add(b);
  backward.Add(a);
  EXPECT_EQ(forward, backward);
  EXPECT_EQ(forward.count, 3u);
  EXPECT_EQ(forward.sum, (Hash128{~0ULL + 3 + 7, 5 + ~0ULL + 9 + 1}));

  forward.Subtract(b);
  forward.Subtract(a);
  forward.Subtract(c);
  EXPECT_EQ(forward, RangeSummary{});

  RangeSummary left, right, whole;
  left.Add(a);
  right.Add(b);
  whole.Add(a);
  whole.Add(b);
  left.Add(right);
  EXPECT_EQ(left, whole);
}

}  // namespace
}  // namespace lockstep::reconcile
