// libFuzzer target for the frame reader and the session state machine. Bytes from a peer are
// hostile: the reader must split them into messages or fail cleanly (and keep failing), every
// message it yields must survive a re-encode unchanged, and a session fed the same bytes, as
// listener or as dialer, must answer or close without crashing.
//
// The first byte sets the size of the chunks the rest arrives in, so frames split at every point.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/frame_codec.h"
#include "protocol/session.h"

namespace {

using lockstep::Result;
using lockstep::Status;
using lockstep::protocol::ChangeBatch;
using lockstep::protocol::Cursor;
using lockstep::protocol::DecodeFramePayload;
using lockstep::protocol::EncodeFrame;
using lockstep::protocol::FrameReader;
using lockstep::protocol::Hello;
using lockstep::protocol::Message;
using lockstep::protocol::Session;
using lockstep::protocol::SessionHandler;
using lockstep::protocol::Welcome;

// Accepts everyone, has nothing to send, applies anything.
class TrivialHandler : public SessionHandler {
 public:
  Result<Welcome> Accept(const Hello& hello) override {
    Welcome welcome;
    welcome.collections = hello.collections;
    welcome.direction = hello.direction;
    return welcome;
  }
  Status Welcomed(const Welcome&) override { return Status::Ok(); }
  Result<ChangeBatch> ReadChanges(const Cursor& after, size_t) override {
    ChangeBatch batch;
    batch.end = after;
    return batch;
  }
  Status Apply(const ChangeBatch&) override { return Status::Ok(); }
};

void CheckReEncodes(const Message& message) {
  const std::string frame = EncodeFrame(message);
  auto again = DecodeFramePayload(std::string_view(frame).substr(4));
  if (!again.has_value() || !(*again == message)) std::abort();
}

void FeedReader(std::string_view input, size_t chunk) {
  FrameReader reader;
  for (size_t at = 0; at < input.size(); at += chunk) {
    reader.Append(input.substr(at, chunk));
    for (;;) {
      auto next = reader.Next();
      if (!next.has_value()) {
        auto again = reader.Next();  // an error is sticky
        if (again.has_value() || !(again.error() == next.error())) std::abort();
        return;
      }
      if (!next->has_value()) break;
      CheckReEncodes(**next);
    }
    if (reader.buffered() > lockstep::protocol::kMaxFrameBytes + 4 + chunk) std::abort();
  }
}

void FeedSession(Session& session, std::string_view input, size_t chunk) {
  int64_t now = 0;
  for (size_t at = 0; at < input.size() && !session.closed(); at += chunk) {
    now += 10;
    (void)session.Receive(input.substr(at, chunk), now);
    (void)session.Pump(now);
    (void)session.TakeOutput();
  }
  (void)session.Pump(now + 1'000'000);  // dead by now
  if (!session.closed()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  FeedReader(input, chunk);

  const Session::Options options{
      .window = 2, .batch_records = 8, .heartbeat_ms = 50, .dead_after_ms = 200};
  TrivialHandler handler;
  Session listener(Session::Role::kListener, handler, options, 0);
  FeedSession(listener, input, chunk);
  Session dialer(Session::Role::kDialer, handler, options, 0);
  dialer.Start(Hello{});
  FeedSession(dialer, input, chunk);
  return 0;
}
