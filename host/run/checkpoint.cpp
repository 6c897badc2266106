#include "run/checkpoint.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "io/atomic_file.hpp"

namespace sgdwalk {

static_assert(std::endian::native == std::endian::little,
              "checkpoints are little-endian; byte-swap in Sink/Source before using this host");

namespace {

constexpr char kMagic[8] = {'S', 'G', 'D', 'W', 'C', 'K', 'P', 'T'};
constexpr std::uint32_t kByteOrderMark = 0x01020304;
/// magic, version, byte-order mark, config hash, seed, then six i64 sizes.
constexpr std::uint64_t kFixedHeaderBytes = 8 + 4 + 4 + 8 + 8 + 6 * 8;
/// part_begin, part_end (version 4 on), walker_begin, walker_end, step, simulate_seconds,
/// wall_seconds, sessions, then (version 5 on) the optimizer state width (numbers per walker).
constexpr std::uint64_t kProgressBytes = 9 * 8;
constexpr std::uint64_t kProgressBytesVersion4 = 8 * 8;
constexpr std::uint64_t kProgressBytesVersion3 = 6 * 8;
constexpr std::uint64_t kTrailerBytes = 8;
constexpr std::uint64_t kNarrowSumBytes = 8 * NarrowSum::kLimbCount;
constexpr std::uint64_t kWideSumBytes = 8 * WideSum::kLimbCount;
constexpr std::uint64_t kNarrowMomentsBytes = 3 * 8 + 2 * kNarrowSumBytes;
constexpr std::uint64_t kWideMomentsBytes = 3 * 8 + 2 * kWideSumBytes;
/// Per variant: 8 counters, moments of freezing time, y_freeze, crossings, passage steps, exposure,
/// three log2 histograms and the entry count of the y_freeze sketch (its entries apart).
constexpr std::uint64_t kVariantTallyBytes =
    8 * 8 + 3 * kNarrowMomentsBytes + kWideMomentsBytes + kNarrowSumBytes + 3 * 8 * kLog2Bins + 8;
/// Per variant and sample: two moments and the entry counts of two sketches (entries apart).
constexpr std::uint64_t kSampleTallyBytes = 2 * kNarrowMomentsBytes + 2 * 8;
constexpr std::uint64_t kSketchEntryBytes = 4 + 8;

// Limits a header must respect (the config parser's limits, with room).
constexpr std::int64_t kMaxSteps = std::int64_t{1} << 50;
constexpr std::int64_t kMaxDim = 16;
constexpr std::int64_t kMaxVariants = 10000000;
constexpr std::int64_t kMaxWalkersPerVariant = 4294967295LL;
constexpr std::int64_t kMaxHistograms = 100000;
constexpr std::int64_t kMaxSlots = 10000001;

std::string errno_text() {
  return std::strerror(errno);
}

// ---- Writing ------------------------------------------------------------------------------------

/// A buffered writer to a file descriptor that hashes everything it writes.
class Sink {
 public:
  Sink(int fd, std::string path)
      : fd_(fd), path_(std::move(path)), buffer_(std::make_unique<char[]>(kBuffer)) {}

  void bytes(const void* data, std::size_t size) {
    hash_ = fnv1a64(data, size, hash_);
    const auto* p = static_cast<const char*>(data);
    if (used_ + size > kBuffer) flush();
    if (size > kBuffer) {
      write_all(p, size);
      return;
    }
    std::memcpy(buffer_.get() + used_, p, size);
    used_ += size;
  }
  template <class T>
  void value(T v) {
    bytes(&v, sizeof v);
  }
  template <class T>
  void array(const std::vector<T>& values) {
    if (!values.empty()) bytes(values.data(), values.size() * sizeof(T));
  }
  void flush() {
    write_all(buffer_.get(), used_);
    used_ = 0;
  }
  std::uint64_t hash() const { return hash_; }

 private:
  void write_all(const char* p, std::size_t size) {
    while (size > 0) {
      const ssize_t written = ::write(fd_, p, size);
      if (written < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(fmt::format("cannot write {}: {}", path_, errno_text()));
      }
      p += written;
      size -= static_cast<std::size_t>(written);
    }
  }
  static constexpr std::size_t kBuffer = 1 << 20;
  int fd_;
  std::string path_;
  std::unique_ptr<char[]> buffer_;
  std::size_t used_ = 0;
  std::uint64_t hash_ = kFnvOffset;
};

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

template <class Sum>
void put_sum(Sink& out, const Sum& sum) {
  Sum normalized = sum;
  normalized.normalize();
  for (const auto limb : normalized.limbs()) out.value(limb);
}

template <class Sum>
void put_moments(Sink& out, const Moments<Sum>& m) {
  out.value(m.count);
  out.value(m.positive_infinite);
  out.value(m.negative_infinite);
  put_sum(out, m.sum);
  put_sum(out, m.sum_squares);
}

void put_sketch_entries(Sink& out, const QuantileSketch& sketch) {
  for (const auto& e : sketch.entries()) {
    out.value(e.bucket);
    out.value(e.count);
  }
}

// ---- Reading ------------------------------------------------------------------------------------

/// Where checkpoint bytes come from; everything read through read() is hashed.
class Source {
 public:
  virtual ~Source() = default;
  void read(void* out, std::size_t size) {
    raw(out, size);
    hash_ = fnv1a64(out, size, hash_);
  }
  /// Reads without hashing (the trailer).
  virtual void raw(void* out, std::size_t size) = 0;
  std::uint64_t hash() const { return hash_; }

 private:
  std::uint64_t hash_ = kFnvOffset;
};

class MemorySource : public Source {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  void raw(void* out, std::size_t size) override {
    // The parser checks sizes first; running past the end would be a bug in this file.
    if (size > bytes_.size() - offset_)
      throw std::logic_error("checkpoint parser read past the end");
    if (size > 0) std::memcpy(out, bytes_.data() + offset_, size);
    offset_ += size;
  }

 private:
  std::string_view bytes_;
  std::size_t offset_ = 0;
};

class FileSource : public Source {
 public:
  FileSource(std::FILE* file, const std::string& path) : file_(file), path_(path) {}
  void raw(void* out, std::size_t size) override {
    if (size > 0 && std::fread(out, 1, size, file_) != size) {
      throw CheckpointError(fmt::format("{}: cannot read the checkpoint: {}", path_,
                                        std::ferror(file_) ? errno_text() : "unexpected end"));
    }
  }

 private:
  std::FILE* file_;
  std::string path_;
};

/// Multiplies and adds sizes, remembering an overflow instead of wrapping.
struct CheckedSize {
  std::uint64_t value = 0;
  bool overflow = false;
  void add(std::uint64_t count, std::uint64_t bytes_each) {
    std::uint64_t product = 0;
    overflow = overflow || __builtin_mul_overflow(count, bytes_each, &product) ||
               __builtin_add_overflow(value, product, &value);
  }
};

template <class T>
void read_value(Source& in, T& value) {
  in.read(&value, sizeof value);
}

template <class T>
void read_array(Source& in, std::vector<T>& values, std::uint64_t count) {
  values.resize(static_cast<std::size_t>(count));
  if (count > 0) in.read(values.data(), values.size() * sizeof(T));
}

template <class Sum>
void read_sum(Source& in, Sum& sum) {
  for (auto& limb : sum.limbs()) read_value(in, limb);
}

template <class Sum>
void read_moments(Source& in, Moments<Sum>& m) {
  read_value(in, m.count);
  read_value(in, m.positive_infinite);
  read_value(in, m.negative_infinite);
  read_sum(in, m.sum);
  read_sum(in, m.sum_squares);
}

/// Normalised limbs: digits in [0, 2^32), the top limb in [-2^32, 2^32).
template <class Sum>
bool valid_sum(const Sum& sum) {
  const auto& limbs = sum.limbs();
  for (std::size_t i = 0; i + 1 < limbs.size(); ++i) {
    if (limbs[i] < 0 || limbs[i] >= (std::int64_t{1} << 32)) return false;
  }
  return limbs.back() >= -(std::int64_t{1} << 32) && limbs.back() < (std::int64_t{1} << 32);
}

template <class Sum>
bool valid_moments(const Moments<Sum>& m) {
  return m.count >= 0 && m.positive_infinite >= 0 && m.negative_infinite >= 0 && valid_sum(m.sum) &&
         valid_sum(m.sum_squares);
}

bool valid_sketch(const QuantileSketch& sketch, std::int64_t values) {
  std::uint64_t total = 0;
  std::int64_t previous = -1;
  for (const auto& e : sketch.entries()) {
    if (static_cast<std::int64_t>(e.bucket) <= previous || e.count == 0 ||
        e.bucket >= (1u << kSketchBucketBits) || e.count > (std::uint64_t{1} << 62)) {
      return false;
    }
    previous = e.bucket;
    total += e.count;
  }
  return total == static_cast<std::uint64_t>(values);
}

/// The variants whose per-variant data a checkpoint stores: those the part [part_begin, part_end)
/// holds walkers of (every variant for a whole run; none for an empty part). Other variants' counts
/// and tallies are zero, so a part's file grows with its own variants, not with the run's.
std::pair<std::int64_t, std::int64_t> stored_variants(std::int64_t part_begin,
                                                      std::int64_t part_end,
                                                      std::int64_t walkers_per_variant) {
  const std::int64_t first = part_begin / walkers_per_variant;
  return {first, part_end > part_begin ? (part_end - 1) / walkers_per_variant + 1 : first};
}

template <class T>
void read_into(Source& in, std::vector<T>& values, std::uint64_t offset, std::uint64_t count) {
  if (count > 0) in.read(values.data() + offset, count * sizeof(T));
}

std::string shape_text(std::int64_t variants, std::int64_t walkers, std::int64_t steps,
                       std::int64_t dim, std::int64_t samples) {
  return fmt::format("{} variant(s) x {} walkers x {} steps, dimension {}, {} sample step(s)",
                     variants, walkers, steps, dim, samples);
}

Checkpoint parse(Source& in, std::uint64_t size, const std::string& source, const RunPlan* plan) {
  auto fail = [&](const std::string& problem) -> CheckpointError {
    return CheckpointError(fmt::format("{}: {}", source, problem));
  };
  if (size < sizeof kMagic) {
    throw fail(fmt::format("not an sgdwalk checkpoint: the file is truncated ({} bytes)", size));
  }
  char magic[sizeof kMagic];
  in.read(magic, sizeof magic);
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
    throw fail("not an sgdwalk checkpoint (wrong magic bytes; expected \"SGDWCKPT\")");
  }
  if (size < kFixedHeaderBytes) {
    throw fail(
        fmt::format("the checkpoint is truncated: {} bytes, shorter than its header ({} bytes)",
                    size, kFixedHeaderBytes));
  }
  std::uint32_t version = 0, byte_order = 0;
  read_value(in, version);
  read_value(in, byte_order);
  // Version 3 is version 4 without the part (a whole run); version 4 is version 5 without the
  // optimizer state (plain SGD, the only optimizer then).
  if (version != kCheckpointVersion && version != 3 && version != 4) {
    throw fail(fmt::format(
        "checkpoint format version {} is not supported; this sgdwalk {} reads versions 3 to {}",
        version, sgdwalk_version(), kCheckpointVersion));
  }
  const std::uint64_t progress_bytes = version == 3   ? kProgressBytesVersion3
                                       : version == 4 ? kProgressBytesVersion4
                                                      : kProgressBytes;
  if (byte_order != kByteOrderMark) {
    throw fail("the checkpoint was written with another byte order; it cannot be read here");
  }
  Checkpoint checkpoint;
  std::int64_t dim = 0, variants = 0, walkers_per_variant = 0, samples = 0, histograms = 0;
  read_value(in, checkpoint.config_hash);
  read_value(in, checkpoint.seed);
  read_value(in, checkpoint.steps);
  read_value(in, dim);
  read_value(in, variants);
  read_value(in, walkers_per_variant);
  read_value(in, samples);
  read_value(in, histograms);
  auto check_range = [&](const char* field, std::int64_t value, std::int64_t low,
                         std::int64_t high) {
    if (value < low || value > high) {
      throw fail(fmt::format("the checkpoint is corrupt: {} = {} is out of range [{}, {}]", field,
                             value, low, high));
    }
  };
  check_range("steps", checkpoint.steps, 1, kMaxSteps);
  check_range("dimension", dim, 1, kMaxDim);
  check_range("variants", variants, 1, kMaxVariants);
  check_range("walkers per variant", walkers_per_variant, 1, kMaxWalkersPerVariant);
  check_range("sample steps", samples, 0, checkpoint.steps + 1);
  check_range("histograms", histograms, 0, kMaxHistograms);
  const auto histogram_count = static_cast<std::uint64_t>(histograms);
  if (size < kFixedHeaderBytes + 8 * histogram_count) {
    throw fail(fmt::format("the checkpoint is truncated: {} bytes, shorter than its header", size));
  }
  std::vector<std::int64_t> slots(static_cast<std::size_t>(histogram_count));
  for (auto& s : slots) {
    read_value(in, s);
    check_range("histogram slots", s, 2, kMaxSlots);
  }

  // The progress and the sketch size come next; with them, the whole size follows from the header:
  // check it before allocating anything.
  const std::uint64_t header = kFixedHeaderBytes + 8 * histogram_count;
  if (size < header + progress_bytes + 8) {
    throw fail(fmt::format("the checkpoint is truncated: {} bytes, shorter than its header", size));
  }
  const auto walkers =
      static_cast<std::uint64_t>(variants) * static_cast<std::uint64_t>(walkers_per_variant);
  const auto total = static_cast<std::int64_t>(walkers);
  RunProgress& progress = checkpoint.progress;
  progress.part_begin = 0;
  progress.part_end = total;
  if (version != 3) {
    read_value(in, progress.part_begin);
    read_value(in, progress.part_end);
  }
  read_value(in, progress.walker_begin);
  read_value(in, progress.walker_end);
  read_value(in, progress.step);
  read_value(in, progress.simulate_seconds);
  read_value(in, checkpoint.wall_seconds);
  read_value(in, checkpoint.sessions);
  std::int64_t state_width = 0;
  if (version >= 5) read_value(in, state_width);
  check_range("optimizer state width", state_width, 0, 2 * kMaxDim);
  std::uint64_t sketch_entries = 0;
  read_value(in, sketch_entries);
  if (progress.part_begin < 0 || progress.part_end < progress.part_begin ||
      progress.part_end > total || progress.walker_begin < progress.part_begin ||
      progress.walker_end < progress.walker_begin || progress.walker_end > progress.part_end) {
    throw fail(fmt::format(
        "the checkpoint is corrupt: inconsistent progress (walkers [{}, {}) at step {} of {}, part "
        "[{}, {}) of {} walkers)",
        progress.walker_begin, progress.walker_end, progress.step, checkpoint.steps,
        progress.part_begin, progress.part_end, total));
  }
  const auto batch = static_cast<std::uint64_t>(progress.walker_end - progress.walker_begin);
  const auto counters = static_cast<std::uint64_t>(variants) * static_cast<std::uint64_t>(samples);
  const auto [first_stored, end_stored] =
      stored_variants(progress.part_begin, progress.part_end, walkers_per_variant);
  const auto stored_count = static_cast<std::uint64_t>(end_stored - first_stored);
  const auto stored_counters = stored_count * static_cast<std::uint64_t>(samples);
  const auto first_counter =
      static_cast<std::uint64_t>(first_stored) * static_cast<std::uint64_t>(samples);
  CheckedSize expected;
  expected.add(1, header + progress_bytes + 8 + kTrailerBytes);
  expected.add(batch, static_cast<std::uint64_t>(dim + state_width) * 8 + 8 + 3 * 8 + 4 + 4);
  expected.add(stored_counters, 16);
  {
    CheckedSize per_sample;  // two floats per walker of the batch and sample
    per_sample.add(batch, static_cast<std::uint64_t>(samples));
    expected.add(per_sample.value, 8);
    expected.overflow = expected.overflow || per_sample.overflow;
  }
  for (const auto s : slots) expected.add(stored_count, 8 * static_cast<std::uint64_t>(s));
  expected.add(stored_count, kVariantTallyBytes);
  expected.add(stored_counters, kSampleTallyBytes);
  expected.add(sketch_entries, kSketchEntryBytes);
  if (expected.overflow)
    throw fail("the checkpoint is corrupt: its header describes an impossible size");
  if (size < expected.value) {
    throw fail(fmt::format(
        "the checkpoint is truncated: its header describes {} bytes but the file has {}",
        expected.value, size));
  }
  if (size > expected.value) {
    throw fail(fmt::format(
        "the checkpoint is corrupt: the file has {} bytes, {} more than its header describes", size,
        size - expected.value));
  }

  std::string other_config;
  if (plan != nullptr) {
    std::vector<std::int64_t> plan_slots;
    for (const auto& h : plan->histograms) plan_slots.push_back(h.bin_count() + 1);
    const bool same_shape =
        checkpoint.steps == plan->steps && dim == plan->dim && variants == plan->variant_count() &&
        walkers_per_variant == plan->walkers_per_variant && samples == plan->sample_count() &&
        slots == plan_slots && state_width == plan->optimizer_state_width();
    if (!same_shape) {
      throw fail(fmt::format(
          "the checkpoint does not fit the config: it holds {}{}; the config asks for {}{}",
          shape_text(variants, walkers_per_variant, checkpoint.steps, dim, samples),
          fmt::format(", {} histogram(s), {} optimizer state number(s) per walker", histograms,
                      state_width),
          shape_text(plan->variant_count(), plan->walkers_per_variant, plan->steps, plan->dim,
                     plan->sample_count()),
          fmt::format(", {} histogram(s), {} optimizer state number(s) per walker",
                      plan->histograms.size(), plan->optimizer_state_width())));
    }
    // Said after the checksum: a damaged hash field is damage, not another config.
    if (checkpoint.config_hash != config_hash(*plan)) {
      other_config = fmt::format(
          "the checkpoint was written for another config or seed (config hash {:016x}; the "
          "config gives {:016x}, seed {}; the checkpoint's seed is {})",
          checkpoint.config_hash, config_hash(*plan), plan->seed, checkpoint.seed);
    }
  }

  RunData& data = checkpoint.data;
  WalkerArrays& w = data.walkers;
  w.dim = static_cast<int>(dim);
  w.first = progress.walker_begin;
  read_array(in, w.position, batch * static_cast<std::uint64_t>(dim));
  read_array(in, w.y_freeze, batch);
  read_array(in, w.freeze_step, batch);
  read_array(in, w.first_passage_step, batch);
  read_array(in, w.nonfinite_step, batch);
  read_array(in, w.basin, batch);
  read_array(in, w.crossings, batch);
  w.state_width = static_cast<int>(state_width);
  read_array(in, w.optimizer_state, batch * static_cast<std::uint64_t>(state_width));
  ObservableArrays& o = data.observables;
  o.variants = variants;
  o.samples = samples;
  o.walkers_per_variant = walkers_per_variant;
  o.first = progress.walker_begin;
  o.capacity = static_cast<std::int64_t>(batch);
  read_array(in, o.sample_progress, batch * static_cast<std::uint64_t>(samples));
  read_array(in, o.sample_loss, batch * static_cast<std::uint64_t>(samples));
  // Per-variant data: the stored variants' read in place, the others zero.
  o.sample_flat.assign(static_cast<std::size_t>(counters), 0);
  o.sample_finite.assign(static_cast<std::size_t>(counters), 0);
  read_into(in, o.sample_flat, first_counter, stored_counters);
  read_into(in, o.sample_finite, first_counter, stored_counters);
  o.histogram_counts.resize(slots.size());
  for (std::size_t h = 0; h < slots.size(); ++h) {
    const auto slot_count = static_cast<std::uint64_t>(slots[h]);
    o.histogram_counts[h].assign(static_cast<std::size_t>(variants) * slot_count, 0);
    read_into(in, o.histogram_counts[h], static_cast<std::uint64_t>(first_stored) * slot_count,
              stored_count * slot_count);
  }
  RunTallies& tallies = data.tallies;
  tallies.variants.resize(static_cast<std::size_t>(variants));
  for (std::int64_t v = first_stored; v < end_stored; ++v) {
    VariantTally& t = tallies.variants[static_cast<std::size_t>(v)];
    read_value(in, t.walkers);
    read_value(in, t.finite);
    read_value(in, t.nonfinite);
    read_value(in, t.flat);
    read_value(in, t.first_nonfinite_step);
    read_value(in, t.started_in_target);
    read_value(in, t.arrived);
    read_value(in, t.censored);
    read_moments(in, t.freezing_time);
    read_moments(in, t.y_freeze);
    read_moments(in, t.crossings);
    read_moments(in, t.passage_steps);
    read_sum(in, t.exposure_steps);
    for (auto* histogram :
         {&t.freezing_time_histogram, &t.crossings_histogram, &t.passage_histogram}) {
      for (auto& count : *histogram) read_value(in, count);
    }
  }
  tallies.samples.resize(static_cast<std::size_t>(counters));
  for (std::uint64_t i = first_counter; i < first_counter + stored_counters; ++i) {
    SampleTally& t = tallies.samples[static_cast<std::size_t>(i)];
    read_moments(in, t.progress);
    read_moments(in, t.loss);
  }
  // The sketches' entry counts, then all their entries: parsed after the checksum.
  std::vector<std::uint64_t> sketch_sizes;  // y_freeze per variant, then progress, loss per sample
  read_array(in, sketch_sizes, stored_count + 2 * stored_counters);
  std::vector<char> sketch_bytes;
  read_array(in, sketch_bytes, sketch_entries * kSketchEntryBytes);
  const std::uint64_t computed = in.hash();
  std::uint64_t stored = 0;
  in.raw(&stored, sizeof stored);
  if (stored != computed) {
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // fuzz builds: explore what lies behind it
    throw fail(fmt::format(
        "the checkpoint is corrupt: checksum mismatch (stored {:016x}, computed {:016x})", stored,
        computed));
#endif
  }
  if (!other_config.empty()) throw fail(other_config);

  // Consistency of what the checksum covered (a checkpoint from a buggy writer, or crafted).
  {
    std::uint64_t left = sketch_entries;
    const char* p = sketch_bytes.data();
    for (std::size_t i = 0; i < sketch_sizes.size(); ++i) {
      if (sketch_sizes[i] > left) {
        throw fail(
            "the checkpoint is corrupt: its quantile sketches hold more entries than its header "
            "says");
      }
      left -= sketch_sizes[i];
      const auto v = static_cast<std::size_t>(stored_count);
      const auto variant = static_cast<std::size_t>(first_stored) + i;
      const auto sample = static_cast<std::size_t>(first_counter) + (i - v) / 2;
      auto& entries = i < v ? tallies.variants[variant].y_freeze_sketch.entries()
                            : ((i - v) % 2 == 0 ? tallies.samples[sample].progress_sketch
                                                : tallies.samples[sample].loss_sketch)
                                  .entries();
      entries.resize(static_cast<std::size_t>(sketch_sizes[i]));
      for (auto& e : entries) {
        std::memcpy(&e.bucket, p, 4);
        std::memcpy(&e.count, p + 4, 8);
        p += kSketchEntryBytes;
      }
    }
    if (left != 0) {
      throw fail(
          "the checkpoint is corrupt: its quantile sketches hold fewer entries than its header "
          "says");
    }
  }
  const bool in_flight = progress.walker_end > progress.walker_begin;
  if ((in_flight && (progress.step < 1 || progress.step >= checkpoint.steps)) ||
      (!in_flight && progress.step != 0)) {
    throw fail(fmt::format(
        "the checkpoint is corrupt: inconsistent progress (walkers [{}, {}) at step {} of {}, {} "
        "walkers)",
        progress.walker_begin, progress.walker_end, progress.step, checkpoint.steps, total));
  }
  for (std::int64_t v = 0; v < variants; ++v) {
    const VariantTally& t = tallies.variants[static_cast<std::size_t>(v)];
    // The variant's walkers within the part's finished walkers [part_begin, walker_begin).
    const std::int64_t finished =
        std::max<std::int64_t>(0, std::min(progress.walker_begin, (v + 1) * walkers_per_variant) -
                                      std::max(progress.part_begin, v * walkers_per_variant));
    const bool counts_ok = t.walkers == finished && t.finite >= 0 && t.nonfinite >= 0 &&
                           t.finite + t.nonfinite == t.walkers && t.flat >= 0 &&
                           t.flat <= t.finite && t.first_nonfinite_step >= -1 &&
                           t.started_in_target >= 0 && t.arrived >= 0 && t.censored >= 0 &&
                           t.started_in_target + t.arrived + t.censored <= t.walkers;
    const auto histogram_total = [](const Log2Histogram& h) {
      std::int64_t total = 0;
      for (const auto c : h) {
        if (c < 0 || c > (std::int64_t{1} << 40)) return std::int64_t{-1};
        total += c;
      }
      return total;
    };
    const bool histograms_ok = histogram_total(t.freezing_time_histogram) == t.finite &&
                               histogram_total(t.crossings_histogram) == t.finite &&
                               histogram_total(t.passage_histogram) == t.arrived &&
                               valid_sketch(t.y_freeze_sketch, t.finite);
    if (!counts_ok || !histograms_ok || !valid_moments(t.freezing_time) ||
        !valid_moments(t.y_freeze) || !valid_moments(t.crossings) ||
        !valid_moments(t.passage_steps) || !valid_sum(t.exposure_steps)) {
      throw fail(fmt::format(
          "the checkpoint is corrupt: the reduced statistics of variant {} do not match its {} "
          "finished walkers",
          v, finished));
    }
  }
  for (const auto& t : tallies.samples) {
    const auto values = [](const Moments<NarrowSum>& m) {
      return m.count + m.positive_infinite + m.negative_infinite;
    };
    if (!valid_moments(t.progress) || !valid_moments(t.loss) ||
        !valid_sketch(t.progress_sketch, values(t.progress)) ||
        !valid_sketch(t.loss_sketch, values(t.loss))) {
      throw fail("the checkpoint is corrupt: a reduced sample statistic is inconsistent");
    }
  }
  if (!std::isfinite(progress.simulate_seconds) || progress.simulate_seconds < 0 ||
      !std::isfinite(checkpoint.wall_seconds) || checkpoint.wall_seconds < 0 ||
      checkpoint.sessions < 1) {
    throw fail("the checkpoint is corrupt: invalid timing or session count");
  }
  for (const auto basin : w.basin) {
    if (basin != 0 && basin != 1)
      throw fail("the checkpoint is corrupt: a walker basin is not 0 or 1");
  }
  return checkpoint;
}

/// write_checkpoint() without the clean-up of its .tmp on failure.
void write_checkpoint_file(const std::string& path, const RunPlan& plan,
                           const RunProgress& progress, const RunData& data, double wall_seconds,
                           std::int64_t sessions) {
  const std::string temporary = path + ".tmp";
  FileDescriptor fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) {
    throw std::runtime_error(fmt::format("cannot create {}: {}", temporary, errno_text()));
  }
  Sink out(fd.get(), temporary);
  out.bytes(kMagic, sizeof kMagic);
  out.value(kCheckpointVersion);
  out.value(kByteOrderMark);
  out.value(config_hash(plan));
  out.value(plan.seed);
  out.value(plan.steps);
  out.value(static_cast<std::int64_t>(plan.dim));
  out.value(plan.variant_count());
  out.value(plan.walkers_per_variant);
  out.value(plan.sample_count());
  out.value(static_cast<std::int64_t>(plan.histograms.size()));
  for (const auto& h : plan.histograms) out.value(static_cast<std::int64_t>(h.bin_count() + 1));
  out.value(progress.part_begin);
  out.value(progress.part_end < 0 ? plan.total_walkers() : progress.part_end);
  out.value(progress.walker_begin);
  out.value(progress.walker_end);
  out.value(progress.step);
  out.value(progress.simulate_seconds);
  out.value(wall_seconds);
  out.value(sessions);
  const auto width = static_cast<std::size_t>(plan.optimizer_state_width());
  if (data.walkers.state_width != static_cast<int>(width)) {
    throw std::logic_error(
        "write_checkpoint: the run data's optimizer state width is not the plan's");
  }
  out.value(static_cast<std::int64_t>(width));
  // The variants the part holds walkers of; the others' data must be empty (never written).
  const std::int64_t part_end = progress.part_end < 0 ? plan.total_walkers() : progress.part_end;
  const auto [first_stored, end_stored] =
      stored_variants(progress.part_begin, part_end, plan.walkers_per_variant);
  const auto samples = static_cast<std::size_t>(plan.sample_count());
  const auto variant_range = [&](const auto& values, std::size_t per_variant) {
    return std::span(values.data() + static_cast<std::size_t>(first_stored) * per_variant,
                     static_cast<std::size_t>(end_stored - first_stored) * per_variant);
  };
  for (std::size_t v = 0; v < data.tallies.variants.size(); ++v) {
    const auto index = static_cast<std::int64_t>(v);
    if ((index < first_stored || index >= end_stored) && data.tallies.variants[v].walkers != 0) {
      throw std::logic_error("write_checkpoint: tallies of a variant outside the run's part");
    }
  }
  const auto variant_tallies = variant_range(data.tallies.variants, 1);
  const auto sample_tallies = variant_range(data.tallies.samples, samples);
  std::uint64_t sketch_entries = 0;
  for (const auto& t : variant_tallies) sketch_entries += t.y_freeze_sketch.entries().size();
  for (const auto& t : sample_tallies) {
    sketch_entries += t.progress_sketch.entries().size() + t.loss_sketch.entries().size();
  }
  out.value(sketch_entries);
  // The batch in flight.
  const WalkerArrays& w = data.walkers;
  const ObservableArrays& o = data.observables;
  const std::int64_t first = progress.walker_begin, last = progress.walker_end;
  if (last > first && (!w.holds(first, last) || o.first != w.first)) {
    throw std::logic_error("write_checkpoint: the run data does not hold the batch in flight");
  }
  const auto n = static_cast<std::size_t>(last - first);
  const std::size_t at = last > first ? w.at(first) : 0;
  const auto d = static_cast<std::size_t>(plan.dim);
  auto range = [&](const auto& values, std::size_t per_walker) {
    if (n > 0) out.bytes(values.data() + at * per_walker, n * per_walker * sizeof(values[0]));
  };
  range(w.position, d);
  range(w.y_freeze, 1);
  range(w.freeze_step, 1);
  range(w.first_passage_step, 1);
  range(w.nonfinite_step, 1);
  range(w.basin, 1);
  range(w.crossings, 1);
  range(w.optimizer_state, width);
  for (const auto* values : {&o.sample_progress, &o.sample_loss}) {
    for (std::int64_t k = 0; k < o.samples && n > 0; ++k) {
      out.bytes(values->data() + static_cast<std::size_t>(k * o.capacity) + at, n * sizeof(float));
    }
  }
  const auto put_span = [&](auto values) {
    if (!values.empty()) out.bytes(values.data(), values.size() * sizeof(values[0]));
  };
  put_span(variant_range(o.sample_flat, samples));
  put_span(variant_range(o.sample_finite, samples));
  for (std::size_t h = 0; h < o.histogram_counts.size(); ++h) {
    put_span(variant_range(o.histogram_counts[h],
                           static_cast<std::size_t>(plan.histograms[h].bin_count() + 1)));
  }
  for (const auto& t : variant_tallies) {
    out.value(t.walkers);
    out.value(t.finite);
    out.value(t.nonfinite);
    out.value(t.flat);
    out.value(t.first_nonfinite_step);
    out.value(t.started_in_target);
    out.value(t.arrived);
    out.value(t.censored);
    put_moments(out, t.freezing_time);
    put_moments(out, t.y_freeze);
    put_moments(out, t.crossings);
    put_moments(out, t.passage_steps);
    put_sum(out, t.exposure_steps);
    for (const auto* histogram :
         {&t.freezing_time_histogram, &t.crossings_histogram, &t.passage_histogram}) {
      for (const auto count : *histogram) out.value(count);
    }
  }
  for (const auto& t : sample_tallies) {
    put_moments(out, t.progress);
    put_moments(out, t.loss);
  }
  for (const auto& t : variant_tallies) {
    out.value(static_cast<std::uint64_t>(t.y_freeze_sketch.entries().size()));
  }
  for (const auto& t : sample_tallies) {
    out.value(static_cast<std::uint64_t>(t.progress_sketch.entries().size()));
    out.value(static_cast<std::uint64_t>(t.loss_sketch.entries().size()));
  }
  for (const auto& t : variant_tallies) put_sketch_entries(out, t.y_freeze_sketch);
  for (const auto& t : sample_tallies) {
    put_sketch_entries(out, t.progress_sketch);
    put_sketch_entries(out, t.loss_sketch);
  }
  const std::uint64_t checksum = out.hash();
  out.value(checksum);
  out.flush();
  if (!sync_file(fd.get())) {
    throw std::runtime_error(fmt::format("cannot write {}: fsync: {}", temporary, errno_text()));
  }
  if (::close(fd.release()) != 0) {
    throw std::runtime_error(fmt::format("cannot write {}: {}", temporary, errno_text()));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    throw std::runtime_error(
        fmt::format("cannot rename {} to {}: {}", temporary, path, errno_text()));
  }
  // Make the rename itself durable.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string directory = parent.empty() ? std::string(".") : parent.string();
  FileDescriptor dir(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
}

}  // namespace

void write_checkpoint(const std::string& path, const RunPlan& plan, const RunProgress& progress,
                      const RunData& data, double wall_seconds, std::int64_t sessions) {
  try {
    write_checkpoint_file(path, plan, progress, data, wall_seconds, sessions);
  } catch (...) {
    // A part-written .tmp (disk full) would hold the space the next checkpoint needs.
    ::unlink((path + ".tmp").c_str());
    throw;
  }
}

Checkpoint read_checkpoint(const std::string& path, const RunPlan* plan) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error || !std::filesystem::exists(status)) {
    throw CheckpointError(fmt::format("{}: cannot open the checkpoint: no such file", path));
  }
  if (!std::filesystem::is_regular_file(status)) {
    throw CheckpointError(fmt::format("{}: cannot open the checkpoint: not a regular file", path));
  }
  const std::uint64_t size = std::filesystem::file_size(path, error);
  if (error) {
    throw CheckpointError(fmt::format("{}: cannot read the checkpoint: {}", path, error.message()));
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    throw CheckpointError(fmt::format("{}: cannot open the checkpoint: {}", path, errno_text()));
  }
  FileSource source(file.get(), path);
  try {
    return parse(source, size, path, plan);
  } catch (const std::bad_alloc&) {
    throw CheckpointError(fmt::format("{}: not enough memory to read the checkpoint", path));
  }
}

Checkpoint parse_checkpoint(std::string_view bytes, const std::string& source,
                            const RunPlan* plan) {
  MemorySource in(bytes);
  try {
    return parse(in, bytes.size(), source, plan);
  } catch (const std::bad_alloc&) {
    throw CheckpointError(fmt::format("{}: not enough memory to read the checkpoint", source));
  }
}

}  // namespace sgdwalk
