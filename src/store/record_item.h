// How one stored record is seen by set reconciliation and by tombstone collection: the columns
// that metadata version 2 keeps beside each record in `_lockstep_records`. Computed here and
// nowhere else, so that the store's writes, the migration from version 1 and the tests agree, and
// a change of reconcile::ItemPosition is one edit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/record.h"
#include "lockstep/status.h"
#include "reconcile/item.h"

namespace lockstep::store {

// The item of a record: its position and the hash of its key and canonical encoding.
struct RecordItem {
  uint64_t position = 0;
  reconcile::Hash128 hash;
};

RecordItem ItemOf(std::string_view key, std::string_view encoding);

// When the record became a tombstone, in Unix milliseconds, or nullopt when it is not one. A
// record is a tombstone only when every surviving version of `_exists` says deleted: then no
// conflict policy shows it, and collecting it loses nothing a reader could see.
std::optional<int64_t> TombstoneMillis(const core::Record& record);

// SQLite integers are signed: a position is stored with its top bit flipped, so that the column
// sorts like the unsigned position.
inline int64_t PositionColumn(uint64_t position) {
  return static_cast<int64_t>(position ^ (uint64_t{1} << 63));
}
inline uint64_t PositionFromColumn(int64_t column) {
  return static_cast<uint64_t>(column) ^ (uint64_t{1} << 63);
}

// A hash as stored: 16 bytes, `hi` then `lo`, big-endian.
std::string HashColumn(const reconcile::Hash128& hash);
// The same 16 bytes appended to `out`: many hashes in one buffer, without an allocation each.
void AppendHashColumn(const reconcile::Hash128& hash, std::string& out);
Result<reconcile::Hash128> HashFromColumn(std::string_view bytes);

// Positions are summed in 2^16 buckets by their top 16 bits.
inline constexpr int kBucketBits = 16;
inline constexpr uint32_t kBucketCount = uint32_t{1} << kBucketBits;
inline constexpr int kBucketShift = 64 - kBucketBits;
inline uint32_t BucketOf(uint64_t position) {
  return static_cast<uint32_t>(position >> kBucketShift);
}
inline uint64_t BucketStart(uint32_t bucket) { return uint64_t{bucket} << kBucketShift; }

// The bucket as the SQL expression `position >> 48` reads it from the position column (the top
// bit flipped, shifted arithmetically): records are indexed by it (metadata_schema.cc), not by
// their full position. An index entry of (collection, bucket, key) is about a third of one of
// (collection, position, key, hash), and an apply writes entries in random order, dirtying
// every page of the index: its size is what an apply pays for.
static_assert(kBucketShift == 48, "the SQL of the bucket index says position >> 48");
inline int64_t BucketColumn(uint32_t bucket) {
  return static_cast<int64_t>(bucket) - (int64_t{1} << (kBucketBits - 1));
}

}  // namespace lockstep::store
