// Rows new to a PostgreSQL database are bulk loaded (COPY in text form) when a batch brings many:
// every type the load can write, with NULLs, empty values, unicode, text that COPY must escape,
// large bytea and composite keys, arrives as the upserts would have written it, PostgreSQL to
// PostgreSQL and SQLite to PostgreSQL. A row that is there already (written past the capture)
// makes the load fail and the upserts take over in the same apply.
#include <gtest/gtest.h>

#include <string>

#include "support/node.h"
#include "support/postgres.h"
#include "support/process.h"

namespace lockstep::testing {
namespace {

// Every type but arrays (which the upserts build from JSON, so their tables are not loaded), 1,000
// rows keyed by (region, id).
constexpr char kManyRows[] = R"sql(
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE many(
  region text, id integer, s smallint, l bigint, n numeric, nd numeric(40, 10), r real,
  d double precision, t text, v varchar(12), c char(5), ok boolean, b bytea, u uuid, day date,
  ts timestamp, tz timestamptz, iv interval, j json, jb jsonb, m mood,
  PRIMARY KEY (region, id));
INSERT INTO many SELECT
  CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'ünï ☃ ' || E'\t' END, g,
  CASE WHEN g % 5 = 0 THEN NULL ELSE (g % 32767)::smallint END,
  CASE WHEN g = 1 THEN -9223372036854775808 WHEN g = 2 THEN 9223372036854775807 ELSE g * 1000003
  END,
  CASE WHEN g = 3 THEN 'NaN' WHEN g % 7 = 0 THEN NULL
       ELSE 1234567890123456789012345678901234567890.5 / g END,
  (g / 7.0)::numeric(40, 10),
  CASE WHEN g = 4 THEN 'Infinity'::real ELSE g / 3.0 END,
  CASE WHEN g = 5 THEN '-Infinity' WHEN g = 6 THEN 'NaN' ELSE 1.0 / g END,
  CASE WHEN g % 9 = 0 THEN NULL WHEN g % 9 = 1 THEN ''
       ELSE 'line ' || g || E'\ttab\nnewline\r\\back \\N \\. 日本語 🎉' END,
  left('v' || g, 12), 'c' || (g % 10),
  CASE WHEN g % 4 = 0 THEN NULL ELSE g % 2 = 0 END,
  CASE WHEN g % 10 = 0 THEN NULL WHEN g % 10 = 1 THEN ''::bytea
       WHEN g = 2 THEN decode(repeat('00ff095c0a', 300000), 'hex')
       ELSE decode(md5(g::text), 'hex') || '\x000a5c'::bytea END,
  md5(g::text)::uuid, DATE '1900-01-01' + g * 300,
  TIMESTAMP '1969-12-31 23:59:59.999999' + g * INTERVAL '77 days 1 second',
  TIMESTAMPTZ '2100-06-30 12:00:00.5+05' - g * INTERVAL '13 days',
  g * INTERVAL '1 day 2 hours 3.5 seconds',
  json_build_object('g', g, 's', E'a\tb'), jsonb_build_object('g', g),
  (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::mood
FROM generate_series(1, 1000) g;
)sql";

// Every row as psql prints it, bytea as its md5.
constexpr char kDump[] =
    "SELECT region, id, s, l, n, nd, r, d, t, v, c, ok, md5(b), b IS NULL, u, day, ts, tz, iv, j, "
    "jb, m FROM many ORDER BY region, id";

// A statement trigger on `table` that notes the start of each statement writing it: a load shows
// as COPY.
std::string NoteStatementsSql(const std::string& table) {
  return "CREATE TABLE IF NOT EXISTS seen(query text);"
         "CREATE OR REPLACE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
         "INSERT INTO seen VALUES (left(current_query(), 4)); RETURN NULL; END $$;"
         "CREATE TRIGGER note BEFORE INSERT ON " +
         table + " FOR EACH STATEMENT EXECUTE FUNCTION note();";
}

class PostgresBulkLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PostgresCluster::Shared().running());
    source_ = PostgresCluster::Shared().CreateDatabase("bulk source");
  }

  // A database holding `many` as the source made it, empty, with its writes noted.
  std::string EmptyCopy(const std::string& hint) {
    const std::string copy = PostgresCluster::Shared().CreateDatabase(hint);
    Psql(copy, std::string(kManyRows).substr(0, std::string(kManyRows).find("INSERT")) +
                   NoteStatementsSql("many"));
    return copy;
  }

  ScratchDir dir_;
  std::string source_;
};

TEST_F(PostgresBulkLoadTest, ManyRowsOfEveryTypeAreLoadedIntoPostgresUnchanged) {
  Psql(source_, kManyRows);
  const std::string copy = EmptyCopy("bulk copy");
  ProcessResult direct = Lockstep({"sync", source_, copy});
  ASSERT_EQ(direct.exit_code, 0) << direct.err;
  EXPECT_EQ(Psql(copy, "SELECT count(*) FROM many"), "1000\n");
  EXPECT_EQ(Psql(copy, kDump), Psql(source_, kDump));
  // The rows came in a load, not in upserts.
  EXPECT_EQ(Psql(copy, "SELECT DISTINCT query FROM seen"), "COPY\n");

  // Through SQLite, whose values (numeric as text, booleans as 0 and 1, ...) are loaded back as
  // the upserts would read them.
  const std::string edge = (dir_ / "edge.db").string();
  ProcessResult out = Lockstep({"sync", source_, edge});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  const std::string back = EmptyCopy("bulk back");
  ProcessResult in = Lockstep({"sync", edge, back});
  ASSERT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(Psql(back, kDump), Psql(source_, kDump));
  EXPECT_EQ(Psql(back, "SELECT DISTINCT query FROM seen"), "COPY\n");
}

TEST_F(PostgresBulkLoadTest, RowsWrittenPastTheCaptureAreUpsertedWhenTheLoadMeetsThem) {
  Psql(source_, "CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t VALUES (0, 'first');");
  const std::string copy = PostgresCluster::Shared().CreateDatabase("bulk past capture");
  ASSERT_EQ(Lockstep({"sync", source_, copy}).exit_code, 0);
  // Rows the copy's store never learns of: written as Lockstep's own applies write, uncaptured.
  Psql(copy,
       "BEGIN; SET LOCAL lockstep.applying = 'on'; "
       "INSERT INTO t SELECT g, 'stale ' || g FROM generate_series(1, 600, 2) g; COMMIT;");
  Psql(source_, "INSERT INTO t SELECT g, 'fresh ' || g FROM generate_series(1, 600) g;");
  ProcessResult sync = Lockstep({"sync", source_, copy});
  ASSERT_EQ(sync.exit_code, 0) << sync.err;
  const char* dump = "SELECT id, v FROM t ORDER BY id";
  EXPECT_EQ(Psql(copy, dump), Psql(source_, dump));
  EXPECT_EQ(Psql(copy, "SELECT count(*) FROM t WHERE v LIKE 'stale%'"), "0\n");
}

}  // namespace
}  // namespace lockstep::testing
