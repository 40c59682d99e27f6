// Property tests of the merge rule: replicas that write concurrently and exchange full records or
// deltas in any order, with duplicates and drops, converge to byte-identical records and lose no
// write; merge itself is commutative, associative and idempotent.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "core/codec.h"
#include "core/delta.h"
#include "core/hybrid_clock.h"
#include "core/local_write.h"
#include "core/merge.h"
#include "core/policy.h"
#include "core/record.h"

namespace lockstep::core {
namespace {

// Few keys and fields, so that random writes collide (real concurrency) often.
constexpr int kKeys = 2;
const std::array<std::string, 3> kFields = {"a", "b", "n"};
constexpr std::string_view kCounterField = "n";  // a counter under PolicyKind::kCounter

enum class PolicyKind { kLww, kPrefer, kManual, kDeleteWins, kCounter };

void showValue(PolicyKind kind, std::ostream& os) {
  static constexpr std::array<const char*, 5> kNames = {"lww", "prefer", "manual", "delete_wins",
                                                        "counter"};
  os << kNames[static_cast<size_t>(kind)];
}

NodeId Node(int i) {
  NodeId id;
  id.bytes[0] = 0x5a;
  id.bytes[15] = static_cast<uint8_t>(i + 1);
  return id;
}

MergePolicy MakePolicy(PolicyKind kind) {
  MergePolicy policy;
  switch (kind) {
    case PolicyKind::kLww:
      break;
    case PolicyKind::kPrefer:
      policy.fields = FieldPolicy::kPrefer;
      policy.prefer = {Node(2), Node(0)};  // the others rank last, then lww
      break;
    case PolicyKind::kManual:
      policy.fields = FieldPolicy::kManual;
      break;
    case PolicyKind::kDeleteWins:
      policy.exists = ExistsPolicy::kDeleteWins;
      break;
    case PolicyKind::kCounter:
      policy.overrides.emplace(kCounterField, FieldPolicy::kCounter);
      break;
  }
  return policy;
}

// One step of a history. Every number is taken modulo what it selects, so any Op is valid on any
// cluster and rapidcheck can shrink each part independently.
struct Op {
  int kind = 0;     // < 40 write, < 50 delete, < 75 send, < 90 deliver, < 95 duplicate, else drop
  int replica = 0;  // the writer, or the sender
  int other = 0;    // the receiver
  int key = 0;
  int pick = 0;   // the fields written, the kind of message sent, or the queued message
  int value = 0;  // the value written, or which fields a random-subset delta holds
  int tick = 0;   // milliseconds the replica's physical clock moves first
};

void showValue(const Op& op, std::ostream& os) {
  os << "{kind=" << op.kind << " replica=" << op.replica << " other=" << op.other
     << " key=" << op.key << " pick=" << op.pick << " value=" << op.value << " tick=" << op.tick
     << "}";
}

rc::Gen<Op> GenOp() {
  return rc::gen::build<Op>(
      rc::gen::set(&Op::kind, rc::gen::inRange(0, 100)),
      rc::gen::set(&Op::replica, rc::gen::inRange(0, 6)),
      rc::gen::set(&Op::other, rc::gen::inRange(0, 6)),
      rc::gen::set(&Op::key, rc::gen::inRange(0, kKeys)),
      rc::gen::set(&Op::pick, rc::gen::inRange(0, 64)),
      rc::gen::set(&Op::value, rc::gen::inRange(0, 16)),
      rc::gen::set(&Op::tick, rc::gen::weightedElement<int>({{3, 0}, {2, 1}, {1, 5}})));
}

// A write as its writer made it, for the no-lost-write check.
struct WriteRecord {
  int key;
  std::string field;
  Dot dot;
  Value value;
  VersionVector seen;  // the writer's version vector of the record just before the write
};

// A message in flight: a record's canonical encoding, as it would cross the wire.
struct Message {
  int from;
  int to;
  int key;
  bool is_delta;
  std::string bytes;
};

struct Replica {
  explicit Replica(int index) : node(Node(index)), hlc(clock) {
    for (int k = 0; k < kKeys; ++k) records.emplace_back("k" + std::to_string(k));
  }

  NodeId node;
  base::FakeClock clock{1'000'000};
  HybridClock hlc;
  uint64_t writes = 0;  // the counter of this node's last dot
  std::vector<Record> records;
};

// Replicas of a few records with the message queue between them and a log of what happened.
class Cluster {
 public:
  Cluster(int replicas, PolicyKind kind) : policy_(MakePolicy(kind)), kind_(kind) {
    for (int i = 0; i < replicas; ++i) replicas_.push_back(std::make_unique<Replica>(i));
    counter_sums_.assign(kKeys, 0);
  }

  void Run(const Op& op) {
    if (op.kind < 40) return Write(op, /*exists=*/true);
    if (op.kind < 50) return Write(op, /*exists=*/false);
    if (op.kind < 75) return Send(op);
    if (queue_.empty()) return;
    const size_t index = static_cast<size_t>(op.pick) % queue_.size();
    if (op.kind < 90) {
      const Message message = queue_[index];
      queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(index));
      return Deliver(message);
    }
    if (op.kind < 95) return queue_.push_back(queue_[index]);
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(index));
  }

  // Drops whatever is still in flight, then merges full records between every pair until nothing
  // changes. Returns the number of rounds it took.
  int ExchangeUntilStable() {
    queue_.clear();
    for (int round = 1; round <= 8; ++round) {
      bool changed = false;
      for (int k = 0; k < kKeys; ++k) {
        for (auto& from : replicas_) {
          for (auto& to : replicas_) {
            if (from == to) continue;
            const MergeEffects effects = MergeInto(to->records[k], from->records[k], policy_);
            NoteConflicts(effects);
            changed = changed || effects.changed();
          }
        }
      }
      if (!changed) return round;
    }
    return 0;
  }

  Record& record(int replica, int key) { return replicas_[replica]->records[key]; }
  int size() const { return static_cast<int>(replicas_.size()); }
  const MergePolicy& policy() const { return policy_; }
  int conflicts() const { return conflicts_; }
  int refused_deltas() const { return refused_deltas_; }

  // Every write to a register field is still a version of that field, or was replaced by a later
  // write whose writer had seen it, or was reported as the loser of a conflict. A counter shows
  // the sum of every increment made.
  void CheckNoWriteLost(int replica) const {
    std::map<std::pair<int, std::string>, std::vector<const WriteRecord*>> by_field;
    for (const WriteRecord& write : writes_) by_field[{write.key, write.field}].push_back(&write);
    for (const WriteRecord& write : writes_) {
      const Field* field = replicas_[replica]->records[write.key].Find(write.field);
      const bool present =
          field != nullptr &&
          std::any_of(field->versions.begin(), field->versions.end(), [&](const Version& v) {
            return v.dot == write.dot && v.value == write.value;
          });
      const auto& same_field = by_field.at({write.key, write.field});
      const bool replaced =
          std::any_of(same_field.begin(), same_field.end(),
                      [&](const WriteRecord* w) { return w->seen.Covers(write.dot); });
      const bool lost_conflict = losers_.count({write.key, write.field, write.dot}) > 0;
      RC_ASSERT(present || replaced || lost_conflict);
    }
    if (kind_ != PolicyKind::kCounter) return;
    for (int k = 0; k < kKeys; ++k) {
      const Field* field = replicas_[replica]->records[k].Find(kCounterField);
      const Value shown =
          field == nullptr ? Value::Int(0) : VisibleValue(*field, kCounterField, policy_);
      RC_ASSERT(shown == Value::Int(counter_sums_[k]));
    }
  }

 private:
  void Write(const Op& op, bool exists) {
    Replica& replica = *replicas_[op.replica % size()];
    Record& record = replica.records[op.key];
    replica.clock.Advance(op.tick);
    LocalWrite write{{replica.node, ++replica.writes}, replica.hlc.Tick(), {}, exists};
    if (exists) {
      const int mask = op.pick % 8 == 0 ? 1 : op.pick % 8;
      for (size_t f = 0; f < kFields.size(); ++f) {
        if ((mask >> f & 1) == 0) continue;
        write.fields.emplace_back(kFields[f], WrittenValue(record, kFields[f], op));
      }
    }
    const VersionVector seen = record.vv();
    const Record before = record;
    auto changed = ApplyLocalWrite(record, write, policy_);
    RC_ASSERT(changed.has_value());
    for (const auto& [name, value] : write.fields) {
      if (policy_.For(name) == FieldPolicy::kCounter) {
        counter_sums_[op.key] += CounterIncrement(before, name, value);
        continue;
      }
      writes_.push_back({op.key, name, write.dot, value, seen});
    }
    writes_.push_back(
        {op.key, std::string(kExistsField), write.dot, Value::Int(exists ? 1 : 0), seen});
  }

  // Register fields take a small int; the counter moves by -3..+3 from what this replica shows.
  Value WrittenValue(const Record& record, const std::string& name, const Op& op) const {
    if (policy_.For(name) != FieldPolicy::kCounter) return Value::Int(op.value % 4);
    const Field* field = record.Find(name);
    const Value shown = field == nullptr ? Value::Int(0) : VisibleValue(*field, name, policy_);
    return Value::Int(shown.as_int() + op.value % 7 - 3);
  }

  // What the writer meant to add: the new total minus the value it saw.
  int64_t CounterIncrement(const Record& before, const std::string& name,
                           const Value& total) const {
    const Field* field = before.Find(name);
    const int64_t shown = field == nullptr ? 0 : VisibleValue(*field, name, policy_).as_int();
    return total.as_int() - shown;
  }

  void Send(const Op& op) {
    const int from = op.replica % size();
    int to = op.other % size();
    if (to == from) to = (to + 1) % size();
    const Record& record = replicas_[from]->records[op.key];
    VersionVector& point = points_[{from, to, op.key}];
    Message message{from, to, op.key, true, {}};
    switch (op.pick % 3) {
      case 0:
        message.is_delta = false;
        message.bytes = EncodeRecord(record);
        break;
      case 1:  // the fields with a version the receiver was last sent nothing of
        message.bytes = EncodeDelta(MakeDelta(record, [&](const std::string& name) {
          const Field* field = record.Find(name);
          return std::any_of(field->versions.begin(), field->versions.end(),
                             [&](const Version& v) { return !point.Covers(v.dot); });
        }));
        break;
      case 2:  // a random subset of the fields
        message.bytes = EncodeDelta(MakeDelta(record, [&](const std::string& name) {
          const auto index = name == kExistsField ? 3 : name[0] - 'a';
          return (op.value >> (index % 4) & 1) != 0;
        }));
        break;
    }
    point = record.vv();  // optimistic: a refused delta resets it
    queue_.push_back(std::move(message));
  }

  void Deliver(const Message& message) {
    Replica& replica = *replicas_[message.to];
    Record& record = replica.records[message.key];
    MergeEffects effects;
    Hlc latest;
    if (!message.is_delta) {
      auto incoming = DecodeRecord(message.bytes);
      RC_ASSERT(incoming.has_value());
      latest = LatestHlc(*incoming);
      effects = MergeInto(record, *incoming, policy_);
    } else {
      auto delta = DecodeDelta(message.bytes);
      RC_ASSERT(delta.has_value());
      latest = LatestHlc(delta->record);
      const Record before = record;
      auto merged = MergeDeltaInto(record, *delta, policy_);
      if (!merged.has_value()) {
        RC_ASSERT(merged.error().code() == StatusCode::kFailedPrecondition);
        RC_ASSERT(record == before);
        points_.erase({message.from, message.to, message.key});  // the sender will send it all
        ++refused_deltas_;
        return;
      }
      effects = *std::move(merged);
    }
    NoteConflicts(effects);
    (void)replica.hlc.Update(latest);  // clocks stay within the allowed skew
  }

  static Hlc LatestHlc(const Record& record) {
    Hlc latest;
    for (const auto& [name, field] : record.fields()) {
      for (const Version& v : field.versions) latest = std::max(latest, v.hlc);
    }
    return latest;
  }

  void NoteConflicts(const MergeEffects& effects) {
    for (const Conflict& conflict : effects.conflicts) {
      ++conflicts_;
      const int key = conflict.key[1] - '0';
      for (const Version& loser : conflict.losers) losers_.insert({key, conflict.field, loser.dot});
    }
  }

  MergePolicy policy_;
  PolicyKind kind_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<Message> queue_;
  std::map<std::tuple<int, int, int>, VersionVector> points_;  // (from, to, key) → vv last sent
  std::vector<WriteRecord> writes_;
  std::set<std::tuple<int, std::string, Dot>> losers_;
  std::vector<int64_t> counter_sums_;
  int conflicts_ = 0;
  int refused_deltas_ = 0;
};

// Each field's versions are sorted by dot and covered by the record's version vector, and the
// record survives its own encoding.
void CheckWellFormed(const Record& record) {
  for (const auto& [name, field] : record.fields()) {
    RC_ASSERT(!field.versions.empty());
    for (size_t i = 0; i < field.versions.size(); ++i) {
      RC_ASSERT(record.vv().Covers(field.versions[i].dot));
      if (i > 0) RC_ASSERT(field.versions[i - 1].dot < field.versions[i].dot);
    }
  }
  auto decoded = DecodeRecord(EncodeRecord(record));
  RC_ASSERT(decoded.has_value());
  RC_ASSERT(*decoded == record);
}

void CheckConvergence(PolicyKind kind) {
  const int replicas = *rc::gen::inRange(2, 7);
  const auto ops = *rc::gen::container<std::vector<Op>>(GenOp());
  Cluster cluster(replicas, kind);
  for (const Op& op : ops) cluster.Run(op);
  RC_ASSERT(cluster.ExchangeUntilStable() > 0);
  RC_CLASSIFY(cluster.conflicts() > 0, "conflicts");
  RC_CLASSIFY(cluster.refused_deltas() > 0, "refused deltas");
  for (int k = 0; k < kKeys; ++k) {
    const std::string expected = EncodeRecord(cluster.record(0, k));
    CheckWellFormed(cluster.record(0, k));
    for (int r = 1; r < replicas; ++r) RC_ASSERT(EncodeRecord(cluster.record(r, k)) == expected);
  }
  cluster.CheckNoWriteLost(0);
}

RC_GTEST_PROP(ConvergencePropertyTest, ReplicasConvergeAndLoseNoWriteUnderLww, ()) {
  CheckConvergence(PolicyKind::kLww);
}

RC_GTEST_PROP(ConvergencePropertyTest, ReplicasConvergeAndLoseNoWriteUnderPrefer, ()) {
  CheckConvergence(PolicyKind::kPrefer);
}

RC_GTEST_PROP(ConvergencePropertyTest, ReplicasConvergeAndLoseNoWriteUnderManual, ()) {
  CheckConvergence(PolicyKind::kManual);
}

RC_GTEST_PROP(ConvergencePropertyTest, ReplicasConvergeAndLoseNoWriteUnderDeleteWins, ()) {
  CheckConvergence(PolicyKind::kDeleteWins);
}

RC_GTEST_PROP(ConvergencePropertyTest, ReplicasConvergeAndLoseNoWriteWithACounter, ()) {
  CheckConvergence(PolicyKind::kCounter);
}

// Three records of one key from a random history: replicas that have exchanged some of their
// writes, in some order, through some messages.
struct History {
  PolicyKind kind;
  std::array<Record, 3> records;
};

History GenHistory() {
  History history;
  history.kind = *rc::gen::element(PolicyKind::kLww, PolicyKind::kPrefer, PolicyKind::kManual,
                                   PolicyKind::kDeleteWins, PolicyKind::kCounter);
  const auto ops = *rc::gen::container<std::vector<Op>>(GenOp());
  Cluster cluster(*rc::gen::inRange(3, 6), history.kind);
  for (const Op& op : ops) cluster.Run(op);
  for (int i = 0; i < 3; ++i) history.records[i] = cluster.record(i, 0);
  return history;
}

RC_GTEST_PROP(MergePropertyTest, MergeIsCommutative, ()) {
  const History h = GenHistory();
  const MergePolicy policy = MakePolicy(h.kind);
  const auto& [a, b, c] = h.records;
  RC_ASSERT(Merge(a, b, policy).record == Merge(b, a, policy).record);
  RC_ASSERT(Merge(a, c, policy).record == Merge(c, a, policy).record);
}

RC_GTEST_PROP(MergePropertyTest, MergeIsAssociative, ()) {
  const History h = GenHistory();
  const MergePolicy policy = MakePolicy(h.kind);
  const auto& [a, b, c] = h.records;
  const Record left = Merge(Merge(a, b, policy).record, c, policy).record;
  const Record right = Merge(a, Merge(b, c, policy).record, policy).record;
  RC_ASSERT(left == right);
}

RC_GTEST_PROP(MergePropertyTest, MergeIsIdempotent, ()) {
  const History h = GenHistory();
  const MergePolicy policy = MakePolicy(h.kind);
  const auto& [a, b, c] = h.records;
  const MergeOutcome self = Merge(a, a, policy);
  RC_ASSERT(self.record == a);
  RC_ASSERT(!self.effects.changed());
  const Record ab = Merge(a, b, policy).record;
  const MergeOutcome again = Merge(ab, b, policy);
  RC_ASSERT(again.record == ab);
  RC_ASSERT(!again.effects.changed());
}

// Regression, found by ReplicasConvergeAndLoseNoWriteUnderLww: a merge kept only the winner of
// a conflict. Here b's delete replaces b's insert, and a's concurrent update beats the delete
// (keep_update) but loses to b's insert (lww on equal hlc: the greater node). A replica that
// dropped b's insert for a's update then saw b's delete kept a's update; one that dropped a's
// update for b's insert kept that insert; each then took the other's version as already seen,
// and they never converged.
TEST(MergeRegressionTest, ConflictLoserStillCompetesAfterItsWinnerIsReplaced) {
  const MergePolicy policy;
  const Hlc t = Hlc::Make(1000, 0);
  Record a("k"), b("k");
  ASSERT_TRUE(ApplyLocalWrite(a, {{Node(0), 1}, t, {{"a", Value::Int(0)}}}, policy).has_value());
  ASSERT_TRUE(ApplyLocalWrite(b, {{Node(1), 1}, t, {{"a", Value::Int(0)}}}, policy).has_value());
  Record c = b;
  ASSERT_TRUE(
      ApplyLocalWrite(b, {{Node(1), 2}, Hlc::Make(1000, 1), {}, false}, policy).has_value());
  MergeInto(b, a, policy);
  MergeInto(c, a, policy);
  MergeInto(b, c, policy);
  MergeInto(c, b, policy);
  EXPECT_EQ(b, c);
  EXPECT_TRUE(Exists(b, policy));  // the update concurrent with the delete resurrects the record
}

}  // namespace
}  // namespace lockstep::core
