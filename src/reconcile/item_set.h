// One collection of one replica, as reconciliation sees it: a set of items it can summarize by
// range of positions and list. The replica store implements it from per-record columns and
// per-bucket sums kept up to date as records change (store/replica_store.h); tests implement it
// in memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lockstep/status.h"
#include "reconcile/item.h"

namespace lockstep::reconcile {

struct Item {
  uint64_t position = 0;
  std::string key;
  Hash128 hash;
};

// A half-open range of positions [begin, end); `end == 0` with `to_end` covers the rest of the
// 64-bit space, so that the whole set is {0, 0, true}.
struct PositionRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  bool to_end = false;
  bool Contains(uint64_t position) const { return position >= begin && (to_end || position < end); }
};

class ItemSet {
 public:
  virtual ~ItemSet() = default;
  // The count and hash sum of the items in `range`. Must not read every item of a large range:
  // the store answers from bucket sums and reads items only at the edges.
  virtual Result<RangeSummary> Summarize(const PositionRange& range) = 0;
  // The items in `range`, in position order (then key order for equal positions).
  virtual Result<std::vector<Item>> Items(const PositionRange& range) = 0;
};

}  // namespace lockstep::reconcile
