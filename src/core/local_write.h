// Local writes: how a change made on this node enters its own replica of a record.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/policy.h"
#include "core/record.h"
#include "lockstep/status.h"

namespace lockstep::core {

// One write by this node: a fresh dot and HLC, and the fields it sets. An insert or update sets
// `_exists` to 1; a delete (`exists = false`) sets it to 0 and leaves the other fields as the
// tombstone.
struct LocalWrite {
  Dot dot;
  Hlc hlc;
  std::vector<std::pair<std::string, Value>> fields;
  bool exists = true;
};

// Applies `write` to `record`: each written register field becomes the single version
// (value, dot, hlc), covering any siblings it replaces (a manual resolution is such a write); a
// counter field takes the written value as its new total, recorded as a change of this node's
// contribution. Returns the names of the fields that changed.
// Fails with kInvalidArgument, changing nothing, when a counter field is given text or a blob;
// NULL counts as zero there (a row inserted without the column).
// REQUIRES: write.dot is new (its counter exceeds every counter of its node in record.vv()).
Result<std::vector<std::string>> ApplyLocalWrite(Record& record, const LocalWrite& write,
                                                 const MergePolicy& policy);

}  // namespace lockstep::core
