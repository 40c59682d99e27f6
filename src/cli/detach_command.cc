// `lockstep detach DB`: removes Lockstep's triggers and metadata, leaving the user's data. DB is a
// SQLite file or a postgres:// URL (there the capture functions go too).
#include <iostream>

#include "cli/command.h"
#include "engine/open_database.h"
#include "store/metadata_schema.h"

namespace lockstep::cli {
namespace {

int RunDetach(const std::string& path) {
  auto db = engine::OpenConnection(path, /*read_only=*/false);
  if (!db.has_value()) return Fail(db.error());
  const std::string name = (*db)->name();
  Status status = (*db)->BeginWrite();
  if (status.ok()) status = store::DropMetadata(**db);
  if (status.ok()) status = (*db)->Exec("COMMIT");
  if (!status.ok()) {
    if ((*db)->InTransaction()) (void)(*db)->Exec("ROLLBACK");
    return Fail(status.WithContext("detaching " + name));
  }
  std::cout << "detached " << name << ": triggers and metadata removed, data untouched\n";
  return 0;
}

}  // namespace

void AddDetachCommand(CLI::App& app, Runner& run) {
  auto path = std::make_shared<std::string>();
  CLI::App* detach = app.add_subcommand(
      "detach", "Remove Lockstep's triggers and metadata from a database; its data stays");
  detach->add_option("database", *path, "SQLite database file or postgres:// URL")->required();
  detach->callback([path, &run] { run = [path] { return RunDetach(*path); }; });
}

}  // namespace lockstep::cli
