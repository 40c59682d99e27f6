// One sync session over one connection, as a state machine: bytes in, bytes and handler calls
// out. It does no I/O and reads no clock (the caller passes the time), so tests drive it with
// two sessions wired back to back, and a fuzzer can feed it anything.
//
// Transitions (`Receive` handles messages, `Pump` the window, heartbeats and timeouts):
//
//   state          event                                 action                       next
//   ------------   -----------------------------------   --------------------------   -----------
//   AwaitHello     Hello, our protocol version           handler.Accept → Welcome     Streaming
//                  (sending starts at the Hello's cursor if the collections granted are those
//                  asked for, else at the beginning of the log)
//   AwaitHello     Hello, other version                  Error{failed_precondition}   Closed
//   AwaitHello     Accept fails (token, permission)      Error{its code}              Closed
//   AwaitHello     Accept grants no direction asked for  Error{permission_denied}     Closed
//   AwaitWelcome   Welcome                               handler.Welcomed             Streaming
//                  (with `reconcile`: handler.StartReconcile → Reconcile steps, and no batch is
//                  sent either way until the reconciliation ends, see below)
//   AwaitWelcome   Welcome grants no direction asked for Error{permission_denied}     Closed
//   Await*         any other message                     Error{invalid_argument}      Closed
//   Streaming      ChangeBatch, we receive               handler.Apply → Ack          Streaming
//   Streaming      ChangeBatch, we do not receive        Error{permission_denied}     Closed
//   Streaming      Ack of the oldest unacked batch       window slot freed → Pump     Streaming
//                  (with batches_per_pump set, the caller pumps after Receive instead)
//   Streaming      Ack of anything else                  Error{invalid_argument}      Closed
//   Streaming      Reconcile, reconciling                handler.ContinueReconcile    Streaming
//                                                        → Reconcile steps
//                  (it ends for the dialer when it sends a step marked `last`, for the listener
//                  when it receives one)
//   Streaming      Reconcile, not reconciling            Error{invalid_argument}      Closed
//   Streaming      Ping                                  Pong                         Streaming
//   Streaming      Pong                                  (liveness only)              Streaming
//   Streaming      Pump, we send, window not full,       handler.ReadChanges → batch  Streaming
//                  not reconciling
//   Streaming      Pump, nothing new, not yet said so    empty batch, caught_up       Streaming
//                  (a batch the handler marks caught_up, having read to its log's end with
//                  nothing for the peer but a moved cursor, says it too, so no empty one follows)
//   any open       Error from the peer                   close with the peer's status Closed
//   any open       Goodbye                               close, ok                    Closed
//   any open       malformed bytes                       Error{data_loss}             Closed
//   any open       handler.Apply/ReadChanges fails       Error{its code}              Closed
//   any open       nothing received for dead_after       Error{unavailable}           Closed
//   Streaming      nothing sent for heartbeat            Ping                         Streaming
//
// A direction granted wider than asked (both, to a pull-only dialer) is narrowed to the ask, on
// both sides, so no side ever sends or accepts changes its own configuration rules out.
//
// Memory stays bounded: at most `window` batches of at most `batch_records` records are unacked,
// and the frame reader holds at most one frame.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame_codec.h"
#include "protocol/messages.h"

namespace lockstep::protocol {

// What a session needs from the engine; implemented there, called only from Session.
class SessionHandler {
 public:
  virtual ~SessionHandler() = default;

  // Listener: decides on a dialer's Hello. The Welcome grants collections and a direction and
  // carries this node's cursor into the dialer's log. An error (kUnauthenticated,
  // kPermissionDenied, ...) is sent to the dialer and closes the session.
  virtual Result<Welcome> Accept(const Hello& hello) = 0;

  // Dialer: the listener accepted. An error closes the session.
  virtual Status Welcomed(const Welcome& welcome) = 0;

  // This node's changes after `after` for the peer, at most `limit` records. The batch's `end`
  // is where the peer's cursor stands once it has applied them; end == after means nothing new.
  virtual Result<ChangeBatch> ReadChanges(const Cursor& after, size_t limit) = 0;

  // Applies the peer's batch together with its end cursor, all or nothing.
  virtual Status Apply(const ChangeBatch& batch) = 0;

  // Reconciliation, when a Welcome asks for it (see lockstep.proto). Dialer: the first steps, at
  // least one; the final step the dialer sends is marked `last`.
  virtual Result<std::vector<Reconcile>> StartReconcile() {
    return std::vector<Reconcile>{Reconcile{{}, {}, /*last=*/true}};
  }
  // Either side: the steps that answer the peer's `step` (none when it needs no answer). A
  // listener's answers are never `last`.
  virtual Result<std::vector<Reconcile>> ContinueReconcile(const Reconcile& step) {
    (void)step;
    return FailedPrecondition("this node does not reconcile");
  }
};

class Session {
 public:
  enum class Role { kDialer, kListener };
  enum class State { kAwaitHello, kAwaitWelcome, kStreaming, kClosed };

  struct Options {
    size_t window = 4;               // unacked batches in flight
    size_t batch_records = 10'000;   // records per batch
    int64_t heartbeat_ms = 5'000;    // ping when nothing was sent for this long
    int64_t dead_after_ms = 20'000;  // close when nothing was received for this long
    // Change batches read per Pump, at most; 0: as many as the window allows, and an Ack pumps.
    // A transport that writes between pumps sets 1, so that each batch goes out as soon as it is
    // read instead of waiting for the reads of the rest of the window; it then pumps after every
    // Receive (an Ack only frees a slot) and while more_to_send().
    size_t batches_per_pump = 0;
  };

  // A listener waits for a Hello; a dialer must call Start. `handler` must outlive the session.
  Session(Role role, SessionHandler& handler, const Options& options, int64_t now_ms);

  // Dialer: sends `hello`. REQUIRES: role kDialer, called once, first.
  void Start(const Hello& hello);

  // Feeds bytes read from the connection. Returns an error when the session closed because of
  // them (an Error frame for the peer is then queued when it helps the peer).
  Status Receive(std::string_view bytes, int64_t now_ms);

  // Sends what the window allows, pings an idle peer, closes a silent one. Call whenever the
  // local log may have new changes (live mode) or input arrived.
  Status Pump(int64_t now_ms);
  // Only the clock's part of Pump: pings an idle peer, closes a silent one. Cheap enough for a
  // timer on thousands of idle sessions (it reads no log).
  Status Tick(int64_t now_ms) { return Pump(now_ms, /*send_changes=*/false); }

  // Ends the session, telling the peer why: Goodbye for ok, Error otherwise.
  void Close(const Status& why);

  // Bytes to write to the connection, handed over once.
  std::string TakeOutput();

  State state() const { return state_; }
  bool closed() const { return state_ == State::kClosed; }
  // Why the session closed: ok after a Goodbye either way, else the error.
  const Status& close_status() const { return close_status_; }
  // Whether everything sent so far has been acknowledged.
  bool idle() const { return unacked_.empty(); }
  // Whether both directions are caught up: the peer said it had nothing newer and we applied all
  // it sent, and we said so and it acknowledged everything. A one-shot sync ends here.
  bool synced() const;
  // How far the peer has acknowledged our log.
  const Cursor& acked() const { return acked_; }
  // Whether the last Pump stopped at `batches_per_pump` with room left in the window: pump
  // again, after writing what it sent, without waiting for a wake-up.
  bool more_to_send() const { return more_to_send_; }

 private:
  Status Handle(const Message& message, int64_t now_ms);
  Status HandleHello(const Hello& hello);
  Status HandleWelcome(const Welcome& welcome);
  Status HandleBatch(const ChangeBatch& batch);
  Status HandleAck(const Ack& ack, int64_t now_ms);
  Status HandleReconcile(const Reconcile& step);
  // Sends reconciliation steps; the dialer's reconciliation ends with the one marked `last`.
  void SendSteps(std::vector<Reconcile> steps);
  Status Pump(int64_t now_ms, bool send_changes);
  Status Fail(Status status, bool tell_peer);
  void Send(const Message& message);
  void StartStreaming(Direction direction, const Cursor& send_from);

  const Role role_;
  SessionHandler& handler_;
  const Options options_;
  State state_;
  Status close_status_;
  FrameReader reader_;
  std::string output_;
  Direction asked_ = Direction::kBoth;  // dialer: the direction its Hello asked for
  bool sending_ = false;                // this side sends its changes
  bool receiving_ = false;              // this side accepts the peer's changes
  bool said_caught_up_ = false;         // our last batch carried caught_up
  bool peer_caught_up_ = false;         // the peer's last batch carried caught_up
  bool reconciling_ = false;            // no batches until the reconciliation ends
  bool more_to_send_ = false;           // see more_to_send()
  Cursor send_cursor_;                  // the end of the last batch sent
  Cursor acked_;                        // the end of the last batch acknowledged
  uint64_t next_batch_id_ = 1;
  struct Unacked {
    uint64_t id;
    Cursor end;
  };
  std::deque<Unacked> unacked_;
  int64_t now_ms_;  // the time the caller last passed in
  int64_t last_received_ms_;
  int64_t last_sent_ms_;
  uint64_t next_ping_ = 1;
};

}  // namespace lockstep::protocol
