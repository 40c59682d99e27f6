#include "store/bulk_load.h"

namespace lockstep::store {

Status LoadOrWrite(Database& db, const std::function<Status()>& load,
                   const std::function<Status()>& write) {
  LOCKSTEP_RETURN_IF_ERROR(db.Exec("SAVEPOINT lockstep_bulk_load"));
  Status loaded = load();
  if (loaded.ok()) return db.Exec("RELEASE lockstep_bulk_load");
  // A failed statement has aborted the transaction: only the rollback makes it usable again.
  if (!db.Exec("ROLLBACK TO lockstep_bulk_load; RELEASE lockstep_bulk_load").ok()) return loaded;
  return write();
}

}  // namespace lockstep::store
