// Results never depend on thread count, batch size or step segmentation, and any walker can be
// replayed from the seed alone: identical bits, not "close".
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "config/config.hpp"
#include "run/driver.hpp"
#include "test_ensemble.hpp"

namespace sgdwalk {
namespace {

using testing::execute_all;

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

void expect_identical(const RunData& a, const RunData& b) {
  EXPECT_TRUE(same_bits(a.walkers.position, b.walkers.position));
  EXPECT_TRUE(same_bits(a.walkers.y_freeze, b.walkers.y_freeze));
  EXPECT_TRUE(same_bits(a.walkers.freeze_step, b.walkers.freeze_step));
  EXPECT_TRUE(same_bits(a.walkers.first_passage_step, b.walkers.first_passage_step));
  EXPECT_TRUE(same_bits(a.walkers.nonfinite_step, b.walkers.nonfinite_step));
  EXPECT_TRUE(same_bits(a.walkers.basin, b.walkers.basin));
  EXPECT_TRUE(same_bits(a.walkers.crossings, b.walkers.crossings));
  EXPECT_TRUE(same_bits(a.walkers.optimizer_state, b.walkers.optimizer_state));
  EXPECT_TRUE(same_bits(a.observables.sample_progress, b.observables.sample_progress));
  EXPECT_TRUE(same_bits(a.observables.sample_loss, b.observables.sample_loss));
  EXPECT_TRUE(same_bits(a.observables.sample_flat, b.observables.sample_flat));
  EXPECT_TRUE(same_bits(a.observables.sample_finite, b.observables.sample_finite));
  ASSERT_EQ(a.observables.histogram_counts.size(), b.observables.histogram_counts.size());
  for (std::size_t h = 0; h < a.observables.histogram_counts.size(); ++h) {
    EXPECT_TRUE(same_bits(a.observables.histogram_counts[h], b.observables.histogram_counts[h]));
  }
  EXPECT_TRUE(a.tallies == b.tallies) << "reduced statistics";
}

/// A small run with every observable on: 2 variants x 37 walkers (not a multiple of the lane
/// count), samples, a first-passage target and a histogram.
std::string config(const std::string& landscape, const std::string& noise,
                   const std::string& precision, const std::string& distribution = "gaussian") {
  std::string init;
  std::string landscape_extra;
  if (landscape == "two_valley")
    init = "positions = [[-0.01, 5.0], [0.01, 5.0]]";
  else if (landscape == "harmonic") {
    init = "positions = [[0.3, -0.2]]";
    landscape_extra = "dim = 2\nstiffness = [1.0, 3.0]\n";
  } else
    init = "positions = [[-0.05], [0.05]]";
  return R"(
[run]
walkers = 37
steps = 300
seed = 99
precision = ")" +
         precision + R"("
[landscape]
kind = ")" +
         landscape + "\"\n" + landscape_extra + R"(
[dynamics]
noise = ")" +
         noise + "\"\n" +
         (distribution == "gaussian"
              ? std::string()
              : "noise_distribution = \"" + distribution + "\"\nalpha = 1.3\n") +
         R"(learning_rate = 0.05
noise_strength = 0.2
[init]
)" + init +
         R"(
[observables]
sample_steps = [0, 1, 77, 150, 300]
[observables.first_passage]
target = "flat"
[[observables.histogram]]
x_range = [-1.5, 1.5]
bins = 30
window = [100, 300]
every = 3
[sweep]
learning_rate = [0.05, 0.02]
)";
}

struct Case {
  std::string landscape, noise, precision;
  std::string distribution = "gaussian";
};

class Determinism : public ::testing::TestWithParam<Case> {};

TEST_P(Determinism, ThreadsBatchesAndSegmentsGiveIdenticalBits) {
  const Case& c = GetParam();
  const RunPlan plan =
      load_config_text(config(c.landscape, c.noise, c.precision, c.distribution), "determinism");
  auto one_thread = make_cpu_backend(1);
  auto two_threads = make_cpu_backend(2);
  const RunOutcome reference = execute_all(plan, *one_thread, {});
  ASSERT_TRUE(reference.complete);

  const RunOutcome threaded = execute_all(plan, *two_threads, {});
  expect_identical(reference.data, threaded.data);

  ExecuteOptions small_batches;
  small_batches.batch_walkers = 5;  // batches straddle the variant boundary
  expect_identical(reference.data, execute_all(plan, *two_threads, small_batches).data);

  ExecuteOptions ragged_segments;
  ragged_segments.segment_steps = 7;  // segments cut through sample and histogram steps
  ragged_segments.batch_walkers = 29;
  expect_identical(reference.data, execute_all(plan, *two_threads, ragged_segments).data);

  ExecuteOptions single_steps;
  single_steps.segment_steps = 1;
  expect_identical(reference.data, execute_all(plan, *one_thread, single_steps).data);
}

TEST_P(Determinism, ReplayReproducesEveryTrackedValue) {
  const Case& c = GetParam();
  const RunPlan plan =
      load_config_text(config(c.landscape, c.noise, c.precision, c.distribution), "determinism");
  auto backend = make_cpu_backend(2);
  const RunOutcome outcome = execute_all(plan, *backend, {});
  for (const std::int64_t g : {0L, 17L, 36L, 37L, 73L}) {
    const std::int64_t variant = g / plan.walkers_per_variant;
    const std::int64_t walker = g % plan.walkers_per_variant;
    std::ostringstream csv;
    replay_walker(plan, variant, walker, plan.steps, csv);
    // The last line is the final state: step, coordinates, loss, basin, crossings, freeze_step,
    // first_passage_step, nonfinite_step (printed with max_digits10, so parsing is exact).
    std::istringstream lines(csv.str());
    std::string line, last;
    while (std::getline(lines, line)) last = line;
    std::vector<std::string> fields;
    std::stringstream row(last);
    for (std::string field; std::getline(row, field, ',');) fields.push_back(field);
    const int dim = plan.dim;
    ASSERT_EQ(fields.size(), static_cast<std::size_t>(dim + 7));
    EXPECT_EQ(std::stoll(fields[0]), plan.steps);
    for (int i = 0; i < dim; ++i) {
      const double replayed = c.precision == "float" ? static_cast<double>(std::stof(fields[1 + i]))
                                                     : std::stod(fields[1 + i]);
      EXPECT_EQ(replayed, outcome.data.walkers.position[g * dim + i]) << "walker " << g;
    }
    EXPECT_EQ(std::stoi(fields[dim + 2]), outcome.data.walkers.basin[g]);
    EXPECT_EQ(std::stoul(fields[dim + 3]), outcome.data.walkers.crossings[g]);
    EXPECT_EQ(std::stoll(fields[dim + 4]), outcome.data.walkers.freeze_step[g]);
    EXPECT_EQ(std::stoll(fields[dim + 5]), outcome.data.walkers.first_passage_step[g]);
    EXPECT_EQ(std::stoll(fields[dim + 6]), outcome.data.walkers.nonfinite_step[g]);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllLandscapes, Determinism,
    ::testing::Values(
        Case{"two_valley", "hessian", "double"}, Case{"two_valley", "hessian", "float"},
        Case{"two_valley", "hessian_squared", "double"}, Case{"two_valley", "isotropic", "float"},
        Case{"two_valley_slice", "hessian", "double"}, Case{"double_well", "isotropic", "double"},
        Case{"harmonic", "hessian", "float"},
        // α-stable draws: two words per component, so odd
        // segment starts begin inside a Philox block.
        Case{"two_valley", "hessian", "double", "alpha_stable"},
        Case{"two_valley", "hessian_squared", "float", "alpha_stable"},
        Case{"double_well", "isotropic", "float", "alpha_stable"},
        Case{"harmonic", "isotropic", "double", "alpha_stable"}),
    [](const ::testing::TestParamInfo<Case>& info) {
      const Case& c = info.param;
      return c.landscape + "_" + c.noise + "_" + c.precision +
             (c.distribution == "gaussian" ? "" : "_" + c.distribution);
    });

TEST(Determinism, VariantStreamsDoNotDependOnWalkerCount) {
  // Walker 3 of variant 1 sees the same noise whether the run has 10 or 50 walkers per variant.
  std::string small = config("two_valley", "hessian", "double");
  std::string large = small;
  large.replace(large.find("walkers = 37"), 12, "walkers = 50");
  small.replace(small.find("walkers = 37"), 12, "walkers = 10");
  auto backend = make_cpu_backend(2);
  const RunPlan small_plan = load_config_text(small, "small");
  const RunPlan large_plan = load_config_text(large, "large");
  const RunOutcome a = execute_all(small_plan, *backend, {});
  const RunOutcome b = execute_all(large_plan, *backend, {});
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(a.data.walkers.position[(10 + 3) * 2 + i], b.data.walkers.position[(50 + 3) * 2 + i]);
  }
}

}  // namespace
}  // namespace sgdwalk
