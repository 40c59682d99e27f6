// `lockstep serve --listen HOST:PORT --data DIR`: the hub.
#include <iostream>

#include "base/clock.h"
#include "cli/command.h"
#include "engine/network_sync.h"
#include "engine/node_config.h"

namespace lockstep::cli {
namespace {

struct ServeArgs {
  std::string listen = "127.0.0.1:" + std::to_string(net::kDefaultPort);
  std::string data;
  bool plaintext = false;
  std::string retention = "30d";
};

int RunServe(const ServeArgs& args) {
  auto listen = net::ParseEndpoint(args.listen);
  if (!listen.has_value()) return Fail(listen.error().WithContext("--listen"));
  auto retention = engine::ParseDuration(args.retention);
  if (!retention.has_value()) return Fail(retention.error().WithContext("--retention"));
  engine::ServeOptions options{*listen, args.data, args.plaintext, *retention};
  Status status = engine::Serve(
      options, base::SystemClock::Get(), [&](uint16_t port, const std::string& fingerprint) {
        std::cout << "lockstep serve: listening on " << net::Endpoint{listen->host, port}.ToString()
                  << (fingerprint.empty() ? " (plain TCP, loopback only)" : "") << "\n";
        if (!fingerprint.empty()) {
          std::cout << "certificate fingerprint: " << fingerprint << "\n"
                    << "clients pin it with: --trust " << fingerprint << "\n";
        }
        std::cout.flush();
      });
  return status.ok() ? 0 : Fail(status);
}

}  // namespace

void AddServeCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* serve = app.add_subcommand(
      "serve", "Run a hub: nodes sync with it over TLS, and through it with each other");
  serve->add_option("--listen", args->listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  serve->add_option("--data", args->data, "the hub's directory: store, identity, tokens")
      ->required();
  serve->add_flag("--plaintext", args->plaintext,
                  "plain TCP instead of TLS; only on a loopback address");
  serve->add_option("--retention", args->retention,
                    "keep deleted records this long (default 30d); a node away longer must be\n"
                    "reset (lockstep reset DB URL)");
  serve->callback([args, &run] { run = [args] { return RunServe(*args); }; });
}

}  // namespace lockstep::cli
