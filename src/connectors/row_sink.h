// A synced table as writes reach it from outside its own capture: a peer's merged records, a
// conflict resolved by hand.
#pragma once

#include "core/policy.h"
#include "core/record.h"
#include "store/replica_store.h"

namespace lockstep::connectors {

// A synced table as a merge, or a resolution, writes to it.
class RowSink {
 public:
  virtual ~RowSink() = default;
  virtual const store::Collection& collection() const = 0;
  virtual const core::MergePolicy& policy() const = 0;
  // Makes the record's visible state the row's (an upsert or a delete), possibly batched.
  virtual Status WriteRow(const core::Record& record) = 0;
  // The same, free to move the visible values out of `record` rather than copy them: the caller
  // reads no more of it than its key and how many versions each field holds. By default WriteRow.
  virtual Status TakeRow(core::Record& record) { return WriteRow(record); }
  // TakeRow of a record the store did not hold before this merge, whose row is therefore most
  // likely missing: a sink may gather such rows for a bulk insert, as long as it still ends right
  // when the row is there. By default TakeRow.
  virtual Status TakeNewRow(core::Record& record) { return TakeRow(record); }
  // Sends the batched rows.
  virtual Status Flush() = 0;
};

}  // namespace lockstep::connectors
