#include "reconcile/reconciler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "reconcile/excluding_item_set.h"
#include "session_harness.h"

namespace lockstep::reconcile {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::MakeSet;
using testing::Reconcile;

using Records = std::vector<std::pair<std::string, std::string>>;

Records Numbered(int count, const std::string& version = "v1") {
  Records records;
  for (int i = 0; i < count; ++i) records.emplace_back("key" + std::to_string(i), version);
  return records;
}

std::vector<std::string> Keys(const Records& records) {
  std::vector<std::string> keys;
  for (const auto& [key, encoding] : records) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

TEST(ReconcilerTest, EmptySetsMatchInOneRoundTrip) {
  MemoryItemSet a = MakeSet({}), b = MakeSet({});
  const auto result = Reconcile(a, b);
  EXPECT_EQ(result.round_trips, 1);
  EXPECT_THAT(result.initiator.send, IsEmpty());
  EXPECT_THAT(result.responder.send, IsEmpty());
}

TEST(ReconcilerTest, EqualLargeSetsMatchInOneRoundTripOfAFewDozenBytes) {
  MemoryItemSet a = MakeSet(Numbered(10000)), b = MakeSet(Numbered(10000));
  const auto result = Reconcile(a, b);
  EXPECT_EQ(result.round_trips, 1);
  EXPECT_LE(result.bytes, 64u);
  EXPECT_THAT(result.initiator.send, IsEmpty());
  EXPECT_THAT(result.responder.send, IsEmpty());
}

TEST(ReconcilerTest, FullSideSendsEverythingToAnEmptyOneEitherWay) {
  const Records records = Numbered(3000);
  MemoryItemSet full = MakeSet(records), empty = MakeSet({});
  const auto pull = Reconcile(empty, full);
  EXPECT_THAT(pull.initiator.send, IsEmpty());
  EXPECT_EQ(pull.responder.send, Keys(records));
  const auto push = Reconcile(full, empty);
  EXPECT_EQ(push.initiator.send, Keys(records));
  EXPECT_THAT(push.responder.send, IsEmpty());
}

TEST(ReconcilerTest, OneMissingItemAmongManyIsFoundAlone) {
  Records records = Numbered(20000);
  MemoryItemSet a = MakeSet(records);
  records.erase(records.begin() + 12345);
  MemoryItemSet b = MakeSet(records);
  const auto result = Reconcile(a, b);
  EXPECT_THAT(result.initiator.send, ElementsAre("key12345"));
  EXPECT_THAT(result.responder.send, IsEmpty());
  EXPECT_LE(result.round_trips, 6);
  EXPECT_LT(result.bytes, 1000u);
}

TEST(ReconcilerTest, SameKeyInAnotherVersionIsSentBothWays) {
  Records records = Numbered(5000);
  MemoryItemSet a = MakeSet(records);
  records[77].second = "v2";
  MemoryItemSet b = MakeSet(records);
  const auto result = Reconcile(a, b);
  EXPECT_THAT(result.initiator.send, ElementsAre("key77"));
  EXPECT_THAT(result.responder.send, ElementsAre("key77"));
}

TEST(ReconcilerTest, AllDifferentVersionsAreAllSentBothWays) {
  const Records old_records = Numbered(2000, "old"), new_records = Numbered(2000, "new");
  MemoryItemSet a = MakeSet(old_records), b = MakeSet(new_records);
  const auto result = Reconcile(a, b);
  EXPECT_EQ(result.initiator.send, Keys(old_records));
  EXPECT_EQ(result.responder.send, Keys(new_records));
  EXPECT_LE(result.round_trips, 6);
}

TEST(ReconcilerTest, NamedKeysTellEachSideWhatItNeeds) {
  Records a_records = Numbered(3000), b_records = Numbered(3000);
  a_records.emplace_back("only-a", "x");
  b_records.emplace_back("only-b", "y");
  b_records[10].second = "v2";
  MemoryItemSet a = MakeSet(a_records), b = MakeSet(b_records);
  Options options;
  options.session.name_keys = true;
  const auto result = Reconcile(a, b, options);
  EXPECT_THAT(result.initiator.send, ElementsAre("key10", "only-a"));
  EXPECT_THAT(result.responder.send, ElementsAre("key10", "only-b"));
  EXPECT_EQ(result.initiator.need, result.responder.send);
  EXPECT_EQ(result.responder.need, result.initiator.send);
}

TEST(ReconcilerTest, SmallMessageLimitCutsAnswersIntoParts) {
  Records a_records = Numbered(5000), b_records = Numbered(5000, "v2");
  MemoryItemSet a = MakeSet(a_records), b = MakeSet(b_records);
  Options options;
  options.max_message_bytes = 300;
  const auto result = Reconcile(a, b, options);
  EXPECT_EQ(result.initiator.send, Keys(a_records));
  EXPECT_EQ(result.responder.send, Keys(b_records));
}

TEST(ReconcilerTest, LateDuplicatesAreIgnoredAndStrangersRefused) {
  Records records = Numbered(500);
  MemoryItemSet a = MakeSet(records);
  records[3].second = "v2";
  MemoryItemSet b = MakeSet(records);
  Initiator initiator(a, {});
  Responder responder(b, {});
  auto requests = initiator.Start();
  ASSERT_TRUE(requests.has_value());
  EXPECT_FALSE(initiator.Start().has_value());
  ASSERT_EQ(requests->size(), 1u);
  auto answers = responder.Receive(requests->front());
  ASSERT_TRUE(answers.has_value());
  // The same request twice gets the same answer.
  EXPECT_EQ(*responder.Receive(requests->front()), *answers);
  auto next = initiator.Receive(answers->front());
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->empty());
  auto again = initiator.Receive(answers->front());
  ASSERT_TRUE(again.has_value());
  EXPECT_THAT(*again, IsEmpty());

  Message stranger = answers->front();
  stranger.id = 99;
  EXPECT_EQ(initiator.Receive(stranger).error().code(), StatusCode::kDataLoss);
  stranger = answers->front();
  stranger.params.seed ^= 1;
  EXPECT_EQ(initiator.Receive(stranger).error().code(), StatusCode::kDataLoss);
  EXPECT_EQ(responder.Receive(answers->front()).error().code(), StatusCode::kDataLoss);
}

TEST(ReconcilerTest, UnansweredRequestsAreResentUntilAnswered) {
  Records records = Numbered(800);
  MemoryItemSet a = MakeSet(records);
  records.erase(records.begin() + 400);
  MemoryItemSet b = MakeSet(records);
  Initiator initiator(a, {});
  Responder responder(b, {});
  auto wave = initiator.Start();
  ASSERT_TRUE(wave.has_value());
  // Each wave of requests is lost once, then sent again from Unanswered().
  std::vector<Message> requests = *wave;
  for (int round = 0; round < 20 && !initiator.done(); ++round) {
    EXPECT_EQ(initiator.Unanswered(), requests);
    std::vector<Message> next;
    for (const Message& request : initiator.Unanswered()) {
      auto answers = responder.Receive(request);
      ASSERT_TRUE(answers.has_value());
      for (const Message& answer : *answers) {
        auto more = initiator.Receive(answer);
        ASSERT_TRUE(more.has_value());
        next.insert(next.end(), more->begin(), more->end());
      }
    }
    requests = next;
  }
  EXPECT_TRUE(initiator.done());
  EXPECT_THAT(initiator.differences().send, ElementsAre("key400"));
}

// A request with `copies` entries, each listing no items for the whole set: an honest initiator
// with no items sends one.
Message EmptyListsOfEverything(int copies) {
  Message request;
  request.id = 1;
  for (int i = 0; i < copies; ++i) {
    request.entries.emplace_back(SplitEntry{kWholeRange, 0, {{true, 0, {}}}});
  }
  return request;
}

TEST(ReconcilerTest, RequestsToListTheSameItemsOverAndOverAreRefused) {
  std::vector<Item> items;
  for (int i = 0; i < 100000; ++i) items.push_back(MakeItem("key" + std::to_string(i), "v"));
  MemoryItemSet set(std::move(items));
  Responder responder(set, {});
  auto once = responder.Receive(EmptyListsOfEverything(1));
  ASSERT_TRUE(once.has_value());
  EXPECT_EQ(responder.differences().send.size(), 100000u);
  auto thrice = responder.Receive(EmptyListsOfEverything(3));
  ASSERT_FALSE(thrice.has_value());
  EXPECT_EQ(thrice.error().code(), StatusCode::kResourceExhausted);
}

TEST(ExcludingItemSetTest, RecentRangesAreInvisibleExceptWhenListedThemselves) {
  MemoryItemSet base = MakeSet(Numbered(3000));
  const uint64_t hidden = ItemPosition("key7");
  auto set = ExcludingItemSet::Make(base, {RecentPrefix(hidden)});
  ASSERT_TRUE(set.has_value());
  const PositionRange all = kWholeRange.positions();
  EXPECT_EQ(set->Summarize(all)->count, 2999u);
  auto items = set->Items(all);
  ASSERT_TRUE(items.has_value());
  EXPECT_EQ(items->size(), 2999u);
  EXPECT_TRUE(std::none_of(items->begin(), items->end(),
                           [](const Item& item) { return item.key == "key7"; }));
  // Equal to the base set without that item, range by range.
  Records without = Numbered(3000);
  without.erase(without.begin() + 7);
  MemoryItemSet expected = MakeSet(without);
  for (uint64_t i = 0; i < 16; ++i) {
    const PositionRange range = kWholeRange.Child(4, i).positions();
    EXPECT_EQ(*set->Summarize(range), *expected.Summarize(range));
  }
  const RangeId around{kRecentDepth, RecentPrefix(hidden)};
  EXPECT_TRUE(set->Excludes(around));
  EXPECT_TRUE(set->Excludes(around.Child(4, (hidden >> 28) & 15)));
  EXPECT_FALSE(set->Excludes(RangeId{kRecentDepth, RecentPrefix(hidden) ^ 1}));
  EXPECT_FALSE(set->Excludes(kWholeRange));
}

struct RecentCase {
  std::vector<std::pair<std::string, std::string>> a, b;
  std::vector<uint64_t> a_recent, b_recent;  // positions of what each side changed
  std::vector<std::string> a_sends, b_sends;
};

// 20,000 equal records, then 40 changes of four kinds, each recorded as recent by its side.
RecentCase FortyRecentChanges() {
  RecentCase c;
  for (int i = 0; i < 20000; ++i) {
    c.a.emplace_back("key" + std::to_string(i), "v1");
    c.b.emplace_back("key" + std::to_string(i), "v1");
  }
  for (int j = 0; j < 40; ++j) {
    const std::string key = "key" + std::to_string(j * 401);
    const std::string fresh = "new" + std::to_string(j);
    switch (j % 4) {
      case 0:  // updated on A
        c.a[j * 401].second = "v2";
        c.a_recent.push_back(ItemPosition(key));
        c.a_sends.push_back(key);
        c.b_sends.push_back(key);
        break;
      case 1:  // updated on B
        c.b[j * 401].second = "v2";
        c.b_recent.push_back(ItemPosition(key));
        c.a_sends.push_back(key);
        c.b_sends.push_back(key);
        break;
      case 2:  // inserted on A
        c.a.emplace_back(fresh, "v1");
        c.a_recent.push_back(ItemPosition(fresh));
        c.a_sends.push_back(fresh);
        break;
      case 3:  // inserted on B
        c.b.emplace_back(fresh, "v1");
        c.b_recent.push_back(ItemPosition(fresh));
        c.b_sends.push_back(fresh);
        break;
    }
  }
  std::sort(c.a_sends.begin(), c.a_sends.end());
  std::sort(c.b_sends.begin(), c.b_sends.end());
  return c;
}

TEST(ReconcilerTest, RecentChangesOnBothSidesAreFoundInTwoRoundTripsOfFewBytes) {
  const RecentCase c = FortyRecentChanges();
  MemoryItemSet a = MakeSet(c.a), b = MakeSet(c.b);
  Options a_options, b_options;
  a_options.recent_positions = c.a_recent;
  b_options.recent_positions = c.b_recent;
  Initiator initiator(a, a_options);
  Responder responder(b, b_options);
  const auto result = testing::Reconcile(initiator, responder);
  EXPECT_EQ(result.initiator.send, c.a_sends);
  EXPECT_EQ(result.responder.send, c.b_sends);
  EXPECT_EQ(result.round_trips, 2);
  EXPECT_LE(result.bytes, 40u * 64);
  // Without the recent changes, the same differences cost ranges and more round trips.
  const auto plain = Reconcile(a, b);
  EXPECT_EQ(plain.initiator.send, c.a_sends);
  EXPECT_GT(plain.round_trips, 2);
  EXPECT_GT(plain.bytes, result.bytes);
}

TEST(ReconcilerTest, RecentChangesThatMissSomeDifferencesLeaveTheRestToRanges) {
  const RecentCase c = FortyRecentChanges();
  MemoryItemSet a = MakeSet(c.a), b = MakeSet(c.b);
  Options a_options, b_options;
  // Half of A's changes forgotten, B's replaced by unrelated positions.
  a_options.recent_positions.assign(c.a_recent.begin(), c.a_recent.begin() + 10);
  for (int i = 0; i < 30; ++i)
    b_options.recent_positions.push_back(ItemPosition("x" + std::to_string(i)));
  Initiator initiator(a, a_options);
  Responder responder(b, b_options);
  const auto result = testing::Reconcile(initiator, responder);
  EXPECT_EQ(result.initiator.send, c.a_sends);
  EXPECT_EQ(result.responder.send, c.b_sends);
  EXPECT_LE(result.round_trips, 7);
}

TEST(ReconcilerTest, RecentChangesOnEqualSetsStillCostOneSmallRoundTrip) {
  const RecentCase c = FortyRecentChanges();
  MemoryItemSet a = MakeSet(c.a);
  MemoryItemSet also_a = MakeSet(c.a);
  Options options;
  options.recent_positions = c.a_recent;
  Initiator initiator(a, options);
  Responder responder(also_a, options);
  const auto result = testing::Reconcile(initiator, responder);
  EXPECT_EQ(result.round_trips, 1);
  EXPECT_LE(result.bytes, 64u);
}

// The latest changes, when nothing says which the other side lacks: each side's 20 changes first
// (newest), then `equal` of the records both hold alike.
void AddLatestEqual(RecentCase& c, size_t equal) {
  for (size_t i = 0; i < equal; ++i) {
    const std::string key = "key" + std::to_string(20000 - 1 - i);
    c.a_recent.push_back(ItemPosition(key));
    c.b_recent.push_back(ItemPosition(key));
  }
}

TEST(ReconcilerTest, WindowsOfLatestChangesGrowWhileMostDifferAndFindEverything) {
  RecentCase c = FortyRecentChanges();
  AddLatestEqual(c, 5000);
  MemoryItemSet a = MakeSet(c.a), b = MakeSet(c.b);
  Options a_options, b_options;
  a_options.recent_positions = b_options.recent_positions = {};
  a_options.recent_positions = c.a_recent;
  b_options.recent_positions = c.b_recent;
  // Windows of 2, 16, 128, ...: the 20 changes of each side need the first two rounds, where
  // almost every range offered differs; the third (mostly equal) is the last.
  a_options.recent_window = b_options.recent_window = 2;
  Initiator initiator(a, a_options);
  Responder responder(b, b_options);
  const auto result = testing::Reconcile(initiator, responder);
  EXPECT_EQ(result.initiator.send, c.a_sends);
  EXPECT_EQ(result.responder.send, c.b_sends);
  EXPECT_EQ(result.round_trips, 4);
  // Far fewer bytes than offering all 5,020 latest changes at once (about 11 bytes each).
  EXPECT_LE(result.bytes, 40u * 64 + 2 * 128 * 12);
  Options all_a = a_options, all_b = b_options;
  all_a.recent_window = all_b.recent_window = 0;
  Initiator all_initiator(a, all_a);
  Responder all_responder(b, all_b);
  const auto all = testing::Reconcile(all_initiator, all_responder);
  EXPECT_EQ(all.initiator.send, c.a_sends);
  EXPECT_EQ(all.round_trips, 2);
  EXPECT_GT(all.bytes, 5000u * 10);
}

TEST(ReconcilerTest, AFirstWindowMostlyEqualIsTheOnlyOneAndTheRangesFindTheRest) {
  RecentCase c = FortyRecentChanges();
  // Most of the latest changes are equal on both sides, and half the differences are older.
  std::vector<uint64_t> a_recent(c.a_recent.begin(), c.a_recent.begin() + 5);
  c.a_recent.clear();
  c.b_recent.clear();
  AddLatestEqual(c, 60);
  c.a_recent.insert(c.a_recent.begin(), a_recent.begin(), a_recent.end());
  MemoryItemSet a = MakeSet(c.a), b = MakeSet(c.b);
  Options a_options, b_options;
  a_options.recent_positions = c.a_recent;
  b_options.recent_positions = c.b_recent;
  a_options.recent_window = b_options.recent_window = 32;
  Initiator initiator(a, a_options);
  Responder responder(b, b_options);
  const auto result = testing::Reconcile(initiator, responder);
  EXPECT_EQ(result.initiator.send, c.a_sends);
  EXPECT_EQ(result.responder.send, c.b_sends);
  EXPECT_LE(result.round_trips, 7);
}

}  // namespace
}  // namespace lockstep::reconcile
