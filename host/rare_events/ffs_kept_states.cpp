#include "rare_events/ffs_kept_states.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "io/atomic_file.hpp"
#include "run/checkpoint.hpp"

namespace sgdwalk {
namespace {

constexpr std::array<char, 8> kMagic = {'S', 'G', 'D', 'W', 'F', 'F', 'S', 'K'};
constexpr std::uint32_t kLayoutVersion = 1;
constexpr std::uint32_t kByteOrderMark = 0x01020304;
constexpr std::uint64_t kHeaderBytes = 16;
constexpr std::int64_t kRecordFields = 6;  // variant, replica, interface, count, dim, state_width
/// Bytes per state besides position and optimizer state: y_freeze, 3 stamps, basin, crossings,
/// path_step, ancestor, parent.
constexpr std::uint64_t kFixedBytesPerState = 8 + 3 * 8 + 4 + 4 + 3 * 8;

/// A record's bytes, hashed as they are appended.
class Record {
 public:
  void bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const char*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  template <class T>
  void value(T v) {
    bytes(&v, sizeof v);
  }
  template <class T>
  void array(const std::vector<T>& values) {
    if (!values.empty()) bytes(values.data(), values.size() * sizeof(T));
  }
  /// The record with its hash appended.
  const std::vector<char>& sealed() {
    const std::uint64_t hash = fnv1a64(bytes_.data(), bytes_.size());
    value(hash);
    return bytes_;
  }

 private:
  std::vector<char> bytes_;
};

/// Reads the committed bytes in order; every read is checked against what is left.
class Reader {
 public:
  explicit Reader(std::vector<char> bytes) : bytes_(std::move(bytes)) {}
  std::uint64_t left() const { return bytes_.size() - offset_; }
  std::uint64_t offset() const { return offset_; }
  void read(void* out, std::size_t size) {
    if (size > left())
      throw std::runtime_error(fmt::format("a record at byte {} is cut short", offset_));
    if (size > 0) std::memcpy(out, bytes_.data() + offset_, size);
    offset_ += size;
  }
  template <class T>
  T value() {
    T v;
    read(&v, sizeof v);
    return v;
  }
  template <class T>
  void array(std::vector<T>& values, std::int64_t count) {
    values.resize(static_cast<std::size_t>(count));
    read(values.data(), values.size() * sizeof(T));
  }
  std::uint64_t hash_since(std::uint64_t begin) const {
    return fnv1a64(bytes_.data() + begin, offset_ - begin);
  }

 private:
  std::vector<char> bytes_;
  std::uint64_t offset_ = 0;
};

}  // namespace

std::string KeptStatesWriter::path_for(const std::string& checkpoint_path) {
  std::filesystem::path path(checkpoint_path);
  path.replace_extension(".states.bin");
  return path.string();
}

void KeptStatesWriter::append(std::int64_t variant, std::int64_t replica, std::int64_t interface,
                              const FfsInterfaceStates& states) {
  const WalkerArrays& w = states.states;
  const std::int64_t n = states.size();
  Record record;
  record.value(variant);
  record.value(replica);
  record.value(interface);
  record.value(n);
  record.value(static_cast<std::int64_t>(w.dim));
  record.value(static_cast<std::int64_t>(w.state_width));
  record.array(w.position);
  record.array(w.optimizer_state);
  record.array(w.y_freeze);
  record.array(w.freeze_step);
  record.array(w.first_passage_step);
  record.array(w.nonfinite_step);
  record.array(w.basin);
  record.array(w.crossings);
  record.array(states.path_step);
  record.array(states.ancestor);
  record.array(states.parent);
  const std::vector<char>& bytes = record.sealed();

  const bool fresh = committed_ == 0;
  // A fresh file is truncated; an existing one is written at its committed end, over whatever an
  // interrupted append left there.
  errno = 0;
  std::fstream out(path_, fresh ? std::ios::binary | std::ios::out | std::ios::trunc
                                : std::ios::binary | std::ios::in | std::ios::out);
  if (fresh) {
    out.write(kMagic.data(), kMagic.size());
    out.write(reinterpret_cast<const char*>(&kLayoutVersion), sizeof kLayoutVersion);
    out.write(reinterpret_cast<const char*>(&kByteOrderMark), sizeof kByteOrderMark);
  } else {
    out.seekp(static_cast<std::streamoff>(committed_));
  }
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  // The checkpoint that counts these bytes is synced next: they must reach the disk first.
  if (!out || !sync_file_at(path_)) {
    // errno holds the system's reason when the failed call set it (No space left on device).
    const std::string reason = errno != 0 ? ": " + std::string(std::strerror(errno)) : "";
    throw std::runtime_error(
        fmt::format("{}: cannot write the FFS checkpoint's states{}", path_, reason));
  }
  committed_ = (fresh ? kHeaderBytes : committed_) + bytes.size();
}

void read_kept_states(const std::string& path, std::uint64_t committed, int dim, int state_width,
                      const std::function<void(std::int64_t, std::int64_t, std::int64_t,
                                               FfsInterfaceStates&&)>& keep) {
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  if (error) throw std::runtime_error(fmt::format("{}: {}", path, error.message()));
  if (size < committed || committed < kHeaderBytes) {
    throw std::runtime_error(
        fmt::format("{} holds {} bytes, the checkpoint records {} (at least {})", path, size,
                    committed, kHeaderBytes));
  }
  std::vector<char> bytes(committed);
  {
    std::ifstream in(path, std::ios::binary);
    in.read(bytes.data(), static_cast<std::streamsize>(committed));
    if (!in) throw std::runtime_error(fmt::format("{}: cannot read it", path));
  }
  Reader reader(std::move(bytes));
  std::array<char, 8> magic{};
  reader.read(magic.data(), magic.size());
  const auto version = reader.value<std::uint32_t>();
  const auto mark = reader.value<std::uint32_t>();
  if (magic != kMagic) throw std::runtime_error(fmt::format("{} is not an FFS states file", path));
  if (mark != kByteOrderMark)
    throw std::runtime_error(fmt::format("{} was written with the other byte order", path));
  if (version != kLayoutVersion) {
    throw std::runtime_error(
        fmt::format("{}: layout version {} (this build reads {})", path, version, kLayoutVersion));
  }
  while (reader.left() > 0) {
    const std::uint64_t begin = reader.offset();
    std::array<std::int64_t, kRecordFields> field{};
    for (auto& f : field) f = reader.value<std::int64_t>();
    const auto [variant, replica, interface, n, record_dim, record_width] = field;
    if (record_dim != dim || record_width != state_width) {
      throw std::runtime_error(fmt::format(
          "{}: a record at byte {} has dimension {} and optimizer state width {}, the config {} "
          "and {}",
          path, begin, record_dim, record_width, dim, state_width));
    }
    const std::uint64_t per_state =
        8 * static_cast<std::uint64_t>(dim + state_width) + kFixedBytesPerState;
    if (n < 0 || static_cast<std::uint64_t>(n) > reader.left() / per_state) {
      throw std::runtime_error(fmt::format(
          "{}: a record at byte {} claims {} states, more than the file holds", path, begin, n));
    }
    FfsInterfaceStates s;
    s.states.resize(n, dim, 0, state_width);
    reader.array(s.states.position, n * dim);
    reader.array(s.states.optimizer_state, n * state_width);
    reader.array(s.states.y_freeze, n);
    reader.array(s.states.freeze_step, n);
    reader.array(s.states.first_passage_step, n);
    reader.array(s.states.nonfinite_step, n);
    reader.array(s.states.basin, n);
    reader.array(s.states.crossings, n);
    reader.array(s.path_step, n);
    reader.array(s.ancestor, n);
    reader.array(s.parent, n);
    const std::uint64_t computed = reader.hash_since(begin);
    if (reader.value<std::uint64_t>() != computed)
      throw std::runtime_error(fmt::format("{}: the record at byte {} is corrupt", path, begin));
    keep(variant, replica, interface, std::move(s));
  }
}

}  // namespace sgdwalk
