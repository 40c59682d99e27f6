// The transport's pacing of a live session, in process on loopback: a real listener (net::Server)
// and dialer (net::SyncOnce) around handlers that stand for a slow source and a receiver that
// notes when each batch arrived. What it pins down: each batch goes on the wire as soon as it is
// read, not once the reads of the whole window are done (a PostgreSQL source stamps as it reads,
// tens of milliseconds a batch, and its first batch used to wait for three more).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/delta.h"
#include "core/local_write.h"
#include "net/transport.h"

namespace lockstep::integration {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBatches = 4;  // the default window
constexpr auto kReadTakes = std::chrono::milliseconds(300);
constexpr int64_t kEpoch = 7;

core::NodeId Node(uint8_t n) {
  core::NodeId id;
  id.bytes[0] = n;
  return id;
}

protocol::Change OneChange(uint64_t counter) {
  core::Record record("k" + std::to_string(counter));
  const core::LocalWrite write{{Node(1), counter},
                               core::Hlc::Make(counter, 0),
                               {{"qty", Value::Int(static_cast<int64_t>(counter))}}};
  EXPECT_TRUE(core::ApplyLocalWrite(record, write, core::MergePolicy()).has_value());
  return {"stock", core::MakeDelta(record, [](const std::string&) { return true; })};
}

// The dialer: a source whose every read takes kReadTakes and yields one record, kBatches times.
class SlowSource : public protocol::SessionHandler {
 public:
  Result<protocol::Welcome> Accept(const protocol::Hello&) override {
    return Internal("a dialer accepts nothing");
  }
  Status Welcomed(const protocol::Welcome&) override { return Status::Ok(); }
  Result<protocol::ChangeBatch> ReadChanges(const protocol::Cursor& after, size_t) override {
    protocol::ChangeBatch batch;
    batch.end = after;
    if (read_ends_.size() == kBatches) return batch;  // nothing new
    std::this_thread::sleep_for(kReadTakes);
    batch.changes.push_back(OneChange(read_ends_.size() + 1));
    batch.end = {kEpoch, read_ends_.size() + 1};
    read_ends_.push_back(Clock::now());
    return batch;
  }
  Status Apply(const protocol::ChangeBatch&) override { return Status::Ok(); }

  std::vector<Clock::time_point> read_ends_;  // when each read returned
};

// When each batch with records arrived at the listener, shared by the sessions it serves.
struct Arrivals {
  std::mutex mu;
  std::vector<Clock::time_point> times;
};

class Recorder : public protocol::SessionHandler {
 public:
  explicit Recorder(Arrivals& arrivals) : arrivals_(arrivals) {}
  Result<protocol::Welcome> Accept(const protocol::Hello& hello) override {
    protocol::Welcome welcome;
    welcome.node = Node(2);
    welcome.collections = hello.collections;
    welcome.direction = hello.direction;
    return welcome;
  }
  Status Welcomed(const protocol::Welcome&) override { return Internal("a listener dials not"); }
  Result<protocol::ChangeBatch> ReadChanges(const protocol::Cursor& after, size_t) override {
    protocol::ChangeBatch batch;
    batch.end = after;
    return batch;
  }
  Status Apply(const protocol::ChangeBatch& batch) override {
    if (batch.changes.empty()) return Status::Ok();
    std::lock_guard lock(arrivals_.mu);
    arrivals_.times.push_back(Clock::now());
    return Status::Ok();
  }

 private:
  Arrivals& arrivals_;
};

TEST(NetworkPipeliningTest, EachBatchLeavesAsSoonAsItIsRead) {
  Arrivals arrivals;
  net::Server::Options options;
  options.listen = {"127.0.0.1", 0};
  options.tls.plaintext = true;
  auto server = net::Server::Listen(options, [&]() -> std::unique_ptr<protocol::SessionHandler> {
    return std::make_unique<Recorder>(arrivals);
  });
  ASSERT_TRUE(server.has_value()) << server.error().ToString();
  std::thread serving([&] { (void)(*server)->Run(); });

  SlowSource source;
  net::DialOptions dial;
  dial.target = {"127.0.0.1", (*server)->port()};
  dial.tls.plaintext = true;
  protocol::Hello hello;
  hello.node = Node(1);
  hello.collections = {"stock"};
  hello.direction = protocol::Direction::kPush;
  hello.epoch = kEpoch;
  const Status synced = net::SyncOnce(dial, source, hello);
  (*server)->Stop();
  serving.join();
  ASSERT_TRUE(synced.ok()) << synced.ToString();

  ASSERT_EQ(source.read_ends_.size(), static_cast<size_t>(kBatches));
  std::lock_guard lock(arrivals.mu);
  ASSERT_EQ(arrivals.times.size(), static_cast<size_t>(kBatches));
  // The first batch was applied at the listener while the source was still reading the third:
  // had the session read the whole window first, it would have left after the fourth read.
  // The margin is a whole read (300 ms) for one loopback write and an in-memory apply.
  EXPECT_LT(arrivals.times[0], source.read_ends_[2])
      << "first batch arrived "
      << std::chrono::duration_cast<std::chrono::milliseconds>(arrivals.times[0] -
                                                               source.read_ends_[0])
             .count()
      << " ms after it was read";
  for (int i = 0; i < kBatches; ++i) {
    EXPECT_GT(arrivals.times[i], source.read_ends_[i]) << "batch " << i;
  }
}

}  // namespace
}  // namespace lockstep::integration
