// `lockstep sync A.db B.db [more.db ...]`: one-shot sync of SQLite databases, both ways.
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "cli/command.h"
#include "cli/hub_options.h"
#include "engine/local_sync.h"
#include "engine/network_sync.h"
#include "engine/node_config.h"
#include "store/postgres_db.h"

namespace lockstep::cli {
namespace {

struct SyncArgs {
  std::vector<std::string> databases;
  std::vector<std::string> tables;
  std::string direction = "both";
  std::string conflict;
  bool dry_run = false;
  bool json = false;
  std::string retention = "30d";
  HubOptions hub;  // with a lockstep:// URL
};

// On stderr, so that the summary on stdout (text or JSON) stays as it is.
void PrintWarnings(const std::vector<std::string>& warnings) {
  for (const std::string& warning : warnings) std::cerr << "lockstep: warning: " << warning << "\n";
}

int RunNetworkSync(const SyncArgs& args) {
  if (args.databases.size() != 2)
    return Fail(InvalidArgument("sync with a hub takes one database"));
  if (args.dry_run) return Fail(InvalidArgument("--dry-run works between local databases only"));
  engine::NetworkSyncOptions options;
  options.url = args.databases[1];
  options.tables = args.tables;
  options.direction = args.direction == "push"   ? protocol::Direction::kPush
                      : args.direction == "pull" ? protocol::Direction::kPull
                                                 : protocol::Direction::kBoth;
  if (Status applied = args.hub.ApplyTo(options); !applied.ok()) return Fail(applied);
  auto report = engine::SyncWithListener(args.databases[0], options, base::SystemClock::Get());
  if (!report.has_value()) return Fail(report.error());
  PrintWarnings(report->warnings);
  const engine::SessionCounts& counts = report->counts;
  const std::string database = store::RedactPassword(args.databases[0]);  // never the password
  const std::string& hub = args.databases[1];
  if (args.json) {
    nlohmann::json out = {{"sent", counts.sent},
                          {"received", counts.received},
                          {"changed", counts.changed},
                          {"conflicts", counts.conflicts},
                          {"warnings", report->warnings}};
    std::cout << out.dump(2) << "\n";
  } else if (counts.sent == 0 && counts.received == 0) {
    std::cout << "nothing to sync: " << database << " and " << hub << " are in step\n";
  } else {
    std::cout << database << " -> " << hub << ": sent " << counts.sent << " records\n"
              << hub << " -> " << database << ": received " << counts.received
              << " records, changed " << counts.changed;
    if (counts.conflicts > 0) std::cout << ", " << counts.conflicts << " conflicts resolved";
    std::cout << "\n";
  }
  return 0;
}

void PrintText(const engine::LocalSyncReport& report) {
  for (const std::string& created : report.created)
    std::cout << "created table " << created << "\n";
  for (const std::string& skipped : report.skipped)
    std::cout << "skipped table " << skipped << "\n";
  const char* verb = report.dry_run ? "would change" : "changed";
  if (report.changed() == 0) {
    std::cout << "nothing to sync: the databases are in step"
              << (report.dry_run ? " (dry run)" : "") << "\n";
    return;
  }
  for (const engine::Transfer& t : report.transfers) {
    if (t.changed == 0) continue;
    std::cout << t.from << " -> " << t.to << ": " << verb << " " << t.changed << " record"
              << (t.changed == 1 ? "" : "s");
    if (t.conflicts > 0)
      std::cout << ", " << t.conflicts << " conflict" << (t.conflicts == 1 ? "" : "s")
                << " resolved";
    std::cout << "\n";
  }
  if (report.conflicts() > 0) {
    std::cout << "losing values are kept: lockstep conflicts list DB\n";
  }
  if (report.dry_run) std::cout << "dry run: nothing was written\n";
}

void PrintJson(const engine::LocalSyncReport& report) {
  nlohmann::json transfers = nlohmann::json::array();
  for (const engine::Transfer& t : report.transfers) {
    transfers.push_back({{"from", t.from},
                         {"to", t.to},
                         {"sent", t.sent},
                         {"changed", t.changed},
                         {"conflicts", t.conflicts}});
  }
  nlohmann::json out = {{"tables", report.tables},     {"created", report.created},
                        {"skipped", report.skipped},   {"transfers", transfers},
                        {"changed", report.changed()}, {"conflicts", report.conflicts()},
                        {"dry_run", report.dry_run},   {"warnings", report.warnings}};
  std::cout << out.dump(2) << "\n";
}

int RunSync(const SyncArgs& args) {
  if (args.databases.size() >= 2 && net::IsUrl(args.databases[1])) return RunNetworkSync(args);
  engine::LocalSyncOptions options;
  options.tables = args.tables;
  options.policy = args.conflict;
  options.dry_run = args.dry_run;
  auto retention = engine::ParseDuration(args.retention);
  if (!retention.has_value()) return Fail(retention.error().WithContext("--retention"));
  options.retention_ms = *retention;
  options.direction = args.direction == "push"   ? engine::Direction::kPush
                      : args.direction == "pull" ? engine::Direction::kPull
                                                 : engine::Direction::kBoth;
  std::vector<std::filesystem::path> paths(args.databases.begin(), args.databases.end());
  auto report = engine::SyncDatabases(paths, options, base::SystemClock::Get());
  if (!report.has_value()) return Fail(report.error());
  PrintWarnings(report->warnings);
  if (args.json) {
    PrintJson(*report);
  } else {
    PrintText(*report);
  }
  return 0;
}

}  // namespace

void AddSyncCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<SyncArgs>();
  CLI::App* sync = app.add_subcommand(
      "sync",
      "Sync databases once, both ways by default: SQLite files and postgres:// URLs in any mix.\n"
      "The first run attaches them (their\n"
      "existing rows become writes); later runs move only what changed.");
  sync->add_option("databases", args->databases,
                   "SQLite database files (the first must exist) or\n"
                   "postgres://USER:PASSWORD@HOST:PORT/DB URLs, or one file and a hub's\n"
                   "lockstep://HOST:PORT")
      ->required()
      ->expected(2, -1);
  sync->add_option("--tables", args->tables,
                   "tables to sync (default: every table with a primary key)")
      ->delimiter(',');
  sync->add_option("--direction", args->direction,
                   "both, push (first to the others) or pull (the others into the first)")
      ->check(CLI::IsMember({"both", "push", "pull"}));
  sync->add_option("--conflict", args->conflict,
                   "conflict policy, kept per table: lww (default), manual, counter,\n"
                   "prefer:NODE, keep_update, delete_wins, FIELD=POLICY; comma-separated");
  sync->add_flag("--dry-run", args->dry_run, "show what would change, write nothing");
  sync->add_flag("--json", args->json, "print the summary as JSON");
  sync->add_option("--retention", args->retention,
                   "keep deleted records this long (default 30d); a database that has not\n"
                   "synced for longer must be reset (lockstep reset)");
  args->hub.AddTo(*sync);
  sync->callback([args, &run] { run = [args] { return RunSync(*args); }; });
}

}  // namespace lockstep::cli
