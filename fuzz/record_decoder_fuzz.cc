// libFuzzer target for the record and delta decoders. Bytes from a peer are hostile: each decoder
// must refuse them or return a value that re-encodes to exactly those bytes (the codec is
// canonical), and a decoded record must merge without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/codec.h"
#include "core/merge.h"
#include "core/policy.h"

namespace {

using lockstep::core::DecodeDelta;
using lockstep::core::DecodeRecord;
using lockstep::core::EncodeDelta;
using lockstep::core::EncodeRecord;
using lockstep::core::MergePolicy;
using lockstep::core::Record;

void MergeDecoded(const Record& record) {
  const MergePolicy policy;
  Record fresh(record.key());
  MergeInto(fresh, record, policy);
  Record twice = record;
  MergeInto(twice, record, policy);
  if (!(twice == record)) std::abort();  // merging a record into itself changes nothing
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto record = DecodeRecord(bytes); record.has_value()) {
    if (EncodeRecord(*record) != bytes) std::abort();
    MergeDecoded(*record);
  }
  if (auto delta = DecodeDelta(bytes); delta.has_value()) {
    if (EncodeDelta(*delta) != bytes) std::abort();
    MergeDecoded(delta->record);
  }
  return 0;
}
