// Value: one field's content, with SQLite's five storage classes. Richer source types (timestamps,
// decimals, JSON) map onto these with a declared logical type, kept beside the schema.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace lockstep {

enum class ValueType : uint8_t { kNull = 0, kInt = 1, kFloat = 2, kText = 3, kBlob = 4 };

// Bytes that are not text: a distinct type so that a blob never compares equal to a text.
struct Blob {
  std::string bytes;
  friend bool operator==(const Blob&, const Blob&) = default;
};

// An immutable-by-convention value: null, int64, float64, text (UTF-8 by convention, any bytes
// accepted) or blob. Values have a total order (see Compare) and a canonical encoding in which
// equal values encode to equal bytes. Thread-compatible.
class Value {
 public:
  Value() = default;
  static Value Null() { return Value(); }
  static Value Int(int64_t v) { return Value(Repr(std::in_place_index<1>, v)); }
  static Value Float(double v);  // every NaN becomes the one canonical NaN
  static Value Text(std::string v) { return Value(Repr(std::in_place_index<3>, std::move(v))); }
  static Value Bytes(std::string v) {
    return Value(Repr(std::in_place_index<4>, Blob{std::move(v)}));
  }

  ValueType type() const { return static_cast<ValueType>(repr_.index()); }
  bool is_null() const { return type() == ValueType::kNull; }
  bool is_numeric() const { return type() == ValueType::kInt || type() == ValueType::kFloat; }

  // REQUIRES: the matching type().
  int64_t as_int() const { return std::get<1>(repr_); }
  double as_float() const { return std::get<2>(repr_); }
  const std::string& as_text() const { return std::get<3>(repr_); }
  const std::string& as_blob() const { return std::get<4>(repr_).bytes; }

  // A short human-readable form: NULL, 42, 1.5, 'text', x'00ff'.
  std::string ToString() const;

  // Equality is bitwise for floats (so -0.0 != 0.0, as their encodings differ).
  friend bool operator==(const Value& a, const Value& b);

 private:
  using Repr = std::variant<std::monostate, int64_t, double, std::string, Blob>;
  explicit Value(Repr repr) : repr_(std::move(repr)) {}
  Repr repr_;
};

// The total order, SQLite's where SQLite has one: NULL < numbers < text < blob. Integers and
// floats compare by numeric value; when equal (1 and 1.0) the integer sorts first. Floats follow
// IEEE totalOrder (-0.0 < 0.0), with NaN below every other number. Text and blobs compare
// bytewise.
std::strong_ordering Compare(const Value& a, const Value& b);

}  // namespace lockstep
