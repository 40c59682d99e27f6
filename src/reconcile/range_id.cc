#include "reconcile/range_id.h"

#include <cassert>

namespace lockstep::reconcile {

bool RangeId::valid() const {
  if (depth > kPositionBits) return false;
  return depth == kPositionBits || prefix < (uint64_t{1} << depth);
}

PositionRange RangeId::positions() const {
  if (depth == 0) return {0, 0, true};
  const unsigned shift = kPositionBits - depth;
  const uint64_t begin = prefix << shift;
  // Shifting by 64 is undefined, so the size of a depth-0 range was handled above.
  const uint64_t last = begin | ((uint64_t{1} << shift) - 1);
  if (last == UINT64_MAX) return {begin, 0, true};
  return {begin, last + 1, false};
}

RangeId RangeId::Child(unsigned bits, uint64_t index) const {
  assert(valid() && depth + bits <= kPositionBits);
  if (bits == 0) return *this;
  assert(bits == kPositionBits || index < (uint64_t{1} << bits));
  // depth + bits <= 64 with bits >= 1, so the shift is below 64 unless the parent is the root.
  const uint64_t shifted = bits == kPositionBits ? 0 : prefix << bits;
  return {static_cast<uint8_t>(depth + bits), shifted | index};
}

}  // namespace lockstep::reconcile
