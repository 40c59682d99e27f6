// Frames on the wire: a 4-byte big-endian length, then one protobuf `Frame` (lockstep.proto).
// Change batches carry their records zstd-compressed.
//
//   stream := { frame }
//   frame  := length:u32be (1 .. kMaxFrameBytes) payload:length bytes (a wire.Frame)
//
// Decoding treats every byte as hostile: the length is checked before anything is allocated, a
// batch's declared uncompressed size is bounded before decompressing, every record is decoded
// with core's canonical decoder, and any fault is a kDataLoss / kResourceExhausted error that
// closes the session.
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/messages.h"

namespace lockstep::protocol {

inline constexpr size_t kMaxFrameBytes = 64 << 20;  // 64 MiB on the wire
// Until the handshake is done (Hello, Welcome: names, a token, tables' schemas), frames are held to
// this, so that a peer that has not yet shown a token makes a hub hold little for it.
inline constexpr size_t kMaxHandshakeFrameBytes = 4 << 20;
// What a sender puts in one batch, encoded, before compression: well under the frame limit, so a
// batch of large records is split rather than refused. A single record may exceed it.
inline constexpr size_t kBatchTargetBytes = 8 << 20;
inline constexpr size_t kMaxBatchBytes = 256 << 20;  // 256 MiB once decompressed
inline constexpr size_t kMaxBatchRecords = 1'000'000;

// The bytes of one frame carrying `message`, length prefix included.
std::string EncodeFrame(const Message& message);

// Decodes one frame's payload (without the length prefix).
Result<Message> DecodeFramePayload(std::string_view payload);

// Splits a byte stream into frames. Not thread-safe.
class FrameReader {
 public:
  // Appends bytes read from the transport.
  void Append(std::string_view bytes) { buffer_.append(bytes); }

  // The next complete message, nullopt when more bytes are needed, or an error when the stream
  // is malformed (the session must then close; later calls return the same error).
  Result<std::optional<Message>> Next();

  // Bytes received but not yet consumed as a frame (bounded by the frame limit + 4).
  size_t buffered() const { return buffer_.size() - consumed_; }

  // Frames longer than `limit` (at most kMaxFrameBytes) are refused from now on.
  void set_max_frame_bytes(size_t limit) { max_frame_bytes_ = std::min(limit, kMaxFrameBytes); }

 private:
  size_t max_frame_bytes_ = kMaxFrameBytes;
  std::string buffer_;
  size_t consumed_ = 0;
  Status failed_;
};

}  // namespace lockstep::protocol
