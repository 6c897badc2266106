// Forward flux sampling test configs shared by test_ffs.cpp and test_ffs_backends.cpp (the
// backends' equality tests, in a binary of their own that the GPU kit carries: see
// scripts/gpu-bundle.sh). Header-only.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backend/plan.hpp"
#include "rare_events/ffs_driver.hpp"

namespace sgdwalk::testing {

/// A double_well FFS config: escape from the sharp well over the barrier at 0 to x ≥ 0.2, with
/// Δ_S = depth/β (isotropic noise: the Arrhenius exponent is β).
inline std::string double_well_config(double beta, double eta, std::int64_t trials, int replicas,
                                      const std::string& extra = "") {
  const double delta_s = 1.0 / beta;
  const double ms = -std::sqrt(2.0 / 1.5), well_sd = std::sqrt(delta_s / 1.5);
  return fmt::format(R"(
[run]
walkers = 256
steps = 10000
seed = 11
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
learning_rate = {}
temperature = {}
[init]
positions = [{}]
[rare_event]
method = "ffs"
order_parameter = "x"
lambda_A = {}
lambda_0 = {}
lambda_B = 0.2
crossing_probability = 0.25
trials = {}
replicas = {}
equilibration_steps = 2000
{}
)",
                     eta, delta_s, ms, ms + 0.5 * well_sd, ms + 1.5 * well_sd, trials, replicas,
                     extra);
}

/// `text` with `lines` added to [dynamics] (after its noise line) and `tables` (schedule tables,
/// e.g. [dynamics.learning_rate_schedule]) before [init].
inline std::string with_dynamics(std::string text, const std::string& lines,
                                 const std::string& tables = "") {
  const std::string noise_line = "noise = \"isotropic\"";
  text.replace(text.find(noise_line), noise_line.size(), noise_line + "\n" + lines);
  if (!tables.empty()) text.replace(text.find("[init]"), 6, tables + "\n[init]");
  return text;
}

/// The optimizers (and a schedule) the FFS optimizer tests run: [dynamics] lines and tables.
struct OptimizerCase {
  std::string name, lines, tables;
};
inline std::vector<OptimizerCase> optimizer_cases() {
  return {{"momentum", "optimizer = \"momentum\"\nmomentum = 0.5", ""},
          {"nesterov", "optimizer = \"nesterov\"\nmomentum = 0.3", ""},
          {"adam", "optimizer = \"adam\"\nbeta1 = 0.8\nbeta2 = 0.95\noptimizer_epsilon = 0.5", ""},
          {"rmsprop", "optimizer = \"rmsprop\"\nrmsprop_decay = 0.9\noptimizer_epsilon = 0.5", ""},
          {"momentum_scheduled", "optimizer = \"momentum\"\nmomentum = 0.5",
           "[dynamics.learning_rate_schedule]\nkind = \"step\"\nevery = 3000\nfactor = 0.8\n"
           "warmup_steps = 100\n[dynamics.noise_schedule]\nkind = \"cosine\"\n"
           "decay_steps = 5000\nfloor = 0.5"}};
}

/// A smaller double_well FFS run for the optimizer cases (64 flux walkers × 5000 steps, one
/// replica of 200 trials per stage at β = 10): enough crossings and stages to carry optimizer
/// states through every stage, at a fraction of the cost.
inline std::string small_config(const OptimizerCase& c) {
  std::string text = double_well_config(10, 0.01, 200, 1);
  text.replace(text.find("walkers = 256"), 13, "walkers = 64");
  text.replace(text.find("steps = 10000"), 13, "steps = 5000");
  return with_dynamics(text, c.lines, c.tables);
}

/// Every kept interface state of two results, field by field (the same bits); `what` names the
/// comparison in failures.
inline void expect_same_states(const FfsResult& a, const FfsResult& b,
                               const std::string& what = "") {
  ASSERT_EQ(a.variants.size(), b.variants.size()) << what;
  for (std::size_t v = 0; v < a.variants.size(); ++v) {
    ASSERT_EQ(a.variants[v].replicas.size(), b.variants[v].replicas.size()) << what;
    for (std::size_t r = 0; r < a.variants[v].replicas.size(); ++r) {
      const auto& x = a.variants[v].replicas[r].interface_states;
      const auto& y = b.variants[v].replicas[r].interface_states;
      ASSERT_EQ(x.size(), y.size()) << what << ": variant " << v << " replica " << r;
      for (std::size_t i = 0; i < x.size(); ++i) {
        SCOPED_TRACE(fmt::format("{}: variant {}, replica {}, interface {}", what, v, r, i));
        EXPECT_EQ(x[i].states.position, y[i].states.position);
        EXPECT_EQ(x[i].states.optimizer_state, y[i].states.optimizer_state);
        EXPECT_EQ(x[i].states.y_freeze, y[i].states.y_freeze);
        EXPECT_EQ(x[i].states.freeze_step, y[i].states.freeze_step);
        EXPECT_EQ(x[i].states.first_passage_step, y[i].states.first_passage_step);
        EXPECT_EQ(x[i].states.nonfinite_step, y[i].states.nonfinite_step);
        EXPECT_EQ(x[i].states.basin, y[i].states.basin);
        EXPECT_EQ(x[i].states.crossings, y[i].states.crossings);
        EXPECT_EQ(x[i].path_step, y[i].path_step);
        EXPECT_EQ(x[i].ancestor, y[i].ancestor);
        EXPECT_EQ(x[i].parent, y[i].parent);
      }
    }
  }
}

/// The result as text without the timing (NaN entries compare equal as text, not as numbers).
inline std::string counts(const RunPlan& plan, const FfsResult& result) {
  nlohmann::json j = ffs_result_json(plan, result);
  j.erase("wall_seconds");
  return j.dump();
}

}  // namespace sgdwalk::testing
