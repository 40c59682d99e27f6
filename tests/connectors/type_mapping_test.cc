// Logical types as PostgreSQL's format_type() writes them pass; anything else, and in particular
// text that would carry SQL into the DDL a peer's types end up in, is refused.
#include "connectors/type_mapping.h"

#include <gtest/gtest.h>

namespace lockstep::connectors {
namespace {

TEST(CheckLogicalTypeTest, AcceptsEverySupportedTypeAsFormatTypeWritesIt) {
  for (const char* type : {"smallint",
                           "integer",
                           "bigint",
                           "numeric",
                           "numeric(40,10)",
                           "numeric(5)",
                           "real",
                           "double precision",
                           "text",
                           "character varying",
                           "character varying(12)",
                           "character(5)",
                           "boolean",
                           "bytea",
                           "uuid",
                           "date",
                           "timestamp without time zone",
                           "timestamp(3) with time zone",
                           "interval",
                           "json",
                           "jsonb",
                           "integer[]",
                           "text[]",
                           "numeric(10,2)[]",
                           "enum mood ('sad', 'ok', 'happy')",
                           "enum public.mood ('a')",
                           "enum \"My \"\"Mood\"\"\" ('it''s', E'back\\\\slash')",
                           "enum empty ()"}) {
    EXPECT_TRUE(CheckLogicalType(type).ok()) << type;
  }
}

TEST(CheckLogicalTypeTest, RefusesUnsupportedAndMalformedTypes) {
  for (const char* type : {"", "point", "integer[][]", "numeric(40,10", "numeric(a)", "numeric()",
                           "numeric(1)(2)", "integer); DROP TABLE t; --", "text DEFAULT 'x'",
                           "enum mood", "enum mood ('a'); DROP TABLE t; --", "enum mood ('a', 'b'",
                           "enum mood ('unterminated)", "enum 1mood ('a')", "enum mood (a)",
                           "enum mood; DROP TABLE t ('a')", "enum mood ('a') ", "mood[]"}) {
    Status status = CheckLogicalType(type);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << type;
  }
}

TEST(CheckLogicalTypeTest, EveryAcceptedTypeMapsToAKnownKind) {
  for (const char* type :
       {"numeric(40,10)", "timestamp(3) with time zone", "integer[]", "enum mood ('sad')"}) {
    ASSERT_TRUE(CheckLogicalType(type).ok());
    EXPECT_NE(KindOf(type), TypeKind::kUnsupported) << type;
  }
}

}  // namespace
}  // namespace lockstep::connectors
