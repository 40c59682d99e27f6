#include "store/record_item.h"

#include <algorithm>

#include "base/bytes.h"

namespace lockstep::store {

RecordItem ItemOf(std::string_view key, std::string_view encoding) {
  return {reconcile::ItemPosition(key), reconcile::ItemHash(key, encoding)};
}

std::optional<int64_t> TombstoneMillis(const core::Record& record) {
  const core::Field* exists = record.Find(core::kExistsField);
  if (exists == nullptr) return std::nullopt;
  uint64_t latest = 0;
  for (const core::Version& version : exists->versions) {
    if (version.value != Value::Int(0)) return std::nullopt;
    latest = std::max(latest, version.hlc.millis());
  }
  return static_cast<int64_t>(latest);
}

std::string HashColumn(const reconcile::Hash128& hash) {
  std::string bytes;
  AppendHashColumn(hash, bytes);
  return bytes;
}

void AppendHashColumn(const reconcile::Hash128& hash, std::string& out) {
  base::ByteWriter writer(out);
  writer.PutFixed64(hash.hi);
  writer.PutFixed64(hash.lo);
}

Result<reconcile::Hash128> HashFromColumn(std::string_view bytes) {
  base::ByteReader in(bytes);
  reconcile::Hash128 hash;
  LOCKSTEP_ASSIGN_OR_RETURN(hash.hi, in.ReadFixed64("item hash"));
  LOCKSTEP_ASSIGN_OR_RETURN(hash.lo, in.ReadFixed64("item hash"));
  if (!in.empty()) return DataLoss("item hash is not 16 bytes");
  return hash;
}

}  // namespace lockstep::store
