// Bearer tokens that a hub accepts from its nodes, each granting read or read-write access to a
// set of collections. Only SHA-256 hashes of tokens are stored: a token is shown once, when it is
// created, and cannot be recovered from the tokens file.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/status.h"

namespace lockstep::security {

enum class TokenMode { kRead, kReadWrite };

// What a token allows. A plain value; thread-compatible.
struct TokenGrant {
  std::vector<std::string> collections;  // sorted; "*" means every collection
  TokenMode mode = TokenMode::kReadWrite;
  friend bool operator==(const TokenGrant&, const TokenGrant&) = default;
};

// "r" is kRead, "rw" is kReadWrite; anything else is kInvalidArgument.
Result<TokenMode> ParseTokenMode(std::string_view text);

// The tokens a hub accepts, kept in DIR/tokens (mode 0600), one line per token:
//
//   tokens      = *line
//   line        = hash SP mode SP collections LF    ; empty lines are skipped
//   hash        = 64 lowercase hex digits           ; SHA-256 of the whole token text
//   mode        = "r" / "rw"
//   collections = name *("," name)                  ; "*" means every collection
//   name        = 1*(any byte but SP, HT, CR, LF, ",", or other control bytes)
//
// Not thread-safe: share one behind a lock, or give each thread its own copy.
class TokenStore {
 public:
  // Reads DIR/tokens; a missing file or directory means no tokens. Errors: kDataLoss naming the
  // first malformed line by number (the line itself is never echoed, it may hold a secret
  // pasted by mistake), kPermissionDenied, kInternal.
  static Result<TokenStore> Open(const std::filesystem::path& dir);

  // A new random token, "lst_" + lowercase base32 of 32 random bytes (RAND_bytes), recorded by
  // its hash; the caller shows it once and it is never retrievable again. `grant.collections` is
  // sorted and deduplicated. Rewrites DIR/tokens atomically (temp file + rename, 0600), creating
  // DIR (0700) if needed; on error the store is unchanged. Errors: kInvalidArgument when
  // `grant.collections` is empty or a name is empty or holds a space, ',' or a control byte;
  // kPermissionDenied, kResourceExhausted, kInternal from writing.
  Result<std::string> Create(const TokenGrant& grant);

  // The grant of `token`; kUnauthenticated, with a message that never contains the token, when
  // no stored hash matches. Hashes are compared in constant time (CRYPTO_memcmp) against every
  // entry.
  Result<TokenGrant> Verify(std::string_view token) const;

  // Whether `grant` covers `collection` (listed, or "*" is).
  static bool Covers(const TokenGrant& grant, std::string_view collection);

 private:
  struct Entry {
    std::string hash;  // 32 raw bytes of SHA-256
    TokenGrant grant;
  };

  explicit TokenStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path file() const { return dir_ / "tokens"; }

  std::filesystem::path dir_;
  std::vector<Entry> entries_;
};

}  // namespace lockstep::security
