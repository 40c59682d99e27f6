#include "reconcile/memory_item_set.h"

#include <algorithm>
#include <utility>

#include "reconcile/summary_difference.h"

namespace lockstep::reconcile {

Item MakeItem(std::string_view key, std::string_view encoding) {
  return {ItemPosition(key), std::string(key), ItemHash(key, encoding)};
}

MemoryItemSet::MemoryItemSet(std::vector<Item> items) : items_(std::move(items)) {
  std::sort(items_.begin(), items_.end(), [](const Item& a, const Item& b) {
    return a.position != b.position ? a.position < b.position : a.key < b.key;
  });
  prefix_.resize(items_.size() + 1);
  for (size_t i = 0; i < items_.size(); ++i) {
    prefix_[i + 1] = prefix_[i];
    prefix_[i + 1].Add(items_[i].hash);
  }
}

std::pair<size_t, size_t> MemoryItemSet::Bounds(const PositionRange& range) const {
  const auto below = [](const Item& item, uint64_t position) { return item.position < position; };
  const auto first = std::lower_bound(items_.begin(), items_.end(), range.begin, below);
  const auto last =
      range.to_end ? items_.end() : std::lower_bound(first, items_.end(), range.end, below);
  return {static_cast<size_t>(first - items_.begin()), static_cast<size_t>(last - items_.begin())};
}

Result<RangeSummary> MemoryItemSet::Summarize(const PositionRange& range) {
  const auto [first, last] = Bounds(range);
  return SummaryDifference(prefix_[last], prefix_[first]);
}

Result<std::vector<Item>> MemoryItemSet::Items(const PositionRange& range) {
  const auto [first, last] = Bounds(range);
  return std::vector<Item>(items_.begin() + static_cast<std::ptrdiff_t>(first),
                           items_.begin() + static_cast<std::ptrdiff_t>(last));
}

}  // namespace lockstep::reconcile
