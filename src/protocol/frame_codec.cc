#include "protocol/frame_codec.h"

#include <zstd.h>

#include <algorithm>

#include "base/bytes.h"
#include "core/codec.h"
#include "protocol/lockstep.pb.h"

namespace lockstep::protocol {
namespace {

constexpr size_t kLengthBytes = 4;
constexpr size_t kMaxCollectionName = 1024;
constexpr int kZstdLevel = 1;  // fast: batches are mostly small, and the wire is rarely the limit

std::string_view Raw(const core::NodeId& node) {
  return {reinterpret_cast<const char*>(node.bytes.data()), node.bytes.size()};
}

Result<core::NodeId> NodeFrom(const std::string& raw) {
  if (raw.size() != 16) return DataLoss("node id of " + std::to_string(raw.size()) + " bytes");
  return core::NodeId::FromBytes(raw);
}

wire::Direction ToWire(Direction direction) {
  switch (direction) {
    case Direction::kBoth:
      return wire::BOTH;
    case Direction::kPush:
      return wire::PUSH;
    case Direction::kPull:
      return wire::PULL;
  }
  return wire::BOTH;
}

Result<Direction> FromWire(wire::Direction direction) {
  switch (direction) {
    case wire::BOTH:
      return Direction::kBoth;
    case wire::PUSH:
      return Direction::kPush;
    case wire::PULL:
      return Direction::kPull;
    default:
      return DataLoss("unknown direction " + std::to_string(direction));
  }
}

void ToWire(const Cursor& cursor, wire::Cursor* out) {
  out->set_epoch(cursor.epoch);
  out->set_seq(cursor.seq);
}

Cursor FromWire(const wire::Cursor& cursor) { return {cursor.epoch(), cursor.seq()}; }

void ToWire(const std::vector<Schema>& schemas,
            google::protobuf::RepeatedPtrField<wire::Schema>* out) {
  for (const Schema& schema : schemas) {
    wire::Schema* s = out->Add();
    s->set_collection(schema.collection);
    s->set_create_sql(schema.create_sql);
    s->set_policy(schema.policy);
    for (const ColumnType& type : schema.column_types) {
      wire::ColumnType* t = s->add_column_types();
      t->set_column(type.column);
      t->set_logical_type(type.logical_type);
    }
  }
}

std::vector<Schema> FromWire(const google::protobuf::RepeatedPtrField<wire::Schema>& schemas) {
  std::vector<Schema> out;
  for (const wire::Schema& s : schemas) {
    Schema schema{s.collection(), s.create_sql(), s.policy(), {}};
    for (const wire::ColumnType& t : s.column_types()) {
      schema.column_types.push_back({t.column(), t.logical_type()});
    }
    out.push_back(std::move(schema));
  }
  return out;
}

// records := { collection:bytes delta:bytes }, each length-prefixed, then zstd.
void EncodeBatch(const ChangeBatch& batch, wire::ChangeBatch* out) {
  std::string plain;
  base::ByteWriter writer(plain);
  for (const Change& change : batch.changes) {
    writer.PutLengthPrefixed(change.collection);
    writer.PutLengthPrefixed(core::EncodeDelta(change.delta));
  }
  std::string compressed(ZSTD_compressBound(plain.size()), '\0');
  const size_t size =
      ZSTD_compress(compressed.data(), compressed.size(), plain.data(), plain.size(), kZstdLevel);
  compressed.resize(ZSTD_isError(size) ? 0 : size);  // cannot fail with a bound-sized buffer
  out->set_batch_id(batch.id);
  ToWire(batch.end, out->mutable_end());
  out->set_record_count(static_cast<uint32_t>(batch.changes.size()));
  out->set_uncompressed_size(plain.size());
  out->set_records(std::move(compressed));
  out->set_caught_up(batch.caught_up);
}

Result<ChangeBatch> DecodeBatch(const wire::ChangeBatch& in) {
  if (in.record_count() > kMaxBatchRecords) {
    return ResourceExhausted("batch of " + std::to_string(in.record_count()) + " records");
  }
  if (in.uncompressed_size() > kMaxBatchBytes) {
    return ResourceExhausted("batch of " + std::to_string(in.uncompressed_size()) + " bytes");
  }
  // The declared size bounds the allocation, and the zstd frame must declare the same size
  // before anything is allocated: a few hostile bytes cannot make us zero-fill 256 MiB.
  const unsigned long long content =
      ZSTD_getFrameContentSize(in.records().data(), in.records().size());
  if (content != in.uncompressed_size()) {
    return DataLoss("change batch does not declare its decompressed size consistently");
  }
  std::string plain(in.uncompressed_size(), '\0');
  const size_t size =
      ZSTD_decompress(plain.data(), plain.size(), in.records().data(), in.records().size());
  if (ZSTD_isError(size) || size != plain.size()) {
    return DataLoss("change batch does not decompress to its declared size");
  }
  ChangeBatch batch{in.batch_id(), FromWire(in.end()), {}, in.caught_up()};
  base::ByteReader reader(plain);
  // Each record takes at least two bytes: a count beyond that is refused by the loop below
  // without having reserved room for it.
  batch.changes.reserve(std::min<size_t>(in.record_count(), plain.size() / 2));
  for (uint32_t i = 0; i < in.record_count(); ++i) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::string_view collection,
                              reader.ReadLengthPrefixed("collection", kMaxCollectionName));
    LOCKSTEP_ASSIGN_OR_RETURN(std::string_view delta,
                              reader.ReadLengthPrefixed("record", core::kMaxValueBytes));
    LOCKSTEP_ASSIGN_OR_RETURN(core::RecordDelta decoded, core::DecodeDelta(delta));
    batch.changes.push_back({std::string(collection), std::move(decoded)});
  }
  if (!reader.empty()) return DataLoss("change batch has bytes after its last record");
  return batch;
}

wire::Frame ToFrame(const Message& message) {
  wire::Frame frame;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Hello>) {
          wire::Hello* h = frame.mutable_hello();
          h->set_protocol_version(m.protocol_version);
          h->set_node_id(std::string(Raw(m.node)));
          h->set_token(m.token);
          for (const std::string& c : m.collections) h->add_collections(c);
          h->set_direction(ToWire(m.direction));
          ToWire(m.cursor, h->mutable_cursor());
          h->set_features(m.features);
          ToWire(m.schemas, h->mutable_schemas());
          h->set_epoch(m.epoch);
          h->set_highest_dot_of_peer(m.highest_dot_of_peer);
          h->set_holds_records(m.holds_records);
        } else if constexpr (std::is_same_v<T, Welcome>) {
          wire::Welcome* w = frame.mutable_welcome();
          w->set_protocol_version(m.protocol_version);
          w->set_node_id(std::string(Raw(m.node)));
          for (const std::string& c : m.collections) w->add_collections(c);
          ToWire(m.cursor, w->mutable_cursor());
          w->set_features(m.features);
          ToWire(m.schemas, w->mutable_schemas());
          w->set_direction(ToWire(m.direction));
          w->set_epoch(m.epoch);
          w->set_highest_dot_of_peer(m.highest_dot_of_peer);
          w->set_reconcile(m.reconcile);
        } else if constexpr (std::is_same_v<T, ChangeBatch>) {
          EncodeBatch(m, frame.mutable_batch());
        } else if constexpr (std::is_same_v<T, Ack>) {
          frame.mutable_ack()->set_batch_id(m.batch_id);
          ToWire(m.cursor, frame.mutable_ack()->mutable_cursor());
        } else if constexpr (std::is_same_v<T, Ping>) {
          frame.mutable_ping()->set_nonce(m.nonce);
        } else if constexpr (std::is_same_v<T, Pong>) {
          frame.mutable_pong()->set_nonce(m.nonce);
        } else if constexpr (std::is_same_v<T, ErrorMessage>) {
          frame.mutable_error()->set_code(static_cast<wire::ErrorCode>(m.code));
          frame.mutable_error()->set_message(m.message);
        } else if constexpr (std::is_same_v<T, Reconcile>) {
          wire::Reconcile* r = frame.mutable_reconcile();
          r->set_collection(m.collection);
          r->set_step(m.step);
          r->set_last(m.last);
        } else {
          frame.mutable_goodbye()->set_reason(m.reason);
        }
      },
      message);
  return frame;
}

Result<Message> FromFrame(const wire::Frame& frame) {
  switch (frame.body_case()) {
    case wire::Frame::kHello: {
      const wire::Hello& h = frame.hello();
      Hello hello;
      hello.protocol_version = h.protocol_version();
      LOCKSTEP_ASSIGN_OR_RETURN(hello.node, NodeFrom(h.node_id()));
      hello.token = h.token();
      hello.collections.assign(h.collections().begin(), h.collections().end());
      LOCKSTEP_ASSIGN_OR_RETURN(hello.direction, FromWire(h.direction()));
      hello.cursor = FromWire(h.cursor());
      hello.features = h.features();
      hello.schemas = FromWire(h.schemas());
      hello.epoch = h.epoch();
      hello.highest_dot_of_peer = h.highest_dot_of_peer();
      hello.holds_records = h.holds_records();
      return Message(std::move(hello));
    }
    case wire::Frame::kWelcome: {
      const wire::Welcome& w = frame.welcome();
      Welcome welcome;
      welcome.protocol_version = w.protocol_version();
      LOCKSTEP_ASSIGN_OR_RETURN(welcome.node, NodeFrom(w.node_id()));
      welcome.collections.assign(w.collections().begin(), w.collections().end());
      welcome.cursor = FromWire(w.cursor());
      welcome.features = w.features();
      welcome.schemas = FromWire(w.schemas());
      LOCKSTEP_ASSIGN_OR_RETURN(welcome.direction, FromWire(w.direction()));
      welcome.epoch = w.epoch();
      welcome.highest_dot_of_peer = w.highest_dot_of_peer();
      welcome.reconcile = w.reconcile();
      return Message(std::move(welcome));
    }
    case wire::Frame::kBatch: {
      LOCKSTEP_ASSIGN_OR_RETURN(ChangeBatch batch, DecodeBatch(frame.batch()));
      return Message(std::move(batch));
    }
    case wire::Frame::kAck:
      return Message(Ack{frame.ack().batch_id(), FromWire(frame.ack().cursor())});
    case wire::Frame::kPing:
      return Message(Ping{frame.ping().nonce()});
    case wire::Frame::kPong:
      return Message(Pong{frame.pong().nonce()});
    case wire::Frame::kError: {
      const int code = frame.error().code();
      // A code this node does not know keeps its meaning as well as it can: internal.
      const bool known = code > 0 && code <= static_cast<int>(StatusCode::kInternal);
      return Message(ErrorMessage{known ? static_cast<StatusCode>(code) : StatusCode::kInternal,
                                  frame.error().message()});
    }
    case wire::Frame::kGoodbye:
      return Message(Goodbye{frame.goodbye().reason()});
    case wire::Frame::kReconcile: {
      const wire::Reconcile& r = frame.reconcile();
      if (r.collection().size() > kMaxCollectionName) {
        return DataLoss("reconcile step names a collection of " +
                        std::to_string(r.collection().size()) + " bytes");
      }
      return Message(Reconcile{r.collection(), r.step(), r.last()});
    }
    case wire::Frame::BODY_NOT_SET:
      break;
  }
  return DataLoss("frame with no known message");
}

}  // namespace

std::string_view MessageName(const Message& message) {
  static constexpr std::string_view kNames[] = {
      "hello", "welcome", "change batch", "ack", "ping", "pong", "error", "goodbye", "reconcile"};
  return kNames[message.index()];
}

std::string EncodeFrame(const Message& message) {
  const std::string payload = ToFrame(message).SerializeAsString();
  std::string frame(kLengthBytes, '\0');
  const auto length = static_cast<uint32_t>(payload.size());
  for (size_t i = 0; i < kLengthBytes; ++i) {
    frame[i] = static_cast<char>(length >> (8 * (kLengthBytes - 1 - i)));
  }
  return frame + payload;
}

Result<Message> DecodeFramePayload(std::string_view payload) {
  wire::Frame frame;
  if (!frame.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return DataLoss("frame is not a valid protocol message");
  }
  return FromFrame(frame);
}

Result<std::optional<Message>> FrameReader::Next() {
  if (!failed_.ok()) return failed_;
  const std::string_view pending = std::string_view(buffer_).substr(consumed_);
  if (pending.size() < kLengthBytes) return std::optional<Message>();
  uint32_t length = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) {
    length = (length << 8) | static_cast<uint8_t>(pending[i]);
  }
  // An empty payload is a Frame with no message: malformed, not too large.
  if (length == 0) {
    failed_ = DataLoss("frame of 0 bytes");
    return failed_;
  }
  if (length > max_frame_bytes_) {
    failed_ = ResourceExhausted("frame of " + std::to_string(length) + " bytes (the limit is " +
                                std::to_string(max_frame_bytes_) + ")");
    return failed_;
  }
  if (pending.size() < kLengthBytes + length) return std::optional<Message>();
  auto message = DecodeFramePayload(pending.substr(kLengthBytes, length));
  consumed_ += kLengthBytes + length;
  // Drop consumed bytes once they are the larger part, so the buffer never grows past a frame.
  if (consumed_ > buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  if (!message.has_value()) {
    failed_ = message.error();
    return failed_;
  }
  return std::optional<Message>(std::move(*message));
}

}  // namespace lockstep::protocol
