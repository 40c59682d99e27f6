#include "core/version_vector.h"

#include <algorithm>

namespace lockstep::core {

VersionVector::VersionVector(std::vector<Entry> entries) {
  // Entries already in canonical form (a decoded vector always is) are kept as they are, without
  // building a second list.
  const bool canonical =
      std::all_of(entries.begin(), entries.end(), [](const Entry& e) { return e.second > 0; }) &&
      std::adjacent_find(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
        return !(a.first < b.first);
      }) == entries.end();
  if (canonical) {
    entries_ = std::move(entries);
    return;
  }
  for (const auto& [node, counter] : entries) Advance(node, counter);
}

uint64_t VersionVector::Get(const NodeId& node) const {
  for (const auto& [id, counter] : entries_) {
    if (id == node) return counter;
  }
  return 0;
}

void VersionVector::Advance(const NodeId& node, uint64_t counter) {
  if (counter == 0) return;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), node,
                             [](const Entry& e, const NodeId& n) { return e.first < n; });
  if (it != entries_.end() && it->first == node) {
    it->second = std::max(it->second, counter);
  } else {
    entries_.insert(it, {node, counter});
  }
}

bool VersionVector::Covers(const VersionVector& other) const {
  for (const auto& [node, counter] : other.entries_) {
    if (Get(node) < counter) return false;
  }
  return true;
}

void VersionVector::Merge(const VersionVector& other) {
  if (Covers(other)) return;  // the common case when merging a record this replica already has
  // Both sides are sorted and usually tiny; a linear two-way merge avoids re-sorting.
  std::vector<Entry> merged;
  merged.reserve(entries_.size() + other.entries_.size());
  auto a = entries_.begin();
  auto b = other.entries_.begin();
  while (a != entries_.end() || b != other.entries_.end()) {
    if (b == other.entries_.end() || (a != entries_.end() && a->first < b->first)) {
      merged.push_back(*a++);
    } else if (a == entries_.end() || b->first < a->first) {
      merged.push_back(*b++);
    } else {
      merged.emplace_back(a->first, std::max(a->second, b->second));
      ++a;
      ++b;
    }
  }
  entries_ = std::move(merged);
}

Causality Compare(const VersionVector& a, const VersionVector& b) {
  const bool a_covers_b = a.Covers(b);
  const bool b_covers_a = b.Covers(a);
  if (a_covers_b && b_covers_a) return Causality::kEqual;
  if (b_covers_a) return Causality::kBefore;
  if (a_covers_b) return Causality::kAfter;
  return Causality::kConcurrent;
}

}  // namespace lockstep::core
