// The merge rule everything rests on: folding another replica's version of a record into ours.
//
// Per field, each side's versions survive unless the other side has already seen them (its
// version vector covers their dot) and does not hold them. That gives DESIGN.md's four cases:
// same dot → nothing to do; theirs seen by us → keep ours; ours seen by them → take theirs;
// neither → concurrent, a conflict resolved by the field's policy. The merged version vector is
// the pointwise maximum. Merging is commutative, associative and idempotent, so every replica that
// has merged the same writes holds the same record, whatever the order of arrival.
#pragma once

#include <string>
#include <vector>

#include "core/delta.h"
#include "core/policy.h"
#include "core/record.h"
#include "lockstep/status.h"

namespace lockstep::core {

// Concurrent writes to one field that a merge met, reported by the merge that added a sibling.
// All of them stay in the record as siblings until a write that has seen them replaces them; the
// field shows `winner`. With `pending` (the manual policy) the winner is only provisional, for a
// person to resolve; otherwise the policy's choice stands and this is the record of the losers
// for the conflict log.
struct Conflict {
  std::string key;
  std::string field;
  Version winner;
  std::vector<Version> losers;
  bool pending = false;

  friend bool operator==(const Conflict&, const Conflict&) = default;
};

// What one merge did to the local record.
struct MergeEffects {
  std::vector<std::string> changed_fields;  // fields whose versions changed, in name order
  std::vector<Conflict> conflicts;
  bool vv_changed = false;

  bool changed() const { return vv_changed || !changed_fields.empty(); }
};

// Folds `incoming` (a full record with the same key) into `local`. A field missing from
// `incoming` is left as it is. REQUIRES: local.key() == incoming.key() (or local is new).
MergeEffects MergeInto(Record& local, const Record& incoming, const MergePolicy& policy);
// The same, moving from `incoming` where that saves copies (when `local` is new).
MergeEffects MergeInto(Record& local, Record&& incoming, const MergePolicy& policy);

// Folds a delta into `local`. Fails with kFailedPrecondition, changing nothing, when `local` has
// not seen the writes of the fields the delta omits (local.vv() does not cover delta.base): the
// sender must send the full record instead.
Result<MergeEffects> MergeDeltaInto(Record& local, const RecordDelta& delta,
                                    const MergePolicy& policy);

// The pure form of MergeInto, for tests and callers that keep both inputs.
struct MergeOutcome {
  Record record;
  MergeEffects effects;
};
MergeOutcome Merge(const Record& local, const Record& incoming, const MergePolicy& policy);

}  // namespace lockstep::core
