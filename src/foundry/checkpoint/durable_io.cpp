#include "foundry/checkpoint/durable_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "foundry/core/check.h"

namespace foundry {

namespace fs = std::filesystem;

namespace {

std::string os_error() { return std::strerror(errno); }

// Closes the descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void write_all(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    // Linux writes at most 0x7ffff000 bytes per call; larger requests come back short.
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      FOUNDRY_FAIL("cannot write '{}': {}", path, os_error());
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void pread_exact(int fd, void* data, size_t n, int64_t offset, const std::string& path) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      FOUNDRY_FAIL("cannot read '{}': {}", path, os_error());
    }
    FOUNDRY_CHECK(r > 0, "'{}' is truncated: it ends at byte {} but {} more bytes were expected",
                  path, offset, n);
    p += r;
    n -= static_cast<size_t>(r);
    offset += r;
  }
}

void fsync_path(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  FOUNDRY_CHECK(f.fd >= 0, "cannot open '{}' to fsync it: {}", path, os_error());
  FOUNDRY_CHECK(::fsync(f.fd) == 0, "fsync of '{}' failed: {}", path, os_error());
}

void fsync_tree(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st))
      fsync_tree(it->path().string());
    else if (fs::is_regular_file(st))
      fsync_path(it->path().string());
  }
  FOUNDRY_CHECK(!ec, "cannot list '{}': {}", dir, ec.message());
  fsync_path(dir);
}

void write_file_atomic(const std::string& path, std::string_view text) {
  const fs::path target(path);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    FOUNDRY_CHECK(f.fd >= 0, "cannot create '{}': {}", tmp, os_error());
    write_all(f.fd, text.data(), text.size(), tmp);
    FOUNDRY_CHECK(::fsync(f.fd) == 0, "fsync of '{}' failed: {}", tmp, os_error());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = os_error();
    ::unlink(tmp.c_str());
    FOUNDRY_FAIL("cannot rename '{}' to '{}': {}", tmp, path, err);
  }
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fsync_path(parent.string());
}

std::string read_small_file(const std::string& path, int64_t max_bytes) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  FOUNDRY_CHECK(f.fd >= 0, "cannot open '{}': {}", path, os_error());
  struct stat st {};
  FOUNDRY_CHECK(::fstat(f.fd, &st) == 0, "cannot stat '{}': {}", path, os_error());
  FOUNDRY_CHECK(S_ISREG(st.st_mode), "'{}' is not a regular file", path);
  FOUNDRY_CHECK(st.st_size <= max_bytes, "'{}' is {} bytes, more than the {} expected", path,
                static_cast<int64_t>(st.st_size), max_bytes);
  std::string s(static_cast<size_t>(st.st_size), '\0');
  pread_exact(f.fd, s.data(), s.size(), 0, path);
  return s;
}

bool process_alive(int64_t pid) {
  if (pid <= 0 || pid > INT32_MAX) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace foundry
