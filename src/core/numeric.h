// Arithmetic on numeric values, for counter fields: integers stay integers until a result would
// overflow int64, which then becomes a float (so a sum is never silently wrapped).
#pragma once

#include "lockstep/value.h"

namespace lockstep::core {

// REQUIRES: both numeric (a non-number counts as 0).
Value AddNumbers(const Value& a, const Value& b);
Value SubtractNumbers(const Value& a, const Value& b);

}  // namespace lockstep::core
