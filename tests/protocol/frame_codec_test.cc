#include "protocol/frame_codec.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "core/codec.h"
#include "core/delta.h"
#include "core/local_write.h"
#include "protocol/lockstep.pb.h"

namespace lockstep::protocol {
namespace {

core::NodeId Node(uint8_t n) {
  core::NodeId id;
  id.bytes[0] = static_cast<uint8_t>(0xa0 + n);
  id.bytes[15] = n;
  return id;
}

// Applies `node`'s write number `counter` to `record`; a delete when !exists.
void Write(core::Record& record, uint8_t node, uint64_t counter,
           std::vector<std::pair<std::string, Value>> fields, bool exists = true) {
  const core::LocalWrite write{
      {Node(node), counter}, core::Hlc::Make(1000 + counter, 0), std::move(fields), exists};
  ASSERT_TRUE(core::ApplyLocalWrite(record, write, core::MergePolicy()).has_value());
}

// A record made by one write of `node`.
core::Record Written(std::string key, uint8_t node, uint64_t counter,
                     std::vector<std::pair<std::string, Value>> fields) {
  core::Record record(std::move(key));
  Write(record, node, counter, std::move(fields));
  return record;
}

core::RecordDelta Whole(const core::Record& record) {
  return core::MakeDelta(record, [](const std::string&) { return true; });
}

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 random(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

// A batch over three collections: whole records, a delta with a non-empty base, a tombstone and
// a record holding a 1 MiB blob.
ChangeBatch RichBatch() {
  core::Record customer = Written("customer/1", 1, 1,
                                  {{"name", Value::Text("Ada")},
                                   {"email", Value::Text("ada@example.com")},
                                   {"score", Value::Float(2.5)}});
  Write(customer, 2, 1, {{"email", Value::Text("ada@lovelace.org")}});
  const core::RecordDelta email_only =
      core::MakeDelta(customer, [](const std::string& name) { return name == "email"; });
  EXPECT_FALSE(email_only.base.empty());

  core::Record tombstone = Written("stock/9", 1, 2, {{"qty", Value::Int(-4)}});
  Write(tombstone, 1, 3, {}, /*exists=*/false);

  const core::Record photo =
      Written("photo/7", 3, 1,
              {{"data", Value::Bytes(RandomBytes(1 << 20, 7))}, {"caption", Value::Null()}});
  return ChangeBatch{
      .id = 42,
      .end = {.epoch = 9, .seq = 1234},
      .changes = {{"customers", Whole(customer)},
                  {"customers", email_only},
                  {"stock", Whole(tombstone)},
                  {"photos", Whole(photo)}},
  };
}

// One message of every type, with every field set away from its default.
std::vector<Message> EveryMessage() {
  const Schema schema{"stock",
                      "CREATE TABLE stock (sku TEXT PRIMARY KEY, qty INTEGER, price TEXT)",
                      "qty=counter",
                      {{"qty", "integer"}, {"price", "numeric(12,2)"}}};
  return {
      Hello{.protocol_version = kProtocolVersion,
            .node = Node(1),
            .token = "s3cret",
            .collections = {"customers", "stock"},
            .direction = Direction::kPull,
            .cursor = {.epoch = -3, .seq = 77},
            .features = 0b101,
            .schemas = {schema},
            .epoch = -9,
            .highest_dot_of_peer = 12345,
            .holds_records = true},
      Welcome{.protocol_version = kProtocolVersion,
              .node = Node(2),
              .collections = {"stock"},
              .cursor = {.epoch = 5, .seq = 1},
              .features = 1,
              .schemas = {schema, schema},
              .direction = Direction::kPush,
              .epoch = 42,
              .highest_dot_of_peer = UINT64_MAX,
              .reconcile = true},
      ChangeBatch{
          .id = 3,
          .end = {.epoch = 5, .seq = 10},
          .changes = {{"stock", Whole(Written("stock/1", 1, 1, {{"qty", Value::Int(3)}}))}}},
      ChangeBatch{.id = 4, .end = {.epoch = 5, .seq = 11}, .changes = {}, .caught_up = true},
      Ack{.batch_id = 3, .cursor = {.epoch = 5, .seq = 10}},
      Ping{.nonce = UINT64_MAX},
      Pong{.nonce = 17},
      ErrorMessage{.code = StatusCode::kUnauthenticated, .message = "bad token"},
      ErrorMessage{.code = StatusCode::kDataLoss, .message = ""},
      Goodbye{.reason = "done"},
      Reconcile{.collection = "stock", .step = std::string("\0\x01\xff", 3), .last = true},
      Reconcile{.collection = "", .step = "", .last = false},
  };
}

// Everything `reader` yields until it needs more bytes; fails the test on an error.
void Drain(FrameReader& reader, std::vector<Message>& out) {
  for (;;) {
    auto next = reader.Next();
    ASSERT_TRUE(next.has_value()) << next.error().ToString();
    if (!next->has_value()) return;
    out.push_back(std::move(**next));
  }
}

// Feeds `stream` to a reader in chunks of the sizes `chunk` returns.
template <typename ChunkSize>
std::vector<Message> ReadInChunks(const std::string& stream, ChunkSize chunk) {
  FrameReader reader;
  std::vector<Message> out;
  for (size_t at = 0; at < stream.size();) {
    const size_t size = std::min(chunk(), stream.size() - at);
    reader.Append(std::string_view(stream).substr(at, size));
    at += size;
    Drain(reader, out);
  }
  EXPECT_EQ(reader.buffered(), 0u);
  return out;
}

std::string Concatenated(const std::vector<Message>& messages) {
  std::string stream;
  for (const Message& message : messages) stream += EncodeFrame(message);
  return stream;
}

// The first error `bytes` produce, or ok.
Status ErrorOf(std::string_view bytes) {
  FrameReader reader;
  reader.Append(bytes);
  for (;;) {
    auto next = reader.Next();
    if (!next.has_value()) return next.error();
    if (!next->has_value()) return Status::Ok();
  }
}

std::string Prefixed(const std::string& payload) {
  std::string frame;
  const auto size = static_cast<uint32_t>(payload.size());
  for (int shift = 24; shift >= 0; shift -= 8) frame.push_back(static_cast<char>(size >> shift));
  return frame + payload;
}

std::string FrameOf(const wire::Frame& frame) { return Prefixed(frame.SerializeAsString()); }

std::string Zstd(std::string_view plain) {
  std::string out(ZSTD_compressBound(plain.size()), '\0');
  const size_t size = ZSTD_compress(out.data(), out.size(), plain.data(), plain.size(), 1);
  EXPECT_FALSE(ZSTD_isError(size));
  out.resize(size);
  return out;
}

// The plain records section of a batch: collection then delta, each length-prefixed.
std::string PlainRecords(const std::vector<Change>& changes) {
  std::string plain;
  base::ByteWriter writer(plain);
  for (const Change& change : changes) {
    writer.PutLengthPrefixed(change.collection);
    writer.PutLengthPrefixed(core::EncodeDelta(change.delta));
  }
  return plain;
}

// A wire batch holding `plain` compressed, declaring `count` records and `size` bytes.
std::string BatchFrame(const std::string& plain, uint32_t count, uint64_t size) {
  wire::Frame frame;
  wire::ChangeBatch* batch = frame.mutable_batch();
  batch->set_batch_id(1);
  batch->set_record_count(count);
  batch->set_uncompressed_size(size);
  batch->set_records(Zstd(plain));
  return FrameOf(frame);
}

std::vector<Change> TwoChanges() {
  return {{"stock", Whole(Written("stock/1", 1, 1, {{"qty", Value::Int(1)}}))},
          {"stock", Whole(Written("stock/2", 1, 2, {{"qty", Value::Int(2)}}))}};
}

bool IsCleanError(const Status& status) {
  return status.code() == StatusCode::kDataLoss || status.code() == StatusCode::kResourceExhausted;
}

TEST(FrameCodecTest, EveryMessageTypeRoundTripsFedWhole) {
  const std::vector<Message> messages = EveryMessage();
  const std::string stream = Concatenated(messages);
  EXPECT_EQ(ReadInChunks(stream, [&] { return stream.size(); }), messages);
}

TEST(FrameCodecTest, EveryMessageTypeRoundTripsFedByteByByte) {
  const std::vector<Message> messages = EveryMessage();
  EXPECT_EQ(ReadInChunks(Concatenated(messages), [] { return size_t{1}; }), messages);
}

TEST(FrameCodecTest, EveryMessageTypeRoundTripsFedInRandomChunks) {
  const std::vector<Message> messages = EveryMessage();
  const std::string stream = Concatenated(messages);
  for (uint32_t seed = 0; seed < 50; ++seed) {
    std::mt19937 random(seed);
    std::uniform_int_distribution<size_t> size(1, 64);
    EXPECT_EQ(ReadInChunks(stream, [&] { return size(random); }), messages) << "seed " << seed;
  }
}

TEST(FrameCodecTest, EachFrameDecodesAlone) {
  for (const Message& message : EveryMessage()) {
    const std::string frame = EncodeFrame(message);
    auto decoded = DecodeFramePayload(std::string_view(frame).substr(4));
    ASSERT_TRUE(decoded.has_value()) << MessageName(message) << ": " << decoded.error().ToString();
    EXPECT_EQ(*decoded, message) << MessageName(message);
  }
}

TEST(FrameCodecTest, RichChangeBatchRoundTripsExactly) {
  const ChangeBatch batch = RichBatch();
  const std::string frame = EncodeFrame(batch);
  ASSERT_LE(frame.size(), kMaxFrameBytes + 4);
  EXPECT_EQ(ReadInChunks(frame, [&] { return frame.size(); }), std::vector<Message>{batch});
  std::mt19937 random(1);
  std::uniform_int_distribution<size_t> size(1, 100'000);
  EXPECT_EQ(ReadInChunks(frame, [&] { return size(random); }), std::vector<Message>{batch});
}

TEST(FrameCodecTest, RichChangeBatchRoundTripsFedByteByByte) {
  const ChangeBatch batch = RichBatch();
  EXPECT_EQ(ReadInChunks(EncodeFrame(batch), [] { return size_t{1}; }),
            std::vector<Message>{batch});
}

TEST(FrameCodecTest, ChangeBatchOfRepetitiveRecordsIsCompressed) {
  ChangeBatch batch{.id = 1, .end = {.epoch = 1, .seq = 500}, .changes = {}};
  for (uint64_t i = 1; i <= 500; ++i) {
    batch.changes.push_back(
        {"customers", Whole(Written("customer/" + std::to_string(i), 1, i,
                                    {{"country", Value::Text("United Kingdom")},
                                     {"status", Value::Text("active, in good standing")}}))});
  }
  const std::string plain = PlainRecords(batch.changes);
  const std::string frame = EncodeFrame(batch);
  EXPECT_LT(frame.size(), plain.size() / 3) << "plain " << plain.size();
  EXPECT_EQ(ReadInChunks(frame, [&] { return frame.size(); }), std::vector<Message>{batch});
}

TEST(FrameCodecTest, GarbageBytesAreAnError) {
  // A plausible length, then bytes that are no protobuf (a varint that never ends).
  EXPECT_EQ(ErrorOf(Prefixed(std::string(12, '\xff'))).code(), StatusCode::kDataLoss);
  // Text read as a length prefix is far over the limit.
  EXPECT_TRUE(IsCleanError(ErrorOf("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")));
}

TEST(FrameCodecTest, RandomBytesNeverCrash) {
  for (uint32_t seed = 0; seed < 2'000; ++seed) {
    std::string payload = RandomBytes(1 + seed % 200, seed);
    const Status status = ErrorOf(Prefixed(payload));
    EXPECT_TRUE(status.ok() || IsCleanError(status)) << status.ToString();
  }
}

TEST(FrameCodecTest, LengthPrefixOf4GiBIsRefusedBeforeAllocating) {
  FrameReader reader;
  reader.Append("\xff\xff\xff\xff");
  auto next = reader.Next();
  ASSERT_FALSE(next.has_value());
  EXPECT_EQ(next.error().code(), StatusCode::kResourceExhausted);
  EXPECT_LE(reader.buffered(), 4u);
}

TEST(FrameCodecTest, LengthPrefixJustOverTheLimitIsRefusedBeforeAllocating) {
  const uint32_t length = kMaxFrameBytes + 1;
  FrameReader reader;
  const char prefix[] = {static_cast<char>(length >> 24), static_cast<char>(length >> 16),
                         static_cast<char>(length >> 8), static_cast<char>(length)};
  reader.Append(std::string_view(prefix, 4));
  auto next = reader.Next();
  ASSERT_FALSE(next.has_value());
  EXPECT_EQ(next.error().code(), StatusCode::kResourceExhausted);
  EXPECT_LE(reader.buffered(), 4u);
}

TEST(FrameCodecTest, LengthPrefixAtTheLimitWaitsForTheFrame) {
  const uint32_t length = kMaxFrameBytes;
  const char prefix[] = {static_cast<char>(length >> 24), static_cast<char>(length >> 16),
                         static_cast<char>(length >> 8), static_cast<char>(length)};
  FrameReader reader;
  reader.Append(std::string_view(prefix, 4));
  auto next = reader.Next();
  ASSERT_TRUE(next.has_value()) << next.error().ToString();
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(reader.buffered(), 4u);
}

TEST(FrameCodecTest, ZeroLengthFrameIsDataLoss) {
  EXPECT_EQ(ErrorOf(std::string(4, '\0')).code(), StatusCode::kDataLoss);
}

TEST(FrameCodecTest, TruncatedFrameWaitsForMoreBytes) {
  const std::string frame = EncodeFrame(Ping{.nonce = 5});
  FrameReader reader;
  reader.Append(std::string_view(frame).substr(0, frame.size() - 1));
  for (int i = 0; i < 3; ++i) {
    auto next = reader.Next();
    ASSERT_TRUE(next.has_value()) << next.error().ToString();
    EXPECT_FALSE(next->has_value());
  }
  EXPECT_EQ(reader.buffered(), frame.size() - 1);
  reader.Append(std::string_view(frame).substr(frame.size() - 1));
  auto next = reader.Next();
  ASSERT_TRUE(next.has_value() && next->has_value());
  EXPECT_EQ(**next, Message(Ping{.nonce = 5}));
}

TEST(FrameCodecTest, TruncatedLengthPrefixWaitsForMoreBytes) {
  FrameReader reader;
  reader.Append(std::string_view("\0\0", 2));
  auto next = reader.Next();
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
}

TEST(FrameCodecTest, FrameWithNoBodyIsDataLoss) {
  // Field 15, a varint: a valid protobuf with no message this node knows.
  EXPECT_EQ(ErrorOf(Prefixed("\x78\x01")).code(), StatusCode::kDataLoss);
}

TEST(FrameCodecTest, NodeIdOf15BytesIsDataLoss) {
  wire::Frame hello;
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  hello.mutable_hello()->set_node_id(std::string(15, 'n'));
  EXPECT_EQ(ErrorOf(FrameOf(hello)).code(), StatusCode::kDataLoss);
  wire::Frame welcome;
  welcome.mutable_welcome()->set_node_id(std::string(17, 'n'));
  EXPECT_EQ(ErrorOf(FrameOf(welcome)).code(), StatusCode::kDataLoss);
}

TEST(FrameCodecTest, UnknownDirectionIsDataLoss) {
  wire::Frame frame;
  frame.mutable_hello()->set_node_id(std::string(16, 'n'));
  frame.mutable_hello()->set_direction(static_cast<wire::Direction>(7));
  EXPECT_EQ(ErrorOf(FrameOf(frame)).code(), StatusCode::kDataLoss);
}

TEST(FrameCodecTest, BatchDeclaringMoreThanTheLimitIsRefused) {
  EXPECT_EQ(ErrorOf(BatchFrame("", 0, kMaxBatchBytes + 1)).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorOf(BatchFrame("", kMaxBatchRecords + 1, 0)).code(),
            StatusCode::kResourceExhausted);
}

TEST(FrameCodecTest, BatchThatDecompressesToAnotherSizeIsDataLoss) {
  const std::string plain = PlainRecords(TwoChanges());
  EXPECT_EQ(ErrorOf(BatchFrame(plain, 2, plain.size() + 1)).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ErrorOf(BatchFrame(plain, 2, plain.size() - 1)).code(), StatusCode::kDataLoss);
  EXPECT_TRUE(ErrorOf(BatchFrame(plain, 2, plain.size())).ok());
}

TEST(FrameCodecTest, BatchWhoseRecordsAreNotZstdIsDataLoss) {
  wire::Frame frame;
  frame.mutable_batch()->set_record_count(1);
  frame.mutable_batch()->set_uncompressed_size(10);
  frame.mutable_batch()->set_records("not zstd at all");
  EXPECT_EQ(ErrorOf(FrameOf(frame)).code(), StatusCode::kDataLoss);
}

TEST(FrameCodecTest, BatchCountingMoreRecordsThanItHoldsIsDataLoss) {
  const std::string plain = PlainRecords(TwoChanges());
  EXPECT_EQ(ErrorOf(BatchFrame(plain, 3, plain.size())).code(), StatusCode::kDataLoss);
  // The most records a batch may declare, over no bytes at all.
  EXPECT_EQ(ErrorOf(BatchFrame("", kMaxBatchRecords, 0)).code(), StatusCode::kDataLoss);
}

TEST(FrameCodecTest, BatchWithBytesAfterItsLastRecordIsDataLoss) {
  const std::string plain = PlainRecords(TwoChanges());
  EXPECT_EQ(ErrorOf(BatchFrame(plain, 1, plain.size())).code(), StatusCode::kDataLoss);
  const std::string padded = plain + "x";
  EXPECT_EQ(ErrorOf(BatchFrame(padded, 2, padded.size())).code(), StatusCode::kDataLoss);
}

TEST(FrameCodecTest, BatchWithAMalformedRecordIsDataLoss) {
  std::string plain;
  base::ByteWriter writer(plain);
  writer.PutLengthPrefixed("stock");
  writer.PutLengthPrefixed("\x01garbage");
  EXPECT_EQ(ErrorOf(BatchFrame(plain, 1, plain.size())).code(), StatusCode::kDataLoss);
}

TEST(FrameCodecTest, UnknownErrorCodeMapsToInternal) {
  for (int code : {0, 13, 99, -1}) {
    wire::Frame frame;
    frame.mutable_error()->set_code(static_cast<wire::ErrorCode>(code));
    frame.mutable_error()->set_message("from the future");
    const std::string bytes = FrameOf(frame);
    auto decoded = DecodeFramePayload(std::string_view(bytes).substr(4));
    ASSERT_TRUE(decoded.has_value()) << code;
    EXPECT_EQ(*decoded, Message(ErrorMessage{StatusCode::kInternal, "from the future"})) << code;
  }
}

TEST(FrameCodecTest, ReaderKeepsReturningItsFirstError) {
  FrameReader reader;
  reader.Append(Prefixed(std::string(12, '\xff')));
  auto first = reader.Next();
  ASSERT_FALSE(first.has_value());
  reader.Append(EncodeFrame(Ping{.nonce = 1}));
  for (int i = 0; i < 3; ++i) {
    auto again = reader.Next();
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error(), first.error());
  }
}

TEST(FrameCodecTest, ReaderHoldsAtMostAboutOneFrame) {
  const std::string frame = EncodeFrame(Pong{.nonce = 3});
  FrameReader reader;
  std::vector<Message> out;
  for (int i = 0; i < 1'000; ++i) {
    reader.Append(frame);
    Drain(reader, out);
    EXPECT_EQ(reader.buffered(), 0u);
  }
  EXPECT_EQ(out.size(), 1'000u);
}

}  // namespace
}  // namespace lockstep::protocol
