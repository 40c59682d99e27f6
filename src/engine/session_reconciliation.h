// The reconciliation phase of one session (docs/PROTOCOL.md, "Reconcile"): for every collection
// the session carries, the dialer runs a reconcile::Initiator and the listener answers with a
// reconcile::Responder, each over its store's item set of that collection. What each side finds
// it must send then goes first, as change batches, before its log from where it stood when the
// phase began.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protocol/messages.h"
#include "reconcile/item_set.h"
#include "reconcile/reconciler.h"
#include "store/replica_store.h"

namespace lockstep::engine {

// A record one side must send: its collection and key.
using RecordName = std::pair<std::string, std::string>;

// What this side reconciles of one collection: its items, and the positions of the ones it
// changed most recently (newest first), which let differences among recent changes be found
// item by item instead of by descending ranges (reconcile::Options::recent_positions).
struct CollectionItems {
  std::unique_ptr<reconcile::ItemSet> items;
  std::vector<uint64_t> recent_positions;
};

// How many of a store's latest changes are offered as recent: about 11 bytes each when the sets
// differ, nothing when they are equal.
inline constexpr size_t kRecentChanges = 1024;

// The positions of the records of `collection` among the last `limit` changes of `store`'s log,
// newest first.
Result<std::vector<uint64_t>> RecentPositions(store::ReplicaStore& store,
                                              const std::string& collection, size_t limit);

class SessionReconciliation {
 public:
  // The items of a collection this session carries.
  using ItemSets = std::function<Result<CollectionItems>(const std::string& collection)>;

  SessionReconciliation(ItemSets item_sets, const reconcile::Options& options)
      : item_sets_(std::move(item_sets)), options_(options) {}

  // Dialer: the opening steps, one set per collection; a lone step marked `last` when there are
  // no collections.
  Result<std::vector<protocol::Reconcile>> Start(const std::vector<std::string>& collections);
  // Either side: the steps answering the peer's. The dialer's answer to the last outstanding
  // step ends with a step marked `last`. REQUIRES: `step.collection` is one the session carries.
  Result<std::vector<protocol::Reconcile>> Continue(const protocol::Reconcile& step);

  // Every collection is settled (the dialer has sent `last`, or the listener received it).
  bool done() const { return done_; }
  // The records this side must send, by collection then key. Complete once done().
  std::vector<RecordName> ToSend() const;
  // The records the peer must send, when the options name keys (SessionParams::name_keys).
  std::vector<RecordName> Needed() const;

 private:
  struct Collection {
    CollectionItems items;
    std::unique_ptr<reconcile::Initiator> initiator;  // dialer
    std::unique_ptr<reconcile::Responder> responder;  // listener
    reconcile::Differences differences() const;
  };
  Result<Collection*> Open(const std::string& name, bool initiate);
  // Encodes `messages` as steps of `collection`.
  static void AppendSteps(const std::string& collection,
                          const std::vector<reconcile::Message>& messages,
                          std::vector<protocol::Reconcile>& steps);
  // Dialer: appends `last` when every initiator is done.
  void FinishIfDone(std::vector<protocol::Reconcile>& steps);

  ItemSets item_sets_;
  reconcile::Options options_;
  std::map<std::string, Collection> collections_;
  bool initiating_ = false;
  bool done_ = false;
};

}  // namespace lockstep::engine
