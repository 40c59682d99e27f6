// The canonical binary encoding of values, version vectors, records and deltas.
//
// Canonical: a record has exactly one encoding, so replicas holding the same state hold the same
// bytes, and decode(encode(r)) == r, encode(decode(b)) == b for every b that decodes. The decoder
// treats its input as hostile and refuses anything non-canonical.
//
//   record   := format:u8(=1) key:bytes vv writes fields
//   vv       := count:varint { node:16 bytes  counter:varint(>0) }      nodes strictly ascending
//   writes   := count:varint { node:varint(index into vv) counter:varint(>0) hlc:fixed64 }
//               dots strictly ascending; the vv covers each; every write is named below
//   fields   := count:varint { name:bytes versions }                      names strictly ascending
//   versions := count:varint(>0) { write:varint(index into writes) value }
//               write indexes strictly ascending (so versions are sorted by dot)
//   value    := 0x00                          null
//             | 0x01 zigzag:varint            int64
//             | 0x02 bits:fixed64             float64, NaN canonical
//             | 0x03 bytes                    text
//             | 0x04 bytes                    blob
//   delta    := record base:vv
//   bytes    := length:varint data            varints are LEB128, minimal; fixed64 big-endian
//
// See docs/FORMATS.md.
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "core/delta.h"
#include "core/record.h"
#include "lockstep/status.h"
#include "lockstep/value.h"

namespace lockstep::core {

inline constexpr uint8_t kRecordFormat = 1;
inline constexpr size_t kMaxKeyBytes = 1 << 20;
inline constexpr size_t kMaxFieldNameBytes = 4 << 10;
inline constexpr size_t kMaxValueBytes = size_t{1} << 30;

void EncodeValue(const Value& value, base::ByteWriter& out);
Result<Value> DecodeValue(base::ByteReader& in);

void EncodeVersionVector(const VersionVector& vv, base::ByteWriter& out);
Result<VersionVector> DecodeVersionVector(base::ByteReader& in);

std::string EncodeRecord(const Record& record);
// Errors are kDataLoss saying what is malformed; trailing bytes are an error.
Result<Record> DecodeRecord(std::string_view bytes);

std::string EncodeDelta(const RecordDelta& delta);
Result<RecordDelta> DecodeDelta(std::string_view bytes);

}  // namespace lockstep::core
