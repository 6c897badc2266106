// The walker: one SGD / Langevin update and the per-walker trackers, shared by every backend.
//
// Step convention (the paper's): the initial state is step 0; the k-th update produces the state of
// step k. Update k consumes the normals [(k-1)·D, k·D) of the walker's normal sequence (see
// normal.hpp), so the random input of any step follows from the step index alone: a walker can be
// resumed, replayed or split across batches without carrying generator state.
#pragma once

#include <cstdint>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/noise.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// Per-variant constants of the update θ ← θ − η(∇L(θ) + ξ), ξ ~ N(0, Σ(θ)), precomputed on the host
/// once (both backends receive the same bits).
template <class T>
struct StepParams {
  T learning_rate;
  NoiseScale<T> noise;
};

/// What counts as "arrived" for the first-passage time.
enum class PassageKind : std::int32_t {
  none = 0,   ///< no first-passage tracking
  basin = 1,  ///< the walker's basin equals `basin`
  above = 2,  ///< position[coordinate] >= threshold
  below = 3,  ///< position[coordinate] <= threshold
};

template <class T>
struct PassageTarget {
  PassageKind kind = PassageKind::none;
  std::int32_t basin = kFlatBasin;
  std::int32_t coordinate = 0;
  T threshold = 0;

  template <int D>
  SGDWALK_FN bool reached(const Vec<T, D>& position, int current_basin) const {
    const T value = position[coordinate];
    return (kind == PassageKind::basin && current_basin == basin) ||
           (kind == PassageKind::above && value >= threshold) ||
           (kind == PassageKind::below && value <= threshold);
  }
};

/// Everything a walker carries from step to step. Trivially copyable; lives in registers in kernels.
template <class T, int D>
struct WalkerState {
  Vec<T, D> position;
  /// s in the paper's convention: the step at which the walker first sat in its current basin after
  /// its last basin change (0 if it never changed). Freezing time t_f = freeze_step + 1.
  std::int64_t freeze_step;
  /// First step at which the passage target was reached; -1 while not (yet) reached.
  std::int64_t first_passage_step;
  /// Step whose update produced a non-finite position; -1 while finite. Such a walker stops at its
  /// last finite position and its trackers stop.
  std::int64_t nonfinite_step;
  /// Progress coordinate (y) at freeze_step.
  T y_freeze;
  std::int32_t basin;
  std::uint32_t crossings;
};

/// The state of step 0 for a walker started at `position`.
template <class Landscape, class T, int D>
SGDWALK_FN WalkerState<T, D> initial_walker(const Landscape& landscape,
                                            const PassageTarget<T>& target,
                                            const Vec<T, D>& position) {
  WalkerState<T, D> walker;
  walker.position = position;
  walker.basin = landscape.basin(position);
  walker.crossings = 0;
  walker.freeze_step = 0;
  walker.y_freeze = landscape.progress(position);
  walker.first_passage_step = target.reached(position, walker.basin) ? 0 : -1;
  walker.nonfinite_step = all_finite(position) ? -1 : 0;
  return walker;
}

/// θ − η(∇L(θ) + ξ) with ξ = noise_vector(H(θ), z). The operation order is fixed: both backends
/// compile exactly this expression with contraction disabled.
template <NoiseKind Noise, class Landscape, class T, int D>
SGDWALK_FN Vec<T, D> sgd_update(const Landscape& landscape, const StepParams<T>& params,
                                const Vec<T, D>& position, const Vec<T, D>& normals) {
  Vec<T, D> gradient;
  Vec<T, D> xi;
  if constexpr (noise_needs_hessian<Noise>) {
    typename Landscape::Hessian hessian;
    landscape.gradient_hessian(position, gradient, hessian);
    xi = noise_vector<Noise>(hessian, normals, params.noise);
  } else {
    gradient = landscape.gradient(position);
    xi = noise_vector<Noise>(normals, params.noise);
  }
  Vec<T, D> next;
  for (int i = 0; i < D; ++i) {
    next[i] = position[i] - params.learning_rate * (gradient[i] + xi[i]);
  }
  return next;
}

/// Advance one walker from step `step - 1` to `step` and update its trackers. Written with selects
/// instead of branches so that the CPU backend's lane loop vectorises.
template <NoiseKind Noise, class Landscape, class T, int D>
SGDWALK_FN void advance_walker(const Landscape& landscape, const StepParams<T>& params,
                               const PassageTarget<T>& target, const Vec<T, D>& normals,
                               std::int64_t step, WalkerState<T, D>& walker) {
  const Vec<T, D> next = sgd_update<Noise>(landscape, params, walker.position, normals);
  const bool moves = walker.nonfinite_step < 0 && all_finite(next);
  walker.nonfinite_step = (walker.nonfinite_step < 0 && !moves) ? step : walker.nonfinite_step;
  for (int i = 0; i < D; ++i) walker.position[i] = moves ? next[i] : walker.position[i];

  const int basin = landscape.basin(walker.position);
  const bool changed = moves && basin != walker.basin;
  walker.crossings += changed ? 1u : 0u;
  walker.freeze_step = changed ? step : walker.freeze_step;
  walker.y_freeze = changed ? landscape.progress(walker.position) : walker.y_freeze;
  walker.basin = basin;
  const bool arrives =
      moves && walker.first_passage_step < 0 && target.reached(walker.position, basin);
  walker.first_passage_step = arrives ? step : walker.first_passage_step;
}

}  // namespace sgdwalk
