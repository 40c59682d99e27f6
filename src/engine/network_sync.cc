#include "engine/network_sync.h"

#include <algorithm>

#include "engine/open_database.h"
#include "engine/reset.h"
#include "security/identity.h"
#include "security/tokens.h"

namespace lockstep::engine {

Result<NetworkSyncReport> SyncWithListener(const std::filesystem::path& path,
                                           const NetworkSyncOptions& options,
                                           const base::Clock& clock) {
  LOCKSTEP_ASSIGN_OR_RETURN(net::Endpoint target, net::ParseUrl(options.url));
  LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<connectors::Source> source,
                            OpenDatabase(path.string(), true, clock));
  NetworkSyncReport report;
  LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::string> warning,
                            UnfinishedResetWarning(source->database(), source->name()));
  if (warning.has_value()) report.warnings.push_back(std::move(*warning));
  // The tables this database already syncs, or every table with a primary key.
  std::vector<std::string> tables = options.tables;
  if (tables.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(tables, source->ListTables());
  }
  std::vector<connectors::TableSchema> schemas;
  std::vector<std::string> syncable;
  for (const std::string& table : tables) {
    auto schema = source->Schema(table);
    if (!schema.has_value()) {
      if (!options.tables.empty()) return schema.error();
      continue;  // found by looking, a table without a primary key is left out
    }
    if (schema->has_value()) schemas.push_back(**schema);
    syncable.push_back(table);
  }
  LOCKSTEP_RETURN_IF_ERROR(source->Attach(schemas, "", connectors::Source::Stamping::kLater));
  net::DialOptions dial;
  dial.target = target;
  dial.tls = options.tls;
  // A session ends Aborted when it must start over at once (this store found it was restored, a
  // table appeared): one more, which cannot end so again for the same reason.
  SessionCounts& counts = report.counts;
  for (int attempt = 0;; ++attempt) {
    DialerHandler handler(*source, options.url, syncable, options.tables.empty());
    LOCKSTEP_ASSIGN_OR_RETURN(protocol::Hello hello,
                              handler.MakeHello(options.token, options.direction));
    Status status = net::SyncOnce(dial, handler, hello);
    if (status.ok()) status = handler.WriteDeferredCursor();
    counts.Add(handler.counts());
    if (status.code() == StatusCode::kAborted && attempt == 0) continue;
    LOCKSTEP_RETURN_IF_ERROR(status);
    break;
  }
  LOCKSTEP_RETURN_IF_ERROR(source->MakeDurable());
  return report;
}

Status Serve(const ServeOptions& options, const base::Clock& clock,
             const std::function<void(uint16_t port, const std::string& fingerprint)>& ready) {
  LOCKSTEP_ASSIGN_OR_RETURN(security::Identity identity,
                            security::LoadOrCreateIdentity(options.data_dir));
  LOCKSTEP_RETURN_IF_ERROR(security::TokenStore::Open(options.data_dir).status());
  LOCKSTEP_ASSIGN_OR_RETURN(
      auto hub, connectors::sqlite::SqliteSource::Open(options.data_dir / "hub.db", true, clock));
  LOCKSTEP_RETURN_IF_ERROR(hub->Attach({}, ""));

  net::Server::Options server_options;
  server_options.listen = options.listen;
  server_options.tls.plaintext = options.plaintext;
  server_options.tls.cert_file = identity.cert_file;
  server_options.tls.key_file = identity.key_file;
  net::Server* running = nullptr;  // set before any session starts
  // Tombstones beyond the retention go at start, then as nodes connect, at most once a minute
  // (or a tenth of the retention), between sessions' transactions: the server runs them all on
  // one thread.
  int64_t collected_at = 0;
  const int64_t collect_every = std::min<int64_t>(60'000, options.retention_ms / 10);
  auto collect = [&]() -> Status {
    const int64_t now = clock.NowMillis();
    if (now - collected_at < collect_every) return Status::Ok();
    collected_at = now;
    return hub->store().CollectTombstones(now - options.retention_ms).status();
  };
  LOCKSTEP_RETURN_IF_ERROR(collect());
  LOCKSTEP_ASSIGN_OR_RETURN(
      std::unique_ptr<net::Server> server,
      net::Server::Listen(server_options, [&]() -> std::unique_ptr<protocol::SessionHandler> {
        // A failure here only delays collection; the session goes on.
        (void)collect();
        auto handler = std::make_unique<HubHandler>(*hub, options.data_dir);
        // What one node sends, the others should have at once, not at their next tick.
        handler->OnChange([&running] { running->NotifyChanged(); });
        return handler;
      }));
  running = server.get();
  ready(server->port(), options.plaintext ? std::string() : identity.fingerprint);
  return server->Run();
}

}  // namespace lockstep::engine
