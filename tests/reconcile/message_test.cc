#include "reconcile/message.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace lockstep::reconcile {
namespace {

Message SampleMessage() {
  Message message;
  message.kind = MessageKind::kAnswer;
  message.id = 300;
  message.part = 1;
  message.parts = 3;
  message.params = {0x0123456789abcdef, 8, 6, true};
  SplitEntry split{{4, 9}, 2, {}};
  split.children.push_back({false, 0xfedcba9876543210, {}});
  split.children.push_back({true, 0, {}});
  split.children.push_back({true, 0, {1, 1, 0xffffffffffff}});
  split.children.push_back({false, 7, {}});
  message.entries.emplace_back(split);
  message.entries.emplace_back(LackingEntry{{64, ~uint64_t{0}}, 11, {0, 7, 10}});
  message.entries.emplace_back(KeysEntry{{"a", std::string("\0b", 2), ""}});
  message.entries.emplace_back(SplitEntry{kWholeRange, 0, {{false, 42, {}}}});
  // Built field by field: GCC 12 at -O3 misreads the empty vectors of braced temporaries here as
  // uninitialized (-Wmaybe-uninitialized).
  auto recent = [](std::vector<uint32_t> prefixes, std::optional<RangeProbe> rest,
                   std::vector<std::vector<uint64_t>> lists, uint8_t round, bool more) {
    RecentEntry entry;
    entry.prefixes = std::move(prefixes);
    entry.has_rest = rest.has_value();
    if (rest.has_value()) entry.rest = std::move(*rest);
    entry.lists = std::move(lists);
    entry.round = round;
    entry.more = more;
    return entry;
  };
  RangeProbe listed;
  listed.listed = true;
  listed.items = {3, 4};
  RangeProbe fingerprinted;
  fingerprinted.fingerprint = 3;
  message.entries.emplace_back(recent({1, 2, 0xffffffff}, listed, {{}, {5}, {6, 7}}, 0, false));
  message.entries.emplace_back(RecentEntry{});
  message.entries.emplace_back(recent({4}, std::nullopt, {}, 2, true));
  message.entries.emplace_back(recent({6, 8}, fingerprinted, {{1}, {}}, 4, false));
  return message;
}

TEST(MessageTest, EncodingRoundTripsAndMatchesEntrySizes) {
  const Message message = SampleMessage();
  const std::string bytes = EncodeMessage(message);
  auto decoded = DecodeMessage(bytes);
  ASSERT_TRUE(decoded.has_value()) << decoded.error().ToString();
  EXPECT_EQ(*decoded, message);

  Message empty = message;
  empty.entries.clear();
  size_t entry_bytes = 0;
  for (const Entry& entry : message.entries) entry_bytes += EncodedEntrySize(entry, message.params);
  EXPECT_EQ(EncodeMessage(empty).size() + entry_bytes, bytes.size());
}

TEST(MessageTest, FirstProbeOfAWholeSetIsAFewDozenBytes) {
  Message message;
  message.id = 1;
  message.entries.emplace_back(SplitEntry{kWholeRange, 0, {{false, ~uint64_t{0}, {}}}});
  EXPECT_LE(EncodeMessage(message).size(), 32u);
}

TEST(MessageTest, EveryTruncationIsRefused) {
  const std::string bytes = EncodeMessage(SampleMessage());
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto decoded = DecodeMessage(bytes.substr(0, size));
    ASSERT_FALSE(decoded.has_value()) << "prefix of " << size << " bytes";
    EXPECT_EQ(decoded.error().code(), StatusCode::kDataLoss);
    EXPECT_EQ(decoded.error().message().rfind("reconcile message: ", 0), 0u);
  }
}

// The sample's bytes with one byte replaced, or bytes appended.
std::string Patched(size_t offset, char byte) {
  std::string bytes = EncodeMessage(SampleMessage());
  bytes[offset] = byte;
  return bytes;
}

TEST(MessageTest, MalformedHeadersAreRefused) {
  const std::string good = EncodeMessage(SampleMessage());
  // Header layout of the sample: version, kind, id (2 bytes), part, parts, seed (8), widths, flags.
  EXPECT_FALSE(DecodeMessage(Patched(0, 2)).has_value());                // version
  EXPECT_FALSE(DecodeMessage(Patched(1, 3)).has_value());                // kind
  EXPECT_FALSE(DecodeMessage(Patched(4, 3)).has_value());                // part >= parts
  EXPECT_FALSE(DecodeMessage(Patched(5, 0)).has_value());                // no parts
  EXPECT_FALSE(DecodeMessage(Patched(14, 9)).has_value());               // fingerprint width
  EXPECT_FALSE(DecodeMessage(Patched(15, 3)).has_value());               // item width
  EXPECT_FALSE(DecodeMessage(Patched(16, 4)).has_value());               // unknown flag
  EXPECT_FALSE(DecodeMessage(good + std::string(1, '\0')).has_value());  // trailing byte
  EXPECT_FALSE(DecodeMessage(std::string(kMaxMessageBytes + 1, '\1')).has_value());

  Message request = SampleMessage();
  request.kind = MessageKind::kRequest;  // a request with part 1 of 3
  EXPECT_FALSE(DecodeMessage(EncodeMessage(request)).has_value());
}

// A request whose only entry is `entry`, encoded, with `patch` applied to the entry's bytes.
std::string OneEntry(const Entry& entry, size_t offset = 0, int byte = -1) {
  Message message;
  message.id = 1;
  message.entries.push_back(entry);
  std::string bytes = EncodeMessage(message);
  const size_t entry_start = bytes.size() - EncodedEntrySize(entry, message.params);
  if (byte >= 0) bytes[entry_start + offset] = static_cast<char>(byte);
  return bytes;
}

TEST(MessageTest, MalformedEntriesAreRefused) {
  const SplitEntry split{{4, 9}, 1, {{true, 0, {5, 6}}, {false, 3, {}}}};
  ASSERT_TRUE(DecodeMessage(OneEntry(split)).has_value());
  // Entry layout: tag, depth, prefix, bits, listed bitmap, then the probes.
  EXPECT_FALSE(DecodeMessage(OneEntry(split, 0, 9)).has_value());     // unknown tag
  EXPECT_FALSE(DecodeMessage(OneEntry(split, 1, 65)).has_value());    // depth beyond 64
  EXPECT_FALSE(DecodeMessage(OneEntry(split, 2, 16)).has_value());    // prefix >= 2^depth
  EXPECT_FALSE(DecodeMessage(OneEntry(split, 3, 9)).has_value());     // more than 256 children
  EXPECT_FALSE(DecodeMessage(OneEntry(split, 4, 0x05)).has_value());  // listed padding bit
  EXPECT_FALSE(DecodeMessage(OneEntry(split, 6, 7)).has_value());     // items out of order
  EXPECT_FALSE(DecodeMessage(OneEntry(SplitEntry{{60, 0}, 5, std::vector<RangeProbe>(32)}))
                   .has_value());  // split beyond the 64th bit

  const LackingEntry lacking{{8, 1}, 3, {2}};
  ASSERT_TRUE(DecodeMessage(OneEntry(lacking)).has_value());
  EXPECT_FALSE(DecodeMessage(OneEntry(lacking, 4, 0x08)).has_value());  // bit past the count
  // A count that claims far more bits than the input holds.
  EXPECT_FALSE(
      DecodeMessage(OneEntry(LackingEntry{{8, 1}, 1000000, {}}).substr(0, 40)).has_value());

  EXPECT_FALSE(DecodeMessage(OneEntry(KeysEntry{{"abc"}}, 1, 100)).has_value());  // key count

  const RecentEntry recent{{5, 9}, true, {false, 7, {}}, {{}, {2}}};
  ASSERT_TRUE(DecodeMessage(OneEntry(recent)).has_value());
  // Entry layout: tag, count, two 4-byte prefixes, rest flag, rest kind, fingerprint.
  EXPECT_FALSE(DecodeMessage(OneEntry(recent, 2, 9)).has_value());   // prefixes out of order
  EXPECT_FALSE(DecodeMessage(OneEntry(recent, 10, 9)).has_value());  // unknown recent flag
  EXPECT_FALSE(DecodeMessage(OneEntry(recent, 11, 7)).has_value());  // rest kind not 0 or 1
  EXPECT_FALSE(DecodeMessage(OneEntry(RecentEntry{{}, true, {}, {{9, 8}}})).has_value());
  // Rounds: flag bit 2 then a varint in 1..kMaxRecentRounds - 1; round 0 only without the flag.
  const RecentEntry later{{5}, false, {}, {}, 3, true};
  ASSERT_TRUE(DecodeMessage(OneEntry(later)).has_value());
  // Entry layout: tag, count, one 4-byte prefix, flags, round.
  EXPECT_FALSE(DecodeMessage(OneEntry(later, 7, 0)).has_value());  // round 0 under the flag
  EXPECT_FALSE(DecodeMessage(OneEntry(later, 7, kMaxRecentRounds)).has_value());  // round too late
  EXPECT_FALSE(DecodeMessage(OneEntry(later, 6, 2)).has_value());  // flag off: a stray byte
  RecentEntry too_many;
  for (uint32_t i = 0; i <= kMaxRecentPrefixes; ++i) too_many.prefixes.push_back(i);
  EXPECT_FALSE(DecodeMessage(OneEntry(too_many)).has_value());
}

}  // namespace
}  // namespace lockstep::reconcile
