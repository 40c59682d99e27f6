// Every PostgreSQL type Lockstep syncs, with extreme values, through SQLite and back into another
// PostgreSQL database unchanged; and bad input that must fail with one clear line, writing nothing.
#include <gtest/gtest.h>

#include <string>

#include "support/hub.h"
#include "support/node.h"
#include "support/postgres.h"
#include "support/process.h"

namespace lockstep::testing {
namespace {

constexpr char kEveryType[] = R"sql(
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE items(
  id integer PRIMARY KEY, s smallint, i integer, l bigint, n numeric, nd numeric(40, 10),
  r real, d double precision, t text, v varchar(12), c char(5), ok boolean, b bytea, u uuid,
  day date, ts timestamp, tz timestamptz, iv interval, j json, jb jsonb, ints integer[],
  texts text[], m mood);
INSERT INTO items VALUES
 (1, -32768, -2147483648, -9223372036854775808,
  -1234567890123456789012345678901234567890, -0.0000000001,
  '-Infinity', '-Infinity', '', '', '', false, '', '00000000-0000-0000-0000-000000000000',
  '4713-01-01 BC', '1900-01-01 00:00:00.000001', '1901-12-13 20:45:52+03:30',
  '-178000000 years', '[]', '{}', '{}', '{}', 'sad'),
 (2, 32767, 2147483647, 9223372036854775807,
  1234567890123456789012345678901234567890.123456789, 123456789012345678901234567890.0123456789,
  'NaN', 'NaN', '日本語 🎉 é ''quoted'' \ back', 'twelve chars', 'abc', true,
  '\x00ff00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '5874897-12-31', '2262-04-11 23:47:16.854775',
  '2200-06-30 12:00:00.999999-08', '1 mon -2 days 03:04:05.678901',
  '{"b": 1, "a": [1, 2.50]}', '{"b": 1, "a": [1, 2.50]}', '{1,NULL,-3}',
  '{"a,b","c\"d",NULL,""}', 'happy'),
 (3, NULL, NULL, NULL, 'NaN', NULL, 3.4028235e38, 2.2250738585072014e-308, NULL, NULL, NULL,
  NULL, decode(repeat('00ff', 500000), 'hex'), NULL, 'infinity', '-infinity', 'infinity',
  NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 0, 0, 'Infinity', 0, -0, -0, NULL, NULL, NULL, NULL, NULL, NULL, '1970-01-01',
  '1969-12-31 23:59:59.999999', '1969-12-31 23:59:59.999999+00', '0', 'null', 'null', NULL,
  NULL, NULL);
)sql";

// Every row of items as psql prints it, with the large bytea as its md5.
constexpr char kItems[] =
    "SELECT id, s, i, l, n, nd, r, d, t, v, c, ok, md5(b), u, day, ts, tz, iv, j, jb, ints, "
    "texts, m FROM items ORDER BY id";

constexpr char kColumnTypes[] =
    "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) "
    "FROM pg_attribute WHERE attrelid = 'items'::regclass AND attnum > 0";

std::string NameOf(const std::string& url) { return url.substr(url.rfind('/') + 1); }

class PostgresTypesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PostgresCluster::Shared().running());
    const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    source_ = PostgresCluster::Shared().CreateDatabase("src " + test);
  }

  ScratchDir dir_;
  std::string source_;
};

TEST_F(PostgresTypesTest, EveryTypeRoundTripsThroughSqliteIntoAnotherPostgres) {
  Psql(source_, kEveryType);
  const std::string edge = (dir_ / "edge.db").string();
  const std::string copy = PostgresCluster::Shared().CreateDatabase("copy");
  ProcessResult first = Lockstep({"sync", source_, edge});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // SQLite holds each value in the class that keeps it exactly.
  EXPECT_EQ(Sql(edge,
                "SELECT typeof(l), typeof(n), typeof(nd), typeof(d), typeof(ok), typeof(b), "
                "typeof(tz), typeof(ints) FROM items WHERE id = 2;"),
            "integer|text|text|null|integer|blob|text|text\n");  // NaN reads as NULL in SQLite
  EXPECT_EQ(Sql(edge, "SELECT n, ints, texts, ok FROM items WHERE id = 2;"),
            "1234567890123456789012345678901234567890.123456789|[1,null,-3]|"
            "[\"a,b\",\"c\\\"d\",null,\"\"]|1\n");
  EXPECT_EQ(Sql(edge, "SELECT tz FROM items WHERE id = 1;"), "1901-12-13 17:15:52+00\n");
  EXPECT_EQ(Sql(edge, "SELECT length(b) FROM items WHERE id = 3;"), "1000000\n");

  ProcessResult second = Lockstep({"sync", edge, copy});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(Psql(copy, kColumnTypes), Psql(source_, kColumnTypes));
  EXPECT_EQ(Psql(copy, kItems), Psql(source_, kItems));
  EXPECT_EQ(Psql(copy, "SELECT count(*) FROM items WHERE d = 'NaN' AND r = 'NaN'"), "1\n");
}

// Through a hub, which keeps its copy in SQLite, a table created in another PostgreSQL database
// still gets the original types: each schema offered travels with its columns' logical types.
TEST_F(PostgresTypesTest, EveryTypeKeepsItsTypeThroughAHubIntoAnotherPostgres) {
  Psql(source_, kEveryType);
  const std::string copy = PostgresCluster::Shared().CreateDatabase("hub copy");
  auto hub = Hub::Start({.plaintext = true});
  ASSERT_NE(hub, nullptr);
  const std::string token = hub->CreateToken("*", "rw");
  ProcessGuard source_node, copy_node;
  StartLiveNode(source_node, dir_.path(), "source", "postgres = \"" + source_ + "\"", hub->url(),
                token);
  const auto hub_holds_items = [&] {
    return std::filesystem::exists(hub->db()) &&
           Sql(hub->db(), "SELECT count(*) FROM sqlite_master WHERE name = 'items';") == "1\n" &&
           Sql(hub->db(), "SELECT count(*) FROM items;") == "4\n";
  };
  ASSERT_TRUE(WaitFor(hub_holds_items, std::chrono::seconds(30)))
      << ReadFile(dir_ / "source.err") << hub->Log();
  StartLiveNode(copy_node, dir_.path(), "copy", "postgres = \"" + copy + "\"", hub->url(), token);
  const auto arrived = [&] {
    return Psql(copy, "SELECT count(*) FROM pg_tables WHERE tablename = 'items'") == "1\n" &&
           Psql(copy, "SELECT count(*) FROM items") == "4\n";
  };
  ASSERT_TRUE(WaitFor(arrived, std::chrono::seconds(30)))
      << ReadFile(dir_ / "copy.err") << ReadFile(dir_ / "source.err") << hub->Log();
  EXPECT_EQ(Psql(copy, kColumnTypes), Psql(source_, kColumnTypes));
  EXPECT_EQ(Psql(copy, kItems), Psql(source_, kItems));
  EXPECT_EQ(source_node.Terminate(std::chrono::seconds(10)), 0) << ReadFile(dir_ / "source.err");
  EXPECT_EQ(copy_node.Terminate(std::chrono::seconds(10)), 0) << ReadFile(dir_ / "copy.err");
}

TEST_F(PostgresTypesTest, EditsMadeInSqliteArriveInTheColumnsOwnType) {
  Psql(source_, kEveryType);
  const std::string edge = (dir_ / "edge.db").string();
  ASSERT_EQ(Lockstep({"sync", source_, edge}).exit_code, 0);
  Sql(edge,
      "UPDATE items SET nd = '42.5', tz = '2030-01-01 10:00:00+02', ints = '[4,5]', ok = 0, "
      "iv = 'P1DT2H', day = '2024-02-29', m = 'ok', b = x'0102' WHERE id = 1;");
  ProcessResult sync = Lockstep({"sync", source_, edge});
  ASSERT_EQ(sync.exit_code, 0) << sync.err;
  EXPECT_EQ(Psql(source_, "SELECT nd, tz, ints, ok, iv, day, m, b FROM items WHERE id = 1"),
            "42.5000000000|2030-01-01 08:00:00+00|{4,5}|f|1 day 02:00:00|2024-02-29|ok|\\x0102\n");
}

TEST_F(PostgresTypesTest, UnsupportedTypeIsRefusedNamingTheColumnAndNothingIsWritten) {
  Psql(source_,
       "CREATE TABLE shapes(id int PRIMARY KEY, p point); INSERT INTO shapes VALUES (1, '(1,2)')");
  const std::string edge = (dir_ / "edge.db").string();
  ProcessResult sync = Lockstep({"sync", source_, edge, "--tables", "shapes"});
  EXPECT_NE(sync.exit_code, 0);
  EXPECT_NE(sync.err.find("column 'p' of table 'shapes' has type point"), std::string::npos)
      << sync.err;
  EXPECT_EQ(std::count(sync.err.begin(), sync.err.end(), '\n'), 1) << sync.err;
  EXPECT_FALSE(std::filesystem::exists(edge));
  EXPECT_EQ(Psql(source_, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_lockstep%'"),
            "0\n");
}

TEST_F(PostgresTypesTest, TableWithoutPrimaryKeyIsRefusedByNameAndSkippedOtherwise) {
  Psql(source_, "CREATE TABLE logs(line text); CREATE TABLE t(id int PRIMARY KEY);");
  const std::string edge = (dir_ / "edge.db").string();
  ProcessResult named = Lockstep({"sync", source_, edge, "--tables", "logs"});
  EXPECT_NE(named.exit_code, 0);
  EXPECT_NE(named.err.find("table 'logs' has no primary key"), std::string::npos) << named.err;
  EXPECT_FALSE(std::filesystem::exists(edge));
  ProcessResult found = Lockstep({"sync", source_, edge});
  EXPECT_EQ(found.exit_code, 0) << found.err;
  EXPECT_NE(found.out.find("skipped table logs"), std::string::npos) << found.out;
}

TEST_F(PostgresTypesTest, WrongPasswordAndUnreachableServerFailWithOneLine) {
  PostgresCluster& cluster = PostgresCluster::Shared();
  const std::string edge = (dir_ / "edge.db").string();
  ProcessResult wrong =
      Lockstep({"sync", cluster.UrlWithPassword(NameOf(source_), "wrong-password"), edge});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("password authentication failed"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("wrong-password"), std::string::npos) << "the password is shown";
  EXPECT_EQ(std::count(wrong.err.begin(), wrong.err.end(), '\n'), 1) << wrong.err;

  const std::string closed =
      "postgres://lockstep:pw@127.0.0.1:" + std::to_string(FreePort()) + "/x";
  ProcessResult unreachable =
      RunWithin({LockstepBinary(), "sync", closed, edge}, std::chrono::seconds(30));
  EXPECT_NE(unreachable.exit_code, 0);
  EXPECT_NE(unreachable.err.find("Connection refused"), std::string::npos) << unreachable.err;
  EXPECT_FALSE(std::filesystem::exists(edge));
}

// `lockstep reset FILE postgres://...`: a SQLite file is rebuilt from a PostgreSQL peer and keeps
// its unsynced writes; the password is never shown.
TEST_F(PostgresTypesTest, ResetRebuildsAFileFromPostgres) {
  Psql(source_, "CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');");
  const std::string edge = (dir_ / "edge.db").string();
  ASSERT_EQ(Lockstep({"sync", source_, edge}).exit_code, 0);
  Sql(edge, "UPDATE t SET v = 'by edge' WHERE id = 1; INSERT INTO t VALUES (2, 'two');");
  Psql(source_, "INSERT INTO t VALUES (3, 'three');");

  ProcessResult reset = Lockstep({"reset", edge, source_});
  ASSERT_EQ(reset.exit_code, 0) << reset.err << reset.out;
  EXPECT_NE(reset.out.find("kept 2 unsynced writes"), std::string::npos) << reset.out;
  EXPECT_EQ(reset.out.find(PostgresCluster::Shared().password()), std::string::npos) << reset.out;
  const std::string expected = "1|by edge\n2|two\n3|three\n";
  EXPECT_EQ(Sql(edge, "SELECT * FROM t ORDER BY id;"), expected);
  EXPECT_EQ(Psql(source_, "SELECT * FROM t ORDER BY id;"), expected);
}

// A PostgreSQL database away beyond its peer's retention is refused, then `lockstep reset
// postgres://... FILE` rebuilds it: it keeps its own unsynced writes and deletes, takes the
// peer's, and does not bring back a row the peer deleted; afterwards both sync as usual.
TEST_F(PostgresTypesTest, APostgresDatabaseAwayBeyondTheRetentionIsReset) {
  Psql(source_,
       "CREATE TABLE t(id int PRIMARY KEY, v text); "
       "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 6) AS i;");
  const std::string edge = (dir_ / "edge.db").string();
  const std::string other = (dir_ / "other.db").string();
  ASSERT_EQ(Lockstep({"sync", source_, edge}).exit_code, 0);
  ASSERT_EQ(Lockstep({"sync", edge, other}).exit_code, 0);
  // While PostgreSQL is away: the edge deletes row 2 (and the other file learns it) and edits row
  // 1; PostgreSQL edits on its own.
  Sql(edge, "DELETE FROM t WHERE id = 2; UPDATE t SET v = 'by edge' WHERE id = 1;");
  ASSERT_EQ(Lockstep({"sync", edge, other}).exit_code, 0);
  Psql(source_,
       "UPDATE t SET v = 'by pg' WHERE id = 3; INSERT INTO t VALUES (50, 'fifty'); "
       "DELETE FROM t WHERE id = 4;");
  Sql(edge,
      "UPDATE _lockstep_records SET deleted_ms = deleted_ms - 40 * 86400000 "
      "WHERE deleted_ms IS NOT NULL;");

  ProcessResult refused = Lockstep({"sync", edge, source_});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("reset required: "), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("run `lockstep reset "), std::string::npos) << refused.err;
  EXPECT_EQ(refused.err.find(PostgresCluster::Shared().password()), std::string::npos);
  EXPECT_EQ(Psql(source_, "SELECT count(*) FROM t WHERE id = 2;"), "1\n");  // nothing moved

  ProcessResult reset = Lockstep({"reset", source_, edge});
  ASSERT_EQ(reset.exit_code, 0) << reset.err << reset.out;
  EXPECT_NE(reset.out.find("kept 2 unsynced writes and 1 unsynced delete"), std::string::npos)
      << reset.out;
  EXPECT_EQ(reset.out.find(PostgresCluster::Shared().password()), std::string::npos) << reset.out;
  const std::string expected = "1|by edge\n3|by pg\n5|v5\n6|v6\n50|fifty\n";
  EXPECT_EQ(Psql(source_, "SELECT * FROM t ORDER BY id;"), expected);
  EXPECT_EQ(Sql(edge, "SELECT * FROM t ORDER BY id;"), expected);
  EXPECT_EQ(Lockstep({"verify", source_, edge}).exit_code, 0);
  // The delete it kept was owed between the rebuild and its sync, and made then.
  EXPECT_EQ(Psql(source_, "SELECT to_regclass('_lockstep_pending_deletes') IS NULL;"), "t\n");
  // The database has a new identity and syncs as usual from now on; the other file catches up.
  Psql(source_, "UPDATE t SET v = 'later' WHERE id = 5;");
  ASSERT_EQ(Lockstep({"sync", source_, edge}).exit_code, 0);
  ASSERT_EQ(Lockstep({"sync", edge, other}).exit_code, 0);
  EXPECT_EQ(Sql(other, "SELECT * FROM t ORDER BY id;"),
            "1|by edge\n3|by pg\n5|later\n6|v6\n50|fifty\n");
}

TEST_F(PostgresTypesTest, TableAlteredWhileSyncedIsRefusedAndNothingIsApplied) {
  Psql(source_, "CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');");
  const std::string edge = (dir_ / "edge.db").string();
  ASSERT_EQ(Lockstep({"sync", source_, edge}).exit_code, 0);
  Psql(source_, "ALTER TABLE t ADD COLUMN extra int; UPDATE t SET v = 'pg' WHERE id = 1;");
  Sql(edge, "INSERT INTO t VALUES (2, 'two');");
  ProcessResult sync = Lockstep({"sync", source_, edge});
  EXPECT_NE(sync.exit_code, 0);
  EXPECT_NE(sync.err.find("table 't' has different columns"), std::string::npos) << sync.err;
  EXPECT_EQ(Psql(source_, "SELECT id, v FROM t ORDER BY id"), "1|pg\n");
  EXPECT_EQ(Sql(edge, "SELECT id, v FROM t ORDER BY id;"), "1|one\n2|two\n");
}

}  // namespace
}  // namespace lockstep::testing
