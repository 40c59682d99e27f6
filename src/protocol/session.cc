#include "protocol/session.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace lockstep::protocol {
namespace {

// Sending is from the dialer's point of view: push means the dialer sends, pull the listener.
bool Sends(Session::Role role, Direction direction) {
  if (direction == Direction::kBoth) return true;
  return (role == Session::Role::kDialer) == (direction == Direction::kPush);
}

// The direction granted, kept within the one asked for: a grant never makes a side send or
// receive what its own configuration rules out. nullopt when the two share no direction.
std::optional<Direction> Within(Direction asked, Direction granted) {
  if (asked == Direction::kBoth || asked == granted) return granted;
  if (granted == Direction::kBoth) return asked;
  return std::nullopt;
}

}  // namespace

Session::Session(Role role, SessionHandler& handler, const Options& options, int64_t now_ms)
    : role_(role),
      handler_(handler),
      options_(options),
      state_(role == Role::kListener ? State::kAwaitHello : State::kAwaitWelcome),
      now_ms_(now_ms),
      last_received_ms_(now_ms),
      last_sent_ms_(now_ms) {
  reader_.set_max_frame_bytes(kMaxHandshakeFrameBytes);
}

void Session::Start(const Hello& hello) {
  asked_ = hello.direction;
  Send(hello);
  // Until the Welcome says otherwise, the dialer's own Hello is what it will send from.
  send_cursor_ = acked_ = {};
}

Status Session::Receive(std::string_view bytes, int64_t now_ms) {
  if (closed()) return close_status_;
  now_ms_ = last_received_ms_ = now_ms;
  reader_.Append(bytes);
  for (;;) {
    auto next = reader_.Next();
    if (!next.has_value()) return Fail(next.error(), /*tell_peer=*/true);
    if (!next->has_value()) return Status::Ok();
    LOCKSTEP_RETURN_IF_ERROR(Handle(**next, now_ms));
    if (closed()) return close_status_;
  }
}

Status Session::Handle(const Message& message, int64_t now_ms) {
  if (const auto* error = std::get_if<ErrorMessage>(&message)) {
    return Fail(Status(error->code, "peer: " + error->message), /*tell_peer=*/false);
  }
  if (std::holds_alternative<Goodbye>(message)) {
    state_ = State::kClosed;
    close_status_ = Status::Ok();
    return Status::Ok();
  }
  switch (state_) {
    case State::kAwaitHello:
      if (const auto* hello = std::get_if<Hello>(&message)) return HandleHello(*hello);
      break;
    case State::kAwaitWelcome:
      if (const auto* welcome = std::get_if<Welcome>(&message)) return HandleWelcome(*welcome);
      break;
    case State::kStreaming:
      if (const auto* batch = std::get_if<ChangeBatch>(&message)) return HandleBatch(*batch);
      if (const auto* ack = std::get_if<Ack>(&message)) return HandleAck(*ack, now_ms);
      if (const auto* step = std::get_if<Reconcile>(&message)) return HandleReconcile(*step);
      if (const auto* ping = std::get_if<Ping>(&message)) {
        Send(Pong{ping->nonce});
        return Status::Ok();
      }
      if (std::holds_alternative<Pong>(message)) return Status::Ok();
      break;
    case State::kClosed:
      return close_status_;
  }
  return Fail(InvalidArgument("unexpected " + std::string(MessageName(message))),
              /*tell_peer=*/true);
}

Status Session::HandleHello(const Hello& hello) {
  if (hello.protocol_version != kProtocolVersion) {
    return Fail(FailedPrecondition("protocol version " + std::to_string(hello.protocol_version) +
                                   " is not supported (this node speaks " +
                                   std::to_string(kProtocolVersion) + ")"),
                /*tell_peer=*/true);
  }
  auto welcome = handler_.Accept(hello);
  if (!welcome.has_value()) return Fail(welcome.error(), /*tell_peer=*/true);
  const std::optional<Direction> direction = Within(hello.direction, welcome->direction);
  if (!direction) return Fail(PermissionDenied("no direction granted"), /*tell_peer=*/true);
  welcome->protocol_version = kProtocolVersion;
  welcome->direction = *direction;
  Send(*welcome);
  reconciling_ = welcome->reconcile;
  // The dialer's cursor says how far it merged the collections it asked for; once others are
  // granted, records of theirs before the cursor may never have reached it: start over.
  const bool as_asked =
      std::is_permutation(welcome->collections.begin(), welcome->collections.end(),
                          hello.collections.begin(), hello.collections.end());
  StartStreaming(*direction, as_asked ? hello.cursor : Cursor{});
  return Status::Ok();
}

Status Session::HandleWelcome(const Welcome& welcome) {
  if (welcome.protocol_version != kProtocolVersion) {
    return Fail(FailedPrecondition("listener speaks protocol version " +
                                   std::to_string(welcome.protocol_version)),
                /*tell_peer=*/true);
  }
  const std::optional<Direction> direction = Within(asked_, welcome.direction);
  if (!direction) {
    return Fail(PermissionDenied("listener granted a direction that was not asked for"),
                /*tell_peer=*/true);
  }
  Status welcomed = handler_.Welcomed(welcome);
  if (!welcomed.ok()) return Fail(welcomed, /*tell_peer=*/true);
  StartStreaming(*direction, welcome.cursor);
  if (!welcome.reconcile) return Status::Ok();
  reconciling_ = true;
  auto steps = handler_.StartReconcile();
  if (!steps.has_value()) return Fail(steps.error(), /*tell_peer=*/true);
  SendSteps(std::move(*steps));
  return Status::Ok();
}

Status Session::HandleReconcile(const Reconcile& step) {
  if (!reconciling_ || (role_ == Role::kDialer && step.last)) {
    return Fail(InvalidArgument("reconcile step outside a reconciliation"), /*tell_peer=*/true);
  }
  auto replies = handler_.ContinueReconcile(step);
  if (!replies.has_value()) return Fail(replies.error(), /*tell_peer=*/true);
  SendSteps(std::move(*replies));
  if (role_ == Role::kListener && step.last) reconciling_ = false;
  return Status::Ok();
}

void Session::SendSteps(std::vector<Reconcile> steps) {
  for (Reconcile& step : steps) {
    if (role_ == Role::kListener) step.last = false;  // only the dialer ends it
    if (step.last) reconciling_ = false;
    Send(Message(std::move(step)));
  }
}

void Session::StartStreaming(Direction direction, const Cursor& send_from) {
  state_ = State::kStreaming;
  reader_.set_max_frame_bytes(kMaxFrameBytes);
  sending_ = Sends(role_, direction);
  receiving_ = Sends(role_ == Role::kDialer ? Role::kListener : Role::kDialer, direction);
  send_cursor_ = acked_ = send_from;
}

Status Session::HandleBatch(const ChangeBatch& batch) {
  if (!receiving_) {
    return Fail(PermissionDenied("changes sent against the session's direction"),
                /*tell_peer=*/true);
  }
  Status applied = handler_.Apply(batch);
  if (!applied.ok()) return Fail(applied, /*tell_peer=*/true);
  peer_caught_up_ = batch.caught_up;
  Send(Ack{batch.id, batch.end});
  return Status::Ok();
}

Status Session::HandleAck(const Ack& ack, int64_t now_ms) {
  // Acks come in the order batches were sent: anything else is a confused or hostile peer.
  if (unacked_.empty() || unacked_.front().id != ack.batch_id ||
      !(unacked_.front().end == ack.cursor)) {
    return Fail(InvalidArgument("ack of batch " + std::to_string(ack.batch_id) +
                                " that is not the oldest unacknowledged one"),
                /*tell_peer=*/true);
  }
  acked_ = ack.cursor;
  unacked_.pop_front();
  // One batch at a time: the caller pumps after Receive, once it has written what is queued,
  // rather than Receive reading the next batches while those it queued wait unwritten.
  if (options_.batches_per_pump != 0) return Status::Ok();
  return Pump(now_ms);
}

Status Session::Pump(int64_t now_ms) { return Pump(now_ms, /*send_changes=*/true); }

Status Session::Pump(int64_t now_ms, bool send_changes) {
  if (closed()) return close_status_;
  now_ms_ = now_ms;
  if (now_ms - last_received_ms_ >= options_.dead_after_ms) {
    return Fail(
        Unavailable("peer silent for " + std::to_string(now_ms - last_received_ms_) + " ms"),
        /*tell_peer=*/true);
  }
  if (state_ != State::kStreaming) return Status::Ok();
  size_t read = 0;
  if (send_changes) more_to_send_ = false;
  while (send_changes && sending_ && !reconciling_ && unacked_.size() < options_.window) {
    if (options_.batches_per_pump != 0 && read == options_.batches_per_pump) {
      more_to_send_ = true;
      break;
    }
    ++read;
    auto batch = handler_.ReadChanges(send_cursor_, options_.batch_records);
    if (!batch.has_value()) return Fail(batch.error(), /*tell_peer=*/true);
    const bool nothing_new = batch->end == send_cursor_ && batch->changes.empty();
    if (nothing_new && said_caught_up_) break;
    // Nothing new, not yet said: an empty batch tells the peer we are caught up. So does a
    // batch the handler marked so (read to the end of its log).
    batch->caught_up = nothing_new || (batch->caught_up && batch->changes.empty());
    said_caught_up_ = batch->caught_up;
    const bool caught_up = batch->caught_up;
    batch->id = next_batch_id_++;
    unacked_.push_back({batch->id, batch->end});
    send_cursor_ = batch->end;
    Send(Message(std::move(*batch)));  // a batch can hold a thousand records: no copy
    if (caught_up) break;
  }
  if (now_ms - last_sent_ms_ >= options_.heartbeat_ms) Send(Ping{next_ping_++});
  return Status::Ok();
}

bool Session::synced() const {
  return state_ == State::kStreaming && !reconciling_ && (!receiving_ || peer_caught_up_) &&
         (!sending_ || (said_caught_up_ && unacked_.empty()));
}

void Session::Close(const Status& why) {
  if (closed()) return;
  if (why.ok()) {
    Send(Goodbye{"done"});
    state_ = State::kClosed;
    close_status_ = Status::Ok();
    return;
  }
  (void)Fail(why, /*tell_peer=*/true);
}

Status Session::Fail(Status status, bool tell_peer) {
  if (closed()) return close_status_;
  if (tell_peer) Send(ErrorMessage{status.code(), status.message()});
  state_ = State::kClosed;
  close_status_ = std::move(status);
  return close_status_;
}

void Session::Send(const Message& message) {
  output_ += EncodeFrame(message);
  last_sent_ms_ = now_ms_;  // drives heartbeats
}

std::string Session::TakeOutput() { return std::exchange(output_, {}); }

}  // namespace lockstep::protocol
