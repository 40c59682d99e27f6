#include "engine/daemon.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <random>
#include <thread>

#include "connectors/postgres/pg_wake.h"
#include "connectors/postgres/postgres_source.h"
#include "connectors/sqlite/sqlite_source.h"
#include "engine/network_sync.h"
#include "engine/reset.h"
#include "security/identity.h"

namespace lockstep::engine {
namespace {

constexpr int64_t kFirstBackoffMs = 500;
constexpr int64_t kMaxBackoffMs = 30'000;
// A live peer's stamping rounds under a stream of users' commits: at most one per this interval
// (Source::PaceRounds), so that each gathers what committed meanwhile.
constexpr std::chrono::milliseconds kGatherRounds{20};

void Log(const std::string& line) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::cerr << "lockstep: " << line << "\n";
}

// Opens the node's source and attaches its tables with their policies.
Result<std::unique_ptr<connectors::Source>> OpenSource(const NodeConfig& config,
                                                       const base::Clock& clock) {
  std::unique_ptr<connectors::Source> source;
  if (!config.postgres.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(source,
                              connectors::postgres::PostgresSource::Open(config.postgres, clock));
  } else {
    LOCKSTEP_ASSIGN_OR_RETURN(source,
                              connectors::sqlite::SqliteSource::Open(config.sqlite, true, clock));
  }
  // Stamping waits for the first handshake (see Source::Stamping).
  constexpr auto kLater = connectors::Source::Stamping::kLater;
  LOCKSTEP_RETURN_IF_ERROR(source->Attach({}, "", kLater));  // the store, even with no table yet
  std::vector<std::string> tables = config.tables;
  if (tables.empty()) {
    LOCKSTEP_ASSIGN_OR_RETURN(tables, source->ListTables());
  }
  for (const std::string& table : tables) {
    auto schema = source->Schema(table);
    if (!schema.has_value()) {
      if (!config.tables.empty()) return schema.error();
      continue;  // found by looking: a table without a primary key is left out
    }
    if (!schema->has_value()) continue;  // it may come from a peer
    auto policy = config.policies.find(table);
    LOCKSTEP_RETURN_IF_ERROR(source->Attach(
        {&**schema, 1}, policy == config.policies.end() ? std::string() : policy->second, kLater));
  }
  return source;
}

// One peer, for as long as the node runs.
void PeerLoop(const NodeConfig& config, const PeerConfig& peer, const base::Clock& clock,
              StopSignal& stop, net::DialerControl& control) {
  std::minstd_rand jitter(std::random_device{}());
  int64_t backoff = kFirstBackoffMs;
  while (!stop.stopped()) {
    Status status;
    SessionCounts counts;
    bool welcomed = false;
    auto source = OpenSource(config, clock);
    if (!source.has_value()) {
      status = source.error();
    } else {
      std::vector<std::string> collections = peer.collections;
      if (collections.empty()) {
        // The source's tables (those named in the node file, if any) that can be synced: one
        // without a primary key would only be refused by the peer at every reconnect.
        auto tables = config.tables.empty() ? (*source)->ListTables()
                                            : Result<std::vector<std::string>>(config.tables);
        for (const std::string& table : tables.has_value() ? *tables : collections) {
          if ((*source)->Schema(table).has_value()) collections.push_back(table);
        }
      }
      if (peer.live) (*source)->PaceRounds(kGatherRounds);
      DialerHandler handler(**source, peer.url, collections, peer.collections.empty());
      auto hello = handler.MakeHello(peer.token, peer.direction);
      net::DialOptions dial;
      dial.tls = peer.tls;
      if (auto target = net::ParseUrl(peer.url); target.has_value()) dial.target = *target;
      status = !hello.has_value() ? hello.error()
               : peer.live        ? net::RunLive(dial, handler, *hello, control)
                                  : net::SyncOnce(dial, handler, *hello);
      counts = handler.counts();
      welcomed = !handler.collections().empty();
      // Best effort: a cursor not written costs the next session a read of echoes only.
      if (welcomed) (void)handler.WriteDeferredCursor();
    }
    if (stop.stopped()) return;
    if (status.ok()) {
      Log(peer.url + ": synced, sent " + std::to_string(counts.sent) + ", received " +
          std::to_string(counts.received));
      backoff = kFirstBackoffMs;
      if (!peer.live && stop.SleepFor(peer.every_ms)) return;
      continue;
    }
    // A live session ends only in failure, so a lost connection after a working session starts
    // the backoff over: otherwise every drop in a node's life would lengthen its next wait.
    if (welcomed && status.code() == StatusCode::kUnavailable) backoff = kFirstBackoffMs;
    // Aborted: the session ended to take in a new collection; come back at once.
    if (status.code() == StatusCode::kAborted) {
      Log(peer.url + ": " + status.message());
      backoff = kFirstBackoffMs;
      continue;
    }
    // Exponential backoff with full jitter, so that many nodes cut off together do not all
    // come back at the same instant.
    const int64_t wait = static_cast<int64_t>(jitter() % static_cast<uint64_t>(backoff)) + 1;
    Log(peer.url + ": " + status.ToString() + "; retrying in " + std::to_string(wait) + " ms");
    backoff = std::min(backoff * 2, kMaxBackoffMs);
    if (stop.SleepFor(wait)) return;
  }
}

// Wakes the live sessions when the database or its WAL changes: a local commit goes out within
// milliseconds instead of at the next tick.
void WatchDatabase(const std::filesystem::path& db, StopSignal& stop,
                   std::vector<std::unique_ptr<net::DialerControl>>& controls,
                   net::Server* server) {
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return;
  const std::filesystem::path dir = db.has_parent_path() ? db.parent_path() : ".";
  const std::string name = db.filename().string();
  if (inotify_add_watch(fd, dir.c_str(), IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE) < 0) {
    close(fd);
    return;
  }
  alignas(inotify_event) char buffer[8192];
  while (!stop.stopped()) {
    pollfd ready{fd, POLLIN, 0};
    if (poll(&ready, 1, 200) <= 0) continue;
    bool ours = false;
    for (;;) {
      const ssize_t n = read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      for (char* p = buffer; p < buffer + n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(p);
        const std::string changed = event->len > 0 ? event->name : "";
        ours = ours || changed == name || changed == name + "-wal";
        p += sizeof(inotify_event) + event->len;
      }
    }
    if (ours) {
      for (auto& control : controls) control->NotifyChanged();
      if (server != nullptr) server->NotifyChanged();  // peers that dialed this node
    }
  }
  close(fd);
}

// Wakes the live sessions when the PostgreSQL source has something for them: captured commits
// (announced by NOTIFY while the watcher sleeps, looked for every 10 ms while there is work, see
// connectors/postgres/pg_wake.h) or a log moved by another engine on the same database (looked
// for every `poll_ms`). Reconnects when the connection drops.
void WatchPostgres(const std::string& url, int64_t poll_ms, StopSignal& stop,
                   std::vector<std::unique_ptr<net::DialerControl>>& controls,
                   net::Server* server) {
  connectors::postgres::ChangeWatcher::Options options;
  options.idle_poll = std::chrono::milliseconds(poll_ms);
  while (!stop.stopped()) {
    auto watcher = connectors::postgres::ChangeWatcher::Open(url, options);
    Status status = watcher.has_value() ? Status::Ok() : watcher.error();
    if (status.ok() && !(*watcher)->slot().has_value()) {
      Log("watching " + store::RedactPassword(url) + ": every wake-up slot is taken; polling");
    }
    while (status.ok() && !stop.stopped()) {
      // Bounded, so that a stop is seen within 200 ms.
      auto wake = (*watcher)->Next(std::chrono::milliseconds(200));
      if (!wake.has_value()) {
        status = wake.error();
        break;
      }
      if (!*wake) continue;
      for (auto& control : controls) control->NotifyChanged();
      if (server != nullptr) server->NotifyChanged();
    }
    if (!stop.stopped()) Log("watching " + store::RedactPassword(url) + ": " + status.ToString());
    if (stop.SleepFor(1'000)) return;
  }
}

}  // namespace

void StopSignal::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

bool StopSignal::stopped() const {
  std::lock_guard lock(mu_);
  return stopped_;
}

bool StopSignal::SleepFor(int64_t millis) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(millis), [this] { return stopped_; });
}

Status RunNode(const NodeConfig& config, const base::Clock& clock, StopSignal& stop) {
  // Attach once up front, so that a bad source is an error now rather than a retry loop; and
  // collect the tombstones beyond the retention while no session runs.
  {
    LOCKSTEP_ASSIGN_OR_RETURN(auto source, OpenSource(config, clock));
    LOCKSTEP_ASSIGN_OR_RETURN(size_t collected, source->store().CollectTombstones(
                                                    clock.NowMillis() - config.retention_ms));
    if (collected > 0) Log("collected " + std::to_string(collected) + " tombstones");
    LOCKSTEP_ASSIGN_OR_RETURN(std::optional<std::string> warning,
                              UnfinishedResetWarning(source->database(), source->name()));
    if (warning.has_value()) Log("warning: " + *warning);
  }

  std::unique_ptr<net::Server> server;
  std::unique_ptr<connectors::Source> served;
  // Outlives the sessions: their change callbacks reach the server through it.
  net::Server* running = nullptr;
  if (config.listen.has_value()) {
    LOCKSTEP_ASSIGN_OR_RETURN(security::Identity identity,
                              security::LoadOrCreateIdentity(config.data_dir));
    LOCKSTEP_ASSIGN_OR_RETURN(served, OpenSource(config, clock));
    net::Server::Options options;
    options.listen = *config.listen;
    options.tls.plaintext = config.listen_plaintext;
    options.tls.cert_file = identity.cert_file;
    options.tls.key_file = identity.key_file;
    LOCKSTEP_ASSIGN_OR_RETURN(
        server, net::Server::Listen(options, [&]() -> std::unique_ptr<protocol::SessionHandler> {
          auto handler = std::make_unique<HubHandler>(*served, config.data_dir);
          handler->OnChange([&running] { running->NotifyChanged(); });
          return handler;
        }));
    running = server.get();
    Log("listening on " + net::Endpoint{config.listen->host, server->port()}.ToString() +
        (config.listen_plaintext ? "" : ", certificate " + identity.fingerprint));
  }

  std::vector<std::unique_ptr<net::DialerControl>> controls;
  for (size_t i = 0; i < config.peers.size(); ++i) {
    controls.push_back(std::make_unique<net::DialerControl>());
  }
  std::vector<std::jthread> threads;
  for (size_t i = 0; i < config.peers.size(); ++i) {
    threads.emplace_back([&, i] { PeerLoop(config, config.peers[i], clock, stop, *controls[i]); });
  }
  if (server) threads.emplace_back([&] { (void)server->Run(); });
  if (config.postgres.empty()) {
    threads.emplace_back([&] { WatchDatabase(config.sqlite, stop, controls, server.get()); });
  } else {
    threads.emplace_back(
        [&] { WatchPostgres(config.postgres, config.poll_ms, stop, controls, server.get()); });
  }

  // Wait for the stop, then let every session finish its batch and say goodbye.
  while (!stop.SleepFor(1'000)) {
  }
  for (auto& control : controls) control->Stop();
  if (server) server->Stop();
  threads.clear();  // joins
  return Status::Ok();
}

}  // namespace lockstep::engine
