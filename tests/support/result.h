// Unwrapping Lockstep's Result and Status in tests: a failure is reported by gtest with its
// message, and Take throws so that the test stops instead of using a value it does not have.
#pragma once

#include <gtest/gtest.h>

#include <stdexcept>
#include <utility>

#include "lockstep/status.h"

namespace lockstep::testing {

template <typename T>
T Take(Result<T> result) {
  EXPECT_TRUE(result.has_value()) << result.error().ToString();
  if (!result.has_value()) throw std::runtime_error(result.error().ToString());
  return std::move(*result);
}

inline void Check(const Status& status) { ASSERT_TRUE(status.ok()) << status.ToString(); }

}  // namespace lockstep::testing
