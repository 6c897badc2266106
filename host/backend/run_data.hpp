// Host-side arrays that hold one batch of a run's walkers, and the observables accumulated over the
// whole run.
//
// Every backend reads and writes exactly these arrays, so a run can be split into batches of
// walkers and segments of steps (and checkpointed between them) without changing a single bit.
// Host memory is O(batch + variants × observables): the walker arrays and per-walker sample values
// hold the batch in flight; when a batch finishes, the driver reduces it into RunTallies (exact,
// mergeable accumulators, see exact_stats.hpp) and reuses the arrays for the next batch.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <vector>

#include "analysis/exact_stats.hpp"
#include "backend/plan.hpp"

namespace sgdwalk {

/// Per-walker state of walkers [first, first + size()), structure of arrays. Walkers are addressed
/// by the global walker index g = variant · walkers_per_variant + walker; at(g) is the array index.
/// Positions and y_freeze are stored as double: the conversion from float is exact, so float runs
/// round-trip bit for bit.
struct WalkerArrays {
  int dim = 0;
  std::int64_t first = 0;        ///< global index of the first walker held
  std::vector<double> position;  ///< [at(g) · dim + i]
  std::vector<double> y_freeze;
  std::vector<std::int64_t> freeze_step;
  std::vector<std::int64_t> first_passage_step;
  std::vector<std::int64_t> nonfinite_step;
  std::vector<std::int32_t> basin;
  std::vector<std::uint32_t> crossings;
  /// The optimizer's state (OptimizerState's flat layout, optimizer.hpp): [at(g) · state_width +
  /// j]; empty for SGD. As double: exact for float runs. Any per-walker state beyond the trackers
  /// (e.g. of a rare-event stage) can use the same flat layout.
  int state_width = 0;
  std::vector<double> optimizer_state;

  /// Room for `walkers` walkers starting at global index `first_walker`, reset to zeros / -1
  /// (optimizer state 0: a fresh walker's).
  void resize(std::int64_t walkers, int dimension, std::int64_t first_walker = 0,
              int optimizer_state_width = 0);
  std::int64_t size() const { return static_cast<std::int64_t>(basin.size()); }
  std::size_t at(std::int64_t g) const { return static_cast<std::size_t>(g - first); }
  /// Marks walkers [begin, end) (held) as never finished, so no one mistakes them for results: NaN
  /// position, y_freeze and optimizer state, basin -1 (the steps keep resize's 0 / -1).
  void mark_unfinished(std::int64_t begin, std::int64_t end);
  /// Copies the state of walkers [begin, end) (global indices, held by both) from `source`.
  void copy_from(const WalkerArrays& source, std::int64_t begin, std::int64_t end);
  /// Whether walkers [begin, end) are held.
  bool holds(std::int64_t begin, std::int64_t end) const {
    return begin >= first && begin <= end && end <= first + size();
  }
};

/// Observables accumulated over the run. Counts are integers (exact under any split). Per-sample
/// walker values are held for the batch in flight only (walkers [first, first + capacity)); the
/// driver reduces them into RunTallies when the batch finishes.
struct ObservableArrays {
  std::int64_t variants = 0, samples = 0, walkers_per_variant = 0;
  std::int64_t first = 0, capacity = 0;      ///< the walkers whose sample values are held
  std::vector<float> sample_progress;        ///< [sample · capacity + (g − first)]
  std::vector<float> sample_loss;            ///< same layout; NaN for non-finite walkers
  std::vector<std::uint64_t> sample_flat;    ///< [variant · samples + sample], finite walkers only
  std::vector<std::uint64_t> sample_finite;  ///< [variant · samples + sample]
  /// One vector per histogram: [variant · (bins + 1) + slot], slot = bins is "outside the range".
  std::vector<std::vector<std::uint64_t>> histogram_counts;

  /// Zeroed counters and room for the sample values of `batch_capacity` walkers from
  /// `first_walker`.
  void resize(const RunPlan& plan, std::int64_t batch_capacity, std::int64_t first_walker = 0);
  std::size_t sample_index(std::int64_t variant, std::int64_t sample, std::int64_t walker) const {
    return static_cast<std::size_t>(sample * capacity + variant * walkers_per_variant + walker -
                                    first);
  }
};

/// Histogram of a non-negative integer tracker on log2 bins: bin 0 holds 0, bin b >= 1 holds
/// [2^(b-1), 2^b). Edges: 0, 1, 2, 4, ..., 2^63.
inline constexpr int kLog2Bins = 64;
using Log2Histogram = std::array<std::int64_t, kLog2Bins>;
inline int log2_bin(std::int64_t x) {
  return x <= 0 ? 0 : static_cast<int>(std::bit_width(static_cast<std::uint64_t>(x)));
}

/// Reduced trackers of one variant's finished walkers (what summarize() reports).
struct VariantTally {
  std::int64_t walkers = 0, finite = 0, nonfinite = 0, flat = 0;
  std::int64_t first_nonfinite_step = -1;  ///< -1 while every walker stayed finite
  Moments<NarrowSum> freezing_time;        ///< t_f = freeze_step + 1, finite walkers
  Moments<WideSum> y_freeze;               ///< finite walkers
  Moments<NarrowSum> crossings;            ///< finite walkers
  std::int64_t started_in_target = 0, arrived = 0, censored = 0;
  Moments<NarrowSum> passage_steps;  ///< arrival steps of the walkers that arrived at step >= 1
  NarrowSum exposure_steps;          ///< Σ steps at risk
  Log2Histogram freezing_time_histogram{};  ///< t_f of the finite walkers
  Log2Histogram crossings_histogram{};      ///< crossings of the finite walkers
  Log2Histogram passage_histogram{};        ///< arrival steps >= 1 (censored: `censored`)
  QuantileSketch y_freeze_sketch;           ///< float(y_freeze) of the finite walkers

  void merge(const VariantTally& other);
  bool operator==(const VariantTally&) const = default;
};

/// Reduced sample values of one (variant, sample) over the finished walkers.
struct SampleTally {
  Moments<NarrowSum> progress, loss;  ///< non-NaN values
  QuantileSketch progress_sketch, loss_sketch;
  bool operator==(const SampleTally&) const = default;
};

/// Everything the finished batches contribute to the per-variant statistics.
struct RunTallies {
  std::vector<VariantTally> variants;  ///< [variant]
  std::vector<SampleTally> samples;    ///< [variant · samples + sample]
  void resize(const RunPlan& plan);
  bool operator==(const RunTallies&) const = default;
};

struct RunData {
  WalkerArrays walkers;
  ObservableArrays observables;
  RunTallies tallies;
  /// Arrays for the whole ensemble at once (one batch of every walker).
  void resize(const RunPlan& plan) { resize(plan, plan.total_walkers()); }
  /// Arrays for batches of up to `batch_capacity` walkers; zeroed counters and tallies.
  void resize(const RunPlan& plan, std::int64_t batch_capacity);
  /// Points the batch arrays at walkers [first, first + capacity) (contents are overwritten by
  /// Backend::initialize).
  void start_batch(std::int64_t first) {
    walkers.first = first;
    observables.first = first;
  }
};

}  // namespace sgdwalk
