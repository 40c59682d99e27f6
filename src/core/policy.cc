#include "core/policy.h"

#include <algorithm>
#include <limits>

#include "core/numeric.h"

namespace lockstep::core {
namespace {

bool LwwBeats(const Version& a, const Version& b) {
  if (a.hlc != b.hlc) return a.hlc > b.hlc;
  if (a.dot.node != b.dot.node) return a.dot.node > b.dot.node;
  return a.dot.counter > b.dot.counter;
}

size_t PreferenceRank(const NodeId& node, const std::vector<NodeId>& prefer) {
  return static_cast<size_t>(std::find(prefer.begin(), prefer.end(), node) - prefer.begin());
}

bool IsTrue(const Value& value) {
  return (value.type() == ValueType::kInt && value.as_int() != 0) ||
         (value.type() == ValueType::kFloat && value.as_float() != 0);
}

}  // namespace

FieldPolicy MergePolicy::For(std::string_view name) const {
  if (name == kExistsField) return FieldPolicy::kLww;
  if (!overrides.empty()) {
    auto it = overrides.find(name);
    if (it != overrides.end()) return it->second;
  }
  return fields;
}

bool Beats(const Version& a, const Version& b, std::string_view name, const MergePolicy& policy) {
  if (name == kExistsField) {
    const bool alive_wins = policy.exists == ExistsPolicy::kKeepUpdate;
    const bool a_alive = IsTrue(a.value);
    if (a_alive != IsTrue(b.value)) return a_alive == alive_wins;
    return LwwBeats(a, b);
  }
  if (policy.For(name) == FieldPolicy::kPrefer) {
    const size_t rank_a = PreferenceRank(a.dot.node, policy.prefer);
    const size_t rank_b = PreferenceRank(b.dot.node, policy.prefer);
    if (rank_a != rank_b) return rank_a < rank_b;
  }
  return LwwBeats(a, b);
}

const Version& Winner(const Field& field, std::string_view name, const MergePolicy& policy) {
  const Version* best = &field.versions.front();
  for (const Version& version : field.versions) {
    if (Beats(version, *best, name, policy)) best = &version;
  }
  return *best;
}

Value VisibleValue(const Field& field, std::string_view name, const MergePolicy& policy) {
  if (field.versions.empty()) return Value::Null();
  if (policy.For(name) != FieldPolicy::kCounter) return Winner(field, name, policy).value;
  Value sum = Value::Int(0);
  for (const Version& contribution : field.versions) sum = AddNumbers(sum, contribution.value);
  return sum;
}

bool Exists(const Record& record, const MergePolicy& policy) {
  const Field* exists = record.Find(kExistsField);
  return exists != nullptr && !exists->versions.empty() &&
         IsTrue(Winner(*exists, kExistsField, policy).value);
}

}  // namespace lockstep::core
