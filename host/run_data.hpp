// Host-side arrays that hold a run's walkers and accumulated observables between batches.
//
// Every backend reads and writes exactly these arrays, so a run can be split into batches of
// walkers and segments of steps (and checkpointed between them) without changing a single bit.
#pragma once

#include <cstdint>
#include <vector>

#include "plan.hpp"

namespace sgdwalk {

/// Per-walker state, structure of arrays, indexed by the global walker index
/// g = variant · walkers_per_variant + walker. Positions and y_freeze are stored as double: the
/// conversion from float is exact, so float runs round-trip bit for bit.
struct WalkerArrays {
  int dim = 0;
  std::vector<double> position;  ///< [g · dim + i]
  std::vector<double> y_freeze;
  std::vector<std::int64_t> freeze_step;
  std::vector<std::int64_t> first_passage_step;
  std::vector<std::int64_t> nonfinite_step;
  std::vector<std::int32_t> basin;
  std::vector<std::uint32_t> crossings;

  void resize(std::int64_t walkers, int dimension);
  std::int64_t size() const { return static_cast<std::int64_t>(basin.size()); }
};

/// Observables accumulated over the run. Counts are integers (exact under any split); per-sample
/// walker values are stored so that means and quantiles are computed in one fixed order.
struct ObservableArrays {
  std::int64_t variants = 0, samples = 0, walkers_per_variant = 0;
  std::vector<float> sample_progress;        ///< [(variant · samples + sample) · W + walker]
  std::vector<float> sample_loss;            ///< same layout; NaN for non-finite walkers
  std::vector<std::uint64_t> sample_flat;    ///< [variant · samples + sample], finite walkers only
  std::vector<std::uint64_t> sample_finite;  ///< [variant · samples + sample]
  /// One vector per histogram: [variant · (bins + 1) + slot], slot = bins is "outside the range".
  std::vector<std::vector<std::uint64_t>> histogram_counts;

  void resize(const RunPlan& plan);
  std::size_t sample_index(std::int64_t variant, std::int64_t sample, std::int64_t walker) const {
    return static_cast<std::size_t>((variant * samples + sample) * walkers_per_variant + walker);
  }
};

struct RunData {
  WalkerArrays walkers;
  ObservableArrays observables;
  void resize(const RunPlan& plan) {
    walkers.resize(plan.total_walkers(), plan.dim);
    observables.resize(plan);
  }
};

}  // namespace sgdwalk
