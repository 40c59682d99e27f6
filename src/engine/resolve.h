// Resolving a conflict by hand, for collections with the `manual` policy.
#pragma once

#include <optional>
#include <string>

#include "connectors/source.h"

namespace lockstep::engine {

// Which value a resolution keeps: the one written here, the one from elsewhere, or a new one.
struct Resolution {
  enum class Take { kLocal, kRemote, kValue };
  Take take = Take::kValue;
  Value value;                       // for kValue
  std::optional<std::string> field;  // empty: every field that has siblings
};

// Parses `--take local|remote|LITERAL`; text that is not a literal is taken as text.
Resolution ParseTake(const std::string& take);

// Writes the resolution as a new local write that covers every sibling, so the choice replicates
// and every replica drops the siblings. `key_text` is "TABLE:KEY" with KEY as `conflicts list`
// prints it. Errors: kNotFound (no such record, or nothing unresolved in it), kInvalidArgument.
Status ResolveConflict(connectors::Source& source, const std::string& key_text,
                       const Resolution& resolution);

}  // namespace lockstep::engine
