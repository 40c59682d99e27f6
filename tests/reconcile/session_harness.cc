#include "session_harness.h"

#include <gtest/gtest.h>

namespace lockstep::reconcile::testing {

MemoryItemSet MakeSet(const std::vector<std::pair<std::string, std::string>>& records) {
  std::vector<Item> items;
  items.reserve(records.size());
  for (const auto& [key, encoding] : records) items.push_back(MakeItem(key, encoding));
  return MemoryItemSet(std::move(items));
}

SessionResult Reconcile(MemoryItemSet& initiator_items, MemoryItemSet& responder_items,
                        const Options& options) {
  Initiator initiator(initiator_items, options);
  Responder responder(responder_items, options);
  return Reconcile(initiator, responder);
}

SessionResult Reconcile(Initiator& initiator, Responder& responder) {
  SessionResult result;
  auto requests = initiator.Start();
  EXPECT_TRUE(requests.has_value()) << requests.error().ToString();
  std::vector<Message> wave = requests ? std::move(*requests) : std::vector<Message>{};
  while (!wave.empty() && result.round_trips < 100) {
    ++result.round_trips;
    std::vector<Message> answers;
    for (const Message& request : wave) {
      const std::string bytes = EncodeMessage(request);
      result.bytes += bytes.size();
      auto decoded = DecodeMessage(bytes);
      EXPECT_TRUE(decoded.has_value()) << decoded.error().ToString();
      if (!decoded) return result;
      auto answer = responder.Receive(*decoded);
      EXPECT_TRUE(answer.has_value()) << answer.error().ToString();
      if (!answer) return result;
      answers.insert(answers.end(), answer->begin(), answer->end());
    }
    wave.clear();
    for (const Message& answer : answers) {
      const std::string bytes = EncodeMessage(answer);
      result.bytes += bytes.size();
      auto decoded = DecodeMessage(bytes);
      EXPECT_TRUE(decoded.has_value()) << decoded.error().ToString();
      if (!decoded) return result;
      auto next = initiator.Receive(*decoded);
      EXPECT_TRUE(next.has_value()) << next.error().ToString();
      if (!next) return result;
      wave.insert(wave.end(), next->begin(), next->end());
    }
  }
  EXPECT_TRUE(initiator.done());
  result.initiator = initiator.differences();
  result.responder = responder.differences();
  return result;
}

}  // namespace lockstep::reconcile::testing
