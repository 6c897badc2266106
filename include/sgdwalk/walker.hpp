// The walker: one SGD / Langevin update and the per-walker trackers, shared by every backend.
//
// Step convention (the paper's): the initial state is step 0; the k-th update produces the state of
// step k. Update k consumes the normals [(k-1)·D, k·D) of the walker's normal sequence (see
// normal.hpp), so the random input of any step follows from the step index alone: a walker can be
// resumed, replayed or split across batches without carrying generator state.
#pragma once

#include <cstdint>
#include <utility>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/noise.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// Per-variant constants of the update θ ← θ − η(∇L(θ) + ξ), ξ ~ N(0, Σ(θ)), precomputed on the
/// host once (both backends receive the same bits).
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

/// The first-passage test in the form a step evaluates it: reached ⇔ lo ≤ position[coordinate] ≤
/// hi, or the walker's basin is `basin_match`. Every kind is one such test (above: [threshold,
/// +inf]; below: [-inf, threshold]; basin: an empty interval and the basin; none: neither), so the
/// step compares two numbers and two integers and never branches or selects on the kind (the GPU
/// kept re-deriving the kind's predicates every step). Build it with make().
template <class T>
struct PassageTarget {
  std::int32_t coordinate = 0;
  std::int32_t basin_match = -1;  ///< no basin is -1: never reached through the basin
  T lo = static_cast<T>(__builtin_huge_val());
  T hi = -static_cast<T>(__builtin_huge_val());  ///< lo > hi: empty interval

  /// The test of a first-passage target of `kind` (see PassageKind).
  static PassageTarget make(PassageKind kind, std::int32_t basin, std::int32_t coordinate,
                            T threshold) {
    const T inf = static_cast<T>(__builtin_huge_val());
    PassageTarget target;
    target.coordinate = coordinate;
    if (kind == PassageKind::basin) target.basin_match = basin;
    if (kind == PassageKind::above) {
      target.lo = threshold;
      target.hi = inf;
    }
    if (kind == PassageKind::below) {
      target.lo = -inf;
      target.hi = threshold;
    }
    return target;
  }

  /// position[coordinate] by a fold of selects: a runtime index into the walker's position would
  /// force the whole state into local memory on the GPU (and block vectorisation on the CPU).
  template <int D, int... I>
  SGDWALK_FN T component(const Vec<T, D>& position, std::integer_sequence<int, I...>) const {
    T value = position[0];
    ((value = coordinate == I ? position[I] : value), ...);
    return value;
  }

  /// Written without short-circuits or a variable index into `position`, so that a walker's state
  /// stays in registers and the CPU lane loop if-converts. A NaN coordinate is never in range.
  template <int D>
  SGDWALK_FN bool reached(const Vec<T, D>& position, int current_basin) const {
    const T value = component(position, std::make_integer_sequence<int, D>{});
    return ((value >= lo) & (value <= hi)) | (current_basin == basin_match);
  }
};

/// Everything a walker carries from step to step. Trivially copyable; lives in registers in
/// kernels.
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

/// θ − η(∇L(θ) + ξ) with ξ = noise_vector(H(θ), z), the last step one fused multiply-add (for
/// isotropic noise ∇L + sqrt(2σ) z is one too, for 2-D Hessian noise ∇L enters the noise's last
/// fma: drift_plus_noise). The operation order is fixed: both backends
/// compile exactly this expression with contraction disabled.
template <NoiseKind Noise, class Landscape, class T, int D>
SGDWALK_FN Vec<T, D> sgd_update(const Landscape& landscape, const StepParams<T>& params,
                                const Vec<T, D>& position, const Vec<T, D>& normals) {
  Vec<T, D> gradient;
  Vec<T, D> next;
  if constexpr (noise_needs_hessian<Noise>) {
    typename Landscape::Hessian hessian;
    landscape.gradient_hessian(position, gradient, hessian);
    const Vec<T, D> drift_and_noise =
        drift_plus_noise<Noise>(gradient, hessian, normals, params.noise);
    for (int i = 0; i < D; ++i) {
      next[i] = fma_rn(-params.learning_rate, drift_and_noise[i], position[i]);
    }
  } else {
    // Isotropic: ∇L + sqrt(2σ) z in one fma (noise_vector<isotropic> is amplitude·z = sqrt(2σ) z).
    gradient = landscape.gradient(position);
    for (int i = 0; i < D; ++i) {
      const T drift_and_noise =
          fma_rn(NoiseModel<Noise>::amplitude(params.noise), normals[i], gradient[i]);
      next[i] = fma_rn(-params.learning_rate, drift_and_noise, position[i]);
    }
  }
  return next;
}

/// Advance one walker from step `step - 1` to `step` and update its trackers. Branch-free: every
/// quantity is computed on every call and the trackers are updated with selects (bitwise & and |
/// on the conditions, no short-circuits), so that the CPU backend's lane loop if-converts and
/// vectorises; the state is read once and written once.
template <NoiseKind Noise, class Landscape, class T, int D>
SGDWALK_FN void advance_walker(const Landscape& landscape, const StepParams<T>& params,
                               const PassageTarget<T>& target, const Vec<T, D>& normals,
                               std::int64_t step, WalkerState<T, D>& walker) {
  const WalkerState<T, D> old = walker;
  const Vec<T, D> next = sgd_update<Noise>(landscape, params, old.position, normals);
  const bool was_finite = old.nonfinite_step < 0;
  const bool moves = was_finite & all_finite(next);
  WalkerState<T, D> now;
  now.nonfinite_step = (was_finite & !moves) ? step : old.nonfinite_step;
  // A bit blend, not a select: with a select gcc threads the two outcomes into separate paths
  // (basin() of `next` or of the old position) and the lane loop no longer if-converts.
  for (int i = 0; i < D; ++i) now.position[i] = select_bits(moves, next[i], old.position[i]);

  const int basin = landscape.basin(now.position);
  const bool changed = moves & (basin != old.basin);
  now.crossings = old.crossings + (changed ? 1u : 0u);
  now.freeze_step = changed ? step : old.freeze_step;
  now.y_freeze = changed ? landscape.progress(now.position) : old.y_freeze;
  now.basin = basin;
  const bool arrives = moves & (old.first_passage_step < 0) & target.reached(now.position, basin);
  now.first_passage_step = arrives ? step : old.first_passage_step;
  walker = now;
}

}  // namespace sgdwalk
