#include "security/tokens.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <set>

#include "base/base32.h"
#include "security/digest.h"
#include "security/secure_file.h"

namespace lockstep::security {
namespace {

constexpr std::string_view kTokenPrefix = "lst_";
constexpr size_t kTokenRandomBytes = 32;
constexpr size_t kMaxTokensFileBytes = 16 * 1024 * 1024;

bool IsValidName(std::string_view name) {
  if (name.empty()) return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7f || c == ',';
  });
}

void SortUnique(std::vector<std::string>& names) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
}

std::string_view ModeText(TokenMode mode) {
  switch (mode) {
    case TokenMode::kRead:
      return "r";
    case TokenMode::kReadWrite:
      return "rw";
  }
  return "rw";  // unreachable: every enumerator is handled above
}

Result<std::string> DecodeHexHash(std::string_view hex) {
  if (hex.size() != kSha256Bytes * 2) return InvalidArgument("bad hash length");
  std::string raw;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int byte = 0;
    for (char c : hex.substr(i, 2)) {
      // Lowercase only: one hash has one spelling, so the file round-trips byte for byte.
      const bool digit = c >= '0' && c <= '9';
      if (!digit && !(c >= 'a' && c <= 'f')) return InvalidArgument("bad hash digit");
      byte = byte * 16 + (digit ? c - '0' : c - 'a' + 10);
    }
    raw += static_cast<char>(byte);
  }
  return raw;
}

// Parses one non-empty line; the error says what is wrong without quoting the line.
Result<TokenGrant> ParseLine(std::string_view line, std::string& hash) {
  const size_t first = line.find(' ');
  const size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos) {
    return InvalidArgument("expected '<hash> <r|rw> <collections>'");
  }
  Result<std::string> raw = DecodeHexHash(line.substr(0, first));
  if (!raw) return InvalidArgument("the hash is not 64 lowercase hex digits");
  hash = std::move(*raw);
  Result<TokenMode> mode = ParseTokenMode(line.substr(first + 1, second - first - 1));
  if (!mode) return InvalidArgument("the mode is not r or rw");
  TokenGrant grant{.collections = {}, .mode = *mode};
  std::string_view rest = line.substr(second + 1);
  while (true) {
    const size_t comma = rest.find(',');
    std::string_view name = rest.substr(0, comma);
    if (!IsValidName(name)) return InvalidArgument("a collection name is empty or malformed");
    grant.collections.emplace_back(name);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  SortUnique(grant.collections);
  return grant;
}

}  // namespace

Result<TokenMode> ParseTokenMode(std::string_view text) {
  if (text == "r") return TokenMode::kRead;
  if (text == "rw") return TokenMode::kReadWrite;
  return InvalidArgument("token mode must be r or rw");
}

Result<TokenStore> TokenStore::Open(const std::filesystem::path& dir) {
  TokenStore store(dir);
  Result<std::string> text = ReadWholeFile(store.file(), kMaxTokensFileBytes);
  if (!text && text.error().code() == StatusCode::kNotFound) return store;
  if (!text) return text.error().WithContext("reading tokens");
  std::string_view rest = *text;
  std::set<std::string> hashes;
  for (size_t number = 1; !rest.empty(); ++number) {
    const size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (line.empty()) continue;
    Entry entry;
    Result<TokenGrant> grant = ParseLine(line, entry.hash);
    if (!grant) {
      return DataLoss(store.file().string() + " line " + std::to_string(number) + ": " +
                      grant.error().message());
    }
    if (!hashes.insert(entry.hash).second) {
      return DataLoss(store.file().string() + " line " + std::to_string(number) +
                      ": the same token hash appears twice");
    }
    entry.grant = std::move(*grant);
    store.entries_.push_back(std::move(entry));
  }
  return store;
}

Result<std::string> TokenStore::Create(const TokenGrant& grant) {
  if (grant.collections.empty()) return InvalidArgument("a token must grant some collection");
  for (const std::string& name : grant.collections) {
    if (!IsValidName(name)) {
      return InvalidArgument("collection name is empty or holds a space, ',' or control byte");
    }
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string random, RandomBytes(kTokenRandomBytes));
  std::string token = std::string(kTokenPrefix) + base::Base32(random);
  OPENSSL_cleanse(random.data(), random.size());

  std::vector<Entry> entries = entries_;
  entries.push_back(Entry{.hash = Sha256(token), .grant = grant});
  SortUnique(entries.back().grant.collections);
  std::string text;
  for (const Entry& entry : entries) {
    text += HexLower(entry.hash);
    text += ' ';
    text += ModeText(entry.grant.mode);
    text += ' ';
    for (size_t i = 0; i < entry.grant.collections.size(); ++i) {
      if (i > 0) text += ',';
      text += entry.grant.collections[i];
    }
    text += '\n';
  }
  LOCKSTEP_RETURN_IF_ERROR(EnsurePrivateDir(dir_));
  Status written = WriteFileAtomically(file(), text, 0600);
  if (!written.ok()) return written.WithContext("recording a new token");
  entries_ = std::move(entries);
  return token;
}

Result<TokenGrant> TokenStore::Verify(std::string_view token) const {
  const std::string hash = Sha256(token);
  const Entry* match = nullptr;
  // No early exit: the time taken does not depend on which entry, if any, matched.
  for (const Entry& entry : entries_) {
    if (CRYPTO_memcmp(entry.hash.data(), hash.data(), kSha256Bytes) == 0) match = &entry;
  }
  if (match == nullptr) return Unauthenticated("unknown token");
  return match->grant;
}

bool TokenStore::Covers(const TokenGrant& grant, std::string_view collection) {
  return std::any_of(grant.collections.begin(), grant.collections.end(),
                     [&](const std::string& name) { return name == "*" || name == collection; });
}

}  // namespace lockstep::security
