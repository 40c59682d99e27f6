// `lockstep verify A.db B.db` and `lockstep verify A.db lockstep://HOST:PORT`: compares two
// databases' synced tables (or a database and a hub's) without changing anything and lists the
// keys that differ. Exits 0 when they are equal, 1 when they differ, 2 on bad input.
#include <iostream>

#include "base/clock.h"
#include "cli/command.h"
#include "cli/hub_options.h"
#include "engine/compare.h"
#include "engine/network_verify.h"
#include "net/endpoint.h"
#include "store/postgres_db.h"

namespace lockstep::cli {
namespace {

void PrintKeys(const std::vector<std::string>& keys, const std::string& where) {
  for (const std::string& key : keys) std::cout << "  " << key << "  " << where << "\n";
}

int RunVerify(const std::string& a_path, const std::string& b_path) {
  auto comparison = engine::CompareDatabases(a_path, b_path, base::SystemClock::Get());
  // As messages name them: a URL's password is never shown.
  const std::string a = store::RedactPassword(a_path);
  const std::string b = store::RedactPassword(b_path);
  if (!comparison.has_value()) return Fail(comparison.error());
  for (const engine::CollectionDifference& c : comparison->collections) {
    if (c.only_in_a || c.only_in_b) {
      std::cout << c.collection << ": synced only in " << (c.only_in_a ? a : b) << " ("
                << (c.only_in_a ? c.records_a : c.records_b) << " records)\n";
      continue;
    }
    const size_t differing = c.only_a.size() + c.only_b.size() + c.changed.size() +
                             c.unsynced_a.size() + c.unsynced_b.size();
    if (differing == 0) {
      std::cout << c.collection << ": equal (" << c.records_a << " records)\n";
      continue;
    }
    std::cout << c.collection << ": " << differing
              << (differing == 1 ? " key differs\n" : " keys differ\n");
    PrintKeys(c.changed, "differs");
    PrintKeys(c.only_a, "only in " + a);
    PrintKeys(c.only_b, "only in " + b);
    PrintKeys(c.unsynced_a, "changed in " + a + " since its last sync");
    PrintKeys(c.unsynced_b, "changed in " + b + " since its last sync");
  }
  if (!comparison->differs()) {
    std::cout << a << " and " << b << " are equal\n";
    return 0;
  }
  return 1;
}

// Against a hub: set reconciliation finds the differing keys without sending the records.
int RunNetworkVerify(const std::string& db_path, const std::string& url, const HubOptions& hub) {
  engine::NetworkSyncOptions options;
  options.url = url;
  if (Status applied = hub.ApplyTo(options); !applied.ok()) return Fail(applied);
  auto differences = engine::VerifyWithListener(db_path, options, base::SystemClock::Get());
  if (!differences.has_value()) return Fail(differences.error());
  const std::string db = store::RedactPassword(db_path);
  bool differs = false;
  for (const engine::RemoteDifference& d : *differences) {
    const size_t count =
        d.changed.size() + d.only_here.size() + d.only_there.size() + d.unsynced.size();
    if (count == 0) {
      std::cout << d.collection << ": equal\n";
      continue;
    }
    differs = true;
    std::cout << d.collection << ": " << count
              << (count == 1 ? " key differs\n" : " keys differ\n");
    PrintKeys(d.changed, "differs");
    PrintKeys(d.only_here, "only in " + db);
    PrintKeys(d.only_there, "only at " + url);
    PrintKeys(d.unsynced, "changed in " + db + " since its last sync");
  }
  if (differs) return 1;
  std::cout << db << " and " << url << " are equal\n";
  return 0;
}

}  // namespace

void AddVerifyCommand(CLI::App& app, Runner& run) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto hub = std::make_shared<HubOptions>();
  CLI::App* verify = app.add_subcommand(
      "verify",
      "Compare two synced databases without changing either; list the keys that differ.\n"
      "Exit code 0: equal, 1: they differ, 2: bad input.");
  verify
      ->add_option("databases", *paths,
                   "two databases (SQLite files or postgres:// URLs), or one and a hub's "
                   "lockstep://HOST:PORT")
      ->required()
      ->expected(2);
  hub->AddTo(*verify);
  verify->callback([paths, hub, &run] {
    run = [paths, hub] {
      const std::string& a = (*paths)[0];
      const std::string& b = (*paths)[1];
      return net::IsUrl(b) ? RunNetworkVerify(a, b, *hub) : RunVerify(a, b);
    };
  });
}

}  // namespace lockstep::cli
