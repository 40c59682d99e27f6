// `lockstep reset DB PEER|lockstep://HOST:PORT`: rebuilds DB's metadata from a peer when a sync
// refused it as "reset required", keeping DB's unsynced writes and not resurrecting what the peer
// deleted.
#include <iostream>

#include "base/clock.h"
#include "cli/command.h"
#include "cli/hub_options.h"
#include "engine/node_config.h"
#include "engine/reset.h"
#include "net/endpoint.h"
#include "store/postgres_db.h"

namespace lockstep::cli {
namespace {

struct ResetArgs {
  std::string database;
  std::string peer;
  std::string retention = "30d";
  HubOptions hub;  // with a lockstep:// URL
};

Result<engine::ResetReport> ResetReportFor(const ResetArgs& args, int64_t retention_ms) {
  if (!net::IsUrl(args.peer)) {
    return engine::ResetFromPeer(args.database, args.peer, retention_ms, base::SystemClock::Get());
  }
  engine::NetworkSyncOptions options;
  options.url = args.peer;
  LOCKSTEP_RETURN_IF_ERROR(args.hub.ApplyTo(options));
  return engine::ResetFromListener(args.database, options, base::SystemClock::Get());
}

int RunReset(const ResetArgs& args) {
  auto retention = engine::ParseDuration(args.retention);
  if (!retention.has_value()) return Fail(retention.error().WithContext("--retention"));
  Result<engine::ResetReport> report = ResetReportFor(args, *retention);
  // As messages name them: a URL's password is never shown.
  const std::string database = store::RedactPassword(args.database);
  const std::string peer = store::RedactPassword(args.peer);
  if (!report.has_value()) return Fail(report.error().WithContext("resetting " + database));
  if (report->resumed) {
    std::cout << "finished the reset of " << database << " from " << peer << " that was stopped: "
              << "made the " << report->kept_deletes << " unsynced delete"
              << (report->kept_deletes == 1 ? "" : "s") << " it kept (sent to " << peer << ")\n";
    return 0;
  }
  std::cout << "reset " << database << " from " << peer << ": " << report->tables << " table"
            << (report->tables == 1 ? "" : "s") << " rebuilt, kept " << report->kept_writes
            << " unsynced write" << (report->kept_writes == 1 ? "" : "s") << " and "
            << report->kept_deletes << " unsynced delete" << (report->kept_deletes == 1 ? "" : "s")
            << " (sent to " << peer << ")\n";
  return 0;
}

}  // namespace

void AddResetCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<ResetArgs>();
  CLI::App* reset = app.add_subcommand(
      "reset",
      "Rebuild a database's sync metadata from a peer (after \"reset required\"): it takes the\n"
      "peer's rows, keeps its own unsynced writes (sent to the peer as new writes) and does not\n"
      "bring back rows the peer deleted.");
  reset
      ->add_option("database", args->database,
                   "the database to reset: a SQLite file or a postgres:// URL")
      ->required();
  reset
      ->add_option("peer", args->peer,
                   "the peer: a SQLite file, a postgres:// URL, or a hub's lockstep://HOST:PORT")
      ->required();
  args->hub.AddTo(*reset);
  reset->add_option("--retention", args->retention, "as for sync (default 30d)");
  reset->callback([args, &run] { run = [args] { return RunReset(*args); }; });
}

}  // namespace lockstep::cli
