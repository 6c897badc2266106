// Small RunPlans built in code (no config parser) for backend tests, plus helpers to run them and
// to compare RunData bit for bit. Header-only; any test may include it.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.hpp"
#include "backend/plan.hpp"
#include "backend/run_data.hpp"
#include "config/landscape_params.hpp"

namespace sgdwalk::testing {

/// One point of the physics space every backend must support.
struct PhysicsCase {
  std::string landscape = "two_valley";  ///< a registry name (landscape.kind)
  int dim = 2;                           ///< the landscape's dimension (harmonic: 1, 2 or 3)
  NoiseKind noise = NoiseKind::hessian;
  Precision precision = Precision::f64;
  NoiseDistribution distribution = NoiseDistribution::gaussian;
  OptimizerKind optimizer = OptimizerKind::sgd;
  /// Variants with learning-rate and noise schedules (constants computed per step).
  bool scheduled = false;

  std::string name() const {
    std::string n = landscape;
    if (landscape_dims(landscape).size() > 1) n += std::to_string(dim);
    n += "_" + to_string(noise) + "_" + to_string(precision);
    if (distribution != NoiseDistribution::gaussian) n += "_" + to_string(distribution);
    if (optimizer != OptimizerKind::sgd) n += "_" + to_string(optimizer);
    if (scheduled) n += "_scheduled";
    return n;
  }
};

/// gtest prints parameters with this (instead of their bytes).
inline void PrintTo(const PhysicsCase& c, std::ostream* os) {
  *os << c.name();
}

/// Every registered landscape (harmonic in 1, 2 and 3 dimensions) × noise model × precision ×
/// noise distribution (gaussian, alpha_stable).
inline std::vector<PhysicsCase> all_physics_cases() {
  std::vector<PhysicsCase> cases;
  for (const LandscapeInfo& entry : landscape_registry()) {
    for (const NoiseInfo& model : noise_registry()) {
      NoiseKind noise = NoiseKind::hessian;
      for_each_noise_model([&]<class M>() {
        if (model.name == M::name) noise = M::kind;
      });
      for (Precision precision : {Precision::f32, Precision::f64}) {
        for (NoiseDistribution distribution :
             {NoiseDistribution::gaussian, NoiseDistribution::alpha_stable}) {
          cases.push_back({entry.name, entry.dim, noise, precision, distribution});
        }
      }
    }
  }
  return cases;
}

/// Every optimizer × noise model × precision on the 2-D and a 1-D landscape of the registry (the
/// other landscapes share the update code), each with schedules (SGD included); on the 2-D one
/// every optimizer but SGD also without schedules (the CUDA stateful kernel's constant-constants
/// path, stride 0; Adam's bias correction still makes its constants per step); and every
/// optimizer × noise model with α-stable noise on the 2-D one, without and with schedules (a
/// learning-rate schedule moves the jump scale c_k of every step: StepParams::stable_scale; each
/// noise model's α-stable stateful kernel is an instance of its own on the GPU).
inline std::vector<PhysicsCase> optimizer_physics_cases() {
  std::vector<PhysicsCase> cases;
  const OptimizerKind optimizers[] = {OptimizerKind::sgd, OptimizerKind::momentum,
                                      OptimizerKind::nesterov, OptimizerKind::adam,
                                      OptimizerKind::rmsprop};
  for (const LandscapeInfo& entry : landscape_registry()) {
    if (entry.name != "two_valley" && entry.name != "double_well") continue;
    for (const NoiseInfo& model : noise_registry()) {
      NoiseKind noise = NoiseKind::hessian;
      for_each_noise_model([&]<class M>() {
        if (model.name == M::name) noise = M::kind;
      });
      for (Precision precision : {Precision::f32, Precision::f64}) {
        for (OptimizerKind optimizer : optimizers) {
          cases.push_back({entry.name, entry.dim, noise, precision, NoiseDistribution::gaussian,
                           optimizer, true});
          if (optimizer != OptimizerKind::sgd && entry.name == "two_valley") {
            cases.push_back({entry.name, entry.dim, noise, precision, NoiseDistribution::gaussian,
                             optimizer, false});
          }
          if (entry.name == "two_valley") {
            for (bool scheduled : {false, true}) {
              cases.push_back({entry.name, entry.dim, noise, precision,
                               NoiseDistribution::alpha_stable, optimizer, scheduled});
            }
          }
        }
      }
    }
  }
  return cases;
}

/// The schedules of variant v of a scheduled test plan: cosine, step, exponential and piecewise
/// shapes on η and σ, each but the noise's step with a linear warmup (none of their steps aligned
/// with segments or normal blocks).
inline void schedule_test_variant(Variant& variant, int v) {
  Schedule& lr = variant.learning_rate_schedule;
  Schedule& noise = variant.noise_schedule;
  switch (v % 3) {
    case 0:
      lr.kind = ScheduleKind::cosine;
      lr.warmup_steps = 17;
      lr.decay_steps = 200;
      lr.floor = 0.1;
      noise.kind = ScheduleKind::step;
      noise.every = 41;
      noise.factor = 0.7;
      break;
    case 1:
      lr.kind = ScheduleKind::exponential;
      lr.warmup_steps = 9;
      lr.gamma = 0.995;
      noise.kind = ScheduleKind::piecewise;
      noise.warmup_steps = 23;
      noise.pieces = 3;
      noise.piece_steps[1] = 50;
      noise.piece_steps[2] = 151;
      noise.piece_values[0] = 1.0;
      noise.piece_values[1] = 0.5;
      noise.piece_values[2] = 0.25;
      break;
    default:
      lr.kind = ScheduleKind::step;
      lr.warmup_steps = 5;
      lr.every = 100;
      lr.factor = 0.5;
      break;
  }
}

struct TestPlanOptions {
  /// Regular variants (different η, σ); a last "divergent" variant with η = 30 is added when
  /// `divergent_variant` is set, so non-finite walkers (NaN samples, stopped trackers) are covered.
  int variants = 3;
  bool divergent_variant = true;
  std::int64_t walkers_per_variant = 173;  ///< not a multiple of 32 or of any block size
  std::int64_t steps = 301;                ///< odd: partial normal blocks at both ends
  std::uint64_t seed = 20240611;
  bool histograms = true;
  bool passage = true;
};

/// A small plan exercising every observable: samples at 0, inside and at the end, histograms with
/// windows and strides that do not align with anything, a first-passage target, several variants.
inline RunPlan make_test_plan(const PhysicsCase& c, const TestPlanOptions& options = {}) {
  RunPlan plan;
  plan.name = "test_" + c.name();
  plan.landscape = c.landscape;
  plan.dim = c.dim;
  plan.noise = c.noise;
  plan.precision = c.precision;
  plan.noise_distribution = c.distribution;
  plan.optimizer = c.optimizer;
  plan.walkers_per_variant = options.walkers_per_variant;
  plan.steps = options.steps;
  plan.seed = options.seed;

  if (c.landscape == "harmonic") {
    const std::vector<double> a = {0.5, -0.3, 0.2}, b = {-0.5, 0.3, -0.2};
    plan.initial_positions = {std::vector<double>(a.begin(), a.begin() + c.dim),
                              std::vector<double>(b.begin(), b.begin() + c.dim)};
  } else {
    // The landscape's default start (two_valley: y0 = 5) with x at −0.01 and +0.01.
    std::vector<double> minus = find_landscape(c.landscape, c.dim)->start, plus = minus;
    minus[0] -= 0.01;
    plus[0] += 0.01;
    plan.initial_positions = {minus, plus};
  }

  const std::int64_t s = options.steps;
  plan.sample_steps = {0, 1, 37, s / 2, s};

  if (options.passage) {
    if (c.landscape == "two_valley" || c.landscape == "two_valley_slice") {
      plan.passage.kind = PassageKind::basin;
      plan.passage.basin = kFlatBasin;
      plan.passage.description = "basin == flat";
    } else {
      // The last coordinate: a run-time index into the walker's position.
      plan.passage.kind = c.landscape == "harmonic" ? PassageKind::below : PassageKind::above;
      plan.passage.coordinate = c.dim - 1;
      // 0.3 above the start (the start itself is not an arrival after step 0).
      plan.passage.threshold = c.landscape == "harmonic"
                                   ? -0.25
                                   : find_landscape(c.landscape, c.dim)->start.back() + 0.3;
      plan.passage.description = "test target";
    }
  }

  if (options.histograms) {
    HistogramSpec first;
    first.name = "x";
    first.kind = HistogramKind::x_in_band;
    first.x_coordinate = c.dim - 1;
    first.x_bins = 30;
    first.x_lo = c.landscape == "two_valley" ? 4.5 : -1.5;  // two_valley: bins y
    first.x_hi = c.landscape == "two_valley" ? 5.5 : 1.5;
    first.window_begin = 10;
    first.window_end = s - 4;
    first.every = 7;
    plan.histograms.push_back(first);
    HistogramSpec second;
    second.name = "xy";
    second.kind = HistogramKind::xy;
    second.x_coordinate = 0;
    second.x_bins = 24;
    second.x_lo = -1.2;
    second.x_hi = 1.2;
    second.y_bins = 5;
    if (c.landscape == "two_valley") {
      second.y_lo = 4.0;
      second.y_hi = 6.5;
    } else if (c.landscape == "two_valley_slice") {
      second.y_lo = 30.0;
      second.y_hi = 50.0;
    } else {
      second.y_lo = -1.0;
      second.y_hi = 1.0;
    }
    second.window_begin = 0;
    second.window_end = s;
    second.every = 3;
    plan.histograms.push_back(second);
    if (c.landscape == "two_valley") {
      HistogramSpec band;  // only walkers with y in a band count
      band.name = "band";
      band.kind = HistogramKind::x_in_band;
      band.x_bins = 16;
      band.x_lo = -0.8;
      band.x_hi = 0.8;
      band.band_lo = 4.95;
      band.band_hi = 5.3;
      band.window_begin = 1;
      band.window_end = s;
      band.every = 1;
      plan.histograms.push_back(band);
    }
  }

  const double learning_rates[] = {0.05, 0.02, 0.1};
  const double noise_strengths[] = {0.2, 0.05,
                                    1.0};  // the last: crossings even for isotropic noise
  const int total = options.variants + (options.divergent_variant ? 1 : 0);
  for (int v = 0; v < total; ++v) {
    Variant variant;
    for (const ParameterInfo& p : landscape_parameters(c.landscape, c.dim)) {
      variant.landscape[p.name] = p.default_value;
    }
    if (c.landscape == "harmonic" && c.dim >= 2) variant.landscape["stiffness.1"] = 3.0;
    // The plan's learning rates (up to 0.1) need curvatures below 20; Müller–Brown's reach 4068
    // at scale 1: at scale 0.004 the largest is 16, the A–C barrier 0.42 (crossings at σ = 1).
    if (c.landscape == "muller_brown") variant.landscape["scale"] = 0.004;
    const bool divergent = v == options.variants;
    variant.learning_rate = divergent ? 30.0 : learning_rates[v % 3];
    // Adam's and RMSprop's steps are about η whatever the gradient: only a huge η overflows, and
    // it must overflow in the first step (η·|m/(√s + ε)| > DBL_MAX), or a walker at |x| ~ η
    // would be sampled finite with a NaN loss (whose payload differs between x86 and CUDA).
    if (divergent && update_rule(c.optimizer) == UpdateRule::adaptive)
      variant.learning_rate = 1e308;
    variant.noise_strength = noise_strengths[v % 3];
    if (c.distribution == NoiseDistribution::alpha_stable) {
      // Tail indices on both sides of the Cauchy case α = 1 (its tail exponent is 0).
      const double alphas[] = {1.5, 0.9, 1.8};
      variant.alpha = alphas[v % 3];
    }
    variant.momentum = 0.5;
    variant.beta1 = 0.8;
    variant.beta2 = 0.99;
    variant.rmsprop_decay = 0.9;
    variant.optimizer_epsilon = 1e-6;
    if (c.scheduled && !divergent) schedule_test_variant(variant, v);
    variant.swept = {{"learning_rate", variant.learning_rate}};
    plan.variants.push_back(variant);
  }
  return plan;
}

/// Sized RunData with every walker at step 0 (initial positions, step-0 samples and deposits).
inline RunData initialized_data(const RunPlan& plan) {
  RunData data;
  data.resize(plan);
  initialize_walkers(plan, 0, plan.total_walkers(), data);
  return data;
}

/// Runs the whole plan: for each walker range [cuts[i], cuts[i+1]) and each step segment
/// (segments[j], segments[j+1]] one advance() call. Empty lists mean "everything at once".
inline RunData run_plan(Backend& backend, const RunPlan& plan,
                        std::vector<std::int64_t> walker_cuts = {},
                        std::vector<std::int64_t> step_cuts = {}) {
  if (walker_cuts.empty()) walker_cuts = {0, plan.total_walkers()};
  if (step_cuts.empty()) step_cuts = {0, plan.steps};
  RunData data = initialized_data(plan);
  for (std::size_t i = 0; i + 1 < walker_cuts.size(); ++i) {
    for (std::size_t j = 0; j + 1 < step_cuts.size(); ++j) {
      backend.advance(plan, walker_cuts[i], walker_cuts[i + 1], step_cuts[j], step_cuts[j + 1],
                      data);
    }
  }
  return data;
}

/// Like run_plan, but as the driver runs a plan: each walker range is a batch opened with
/// begin_batch() and closed with end_batch(), so a backend may keep its walkers resident between
/// the advance() calls of the batch. With `sync_every_other`, sync_walkers() is called after every
/// second step segment (a checkpoint in the middle of a batch), after which the batch goes on.
inline RunData run_plan_in_batches(Backend& backend, const RunPlan& plan,
                                   std::vector<std::int64_t> walker_cuts = {},
                                   std::vector<std::int64_t> step_cuts = {},
                                   bool sync_every_other = false) {
  if (walker_cuts.empty()) walker_cuts = {0, plan.total_walkers()};
  if (step_cuts.empty()) step_cuts = {0, plan.steps};
  RunData data = initialized_data(plan);
  for (std::size_t i = 0; i + 1 < walker_cuts.size(); ++i) {
    backend.begin_batch(plan, walker_cuts[i], walker_cuts[i + 1], step_cuts.front(), data);
    for (std::size_t j = 0; j + 1 < step_cuts.size(); ++j) {
      backend.advance(plan, walker_cuts[i], walker_cuts[i + 1], step_cuts[j], step_cuts[j + 1],
                      data);
      if (sync_every_other && j % 2 == 1) backend.sync_walkers(plan, data);
    }
    backend.end_batch(plan, data);
  }
  return data;
}

/// Bitwise equality of two arrays, with the first difference in the failure message.
template <class T>
::testing::AssertionResult same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) {
      return ::testing::AssertionFailure()
             << "first difference at index " << i << ": " << +a[i] << " vs " << +b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

/// Every walker array, per-walker sample array, counter and histogram identical bit for bit.
inline void expect_identical(const RunData& a, const RunData& b, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_TRUE(same_bits(a.walkers.position, b.walkers.position)) << "position";
  EXPECT_TRUE(same_bits(a.walkers.y_freeze, b.walkers.y_freeze)) << "y_freeze";
  EXPECT_TRUE(same_bits(a.walkers.freeze_step, b.walkers.freeze_step)) << "freeze_step";
  EXPECT_TRUE(same_bits(a.walkers.first_passage_step, b.walkers.first_passage_step))
      << "first_passage_step";
  EXPECT_TRUE(same_bits(a.walkers.nonfinite_step, b.walkers.nonfinite_step)) << "nonfinite_step";
  EXPECT_TRUE(same_bits(a.walkers.basin, b.walkers.basin)) << "basin";
  EXPECT_TRUE(same_bits(a.walkers.crossings, b.walkers.crossings)) << "crossings";
  EXPECT_TRUE(same_bits(a.walkers.optimizer_state, b.walkers.optimizer_state)) << "optimizer_state";
  EXPECT_TRUE(same_bits(a.observables.sample_progress, b.observables.sample_progress))
      << "sample_progress";
  EXPECT_TRUE(same_bits(a.observables.sample_loss, b.observables.sample_loss)) << "sample_loss";
  EXPECT_TRUE(same_bits(a.observables.sample_flat, b.observables.sample_flat)) << "sample_flat";
  EXPECT_TRUE(same_bits(a.observables.sample_finite, b.observables.sample_finite))
      << "sample_finite";
  EXPECT_TRUE(a.tallies == b.tallies) << "reduced statistics";
  ASSERT_EQ(a.observables.histogram_counts.size(), b.observables.histogram_counts.size());
  for (std::size_t h = 0; h < a.observables.histogram_counts.size(); ++h) {
    EXPECT_TRUE(same_bits(a.observables.histogram_counts[h], b.observables.histogram_counts[h]))
        << "histogram " << h;
  }
}

}  // namespace sgdwalk::testing
