#include "security/secure_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

namespace lockstep::security {
namespace {

Status ErrnoStatus(int error, std::string_view what, const std::filesystem::path& path) {
  std::string message =
      std::string(what) + " " + path.string() + ": " + std::generic_category().message(error);
  switch (error) {
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDenied(std::move(message));
    case ENOENT:
      return NotFound(std::move(message));
    case ENOSPC:
    case EDQUOT:
      return ResourceExhausted(std::move(message));
    default:
      return Internal(std::move(message));
  }
}

// Closes a descriptor on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, so that a failing close (delayed write error) is reported.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view contents, const std::filesystem::path& path) {
  while (!contents.empty()) {
    const ssize_t n = ::write(fd, contents.data(), contents.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "writing", path);
    contents.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// The rename is durable only once the directory entry is on disk.
Status SyncDir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "opening directory", dir);
  if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "syncing directory", dir);
  return Status::Ok();
}

}  // namespace

Status EnsurePrivateDir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    if (!std::filesystem::is_directory(dir, ec)) {
      return FailedPrecondition("not a directory: " + dir.string());
    }
    return Status::Ok();
  }
  const std::filesystem::path parent = dir.parent_path();
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    if (ec) return ErrnoStatus(ec.value(), "creating directory", parent);
  }
  // mkdir with 0700 directly, so there is no moment where the directory is open to others.
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "creating directory", dir);
  }
  return Status::Ok();
}

Status CheckWritableDir(const std::filesystem::path& dir) {
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return ErrnoStatus(errno == ENOENT ? ENOENT : EACCES, "cannot write to", dir);
  }
  return Status::Ok();
}

Result<std::string> ReadWholeFile(const std::filesystem::path& path, size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(errno, "opening", path);
  std::string contents;
  std::vector<char> buffer(64 * 1024);
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "reading", path);
    if (n == 0) return contents;
    if (contents.size() + static_cast<size_t>(n) > max_bytes) {
      return DataLoss(path.string() + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    contents.append(buffer.data(), static_cast<size_t>(n));
  }
}

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                           mode_t mode) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  // mkstemp creates the file 0600 whatever the umask: a key is never briefly world-readable.
  std::string temp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  Fd fd(::mkstemp(temp.data()));
  if (fd.get() < 0) return ErrnoStatus(errno, "creating a temporary file in", dir);
  Status status = [&]() -> Status {
    if (::fchmod(fd.get(), mode) != 0) return ErrnoStatus(errno, "setting the mode of", temp);
    LOCKSTEP_RETURN_IF_ERROR(WriteAll(fd.get(), contents, temp));
    if (::fsync(fd.get()) != 0) return ErrnoStatus(errno, "syncing", temp);
    if (fd.Close() != 0) return ErrnoStatus(errno, "closing", temp);
    if (::rename(temp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, "renaming to", path);
    return Status::Ok();
  }();
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return SyncDir(dir);
}

}  // namespace lockstep::security
