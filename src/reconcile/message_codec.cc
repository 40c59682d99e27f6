// The grammar is in message.h.
#include <algorithm>

#include "base/bytes.h"
#include "reconcile/fingerprint.h"
#include "reconcile/message.h"

namespace lockstep::reconcile {
namespace {

using base::ByteReader;
using base::ByteWriter;

enum EntryTag : uint8_t { kSplitTag = 1, kLackingTag = 2, kKeysTag = 3, kRecentTag = 4 };
constexpr uint8_t kNameKeysFlag = 1;
constexpr uint8_t kRecentFlag = 2;
constexpr unsigned kPrefixBytes = 4;
constexpr uint8_t kRecentRestFlag = 1;
constexpr uint8_t kRecentMoreFlag = 2;
constexpr uint8_t kRecentRoundFlag = 4;

size_t VarintSize(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// Without overflow for any count a peer may claim.
size_t BitmapBytes(uint64_t bits) { return static_cast<size_t>(bits / 8 + (bits % 8 != 0)); }

void PutFixed(ByteWriter& out, uint64_t value, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) out.PutByte(static_cast<uint8_t>(value >> (8 * i)));
}

void PutRange(ByteWriter& out, const RangeId& range) {
  out.PutByte(range.depth);
  out.PutVarint(range.prefix);
}

void PutBitmap(ByteWriter& out, uint64_t bits, const std::vector<uint64_t>& set_bits) {
  std::string bitmap(BitmapBytes(bits), '\0');
  for (uint64_t i : set_bits) bitmap[i / 8] = static_cast<char>(bitmap[i / 8] | (1 << (i % 8)));
  out.PutBytes(bitmap);
}

// A probe whose kind (listed or not) is written elsewhere.
void PutProbe(ByteWriter& out, const RangeProbe& probe, const SessionParams& params) {
  if (!probe.listed) {
    PutFixed(out, probe.fingerprint, params.fingerprint_bytes);
    return;
  }
  out.PutVarint(probe.items.size());
  for (uint64_t item : probe.items) PutFixed(out, item, params.item_bytes);
}

size_t ProbeSize(const RangeProbe& probe, const SessionParams& params) {
  return probe.listed ? VarintSize(probe.items.size()) + probe.items.size() * params.item_bytes
                      : params.fingerprint_bytes;
}

void PutEntry(ByteWriter& out, const Entry& entry, const SessionParams& params) {
  if (const auto* split = std::get_if<SplitEntry>(&entry)) {
    out.PutByte(kSplitTag);
    PutRange(out, split->range);
    out.PutByte(split->bits);
    std::vector<uint64_t> listed;
    for (size_t i = 0; i < split->children.size(); ++i) {
      if (split->children[i].listed) listed.push_back(i);
    }
    PutBitmap(out, split->children.size(), listed);
    for (const RangeProbe& probe : split->children) PutProbe(out, probe, params);
  } else if (const auto* lacking = std::get_if<LackingEntry>(&entry)) {
    out.PutByte(kLackingTag);
    PutRange(out, lacking->range);
    out.PutVarint(lacking->listed);
    PutBitmap(out, lacking->listed, lacking->indices);
  } else if (const auto* keys = std::get_if<KeysEntry>(&entry)) {
    out.PutByte(kKeysTag);
    out.PutVarint(keys->keys.size());
    for (const std::string& key : keys->keys) out.PutLengthPrefixed(key);
  } else {
    const auto& recent = std::get<RecentEntry>(entry);
    out.PutByte(kRecentTag);
    out.PutVarint(recent.prefixes.size());
    for (uint32_t prefix : recent.prefixes) PutFixed(out, prefix, kPrefixBytes);
    out.PutByte((recent.has_rest ? kRecentRestFlag : 0) | (recent.more ? kRecentMoreFlag : 0) |
                (recent.round > 0 ? kRecentRoundFlag : 0));
    if (recent.round > 0) out.PutVarint(recent.round);
    if (recent.has_rest) {
      out.PutByte(recent.rest.listed ? 1 : 0);
      PutProbe(out, recent.rest, params);
      out.PutVarint(recent.lists.size());
      for (const std::vector<uint64_t>& list : recent.lists) {
        PutProbe(out, RangeProbe{true, 0, list}, params);
      }
    }
  }
}

Status Corrupt(std::string_view what) { return DataLoss(std::string(what)); }

Result<uint64_t> ReadFixed(ByteReader& in, unsigned bytes, std::string_view what) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::string_view raw, in.ReadBytes(bytes, what));
  uint64_t value = 0;
  for (unsigned i = 0; i < bytes; ++i) {
    value |= uint64_t{static_cast<unsigned char>(raw[i])} << (8 * i);
  }
  return value;
}

Result<RangeId> ReadRange(ByteReader& in) {
  RangeId range;
  LOCKSTEP_ASSIGN_OR_RETURN(range.depth, in.ReadByte("range depth"));
  LOCKSTEP_ASSIGN_OR_RETURN(range.prefix, in.ReadVarint("range prefix"));
  if (!range.valid()) return Corrupt("range outside the position space");
  return range;
}

// The indices of the set bits of a bitmap of `bits` bits, whose padding must be zero.
Result<std::vector<uint64_t>> ReadBitmap(ByteReader& in, uint64_t bits, std::string_view what) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::string_view raw, in.ReadBytes(BitmapBytes(bits), what));
  std::vector<uint64_t> set_bits;
  for (size_t byte = 0; byte < raw.size(); ++byte) {
    const auto value = static_cast<unsigned char>(raw[byte]);
    for (unsigned bit = 0; bit < 8; ++bit) {
      if ((value & (1u << bit)) == 0) continue;
      const uint64_t index = byte * 8 + bit;
      if (index >= bits) return Corrupt(std::string(what) + " has padding bits set");
      set_bits.push_back(index);
    }
  }
  return set_bits;
}

// Reads the body of `probe`, whose `listed` is already set.
Status ReadProbe(ByteReader& in, const SessionParams& params, RangeProbe& probe) {
  if (!probe.listed) {
    LOCKSTEP_ASSIGN_OR_RETURN(probe.fingerprint,
                              ReadFixed(in, params.fingerprint_bytes, "fingerprint"));
    return Status::Ok();
  }
  LOCKSTEP_ASSIGN_OR_RETURN(size_t items, in.ReadCount("item count", params.item_bytes));
  probe.items.reserve(items);
  for (size_t i = 0; i < items; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(uint64_t item, ReadFixed(in, params.item_bytes, "item hash"));
    if (!probe.items.empty() && item < probe.items.back()) {
      return Corrupt("item hashes out of order");
    }
    probe.items.push_back(item);
  }
  return Status::Ok();
}

// A byte that must be 0 or 1.
Result<bool> ReadBool(ByteReader& in, std::string_view what) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint8_t byte, in.ReadByte(what));
  if (byte > 1) return Corrupt(std::string(what) + " is neither 0 nor 1");
  return byte == 1;
}

Result<SplitEntry> ReadSplit(ByteReader& in, const SessionParams& params) {
  SplitEntry split;
  LOCKSTEP_ASSIGN_OR_RETURN(split.range, ReadRange(in));
  LOCKSTEP_ASSIGN_OR_RETURN(split.bits, in.ReadByte("split bits"));
  if (split.bits > kMaxSplitBits || split.range.depth + split.bits > kPositionBits) {
    return Corrupt("split too wide");
  }
  const uint64_t count = uint64_t{1} << split.bits;
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<uint64_t> listed, ReadBitmap(in, count, "listed bitmap"));
  split.children.resize(count);
  for (uint64_t i : listed) split.children[i].listed = true;
  for (RangeProbe& probe : split.children) LOCKSTEP_RETURN_IF_ERROR(ReadProbe(in, params, probe));
  return split;
}

Result<LackingEntry> ReadLacking(ByteReader& in) {
  LackingEntry lacking;
  LOCKSTEP_ASSIGN_OR_RETURN(lacking.range, ReadRange(in));
  LOCKSTEP_ASSIGN_OR_RETURN(lacking.listed, in.ReadVarint("lacking count"));
  if (BitmapBytes(lacking.listed) > in.remaining()) return Corrupt("lacking bitmap truncated");
  LOCKSTEP_ASSIGN_OR_RETURN(lacking.indices, ReadBitmap(in, lacking.listed, "lacking bitmap"));
  return lacking;
}

Result<KeysEntry> ReadKeys(ByteReader& in) {
  KeysEntry keys;
  LOCKSTEP_ASSIGN_OR_RETURN(size_t count, in.ReadCount("key count", 1));
  keys.keys.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::string_view key, in.ReadLengthPrefixed("key", kMaxKeyBytes));
    keys.keys.emplace_back(key);
  }
  return keys;
}

Result<RecentEntry> ReadRecent(ByteReader& in, const SessionParams& params) {
  RecentEntry recent;
  LOCKSTEP_ASSIGN_OR_RETURN(size_t count, in.ReadCount("recent count", kPrefixBytes));
  if (count > kMaxRecentPrefixes) return Corrupt("too many recent prefixes");
  recent.prefixes.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(uint64_t prefix, ReadFixed(in, kPrefixBytes, "recent prefix"));
    if (!recent.prefixes.empty() && prefix <= recent.prefixes.back()) {
      return Corrupt("recent prefixes out of order");
    }
    recent.prefixes.push_back(static_cast<uint32_t>(prefix));
  }
  LOCKSTEP_ASSIGN_OR_RETURN(uint8_t flags, in.ReadByte("recent flags"));
  if ((flags & ~(kRecentRestFlag | kRecentMoreFlag | kRecentRoundFlag)) != 0) {
    return Corrupt("unknown recent flags");
  }
  recent.has_rest = (flags & kRecentRestFlag) != 0;
  recent.more = (flags & kRecentMoreFlag) != 0;
  if ((flags & kRecentRoundFlag) != 0) {
    LOCKSTEP_ASSIGN_OR_RETURN(uint64_t round, in.ReadVarint("recent round"));
    // Round 0 has exactly one encoding: without the flag.
    if (round == 0 || round >= kMaxRecentRounds) return Corrupt("bad recent round");
    recent.round = static_cast<uint8_t>(round);
  }
  if (recent.has_rest) {
    LOCKSTEP_ASSIGN_OR_RETURN(recent.rest.listed, ReadBool(in, "recent rest kind"));
    LOCKSTEP_RETURN_IF_ERROR(ReadProbe(in, params, recent.rest));
    LOCKSTEP_ASSIGN_OR_RETURN(size_t lists, in.ReadCount("recent lists", 1));
    if (lists > 2 * kMaxRecentPrefixes) return Corrupt("too many recent lists");
    recent.lists.reserve(lists);
    for (size_t i = 0; i < lists; ++i) {
      RangeProbe list{true, 0, {}};
      LOCKSTEP_RETURN_IF_ERROR(ReadProbe(in, params, list));
      recent.lists.push_back(std::move(list.items));
    }
  }
  return recent;
}

// Appends the entry read to `entries` (appending, rather than returning an Entry, keeps GCC's
// -Wmaybe-uninitialized quiet about moving variants).
Status ReadEntry(ByteReader& in, const SessionParams& params, std::vector<Entry>& entries) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint8_t tag, in.ReadByte("entry tag"));
  switch (tag) {
    case kSplitTag: {
      LOCKSTEP_ASSIGN_OR_RETURN(SplitEntry split, ReadSplit(in, params));
      entries.emplace_back(std::move(split));
      return Status::Ok();
    }
    case kLackingTag: {
      LOCKSTEP_ASSIGN_OR_RETURN(LackingEntry lacking, ReadLacking(in));
      entries.emplace_back(std::move(lacking));
      return Status::Ok();
    }
    case kKeysTag: {
      LOCKSTEP_ASSIGN_OR_RETURN(KeysEntry keys, ReadKeys(in));
      entries.emplace_back(std::move(keys));
      return Status::Ok();
    }
    case kRecentTag: {
      LOCKSTEP_ASSIGN_OR_RETURN(RecentEntry recent, ReadRecent(in, params));
      entries.emplace_back(std::move(recent));
      return Status::Ok();
    }
    default:
      return Corrupt("unknown entry tag " + std::to_string(tag));
  }
}

Status ReadHeader(ByteReader& in, Message& message) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint8_t version, in.ReadByte("version"));
  if (version != kReconcileVersion) return Corrupt("unknown version " + std::to_string(version));
  LOCKSTEP_ASSIGN_OR_RETURN(uint8_t kind, in.ReadByte("kind"));
  if (kind != 1 && kind != 2) return Corrupt("unknown kind " + std::to_string(kind));
  message.kind = static_cast<MessageKind>(kind);
  LOCKSTEP_ASSIGN_OR_RETURN(message.id, in.ReadVarint("id"));
  LOCKSTEP_ASSIGN_OR_RETURN(message.part, in.ReadVarint("part"));
  LOCKSTEP_ASSIGN_OR_RETURN(message.parts, in.ReadVarint("parts"));
  const bool request = message.kind == MessageKind::kRequest;
  if (request
          ? (message.part != 0 || message.parts != 1)
          : (message.parts == 0 || message.parts > kMaxParts || message.part >= message.parts)) {
    return Corrupt("bad part numbers");
  }
  LOCKSTEP_ASSIGN_OR_RETURN(message.params.seed, ReadFixed(in, 8, "seed"));
  LOCKSTEP_ASSIGN_OR_RETURN(message.params.fingerprint_bytes, in.ReadByte("fingerprint width"));
  LOCKSTEP_ASSIGN_OR_RETURN(message.params.item_bytes, in.ReadByte("item width"));
  for (uint8_t width : {message.params.fingerprint_bytes, message.params.item_bytes}) {
    if (width < kMinHashBytes || width > kMaxHashBytes) return Corrupt("bad hash width");
  }
  LOCKSTEP_ASSIGN_OR_RETURN(uint8_t flags, in.ReadByte("flags"));
  if ((flags & ~(kNameKeysFlag | kRecentFlag)) != 0) return Corrupt("unknown flags");
  message.params.name_keys = (flags & kNameKeysFlag) != 0;
  message.params.recent = (flags & kRecentFlag) != 0;
  return Status::Ok();
}

}  // namespace

std::string EncodeMessage(const Message& message) {
  std::string bytes;
  ByteWriter out(bytes);
  out.PutByte(kReconcileVersion);
  out.PutByte(static_cast<uint8_t>(message.kind));
  out.PutVarint(message.id);
  out.PutVarint(message.part);
  out.PutVarint(message.parts);
  PutFixed(out, message.params.seed, 8);
  out.PutByte(message.params.fingerprint_bytes);
  out.PutByte(message.params.item_bytes);
  out.PutByte((message.params.name_keys ? kNameKeysFlag : 0) |
              (message.params.recent ? kRecentFlag : 0));
  out.PutVarint(message.entries.size());
  for (const Entry& entry : message.entries) PutEntry(out, entry, message.params);
  return bytes;
}

size_t EncodedEntrySize(const Entry& entry, const SessionParams& params) {
  if (const auto* split = std::get_if<SplitEntry>(&entry)) {
    size_t size = 3 + VarintSize(split->range.prefix) + BitmapBytes(split->children.size());
    for (const RangeProbe& probe : split->children) size += ProbeSize(probe, params);
    return size;
  }
  if (const auto* lacking = std::get_if<LackingEntry>(&entry)) {
    return 2 + VarintSize(lacking->range.prefix) + VarintSize(lacking->listed) +
           BitmapBytes(lacking->listed);
  }
  if (const auto* keys = std::get_if<KeysEntry>(&entry)) {
    size_t size = 1 + VarintSize(keys->keys.size());
    for (const std::string& key : keys->keys) size += VarintSize(key.size()) + key.size();
    return size;
  }
  const auto& recent = std::get<RecentEntry>(entry);
  size_t size = 2 + VarintSize(recent.prefixes.size()) + recent.prefixes.size() * kPrefixBytes;
  if (recent.round > 0) size += VarintSize(recent.round);
  if (recent.has_rest) {
    size += 1 + ProbeSize(recent.rest, params) + VarintSize(recent.lists.size());
    for (const auto& list : recent.lists)
      size += VarintSize(list.size()) + list.size() * params.item_bytes;
  }
  return size;
}

namespace {

Result<Message> Decode(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) return Corrupt("larger than the limit");
  ByteReader in(bytes);
  Message message;
  LOCKSTEP_RETURN_IF_ERROR(ReadHeader(in, message));
  // Every entry takes at least two bytes (a tag and a count or a range).
  LOCKSTEP_ASSIGN_OR_RETURN(size_t count, in.ReadCount("entry count", 2));
  message.entries.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    LOCKSTEP_RETURN_IF_ERROR(ReadEntry(in, message.params, message.entries));
  }
  if (!in.empty()) return Corrupt("trailing bytes");
  return message;
}

}  // namespace

Result<Message> DecodeMessage(std::string_view bytes) {
  Result<Message> message = Decode(bytes);
  if (!message) return message.error().WithContext("reconcile message");
  return message;
}

}  // namespace lockstep::reconcile
