// `lockstep verify A.db B.db`: compares two databases' synced tables without changing anything and
// lists the keys that differ. Exits 0 when they are equal, 1 when they differ, 2 on bad input.
#include <iostream>

#include "base/clock.h"
#include "cli/command.h"
#include "engine/compare.h"

namespace lockstep::cli {
namespace {

void PrintKeys(const std::vector<std::string>& keys, const std::string& where) {
  for (const std::string& key : keys) std::cout << "  " << key << "  " << where << "\n";
}

int RunVerify(const std::string& a, const std::string& b) {
  auto comparison = engine::CompareDatabases(a, b, base::SystemClock::Get());
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

}  // namespace

void AddVerifyCommand(CLI::App& app, Runner& run) {
  auto paths = std::make_shared<std::vector<std::string>>();
  CLI::App* verify = app.add_subcommand(
      "verify",
      "Compare two synced databases without changing either; list the keys that differ.\n"
      "Exit code 0: equal, 1: they differ, 2: bad input.");
  verify->add_option("databases", *paths, "two SQLite database files")->required()->expected(2);
  verify->callback(
      [paths, &run] { run = [paths] { return RunVerify((*paths)[0], (*paths)[1]); }; });
}

}  // namespace lockstep::cli
