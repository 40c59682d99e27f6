// Record deltas: the fields of a record written after some point, sent instead of the whole record.
//
// A delta carries the record's whole version vector, so it merges exactly like a full record,
// plus `base`: the pointwise maximum of the dots of the fields it omits. A receiver whose version
// vector covers `base` has seen every omitted write, so taking the whole version vector claims
// nothing it lacks. A receiver that does not (a delta arriving out of order, or after one was
// lost) must not merge it: claiming the omitted writes would later make it discard them as
// already seen.
#pragma once

#include <string>
#include <vector>

#include "core/record.h"
#include "core/version_vector.h"

namespace lockstep::core {

struct RecordDelta {
  Record record;       // the included fields, with the record's whole version vector
  VersionVector base;  // empty when the delta holds every field

  friend bool operator==(const RecordDelta&, const RecordDelta&) = default;
};

// The delta of `full` holding the fields for which `include(name)` is true.
template <typename Predicate>
RecordDelta MakeDelta(const Record& full, Predicate include) {
  RecordDelta delta{Record(full.key()), {}};
  delta.record.mutable_vv() = full.vv();
  for (const auto& [name, field] : full.fields()) {
    if (include(name)) {
      delta.record.mutable_fields().emplace_back(name, field);
      continue;
    }
    for (const Version& version : field.versions) delta.base.Advance(version.dot);
  }
  return delta;
}

}  // namespace lockstep::core
