#include "store/pending_deletes.h"

namespace lockstep::store {
namespace {

constexpr std::string_view kTable = "_lockstep_pending_deletes";

}  // namespace

Status RememberPendingDeletes(Database& db, const std::vector<PendingDelete>& deletes) {
  if (deletes.empty()) return Status::Ok();
  LOCKSTEP_RETURN_IF_ERROR(
      db.Exec(db.dialect() == Dialect::kPostgres
                  ? "CREATE TABLE IF NOT EXISTS _lockstep_pending_deletes("
                    "collection text COLLATE \"C\" NOT NULL, key bytea NOT NULL, "
                    "PRIMARY KEY (collection, key))"
                  : "CREATE TABLE IF NOT EXISTS _lockstep_pending_deletes("
                    "collection TEXT NOT NULL, key BLOB NOT NULL, PRIMARY KEY (collection, key)) "
                    "WITHOUT ROWID"));
  LOCKSTEP_ASSIGN_OR_RETURN(Statement insert,
                            db.Prepare("INSERT INTO _lockstep_pending_deletes VALUES (?, ?) "
                                       "ON CONFLICT (collection, key) DO NOTHING"));
  for (const PendingDelete& owed : deletes) {
    LOCKSTEP_RETURN_IF_ERROR(insert.BindText(1, owed.collection).BindBlob(2, owed.key).Run());
  }
  return Status::Ok();
}

Result<std::vector<PendingDelete>> ReadPendingDeletes(Database& db) {
  std::vector<PendingDelete> deletes;
  LOCKSTEP_ASSIGN_OR_RETURN(bool owed, db.HasTable(kTable));
  if (!owed) return deletes;
  LOCKSTEP_ASSIGN_OR_RETURN(
      Statement stmt,
      db.Prepare("SELECT collection, key FROM _lockstep_pending_deletes ORDER BY collection, key"));
  for (;;) {
    LOCKSTEP_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    deletes.push_back({std::string(stmt.ColumnText(0)), std::string(stmt.ColumnBlob(1))});
  }
  return deletes;
}

Status ForgetPendingDeletes(Database& db) {
  return db.Exec("DROP TABLE IF EXISTS _lockstep_pending_deletes");
}

}  // namespace lockstep::store
