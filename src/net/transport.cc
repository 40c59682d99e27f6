#include "net/transport.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <chrono>
#include <csignal>
#include <iostream>
#include <optional>
#include <vector>

#include "security/identity.h"

namespace lockstep::net {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kTick = std::chrono::milliseconds(200);  // heartbeats, timeouts, window refills
constexpr int kTicksPerLook = 25;  // read the log at least every 5 s without being woken
constexpr size_t kReadChunk = 64 << 10;
constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr int64_t kAckGraceMs = 2'000;  // a stopping session waits this long for its last ack

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Wakes sessions when their node's store has changed: a cancel of a timer that never expires
// ends every pending wait on it, and the generation catches a change made while a session was
// busy rather than waiting. Used on the io thread only.
struct ChangeSignal {
  explicit ChangeSignal(const asio::any_io_executor& executor)
      : timer(executor, asio::steady_timer::time_point::max()) {}
  void Notify() {
    ++generation;
    timer.cancel();
  }
  asio::steady_timer timer;
  uint64_t generation = 0;
  bool stop = false;  // end sessions with a goodbye
};

// The session options a connection runs with: one batch read per pump, written before the next
// is read, so that a batch never waits on the wire for the reads of the rest of the window (a
// source that stamps as it reads took 40 ms a batch, so the first of four waited 120 ms).
protocol::Session::Options OneBatchPerPump(protocol::Session::Options options) {
  options.batches_per_pump = 1;
  return options;
}

// Reads into the session until the connection ends. Never raced against a timer: a read that
// loses such a race may already have taken bytes off the stream, and they would be lost.
template <typename Stream>
awaitable<void> ReadLoop(Stream& stream, protocol::Session& session, ChangeSignal& input,
                         Status& ended) {
  std::vector<char> buffer(kReadChunk);
  for (;;) {
    auto [error, read] = co_await stream.async_read_some(asio::buffer(buffer), kAsTuple);
    if (error) {
      ended = Unavailable(error == asio::error::eof ? "the peer closed the connection"
                                                    : "connection lost: " + error.message());
      input.Notify();
      co_return;
    }
    // Failures close the session and queue an Error for the peer: the write loop sends it.
    (void)session.Receive(std::string_view(buffer.data(), read), NowMs());
    input.Notify();
    if (session.closed()) co_return;
  }
}

// Sends what the session has to say, pumping it on a tick, on new input and on local changes.
template <typename Stream>
awaitable<Status> WriteLoop(Stream& stream, protocol::Session& session, bool one_shot,
                            ChangeSignal& input, ChangeSignal& changes, const Status& read_ended) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  uint64_t seen_input = input.generation;
  uint64_t seen_changes = changes.generation;
  int64_t stop_seen_ms = 0;  // when a stop was first noticed
  int quiet_ticks = 0;
  Status result;
  for (;;) {
    const std::string out = session.TakeOutput();
    if (!out.empty()) {
      auto [error, written] = co_await asio::async_write(stream, asio::buffer(out), kAsTuple);
      if (error && !session.closed()) {
        result = Unavailable("connection lost while sending: " + error.message());
        break;
      }
    }
    if (session.closed()) {
      result = session.close_status();
      break;
    }
    if (!read_ended.ok()) {
      result = read_ended;
      break;
    }
    if (changes.stop && stop_seen_ms == 0) stop_seen_ms = NowMs();
    // Stopping: goodbye once the batch in flight is acknowledged, or after a while without.
    const bool stop_now = changes.stop && (session.idle() || NowMs() - stop_seen_ms >= kAckGraceMs);
    if ((one_shot && session.synced()) || stop_now) {
      session.Close(Status::Ok());
      continue;
    }
    if (session.more_to_send()) {
      // The batch just written may have more behind it: read the next one now.
      (void)session.Pump(NowMs());
      continue;
    }
    if (input.generation == seen_input && changes.generation == seen_changes) {
      tick.expires_after(kTick);
      co_await (tick.async_wait(kAsTuple) || input.timer.async_wait(kAsTuple) ||
                changes.timer.async_wait(kAsTuple));
    }
    // A bare tick reads no log (idle sessions must cost nothing), except now and then, for writes
    // nobody announced (made on a hub's database directly).
    const bool woken = input.generation != seen_input || changes.generation != seen_changes;
    seen_input = input.generation;
    seen_changes = changes.generation;
    if (woken || ++quiet_ticks >= kTicksPerLook) {
      quiet_ticks = 0;
      (void)session.Pump(NowMs());
    } else {
      (void)session.Tick(NowMs());
    }
  }
  boost::system::error_code ignored;
  stream.lowest_layer().shutdown(tcp::socket::shutdown_both, ignored);
  stream.lowest_layer().close(ignored);  // ends the read loop
  co_return result;
}

// Drives one session over one connected stream until it closes; a one-shot dialer also ends it
// once both sides are caught up.
template <typename Stream>
awaitable<Status> Drive(Stream& stream, protocol::Session& session, bool one_shot,
                        ChangeSignal& changes) {
  ChangeSignal input(co_await asio::this_coro::executor);
  Status read_ended;
  co_return co_await (ReadLoop(stream, session, input, read_ended) &&
                      WriteLoop(stream, session, one_shot, input, changes, read_ended));
}

Status TlsSetupError(std::string_view what) { return InvalidArgument("TLS: " + std::string(what)); }

// TLS 1.3 only: every peer is a Lockstep of this generation.
Status RequireTls13(asio::ssl::context& context) {
  if (SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_3_VERSION) != 1) {
    return TlsSetupError("cannot require TLS 1.3");
  }
  return Status::Ok();
}

}  // namespace

struct Server::Impl {
  Options options;
  HandlerFactory factory;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::optional<asio::ssl::context> tls;
  asio::signal_set signals{io, SIGINT, SIGTERM};
  ChangeSignal changes{io.get_executor()};
  size_t connections = 0;

  awaitable<void> AcceptLoop();
  awaitable<void> Serve(tcp::socket socket);
};

awaitable<void> Server::Impl::AcceptLoop() {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kAsTuple);
    if (error == asio::error::operation_aborted) co_return;
    if (error) continue;  // a connection that failed before we saw it
    boost::system::error_code ignored;
    const auto remote = socket.remote_endpoint(ignored);
    if (connections >= options.max_connections ||
        (options.tls.plaintext && !remote.address().is_loopback())) {
      socket.close(ignored);
      continue;
    }
    // Frames are small and answered at once: Nagle's algorithm would hold each one back until
    // the peer's delayed ACK, about 20 ms a hop.
    socket.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(io, Serve(std::move(socket)), asio::detached);
  }
}

awaitable<void> Server::Impl::Serve(tcp::socket socket) {
  ++connections;
  struct Leave {
    Impl& server;
    ~Leave() {
      // The last session of a stopping server ends the server.
      if (--server.connections == 0 && server.changes.stop) server.io.stop();
    }
  } leave{*this};
  boost::system::error_code ignored;
  const std::string peer = socket.remote_endpoint(ignored).address().to_string();
  std::unique_ptr<protocol::SessionHandler> handler = factory();
  protocol::Session session(protocol::Session::Role::kListener, *handler,
                            OneBatchPerPump(options.session), NowMs());
  Status ended;
  if (options.tls.plaintext) {
    ended = co_await Drive(socket, session, /*one_shot=*/false, changes);
  } else {
    asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls);
    asio::steady_timer timer(io, std::chrono::milliseconds(options.handshake_timeout_ms));
    auto shaken = co_await (stream.async_handshake(asio::ssl::stream_base::server, kAsTuple) ||
                            timer.async_wait(kAsTuple));
    if (shaken.index() == 1) {
      ended = Unavailable("TLS handshake timed out");
    } else if (auto [error] = std::get<0>(shaken); error) {
      ended = Unauthenticated("TLS handshake failed: " + error.message());
    } else {
      ended = co_await Drive(stream, session, /*one_shot=*/false, changes);
    }
  }
  // One line per session; messages never contain secrets (tokens are not echoed anywhere).
  std::cerr << "lockstep: session from " << peer
            << " ended: " << (ended.ok() ? std::string("ok") : ended.ToString()) << "\n";
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Listen(const Options& options, HandlerFactory factory) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->factory = std::move(factory);
  if (options.tls.plaintext && !IsLoopbackHost(options.listen.host)) {
    return InvalidArgument("--plaintext listens only on a loopback address, not " +
                           options.listen.host);
  }
  if (!options.tls.plaintext) {
    impl->tls.emplace(asio::ssl::context::tls_server);
    LOCKSTEP_RETURN_IF_ERROR(RequireTls13(*impl->tls));
    boost::system::error_code error;
    impl->tls->use_certificate_chain_file(options.tls.cert_file.string(), error);
    if (!error)
      impl->tls->use_private_key_file(options.tls.key_file.string(), asio::ssl::context::pem,
                                      error);
    if (error) return TlsSetupError("loading the node's certificate: " + error.message());
  }
  boost::system::error_code error;
  tcp::resolver resolver(impl->io);
  auto resolved = resolver.resolve(options.listen.host, std::to_string(options.listen.port),
                                   tcp::resolver::passive, error);
  if (error || resolved.empty()) {
    return InvalidArgument("cannot resolve " + options.listen.ToString() + ": " + error.message());
  }
  const tcp::endpoint endpoint = *resolved.begin();
  impl->acceptor.open(endpoint.protocol(), error);
  if (!error) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) impl->acceptor.bind(endpoint, error);
  if (!error) impl->acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return Unavailable("cannot listen on " + options.listen.ToString() + ": " + error.message());
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

Status Server::Run() {
  impl_->signals.async_wait([this](const boost::system::error_code&, int) { Stop(); });
  asio::co_spawn(impl_->io, impl_->AcceptLoop(), asio::detached);
  impl_->io.run();
  return Status::Ok();
}

void Server::NotifyChanged() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->changes.Notify(); });
}

void Server::Stop() {
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    // Sessions finish the batch in flight and say goodbye; the last one out stops the loop, and
    // a session that cannot finish in time is dropped.
    impl->changes.stop = true;
    impl->changes.Notify();
    if (impl->connections == 0) {
      impl->io.stop();
      return;
    }
    auto deadline = std::make_shared<asio::steady_timer>(impl->io, kStopGrace);
    deadline->async_wait([impl, deadline](const boost::system::error_code&) { impl->io.stop(); });
  });
}

namespace {

awaitable<Status> Dial(const DialOptions& options, protocol::SessionHandler& handler,
                       const protocol::Hello& hello, bool one_shot, ChangeSignal& changes) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [resolve_error, endpoints] = co_await resolver.async_resolve(
      options.target.host, std::to_string(options.target.port), kAsTuple);
  if (resolve_error) {
    co_return Unavailable("cannot resolve " + options.target.host + ": " + resolve_error.message());
  }
  tcp::socket socket(executor);
  asio::steady_timer timer(executor, std::chrono::milliseconds(options.connect_timeout_ms));
  auto connected =
      co_await (asio::async_connect(socket, endpoints, kAsTuple) || timer.async_wait(kAsTuple));
  if (connected.index() == 1)
    co_return Unavailable("connecting to " + options.target.ToString() + " timed out");
  if (auto error = std::get<0>(std::get<0>(connected)); error) {
    co_return Unavailable("cannot connect to " + options.target.ToString() + ": " +
                          error.message());
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);  // see AcceptLoop
  protocol::Session session(protocol::Session::Role::kDialer, handler,
                            OneBatchPerPump(options.session), NowMs());
  session.Start(hello);
  if (options.tls.plaintext) {
    if (!socket.remote_endpoint(ignored).address().is_loopback()) {
      co_return InvalidArgument("--plaintext connects only to loopback addresses");
    }
    Status ended = co_await Drive(socket, session, one_shot, changes);
    if (ended.code() == StatusCode::kUnavailable &&
        session.state() == protocol::Session::State::kAwaitWelcome) {
      // A TLS listener drops a plain Hello without a word, and so does a cut connection: the
      // code stays "retry", the message says what is likely wrong if retrying does not help.
      co_return Unavailable(
          "the listener closed the connection without answering (if it uses TLS, drop "
          "--plaintext and pass --trust)");
    }
    co_return ended;
  }

  asio::ssl::context context(asio::ssl::context::tls_client);
  if (Status tls13 = RequireTls13(context); !tls13.ok()) co_return tls13;
  bool pin_mismatch = false;
  if (!options.tls.pinned_fingerprint.empty()) {
    context.set_verify_mode(asio::ssl::verify_peer);
  } else {
    boost::system::error_code error;
    context.load_verify_file(options.tls.ca_file.string(), error);
    if (error) co_return TlsSetupError("loading CA file: " + error.message());
    context.set_verify_mode(asio::ssl::verify_peer);
  }
  asio::ssl::stream<tcp::socket> stream(std::move(socket), context);
  SSL_set_tlsext_host_name(stream.native_handle(), options.target.host.c_str());
  if (!options.tls.pinned_fingerprint.empty()) {
    // A pinned certificate is trusted for what it is, whoever signed it (usually itself).
    stream.set_verify_callback([&](bool, asio::ssl::verify_context& verify) {
      X509_STORE_CTX* store = verify.native_handle();
      if (X509_STORE_CTX_get_error_depth(store) > 0) return true;
      X509* cert = X509_STORE_CTX_get_current_cert(store);
      unsigned char* der = nullptr;
      const int length = i2d_X509(cert, &der);
      if (length <= 0) return false;
      const std::string fingerprint =
          security::Fingerprint(std::string_view(reinterpret_cast<char*>(der), length));
      OPENSSL_free(der);
      pin_mismatch = fingerprint != options.tls.pinned_fingerprint;
      return !pin_mismatch;
    });
  } else {
    stream.set_verify_callback(asio::ssl::host_name_verification(options.target.host));
  }
  timer.expires_after(std::chrono::milliseconds(options.connect_timeout_ms));
  auto shaken = co_await (stream.async_handshake(asio::ssl::stream_base::client, kAsTuple) ||
                          timer.async_wait(kAsTuple));
  if (shaken.index() == 1) co_return Unavailable("TLS handshake timed out");
  if (auto [error] = std::get<0>(shaken); error) {
    if (pin_mismatch) {
      co_return Unauthenticated(
          "the listener's certificate does not match the --trust fingerprint");
    }
    co_return Unavailable("TLS handshake with " + options.target.ToString() +
                          " failed: " + error.message());
  }
  co_return co_await Drive(stream, session, one_shot, changes);
}

Status CheckDialOptions(const DialOptions& options) {
  if (options.tls.plaintext && !IsLoopbackHost(options.target.host)) {
    return InvalidArgument("--plaintext connects only to loopback addresses, not " +
                           options.target.host);
  }
  if (!options.tls.plaintext && options.tls.pinned_fingerprint.empty() &&
      options.tls.ca_file.empty()) {
    return InvalidArgument(
        "say how to trust the listener: --trust SHA256:... (its fingerprint) or --ca FILE");
  }
  return Status::Ok();
}

}  // namespace

Status RunDial(const DialOptions& options, protocol::SessionHandler& handler,
               const protocol::Hello& hello, bool one_shot, DialerControl* control) {
  LOCKSTEP_RETURN_IF_ERROR(CheckDialOptions(options));
  asio::io_context io{1};
  ChangeSignal changes(io.get_executor());
  if (control != nullptr) {
    control->Attach([&io, &changes] { asio::post(io, [&changes] { changes.Notify(); }); },
                    [&io, &changes] {
                      asio::post(io, [&changes] {
                        changes.stop = true;
                        changes.Notify();
                      });
                    });
  }
  Status result = Internal("session did not run");
  asio::co_spawn(io, Dial(options, handler, hello, one_shot, changes),
                 [&](std::exception_ptr failure, Status status) {
                   result = failure ? Internal("session failed unexpectedly") : std::move(status);
                 });
  io.run();
  if (control != nullptr) control->Detach();
  return result;
}

Status SyncOnce(const DialOptions& options, protocol::SessionHandler& handler,
                const protocol::Hello& hello) {
  return RunDial(options, handler, hello, /*one_shot=*/true, nullptr);
}

Status RunLive(const DialOptions& options, protocol::SessionHandler& handler,
               const protocol::Hello& hello, DialerControl& control) {
  return RunDial(options, handler, hello, /*one_shot=*/false, &control);
}

void DialerControl::Attach(std::function<void()> notify, std::function<void()> stop) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
  stop_ = std::move(stop);
  if (stopped_) stop_();
}

void DialerControl::Detach() {
  std::lock_guard lock(mu_);
  notify_ = nullptr;
  stop_ = nullptr;
}

void DialerControl::NotifyChanged() {
  std::lock_guard lock(mu_);
  if (notify_) notify_();
}

void DialerControl::Stop() {
  std::lock_guard lock(mu_);
  stopped_ = true;
  if (stop_) stop_();
}

bool DialerControl::stopped() const {
  std::lock_guard lock(mu_);
  return stopped_;
}

}  // namespace lockstep::net
