#include "support/postgres_server.h"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>

#include "support/subprocess.h"

namespace lockstep::testing {
namespace {

constexpr auto kInitLimit = std::chrono::seconds(60);
constexpr auto kPgCtlLimit = std::chrono::seconds(40);  // pg_ctl itself waits at most 30 s
constexpr int kStartAttempts = 3;

// The defaults favour speed over durability: a throwaway server loses nothing that matters.
constexpr const char* kDefaultSettings[] = {"listen_addresses=127.0.0.1", "fsync=off",
                                            "synchronous_commit=off",     "full_page_writes=off",
                                            "max_connections=200",        "shared_buffers=32MB"};

// PostgreSQL refuses to run as root: as root, the server belongs to this user instead.
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

// Gives `path` to the server's user when this process is root.
Status ChownToServerUser(const std::filesystem::path& path) {
  if (geteuid() != 0) return Status::Ok();
  const passwd* owner = getpwnam(ServerUser().c_str());
  if (owner == nullptr) {
    return FailedPrecondition("no unprivileged user (postgres or nobody) to run PostgreSQL as");
  }
  if (chown(path.c_str(), owner->pw_uid, owner->pw_gid) != 0) {
    return Internal("cannot give " + path.string() + " to " + ServerUser());
  }
  return Status::Ok();
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

std::vector<std::string> PgCtlStop(const std::filesystem::path& data) {
  return AsServerUser({(PostgresBin() / "pg_ctl").string(), "-D", data.string(), "-m", "immediate",
                       "-t", "30", "stop"});
}

}  // namespace

std::filesystem::path PostgresBin() { return "/usr/lib/postgresql/15/bin"; }

PostgresServer::PostgresServer(std::vector<std::string> settings)
    : settings_(std::move(settings)), password_(RandomHex(12)) {
  std::string pattern = (std::filesystem::temp_directory_path() / "lockstep-pg-XXXXXX").string();
  if (mkdtemp(pattern.data()) != nullptr) dir_ = pattern;
}

PostgresServer::~PostgresServer() {
  Stop();
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Status PostgresServer::Initialize() {
  if (dir_.empty()) return Internal("cannot make a directory for the PostgreSQL server");
  LOCKSTEP_RETURN_IF_ERROR(ChownToServerUser(dir_));
  const std::filesystem::path data = dir_ / "data";
  if (std::filesystem::exists(data / "PG_VERSION")) return Status::Ok();
  const std::filesystem::path pwfile = dir_ / "password";
  std::ofstream(pwfile) << password_ << "\n";
  LOCKSTEP_RETURN_IF_ERROR(ChownToServerUser(pwfile));
  // Passwords over TCP (SCRAM), so that a wrong one is refused as it would be in production.
  ProcessResult init =
      RunWithin(AsServerUser({(PostgresBin() / "initdb").string(), "-D", data.string(), "-U", user_,
                              "--pwfile=" + pwfile.string(), "--auth-host=scram-sha-256",
                              "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"}),
                kInitLimit);
  if (init.exit_code != 0) return Unavailable("initdb failed: " + init.out + init.err);
  return Status::Ok();
}

Status PostgresServer::StartOnce(int attempt) {
  port_ = FreeLoopbackPort();
  if (port_ == 0) return Unavailable("no free port on 127.0.0.1");
  std::string options = "-p " + std::to_string(port_) + " -k " + dir_.string();
  for (const char* setting : kDefaultSettings) options += std::string(" -c ") + setting;
  for (const std::string& setting : settings_) options += " -c " + setting;
  ProcessResult start =
      RunWithin(AsServerUser({(PostgresBin() / "pg_ctl").string(), "-D", (dir_ / "data").string(),
                              "-l", log().string(), "-o", options, "-w", "-t", "30", "start"}),
                kPgCtlLimit);
  if (start.exit_code == 0) return Status::Ok();
  // Stops a server that came up after pg_ctl gave up waiting.
  Stop();
  return Unavailable("pg_ctl start failed (attempt " + std::to_string(attempt + 1) +
                     "): " + start.out + start.err + ReadFile(log()));
}

Status PostgresServer::Start() {
  if (running_) return Status::Ok();
  LOCKSTEP_RETURN_IF_ERROR(Initialize());
  // A free port can be taken between looking and listening: try a few.
  Status started;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    started = StartOnce(attempt);
    if (started.ok()) break;
  }
  LOCKSTEP_RETURN_IF_ERROR(started);
  running_ = true;
  // Stops the server (and removes its files) if the program that started it dies without
  // running its destructors (a crash, SIGKILL).
  std::string stop;
  for (const std::string& arg : PgCtlStop(dir_ / "data")) stop += "'" + arg + "' ";
  stop += "; rm -rf '" + dir_.string() + "'";
  watchdog_ = Spawn(
      {"setsid", "sh", "-c",
       "while kill -0 " + std::to_string(getpid()) + " 2>/dev/null; do sleep 1; done; " + stop});
  return Status::Ok();
}

void PostgresServer::Stop() {
  if (watchdog_ > 0) {
    kill(watchdog_, SIGKILL);
    (void)Wait(watchdog_);
    watchdog_ = -1;
  }
  running_ = false;
  if (dir_.empty() || !std::filesystem::exists(dir_ / "data" / "postmaster.pid")) return;
  (void)RunWithin(PgCtlStop(dir_ / "data"), kPgCtlLimit);
}

std::string PostgresServer::UrlWithPassword(const std::string& name,
                                            const std::string& password) const {
  return "postgres://" + user_ + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/" +
         name;
}

std::string PostgresServer::Url(const std::string& name) const {
  return UrlWithPassword(name, password_);
}

}  // namespace lockstep::testing
