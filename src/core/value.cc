#include "lockstep/value.h"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace lockstep {
namespace {

constexpr uint64_t kCanonicalNan = 0x7ff8000000000000ULL;

// Maps a double onto an unsigned integer whose order is IEEE totalOrder; canonical NaN lands
// below -infinity because its sign bit is cleared but we rank it first explicitly.
uint64_t TotalOrderKey(double d) {
  const uint64_t bits = std::bit_cast<uint64_t>(d);
  return (bits & (uint64_t{1} << 63)) ? ~bits : bits | (uint64_t{1} << 63);
}

std::strong_ordering CompareFloats(double a, double b) {
  const bool a_nan = std::isnan(a);
  const bool b_nan = std::isnan(b);
  if (a_nan || b_nan) return b_nan <=> a_nan;  // NaN first
  return TotalOrderKey(a) <=> TotalOrderKey(b);
}

// Exact comparison of an int64 with a double, without the rounding of a plain cast.
std::strong_ordering CompareIntFloat(int64_t i, double d) {
  if (std::isnan(d)) return std::strong_ordering::greater;
  // 2^63 is exactly representable; every double at or above it exceeds any int64.
  constexpr double kTwo63 = 9223372036854775808.0;
  if (d >= kTwo63) return std::strong_ordering::less;
  if (d < -kTwo63) return std::strong_ordering::greater;
  const double truncated = std::trunc(d);
  const auto whole = static_cast<int64_t>(truncated);  // in range by the checks above
  if (i != whole) return i <=> whole;
  if (d > truncated) return std::strong_ordering::less;
  if (d < truncated) return std::strong_ordering::greater;
  return std::strong_ordering::less;  // numerically equal: the integer sorts first
}

int TypeRank(ValueType type) {
  switch (type) {
    case ValueType::kNull:
      return 0;
    case ValueType::kInt:
    case ValueType::kFloat:
      return 1;
    case ValueType::kText:
      return 2;
    case ValueType::kBlob:
      return 3;
  }
  return 4;
}

std::strong_ordering CompareBytes(const std::string& a, const std::string& b) {
  const int c = a.compare(b);
  return c < 0 ? std::strong_ordering::less
               : (c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
}

}  // namespace

Value Value::Float(double v) {
  if (std::isnan(v)) v = std::bit_cast<double>(kCanonicalNan);
  return Value(Repr(std::in_place_index<2>, v));
}

bool operator==(const Value& a, const Value& b) {
  if (a.type() != b.type()) return false;
  if (a.type() == ValueType::kFloat) {
    return std::bit_cast<uint64_t>(a.as_float()) == std::bit_cast<uint64_t>(b.as_float());
  }
  return a.repr_ == b.repr_;
}

std::strong_ordering Compare(const Value& a, const Value& b) {
  const int rank_a = TypeRank(a.type());
  const int rank_b = TypeRank(b.type());
  if (rank_a != rank_b) return rank_a <=> rank_b;
  switch (a.type()) {
    case ValueType::kNull:
      return std::strong_ordering::equal;
    case ValueType::kInt:
      if (b.type() == ValueType::kInt) return a.as_int() <=> b.as_int();
      return CompareIntFloat(a.as_int(), b.as_float());
    case ValueType::kFloat:
      if (b.type() == ValueType::kFloat) return CompareFloats(a.as_float(), b.as_float());
      return 0 <=> CompareIntFloat(b.as_int(), a.as_float());
    case ValueType::kText:
      return CompareBytes(a.as_text(), b.as_text());
    case ValueType::kBlob:
      return CompareBytes(a.as_blob(), b.as_blob());
  }
  return std::strong_ordering::equal;
}

std::string Value::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (type()) {
    case ValueType::kNull:
      return "NULL";
    case ValueType::kInt:
      return std::to_string(as_int());
    case ValueType::kFloat: {
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%.17g", as_float());
      std::string text = buffer;
      // Keep a float recognisable as one: 1.0, not 1.
      if (text.find_first_of(".eni") == std::string::npos) text += ".0";
      return text;
    }
    case ValueType::kText: {
      std::string quoted = "'";
      for (char c : as_text()) {
        if (c == '\'') quoted += '\'';
        quoted += c;
      }
      return quoted + "'";
    }
    case ValueType::kBlob: {
      std::string hex = "x'";
      for (unsigned char c : as_blob()) {
        hex += kHex[c >> 4];
        hex += kHex[c & 15];
      }
      return hex + "'";
    }
  }
  return "?";
}

}  // namespace lockstep
