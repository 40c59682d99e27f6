// The `_lockstep_*` tables that hold the replica store inside a user's SQLite database (or in a
// PostgreSQL database, with the same columns in PostgreSQL's types), and the migrations between
// their versions.
//
//   _lockstep_meta(name, value)            node id, log epoch, dot counter, seq, last HLC, version,
//                                          the tombstone collection horizon (gc_seq, gc_ms), the
//                                          stale log entries and when to trim them (log_stale,
//                                          log_trim_at)
//   _lockstep_collections(id, name, policy, create_sql)   the synced tables
//   _lockstep_records(collection, key, seq, record, field_seqs, origin, position, hash, deleted_ms)
//       one row per record ever seen, deleted ones included (they are the tombstones); `record` is
//       the canonical encoding (core/codec.h), `field_seqs` the seq at which each field last
//       changed (varints, in field order), `seq` their maximum. `origin` names the peer
//       (in _lockstep_peers) whose state the record took verbatim in its last change (NULL after a
//       local write or a merge that combined both sides): that peer has it, so it is not sent back.
//       `position` and `hash` are the record's reconciliation item (record_item.h), listed by
//       position by an index; `deleted_ms` is when a tombstone was deleted (NULL for live records).
//   _lockstep_log(seq, collection, key, origin)   the change log: one entry appended per record
//       written, at the record's new seq, with its origin. An entry whose seq is no longer its
//       record's is stale (the record changed again, or was collected) and is skipped by readers
//       until a trim removes it. Joined with the records on (collection, key, seq), read in seq
//       order, it is the change log compacted to the latest state of each record.
//   _lockstep_buckets(id, sums)            item counts and hash sums per bucket (bucket_sums.h)
//   _lockstep_bucket_deltas(id, collection, entries, changes)   changes to the bucket sums not
//                                          yet folded into _lockstep_buckets (bucket_sums.h)
//   _lockstep_node_dots(node, counter)     the highest dot counter held of each node
//   _lockstep_peers(id, node)              small numbers for the node ids of peers
//   _lockstep_cursors(peer, epoch, seq, synced_ms)   how far (and when last) this store has merged
//                                          each peer's change log
//   _lockstep_conflicts(...)               every losing value with its node and time
//   _lockstep_capture_<table>(id, ts, k0..kn)  keys captured by triggers, waiting to be stamped
//   _lockstep_pending_deletes(collection, key)  deletes a stopped `lockstep reset` still owes
//                                          (store/pending_deletes.h); absent when none are owed
#pragma once

#include <map>
#include <optional>
#include <string>

#include "store/database.h"

namespace lockstep::store {

inline constexpr int kMetadataVersion = 4;

// The index that lists a collection's records by bucket (the top 16 bits of their item position,
// record_item.h). A large write drops it and the first reader that needs it makes it again
// (ReplicaStore::EnsureItemIndex): an apply writes its entries in random order, which costs more
// than sorting them once.
inline constexpr std::string_view kItemIndexSql =
    "CREATE INDEX IF NOT EXISTS _lockstep_records_by_bucket "
    "ON _lockstep_records(collection, (position >> 48))";

// Creates the metadata tables when missing, or migrates them to kMetadataVersion. Fails with
// kFailedPrecondition when they were made by a newer Lockstep. REQUIRES: inside a transaction.
Status InstallMetadata(Database& db);

// True when `db` holds Lockstep metadata.
Result<bool> HasMetadata(Database& db);
// The version of `db`'s metadata, 0 when it has none. Reads only.
Result<int64_t> MetadataVersion(Database& db);

// The conflict policy of each registered collection, by name; empty when `db` has no metadata.
// Reads only.
Result<std::map<std::string, std::string>> ReadPolicies(Database& db);

// One entry of `_lockstep_meta`: its value, or nullopt when missing.
Result<std::optional<Value>> ReadMeta(Database& db, std::string_view name);
Status WriteMeta(Database& db, std::string_view name, const Value& value);

// Drops every `_lockstep_` table and trigger, leaving the user's tables untouched.
Status DropMetadata(Database& db);

}  // namespace lockstep::store
