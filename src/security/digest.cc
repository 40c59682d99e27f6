#include "security/digest.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>

namespace lockstep::security {

std::string Sha256(std::string_view data) {
  std::string digest(kSha256Bytes, '\0');
  unsigned int size = 0;
  // EVP_Digest with SHA-256 fails only on allocation failure, which is fatal elsewhere too.
  const int ok =
      EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(digest.data()), &size,
                 EVP_sha256(), nullptr);
  if (ok != 1 || size != kSha256Bytes) std::abort();
  return digest;
}

std::string HexLower(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 15];
  }
  return hex;
}

Result<std::string> RandomBytes(size_t count) {
  std::string bytes(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(count)) != 1) {
    return Internal("the random number generator failed");
  }
  return bytes;
}

}  // namespace lockstep::security
