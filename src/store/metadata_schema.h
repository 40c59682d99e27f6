// The `_lockstep_*` tables that hold the replica store inside a user's SQLite database (or in a
// PostgreSQL database, with the same columns in PostgreSQL's types), and the migrations between
// their versions.
//
//   _lockstep_meta(name, value)            node id, log epoch, dot counter, seq, last HLC, version
//   _lockstep_collections(id, name, policy, create_sql)   the synced tables
//   _lockstep_records(collection, key, seq, record, field_seqs, origin)
//       one row per record ever seen, deleted ones included (they are the tombstones); `record` is
//       the canonical encoding (core/codec.h), `field_seqs` the seq at which each field last
//       changed (varints, in field order), `seq` their maximum. Read in seq order, this table is
//       the change log, compacted to the latest state of each record. `origin` names the peer
//       (in _lockstep_peers) whose state the record took verbatim in its last change (NULL after a
//       local write or a merge that combined both sides): that peer has it, so it is not sent back.
//   _lockstep_peers(id, node)              small numbers for the node ids of peers
//   _lockstep_cursors(peer, epoch, seq)    how far this store has merged each peer's change log
//   _lockstep_conflicts(...)               every losing value with its node and time
//   _lockstep_capture_<table>(id, ts, k0..kn)  keys captured by triggers, waiting to be stamped
#pragma once

#include <map>
#include <string>

#include "store/database.h"

namespace lockstep::store {

inline constexpr int kMetadataVersion = 1;

// Creates the metadata tables when missing, or migrates them to kMetadataVersion. Fails with
// kFailedPrecondition when they were made by a newer Lockstep. REQUIRES: inside a transaction.
Status InstallMetadata(Database& db);

// True when `db` holds Lockstep metadata.
Result<bool> HasMetadata(Database& db);

// The conflict policy of each registered collection, by name; empty when `db` has no metadata.
// Reads only.
Result<std::map<std::string, std::string>> ReadPolicies(Database& db);

// Drops every `_lockstep_` table and trigger, leaving the user's tables untouched.
Status DropMetadata(Database& db);

}  // namespace lockstep::store
