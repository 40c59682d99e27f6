#include "core/dot.h"

#include <cstring>

#include "base/base32.h"

namespace lockstep::core {
namespace {

int DecodeSymbol(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

}  // namespace

std::string NodeId::ToString() const {
  return base::Base32(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Result<NodeId> NodeId::Parse(std::string_view base32) {
  if (base32.size() != 26) {
    return InvalidArgument("node id must be 26 base32 characters, got " +
                           std::to_string(base32.size()));
  }
  NodeId id;
  uint32_t buffer = 0;
  int bits = 0;
  size_t out = 0;
  for (char c : base32) {
    const int symbol = DecodeSymbol(c);
    if (symbol < 0) return InvalidArgument("node id has a character outside base32");
    buffer = (buffer << 5) | static_cast<uint32_t>(symbol);
    bits += 5;
    if (bits >= 8) {
      id.bytes[out++] = static_cast<uint8_t>(buffer >> (bits - 8));
      bits -= 8;
    }
  }
  // 26 symbols carry 130 bits: the last 2 must be zero for the text to be canonical.
  if ((buffer & ((1u << bits) - 1)) != 0) return InvalidArgument("node id is not canonical base32");
  return id;
}

NodeId NodeId::FromBytes(std::string_view raw) {
  NodeId id;
  std::memcpy(id.bytes.data(), raw.data(), id.bytes.size());
  return id;
}

}  // namespace lockstep::core
