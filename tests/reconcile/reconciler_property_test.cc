// The reconciliation protocol on random pairs of sets, over a network that loses, duplicates and
// reorders messages: the initiator resends what is unanswered whenever nothing is in flight, and
// at the end each side must send exactly the records the other lacks.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reconcile/memory_item_set.h"
#include "reconcile/reconciler.h"

namespace lockstep::reconcile {
namespace {

// How one key differs between the two sides.
enum class Kind { kEqual, kOnlyA, kOnlyB, kBothDiffer };

struct Sides {
  std::map<std::string, std::string> a, b;  // key -> encoding
};

Sides GenerateSides() {
  const auto size = *rc::gen::inRange<size_t>(0, 3000);
  // Mostly equal keys, with a random share of differences of every kind.
  const auto equal_weight = *rc::gen::inRange(0, 100);
  const auto kinds = *rc::gen::container<std::vector<Kind>>(
      size, rc::gen::weightedOneOf<Kind>(
                {{static_cast<size_t>(equal_weight) + 1, rc::gen::just(Kind::kEqual)},
                 {3, rc::gen::just(Kind::kOnlyA)},
                 {3, rc::gen::just(Kind::kOnlyB)},
                 {3, rc::gen::just(Kind::kBothDiffer)}}));
  Sides sides;
  for (size_t i = 0; i < kinds.size(); ++i) {
    const std::string key = "k" + std::to_string(i);
    switch (kinds[i]) {
      case Kind::kEqual:
        sides.a[key] = sides.b[key] = "same";
        break;
      case Kind::kOnlyA:
        sides.a[key] = "a";
        break;
      case Kind::kOnlyB:
        sides.b[key] = "b";
        break;
      case Kind::kBothDiffer:
        sides.a[key] = "a";
        sides.b[key] = "b";
        break;
    }
  }
  return sides;
}

MemoryItemSet ToSet(const std::map<std::string, std::string>& records) {
  std::vector<Item> items;
  for (const auto& [key, encoding] : records) items.push_back(MakeItem(key, encoding));
  return MemoryItemSet(std::move(items));
}

// Keys `from` holds in a version `to` lacks.
std::vector<std::string> Missing(const std::map<std::string, std::string>& from,
                                 const std::map<std::string, std::string>& to) {
  std::vector<std::string> keys;
  for (const auto& [key, encoding] : from) {
    const auto it = to.find(key);
    if (it == to.end() || it->second != encoding) keys.push_back(key);
  }
  return keys;
}

// Messages in flight one way, delivered in random order, each possibly lost or duplicated.
struct Channel {
  std::vector<std::string> queue;
  void Push(const std::vector<Message>& messages) {
    for (const Message& message : messages) queue.push_back(EncodeMessage(message));
  }
};

RC_GTEST_PROP(ReconcilerPropertyTest, FindsExactlyTheDifferencesDespiteLossAndDuplication, ()) {
  const Sides sides = GenerateSides();
  MemoryItemSet a = ToSet(sides.a), b = ToSet(sides.b);
  Options options;
  options.session.seed = *rc::gen::arbitrary<uint64_t>();
  options.session.fingerprint_bytes = *rc::gen::inRange<uint8_t>(4, 9);
  options.session.item_bytes = *rc::gen::inRange<uint8_t>(4, 9);
  options.session.name_keys = *rc::gen::arbitrary<bool>();
  options.leaf_items = *rc::gen::inRange<size_t>(1, 40);
  options.max_message_bytes = *rc::gen::element<size_t>(200, 2000, kMaxMessageBytes);
  // Recent changes, as the engine would give them: some of the keys that differ, some that do
  // not, and positions of nothing at all; offered all at once or in growing windows, with the
  // differing keys often first, so that windows grow over several rounds.
  Options b_options = options;
  for (auto* side : {&options, &b_options}) {
    const auto& records = side == &options ? sides.a : sides.b;
    side->recent_window = *rc::gen::element<size_t>(0, 1, 2, 4, 32);
    if (*rc::gen::arbitrary<bool>()) {
      for (const std::string& key : Missing(records, side == &options ? sides.b : sides.a)) {
        side->recent_positions.push_back(ItemPosition(key));
      }
    }
    for (const auto& [key, encoding] : records) {
      if (*rc::gen::inRange(0, 100) < 3) side->recent_positions.push_back(ItemPosition(key));
    }
    const auto strangers = *rc::gen::inRange(0, 5);
    for (int i = 0; i < strangers; ++i) {
      side->recent_positions.push_back(*rc::gen::arbitrary<uint64_t>());
    }
  }
  const int loss_percent = *rc::gen::inRange(0, 40);
  const int duplicate_percent = *rc::gen::inRange(0, 40);

  Initiator initiator(a, options);
  Responder responder(b, b_options);
  Channel to_responder, to_initiator;
  auto start = initiator.Start();
  RC_ASSERT(start.has_value());
  to_responder.Push(*start);

  int steps = 0;
  while (!initiator.done()) {
    RC_ASSERT(++steps < 100000);
    if (to_responder.queue.empty() && to_initiator.queue.empty()) {
      to_responder.Push(initiator.Unanswered());  // the answers are overdue: send again
      continue;
    }
    const bool toward_responder =
        to_initiator.queue.empty() || (!to_responder.queue.empty() && *rc::gen::arbitrary<bool>());
    Channel& channel = toward_responder ? to_responder : to_initiator;
    const auto index = *rc::gen::inRange<size_t>(0, channel.queue.size());
    const std::string bytes = channel.queue[index];
    if (*rc::gen::inRange(0, 100) >= duplicate_percent) {
      channel.queue.erase(channel.queue.begin() + static_cast<std::ptrdiff_t>(index));
    }
    if (*rc::gen::inRange(0, 100) < loss_percent) continue;
    auto message = DecodeMessage(bytes);
    RC_ASSERT(message.has_value());
    if (toward_responder) {
      auto answers = responder.Receive(*message);
      RC_ASSERT(answers.has_value());
      to_initiator.Push(*answers);
    } else {
      auto requests = initiator.Receive(*message);
      if (!requests.has_value()) RC_LOG() << requests.error().ToString() << "\n";
      RC_ASSERT(requests.has_value());
      to_responder.Push(*requests);
    }
  }

  // Exactly the differences: nothing equal is sent, nothing different is missed. Applying them
  // both ways leaves each side holding every version either held, so the sets become equal.
  const Differences at_a = initiator.differences(), at_b = responder.differences();
  RC_ASSERT(at_a.send == Missing(sides.a, sides.b));
  RC_ASSERT(at_b.send == Missing(sides.b, sides.a));
  if (options.session.name_keys) {
    RC_ASSERT(at_a.need == at_b.send);
    RC_ASSERT(at_b.need == at_a.send);
  } else {
    RC_ASSERT(at_a.need.empty() && at_b.need.empty());
  }
}

}  // namespace
}  // namespace lockstep::reconcile
