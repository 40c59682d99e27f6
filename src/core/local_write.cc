#include "core/local_write.h"

#include <algorithm>

#include "core/numeric.h"

namespace lockstep::core {
namespace {

// Moves this node's contribution so that the counter's sum becomes `total`.
void WriteCounter(Field& field, const std::string& name, const Value& total, const Dot& dot,
                  Hlc hlc, const MergePolicy& policy) {
  const Value current = VisibleValue(field, name, policy);
  auto mine = std::find_if(field.versions.begin(), field.versions.end(),
                           [&](const Version& v) { return v.dot.node == dot.node; });
  const Value increment = SubtractNumbers(total, current);
  if (mine == field.versions.end()) {
    Version contribution{increment, dot, hlc};
    field.versions.insert(
        std::upper_bound(field.versions.begin(), field.versions.end(), contribution,
                         [](const Version& a, const Version& b) { return a.dot < b.dot; }),
        std::move(contribution));
  } else {
    *mine = Version{AddNumbers(mine->value, increment), dot, hlc};
  }
}

}  // namespace

Result<std::vector<std::string>> ApplyLocalWrite(Record& record, const LocalWrite& write,
                                                 const MergePolicy& policy) {
  for (const auto& [name, value] : write.fields) {
    if (policy.For(name) == FieldPolicy::kCounter && !value.is_numeric() && !value.is_null()) {
      return InvalidArgument("counter field '" + name + "' takes only numbers, got " +
                             value.ToString());
    }
    if (name == kExistsField) return InvalidArgument("'_exists' is written by insert and delete");
  }
  std::vector<std::string> changed;
  for (const auto& [name, value] : write.fields) {
    Field& field = record.FindOrInsert(name);
    if (policy.For(name) == FieldPolicy::kCounter) {
      // NULL in a counter column (a row inserted without it) counts as zero.
      const Value total = value.is_null() ? Value::Int(0) : value;
      if (!field.versions.empty() && VisibleValue(field, name, policy) == total) continue;
      WriteCounter(field, name, total, write.dot, write.hlc, policy);
    } else {
      field.versions.assign(1, Version{value, write.dot, write.hlc});
    }
    changed.push_back(name);
  }
  record.FindOrInsert(kExistsField)
      .versions.assign(1, Version{Value::Int(write.exists ? 1 : 0), write.dot, write.hlc});
  changed.emplace_back(kExistsField);
  record.mutable_vv().Advance(write.dot);
  std::sort(changed.begin(), changed.end());
  return changed;
}

}  // namespace lockstep::core
