#include "lockstep/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

namespace lockstep::base {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status, Status::Ok());
}

TEST(StatusTest, CodeNamesAreLowercaseAndDistinct) {
  EXPECT_EQ(StatusCodeName(StatusCode::kOk), "ok");
  EXPECT_EQ(StatusCodeName(StatusCode::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(StatusCodeName(StatusCode::kNotFound), "not_found");
  EXPECT_EQ(StatusCodeName(StatusCode::kAlreadyExists), "already_exists");
  EXPECT_EQ(StatusCodeName(StatusCode::kPermissionDenied), "permission_denied");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnauthenticated), "unauthenticated");
  EXPECT_EQ(StatusCodeName(StatusCode::kResourceExhausted), "resource_exhausted");
  EXPECT_EQ(StatusCodeName(StatusCode::kFailedPrecondition), "failed_precondition");
  EXPECT_EQ(StatusCodeName(StatusCode::kAborted), "aborted");
  EXPECT_EQ(StatusCodeName(StatusCode::kOutOfRange), "out_of_range");
  EXPECT_EQ(StatusCodeName(StatusCode::kUnavailable), "unavailable");
  EXPECT_EQ(StatusCodeName(StatusCode::kDataLoss), "data_loss");
  EXPECT_EQ(StatusCodeName(StatusCode::kInternal), "internal");
}

TEST(StatusTest, HelpersMakeTheirCode) {
  EXPECT_EQ(InvalidArgument("m").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NotFound("m").code(), StatusCode::kNotFound);
  EXPECT_EQ(AlreadyExists("m").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(PermissionDenied("m").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Unauthenticated("m").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(ResourceExhausted("m").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(FailedPrecondition("m").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Aborted("m").code(), StatusCode::kAborted);
  EXPECT_EQ(OutOfRange("m").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(Unavailable("m").code(), StatusCode::kUnavailable);
  EXPECT_EQ(DataLoss("m").code(), StatusCode::kDataLoss);
  EXPECT_EQ(Internal("m").code(), StatusCode::kInternal);
  Status status = NotFound("no record 'k'");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "no record 'k'");
}

TEST(StatusTest, ToStringJoinsCodeNameAndMessage) {
  EXPECT_EQ(Status::Ok().ToString(), "ok");
  EXPECT_EQ(InvalidArgument("bad key").ToString(), "invalid_argument: bad key");
  EXPECT_EQ(DataLoss("checksum mismatch").ToString(), "data_loss: checksum mismatch");
}

TEST(StatusTest, WithContextPrefixesTheMessageAndKeepsTheCode) {
  const Status inner = Unavailable("connection refused");
  const Status outer = inner.WithContext("dialing hub").WithContext("opening session");
  EXPECT_EQ(outer.code(), StatusCode::kUnavailable);
  EXPECT_EQ(outer.message(), "opening session: dialing hub: connection refused");
  EXPECT_EQ(inner.message(), "connection refused");  // the original is untouched
}

TEST(StatusTest, WithContextOnOkStaysOk) {
  const Status status = Status::Ok().WithContext("anything");
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.message(), "");
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(NotFound("a"), NotFound("a"));
  EXPECT_NE(NotFound("a"), NotFound("b"));
  EXPECT_NE(NotFound("a"), Internal("a"));
}

TEST(ResultTest, HoldsAValue) {
  Result<int> result = 42;
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(static_cast<bool>(result));
  EXPECT_EQ(result.value(), 42);
  EXPECT_EQ(*result, 42);
  EXPECT_TRUE(result.status().ok());
  *result = 7;
  EXPECT_EQ(result.value(), 7);
}

TEST(ResultTest, HoldsAnError) {
  Result<int> result = NotFound("missing");
  ASSERT_FALSE(result.has_value());
  EXPECT_FALSE(static_cast<bool>(result));
  EXPECT_EQ(result.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(result.status(), NotFound("missing"));
}

TEST(ResultTest, ArrowReachesTheValue) {
  Result<std::string> result = std::string("hello");
  EXPECT_EQ(result->size(), 5u);
}

TEST(ResultTest, MovesOutAMoveOnlyValue) {
  Result<std::unique_ptr<int>> result = std::make_unique<int>(5);
  std::unique_ptr<int> owned = std::move(result).value();
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, 5);
}

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgument("not positive: " + std::to_string(v));
  return v;
}

Result<int> DoublePositive(int v) {
  LOCKSTEP_ASSIGN_OR_RETURN(int parsed, ParsePositive(v));
  return parsed * 2;
}

Status AssignIntoExisting(int v, int& out) {
  LOCKSTEP_ASSIGN_OR_RETURN(out, ParsePositive(v));
  return Status::Ok();
}

Status CheckPositive(int v) {
  if (v <= 0) return OutOfRange("too small");
  return Status::Ok();
}

int calls_after_check = 0;

Status CheckBoth(int a, int b) {
  LOCKSTEP_RETURN_IF_ERROR(CheckPositive(a));
  ++calls_after_check;
  LOCKSTEP_RETURN_IF_ERROR(CheckPositive(b).WithContext("second"));
  ++calls_after_check;
  return Status::Ok();
}

TEST(StatusMacrosTest, AssignOrReturnPassesTheValueOn) {
  Result<int> result = DoublePositive(21);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, 42);
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesTheError) {
  Result<int> result = DoublePositive(-1);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error(), InvalidArgument("not positive: -1"));
}

TEST(StatusMacrosTest, AssignOrReturnAssignsToAnExistingVariable) {
  int out = 0;
  EXPECT_TRUE(AssignIntoExisting(3, out).ok());
  EXPECT_EQ(out, 3);
  Status failed = AssignIntoExisting(0, out);
  EXPECT_EQ(failed.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out, 3);  // untouched on error
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtTheFirstError) {
  calls_after_check = 0;
  EXPECT_TRUE(CheckBoth(1, 1).ok());
  EXPECT_EQ(calls_after_check, 2);

  calls_after_check = 0;
  Status first = CheckBoth(0, 1);
  EXPECT_EQ(first, OutOfRange("too small"));
  EXPECT_EQ(calls_after_check, 0);

  calls_after_check = 0;
  Status second = CheckBoth(1, 0);
  EXPECT_EQ(second, OutOfRange("second: too small"));
  EXPECT_EQ(calls_after_check, 1);
}

}  // namespace
}  // namespace lockstep::base
