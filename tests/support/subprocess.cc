#include "support/subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

extern char** environ;

namespace lockstep::testing {
namespace {

std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> raw;
  for (const std::string& arg : argv) raw.push_back(const_cast<char*>(arg.c_str()));
  raw.push_back(nullptr);
  return raw;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

// Runs `argv` to completion, or until `deadline` when there is one (then kills it).
ProcessResult RunUntil(const std::vector<std::string>& argv,
                       std::optional<std::chrono::steady_clock::time_point> deadline) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    ProcessResult result;
    result.err = "pipe failed";
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  pid_t pid = 0;
  auto raw = Argv(argv);
  const int rc = posix_spawnp(&pid, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  ProcessResult result;
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    result.err = "spawn failed: " + argv[0];
    return result;
  }
  std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
  std::array<std::string*, 2> sinks{&result.out, &result.err};
  int open_fds = 2;
  bool late = false;
  char buffer[65536];
  while (open_fds > 0 && !late) {
    int timeout_ms = -1;
    if (deadline.has_value()) {
      const auto left = *deadline - std::chrono::steady_clock::now();
      timeout_ms = static_cast<int>(
          std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
    }
    const int ready = poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready == 0) late = true;
    for (size_t i = 0; i < fds.size() && ready > 0; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  if (late) {
    kill(pid, SIGKILL);
    result.err += "\n(killed: still running after the time limit)";
  }
  result.exit_code = Wait(pid);
  return result;
}

}  // namespace

ProcessResult Run(const std::vector<std::string>& argv) { return RunUntil(argv, std::nullopt); }

ProcessResult RunWithin(const std::vector<std::string>& argv,
                        std::chrono::steady_clock::duration limit) {
  return RunUntil(argv, std::chrono::steady_clock::now() + limit);
}

pid_t Spawn(const std::vector<std::string>& argv) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  auto raw = Argv(argv);
  const int rc = posix_spawnp(&pid, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

pid_t SpawnWithFiles(const std::vector<std::string>& argv, const std::filesystem::path& in,
                     const std::filesystem::path& out, const std::filesystem::path& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  auto raw = Argv(argv);
  const int rc = posix_spawnp(&pid, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return DecodeWaitStatus(status);
}

std::optional<int> Poll(pid_t pid) {
  int status = 0;
  pid_t done = 0;
  do {
    done = waitpid(pid, &status, WNOHANG);
  } while (done < 0 && errno == EINTR);
  if (done != pid) return std::nullopt;
  return DecodeWaitStatus(status);
}

std::optional<int> WaitWithin(pid_t pid, std::chrono::steady_clock::duration limit,
                              bool kill_when_late) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (std::optional<int> code = Poll(pid)) return code;
    if (std::chrono::steady_clock::now() >= deadline) {
      if (kill_when_late) {
        kill(pid, SIGKILL);
        (void)Wait(pid);
      }
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool ProcessGuard::Start(pid_t pid) {
  pid_ = pid;
  exit_code_.reset();
  return pid_ > 0;
}

bool ProcessGuard::Running() {
  if (pid_ <= 0 || exit_code_.has_value()) return false;
  exit_code_ = Poll(pid_);
  return !exit_code_.has_value();
}

void ProcessGuard::Kill() {
  if (!Running()) return;
  kill(pid_, SIGKILL);
  exit_code_ = Wait(pid_);
}

std::optional<int> ProcessGuard::Terminate(std::chrono::steady_clock::duration limit) {
  if (!Running()) return exit_code_;
  kill(pid_, SIGTERM);
  std::optional<int> code = WaitWithin(pid_, limit, /*kill_when_late=*/true);
  exit_code_ = code.value_or(-SIGKILL);
  return code;
}

std::optional<int> ProcessGuard::WaitForExit(std::chrono::steady_clock::duration limit) {
  if (!Running()) return exit_code_;
  exit_code_ = WaitWithin(pid_, limit, /*kill_when_late=*/false);
  return exit_code_;
}

uint16_t FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  uint16_t port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  if (fd >= 0) close(fd);
  return port;
}

}  // namespace lockstep::testing
