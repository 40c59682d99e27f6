// Version vectors: per record, for each node that wrote it, the largest counter of that node's
// writes this replica has merged. They detect concurrency exactly.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/dot.h"

namespace lockstep::core {

enum class Causality { kEqual, kBefore, kAfter, kConcurrent };

// Entries only for nodes that wrote the record, sorted by node id, counters > 0, so equal vectors
// have equal representations. Invariant relied on by the merge rule: a vector is downward closed —
// covering a dot implies covering every write that dot's writer had seen. Thread-compatible.
class VersionVector {
 public:
  using Entry = std::pair<NodeId, uint64_t>;

  VersionVector() = default;
  // REQUIRES: any order; duplicates keep their maximum; zero counters are dropped.
  explicit VersionVector(std::vector<Entry> entries);

  // The counter for `node`, 0 when absent.
  uint64_t Get(const NodeId& node) const;
  // Raises node's entry to at least `counter`.
  void Advance(const NodeId& node, uint64_t counter);
  void Advance(const Dot& dot) { Advance(dot.node, dot.counter); }

  // True when the write named by `dot` is reflected here.
  bool Covers(const Dot& dot) const { return Get(dot.node) >= dot.counter; }
  // True when every entry of `other` is covered.
  bool Covers(const VersionVector& other) const;
  // Pointwise maximum.
  void Merge(const VersionVector& other);

  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }

  friend bool operator==(const VersionVector&, const VersionVector&) = default;

 private:
  std::vector<Entry> entries_;
};

// kBefore: every write of `a` is in `b` and b has more; kAfter the reverse.
Causality Compare(const VersionVector& a, const VersionVector& b);

}  // namespace lockstep::core
