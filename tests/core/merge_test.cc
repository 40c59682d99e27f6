#include "core/merge.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/delta.h"
#include "core/local_write.h"

namespace lockstep::core {
namespace {

NodeId Node(uint8_t n) {
  NodeId id;
  id.bytes[15] = n;
  return id;
}

using Fields = std::vector<std::pair<std::string, Value>>;

// Applies one write by node `node` with dot counter `counter` at HLC (millis, 0).
void Write(Record& record, uint8_t node, uint64_t counter, uint64_t millis, Fields fields,
           const MergePolicy& policy = {}) {
  LocalWrite write{{Node(node), counter}, Hlc::Make(millis, 0), std::move(fields), true};
  Result<std::vector<std::string>> changed = ApplyLocalWrite(record, write, policy);
  ASSERT_TRUE(changed.has_value()) << changed.error().ToString();
}

void Delete(Record& record, uint8_t node, uint64_t counter, uint64_t millis,
            const MergePolicy& policy = {}) {
  LocalWrite write{{Node(node), counter}, Hlc::Make(millis, 0), {}, false};
  ASSERT_TRUE(ApplyLocalWrite(record, write, policy).has_value());
}

MergePolicy WithFields(FieldPolicy fields) {
  MergePolicy policy;
  policy.fields = fields;
  return policy;
}

MergePolicy WithExists(ExistsPolicy exists) {
  MergePolicy policy;
  policy.exists = exists;
  return policy;
}

MergePolicy Preferring(std::vector<NodeId> prefer) {
  MergePolicy policy;
  policy.fields = FieldPolicy::kPrefer;
  policy.prefer = std::move(prefer);
  return policy;
}

Value Shown(const Record& record, std::string_view name, const MergePolicy& policy = {}) {
  const Field* field = record.Find(name);
  return field == nullptr ? Value::Null() : VisibleValue(*field, name, policy);
}

const Conflict* ConflictOn(const MergeEffects& effects, std::string_view field) {
  for (const Conflict& conflict : effects.conflicts) {
    if (conflict.field == field) return &conflict;
  }
  return nullptr;
}

std::vector<std::string> Names(std::initializer_list<const char*> names) {
  return std::vector<std::string>(names.begin(), names.end());
}

TEST(MergeTest, SmokeConcurrentWritesResolveByLww) {
  MergePolicy policy;
  Record a("k"), b("k");
  ASSERT_TRUE(ApplyLocalWrite(a, {{Node(1), 1}, Hlc::Make(10, 0), {{"x", Value::Int(1)}}}, policy)
                  .has_value());
  ASSERT_TRUE(ApplyLocalWrite(b, {{Node(2), 1}, Hlc::Make(20, 0), {{"x", Value::Int(2)}}}, policy)
                  .has_value());
  MergeOutcome ab = Merge(a, b, policy);
  MergeOutcome ba = Merge(b, a, policy);
  EXPECT_EQ(ab.record, ba.record);
  EXPECT_EQ(VisibleValue(*ab.record.Find("x"), "x", policy), Value::Int(2));
  // Only x loses a value: both writes set `_exists` to 1, so its siblings are no conflict.
  for (const MergeOutcome* outcome : {&ab, &ba}) {
    ASSERT_EQ(outcome->effects.conflicts.size(), 1u);
    EXPECT_EQ(outcome->effects.conflicts[0].field, "x");
    EXPECT_EQ(outcome->effects.conflicts[0].winner.value, Value::Int(2));
    ASSERT_EQ(outcome->effects.conflicts[0].losers.size(), 1u);
    EXPECT_EQ(outcome->effects.conflicts[0].losers[0].value, Value::Int(1));
    EXPECT_EQ(ConflictOn(outcome->effects, kExistsField), nullptr);
    // Both `_exists` versions are still kept as siblings.
    EXPECT_EQ(outcome->record.Find(kExistsField)->versions.size(), 2u);
  }
}

// --- The merge rule --------------------------------------------------------------------------

TEST(MergeTest, SameDotOnBothSidesIsANoOp) {
  Record a("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}, {"y", Value::Text("t")}});
  const Record copy = a;
  MergeOutcome outcome = Merge(a, copy, {});
  EXPECT_EQ(outcome.record, a);
  EXPECT_FALSE(outcome.effects.changed());
  EXPECT_TRUE(outcome.effects.changed_fields.empty());
  EXPECT_TRUE(outcome.effects.conflicts.empty());
  EXPECT_FALSE(outcome.effects.vv_changed);
}

TEST(MergeTest, IncomingCoveredByLocalKeepsLocal) {
  Record a("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}});
  const Record old = a;
  Write(a, 1, 2, 20, {{"x", Value::Int(2)}});
  MergeOutcome outcome = Merge(a, old, {});
  EXPECT_EQ(outcome.record, a);
  EXPECT_EQ(Shown(outcome.record, "x"), Value::Int(2));
  EXPECT_FALSE(outcome.effects.changed());
  EXPECT_TRUE(outcome.effects.conflicts.empty());
}

TEST(MergeTest, IncomingCoveredByLocalKeepsLocalEvenWithANewerHlc) {
  // B's write at HLC 100 was seen by A before A wrote at HLC 50: causality, not time, decides.
  Record a("k"), b("k");
  Write(b, 2, 1, 100, {{"x", Value::Text("b")}});
  MergeInto(a, b, {});
  Write(a, 1, 1, 50, {{"x", Value::Text("a")}});
  MergeOutcome outcome = Merge(a, b, {});
  EXPECT_EQ(Shown(outcome.record, "x"), Value::Text("a"));
  EXPECT_FALSE(outcome.effects.changed());
  EXPECT_TRUE(outcome.effects.conflicts.empty());
}

TEST(MergeTest, LocalCoveredByIncomingTakesIncoming) {
  Record a("k"), b("k");
  Write(a, 1, 1, 100, {{"x", Value::Int(1)}, {"y", Value::Int(1)}});
  MergeInto(b, a, {});
  Write(b, 2, 1, 50, {{"x", Value::Int(2)}});  // older HLC, but B had seen A's write
  MergeOutcome outcome = Merge(a, b, {});
  EXPECT_EQ(outcome.record, b);
  EXPECT_EQ(Shown(outcome.record, "x"), Value::Int(2));
  EXPECT_EQ(Shown(outcome.record, "y"), Value::Int(1));
  EXPECT_TRUE(outcome.effects.conflicts.empty());
  EXPECT_EQ(outcome.effects.changed_fields, Names({"_exists", "x"}));
  EXPECT_TRUE(outcome.effects.vv_changed);
}

TEST(MergeTest, ConcurrentWritesAreAConflictWithWinnerAndLosersCarryingNodeAndHlc) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}});
  Write(b, 2, 1, 20, {{"x", Value::Int(2)}});
  MergeOutcome outcome = Merge(a, b, {});
  const Conflict* conflict = ConflictOn(outcome.effects, "x");
  ASSERT_NE(conflict, nullptr);
  EXPECT_EQ(conflict->key, "k");
  EXPECT_EQ(conflict->winner, (Version{Value::Int(2), {Node(2), 1}, Hlc::Make(20, 0)}));
  ASSERT_EQ(conflict->losers.size(), 1u);
  EXPECT_EQ(conflict->losers[0], (Version{Value::Int(1), {Node(1), 1}, Hlc::Make(10, 0)}));
  EXPECT_FALSE(conflict->pending);
  // Both stay as siblings, sorted by dot, until a write that has seen them replaces them; the
  // field shows the winner.
  ASSERT_EQ(outcome.record.Find("x")->versions.size(), 2u);
  EXPECT_EQ(outcome.record.Find("x")->versions[0], conflict->losers[0]);
  EXPECT_EQ(outcome.record.Find("x")->versions[1], conflict->winner);
  EXPECT_EQ(Shown(outcome.record, "x"), Value::Int(2));
  EXPECT_EQ(outcome.effects.changed_fields, Names({"_exists", "x"}));
}

TEST(MergeTest, ThreeConcurrentWritesGiveOneWinnerAndTwoLosers) {
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 30, {{"x", Value::Int(1)}});
  Write(b, 2, 1, 10, {{"x", Value::Int(2)}});
  Write(c, 3, 1, 20, {{"x", Value::Int(3)}});
  Record bc = Merge(b, c, {}).record;
  MergeOutcome outcome = Merge(bc, a, {});
  ASSERT_EQ(bc.Find("x")->versions.size(), 2u);
  EXPECT_EQ(Shown(bc, "x"), Value::Int(3));
  // A's write has the greatest HLC.
  EXPECT_EQ(Shown(outcome.record, "x"), Value::Int(1));
  EXPECT_EQ(outcome.record.Find("x")->versions.size(), 3u);
  const Conflict* conflict = ConflictOn(outcome.effects, "x");
  ASSERT_NE(conflict, nullptr);
  EXPECT_EQ(conflict->winner.dot, (Dot{Node(1), 1}));
  ASSERT_EQ(conflict->losers.size(), 2u);
  EXPECT_EQ(conflict->losers[0].dot, (Dot{Node(2), 1}));
  EXPECT_EQ(conflict->losers[1].dot, (Dot{Node(3), 1}));
}

TEST(MergeTest, LocalWinningAConflictStillGainsTheLoserAsASibling) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}});
  Write(b, 2, 1, 20, {{"x", Value::Int(2)}});
  MergeOutcome outcome = Merge(b, a, {});
  EXPECT_EQ(Shown(outcome.record, "x"), Value::Int(2));
  const Conflict* conflict = ConflictOn(outcome.effects, "x");
  ASSERT_NE(conflict, nullptr);
  EXPECT_EQ(conflict->winner.dot, (Dot{Node(2), 1}));
  ASSERT_EQ(conflict->losers.size(), 1u);
  EXPECT_EQ(conflict->losers[0].dot, (Dot{Node(1), 1}));
  // The loser joined the field's versions, so the field changed though what it shows did not.
  EXPECT_EQ(outcome.record.Find("x")->versions.size(), 2u);
  EXPECT_EQ(outcome.effects.changed_fields, Names({"_exists", "x"}));
  EXPECT_TRUE(outcome.effects.vv_changed);
  EXPECT_EQ(outcome.record.vv(), VersionVector({{Node(1), 1}, {Node(2), 1}}));
}

TEST(MergeTest, LaterWriteThatHasSeenTheSiblingsReplacesThemEverywhere) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}});
  Write(b, 2, 1, 20, {{"x", Value::Int(2)}});
  const Record b_only = b;
  MergeInto(a, b, {});
  MergeInto(b, a, {});
  Write(a, 1, 2, 30, {{"x", Value::Int(3)}});
  ASSERT_EQ(a.Find("x")->versions.size(), 1u);
  for (const Record* other : std::vector<const Record*>{&b, &b_only}) {
    MergeOutcome outcome = Merge(*other, a, {});
    EXPECT_EQ(outcome.record, a);
    EXPECT_TRUE(outcome.effects.conflicts.empty());
    EXPECT_EQ(Shown(outcome.record, "x"), Value::Int(3));
  }
}

TEST(MergeTest, LosersKeptAsSiblingsLetReplicasConvergeWhenTheWinnerIsReplaced) {
  // prefer A: A's write beats B's; C, unaware of B's write, then replaces A's. C's write and
  // B's are concurrent and both unlisted, so lww decides: B's (the later HLC) must show
  // everywhere, whichever order the writes arrive in.
  const MergePolicy policy = Preferring({Node(1)});
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 10, {{"x", Value::Text("a")}}, policy);
  Write(b, 2, 1, 50, {{"x", Value::Text("b")}}, policy);
  MergeInto(c, a, policy);
  Write(c, 3, 1, 20, {{"x", Value::Text("c")}}, policy);
  Record x = Merge(Merge(a, b, policy).record, c, policy).record;
  Record y = Merge(Merge(c, b, policy).record, a, policy).record;
  Record z = Merge(Merge(b, c, policy).record, a, policy).record;
  EXPECT_EQ(x, y);
  EXPECT_EQ(x, z);
  EXPECT_EQ(Shown(x, "x", policy), Value::Text("b"));
}

TEST(MergeTest, FieldsEditedOnDifferentSidesMergeCleanly) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(0)}, {"y", Value::Int(0)}});
  MergeInto(b, a, {});
  Write(a, 1, 2, 20, {{"x", Value::Int(1)}});
  Write(b, 2, 1, 30, {{"y", Value::Int(2)}});
  MergeOutcome ab = Merge(a, b, {});
  MergeOutcome ba = Merge(b, a, {});
  EXPECT_EQ(ab.record, ba.record);
  EXPECT_EQ(Shown(ab.record, "x"), Value::Int(1));
  EXPECT_EQ(Shown(ab.record, "y"), Value::Int(2));
  EXPECT_EQ(ConflictOn(ab.effects, "x"), nullptr);
  EXPECT_EQ(ConflictOn(ab.effects, "y"), nullptr);
  EXPECT_EQ(ConflictOn(ba.effects, "x"), nullptr);
  EXPECT_EQ(ConflictOn(ba.effects, "y"), nullptr);
  // Both writes set `_exists` to 1: the only concurrent field, with no differing values, so no
  // conflict at all, though both versions stay as siblings.
  EXPECT_TRUE(ab.effects.conflicts.empty());
  EXPECT_TRUE(ba.effects.conflicts.empty());
  EXPECT_EQ(ab.record.Find(kExistsField)->versions.size(), 2u);
  // Each side gains the other's `_exists` as a sibling, and the other's edited field.
  EXPECT_EQ(ab.effects.changed_fields, Names({"_exists", "y"}));
  EXPECT_EQ(ba.effects.changed_fields, Names({"_exists", "x"}));
}

TEST(MergeTest, MergedVersionVectorIsThePointwiseMaximum) {
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}});
  MergeInto(b, a, {});
  Write(a, 1, 2, 11, {{"x", Value::Int(2)}});
  Write(a, 1, 3, 12, {{"y", Value::Int(3)}});
  Write(b, 2, 1, 13, {{"z", Value::Int(4)}});
  Write(b, 2, 2, 14, {{"z", Value::Int(5)}});
  Write(c, 3, 1, 15, {{"w", Value::Int(6)}});
  MergeInto(b, c, {});
  ASSERT_EQ(a.vv(), VersionVector({{Node(1), 3}}));
  ASSERT_EQ(b.vv(), VersionVector({{Node(1), 1}, {Node(2), 2}, {Node(3), 1}}));
  MergeOutcome outcome = Merge(a, b, {});
  EXPECT_EQ(outcome.record.vv(), VersionVector({{Node(1), 3}, {Node(2), 2}, {Node(3), 1}}));
  EXPECT_EQ(Merge(b, a, {}).record.vv(), outcome.record.vv());
  EXPECT_EQ(Shown(outcome.record, "x"), Value::Int(2));
  EXPECT_EQ(Shown(outcome.record, "y"), Value::Int(3));
  EXPECT_EQ(Shown(outcome.record, "z"), Value::Int(5));
  EXPECT_EQ(Shown(outcome.record, "w"), Value::Int(6));
}

TEST(MergeTest, ChangedFieldsNameExactlyTheFieldsThatChangedInNameOrder) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"m", Value::Int(0)}, {"same", Value::Int(0)}});
  MergeInto(b, a, {});
  Write(b, 2, 1, 20, {{"z", Value::Int(1)}, {"m", Value::Int(1)}, {"a", Value::Int(1)}});
  MergeOutcome outcome = Merge(a, b, {});
  EXPECT_EQ(outcome.effects.changed_fields, Names({"_exists", "a", "m", "z"}));
  EXPECT_TRUE(outcome.effects.conflicts.empty());
  EXPECT_EQ(Shown(outcome.record, "same"), Value::Int(0));
}

TEST(MergeTest, MergingTwiceEqualsMergingOnce) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}, {"y", Value::Int(1)}});
  Write(b, 2, 1, 20, {{"x", Value::Int(2)}});
  for (const Record* local : {&a, &b}) {
    const Record& incoming = local == &a ? b : a;
    MergeOutcome once = Merge(*local, incoming, {});
    MergeOutcome twice = Merge(once.record, incoming, {});
    EXPECT_EQ(twice.record, once.record);
    EXPECT_FALSE(twice.effects.changed());
    EXPECT_TRUE(twice.effects.conflicts.empty());
    // Merging the result into itself changes nothing either.
    EXPECT_FALSE(Merge(once.record, once.record, {}).effects.changed());
  }
}

TEST(MergeTest, MergeOrderDoesNotMatter) {
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 30, {{"x", Value::Int(1)}, {"y", Value::Int(1)}});
  Write(b, 2, 1, 10, {{"x", Value::Int(2)}, {"z", Value::Int(2)}});
  Write(c, 3, 1, 20, {{"y", Value::Int(3)}, {"z", Value::Int(3)}});
  const Record abc = Merge(Merge(a, b, {}).record, c, {}).record;
  const Record cab = Merge(Merge(c, a, {}).record, b, {}).record;
  const Record b_ca = Merge(b, Merge(c, a, {}).record, {}).record;
  EXPECT_EQ(abc, cab);
  EXPECT_EQ(abc, b_ca);
  EXPECT_EQ(Shown(abc, "x"), Value::Int(1));
  EXPECT_EQ(Shown(abc, "y"), Value::Int(1));
  EXPECT_EQ(Shown(abc, "z"), Value::Int(3));
}

TEST(MergeTest, FieldMissingFromIncomingIsLeftAsItIs) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"only_a", Value::Int(1)}});
  Write(b, 2, 1, 20, {{"only_b", Value::Int(2)}});
  MergeOutcome outcome = Merge(a, b, {});
  EXPECT_EQ(Shown(outcome.record, "only_a"), Value::Int(1));
  EXPECT_EQ(Shown(outcome.record, "only_b"), Value::Int(2));
}

TEST(MergeTest, MergeIntoANewRecordCopiesTheIncoming) {
  Record a("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}});
  Write(a, 1, 2, 20, {{"y", Value::Int(2)}});
  Record fresh("k");
  MergeEffects effects = MergeInto(fresh, a, {});
  EXPECT_EQ(fresh, a);
  EXPECT_EQ(effects.changed_fields, Names({"_exists", "x", "y"}));
  EXPECT_TRUE(effects.conflicts.empty());
}

// --- Policies --------------------------------------------------------------------------------

TEST(MergePolicyTest, LwwTieOnHlcIsBrokenByTheGreaterNodeId) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Text("a")}});
  Write(b, 2, 1, 10, {{"x", Value::Text("b")}});
  EXPECT_EQ(Shown(Merge(a, b, {}).record, "x"), Value::Text("b"));
  EXPECT_EQ(Shown(Merge(b, a, {}).record, "x"), Value::Text("b"));
  EXPECT_EQ(Merge(a, b, {}).record, Merge(b, a, {}).record);
}

TEST(MergePolicyTest, LwwGreaterHlcWinsWhateverTheNodeId) {
  Record a("k"), b("k");
  Write(a, 1, 1, 11, {{"x", Value::Text("a")}});
  Write(b, 2, 1, 10, {{"x", Value::Text("b")}});
  EXPECT_EQ(Shown(Merge(a, b, {}).record, "x"), Value::Text("a"));
  EXPECT_EQ(Shown(Merge(b, a, {}).record, "x"), Value::Text("a"));
}

TEST(MergePolicyTest, PreferredNodeWinsOverANewerHlc) {
  MergePolicy policy = Preferring({Node(1)});
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Text("hub")}}, policy);
  Write(b, 2, 1, 99, {{"x", Value::Text("edge")}}, policy);
  MergeOutcome ab = Merge(a, b, policy);
  MergeOutcome ba = Merge(b, a, policy);
  EXPECT_EQ(Shown(ab.record, "x", policy), Value::Text("hub"));
  EXPECT_EQ(ab.record, ba.record);
  const Conflict* conflict = ConflictOn(ba.effects, "x");
  ASSERT_NE(conflict, nullptr);
  EXPECT_EQ(conflict->winner.dot.node, Node(1));
  EXPECT_EQ(conflict->losers.at(0).dot.node, Node(2));
}

TEST(MergePolicyTest, PreferFollowsTheListedOrder) {
  MergePolicy policy = Preferring({Node(3), Node(1), Node(2)});
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 30, {{"x", Value::Int(1)}}, policy);
  Write(b, 2, 1, 40, {{"x", Value::Int(2)}}, policy);
  Write(c, 3, 1, 10, {{"x", Value::Int(3)}}, policy);
  EXPECT_EQ(Shown(Merge(a, b, policy).record, "x", policy), Value::Int(1));
  EXPECT_EQ(Shown(Merge(b, c, policy).record, "x", policy), Value::Int(3));
  EXPECT_EQ(Shown(Merge(Merge(a, b, policy).record, c, policy).record, "x", policy), Value::Int(3));
}

TEST(MergePolicyTest, PreferRanksUnlistedNodesLastThenUsesLww) {
  MergePolicy policy = Preferring({Node(3)});
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 20, {{"x", Value::Int(1)}}, policy);
  Write(b, 2, 1, 30, {{"x", Value::Int(2)}}, policy);
  Write(c, 3, 1, 10, {{"x", Value::Int(3)}}, policy);
  // Both unlisted: lww.
  EXPECT_EQ(Shown(Merge(a, b, policy).record, "x", policy), Value::Int(2));
  EXPECT_EQ(Shown(Merge(b, a, policy).record, "x", policy), Value::Int(2));
  // Listed beats unlisted whatever the HLC.
  EXPECT_EQ(Shown(Merge(b, c, policy).record, "x", policy), Value::Int(3));
  EXPECT_EQ(Shown(Merge(a, c, policy).record, "x", policy), Value::Int(3));
}

TEST(MergePolicyTest, ManualKeepsConcurrentVersionsAsSiblingsSortedByDot) {
  const MergePolicy policy = WithFields(FieldPolicy::kManual);
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 20, {{"x", Value::Int(1)}}, policy);
  Write(b, 2, 1, 30, {{"x", Value::Int(2)}}, policy);
  Write(c, 3, 1, 10, {{"x", Value::Int(3)}}, policy);
  MergeOutcome cb = Merge(c, b, policy);
  const Record all = Merge(cb.record, a, policy).record;
  const Record other_order = Merge(Merge(a, b, policy).record, c, policy).record;
  EXPECT_EQ(all, other_order);
  const Field* x = all.Find("x");
  ASSERT_NE(x, nullptr);
  ASSERT_EQ(x->versions.size(), 3u);
  EXPECT_EQ(x->versions[0].dot, (Dot{Node(1), 1}));
  EXPECT_EQ(x->versions[1].dot, (Dot{Node(2), 1}));
  EXPECT_EQ(x->versions[2].dot, (Dot{Node(3), 1}));
  // The provisional winner is lww's: the greatest HLC.
  EXPECT_EQ(Shown(all, "x", policy), Value::Int(2));
  const Conflict* conflict = ConflictOn(cb.effects, "x");
  ASSERT_NE(conflict, nullptr);
  EXPECT_TRUE(conflict->pending);
  EXPECT_EQ(conflict->winner.dot, (Dot{Node(2), 1}));
  ASSERT_EQ(conflict->losers.size(), 1u);
  EXPECT_EQ(conflict->losers[0].dot, (Dot{Node(3), 1}));
  // Every write set `_exists` to 1: its versions stay siblings, but nothing is lost, so neither
  // merge reports a conflict on it (see ManualCollectionsExistsConflictIsNeverPending).
  EXPECT_EQ(ConflictOn(cb.effects, kExistsField), nullptr);
  EXPECT_EQ(cb.effects.conflicts.size(), 1u);
  MergeOutcome cba = Merge(cb.record, a, policy);
  EXPECT_EQ(ConflictOn(cba.effects, kExistsField), nullptr);
  ASSERT_EQ(cba.effects.conflicts.size(), 1u);
  EXPECT_EQ(cba.effects.conflicts[0].field, "x");
  EXPECT_TRUE(cba.effects.conflicts[0].pending);
  EXPECT_EQ(cba.effects.conflicts[0].losers.size(), 2u);
  EXPECT_EQ(all.Find(kExistsField)->versions.size(), 3u);
  EXPECT_TRUE(Exists(all, policy));
}

TEST(MergePolicyTest, ManualCollectionsExistsConflictIsNeverPending) {
  // A delete concurrent with an update: `_exists` differs (0 and 1), so it is a conflict, and
  // `_exists` is never manual, so the conflict is not pending.
  const MergePolicy policy = WithFields(FieldPolicy::kManual);
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}}, policy);
  MergeInto(b, a, policy);
  Delete(a, 1, 2, 20, policy);
  Write(b, 2, 1, 30, {{"x", Value::Int(2)}}, policy);
  MergeOutcome ab = Merge(a, b, policy);
  ASSERT_EQ(ab.effects.conflicts.size(), 1u);
  const Conflict* exists = ConflictOn(ab.effects, kExistsField);
  ASSERT_NE(exists, nullptr);
  EXPECT_FALSE(exists->pending);
  EXPECT_EQ(exists->winner.value, Value::Int(1));
  ASSERT_EQ(exists->losers.size(), 1u);
  EXPECT_EQ(exists->losers[0].value, Value::Int(0));
  EXPECT_EQ(ab.record.Find(kExistsField)->versions.size(), 2u);
}

TEST(MergePolicyTest, ManualSiblingSetIsReportedOnlyWhenAMergeAddsASibling) {
  const MergePolicy policy = WithFields(FieldPolicy::kManual);
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}}, policy);
  Write(b, 2, 1, 20, {{"x", Value::Int(2)}}, policy);
  MergeOutcome ab = Merge(a, b, policy);
  ASSERT_NE(ConflictOn(ab.effects, "x"), nullptr);
  EXPECT_EQ(ab.effects.changed_fields, Names({"_exists", "x"}));
  MergeOutcome again = Merge(ab.record, b, policy);
  EXPECT_EQ(again.record, ab.record);
  EXPECT_TRUE(again.effects.conflicts.empty());
  EXPECT_FALSE(again.effects.changed());
  // A replica holding the same siblings merges another such replica without news.
  MergeOutcome ba = Merge(b, a, policy);
  MergeOutcome same = Merge(ab.record, ba.record, policy);
  EXPECT_EQ(same.record, ab.record);
  EXPECT_TRUE(same.effects.conflicts.empty());
  EXPECT_FALSE(same.effects.changed());
}

TEST(MergePolicyTest, ManualResolutionByALaterLocalWriteReachesEveryReplica) {
  const MergePolicy policy = WithFields(FieldPolicy::kManual);
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}}, policy);
  Write(b, 2, 1, 20, {{"x", Value::Int(2)}}, policy);
  MergeInto(a, b, policy);
  MergeInto(c, a, policy);
  ASSERT_EQ(a.Find("x")->versions.size(), 2u);
  ASSERT_EQ(c.Find("x")->versions.size(), 2u);
  // Someone resolves on A by writing the chosen value.
  Write(a, 1, 2, 30, {{"x", Value::Int(42)}}, policy);
  ASSERT_EQ(a.Find("x")->versions.size(), 1u);

  MergeOutcome at_b = Merge(b, a, policy);  // B held only its own sibling
  MergeOutcome at_c = Merge(c, a, policy);  // C held both siblings
  for (const MergeOutcome* outcome : {&at_b, &at_c}) {
    EXPECT_EQ(outcome->record, a);
    ASSERT_EQ(outcome->record.Find("x")->versions.size(), 1u);
    EXPECT_EQ(Shown(outcome->record, "x", policy), Value::Int(42));
    EXPECT_TRUE(outcome->effects.conflicts.empty());
  }
  // Old sibling sets arriving late do not bring the siblings back.
  MergeOutcome late = Merge(at_c.record, c, policy);
  EXPECT_EQ(late.record, a);
  EXPECT_FALSE(late.effects.changed());
}

TEST(MergePolicyTest, KeepUpdateResurrectsAnUpdateConcurrentWithADelete) {
  const MergePolicy policy = WithExists(ExistsPolicy::kKeepUpdate);
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}, {"y", Value::Int(1)}}, policy);
  MergeInto(b, a, policy);
  Delete(a, 1, 2, 50, policy);  // the delete is newer, and still loses
  Write(b, 2, 1, 20, {{"x", Value::Int(2)}}, policy);
  ASSERT_FALSE(Exists(a, policy));
  MergeOutcome ab = Merge(a, b, policy);
  MergeOutcome ba = Merge(b, a, policy);
  EXPECT_EQ(ab.record, ba.record);
  EXPECT_TRUE(Exists(ab.record, policy));
  // The tombstone kept the values, so the record comes back whole.
  EXPECT_EQ(Shown(ab.record, "x", policy), Value::Int(2));
  EXPECT_EQ(Shown(ab.record, "y", policy), Value::Int(1));
  const Conflict* conflict = ConflictOn(ab.effects, kExistsField);
  ASSERT_NE(conflict, nullptr);
  EXPECT_EQ(conflict->winner.value, Value::Int(1));
  ASSERT_EQ(conflict->losers.size(), 1u);
  EXPECT_EQ(conflict->losers[0].value, Value::Int(0));
  EXPECT_EQ(conflict->losers[0].dot, (Dot{Node(1), 2}));
}

TEST(MergePolicyTest, DeleteWinsOverAConcurrentUpdate) {
  const MergePolicy policy = WithExists(ExistsPolicy::kDeleteWins);
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}}, policy);
  MergeInto(b, a, policy);
  Delete(a, 1, 2, 20, policy);
  Write(b, 2, 1, 50, {{"x", Value::Int(2)}}, policy);  // the update is newer, and still loses
  MergeOutcome ab = Merge(a, b, policy);
  MergeOutcome ba = Merge(b, a, policy);
  EXPECT_EQ(ab.record, ba.record);
  EXPECT_FALSE(Exists(ab.record, policy));
  EXPECT_FALSE(Exists(ba.record, policy));
  const Conflict* conflict = ConflictOn(ba.effects, kExistsField);
  ASSERT_NE(conflict, nullptr);
  EXPECT_EQ(conflict->winner.value, Value::Int(0));
}

TEST(MergePolicyTest, AnUpdateAfterSeeingADeleteResurrectsUnderEitherPolicy) {
  for (ExistsPolicy exists : {ExistsPolicy::kKeepUpdate, ExistsPolicy::kDeleteWins}) {
    const MergePolicy policy = WithExists(exists);
    Record a("k"), b("k");
    Write(a, 1, 1, 10, {{"x", Value::Int(1)}}, policy);
    Delete(a, 1, 2, 20, policy);
    MergeInto(b, a, policy);
    ASSERT_FALSE(Exists(b, policy));
    Write(b, 2, 1, 15, {{"x", Value::Int(2)}}, policy);
    MergeOutcome outcome = Merge(a, b, policy);
    EXPECT_TRUE(Exists(outcome.record, policy));
    EXPECT_TRUE(outcome.effects.conflicts.empty());
  }
}

TEST(MergePolicyTest, ExistsIsFalseForARecordNeverWritten) {
  EXPECT_FALSE(Exists(Record("k"), {}));
}

TEST(MergePolicyTest, ConcurrentCounterIncrementsAddUp) {
  const MergePolicy policy = WithFields(FieldPolicy::kCounter);
  Record a("stock/1"), b("stock/1");
  Write(a, 1, 1, 10, {{"stock", Value::Int(10)}}, policy);
  MergeInto(b, a, policy);
  Write(a, 1, 2, 20, {{"stock", Value::Int(13)}}, policy);  // +3
  Write(b, 2, 1, 30, {{"stock", Value::Int(15)}}, policy);  // +5
  MergeOutcome ab = Merge(a, b, policy);
  MergeOutcome ba = Merge(b, a, policy);
  EXPECT_EQ(Shown(ab.record, "stock", policy), Value::Int(18));
  EXPECT_EQ(Shown(ba.record, "stock", policy), Value::Int(18));
  EXPECT_EQ(ab.record, ba.record);
  EXPECT_EQ(ConflictOn(ab.effects, "stock"), nullptr);
  EXPECT_EQ(ConflictOn(ba.effects, "stock"), nullptr);
  // One contribution per node, sorted by dot.
  const Field* stock = ab.record.Find("stock");
  ASSERT_EQ(stock->versions.size(), 2u);
  EXPECT_EQ(stock->versions[0].dot, (Dot{Node(1), 2}));
  EXPECT_EQ(stock->versions[0].value, Value::Int(13));
  EXPECT_EQ(stock->versions[1].dot, (Dot{Node(2), 1}));
  EXPECT_EQ(stock->versions[1].value, Value::Int(5));
}

TEST(MergePolicyTest, CounterWriteAfterMergingMovesOnlyThatNodesContribution) {
  const MergePolicy policy = WithFields(FieldPolicy::kCounter);
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"n", Value::Int(10)}}, policy);
  MergeInto(b, a, policy);
  Write(a, 1, 2, 20, {{"n", Value::Int(13)}}, policy);
  Write(b, 2, 1, 30, {{"n", Value::Int(15)}}, policy);
  MergeInto(a, b, policy);
  ASSERT_EQ(Shown(a, "n", policy), Value::Int(18));
  Write(a, 1, 3, 40, {{"n", Value::Int(20)}}, policy);  // +2 on A
  Write(b, 2, 2, 41, {{"n", Value::Int(14)}}, policy);  // -1 on B, concurrently
  MergeInto(a, b, policy);
  MergeInto(b, a, policy);
  EXPECT_EQ(Shown(a, "n", policy), Value::Int(19));
  EXPECT_EQ(a, b);
}

TEST(MergePolicyTest, CounterMergeIsIdempotentAndIgnoresStaleContributions) {
  const MergePolicy policy = WithFields(FieldPolicy::kCounter);
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"n", Value::Int(1)}}, policy);
  const Record stale = a;
  Write(a, 1, 2, 20, {{"n", Value::Int(5)}}, policy);
  Write(b, 2, 1, 30, {{"n", Value::Int(2)}}, policy);
  MergeOutcome once = Merge(a, b, policy);
  MergeOutcome twice = Merge(once.record, b, policy);
  EXPECT_EQ(twice.record, once.record);
  EXPECT_FALSE(twice.effects.changed());
  MergeOutcome old = Merge(once.record, stale, policy);
  EXPECT_EQ(old.record, once.record);
  EXPECT_FALSE(old.effects.changed());
  EXPECT_EQ(Shown(once.record, "n", policy), Value::Int(7));
}

TEST(MergePolicyTest, CounterFieldGivenTextIsInvalidArgumentAndChangesNothing) {
  const MergePolicy policy = WithFields(FieldPolicy::kCounter);
  Record record("k");
  Write(record, 1, 1, 10, {{"n", Value::Int(1)}}, policy);
  const Record before = record;
  LocalWrite write{{Node(1), 2}, Hlc::Make(20, 0), {{"n", Value::Text("three")}}, true};
  Result<std::vector<std::string>> result = ApplyLocalWrite(record, write, policy);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.error().message().find("'n'"), std::string::npos);
  EXPECT_EQ(record, before);
}

// Regression: a row inserted without its counter column (NULL) once made every stamp of the
// database fail, so nothing synced at all.
TEST(MergePolicyTest, CounterFieldGivenNullCountsAsZero) {
  const MergePolicy policy = WithFields(FieldPolicy::kCounter);
  Record record("k");
  Write(record, 1, 1, 10, {{"n", Value::Null()}}, policy);
  EXPECT_EQ(Shown(record, "n", policy), Value::Int(0));
  Write(record, 1, 2, 20, {{"n", Value::Int(4)}}, policy);
  EXPECT_EQ(Shown(record, "n", policy), Value::Int(4));
}

TEST(MergePolicyTest, CounterMixesIntsAndFloats) {
  const MergePolicy policy = WithFields(FieldPolicy::kCounter);
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"n", Value::Int(1)}}, policy);
  MergeInto(b, a, policy);
  Write(b, 2, 1, 20, {{"n", Value::Float(2.5)}}, policy);
  MergeInto(a, b, policy);
  EXPECT_EQ(Shown(a, "n", policy), Value::Float(2.5));
}

TEST(MergePolicyTest, PerFieldOverrideReplacesTheCollectionPolicy) {
  MergePolicy policy;  // lww
  policy.overrides["stock"] = FieldPolicy::kCounter;
  policy.overrides["notes"] = FieldPolicy::kManual;
  Record a("k"), b("k");
  Write(a, 1, 1, 10,
        {{"name", Value::Text("a")}, {"stock", Value::Int(10)}, {"notes", Value::Text("a")}},
        policy);
  MergeInto(b, a, policy);
  Write(a, 1, 2, 20,
        {{"name", Value::Text("a2")}, {"stock", Value::Int(11)}, {"notes", Value::Text("a2")}},
        policy);
  Write(b, 2, 1, 30,
        {{"name", Value::Text("b2")}, {"stock", Value::Int(12)}, {"notes", Value::Text("b2")}},
        policy);
  MergeOutcome ab = Merge(a, b, policy);
  EXPECT_EQ(ab.record, Merge(b, a, policy).record);
  EXPECT_EQ(Shown(ab.record, "name", policy), Value::Text("b2"));
  EXPECT_EQ(ab.record.Find("name")->versions.size(), 2u);
  EXPECT_EQ(Shown(ab.record, "stock", policy), Value::Int(13));
  EXPECT_EQ(ab.record.Find("notes")->versions.size(), 2u);
  ASSERT_NE(ConflictOn(ab.effects, "notes"), nullptr);
  EXPECT_TRUE(ConflictOn(ab.effects, "notes")->pending);
  ASSERT_NE(ConflictOn(ab.effects, "name"), nullptr);
  EXPECT_FALSE(ConflictOn(ab.effects, "name")->pending);
  EXPECT_EQ(ConflictOn(ab.effects, "stock"), nullptr);
}

TEST(MergePolicyTest, OverrideCanMakeOneFieldLwwInAManualCollection) {
  MergePolicy policy = WithFields(FieldPolicy::kManual);
  policy.overrides["title"] = FieldPolicy::kLww;
  EXPECT_EQ(policy.For("title"), FieldPolicy::kLww);
  EXPECT_EQ(policy.For("body"), FieldPolicy::kManual);
  EXPECT_EQ(policy.For(kExistsField), FieldPolicy::kLww);
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"title", Value::Text("a")}, {"body", Value::Text("a")}}, policy);
  Write(b, 2, 1, 20, {{"title", Value::Text("b")}, {"body", Value::Text("b")}}, policy);
  MergeOutcome merged = Merge(a, b, policy);
  ASSERT_NE(ConflictOn(merged.effects, "title"), nullptr);
  ASSERT_NE(ConflictOn(merged.effects, "body"), nullptr);
  EXPECT_FALSE(ConflictOn(merged.effects, "title")->pending);
  EXPECT_TRUE(ConflictOn(merged.effects, "body")->pending);
  EXPECT_EQ(Shown(merged.record, "title", policy), Value::Text("b"));
  EXPECT_EQ(Shown(merged.record, "body", policy), Value::Text("b"));
}

TEST(MergePolicyTest, ExistsFieldCannotBeWrittenDirectly) {
  Record record("k");
  LocalWrite write{{Node(1), 1}, Hlc::Make(1, 0), {{"_exists", Value::Int(0)}}, true};
  Result<std::vector<std::string>> result = ApplyLocalWrite(record, write, {});
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(record, Record("k"));
}

TEST(LocalWriteTest, ReturnsTheChangedFieldsSortedAndAdvancesTheVersionVector) {
  Record record("k");
  LocalWrite write{{Node(1), 1}, Hlc::Make(5, 0), {{"z", Value::Int(1)}, {"a", Value::Int(2)}}};
  Result<std::vector<std::string>> changed = ApplyLocalWrite(record, write, {});
  ASSERT_TRUE(changed.has_value());
  EXPECT_EQ(*changed, Names({"_exists", "a", "z"}));
  EXPECT_EQ(record.vv(), VersionVector({{Node(1), 1}}));
  EXPECT_TRUE(Exists(record, {}));
  EXPECT_EQ(record.Find("a")->versions[0], (Version{Value::Int(2), {Node(1), 1}, Hlc::Make(5, 0)}));
}

// --- Deltas ----------------------------------------------------------------------------------

TEST(DeltaTest, MakeDeltaIncludesChosenFieldsAndSetsBaseToTheMaxOfOmittedDots) {
  Record full("k");
  Write(full, 1, 1, 10, {{"a", Value::Int(1)}, {"b", Value::Int(1)}});
  Write(full, 2, 5, 20, {{"b", Value::Int(2)}});
  Write(full, 1, 2, 30, {{"c", Value::Int(3)}});
  Write(full, 2, 6, 40, {{"d", Value::Int(4)}});
  const RecordDelta delta =
      MakeDelta(full, [](const std::string& name) { return name == "d" || name == "_exists"; });
  EXPECT_EQ(delta.record.key(), "k");
  EXPECT_EQ(delta.record.vv(), full.vv());
  ASSERT_EQ(delta.record.fields().size(), 2u);
  EXPECT_EQ(delta.record.fields()[0].first, "_exists");
  EXPECT_EQ(delta.record.fields()[1].first, "d");
  EXPECT_EQ(delta.record.fields()[1].second, *full.Find("d"));
  // Omitted: a (1,1), b (2,5), c (1,2).
  EXPECT_EQ(delta.base, VersionVector({{Node(1), 2}, {Node(2), 5}}));
}

TEST(DeltaTest, DeltaOfEveryFieldHasAnEmptyBaseAndMergesLikeTheRecord) {
  Record full("k");
  Write(full, 1, 1, 10, {{"a", Value::Int(1)}});
  const RecordDelta delta = MakeDelta(full, [](const std::string&) { return true; });
  EXPECT_TRUE(delta.base.empty());
  EXPECT_EQ(delta.record, full);
  Record fresh("k");
  Result<MergeEffects> effects = MergeDeltaInto(fresh, delta, {});
  ASSERT_TRUE(effects.has_value());
  EXPECT_EQ(fresh, full);
}

TEST(DeltaTest, MergeDeltaIntoAppliesWhenTheReceiverCoversBase) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}, {"y", Value::Int(1)}});
  MergeInto(b, a, {});
  Write(a, 1, 2, 20, {{"x", Value::Int(2)}});
  const RecordDelta delta = MakeDelta(a, [](const std::string& name) { return name != "y"; });
  ASSERT_EQ(delta.base, VersionVector({{Node(1), 1}}));
  const Record full_merge = Merge(b, a, {}).record;
  Result<MergeEffects> effects = MergeDeltaInto(b, delta, {});
  ASSERT_TRUE(effects.has_value()) << effects.error().ToString();
  EXPECT_EQ(b, full_merge);
  EXPECT_EQ(b, a);
  EXPECT_EQ(effects->changed_fields, Names({"_exists", "x"}));
}

TEST(DeltaTest, MergeDeltaIntoRefusesWhenAnEarlierDeltaWasDropped) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}, {"y", Value::Int(1)}});
  MergeInto(b, a, {});
  Write(a, 1, 2, 20, {{"x", Value::Int(2)}});  // its delta is lost on the way to B
  Write(a, 1, 3, 30, {{"y", Value::Int(3)}});
  const RecordDelta delta =
      MakeDelta(a, [](const std::string& name) { return name == "y" || name == "_exists"; });
  ASSERT_EQ(delta.base, VersionVector({{Node(1), 2}}));  // x's write, which B lacks
  const Record before = b;
  Result<MergeEffects> effects = MergeDeltaInto(b, delta, {});
  ASSERT_FALSE(effects.has_value());
  EXPECT_EQ(effects.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(b, before);
  // Had B merged it, its vv would claim A's write 2 and it would discard x = 2 later as seen.
  MergeInto(b, a, {});
  EXPECT_EQ(b, a);
  EXPECT_EQ(Shown(b, "x"), Value::Int(2));
}

TEST(DeltaTest, DeltasMergedInOrderGiveTheSameRecordAsMergingTheFullRecord) {
  Record a("k"), by_delta("k"), by_full("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}, {"y", Value::Int(1)}, {"z", Value::Int(1)}});
  MergeInto(by_delta, a, {});
  MergeInto(by_full, a, {});
  // B writes concurrently, so the deltas meet a conflict too.
  Write(by_delta, 2, 1, 15, {{"y", Value::Text("b")}});
  Write(by_full, 2, 1, 15, {{"y", Value::Text("b")}});
  const Fields writes[] = {{{"x", Value::Int(2)}},
                           {{"y", Value::Int(3)}},
                           {{"z", Value::Int(4)}},
                           {{"x", Value::Int(5)}, {"z", Value::Int(6)}}};
  uint64_t counter = 1;
  std::vector<Conflict> delta_conflicts;
  for (const Fields& fields : writes) {
    ++counter;
    Write(a, 1, counter, 10 * counter, fields);
    // The fields this write touched.
    const Dot dot{Node(1), counter};
    const RecordDelta delta = MakeDelta(
        a, [&](const std::string& name) { return a.Find(name)->versions.back().dot == dot; });
    Result<MergeEffects> effects = MergeDeltaInto(by_delta, delta, {});
    ASSERT_TRUE(effects.has_value()) << counter << ": " << effects.error().ToString();
    for (Conflict& conflict : effects->conflicts) delta_conflicts.push_back(conflict);
  }
  MergeEffects full_effects = MergeInto(by_full, a, {});
  EXPECT_EQ(by_delta, by_full);
  EXPECT_EQ(Shown(by_delta, "x"), Value::Int(5));
  EXPECT_EQ(Shown(by_delta, "y"), Value::Int(3));
  EXPECT_EQ(Shown(by_delta, "z"), Value::Int(6));
  // The y conflict is seen once either way.
  ASSERT_NE(ConflictOn(full_effects, "y"), nullptr);
  int y_conflicts = 0;
  for (const Conflict& conflict : delta_conflicts) y_conflicts += conflict.field == "y";
  EXPECT_EQ(y_conflicts, 1);
}

TEST(DeltaTest, DeltaArrivingOutOfOrderIsRefusedThenAcceptedAfterItsPredecessor) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}, {"y", Value::Int(1)}});
  MergeInto(b, a, {});
  Write(a, 1, 2, 20, {{"x", Value::Int(2)}});
  const RecordDelta first =
      MakeDelta(a, [](const std::string& name) { return name == "x" || name == "_exists"; });
  Write(a, 1, 3, 30, {{"y", Value::Int(3)}});
  const RecordDelta second =
      MakeDelta(a, [](const std::string& name) { return name == "y" || name == "_exists"; });
  ASSERT_FALSE(MergeDeltaInto(b, second, {}).has_value());
  ASSERT_TRUE(MergeDeltaInto(b, first, {}).has_value());
  ASSERT_TRUE(MergeDeltaInto(b, second, {}).has_value());
  EXPECT_EQ(b, a);
}

}  // namespace
}  // namespace lockstep::core

namespace lockstep::core {
namespace {

TEST(MergeRegressionTest, MergeIntoADefaultConstructedRecordTakesTheIncomingKey) {
  Record a("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(1)}});
  MergeOutcome outcome = Merge(Record(), a, {});
  EXPECT_EQ(outcome.record.key(), "k");
  EXPECT_EQ(outcome.record, a);
  Record fresh;
  ASSERT_TRUE(
      MergeDeltaInto(fresh, MakeDelta(a, [](const std::string&) { return true; }), {}).has_value());
  EXPECT_EQ(fresh, a);
}

TEST(MergeRegressionTest, SiblingsArrivingAtAReplicaWithoutTheFieldAreReportedThere) {
  for (FieldPolicy field_policy : {FieldPolicy::kLww, FieldPolicy::kManual}) {
    const MergePolicy policy = WithFields(field_policy);
    const bool manual = field_policy == FieldPolicy::kManual;
    Record a("k"), b("k"), c("k"), c_with_field("k");
    Write(c_with_field, 3, 1, 5, {{"x", Value::Int(0)}}, policy);
    MergeInto(a, c_with_field, policy);
    MergeInto(b, c_with_field, policy);
    Write(a, 1, 1, 10, {{"x", Value::Int(1)}}, policy);
    Write(b, 2, 1, 20, {{"x", Value::Int(2)}}, policy);
    const Record siblings = Merge(a, b, policy).record;
    ASSERT_EQ(siblings.Find("x")->versions.size(), 2u);
    // A replica that held an earlier x and one that never held x learn of the same sibling set:
    // both must report it.
    for (const Record* local : std::vector<const Record*>{&c_with_field, &c}) {
      SCOPED_TRACE(std::string(manual ? "manual, " : "lww, ") +
                   (local == &c ? "replica without x" : "replica with x"));
      MergeOutcome outcome = Merge(*local, siblings, policy);
      EXPECT_EQ(outcome.record, siblings);
      const Conflict* conflict = ConflictOn(outcome.effects, "x");
      ASSERT_NE(conflict, nullptr);
      EXPECT_EQ(conflict->pending, manual);
      EXPECT_EQ(conflict->winner.dot, (Dot{Node(2), 1}));
      ASSERT_EQ(conflict->losers.size(), 1u);
      EXPECT_EQ(conflict->losers[0].dot, (Dot{Node(1), 1}));
      // Merging it again is no news.
      EXPECT_TRUE(Merge(outcome.record, siblings, policy).effects.conflicts.empty());
    }
  }
}

// --- Siblings that agree ---------------------------------------------------------------------

TEST(MergeSiblingsTest, ConcurrentWritesOfTheSameValueKeepSiblingsButReportNoConflict) {
  for (FieldPolicy field_policy : {FieldPolicy::kLww, FieldPolicy::kManual, FieldPolicy::kPrefer}) {
    SCOPED_TRACE(static_cast<int>(field_policy));
    MergePolicy policy = WithFields(field_policy);
    policy.prefer = {Node(1)};
    Record a("k"), b("k");
    Write(a, 1, 1, 10, {{"x", Value::Text("same")}}, policy);
    Write(b, 2, 1, 20, {{"x", Value::Text("same")}}, policy);
    MergeOutcome ab = Merge(a, b, policy);
    MergeOutcome ba = Merge(b, a, policy);
    EXPECT_EQ(ab.record, ba.record);
    for (const MergeOutcome* outcome : {&ab, &ba}) {
      EXPECT_TRUE(outcome->effects.conflicts.empty());
      // Both versions stay, sorted by dot, for both fields; the merge still changed them.
      const std::vector<Version> x = {{Value::Text("same"), {Node(1), 1}, Hlc::Make(10, 0)},
                                      {Value::Text("same"), {Node(2), 1}, Hlc::Make(20, 0)}};
      EXPECT_EQ(outcome->record.Find("x")->versions, x);
      EXPECT_EQ(outcome->record.Find(kExistsField)->versions.size(), 2u);
      EXPECT_EQ(outcome->effects.changed_fields, Names({"_exists", "x"}));
      EXPECT_TRUE(outcome->effects.vv_changed);
      EXPECT_EQ(Shown(outcome->record, "x", policy), Value::Text("same"));
    }
    // A replica that never held the record learns of the same agreeing siblings: no conflict.
    MergeOutcome fresh = Merge(Record("k"), ab.record, policy);
    EXPECT_EQ(fresh.record, ab.record);
    EXPECT_TRUE(fresh.effects.conflicts.empty());
    // Nor does one that held an earlier version of the field.
    Record c("k");
    Write(c, 3, 1, 5, {{"x", Value::Text("old")}}, policy);
    MergeInto(a, c, policy);
    MergeInto(b, c, policy);
    Write(a, 1, 2, 30, {{"x", Value::Text("same")}}, policy);
    Write(b, 2, 2, 40, {{"x", Value::Text("same")}}, policy);
    const Record siblings = Merge(a, b, policy).record;
    ASSERT_EQ(siblings.Find("x")->versions.size(), 2u);
    MergeOutcome at_c = Merge(c, siblings, policy);
    EXPECT_EQ(at_c.record, siblings);
    EXPECT_TRUE(at_c.effects.conflicts.empty());
    EXPECT_EQ(at_c.effects.changed_fields, Names({"_exists", "x"}));
  }
}

TEST(MergeSiblingsTest, TheSameRowInsertedOnTwoReplicasIsNoConflict) {
  // Two databases attached with the same row: each replica inserted it with its own write.
  const Fields row = {{"name", Value::Text("Ada")},
                      {"age", Value::Int(36)},
                      {"score", Value::Float(-0.0)},
                      {"photo", Value::Bytes("\x89PNG")},
                      {"note", Value::Null()}};
  Record a("person/1"), b("person/1");
  Write(a, 1, 1, 10, row);
  Write(b, 2, 1, 11, row);
  MergeOutcome ab = Merge(a, b, {});
  MergeOutcome ba = Merge(b, a, {});
  EXPECT_EQ(ab.record, ba.record);
  EXPECT_TRUE(ab.effects.conflicts.empty());
  EXPECT_TRUE(ba.effects.conflicts.empty());
  for (const auto& [name, field] : ab.record.fields()) {
    SCOPED_TRACE(name);
    ASSERT_EQ(field.versions.size(), 2u);
    EXPECT_EQ(field.versions[0].dot, (Dot{Node(1), 1}));
    EXPECT_EQ(field.versions[1].dot, (Dot{Node(2), 1}));
    EXPECT_EQ(field.versions[0].value, field.versions[1].value);
  }
  EXPECT_EQ(ab.record.fields().size(), row.size() + 1);
}

TEST(MergeSiblingsTest, ConcurrentWritesOfDifferentValuesAreStillAConflict) {
  Record a("k"), b("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(7)}, {"y", Value::Int(1)}});
  Write(b, 2, 1, 20, {{"x", Value::Int(8)}, {"y", Value::Int(1)}});
  for (const MergeOutcome& outcome : {Merge(a, b, {}), Merge(b, a, {})}) {
    // x differs; y and `_exists` agree.
    ASSERT_EQ(outcome.effects.conflicts.size(), 1u);
    const Conflict& conflict = outcome.effects.conflicts[0];
    EXPECT_EQ(conflict.field, "x");
    EXPECT_EQ(conflict.winner, (Version{Value::Int(8), {Node(2), 1}, Hlc::Make(20, 0)}));
    ASSERT_EQ(conflict.losers.size(), 1u);
    EXPECT_EQ(conflict.losers[0], (Version{Value::Int(7), {Node(1), 1}, Hlc::Make(10, 0)}));
    EXPECT_EQ(outcome.record.Find("y")->versions.size(), 2u);
  }
}

TEST(MergeSiblingsTest, ValuesEqualOnlyLooselyAreStillAConflict) {
  // Equality is exact: 1 and 1.0, 0.0 and -0.0, a text and a blob of the same bytes all differ.
  const std::pair<Value, Value> pairs[] = {{Value::Int(1), Value::Float(1.0)},
                                           {Value::Float(0.0), Value::Float(-0.0)},
                                           {Value::Text("1"), Value::Bytes("1")}};
  for (const auto& [first, second] : pairs) {
    SCOPED_TRACE(first.ToString() + " vs " + second.ToString());
    Record a("k"), b("k");
    Write(a, 1, 1, 10, {{"x", first}});
    Write(b, 2, 1, 20, {{"x", second}});
    MergeOutcome outcome = Merge(a, b, {});
    ASSERT_EQ(outcome.effects.conflicts.size(), 1u);
    EXPECT_EQ(outcome.effects.conflicts[0].field, "x");
    EXPECT_EQ(outcome.effects.conflicts[0].winner.value, second);
  }
}

TEST(MergeSiblingsTest, OneDifferingSiblingMakesTheWholeSetAConflict) {
  // A and B agree, so their siblings are no conflict; C's different value is, and the conflict
  // lists every other sibling as a loser, the agreeing ones included.
  Record a("k"), b("k"), c("k");
  Write(a, 1, 1, 10, {{"x", Value::Int(7)}});
  Write(b, 2, 1, 20, {{"x", Value::Int(7)}});
  Write(c, 3, 1, 30, {{"x", Value::Int(8)}});
  MergeOutcome ab = Merge(a, b, {});
  EXPECT_TRUE(ab.effects.conflicts.empty());
  MergeOutcome abc = Merge(ab.record, c, {});
  ASSERT_EQ(abc.effects.conflicts.size(), 1u);
  const Conflict& conflict = abc.effects.conflicts[0];
  EXPECT_EQ(conflict.field, "x");
  EXPECT_EQ(conflict.winner.dot, (Dot{Node(3), 1}));
  ASSERT_EQ(conflict.losers.size(), 2u);
  EXPECT_EQ(conflict.losers[0].dot, (Dot{Node(1), 1}));
  EXPECT_EQ(conflict.losers[1].dot, (Dot{Node(2), 1}));
  EXPECT_EQ(Shown(abc.record, "x"), Value::Int(8));
  // The other way round: the winner agrees with one sibling and not with the other.
  MergeOutcome c_then_a = Merge(Merge(c, a, {}).record, b, {});
  ASSERT_EQ(c_then_a.effects.conflicts.size(), 1u);
  EXPECT_EQ(c_then_a.effects.conflicts[0].losers.size(), 2u);
  EXPECT_EQ(c_then_a.record, abc.record);
  // A fourth concurrent write of 7, with the greatest HLC, wins: C's 8 among its losers keeps
  // the set a conflict, though the winner's value equals two of the three losers'.
  Record d("k");
  Write(d, 4, 1, 40, {{"x", Value::Int(7)}});
  MergeOutcome abcd = Merge(abc.record, d, {});
  ASSERT_EQ(abcd.effects.conflicts.size(), 1u);
  EXPECT_EQ(abcd.effects.conflicts[0].winner.dot, (Dot{Node(4), 1}));
  EXPECT_EQ(abcd.effects.conflicts[0].losers.size(), 3u);
  EXPECT_EQ(Shown(abcd.record, "x"), Value::Int(7));
}

}  // namespace
}  // namespace lockstep::core
