#include "reconcile/excluding_item_set.h"

#include <algorithm>
#include <utility>

#include "reconcile/summary_difference.h"

namespace lockstep::reconcile {
namespace {

// The indices [first, last) of the items of `items` (by position) inside `range`.
std::pair<size_t, size_t> Bounds(const std::vector<Item>& items, const PositionRange& range) {
  const auto below = [](const Item& item, uint64_t position) { return item.position < position; };
  const auto first = std::lower_bound(items.begin(), items.end(), range.begin, below);
  const auto last =
      range.to_end ? items.end() : std::lower_bound(first, items.end(), range.end, below);
  return {static_cast<size_t>(first - items.begin()), static_cast<size_t>(last - items.begin())};
}

}  // namespace

Result<ExcludingItemSet> ExcludingItemSet::Make(ItemSet& base, std::vector<uint32_t> prefixes) {
  ExcludingItemSet set(base, std::move(prefixes));
  for (uint32_t prefix : set.prefixes_) {
    const RangeId range{kRecentDepth, prefix};
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Item> items, base.Items(range.positions()));
    for (Item& item : items) set.excluded_.push_back(std::move(item));
  }
  // Ascending prefixes give items in position order already.
  set.sums_.resize(set.excluded_.size() + 1);
  for (size_t i = 0; i < set.excluded_.size(); ++i) {
    set.sums_[i + 1] = set.sums_[i];
    set.sums_[i + 1].Add(set.excluded_[i].hash);
  }
  return set;
}

bool ExcludingItemSet::IsExcluded(uint64_t position) const {
  return std::binary_search(prefixes_.begin(), prefixes_.end(), RecentPrefix(position));
}

bool ExcludingItemSet::Excludes(const RangeId& range) const {
  return range.depth >= kRecentDepth && IsExcluded(range.positions().begin);
}

Result<RangeSummary> ExcludingItemSet::Summarize(const PositionRange& range) {
  LOCKSTEP_ASSIGN_OR_RETURN(RangeSummary all, base_->Summarize(range));
  const auto [first, last] = Bounds(excluded_, range);
  return SummaryDifference(all, SummaryDifference(sums_[last], sums_[first]));
}

Result<std::vector<Item>> ExcludingItemSet::Items(const PositionRange& range) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<Item> items, base_->Items(range));
  std::erase_if(items, [&](const Item& item) { return IsExcluded(item.position); });
  return items;
}

}  // namespace lockstep::reconcile
