// An ItemSet held in memory: items sorted by position with prefix sums, so a range is summarized
// with two binary searches. For tests and benchmarks, and for callers that build a set once.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "reconcile/item_set.h"

namespace lockstep::reconcile {

// The item of a record with key `key` and canonical encoding `encoding`.
Item MakeItem(std::string_view key, std::string_view encoding);

// Immutable after construction; safe to read from several threads.
class MemoryItemSet final : public ItemSet {
 public:
  // REQUIRES: at most one item per key.
  explicit MemoryItemSet(std::vector<Item> items);

  Result<RangeSummary> Summarize(const PositionRange& range) override;
  Result<std::vector<Item>> Items(const PositionRange& range) override;

  size_t size() const { return items_.size(); }
  const std::vector<Item>& items() const { return items_; }

 private:
  // The indices [first, last) of the items inside `range`.
  std::pair<size_t, size_t> Bounds(const PositionRange& range) const;

  std::vector<Item> items_;           // by position, then key
  std::vector<RangeSummary> prefix_;  // prefix_[i]: the summary of items_[0, i)
};

}  // namespace lockstep::reconcile
