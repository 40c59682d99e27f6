// Every kind of table and every SQLite storage class survives a sync exactly: the real `lockstep`
// binary between databases written and read by the real sqlite3 CLI.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/process.h"

namespace lockstep::testing {
namespace {

namespace fs = std::filesystem;

// A value as exactly as SQL can show it: its storage class, then its bytes (text and blobs in hex,
// blobs over 64 bytes by length and SHA3), its exact decimal (reals), and the sign of a zero.
std::string Exact(const std::string& column) {
  const std::string c = column;
  return "typeof(" + c + ") || ' ' || CASE typeof(" + c + ")" +
         " WHEN 'blob' THEN CASE WHEN length(" + c + ") > 64 THEN length(" + c +
         ") || ' bytes, sha3 ' || hex(sha3(" + c + ")) ELSE 'x''' || hex(" + c + ") || '''' END" +
         " WHEN 'text' THEN quote(" + c + ") || ' x''' || hex(" + c + ") || ''''" +
         " WHEN 'real' THEN CASE WHEN " + c + " = 0 THEN CASE WHEN atan2(" + c +
         ", -1) < 0 THEN '-0.0' ELSE '+0.0' END ELSE quote(" + c + ") END" + " ELSE quote(" + c +
         ") END";
}

// Every row of `table`, each column shown by Exact(), ordered by `order_by`.
std::string ExactDump(const fs::path& db, const std::string& table,
                      const std::vector<std::string>& columns, const std::string& order_by) {
  std::string select;
  for (const std::string& column : columns) {
    select += (select.empty() ? "" : " || ' | ' || ") + Exact(column);
  }
  return Sql(db, "SELECT " + select + " FROM " + table + " ORDER BY " + order_by + ";");
}

void SyncOk(const fs::path& a, const fs::path& b) {
  const ProcessResult result = Lockstep({"sync", a.string(), b.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

// One row per storage class and edge value, in a column without affinity so SQLite keeps each
// value's class as written.
constexpr char kEveryClass[] = R"sql(
CREATE TABLE v(id INTEGER PRIMARY KEY, x);
INSERT INTO v VALUES
  (1, NULL),
  (2, -9223372036854775808),
  (3, 9223372036854775807),
  (4, 0),
  (5, 1e308),
  (6, -0.0),
  (7, 0.0),
  (8, 0.1),
  (9, -1.5e-300),
  (10, 4.9e-324),
  (11, ''),
  (12, 'emoji 😀👩‍👩‍👧, CJK 漢字かな한글, combining e' || char(0x301) || ' a' || char(0x30A)),
  (13, 'embedded ''single'' and "double" quotes, a back\slash, a' || char(10) || 'newline'),
  (14, CAST(x'61006263' AS TEXT)),
  (15, x''),
  (16, x'00ff00'),
  (17, randomblob(3000000)),
  (18, 1.0),
  (19, '1');
)sql";

TEST(StorageClassTest, EveryStorageClassRoundTripsExactly) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a, kEveryClass);
  const std::string written = ExactDump(a, "v", {"id", "x"}, "id");
  ASSERT_NE(written.find("real -0.0"), std::string::npos) << "sqlite3 did not keep -0.0:\n"
                                                          << written;

  SyncOk(a, b);

  EXPECT_EQ(ExactDump(b, "v", {"id", "x"}, "id"), written);
  EXPECT_EQ(ExactDump(a, "v", {"id", "x"}, "id"), written);
  EXPECT_EQ(Sql(b, "SELECT count(*) FROM v WHERE x = 0.1 AND id = 8;"), "1\n");
}

TEST(StorageClassTest, EveryStorageClassRoundTripsBackToTheFirstDatabase) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a, "CREATE TABLE v(id INTEGER PRIMARY KEY, x);");
  SyncOk(a, b);
  Sql(b, std::string(kEveryClass).substr(std::string(kEveryClass).find("INSERT")));
  const std::string written = ExactDump(b, "v", {"id", "x"}, "id");

  SyncOk(a, b);

  EXPECT_EQ(ExactDump(a, "v", {"id", "x"}, "id"), written);
}

TEST(StorageClassTest, ColumnWhoseTypeDiffersPerRowKeepsEachRowsClass) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  // The key column has no declared type either: 1, '1', x'31' and 1.5 are four different keys.
  Sql(a,
      "CREATE TABLE m(k PRIMARY KEY, x);"
      "INSERT INTO m VALUES (1, 42), ('1', '42'), (x'31', x'3432'), (1.5, 42.0), (2, NULL);");
  const std::string written = ExactDump(a, "m", {"k", "x"}, "typeof(k), k");
  ASSERT_EQ(Sql(a, "SELECT count(*) FROM m;"), "5\n");

  SyncOk(a, b);

  EXPECT_EQ(ExactDump(b, "m", {"k", "x"}, "typeof(k), k"), written);
}

// Changing only a value's storage class is a change: where the column has no affinity, 1 and 1.0
// and '1' and x'31' are four different values and each must reach the other side.
TEST(StorageClassTest, ChangeOfStorageClassAloneReplicates) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a,
      "CREATE TABLE v(id INTEGER PRIMARY KEY, x);"
      "INSERT INTO v VALUES (1, 1), (2, 2.0), (3, 'ab'), (4, x'6162'), (5, 7);");
  SyncOk(a, b);

  Sql(a,
      "UPDATE v SET x = 1.0 WHERE id = 1; UPDATE v SET x = 2 WHERE id = 2;"
      "UPDATE v SET x = x'6162' WHERE id = 3; UPDATE v SET x = 'ab' WHERE id = 4;"
      "UPDATE v SET x = '7' WHERE id = 5;");
  SyncOk(a, b);

  EXPECT_EQ(ExactDump(b, "v", {"id", "x"}, "id"), ExactDump(a, "v", {"id", "x"}, "id"));
}

// In a REAL column SQLite itself turns 1 into 1.0: both sides show the column's class.
TEST(StorageClassTest, ColumnAffinityIsAppliedAlikeOnBothSides) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a,
      "CREATE TABLE r(id INTEGER PRIMARY KEY, f REAL, i INTEGER, t TEXT, n NUMERIC);"
      "INSERT INTO r VALUES (1, 1, '2', 3, '4.0'), (2, 'x', 2.5, 1.5, 'y'), (3, NULL, NULL, "
      "NULL, x'00');");
  SyncOk(a, b);
  Sql(b, "UPDATE r SET f = 7, i = '8', t = 9 WHERE id = 1;");
  SyncOk(a, b);

  const std::vector<std::string> columns{"id", "f", "i", "t", "n"};
  EXPECT_EQ(ExactDump(a, "r", columns, "id"), ExactDump(b, "r", columns, "id"));
  EXPECT_EQ(Sql(a, "SELECT typeof(f), typeof(i), typeof(t) FROM r WHERE id = 1;"),
            "real|integer|text\n");
}

TEST(StorageClassTest, MultiMegabyteBlobRoundTripsBothWays) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a,
      "CREATE TABLE f(name TEXT PRIMARY KEY, data BLOB);"
      "INSERT INTO f VALUES ('big', randomblob(3000000)), ('empty', x''), ('none', NULL);");
  SyncOk(a, b);
  const std::vector<std::string> columns{"name", "data"};
  EXPECT_EQ(ExactDump(b, "f", columns, "name"), ExactDump(a, "f", columns, "name"));
  EXPECT_EQ(Sql(b, "SELECT length(data) FROM f WHERE name = 'big';"), "3000000\n");

  Sql(b,
      "UPDATE f SET data = randomblob(3000000) WHERE name = 'big';"
      "UPDATE f SET data = x'' WHERE name = 'none'; UPDATE f SET data = NULL WHERE name = "
      "'empty';");
  SyncOk(a, b);

  EXPECT_EQ(ExactDump(a, "f", columns, "name"), ExactDump(b, "f", columns, "name"));
  EXPECT_EQ(Sql(a, "SELECT typeof(data) FROM f ORDER BY name;"), "blob\nnull\nblob\n");
}

TEST(StorageClassTest, RowidTableKeepsExtremeIntegerKeys) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a,
      "CREATE TABLE r(id INTEGER PRIMARY KEY, x TEXT);"
      "INSERT INTO r VALUES (-9223372036854775808, 'min'), (-1, 'minus one'), (0, 'zero'),"
      "(9223372036854775807, 'max');");
  SyncOk(a, b);
  Sql(b,
      "UPDATE r SET x = 'max by b' WHERE id = 9223372036854775807;"
      "DELETE FROM r WHERE id = 0;");
  Sql(a, "UPDATE r SET x = 'min by a' WHERE id = -9223372036854775808;");

  SyncOk(a, b);

  const std::string expected =
      "-9223372036854775808|min by a\n-1|minus one\n9223372036854775807|max by b\n";
  EXPECT_EQ(Sql(a, "SELECT * FROM r ORDER BY id;"), expected);
  EXPECT_EQ(Sql(b, "SELECT * FROM r ORDER BY id;"), expected);
}

TEST(StorageClassTest, CompositePrimaryKeyRowsSyncByTheWholeKey) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a,
      "CREATE TABLE c(region TEXT, n INTEGER, x, PRIMARY KEY(region, n));"
      "INSERT INTO c VALUES ('eu', 1, 'eu1'), ('eu', 2, 'eu2'), ('us', 1, 'us1');");
  SyncOk(a, b);
  Sql(b,
      "UPDATE c SET x = 'eu1 by b' WHERE region = 'eu' AND n = 1; DELETE FROM c WHERE "
      "region = 'us' AND n = 1; INSERT INTO c VALUES ('us', 2, 'us2');");
  Sql(a, "INSERT INTO c VALUES ('eu', 3, 'eu3'); UPDATE c SET x = 'eu2 by a' WHERE n = 2;");

  SyncOk(a, b);

  const std::string expected = "eu|1|eu1 by b\neu|2|eu2 by a\neu|3|eu3\nus|2|us2\n";
  EXPECT_EQ(Sql(a, "SELECT * FROM c ORDER BY region, n;"), expected);
  EXPECT_EQ(Sql(b, "SELECT * FROM c ORDER BY region, n;"), expected);
}

// A key column changed by an UPDATE is a delete of the old key and an insert of the new one.
TEST(StorageClassTest, UpdateOfAKeyColumnMovesTheRow) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  Sql(a,
      "CREATE TABLE c(region TEXT, n INTEGER, x, PRIMARY KEY(region, n));"
      "INSERT INTO c VALUES ('eu', 1, 'eu1'), ('us', 1, 'us1');");
  SyncOk(a, b);
  Sql(a, "UPDATE c SET n = 9 WHERE region = 'eu';");

  SyncOk(a, b);

  EXPECT_EQ(Sql(b, "SELECT * FROM c ORDER BY region, n;"), "eu|9|eu1\nus|1|us1\n");
}

TEST(StorageClassTest, WithoutRowidTableSyncs) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  // The key's column order differs from the table's.
  Sql(a,
      "CREATE TABLE w(k TEXT, j INTEGER, x, PRIMARY KEY(j, k)) WITHOUT ROWID;"
      "INSERT INTO w VALUES ('a', 1, 1.5), ('b', 1, x'ff'), ('a', 2, NULL);");
  SyncOk(a, b);
  ASSERT_NE(Sql(b, "SELECT sql FROM sqlite_master WHERE name = 'w';").find("WITHOUT ROWID"),
            std::string::npos);
  Sql(b, "UPDATE w SET x = 'two' WHERE j = 2; DELETE FROM w WHERE k = 'b';");
  Sql(a, "INSERT INTO w VALUES ('c', 3, -7);");

  SyncOk(a, b);

  const std::vector<std::string> columns{"j", "k", "x"};
  const std::string expected = ExactDump(a, "w", columns, "j, k");
  EXPECT_EQ(expected,
            "integer 1 | text 'a' x'61' | real 1.5\n"
            "integer 2 | text 'a' x'61' | text 'two' x'74776F'\n"
            "integer 3 | text 'c' x'63' | integer -7\n");
  EXPECT_EQ(ExactDump(b, "w", columns, "j, k"), expected);
}

TEST(StorageClassTest, TextPrimaryKeysSyncWhateverTheirCharacters) {
  ScratchDir dir;
  const fs::path a = dir / "a.db", b = dir / "b.db";
  // é precomposed and e + combining acute are different keys; so are 'a:b' and the empty key.
  Sql(a,
      "CREATE TABLE tx(name TEXT PRIMARY KEY, x);"
      "INSERT INTO tx VALUES ('it''s \"quoted\"', 1), ('漢字', 2), ('😀', 3), ('é', 4),"
      "('e' || char(0x301), 5), ('a:b', 6), ('', 7), (' ', 8), ('A', 9), ('a', 10);");
  SyncOk(a, b);
  Sql(b,
      "UPDATE tx SET x = 'by b' WHERE name IN ('漢字', 'e' || char(0x301), 'a:b');"
      "DELETE FROM tx WHERE name IN ('', 'A');");
  Sql(a, "UPDATE tx SET x = 'by a' WHERE name IN ('😀', 'é', 'it''s \"quoted\"');");

  SyncOk(a, b);

  const std::vector<std::string> columns{"name", "x"};
  const std::string expected = ExactDump(a, "tx", columns, "name");
  EXPECT_EQ(ExactDump(b, "tx", columns, "name"), expected);
  EXPECT_EQ(Sql(b, "SELECT count(*) FROM tx WHERE x = 'by a';"), "3\n");
  EXPECT_EQ(Sql(b, "SELECT count(*) FROM tx WHERE x = 'by b';"), "3\n");
  EXPECT_EQ(Sql(b, "SELECT count(*) FROM tx;"), "8\n");
}

}  // namespace
}  // namespace lockstep::testing
