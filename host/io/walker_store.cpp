#include "io/walker_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace sgdwalk {

MemoryWalkerStore::MemoryWalkerStore(const RunPlan& plan) {
  all_.resize(plan.total_walkers(), plan.dim, 0, plan.optimizer_state_width());
}

void MemoryWalkerStore::write(const WalkerArrays& batch, std::int64_t first, std::int64_t last) {
  all_.copy_from(batch, first, last);
  finished_ = std::max(finished_, last);
}

void MemoryWalkerStore::read(std::int64_t first, std::int64_t count, WalkerArrays& out) const {
  out.resize(count, all_.dim, first, all_.state_width);
  out.copy_from(all_, first, std::min(first + count, std::max(first, finished_)));
}

std::int64_t walker_record_bytes(int dim, int state_width) {
  return std::int64_t{8} * (dim + state_width) + 8 + 3 * 8 + 4 + 4;
}

namespace {

class FileWalkerStore final : public WalkerStore {
 public:
  FileWalkerStore(const RunPlan& plan, std::string path, std::int64_t finished, std::int64_t base,
                  bool read_only)
      : path_(std::move(path)),
        dim_(plan.dim),
        width_(plan.optimizer_state_width()),
        steps_(plan.steps),
        base_(base),
        finished_(finished) {
    const int flags = read_only ? O_RDONLY | O_CLOEXEC
                                : O_RDWR | O_CREAT | O_CLOEXEC | (finished > base ? 0 : O_TRUNC);
    fd_ = ::open(path_.c_str(), flags, 0644);
    if (fd_ < 0) fail("cannot open");
    if (finished > base) {
      const off_t size = ::lseek(fd_, 0, SEEK_END);
      if (size < static_cast<off_t>((finished - base) * walker_record_bytes(dim_, width_))) {
        ::close(fd_);
        throw std::runtime_error(fmt::format(
            "{}: the per-walker file is shorter than the {} finished walkers the checkpoint "
            "records",
            path_, finished - base));
      }
    }
  }
  ~FileWalkerStore() override {
    if (fd_ >= 0) ::close(fd_);
  }
  FileWalkerStore(const FileWalkerStore&) = delete;
  FileWalkerStore& operator=(const FileWalkerStore&) = delete;

  void write(const WalkerArrays& batch, std::int64_t first, std::int64_t last) override {
    const auto record = static_cast<std::size_t>(walker_record_bytes(dim_, width_));
    constexpr std::int64_t kSlab = 1 << 16;
    std::vector<char> buffer;
    for (std::int64_t lo = first; lo < last; lo += kSlab) {
      const std::int64_t hi = std::min(last, lo + kSlab);
      buffer.resize(static_cast<std::size_t>(hi - lo) * record);
      char* p = buffer.data();
      for (std::int64_t g = lo; g < hi; ++g) {
        const std::size_t k = batch.at(g);
        put(p, batch.position.data() + k * static_cast<std::size_t>(dim_),
            sizeof(double) * static_cast<std::size_t>(dim_));
        put(p, &batch.y_freeze[k], 8);
        put(p, &batch.freeze_step[k], 8);
        put(p, &batch.first_passage_step[k], 8);
        put(p, &batch.nonfinite_step[k], 8);
        put(p, &batch.basin[k], 4);
        put(p, &batch.crossings[k], 4);
        put(p, batch.optimizer_state.data() + k * static_cast<std::size_t>(width_),
            sizeof(double) * static_cast<std::size_t>(width_));
      }
      write_at(buffer.data(), buffer.size(),
               static_cast<off_t>(lo - base_) * static_cast<off_t>(record));
    }
    finished_ = std::max(finished_, last);
  }

  void read(std::int64_t first, std::int64_t count, WalkerArrays& out) const override {
    out.resize(count, dim_, first, width_);
    const std::int64_t end = std::min(first + count, finished_);
    if (end <= first) return;
    const auto record = static_cast<std::size_t>(walker_record_bytes(dim_, width_));
    std::vector<char> buffer(static_cast<std::size_t>(end - first) * record);
    read_at(buffer.data(), buffer.size(),
            static_cast<off_t>(first - base_) * static_cast<off_t>(record));
    const char* p = buffer.data();
    for (std::int64_t g = first; g < end; ++g) {
      const std::size_t k = out.at(g);
      get(p, out.position.data() + k * static_cast<std::size_t>(dim_),
          sizeof(double) * static_cast<std::size_t>(dim_));
      get(p, &out.y_freeze[k], 8);
      get(p, &out.freeze_step[k], 8);
      get(p, &out.first_passage_step[k], 8);
      get(p, &out.nonfinite_step[k], 8);
      get(p, &out.basin[k], 4);
      get(p, &out.crossings[k], 4);
      get(p, out.optimizer_state.data() + k * static_cast<std::size_t>(width_),
          sizeof(double) * static_cast<std::size_t>(width_));
      check_trackers(out, k, g);
    }
  }

  void sync() override {
    if (::fsync(fd_) != 0) fail("cannot sync");
  }
  std::int64_t finished() const override { return finished_; }

 private:
  static void put(char*& p, const void* data, std::size_t size) {
    std::memcpy(p, data, size);
    p += size;
  }
  static void get(const char*& p, void* data, std::size_t size) {
    std::memcpy(data, p, size);
    p += size;
  }
  /// The file has no checksum of its own (its records are written as walkers finish): a record
  /// whose trackers no walker of this run can have (a step stamp beyond run.steps, more crossings
  /// than steps) means a damaged or foreign file, which must not pass into results.h5 unremarked.
  void check_trackers(const WalkerArrays& out, std::size_t k, std::int64_t g) const {
    const std::int64_t freeze = out.freeze_step[k], passage = out.first_passage_step[k],
                       nonfinite = out.nonfinite_step[k];
    const auto crossings = static_cast<std::int64_t>(out.crossings[k]);
    if (freeze < 0 || freeze > steps_ || passage > steps_ || nonfinite > steps_ ||
        crossings > steps_) {
      throw std::runtime_error(fmt::format(
          "{}: walker {} holds trackers no walker of this run ({} steps) can have (freeze step "
          "{}, first passage step {}, non-finite step {}, crossings {}): the per-walker file is "
          "damaged or belongs to another run",
          path_, g, steps_, freeze, passage, nonfinite, crossings));
    }
  }
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(fmt::format("{}: {}: {}", path_, what, std::strerror(errno)));
  }
  void write_at(const char* p, std::size_t size, off_t offset) {
    while (size > 0) {
      const ssize_t n = ::pwrite(fd_, p, size, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("cannot write");
      }
      p += n;
      size -= static_cast<std::size_t>(n);
      offset += n;
    }
  }
  void read_at(char* p, std::size_t size, off_t offset) const {
    while (size > 0) {
      const ssize_t n = ::pread(fd_, p, size, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("cannot read");
      }
      if (n == 0) {
        throw std::runtime_error(fmt::format("{}: unexpected end of the per-walker file", path_));
      }
      p += n;
      size -= static_cast<std::size_t>(n);
      offset += n;
    }
  }
  std::string path_;
  int dim_;
  int width_;           ///< optimizer state numbers per walker (after the trackers in a record)
  std::int64_t steps_;  ///< run.steps: no step stamp or crossing count exceeds it
  std::int64_t base_;   ///< the first walker of the file (a part's first walker)
  std::int64_t finished_;
  int fd_ = -1;
};

}  // namespace

std::shared_ptr<WalkerStore> make_file_walker_store(const RunPlan& plan, const std::string& path,
                                                    std::int64_t finished, std::int64_t base) {
  return std::make_shared<FileWalkerStore>(plan, path, std::max(finished, base), base, false);
}

std::shared_ptr<WalkerStore> open_walker_file(const RunPlan& plan, const std::string& path,
                                              std::int64_t begin, std::int64_t end) {
  return std::make_shared<FileWalkerStore>(plan, path, end, begin, true);
}

}  // namespace sgdwalk
