#include "security/identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace lockstep::security {
namespace {

namespace fs = std::filesystem;

class IdentityTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lockstep-identity-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
};

mode_t ModeOf(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

bool HaveOpensslCli() { return std::system("command -v openssl >/dev/null 2>&1") == 0; }

// The standard output of a shell command, or "" when it fails.
std::string RunShell(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return "";
  std::string out;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0)
    out.append(buffer.data(), n);
  return out;
}

TEST(FingerprintTest, IsPrefixedLowercaseSha256OfTheDer) {
  // SHA-256 of the empty string.
  EXPECT_EQ(Fingerprint(""),
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(IdentityTest, IsCreatedOnceAndReloadedIdentically) {
  const fs::path dir = root_ / "data" / "node";
  Result<Identity> first = LoadOrCreateIdentity(dir);
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  EXPECT_EQ(first->key_file, dir / "node.key");
  EXPECT_EQ(first->cert_file, dir / "node.crt");
  EXPECT_THAT(first->fingerprint, testing::MatchesRegex("SHA256:[0-9a-f]{64}"));
  const std::string key = ReadFile(first->key_file);
  const std::string cert = ReadFile(first->cert_file);

  Result<Identity> second = LoadOrCreateIdentity(dir);
  ASSERT_TRUE(second.has_value()) << second.error().ToString();
  EXPECT_EQ(second->fingerprint, first->fingerprint);
  EXPECT_EQ(ReadFile(second->key_file), key);
  EXPECT_EQ(ReadFile(second->cert_file), cert);
}

TEST_F(IdentityTest, KeyIsPrivateToTheOwnerAndDirectoryIsCreated0700) {
  const fs::path dir = root_ / "node";
  Result<Identity> identity = LoadOrCreateIdentity(dir);
  ASSERT_TRUE(identity.has_value()) << identity.error().ToString();
  EXPECT_EQ(ModeOf(identity->key_file), 0600u);
  EXPECT_EQ(ModeOf(dir), 0700u);
  EXPECT_THAT(ReadFile(identity->key_file), testing::HasSubstr("-----BEGIN PRIVATE KEY-----"));
  EXPECT_THAT(ReadFile(identity->cert_file), testing::HasSubstr("-----BEGIN CERTIFICATE-----"));
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);
}

TEST_F(IdentityTest, TwoNodesGetDifferentIdentities) {
  Result<Identity> a = LoadOrCreateIdentity(root_ / "a");
  Result<Identity> b = LoadOrCreateIdentity(root_ / "b");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NE(a->fingerprint, b->fingerprint);
}

TEST_F(IdentityTest, MismatchedKeyAndCertificateIsDataLoss) {
  Result<Identity> a = LoadOrCreateIdentity(root_ / "a");
  Result<Identity> b = LoadOrCreateIdentity(root_ / "b");
  ASSERT_TRUE(a.has_value() && b.has_value());
  fs::copy_file(b->key_file, a->key_file, fs::copy_options::overwrite_existing);

  Result<Identity> reloaded = LoadOrCreateIdentity(root_ / "a");
  ASSERT_FALSE(reloaded.has_value());
  EXPECT_EQ(reloaded.error().code(), StatusCode::kDataLoss);
  EXPECT_THAT(reloaded.error().message(), testing::HasSubstr("is not the key of"));
}

TEST_F(IdentityTest, KeyWithoutCertificateIsDataLossAndNothingIsReplaced) {
  Result<Identity> identity = LoadOrCreateIdentity(root_ / "a");
  ASSERT_TRUE(identity.has_value());
  const std::string key = ReadFile(identity->key_file);
  fs::remove(identity->cert_file);

  Result<Identity> reloaded = LoadOrCreateIdentity(root_ / "a");
  ASSERT_FALSE(reloaded.has_value());
  EXPECT_EQ(reloaded.error().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ReadFile(identity->key_file), key);
  EXPECT_FALSE(fs::exists(identity->cert_file));
}

TEST_F(IdentityTest, CertificateWithoutKeyIsDataLoss) {
  Result<Identity> identity = LoadOrCreateIdentity(root_ / "a");
  ASSERT_TRUE(identity.has_value());
  fs::remove(identity->key_file);
  Result<Identity> reloaded = LoadOrCreateIdentity(root_ / "a");
  ASSERT_FALSE(reloaded.has_value());
  EXPECT_EQ(reloaded.error().code(), StatusCode::kDataLoss);
}

TEST_F(IdentityTest, UnparsableFilesAreDataLoss) {
  Result<Identity> identity = LoadOrCreateIdentity(root_ / "a");
  ASSERT_TRUE(identity.has_value());
  const std::string cert = ReadFile(identity->cert_file);
  WriteFile(identity->cert_file, "not a certificate\n");
  Result<Identity> bad_cert = LoadOrCreateIdentity(root_ / "a");
  ASSERT_FALSE(bad_cert.has_value());
  EXPECT_EQ(bad_cert.error().code(), StatusCode::kDataLoss);

  WriteFile(identity->cert_file, cert);
  WriteFile(identity->key_file,
            "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n");
  Result<Identity> bad_key = LoadOrCreateIdentity(root_ / "a");
  ASSERT_FALSE(bad_key.has_value());
  EXPECT_EQ(bad_key.error().code(), StatusCode::kDataLoss);
}

TEST_F(IdentityTest, UnwritableDirectoryIsPermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root may write to any directory";
  const fs::path dir = root_ / "locked";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  Result<Identity> identity = LoadOrCreateIdentity(dir);
  fs::permissions(dir, fs::perms::owner_all);
  ASSERT_FALSE(identity.has_value());
  EXPECT_EQ(identity.error().code(), StatusCode::kPermissionDenied);
}

TEST_F(IdentityTest, DataDirThatIsAFileIsAnError) {
  WriteFile(root_ / "file", "x");
  EXPECT_FALSE(LoadOrCreateIdentity(root_ / "file").has_value());
}

TEST_F(IdentityTest, FingerprintMatchesOpensslCli) {
  if (!HaveOpensslCli()) GTEST_SKIP() << "the openssl CLI is not installed";
  Result<Identity> identity = LoadOrCreateIdentity(root_ / "a");
  ASSERT_TRUE(identity.has_value());
  const std::string sum =
      RunShell("openssl x509 -in '" + identity->cert_file.string() + "' -outform DER | sha256sum");
  ASSERT_GE(sum.size(), 64u) << sum;
  EXPECT_EQ(identity->fingerprint, "SHA256:" + sum.substr(0, 64));

  // OpenSSL's own rendering ("sha256 Fingerprint=AB:CD:...") parses to the same fingerprint.
  std::string printed = RunShell("openssl x509 -in '" + identity->cert_file.string() +
                                 "' -noout -fingerprint -sha256");
  const size_t equals = printed.find('=');
  ASSERT_NE(equals, std::string::npos) << printed;
  printed = printed.substr(equals + 1);
  while (!printed.empty() && (printed.back() == '\n' || printed.back() == '\r')) printed.pop_back();
  Result<std::string> parsed = ParseFingerprint("SHA256:" + printed);
  ASSERT_TRUE(parsed.has_value()) << printed;
  EXPECT_EQ(*parsed, identity->fingerprint);
}

TEST_F(IdentityTest, CertificateHasTheSpecifiedFields) {
  if (!HaveOpensslCli()) GTEST_SKIP() << "the openssl CLI is not installed";
  Result<Identity> identity = LoadOrCreateIdentity(root_ / "a");
  ASSERT_TRUE(identity.has_value());
  const std::string cert = "'" + identity->cert_file.string() + "'";
  const std::string text = RunShell("openssl x509 -in " + cert + " -noout -text");
  EXPECT_THAT(text, testing::HasSubstr("Version: 3"));
  EXPECT_THAT(text, testing::HasSubstr("Subject: CN = lockstep node"));
  EXPECT_THAT(text, testing::HasSubstr("Issuer: CN = lockstep node"));
  EXPECT_THAT(text, testing::HasSubstr("ASN1 OID: prime256v1"));
  EXPECT_THAT(
      text, testing::HasSubstr("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"));
  EXPECT_THAT(text, testing::HasSubstr("Signature Algorithm: ecdsa-with-SHA256"));
  // Valid for ten years from now: still valid in 9.9 years, no longer in 10.1.
  EXPECT_THAT(RunShell("openssl x509 -in " + cert + " -noout -checkend 312000000"),
              testing::HasSubstr("will not expire"));
  EXPECT_THAT(RunShell("openssl x509 -in " + cert + " -noout -checkend 319000000"),
              testing::HasSubstr("will expire"));
  // It verifies against itself, as a pinned self-signed certificate must.
  EXPECT_THAT(RunShell("openssl verify -CAfile " + cert + " " + cert + " 2>&1"),
              testing::HasSubstr(": OK"));
}

TEST(ParseFingerprintTest, AcceptsCanonicalUppercaseAndColonSeparatedForms) {
  const std::string hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  const std::string canonical = "SHA256:" + hex;
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string separated;
  for (size_t i = 0; i < upper.size(); i += 2) {
    if (i > 0) separated += ':';
    separated += upper.substr(i, 2);
  }
  EXPECT_EQ(ParseFingerprint(canonical).value(), canonical);
  EXPECT_EQ(ParseFingerprint("SHA256:" + upper).value(), canonical);
  EXPECT_EQ(ParseFingerprint("SHA256:" + separated).value(), canonical);
}

TEST(ParseFingerprintTest, RejectsEverythingElse) {
  const std::string hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  for (const std::string& text : {
           std::string(""),
           hex,                                   // no prefix
           "sha1:" + hex,                         // other algorithm
           "SHA256:" + hex.substr(2),             // too short
           "SHA256:" + hex + "00",                // too long
           "SHA256:" + hex.substr(1) + "g",       // not hex
           "SHA256: " + hex.substr(1),            // space
           "SHA256:" + hex.substr(0, 62) + ":5",  // separator in the wrong place
           "SHA256:e3:b0" + hex.substr(4),        // separators in only part of it
       }) {
    Result<std::string> parsed = ParseFingerprint(text);
    ASSERT_FALSE(parsed.has_value()) << text;
    EXPECT_EQ(parsed.error().code(), StatusCode::kInvalidArgument) << text;
  }
  // 32 pairs separated by something other than ':'.
  std::string dashed;
  for (size_t i = 0; i < hex.size(); i += 2) dashed += (i > 0 ? "-" : "") + hex.substr(i, 2);
  EXPECT_FALSE(ParseFingerprint("SHA256:" + dashed).has_value());
}

}  // namespace
}  // namespace lockstep::security
