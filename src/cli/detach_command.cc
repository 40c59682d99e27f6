// `lockstep detach DB`: removes Lockstep's triggers and metadata, leaving the user's data.
#include <iostream>

#include "cli/command.h"
#include "store/metadata_schema.h"
#include "store/sqlite_db.h"

namespace lockstep::cli {
namespace {

int RunDetach(const std::string& path) {
  auto db = store::SqliteDb::Open(path, {});
  if (!db.has_value()) return Fail(db.error());
  Status status = db->Exec("BEGIN IMMEDIATE");
  if (status.ok()) status = store::DropMetadata(*db);
  if (status.ok()) status = db->Exec("COMMIT");
  if (!status.ok()) {
    (void)db->Exec("ROLLBACK");
    return Fail(status.WithContext("detaching " + path));
  }
  std::cout << "detached " << path << ": triggers and metadata removed, data untouched\n";
  return 0;
}

}  // namespace

void AddDetachCommand(CLI::App& app, Runner& run) {
  auto path = std::make_shared<std::string>();
  CLI::App* detach = app.add_subcommand(
      "detach", "Remove Lockstep's triggers and metadata from a database; its data stays");
  detach->add_option("database", *path, "SQLite database file")->required();
  detach->callback([path, &run] { run = [path] { return RunDetach(*path); }; });
}

}  // namespace lockstep::cli
