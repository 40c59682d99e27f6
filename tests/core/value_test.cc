#include "lockstep/value.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <vector>

namespace lockstep::core {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

TEST(ValueTest, ConstructorsSetTypeAndContent) {
  EXPECT_EQ(Value().type(), ValueType::kNull);
  EXPECT_TRUE(Value::Null().is_null());
  EXPECT_EQ(Value::Int(-3).type(), ValueType::kInt);
  EXPECT_EQ(Value::Int(-3).as_int(), -3);
  EXPECT_EQ(Value::Float(2.5).type(), ValueType::kFloat);
  EXPECT_EQ(Value::Float(2.5).as_float(), 2.5);
  EXPECT_EQ(Value::Text("hi").as_text(), "hi");
  EXPECT_EQ(Value::Bytes("hi").type(), ValueType::kBlob);
  EXPECT_EQ(Value::Bytes("hi").as_blob(), "hi");
  EXPECT_TRUE(Value::Int(1).is_numeric());
  EXPECT_TRUE(Value::Float(1).is_numeric());
  EXPECT_FALSE(Value::Text("1").is_numeric());
  EXPECT_FALSE(Value::Null().is_numeric());
}

TEST(ValueTest, TextNeverEqualsBlobWithTheSameBytes) {
  EXPECT_NE(Value::Text("abc"), Value::Bytes("abc"));
  EXPECT_EQ(Value::Text("abc"), Value::Text("abc"));
  EXPECT_EQ(Value::Bytes("abc"), Value::Bytes("abc"));
}

TEST(ValueTest, IntNeverEqualsFloatOfTheSameNumber) {
  EXPECT_NE(Value::Int(1), Value::Float(1.0));
  EXPECT_NE(Compare(Value::Int(1), Value::Float(1.0)), std::strong_ordering::equal);
}

TEST(ValueTest, TotalOrderRanksNullThenNumbersThenTextThenBlob) {
  // Each value below sorts strictly before the next.
  const std::vector<Value> ordered = {
      Value::Null(),         Value::Float(std::nan("")),
      Value::Float(-kInf),   Value::Int(kInt64Min),
      Value::Float(-1.5),    Value::Int(-1),
      Value::Int(0),         Value::Float(-0.0),
      Value::Float(0.0),     Value::Float(0.5),
      Value::Int(1),         Value::Float(1.0),
      Value::Int(kInt64Max), Value::Float(kInf),
      Value::Text(""),       Value::Text("A"),
      Value::Text("a"),      Value::Text("ab"),
      Value::Bytes(""),      Value::Bytes(std::string("\x00", 1)),
      Value::Bytes("\xff"),
  };
  for (size_t i = 0; i < ordered.size(); ++i) {
    EXPECT_EQ(Compare(ordered[i], ordered[i]), std::strong_ordering::equal) << i;
    for (size_t j = i + 1; j < ordered.size(); ++j) {
      EXPECT_EQ(Compare(ordered[i], ordered[j]), std::strong_ordering::less)
          << ordered[i].ToString() << " vs " << ordered[j].ToString();
      EXPECT_EQ(Compare(ordered[j], ordered[i]), std::strong_ordering::greater)
          << ordered[j].ToString() << " vs " << ordered[i].ToString();
    }
  }
}

TEST(ValueTest, NumbersSortBeforeTextEvenWhenTheTextLooksSmaller) {
  EXPECT_EQ(Compare(Value::Int(kInt64Max), Value::Text("")), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Float(kInf), Value::Text("0")), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Text("\xff\xff"), Value::Bytes("")), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Null(), Value::Float(std::nan(""))), std::strong_ordering::less);
}

TEST(ValueTest, IntAndFloatCompareExactlyBeyondTwoToThe53) {
  constexpr int64_t kTwo53 = int64_t{1} << 53;
  // 2^53 + 1 is not a double: converting it would round to 2^53 and tie.
  const Value float_two53 = Value::Float(static_cast<double>(kTwo53));
  EXPECT_EQ(Compare(Value::Int(kTwo53 + 1), float_two53), std::strong_ordering::greater);
  EXPECT_EQ(Compare(float_two53, Value::Int(kTwo53 + 1)), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Int(kTwo53 - 1), float_two53), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Int(-kTwo53 - 1), Value::Float(-static_cast<double>(kTwo53))),
            std::strong_ordering::less);
}

TEST(ValueTest, Int64MaxIsBelowTheDoubleThatPrintsAsIt) {
  // 9.223372036854775807e18 rounds to 2^63, one more than INT64_MAX.
  const Value near_max = Value::Float(9.223372036854775807e18);
  EXPECT_EQ(near_max.as_float(), 9223372036854775808.0);
  EXPECT_EQ(Compare(Value::Int(kInt64Max), near_max), std::strong_ordering::less);
  EXPECT_EQ(Compare(near_max, Value::Int(kInt64Max)), std::strong_ordering::greater);
  EXPECT_EQ(Compare(Value::Int(kInt64Max), Value::Float(1e300)), std::strong_ordering::less);
}

TEST(ValueTest, Int64MinTiesWithMinusTwoToThe63AndSortsFirst) {
  const Value minus_two63 = Value::Float(-9223372036854775808.0);
  EXPECT_EQ(Compare(Value::Int(kInt64Min), minus_two63), std::strong_ordering::less);
  EXPECT_EQ(Compare(minus_two63, Value::Int(kInt64Min)), std::strong_ordering::greater);
  EXPECT_EQ(Compare(Value::Int(kInt64Min), Value::Float(-1e300)), std::strong_ordering::greater);
}

TEST(ValueTest, EqualIntAndFloatTieWithTheIntFirst) {
  EXPECT_EQ(Compare(Value::Int(1), Value::Float(1.0)), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Float(1.0), Value::Int(1)), std::strong_ordering::greater);
  EXPECT_EQ(Compare(Value::Int(-7), Value::Float(-7.0)), std::strong_ordering::less);
  // Int 0 precedes both zeros.
  EXPECT_EQ(Compare(Value::Int(0), Value::Float(-0.0)), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Int(0), Value::Float(0.0)), std::strong_ordering::less);
}

TEST(ValueTest, FractionsCompareAgainstIntsOnBothSidesOfZero) {
  EXPECT_EQ(Compare(Value::Int(1), Value::Float(1.5)), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Int(2), Value::Float(1.5)), std::strong_ordering::greater);
  EXPECT_EQ(Compare(Value::Int(-1), Value::Float(-1.5)), std::strong_ordering::greater);
  EXPECT_EQ(Compare(Value::Int(-2), Value::Float(-1.5)), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Int(0), Value::Float(-0.5)), std::strong_ordering::greater);
  EXPECT_EQ(Compare(Value::Int(0), Value::Float(0.5)), std::strong_ordering::less);
}

TEST(ValueTest, NegativeZeroSortsBeforePositiveZeroAndIsNotEqual) {
  EXPECT_EQ(Compare(Value::Float(-0.0), Value::Float(0.0)), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Float(0.0), Value::Float(-0.0)), std::strong_ordering::greater);
  EXPECT_NE(Value::Float(-0.0), Value::Float(0.0));
  EXPECT_EQ(Value::Float(-0.0), Value::Float(-0.0));
}

TEST(ValueTest, EveryNanBecomesTheOneCanonicalNan) {
  const double quiet = std::numeric_limits<double>::quiet_NaN();
  const double payload = std::bit_cast<double>(uint64_t{0x7ff8000000000123});
  const double negative = std::bit_cast<double>(uint64_t{0xfff8000000000000});
  const double signaling = std::bit_cast<double>(uint64_t{0x7ff0000000000001});
  for (double nan : {quiet, payload, negative, signaling}) {
    ASSERT_TRUE(std::isnan(nan));
    const Value value = Value::Float(nan);
    EXPECT_EQ(std::bit_cast<uint64_t>(value.as_float()), uint64_t{0x7ff8000000000000});
    EXPECT_EQ(value, Value::Float(quiet));
    EXPECT_EQ(Compare(value, Value::Float(quiet)), std::strong_ordering::equal);
  }
}

TEST(ValueTest, NanIsTheLowestNumber) {
  const Value nan = Value::Float(std::nan(""));
  for (const Value& number : {Value::Float(-kInf), Value::Int(kInt64Min), Value::Float(-0.0),
                              Value::Int(0), Value::Float(kInf)}) {
    EXPECT_EQ(Compare(nan, number), std::strong_ordering::less) << number.ToString();
    EXPECT_EQ(Compare(number, nan), std::strong_ordering::greater) << number.ToString();
  }
  EXPECT_EQ(Compare(Value::Null(), nan), std::strong_ordering::less);
}

TEST(ValueTest, TextAndBlobCompareBytewiseUnsigned) {
  // 0xff must sort above 'a' though char may be signed.
  EXPECT_EQ(Compare(Value::Text("a"), Value::Text("\xff")), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Bytes("a"), Value::Bytes("\xff")), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Text("ab"), Value::Text("abc")), std::strong_ordering::less);
  EXPECT_EQ(Compare(Value::Text("abc"), Value::Text("abc")), std::strong_ordering::equal);
}

TEST(ValueTest, ToStringGivesAShortReadableForm) {
  EXPECT_EQ(Value::Null().ToString(), "NULL");
  EXPECT_EQ(Value::Int(42).ToString(), "42");
  EXPECT_EQ(Value::Int(kInt64Min).ToString(), "-9223372036854775808");
  EXPECT_EQ(Value::Float(1.5).ToString(), "1.5");
  EXPECT_EQ(Value::Float(-0.0).ToString(), "-0.0");
  EXPECT_EQ(Value::Float(1.0).ToString(), "1.0");  // still recognisable as a float
  EXPECT_EQ(Value::Float(1e300).ToString(), "1.0000000000000001e+300");
  EXPECT_EQ(Value::Text("text").ToString(), "'text'");
  EXPECT_EQ(Value::Text("it's").ToString(), "'it''s'");
  EXPECT_EQ(Value::Bytes(std::string("\x00\xff\x1a", 3)).ToString(), "x'00ff1a'");
  EXPECT_EQ(Value::Bytes("").ToString(), "x''");
}

}  // namespace
}  // namespace lockstep::core
