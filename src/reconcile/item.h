// The items that set reconciliation compares: one per record of a collection, placed by a 64-bit
// position and identified by a 128-bit hash of the record's key and canonical encoding. Two
// replicas hold the same record exactly when they hold the same item, so equal sets mean equal
// collections.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep::reconcile {

// 128 bits of a hash, or a sum of such hashes modulo 2^128.
struct Hash128 {
  uint64_t lo = 0;
  uint64_t hi = 0;
  friend bool operator==(const Hash128&, const Hash128&) = default;
  friend auto operator<=>(const Hash128&, const Hash128&) = default;
};

// Where an item sits in the order that reconciliation splits into ranges. Equal for equal keys on
// every replica, and spread evenly over the 64 bits so that a range of positions holds a
// predictable share of the items.
uint64_t ItemPosition(std::string_view key);

// The identity of one version of one record: a hash of its key and its canonical encoding
// (core/codec.h), which is equal on two replicas exactly when they hold the same state.
Hash128 ItemHash(std::string_view key, std::string_view encoding);

// What a range of items adds up to: how many there are and the sum of their hashes modulo
// 2^128. Sums, unlike a hash of a list, are kept up to date one item at a time: adding a record
// adds its hash, changing it subtracts the old hash and adds the new one.
struct RangeSummary {
  uint64_t count = 0;
  Hash128 sum;

  void Add(const Hash128& item);
  void Subtract(const Hash128& item);
  void Add(const RangeSummary& other);
  friend bool operator==(const RangeSummary&, const RangeSummary&) = default;
};

}  // namespace lockstep::reconcile
