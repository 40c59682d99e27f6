// Node ids, HLC timestamps and dots: the names of writes.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "lockstep/status.h"

namespace lockstep::core {

// A node's identity: 16 random bytes made once at `lockstep init`. Shown in base32.
struct NodeId {
  std::array<uint8_t, 16> bytes{};

  // 26 lowercase RFC 4648 base32 characters, no padding.
  std::string ToString() const;
  static Result<NodeId> Parse(std::string_view base32);
  // Fills `bytes` from a 16-byte string. REQUIRES: raw.size() == 16.
  static NodeId FromBytes(std::string_view raw);

  friend auto operator<=>(const NodeId&, const NodeId&) = default;
};

// A hybrid logical clock timestamp: 48 bits of Unix milliseconds, 16 bits of logical counter.
// Compares as one 64-bit number, so it orders writes close to wall time and respects causality.
struct Hlc {
  uint64_t raw = 0;

  static constexpr int kCounterBits = 16;
  static constexpr uint64_t kMaxCounter = (uint64_t{1} << kCounterBits) - 1;
  static constexpr uint64_t kMaxMillis = (uint64_t{1} << 48) - 1;

  static Hlc Make(uint64_t millis, uint64_t counter) {
    return Hlc{(millis << kCounterBits) | (counter & kMaxCounter)};
  }
  uint64_t millis() const { return raw >> kCounterBits; }
  uint64_t counter() const { return raw & kMaxCounter; }

  friend auto operator<=>(const Hlc&, const Hlc&) = default;
};

// Names one write: the writing node and that node's count of its own writes (from 1).
struct Dot {
  NodeId node;
  uint64_t counter = 0;

  friend auto operator<=>(const Dot&, const Dot&) = default;
};

}  // namespace lockstep::core
