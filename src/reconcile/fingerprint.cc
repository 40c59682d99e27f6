#include "reconcile/fingerprint.h"

#include <xxhash.h>

#include <array>
#include <cassert>

namespace lockstep::reconcile {
namespace {

// Separate domains, so that a range's fingerprint never equals an item's short hash by design.
constexpr uint64_t kRangeDomain = 0x72616e6765000000;  // "range"
constexpr uint64_t kItemDomain = 0x6974656d00000000;   // "item"

void PutLittleEndian(uint64_t value, unsigned char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
}

uint64_t Truncate(uint64_t hash, unsigned bytes) {
  assert(bytes >= kMinHashBytes && bytes <= kMaxHashBytes);
  return bytes == 8 ? hash : hash & ((uint64_t{1} << (8 * bytes)) - 1);
}

}  // namespace

uint64_t RangeFingerprint(const RangeSummary& summary, uint64_t seed, unsigned bytes) {
  std::array<unsigned char, 24> input{};
  PutLittleEndian(summary.count, input.data());
  PutLittleEndian(summary.sum.lo, input.data() + 8);
  PutLittleEndian(summary.sum.hi, input.data() + 16);
  return Truncate(XXH3_64bits_withSeed(input.data(), input.size(), seed ^ kRangeDomain), bytes);
}

uint64_t ShortItemHash(const Hash128& item, uint64_t seed, unsigned bytes) {
  std::array<unsigned char, 16> input{};
  PutLittleEndian(item.lo, input.data());
  PutLittleEndian(item.hi, input.data() + 8);
  return Truncate(XXH3_64bits_withSeed(input.data(), input.size(), seed ^ kItemDomain), bytes);
}

}  // namespace lockstep::reconcile
