#include "io/walker_store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "io/atomic_file.hpp"

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
  const std::int64_t written = std::min(first + count, std::max(first, finished_));
  out.copy_from(all_, first, written);
  out.mark_unfinished(written, first + count);
}

std::int64_t walker_record_bytes(int dim, int state_width) {
  return std::int64_t{8} * (dim + state_width) + 8 + 3 * 8 + 4 + 4 + 8;
}

namespace {

/// A walker record that is damaged or not this run's (its checksum or its trackers).
struct DamagedWalkerRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr char kMagic[16] = {'s', 'g', 'd', 'w', 'a', 'l', 'k', ' ',
                             'w', 'a', 'l', 'k', 'e', 'r', 's', '\n'};
constexpr std::uint32_t kFormat = 2;
constexpr std::uint32_t kByteOrderMark = 0x01020304;

/// murmur3's 64-bit finaliser: a bijection that spreads every input bit over the output.
std::uint64_t mix64(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

/// How one walker's record is laid out and checked. Format 1 records have no checksum.
struct RecordLayout {
  int dim = 0;
  int width = 0;              ///< optimizer state numbers per walker (after the trackers)
  std::int64_t steps = 0;     ///< run.steps: no step stamp or crossing count exceeds it
  std::uint64_t run_key = 0;  ///< the run's config hash, folded into every record's checksum
  bool checksummed = true;

  RecordLayout(const RunPlan& plan, bool with_checksum)
      : dim(plan.dim),
        width(plan.optimizer_state_width()),
        steps(plan.steps),
        run_key(config_hash(plan)),
        checksummed(with_checksum) {}

  std::size_t bytes() const {
    return static_cast<std::size_t>(walker_record_bytes(dim, width)) - (checksummed ? 0 : 8);
  }
  std::size_t payload_words() const { return (bytes() - (checksummed ? 8 : 0)) / 8; }

  /// A chain of bijections, one per 8-byte word: a change confined to one word always changes
  /// the checksum, as does the same record under another walker index or run.
  std::uint64_t checksum(const char* record, std::int64_t g) const {
    std::uint64_t h = mix64(run_key ^ mix64(static_cast<std::uint64_t>(g)));
    for (std::size_t i = 0; i < payload_words(); ++i) {
      std::uint64_t word;
      std::memcpy(&word, record + 8 * i, 8);
      h = mix64(h ^ word);
    }
    return h;
  }

  void encode(const WalkerArrays& batch, std::int64_t g, char* record) const {
    const std::size_t k = batch.at(g);
    char* p = record;
    put(p, batch.position.data() + k * static_cast<std::size_t>(dim),
        sizeof(double) * static_cast<std::size_t>(dim));
    put(p, &batch.y_freeze[k], 8);
    put(p, &batch.freeze_step[k], 8);
    put(p, &batch.first_passage_step[k], 8);
    put(p, &batch.nonfinite_step[k], 8);
    put(p, &batch.basin[k], 4);
    put(p, &batch.crossings[k], 4);
    put(p, batch.optimizer_state.data() + k * static_cast<std::size_t>(width),
        sizeof(double) * static_cast<std::size_t>(width));
    if (checksummed) {
      const std::uint64_t sum = checksum(record, g);
      put(p, &sum, 8);
    }
  }

  /// Decodes walker g's record into `out`, refusing a record that is damaged or not this run's.
  void decode(const char* record, std::int64_t g, WalkerArrays& out,
              const std::string& source) const {
    if (checksummed) {
      std::uint64_t stored;
      std::memcpy(&stored, record + 8 * payload_words(), 8);
      if (stored != checksum(record, g)) {
        throw DamagedWalkerRecord(fmt::format(
            "{}: walker {}: the record's checksum does not match: the record is damaged or "
            "belongs to another run or shard",
            source, g));
      }
    }
    const std::size_t k = out.at(g);
    const char* p = record;
    get(p, out.position.data() + k * static_cast<std::size_t>(dim),
        sizeof(double) * static_cast<std::size_t>(dim));
    get(p, &out.y_freeze[k], 8);
    get(p, &out.freeze_step[k], 8);
    get(p, &out.first_passage_step[k], 8);
    get(p, &out.nonfinite_step[k], 8);
    get(p, &out.basin[k], 4);
    get(p, &out.crossings[k], 4);
    get(p, out.optimizer_state.data() + k * static_cast<std::size_t>(width),
        sizeof(double) * static_cast<std::size_t>(width));
    check_trackers(out, k, g, source);
  }

  /// Format 1 has no checksum, and a checksum cannot see a file written wrongly in the first
  /// place: a record whose trackers no walker of this run can have (a step stamp beyond
  /// run.steps, more crossings than steps) must not pass into results.h5 unremarked.
  void check_trackers(const WalkerArrays& out, std::size_t k, std::int64_t g,
                      const std::string& source) const {
    const std::int64_t freeze = out.freeze_step[k], passage = out.first_passage_step[k],
                       nonfinite = out.nonfinite_step[k];
    const auto crossings = static_cast<std::int64_t>(out.crossings[k]);
    if (freeze < 0 || freeze > steps || passage > steps || nonfinite > steps || crossings > steps) {
      throw DamagedWalkerRecord(fmt::format(
          "{}: walker {} holds trackers no walker of this run ({} steps) can have (freeze step "
          "{}, first passage step {}, non-finite step {}, crossings {}): the record is damaged "
          "or belongs to another run",
          source, g, steps, freeze, passage, nonfinite, crossings));
    }
  }

  static void put(char*& p, const void* data, std::size_t size) {
    std::memcpy(p, data, size);
    p += size;
  }
  static void get(const char*& p, void* data, std::size_t size) {
    std::memcpy(data, p, size);
    p += size;
  }
};

/// The header of a format-2 file: magic, format, byte-order mark, config hash, first walker,
/// dim, state width, record bytes, then the FNV-1a hash of the 56 bytes before it.
std::string encode_header(const RecordLayout& layout, std::int64_t base) {
  std::string header(static_cast<std::size_t>(kWalkerFileHeaderBytes), '\0');
  char* p = header.data();
  const auto record = static_cast<std::int64_t>(layout.bytes());
  RecordLayout::put(p, kMagic, sizeof kMagic);
  RecordLayout::put(p, &kFormat, 4);
  RecordLayout::put(p, &kByteOrderMark, 4);
  RecordLayout::put(p, &layout.run_key, 8);
  RecordLayout::put(p, &base, 8);
  RecordLayout::put(p, &layout.dim, 4);
  RecordLayout::put(p, &layout.width, 4);
  RecordLayout::put(p, &record, 8);
  const std::uint64_t sum = fnv1a64(header.data(), 56);
  RecordLayout::put(p, &sum, 8);
  return header;
}

class FileWalkerStore final : public WalkerStore {
 public:
  /// `create`: a new, empty file with its header (truncating any file at `path`); otherwise the
  /// file must exist and hold walkers [base, finished): its header (or format 1) is checked.
  FileWalkerStore(const RunPlan& plan, std::string path, std::int64_t finished, std::int64_t base,
                  bool create, bool read_only)
      : path_(std::move(path)), layout_(plan, true), base_(base), finished_(finished) {
    const int flags =
        read_only ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_CLOEXEC | (create ? O_TRUNC : 0);
    fd_ = ::open(path_.c_str(), flags, 0644);
    if (fd_ < 0) fail("cannot open");
    try {
      if (create) {
        const std::string header = encode_header(layout_, base_);
        write_at(header.data(), header.size(), 0);
      } else {
        check_header();
      }
      const off_t size = ::lseek(fd_, 0, SEEK_END);
      if (size < offset_of(finished)) {
        throw std::runtime_error(fmt::format(
            "{}: the per-walker file is shorter than the {} finished walkers the checkpoint "
            "records",
            path_, finished - base));
      }
    } catch (...) {
      ::close(fd_);
      fd_ = -1;
      throw;
    }
  }
  ~FileWalkerStore() override {
    if (fd_ >= 0) ::close(fd_);
  }
  FileWalkerStore(const FileWalkerStore&) = delete;
  FileWalkerStore& operator=(const FileWalkerStore&) = delete;

  /// Whether the file is of format 1 (no header, no checksums).
  bool format_1() const { return !layout_.checksummed; }

  void write(const WalkerArrays& batch, std::int64_t first, std::int64_t last) override {
    if (format_1()) throw std::logic_error("FileWalkerStore: format-1 files are read only");
    const std::size_t record = layout_.bytes();
    constexpr std::int64_t kSlab = 1 << 16;
    std::vector<char> buffer;
    for (std::int64_t lo = first; lo < last; lo += kSlab) {
      const std::int64_t hi = std::min(last, lo + kSlab);
      buffer.resize(static_cast<std::size_t>(hi - lo) * record);
      for (std::int64_t g = lo; g < hi; ++g) {
        layout_.encode(batch, g, buffer.data() + static_cast<std::size_t>(g - lo) * record);
      }
      write_at(buffer.data(), buffer.size(), offset_of(lo));
    }
    finished_ = std::max(finished_, last);
  }

  void read(std::int64_t first, std::int64_t count, WalkerArrays& out) const override {
    out.resize(count, layout_.dim, first, layout_.width);
    const std::int64_t end = std::min(first + count, finished_);
    out.mark_unfinished(std::max(first, end), first + count);
    if (end <= first) return;
    const std::size_t record = layout_.bytes();
    std::vector<char> buffer(static_cast<std::size_t>(end - first) * record);
    read_at(buffer.data(), buffer.size(), offset_of(first));
    for (std::int64_t g = first; g < end; ++g) {
      layout_.decode(buffer.data() + static_cast<std::size_t>(g - first) * record, g, out, path_);
    }
  }

  void sync() override {
    if (!sync_file(fd_)) fail("cannot sync");
  }
  std::int64_t finished() const override { return finished_; }

 private:
  off_t offset_of(std::int64_t g) const {
    const off_t header = format_1() ? 0 : static_cast<off_t>(kWalkerFileHeaderBytes);
    return header + static_cast<off_t>(g - base_) * static_cast<off_t>(layout_.bytes());
  }
  /// Checks an existing file's header against this run; a file without one is of format 1.
  void check_header() {
    const off_t size = ::lseek(fd_, 0, SEEK_END);
    char header[kWalkerFileHeaderBytes] = {};
    if (size >= kWalkerFileHeaderBytes) read_at(header, sizeof header, 0);
    // Format 1 starts with a record (doubles), which shares no more than a few bytes with the
    // magic; a format-2 header with a damaged magic byte is a damaged header, not format 1.
    int magic_bytes = 0;
    for (std::size_t i = 0; i < sizeof kMagic; ++i) magic_bytes += header[i] == kMagic[i];
    if (size < kWalkerFileHeaderBytes || magic_bytes < 12) {
      layout_.checksummed = false;
      return;
    }
    const char* p = header + sizeof kMagic;
    std::uint32_t format = 0, byte_order = 0;
    std::uint64_t run_key = 0, sum = 0;
    std::int64_t base = 0, record = 0;
    int dim = 0, width = 0;
    RecordLayout::get(p, &format, 4);
    RecordLayout::get(p, &byte_order, 4);
    RecordLayout::get(p, &run_key, 8);
    RecordLayout::get(p, &base, 8);
    RecordLayout::get(p, &dim, 4);
    RecordLayout::get(p, &width, 4);
    RecordLayout::get(p, &record, 8);
    RecordLayout::get(p, &sum, 8);
    const auto refuse = [&](const std::string& why) {
      return std::runtime_error(fmt::format("{}: {}", path_, why));
    };
    if (sum != fnv1a64(header, 56) || byte_order != kByteOrderMark ||
        magic_bytes != static_cast<int>(sizeof kMagic)) {
      throw refuse("the per-walker file's header is damaged");
    }
    if (format != kFormat) {
      throw refuse(
          fmt::format("per-walker file format {} is not supported; this sgdwalk reads "
                      "formats 1 and {}",
                      format, kFormat));
    }
    if (run_key != layout_.run_key) {
      throw refuse(fmt::format(
          "the per-walker file belongs to another run (config hash {:016x}, this run's {:016x})",
          run_key, layout_.run_key));
    }
    if (base != base_) {
      throw refuse(fmt::format(
          "the per-walker file holds walkers from {} on, but this part's walkers start at {}: "
          "it is another shard's file",
          base, base_));
    }
    if (dim != layout_.dim || width != layout_.width ||
        record != static_cast<std::int64_t>(layout_.bytes())) {
      throw refuse(fmt::format(
          "the per-walker file has records of dimension {}, optimizer state width {} and {} "
          "bytes; this run's are {}, {} and {}",
          dim, width, record, layout_.dim, layout_.width, layout_.bytes()));
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
  RecordLayout layout_;
  std::int64_t base_;  ///< the first walker of the file (a part's first walker)
  std::int64_t finished_;
  int fd_ = -1;
};

/// Rewrites a format-1 file holding walkers [base, finished) in format 2, atomically: the old
/// file stays until the new one is complete and synced.
void convert_format_1(const RunPlan& plan, const std::string& path, std::int64_t finished,
                      std::int64_t base) {
  const FileWalkerStore old(plan, path, finished, base, false, true);
  if (!old.format_1()) return;
  // RUN/walkers.bin's is run_session.hpp's kWalkerConversionFileName (removed as stale).
  const std::string converted = path + ".format2.tmp";
  {
    FileWalkerStore fresh(plan, converted, base, base, true, false);
    constexpr std::int64_t kSlab = 1 << 16;
    WalkerArrays slab;
    for (std::int64_t lo = base; lo < finished; lo += kSlab) {
      const std::int64_t hi = std::min(finished, lo + kSlab);
      old.read(lo, hi - lo, slab);
      fresh.write(slab, lo, hi);
    }
    fresh.sync();
  }
  if (std::rename(converted.c_str(), path.c_str()) != 0) {
    throw std::runtime_error(
        fmt::format("cannot replace {} by its format-2 copy: {}", path, std::strerror(errno)));
  }
  // The rename is durable once the directory is synced: checkpoints from here on count walkers
  // written to the new file.
  const std::size_t slash = path.find_last_of('/');
  const std::string directory = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || !sync_file(fd)) {
    const std::string reason = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(fmt::format("cannot sync the directory of {}: {}", path, reason));
  }
  ::close(fd);
}

}  // namespace

std::shared_ptr<WalkerStore> make_file_walker_store(const RunPlan& plan, const std::string& path,
                                                    std::int64_t finished, std::int64_t base) {
  const bool resume = finished > base;
  if (resume) convert_format_1(plan, path, finished, base);
  auto store =
      std::make_shared<FileWalkerStore>(plan, path, std::max(finished, base), base, !resume, false);
  if (resume) {
    // Every record the checkpoint counts is checked now rather than when results.h5 is written
    // at the end: a damaged record cannot be recovered, and the rest of the run would be computed
    // for nothing.
    constexpr std::int64_t kSlab = 1 << 16;
    WalkerArrays slab;
    try {
      for (std::int64_t lo = base; lo < finished; lo += kSlab) {
        store->read(lo, std::min(kSlab, finished - lo), slab);
      }
    } catch (const DamagedWalkerRecord& error) {
      // A read that failed (EIO) is no verdict on the records: it passes unchanged.
      throw std::runtime_error(fmt::format(
          "{}; the walkers already written cannot be recovered, so this run cannot be completed: "
          "run it again from the start (`sgdwalk run ... --force`, a shard with its --shard K/N)",
          error.what()));
    }
  }
  return store;
}

std::shared_ptr<WalkerStore> open_walker_file(const RunPlan& plan, const std::string& path,
                                              std::int64_t begin, std::int64_t end) {
  return std::make_shared<FileWalkerStore>(plan, path, end, begin, false, true);
}

std::string encode_walker_records(const RunPlan& plan, const WalkerArrays& batch,
                                  std::int64_t first, std::int64_t last) {
  const RecordLayout layout(plan, true);
  std::string bytes(static_cast<std::size_t>(last - first) * layout.bytes(), '\0');
  for (std::int64_t g = first; g < last; ++g) {
    layout.encode(batch, g, bytes.data() + static_cast<std::size_t>(g - first) * layout.bytes());
  }
  return bytes;
}

void decode_walker_records(const RunPlan& plan, const char* data, std::size_t size,
                           std::int64_t first, WalkerArrays& out, const std::string& source) {
  const RecordLayout layout(plan, true);
  if (size % layout.bytes() != 0) {
    throw std::runtime_error(fmt::format("{}: {} bytes are not whole walker records of {} bytes",
                                         source, size, layout.bytes()));
  }
  const auto count = static_cast<std::int64_t>(size / layout.bytes());
  out.resize(count, layout.dim, first, layout.width);
  for (std::int64_t g = first; g < first + count; ++g) {
    layout.decode(data + static_cast<std::size_t>(g - first) * layout.bytes(), g, out, source);
  }
}

}  // namespace sgdwalk
