#include "core/merge.h"

#include <gtest/gtest.h>

#include "core/local_write.h"

namespace lockstep::core {
namespace {

NodeId Node(uint8_t n) {
  NodeId id;
  id.bytes[15] = n;
  return id;
}

TEST(MergeTest, SmokeConcurrentWritesResolveByLww) {
  MergePolicy policy;
  Record a("k"), b("k");
  ASSERT_TRUE(ApplyLocalWrite(a, {{Node(1), 1}, Hlc::Make(10, 0), {{"x", Value::Int(1)}}}, policy)
                  .has_value());
  ASSERT_TRUE(ApplyLocalWrite(b, {{Node(2), 1}, Hlc::Make(20, 0), {{"x", Value::Int(2)}}}, policy)
                  .has_value());
  MergeOutcome ab = Merge(a, b, policy);
  MergeOutcome ba = Merge(b, a, policy);
  EXPECT_EQ(ab.record, ba.record);
  EXPECT_EQ(VisibleValue(*ab.record.Find("x"), "x", policy), Value::Int(2));
  EXPECT_EQ(ab.effects.conflicts.size(), 2u);  // x and _exists
}

}  // namespace
}  // namespace lockstep::core
