// Optimizers and schedules (issue 17): exact stationary variances on a quadratic, schedule factors
// against their closed forms, config validation, and the optimizer state through step segments,
// batches, threads, replay and checkpoints (bit for bit). The CPU/CUDA equality of every optimizer
// is in test_backend_equivalence.cpp; the step-by-step comparison with an independent numpy
// implementation in python/tests/test_optimizers_numpy.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/physics_dispatch.hpp"
#include "config/config.hpp"
#include "run/checkpoint.hpp"
#include "run/driver.hpp"
#include "test_ensemble.hpp"
#include "test_files.hpp"
#include "test_plans.hpp"
#include "test_run_dirs.hpp"

namespace sgdwalk {
namespace {

// ---- Schedules ----------------------------------------------------------------------------------

TEST(Schedule, FactorsMatchTheirClosedForms) {
  Schedule constant;
  EXPECT_TRUE(constant.is_constant());
  for (std::int64_t t : {0, 1, 999}) EXPECT_EQ(constant.factor_at(t), 1.0);

  Schedule step;
  step.kind = ScheduleKind::step;
  step.every = 100;
  step.factor = 0.5;
  EXPECT_FALSE(step.is_constant());
  EXPECT_EQ(step.factor_at(0), 1.0);
  EXPECT_EQ(step.factor_at(99), 1.0);
  EXPECT_EQ(step.factor_at(100), 0.5);
  EXPECT_EQ(step.factor_at(250), 0.25);  // powers of two are exact

  Schedule exponential;
  exponential.kind = ScheduleKind::exponential;
  exponential.gamma = 0.999;
  // Binary powering: each squaring doubles the relative rounding error, so t updates carry at
  // most about t·2^-52 (deterministic, and the same bits everywhere).
  for (std::int64_t t : {0, 1, 7, 1000, 123457}) {
    const double expected = std::pow(0.999, static_cast<double>(t));
    EXPECT_NEAR(exponential.factor_at(t), expected,
                (4 + static_cast<double>(t)) * 0x1p-52 * expected)
        << t;
  }

  Schedule cosine;
  cosine.kind = ScheduleKind::cosine;
  cosine.decay_steps = 1000;
  cosine.floor = 0.1;
  for (std::int64_t t : {0, 1, 250, 500, 999, 1000, 5000}) {
    const double p = std::min<double>(static_cast<double>(t), 1000.0) / 1000.0;
    const double expected = 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p));
    EXPECT_NEAR(cosine.factor_at(t), expected, 1e-15) << t;
  }

  // Warmup multiplies by (t + 1)/W and delays the shape by W updates.
  Schedule warm = cosine;
  warm.warmup_steps = 10;
  EXPECT_EQ(warm.factor_at(0), 0.1);
  EXPECT_EQ(warm.factor_at(4), 0.5);
  EXPECT_EQ(warm.factor_at(9), 1.0);
  EXPECT_EQ(warm.factor_at(10), cosine.factor_at(0));
  EXPECT_EQ(warm.factor_at(510), cosine.factor_at(500));
  Schedule warm_constant;
  warm_constant.warmup_steps = 4;
  EXPECT_FALSE(warm_constant.is_constant());
  EXPECT_EQ(warm_constant.factor_at(1), 0.5);
  EXPECT_EQ(warm_constant.factor_at(4), 1.0);

  Schedule piecewise;
  piecewise.kind = ScheduleKind::piecewise;
  piecewise.pieces = 3;
  piecewise.piece_steps[1] = 10;
  piecewise.piece_steps[2] = 20;
  piecewise.piece_values[0] = 1.0;
  piecewise.piece_values[1] = 0.3;
  piecewise.piece_values[2] = 0.01;
  EXPECT_EQ(piecewise.factor_at(9), 1.0);
  EXPECT_EQ(piecewise.factor_at(10), 0.3);
  EXPECT_EQ(piecewise.factor_at(19), 0.3);
  EXPECT_EQ(piecewise.factor_at(20), 0.01);
  EXPECT_EQ(piecewise.factor_at(100000), 0.01);
}

// An independent f(t) for the sums below: the documented formula in long double (std::pow,
// std::cos), not the schedule's own binary powering.
long double reference_factor(const Schedule& s, std::int64_t t) {
  long double warm = 1;
  std::int64_t u = t - s.warmup_steps;
  if (u < 0) {
    warm = static_cast<long double>(t + 1) / static_cast<long double>(s.warmup_steps);
    u = 0;
  }
  switch (s.kind) {
    case ScheduleKind::constant:
      return warm;
    case ScheduleKind::step:
      return warm * std::pow(static_cast<long double>(s.factor), u / s.every);
    case ScheduleKind::exponential:
      return warm * std::pow(static_cast<long double>(s.gamma), static_cast<long double>(u));
    case ScheduleKind::cosine: {
      const long double p = static_cast<long double>(std::min(u, s.decay_steps)) / s.decay_steps;
      return warm * (s.floor + (1 - s.floor) * 0.5L * (1 + std::cos(3.14159265358979323846L * p)));
    }
    case ScheduleKind::piecewise: {
      long double value = 1;
      for (int i = 0; i < s.pieces; ++i) {
        if (s.piece_steps[i] <= u) value = s.piece_values[i];
      }
      return warm * value;
    }
  }
  return 0;
}

// The elapsed time η Σ f (/samples/elapsed_time) comes from Schedule::sum_of_factors, a closed
// form per kind: against the term-by-term sum in long double at every n up to 30000 of schedules
// with and without warmup, at the pieces' and warmup's boundaries.
TEST(Schedule, SumOfFactorsMatchesTheTermByTermSum) {
  std::vector<Schedule> schedules;
  Schedule constant;
  schedules.push_back(constant);
  Schedule step;
  step.kind = ScheduleKind::step;
  step.every = 700;
  step.factor = 0.7;
  schedules.push_back(step);
  step.factor = 1.3;  // growing, allowed (factor > 0)
  schedules.push_back(step);
  Schedule exponential;
  exponential.kind = ScheduleKind::exponential;
  exponential.gamma = 0.9995;
  schedules.push_back(exponential);
  exponential.gamma = 1 - 1e-9;  // 1 − γ^n cancels in a naive form
  schedules.push_back(exponential);
  Schedule cosine;
  cosine.kind = ScheduleKind::cosine;
  cosine.decay_steps = 9000;
  cosine.floor = 0.05;
  schedules.push_back(cosine);
  cosine.decay_steps = 1;
  schedules.push_back(cosine);
  Schedule piecewise;
  piecewise.kind = ScheduleKind::piecewise;
  piecewise.pieces = 3;
  piecewise.piece_steps[1] = 1000;
  piecewise.piece_steps[2] = 20000;
  piecewise.piece_values[0] = 2.0;
  piecewise.piece_values[1] = 0.3;
  piecewise.piece_values[2] = 0.0;
  schedules.push_back(piecewise);
  const std::size_t without_warmup = schedules.size();
  for (std::size_t i = 0; i < without_warmup; ++i) {
    Schedule warm = schedules[i];
    warm.warmup_steps = 1234;
    schedules.push_back(warm);
  }
  for (std::size_t i = 0; i < schedules.size(); ++i) {
    const Schedule& s = schedules[i];
    long double sum = 0;
    for (std::int64_t n = 0; n <= 30000; ++n) {
      // Every n near the boundaries (warmup, pieces, periods, decay) and every 97th otherwise.
      if (n < 3 || n % 97 == 0 || (n >= 1230 && n <= 1240) || (n >= 2230 && n <= 2240) ||
          (n >= 10230 && n <= 10240) || n == 30000) {
        const double closed = s.sum_of_factors(n);
        EXPECT_NEAR(closed, static_cast<double>(sum), 1e-13 * static_cast<double>(sum) + 1e-300)
            << "schedule " << i << ", n = " << n;
      }
      sum += reference_factor(s, n);
    }
  }
}

// At 2^50 updates (the run's limit) the closed forms stay exact where a sum cannot be formed:
// the geometric series' limits and the cosine's exact total.
TEST(Schedule, SumOfFactorsAtTheStepLimit) {
  const std::int64_t n = std::int64_t{1} << 50;
  Schedule exponential;
  exponential.kind = ScheduleKind::exponential;
  exponential.gamma = 0.999;
  // γ^n underflows: Σ = 1/(1 − γ), 1 − γ exact in double.
  EXPECT_NEAR(exponential.sum_of_factors(n), 1.0 / (1.0 - 0.999), 1e-15 * 1000);
  Schedule step;
  step.kind = ScheduleKind::step;
  step.every = 1000;
  step.factor = 0.5;
  EXPECT_NEAR(step.sum_of_factors(n), 2000.0, 2000.0 * 1e-15);
  Schedule cosine;
  cosine.kind = ScheduleKind::cosine;
  cosine.decay_steps = std::int64_t{1} << 40;
  cosine.floor = 0.25;
  // Σ_{u<D} [fl + (1 − fl)(1 + cos(πu/D))/2] = fl·D + (1 − fl)(D + 1)/2 (Σ_{u<D} cos(πu/D) = 1),
  // then fl for the remaining n − D updates.
  const double d = 0x1p40;
  const double expected = 0.25 * d + 0.75 * (d + 1) / 2 + 0.25 * (0x1p50 - d);
  EXPECT_NEAR(cosine.sum_of_factors(n), expected, expected * 1e-14);
  Schedule constant;
  EXPECT_EQ(constant.sum_of_factors(n), 0x1p50);
  // A growing factor short of overflow: Σ_{j<31} 1e10^j = 1e300 / (1 − 1e-10) is finite although
  // 1e10^31 is not (the sum once came out NaN: 0 × inf for the empty part-period, and an
  // intermediate a^q).
  Schedule growing;
  growing.kind = ScheduleKind::step;
  growing.every = 1;
  growing.factor = 1e10;
  EXPECT_NEAR(growing.sum_of_factors(31) / (1e300 / (1 - 1e-10)), 1.0, 1e-13);
  growing.kind = ScheduleKind::exponential;
  growing.gamma = 1e10;
  EXPECT_NEAR(growing.sum_of_factors(31) / (1e300 / (1 - 1e-10)), 1.0, 1e-13);
  EXPECT_EQ(growing.sum_of_factors(32), std::numeric_limits<double>::infinity());
}

// Plain SGD with constant rates keeps the constants the host always computed (the golden and
// equivalence tests depend on these bits).
template <class T>
void expect_legacy_constants(double eta, double sigma, double epsilon) {
  RunPlan plan;
  Variant variant;
  variant.learning_rate = eta;
  variant.noise_strength = sigma;
  variant.epsilon = epsilon;
  const StepSchedule schedule = make_step_schedule(plan, variant);
  EXPECT_FALSE(schedule.per_step);
  const StepParams<T> p = step_params_at<T>(schedule, 1);
  const T lr = static_cast<T>(eta), two = static_cast<T>(2.0 * sigma),
          root = static_cast<T>(std::sqrt(2.0 * sigma)), eps = static_cast<T>(epsilon);
  EXPECT_EQ(std::memcmp(&p.learning_rate, &lr, sizeof(T)), 0);
  EXPECT_EQ(std::memcmp(&p.noise.two_sigma, &two, sizeof(T)), 0);
  EXPECT_EQ(std::memcmp(&p.noise.sqrt_two_sigma, &root, sizeof(T)), 0);
  EXPECT_EQ(std::memcmp(&p.noise.epsilon, &eps, sizeof(T)), 0);
}

TEST(StepParams, PlainSgdKeepsTheLegacyConstants) {
  for (const double eta : {0.1, 0.037, 1e-5}) {
    for (const double sigma : {0.0, 0.3, 7.1}) {
      expect_legacy_constants<float>(eta, sigma, 1e-8);
      expect_legacy_constants<double>(eta, sigma, 1e-8);
    }
  }
}

TEST(StepParams, AdamBiasCorrectionAndSchedules) {
  RunPlan plan;
  plan.optimizer = OptimizerKind::adam;
  Variant variant;
  variant.learning_rate = 0.01;
  variant.noise_strength = 0.5;
  variant.beta1 = 0.9;
  variant.beta2 = 0.999;
  variant.learning_rate_schedule.kind = ScheduleKind::exponential;
  variant.learning_rate_schedule.gamma = 0.99;
  variant.noise_schedule.kind = ScheduleKind::step;
  variant.noise_schedule.every = 3;
  variant.noise_schedule.factor = 0.25;
  const StepSchedule schedule = make_step_schedule(plan, variant);
  EXPECT_TRUE(schedule.per_step);
  for (std::int64_t k : {1, 2, 10, 1000}) {
    const StepParams<double> p = step_params_at<double>(schedule, k);
    const double eta = 0.01 * std::pow(0.99, static_cast<double>(k - 1));
    const double sigma = 0.5 * std::pow(0.25, static_cast<double>((k - 1) / 3));
    EXPECT_NEAR(p.learning_rate, eta, static_cast<double>(k + 4) * 0x1p-52 * eta) << k;
    EXPECT_NEAR(p.noise.two_sigma, 2 * sigma, 1e-15 * sigma) << k;
    const double c1 = eta / (1 - std::pow(0.9, static_cast<double>(k)));
    const double c2 = std::sqrt(1 - std::pow(0.999, static_cast<double>(k)));
    EXPECT_NEAR(p.optimizer.step_size, c1, 1e-12 * c1) << k;
    EXPECT_NEAR(p.optimizer.bias2_sqrt, c2, 1e-12 * c2) << k;
  }
  // RMSprop: Adam's operations with β1 = 0 and no bias correction.
  plan.optimizer = OptimizerKind::rmsprop;
  variant = Variant{};
  variant.learning_rate = 0.01;
  variant.rmsprop_decay = 0.95;
  const StepSchedule rms = make_step_schedule(plan, variant);
  EXPECT_FALSE(rms.per_step);
  const StepParams<double> p = step_params_at<double>(rms, 5);
  EXPECT_EQ(p.optimizer.beta1, 0.0);
  EXPECT_EQ(p.optimizer.one_minus_beta1, 1.0);
  EXPECT_EQ(p.optimizer.beta2, 0.95);
  EXPECT_EQ(p.optimizer.step_size, 0.01);
  EXPECT_EQ(p.optimizer.bias2_sqrt, 1.0);
}

// ---- The run-time switch (UpdateRule::any, the CUDA stateful kernel's update) -----------------

// advance_walker<Noise, any> runs each optimizer with the bits of that optimizer's own update rule
// (the CPU lane loops' code), step by step, trackers and non-finite stop included; the components
// of the state the rule does not use stay 0. This is the CUDA stateful kernel's walker update,
// checked here on the CPU (the kernel itself compares with the CPU in test_backend_equivalence).
template <class T, NoiseKind Noise>
void expect_any_matches_rule(OptimizerKind optimizer, bool divergent, bool scheduled) {
  using L = TwoValley<T>;
  constexpr int D = L::dim;
  const L landscape{};
  RunPlan plan;
  plan.optimizer = optimizer;
  Variant variant;
  // Divergent: an η that overflows (Adam's and RMSprop's steps are about η whatever the gradient).
  const double eta = !divergent                                       ? 0.05
                     : update_rule(optimizer) == UpdateRule::adaptive ? 1e308
                                                                      : 30;
  variant.learning_rate = eta;
  variant.noise_strength = 1.0;  // basin changes even with isotropic noise
  variant.epsilon = 1e-8;
  if (scheduled) {
    variant.learning_rate_schedule.kind = ScheduleKind::cosine;
    variant.learning_rate_schedule.warmup_steps = 5;
    variant.learning_rate_schedule.decay_steps = 100;
    variant.learning_rate_schedule.floor = 0.1;
    variant.noise_schedule.kind = ScheduleKind::exponential;
    variant.noise_schedule.gamma = 0.99;
  }
  const StepSchedule schedule = make_step_schedule(plan, variant);
  const PassageTarget<T> target = PassageTarget<T>::make(PassageKind::above, 0, 1, T(10));
  const Vec<T, D> start{{T(0.01), T(5)}};
  std::mt19937_64 random(17);
  std::normal_distribution<double> normal;
  const std::string what = to_string(optimizer) + " " + to_string(Noise) + " " +
                           (sizeof(T) == 4 ? "float" : "double") + " eta " + std::to_string(eta) +
                           (scheduled ? " scheduled" : "");
  dispatch_update_rule(plan, [&]<UpdateRule R>() {
    WalkerState<T, D, R> own = initial_walker<R>(landscape, target, start);
    WalkerState<T, D, UpdateRule::any> any =
        initial_walker<UpdateRule::any>(landscape, target, start);
    constexpr int W = OptimizerState<T, D, R>::width;
    for (std::int64_t step = 1; step <= 300; ++step) {
      const StepParams<T> params = step_params_at<T>(schedule, step);
      Vec<T, D> z;
      for (int i = 0; i < D; ++i) z[i] = static_cast<T>(normal(random));
      advance_walker<Noise, R>(landscape, params, target, z, step, own);
      advance_walker<Noise, UpdateRule::any>(landscape, params, target, z, step, any);
      for (int i = 0; i < D; ++i) {
        ASSERT_EQ(std::memcmp(&own.position[i], &any.position[i], sizeof(T)), 0)
            << what << ", step " << step << ", coordinate " << i;
      }
      for (int j = 0; j < 2 * D; ++j) {
        const T expected = j < W ? own.optimizer.get(j) : T(0);
        const T got = any.optimizer.get(j);
        ASSERT_EQ(std::memcmp(&expected, &got, sizeof(T)), 0)
            << what << ", step " << step << ", state " << j;
      }
      ASSERT_EQ(own.nonfinite_step, any.nonfinite_step) << what << ", step " << step;
      ASSERT_EQ(own.freeze_step, any.freeze_step) << what << ", step " << step;
      ASSERT_EQ(own.first_passage_step, any.first_passage_step) << what << ", step " << step;
      ASSERT_EQ(own.crossings, any.crossings) << what << ", step " << step;
      ASSERT_EQ(own.basin, any.basin) << what << ", step " << step;
      ASSERT_EQ(std::memcmp(&own.y_freeze, &any.y_freeze, sizeof(T)), 0) << what;
    }
    if (divergent) {
      EXPECT_GE(own.nonfinite_step, 0) << what << ": the divergent case should stop the walker";
    } else {
      EXPECT_LT(own.nonfinite_step, 0) << what;
      EXPECT_GT(own.crossings, 0u) << what << ": the case should change basins";
    }
  });
}

TEST(AnyUpdateRule, RunTimeSwitchGivesEachRulesBits) {
  for (const OptimizerKind optimizer :
       {OptimizerKind::sgd, OptimizerKind::momentum, OptimizerKind::nesterov, OptimizerKind::adam,
        OptimizerKind::rmsprop}) {
    for (const bool scheduled : {false, true}) {
      for (const bool divergent : {false, true}) {
        for_each_noise_model([&]<class M>() {
          expect_any_matches_rule<float, M::kind>(optimizer, divergent, scheduled);
          expect_any_matches_rule<double, M::kind>(optimizer, divergent, scheduled);
        });
      }
    }
  }
}

// ---- Config -------------------------------------------------------------------------------------

std::string harmonic_config(const std::string& dynamics, const std::string& extra = "",
                            int walkers = 20000, int steps = 2000,
                            const std::string& precision = "double") {
  return fmt::format(R"(
[run]
walkers = {}
steps = {}
seed = 11
precision = "{}"
[landscape]
kind = "harmonic"
dim = 1
stiffness = [1.0]
[dynamics]
noise = "isotropic"
{}
[init]
positions = [[0.0]]
{}
)",
                     walkers, steps, precision, dynamics, extra);
}

void expect_config_error(const std::string& text, const std::string& needle) {
  try {
    load_config_text(text, "bad.toml");
    ADD_FAILURE() << "accepted, expected an error containing: " << needle;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(OptimizerConfig, DefaultsAndResolvedConfig) {
  const RunPlan sgd =
      load_config_text(harmonic_config("learning_rate = 0.1\nnoise_strength = 1.0"), "sgd.toml");
  EXPECT_EQ(sgd.optimizer, OptimizerKind::sgd);
  EXPECT_EQ(sgd.optimizer_state_width(), 0);
  // A config without the new keys resolves as before (its checkpoints' config hash is unchanged).
  EXPECT_FALSE(sgd.resolved_config.at("dynamics").contains("optimizer"));
  EXPECT_FALSE(sgd.resolved_config.at("dynamics").contains("learning_rate_schedule"));

  const RunPlan adam = load_config_text(
      harmonic_config("learning_rate = 0.1\nnoise_strength = 1.0\noptimizer = \"adam\"\n"
                      "beta2 = 0.99\n[dynamics.learning_rate_schedule]\nkind = \"cosine\"\n"
                      "warmup_steps = 100\nfloor = 0.05"),
      "adam.toml");
  EXPECT_EQ(adam.optimizer, OptimizerKind::adam);
  EXPECT_EQ(adam.optimizer_state_width(), 2);
  const Variant& v = adam.variants.front();
  EXPECT_EQ(v.beta1, 0.9);
  EXPECT_EQ(v.beta2, 0.99);
  EXPECT_EQ(v.learning_rate_schedule.kind, ScheduleKind::cosine);
  EXPECT_EQ(v.learning_rate_schedule.warmup_steps, 100);
  EXPECT_EQ(v.learning_rate_schedule.decay_steps, 1900);  // run.steps − warmup_steps
  EXPECT_EQ(v.learning_rate_schedule.floor, 0.05);
  EXPECT_TRUE(v.noise_schedule.is_constant());
  const auto& dynamics = adam.resolved_config.at("dynamics");
  EXPECT_EQ(dynamics.at("optimizer"), "adam");
  EXPECT_EQ(dynamics.at("beta2"), 0.99);
  EXPECT_EQ(dynamics.at("learning_rate_schedule").at("kind"), "cosine");
  // The resolved config reads back to the same plan (sgdwalk run RUN/summary.json).
  const RunPlan again =
      load_config_text(config_text_from_json(adam.resolved_config, "adam"), "again.toml");
  EXPECT_EQ(again.resolved_config, adam.resolved_config);
}

TEST(OptimizerConfig, SweepsCoefficientsAndScheduleKeys) {
  const RunPlan plan = load_config_text(
      harmonic_config("learning_rate = 0.1\nnoise_strength = 1.0\noptimizer = \"momentum\"\n"
                      "[dynamics.noise_schedule]\nkind = \"step\"\nevery = 100",
                      "[sweep]\nmomentum = [0.0, 0.5, 0.9]\nnoise_schedule.factor = [0.5, 0.1]"),
      "sweep.toml");
  ASSERT_EQ(plan.variant_count(), 6);
  EXPECT_EQ(plan.variants[0].momentum, 0.0);
  EXPECT_EQ(plan.variants[0].noise_schedule.factor, 0.5);
  EXPECT_EQ(plan.variants[1].noise_schedule.factor, 0.1);
  EXPECT_EQ(plan.variants[5].momentum, 0.9);
  EXPECT_EQ(plan.variants[5].noise_schedule.every, 100);
  EXPECT_EQ(plan.variants[5].swept[1].first, "noise_schedule.factor");
}

TEST(OptimizerConfig, BadInputNamesKeyValueAndRange) {
  const std::string base = "learning_rate = 0.1\nnoise_strength = 1.0\n";
  expect_config_error(harmonic_config(base + "optimizer = \"adamw\""),
                      "key 'dynamics.optimizer': value \"adamw\" is not allowed");
  expect_config_error(harmonic_config(base + "momentum = 0.9"),
                      "key 'dynamics.momentum': applies to optimizer momentum and nesterov only");
  expect_config_error(harmonic_config(base + "optimizer = \"momentum\"\nmomentum = 1.0"),
                      "key 'dynamics.momentum': value 1 is out of range; allowed: >= 0 and < 1");
  expect_config_error(harmonic_config(base + "optimizer = \"adam\"\nrmsprop_decay = 0.9"),
                      "applies to optimizer rmsprop only");
  expect_config_error(harmonic_config(base + "optimizer = \"adam\"\noptimizer_epsilon = 0"),
                      "key 'dynamics.optimizer_epsilon': value 0 is out of range");
  expect_config_error(
      harmonic_config(base + "[dynamics.learning_rate_schedule]\nkind = \"step\"\ngamma = 0.9"),
      "key 'dynamics.learning_rate_schedule.gamma': applies to kind \"exponential\" only");
  expect_config_error(harmonic_config(base + "[dynamics.learning_rate_schedule]\nkind = \"decay\""),
                      "key 'dynamics.learning_rate_schedule.kind': value \"decay\" is not allowed");
  expect_config_error(
      harmonic_config(base + "[dynamics.noise_schedule]\nkind = \"piecewise\"\nsteps = [5, 10]\n"
                             "values = [1, 0.5]"),
      "key 'dynamics.noise_schedule.steps[0]': value 5 is out of range");
  expect_config_error(
      harmonic_config(base + "[dynamics.noise_schedule]\nkind = \"piecewise\"\nsteps = [0, 10]\n"
                             "values = [1]"),
      "key 'dynamics.noise_schedule.values': has 1 value(s) for 2 step(s)");
  expect_config_error(
      harmonic_config(base + "[dynamics.noise_schedule]\nkind = \"piecewise\"\nsteps = [0]"),
      "needs steps and values");
  expect_config_error(harmonic_config(base + "[dynamics.learning_rate_schedule]\nkind = \"step\"\n"
                                             "every = 5000"),
                      "key 'dynamics.learning_rate_schedule.every'");
  expect_config_error(harmonic_config(base + "[dynamics.learning_rate_schedule]\nkind = \"step\"",
                                      "[sweep]\nlearning_rate_schedule.every = [10, 2.5]"),
                      "key 'sweep.learning_rate_schedule.every[1]': value 2.5 is out of range");
  expect_config_error(harmonic_config(base + "[dynamics.learning_rate_schedule]\nkind = \"step\"",
                                      "[sweep]\nlearning_rate_schedule.gama = [0.9]"),
                      "cannot sweep this schedule key");
}

// ---- Exact stationary variances on the 1-D quadratic
// ----------------------------------------------

double final_variance(const RunPlan& plan) {
  auto backend = make_cpu_backend(0);
  const RunOutcome outcome = testing::execute_all(plan, *backend, {});
  const auto& x = outcome.data.walkers.position;
  double sum = 0, sum2 = 0;
  for (const double value : x) {
    sum += value;
    sum2 += value * value;
  }
  const auto n = static_cast<double>(x.size());
  const double mean = sum / n;
  return (sum2 - sum * mean) / (n - 1);
}

// L = k x²/2, g = kx + ξ with Var ξ = C = 2σ (isotropic noise). The discrete-time stationary
// variances (docs/MODEL.md, section 3): SGD ηC/(k(2 − ηk)); heavy ball
// (1 + μ)ηC/[(1 − μ)k(2(1 + μ) − ηk)]. Tolerance: 5 standard errors of a Gaussian sample
// variance, var·sqrt(2/(n − 1)) (the walkers are independent; after 2000 steps the start is
// forgotten to 1e-40 at these rates).
struct VarianceCase {
  std::string optimizer;
  double mu;
  double eta;
  double k;
  std::string precision;
};

class QuadraticVariance : public ::testing::TestWithParam<VarianceCase> {};

TEST_P(QuadraticVariance, MatchesTheDiscreteTimeResult) {
  const VarianceCase& c = GetParam();
  const double sigma = 0.5, C = 2 * sigma;
  const int walkers = 20000;
  std::string dynamics = fmt::format("learning_rate = {}\nnoise_strength = {}\noptimizer = \"{}\"",
                                     c.eta, sigma, c.optimizer);
  if (c.optimizer == "momentum") dynamics += fmt::format("\nmomentum = {}", c.mu);
  std::string text = harmonic_config(dynamics, "", walkers, 2000, c.precision);
  text.replace(text.find("stiffness = [1.0]"), 17, fmt::format("stiffness = [{}]", c.k));
  const RunPlan plan = load_config_text(text, "variance.toml");
  const double mu = c.optimizer == "momentum" ? c.mu : 0.0;
  const double expected = (1 + mu) * c.eta * C / ((1 - mu) * c.k * (2 * (1 + mu) - c.eta * c.k));
  const double se = expected * std::sqrt(2.0 / (walkers - 1));
  EXPECT_NEAR(final_variance(plan), expected, 5 * se);
  // The continuous-time value ηC/(2k)·1/(1−μ) is distinguishable at these rates.
  const double continuous = c.eta * C / (2 * c.k * (1 - mu));
  EXPECT_GT(std::fabs(expected - continuous), 5 * se);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, QuadraticVariance,
                         ::testing::Values(VarianceCase{"sgd", 0.0, 0.2, 2.0, "double"},
                                           VarianceCase{"sgd", 0.0, 0.2, 2.0, "float"},
                                           VarianceCase{"momentum", 0.5, 0.2, 2.0, "double"},
                                           VarianceCase{"momentum", 0.9, 0.2, 1.5, "double"},
                                           VarianceCase{"momentum", 0.5, 0.2, 2.0, "float"}),
                         [](const auto& info) {
                           return info.param.optimizer + "_mu" +
                                  std::to_string(static_cast<int>(info.param.mu * 10)) + "_" +
                                  info.param.precision;
                         });

// ---- The optimizer state through segments, batches, threads, replay and checkpoints -------------

class OptimizerRun : public ::testing::TestWithParam<testing::PhysicsCase> {};

TEST_P(OptimizerRun, CpuResultsDoNotDependOnSplittingOrThreads) {
  const RunPlan plan = testing::make_test_plan(GetParam());
  auto one = make_cpu_backend(1);
  auto two = make_cpu_backend(2);
  const RunData reference = testing::run_plan(*one, plan);
  EXPECT_EQ(reference.walkers.optimizer_state.size(),
            static_cast<std::size_t>(plan.total_walkers() * plan.optimizer_state_width()));
  const std::int64_t total = plan.total_walkers();
  const std::vector<std::int64_t> walker_cuts = {0, 1, 100, 173, 190, 346, 400, 401, total};
  const std::vector<std::int64_t> step_cuts = {0, 1, 2, 3, 37, 38, 150, 151, 299, plan.steps};
  testing::expect_identical(reference, testing::run_plan(*two, plan), "two threads");
  testing::expect_identical(reference, testing::run_plan(*two, plan, walker_cuts, step_cuts),
                            "batches and segments");
}

TEST_P(OptimizerRun, ReplayReproducesTheRun) {
  const RunPlan plan = testing::make_test_plan(GetParam());
  auto cpu = make_cpu_backend(2);
  const RunData data = testing::run_plan(*cpu, plan);
  const int D = plan.dim, W = plan.optimizer_state_width();
  for (const std::int64_t g : {std::int64_t{0}, std::int64_t{200}, std::int64_t{519}}) {
    std::ostringstream csv;
    replay_walker(plan, g / plan.walkers_per_variant, g % plan.walkers_per_variant, plan.steps,
                  csv);
    std::string line, last;
    std::istringstream lines(csv.str());
    while (std::getline(lines, line)) last = line;
    std::vector<double> fields;
    std::istringstream row(last);
    // max_digits10 digits of the walker precision: parsed back in that precision, exact.
    for (std::string field; std::getline(row, field, ',');) {
      fields.push_back(plan.precision == Precision::f32 ? static_cast<double>(std::stof(field))
                                                        : std::stod(field));
    }
    ASSERT_EQ(fields.size(), static_cast<std::size_t>(1 + D + 6 + W)) << last;
    const auto k = static_cast<std::size_t>(g);
    for (int i = 0; i < D; ++i) {
      EXPECT_EQ(
          fields[1 + static_cast<std::size_t>(i)],
          data.walkers.position[k * static_cast<std::size_t>(D) + static_cast<std::size_t>(i)])
          << "walker " << g << " coordinate " << i;
    }
    for (int j = 0; j < W; ++j) {
      EXPECT_EQ(fields[static_cast<std::size_t>(1 + D + 6 + j)],
                data.walkers
                    .optimizer_state[k * static_cast<std::size_t>(W) + static_cast<std::size_t>(j)])
          << "walker " << g << " state " << j;
    }
  }
}

std::vector<testing::PhysicsCase> cpu_optimizer_cases() {
  std::vector<testing::PhysicsCase> cases;
  for (const auto& c : testing::optimizer_physics_cases()) {
    if (c.noise == NoiseKind::hessian_squared) continue;  // the same update code as hessian
    cases.push_back(c);
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Cpu, OptimizerRun, ::testing::ValuesIn(cpu_optimizer_cases()),
                         [](const auto& info) { return info.param.name(); });

/// A run with momentum or Adam and schedules, stopped in its second batch (as test_checkpoint's).
std::string checkpoint_config(const std::string& optimizer) {
  return fmt::format(R"(
[run]
walkers = 23
steps = 120
seed = 4
precision = "float"
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
learning_rate = 0.05
noise_strength = 0.3
optimizer = "{}"
[dynamics.learning_rate_schedule]
kind = "cosine"
warmup_steps = 7
floor = 0.2
[dynamics.noise_schedule]
kind = "exponential"
gamma = 0.99
[observables]
sample_every = 10
[sweep]
learning_rate = [0.05, 0.02]
)",
                     optimizer);
}

// Replay's coordinate names: x, y, z, and q0, q1, ... for an out-of-tree landscape of more than 3
// dimensions (the state columns v_q5, m_q5, ... are then distinct: they once read past x, y, z).
TEST(Replay, CoordinateNamesAreDistinctInEveryDimension) {
  EXPECT_EQ(replay_coordinate_name(0, 1), "x");
  EXPECT_EQ(replay_coordinate_name(2, 3), "z");
  EXPECT_EQ(replay_coordinate_name(0, 4), "q0");
  EXPECT_EQ(replay_coordinate_name(15, 16), "q15");
  for (int dim = 1; dim <= 16; ++dim) {
    std::set<std::string> names;
    for (int i = 0; i < dim; ++i) names.insert(replay_coordinate_name(i, dim));
    EXPECT_EQ(names.size(), static_cast<std::size_t>(dim)) << dim;
  }
}

TEST(OptimizerCheckpoint, RoundTripKeepsTheStateAndContinuesToTheSameBits) {
  for (const std::string optimizer : {"momentum", "adam"}) {
    SCOPED_TRACE(optimizer);
    const RunPlan plan = load_config_text(checkpoint_config(optimizer), "checkpoint.toml");
    auto backend = make_cpu_backend(2);
    ExecuteOptions options;
    options.batch_walkers = 17;
    options.segment_steps = 11;
    int segments = 0;
    options.on_segment = [&](const RunProgress&, const SegmentData&) { return ++segments < 14; };
    const RunOutcome stopped = execute(plan, *backend, options);
    ASSERT_FALSE(stopped.complete);
    ASSERT_EQ(stopped.progress.step, 33);
    const auto width = static_cast<std::size_t>(plan.optimizer_state_width());
    ASSERT_GT(width, 0u);

    const std::filesystem::path dir = testing::scratch_dir("optimizers", "checkpoint_" + optimizer);
    const std::string path = (dir / "checkpoint.bin").string();
    write_checkpoint(path, plan, stopped.progress, stopped.data, 1.0, 1);
    const Checkpoint back = read_checkpoint(path, &plan);
    EXPECT_EQ(back.data.walkers.state_width, static_cast<int>(width));
    const std::size_t at = stopped.data.walkers.at(stopped.progress.walker_begin);
    const auto n =
        static_cast<std::size_t>(stopped.progress.walker_end - stopped.progress.walker_begin);
    ASSERT_EQ(back.data.walkers.optimizer_state.size(), n * width);
    bool nonzero = false;
    for (std::size_t i = 0; i < n * width; ++i) {
      EXPECT_EQ(back.data.walkers.optimizer_state[i],
                stopped.data.walkers.optimizer_state[at * width + i]);
      nonzero = nonzero || back.data.walkers.optimizer_state[i] != 0;
    }
    EXPECT_TRUE(nonzero) << "the state after 33 steps should not be all zero";

    auto one = make_cpu_backend(1);
    ExecuteOptions other;
    other.batch_walkers = 5;
    const RunOutcome continued =
        testing::execute_from_all(plan, *one, other, back.data, back.progress);
    const RunOutcome reference = testing::execute_all(plan, *one, {});
    ASSERT_TRUE(continued.complete);
    EXPECT_TRUE(continued.data.tallies == reference.data.tallies);
    EXPECT_EQ(continued.data.observables.sample_flat, reference.data.observables.sample_flat);
    const std::size_t from = 17;
    EXPECT_TRUE(std::equal(
        continued.data.walkers.optimizer_state.begin() + static_cast<std::ptrdiff_t>(from * width),
        continued.data.walkers.optimizer_state.end(),
        reference.data.walkers.optimizer_state.begin() +
            static_cast<std::ptrdiff_t>(from * width)));
    EXPECT_TRUE(std::equal(continued.data.walkers.position.begin() + 17 * 2,
                           continued.data.walkers.position.end(),
                           reference.data.walkers.position.begin() + 17 * 2));

    // A plan with another optimizer state width does not take this checkpoint.
    const RunPlan sgd = load_config_text(
        checkpoint_config(optimizer).replace(checkpoint_config(optimizer).find("optimizer = "),
                                             13 + optimizer.size() + 1, ""),
        "sgd.toml");
    EXPECT_THROW(read_checkpoint(path, &sgd), CheckpointError);
  }
}

// Version 4 (before optimizers) is version 5 without the state width: it still reads, as SGD.
TEST(OptimizerCheckpoint, VersionFourReadsAsPlainSgd) {
  std::string text = checkpoint_config("momentum");
  text.replace(text.find("optimizer = \"momentum\""), 22, "");
  const RunPlan plan = load_config_text(text, "v4.toml");
  auto backend = make_cpu_backend(2);
  ExecuteOptions options;
  options.batch_walkers = 17;
  options.segment_steps = 11;
  int segments = 0;
  options.on_segment = [&](const RunProgress&, const SegmentData&) { return ++segments < 14; };
  const RunOutcome stopped = execute(plan, *backend, options);
  const std::filesystem::path dir = testing::scratch_dir("optimizers", "version4");
  const std::string path = (dir / "checkpoint.bin").string();
  write_checkpoint(path, plan, stopped.progress, stopped.data, 1.0, 1);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // Header: magic, version, byte order, hash, seed, six sizes, slots; then the progress (8
  // numbers in version 4, the 9th is the width, 0 for SGD); the trailer is the FNV-1a of the rest.
  const std::size_t width_at = 8 + 4 + 4 + 8 + 8 + 6 * 8 + 8 * plan.histograms.size() + 8 * 8;
  std::int64_t width = -1;
  std::memcpy(&width, bytes.data() + width_at, 8);
  ASSERT_EQ(width, 0);
  bytes.erase(width_at, 8);
  const std::uint32_t four = 4;
  std::memcpy(bytes.data() + 8, &four, 4);
  const std::uint64_t checksum = fnv1a64(bytes.data(), bytes.size() - 8);
  std::memcpy(bytes.data() + bytes.size() - 8, &checksum, 8);
  const std::string old_path = (dir / "version4.bin").string();
  {
    std::ofstream out(old_path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  const Checkpoint back = read_checkpoint(old_path, &plan);
  EXPECT_EQ(back.data.walkers.state_width, 0);
  EXPECT_EQ(back.data.walkers.position, read_checkpoint(path, &plan).data.walkers.position);
}

// Per-walker output of a run with an optimizer: the walker file's records and results.h5's
// /walkers/optimizer_state (its own netCDF dimension) are written.
TEST(OptimizerOutput, PerWalkerRunWritesTheState) {
  const std::filesystem::path dir = testing::scratch_dir("optimizers", "per_walker");
  const std::string config = (dir / "adam.toml").string();
  std::ofstream(config) << harmonic_config(
      "learning_rate = 0.1\nnoise_strength = 1.0\noptimizer = \"adam\"",
      "[observables]\nper_walker = true", 50, 40);
  const testing::CommandResult result =
      testing::run_cli("run " + config + " --out " + (dir / "out").string() + " -q");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "out" / "results.h5"));
}

// /parameters holds the coefficients the optimizer uses, per variant, swept or not (a swept one
// was only in /variants).
TEST(OptimizerOutput, ParametersHoldTheOptimizersCoefficients) {
  const std::filesystem::path dir = testing::scratch_dir("optimizers", "parameters");
  const std::string config = (dir / "momentum.toml").string();
  std::ofstream(config) << harmonic_config(
      "learning_rate = 0.1\nnoise_strength = 1.0\noptimizer = \"nesterov\"",
      "[sweep]\nmomentum = [0.5, 0.9]", 20, 10);
  const testing::CommandResult result =
      testing::run_cli("run " + config + " --out " + (dir / "out").string() + " -q");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto items = testing::h5_items(dir / "out" / "results.h5");
  ASSERT_EQ(items.count("/parameters/momentum"), 1u);
  const std::string& bytes = items.at("/parameters/momentum").bytes;
  ASSERT_EQ(bytes.size(), 2 * sizeof(double));
  double values[2];
  std::memcpy(values, bytes.data(), sizeof values);
  EXPECT_EQ(values[0], 0.5);
  EXPECT_EQ(values[1], 0.9);
  EXPECT_EQ(items.count("/parameters/beta1"), 0u);  // not Adam's
}

// ---- α-stable noise under a learning-rate schedule ---------------------------------------------

// A schedule whose factor is always 1 (piecewise with equal values, step with factor 1) runs the
// per-step path (the CPU's step_params_at every step, the CUDA stateful kernel's step table) and
// must give the unscheduled run's bits: the jump scale c_k of f = 1 is the base scale itself.
TEST(AlphaStableSchedule, ConstantValuedScheduleKeepsTheUnscheduledBits) {
  for (Precision precision : {Precision::f32, Precision::f64}) {
    for (OptimizerKind optimizer : {OptimizerKind::sgd, OptimizerKind::momentum}) {
      const testing::PhysicsCase c{
          "two_valley", 2,    NoiseKind::hessian, precision, NoiseDistribution::alpha_stable,
          optimizer,    false};
      SCOPED_TRACE(c.name());
      const RunPlan plain = testing::make_test_plan(c);
      RunPlan scheduled = plain;
      for (std::size_t v = 0; v < scheduled.variants.size(); ++v) {
        Schedule& lr = scheduled.variants[v].learning_rate_schedule;
        if (v % 2 == 0) {
          lr.kind = ScheduleKind::piecewise;
          lr.pieces = 2;
          lr.piece_steps[1] = 37;
          lr.piece_values[0] = lr.piece_values[1] = 1.0;
        } else {
          lr.kind = ScheduleKind::step;
          lr.every = 7;
          lr.factor = 1.0;
        }
        ASSERT_TRUE(make_step_schedule(scheduled, scheduled.variants[v]).per_step);
      }
      auto cpu = make_cpu_backend(2);
      testing::expect_identical(testing::run_plan(*cpu, plain), testing::run_plan(*cpu, scheduled),
                                "constant-valued schedule");
    }
  }
}

/// The two-sample Kolmogorov–Smirnov distance between the samples a and b.
double ks_distance(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    d = std::max(d, std::fabs(static_cast<double>(i) / static_cast<double>(a.size()) -
                              static_cast<double>(j) / static_cast<double>(b.size())));
  }
  return d;
}

// η → η/4 at update N + 1 (piecewise). On an (almost) flat quadratic a walker's displacement in
// update k is the jump η_k ξ_k = η_k^{1/α} √(η_k σ) S (isotropic noise, docs/MODEL.md), so the
// displacements of update N + 1 are those of update N times r = 4^{−(1/α + 1/2)} in distribution
// (independent draws: different words of each walker's stream). Checked with the two-sample KS
// test on |Δθ_N|·r against |Δθ_{N+1}| (critical distance 1.95·√(2/n): p ≈ 0.001). A jump scale
// left at the base η (the factor c computed once per variant) would give the ratio 1/4 (η_k alone)
// instead of r ≈ 0.198 at α = 1.5; that alternative is asserted to fail the same test, so the test
// tells the two apart.
TEST(AlphaStableSchedule, StepScheduleMovesTheJumpScaleWithTheLearningRate) {
  const int walkers = 20000, n_change = 3;
  const double alpha = 1.5, eta = 0.1, sigma = 0.5;
  std::string text =
      harmonic_config(fmt::format("learning_rate = {}\nnoise_strength = {}\n"
                                  "noise_distribution = \"alpha_stable\"\nalpha = {}\n"
                                  "[dynamics.learning_rate_schedule]\nkind = \"piecewise\"\n"
                                  "steps = [0, {}]\nvalues = [1.0, 0.25]",
                                  eta, sigma, alpha, n_change),
                      "", walkers, n_change + 1);
  // Curvature 1e-12: the drift η k θ is below 1e-9 of a typical jump.
  text.replace(text.find("stiffness = [1.0]"), 17, "stiffness = [1e-12]");
  const RunPlan plan = load_config_text(text, "alpha_schedule.toml");
  auto cpu = make_cpu_backend(2);
  RunData data = testing::initialized_data(plan);
  std::vector<std::vector<double>> positions;
  for (std::int64_t step : {n_change - 1, n_change, n_change + 1}) {
    const std::int64_t from = positions.empty() ? 0 : step - 1;
    cpu->advance(plan, 0, walkers, from, step, data);
    positions.push_back(data.walkers.position);
  }
  const double r = std::pow(4.0, -(1.0 / alpha + 0.5));
  std::vector<double> before, after, before_fixed_c;
  for (std::size_t w = 0; w < static_cast<std::size_t>(walkers); ++w) {
    const double d_before = std::fabs(positions[1][w] - positions[0][w]);
    before.push_back(d_before * r);
    before_fixed_c.push_back(d_before * 0.25);
    after.push_back(std::fabs(positions[2][w] - positions[1][w]));
  }
  const double critical = 1.95 * std::sqrt(2.0 / walkers);
  EXPECT_LT(ks_distance(before, after), critical);
  EXPECT_GT(ks_distance(before_fixed_c, after), critical);
  // Up to the change the run is the unscheduled one, bit for bit.
  RunPlan plain = plan;
  plain.variants[0].learning_rate_schedule = Schedule{};
  RunData unscheduled = testing::initialized_data(plain);
  cpu->advance(plain, 0, walkers, 0, n_change, unscheduled);
  EXPECT_TRUE(testing::same_bits(unscheduled.walkers.position, positions[1]));
}

}  // namespace
}  // namespace sgdwalk
