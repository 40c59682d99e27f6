// A node's TLS identity: its private key and self-signed certificate, kept as PEM files in the
// node's data directory and named by the certificate's SHA-256 fingerprint, which peers pin.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "lockstep/status.h"

namespace lockstep::security {

// Where a node's key and certificate live, and the fingerprint that names the certificate.
// A plain value; thread-compatible.
struct Identity {
  std::filesystem::path key_file;   // DIR/node.key, mode 0600
  std::filesystem::path cert_file;  // DIR/node.crt
  std::string fingerprint;          // "SHA256:" + 64 lowercase hex of the certificate's DER
};

// Loads DIR/node.key and DIR/node.crt, creating both when neither exists (EC P-256 key,
// self-signed X.509 v3 certificate, CN "lockstep node", valid 10 years, random serial,
// subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1). Creates DIR (0700) if missing. Each file
// is written through a temporary file and a rename; the key's is 0600 before its first byte.
// Errors: kDataLoss when one file exists without the other, either does not parse, or the key
// is not the certificate's; kPermissionDenied when DIR is not writable (and creation is needed)
// or a file is unreadable; kResourceExhausted when the disk is full; kInternal otherwise.
// Not safe against two processes creating the same identity at once.
Result<Identity> LoadOrCreateIdentity(const std::filesystem::path& dir);

// "SHA256:" + the lowercase hex SHA-256 of `der` (a certificate in DER).
std::string Fingerprint(std::string_view der);

// Accepts "SHA256:" followed by 64 hex digits in either case, or by 32 hex byte pairs separated
// by ':' as OpenSSL prints them ("AB:CD:..."), and returns the canonical "SHA256:<lowercase hex>".
// kInvalidArgument for anything else.
Result<std::string> ParseFingerprint(std::string_view text);

}  // namespace lockstep::security
