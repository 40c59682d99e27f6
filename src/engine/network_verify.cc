#include "engine/network_verify.h"

#include <algorithm>
#include <map>
#include <random>

#include "core/key.h"
#include "engine/open_database.h"
#include "engine/session_reconciliation.h"
#include "store/store_item_set.h"

namespace lockstep::engine {
namespace {

// The dialer's side of a verify session: asks the listener to reconcile, names keys both ways,
// and accepts no record.
class VerifyHandler final : public protocol::SessionHandler {
 public:
  explicit VerifyHandler(store::ReplicaStore& store)
      : store_(store),
        reconciliation_(
            [this](const std::string& name) -> Result<CollectionItems> {
              auto it = collections_.find(name);
              // Granted but never synced here: compared as an empty collection.
              const int64_t id = it == collections_.end() ? -1 : it->second;
              auto store_items = std::make_unique<store::StoreItemSet>(store_, id);
              CollectionItems items{nullptr, {}, store_items.get()};
              items.items = std::move(store_items);
              // What changed since the listener's cursor of this store, when it has one.
              const PeerView peer{welcome_.node, {welcome_.cursor.epoch, welcome_.cursor.seq}};
              LOCKSTEP_ASSIGN_OR_RETURN(items.recent_positions, RecentPositions(store_, id, peer));
              items.recent_window = RecentWindow(store_, peer);
              return items;
            },
            Options(), &store_) {}

  Result<protocol::Welcome> Accept(const protocol::Hello&) override {
    return Internal("a dialer does not accept sessions");
  }

  Status Welcomed(const protocol::Welcome& welcome) override {
    if (!welcome.reconcile) return FailedPrecondition("the listener does not support verify");
    welcome_ = welcome;
    granted_ = welcome.collections;
    LOCKSTEP_ASSIGN_OR_RETURN(std::vector<store::Collection> known, store_.Collections());
    for (const store::Collection& c : known) collections_.emplace(c.name, c.id);
    return Status::Ok();
  }

  Result<std::vector<protocol::Reconcile>> StartReconcile() override {
    return reconciliation_.Start(granted_);
  }

  Result<std::vector<protocol::Reconcile>> ContinueReconcile(
      const protocol::Reconcile& step) override {
    return reconciliation_.Continue(step);
  }

  // Nothing to send: the cursor stays where the listener has it.
  Result<protocol::ChangeBatch> ReadChanges(const protocol::Cursor& after, size_t) override {
    protocol::ChangeBatch batch;
    batch.end = after;
    return batch;
  }

  Status Apply(const protocol::ChangeBatch& batch) override {
    if (!batch.changes.empty()) return PermissionDenied("records sent to a verify session");
    return Status::Ok();
  }

  const std::vector<std::string>& granted() const { return granted_; }
  const SessionReconciliation& reconciliation() const { return reconciliation_; }
  const std::map<std::string, int64_t>& collections() const { return collections_; }
  const protocol::Welcome& welcome() const { return welcome_; }

 private:
  static reconcile::Options Options() {
    reconcile::Options options;
    options.session.seed = std::random_device{}() * uint64_t{0x100000000} + std::random_device{}();
    options.session.name_keys = true;  // so that this side learns the listener's keys too
    return options;
  }

  store::ReplicaStore& store_;
  protocol::Welcome welcome_;
  std::vector<std::string> granted_;
  std::map<std::string, int64_t> collections_;  // synced here: name -> id
  SessionReconciliation reconciliation_;
};

// Keys of `names` in `collection`, as text, sorted.
std::vector<std::string> KeysOf(const std::vector<RecordName>& names,
                                const std::string& collection) {
  std::vector<std::string> keys;
  for (const auto& [c, key] : names) {
    if (c == collection) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> AsText(const std::vector<std::string>& keys) {
  std::vector<std::string> text;
  text.reserve(keys.size());
  for (const std::string& key : keys) text.push_back(core::KeyToString(key));
  return text;
}

// Opens the database read-only and runs a verify session with the listener.
struct VerifySession {
  std::unique_ptr<store::Database> db;
  std::unique_ptr<store::ReplicaStore> store;
  std::unique_ptr<VerifyHandler> handler;
};

Result<VerifySession> RunVerifySession(const std::filesystem::path& path,
                                       const NetworkSyncOptions& options,
                                       const base::Clock& clock) {
  LOCKSTEP_ASSIGN_OR_RETURN(net::Endpoint target, net::ParseUrl(options.url));
  VerifySession session;
  LOCKSTEP_ASSIGN_OR_RETURN(session.db, OpenConnection(path.string(), /*read_only=*/true));
  LOCKSTEP_ASSIGN_OR_RETURN(session.store, store::ReplicaStore::OpenReadOnly(*session.db, clock));
  session.handler = std::make_unique<VerifyHandler>(*session.store);
  protocol::Hello hello;
  hello.node = session.store->node();
  hello.token = options.token;
  hello.collections = options.tables;
  std::sort(hello.collections.begin(), hello.collections.end());
  hello.direction = protocol::Direction::kPull;  // nothing of ours is sent: a read token will do
  hello.epoch = session.store->epoch();
  hello.holds_records = true;
  hello.features = protocol::kFeatureVerify;
  if (options.tables.empty()) hello.features |= protocol::kFeatureAllCollections;
  net::DialOptions dial;
  dial.target = target;
  dial.tls = options.tls;
  LOCKSTEP_RETURN_IF_ERROR(net::SyncOnce(dial, *session.handler, hello));
  return session;
}

}  // namespace

Result<ListenerView> ProbeListener(const std::filesystem::path& path,
                                   const NetworkSyncOptions& options, const base::Clock& clock) {
  LOCKSTEP_ASSIGN_OR_RETURN(VerifySession session, RunVerifySession(path, options, clock));
  ListenerView view;
  view.highest_dot_of_me = session.handler->welcome().highest_dot_of_peer;
  for (const protocol::Schema& schema : session.handler->welcome().schemas) {
    view.policies.emplace(schema.collection, schema.policy);
  }
  return view;
}

Result<std::vector<RemoteDifference>> VerifyWithListener(const std::filesystem::path& path,
                                                         const NetworkSyncOptions& options,
                                                         const base::Clock& clock) {
  LOCKSTEP_ASSIGN_OR_RETURN(VerifySession session, RunVerifySession(path, options, clock));
  VerifyHandler& handler = *session.handler;
  const std::vector<RecordName> send = handler.reconciliation().ToSend();
  const std::vector<RecordName> need = handler.reconciliation().Needed();
  std::vector<RemoteDifference> differences;
  for (const std::string& collection : handler.granted()) {
    RemoteDifference difference;
    difference.collection = collection;
    const std::vector<std::string> here = KeysOf(send, collection);
    const std::vector<std::string> there = KeysOf(need, collection);
    std::vector<std::string> both, only_here, only_there;
    std::set_intersection(here.begin(), here.end(), there.begin(), there.end(),
                          std::back_inserter(both));
    std::set_difference(here.begin(), here.end(), there.begin(), there.end(),
                        std::back_inserter(only_here));
    std::set_difference(there.begin(), there.end(), here.begin(), here.end(),
                        std::back_inserter(only_there));
    difference.changed = AsText(both);
    difference.only_here = AsText(only_here);
    difference.only_there = AsText(only_there);
    if (auto synced = handler.collections().find(collection);
        synced != handler.collections().end()) {
      LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> unsynced,
                                UnstampedKeys(*session.db, collection, synced->second));
      difference.unsynced = AsText(unsynced);
    }
    differences.push_back(std::move(difference));
  }
  return differences;
}

}  // namespace lockstep::engine
