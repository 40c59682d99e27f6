#include "security/identity.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <system_error>

#include "security/digest.h"
#include "security/secure_file.h"

namespace lockstep::security {
namespace {

constexpr std::string_view kFingerprintPrefix = "SHA256:";
constexpr size_t kMaxPemBytes = 64 * 1024;
constexpr int kValidityYears = 10;

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

// OpenSSL's default passphrase callback prompts on the terminal; an encrypted key must instead
// fail to load, as data we cannot use.
int NoPassphrase(char*, int, int, void*) { return 0; }

// The reason OpenSSL queued for the last failure, for messages; clears the queue so that stale
// errors never leak into a later, unrelated call.
std::string OpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  const char* text = code == 0 ? nullptr : ERR_reason_error_string(code);
  std::string reason = text == nullptr ? "unknown error" : text;
  ERR_clear_error();
  return reason;
}

Result<std::string> CertificateDer(X509* cert) {
  unsigned char* der = nullptr;
  const int size = i2d_X509(cert, &der);
  if (size <= 0) return Internal("encoding the certificate: " + OpenSslError());
  std::string bytes(reinterpret_cast<const char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return bytes;
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

Status AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!extension || X509_add_ext(cert, extension.get(), -1) != 1) {
    return Internal(std::string("adding certificate extension ") + OBJ_nid2sn(nid) + ": " +
                    OpenSslError());
  }
  return Status::Ok();
}

// Ten calendar years from now (29 February becomes 1 March), as UTC seconds.
time_t TenYearsFromNow(time_t now) {
  std::tm tm{};
  gmtime_r(&now, &tm);
  tm.tm_year += kValidityYears;
  return timegm(&tm);
}

Status FillCertificate(X509* cert, EVP_PKEY* key) {
  // RFC 5280 serials are positive and at most 20 octets: 159 random bits are both.
  BignumPtr serial(BN_new());
  if (!serial || BN_rand(serial.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr) {
    return Internal("making a certificate serial: " + OpenSslError());
  }
  const time_t now = std::time(nullptr);
  X509_NAME* name = X509_get_subject_name(cert);
  if (X509_set_version(cert, X509_VERSION_3) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert), now) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), TenYearsFromNow(now)) == nullptr ||
      X509_set_pubkey(cert, key) != 1 ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("lockstep node"), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert, name) != 1) {
    return Internal("filling the certificate: " + OpenSslError());
  }
  // CA:FALSE so that clients which reject a CA certificate as an end entity accept it; peers
  // trust it by its pinned fingerprint, not by a chain.
  LOCKSTEP_RETURN_IF_ERROR(AddExtension(cert, NID_basic_constraints, "critical,CA:FALSE"));
  LOCKSTEP_RETURN_IF_ERROR(AddExtension(cert, NID_subject_key_identifier, "hash"));
  LOCKSTEP_RETURN_IF_ERROR(AddExtension(cert, NID_ext_key_usage, "serverAuth,clientAuth"));
  LOCKSTEP_RETURN_IF_ERROR(
      AddExtension(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"));
  if (X509_sign(cert, key, EVP_sha256()) <= 0) {
    return Internal("signing the certificate: " + OpenSslError());
  }
  return Status::Ok();
}

Status CreateIdentity(const Identity& identity) {
  KeyPtr key(EVP_EC_gen("P-256"));
  CertPtr cert(X509_new());
  if (!key || !cert) return Internal("generating a P-256 key: " + OpenSslError());
  LOCKSTEP_RETURN_IF_ERROR(FillCertificate(cert.get(), key.get()));

  BioPtr key_pem(BIO_new(BIO_s_mem()));
  BioPtr cert_pem(BIO_new(BIO_s_mem()));
  if (!key_pem || !cert_pem ||
      PEM_write_bio_PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_X509(cert_pem.get(), cert.get()) != 1) {
    return Internal("encoding the identity as PEM: " + OpenSslError());
  }
  std::string key_text = BioContents(key_pem.get());
  Status written = WriteFileAtomically(identity.key_file, key_text, 0600);
  OPENSSL_cleanse(key_text.data(), key_text.size());
  LOCKSTEP_RETURN_IF_ERROR(written);
  // HAZARD: a crash between the two renames leaves a key without a certificate, which the next
  // load reports as kDataLoss rather than silently replacing an identity.
  return WriteFileAtomically(identity.cert_file, BioContents(cert_pem.get()), 0644);
}

Result<std::string> LoadIdentity(const Identity& identity) {
  LOCKSTEP_ASSIGN_OR_RETURN(std::string key_text, ReadWholeFile(identity.key_file, kMaxPemBytes));
  LOCKSTEP_ASSIGN_OR_RETURN(std::string cert_text, ReadWholeFile(identity.cert_file, kMaxPemBytes));
  BioPtr key_bio(BIO_new_mem_buf(key_text.data(), static_cast<int>(key_text.size())));
  BioPtr cert_bio(BIO_new_mem_buf(cert_text.data(), static_cast<int>(cert_text.size())));
  if (!key_bio || !cert_bio) return Internal("allocating a buffer: " + OpenSslError());
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  OPENSSL_cleanse(key_text.data(), key_text.size());
  if (!key) {
    return DataLoss(identity.key_file.string() +
                    " is not an unencrypted PEM private key: " + OpenSslError());
  }
  CertPtr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr));
  if (!cert) {
    return DataLoss(identity.cert_file.string() + " is not a PEM certificate: " + OpenSslError());
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return DataLoss(identity.key_file.string() + " is not the key of " +
                    identity.cert_file.string());
  }
  LOCKSTEP_ASSIGN_OR_RETURN(std::string der, CertificateDer(cert.get()));
  return Fingerprint(der);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<Identity> LoadOrCreateIdentity(const std::filesystem::path& dir) {
  Identity identity{.key_file = dir / "node.key", .cert_file = dir / "node.crt", .fingerprint = ""};
  LOCKSTEP_RETURN_IF_ERROR(EnsurePrivateDir(dir));
  // An unreadable entry must not look absent: creating would then replace an identity.
  std::error_code key_error;
  std::error_code cert_error;
  const bool has_key = std::filesystem::exists(identity.key_file, key_error);
  const bool has_cert = std::filesystem::exists(identity.cert_file, cert_error);
  if (key_error || cert_error) {
    return PermissionDenied("cannot look for the node identity in " + dir.string() + ": " +
                            (key_error ? key_error : cert_error).message());
  }
  if (has_key != has_cert) {
    const auto& present = has_key ? identity.key_file : identity.cert_file;
    const auto& missing = has_key ? identity.cert_file : identity.key_file;
    return DataLoss("found " + present.string() + " without " + missing.string() +
                    "; remove it to create a new identity");
  }
  if (!has_key) {
    LOCKSTEP_RETURN_IF_ERROR(CheckWritableDir(dir));
    Status created = CreateIdentity(identity);
    if (!created.ok()) return created.WithContext("creating the node identity");
  }
  Result<std::string> fingerprint = LoadIdentity(identity);
  if (!fingerprint) return fingerprint.error().WithContext("loading the node identity");
  identity.fingerprint = std::move(*fingerprint);
  return identity;
}

std::string Fingerprint(std::string_view der) {
  return std::string(kFingerprintPrefix) + HexLower(Sha256(der));
}

Result<std::string> ParseFingerprint(std::string_view text) {
  const auto invalid = [] {
    return InvalidArgument(
        "a fingerprint is SHA256: then 64 hex digits, optionally in pairs "
        "separated by ':'");
  };
  if (!text.starts_with(kFingerprintPrefix)) return invalid();
  std::string_view hex = text.substr(kFingerprintPrefix.size());
  // Either 64 digits, or 32 pairs with a ':' after every pair but the last (95 characters).
  const bool separated = hex.size() == kSha256Bytes * 3 - 1;
  if (!separated && hex.size() != kSha256Bytes * 2) return invalid();
  std::string canonical(kFingerprintPrefix);
  for (size_t i = 0; i < hex.size(); ++i) {
    if (separated && i % 3 == 2) {
      if (hex[i] != ':') return invalid();
      continue;
    }
    const int value = HexValue(hex[i]);
    if (value < 0) return invalid();
    canonical += "0123456789abcdef"[value];
  }
  return canonical;
}

}  // namespace lockstep::security
