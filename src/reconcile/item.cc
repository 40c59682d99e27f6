#include "reconcile/item.h"

// The state struct is only defined for static use; it lives on the stack here.
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <array>

namespace lockstep::reconcile {
namespace {

// Addition and subtraction modulo 2^128 on two 64-bit halves.
Hash128 Plus(const Hash128& a, const Hash128& b) {
  const uint64_t lo = a.lo + b.lo;
  return {lo, a.hi + b.hi + (lo < a.lo ? 1 : 0)};
}

Hash128 Minus(const Hash128& a, const Hash128& b) {
  return {a.lo - b.lo, a.hi - b.hi - (a.lo < b.lo ? 1 : 0)};
}

// A seed of our own, so that item hashes are not the plain XXH3 of anything else we hash.
constexpr XXH64_hash_t kPositionSeed = 0x6c6f636b73746570;  // "lockstep"

}  // namespace

uint64_t ItemPosition(std::string_view key) {
  return XXH3_64bits_withSeed(key.data(), key.size(), kPositionSeed);
}

Hash128 ItemHash(std::string_view key, std::string_view encoding) {
  // The key's length first, so that no (key, encoding) pair reads as another.
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  const uint64_t key_size = key.size();
  std::array<unsigned char, 8> size_bytes{};
  for (size_t i = 0; i < size_bytes.size(); ++i) {
    size_bytes[i] = static_cast<unsigned char>(key_size >> (8 * i));
  }
  XXH3_128bits_update(&state, size_bytes.data(), size_bytes.size());
  XXH3_128bits_update(&state, key.data(), key.size());
  XXH3_128bits_update(&state, encoding.data(), encoding.size());
  const XXH128_hash_t hash = XXH3_128bits_digest(&state);
  return {hash.low64, hash.high64};
}

void RangeSummary::Add(const Hash128& item) {
  ++count;
  sum = Plus(sum, item);
}

void RangeSummary::Subtract(const Hash128& item) {
  --count;
  sum = Minus(sum, item);
}

void RangeSummary::Add(const RangeSummary& other) {
  count += other.count;
  sum = Plus(sum, other.sum);
}

}  // namespace lockstep::reconcile
