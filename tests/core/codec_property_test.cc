// Property tests of the canonical record codec: encodings round-trip both ways, and hostile bytes
// (random, truncated, corrupted) are refused or decode to a record that re-encodes to them.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "core/codec.h"
#include "core/delta.h"
#include "core/record.h"

namespace lockstep::core {
namespace {

// A container of `min`..`max - 1` elements.
template <typename Container, typename T>
rc::Gen<Container> GenSized(int min, int max, rc::Gen<T> element) {
  return rc::gen::mapcat(rc::gen::inRange(min, max), [element](int n) {
    return rc::gen::container<Container>(static_cast<size_t>(n), element);
  });
}

rc::Gen<std::string> GenShortBytes() {
  return GenSized<std::string>(0, 8, rc::gen::arbitrary<char>());
}

rc::Gen<NodeId> GenNodeId() {
  // Mostly a few fixed nodes, so that records share them; sometimes any 16 bytes.
  return rc::gen::oneOf(
      rc::gen::map(rc::gen::inRange(0, 4),
                   [](int i) {
                     NodeId id;
                     id.bytes[15] = static_cast<uint8_t>(i);
                     return id;
                   }),
      rc::gen::map(rc::gen::container<std::string>(16, rc::gen::arbitrary<char>()),
                   [](const std::string& raw) { return NodeId::FromBytes(raw); }));
}

rc::Gen<uint64_t> GenCounter() {
  return rc::gen::oneOf(rc::gen::inRange<uint64_t>(1, 5),
                        rc::gen::inRange<uint64_t>(1, std::numeric_limits<uint64_t>::max()));
}

rc::Gen<Value> GenValue() {
  return rc::gen::oneOf(
      rc::gen::just(Value::Null()), rc::gen::map(rc::gen::arbitrary<int64_t>(), Value::Int),
      rc::gen::map(rc::gen::arbitrary<double>(), Value::Float),
      rc::gen::map(rc::gen::element(0.0, -0.0, std::numeric_limits<double>::quiet_NaN(),
                                    std::numeric_limits<double>::infinity()),
                   Value::Float),
      rc::gen::map(GenShortBytes(), Value::Text), rc::gen::map(GenShortBytes(), Value::Bytes));
}

VersionVector GenVersionVector() {
  const auto entries = *GenSized<std::vector<std::pair<NodeId, uint64_t>>>(
      0, 5, rc::gen::pair(GenNodeId(), GenCounter()));
  return VersionVector(entries);
}

// A record that keeps the invariants of real records: fields sorted by name, versions sorted by
// dot, every dot's node in the version vector and its dot covered by it, and one HLC per dot (a
// dot names exactly one write, whichever fields it set).
Record GenRecord() {
  Record record(*GenShortBytes());
  record.mutable_vv() = GenVersionVector();
  const auto& entries = record.vv().entries();
  if (entries.empty()) return record;
  const auto generated = *GenSized<std::vector<std::string>>(0, 5, GenShortBytes());
  const std::set<std::string> names(generated.begin(), generated.end());
  // The record's writes: each dot gets its HLC the first time a version names it, and keeps it.
  std::map<Dot, Hlc> writes;
  std::map<std::string, Field> fields;
  for (const std::string& name : names) {
    std::map<Dot, Version> versions;
    const int count = *rc::gen::inRange(1, 4);
    for (int i = 0; i < count; ++i) {
      // Often a dot already written, so that fields share writes as real records' do.
      Dot dot;
      if (!writes.empty() && *rc::gen::arbitrary<bool>()) {
        dot = std::next(writes.begin(), *rc::gen::inRange<size_t>(0, writes.size()))->first;
      } else {
        const auto& [node, top] = entries[*rc::gen::inRange<size_t>(0, entries.size())];
        // A counter in [1, top], so that the version vector covers the dot.
        dot = {node, *rc::gen::inRange<uint64_t>(0, top) + 1};
      }
      auto write = writes.find(dot);
      if (write == writes.end()) {
        write = writes.emplace(dot, Hlc{*rc::gen::arbitrary<uint64_t>()}).first;
      }
      versions.emplace(dot, Version{*GenValue(), dot, write->second});
    }
    Field& field = fields[name];
    for (auto& [dot, version] : versions) field.versions.push_back(version);
  }
  for (auto& named : fields) record.mutable_fields().emplace_back(named);
  return record;
}

// Either an error, or a record (or delta) that re-encodes to exactly `bytes`.
void CheckDecodersOn(const std::string& bytes) {
  auto record = DecodeRecord(bytes);
  if (record.has_value()) RC_ASSERT(EncodeRecord(*record) == bytes);
  auto delta = DecodeDelta(bytes);
  if (delta.has_value()) RC_ASSERT(EncodeDelta(*delta) == bytes);
}

RC_GTEST_PROP(CodecPropertyTest, RecordsRoundTrip, ()) {
  const Record record = GenRecord();
  const std::string bytes = EncodeRecord(record);
  auto decoded = DecodeRecord(bytes);
  if (!decoded.has_value()) RC_FAIL(decoded.error().ToString());
  RC_ASSERT(*decoded == record);
  RC_ASSERT(EncodeRecord(*decoded) == bytes);
}

RC_GTEST_PROP(CodecPropertyTest, WritesTableListsEachDistinctDotOnce, ()) {
  const Record record = GenRecord();
  std::set<Dot> dots;
  for (const auto& [name, field] : record.fields()) {
    for (const Version& version : field.versions) dots.insert(version.dot);
  }
  const std::string bytes = EncodeRecord(record);
  base::ByteReader in(bytes);
  RC_ASSERT(in.ReadByte("format").has_value());
  RC_ASSERT(in.ReadLengthPrefixed("key", kMaxKeyBytes).has_value());
  RC_ASSERT(DecodeVersionVector(in).has_value());
  auto count = in.ReadVarint("write count");
  RC_ASSERT(count.has_value());
  RC_ASSERT(*count == dots.size());
}

RC_GTEST_PROP(CodecPropertyTest, DeltasRoundTrip, ()) {
  const RecordDelta delta{GenRecord(), GenVersionVector()};
  const std::string bytes = EncodeDelta(delta);
  auto decoded = DecodeDelta(bytes);
  if (!decoded.has_value()) RC_FAIL(decoded.error().ToString());
  RC_ASSERT(*decoded == delta);
  RC_ASSERT(EncodeDelta(*decoded) == bytes);
}

RC_GTEST_PROP(CodecPropertyTest, RandomBytesAreRefusedOrCanonical, ()) {
  // Half the inputs start like a record, so that decoding gets past the format byte.
  auto bytes = *rc::gen::container<std::string>(rc::gen::arbitrary<char>());
  if (*rc::gen::arbitrary<bool>()) bytes.insert(bytes.begin(), static_cast<char>(kRecordFormat));
  CheckDecodersOn(bytes);
}

RC_GTEST_PROP(CodecPropertyTest, EveryTruncationIsRefused, ()) {
  const Record record = GenRecord();
  const std::string bytes = EncodeRecord(record);
  const std::string delta_bytes = EncodeDelta({record, GenVersionVector()});
  for (size_t n = 0; n < bytes.size(); ++n) {
    RC_ASSERT(!DecodeRecord(bytes.substr(0, n)).has_value());
    CheckDecodersOn(bytes.substr(0, n));
  }
  for (size_t n = 0; n < delta_bytes.size(); ++n) {
    RC_ASSERT(!DecodeDelta(delta_bytes.substr(0, n)).has_value());
    CheckDecodersOn(delta_bytes.substr(0, n));
  }
}

RC_GTEST_PROP(CodecPropertyTest, CorruptedEncodingsAreRefusedOrCanonical, ()) {
  const Record record = GenRecord();
  const bool as_delta = *rc::gen::arbitrary<bool>();
  std::string bytes = as_delta ? EncodeDelta({record, GenVersionVector()}) : EncodeRecord(record);
  const int flips = *rc::gen::inRange(1, 4);
  for (int i = 0; i < flips; ++i) {
    const size_t at = *rc::gen::inRange<size_t>(0, bytes.size());
    bytes[at] = static_cast<char>(bytes[at] ^ *rc::gen::inRange(1, 256));
  }
  CheckDecodersOn(bytes);
}

}  // namespace
}  // namespace lockstep::core
