#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace sgdwalk {

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  const std::string temporary = path.string() + ".tmp";
  const auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    ::unlink(temporary.c_str());
    throw std::runtime_error(fmt::format("cannot write {}: {}: {}", temporary, what, reason));
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open");
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      errno = error;
      fail("write");
    }
    written += static_cast<std::size_t>(n);
  }
  if (!sync_file(fd)) {
    const int error = errno;
    ::close(fd);
    errno = error;
    fail("fsync");
  }
  if (::close(fd) != 0) fail("close");
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temporary.c_str());
    throw std::runtime_error(
        fmt::format("cannot rename {} to {}: {}", temporary, path.string(), reason));
  }
  sync_directory_of(path);
}

bool sync_file(int fd) {
  if (::fsync(fd) == 0) return true;
  return errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP;
}

bool sync_file_at(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool synced = sync_file(fd);
  const int error = errno;
  ::close(fd);
  errno = error;
  return synced;
}

void sync_directory_of(const std::filesystem::path& path) {
  const std::filesystem::path parent = path.parent_path();
  const int fd = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace sgdwalk
