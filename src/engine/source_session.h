// The engine's side of a network session: a source's change log (SQLite or PostgreSQL) sent to
// the peer, the peer's batches merged into it. One handler for the dialer, one for the hub.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "connectors/source.h"
#include "engine/session_reconciliation.h"
#include "protocol/session.h"
#include "security/tokens.h"

namespace lockstep::engine {

// What one session moved.
struct SessionCounts {
  size_t sent = 0;       // records sent
  size_t received = 0;   // records received
  size_t changed = 0;    // records that changed here
  size_t conflicts = 0;  // losing values logged here

  void Add(const SessionCounts& other) {
    sent += other.sent;
    received += other.received;
    changed += other.changed;
    conflicts += other.conflicts;
  }
};

// Reading and applying, shared by both ends once the collections are granted. Not thread-safe.
class SourceHandler : public protocol::SessionHandler {
 public:
  Result<protocol::ChangeBatch> ReadChanges(const protocol::Cursor& after, size_t limit) override;
  Status Apply(const protocol::ChangeBatch& batch) override;
  Result<std::vector<protocol::Reconcile>> StartReconcile() override;
  Result<std::vector<protocol::Reconcile>> ContinueReconcile(
      const protocol::Reconcile& step) override;

  const SessionCounts& counts() const { return counts_; }
  // Writes the peer's cursor that batches without records moved (see Apply), if any: when a
  // session has ended, before the store is closed.
  Status WriteDeferredCursor();
  // Called after a batch from the peer changed something here (a hub wakes its other sessions).
  void OnChange(std::function<void()> callback) { on_change_ = std::move(callback); }
  const std::vector<std::string>& collections() const { return collections_; }

 protected:
  explicit SourceHandler(connectors::Source& source) : source_(source) {}
  // After the handshake: who the peer is and which collections this session carries.
  void Grant(const core::NodeId& peer, std::vector<std::string> collections);
  // kAborted when the session no longer carries what it should (a collection appeared since
  // the handshake): the peer reconnects and the new handshake grants it. Checked before every
  // read of the log, so a live session picks up new tables within a tick.
  virtual Status CheckGrant() { return Status::Ok(); }
  // Schemas of `names` as this source has them, for a peer that lacks them.
  Result<std::vector<protocol::Schema>> SchemasOf(const std::vector<std::string>& names);
  // Takes in what the peer knows of this store (restore detection, ReplicaStore::AdoptPeerView)
  // and refuses a peer that would need a reset. After Grant, before anything is stamped. Returns
  // whether this store found it was restored.
  Result<bool> TakePeerView(const core::NodeId& peer, int64_t peer_epoch,
                            uint64_t highest_dot_of_me, const protocol::Cursor& peer_cursor_of_me);
  // The peer's cursor taken in by TakePeerView no longer tells what the peer holds of this log.
  void ForgetPeerCursor() { peer_cursor_of_me_ = {}; }
  // Whether this store holds any record of the collections `names` (with `all`, of any).
  Result<bool> HoldsRecords(const std::vector<std::string>& names, bool all);
  // Begins the reconciliation phase: users' writes stamped, and this log's end noted, from
  // which the log is sent once the records the peer lacks have gone. With `verify_at`, the peer
  // only verifies: it is sent no record, and the log "resumes" at its own cursor, `verify_at`.
  Status BeginReconciliation(std::optional<protocol::Cursor> verify_at = std::nullopt);

 private:
  // After a reconciliation: the records the peer lacks, sent before the log resumes at `resume`.
  struct Backlog {
    std::vector<RecordName> records;
    size_t next = 0;
  };
  Result<protocol::ChangeBatch> ReadBacklog(size_t limit);
  // Ends the reconciliation phase once it is done: its findings become the backlog.
  void FinishReconciliation();

  std::optional<SessionReconciliation> reconciliation_;
  protocol::Cursor resume_;  // this log's end when the reconciliation began
  // The peer's cursor of this log, as the handshake carried it: what the peer holds of it.
  store::Cursor peer_cursor_of_me_;
  std::optional<Backlog> backlog_;
  bool verifying_ = false;  // the peer only verifies (protocol::kFeatureVerify)
  // The longest a cursor moved by batches without records waits before a read writes it.
  static constexpr std::chrono::seconds kDeferCursorFor{1};
  bool cursor_written_ = false;                   // this session wrote the peer's cursor
  std::optional<store::Cursor> deferred_cursor_;  // moved since, not yet written
  std::chrono::steady_clock::time_point deferred_since_;

 protected:
  connectors::Source& source_;
  core::NodeId peer_;
  std::vector<std::string> collections_;  // sorted
  std::string scope_;                     // collections_ joined by commas
  SessionCounts counts_;
  std::function<void()> on_change_;
};

// The node that dials: its Hello, and what it does with the listener's Welcome.
class DialerHandler final : public SourceHandler {
 public:
  // `url` names the listener, to remember who answered there; `tables` are the collections to
  // sync (empty: every one the token allows). With `all_tables`, a table created here later
  // restarts the session so that it is synced too.
  DialerHandler(connectors::Source& source, std::string url, std::vector<std::string> tables,
                bool all_tables = false)
      : SourceHandler(source),
        url_(std::move(url)),
        tables_(std::move(tables)),
        all_tables_(all_tables) {}

  // The Hello to send. REQUIRES: the source's store is open.
  Result<protocol::Hello> MakeHello(const std::string& token, protocol::Direction direction);

  Result<protocol::Welcome> Accept(const protocol::Hello& hello) override;
  Status Welcomed(const protocol::Welcome& welcome) override;

 private:
  Status CheckGrant() override;

  std::string url_;
  std::vector<std::string> tables_;
  bool all_tables_ = false;  // `tables` was empty: every table, including ones made later
};

// The hub: checks the token, grants collections, creates the tables it lacks from the dialer's
// schemas.
class HubHandler final : public SourceHandler {
 public:
  // Tokens are read from `data_dir` at every Hello, so tokens made while the hub runs work.
  HubHandler(connectors::Source& hub, std::filesystem::path data_dir)
      : SourceHandler(hub), data_dir_(std::move(data_dir)) {}

  Result<protocol::Welcome> Accept(const protocol::Hello& hello) override;
  Status Welcomed(const protocol::Welcome& welcome) override;

 private:
  Status CheckGrant() override;

  std::filesystem::path data_dir_;
  std::optional<security::TokenGrant> all_of_;  // the dialer asked for all this grant covers
};

}  // namespace lockstep::engine
