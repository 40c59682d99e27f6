#include "protocol/session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/delta.h"
#include "core/local_write.h"
#include "protocol/frame_codec.h"

namespace lockstep::protocol {
namespace {

using Role = Session::Role;
using State = Session::State;

constexpr int64_t kStart = 1'000'000;
constexpr char kToken[] = "t0ken";

core::NodeId Node(uint8_t n) {
  core::NodeId id;
  id.bytes[0] = static_cast<uint8_t>(0xb0 + n);
  id.bytes[15] = n;
  return id;
}

// A node's side of the engine, in memory: its own change log (seq n is log[n - 1]), what it
// received from the peer (kept apart from its log so that nothing echoes back), and how far it
// has merged the peer's log. Each hook can be made to fail.
class FakeNode : public SessionHandler {
 public:
  FakeNode(uint8_t id, int64_t epoch) : node_(Node(id)), epoch_(epoch) {}

  // Appends `count` changes to this node's log.
  void Commit(size_t count, const std::string& collection = "stock") {
    for (size_t i = 0; i < count; ++i) {
      const uint64_t counter = log_.size() + 1;
      core::Record record(collection + "/" + std::to_string(counter));
      const core::LocalWrite write{{node_, counter},
                                   core::Hlc::Make(counter, 0),
                                   {{"qty", Value::Int(static_cast<int64_t>(counter))}}};
      EXPECT_TRUE(core::ApplyLocalWrite(record, write, core::MergePolicy()).has_value());
      log_.push_back(
          {collection, core::MakeDelta(record, [](const std::string&) { return true; })});
      echo_.push_back(false);
    }
  }

  // Appends `count` entries that are the peer's own records coming back: read past, never sent
  // (the engine skips them by origin).
  void CommitEchoes(size_t count) {
    for (size_t i = 0; i < count; ++i) {
      log_.push_back({"stock", {}});
      echo_.push_back(true);
    }
  }

  Result<Welcome> Accept(const Hello& hello) override {
    hello_ = hello;
    if (hello.token != kToken) return Unauthenticated("token is not valid");
    if (!accept_status_.ok()) return accept_status_;
    return Welcome{.node = node_,
                   .collections = grant_collections_.value_or(hello.collections),
                   .cursor = merged_,
                   .direction = grant_.value_or(hello.direction),
                   .reconcile = reconcile_rounds_ > 0};
  }

  // A scripted reconciliation of `reconcile_rounds_` round trips: the dialer asks "q1", the
  // listener answers "a1", ..., and the dialer's step after the last answer is marked `last`.
  Result<std::vector<Reconcile>> StartReconcile() override {
    return std::vector<Reconcile>{{"stock", "q1", false}};
  }

  Result<std::vector<Reconcile>> ContinueReconcile(const Reconcile& step) override {
    steps_.push_back(step);
    if (step.step.empty()) return std::vector<Reconcile>{};  // the dialer's closing step
    if (step.step.size() < 2 || !std::isdigit(static_cast<unsigned char>(step.step[1]))) {
      return InvalidArgument("unreadable reconcile step");
    }
    const int round = std::stoi(step.step.substr(1));
    if (step.step[0] == 'q') return std::vector<Reconcile>{{"stock", "a" + std::to_string(round)}};
    if (round == reconcile_rounds_) return std::vector<Reconcile>{{"stock", "", true}};
    return std::vector<Reconcile>{{"stock", "q" + std::to_string(round + 1)}};
  }

  Status Welcomed(const Welcome& welcome) override {
    welcome_ = welcome;
    return welcomed_status_;
  }

  Result<ChangeBatch> ReadChanges(const Cursor& after, size_t limit) override {
    if (!read_status_.ok()) return read_status_;
    const uint64_t from = after.epoch == epoch_ ? after.seq : 0;
    const uint64_t to = std::min<uint64_t>(log_.size(), from + limit);
    ChangeBatch batch{.id = 0, .end = {.epoch = epoch_, .seq = to}, .changes = {}};
    for (uint64_t seq = from; seq < to; ++seq) {
      if (!echo_[seq]) batch.changes.push_back(log_[seq]);
    }
    // As the engine does: only echoes, read to the end of the log, is being caught up.
    batch.caught_up = to == log_.size() && (batch.changes.empty() || mark_with_records_);
    return batch;
  }

  Status Apply(const ChangeBatch& batch) override {
    if (!apply_status_.ok()) return apply_status_;
    received_.insert(received_.end(), batch.changes.begin(), batch.changes.end());
    merged_ = batch.end;
    return Status::Ok();
  }

  Cursor End() const { return {.epoch = epoch_, .seq = log_.size()}; }

  core::NodeId node_;
  int64_t epoch_;
  std::vector<Change> log_;
  std::vector<bool> echo_;          // per log entry: skipped when read
  bool mark_with_records_ = false;  // mark a batch caught up at the log's end even with records
  std::vector<Change> received_;
  Cursor merged_;  // how far this node has merged the peer's log
  std::optional<Direction> grant_;
  std::optional<std::vector<std::string>> grant_collections_;
  std::optional<Hello> hello_;
  std::optional<Welcome> welcome_;
  int reconcile_rounds_ = 0;      // ask the dialer to reconcile (listener), in this many rounds
  std::vector<Reconcile> steps_;  // the reconcile steps received
  Status accept_status_, welcomed_status_, read_status_, apply_status_;
};

// Every message in `bytes`, which must be whole frames.
std::vector<Message> Decoded(const std::string& bytes) {
  FrameReader reader;
  reader.Append(bytes);
  std::vector<Message> out;
  for (;;) {
    auto next = reader.Next();
    EXPECT_TRUE(next.has_value()) << next.error().ToString();
    if (!next.has_value() || !next->has_value()) return out;
    out.push_back(std::move(**next));
  }
}

template <typename T>
size_t CountOf(const std::vector<Message>& messages) {
  return std::count_if(messages.begin(), messages.end(),
                       [](const Message& m) { return std::holds_alternative<T>(m); });
}

// The Error frame among `bytes`, if any.
std::optional<ErrorMessage> ErrorIn(const std::string& bytes) {
  for (const Message& message : Decoded(bytes)) {
    if (const auto* error = std::get_if<ErrorMessage>(&message)) return *error;
  }
  return std::nullopt;
}

// A dialer (node a) and a listener (node b) wired back to back. Every frame that crosses is
// recorded, and the batches each side has in flight (sent, not yet acknowledged) are counted.
class Link {
 public:
  explicit Link(const Session::Options& options = {})
      : dialer_(Role::kDialer, a_, options, kStart),
        listener_(Role::kListener, b_, options, kStart) {}

  Hello MakeHello(Direction direction = Direction::kBoth) const {
    return Hello{.node = a_.node_,
                 .token = kToken,
                 .collections = {"stock"},
                 .direction = direction,
                 .cursor = a_.merged_};
  }

  // Hello → Welcome.
  void Handshake(Direction direction = Direction::kBoth) { Handshake(MakeHello(direction)); }
  void Handshake(const Hello& hello) {
    dialer_.Start(hello);
    Exchange();
  }

  // Moves bytes both ways until neither side has anything to say.
  void Exchange() {
    for (int round = 0; round < 100'000; ++round) {
      const std::string from_dialer = dialer_.TakeOutput();
      const std::string from_listener = listener_.TakeOutput();
      if (from_dialer.empty() && from_listener.empty()) return;
      Record(from_dialer, to_listener_, dialer_in_flight_, max_dialer_in_flight_);
      Record(from_listener, to_dialer_, listener_in_flight_, max_listener_in_flight_);
      // Both outputs were written before either side saw the other's: count acks after batches.
      dialer_in_flight_ -= CountOf<Ack>(Decoded(from_listener));
      listener_in_flight_ -= CountOf<Ack>(Decoded(from_dialer));
      if (!from_dialer.empty()) (void)listener_.Receive(from_dialer, now_);
      if (!from_listener.empty()) (void)dialer_.Receive(from_listener, now_);
    }
    ADD_FAILURE() << "the sessions never went quiet";
  }

  // Pumps both sides and exchanges until quiet: a full sync when the logs are still.
  void Sync() {
    (void)dialer_.Pump(now_);
    (void)listener_.Pump(now_);
    Exchange();
  }

  FakeNode a_{1, 111};
  FakeNode b_{2, 222};
  Session dialer_;
  Session listener_;
  int64_t now_ = kStart;
  std::vector<Message> to_listener_, to_dialer_;  // every frame that crossed, in order
  size_t dialer_in_flight_ = 0, listener_in_flight_ = 0;
  size_t max_dialer_in_flight_ = 0, max_listener_in_flight_ = 0;

 private:
  static void Record(const std::string& bytes, std::vector<Message>& log, size_t& in_flight,
                     size_t& max_in_flight) {
    const std::vector<Message> messages = Decoded(bytes);
    log.insert(log.end(), messages.begin(), messages.end());
    in_flight += CountOf<ChangeBatch>(messages);
    max_in_flight = std::max(max_in_flight, in_flight);
  }
};

Session::Options SmallWindow() { return {.window = 3, .batch_records = 7}; }

std::vector<ChangeBatch> BatchesIn(const std::vector<Message>& messages) {
  std::vector<ChangeBatch> out;
  for (const Message& m : messages) {
    if (const auto* batch = std::get_if<ChangeBatch>(&m)) out.push_back(*batch);
  }
  return out;
}

std::vector<Ack> AcksIn(const std::vector<Message>& messages) {
  std::vector<Ack> out;
  for (const Message& m : messages) {
    if (const auto* ack = std::get_if<Ack>(&m)) out.push_back(*ack);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

TEST(SessionTest, HandshakeGrantsWhatWasAskedAndBothSidesStream) {
  Link link;
  link.Handshake();
  EXPECT_EQ(link.dialer_.state(), State::kStreaming);
  EXPECT_EQ(link.listener_.state(), State::kStreaming);
  ASSERT_TRUE(link.b_.hello_.has_value());
  EXPECT_EQ(link.b_.hello_->token, kToken);
  EXPECT_EQ(link.b_.hello_->node, link.a_.node_);
  ASSERT_TRUE(link.a_.welcome_.has_value());
  EXPECT_EQ(link.a_.welcome_->node, link.b_.node_);
  EXPECT_EQ(link.a_.welcome_->collections, std::vector<std::string>{"stock"});
  EXPECT_EQ(link.a_.welcome_->protocol_version, kProtocolVersion);
  EXPECT_EQ(link.to_listener_.size(), 1u);
  EXPECT_EQ(link.to_dialer_.size(), 1u);
}

TEST(SessionTest, ManyBatchesStreamBothWaysWithinTheWindow) {
  Link link(SmallWindow());
  link.a_.Commit(200);
  link.b_.Commit(150, "customers");
  link.Handshake();
  link.Sync();

  EXPECT_EQ(link.b_.received_, link.a_.log_);
  EXPECT_EQ(link.a_.received_, link.b_.log_);
  // ceil(200 / 7) and ceil(150 / 7), then one empty batch saying each side is caught up.
  EXPECT_EQ(BatchesIn(link.to_listener_).size(), 29u + 1);
  EXPECT_EQ(BatchesIn(link.to_dialer_).size(), 22u + 1);
  EXPECT_TRUE(link.dialer_.synced());
  EXPECT_TRUE(link.listener_.synced());
  // The window bounds what is in flight, and a long stream fills it.
  EXPECT_EQ(link.max_dialer_in_flight_, 3u);
  EXPECT_EQ(link.max_listener_in_flight_, 3u);
  EXPECT_EQ(link.dialer_in_flight_, 0u);
  EXPECT_EQ(link.listener_in_flight_, 0u);
  EXPECT_TRUE(link.dialer_.idle());
  EXPECT_TRUE(link.listener_.idle());
  EXPECT_FALSE(link.dialer_.closed());
  EXPECT_FALSE(link.listener_.closed());
}

TEST(SessionTest, AcksComeInOrderAndCursorsEndAtTheLogsEnd) {
  Link link(SmallWindow());
  link.a_.Commit(100);
  link.b_.Commit(60);
  link.Handshake();
  link.Sync();

  const std::vector<ChangeBatch> sent = BatchesIn(link.to_listener_);
  const std::vector<Ack> acks = AcksIn(link.to_dialer_);
  ASSERT_EQ(acks.size(), sent.size());
  for (size_t i = 0; i < acks.size(); ++i) {
    EXPECT_EQ(acks[i].batch_id, i + 1);
    EXPECT_EQ(acks[i].batch_id, sent[i].id);
    EXPECT_EQ(acks[i].cursor, sent[i].end);
  }
  EXPECT_EQ(link.b_.merged_, link.a_.End());
  EXPECT_EQ(link.a_.merged_, link.b_.End());
  EXPECT_EQ(link.dialer_.acked(), link.a_.End());
  EXPECT_EQ(link.listener_.acked(), link.b_.End());
}

TEST(SessionTest, NewChangesFlowInLiveModeAfterCatchUp) {
  Link link(SmallWindow());
  link.a_.Commit(10);
  link.Handshake();
  link.Sync();
  link.a_.Commit(30);
  link.Sync();
  EXPECT_EQ(link.b_.received_, link.a_.log_);
  EXPECT_EQ(link.dialer_.acked(), link.a_.End());
}

TEST(SessionTest, ResumedSessionSendsOnlyWhatFollowsTheCursor) {
  Link link(SmallWindow());
  link.a_.Commit(20);
  link.b_.merged_ = {.epoch = link.a_.epoch_, .seq = 15};  // told to the dialer in the Welcome
  link.Handshake();
  link.Sync();
  EXPECT_EQ(link.b_.received_, std::vector<Change>(link.a_.log_.begin() + 15, link.a_.log_.end()));
}

TEST(SessionTest, PushOnlyDialerSendsAndNeverReceives) {
  Link link(SmallWindow());
  link.a_.Commit(30);
  link.b_.Commit(30);
  link.Handshake(Direction::kPush);
  link.Sync();
  EXPECT_EQ(link.b_.received_, link.a_.log_);
  EXPECT_TRUE(link.a_.received_.empty());
  EXPECT_EQ(CountOf<ChangeBatch>(link.to_dialer_), 0u);
}

TEST(SessionTest, PullOnlyDialerNeverSendsAChangeBatch) {
  Link link(SmallWindow());
  link.a_.Commit(30);
  link.b_.Commit(30);
  link.Handshake(Direction::kPull);
  link.Sync();
  EXPECT_EQ(link.a_.received_, link.b_.log_);
  EXPECT_TRUE(link.b_.received_.empty());
  EXPECT_EQ(CountOf<ChangeBatch>(link.to_listener_), 0u);
}

// Regression: a listener that granted more than was asked (both, to a pull-only dialer) made the
// dialer push its changes against its own configuration.
TEST(SessionTest, PullOnlyDialerNeverSendsEvenWhenGrantedBoth) {
  Link link(SmallWindow());
  link.a_.Commit(30);
  link.b_.Commit(30);
  link.b_.grant_ = Direction::kBoth;
  link.Handshake(Direction::kPull);
  link.Sync();
  EXPECT_EQ(CountOf<ChangeBatch>(link.to_listener_), 0u);
  EXPECT_TRUE(link.b_.received_.empty());
  EXPECT_EQ(link.a_.received_, link.b_.log_);
  ASSERT_TRUE(link.a_.welcome_.has_value());
  EXPECT_EQ(link.a_.welcome_->direction, Direction::kPull);
  EXPECT_FALSE(link.dialer_.closed());
  EXPECT_FALSE(link.listener_.closed());
}

// Regression, the other way round: a Welcome granting both to a push-only dialer, from a
// listener this node cannot trust to narrow it.
TEST(SessionTest, PushOnlyDialerIgnoresAWiderGrantInTheWelcome) {
  FakeNode a(1, 111);
  Session dialer(Role::kDialer, a, SmallWindow(), kStart);
  a.Commit(3);
  dialer.Start(Hello{.node = a.node_, .token = kToken, .direction = Direction::kPush});
  (void)dialer.TakeOutput();
  ASSERT_TRUE(
      dialer.Receive(EncodeFrame(Welcome{.node = Node(2), .direction = Direction::kBoth}), kStart)
          .ok());
  // A batch from the listener is now against the session's direction.
  const Status status =
      dialer.Receive(EncodeFrame(ChangeBatch{.id = 1, .end = {.epoch = 5, .seq = 1}}), kStart);
  EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
}

TEST(SessionTest, ListenerMayGrantNarrowerThanAsked) {
  Link link(SmallWindow());
  link.a_.Commit(30);
  link.b_.Commit(30);
  link.b_.grant_ = Direction::kPull;  // a read-only token
  link.Handshake(Direction::kBoth);
  link.Sync();
  EXPECT_EQ(CountOf<ChangeBatch>(link.to_listener_), 0u);
  EXPECT_EQ(link.a_.received_, link.b_.log_);
}

TEST(SessionTest, GrantSharingNoDirectionWithTheAskClosesWithPermissionDenied) {
  Link link;
  link.b_.grant_ = Direction::kPull;
  link.Handshake(Direction::kPush);
  EXPECT_EQ(link.listener_.close_status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(link.dialer_.close_status().code(), StatusCode::kPermissionDenied);
}

TEST(SessionTest, WrongTokenClosesTheDialerUnauthenticated) {
  Link link;
  Hello hello = link.MakeHello();
  hello.token = "guess";
  link.Handshake(hello);
  EXPECT_TRUE(link.dialer_.closed());
  EXPECT_EQ(link.dialer_.close_status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(link.listener_.close_status().code(), StatusCode::kUnauthenticated);
  EXPECT_FALSE(link.a_.welcome_.has_value());
}

TEST(SessionTest, ProtocolVersionMismatchIsFailedPreconditionOnBothSides) {
  Link link;
  Hello hello = link.MakeHello();
  hello.protocol_version = kProtocolVersion + 1;
  link.Handshake(hello);
  EXPECT_EQ(link.listener_.close_status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(link.dialer_.close_status().code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(link.b_.hello_.has_value()) << "the handler must not see a foreign version";
}

TEST(SessionTest, HeartbeatsKeepAnIdleSessionAlive) {
  Link link({.heartbeat_ms = 100, .dead_after_ms = 350});
  link.Handshake();
  link.Sync();
  for (int tick = 0; tick < 50; ++tick) {
    link.now_ += 50;
    ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
    ASSERT_TRUE(link.listener_.Pump(link.now_).ok());
    link.Exchange();
  }
  EXPECT_FALSE(link.dialer_.closed());
  EXPECT_FALSE(link.listener_.closed());
  EXPECT_GE(CountOf<Ping>(link.to_listener_), 10u);
  EXPECT_EQ(CountOf<Pong>(link.to_dialer_), CountOf<Ping>(link.to_listener_));
}

TEST(SessionTest, ListenerClosesAPeerThatConnectsAndNeverSpeaks) {
  FakeNode b(2, 222);
  Session listener(Role::kListener, b, {.dead_after_ms = 500}, kStart);
  EXPECT_TRUE(listener.Pump(kStart + 499).ok());
  EXPECT_TRUE(listener.TakeOutput().empty());
  EXPECT_EQ(listener.Pump(kStart + 500).code(), StatusCode::kUnavailable);
  EXPECT_TRUE(listener.closed());
  EXPECT_EQ(ErrorIn(listener.TakeOutput())->code, StatusCode::kUnavailable);
}

TEST(SessionTest, DialerClosesAListenerThatNeverWelcomes) {
  FakeNode a(1, 111);
  Session dialer(Role::kDialer, a, {.dead_after_ms = 500}, kStart);
  dialer.Start(Hello{.node = a.node_, .token = kToken});
  EXPECT_EQ(dialer.Pump(kStart + 500).code(), StatusCode::kUnavailable);
}

TEST(SessionTest, ClosingWithAnErrorTellsThePeerItsCode) {
  Link link;
  link.Handshake();
  link.dialer_.Close(Aborted("shutting down for an upgrade"));
  link.Exchange();
  EXPECT_EQ(link.dialer_.close_status().code(), StatusCode::kAborted);
  EXPECT_EQ(link.listener_.close_status().code(), StatusCode::kAborted);
  EXPECT_EQ(CountOf<ErrorMessage>(link.to_dialer_), 0u) << "an Error is not answered";
}

TEST(SessionTest, ClosedSessionIgnoresFurtherInput) {
  Link link;
  link.Handshake();
  link.dialer_.Close(Status::Ok());
  link.Exchange();
  EXPECT_TRUE(link.listener_.Receive(EncodeFrame(Ping{.nonce = 1}), link.now_).ok());
  EXPECT_TRUE(link.listener_.Pump(link.now_ + 1'000'000).ok());
  EXPECT_TRUE(link.listener_.TakeOutput().empty());
}

// The 4-byte length that starts a frame.
std::string FrameHeader(uint32_t length) {
  return {static_cast<char>(length >> 24), static_cast<char>(length >> 16),
          static_cast<char>(length >> 8), static_cast<char>(length)};
}

// Before the handshake a frame holds names, a token and schemas: a larger one is refused from its
// length alone, so a peer that has shown no token cannot make a hub hold 64 MiB for it.
TEST(SessionTest, AFrameBeyondTheHandshakeLimitIsRefusedBeforeTheHello) {
  FakeNode b(2, 222);
  Session listener(Role::kListener, b, {}, kStart);
  EXPECT_TRUE(listener.Receive(FrameHeader(kMaxHandshakeFrameBytes), kStart).ok());
  Session refusing(Role::kListener, b, {}, kStart);
  EXPECT_EQ(refusing.Receive(FrameHeader(kMaxHandshakeFrameBytes + 1), kStart).code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(refusing.closed());
}

TEST(SessionTest, AfterTheHandshakeFramesMayBeAsLargeAsABatch) {
  Link link;
  link.Handshake();
  EXPECT_TRUE(link.listener_.Receive(FrameHeader(kMaxHandshakeFrameBytes + 1), link.now_).ok());
  EXPECT_FALSE(link.listener_.closed());
  EXPECT_EQ(link.dialer_.Receive(FrameHeader(kMaxFrameBytes + 1), link.now_).code(),
            StatusCode::kResourceExhausted);
}

TEST(SessionTest, BytesSplitAcrossReceivesAreReassembled) {
  FakeNode b(2, 222);
  Session listener(Role::kListener, b, {}, kStart);
  const std::string hello = EncodeFrame(Hello{.node = Node(1), .token = kToken});
  for (char byte : hello) ASSERT_TRUE(listener.Receive(std::string_view(&byte, 1), kStart).ok());
  EXPECT_EQ(listener.state(), State::kStreaming);
}

// ---------------------------------------------------------------------------------------------
// One test per row of the transition table in session.h, named after the row.

// AwaitHello | Hello, our protocol version | handler.Accept → Welcome | Streaming
TEST(SessionTransitionTest, AwaitHelloOnHelloOfOurVersionAcceptsAndWelcomes) {
  FakeNode b(2, 222);
  b.merged_ = {.epoch = 111, .seq = 9};
  Session listener(Role::kListener, b, {}, kStart);
  ASSERT_EQ(listener.state(), State::kAwaitHello);
  ASSERT_TRUE(listener.Receive(EncodeFrame(Hello{.node = Node(1), .token = kToken}), kStart).ok());
  EXPECT_EQ(listener.state(), State::kStreaming);
  const std::vector<Message> out = Decoded(listener.TakeOutput());
  ASSERT_EQ(out.size(), 1u);
  const auto* welcome = std::get_if<Welcome>(&out[0]);
  ASSERT_NE(welcome, nullptr);
  EXPECT_EQ(welcome->node, b.node_);
  EXPECT_EQ(welcome->cursor, b.merged_);
}

// AwaitHello | Hello, our version | (sending starts at the Hello's cursor if the collections
// granted are those asked for, else at the beginning of the log)
TEST(SessionTransitionTest, AwaitHelloSendsFromTheHellosCursorOnlyWhenGrantedWhatWasAsked) {
  const Hello hello{.node = Node(1),
                    .token = kToken,
                    .collections = {"customers", "stock"},
                    .cursor = {.epoch = 222, .seq = 6}};
  for (const bool narrowed : {false, true}) {
    FakeNode b(2, 222);
    b.Commit(10);
    if (narrowed) b.grant_collections_ = std::vector<std::string>{"stock"};
    Session listener(Role::kListener, b, {}, kStart);
    ASSERT_TRUE(listener.Receive(EncodeFrame(hello), kStart).ok());
    ASSERT_TRUE(listener.Pump(kStart).ok());
    const std::vector<ChangeBatch> batches = BatchesIn(Decoded(listener.TakeOutput()));
    ASSERT_FALSE(batches.empty());
    const std::vector<Change> expected(b.log_.begin() + (narrowed ? 0 : 6), b.log_.end());
    EXPECT_EQ(batches[0].changes, expected) << (narrowed ? "narrowed" : "as asked");
  }
}

// AwaitHello | Hello, other version | Error{failed_precondition} | Closed
TEST(SessionTransitionTest, AwaitHelloOnHelloOfOtherVersionFailsPrecondition) {
  FakeNode b(2, 222);
  Session listener(Role::kListener, b, {}, kStart);
  const Status status = listener.Receive(
      EncodeFrame(Hello{.protocol_version = 0, .node = Node(1), .token = kToken}), kStart);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(listener.state(), State::kClosed);
  EXPECT_EQ(ErrorIn(listener.TakeOutput())->code, StatusCode::kFailedPrecondition);
}

// AwaitHello | Accept fails (token, permission) | Error{its code} | Closed
TEST(SessionTransitionTest, AwaitHelloWhenAcceptFailsSendsItsCode) {
  FakeNode b(2, 222);
  b.accept_status_ = PermissionDenied("collection stock is not shared with this node");
  Session listener(Role::kListener, b, {}, kStart);
  const Status status =
      listener.Receive(EncodeFrame(Hello{.node = Node(1), .token = kToken}), kStart);
  EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(listener.closed());
  const auto error = ErrorIn(listener.TakeOutput());
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(*error, (ErrorMessage{StatusCode::kPermissionDenied,
                                  "collection stock is not shared with this node"}));
}

// AwaitHello | Accept grants no direction asked for | Error{permission_denied} | Closed
TEST(SessionTransitionTest, AwaitHelloWhenAcceptGrantsNoDirectionAskedForIsPermissionDenied) {
  FakeNode b(2, 222);
  b.grant_ = Direction::kPull;
  Session listener(Role::kListener, b, {}, kStart);
  const Hello push{.node = Node(1), .token = kToken, .direction = Direction::kPush};
  EXPECT_EQ(listener.Receive(EncodeFrame(push), kStart).code(), StatusCode::kPermissionDenied);
  const std::vector<Message> out = Decoded(listener.TakeOutput());
  ASSERT_EQ(out.size(), 1u) << "no Welcome before the Error";
  EXPECT_EQ(std::get<ErrorMessage>(out[0]).code, StatusCode::kPermissionDenied);
}

// AwaitHello | Accept grants wider than asked: narrowed to the ask, in the Welcome too
TEST(SessionTransitionTest, AwaitHelloWhenAcceptGrantsWiderNarrowsToTheAsk) {
  FakeNode b(2, 222);
  b.grant_ = Direction::kBoth;
  Session listener(Role::kListener, b, {}, kStart);
  const Hello push{.node = Node(1), .token = kToken, .direction = Direction::kPush};
  ASSERT_TRUE(listener.Receive(EncodeFrame(push), kStart).ok());
  const std::vector<Message> out = Decoded(listener.TakeOutput());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<Welcome>(out[0]).direction, Direction::kPush);
  b.Commit(5);
  ASSERT_TRUE(listener.Pump(kStart).ok());
  EXPECT_TRUE(listener.TakeOutput().empty()) << "a push-only dialer is sent nothing";
}

// AwaitWelcome | Welcome grants no direction asked for | Error{permission_denied} | Closed
TEST(SessionTransitionTest, AwaitWelcomeWhenWelcomeGrantsNoDirectionAskedForIsPermissionDenied) {
  FakeNode a(1, 111);
  Session dialer(Role::kDialer, a, {}, kStart);
  dialer.Start(Hello{.node = a.node_, .token = kToken, .direction = Direction::kPush});
  (void)dialer.TakeOutput();
  const Welcome pull{.node = Node(2), .direction = Direction::kPull};
  EXPECT_EQ(dialer.Receive(EncodeFrame(pull), kStart).code(), StatusCode::kPermissionDenied);
  EXPECT_FALSE(a.welcome_.has_value()) << "the handler never sees a refused grant";
  EXPECT_EQ(ErrorIn(dialer.TakeOutput())->code, StatusCode::kPermissionDenied);
}

// AwaitWelcome | Welcome | handler.Welcomed | Streaming
TEST(SessionTransitionTest, AwaitWelcomeOnWelcomeCallsWelcomedAndStreams) {
  FakeNode a(1, 111);
  Session dialer(Role::kDialer, a, {}, kStart);
  ASSERT_EQ(dialer.state(), State::kAwaitWelcome);
  dialer.Start(Hello{.node = a.node_, .token = kToken});
  const Welcome welcome{.node = Node(2), .collections = {"stock"}, .cursor = {111, 4}};
  ASSERT_TRUE(dialer.Receive(EncodeFrame(welcome), kStart).ok());
  EXPECT_EQ(dialer.state(), State::kStreaming);
  EXPECT_EQ(a.welcome_, welcome);
  EXPECT_EQ(dialer.acked(), (Cursor{111, 4}));
}

// AwaitWelcome | Welcome, other version (the dialer's side of the version check)
TEST(SessionTransitionTest, AwaitWelcomeOnWelcomeOfOtherVersionFailsPrecondition) {
  FakeNode a(1, 111);
  Session dialer(Role::kDialer, a, {}, kStart);
  dialer.Start(Hello{.node = a.node_, .token = kToken});
  (void)dialer.TakeOutput();
  const Status status =
      dialer.Receive(EncodeFrame(Welcome{.protocol_version = 2, .node = Node(2)}), kStart);
  EXPECT_EQ(status.code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(a.welcome_.has_value());
  EXPECT_EQ(ErrorIn(dialer.TakeOutput())->code, StatusCode::kFailedPrecondition);
}

// AwaitWelcome | Welcome that Welcomed refuses | Error{its code} | Closed
TEST(SessionTransitionTest, AwaitWelcomeWhenWelcomedFailsSendsItsCode) {
  FakeNode a(1, 111);
  a.welcomed_status_ = FailedPrecondition("listener lacks collection stock");
  Session dialer(Role::kDialer, a, {}, kStart);
  dialer.Start(Hello{.node = a.node_, .token = kToken});
  (void)dialer.TakeOutput();
  EXPECT_EQ(dialer.Receive(EncodeFrame(Welcome{.node = Node(2)}), kStart).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorIn(dialer.TakeOutput())->code, StatusCode::kFailedPrecondition);
}

// Await* | any other message | Error{invalid_argument} | Closed
TEST(SessionTransitionTest, AwaitAnyOnAnyOtherMessageIsInvalidArgument) {
  const std::vector<Message> out_of_place = {Welcome{.node = Node(2)}, ChangeBatch{.id = 1},
                                             Ack{.batch_id = 1}, Ping{.nonce = 1},
                                             Pong{.nonce = 1}};
  for (const Message& message : out_of_place) {
    FakeNode b(2, 222);
    Session listener(Role::kListener, b, {}, kStart);
    EXPECT_EQ(listener.Receive(EncodeFrame(message), kStart).code(), StatusCode::kInvalidArgument)
        << MessageName(message);
    EXPECT_EQ(ErrorIn(listener.TakeOutput())->code, StatusCode::kInvalidArgument);
  }
  const std::vector<Message> out_of_place_for_dialer = {
      Hello{.node = Node(2)}, ChangeBatch{.id = 1}, Ack{.batch_id = 1}, Ping{.nonce = 1}};
  for (const Message& message : out_of_place_for_dialer) {
    FakeNode a(1, 111);
    Session dialer(Role::kDialer, a, {}, kStart);
    dialer.Start(Hello{.node = a.node_, .token = kToken});
    (void)dialer.TakeOutput();
    EXPECT_EQ(dialer.Receive(EncodeFrame(message), kStart).code(), StatusCode::kInvalidArgument)
        << MessageName(message);
    EXPECT_EQ(ErrorIn(dialer.TakeOutput())->code, StatusCode::kInvalidArgument);
  }
}

// Streaming | ChangeBatch, we receive | handler.Apply → Ack | Streaming
TEST(SessionTransitionTest, StreamingOnChangeBatchWeReceiveAppliesAndAcks) {
  Link link;
  link.a_.Commit(3);
  link.Handshake();
  const ChangeBatch batch{.id = 1, .end = link.a_.End(), .changes = link.a_.log_};
  ASSERT_TRUE(link.listener_.Receive(EncodeFrame(batch), link.now_).ok());
  EXPECT_EQ(link.b_.received_, link.a_.log_);
  EXPECT_EQ(link.b_.merged_, link.a_.End());
  EXPECT_EQ(Decoded(link.listener_.TakeOutput()),
            (std::vector<Message>{Ack{.batch_id = 1, .cursor = link.a_.End()}}));
  EXPECT_EQ(link.listener_.state(), State::kStreaming);
}

// Streaming | ChangeBatch, we do not receive | Error{permission_denied} | Closed
TEST(SessionTransitionTest, StreamingOnChangeBatchWeDoNotReceiveIsPermissionDenied) {
  Link link;
  link.a_.Commit(3);
  link.Handshake(Direction::kPull);
  // The dialer is pull-only, so a batch from it goes against the session's direction.
  const auto batch = link.a_.ReadChanges({}, 10);
  ASSERT_TRUE(batch.has_value());
  ChangeBatch against = *batch;
  against.id = 1;
  const Status status = link.listener_.Receive(EncodeFrame(against), link.now_);
  EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(link.listener_.closed());
  EXPECT_TRUE(link.b_.received_.empty());
  EXPECT_EQ(ErrorIn(link.listener_.TakeOutput())->code, StatusCode::kPermissionDenied);
}

// Streaming | Ack of the oldest unacked batch | window slot freed → Pump | Streaming
TEST(SessionTransitionTest, StreamingOnAckOfTheOldestFreesASlotAndPumps) {
  Link link({.window = 2, .batch_records = 1});
  link.a_.Commit(5);
  link.Handshake(Direction::kPush);
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  EXPECT_EQ(CountOf<ChangeBatch>(Decoded(link.dialer_.TakeOutput())), 2u);
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  EXPECT_TRUE(link.dialer_.TakeOutput().empty()) << "the window is full";
  ASSERT_TRUE(
      link.dialer_.Receive(EncodeFrame(Ack{.batch_id = 1, .cursor = {111, 1}}), link.now_).ok());
  EXPECT_EQ(link.dialer_.acked(), (Cursor{111, 1}));
  const std::vector<ChangeBatch> next = BatchesIn(Decoded(link.dialer_.TakeOutput()));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id, 3u);
  EXPECT_EQ(next[0].end, (Cursor{111, 3}));
}

// Streaming | Ack of anything else | Error{invalid_argument} | Closed
TEST(SessionTransitionTest, StreamingOnAckOfAnythingElseIsInvalidArgument) {
  const std::vector<Ack> wrong = {
      {.batch_id = 2, .cursor = {111, 2}},  // not the oldest
      {.batch_id = 1, .cursor = {111, 2}},  // the oldest, claiming another cursor
      {.batch_id = 9, .cursor = {111, 9}},  // never sent
  };
  for (const Ack& ack : wrong) {
    Link link({.window = 2, .batch_records = 1});
    link.a_.Commit(5);
    link.Handshake(Direction::kPush);
    ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
    (void)link.dialer_.TakeOutput();
    EXPECT_EQ(link.dialer_.Receive(EncodeFrame(ack), link.now_).code(),
              StatusCode::kInvalidArgument)
        << ack.batch_id;
    EXPECT_EQ(ErrorIn(link.dialer_.TakeOutput())->code, StatusCode::kInvalidArgument);
  }
  Link idle;
  idle.Handshake();
  EXPECT_EQ(idle.dialer_.Receive(EncodeFrame(Ack{.batch_id = 1}), idle.now_).code(),
            StatusCode::kInvalidArgument)
      << "nothing was sent";
}

// Streaming | Ping | Pong | Streaming
TEST(SessionTransitionTest, StreamingOnPingSendsPong) {
  Link link;
  link.Handshake();
  ASSERT_TRUE(link.listener_.Receive(EncodeFrame(Ping{.nonce = 99}), link.now_).ok());
  EXPECT_EQ(Decoded(link.listener_.TakeOutput()), std::vector<Message>{Pong{.nonce = 99}});
  EXPECT_EQ(link.listener_.state(), State::kStreaming);
}

// Streaming | Pong | (liveness only) | Streaming
TEST(SessionTransitionTest, StreamingOnPongOnlyProvesLiveness) {
  Link link({.dead_after_ms = 1'000});
  link.Handshake();
  link.now_ += 900;
  ASSERT_TRUE(link.dialer_.Receive(EncodeFrame(Pong{.nonce = 1}), link.now_).ok());
  EXPECT_TRUE(link.dialer_.TakeOutput().empty());
  EXPECT_TRUE(link.dialer_.Pump(kStart + 1'500).ok()) << "the Pong counted as hearing the peer";
  EXPECT_EQ(link.dialer_.state(), State::kStreaming);
}

// Streaming | Pump, we send, window not full | handler.ReadChanges → batch | Streaming
TEST(SessionTransitionTest, StreamingOnPumpWithRoomInTheWindowSendsABatch) {
  Link link({.window = 2, .batch_records = 10});
  link.a_.Commit(25);
  link.Handshake();
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  const std::vector<ChangeBatch> batches = BatchesIn(Decoded(link.dialer_.TakeOutput()));
  ASSERT_EQ(batches.size(), 2u) << "the window holds two";
  EXPECT_EQ(batches[0].changes.size(), 10u);
  EXPECT_EQ(batches[1].end, (Cursor{111, 20}));
  EXPECT_FALSE(batches[1].caught_up);
  EXPECT_FALSE(link.dialer_.idle());
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  EXPECT_TRUE(link.dialer_.TakeOutput().empty()) << "the window is full";
}

// Streaming | Pump, nothing new, not yet said so | empty batch, caught_up | Streaming
TEST(SessionTransitionTest, StreamingOnPumpWithNothingNewSaysCaughtUpOnce) {
  Link link({.window = 4, .batch_records = 10});
  link.a_.Commit(25);
  link.Handshake(Direction::kPush);
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  const std::vector<ChangeBatch> batches = BatchesIn(Decoded(link.dialer_.TakeOutput()));
  ASSERT_EQ(batches.size(), 4u);  // 10 + 10 + 5, then an empty one
  EXPECT_EQ(batches[2].end, link.a_.End());
  EXPECT_FALSE(batches[2].caught_up);
  EXPECT_TRUE(batches[3].changes.empty());
  EXPECT_TRUE(batches[3].caught_up);
  EXPECT_EQ(batches[3].end, link.a_.End());
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  EXPECT_TRUE(link.dialer_.TakeOutput().empty()) << "caught up is said once";
  EXPECT_FALSE(link.dialer_.synced()) << "not acknowledged yet";
  for (const ChangeBatch& batch : batches) {
    ASSERT_TRUE(link.listener_.Receive(EncodeFrame(batch), link.now_).ok());
  }
  link.Exchange();
  EXPECT_TRUE(link.dialer_.synced());
  EXPECT_TRUE(link.listener_.synced());
  // A new change is sent, and caught up is said again after it.
  link.a_.Commit(1);
  link.Sync();
  const std::vector<ChangeBatch> all = BatchesIn(link.to_listener_);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].changes.size(), 1u);
  EXPECT_TRUE(all[1].caught_up);
  EXPECT_EQ(link.b_.received_, link.a_.log_);
}

// any open | Error from the peer | close with the peer's status | Closed
TEST(SessionTransitionTest, AnyOpenOnErrorFromPeerClosesWithItsStatus) {
  FakeNode b(2, 222);
  Session listener(Role::kListener, b, {}, kStart);
  const Status status = listener.Receive(
      EncodeFrame(ErrorMessage{StatusCode::kResourceExhausted, "disk full"}), kStart);
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(listener.close_status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(listener.close_status().message().find("disk full"), std::string::npos);
  EXPECT_TRUE(listener.TakeOutput().empty()) << "an Error is not answered";

  Link link;
  link.Handshake();
  EXPECT_EQ(
      link.dialer_.Receive(EncodeFrame(ErrorMessage{StatusCode::kAborted, "restart"}), link.now_)
          .code(),
      StatusCode::kAborted);
}

// any open | Goodbye | close, ok | Closed
TEST(SessionTransitionTest, AnyOpenOnGoodbyeClosesCleanly) {
  Link link;
  link.a_.Commit(5);
  link.Handshake();
  link.Sync();
  link.dialer_.Close(Status::Ok());
  link.Exchange();
  EXPECT_TRUE(link.listener_.closed());
  EXPECT_TRUE(link.listener_.close_status().ok());
  EXPECT_TRUE(link.dialer_.close_status().ok());
  EXPECT_EQ(CountOf<Goodbye>(link.to_listener_), 1u);

  FakeNode b(2, 222);
  Session listener(Role::kListener, b, {}, kStart);
  EXPECT_TRUE(listener.Receive(EncodeFrame(Goodbye{"changed my mind"}), kStart).ok());
  EXPECT_TRUE(listener.closed());
}

// any open | malformed bytes | Error{data_loss} | Closed
TEST(SessionTransitionTest, AnyOpenOnMalformedBytesSendsDataLoss) {
  const std::string garbage = std::string("\0\0\0\x0c", 4) + std::string(12, '\xff');
  FakeNode b(2, 222);
  Session listener(Role::kListener, b, {}, kStart);
  EXPECT_EQ(listener.Receive(garbage, kStart).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ErrorIn(listener.TakeOutput())->code, StatusCode::kDataLoss);

  Link link;
  link.Handshake();
  EXPECT_EQ(link.dialer_.Receive(garbage, link.now_).code(), StatusCode::kDataLoss);
  link.Exchange();
  EXPECT_EQ(link.listener_.close_status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(link.to_listener_.back(),
            Message(ErrorMessage{StatusCode::kDataLoss, "frame is not a valid protocol message"}));
}

// any open | handler.Apply/ReadChanges fails | Error{its code} | Closed
TEST(SessionTransitionTest, AnyOpenWhenApplyOrReadChangesFailsSendsItsCode) {
  Link link;
  link.a_.Commit(3);
  link.b_.apply_status_ = Aborted("serialization failure");
  link.Handshake();
  link.Sync();
  EXPECT_EQ(link.listener_.close_status().code(), StatusCode::kAborted);
  EXPECT_EQ(link.dialer_.close_status().code(), StatusCode::kAborted);
  ASSERT_EQ(CountOf<ErrorMessage>(link.to_dialer_), 1u);

  Link reading;
  reading.a_.read_status_ = Internal("change log is unreadable");
  reading.Handshake();
  EXPECT_EQ(reading.dialer_.Pump(reading.now_).code(), StatusCode::kInternal);
  EXPECT_EQ(ErrorIn(reading.dialer_.TakeOutput())->code, StatusCode::kInternal);
}

// any open | nothing received for dead_after | Error{unavailable} | Closed
TEST(SessionTransitionTest, AnyOpenWhenNothingReceivedForDeadAfterIsUnavailable) {
  Link link({.heartbeat_ms = 100, .dead_after_ms = 1'000});
  link.Handshake();
  link.Sync();
  ASSERT_TRUE(link.dialer_.Pump(link.now_ + 999).ok());
  EXPECT_EQ(link.dialer_.Pump(link.now_ + 1'000).code(), StatusCode::kUnavailable);
  EXPECT_EQ(ErrorIn(link.dialer_.TakeOutput())->code, StatusCode::kUnavailable);
}

// Streaming | nothing sent for heartbeat | Ping | Streaming
TEST(SessionTransitionTest, StreamingWhenNothingSentForHeartbeatPings) {
  Link link({.heartbeat_ms = 100, .dead_after_ms = 1'000});
  link.Handshake();
  link.Sync();
  ASSERT_TRUE(link.dialer_.Pump(link.now_ + 99).ok());
  EXPECT_TRUE(link.dialer_.TakeOutput().empty());
  ASSERT_TRUE(link.dialer_.Pump(link.now_ + 100).ok());
  EXPECT_EQ(Decoded(link.dialer_.TakeOutput()), std::vector<Message>{Ping{.nonce = 1}});
  ASSERT_TRUE(link.dialer_.Pump(link.now_ + 150).ok());
  EXPECT_TRUE(link.dialer_.TakeOutput().empty()) << "the Ping counts as sending";
}

}  // namespace
}  // namespace lockstep::protocol

namespace lockstep::protocol {
namespace {

// The position of the first message of type T in `messages`, or its size.
template <typename T>
size_t FirstOf(const std::vector<Message>& messages) {
  return static_cast<size_t>(
      std::find_if(messages.begin(), messages.end(),
                   [](const Message& m) { return std::holds_alternative<T>(m); }) -
      messages.begin());
}

// AwaitWelcome | Welcome with reconcile | StartReconcile → steps; no batch until it ends
TEST(SessionTransitionTest, ReconciliationRunsBeforeAnyBatchEitherWay) {
  Link link({.window = 2, .batch_records = 5});
  link.a_.Commit(12);
  link.b_.Commit(9);
  link.a_.reconcile_rounds_ = link.b_.reconcile_rounds_ = 3;
  link.Handshake();
  link.Sync();

  // Dialer: q1, q2, q3, then the closing step marked last; listener: a1, a2, a3.
  ASSERT_EQ(link.b_.steps_.size(), 4u);
  EXPECT_EQ(link.b_.steps_.back(), (Reconcile{"stock", "", true}));
  ASSERT_EQ(link.a_.steps_.size(), 3u);
  EXPECT_EQ(link.a_.steps_[2].step, "a3");
  const size_t last_step =
      static_cast<size_t>(std::find(link.to_listener_.begin(), link.to_listener_.end(),
                                    Message(Reconcile{"stock", "", true})) -
                          link.to_listener_.begin());
  ASSERT_LT(last_step, link.to_listener_.size());
  EXPECT_GT(FirstOf<ChangeBatch>(link.to_listener_), last_step)
      << "the dialer sent a batch before the reconciliation ended";
  EXPECT_GT(FirstOf<ChangeBatch>(link.to_dialer_), FirstOf<Reconcile>(link.to_dialer_))
      << "the listener sent a batch before answering the reconciliation";
  // And then both logs stream as usual.
  EXPECT_EQ(link.b_.received_.size(), 12u);
  EXPECT_EQ(link.a_.received_.size(), 9u);
  EXPECT_TRUE(link.dialer_.synced());
  EXPECT_TRUE(link.listener_.synced());
}

TEST(SessionTransitionTest, ListenerSendsNoBatchWhileWaitingForTheReconciliation) {
  Link link;
  link.b_.Commit(3);
  link.b_.reconcile_rounds_ = 1;
  ASSERT_TRUE(link.listener_.Receive(EncodeFrame(link.MakeHello()), link.now_).ok());
  ASSERT_TRUE(link.listener_.Pump(link.now_).ok());
  const std::vector<Message> sent = Decoded(link.listener_.TakeOutput());
  EXPECT_EQ(CountOf<Welcome>(sent), 1u);
  EXPECT_EQ(CountOf<ChangeBatch>(sent), 0u);
  EXPECT_FALSE(link.listener_.synced());
}

// Streaming | Reconcile, not reconciling | Error{invalid_argument} | Closed
TEST(SessionTransitionTest, StreamingOnReconcileWhenNotReconcilingIsInvalidArgument) {
  Link link;
  link.Handshake();
  const Status status =
      link.listener_.Receive(EncodeFrame(Reconcile{"stock", "q1", false}), link.now_);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(link.listener_.closed());
}

TEST(SessionTransitionTest, DialerRefusesAListenerThatEndsTheReconciliation) {
  Link link;
  link.b_.reconcile_rounds_ = 2;
  link.dialer_.Start(link.MakeHello());
  ASSERT_TRUE(link.listener_.Receive(link.dialer_.TakeOutput(), link.now_).ok());
  ASSERT_TRUE(link.dialer_.Receive(link.listener_.TakeOutput(), link.now_).ok());
  const Status status =
      link.dialer_.Receive(EncodeFrame(Reconcile{"stock", "a1", true}), link.now_);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
}

TEST(SessionTransitionTest, ReconcileStepTheHandlerCannotTakeClosesWithItsCode) {
  Link link;
  link.b_.reconcile_rounds_ = 1;
  link.dialer_.Start(link.MakeHello());
  ASSERT_TRUE(link.listener_.Receive(link.dialer_.TakeOutput(), link.now_).ok());
  const Status status =
      link.listener_.Receive(EncodeFrame(Reconcile{"stock", "zz", false}), link.now_);
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(link.listener_.closed());
}

// One batch per pump (what the transport runs with): each batch can be written before the
// next is read, and the caller pumps again while more_to_send().
TEST(SessionTest, OneBatchPerPumpSendsOneBatchAtATime) {
  Link link({.window = 4, .batch_records = 10, .batches_per_pump = 1});
  link.a_.Commit(25);
  link.Handshake(Direction::kPush);
  std::vector<ChangeBatch> sent;
  for (int pump = 0; pump < 3; ++pump) {
    ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
    const std::vector<ChangeBatch> batches = BatchesIn(Decoded(link.dialer_.TakeOutput()));
    ASSERT_EQ(batches.size(), 1u) << "pump " << pump;
    EXPECT_TRUE(link.dialer_.more_to_send()) << "pump " << pump;
    sent.push_back(batches[0]);
  }
  EXPECT_EQ(sent[0].changes.size(), 10u);
  EXPECT_EQ(sent[2].changes.size(), 5u);
  EXPECT_EQ(sent[2].end, link.a_.End());
  // The fourth pump finds nothing new and says so, which ends the run.
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  const std::vector<ChangeBatch> last = BatchesIn(Decoded(link.dialer_.TakeOutput()));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_TRUE(last[0].caught_up);
  EXPECT_FALSE(link.dialer_.more_to_send());
  for (const ChangeBatch& batch : sent) {
    ASSERT_TRUE(link.listener_.Receive(EncodeFrame(batch), link.now_).ok());
  }
  ASSERT_TRUE(link.listener_.Receive(EncodeFrame(last[0]), link.now_).ok());
  EXPECT_EQ(link.b_.received_.size(), 25u);
}

TEST(SessionTest, OneBatchPerPumpLeavesPumpingAfterAnAckToTheCaller) {
  Link link({.window = 2, .batch_records = 1, .batches_per_pump = 1});
  link.a_.Commit(5);
  link.Handshake(Direction::kPush);
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  ASSERT_TRUE(link.dialer_.more_to_send());
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  EXPECT_EQ(CountOf<ChangeBatch>(Decoded(link.dialer_.TakeOutput())), 2u);
  EXPECT_FALSE(link.dialer_.more_to_send()) << "the window is full";
  ASSERT_TRUE(
      link.dialer_.Receive(EncodeFrame(Ack{.batch_id = 1, .cursor = {111, 1}}), link.now_).ok());
  EXPECT_TRUE(link.dialer_.TakeOutput().empty()) << "an ack frees a slot and reads nothing";
  ASSERT_TRUE(link.dialer_.Pump(link.now_).ok());
  const std::vector<ChangeBatch> next = BatchesIn(Decoded(link.dialer_.TakeOutput()));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].id, 3u);
  EXPECT_EQ(next[0].end, (Cursor{111, 3}));
}

TEST(SessionTest, OneBatchPerPumpSyncsBothWaysWhenTheCallerPumpsUntilQuiet) {
  Link link({.window = 3, .batch_records = 7, .batches_per_pump = 1});
  link.a_.Commit(40);
  link.b_.Commit(30);
  link.Handshake();
  // What the transport does: pump after every input and while there is more to send.
  for (int round = 0; round < 1'000 && !(link.dialer_.synced() && link.listener_.synced());
       ++round) {
    (void)link.dialer_.Pump(link.now_);
    (void)link.listener_.Pump(link.now_);
    link.Exchange();
  }
  EXPECT_TRUE(link.dialer_.synced());
  EXPECT_TRUE(link.listener_.synced());
  EXPECT_EQ(link.b_.received_, link.a_.log_);
  EXPECT_EQ(link.a_.received_, link.b_.log_);
  EXPECT_LE(link.max_dialer_in_flight_, 3u);
}

// A batch that only moves the cursor past the peer's own records, read to the end of the log,
// is the caught-up batch: no empty one follows it.
TEST(SessionTest, AnEchoOnlyBatchAtTheLogsEndSaysCaughtUp) {
  Link link({.window = 4, .batch_records = 10});
  link.a_.Commit(3);
  link.Handshake(Direction::kPush);
  link.Sync();
  ASSERT_TRUE(link.dialer_.synced());
  const size_t before = BatchesIn(link.to_listener_).size();
  link.a_.CommitEchoes(4);
  link.Sync();
  const std::vector<ChangeBatch> batches = BatchesIn(link.to_listener_);
  ASSERT_EQ(batches.size(), before + 1) << "one batch, no empty one after it";
  EXPECT_TRUE(batches.back().changes.empty());
  EXPECT_TRUE(batches.back().caught_up);
  EXPECT_EQ(batches.back().end, link.a_.End());
  EXPECT_EQ(link.b_.merged_, link.a_.End());
  EXPECT_TRUE(link.dialer_.synced());
  EXPECT_TRUE(link.listener_.synced());
}

// The mark is only taken from a batch without records: one with records is never the last word.
TEST(SessionTest, AHandlersCaughtUpMarkOnABatchWithRecordsIsNotTaken) {
  Link link({.window = 4, .batch_records = 10});
  link.a_.Commit(3);
  link.a_.mark_with_records_ = true;  // the first read carries 3 records and reaches the end
  link.Handshake(Direction::kPush);
  link.Sync();
  const std::vector<ChangeBatch> batches = BatchesIn(link.to_listener_);
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].changes.size(), 3u);
  EXPECT_FALSE(batches[0].caught_up);
  EXPECT_TRUE(batches[1].changes.empty());
  EXPECT_TRUE(batches[1].caught_up);
  EXPECT_TRUE(link.dialer_.synced());
}

}  // namespace
}  // namespace lockstep::protocol
