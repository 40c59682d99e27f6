// Hostile bytes against a running hub: a plaintext `lockstep serve` on loopback, so that what a
// raw TCP socket sends reaches the frame reader unchanged. Whatever arrives, the hub answers with
// an Error frame where one helps, closes that connection, keeps its memory bounded and goes on
// serving real nodes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/lockstep.pb.h"
#include "support/hub.h"
#include "support/process.h"

namespace lockstep::integration {
namespace {

using lockstep::testing::Hub;
using lockstep::testing::ScratchDir;
using lockstep::testing::Sql;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kReplyLimit = seconds(10);
constexpr size_t kMaxFrameBytes = 16 << 20;          // the largest reply this client reads
constexpr size_t kMaxHandshakeFrameBytes = 4 << 20;  // the protocol's, before the handshake
// The hub's resident memory: under 100 MB in all, and growing by less than that under hostile
// input. AddressSanitizer alone takes about 100 MB, and keeps freed memory in quarantine, so a
// sanitized build checks the growth only.
constexpr int64_t kRssLimitKib = 100 << 10;
constexpr int64_t kRssGrowthLimitKib = 100 << 10;
// Refused prefixes cost nothing: less than the 40 MiB the test sends after them.
constexpr int64_t kPrefixGrowthLimitKib = 16 << 10;
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// The bytes of one frame: its length as 4 bytes big-endian, then `payload`.
std::string Framed(std::string_view payload) {
  const auto length = static_cast<uint32_t>(payload.size());
  std::string frame{static_cast<char>(length >> 24), static_cast<char>(length >> 16),
                    static_cast<char>(length >> 8), static_cast<char>(length)};
  return frame.append(payload);
}

std::string HelloFrame(uint32_t version, std::string node_id, const std::string& token) {
  wire::Frame frame;
  wire::Hello* hello = frame.mutable_hello();
  hello->set_protocol_version(version);
  hello->set_node_id(std::move(node_id));
  hello->set_token(token);
  hello->add_collections("t");
  return Framed(frame.SerializeAsString());
}

// A proper Hello for collection `evil`, offering its schema with `create_sql` and, when given,
// one column's logical type.
std::string HelloOfferingFrame(const std::string& token, const std::string& create_sql,
                               const std::string& logical_type = "") {
  wire::Frame frame;
  wire::Hello* hello = frame.mutable_hello();
  hello->set_protocol_version(1);
  hello->set_node_id(std::string(16, '\x66'));
  hello->set_token(token);
  hello->add_collections("evil");
  wire::Schema* schema = hello->add_schemas();
  schema->set_collection("evil");
  schema->set_create_sql(create_sql);
  if (!logical_type.empty()) {
    wire::ColumnType* type = schema->add_column_types();
    type->set_column("v");
    type->set_logical_type(logical_type);
  }
  return Framed(frame.SerializeAsString());
}

// A client socket to 127.0.0.1 speaking whatever bytes the test gives it.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return fd_ >= 0; }

  // Sends all of `bytes`; false once the hub has closed the connection.
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  void CloseWrite() { shutdown(fd_, SHUT_WR); }

  // The next frame from the hub; nullopt when it closes, sends something that is not a frame,
  // or sends nothing within `limit`.
  std::optional<wire::Frame> ReadFrame(SteadyClock::duration limit) {
    const auto deadline = SteadyClock::now() + limit;
    for (;;) {
      if (buffer_.size() >= 4) {
        const uint32_t length = (uint32_t{static_cast<uint8_t>(buffer_[0])} << 24) |
                                (uint32_t{static_cast<uint8_t>(buffer_[1])} << 16) |
                                (uint32_t{static_cast<uint8_t>(buffer_[2])} << 8) |
                                uint32_t{static_cast<uint8_t>(buffer_[3])};
        if (length > kMaxFrameBytes) return std::nullopt;
        if (buffer_.size() >= 4 + length) {
          wire::Frame frame;
          const bool parsed = frame.ParseFromArray(buffer_.data() + 4, static_cast<int>(length));
          buffer_.erase(0, 4 + length);
          if (!parsed) return std::nullopt;
          return frame;
        }
      }
      if (ReadSome(deadline) <= 0) return std::nullopt;
    }
  }

  // Whether the hub closes the connection within `limit` (anything it sends is dropped).
  bool ClosedWithin(SteadyClock::duration limit) {
    const auto deadline = SteadyClock::now() + limit;
    for (;;) {
      const ssize_t n = ReadSome(deadline);
      if (n == 0 || (n < 0 && errno != ETIMEDOUT)) return true;
      if (n < 0) return false;
      buffer_.clear();
    }
  }

 private:
  // Bytes appended to buffer_; 0 at end of stream; -1 with errno (ETIMEDOUT past `deadline`).
  ssize_t ReadSome(SteadyClock::time_point deadline) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - SteadyClock::now()).count();
    pollfd fd{fd_, POLLIN, 0};
    const int ready = poll(&fd, 1, static_cast<int>(std::max<int64_t>(0, left)));
    if (ready == 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    if (ready < 0) return -1;
    char chunk[65536];
    const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) buffer_.append(chunk, static_cast<size_t>(n));
    return n;
  }

  int fd_;
  std::string buffer_;
};

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = Hub::Start({.plaintext = true});
    ASSERT_NE(hub_, nullptr);
    token_ = hub_->CreateToken("*", "rw");
    Sql(node_, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one');");
    ExpectStillServes("before any hostile input");
  }

  // A real node writes a row and syncs it: the hub must take it, and hold what the node holds.
  void ExpectStillServes(const std::string& after) {
    ASSERT_TRUE(hub_->Running()) << "the hub died " << after << "\n" << hub_->Log();
    ++rows_;
    Sql(node_, "INSERT INTO t VALUES (" + std::to_string(100 + rows_) + ", 'after');");
    const auto result = hub_->Sync(node_, token_);
    EXPECT_EQ(result.exit_code, 0)
        << "sync " << after << "\nstdout: " << result.out << "\nstderr: " << result.err;
    const std::string dump = "SELECT id, v FROM t ORDER BY id;";
    EXPECT_EQ(Sql(hub_->db(), dump), Sql(node_, dump)) << after;
  }

  // Sends `bytes` on a new connection; expects an Error frame with `code` back, then the close.
  void ExpectErrorReply(const std::string& bytes, wire::ErrorCode code, const std::string& what) {
    RawConnection connection(hub_->port());
    ASSERT_TRUE(connection.connected()) << what;
    ASSERT_TRUE(connection.Send(bytes)) << what;
    const std::optional<wire::Frame> reply = connection.ReadFrame(kReplyLimit);
    ASSERT_TRUE(reply.has_value()) << what << ": no frame came back";
    ASSERT_TRUE(reply->has_error()) << what << ": the reply is not an Error";
    EXPECT_EQ(reply->error().code(), code)
        << what << ": " << wire::ErrorCode_Name(reply->error().code()) << " "
        << reply->error().message();
    EXPECT_TRUE(connection.ClosedWithin(kReplyLimit)) << what << ": the hub kept it open";
  }

  std::unique_ptr<Hub> hub_;
  std::string token_;
  ScratchDir dir_;
  std::filesystem::path node_ = dir_ / "node.db";
  int rows_ = 0;
};

TEST_F(HostileInputTest, GarbageGetsAnErrorFrameAndTheHubKeepsServing) {
  // A frame of 16 bytes that are no protobuf message.
  ExpectErrorReply(Framed(std::string(16, '\xff')), wire::DATA_LOSS, "16 bytes of 0xff");
  ExpectStillServes("after a frame of garbage");
  ExpectErrorReply(std::string(4, '\0'), wire::DATA_LOSS, "a frame of 0 bytes");
  ExpectStillServes("after an empty frame");
  // Another protocol altogether: its first 4 bytes read as a length of about 1.2 GB.
  ExpectErrorReply("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", wire::RESOURCE_EXHAUSTED,
                   "an HTTP request");
  ExpectStillServes("after an HTTP request");
  // A valid Hello but for a node id of 3 bytes.
  ExpectErrorReply(HelloFrame(1, "abc", token_), wire::DATA_LOSS, "a 3-byte node id");
  ExpectStillServes("after a malformed Hello");
  EXPECT_TRUE(hub_->WaitForLog("ended:", 4 + 5, milliseconds(10'000))) << hub_->Log();
}

TEST_F(HostileInputTest, FourGibLengthPrefixIsRefusedWithoutAllocating) {
  const std::optional<int64_t> before = hub_->RssKib();
  ASSERT_TRUE(before.has_value());
  ExpectErrorReply("\xff\xff\xff\xff", wire::RESOURCE_EXHAUSTED, "a 4 GiB length prefix");
  ExpectStillServes("after a 4 GiB length prefix");
  // Again, with megabytes following the prefix, and ten times over: nothing may pile up.
  const std::string tail(4 << 20, 'x');
  for (int i = 0; i < 10; ++i) {
    RawConnection connection(hub_->port());
    ASSERT_TRUE(connection.connected());
    (void)connection.Send("\xff\xff\xff\xff" + tail);  // the hub may hang up part way
    EXPECT_TRUE(connection.ClosedWithin(kReplyLimit)) << "attempt " << i;
  }
  ExpectStillServes("after eleven 4 GiB length prefixes");
  const std::optional<int64_t> after_prefixes = hub_->RssKib();
  ASSERT_TRUE(after_prefixes.has_value());
  // Before the handshake even a batch's size is refused: a peer that has shown no token may only
  // make the hub hold a handshake's worth.
  ExpectErrorReply(std::string{'\x04', '\x00', '\x00', '\x00'}, wire::RESOURCE_EXHAUSTED,
                   "a 64 MiB frame before the handshake");
  // The largest frame allowed then, announced and never finished: one frame's worth at most.
  {
    RawConnection connection(hub_->port());
    ASSERT_TRUE(connection.connected());
    const std::string length{'\x00', '\x40', '\x00', '\x00'};  // kMaxHandshakeFrameBytes
    ASSERT_TRUE(connection.Send(length + std::string(kMaxHandshakeFrameBytes - 1, '\0')));
    connection.CloseWrite();
    EXPECT_TRUE(connection.ClosedWithin(kReplyLimit));
  }
  ExpectStillServes("after an unfinished frame of the largest size");
  const std::optional<int64_t> after = hub_->RssKib();
  ASSERT_TRUE(after.has_value());
  std::cout << "hub VmRSS: " << *before << " KiB at first, " << *after_prefixes
            << " KiB after the 4 GiB prefixes, " << *after << " KiB after the largest frame\n";
  EXPECT_LT(*after_prefixes - *before, kPrefixGrowthLimitKib) << "after the 4 GiB prefixes";
  EXPECT_LT(*after - *before, kRssGrowthLimitKib) << "after the largest frame";
  if (!kSanitized) {
    EXPECT_LT(*after, kRssLimitKib);
  }
}

TEST_F(HostileInputTest, TruncatedFrameThenCloseLeavesTheHubServing) {
  {
    RawConnection connection(hub_->port());
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(connection.Send(std::string{'\0', '\0', '\x01', '\0'} + "only ten b"));
    connection.CloseWrite();
    EXPECT_TRUE(connection.ClosedWithin(kReplyLimit));
  }
  // Half a length prefix, then gone.
  {
    RawConnection connection(hub_->port());
    ASSERT_TRUE(connection.connected());
    ASSERT_TRUE(connection.Send(std::string{'\0', '\0'}));
  }
  EXPECT_TRUE(hub_->WaitForLog("ended: unavailable", 2, milliseconds(10'000))) << hub_->Log();
  ExpectStillServes("after truncated frames");
}

TEST_F(HostileInputTest, UnknownProtocolVersionGetsFailedPrecondition) {
  const std::string node_id(16, '\x42');
  ExpectErrorReply(HelloFrame(2, node_id, token_), wire::FAILED_PRECONDITION, "version 2");
  ExpectErrorReply(HelloFrame(0xffffffff, node_id, token_), wire::FAILED_PRECONDITION,
                   "version 2^32 - 1");
  ExpectErrorReply(HelloFrame(0, node_id, token_), wire::FAILED_PRECONDITION, "no version");
  ExpectStillServes("after Hellos of other versions");
  EXPECT_EQ(Sql(hub_->db(), "SELECT count(*) FROM t;"), std::to_string(1 + rows_) + "\n");
}

// A node's schema ends up in the hub's DDL: a CREATE statement that smuggles a second statement
// along, or a logical type that carries SQL, is refused and runs nothing.
TEST_F(HostileInputTest, SchemasThatCarrySqlAreRefusedAndRunNothing) {
  ExpectErrorReply(
      HelloOfferingFrame(token_, "CREATE TABLE evil(id INTEGER PRIMARY KEY, v TEXT); DROP TABLE t"),
      wire::INVALID_ARGUMENT, "a second statement");
  ExpectErrorReply(HelloOfferingFrame(token_, "CREATE TABLE evil(id INTEGER PRIMARY KEY, v TEXT)",
                                      "text); DROP TABLE t; --"),
                   wire::INVALID_ARGUMENT, "SQL in a logical type");
  EXPECT_EQ(Sql(hub_->db(), "SELECT count(*) FROM sqlite_master WHERE name = 'evil';"), "0\n");
  ExpectStillServes("after schemas carrying SQL");
  EXPECT_EQ(Sql(hub_->db(), "SELECT count(*) FROM t;"), std::to_string(1 + rows_) + "\n");
}

// The hub closes a connection that never speaks once its dead-peer timeout (20 s) has passed,
// and serves other nodes all the while.
TEST_F(HostileInputTest, SilentPeerIsClosedInTimeWhileOthersAreServed) {
  const auto opened = SteadyClock::now();
  RawConnection silent(hub_->port());
  ASSERT_TRUE(silent.connected());
  for (int i = 0; i < 3; ++i) ExpectStillServes("while a silent peer is connected");
  const std::optional<wire::Frame> reply =
      silent.ReadFrame(seconds(30) - (SteadyClock::now() - opened));
  const auto waited = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - opened);
  std::cout << "silent peer: hub replied or closed after " << waited.count() << " ms\n";
  ASSERT_TRUE(reply.has_value()) << "no Error frame within 30 s; the hub is "
                                 << (hub_->Running() ? "running" : "gone") << "\n"
                                 << hub_->Log();
  ASSERT_TRUE(reply->has_error());
  EXPECT_EQ(reply->error().code(), wire::UNAVAILABLE) << reply->error().message();
  EXPECT_TRUE(silent.ClosedWithin(kReplyLimit));
  EXPECT_GE(waited, seconds(15));
  ExpectStillServes("after the silent peer");
}

// A raw client that says Hello properly: the hub welcomes it and starts streaming.
std::unique_ptr<RawConnection> StreamingClient(const Hub& hub, const std::string& token) {
  auto client = std::make_unique<RawConnection>(hub.port());
  if (!client->connected() || !client->Send(HelloFrame(1, std::string(16, '\x17'), token))) {
    ADD_FAILURE() << "could not say hello";
    return nullptr;
  }
  const std::optional<wire::Frame> welcome = client->ReadFrame(kReplyLimit);
  if (!welcome.has_value() || !welcome->has_welcome()) {
    ADD_FAILURE() << "no Welcome came back";
    return nullptr;
  }
  return client;
}

TEST_F(HostileInputTest, SigtermStopsTheHubPromptlyWithASessionInFlight) {
  auto client = StreamingClient(*hub_, token_);
  ASSERT_NE(client, nullptr);
  const auto started = SteadyClock::now();
  EXPECT_EQ(hub_->Stop(), 0);
  EXPECT_LT(SteadyClock::now() - started, seconds(10));
  EXPECT_TRUE(client->ClosedWithin(kReplyLimit));
}

// Regression: Stop() once dropped sessions in flight without a Goodbye or a log line. A peer that
// never acknowledges (this one) still gets its Goodbye after the stop's grace for acks.
TEST_F(HostileInputTest, SigtermTellsSessionsInFlightGoodbye) {
  auto client = StreamingClient(*hub_, token_);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(hub_->Stop(), 0);
  bool goodbye = false;
  for (;;) {
    const std::optional<wire::Frame> frame = client->ReadFrame(kReplyLimit);
    if (!frame.has_value()) break;
    goodbye = goodbye || frame->has_goodbye();
  }
  EXPECT_TRUE(goodbye) << "the session was dropped without a Goodbye";
  EXPECT_TRUE(hub_->WaitForLog("ended: ", 2, milliseconds(1'000))) << hub_->Log();
}

}  // namespace
}  // namespace lockstep::integration
