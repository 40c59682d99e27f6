// An item set seen without the items of some narrow ranges: those around the records either side
// changed recently, which a session compares item by item first. The rest of the session then
// reconciles what remains, which is equal on both sides when every difference was recent.
#pragma once

#include <cstdint>
#include <vector>

#include "reconcile/item_set.h"
#include "reconcile/range_id.h"

namespace lockstep::reconcile {

// Excluded ranges are the ranges of this depth around recent positions: 2^32 positions each,
// which hold another item than the recent one with odds n / 2^32 (1 in 4,000 for 1M items).
inline constexpr uint8_t kRecentDepth = 32;

// The excluded range around `position`.
inline uint32_t RecentPrefix(uint64_t position) {
  return static_cast<uint32_t>(position >> (kPositionBits - kRecentDepth));
}

// Not thread-safe; `base` must outlive it and not change.
class ExcludingItemSet final : public ItemSet {
 public:
  // `prefixes`: the excluded ranges, ascending, without repeats. Reads their items from `base`.
  static Result<ExcludingItemSet> Make(ItemSet& base, std::vector<uint32_t> prefixes);

  Result<RangeSummary> Summarize(const PositionRange& range) override;
  Result<std::vector<Item>> Items(const PositionRange& range) override;

  // Whether `range` lies inside an excluded range.
  bool Excludes(const RangeId& range) const;
  const std::vector<uint32_t>& prefixes() const { return prefixes_; }

 private:
  ExcludingItemSet(ItemSet& base, std::vector<uint32_t> prefixes)
      : base_(&base), prefixes_(std::move(prefixes)) {}
  bool IsExcluded(uint64_t position) const;

  ItemSet* base_;
  std::vector<uint32_t> prefixes_;
  std::vector<Item> excluded_;      // the base's items in excluded ranges, by position
  std::vector<RangeSummary> sums_;  // sums_[i]: the summary of excluded_[0, i)
};

}  // namespace lockstep::reconcile
