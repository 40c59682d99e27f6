#include "core/merge.h"

#include <algorithm>

namespace lockstep::core {
namespace {

bool HoldsDot(const Field& field, const Dot& dot) {
  return std::any_of(field.versions.begin(), field.versions.end(),
                     [&](const Version& v) { return v.dot == dot; });
}

bool DotLess(const Version& a, const Version& b) { return a.dot < b.dot; }

// Counter fields keep one contribution per node; a node's later contribution replaces its
// earlier one (a node's own writes are totally ordered by their counters). No version vector is
// needed and nothing is ever lost, so there are no conflicts.
bool MergeCounter(Field& local, const Field& incoming) {
  bool changed = false;
  for (const Version& theirs : incoming.versions) {
    auto mine = std::find_if(local.versions.begin(), local.versions.end(),
                             [&](const Version& v) { return v.dot.node == theirs.dot.node; });
    if (mine == local.versions.end()) {
      local.versions.insert(
          std::upper_bound(local.versions.begin(), local.versions.end(), theirs, DotLess), theirs);
      changed = true;
    } else if (theirs.dot.counter > mine->dot.counter) {
      *mine = theirs;  // same node, so the sort position by dot is unchanged
      changed = true;
    }
  }
  return changed;
}

// Reports the conflict among a field's sibling versions: the policy's winner and the others.
// Siblings that all hold the winner's value lose nothing (two databases attached with the same
// row, or the same edit made twice), so they are not a conflict.
void ReportSiblings(const std::string& key, const std::string& name, const Field& field,
                    const MergePolicy& policy, std::vector<Conflict>& conflicts) {
  const Version& winner = Winner(field, name, policy);
  Conflict conflict{key, name, winner, {}, policy.For(name) == FieldPolicy::kManual};
  for (const Version& v : field.versions) {
    if (v.dot != winner.dot) conflict.losers.push_back(v);
  }
  const bool loses_a_value =
      std::any_of(conflict.losers.begin(), conflict.losers.end(),
                  [&](const Version& loser) { return !(loser.value == winner.value); });
  if (loses_a_value) conflicts.push_back(std::move(conflict));
}

// A register field: the versions that survive are those the other side holds too or has not
// seen. One survivor is the common case; several are concurrent writes for the policy.
bool MergeRegister(Field& local, const Field& incoming, const VersionVector& local_vv,
                   const VersionVector& incoming_vv, const std::string& key,
                   const std::string& name, const MergePolicy& policy,
                   std::vector<Conflict>& conflicts) {
  if (local.versions.size() == 1 && incoming.versions.size() == 1 &&
      local.versions[0].dot == incoming.versions[0].dot) {
    return false;  // the same write on both sides: the overwhelmingly common case
  }
  std::vector<Version> survivors;
  survivors.reserve(local.versions.size() + incoming.versions.size());
  bool gained = false;
  for (const Version& mine : local.versions) {
    if (HoldsDot(incoming, mine.dot) || !incoming_vv.Covers(mine.dot)) survivors.push_back(mine);
  }
  for (const Version& theirs : incoming.versions) {
    if (!HoldsDot(local, theirs.dot) && !local_vv.Covers(theirs.dot)) {
      survivors.push_back(theirs);
      gained = true;
    }
  }
  // Each side covers the dots it holds, so survivors can be empty only on input that breaks that
  // invariant; keeping ours then is the safe choice.
  if (survivors.empty()) return false;
  std::sort(survivors.begin(), survivors.end(), DotLess);
  if (survivors == local.versions) return false;

  if (survivors.size() == 1) {
    local.versions = std::move(survivors);
    return true;
  }
  // Every policy keeps the concurrent versions as siblings until a write that has seen them
  // replaces them; the policy only picks the one the field shows. Keeping just the winner would
  // be wrong whenever the policy's order disagrees with causality (`prefer`, `_exists`, or lww
  // across skewed clocks): once a later write replaced the winner, the dropped loser, still
  // claimed by the version vector, could no longer compete with it, and replicas that merged the
  // same writes in another order would keep different versions for good.
  Field contested{std::move(survivors)};
  // A sibling set is news only when this merge added a sibling.
  if (gained) ReportSiblings(key, name, contested, policy, conflicts);
  local = std::move(contested);
  return true;
}

MergeEffects MergeFields(Record& local, const Record& incoming, const MergePolicy& policy) {
  MergeEffects effects;
  // A new record (never written, nothing merged) may be default-constructed: it takes the key.
  if (local.fields().empty() && local.vv().empty()) local = Record(incoming.key());
  // The comparisons use the version vectors from before the merge.
  const VersionVector local_vv = local.vv();
  for (const auto& [name, theirs] : incoming.fields()) {
    if (theirs.versions.empty()) continue;
    Field& mine = local.FindOrInsert(name);
    bool changed;
    if (mine.versions.empty()) {
      // New to us: keep what we have not already seen (and so discarded) before.
      for (const Version& v : theirs.versions) {
        if (!local_vv.Covers(v.dot)) mine.versions.push_back(v);
      }
      changed = !mine.versions.empty();
      // Siblings are news here as much as on a replica that held an older version of the field.
      if (mine.versions.size() > 1 && policy.For(name) != FieldPolicy::kCounter) {
        ReportSiblings(local.key(), name, mine, policy, effects.conflicts);
      }
      if (!changed) {
        const std::string& dropped = name;  // clang before 16 cannot capture a structured binding
        auto& fields = local.mutable_fields();
        fields.erase(std::find_if(fields.begin(), fields.end(),
                                  [&](const auto& f) { return f.first == dropped; }));
      }
    } else if (policy.For(name) == FieldPolicy::kCounter) {
      changed = MergeCounter(mine, theirs);
    } else {
      changed = MergeRegister(mine, theirs, local_vv, incoming.vv(), local.key(), name, policy,
                              effects.conflicts);
    }
    if (changed) effects.changed_fields.push_back(name);
  }
  if (!local_vv.Covers(incoming.vv())) {
    local.mutable_vv().Merge(incoming.vv());
    effects.vv_changed = true;
  }
  return effects;
}

}  // namespace

MergeEffects MergeInto(Record& local, const Record& incoming, const MergePolicy& policy) {
  return MergeFields(local, incoming, policy);
}

MergeEffects MergeInto(Record& local, Record&& incoming, const MergePolicy& policy) {
  const bool has_empty_field =
      std::any_of(incoming.fields().begin(), incoming.fields().end(),
                  [](const auto& field) { return field.second.versions.empty(); });
  if (!local.fields().empty() || !local.vv().empty() || has_empty_field) {
    return MergeFields(local, incoming, policy);
  }
  // Nothing here yet: the merge keeps every incoming version, so take the record whole. This is
  // the first sync of a table, where it spares a copy of every field of every record.
  MergeEffects effects;
  effects.changed_fields.reserve(incoming.fields().size());
  for (const auto& [name, field] : incoming.fields()) {
    effects.changed_fields.push_back(name);
    if (field.versions.size() > 1 && policy.For(name) != FieldPolicy::kCounter) {
      ReportSiblings(incoming.key(), name, field, policy, effects.conflicts);
    }
  }
  effects.vv_changed = !incoming.vv().empty();
  local = std::move(incoming);
  return effects;
}

Result<MergeEffects> MergeDeltaInto(Record& local, const RecordDelta& delta,
                                    const MergePolicy& policy) {
  if (!local.vv().Covers(delta.base)) {
    return FailedPrecondition("delta of a record whose earlier writes this replica lacks");
  }
  return MergeFields(local, delta.record, policy);
}

MergeOutcome Merge(const Record& local, const Record& incoming, const MergePolicy& policy) {
  MergeOutcome outcome{local, {}};
  outcome.effects = MergeInto(outcome.record, incoming, policy);
  return outcome;
}

}  // namespace lockstep::core
