// The messages of set reconciliation as plain values, and their compact binary encoding. The
// initiator sends requests, the responder answers each with one or more parts; every entry names
// the ranges it is about, so entries can be answered in any order and a lost message is simply
// sent again. docs/PROTOCOL.md ("Reconciliation") describes the exchange.
//
// Encoding (integers are minimal LEB128 varints unless marked; fixed(n) is n bytes, little-endian):
//
//   message  := version:u8(=1) kind:u8(1 request | 2 answer) id:varint part:varint parts:varint
//               seed:fixed(8) fingerprint_bytes:u8(4..8) item_bytes:u8(4..8) flags:u8
//               count:varint entry{count}
//   entry    := 1 range bits:u8(0..8) listed:bitmap(2^bits) probe{2^bits}     -- split
//             | 2 range count:varint lacking:bitmap(count)                     -- lacking
//             | 3 count:varint (length:varint key){count}                      -- keys
//             | 4 count:varint(<= 65536) prefix:fixed(4){count} recent_flags:u8
//               round:varint(1..4)?                              (when recent_flags bit 2)
//               (listed:u8(0|1) probe lists:varint(<= 131072) list{lists})?  -- recent
//                                      (when recent_flags bit 0; prefixes ascending, unique)
//   recent_flags := bit 0: has_rest, bit 1: more, bit 2: round > 0; the other bits are 0
//   list     := count:varint item:fixed(item_bytes){count}                     (ascending)
//   range    := depth:u8(0..64) prefix:varint(< 2^depth)
//   probe    := fingerprint:fixed(fingerprint_bytes)                (its bit of `listed` is 0)
//             | count:varint item:fixed(item_bytes){count}           (its bit is 1; ascending)
//   bitmap(n):= ceil(n / 8) bytes, bit i of the list is bit (i % 8) of byte i / 8; padding is 0
//   flags    := bit 0: name_keys, bit 1: recent; the other bits are 0
//
// A request has part 0 and parts 1. The decoder accepts exactly one encoding of each message, so
// decoding then encoding returns the input.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lockstep/status.h"
#include "reconcile/range_id.h"

namespace lockstep::reconcile {

inline constexpr uint8_t kReconcileVersion = 1;
inline constexpr unsigned kMaxSplitBits = 8;     // at most 256 sub-ranges per split
inline constexpr uint64_t kMaxParts = 1 << 16;   // parts of one answer
inline constexpr size_t kMaxKeyBytes = 1 << 20;  // as core/codec.h
// The largest message; the decoder's allocations stay within a small multiple of it.
inline constexpr size_t kMaxMessageBytes = 1 << 20;

// What one side holds in one range: a fingerprint of the range's summary, or, when it holds
// few items there, the short hashes of all of them in ascending order.
struct RangeProbe {
  bool listed = false;
  uint64_t fingerprint = 0;     // when !listed
  std::vector<uint64_t> items;  // when listed
  friend bool operator==(const RangeProbe&, const RangeProbe&) = default;
};

// `range` cut into 2^bits equal sub-ranges and the sender's probe of each. bits = 0 probes
// `range` itself (the first message probes the whole set this way).
struct SplitEntry {
  RangeId range;
  uint8_t bits = 0;
  std::vector<RangeProbe> children;  // 2^bits of them, in position order
  friend bool operator==(const SplitEntry&, const SplitEntry&) = default;
};

// The answer to a listed probe of `range` with `listed` items: the indices (ascending) of the
// items the answering side lacks, which the lister must therefore send.
struct LackingEntry {
  RangeId range;
  uint64_t listed = 0;
  std::vector<uint64_t> indices;
  friend bool operator==(const LackingEntry&, const LackingEntry&) = default;
};

// Keys whose records the sender has found it must send (only when the session names keys), so
// that the receiver knows what it needs.
struct KeysEntry {
  std::vector<std::string> keys;
  friend bool operator==(const KeysEntry&, const KeysEntry&) = default;
};

// The sender's recently changed records, as the top 32 bits of their positions. The responder
// sends its own when the initiator's whole set differs from its own; the initiator then sends
// its own too, with `rest`: its probe of the whole set without the ranges around either side's
// recent records (excluding_item_set.h), which the rest of the session reconciles, and `lists`:
// the short hashes of its items in each of those ranges (the union of both sides' prefixes, in
// ascending order), which the responder answers like listed probes. When they would make the
// entry too large, `lists` is empty and each range travels as a split entry of its own instead.
//
// A side that does not know when the two last agreed offers its recent changes in growing
// windows, newest first: round 0 carries the first, and when most of the ranges a round compared
// differed and the rest still does, the responder opens round r + 1 with its next window instead
// of splitting the rest, and the initiator answers with its own next window, a new probe of the
// rest and the lists of the ranges this round adds (those of both windows not left out before).
struct RecentEntry {
  std::vector<uint32_t> prefixes;
  bool has_rest = false;
  RangeProbe rest;                           // when has_rest
  std::vector<std::vector<uint64_t>> lists;  // when has_rest
  uint8_t round = 0;                         // < kMaxRecentRounds
  bool more = false;  // the sender has recent changes beyond this round's window
  friend bool operator==(const RecentEntry&, const RecentEntry&) = default;
};
inline constexpr size_t kMaxRecentPrefixes = 1 << 16;  // of one side
// Windows of 16 * 8^r changes (the engine's) cover kMaxRecentPrefixes in 5 rounds: 16, 144,
// 1,168, 9,360, 74,896 in all, so that with the first and last round trips a session stays
// within 6 when the windows find every difference.
inline constexpr uint8_t kMaxRecentRounds = 5;

using Entry = std::variant<SplitEntry, LackingEntry, KeysEntry, RecentEntry>;

enum class MessageKind : uint8_t { kRequest = 1, kAnswer = 2 };

// The parameters the initiator fixes for a session; every message repeats them, so that each one
// can be read alone.
struct SessionParams {
  uint64_t seed = 0;
  uint8_t fingerprint_bytes = 8;
  uint8_t item_bytes = 6;
  bool name_keys = false;
  bool recent = false;  // the initiator has recent changes to compare first
  friend bool operator==(const SessionParams&, const SessionParams&) = default;
};

struct Message {
  MessageKind kind = MessageKind::kRequest;
  uint64_t id = 0;     // a request's number, or the number of the request an answer answers
  uint64_t part = 0;   // which part of the answer this is, from 0
  uint64_t parts = 1;  // how many parts the answer has
  SessionParams params;
  std::vector<Entry> entries;
  friend bool operator==(const Message&, const Message&) = default;
};

std::string EncodeMessage(const Message& message);
// The bytes EncodeMessage would add for `entry` under `params`.
size_t EncodedEntrySize(const Entry& entry, const SessionParams& params);

// Decodes a message from a peer. Errors (kDataLoss, "reconcile message: ...") for anything but
// exactly one valid encoding; allocates no more than the input's size justifies.
Result<Message> DecodeMessage(std::string_view bytes);

}  // namespace lockstep::reconcile
