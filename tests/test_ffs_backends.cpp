// Forward flux sampling on every backend of this build gives the CPU backend's bits: plain SGD in
// double and float, every optimizer and a scheduled run (the CUDA kernels run UpdateRule::any and
// evaluate the schedules on the device). A binary of its own, free of paths of the build machine,
// so that the GPU kit (scripts/gpu-bundle.sh) carries it; the CUDA cases skip visibly without a
// device (fail with SGDWALK_REQUIRE_GPU=1).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

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

INSTANTIATE_TEST_SUITE_P(Backends, FfsBackends, ::testing::ValuesIn(backend_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace sgdwalk::testing
