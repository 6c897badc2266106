// Optimizers (SGD, heavy-ball and Nesterov momentum, Adam, RMSprop) and the learning-rate and
// noise-strength schedules, shared by every backend.
//
// The update of every optimizer starts from the same stochastic gradient g = ∇L(θ) + ξ (the noise
// models of noise.hpp, the normals of update k as for SGD) and differs only in what it does with
// g. The optimizer's per-walker state (velocity, moments) is part of the walker (WalkerState in
// walker.hpp) and travels through batches, checkpoints, replay and per-walker output as
// `width` numbers per walker (OptimizerState::width; stored as double, exact for float runs).
//
// Per-step constants (a scheduled learning rate or noise strength, Adam's bias corrections) are
// a function of the step index alone, evaluated in double with correctly rounded operations
// (binary powering; cosine through pmath::cos) and rounded once to the walker precision: every
// backend, segment, batch and resumed session computes the same bits for the same step.
#pragma once

#include <cmath>
#include <cstdint>

#include "sgdwalk/hd.hpp"
#include "sgdwalk/noise.hpp"
#include "sgdwalk/portable_math.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// The optimizer a run uses (config `dynamics.optimizer`).
enum class OptimizerKind : std::int32_t { sgd, momentum, nesterov, adam, rmsprop };

/// The compiled update rules: the CPU lane loops are instantiated per rule (sgd, momentum,
/// adaptive), the optimizers of one rule differ only in per-variant coefficients (nesterov: a
/// flag; rmsprop: Adam with β1 = 0 and no bias correction, which gives exactly RMSprop's
/// operations, see adaptive_update). `any` is never a run's rule: it is compiled for all three
/// and chooses among them at run time by OptimizerCoefficients::rule, the same for every walker
/// of a launch (the CUDA backend's stateful kernel, docs/CUDA.md: one kernel instead of one per
/// rule, with the same operations and so the same bits as the rule's own code).
enum class UpdateRule : std::int32_t { sgd, momentum, adaptive, any };

SGDWALK_HD inline constexpr UpdateRule update_rule(OptimizerKind kind) {
  return kind == OptimizerKind::sgd ? UpdateRule::sgd
         : kind == OptimizerKind::momentum || kind == OptimizerKind::nesterov
             ? UpdateRule::momentum
             : UpdateRule::adaptive;
}

/// Optimizer state numbers per walker of a rule in dimension D (`any`: room for every rule).
inline constexpr int optimizer_state_width(UpdateRule rule, int dim) {
  return rule == UpdateRule::sgd ? 0 : rule == UpdateRule::momentum ? dim : 2 * dim;
}

/// The optimizer's per-walker state. Component j of the flat layout (checkpoints, RunData,
/// per-walker output, replay): momentum: velocity[j]; adaptive: j < D the first moment m[j],
/// j >= D the second moment s[j − D]. A fresh walker has every component 0.
template <class T, int D, UpdateRule R>
struct OptimizerState {
  static constexpr int width = 0;
  SGDWALK_FN T get(int) const { return T(0); }
  SGDWALK_FN void set(int, T) {}
};

template <class T, int D>
struct OptimizerState<T, D, UpdateRule::momentum> {
  static constexpr int width = D;
  Vec<T, D> velocity;  ///< v in θ ← θ + v (heavy ball); the same v for Nesterov
  SGDWALK_FN T get(int j) const { return velocity[j]; }
  SGDWALK_FN void set(int j, T value) { velocity[j] = value; }
};

template <class T, int D>
struct OptimizerState<T, D, UpdateRule::adaptive> {
  static constexpr int width = 2 * D;
  Vec<T, D> m;  ///< first moment (Adam); RMSprop: the last gradient
  Vec<T, D> s;  ///< second moment (Adam, RMSprop)
  SGDWALK_FN T get(int j) const { return j < D ? m[j] : s[j - D]; }
  SGDWALK_FN void set(int j, T value) {
    if (j < D) {
      m[j] = value;
    } else {
      s[j - D] = value;
    }
  }
};

/// `any`'s state: the adaptive layout, which holds every rule's state in its flat prefix
/// (momentum: the velocity in m, s stays 0; sgd: both stay 0). A walker of a run whose rule has
/// width w < 2D has components [w, 2D) equal to 0 (fresh walkers start there and no update of
/// that rule writes them).
template <class T, int D>
struct OptimizerState<T, D, UpdateRule::any> : OptimizerState<T, D, UpdateRule::adaptive> {};

/// The optimizer's constants of one step in precision T (see make_step_params in walker.hpp).
template <class T>
struct OptimizerCoefficients {
  /// The run's update rule (sgd, momentum or adaptive): what an `any` update does.
  UpdateRule rule = UpdateRule::sgd;
  T momentum = 0;         ///< μ
  bool nesterov = false;  ///< θ ← θ + μv' − ηg instead of θ ← θ + v'
  T beta1 = 0, one_minus_beta1 = 1, beta2 = 0, one_minus_beta2 = 1;
  T epsilon = 0;     ///< ε of the adaptive denominator sqrt(ŝ) + ε
  T step_size = 0;   ///< adaptive: η_k / (1 − β1^k) (RMSprop: η_k)
  T bias2_sqrt = 1;  ///< adaptive: sqrt(1 − β2^k) (RMSprop: 1)
};

/// A schedule's shape (config `[dynamics.learning_rate_schedule]`, `[dynamics.noise_schedule]`).
enum class ScheduleKind : std::int32_t { constant, step, exponential, cosine, piecewise };

inline constexpr int kMaxSchedulePieces = 16;

/// A multiplicative factor f(t) on the base learning rate or noise strength, t = the number of
/// updates before this one (update k has t = k − 1). A linear warmup of W updates multiplies by
/// (t + 1)/W for t < W; the shape runs on u = max(0, t − W):
///  constant 1; step factor^floor(u / every); exponential gamma^u; cosine
///  floor + (1 − floor)(1 + cos(π min(u, decay_steps)/decay_steps))/2; piecewise values[i] for
///  the last i with steps[i] <= u (steps[0] = 0).
/// Powers are binary powering in double (correctly rounded products in a fixed order), so they
/// are exact to reproduce; cosine uses pmath::cos (the same bits on every compiler).
struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  std::int32_t pieces = 0;
  std::int64_t warmup_steps = 0;
  std::int64_t every = 1;        ///< step
  double factor = 1;             ///< step
  double gamma = 1;              ///< exponential
  std::int64_t decay_steps = 1;  ///< cosine
  double floor = 0;              ///< cosine
  std::int64_t piece_steps[kMaxSchedulePieces] = {};
  double piece_values[kMaxSchedulePieces] = {};

  /// True when f(t) = 1 for every t (then the per-step evaluation is skipped).
  SGDWALK_FN bool is_constant() const {
    return kind == ScheduleKind::constant && warmup_steps == 0;
  }
  SGDWALK_FN double factor_at(std::int64_t t) const;
  /// Σ_{t=0}^{n−1} f(t) in closed form (host only; outputs: the elapsed time η Σ f of a
  /// learning-rate schedule), for any n up to the run's 2^50 steps: relative error ~1e-15 for
  /// decaying and constant schedules, ~|n ln a|·1e-16 for a growing factor a (≤ ~1e-13 short of
  /// overflow). A derived number, not a sum of the per-step factors' bits.
  double sum_of_factors(std::int64_t n) const;
};

/// base^n by binary powering, in double: the same products in the same order everywhere.
SGDWALK_FN double power(double base, std::int64_t n) {
  double result = 1.0;
  while (n > 0) {
    if ((n & 1) != 0) result = result * base;
    base = base * base;
    n >>= 1;
  }
  return result;
}

SGDWALK_FN double Schedule::factor_at(std::int64_t t) const {
  double warm = 1.0;
  std::int64_t u = t - warmup_steps;
  if (u < 0) {
    warm = static_cast<double>(t + 1) / static_cast<double>(warmup_steps);
    u = 0;
  }
  double shape = 1.0;
  switch (kind) {
    case ScheduleKind::constant:
      break;
    case ScheduleKind::step:
      shape = power(factor, u / every);
      break;
    case ScheduleKind::exponential:
      shape = power(gamma, u);
      break;
    case ScheduleKind::cosine: {
      const std::int64_t clamped = u < decay_steps ? u : decay_steps;
      const double progress = static_cast<double>(clamped) / static_cast<double>(decay_steps);
      const double c = pmath::cos(3.141592653589793 * progress);
      shape = floor + (1.0 - floor) * (0.5 * (1.0 + c));
      break;
    }
    case ScheduleKind::piecewise: {
      for (int i = 0; i < pieces; ++i) {
        if (piece_steps[i] <= u) shape = piece_values[i];
      }
      break;
    }
  }
  return warm * shape;
}

/// Σ_{j=0}^{q−1} a^j for a > 0, accurate also for a near 1 (a − 1 is exact there and
/// expm1/log1p keep the relative accuracy of 1 − a^q). A growing a sums as
/// a^{q−1} (1 − a^{−q})/(1 − 1/a), so that a^q overflows only where the sum itself does.
inline double geometric_sum(double a, std::int64_t q) {
  if (q <= 0) return 0.0;
  if (a == 1.0) return static_cast<double>(q);
  const double log_a = std::log1p(a - 1.0);
  const double n = static_cast<double>(q);
  if (a < 1.0) return std::expm1(n * log_a) / (a - 1.0);
  return std::exp((n - 1.0) * log_a) * (std::expm1(-n * log_a) / std::expm1(-log_a));
}

inline double Schedule::sum_of_factors(std::int64_t n) const {
  if (n <= 0) return 0.0;
  // The warmup's updates t < W have u = 0 and factors (t + 1)/W × shape(0).
  const std::int64_t warm = n < warmup_steps ? n : warmup_steps;
  double total = 0.0;
  if (warm > 0) {
    const double m = static_cast<double>(warm);
    total += factor_at(warmup_steps) * (m * (m + 1.0) / (2.0 * static_cast<double>(warmup_steps)));
  }
  const std::int64_t shaped = n - warm;  // updates with u = 0, 1, ..., shaped − 1
  if (shaped == 0) return total;
  switch (kind) {
    case ScheduleKind::constant:
      total += static_cast<double>(shaped);
      break;
    case ScheduleKind::step: {
      const std::int64_t periods = shaped / every;
      const std::int64_t rest = shaped % every;
      total += static_cast<double>(every) * geometric_sum(factor, periods);
      // (only when a part-period is run: its factor may overflow where no update applies it)
      if (rest > 0) total += static_cast<double>(rest) * power(factor, periods);
      break;
    }
    case ScheduleKind::exponential:
      total += geometric_sum(gamma, shaped);
      break;
    case ScheduleKind::cosine: {
      // Σ_{u<c} cos(a u) = sin(c a/2) cos((c − 1) a/2) / sin(a/2), a = π/decay_steps; after
      // decay_steps the factor stays at its last value.
      const std::int64_t decaying = shaped < decay_steps ? shaped : decay_steps;
      const double c = static_cast<double>(decaying);
      const double a = 3.141592653589793 / static_cast<double>(decay_steps);
      const double cosines = std::sin(c * a / 2) * std::cos((c - 1) * a / 2) / std::sin(a / 2);
      total += floor * c + (1.0 - floor) * 0.5 * (c + cosines);
      if (shaped > decay_steps) {
        total += static_cast<double>(shaped - decay_steps) * factor_at(warmup_steps + decay_steps);
      }
      break;
    }
    case ScheduleKind::piecewise:
      for (int i = 0; i < pieces; ++i) {
        const std::int64_t begin = piece_steps[i] < shaped ? piece_steps[i] : shaped;
        const std::int64_t end_step = i + 1 < pieces ? piece_steps[i + 1] : shaped;
        const std::int64_t end = end_step < shaped ? end_step : shaped;
        if (end > begin) total += piece_values[i] * static_cast<double>(end - begin);
      }
      break;
  }
  return total;
}

/// Everything that defines a variant's update constants at any step, in double (per variant;
/// host and device read the same struct). Built on the host by make_step_schedule
/// (host/backend/physics_dispatch.hpp).
struct StepSchedule {
  double learning_rate = 0;   ///< base η
  double noise_strength = 0;  ///< base σ
  double epsilon = 1e-8;      ///< ε of the Hessian noise models
  Schedule learning_rate_schedule, noise_schedule;
  OptimizerKind optimizer = OptimizerKind::sgd;
  double momentum = 0, beta1 = 0, beta2 = 0, optimizer_epsilon = 0;
  bool bias_correction = false;  ///< adam
  /// α-stable noise (stable.hpp): c = η^{1/α − 1/2}/√2 at the base η (stable_scale) and the
  /// exponent e = 1/α − 1/2 by which it follows a learning-rate schedule; unused (0) otherwise.
  double stable_scale = 0, stable_exponent = 0;
  /// Whether the constants change from step to step (a schedule or Adam's bias correction);
  /// when false the constants of any step are those of step 1.
  bool per_step = false;
};

}  // namespace sgdwalk
