// The short hashes that travel instead of full summaries and items. Both are seeded by the
// session (the initiator picks the seed), so that two different ranges or items that happen to
// share a short hash in one session almost surely do not in the next.
#pragma once

#include <cstdint>

#include "reconcile/item.h"

namespace lockstep::reconcile {

// Widths, in bytes, that a session may choose for fingerprints and short item hashes.
inline constexpr unsigned kMinHashBytes = 4;
inline constexpr unsigned kMaxHashBytes = 8;

// The low `bytes` bytes of a seeded 64-bit hash of (count, sum). Two unequal summaries get the
// same fingerprint with probability 2^-(8 * bytes).
// REQUIRES: kMinHashBytes <= bytes <= kMaxHashBytes.
uint64_t RangeFingerprint(const RangeSummary& summary, uint64_t seed, unsigned bytes);

// The low `bytes` bytes of a seeded 64-bit hash of an item's hash.
// REQUIRES: kMinHashBytes <= bytes <= kMaxHashBytes.
uint64_t ShortItemHash(const Hash128& item, uint64_t seed, unsigned bytes);

}  // namespace lockstep::reconcile
