#include "bench_support.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

extern char** environ;

namespace lockstep::bench {
namespace {

namespace fs = std::filesystem;

const char* die_program = "lockstep_bench";
void (*die_cleanup)() = nullptr;

}  // namespace

void SetDieHandler(const char* program, void (*cleanup)()) {
  die_program = program;
  die_cleanup = cleanup;
}

void Die(const std::string& message) {
  std::cerr << die_program << ": " << message << "\n";
  if (die_cleanup != nullptr) die_cleanup();
  std::exit(1);
}

pid_t StartProcess(const std::vector<std::string>& args, const fs::path& out,
                   const std::optional<fs::path>& err) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string out_path = out.empty() ? "/dev/null" : out.string();
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  if (err.has_value()) {
    const std::string err_path = err->empty() ? "/dev/null" : err->string();
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
  }
  pid_t pid = 0;
  const int error = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) Die("cannot start " + args[0]);
  return pid;
}

namespace {

std::vector<pid_t>& Children() {
  static std::vector<pid_t> children;
  return children;
}

}  // namespace

// Stops a child: SIGTERM (a node finishes its batch and says goodbye), SIGKILL after 5 s.
void StopProcess(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  kill(pid, SIGCONT);  // a frozen process (SIGSTOP) acts on the SIGTERM once it runs again
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::erase(Children(), pid);
}

void StopAll() {
  const std::vector<pid_t> children = Children();
  for (pid_t pid : children) StopProcess(pid);
}

pid_t Spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  const pid_t pid = StartProcess(args, out, err);
  Children().push_back(pid);
  return pid;
}

void RunProcess(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
                double timeout_s) {
  const pid_t pid = Spawn(args, out, err);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      StopProcess(pid);
      Die("timed out: " + args[0] + " " + args[1]);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::erase(Children(), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("command failed: " + CommandLine(args, 120) + (err.empty() ? "" : "\n" + ReadFile(err)));
  }
}

std::string CommandLine(const std::vector<std::string>& args, size_t width) {
  std::string command;
  for (const std::string& arg : args) command += arg.substr(0, width) + " ";
  return command;
}

namespace {

// The fields of /proc/PID/stat from the third on (after the command, which may hold spaces).
std::vector<std::string> ProcStatFields(pid_t pid) {
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return {};
  std::istringstream text(stat.substr(paren + 1));
  std::vector<std::string> fields;
  for (std::string field; text >> field;) fields.push_back(field);
  return fields;
}

}  // namespace

double ProcessCpuSeconds(pid_t pid, bool ended_children) {
  const std::vector<std::string> fields = ProcStatFields(pid);
  // Fields 14-17 of proc(5): utime, stime, cutime, cstime (index 0 here is field 3).
  if (fields.size() < 15) return 0;
  double ticks = std::stod(fields[11]) + std::stod(fields[12]);
  if (ended_children) ticks += std::stod(fields[13]) + std::stod(fields[14]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

pid_t ParentProcess(pid_t pid) {
  const std::vector<std::string> fields = ProcStatFields(pid);
  return fields.size() < 2 ? 0 : static_cast<pid_t>(std::stol(fields[1]));
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

fs::path MakeScratchDir(const fs::path& dir, const std::string& name) {
  const fs::path scratch = dir.empty() ? fs::temp_directory_path() : dir;
  const fs::path own = scratch / (name + "-" + std::to_string(getpid()));
  fs::create_directories(own);
  return own;
}

void Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    const std::string message = error != nullptr ? error : "?";
    sqlite3_free(error);
    Die(sql.substr(0, 80) + ": " + message);
  }
}

std::string Fixed(double value, int decimals, const char* suffix) {
  char text[48];
  std::snprintf(text, sizeof text, "%.*f%s", decimals, value, suffix);
  return text;
}

std::string Count(int64_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "M";
  if (n >= 1'000 && n % 1'000 == 0) return std::to_string(n / 1'000) + "k";
  return std::to_string(n);
}

std::string Verdict(bool pass) { return pass ? "PASS" : "FAIL"; }

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace lockstep::bench
