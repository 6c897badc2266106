// Forward flux sampling on every backend of this build gives the CPU backend's bits: plain SGD in
// double and float, every optimizer and a scheduled run (the CUDA kernels run UpdateRule::any and
// evaluate the schedules on the device). A binary of its own, free of paths of the build machine,
// so that the GPU kit (scripts/gpu-bundle.sh) carries it; the CUDA cases skip visibly without a
// device (fail with SGDWALK_REQUIRE_GPU=1).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.hpp"
#include "config/config.hpp"
#include "rare_events/ffs_driver.hpp"
#include "test_ffs_configs.hpp"
#include "test_support.hpp"

namespace sgdwalk::testing {
namespace {

class FfsBackends : public ::testing::TestWithParam<std::string> {};

TEST_P(FfsBackends, EveryBackendGivesTheCpuBackendsBits) {
  // A sweep of two variants (one stage call runs the trials of both), double and float.
  for (const char* precision : {"double", "float"}) {
    std::string text =
        double_well_config(10, 0.01, 200, 2, "[sweep]\nlearning_rate = [0.01, 0.012]\n");
    text.replace(text.find("seed = 11"), 9,
                 fmt::format("seed = 11\nprecision = \"{}\"", precision));
    const RunPlan plan = load_config_text(text, "<test>");
    SGDWALK_BACKEND_OR_SKIP(backend, GetParam());
    auto cpu = make_cpu_backend(1);
    EXPECT_EQ(counts(plan, run_ffs(plan, *backend)), counts(plan, run_ffs(plan, *cpu)))
        << precision;
  }
}

TEST_P(FfsBackends, OptimizersAndSchedulesGiveTheCpuBackendsBits) {
  // Every optimizer and a scheduled momentum run, double and float (the CUDA kernels run
  // UpdateRule::any and evaluate the schedule on the device: the CPU backend's bits).
  SGDWALK_BACKEND_OR_SKIP(backend, GetParam());
  if (GetParam() == "cpu") GTEST_SKIP() << "the CPU backend's own determinism is tested above";
  auto cpu = make_cpu_backend(1);
  for (const OptimizerCase& c : optimizer_cases()) {
    for (const char* precision : {"double", "float"}) {
      std::string text = small_config(c);
      text.replace(text.find("[rare_event]"), 12,
                   "[sweep]\nlearning_rate = [0.01, 0.012]\n[rare_event]");
      text.replace(text.find("seed = 11"), 9,
                   fmt::format("seed = 11\nprecision = \"{}\"", precision));
      const RunPlan plan = load_config_text(text, "<test>");
      EXPECT_EQ(counts(plan, run_ffs(plan, *backend)), counts(plan, run_ffs(plan, *cpu)))
          << c.name << ", " << precision;
    }
  }
}

/// The FFS configs beyond the 1-D isotropic `x` runs above: the 2-D two-valley landscape with
/// hessian noise (basin_distance; and progress, λ = y, with given interfaces), the energy order
/// parameter of a momentum walker (its +inf interface B), the negated coordinate -x, the loss and
/// the hessian noise on the double well; each small (one replica, tens of flux walkers), each with
/// stages that reach.
std::vector<std::pair<std::string, std::string>> order_and_noise_cases() {
  const std::string two_valley = R"(
[run]
walkers = 48
steps = 6000
seed = 2607
precision = "{precision}"
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
dt = 0.0005
temperature = 0.0008
[init]
positions = [[-0.09285714285714286, 5.0]]
[sweep]
temperature = [0.0008, 0.001]
)";
  const std::string double_well = R"(
[run]
walkers = 48
steps = 4000
seed = 29
precision = "{precision}"
[landscape]
kind = "double_well"
[dynamics]
noise = "{noise}"
{optimizer}
learning_rate = 0.05
noise_strength = {sigma}
[init]
positions = [-1.1547005383792515]
)";
  const auto fill = [](std::string text, const std::map<std::string, std::string>& values) {
    for (const auto& [key, value] : values) {
      const std::string slot = "{" + key + "}";
      for (std::size_t at = text.find(slot); at != std::string::npos; at = text.find(slot))
        text.replace(at, slot.size(), value);
    }
    return text;
  };
  std::vector<std::pair<std::string, std::string>> cases;
  cases.emplace_back("two_valley basin_distance", two_valley + R"([rare_event]
method = "ffs"
order_parameter = "basin_distance"
lambda_A = -0.085
lambda_0 = -0.075
lambda_B = 0.0
trials = 100
replicas = 1
)");
  // y drifts up from 5 (~1e-5 per step) against noise of its own size near A: a short climb in
  // `progress` in which trials also fall back (the two variants' counts differ).
  cases.emplace_back("two_valley progress", two_valley + R"([rare_event]
method = "ffs"
order_parameter = "progress"
lambda_A = 5.0001
interfaces = [5.0002, 5.0004, 5.0008, 5.0016]
trials = 60
replicas = 1
)");
  // Heavy ball at β_eff = (1 − μ)/(η σ) = 8: the energy's interfaces up to B (+inf, appended).
  cases.emplace_back("double_well energy momentum",
                     fill(double_well, {{"noise", "isotropic"},
                                        {"optimizer", "optimizer = \"momentum\"\nmomentum = 0.5"},
                                        {"sigma", "1.25"}}) +
                         R"([rare_event]
method = "ffs"
order_parameter = "energy"
lambda_A = -0.875
lambda_0 = -0.7
crossing_probability = 0.2
trials = 100
replicas = 1
)");
  // Up the sharp well's outer wall (x more negative): the negated coordinate.
  cases.emplace_back(
      "double_well -x",
      fill(double_well, {{"noise", "isotropic"}, {"optimizer", ""}, {"sigma", "4"}}) +
          R"([rare_event]
method = "ffs"
order_parameter = "-x"
lambda_A = 1.2
interfaces = [1.25, 1.3, 1.36, 1.42]
trials = 100
replicas = 1
)");
  cases.emplace_back("double_well loss hessian",
                     fill(double_well, {{"noise", "hessian"}, {"optimizer", ""}, {"sigma", "4"}}) +
                         R"([rare_event]
method = "ffs"
order_parameter = "loss"
lambda_A = -0.8
interfaces = [-0.7, -0.5, -0.3, 0.0]
trials = 100
replicas = 1
)");
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, text] : cases) {
    for (const char* precision : {"double", "float"}) {
      out.emplace_back(name + ", " + precision, fill(text, {{"precision", precision}}));
    }
  }
  return out;
}

TEST_P(FfsBackends, OrderParametersNoiseModelsAndTwoDimensionsGiveTheCpuBackendsBits) {
  // Counts, rates and every kept interface state (positions, optimizer state, trackers, path
  // steps, ancestry) equal the CPU backend's. On the CPU this checks that every case is valid
  // and that its trials reach the next interface (so that the comparison compares stages).
  SGDWALK_BACKEND_OR_SKIP(backend, GetParam());
  auto cpu = make_cpu_backend(1);
  for (const auto& [name, text] : order_and_noise_cases()) {
    const RunPlan plan = load_config_text(text, "<test>");
    const FfsResult expected = run_ffs(plan, *cpu);
    for (const auto& variant : expected.variants) {
      const FfsReplica& replica = variant.replicas.at(0);
      std::printf("%s: flux crossings %lld, stages %zu:", name.c_str(),
                  static_cast<long long>(replica.flux_crossings), replica.stages.size());
      for (const auto& st : replica.stages)
        std::printf(" %lld/%lld", static_cast<long long>(st.reached),
                    static_cast<long long>(st.trials));
      std::printf("\n");
      EXPECT_GE(replica.stages.size(), 2u) << name;
      if (replica.stages.size() < 2) continue;
      EXPECT_GT(replica.stages.at(0).reached, 0) << name;
      EXPECT_GT(replica.stages.at(1).reached, 0) << name;
    }
    const FfsResult got = run_ffs(plan, *backend);
    EXPECT_EQ(counts(plan, got), counts(plan, expected)) << name;
    expect_same_states(got, expected, name);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, FfsBackends, ::testing::ValuesIn(backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace sgdwalk::testing
