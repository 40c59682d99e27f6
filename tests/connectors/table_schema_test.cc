// A peer's CREATE statement is read without running anything else: exactly one CREATE TABLE of
// the named table, with no file attached along the way.
#include "connectors/sqlite/table_schema.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace lockstep::connectors::sqlite {
namespace {

TEST(ReadCreateStatementTest, ReadsColumnsKeyAndDeclaredTypes) {
  Result<TableSchema> schema = ReadCreateStatement(
      "t", "CREATE TABLE t (id INTEGER, region TEXT, price NUMERIC, PRIMARY KEY (region, id));");
  ASSERT_TRUE(schema.has_value()) << schema.error().message();
  ASSERT_EQ(schema->columns.size(), 3u);
  EXPECT_EQ(schema->columns[2].name, "price");
  EXPECT_EQ(schema->columns[2].declared_type, "NUMERIC");
  EXPECT_EQ(schema->key, (std::vector<std::string>{"region", "id"}));
  EXPECT_EQ(schema->non_key, (std::vector<std::string>{"price"}));
}

TEST(ReadCreateStatementTest, RefusesAnythingButOneCreateTableOfThatName) {
  const std::filesystem::path planted =
      std::filesystem::temp_directory_path() / "lockstep-read-create-statement-test.db";
  std::filesystem::remove(planted);
  for (const std::string& sql :
       {std::string("CREATE TABLE t (id INTEGER PRIMARY KEY); DROP TABLE u"),
        std::string("CREATE TABLE t (id INTEGER PRIMARY KEY); CREATE TABLE u (id PRIMARY KEY)"),
        std::string("CREATE TABLE other (id INTEGER PRIMARY KEY)"),
        std::string("CREATE VIEW t AS SELECT 1 AS id"),
        std::string("CREATE TEMP TABLE t (id INTEGER PRIMARY KEY)"),
        std::string("ATTACH '") + planted.string() + "' AS x",
        std::string("CREATE TABLE t (id INTEGER PRIMARY KEY"), std::string("")}) {
    Result<TableSchema> schema = ReadCreateStatement("t", sql);
    EXPECT_FALSE(schema.has_value()) << sql;
  }
  EXPECT_FALSE(std::filesystem::exists(planted));
}

TEST(ReadCreateStatementTest, RefusesATableWithoutPrimaryKey) {
  Result<TableSchema> schema = ReadCreateStatement("t", "CREATE TABLE t (id INTEGER, v TEXT)");
  ASSERT_FALSE(schema.has_value());
  EXPECT_EQ(schema.error().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace lockstep::connectors::sqlite
