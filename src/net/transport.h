// Sessions over the network: a TLS 1.3 listener and dialer (plain TCP only between loopback
// addresses, and only when asked for). Asio and OpenSSL stay inside transport.cc.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "net/endpoint.h"
#include "protocol/session.h"

namespace lockstep::net {

struct TlsOptions {
  bool plaintext = false;           // refused unless both ends are loopback
  std::filesystem::path cert_file;  // listener: its certificate (PEM)
  std::filesystem::path key_file;   // listener: its private key (PEM)
  std::string pinned_fingerprint;   // dialer: "SHA256:<hex>" of the listener's certificate
  std::filesystem::path ca_file;    // dialer: or trust certificates signed by these CAs
};

// Makes the handler of one incoming connection's session.
using HandlerFactory = std::function<std::unique_ptr<protocol::SessionHandler>()>;

// Accepts connections and runs one session on each, all on one thread. Thread-safe: Stop may be
// called from any thread.
class Server {
 public:
  struct Options {
    Endpoint listen;
    TlsOptions tls;
    protocol::Session::Options session;
    size_t max_connections = 4096;
    int64_t handshake_timeout_ms = 10'000;
  };

  // Binds the listening socket now, so errors (address in use, plaintext off loopback, missing
  // certificate) surface before Run.
  static Result<std::unique_ptr<Server>> Listen(const Options& options, HandlerFactory factory);
  ~Server();

  // The bound port (useful with port 0).
  uint16_t port() const;
  // Serves until Stop(), SIGINT or SIGTERM; then each session finishes its batch in flight and
  // says goodbye (within 5 s).
  Status Run();
  void Stop();
  // The node's store changed (a session applied a batch, a local write was stamped): every
  // session sends what its peer lacks now rather than at its next tick.
  void NotifyChanged();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct DialOptions {
  Endpoint target;
  TlsOptions tls;
  protocol::Session::Options session;
  int64_t connect_timeout_ms = 10'000;
};

// Connects to `options.target`, introduces itself with `hello` and runs the session until both
// sides are caught up, then says goodbye. kUnavailable when the peer cannot be reached or the
// connection is lost (retry with backoff); the peer's own error otherwise.
Status SyncOnce(const DialOptions& options, protocol::SessionHandler& handler,
                const protocol::Hello& hello);

// Steers a live session from other threads. Thread-safe.
class DialerControl {
 public:
  // The local store changed: send now.
  void NotifyChanged();
  // Finish the batch in flight, say goodbye, return. Sticks: a later RunLive returns at once.
  void Stop();
  bool stopped() const;

 private:
  friend Status RunDial(const DialOptions&, protocol::SessionHandler&, const protocol::Hello&, bool,
                        DialerControl*);
  void Attach(std::function<void()> notify, std::function<void()> stop);
  void Detach();

  mutable std::mutex mu_;
  std::function<void()> notify_;
  std::function<void()> stop_;
  bool stopped_ = false;
};

// Like SyncOnce, but the session stays open, sending local changes as `control` announces them
// and applying the peer's as they come, until the connection ends or `control.Stop()`.
Status RunLive(const DialOptions& options, protocol::SessionHandler& handler,
               const protocol::Hello& hello, DialerControl& control);

// Internal to transport.cc; declared for DialerControl's friendship.
Status RunDial(const DialOptions& options, protocol::SessionHandler& handler,
               const protocol::Hello& hello, bool one_shot, DialerControl* control);

}  // namespace lockstep::net
