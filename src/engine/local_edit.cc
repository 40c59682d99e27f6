#include "engine/local_edit.h"

namespace lockstep::engine {

Status WriteLocally(store::ReplicaStore& store, connectors::RowSink& table,
                    store::StoredRecord& stored, core::LocalWrite write) {
  write.dot = store.NextDot();
  write.hlc = store.clock().Tick();
  LOCKSTEP_ASSIGN_OR_RETURN(std::vector<std::string> changed,
                            core::ApplyLocalWrite(stored.record, write, table.policy()));
  LOCKSTEP_RETURN_IF_ERROR(store.Put(table.collection().id, stored, changed, nullptr));
  LOCKSTEP_RETURN_IF_ERROR(table.WriteRow(stored.record));
  return table.Flush();
}

}  // namespace lockstep::engine
