// Byte-level encoding shared by every Lockstep codec: LEB128 varints, zigzag, fixed-width
// big-endian integers and length-prefixed strings.
//
// ByteReader treats its input as hostile: every read is bounds-checked, varints must be minimal
// (so one value has exactly one encoding) and lengths are checked against the bytes that remain
// before anything is allocated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lockstep/status.h"

namespace lockstep::base {

// Appends encodings to a byte string it does not own. Not thread-safe.
class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  void PutByte(uint8_t byte) { out_.push_back(static_cast<char>(byte)); }
  void PutVarint(uint64_t value);
  void PutSignedVarint(int64_t value);  // zigzag, so small negative numbers stay short
  void PutFixed64(uint64_t value);      // big-endian, so encodings sort like the numbers
  void PutFixed32(uint32_t value);      // big-endian
  void PutFixed16(uint16_t value);      // big-endian
  void PutBytes(std::string_view bytes) { out_.append(bytes); }
  void PutLengthPrefixed(std::string_view bytes);

 private:
  std::string& out_;
};

// Reads encodings from a view of bytes it does not own; errors are kDataLoss naming `what`.
// Not thread-safe.
class ByteReader {
 public:
  explicit ByteReader(std::string_view input) : input_(input) {}

  bool empty() const { return pos_ == input_.size(); }
  size_t remaining() const { return input_.size() - pos_; }

  Result<uint8_t> ReadByte(std::string_view what);
  Result<uint64_t> ReadVarint(std::string_view what);
  Result<int64_t> ReadSignedVarint(std::string_view what);
  Result<uint64_t> ReadFixed64(std::string_view what);
  Result<std::string_view> ReadBytes(size_t count, std::string_view what);
  // A varint length then that many bytes; a length above `max_length` is an error.
  Result<std::string_view> ReadLengthPrefixed(std::string_view what, size_t max_length);
  // A varint count of items that each take at least `min_item_bytes`; a count that the remaining
  // input cannot hold is an error, so a caller may reserve() the result safely.
  Result<size_t> ReadCount(std::string_view what, size_t min_item_bytes);

 private:
  std::string_view input_;
  size_t pos_ = 0;
};

}  // namespace lockstep::base
