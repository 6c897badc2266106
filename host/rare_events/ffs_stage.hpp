// The arrays of one FFS stage, for all variants at once: what the driver hands a backend
// (Backend::run_ffs_flux / run_ffs_trials) and what comes back. Walker states travel in
// WalkerArrays (the brute-force runs' layout, positions and optimizer state as double, the
// optimizer state of the run's width: RunPlan::optimizer_state_width), so a trial carries exactly
// the state a walker has, and grows with it. The walker's step index travels beside it (step,
// stored_step, path_step): the trackers and the step constants (schedules) are indexed by it.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/run_data.hpp"

namespace sgdwalk {

/// Interfaces of one variant for one stage (double; converted once to the walker precision).
struct FfsBounds {
  double lambda_a = 0, lambda_from = 0, lambda_to = 0, lambda_beyond = 0, lambda_b = 0;
};

/// Stage 0: flux walkers [variant · walkers + w], each advanced from its own step to step_end, or
/// until it has stored `capacity` crossing states in this call (it then waits for the next call).
struct FfsFluxBatch {
  int replica = 0;
  std::int64_t walkers_per_variant = 0;
  std::int64_t equilibration = 0;
  std::vector<FfsBounds> bounds;  ///< [variant]
  WalkerArrays walkers;           ///< first = 0, size = variants · walkers
  std::vector<std::int64_t> step, exposure, crossings, jumps, nonfinite;
  std::vector<std::uint8_t> from_a, in_b;
  /// Crossing states stored by the last call: walker i's c-th at [i · capacity + c].
  int capacity = 16;
  std::vector<std::int32_t> stored_count;  ///< [walker]
  WalkerArrays stored;
  std::vector<std::int64_t> stored_step;

  std::int64_t size() const { return walkers.size(); }
  /// Room for `variants` × `walkers` flux walkers of dimension `dim` with `state_width` optimizer
  /// state numbers each (0 for SGD).
  void resize(std::int64_t variants, std::int64_t walkers, int dim, int state_width = 0);
};

/// One trial stage of every variant: trial [variant · trials + j] starts from `states[...]`
/// (chosen by the driver with ffs::choose_start) and ends there.
struct FfsTrialBatch {
  int replica = 0;
  int stage = 1;  ///< the stage field of the randomness layout (pilots: ffs::kPilotStage + i)
  std::int64_t trials_per_variant = 0;
  std::int64_t max_steps = 0;
  std::vector<FfsBounds> bounds;        ///< [variant]
  std::vector<std::uint8_t> active;     ///< [variant]: 0 = skip this variant's trials (left as is)
  WalkerArrays states;                  ///< in: start states; out: end states
  std::vector<std::int64_t> path_step;  ///< in: the walker's step counter; out: at the end
  std::vector<std::int64_t> steps;      ///< out: updates made
  std::vector<double> max_lambda;       ///< out
  std::vector<std::uint8_t> outcome;    ///< out: ffs::TrialOutcome
  std::vector<std::uint8_t> jumped;     ///< out

  std::int64_t size() const { return states.size(); }
  /// Room for `variants` × `trials` trials (see FfsFluxBatch::resize).
  void resize(std::int64_t variants, std::int64_t trials, int dim, int state_width = 0);
};

}  // namespace sgdwalk
