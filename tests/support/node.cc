#include "support/node.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include "support/process.h"

namespace lockstep::testing {
namespace {

using SteadyClock = std::chrono::steady_clock;

}  // namespace

int64_t MsSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

bool WaitFor(const std::function<bool()>& done, SteadyClock::duration limit,
             SteadyClock::duration poll_every) {
  const auto deadline = SteadyClock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll_every);
  }
}

uint16_t FreePort() {
  const uint16_t port = FreeLoopbackPort();
  EXPECT_NE(port, 0) << "no free port on 127.0.0.1";
  return port;
}

bool HasTable(const std::filesystem::path& db) {
  return std::filesystem::exists(db) &&
         Sql(db, "SELECT count(*) FROM sqlite_master WHERE name = 't';") == "1\n";
}

bool HasRow(const std::filesystem::path& db, int64_t id) {
  return HasTable(db) &&
         Sql(db, "SELECT count(*) FROM t WHERE id = " + std::to_string(id) + ";") == "1\n";
}

std::string Dump(const std::filesystem::path& db) {
  return Sql(db, "SELECT * FROM t ORDER BY id;");
}

uint32_t Seed() {
  const char* fixed = std::getenv("LOCKSTEP_TEST_SEED");
  const uint32_t seed = fixed != nullptr ? static_cast<uint32_t>(std::stoul(fixed))
                                         : static_cast<uint32_t>(std::random_device{}());
  std::cout << "seed " << seed << " (LOCKSTEP_TEST_SEED)\n";
  return seed;
}

}  // namespace lockstep::testing
