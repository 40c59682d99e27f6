// SHA-256, lowercase hex and cryptographic randomness from OpenSSL, for the rest of
// lockstep::security. Internal: the headers of this library expose no OpenSSL types.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "lockstep/status.h"

namespace lockstep::security {

inline constexpr size_t kSha256Bytes = 32;

// The 32-byte SHA-256 digest of `data`.
std::string Sha256(std::string_view data);

// Two lowercase hex digits per byte.
std::string HexLower(std::string_view bytes);

// `count` bytes from OpenSSL's CSPRNG (RAND_bytes); kInternal if it cannot be seeded.
Result<std::string> RandomBytes(size_t count);

}  // namespace lockstep::security
