#include "base/bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace lockstep::base {
namespace {

std::string EncodeVarint(uint64_t value) {
  std::string out;
  ByteWriter(out).PutVarint(value);
  return out;
}

std::string EncodeSigned(int64_t value) {
  std::string out;
  ByteWriter(out).PutSignedVarint(value);
  return out;
}

Result<uint64_t> DecodeVarint(std::string_view bytes) {
  ByteReader reader(bytes);
  return reader.ReadVarint("test varint");
}

TEST(BytesTest, VarintRoundTripsBoundaryValues) {
  const std::vector<uint64_t> values = {0,
                                        1,
                                        127,
                                        128,
                                        255,
                                        300,
                                        16383,
                                        16384,
                                        uint64_t{1} << 32,
                                        (uint64_t{1} << 63) - 1,
                                        uint64_t{1} << 63,
                                        std::numeric_limits<uint64_t>::max() - 1,
                                        std::numeric_limits<uint64_t>::max()};
  for (uint64_t value : values) {
    const std::string bytes = EncodeVarint(value);
    ByteReader reader(bytes);
    Result<uint64_t> decoded = reader.ReadVarint("v");
    ASSERT_TRUE(decoded.has_value()) << value << ": " << decoded.error().ToString();
    EXPECT_EQ(*decoded, value);
    EXPECT_TRUE(reader.empty()) << value;
  }
}

TEST(BytesTest, VarintUsesMinimalLeb128Bytes) {
  EXPECT_EQ(EncodeVarint(0), std::string("\x00", 1));
  EXPECT_EQ(EncodeVarint(127), "\x7f");
  EXPECT_EQ(EncodeVarint(128), "\x80\x01");
  EXPECT_EQ(EncodeVarint(300), "\xac\x02");
  EXPECT_EQ(EncodeVarint(16384), std::string("\x80\x80\x01", 3));
  EXPECT_EQ(EncodeVarint(std::numeric_limits<uint64_t>::max()),
            "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01");
}

TEST(BytesTest, SignedVarintUsesZigzagSoSmallNegativesStayShort) {
  EXPECT_EQ(EncodeSigned(0), std::string("\x00", 1));
  EXPECT_EQ(EncodeSigned(-1), "\x01");
  EXPECT_EQ(EncodeSigned(1), "\x02");
  EXPECT_EQ(EncodeSigned(-64), "\x7f");
  EXPECT_EQ(EncodeSigned(64), "\x80\x01");
  // INT64_MIN zigzags to UINT64_MAX, INT64_MAX to UINT64_MAX - 1.
  EXPECT_EQ(EncodeSigned(std::numeric_limits<int64_t>::min()),
            EncodeVarint(std::numeric_limits<uint64_t>::max()));
  EXPECT_EQ(EncodeSigned(std::numeric_limits<int64_t>::max()),
            EncodeVarint(std::numeric_limits<uint64_t>::max() - 1));
}

TEST(BytesTest, SignedVarintRoundTripsExtremes) {
  const std::vector<int64_t> values = {0,
                                       1,
                                       -1,
                                       63,
                                       -64,
                                       64,
                                       -65,
                                       std::numeric_limits<int64_t>::min(),
                                       std::numeric_limits<int64_t>::min() + 1,
                                       std::numeric_limits<int64_t>::max(),
                                       std::numeric_limits<int64_t>::max() - 1};
  for (int64_t value : values) {
    const std::string bytes = EncodeSigned(value);
    ByteReader reader(bytes);
    Result<int64_t> decoded = reader.ReadSignedVarint("v");
    ASSERT_TRUE(decoded.has_value()) << value;
    EXPECT_EQ(*decoded, value);
    EXPECT_TRUE(reader.empty());
  }
}

TEST(BytesTest, NonMinimalVarintIsRejected) {
  // 0 and 1 padded with a redundant zero continuation byte.
  for (std::string_view bytes : {std::string_view("\x80\x00", 2), std::string_view("\x81\x00", 2),
                                 std::string_view("\xff\x80\x00", 3)}) {
    Result<uint64_t> decoded = DecodeVarint(bytes);
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
    EXPECT_NE(decoded.error().message().find("non-minimal"), std::string::npos);
    EXPECT_NE(decoded.error().message().find("test varint"), std::string::npos);
  }
}

TEST(BytesTest, ElevenByteVarintIsRejected) {
  // Ten continuation bytes, the tenth carrying a legal top bit, then an eleventh.
  const std::string bytes = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x81\x01";
  Result<uint64_t> decoded = DecodeVarint(bytes);
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(decoded.error().message().find("longer than 10 bytes"), std::string::npos);

  const std::string zeros = std::string(10, '\x80') + std::string(1, '\x00');
  Result<uint64_t> padded = DecodeVarint(zeros);
  ASSERT_FALSE(padded.has_value());
  EXPECT_EQ(padded.error().code(), StatusCode::kDataLoss);
}

TEST(BytesTest, VarintOverflowingSixtyFourBitsInTenthByteIsRejected) {
  for (char tenth : {'\x02', '\x7f', '\x03'}) {
    const std::string bytes = std::string(9, '\xff') + std::string(1, tenth);
    Result<uint64_t> decoded = DecodeVarint(bytes);
    ASSERT_FALSE(decoded.has_value()) << static_cast<int>(tenth);
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
    EXPECT_NE(decoded.error().message().find("overflows"), std::string::npos);
  }
  // The largest legal tenth byte is 0x01.
  Result<uint64_t> max = DecodeVarint(std::string(9, '\xff') + "\x01");
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ(*max, std::numeric_limits<uint64_t>::max());
}

TEST(BytesTest, TruncatedVarintIsDataLoss) {
  for (std::string_view bytes :
       {std::string_view(""), std::string_view("\x80"), std::string_view("\xff\xff\xff")}) {
    Result<uint64_t> decoded = DecodeVarint(bytes);
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
    EXPECT_NE(decoded.error().message().find("truncated"), std::string::npos);
    EXPECT_NE(decoded.error().message().find("test varint"), std::string::npos);
  }
}

TEST(BytesTest, EveryProperPrefixOfAVarintIsTruncated) {
  const std::string bytes = EncodeVarint(std::numeric_limits<uint64_t>::max());
  for (size_t length = 0; length < bytes.size(); ++length) {
    Result<uint64_t> decoded = DecodeVarint(std::string_view(bytes).substr(0, length));
    ASSERT_FALSE(decoded.has_value()) << length;
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
  }
}

TEST(BytesTest, ReadByteAndReadBytesFailWithDataLossAtEndOfInput) {
  ByteReader reader("ab");
  Result<uint8_t> a = reader.ReadByte("first");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a, 'a');
  EXPECT_EQ(reader.remaining(), 1u);
  Result<std::string_view> too_many = reader.ReadBytes(2, "pair");
  ASSERT_FALSE(too_many.has_value());
  EXPECT_EQ(too_many.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(too_many.error().message().find("pair"), std::string::npos);
  Result<std::string_view> b = reader.ReadBytes(1, "second");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*b, "b");
  EXPECT_TRUE(reader.empty());
  Result<uint8_t> past_end = reader.ReadByte("third");
  ASSERT_FALSE(past_end.has_value());
  EXPECT_EQ(past_end.error().code(), StatusCode::kDataLoss);
  EXPECT_EQ(past_end.error().message(), "truncated input reading third");
}

TEST(BytesTest, Fixed64IsBigEndianAndRoundTrips) {
  std::string out;
  ByteWriter writer(out);
  writer.PutFixed64(0x0102030405060708ULL);
  writer.PutFixed64(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(out.substr(0, 8), "\x01\x02\x03\x04\x05\x06\x07\x08");
  ByteReader reader(out);
  Result<uint64_t> first = reader.ReadFixed64("a");
  Result<uint64_t> second = reader.ReadFixed64("b");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*first, 0x0102030405060708ULL);
  EXPECT_EQ(*second, std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(reader.empty());
}

TEST(BytesTest, Fixed64EncodingsSortLikeTheNumbers) {
  std::string small, large;
  ByteWriter(small).PutFixed64(255);
  ByteWriter(large).PutFixed64(256);
  EXPECT_LT(small, large);
}

TEST(BytesTest, TruncatedFixed64IsDataLoss) {
  ByteReader reader(std::string_view("\x00\x00\x00\x00\x00\x00\x01", 7));
  Result<uint64_t> decoded = reader.ReadFixed64("hlc");
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
}

TEST(BytesTest, LengthPrefixedRoundTripsIncludingEmptyAndBinary) {
  std::string out;
  ByteWriter writer(out);
  const std::string binary("\x00\xff\x80", 3);
  writer.PutLengthPrefixed("");
  writer.PutLengthPrefixed("hello");
  writer.PutLengthPrefixed(binary);
  ByteReader reader(out);
  Result<std::string_view> empty = reader.ReadLengthPrefixed("a", 100);
  Result<std::string_view> hello = reader.ReadLengthPrefixed("b", 100);
  Result<std::string_view> bytes = reader.ReadLengthPrefixed("c", 100);
  ASSERT_TRUE(empty.has_value());
  ASSERT_TRUE(hello.has_value());
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(*empty, "");
  EXPECT_EQ(*hello, "hello");
  EXPECT_EQ(*bytes, binary);
  EXPECT_TRUE(reader.empty());
}

TEST(BytesTest, ReadLengthPrefixedRefusesLengthsAboveTheLimit) {
  std::string out;
  ByteWriter(out).PutLengthPrefixed("hello");
  {
    ByteReader reader(out);
    Result<std::string_view> at_limit = reader.ReadLengthPrefixed("name", 5);
    ASSERT_TRUE(at_limit.has_value());
    EXPECT_EQ(*at_limit, "hello");
  }
  ByteReader reader(out);
  Result<std::string_view> over = reader.ReadLengthPrefixed("name", 4);
  ASSERT_FALSE(over.has_value());
  EXPECT_EQ(over.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(over.error().message().find("name"), std::string::npos);
  EXPECT_NE(over.error().message().find("limit of 4"), std::string::npos);
}

TEST(BytesTest, ReadLengthPrefixedRefusesLengthBeyondTheInput) {
  std::string out;
  ByteWriter writer(out);
  writer.PutVarint(10);
  writer.PutBytes("short");
  ByteReader reader(out);
  Result<std::string_view> read = reader.ReadLengthPrefixed("blob", 1000);
  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(read.error().message().find("truncated"), std::string::npos);
}

TEST(BytesTest, ReadLengthPrefixedRefusesHugeLengthWithoutAllocating) {
  std::string out;
  ByteWriter(out).PutVarint(std::numeric_limits<uint64_t>::max());
  ByteReader reader(out);
  Result<std::string_view> read =
      reader.ReadLengthPrefixed("blob", std::numeric_limits<size_t>::max());
  ASSERT_FALSE(read.has_value());
  EXPECT_EQ(read.error().code(), StatusCode::kDataLoss);
}

TEST(BytesTest, ReadCountAcceptsCountsTheRemainingInputCanHold) {
  std::string out;
  ByteWriter writer(out);
  writer.PutVarint(3);
  writer.PutBytes(std::string(12, 'x'));
  ByteReader reader(out);
  Result<size_t> count = reader.ReadCount("items", 4);
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(*count, 3u);
  EXPECT_EQ(reader.remaining(), 12u);
}

TEST(BytesTest, ReadCountRefusesCountsTheRemainingInputCannotHold) {
  std::string out;
  ByteWriter writer(out);
  writer.PutVarint(3);
  writer.PutBytes(std::string(11, 'x'));  // one byte short of 3 items of 4 bytes
  ByteReader reader(out);
  Result<size_t> count = reader.ReadCount("items", 4);
  ASSERT_FALSE(count.has_value());
  EXPECT_EQ(count.error().code(), StatusCode::kDataLoss);
  EXPECT_NE(count.error().message().find("items"), std::string::npos);
}

TEST(BytesTest, ReadCountRefusesAHugeCount) {
  std::string out;
  ByteWriter writer(out);
  writer.PutVarint(std::numeric_limits<uint64_t>::max());
  writer.PutBytes("abc");
  ByteReader reader(out);
  Result<size_t> count = reader.ReadCount("items", 1);
  ASSERT_FALSE(count.has_value());
  EXPECT_EQ(count.error().code(), StatusCode::kDataLoss);
}

TEST(BytesTest, ReadCountOfZeroIsAlwaysAccepted) {
  ByteReader reader(std::string_view("\x00", 1));
  Result<size_t> count = reader.ReadCount("items", 1000);
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ(*count, 0u);
}

TEST(BytesTest, ReadsConsumeInputInSequence) {
  std::string out;
  ByteWriter writer(out);
  writer.PutByte(7);
  writer.PutVarint(300);
  writer.PutSignedVarint(-5);
  writer.PutFixed64(42);
  writer.PutLengthPrefixed("end");
  ByteReader reader(out);
  EXPECT_EQ(*reader.ReadByte("a"), 7);
  EXPECT_EQ(*reader.ReadVarint("b"), 300u);
  EXPECT_EQ(*reader.ReadSignedVarint("c"), -5);
  EXPECT_EQ(*reader.ReadFixed64("d"), 42u);
  EXPECT_EQ(*reader.ReadLengthPrefixed("e", 10), "end");
  EXPECT_TRUE(reader.empty());
  EXPECT_EQ(reader.remaining(), 0u);
}

}  // namespace
}  // namespace lockstep::base
