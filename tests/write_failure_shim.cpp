// A preload library for the tests of failed writes (LD_PRELOAD): the N-th write(), writev() or
// pwrite() (SGDWALK_FAIL_WRITE_NTH) to a file whose path ends in SGDWALK_FAIL_WRITE_SUFFIX fails
// with ENOSPC, once, and every other write goes through: a disk that fills up for a moment and
// frees space again does the same, and a writer must notice the one failure, which the later writes
// would hide. With SGDWALK_FAIL_WRITE_FROM=N instead, every such write from the N-th on fails (a
// disk that stays full).
#include <dlfcn.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

std::atomic<long> matching_writes{0};

bool fail_this_write(int fd) {
  const char* suffix = std::getenv("SGDWALK_FAIL_WRITE_SUFFIX");
  const char* nth = std::getenv("SGDWALK_FAIL_WRITE_NTH");
  const char* from = std::getenv("SGDWALK_FAIL_WRITE_FROM");
  if (suffix == nullptr || (nth == nullptr && from == nullptr)) return false;
  char link[64];
  char target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t length = ::readlink(link, target, sizeof target - 1);
  if (length < 0) return false;
  target[length] = '\0';
  const std::size_t suffix_length = std::strlen(suffix);
  if (static_cast<std::size_t>(length) < suffix_length ||
      std::strcmp(target + length - suffix_length, suffix) != 0) {
    return false;
  }
  const long count = ++matching_writes;
  return nth != nullptr ? count == std::atol(nth) : count >= std::atol(from);
}

/// The real `name` (the next definition after this library's) called with `arguments`, unless
/// this write is the one to fail.
template <class... Arguments>
ssize_t write_or_fail(const char* name, int fd, Arguments... arguments) {
  if (fail_this_write(fd)) {
    errno = ENOSPC;
    return -1;
  }
  using Real = ssize_t (*)(int, Arguments...);
  return reinterpret_cast<Real>(::dlsym(RTLD_NEXT, name))(fd, arguments...);
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* data, size_t count) {
  return write_or_fail("write", fd, data, count);
}

ssize_t writev(int fd, const struct iovec* parts, int count) {
  return write_or_fail("writev", fd, parts, count);
}

ssize_t pwrite(int fd, const void* data, size_t count, off_t offset) {
  return write_or_fail("pwrite", fd, data, count, offset);
}

#if !defined(__USE_FILE_OFFSET64)  // otherwise pwrite above is pwrite64 already
ssize_t pwrite64(int fd, const void* data, size_t count, off64_t offset) {
  return write_or_fail("pwrite64", fd, data, count, offset);
}
#endif

}  // extern "C"
