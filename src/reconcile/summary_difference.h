// Subtracting one range's summary from another's, for item sets that keep prefix sums.
// RangeSummary itself only subtracts single items.
#pragma once

#include "reconcile/item.h"

namespace lockstep::reconcile {

// The summary of the items in `whole` but not in `part`. REQUIRES: `part` is a subset of `whole`.
inline RangeSummary SummaryDifference(const RangeSummary& whole, const RangeSummary& part) {
  RangeSummary result;
  result.count = whole.count - part.count;
  result.sum.lo = whole.sum.lo - part.sum.lo;
  result.sum.hi = whole.sum.hi - part.sum.hi - (whole.sum.lo < part.sum.lo ? 1 : 0);
  return result;
}

}  // namespace lockstep::reconcile
