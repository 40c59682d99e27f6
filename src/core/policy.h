// Conflict policies: how concurrent writes to one field are resolved, and what a field shows.
//
// Every policy is a total order on versions (or, for counters, a sum), so its outcome depends only
// on the set of concurrent writes, never on the order they arrived in.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/record.h"

namespace lockstep::core {

enum class FieldPolicy {
  kLww,      // greater (hlc, node id) wins
  kPrefer,   // the earlier node in MergePolicy::prefer wins, then lww
  kManual,   // provisional winner by lww; the siblings wait for a person to resolve them
  kCounter,  // one contribution per node; the field shows their sum
};

enum class ExistsPolicy {
  kKeepUpdate,  // an update concurrent with a delete resurrects the record
  kDeleteWins,  // a delete concurrent with an update wins
};

// A collection's policy. Cheap to copy; thread-compatible.
struct MergePolicy {
  FieldPolicy fields = FieldPolicy::kLww;
  ExistsPolicy exists = ExistsPolicy::kKeepUpdate;
  std::vector<NodeId> prefer;  // for kPrefer: most preferred first; unlisted nodes rank last
  std::map<std::string, FieldPolicy, std::less<>> overrides;  // per field, by name

  // The policy of the field called `name` (`_exists` is ordered by `exists`, never a counter).
  FieldPolicy For(std::string_view name) const;
};

// Parses a policy as the command line and the collection table write it: terms separated by
// commas, each one of `lww`, `manual`, `counter`, `prefer:NODE[:NODE...]` (node ids in base32),
// `keep_update`, `delete_wins`, or `FIELD=lww|prefer|manual|counter` for one field. Empty means
// lww. Errors are kInvalidArgument naming the bad term.
Result<MergePolicy> ParsePolicy(std::string_view spec);

// True when version `a` beats `b` for the field called `name`.
bool Beats(const Version& a, const Version& b, std::string_view name, const MergePolicy& policy);

// The version a register field shows: the best by policy. REQUIRES: !field.versions.empty().
const Version& Winner(const Field& field, std::string_view name, const MergePolicy& policy);

// What a field shows: the winner's value, or for a counter the sum of its contributions, added
// in dot order so that every replica computes the same bits.
Value VisibleValue(const Field& field, std::string_view name, const MergePolicy& policy);
// The same, moving the winner's value out of `field` rather than copying it: for a caller about
// to drop the record (writing a merged record into a user's row). The field keeps its versions,
// the winner's value is left unspecified.
Value TakeVisibleValue(Field& field, std::string_view name, const MergePolicy& policy);

// Whether the record currently exists (false when it was never written).
bool Exists(const Record& record, const MergePolicy& policy);

}  // namespace lockstep::core
