#include "engine/session_reconciliation.h"

namespace lockstep::engine {

Result<std::vector<uint64_t>> RecentPositions(store::ReplicaStore& store,
                                              const std::string& collection, size_t limit) {
  const uint64_t last = store.last_seq();
  LOCKSTEP_ASSIGN_OR_RETURN(store::ChangePage page,
                            store.ChangesAfter(last > limit ? last - limit : 0, limit, nullptr));
  std::vector<uint64_t> positions;
  for (auto it = page.changes.rbegin(); it != page.changes.rend(); ++it) {
    if (it->collection == collection) {
      positions.push_back(reconcile::ItemPosition(it->stored.record.key()));
    }
  }
  return positions;
}

reconcile::Differences SessionReconciliation::Collection::differences() const {
  return initiator != nullptr ? initiator->differences() : responder->differences();
}

Result<SessionReconciliation::Collection*> SessionReconciliation::Open(const std::string& name,
                                                                       bool initiate) {
  auto it = collections_.find(name);
  if (it != collections_.end()) return &it->second;
  if (initiate != initiating_) {
    return InvalidArgument("reconcile step for collection '" + name +
                           "', which the dialer did not open");
  }
  Collection collection;
  LOCKSTEP_ASSIGN_OR_RETURN(collection.items, item_sets_(name));
  reconcile::Options options = options_;
  options.recent_positions = collection.items.recent_positions;
  if (initiate) {
    collection.initiator = std::make_unique<reconcile::Initiator>(*collection.items.items, options);
  } else {
    collection.responder = std::make_unique<reconcile::Responder>(*collection.items.items, options);
  }
  return &collections_.emplace(name, std::move(collection)).first->second;
}

void SessionReconciliation::AppendSteps(const std::string& collection,
                                        const std::vector<reconcile::Message>& messages,
                                        std::vector<protocol::Reconcile>& steps) {
  for (const reconcile::Message& message : messages) {
    steps.push_back({collection, reconcile::EncodeMessage(message), false});
  }
}

void SessionReconciliation::FinishIfDone(std::vector<protocol::Reconcile>& steps) {
  for (const auto& [name, collection] : collections_) {
    if (!collection.initiator->done()) return;
  }
  steps.push_back({{}, {}, /*last=*/true});
  done_ = true;
}

Result<std::vector<protocol::Reconcile>> SessionReconciliation::Start(
    const std::vector<std::string>& collections) {
  initiating_ = true;
  std::vector<protocol::Reconcile> steps;
  for (const std::string& name : collections) {
    LOCKSTEP_ASSIGN_OR_RETURN(Collection * collection, Open(name, /*initiate=*/true));
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<reconcile::Message> requests,
                              collection->initiator->Start());
    AppendSteps(name, requests, steps);
  }
  FinishIfDone(steps);
  return steps;
}

Result<std::vector<protocol::Reconcile>> SessionReconciliation::Continue(
    const protocol::Reconcile& step) {
  std::vector<protocol::Reconcile> steps;
  if (done_) return InvalidArgument("reconcile step after the reconciliation ended");
  if (step.last) {
    // The dialer is done: so is every answer this side owed.
    done_ = true;
    if (step.step.empty()) return steps;
  }
  LOCKSTEP_ASSIGN_OR_RETURN(reconcile::Message message, reconcile::DecodeMessage(step.step));
  LOCKSTEP_ASSIGN_OR_RETURN(Collection * collection, Open(step.collection, initiating_));
  if (initiating_) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<reconcile::Message> requests,
                              collection->initiator->Receive(message));
    AppendSteps(step.collection, requests, steps);
    FinishIfDone(steps);
  } else {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<reconcile::Message> answers,
                              collection->responder->Receive(message));
    AppendSteps(step.collection, answers, steps);
  }
  return steps;
}

std::vector<RecordName> SessionReconciliation::ToSend() const {
  std::vector<RecordName> names;
  for (const auto& [name, collection] : collections_) {
    for (std::string& key : collection.differences().send) names.emplace_back(name, std::move(key));
  }
  return names;
}

std::vector<RecordName> SessionReconciliation::Needed() const {
  std::vector<RecordName> names;
  for (const auto& [name, collection] : collections_) {
    for (std::string& key : collection.differences().need) names.emplace_back(name, std::move(key));
  }
  return names;
}

}  // namespace lockstep::engine
