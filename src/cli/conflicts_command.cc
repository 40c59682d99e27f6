// `lockstep conflicts list DB` and `lockstep conflicts resolve DB TABLE:KEY --take ...`.
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "cli/command.h"
#include "core/key.h"
#include "engine/open_database.h"
#include "engine/resolve.h"
#include "store/metadata_schema.h"

namespace lockstep::cli {
namespace {

struct ConflictsArgs {
  std::string database;
  std::string key;
  std::string take;
  std::string field;
  bool json = false;
  bool pending_only = false;
};

Result<std::unique_ptr<connectors::Source>> OpenAttached(const std::string& path) {
  LOCKSTEP_ASSIGN_OR_RETURN(auto source,
                            engine::OpenDatabase(path, false, base::SystemClock::Get()));
  LOCKSTEP_ASSIGN_OR_RETURN(bool attached, store::HasMetadata(source->database()));
  if (!attached) return FailedPrecondition(path + ": not synced by lockstep (no metadata)");
  LOCKSTEP_RETURN_IF_ERROR(source->OpenStore());
  return source;
}

std::string FormatTime(int64_t millis) {
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

int RunList(const ConflictsArgs& args) {
  auto source = OpenAttached(args.database);
  if (!source.has_value()) return Fail(source.error());
  auto conflicts = (*source)->store().Conflicts();
  if (!conflicts.has_value()) return Fail(conflicts.error());
  nlohmann::json out = nlohmann::json::array();
  size_t shown = 0;
  for (const store::LoggedConflict& c : *conflicts) {
    if (args.pending_only && !c.pending) continue;
    ++shown;
    const std::string key = c.collection + ":" + core::KeyToString(c.key);
    const std::string time = FormatTime(static_cast<int64_t>(c.loser.hlc.millis()));
    if (args.json) {
      out.push_back({{"key", key},
                     {"field", c.field},
                     {"winner", c.winner.value.ToString()},
                     {"winner_node", c.winner.dot.node.ToString()},
                     {"winner_time", FormatTime(static_cast<int64_t>(c.winner.hlc.millis()))},
                     {"loser", c.loser.value.ToString()},
                     {"loser_node", c.loser.dot.node.ToString()},
                     {"loser_time", time},
                     {"pending", c.pending}});
      continue;
    }
    std::cout << key << " " << c.field << ": kept " << c.winner.value.ToString() << " (node "
              << c.winner.dot.node.ToString().substr(0, 8) << "), "
              << (c.pending ? "pending " : "lost ") << c.loser.value.ToString() << " (node "
              << c.loser.dot.node.ToString().substr(0, 8) << ", written " << time << ")\n";
  }
  if (args.json) {
    std::cout << out.dump(2) << "\n";
  } else if (shown == 0) {
    std::cout << "no conflicts\n";
  }
  return 0;
}

int RunResolve(const ConflictsArgs& args) {
  auto source = OpenAttached(args.database);
  if (!source.has_value()) return Fail(source.error());
  engine::Resolution resolution = engine::ParseTake(args.take);
  if (!args.field.empty()) resolution.field = args.field;
  Status status = engine::ResolveConflict(**source, args.key, resolution);
  if (!status.ok()) return Fail(status);
  std::cout << "resolved " << args.key << "\n";
  return 0;
}

}  // namespace

void AddConflictsCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<ConflictsArgs>();
  CLI::App* conflicts = app.add_subcommand("conflicts", "List and resolve conflicts");
  conflicts->require_subcommand(1);
  CLI::App* list = conflicts->add_subcommand(
      "list", "Show every resolved conflict with the losing value, its node and time");
  list->add_option("database", args->database, "SQLite database file or postgres:// URL")
      ->required();
  list->add_flag("--json", args->json, "print as JSON");
  list->add_flag("--pending", args->pending_only, "only conflicts waiting for a person");
  list->callback([args, &run] { run = [args] { return RunList(*args); }; });

  CLI::App* resolve = conflicts->add_subcommand(
      "resolve", "Resolve a conflict kept by the manual policy; the choice replicates");
  resolve->add_option("database", args->database, "SQLite database file or postgres:// URL")
      ->required();
  resolve->add_option("key", args->key, "TABLE:KEY as 'conflicts list' prints it")->required();
  resolve
      ->add_option("--take", args->take,
                   "local, remote, or a value (42, 1.5, 'text', x'00ff', NULL)")
      ->required();
  resolve->add_option("--field", args->field, "resolve only this field");
  resolve->callback([args, &run] { run = [args] { return RunResolve(*args); }; });
}

}  // namespace lockstep::cli
