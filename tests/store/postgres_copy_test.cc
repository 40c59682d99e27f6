// PostgreSQL's bulk load (PostgresDb::CopyInto) writes exactly what a prepared INSERT of the same
// values writes, in both formats: NULLs and empty values, every byte in bytea, text that the text
// format must escape, unicode, extreme numbers, and values larger than one piece of the stream.
// And store::LoadOrWrite: a load that fails leaves nothing behind and the statements take over.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "store/bulk_load.h"
#include "store/postgres_db.h"
#include "store_test_support.h"
#include "support/postgres.h"

namespace lockstep::store {
namespace {

using lockstep::testing::PostgresCluster;
using lockstep::testing::Psql;
using testing::Check;
using testing::Take;

std::string EveryByte() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  return bytes;
}

// Rows of (id, i, f, t, b): the values both paths write.
std::vector<std::vector<Value>> Rows() {
  const std::string big_text(3'000'000, 'x');  // more than one piece of the stream
  std::string big_bytes = EveryByte();
  while (big_bytes.size() < 3'000'000) big_bytes += big_bytes;
  return {
      {Value::Int(1), Value::Null(), Value::Null(), Value::Null(), Value::Null()},
      {Value::Int(2), Value::Int(0), Value::Float(0.0), Value::Text(""), Value::Bytes("")},
      {Value::Int(3), Value::Int(std::numeric_limits<int64_t>::min()),
       Value::Float(std::numeric_limits<double>::quiet_NaN()),
       Value::Text("tab\there\nnewline\r\\back\\slash \\N \\. end"), Value::Bytes(EveryByte())},
      {Value::Int(4), Value::Int(std::numeric_limits<int64_t>::max()),
       Value::Float(std::numeric_limits<double>::infinity()),
       Value::Text("日本語 🎉 é 'quoted' \"double\""), Value::Bytes(std::string("\0\t\n\\", 4))},
      {Value::Int(5), Value::Int(-1), Value::Float(-std::numeric_limits<double>::infinity()),
       Value::Text("\\N"), Value::Bytes("\\x00")},
      {Value::Int(6), Value::Int(42), Value::Float(2.2250738585072014e-308), Value::Text(big_text),
       Value::Bytes(big_bytes)},
      {Value::Int(7), Value::Int(7), Value::Float(-0.1), Value::Text("\\"), Value::Null()},
  };
}

class PostgresCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(PostgresCluster::Shared().running());
    url_ = PostgresCluster::Shared().CreateDatabase("copy");
    db_ = Take(PostgresDb::Connect(url_));
    Check(db_->Exec(
        "CREATE TABLE by_statement(id bigint PRIMARY KEY, i bigint, f float8, t text, b bytea);"
        "CREATE TABLE by_copy(id bigint PRIMARY KEY, i bigint, f float8, t text, b bytea);"));
    Statement insert =
        Take(db_->Prepare("INSERT INTO by_statement VALUES (?, ?, CAST(? AS float8), ?, ?)"));
    for (const auto& row : Rows()) {
      for (size_t i = 0; i < row.size(); ++i) insert.Bind(static_cast<int>(i + 1), row[i]);
      Check(insert.Run());
    }
  }

  Status Copy(CopyFormat format, const std::vector<std::vector<Value>>& rows) {
    LOCKSTEP_ASSIGN_OR_RETURN(std::unique_ptr<RowCopy> copy,
                              db_->CopyInto("by_copy", "id, i, f, t, b", 5, format));
    for (const auto& row : rows) {
      for (const Value& value : row) copy->Put(value);
      copy->EndRow();
    }
    return copy->Finish();
  }

  // Rows in one table and not the other, both ways (NaN equals NaN in PostgreSQL).
  std::string Differences() {
    return Psql(url_,
                "SELECT count(*) FROM ((TABLE by_statement EXCEPT ALL TABLE by_copy) UNION ALL "
                "(TABLE by_copy EXCEPT ALL TABLE by_statement)) d");
  }

  std::string url_;
  std::unique_ptr<PostgresDb> db_;
};

TEST_F(PostgresCopyTest, TextFormatWritesWhatBoundParametersWrite) {
  Check(Copy(CopyFormat::kText, Rows()));
  EXPECT_EQ(Psql(url_, "SELECT count(*) FROM by_copy"), "7\n");
  EXPECT_EQ(Differences(), "0\n");
  EXPECT_EQ(Psql(url_, "SELECT t IS NULL, b IS NULL FROM by_copy WHERE id IN (1, 2) ORDER BY id"),
            "t|t\nf|f\n");
}

TEST_F(PostgresCopyTest, BinaryFormatWritesWhatBoundParametersWrite) {
  Check(Copy(CopyFormat::kBinary, Rows()));
  EXPECT_EQ(Differences(), "0\n");
}

TEST_F(PostgresCopyTest, AFailedLoadWritesNothingAndTheConnectionGoesOn) {
  Check(db_->Exec("INSERT INTO by_copy VALUES (3, 0, 0, '', '')"));
  for (CopyFormat format : {CopyFormat::kText, CopyFormat::kBinary}) {
    const Status status = Copy(format, Rows());  // id 3 is there already
    EXPECT_FALSE(status.ok());
    EXPECT_NE(status.message().find("duplicate key"), std::string::npos) << status.ToString();
    EXPECT_EQ(Psql(url_, "SELECT count(*) FROM by_copy"), "1\n");
  }
  // A row of the wrong width is refused before the server sees it.
  const Status narrow = Copy(CopyFormat::kText, {{Value::Int(9), Value::Int(9)}});
  EXPECT_FALSE(narrow.ok());
  {
    // Abandoned half way: the server drops the rows sent.
    auto copy = Take(db_->CopyInto("by_copy", "id, i, f, t, b", 5, CopyFormat::kText));
    copy->PutInt(10);
  }
  EXPECT_EQ(Psql(url_, "SELECT count(*) FROM by_copy"), "1\n");
  Check(db_->Exec("INSERT INTO by_copy VALUES (11, 0, 0, '', '')"));
  EXPECT_EQ(Psql(url_, "SELECT count(*) FROM by_copy"), "2\n");
}

TEST_F(PostgresCopyTest, LoadOrWriteFallsBackToTheStatementsAndKeepsTheTransaction) {
  Check(db_->Exec("BEGIN; INSERT INTO by_copy VALUES (100, 1, 1, 'kept', '')"));
  bool wrote = false;
  // The load fails on a duplicate key; the statements then write in the same transaction.
  Check(LoadOrWrite(
      *db_,
      [&] {
        return Copy(CopyFormat::kText, {{Value::Int(100), Value::Int(2), Value::Float(2),
                                         Value::Text("loaded"), Value::Null()}});
      },
      [&] {
        wrote = true;
        return db_->Exec("UPDATE by_copy SET t = 'upserted' WHERE id = 100");
      }));
  EXPECT_TRUE(wrote);
  Check(db_->Exec("COMMIT"));
  EXPECT_EQ(Psql(url_, "SELECT id, t FROM by_copy"), "100|upserted\n");
  // A load that succeeds is kept, and the statements do not run.
  Check(db_->Exec("BEGIN"));
  wrote = false;
  Check(LoadOrWrite(
      *db_,
      [&] {
        return Copy(CopyFormat::kBinary, {{Value::Int(101), Value::Int(2), Value::Float(2),
                                           Value::Text("loaded"), Value::Null()}});
      },
      [&] {
        wrote = true;
        return Status::Ok();
      }));
  Check(db_->Exec("COMMIT"));
  EXPECT_FALSE(wrote);
  EXPECT_EQ(Psql(url_, "SELECT id, t FROM by_copy ORDER BY id"), "100|upserted\n101|loaded\n");
}

}  // namespace
}  // namespace lockstep::store
