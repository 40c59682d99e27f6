#include "core/codec.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "base/bytes.h"
#include "core/local_write.h"
#include "core/merge.h"

namespace lockstep::core {
namespace {

using base::ByteReader;
using base::ByteWriter;

NodeId Node(uint8_t n) {
  NodeId id;
  id.bytes[0] = static_cast<uint8_t>(0xa0 + n);
  id.bytes[15] = n;
  return id;
}

void Write(Record& record, uint8_t node, uint64_t counter, uint64_t millis,
           std::vector<std::pair<std::string, Value>> fields, const MergePolicy& policy = {},
           bool exists = true) {
  LocalWrite write{{Node(node), counter}, Hlc::Make(millis, 0), std::move(fields), exists};
  ASSERT_TRUE(ApplyLocalWrite(record, write, policy).has_value());
}

// Every kind of value, two nodes, a manual sibling set and a counter.
Record RichRecord() {
  MergePolicy policy;
  policy.overrides["notes"] = FieldPolicy::kManual;
  policy.overrides["stock"] = FieldPolicy::kCounter;
  Record a("customer/42"), b("customer/42");
  Write(a, 1, 1, 100,
        {{"null", Value::Null()},
         {"int", Value::Int(std::numeric_limits<int64_t>::min())},
         {"float", Value::Float(-0.0)},
         {"nan", Value::Float(std::nan(""))},
         {"text", Value::Text("grüße, 世界 🎉")},
         {"blob", Value::Bytes(std::string("\x00\xff\x00", 3))},
         {"empty_text", Value::Text("")},
         {"empty_blob", Value::Bytes("")},
         {"notes", Value::Text("from a")},
         {"stock", Value::Int(10)}},
        policy);
  MergeInto(b, a, policy);
  Write(a, 1, 2, 200, {{"notes", Value::Text("a again")}, {"stock", Value::Int(12)}}, policy);
  Write(b, 2, 1, 150, {{"notes", Value::Text("from b")}, {"stock", Value::Int(7)}}, policy);
  MergeInto(a, b, policy);
  return a;
}

// The HLC of the hand-built writes unless a test says otherwise.
constexpr uint64_t kHandBuiltHlc = uint64_t{5} << 16;

// One entry of a record's writes table: the dot (its node as an index into the record's version
// vector, and its counter) and the HLC.
std::string WriteBytes(uint64_t node_index, uint64_t counter, uint64_t hlc = kHandBuiltHlc) {
  std::string out;
  ByteWriter writer(out);
  writer.PutVarint(node_index);
  writer.PutVarint(counter);
  writer.PutFixed64(hlc);
  return out;
}

// A field whose versions name the given writes (indexes into the writes table), in that order,
// each with the value `value`.
std::string FieldBytes(std::string_view name, std::vector<uint64_t> write_indexes,
                       const Value& value = Value::Int(1)) {
  std::string out;
  ByteWriter writer(out);
  writer.PutLengthPrefixed(name);
  writer.PutVarint(write_indexes.size());
  for (uint64_t index : write_indexes) {
    writer.PutVarint(index);
    EncodeValue(value, writer);
  }
  return out;
}

// A field with one version, naming write `write_index`, value Int(1).
std::string FieldBytes(std::string_view name, uint64_t write_index = 0) {
  return FieldBytes(name, std::vector<uint64_t>{write_index});
}

// The bytes of a record before its writes table: format, key "k" and the version vector.
std::string HeaderBytes(uint8_t format, const VersionVector& vv) {
  std::string out;
  ByteWriter writer(out);
  writer.PutByte(format);
  writer.PutLengthPrefixed("k");
  EncodeVersionVector(vv, writer);
  return out;
}

// A record with key "k", a version vector {Node(1): 2} (unless given), and the given writes
// table entries and field encodings.
std::string RecordBytes(uint8_t format, std::vector<std::string> writes,
                        std::vector<std::string> fields,
                        VersionVector vv = VersionVector({{Node(1), 2}})) {
  std::string out = HeaderBytes(format, vv);
  ByteWriter writer(out);
  writer.PutVarint(writes.size());
  for (const std::string& write : writes) writer.PutBytes(write);
  writer.PutVarint(fields.size());
  for (const std::string& field : fields) writer.PutBytes(field);
  return out;
}

void ExpectDataLoss(std::string_view bytes, std::string_view message_part) {
  Result<Record> decoded = DecodeRecord(bytes);
  ASSERT_FALSE(decoded.has_value()) << "expected a failure mentioning " << message_part;
  EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(decoded.error().message().find(message_part), std::string::npos)
      << decoded.error().message();
}

TEST(CodecTest, RichRecordRoundTrips) {
  const Record record = RichRecord();
  ASSERT_EQ(record.Find("notes")->versions.size(), 2u);  // siblings survive encoding
  ASSERT_EQ(record.Find("stock")->versions.size(), 2u);  // one contribution per node
  const std::string bytes = EncodeRecord(record);
  Result<Record> decoded = DecodeRecord(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(*decoded, record);
  EXPECT_EQ(EncodeRecord(*decoded), bytes);
}

TEST(CodecTest, EveryValueTypeRoundTripsExactly) {
  const std::vector<Value> values = {
      Value::Null(),
      Value::Int(0),
      Value::Int(-1),
      Value::Int(std::numeric_limits<int64_t>::max()),
      Value::Int(std::numeric_limits<int64_t>::min()),
      Value::Float(0.0),
      Value::Float(-0.0),
      Value::Float(std::numeric_limits<double>::infinity()),
      Value::Float(std::numeric_limits<double>::denorm_min()),
      Value::Float(std::nan("")),
      Value::Text(""),
      Value::Text("ünïcödé ✓ 𝄞"),
      Value::Text(std::string("nul\0inside", 10)),
      Value::Bytes(""),
      Value::Bytes(std::string(256, '\xff')),
  };
  for (const Value& value : values) {
    std::string out;
    ByteWriter writer(out);
    EncodeValue(value, writer);
    ByteReader reader(out);
    Result<Value> decoded = DecodeValue(reader);
    ASSERT_TRUE(decoded.has_value()) << value.ToString();
    EXPECT_EQ(*decoded, value) << value.ToString();
    EXPECT_EQ(decoded->type(), value.type());
    EXPECT_TRUE(reader.empty());
  }
}

TEST(CodecTest, OneMebibyteBlobRoundTrips) {
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  Record record("big");
  Write(record, 1, 1, 1, {{"payload", Value::Bytes(big)}});
  Result<Record> decoded = DecodeRecord(EncodeRecord(record));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->Find("payload")->versions[0].value.as_blob(), big);
  EXPECT_EQ(*decoded, record);
}

TEST(CodecTest, EmptyRecordRoundTrips) {
  const Record record("");
  Result<Record> decoded = DecodeRecord(EncodeRecord(record));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, record);
}

TEST(CodecTest, EqualRecordsEncodeEqualWhateverTheOrderOfMerging) {
  MergePolicy policy;
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}, {"y", Value::Text("a")}});
  Write(b, 2, 1, 20, {{"x", Value::Int(2)}});
  Write(c, 3, 1, 30, {{"z", Value::Float(0.5)}});
  Record abc = a;
  MergeInto(abc, b, policy);
  MergeInto(abc, c, policy);
  Record cba = c;
  MergeInto(cba, b, policy);
  MergeInto(cba, a, policy);
  ASSERT_EQ(abc, cba);
  EXPECT_EQ(EncodeRecord(abc), EncodeRecord(cba));
}

TEST(CodecTest, DifferentRecordsEncodeDifferently) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}});
  Write(b, 1, 1, 10, {{"x", Value::Float(1.0)}});
  EXPECT_NE(EncodeRecord(a), EncodeRecord(b));
  Record c("k"), d("k");
  Write(c, 1, 1, 10, {{"x", Value::Text("1")}});
  Write(d, 1, 1, 10, {{"x", Value::Bytes("1")}});
  EXPECT_NE(EncodeRecord(c), EncodeRecord(d));
}

TEST(CodecTest, HandBuiltRecordDecodes) {
  // Guards the rejection tests below: their only fault is the one each introduces.
  const std::string bytes = RecordBytes(kRecordFormat, {WriteBytes(0, 2)}, {FieldBytes("x", 0)});
  Result<Record> decoded = DecodeRecord(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(decoded->key(), "k");
  EXPECT_EQ(decoded->vv(), VersionVector({{Node(1), 2}}));
  ASSERT_EQ(decoded->fields().size(), 1u);
  ASSERT_NE(decoded->Find("x"), nullptr);
  ASSERT_EQ(decoded->Find("x")->versions.size(), 1u);
  EXPECT_EQ(decoded->Find("x")->versions[0],
            (Version{Value::Int(1), {Node(1), 2}, Hlc{kHandBuiltHlc}}));
  EXPECT_EQ(EncodeRecord(*decoded), bytes);  // and the helpers build canonical bytes
}

TEST(CodecTest, HandBuiltRecordWithSharedWritesDecodes) {
  // Two writes, one named by both fields: each version takes its dot and HLC from the table.
  const VersionVector vv({{Node(1), 2}, {Node(2), 1}});
  const std::string bytes =
      RecordBytes(kRecordFormat, {WriteBytes(0, 2, 7), WriteBytes(1, 1, 9)},
                  {FieldBytes("x", {0, 1}, Value::Text("v")), FieldBytes("y", {1})}, vv);
  Result<Record> decoded = DecodeRecord(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(decoded->vv(), vv);
  ASSERT_NE(decoded->Find("x"), nullptr);
  ASSERT_NE(decoded->Find("y"), nullptr);
  EXPECT_EQ(decoded->Find("x")->versions,
            (std::vector<Version>{{Value::Text("v"), {Node(1), 2}, Hlc{7}},
                                  {Value::Text("v"), {Node(2), 1}, Hlc{9}}}));
  EXPECT_EQ(decoded->Find("y")->versions,
            (std::vector<Version>{{Value::Int(1), {Node(2), 1}, Hlc{9}}}));
  EXPECT_EQ(EncodeRecord(*decoded), bytes);
}

TEST(CodecTest, DecodeRejectsWrongFormatByte) {
  ExpectDataLoss(RecordBytes(0, {WriteBytes(0, 1)}, {FieldBytes("x", 0)}), "format");
  ExpectDataLoss(RecordBytes(2, {WriteBytes(0, 1)}, {FieldBytes("x", 0)}), "format");
}

TEST(CodecTest, DecodeRejectsTrailingBytes) {
  std::string bytes = EncodeRecord(RichRecord());
  bytes.push_back('\0');
  ExpectDataLoss(bytes, "trailing");
}

TEST(CodecTest, DecodeRejectsEveryTruncation) {
  const std::string bytes = EncodeRecord(RichRecord());
  for (size_t length = 0; length < bytes.size(); ++length) {
    Result<Record> decoded = DecodeRecord(std::string_view(bytes).substr(0, length));
    ASSERT_FALSE(decoded.has_value()) << length;
    ASSERT_EQ(decoded.error().code(), StatusCode::kDataLoss) << length;
  }
}

TEST(CodecTest, DecodeRejectsFieldsOutOfOrderOrRepeated) {
  const std::vector<std::string> writes = {WriteBytes(0, 1), WriteBytes(0, 2)};
  ASSERT_TRUE(
      DecodeRecord(RecordBytes(kRecordFormat, writes, {FieldBytes("x", 0), FieldBytes("y", 1)}))
          .has_value());
  ExpectDataLoss(RecordBytes(kRecordFormat, writes, {FieldBytes("y", 0), FieldBytes("x", 1)}),
                 "field names out of order");
  ExpectDataLoss(RecordBytes(kRecordFormat, writes, {FieldBytes("x", 0), FieldBytes("x", 1)}),
                 "field names out of order");
}

TEST(CodecTest, DecodeRejectsVersionsOutOfOrderOrRepeated) {
  // Versions name writes by index, strictly ascending (so sorted by dot). Field "y" names every
  // write, so that a rejected "x" is the record's only fault.
  const std::vector<std::string> writes = {WriteBytes(0, 1), WriteBytes(0, 2)};
  auto record = [&](std::vector<uint64_t> indexes) {
    return RecordBytes(
        kRecordFormat, writes,
        {FieldBytes("x", std::move(indexes), Value::Null()), FieldBytes("y", {0, 1})});
  };
  Result<Record> decoded = DecodeRecord(record({0, 1}));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  ASSERT_EQ(decoded->Find("x")->versions.size(), 2u);
  EXPECT_EQ(decoded->Find("x")->versions[0].dot, (Dot{Node(1), 1}));
  EXPECT_EQ(decoded->Find("x")->versions[1].dot, (Dot{Node(1), 2}));
  ExpectDataLoss(record({1, 0}), "field versions out of order");
  ExpectDataLoss(record({1, 1}), "field versions out of order");
  ExpectDataLoss(record({0, 0}), "field versions out of order");
}

TEST(CodecTest, DecodeRejectsVersionWriteIndexesNotAscendingAmongSeveral) {
  const VersionVector vv({{Node(1), 1}, {Node(2), 1}, {Node(3), 1}});
  const std::vector<std::string> writes = {WriteBytes(0, 1), WriteBytes(1, 1), WriteBytes(2, 1)};
  auto record = [&](std::vector<uint64_t> indexes) {
    return RecordBytes(kRecordFormat, writes, {FieldBytes("x", std::move(indexes))}, vv);
  };
  ASSERT_TRUE(DecodeRecord(record({0, 1, 2})).has_value());
  ExpectDataLoss(record({0, 2, 1}), "field versions out of order");
  ExpectDataLoss(record({1, 0, 2}), "field versions out of order");
  ExpectDataLoss(record({2, 1, 0}), "field versions out of order");
  ExpectDataLoss(record({0, 1, 1, 2}), "field versions out of order");
}

TEST(CodecTest, DecodeRejectsWritesOutOfOrderOrRepeated) {
  // Writes are sorted by dot: node (by its id, which is its index's order), then counter.
  const VersionVector vv({{Node(1), 2}, {Node(2), 2}});
  auto record = [&](std::vector<std::string> writes) {
    return RecordBytes(kRecordFormat, std::move(writes), {FieldBytes("x", {0, 1})}, vv);
  };
  ASSERT_TRUE(DecodeRecord(record({WriteBytes(0, 1), WriteBytes(0, 2)})).has_value());
  ASSERT_TRUE(DecodeRecord(record({WriteBytes(0, 2), WriteBytes(1, 1)})).has_value());
  ExpectDataLoss(record({WriteBytes(0, 2), WriteBytes(0, 1)}), "writes out of order");
  ExpectDataLoss(record({WriteBytes(1, 1), WriteBytes(0, 2)}), "writes out of order");
  // The same write twice, and one dot with two HLCs: a dot names exactly one write.
  ExpectDataLoss(record({WriteBytes(0, 1), WriteBytes(0, 1)}), "writes out of order");
  ExpectDataLoss(record({WriteBytes(0, 1, 3), WriteBytes(0, 1, 4)}), "writes out of order");
  ExpectDataLoss(record({WriteBytes(0, 1, 4), WriteBytes(0, 1, 3)}), "writes out of order");
}

TEST(CodecTest, DecodeRejectsWriteIndexOutOfRange) {
  ExpectDataLoss(RecordBytes(kRecordFormat, {WriteBytes(0, 1)}, {FieldBytes("x", 1)}),
                 "names a write the record lacks");
  ExpectDataLoss(RecordBytes(kRecordFormat, {WriteBytes(0, 1)}, {FieldBytes("x", {0, 1})}),
                 "names a write the record lacks");
  ExpectDataLoss(RecordBytes(kRecordFormat, {}, {FieldBytes("x", 0)}),
                 "names a write the record lacks");
}

TEST(CodecTest, DecodeRejectsAWriteNoFieldHolds) {
  // A write no version names would have no canonical place.
  const std::vector<std::string> writes = {WriteBytes(0, 1), WriteBytes(0, 2)};
  ExpectDataLoss(RecordBytes(kRecordFormat, writes, {FieldBytes("x", 1)}), "no field holds");
  ExpectDataLoss(RecordBytes(kRecordFormat, writes, {FieldBytes("x", 0), FieldBytes("y", 0)}),
                 "no field holds");
  ExpectDataLoss(RecordBytes(kRecordFormat, {WriteBytes(0, 1)}, {}), "no field holds");
  // Every write named, by one field or another: fine.
  EXPECT_TRUE(
      DecodeRecord(RecordBytes(kRecordFormat, writes, {FieldBytes("x", 1), FieldBytes("y", 0)}))
          .has_value());
}

TEST(CodecTest, DecodeRejectsDotNotCoveredByTheVersionVector) {
  ExpectDataLoss(RecordBytes(kRecordFormat, {WriteBytes(0, 3)}, {FieldBytes("x", 0)}),
                 "not covered");
}

TEST(CodecTest, DecodeRejectsNodeIndexOutOfRange) {
  ExpectDataLoss(RecordBytes(kRecordFormat, {WriteBytes(1, 1)}, {FieldBytes("x", 0)}), "missing");
  ExpectDataLoss(
      RecordBytes(kRecordFormat, {WriteBytes(0, 1)}, {FieldBytes("x", 0)}, VersionVector()),
      "missing");
}

TEST(CodecTest, DecodeRejectsZeroDotCounter) {
  ExpectDataLoss(RecordBytes(kRecordFormat, {WriteBytes(0, 0)}, {FieldBytes("x", 0)}),
                 "dot counter is zero");
}

TEST(CodecTest, DecodeRejectsZeroOrUnsortedVersionVectorEntries) {
  auto vv_bytes = [](std::vector<std::pair<uint8_t, uint64_t>> entries) {
    std::string out;
    ByteWriter writer(out);
    writer.PutByte(kRecordFormat);
    writer.PutLengthPrefixed("k");
    writer.PutVarint(entries.size());
    for (const auto& [node, counter] : entries) {
      const NodeId id = Node(node);
      writer.PutBytes(std::string_view(reinterpret_cast<const char*>(id.bytes.data()), 16));
      writer.PutVarint(counter);
    }
    writer.PutVarint(0);  // no writes
    writer.PutVarint(0);  // no fields
    return out;
  };
  Result<Record> decoded = DecodeRecord(vv_bytes({{1, 1}, {2, 1}}));
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(decoded->vv(), VersionVector({{Node(1), 1}, {Node(2), 1}}));
  ExpectDataLoss(vv_bytes({{1, 0}}), "version vector counter is zero");
  ExpectDataLoss(vv_bytes({{2, 1}, {1, 1}}), "version vector nodes out of order");
  ExpectDataLoss(vv_bytes({{1, 1}, {1, 2}}), "version vector nodes out of order");
}

TEST(CodecTest, DecodeRejectsFieldWithoutVersions) {
  std::string empty;
  ByteWriter writer(empty);
  writer.PutLengthPrefixed("x");
  writer.PutVarint(0);
  // "w" names the one write, so that the empty "x" is the record's only fault (and its bytes let
  // the field count pass its size check, so that "x" itself is judged).
  const std::string bytes =
      RecordBytes(kRecordFormat, {WriteBytes(0, 1)}, {FieldBytes("w", 0), empty});
  ExpectDataLoss(bytes, "without versions");
}

TEST(CodecTest, DecodeRejectsNonCanonicalNan) {
  for (uint64_t bits :
       {uint64_t{0x7ff8000000000001}, uint64_t{0xfff8000000000000}, uint64_t{0x7ff0000000000001}}) {
    std::string out;
    ByteWriter writer(out);
    writer.PutByte(static_cast<uint8_t>(ValueType::kFloat));
    writer.PutFixed64(bits);
    ByteReader reader(out);
    Result<Value> decoded = DecodeValue(reader);
    ASSERT_FALSE(decoded.has_value()) << std::hex << bits;
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
    EXPECT_NE(decoded.error().message().find("NaN"), std::string::npos);
  }
  // The canonical NaN itself decodes.
  std::string canonical;
  ByteWriter writer(canonical);
  writer.PutByte(static_cast<uint8_t>(ValueType::kFloat));
  writer.PutFixed64(0x7ff8000000000000);
  ByteReader reader(canonical);
  EXPECT_TRUE(DecodeValue(reader).has_value());
}

TEST(CodecTest, DecodeRejectsUnknownValueTag) {
  for (uint8_t tag : {5, 6, 0x80, 0xff}) {
    std::string out;
    ByteWriter writer(out);
    writer.PutByte(tag);
    writer.PutBytes(std::string(16, '\0'));
    ByteReader reader(out);
    Result<Value> decoded = DecodeValue(reader);
    ASSERT_FALSE(decoded.has_value()) << int{tag};
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
    EXPECT_NE(decoded.error().message().find("tag"), std::string::npos);
  }
}

TEST(CodecTest, DecodeRejectsUnknownValueTagInsideARecord) {
  std::string bytes = RecordBytes(kRecordFormat, {WriteBytes(0, 1)}, {FieldBytes("x", 0)});
  ASSERT_TRUE(DecodeRecord(bytes).has_value());
  // The value (Int 1, tag then zigzag) is the record's last two bytes.
  ASSERT_EQ(bytes[bytes.size() - 2], static_cast<char>(ValueType::kInt));
  bytes[bytes.size() - 2] = 9;
  ExpectDataLoss(bytes, "unknown value tag");
}

TEST(CodecTest, DecodeRejectsNonMinimalVarintInsideARecord) {
  const std::string bytes = RecordBytes(kRecordFormat, {WriteBytes(0, 1)}, {FieldBytes("x", 0)});
  ASSERT_TRUE(DecodeRecord(bytes).has_value());
  const size_t writes_start = HeaderBytes(kRecordFormat, VersionVector({{Node(1), 2}})).size();
  {
    // Re-encode the write's dot counter 1 as the two bytes 0x81 0x00.
    std::string bad = bytes;
    const size_t counter_pos = writes_start + 1 /* write count */ + 1 /* node index */;
    ASSERT_EQ(bad[counter_pos], '\x01');
    bad.replace(counter_pos, 1, "\x81\x00", 2);
    ExpectDataLoss(bad, "non-minimal");
  }
  {
    // Re-encode the version's write index 0 (just before its two-byte value) as 0x80 0x00.
    std::string bad = bytes;
    const size_t index_pos = bad.size() - 3;
    ASSERT_EQ(bad[index_pos], '\x00');
    bad.replace(index_pos, 1, "\x80\x00", 2);
    ExpectDataLoss(bad, "non-minimal");
  }
}

TEST(CodecTest, TypicalRecordEncodesItsOneWriteOnce) {
  // One insert of five fields: every field (and `_exists`) holds the same write, which the
  // encoding lists once; each field then spends one byte on it.
  Record record("customer/1");
  const Hlc hlc = Hlc::Make(1'700'000'000'000, 3);
  LocalWrite write{{Node(1), 1},
                   hlc,
                   {{"a", Value::Int(1)},
                    {"b", Value::Int(2)},
                    {"c", Value::Text("x")},
                    {"d", Value::Null()},
                    {"e", Value::Float(1.5)}},
                   true};
  ASSERT_TRUE(ApplyLocalWrite(record, write, {}).has_value());
  ASSERT_EQ(record.fields().size(), 6u);
  const std::string bytes = EncodeRecord(record);
  const size_t expected = 1                       // format
                          + 1 + 10                // key
                          + 1 + 16 + 1            // vv: one node, counter 1
                          + 1 + (1 + 1 + 8)       // writes: one (node index, counter, hlc)
                          + 1                     // field count
                          + (1 + 7) + 1 + 1 + 2   // _exists: name, 1 version, write 0, Int(1)
                          + (1 + 1) + 1 + 1 + 2   // a: Int(1)
                          + (1 + 1) + 1 + 1 + 2   // b: Int(2)
                          + (1 + 1) + 1 + 1 + 3   // c: Text("x")
                          + (1 + 1) + 1 + 1 + 1   // d: Null
                          + (1 + 1) + 1 + 1 + 9;  // e: Float(1.5)
  EXPECT_EQ(bytes.size(), expected);
  EXPECT_EQ(bytes.size(), 91u);
  // The HLC's eight bytes appear exactly once.
  std::string hlc_bytes;
  ByteWriter writer(hlc_bytes);
  writer.PutFixed64(hlc.raw);
  const size_t first = bytes.find(hlc_bytes);
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(bytes.find(hlc_bytes, first + 1), std::string::npos);
  // And it round-trips.
  Result<Record> decoded = DecodeRecord(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(*decoded, record);
}

TEST(CodecTest, EachFurtherFieldOfTheSameWriteCostsNoDotOrHlc) {
  // Adding a field to the one write adds only its name, version count, write index and value.
  Record one("k"), two("k");
  Write(one, 1, 1, 10, {{"a", Value::Int(1)}});
  Write(two, 1, 1, 10, {{"a", Value::Int(1)}, {"b", Value::Int(1)}});
  EXPECT_EQ(EncodeRecord(two).size(), EncodeRecord(one).size() + (1 + 1) + 1 + 1 + 2);
  // A second write adds its table entry (node index, counter, hlc) as well as its field.
  Record second = one;
  Write(second, 1, 2, 20, {{"b", Value::Int(1)}});
  EXPECT_EQ(EncodeRecord(second).size(),
            EncodeRecord(two).size() + (1 + 1 + 8));  // `_exists` moves to the new write
}

TEST(CodecTest, VersionVectorRoundTrips) {
  const VersionVector vv({{Node(1), 1}, {Node(2), 300}, {Node(3), UINT64_MAX}});
  std::string out;
  ByteWriter writer(out);
  EncodeVersionVector(vv, writer);
  ByteReader reader(out);
  Result<VersionVector> decoded = DecodeVersionVector(reader);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, vv);
  EXPECT_TRUE(reader.empty());
}

TEST(CodecTest, DeltaRoundTrips) {
  const Record full = RichRecord();
  const RecordDelta delta =
      MakeDelta(full, [](const std::string& name) { return name == "notes" || name == "text"; });
  ASSERT_FALSE(delta.base.empty());
  const std::string bytes = EncodeDelta(delta);
  Result<RecordDelta> decoded = DecodeDelta(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(*decoded, delta);
  EXPECT_EQ(EncodeDelta(*decoded), bytes);
}

TEST(CodecTest, DeltaWithEmptyBaseRoundTrips) {
  const RecordDelta delta = MakeDelta(RichRecord(), [](const std::string&) { return true; });
  EXPECT_TRUE(delta.base.empty());
  Result<RecordDelta> decoded = DecodeDelta(EncodeDelta(delta));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, delta);
}

TEST(CodecTest, DecodeDeltaRejectsTrailingBytesAndTruncation) {
  const RecordDelta delta = MakeDelta(RichRecord(), [](const std::string& n) { return n < "m"; });
  std::string bytes = EncodeDelta(delta);
  for (size_t length = 0; length < bytes.size(); ++length) {
    Result<RecordDelta> decoded = DecodeDelta(std::string_view(bytes).substr(0, length));
    ASSERT_FALSE(decoded.has_value()) << length;
    ASSERT_EQ(decoded.error().code(), StatusCode::kDataLoss);
  }
  bytes.push_back('\x00');
  Result<RecordDelta> decoded = DecodeDelta(bytes);
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
}

TEST(CodecTest, DecodeRecordRejectsADeltaEncoding) {
  // A delta is a record followed by its base: as a record, the base is trailing bytes.
  const RecordDelta delta = MakeDelta(RichRecord(), [](const std::string&) { return false; });
  ExpectDataLoss(EncodeDelta(delta), "trailing");
}

}  // namespace
}  // namespace lockstep::core
