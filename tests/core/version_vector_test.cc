#include "core/version_vector.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/dot.h"

namespace lockstep::core {
namespace {

NodeId Node(uint8_t n) {
  NodeId id;
  id.bytes[15] = n;
  return id;
}

TEST(VersionVectorTest, GetIsZeroForAnAbsentNode) {
  VersionVector vv;
  EXPECT_TRUE(vv.empty());
  EXPECT_EQ(vv.Get(Node(1)), 0u);
  vv.Advance(Node(2), 5);
  EXPECT_EQ(vv.Get(Node(1)), 0u);
  EXPECT_EQ(vv.Get(Node(2)), 5u);
}

TEST(VersionVectorTest, AdvanceRaisesButNeverLowers) {
  VersionVector vv;
  vv.Advance(Node(1), 3);
  EXPECT_EQ(vv.Get(Node(1)), 3u);
  vv.Advance(Node(1), 2);
  EXPECT_EQ(vv.Get(Node(1)), 3u);
  vv.Advance(Dot{Node(1), 7});
  EXPECT_EQ(vv.Get(Node(1)), 7u);
  EXPECT_EQ(vv.size(), 1u);
}

TEST(VersionVectorTest, AdvanceToZeroAddsNoEntry) {
  VersionVector vv;
  vv.Advance(Node(1), 0);
  EXPECT_TRUE(vv.empty());
  EXPECT_EQ(vv, VersionVector());
}

TEST(VersionVectorTest, EntriesAreSortedByNodeWhateverTheInsertionOrder) {
  VersionVector vv;
  vv.Advance(Node(3), 1);
  vv.Advance(Node(1), 1);
  vv.Advance(Node(2), 1);
  ASSERT_EQ(vv.size(), 3u);
  EXPECT_EQ(vv.entries()[0].first, Node(1));
  EXPECT_EQ(vv.entries()[1].first, Node(2));
  EXPECT_EQ(vv.entries()[2].first, Node(3));
}

TEST(VersionVectorTest, ConstructorSortsKeepsMaximumOfDuplicatesAndDropsZeros) {
  const VersionVector vv({{Node(3), 4}, {Node(1), 2}, {Node(3), 9}, {Node(2), 0}, {Node(3), 1}});
  const std::vector<VersionVector::Entry> expected = {{Node(1), 2}, {Node(3), 9}};
  EXPECT_EQ(vv.entries(), expected);
  EXPECT_EQ(vv, VersionVector({{Node(1), 2}, {Node(3), 9}}));
}

TEST(VersionVectorTest, EqualVectorsHaveEqualRepresentations) {
  VersionVector a;
  a.Advance(Node(2), 1);
  a.Advance(Node(1), 4);
  VersionVector b({{Node(1), 4}, {Node(2), 1}, {Node(5), 0}});
  EXPECT_EQ(a, b);
}

TEST(VersionVectorTest, CoversDotWhenItsCounterIsAtOrBelowTheEntry) {
  const VersionVector vv({{Node(1), 3}});
  EXPECT_TRUE(vv.Covers(Dot{Node(1), 1}));
  EXPECT_TRUE(vv.Covers(Dot{Node(1), 3}));
  EXPECT_FALSE(vv.Covers(Dot{Node(1), 4}));
  EXPECT_FALSE(vv.Covers(Dot{Node(2), 1}));
}

TEST(VersionVectorTest, CoversVectorWhenEveryEntryIsCovered) {
  const VersionVector big({{Node(1), 3}, {Node(2), 2}});
  EXPECT_TRUE(big.Covers(VersionVector()));
  EXPECT_TRUE(big.Covers(big));
  EXPECT_TRUE(big.Covers(VersionVector({{Node(1), 3}})));
  EXPECT_TRUE(big.Covers(VersionVector({{Node(1), 1}, {Node(2), 2}})));
  EXPECT_FALSE(big.Covers(VersionVector({{Node(1), 4}})));
  EXPECT_FALSE(big.Covers(VersionVector({{Node(3), 1}})));
  EXPECT_FALSE(VersionVector().Covers(big));
}

TEST(VersionVectorTest, MergeTakesPairwiseMaximum) {
  VersionVector a({{Node(1), 5}, {Node(2), 1}, {Node(4), 2}});
  const VersionVector b({{Node(2), 3}, {Node(3), 7}, {Node(4), 1}, {Node(5), 1}});
  a.Merge(b);
  EXPECT_EQ(a,
            VersionVector({{Node(1), 5}, {Node(2), 3}, {Node(3), 7}, {Node(4), 2}, {Node(5), 1}}));
  // Entries stay sorted so the representation is canonical.
  for (size_t i = 1; i < a.entries().size(); ++i) {
    EXPECT_LT(a.entries()[i - 1].first, a.entries()[i].first);
  }
}

TEST(VersionVectorTest, MergeIsCommutativeAndIdempotent) {
  const VersionVector a({{Node(1), 5}, {Node(3), 1}});
  const VersionVector b({{Node(2), 2}, {Node(3), 4}});
  VersionVector ab = a;
  ab.Merge(b);
  VersionVector ba = b;
  ba.Merge(a);
  EXPECT_EQ(ab, ba);
  VersionVector twice = ab;
  twice.Merge(b);
  EXPECT_EQ(twice, ab);
}

TEST(VersionVectorTest, MergeWithACoveredVectorChangesNothing) {
  VersionVector a({{Node(1), 5}, {Node(2), 2}});
  const VersionVector before = a;
  a.Merge(VersionVector({{Node(1), 2}}));
  EXPECT_EQ(a, before);
  a.Merge(VersionVector());
  EXPECT_EQ(a, before);
}

TEST(VersionVectorTest, MergeIntoEmptyCopiesTheOther) {
  VersionVector a;
  const VersionVector b({{Node(1), 1}, {Node(9), 2}});
  a.Merge(b);
  EXPECT_EQ(a, b);
}

TEST(VersionVectorTest, CompareReportsEqual) {
  EXPECT_EQ(Compare(VersionVector(), VersionVector()), Causality::kEqual);
  const VersionVector a({{Node(1), 2}, {Node(2), 1}});
  EXPECT_EQ(Compare(a, VersionVector({{Node(2), 1}, {Node(1), 2}})), Causality::kEqual);
}

TEST(VersionVectorTest, CompareReportsBeforeWhenTheOtherHasMore) {
  const VersionVector a({{Node(1), 2}});
  EXPECT_EQ(Compare(a, VersionVector({{Node(1), 3}})), Causality::kBefore);
  EXPECT_EQ(Compare(a, VersionVector({{Node(1), 2}, {Node(2), 1}})), Causality::kBefore);
  EXPECT_EQ(Compare(VersionVector(), a), Causality::kBefore);
}

TEST(VersionVectorTest, CompareReportsAfterWhenThisHasMore) {
  const VersionVector a({{Node(1), 3}, {Node(2), 1}});
  EXPECT_EQ(Compare(a, VersionVector({{Node(1), 3}})), Causality::kAfter);
  EXPECT_EQ(Compare(a, VersionVector({{Node(1), 1}, {Node(2), 1}})), Causality::kAfter);
  EXPECT_EQ(Compare(a, VersionVector()), Causality::kAfter);
}

TEST(VersionVectorTest, CompareReportsConcurrentWhenEachHasSomethingTheOtherLacks) {
  EXPECT_EQ(Compare(VersionVector({{Node(1), 1}}), VersionVector({{Node(2), 1}})),
            Causality::kConcurrent);
  EXPECT_EQ(Compare(VersionVector({{Node(1), 3}, {Node(2), 1}}),
                    VersionVector({{Node(1), 2}, {Node(2), 2}})),
            Causality::kConcurrent);
}

TEST(NodeIdTest, ToStringAndParseRoundTrip) {
  NodeId id;
  for (size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<uint8_t>(i * 17 + 3);
  const std::string text = id.ToString();
  EXPECT_EQ(text.size(), 26u);
  Result<NodeId> parsed = NodeId::Parse(text);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, id);
  EXPECT_EQ(NodeId().ToString(), std::string(26, 'a'));
}

TEST(NodeIdTest, ParseRefusesWrongLengthBadCharactersAndNonCanonicalText) {
  EXPECT_EQ(NodeId::Parse("abc").error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeId::Parse(std::string(25, 'a') + "1").error().code(), StatusCode::kInvalidArgument);
  // The last symbol carries two padding bits that must be zero.
  EXPECT_EQ(NodeId::Parse(std::string(25, 'a') + "b").error().code(), StatusCode::kInvalidArgument);
}

TEST(HlcTest, PacksMillisAboveCounterSoItComparesAsOneNumber) {
  const Hlc hlc = Hlc::Make(1234, 56);
  EXPECT_EQ(hlc.millis(), 1234u);
  EXPECT_EQ(hlc.counter(), 56u);
  EXPECT_LT(Hlc::Make(1, Hlc::kMaxCounter), Hlc::Make(2, 0));
  EXPECT_LT(Hlc::Make(1, 1), Hlc::Make(1, 2));
}

}  // namespace
}  // namespace lockstep::core
