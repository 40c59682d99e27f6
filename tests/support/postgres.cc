#include "support/postgres.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <memory>
#include <random>

#include "support/node.h"
#include "support/process.h"

namespace lockstep::testing {
namespace {

// PostgreSQL refuses to run as root: as root, the cluster belongs to this user instead.
std::string ServerUser() {
  for (const char* name : {"postgres", "nobody"}) {
    if (getpwnam(name) != nullptr) return name;
  }
  return {};
}

// `argv` as the server's user when this process is root, else as is.
std::vector<std::string> AsServerUser(std::vector<std::string> argv) {
  if (geteuid() != 0) return argv;
  std::vector<std::string> wrapped{"runuser", "-u", ServerUser(), "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

std::string RandomHex(size_t bytes) {
  std::random_device random;
  std::string hex;
  for (size_t i = 0; i < bytes; ++i) {
    static constexpr char kDigits[] = "0123456789abcdef";
    const unsigned byte = random() & 0xff;
    hex += kDigits[byte >> 4];
    hex += kDigits[byte & 0xf];
  }
  return hex;
}

}  // namespace

std::filesystem::path PostgresBin() { return "/usr/lib/postgresql/15/bin"; }

PostgresCluster& PostgresCluster::Shared() {
  // Destroyed at exit, which stops the server.
  static std::unique_ptr<PostgresCluster> cluster(new PostgresCluster());
  if (!cluster->running_) cluster->Start();
  return *cluster;
}

PostgresCluster::PostgresCluster() {
  std::string pattern = (std::filesystem::temp_directory_path() / "lockstep-pg-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  dir_ = pattern;
  password_ = RandomHex(12);
}

PostgresCluster::~PostgresCluster() {
  Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void PostgresCluster::Start() {
  if (geteuid() == 0) {
    const passwd* owner = getpwnam(ServerUser().c_str());
    ASSERT_NE(owner, nullptr) << "no unprivileged user (postgres or nobody) to run PostgreSQL as";
    ASSERT_EQ(chown(dir_.c_str(), owner->pw_uid, owner->pw_gid), 0);
  }
  const std::filesystem::path data = dir_ / "data";
  if (!std::filesystem::exists(data / "PG_VERSION")) {
    const std::filesystem::path pwfile = dir_ / "password";
    std::ofstream(pwfile) << password_ << "\n";
    if (geteuid() == 0) {
      const passwd* owner = getpwnam(ServerUser().c_str());
      ASSERT_EQ(chown(pwfile.c_str(), owner->pw_uid, owner->pw_gid), 0);
    }
    // Passwords over TCP (SCRAM), so that a wrong one is refused as it would be in production.
    ProcessResult init = RunWithin(
        AsServerUser({(PostgresBin() / "initdb").string(), "-D", data.string(), "-U", user_,
                      "--pwfile=" + pwfile.string(), "--auth-host=scram-sha-256",
                      "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"}),
        std::chrono::seconds(60));
    ASSERT_EQ(init.exit_code, 0) << "initdb failed: " << init.out << init.err;
  }
  // A free port can be taken between looking and listening: try a few.
  for (int attempt = 0; attempt < 3 && !running_; ++attempt) {
    port_ = FreePort();
    const std::string options = "-p " + std::to_string(port_) + " -k " + dir_.string() +
                                " -c listen_addresses=127.0.0.1 -c fsync=off"
                                " -c synchronous_commit=off -c full_page_writes=off"
                                " -c max_connections=200 -c shared_buffers=32MB";
    ProcessResult start = RunWithin(
        AsServerUser({(PostgresBin() / "pg_ctl").string(), "-D", data.string(), "-l",
                      (dir_ / "server.log").string(), "-o", options, "-w", "-t", "30", "start"}),
        std::chrono::seconds(40));
    running_ = start.exit_code == 0;
    if (!running_) {
      ADD_FAILURE() << "pg_ctl start failed (attempt " << attempt + 1 << "): " << start.out
                    << start.err << ReadFile(dir_ / "server.log");
      Stop();
    }
  }
  if (!running_) return;
  // Stops the server (and removes its files) if this binary dies without running its destructors (a
  // crash, SIGKILL).
  const std::string stop = [&] {
    std::string command;
    for (const std::string& arg :
         AsServerUser({(PostgresBin() / "pg_ctl").string(), "-D", data.string(), "-m", "immediate",
                       "-t", "30", "stop"})) {
      command += "'" + arg + "' ";
    }
    return command + "; rm -rf '" + dir_.string() + "'";
  }();
  watchdog_ = Spawn(
      {"setsid", "sh", "-c",
       "while kill -0 " + std::to_string(getpid()) + " 2>/dev/null; do sleep 1; done; " + stop});
}

void PostgresCluster::Stop() {
  if (watchdog_ > 0) {
    kill(watchdog_, SIGKILL);
    (void)Wait(watchdog_);
    watchdog_ = -1;
  }
  const std::filesystem::path data = dir_ / "data";
  if (!std::filesystem::exists(data / "postmaster.pid")) {
    running_ = false;
    return;
  }
  (void)RunWithin(AsServerUser({(PostgresBin() / "pg_ctl").string(), "-D", data.string(), "-m",
                                "immediate", "-t", "30", "stop"}),
                  std::chrono::seconds(40));
  running_ = false;
}

std::string PostgresCluster::UrlWithPassword(const std::string& name,
                                             const std::string& password) const {
  return "postgres://" + user_ + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/" +
         name;
}

std::string PostgresCluster::Url(const std::string& name) const {
  return UrlWithPassword(name, password_);
}

std::string PostgresCluster::CreateDatabase(const std::string& hint) {
  std::string name;
  for (char c : hint) {
    name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  }
  name = name.substr(0, 40) + "_" + std::to_string(++databases_);
  Psql(Url("postgres"), "CREATE DATABASE " + name);
  return Url(name);
}

std::string Psql(const std::string& url, const std::string& sql) {
  ProcessResult result = RunWithin({(PostgresBin() / "psql").string(), "-X", "-q", "-A", "-t", "-v",
                                    "ON_ERROR_STOP=1", "-d", url, "-c", sql},
                                   std::chrono::seconds(60));
  EXPECT_EQ(result.exit_code, 0) << "psql failed: " << result.err << "\nSQL: " << sql;
  return result.out;
}

std::string PsqlFails(const std::string& url, const std::string& sql) {
  ProcessResult result = RunWithin({(PostgresBin() / "psql").string(), "-X", "-q", "-A", "-t", "-v",
                                    "ON_ERROR_STOP=1", "-d", url, "-c", sql},
                                   std::chrono::seconds(60));
  EXPECT_NE(result.exit_code, 0) << "psql succeeded: " << result.out << "\nSQL: " << sql;
  return result.err;
}

}  // namespace lockstep::testing
