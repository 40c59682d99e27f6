// Writes that Lockstep makes on a user's behalf, as if the user had made them and capture had
// stamped them: a conflict resolved by hand, a delete that a reset makes again.
#pragma once

#include "connectors/row_sink.h"
#include "core/local_write.h"
#include "store/replica_store.h"

namespace lockstep::engine {

// Stamps `write` with this node's next dot and HLC, applies it to `stored` (read from `store`),
// and writes the record and the user's row (flushed). REQUIRES: inside a write of `store`.
Status WriteLocally(store::ReplicaStore& store, connectors::RowSink& table,
                    store::StoredRecord& stored, core::LocalWrite write);

}  // namespace lockstep::engine
