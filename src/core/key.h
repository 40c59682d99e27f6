// Record keys: a primary key tuple encoded so that comparing the bytes (memcmp) orders keys as
// SQLite orders the tuples — integers numerically, text and blobs bytewise — for keys whose
// columns each hold one storage class. Batches sorted by encoded key therefore reach the user's
// table and the store in index order, which is what keeps bulk upserts fast.
//
//   key   := { item }
//   item  := 0x05                         NULL
//          | 0x10 be64(int64 ^ 2^63)      integer
//          | 0x11 be64(totalorder(f64))   float (NaN canonical)
//          | 0x20 escaped 0x00 0x01       text
//          | 0x30 escaped 0x00 0x01       blob
//   escaped: each 0x00 byte written as 0x00 0xff, so the 0x00 0x01 terminator sorts first.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/status.h"
#include "lockstep/value.h"

namespace lockstep::core {

std::string EncodeKey(std::span<const Value> columns);
// Errors are kDataLoss; the result re-encodes to exactly `bytes`.
Result<std::vector<Value>> DecodeKey(std::string_view bytes);

// A human-readable form of a key for messages and listings: "42", "'ann'|7".
std::string KeyToString(std::string_view bytes);

// One literal as Value::ToString prints it: NULL, an integer, a float, 'text' (inner quotes
// doubled) or x'hex'. Errors are kInvalidArgument.
Result<Value> ParseLiteral(std::string_view text);

// The inverse of KeyToString: literals separated by '|'.
Result<std::vector<Value>> ParseKeyText(std::string_view text);

}  // namespace lockstep::core
