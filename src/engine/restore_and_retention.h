// What two stores settle before changes move between them (local form; the network session
// carries the same facts in its handshake): whether one was restored from an older copy of its
// file, and whether one has been away longer than the other's tombstone retention.
//
// Over the network each side's Hello must carry, per peer it is talking to: the highest dot of
// that peer it holds (ReplicaStore::HighestDotOf), its cursor into that peer's log for the scope
// (epoch, seq) and when that cursor last moved (CursorSyncedAt). The receiver then, before it
// stamps captures: AdoptPeerView(peer, highest_dot_of_me, cursor_of_me); ForgetOrigin(peer) when
// its own cursor of the peer names another epoch than the peer's Hello; and, as the sender,
// PeerNeedsReset(cursor_of_me, synced_ms) -> refuse with "reset required".
#pragma once

#include <cstdint>
#include <string>

#include "connectors/source.h"

namespace lockstep::engine {

inline constexpr int64_t kDefaultRetentionMs = 30LL * 24 * 3600 * 1000;

// Tells each store what the other knows of it (the highest dot of it held, the cursor into its
// log kept for `scope`), so that a store restored from a backup moves its dot counter past what
// its peer has seen and starts a new log epoch (ReplicaStore::AdoptPeerView). Before stamping.
Status ExchangeViews(connectors::Source& a, connectors::Source& b, std::string_view scope);

// kFailedPrecondition "reset required: ..." when `to` has not merged `from`'s log since before
// tombstones `from` has collected: syncing could resurrect records deleted meanwhile.
Status CheckRetention(connectors::Source& from, connectors::Source& to, std::string_view scope,
                      int64_t retention_ms);

// "30 days", "12 hours", ...: a retention as the error message shows it.
std::string DescribeDuration(int64_t millis);

}  // namespace lockstep::engine
