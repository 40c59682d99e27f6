#include "core/codec.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace lockstep::core {
namespace {

using base::ByteReader;
using base::ByteWriter;

constexpr size_t kNodeIdBytes = 16;
constexpr size_t kMinWriteBytes = 1 + 1 + 8;  // node, counter, hlc
constexpr size_t kMinVersionBytes = 1 + 1;    // write, null value

using WriteList = std::vector<std::pair<Dot, Hlc>>;

// Lists reused by every encoding and decoding of a record on this thread: a record's writes are
// needed only while it is encoded or decoded, and allocating them for each record was a visible
// part of reading a change log of a million records. None of their users nests another.
struct Scratch {
  WriteList writes;
  std::vector<uint8_t> used;  // per write: whether a version names it

  // A hostile record may have grown them large: that memory is not kept.
  void Trim() {
    constexpr size_t kKeep = 1024;
    if (writes.capacity() > kKeep) WriteList().swap(writes);
    if (used.capacity() > kKeep) std::vector<uint8_t>().swap(used);
  }
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// The distinct writes of a record, sorted by dot, into `writes`. Usually one: an insert or update
// sets every field it touches with the same dot and HLC, so naming it once saves ten bytes per
// field.
void Writes(const Record& record, WriteList& writes) {
  writes.clear();
  for (const auto& [name, field] : record.fields()) {
    for (const Version& version : field.versions) writes.emplace_back(version.dot, version.hlc);
  }
  std::sort(writes.begin(), writes.end());
  writes.erase(std::unique(writes.begin(), writes.end()), writes.end());
}

size_t IndexOf(const WriteList& writes, const Version& version) {
  auto it =
      std::lower_bound(writes.begin(), writes.end(), std::make_pair(version.dot, version.hlc));
  return static_cast<size_t>(it - writes.begin());
}

void EncodeRecordTo(const Record& record, ByteWriter& out) {
  out.PutByte(kRecordFormat);
  out.PutLengthPrefixed(record.key());
  EncodeVersionVector(record.vv(), out);
  const auto& vv_entries = record.vv().entries();
  Scratch& scratch = ThreadScratch();
  WriteList& writes = scratch.writes;
  Writes(record, writes);
  out.PutVarint(writes.size());
  for (const auto& [dot, hlc] : writes) {
    // Every dot's node is in the record's vv (an invariant), so an index suffices.
    auto entry = std::lower_bound(
        vv_entries.begin(), vv_entries.end(), dot.node,
        [](const VersionVector::Entry& e, const NodeId& n) { return e.first < n; });
    out.PutVarint(static_cast<uint64_t>(entry - vv_entries.begin()));
    out.PutVarint(dot.counter);
    out.PutFixed64(hlc.raw);
  }
  out.PutVarint(record.fields().size());
  for (const auto& [name, field] : record.fields()) {
    out.PutLengthPrefixed(name);
    out.PutVarint(field.versions.size());
    for (const Version& version : field.versions) {
      out.PutVarint(IndexOf(writes, version));
      EncodeValue(version.value, out);
    }
  }
  scratch.Trim();
}

Status DecodeWrites(ByteReader& in, const VersionVector& vv, WriteList& writes) {
  LOCKSTEP_ASSIGN_OR_RETURN(size_t count, in.ReadCount("write count", kMinWriteBytes));
  writes.clear();
  writes.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(uint64_t node_index, in.ReadVarint("dot node"));
    if (node_index >= vv.size()) {
      return DataLoss("dot names a node missing from the version vector");
    }
    Dot dot{vv.entries()[node_index].first, 0};
    LOCKSTEP_ASSIGN_OR_RETURN(dot.counter, in.ReadVarint("dot counter"));
    if (dot.counter == 0) return DataLoss("dot counter is zero");
    if (!vv.Covers(dot)) return DataLoss("dot is not covered by the version vector");
    if (!writes.empty() && !(writes.back().first < dot)) return DataLoss("writes out of order");
    Hlc hlc;
    LOCKSTEP_ASSIGN_OR_RETURN(hlc.raw, in.ReadFixed64("hlc"));
    writes.emplace_back(dot, hlc);
  }
  return Status::Ok();
}

Result<Field> DecodeField(ByteReader& in, const WriteList& writes, std::vector<uint8_t>& used) {
  LOCKSTEP_ASSIGN_OR_RETURN(size_t count, in.ReadCount("version count", kMinVersionBytes));
  if (count == 0) return DataLoss("field without versions");
  Field field;
  field.versions.reserve(count);
  size_t previous = 0;
  for (size_t i = 0; i < count; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(uint64_t index, in.ReadVarint("write index"));
    if (index >= writes.size()) return DataLoss("version names a write the record lacks");
    // Writes are sorted by dot, so ascending indexes keep the versions sorted by dot.
    if (i > 0 && index <= previous) return DataLoss("field versions out of order");
    previous = static_cast<size_t>(index);
    used[previous] = 1;
    LOCKSTEP_ASSIGN_OR_RETURN(Value value, DecodeValue(in));
    field.versions.push_back(
        Version{std::move(value), writes[previous].first, writes[previous].second});
  }
  return field;
}

Result<Record> DecodeRecordFrom(ByteReader& in) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint8_t format, in.ReadByte("record format"));
  if (format != kRecordFormat) {
    return DataLoss("unknown record format " + std::to_string(format));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string_view key, in.ReadLengthPrefixed("key", kMaxKeyBytes));
  Record record{std::string(key)};
  LOCKSTEP_ASSIGN_OR_RETURN(record.mutable_vv(), DecodeVersionVector(in));
  Scratch& scratch = ThreadScratch();
  const WriteList& writes = scratch.writes;
  std::vector<uint8_t>& used = scratch.used;
  LOCKSTEP_RETURN_IF_ERROR(DecodeWrites(in, record.vv(), scratch.writes));
  used.assign(writes.size(), 0);
  LOCKSTEP_ASSIGN_OR_RETURN(size_t count, in.ReadCount("field count", 2 + kMinVersionBytes));
  auto& fields = record.mutable_fields();
  fields.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::string_view name,
                              in.ReadLengthPrefixed("field name", kMaxFieldNameBytes));
    if (!fields.empty() && !(fields.back().first < name)) {
      return DataLoss("field names out of order or repeated");
    }
    LOCKSTEP_ASSIGN_OR_RETURN(Field field, DecodeField(in, writes, used));
    fields.emplace_back(std::string(name), std::move(field));
  }
  // A write no version names has no canonical place: refuse it.
  const bool unused = std::find(used.begin(), used.end(), 0) != used.end();
  scratch.Trim();
  if (unused) return DataLoss("record lists a write that no field holds");
  return record;
}

}  // namespace

void EncodeValue(const Value& value, ByteWriter& out) {
  out.PutByte(static_cast<uint8_t>(value.type()));
  switch (value.type()) {
    case ValueType::kNull:
      return;
    case ValueType::kInt:
      out.PutSignedVarint(value.as_int());
      return;
    case ValueType::kFloat:
      out.PutFixed64(std::bit_cast<uint64_t>(value.as_float()));
      return;
    case ValueType::kText:
      out.PutLengthPrefixed(value.as_text());
      return;
    case ValueType::kBlob:
      out.PutLengthPrefixed(value.as_blob());
      return;
  }
}

Result<Value> DecodeValue(ByteReader& in) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint8_t tag, in.ReadByte("value tag"));
  switch (static_cast<ValueType>(tag)) {
    case ValueType::kNull:
      return Value::Null();
    case ValueType::kInt: {
      LOCKSTEP_ASSIGN_OR_RETURN(int64_t v, in.ReadSignedVarint("integer value"));
      return Value::Int(v);
    }
    case ValueType::kFloat: {
      LOCKSTEP_ASSIGN_OR_RETURN(uint64_t bits, in.ReadFixed64("float value"));
      const double v = std::bit_cast<double>(bits);
      Value value = Value::Float(v);
      if (std::bit_cast<uint64_t>(value.as_float()) != bits) return DataLoss("non-canonical NaN");
      return value;
    }
    case ValueType::kText: {
      LOCKSTEP_ASSIGN_OR_RETURN(std::string_view v,
                                in.ReadLengthPrefixed("text value", kMaxValueBytes));
      return Value::Text(std::string(v));
    }
    case ValueType::kBlob: {
      LOCKSTEP_ASSIGN_OR_RETURN(std::string_view v,
                                in.ReadLengthPrefixed("blob value", kMaxValueBytes));
      return Value::Bytes(std::string(v));
    }
  }
  return DataLoss("unknown value tag " + std::to_string(tag));
}

void EncodeVersionVector(const VersionVector& vv, ByteWriter& out) {
  out.PutVarint(vv.size());
  for (const auto& [node, counter] : vv.entries()) {
    out.PutBytes(std::string_view(reinterpret_cast<const char*>(node.bytes.data()), kNodeIdBytes));
    out.PutVarint(counter);
  }
}

Result<VersionVector> DecodeVersionVector(ByteReader& in) {
  LOCKSTEP_ASSIGN_OR_RETURN(size_t count, in.ReadCount("version vector size", kNodeIdBytes + 1));
  std::vector<VersionVector::Entry> entries;
  entries.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::string_view raw, in.ReadBytes(kNodeIdBytes, "node id"));
    const NodeId node = NodeId::FromBytes(raw);
    if (!entries.empty() && !(entries.back().first < node)) {
      return DataLoss("version vector nodes out of order or repeated");
    }
    LOCKSTEP_ASSIGN_OR_RETURN(uint64_t counter, in.ReadVarint("version vector counter"));
    if (counter == 0) return DataLoss("version vector counter is zero");
    entries.emplace_back(node, counter);
  }
  return VersionVector(std::move(entries));
}

std::string EncodeRecord(const Record& record) {
  std::string bytes;
  bytes.reserve(64 + 24 * record.fields().size());  // a typical record needs no regrowth
  ByteWriter out(bytes);
  EncodeRecordTo(record, out);
  return bytes;
}

Result<Record> DecodeRecord(std::string_view bytes) {
  ByteReader in(bytes);
  LOCKSTEP_ASSIGN_OR_RETURN(Record record, DecodeRecordFrom(in));
  if (!in.empty()) return DataLoss("trailing bytes after record");
  return record;
}

std::string EncodeDelta(const RecordDelta& delta) {
  std::string bytes;
  ByteWriter out(bytes);
  EncodeRecordTo(delta.record, out);
  EncodeVersionVector(delta.base, out);
  return bytes;
}

Result<RecordDelta> DecodeDelta(std::string_view bytes) {
  ByteReader in(bytes);
  RecordDelta delta;
  LOCKSTEP_ASSIGN_OR_RETURN(delta.record, DecodeRecordFrom(in));
  LOCKSTEP_ASSIGN_OR_RETURN(delta.base, DecodeVersionVector(in));
  if (!in.empty()) return DataLoss("trailing bytes after delta");
  return delta;
}

}  // namespace lockstep::core
