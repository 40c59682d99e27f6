#include "engine/session_reconciliation.h"

namespace lockstep::engine {

bool CursorAgreed(const store::ReplicaStore& store, const PeerView& peer) {
  const store::Cursor& cursor = peer.cursor_of_me;
  // A cursor of this epoch past the end of the log would have made this store call itself
  // restored and start a new epoch (AdoptPeerView), voiding it; seq 0 is the void cursor a
  // reconciliation cut short leaves.
  return cursor.epoch == store.epoch() && cursor.seq > 0 && cursor.seq <= store.last_seq();
}

Result<std::vector<uint64_t>> RecentPositions(store::ReplicaStore& store, int64_t collection,
                                              const PeerView& peer) {
  return store.ChangedPositions(collection, CursorAgreed(store, peer) ? peer.cursor_of_me.seq : 0,
                                kMaxRecentChanges, &peer.node);
}

SessionReconciliation::ItemSets StoreItemSets(store::ReplicaStore& store, PeerView peer) {
  return [&store, peer](const std::string& name) -> Result<CollectionItems> {
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> known, store.Collections());
    for (const store::Collection& c : known) {
      if (c.name != name) continue;
      auto store_items = std::make_unique<store::StoreItemSet>(store, c.id);
      CollectionItems items{nullptr, {}, store_items.get()};
      items.items = std::move(store_items);
      LOCKSTEP_ASSIGN_OR_RETURN(items.recent_positions, RecentPositions(store, c.id, peer));
      items.recent_window = RecentWindow(store, peer);
      return items;
    }
    return NotFound("collection '" + name + "' is not held here");
  };
}

SessionReconciliation::Steps SessionReconciliation::InSnapshot(const std::function<Steps()>& body) {
  if (snapshot_ == nullptr || snapshot_->db().InTransaction()) return body();
  // The bucket index made (if a bulk load dropped it) and pending bucket sums folded before the
  // snapshot, which must stay a read.
  LOCKSTEP_RETURN_IF_ERROR(snapshot_->PrepareItemReads());
  LOCKSTEP_RETURN_IF_ERROR(snapshot_->db().BeginRead());
  in_snapshot_ = true;
  for (auto& [name, collection] : collections_) {
    if (collection.items.store_items != nullptr) collection.items.store_items->CacheBuckets(true);
  }
  Steps steps = body();
  // What was read may change once the snapshot ends.
  in_snapshot_ = false;
  for (auto& [name, collection] : collections_) {
    if (collection.items.store_items != nullptr) collection.items.store_items->CacheBuckets(false);
  }
  Status ended = snapshot_->db().Exec(steps.has_value() ? "COMMIT" : "ROLLBACK");
  if (steps.has_value() && !ended.ok()) return ended;
  return steps;
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
  if (in_snapshot_ && collection.items.store_items != nullptr) {
    collection.items.store_items->CacheBuckets(true);
  }
  reconcile::Options options = options_;
  options.recent_positions = collection.items.recent_positions;
  options.recent_window = collection.items.recent_window;
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
  return InSnapshot([&] { return StartSteps(collections); });
}

Result<std::vector<protocol::Reconcile>> SessionReconciliation::Continue(
    const protocol::Reconcile& step) {
  return InSnapshot([&] { return ContinueSteps(step); });
}

SessionReconciliation::Steps SessionReconciliation::StartSteps(
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

SessionReconciliation::Steps SessionReconciliation::ContinueSteps(const protocol::Reconcile& step) {
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
