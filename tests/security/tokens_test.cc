#include "security/tokens.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace lockstep::security {
namespace {

namespace fs = std::filesystem;

class TokenStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "lockstep-tokens-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ / "hub";
  }
  void TearDown() override { fs::remove_all(root_); }

  TokenStore OpenStore() {
    Result<TokenStore> store = TokenStore::Open(dir_);
    EXPECT_TRUE(store.has_value()) << store.error().ToString();
    return std::move(store).value();
  }

  std::string TokensFile() {
    std::ifstream in(dir_ / "tokens", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  void WriteTokensFile(const std::string& text) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / "tokens", std::ios::binary | std::ios::trunc) << text;
  }

  fs::path root_;
  fs::path dir_;
};

const TokenGrant kReadStock{.collections = {"stock"}, .mode = TokenMode::kRead};
const TokenGrant kWriteTwo{.collections = {"customers", "stock"}, .mode = TokenMode::kReadWrite};
const std::string kHash(64, 'a');

TEST(TokenModeTest, ParsesROrRwOnly) {
  EXPECT_EQ(ParseTokenMode("r").value(), TokenMode::kRead);
  EXPECT_EQ(ParseTokenMode("rw").value(), TokenMode::kReadWrite);
  for (const char* text : {"", "w", "RW", "rw ", "read"}) {
    Result<TokenMode> mode = ParseTokenMode(text);
    ASSERT_FALSE(mode.has_value()) << text;
    EXPECT_EQ(mode.error().code(), StatusCode::kInvalidArgument);
  }
}

TEST_F(TokenStoreTest, MissingFileMeansNoTokens) {
  TokenStore store = OpenStore();
  Result<TokenGrant> grant = store.Verify("lst_anything");
  ASSERT_FALSE(grant.has_value());
  EXPECT_EQ(grant.error().code(), StatusCode::kUnauthenticated);
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(TokenStoreTest, CreatedTokenVerifiesToItsGrant) {
  TokenStore store = OpenStore();
  Result<std::string> token = store.Create(kWriteTwo);
  ASSERT_TRUE(token.has_value()) << token.error().ToString();
  EXPECT_THAT(*token, testing::MatchesRegex("lst_[a-z2-7]{52}"));
  EXPECT_EQ(store.Verify(*token).value(), kWriteTwo);
}

TEST_F(TokenStoreTest, UnknownTokenIsUnauthenticatedWithoutEchoingIt) {
  TokenStore store = OpenStore();
  Result<std::string> token = store.Create(kWriteTwo);
  ASSERT_TRUE(token.has_value());
  std::string wrong = *token;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  for (const std::string& candidate : {wrong, std::string("lst_secretguess"), std::string()}) {
    Result<TokenGrant> grant = store.Verify(candidate);
    ASSERT_FALSE(grant.has_value());
    EXPECT_EQ(grant.error().code(), StatusCode::kUnauthenticated);
    if (!candidate.empty()) {
      EXPECT_THAT(grant.error().message(), testing::Not(testing::HasSubstr(candidate)));
      EXPECT_THAT(grant.error().message(), testing::Not(testing::HasSubstr(candidate.substr(4))));
    }
  }
}

TEST_F(TokenStoreTest, FileHoldsOnlyHashesAndIsPrivate) {
  TokenStore store = OpenStore();
  Result<std::string> token = store.Create(kReadStock);
  ASSERT_TRUE(token.has_value());
  const std::string file = TokensFile();
  EXPECT_THAT(file, testing::Not(testing::HasSubstr(*token)));
  EXPECT_THAT(file, testing::Not(testing::HasSubstr(token->substr(4))));
  EXPECT_THAT(file, testing::MatchesRegex("[0-9a-f]{64} r stock\n"));
  struct stat info {};
  ASSERT_EQ(::stat((dir_ / "tokens").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(dir_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0700u);
}

TEST_F(TokenStoreTest, ReadOnlyAndReadWriteTokensKeepTheirModes) {
  TokenStore store = OpenStore();
  Result<std::string> reader = store.Create(kReadStock);
  Result<std::string> writer = store.Create(kWriteTwo);
  ASSERT_TRUE(reader.has_value() && writer.has_value());
  EXPECT_NE(*reader, *writer);
  EXPECT_EQ(store.Verify(*reader)->mode, TokenMode::kRead);
  EXPECT_EQ(store.Verify(*writer)->mode, TokenMode::kReadWrite);
}

TEST_F(TokenStoreTest, CoversListedCollectionsOrEveryOneWithStar) {
  EXPECT_TRUE(TokenStore::Covers(kWriteTwo, "stock"));
  EXPECT_TRUE(TokenStore::Covers(kWriteTwo, "customers"));
  EXPECT_FALSE(TokenStore::Covers(kWriteTwo, "orders"));
  EXPECT_FALSE(TokenStore::Covers(kWriteTwo, "stoc"));
  EXPECT_FALSE(TokenStore::Covers(kWriteTwo, "*"));
  const TokenGrant all{.collections = {"*"}, .mode = TokenMode::kRead};
  EXPECT_TRUE(TokenStore::Covers(all, "orders"));
  EXPECT_TRUE(TokenStore::Covers(all, "stock"));
  EXPECT_FALSE(TokenStore::Covers(TokenGrant{}, "stock"));
}

TEST_F(TokenStoreTest, StarGrantRoundTrips) {
  TokenStore store = OpenStore();
  const TokenGrant all{.collections = {"*"}, .mode = TokenMode::kRead};
  Result<std::string> token = store.Create(all);
  ASSERT_TRUE(token.has_value());
  Result<TokenGrant> grant = OpenStore().Verify(*token);
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(*grant, all);
  EXPECT_TRUE(TokenStore::Covers(*grant, "anything"));
}

TEST_F(TokenStoreTest, ReopenedStoreKnowsEveryToken) {
  std::string reader;
  std::string writer;
  {
    TokenStore store = OpenStore();
    reader = store.Create(kReadStock).value();
    writer = store.Create(kWriteTwo).value();
  }
  TokenStore reopened = OpenStore();
  EXPECT_EQ(reopened.Verify(reader).value(), kReadStock);
  EXPECT_EQ(reopened.Verify(writer).value(), kWriteTwo);
  // A token created after reopening is added, not written over the earlier ones.
  Result<std::string> third = reopened.Create(kReadStock);
  ASSERT_TRUE(third.has_value());
  TokenStore again = OpenStore();
  EXPECT_TRUE(again.Verify(reader).has_value());
  EXPECT_TRUE(again.Verify(writer).has_value());
  EXPECT_TRUE(again.Verify(*third).has_value());
}

TEST_F(TokenStoreTest, CreateSortsAndDeduplicatesCollections) {
  TokenStore store = OpenStore();
  Result<std::string> token =
      store.Create({.collections = {"stock", "customers", "stock"}, .mode = TokenMode::kReadWrite});
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(store.Verify(*token).value(), kWriteTwo);
  EXPECT_EQ(OpenStore().Verify(*token).value(), kWriteTwo);
}

TEST_F(TokenStoreTest, CreateRejectsGrantsThatCannotBeWritten) {
  TokenStore store = OpenStore();
  for (const TokenGrant& grant : {
           TokenGrant{.collections = {}, .mode = TokenMode::kRead},
           TokenGrant{.collections = {""}, .mode = TokenMode::kRead},
           TokenGrant{.collections = {"a,b"}, .mode = TokenMode::kRead},
           TokenGrant{.collections = {"a b"}, .mode = TokenMode::kRead},
           TokenGrant{.collections = {"a\nb"}, .mode = TokenMode::kRead},
       }) {
    Result<std::string> token = store.Create(grant);
    ASSERT_FALSE(token.has_value());
    EXPECT_EQ(token.error().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(fs::exists(dir_ / "tokens"));
}

TEST_F(TokenStoreTest, HandWrittenFileWithBlankLinesAndNoFinalNewlineParses) {
  WriteTokensFile("\n" + kHash + " r b,a\n\n" + std::string(64, 'b') + " rw *");
  TokenStore store = OpenStore();
  // The grant of a known hash can't be verified without its token; creating a new one proves the
  // file parsed and that the rewrite keeps the old lines.
  Result<std::string> token = store.Create(kReadStock);
  ASSERT_TRUE(token.has_value());
  EXPECT_THAT(TokensFile(),
              testing::StartsWith(kHash + " r a,b\n" + std::string(64, 'b') + " rw *\n"));
}

TEST_F(TokenStoreTest, MalformedFileIsDataLossNamingTheLineButNotItsText) {
  const std::string good = kHash + " r stock\n";
  const std::string secret = "lst_pastedbymistake";
  for (const std::string& bad : {
           secret,                               // a token pasted instead of a hash
           std::string(64, 'c') + " rw",         // no collections
           std::string(64, 'c') + " w stock",    // bad mode
           std::string(64, 'C') + " r stock",    // uppercase hash
           std::string(63, 'c') + " r stock",    // short hash
           std::string(64, 'c') + " r stock,",   // empty collection name
           std::string(64, 'c') + " r stock\r",  // CRLF line ending
           std::string(64, 'c') + "  r stock",   // double space
           kHash + " rw stock",                  // duplicate hash
       }) {
    WriteTokensFile(good + bad + "\n" + good);
    Result<TokenStore> store = TokenStore::Open(dir_);
    ASSERT_FALSE(store.has_value()) << bad;
    EXPECT_EQ(store.error().code(), StatusCode::kDataLoss) << bad;
    EXPECT_THAT(store.error().message(), testing::HasSubstr("line 2")) << bad;
    EXPECT_THAT(store.error().message(), testing::Not(testing::HasSubstr(bad))) << bad;
  }
  WriteTokensFile(secret + "\n");
  Result<TokenStore> store = TokenStore::Open(dir_);
  ASSERT_FALSE(store.has_value());
  EXPECT_THAT(store.error().message(), testing::HasSubstr("line 1"));
  EXPECT_THAT(store.error().message(), testing::Not(testing::HasSubstr("pastedbymistake")));
}

}  // namespace
}  // namespace lockstep::security
