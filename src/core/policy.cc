#include "core/policy.h"

#include <algorithm>
#include <optional>

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

namespace {

std::optional<FieldPolicy> ParseFieldPolicy(std::string_view name) {
  if (name == "lww") return FieldPolicy::kLww;
  if (name == "prefer") return FieldPolicy::kPrefer;
  if (name == "manual") return FieldPolicy::kManual;
  if (name == "counter") return FieldPolicy::kCounter;
  return std::nullopt;
}

Status ParsePreferTerm(std::string_view nodes, MergePolicy& policy) {
  policy.fields = FieldPolicy::kPrefer;
  while (!nodes.empty()) {
    const size_t colon = nodes.find(':');
    LOCKSTEP_ASSIGN_OR_RETURN(NodeId node, NodeId::Parse(nodes.substr(0, colon)));
    policy.prefer.push_back(node);
    nodes = colon == std::string_view::npos ? std::string_view() : nodes.substr(colon + 1);
  }
  if (policy.prefer.empty()) return InvalidArgument("prefer needs at least one node id");
  return Status::Ok();
}

Status ParseTerm(std::string_view term, MergePolicy& policy) {
  if (term == "keep_update") {
    policy.exists = ExistsPolicy::kKeepUpdate;
    return Status::Ok();
  }
  if (term == "delete_wins") {
    policy.exists = ExistsPolicy::kDeleteWins;
    return Status::Ok();
  }
  if (term.starts_with("prefer:")) return ParsePreferTerm(term.substr(7), policy);
  if (const size_t eq = term.find('='); eq != std::string_view::npos) {
    const std::string_view field = term.substr(0, eq);
    const auto field_policy = ParseFieldPolicy(term.substr(eq + 1));
    if (field.empty() || !field_policy.has_value() || field == kExistsField) {
      return InvalidArgument("bad field policy '" + std::string(term) + "'");
    }
    policy.overrides[std::string(field)] = *field_policy;
    return Status::Ok();
  }
  const auto field_policy = ParseFieldPolicy(term);
  if (!field_policy.has_value()) {
    return InvalidArgument("unknown conflict policy '" + std::string(term) +
                           "' (expected lww, manual, counter, prefer:NODE, keep_update, "
                           "delete_wins or FIELD=POLICY)");
  }
  policy.fields = *field_policy;
  return Status::Ok();
}

}  // namespace

Result<MergePolicy> ParsePolicy(std::string_view spec) {
  MergePolicy policy;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view term = spec.substr(0, comma);
    if (!term.empty()) LOCKSTEP_RETURN_IF_ERROR(ParseTerm(term, policy));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
  }
  return policy;
}

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
  // No version beats itself: the first is compared only with the others (usually none).
  const Version* best = &field.versions.front();
  for (auto it = field.versions.begin() + 1; it < field.versions.end(); ++it) {
    if (Beats(*it, *best, name, policy)) best = &*it;
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

Value TakeVisibleValue(Field& field, std::string_view name, const MergePolicy& policy) {
  if (field.versions.empty() || policy.For(name) == FieldPolicy::kCounter) {
    return VisibleValue(field, name, policy);
  }
  const auto winner = &Winner(field, name, policy) - field.versions.data();
  return std::move(field.versions[static_cast<size_t>(winner)].value);
}

bool Exists(const Record& record, const MergePolicy& policy) {
  const Field* exists = record.Find(kExistsField);
  return exists != nullptr && !exists->versions.empty() &&
         IsTrue(Winner(*exists, kExistsField, policy).value);
}

}  // namespace lockstep::core
