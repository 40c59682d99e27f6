// Files that hold secrets or identities: a private data directory, whole-file reads with a size
// bound, and atomic replacement (temp file + fsync + rename) with the final mode set before any
// byte is written. Internal to lockstep::security.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "lockstep/status.h"

namespace lockstep::security {

// Creates `dir` with mode 0700 when missing (parents with the default mode). Existing
// directories are left as they are. Errors: kPermissionDenied, kFailedPrecondition when `dir`
// exists but is not a directory, kInternal.
Status EnsurePrivateDir(const std::filesystem::path& dir);

// Whether the calling process may create files in `dir`; kPermissionDenied naming `dir` if not.
Status CheckWritableDir(const std::filesystem::path& dir);

// The whole content of `path`. Errors: kNotFound, kPermissionDenied, kDataLoss when the file is
// larger than `max_bytes` (never read past it), kInternal.
Result<std::string> ReadWholeFile(const std::filesystem::path& path, size_t max_bytes);

// Replaces `path` with `contents` atomically: a crash leaves the old file or the new one, never a
// mix. The temporary file is created 0600 and set to `mode` before anything is written, so a
// secret is never readable by others. Errors: kPermissionDenied, kResourceExhausted (disk full),
// kInternal.
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                           mode_t mode);

}  // namespace lockstep::security
