#include "core/numeric.h"

namespace lockstep::core {
namespace {

double AsDouble(const Value& v) {
  switch (v.type()) {
    case ValueType::kInt:
      return static_cast<double>(v.as_int());
    case ValueType::kFloat:
      return v.as_float();
    default:
      return 0;
  }
}

int64_t AsInt(const Value& v) { return v.type() == ValueType::kInt ? v.as_int() : 0; }

bool BothIntegral(const Value& a, const Value& b) {
  return a.type() != ValueType::kFloat && b.type() != ValueType::kFloat;
}

}  // namespace

Value AddNumbers(const Value& a, const Value& b) {
  int64_t sum;
  if (BothIntegral(a, b) && !__builtin_add_overflow(AsInt(a), AsInt(b), &sum)) {
    return Value::Int(sum);
  }
  return Value::Float(AsDouble(a) + AsDouble(b));
}

Value SubtractNumbers(const Value& a, const Value& b) {
  int64_t difference;
  if (BothIntegral(a, b) && !__builtin_sub_overflow(AsInt(a), AsInt(b), &difference)) {
    return Value::Int(difference);
  }
  return Value::Float(AsDouble(a) - AsDouble(b));
}

}  // namespace lockstep::core
