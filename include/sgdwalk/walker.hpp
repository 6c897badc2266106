// The walker: one SGD / Langevin update and the per-walker trackers, shared by every backend.
//
// Step convention (the paper's): the initial state is step 0; the k-th update produces the state of
// step k. Update k consumes the normals [(k-1)·D, k·D) of the walker's normal sequence (see
// normal.hpp), so the random input of any step follows from the step index alone: a walker can be
// resumed, replayed or split across batches without carrying generator state.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/noise.hpp"
#include "sgdwalk/optimizer.hpp"
#include "sgdwalk/stable.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// Per-variant constants of the update θ ← θ − η(∇L(θ) + ξ), ξ ~ N(0, Σ(θ)) (and of the other
/// optimizers), precomputed on the host once (both backends receive the same bits). With a
/// schedule or Adam's bias correction (StepSchedule::per_step) they are recomputed for every step
/// by step_params_at.
template <class T>
struct StepParams {
  T learning_rate;
  NoiseScale<T> noise;
  OptimizerCoefficients<T> optimizer;
  /// α-stable noise: c_k = η_k^{1/α − 1/2}/√2, the factor from the draws S to z (noise_inputs).
  T stable_scale;
};

/// The constants of update `step` (>= 1) in precision T: each computed in double from the
/// schedule and rounded once. With constant schedules and SGD this is exactly what the host
/// always computed: T(η), T(2σ), T(sqrt(2σ)), T(ε).
template <class T>
SGDWALK_FN StepParams<T> step_params_at(const StepSchedule& schedule, std::int64_t step) {
  const std::int64_t t = step - 1;  // updates before this one
  double eta = schedule.learning_rate;
  double sigma = schedule.noise_strength;
  double eta_factor = 1.0;
  if (!schedule.learning_rate_schedule.is_constant()) {
    eta_factor = schedule.learning_rate_schedule.factor_at(t);
    eta = eta * eta_factor;
  }
  if (!schedule.noise_schedule.is_constant()) {
    sigma = sigma * schedule.noise_schedule.factor_at(t);
  }
  StepParams<T> params{};
  params.learning_rate = static_cast<T>(eta);
  params.noise.two_sigma = static_cast<T>(2.0 * sigma);
  params.noise.sqrt_two_sigma = static_cast<T>(pmath::sqrt(2.0 * sigma));
  params.noise.epsilon = static_cast<T>(schedule.epsilon);
  params.stable_scale = static_cast<T>(
      scheduled_stable_scale(schedule.stable_scale, schedule.stable_exponent, eta_factor));
  OptimizerCoefficients<T>& c = params.optimizer;
  c.rule = update_rule(schedule.optimizer);
  c.momentum = static_cast<T>(schedule.momentum);
  c.nesterov = schedule.optimizer == OptimizerKind::nesterov;
  c.beta1 = static_cast<T>(schedule.beta1);
  c.one_minus_beta1 = static_cast<T>(1.0 - schedule.beta1);
  c.beta2 = static_cast<T>(schedule.beta2);
  c.one_minus_beta2 = static_cast<T>(1.0 - schedule.beta2);
  c.epsilon = static_cast<T>(schedule.optimizer_epsilon);
  double step_size = eta;
  double bias2_sqrt = 1.0;
  if (schedule.bias_correction) {
    step_size = eta / (1.0 - power(schedule.beta1, step));
    bias2_sqrt = pmath::sqrt(1.0 - power(schedule.beta2, step));
  }
  c.step_size = static_cast<T>(step_size);
  c.bias2_sqrt = static_cast<T>(bias2_sqrt);
  return params;
}

/// The noise inputs z of update k from its draws: normals as they are (z ~ N(0, I)); α-stable
/// draws S times the step's c_k (stable.hpp: one product, the rounding z = c·S always had). Every
/// backend calls this between its generator and advance_walker.
template <NoiseDistribution Distribution, class T, int D>
SGDWALK_FN Vec<T, D> noise_inputs(const StepParams<T>& params, const Vec<T, D>& draws) {
  if constexpr (Distribution == NoiseDistribution::alpha_stable) {
    Vec<T, D> z;
    for (int i = 0; i < D; ++i) z[i] = params.stable_scale * draws[i];
    return z;
  } else {
    return draws;
  }
}

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
/// kernels. `optimizer` is the optimizer's state (empty for SGD; see OptimizerState for its flat
/// layout in RunData, checkpoints and outputs). New per-walker state belongs here and in
/// WalkerArrays (host/backend/run_data.hpp), whose flat `optimizer_state` carries any width.
/// `Step` is the type of the three step stamps: std::int64_t absolute steps everywhere except in
/// the CUDA step loop, which carries std::int32_t stamps relative to its launch (LaunchTrackers:
/// a 32-bit select per stamp and step instead of two).
template <class T, int D, UpdateRule R = UpdateRule::sgd, class Step = std::int64_t>
struct WalkerState {
  Vec<T, D> position;
  /// s in the paper's convention: the step at which the walker first sat in its current basin after
  /// its last basin change (0 if it never changed). Freezing time t_f = freeze_step + 1.
  Step freeze_step;
  /// First step at which the passage target was reached; -1 while not (yet) reached.
  Step first_passage_step;
  /// Step whose update produced a non-finite position; -1 while finite. Such a walker stops at its
  /// last finite position and its trackers stop.
  Step nonfinite_step;
  /// Progress coordinate (y) at freeze_step.
  T y_freeze;
  std::int32_t basin;
  std::uint32_t crossings;
  OptimizerState<T, D, R> optimizer;
};

/// Whether a step stamp (first_passage_step, nonfinite_step) is unset. Absolute stamps are -1
/// while unset and any negative value reads as unset; LaunchTrackers' 32-bit relative stamps are
/// exactly -1 then (to_relative maps every negative stamp to -1), and there `== -1` gives nvcc a
/// predicate where `< 0` gives a sign-bit extraction that the trackers' logic then combines in
/// integer registers (5 instructions per float walker-step on sm_90).
template <class Step>
SGDWALK_FN bool stamp_unset(Step stamp) {
  if constexpr (sizeof(Step) == 4) {
    return stamp == -1;
  } else {
    return stamp < 0;
  }
}

/// The state of step 0 for a walker started at `position`.
template <UpdateRule R = UpdateRule::sgd, class Landscape, class T, int D>
SGDWALK_FN WalkerState<T, D, R> initial_walker(const Landscape& landscape,
                                               const PassageTarget<T>& target,
                                               const Vec<T, D>& position) {
  WalkerState<T, D, R> walker;
  for (int j = 0; j < OptimizerState<T, D, R>::width; ++j) walker.optimizer.set(j, T(0));
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

/// g = ∇L(θ) + ξ, the stochastic gradient every optimizer but SGD starts from (SGD fuses it into
/// its update: sgd_update). Same operations as sgd_update up to g.
template <NoiseKind Noise, class Landscape, class T, int D>
SGDWALK_FN Vec<T, D> stochastic_gradient(const Landscape& landscape, const StepParams<T>& params,
                                         const Vec<T, D>& position, const Vec<T, D>& normals) {
  Vec<T, D> gradient;
  if constexpr (noise_needs_hessian<Noise>) {
    typename Landscape::Hessian hessian;
    landscape.gradient_hessian(position, gradient, hessian);
    return drift_plus_noise<Noise>(gradient, hessian, normals, params.noise);
  } else {
    gradient = landscape.gradient(position);
    Vec<T, D> g;
    for (int i = 0; i < D; ++i) g[i] = fma_rn(params.noise.sqrt_two_sigma, normals[i], gradient[i]);
    return g;
  }
}

/// Heavy ball: v' = μv − ηg, θ' = θ + v'. Nesterov (the form of torch.optim.SGD(nesterov=True),
/// written for v = −η·buffer): θ' = θ + μv' − ηg. Unfused products and sums, in this order (an
/// independent implementation reproduces the bits).
template <class T, int D>
SGDWALK_FN void momentum_update(const StepParams<T>& params, const Vec<T, D>& position,
                                const OptimizerState<T, D, UpdateRule::momentum>& state,
                                const Vec<T, D>& g, Vec<T, D>& next,
                                OptimizerState<T, D, UpdateRule::momentum>& next_state) {
  const T mu = params.optimizer.momentum;
  const T eta = params.learning_rate;
  for (int i = 0; i < D; ++i) {
    const T step = eta * g[i];
    const T v = mu * state.velocity[i] - step;
    const T heavy = position[i] + v;
    const T nesterov = position[i] + (mu * v - step);
    next_state.velocity[i] = v;
    // A bit blend, not a select: with a select gcc keeps the loop-invariant choice as a branch
    // and the CPU lane loop no longer vectorises (5–9× slower, bench/RESULTS.md).
    next[i] = select_bits(params.optimizer.nesterov, nesterov, heavy);
  }
}

/// Adam (torch.optim.Adam's operations): m' = β1·m + (1−β1)·g, s' = β2·s + (1−β2)·(g·g),
/// θ' = θ − c1·(m' / (sqrt(s')/c2 + ε)) with c1 = η_k/(1 − β1^k), c2 = sqrt(1 − β2^k).
/// RMSprop is this with β1 = 0, 1 − β1 = 1, c1 = η_k, c2 = 1: then m' = g and s'/1 = s' exactly,
/// so θ' = θ − η_k·(g / (sqrt(s') + ε)), RMSprop's operations (torch.optim.RMSprop, alpha = ρ).
template <class T, int D>
SGDWALK_FN void adaptive_update(const StepParams<T>& params, const Vec<T, D>& position,
                                const OptimizerState<T, D, UpdateRule::adaptive>& state,
                                const Vec<T, D>& g, Vec<T, D>& next,
                                OptimizerState<T, D, UpdateRule::adaptive>& next_state) {
  const OptimizerCoefficients<T>& c = params.optimizer;
  for (int i = 0; i < D; ++i) {
    const T m = c.beta1 * state.m[i] + c.one_minus_beta1 * g[i];
    const T s = c.beta2 * state.s[i] + c.one_minus_beta2 * (g[i] * g[i]);
    const T denominator = pmath::sqrt(s) / c.bias2_sqrt + c.epsilon;
    next[i] = position[i] - c.step_size * (m / denominator);
    next_state.m[i] = m;
    next_state.s[i] = s;
  }
}

/// Advance one walker from step `step - 1` to `step` and update its trackers. Branch-free: every
/// quantity is computed on every call and the trackers are updated with selects (bitwise & and |
/// on the conditions, no short-circuits), so that the CPU backend's lane loop if-converts and
/// vectorises; the state is read once and written once. A step whose position or optimizer state
/// is not finite stops the walker (position and state stay at the last finite step).
/// `step` is an absolute step for the usual std::int64_t stamps and the step relative to the
/// launch (≥ 1) for LaunchTrackers' std::int32_t ones: the trackers only compare stamps with 0
/// and copy `step` into them, so both give the same walker.
template <NoiseKind Noise, UpdateRule R = UpdateRule::sgd, class Landscape, class T, int D,
          class Step>
SGDWALK_FN void advance_walker(const Landscape& landscape, const StepParams<T>& params,
                               const PassageTarget<T>& target, const Vec<T, D>& normals,
                               std::type_identity_t<Step> step,
                               WalkerState<T, D, R, Step>& walker) {
  const WalkerState<T, D, R, Step> old = walker;
  Vec<T, D> next;
  OptimizerState<T, D, R> next_state;
  bool state_finite = true;
  if constexpr (R == UpdateRule::sgd) {
    next = sgd_update<Noise>(landscape, params, old.position, normals);
  } else if constexpr (R != UpdateRule::any) {
    const Vec<T, D> g = stochastic_gradient<Noise>(landscape, params, old.position, normals);
    if constexpr (R == UpdateRule::momentum) {
      momentum_update(params, old.position, old.optimizer, g, next, next_state);
      state_finite = all_finite(next_state.velocity);
    } else if constexpr (R == UpdateRule::adaptive) {
      adaptive_update(params, old.position, old.optimizer, g, next, next_state);
      state_finite = all_finite(next_state.m) & all_finite(next_state.s);
    }
  }
  if constexpr (R == UpdateRule::any) {
    // The run's rule, chosen at run time (the same for every walker of a launch, so a GPU warp
    // never diverges here), with exactly the operations of that rule's own code above: the same
    // bits. The components a rule does not use stay 0, so the finiteness test equals the rule's.
    next_state = old.optimizer;
    if (params.optimizer.rule == UpdateRule::sgd) {
      next = sgd_update<Noise>(landscape, params, old.position, normals);
    } else {
      const Vec<T, D> g = stochastic_gradient<Noise>(landscape, params, old.position, normals);
      if (params.optimizer.rule == UpdateRule::momentum) {
        OptimizerState<T, D, UpdateRule::momentum> velocity, next_velocity;
        velocity.velocity = old.optimizer.m;
        momentum_update(params, old.position, velocity, g, next, next_velocity);
        next_state.m = next_velocity.velocity;
      } else {
        adaptive_update(params, old.position, old.optimizer, g, next, next_state);
      }
    }
    state_finite = all_finite(next_state.m) & all_finite(next_state.s);
  }
  const bool was_finite = stamp_unset(old.nonfinite_step);
  const bool moves = was_finite & all_finite(next) & state_finite;
  WalkerState<T, D, R, Step> now;
  now.nonfinite_step = (was_finite & !moves) ? step : old.nonfinite_step;
  // A bit blend, not a select: with a select gcc threads the two outcomes into separate paths
  // (basin() of `next` or of the old position) and the lane loop no longer if-converts.
  for (int i = 0; i < D; ++i) now.position[i] = select_bits(moves, next[i], old.position[i]);
  for (int j = 0; j < OptimizerState<T, D, R>::width; ++j) {
    now.optimizer.set(j, select_bits(moves, next_state.get(j), old.optimizer.get(j)));
  }

  const int basin = landscape.basin(now.position);
  const bool changed = moves & (basin != old.basin);
  now.crossings = old.crossings + (changed ? 1u : 0u);
  now.freeze_step = changed ? step : old.freeze_step;
  now.y_freeze = changed ? landscape.progress(now.position) : old.y_freeze;
  now.basin = basin;
  const bool arrives =
      moves & stamp_unset(old.first_passage_step) & target.reached(now.position, basin);
  now.first_passage_step = arrives ? step : old.first_passage_step;
  walker = now;
}

/// The CUDA step loop's walker: the same state with its three step stamps as std::int32_t
/// relative to the launch (step_begin), so that every stamp costs one 32-bit select per step
/// instead of two. A launch has fewer than 2^31 steps (the CUDA backend's max_steps_per_launch is
/// at most 2^23). Encoding: a stamp set during the launch is its step − step_begin (≥ 1); 0 means
/// "not set during this launch, keep the stamp the walker came with", and the two stamps that are
/// −1 while unset start as −1 when they were unset at the start, so that advance_walker's tests
/// (`< 0`) see what they would see on the absolute stamps. to_absolute() restores the absolute
/// walker: the same bits as advancing the absolute walker itself (tests/test_walker_relative).
struct LaunchTrackers {
  template <class T, int D, UpdateRule R>
  SGDWALK_FN static WalkerState<T, D, R, std::int32_t> to_relative(
      const WalkerState<T, D, R>& walker) {
    WalkerState<T, D, R, std::int32_t> r;
    r.position = walker.position;
    r.freeze_step = 0;
    r.first_passage_step = walker.first_passage_step < 0 ? -1 : 0;
    r.nonfinite_step = walker.nonfinite_step < 0 ? -1 : 0;
    r.y_freeze = walker.y_freeze;
    r.basin = walker.basin;
    r.crossings = walker.crossings;
    r.optimizer = walker.optimizer;
    return r;
  }

  /// `start` is the walker as the launch started (its absolute stamps), `step_begin` the launch's
  /// first step − 1.
  template <class T, int D, UpdateRule R>
  SGDWALK_FN static WalkerState<T, D, R> to_absolute(
      const WalkerState<T, D, R, std::int32_t>& relative, const WalkerState<T, D, R>& start,
      std::int64_t step_begin) {
    WalkerState<T, D, R> w;
    w.position = relative.position;
    w.freeze_step = stamp(relative.freeze_step, start.freeze_step, step_begin);
    w.first_passage_step = stamp(relative.first_passage_step, start.first_passage_step, step_begin);
    w.nonfinite_step = stamp(relative.nonfinite_step, start.nonfinite_step, step_begin);
    w.y_freeze = relative.y_freeze;
    w.basin = relative.basin;
    w.crossings = relative.crossings;
    w.optimizer = relative.optimizer;
    return w;
  }

 private:
  SGDWALK_FN static std::int64_t stamp(std::int32_t relative, std::int64_t start,
                                       std::int64_t step_begin) {
    return relative > 0 ? step_begin + relative : start;
  }
};

}  // namespace sgdwalk
