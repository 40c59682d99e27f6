// `lockstep reset DB PEER.db`: rebuilds DB's metadata from a peer when a sync refused it as "reset
// required", keeping DB's unsynced writes and not resurrecting what the peer deleted.
#include <iostream>

#include "base/clock.h"
#include "cli/command.h"
#include "engine/node_config.h"
#include "engine/reset.h"
#include "net/endpoint.h"

namespace lockstep::cli {
namespace {

struct ResetArgs {
  std::string database;
  std::string peer;
  std::string retention = "30d";
};

int RunReset(const ResetArgs& args) {
  if (net::IsUrl(args.peer)) {
    return Fail(
        InvalidArgument("reset from a hub (lockstep://) is not supported yet; reset from "
                        "a copy of a peer's database"));
  }
  auto retention = engine::ParseDuration(args.retention);
  if (!retention.has_value()) return Fail(retention.error().WithContext("--retention"));
  auto report =
      engine::ResetFromPeer(args.database, args.peer, *retention, base::SystemClock::Get());
  if (!report.has_value()) return Fail(report.error().WithContext("resetting " + args.database));
  std::cout << "reset " << args.database << " from " << args.peer << ": " << report->tables
            << " table" << (report->tables == 1 ? "" : "s") << " rebuilt, kept "
            << report->kept_writes << " unsynced write" << (report->kept_writes == 1 ? "" : "s")
            << " and " << report->kept_deletes << " unsynced delete"
            << (report->kept_deletes == 1 ? "" : "s") << " (sent to " << args.peer << ")\n";
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
  reset->add_option("database", args->database, "the SQLite database to reset")->required();
  reset->add_option("peer", args->peer, "the peer's SQLite database")->required();
  reset->add_option("--retention", args->retention, "as for sync (default 30d)");
  reset->callback([args, &run] { run = [args] { return RunReset(*args); }; });
}

}  // namespace lockstep::cli
