// Direct forward flux sampling (FFS): the per-walker logic both backends run, written once.
//
// FFS estimates the rate of a rare transition A → B through interfaces λ_A < λ_0 < λ_1 < … < λ_n of
// an order parameter λ(θ) (A = {λ < λ_A}, B = {λ ≥ λ_n}):
//   stage 0 (flux): an ordinary ensemble in A counts the first crossings of λ_0 after the last
//   visit
//     to A and stores the crossing states; Φ = crossings / (walker-steps spent coming from A);
//   stage i ≥ 1: trials start from states stored at λ_{i−1} and run until they reach λ_i (success,
//     the state is stored for the next stage) or fall back into A;
//   k_AB = Φ · Π_i P(λ_i | λ_{i−1}).
// A trial carries the full WalkerState (position, trackers and the optimizer's state: velocity,
// moments) and the walker's real step index, so a trial continues the walker exactly as the
// brute-force update would: update k of the walker (k = its step index + 1) uses the optimizer
// state it stored and step k's constants (a learning-rate or noise schedule, Adam's bias
// correction: step_params_at(schedule, k), the normal run's bits; see StepConstants).
// The update rule R is a template parameter (UpdateRule::sgd for plain SGD, UpdateRule::any for
// every optimizer, chosen at run time from the constants; both backends run the same code).
//
// RANDOMNESS LAYOUT (counter-based Philox, key = the run's seed; see philox.hpp and normal.hpp).
// The 128-bit Philox counter is (block: 64 bits, subsequence: 64 bits). Brute-force walkers use
// subsequence (v << 32) + w with v < 2^31 (kMaxVariants), so bit 63 of their subsequence is 0.
// FFS streams set bit 63 and therefore never meet a brute-force stream:
//   subsequence = 2^63 | (variant << 32) | index      index = flux walker (stage 0) or trial
//   block       = (replica << 56) | (stage << 48) | local
//     replica < 256, stage < 256 (stage 0 = flux, 1..127 = trial stages, 128 + i = the pilot
//     trials that place interface i + 1 automatically), local < 2^48;
//     local in [0, 2^48 − 1): normal blocks: update k (1-based, counted from the start of the
//       flux walk or of the trial) consumes normals [(k − 1)·D, k·D), normal n from local block n/4
//       exactly as in normal.hpp;
//     local = 2^48 − 1 (kChoiceBlock): the trial's choice of its start state: the first two words
//       (x, y) form u = x + 2^32 y and the stored state ⌊u · count / 2^64⌋ is taken.
// Every random number of an FFS computation is thus a function of (seed, variant, replica, stage,
// trial or walker, step): results do not depend on batching, threads or backend.
#pragma once

#include <cstdint>

#include "sgdwalk/hd.hpp"
#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/normal.hpp"
#include "sgdwalk/philox.hpp"
#include "sgdwalk/vec.hpp"
#include "sgdwalk/walker.hpp"

namespace sgdwalk::ffs {

/// The update rule the CPU backend's FFS stages compile for an optimizer: plain SGD's own code, or
/// UpdateRule::any (the run-time choice among the rules, with each rule's operations and bits) for
/// every other optimizer, so that FFS adds one instance per (precision, landscape, noise) for all
/// optimizers. The CUDA FFS kernels run UpdateRule::any for every optimizer, SGD included (its
/// SGD branch is sgd_update: the same bits), which keeps their instance count that of plain SGD.
inline constexpr UpdateRule cpu_update_rule(OptimizerKind kind) {
  return kind == OptimizerKind::sgd ? UpdateRule::sgd : UpdateRule::any;
}

/// Last local block: the choice words (see the layout above); normals use the blocks below it.
inline constexpr std::uint64_t kChoiceBlock = (std::uint64_t{1} << 48) - 1;
/// Stage field of the pilot trials that place interface i + 1: kPilotStage + i.
inline constexpr int kPilotStage = 128;
/// Trial stages 1..kMaxStages after the flux stage: interfaces λ_0..λ_n with n ≤ 127 (automatic
/// placement; given interfaces are at most 126 numbers, n ≤ 125).
inline constexpr int kMaxStages = 127;
inline constexpr int kMaxReplicas = 256;  ///< the replica field's 8 bits

/// Philox subsequence of flux walker or trial `index` of `variant` (bit 63 set: never a
/// brute-force walker's).
SGDWALK_FN std::uint64_t subsequence(std::int64_t variant, std::int64_t index) {
  return (std::uint64_t{1} << 63) | (static_cast<std::uint64_t>(variant) << 32) |
         static_cast<std::uint64_t>(index);
}

/// First Philox block of (replica, stage); add the local block.
SGDWALK_FN std::uint64_t block_base(int replica, int stage) {
  return (static_cast<std::uint64_t>(replica) << 56) | (static_cast<std::uint64_t>(stage) << 48);
}

/// The high 64 bits of a·b, from 32-bit halves (the same on every compiler and device).
SGDWALK_FN std::uint64_t mulhi64(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t a_lo = a & 0xffffffffu, a_hi = a >> 32;
  const std::uint64_t b_lo = b & 0xffffffffu, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi;
  const std::uint64_t middle = (lo_lo >> 32) + (hi_lo & 0xffffffffu) + lo_hi;
  return a_hi * b_hi + (hi_lo >> 32) + (middle >> 32);
}

/// Which stored state (of `count`) trial `trial` of (variant, replica, stage) starts from:
/// ⌊u · count / 2^64⌋ with u the 64-bit word pair of the trial's choice block.
SGDWALK_FN std::int64_t choose_start(std::uint64_t seed, std::int64_t variant, int replica,
                                     int stage, std::int64_t trial, std::int64_t count) {
  const U32x4 words =
      philox_block(seed, subsequence(variant, trial), block_base(replica, stage) | kChoiceBlock);
  const std::uint64_t u =
      static_cast<std::uint64_t>(words.x) | (static_cast<std::uint64_t>(words.y) << 32);
  return static_cast<std::int64_t>(mulhi64(u, static_cast<std::uint64_t>(count)));
}

/// What λ is computed from.
enum class OrderKind : std::int32_t {
  coordinate = 0,      ///< position[coordinate]
  progress = 1,        ///< the landscape's progress coordinate
  loss = 2,            ///< the loss L(θ)
  basin_distance = 3,  ///< signed distance from the basin boundary, > 0 in the flat basin
  /// The mechanical energy L(θ) + |v|²/(2η_k) of a momentum walker in the start basin (the
  /// negative side of basin_signed_distance), +inf beyond the basin boundary (B).
  energy = 4,
};

/// Signed distance from the flat/sharp boundary (positive on the flat side). Landscapes without
/// a known boundary give NaN (the config refuses basin_distance for them).
template <class Landscape, class P>
SGDWALK_FN auto basin_signed_distance(const Landscape&, const P& p) {
  return p[0] - p[0] + static_cast<decltype(p[0] + 0)>(__builtin_nan(""));
}
template <class T>
SGDWALK_FN T basin_signed_distance(const TwoValley<T>&, const Vec<T, 2>& p) {
  return p[0];
}
template <class T>
SGDWALK_FN T basin_signed_distance(const TwoValleySlice<T>&, const Vec<T, 1>& p) {
  return p[0];
}
template <class T>
SGDWALK_FN T basin_signed_distance(const DoubleWell<T>& l, const Vec<T, 1>& p) {
  return p[0] - l.barrier;
}
template <class T, int D>
SGDWALK_FN T basin_signed_distance(const Harmonic<T, D>& l, const Vec<T, D>& p) {
  return p[0] - l.center[0];
}

/// λ = sign · raw; sign = −1 makes a decreasing quantity an increasing order parameter.
/// Position kinds read θ only. OrderKind::energy reads the walker's state: with v the optimizer
/// state's first D components (the velocity of heavy ball and Nesterov: for Nesterov the stored
/// buffer v' = μv − ηg, not the position increment μv' − ηg) and η the learning rate of the update
/// that produced the state (η_k of its step k; schedules: step_params_at), λ = L(θ) + |v|²/(2η)
/// while basin_signed_distance(θ) < 0 and +inf beyond, so B = {λ = +inf} is the crossing of the
/// basin boundary (the config appends it as the last interface).
template <class T>
struct OrderParameter {
  OrderKind kind = OrderKind::basin_distance;
  std::int32_t coordinate = 0;
  T sign = T(1);

  /// λ of a position (every kind but energy).
  template <class Landscape, int D>
  SGDWALK_FN T operator()(const Landscape& landscape, const Vec<T, D>& p) const {
    T raw;
    if (kind == OrderKind::coordinate) {
      raw = p[0];
      for (int i = 1; i < D; ++i) raw = coordinate == i ? p[i] : raw;
    } else if (kind == OrderKind::progress) {
      raw = landscape.progress(p);
    } else if (kind == OrderKind::loss) {
      raw = landscape.value(p);
    } else {
      raw = basin_signed_distance(landscape, p);
    }
    return sign * raw;
  }

  /// λ of a walker state made by an update with learning rate `eta` (every kind; the position
  /// kinds give exactly operator()(landscape, position)). Unfused, in this order: the sum of
  /// v_i·v_i over i, divided by 2η, added to L.
  template <class Landscape, int D, UpdateRule R, class Step>
  SGDWALK_FN T operator()(const Landscape& landscape, const WalkerState<T, D, R, Step>& walker,
                          T eta) const {
    if (kind != OrderKind::energy) return (*this)(landscape, walker.position);
    T kinetic = T(0);
    if constexpr (OptimizerState<T, D, R>::width >= D) {
      for (int i = 0; i < D; ++i) {
        const T v = walker.optimizer.get(i);
        kinetic = kinetic + v * v;
      }
    }
    const T energy = landscape.value(walker.position) + kinetic / (T(2) * eta);
    const T inf = static_cast<T>(__builtin_huge_val());
    return basin_signed_distance(landscape, walker.position) < T(0) ? sign * energy : inf;
  }

  /// λ of a walker state at step `step` of a run with `constants` (step 0, the fresh state: the
  /// constants of step 1; its velocity is 0).
  template <class Landscape, int D, UpdateRule R, class Constants>
  SGDWALK_FN T at_step(const Landscape& landscape, const WalkerState<T, D, R>& walker,
                       const Constants& constants, std::int64_t step) const {
    if (kind != OrderKind::energy) return (*this)(landscape, walker.position);
    return (*this)(landscape, walker, constants.at(step < 1 ? 1 : step).learning_rate);
  }
};

/// The interfaces one stage of one variant needs, in the walker precision.
template <class T>
struct StageBounds {
  T lambda_a;       ///< A = {λ < lambda_a}
  T lambda_from;    ///< λ_i: the interface the trials start from (stage 0: none, −inf)
  T lambda_to;      ///< λ_{i+1}: success (stage 0: λ_0)
  T lambda_beyond;  ///< λ_{i+2} (+inf if none): reaching it in the success step is a jump-over
  T lambda_b;       ///< λ_n: B (the flux stage stops counting a walker that reached it)
};

/// Normals of one FFS stream (trial or flux walker), read by index; one Philox block is cached.
template <class T>
struct StreamNormals {
  std::uint64_t seed, subsequence, base;
  std::uint64_t cached_block;
  T buffer[4];

  /// The stream (seed, subsequence) from Philox block `base` on (nothing generated yet).
  SGDWALK_FN static StreamNormals make(std::uint64_t seed, std::uint64_t subsequence,
                                       std::uint64_t base) {
    StreamNormals s{};
    s.seed = seed;
    s.subsequence = subsequence;
    s.base = base;
    s.cached_block = ~std::uint64_t{0};
    return s;
  }

  SGDWALK_FN T at(std::uint64_t n) {
    const std::uint64_t block = n >> 2;
    if (block != cached_block) {
      philox_normals_block<T>(seed, subsequence, base + block, buffer);
      cached_block = block;
    }
    // Selects rather than buffer[n & 3]: a runtime index would put the buffer in local memory
    // on the GPU.
    const std::uint64_t lane = n & 3;
    T value = buffer[0];
    value = lane == 1 ? buffer[1] : value;
    value = lane == 2 ? buffer[2] : value;
    value = lane == 3 ? buffer[3] : value;
    return value;
  }

  /// The normals of update k (1-based): [(k − 1)·D, k·D).
  template <int D>
  SGDWALK_FN Vec<T, D> update(std::int64_t k) {
    Vec<T, D> z;
    const std::uint64_t first = static_cast<std::uint64_t>(k - 1) * D;
    for (int i = 0; i < D; ++i) z[i] = at(first + static_cast<std::uint64_t>(i));
    return z;
  }
};

/// The update constants of a flux walker's or trial's steps: the variant's constant StepParams,
/// or, for variants whose constants change from step to step (StepSchedule::per_step: a schedule
/// or Adam's bias correction), the schedule evaluated at the walker's real step with
/// step_params_at, as the normal run evaluates it (the same bits on every backend).
template <class T>
struct StepConstants {
  StepParams<T> constant;                  ///< every step's constants when schedule is null
  const StepSchedule* schedule = nullptr;  ///< non-null: step k's constants are computed

  /// The constants of update `step` (the walker's step index after the update, >= 1).
  SGDWALK_FN StepParams<T> at(std::int64_t step) const {
    return schedule != nullptr ? step_params_at<T>(*schedule, step) : constant;
  }
};

/// The constants of a variant: its step-1 StepParams and, when they vary, its schedule.
template <class T>
SGDWALK_FN StepConstants<T> make_step_constants(const StepParams<T>& params,
                                                const StepSchedule& schedule) {
  StepConstants<T> c;
  c.constant = params;
  c.schedule = schedule.per_step ? &schedule : nullptr;
  return c;
}

/// How a trial ended.
enum class TrialOutcome : std::uint8_t {
  running = 0,
  reached = 1,    ///< λ ≥ lambda_to
  fell_back = 2,  ///< λ < lambda_a
  nonfinite = 3,  ///< the update left the finite numbers (counted as a failure)
  timed_out = 4,  ///< max_steps updates without either (counted as a failure; a warning)
};

/// One trial: the walker state it carries and its bookkeeping. `path_step` is the walker's step
/// counter (flux-stage step + the steps of every trial on its path): the trackers of WalkerState
/// and the step constants (schedules) are indexed by it; the normals are indexed by the trial's
/// own update count `steps`.
template <class T, int D, UpdateRule R = UpdateRule::sgd>
struct Trial {
  WalkerState<T, D, R> walker;
  std::int64_t path_step;
  std::int64_t steps;  ///< updates made in this trial
  T max_lambda;        ///< the largest λ seen (pilot trials place interfaces with it)
  TrialOutcome outcome;
  bool jumped;  ///< the success step crossed λ_i and λ_{i+1}, or reached λ_{i+2}
};

/// Advances a trial until it reaches lambda_to, falls back into A, stops being finite, or has made
/// max_steps updates. A start state already at or beyond lambda_to succeeds with 0 updates (its
/// jump was counted where it was stored).
template <NoiseKind Noise, UpdateRule R, class Landscape, class T, int D>
SGDWALK_FN void run_trial(const Landscape& landscape, const StepConstants<T>& constants,
                          const OrderParameter<T>& order, const StageBounds<T>& bounds,
                          StreamNormals<T>& normals, std::int64_t max_steps,
                          Trial<T, D, R>& trial) {
  const PassageTarget<T> no_target{};
  T lambda = order.at_step(landscape, trial.walker, constants, trial.path_step);
  trial.max_lambda = lambda;
  trial.outcome = TrialOutcome::running;
  trial.jumped = false;
  if (lambda >= bounds.lambda_to) {
    trial.outcome = TrialOutcome::reached;
    return;
  }
  while (trial.steps < max_steps) {
    const std::int64_t k = trial.steps + 1;
    const Vec<T, D> z = normals.template update<D>(k);
    const T before = lambda;
    const std::int64_t step = trial.path_step + 1;
    const StepParams<T> params = constants.at(step);
    advance_walker<Noise, R>(landscape, params, no_target, z, step, trial.walker);
    trial.steps = k;
    trial.path_step += 1;
    if (trial.walker.nonfinite_step >= 0) {
      trial.outcome = TrialOutcome::nonfinite;
      return;
    }
    lambda = order(landscape, trial.walker, params.learning_rate);
    trial.max_lambda = lambda > trial.max_lambda ? lambda : trial.max_lambda;
    if (lambda >= bounds.lambda_to) {
      trial.outcome = TrialOutcome::reached;
      // λ_{i+2} = +inf means none, also when λ_{i+1} is +inf (the energy order parameter's B).
      trial.jumped =
          ((lambda >= bounds.lambda_beyond) & (bounds.lambda_beyond > bounds.lambda_to)) |
          (before < bounds.lambda_from);
      return;
    }
    if (lambda < bounds.lambda_a) {
      trial.outcome = TrialOutcome::fell_back;
      return;
    }
  }
  trial.outcome = TrialOutcome::timed_out;
}

/// A flux-stage walker: the walker and where it last was.
template <class T, int D, UpdateRule R = UpdateRule::sgd>
struct FluxWalker {
  WalkerState<T, D, R> walker;
  std::int64_t step;       ///< steps made (the walker's step counter)
  bool from_a;             ///< visited A since its last counted crossing of λ_0
  bool in_b;               ///< reached B since its last visit to A (its steps are not exposure)
  std::int64_t exposure;   ///< counted updates that started outside B-state
  std::int64_t crossings;  ///< counted first crossings of λ_0 after a visit to A
  std::int64_t jumps;      ///< crossings whose step also reached λ_1
  std::int64_t nonfinite;  ///< 1 once the walker left the finite numbers (it stops counting)
};

/// The state of a flux walker at step 0 (a fresh optimizer state: every component 0).
template <UpdateRule R = UpdateRule::sgd, class Landscape, class T, int D>
SGDWALK_FN FluxWalker<T, D, R> initial_flux_walker(const Landscape& landscape,
                                                   const OrderParameter<T>& order,
                                                   const StageBounds<T>& bounds,
                                                   const Vec<T, D>& position) {
  FluxWalker<T, D, R> f{};
  f.walker = initial_walker<R>(landscape, PassageTarget<T>{}, position);
  // A fresh state has velocity 0: its energy is L(θ) whatever η (1 here).
  const T lambda = order(landscape, f.walker, T(1));
  f.step = 0;
  f.from_a = lambda < bounds.lambda_a;
  f.in_b = lambda >= bounds.lambda_b;
  return f;
}

/// One flux-stage update. Updates with step ≤ `equilibration` are made but not counted (no
/// exposure, no crossings). Returns true when this update is a counted crossing of λ_0: the caller
/// stores the walker's state as an interface-0 state.
template <NoiseKind Noise, UpdateRule R, class Landscape, class T, int D>
SGDWALK_FN bool flux_update(const Landscape& landscape, const StepConstants<T>& constants,
                            const OrderParameter<T>& order, const StageBounds<T>& bounds,
                            StreamNormals<T>& normals, std::int64_t equilibration,
                            FluxWalker<T, D, R>& f) {
  const std::int64_t k = f.step + 1;
  const Vec<T, D> z = normals.template update<D>(k);
  const StepParams<T> params = constants.at(k);
  advance_walker<Noise, R>(landscape, params, PassageTarget<T>{}, z, k, f.walker);
  f.step = k;
  const bool counting = (k > equilibration) & (f.nonfinite == 0);
  f.exposure += (counting & !f.in_b) ? 1 : 0;
  if (f.walker.nonfinite_step >= 0) {
    f.nonfinite = 1;
    return false;
  }
  const T lambda = order(landscape, f.walker, params.learning_rate);
  if (lambda < bounds.lambda_a) {
    f.from_a = true;
    f.in_b = false;
  }
  const bool crossing = f.from_a & !f.in_b & (lambda >= bounds.lambda_to);
  if (crossing) f.from_a = false;
  if (lambda >= bounds.lambda_b) f.in_b = true;
  const bool counted = crossing & counting;
  f.crossings += counted ? 1 : 0;
  f.jumps += (counted & (lambda >= bounds.lambda_beyond)) ? 1 : 0;
  return counted;
}

}  // namespace sgdwalk::ffs
