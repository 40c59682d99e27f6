#include "base/bytes.h"

#include <string>

namespace lockstep::base {
namespace {

Status Truncated(std::string_view what) {
  return DataLoss("truncated input reading " + std::string(what));
}

}  // namespace

void ByteWriter::PutVarint(uint64_t value) {
  char bytes[10];
  size_t size = 0;
  while (value >= 0x80) {
    bytes[size++] = static_cast<char>(static_cast<uint8_t>(value) | 0x80);
    value >>= 7;
  }
  bytes[size++] = static_cast<char>(value);
  out_.append(bytes, size);
}

void ByteWriter::PutSignedVarint(int64_t value) {
  const uint64_t bits = static_cast<uint64_t>(value);
  PutVarint((bits << 1) ^ (value < 0 ? ~uint64_t{0} : 0));
}

void ByteWriter::PutFixed64(uint64_t value) {
  // One append of eight bytes, not eight appends of one: bucket sums write 3 KiB rows of these.
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (56 - 8 * i));
  out_.append(bytes, sizeof bytes);
}

void ByteWriter::PutFixed32(uint32_t value) {
  char bytes[4];
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(value >> (24 - 8 * i));
  out_.append(bytes, sizeof bytes);
}

void ByteWriter::PutFixed16(uint16_t value) {
  const char bytes[2] = {static_cast<char>(value >> 8), static_cast<char>(value)};
  out_.append(bytes, sizeof bytes);
}

void ByteWriter::PutLengthPrefixed(std::string_view bytes) {
  PutVarint(bytes.size());
  PutBytes(bytes);
}

Result<uint8_t> ByteReader::ReadByte(std::string_view what) {
  if (pos_ >= input_.size()) return Truncated(what);
  return static_cast<uint8_t>(input_[pos_++]);
}

Result<uint64_t> ByteReader::ReadVarint(std::string_view what) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= input_.size()) return Truncated(what);
    const uint8_t byte = static_cast<uint8_t>(input_[pos_++]);
    const uint64_t payload = byte & 0x7f;
    // The tenth byte may carry only the top bit of a 64-bit value.
    if (shift == 63 && payload > 1)
      return DataLoss("varint overflows 64 bits in " + std::string(what));
    value |= payload << shift;
    if ((byte & 0x80) == 0) {
      // A trailing zero byte means a longer encoding than needed: refuse it so that every value
      // has exactly one encoding.
      if (byte == 0 && shift > 0) return DataLoss("non-minimal varint in " + std::string(what));
      return value;
    }
  }
  return DataLoss("varint longer than 10 bytes in " + std::string(what));
}

Result<int64_t> ByteReader::ReadSignedVarint(std::string_view what) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint64_t bits, ReadVarint(what));
  return static_cast<int64_t>((bits >> 1) ^ (~(bits & 1) + 1));
}

Result<uint64_t> ByteReader::ReadFixed64(std::string_view what) {
  if (remaining() < 8) return Truncated(what);
  uint64_t value = 0;
  const char* bytes = input_.data() + pos_;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  pos_ += 8;
  return value;
}

Result<std::string_view> ByteReader::ReadBytes(size_t count, std::string_view what) {
  if (remaining() < count) return Truncated(what);
  std::string_view bytes = input_.substr(pos_, count);
  pos_ += count;
  return bytes;
}

Result<std::string_view> ByteReader::ReadLengthPrefixed(std::string_view what, size_t max_length) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint64_t length, ReadVarint(what));
  if (length > max_length) {
    return DataLoss(std::string(what) + " of " + std::to_string(length) +
                    " bytes exceeds the limit of " + std::to_string(max_length));
  }
  return ReadBytes(static_cast<size_t>(length), what);
}

Result<size_t> ByteReader::ReadCount(std::string_view what, size_t min_item_bytes) {
  LOCKSTEP_ASSIGN_OR_RETURN(uint64_t count, ReadVarint(what));
  if (min_item_bytes > 0 && count > remaining() / min_item_bytes) return Truncated(what);
  return static_cast<size_t>(count);
}

}  // namespace lockstep::base
