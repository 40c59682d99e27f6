// `lockstep run -c node.toml`: the node daemon. SIGTERM or SIGINT finishes the batch in flight
// and exits 0.
#include <pthread.h>

#include <csignal>
#include <thread>

#include "base/clock.h"
#include "cli/command.h"
#include "engine/daemon.h"

namespace lockstep::cli {
namespace {

int RunNode(const std::string& config_path) {
  auto config = engine::LoadNodeConfig(config_path);
  if (!config.has_value()) return Fail(config.error());
  // Signals are taken by one thread with sigwait: every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  engine::StopSignal stop;
  std::jthread waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    stop.Stop();
  });
  Status status = engine::RunNode(*config, base::SystemClock::Get(), stop);
  if (!status.ok()) {
    stop.Stop();
    pthread_kill(waiter.native_handle(), SIGTERM);  // release the sigwait
    return Fail(status);
  }
  return 0;
}

}  // namespace

void AddRunCommand(CLI::App& app, Runner& run) {
  auto path = std::make_shared<std::string>();
  CLI::App* command = app.add_subcommand(
      "run", "Run a node: keep its database in sync with its peers, live or on a schedule");
  command->add_option("-c,--config", *path, "the node file (TOML)")->required();
  command->callback([path, &run] { run = [path] { return RunNode(*path); }; });
}

}  // namespace lockstep::cli
