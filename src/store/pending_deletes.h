// The deletes a `lockstep reset` still owes: DB's unsynced deletes, which can only be made again
// once the peer's rows are back (a delete must cover the peer's version of the row, or it would be
// a concurrent edit for the policy to decide). They are written in the reset's rebuild transaction
// and removed in the transaction that makes them, so that a reset killed in between finishes when
// it is run again, instead of letting the rows come back from the peer.
#pragma once

#include <string>
#include <vector>

#include "store/database.h"

namespace lockstep::store {

struct PendingDelete {
  std::string collection;  // the collection's name
  std::string key;         // the record's encoded key
};

// Adds `deletes` to the owed ones (`_lockstep_pending_deletes`, made when missing).
// REQUIRES: inside a write transaction.
Status RememberPendingDeletes(Database& db, const std::vector<PendingDelete>& deletes);

// The owed deletes, in (collection, key) order; empty when none are owed. Reads only.
Result<std::vector<PendingDelete>> ReadPendingDeletes(Database& db);

// Forgets every owed delete (drops the table). REQUIRES: inside a write transaction.
Status ForgetPendingDeletes(Database& db);

}  // namespace lockstep::store
