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
#include "store/store_item_set.h"

namespace lockstep::engine {

// A record one side must send: its collection and key.
using RecordName = std::pair<std::string, std::string>;

// What this side reconciles of one collection: its items, and the positions of the ones it
// changed most recently (newest first), which let differences among recent changes be found
// item by item instead of by descending ranges (reconcile::Options::recent_positions).
struct CollectionItems {
  std::unique_ptr<reconcile::ItemSet> items;
  std::vector<uint64_t> recent_positions;
  // `items` when it is a store's: it keeps the buckets it reads while a step's snapshot lasts.
  store::StoreItemSet* store_items = nullptr;
  // reconcile::Options::recent_window: 0 when recent_positions are the changes since the peer's
  // cursor, kFirstRecentWindow when they are only the latest changes.
  size_t recent_window = 0;
};

// What the handshake told this side of its peer: who it is, and its cursor into this store's
// log for the session's collections (epoch 0 when it sent none).
struct PeerView {
  core::NodeId node;
  store::Cursor cursor_of_me;
};

// How many changes are offered as recent. When the peer's cursor of this store is of its current
// epoch and inside its log, the peer holds everything up to it, so only the changes after it are
// offered (about 11 bytes each when the sets differ, nothing when they are equal), at most
// kMaxRecentChanges: enough for 100k differences made since the two last agreed (1 MiB of
// positions), beyond which the ranges find the rest. Otherwise (no cursor, another epoch: this
// store was restored, or the peer lost or never had its cursor) nothing says when they agreed:
// the latest kMaxRecentChanges changes are read, and offered in growing windows, the last
// kFirstRecentWindow first, then older ones 8 times as many each round trip while most of what
// was offered differs (reconcile::Options::recent_window): a few bytes for a few writes made
// since, and no descent through the ranges for many.
inline constexpr size_t kMaxRecentChanges = size_t{1} << 17;
inline constexpr size_t kFirstRecentWindow = 16;

// Whether `peer`'s cursor of `store` says what it holds: of this epoch and inside the log.
bool CursorAgreed(const store::ReplicaStore& store, const PeerView& peer);

// The positions of the records of `collection` in `store` that `peer` may not hold as they are:
// those changed after its cursor of this store (or the latest changes, when that cursor is not
// CursorAgreed), newest first, without those taken verbatim from `peer`. An optimisation only: a
// record missing here is found by the ranges.
Result<std::vector<uint64_t>> RecentPositions(store::ReplicaStore& store, int64_t collection,
                                              const PeerView& peer);
// The reconcile::Options::recent_window for RecentPositions(store, _, peer).
inline size_t RecentWindow(const store::ReplicaStore& store, const PeerView& peer) {
  return CursorAgreed(store, peer) ? 0 : kFirstRecentWindow;
}

class SessionReconciliation {
 public:
  // The items of a collection this session carries.
  using ItemSets = std::function<Result<CollectionItems>(const std::string& collection)>;

  // With `snapshot`, each call reads that store in one read transaction (one snapshot and one
  // acquisition of its lock for all the queries answering a step), unless one is already open,
  // and the store item sets keep the buckets they read until it ends.
  SessionReconciliation(ItemSets item_sets, const reconcile::Options& options,
                        store::ReplicaStore* snapshot = nullptr)
      : item_sets_(std::move(item_sets)), options_(options), snapshot_(snapshot) {}

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
  using Steps = Result<std::vector<protocol::Reconcile>>;
  // Runs `body` inside a read transaction of `snapshot_` when there is one.
  Steps InSnapshot(const std::function<Steps()>& body);
  Steps StartSteps(const std::vector<std::string>& collections);
  Steps ContinueSteps(const protocol::Reconcile& step);

  ItemSets item_sets_;
  reconcile::Options options_;
  store::ReplicaStore* snapshot_ = nullptr;
  bool in_snapshot_ = false;  // a read transaction of snapshot_ is open for this call
  std::map<std::string, Collection> collections_;
  bool initiating_ = false;
  bool done_ = false;
};

// The item sets of `store`'s collections for a session with `peer`: each a store::StoreItemSet
// with the RecentPositions of `peer`. What a session's side hands SessionReconciliation.
SessionReconciliation::ItemSets StoreItemSets(store::ReplicaStore& store, PeerView peer);

}  // namespace lockstep::engine
