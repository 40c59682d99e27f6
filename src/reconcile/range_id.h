// Names of position ranges as reconciliation splits them: the range of positions whose top
// `depth` bits equal `prefix`. Both replicas derive the same tree of ranges from the 64-bit
// position space alone, so a range travels as (depth, prefix) and no boundaries are negotiated.
#pragma once

#include <compare>
#include <cstdint>

#include "reconcile/item_set.h"

namespace lockstep::reconcile {

inline constexpr unsigned kPositionBits = 64;

// Value type. Valid when depth <= 64 and prefix < 2^depth.
struct RangeId {
  uint8_t depth = 0;
  uint64_t prefix = 0;

  bool valid() const;
  // The positions this range covers; the root (depth 0) covers all of them.
  PositionRange positions() const;
  // The index-th of the 2^bits equal sub-ranges, in position order.
  // REQUIRES: valid(), depth + bits <= 64, index < 2^bits.
  RangeId Child(unsigned bits, uint64_t index) const;

  friend bool operator==(const RangeId&, const RangeId&) = default;
  friend auto operator<=>(const RangeId&, const RangeId&) = default;
};

inline constexpr RangeId kWholeRange{};

}  // namespace lockstep::reconcile
