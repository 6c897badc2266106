// The CUDA backend reproduces the CPU backend bit for bit, for every landscape × noise ×
// precision, and its results do not depend on batches, step segments, block sizes or launch
// splitting. GPU tests skip visibly without a device (fail with SGDWALK_REQUIRE_GPU=1); the plan
// sanity checks run everywhere. Every test name matches ctest -R '[Cc]uda'.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../cuda/step_schedule.hpp"
#include "backend/physics_dispatch.hpp"
#include "run/checkpoint.hpp"
#include "run/driver.hpp"
#include "test_ensemble.hpp"
#include "test_plans.hpp"
#include "test_support.hpp"

#if defined(SGDWALK_CUDA_BACKEND)
#include "cuda_backend.hpp"
#endif

namespace sgdwalk::testing {
namespace {

class BackendEquivalence : public ::testing::TestWithParam<PhysicsCase> {};

// The test plans really exercise what the equivalence tests claim to compare (CPU only).
TEST_P(BackendEquivalence, PlanExercisesEveryObservable) {
  const RunPlan plan = make_test_plan(GetParam());
  auto cpu = make_cpu_backend(2);
  const RunData data = run_plan(*cpu, plan);
  const std::int64_t W = plan.walkers_per_variant;
  const std::int64_t S = plan.sample_count();
  const std::int64_t divergent = plan.variant_count() - 1;

  // The divergent variant (η = 30) loses walkers; the first regular variant keeps them all.
  std::int64_t nonfinite = 0;
  for (std::int64_t w = 0; w < W; ++w)
    nonfinite += data.walkers.nonfinite_step[divergent * W + w] >= 0;
  EXPECT_GT(nonfinite, 0) << "the divergent variant should produce non-finite walkers";
  EXPECT_LT(data.observables.sample_finite[divergent * S + S - 1], static_cast<std::uint64_t>(W));
  for (std::int64_t w = 0; w < W; ++w) {
    if (data.walkers.nonfinite_step[divergent * W + w] < 0) continue;
    const std::size_t last = data.observables.sample_index(divergent, S - 1, w);
    EXPECT_TRUE(std::isnan(data.observables.sample_loss[last]));
    EXPECT_TRUE(std::isnan(data.observables.sample_progress[last]));
    break;
  }
  if (plan.noise_distribution == NoiseDistribution::gaussian) {
    EXPECT_EQ(data.observables.sample_finite[0 * S + S - 1], static_cast<std::uint64_t>(W));
  } else {
    // Heavy tails: a long jump can reach where a landscape's gradient overflows (Müller–Brown's
    // exponentials), so the first variant only keeps most of its walkers.
    EXPECT_GT(data.observables.sample_finite[0 * S + S - 1], static_cast<std::uint64_t>(W / 2));
  }

  // A finite walker never has a NaN loss: NaN payloads differ between x86 and CUDA, so such a
  // sample could not compare bit for bit (non-finite walkers get one fixed NaN on both sides).
  for (std::size_t i = 0; i < data.observables.sample_loss.size(); ++i) {
    if (!std::isnan(data.observables.sample_progress[i])) {
      ASSERT_FALSE(std::isnan(data.observables.sample_loss[i])) << "sample value " << i;
    }
  }

  // Basin changes, first passages and histogram deposits happen in the regular variants.
  std::uint64_t crossings = 0;
  std::int64_t arrived = 0;
  for (std::int64_t g = 0; g < divergent * W; ++g) {
    crossings += data.walkers.crossings[g];
    arrived += data.walkers.first_passage_step[g] > 0;
  }
  EXPECT_GT(crossings, 0u);
  EXPECT_GT(arrived, 0);
  for (std::size_t h = 0; h < plan.histograms.size(); ++h) {
    std::uint64_t in_bins = 0;
    const auto bins = static_cast<std::size_t>(plan.histograms[h].bin_count());
    for (std::size_t slot = 0; slot < bins; ++slot)
      in_bins += data.observables.histogram_counts[h][slot];
    EXPECT_GT(in_bins, 0u) << "histogram " << plan.histograms[h].name << " of variant 0 is empty";
  }
}

TEST_P(BackendEquivalence, CudaMatchesCpuBitForBit) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
  const RunPlan plan = make_test_plan(GetParam());
  auto cpu = make_cpu_backend(2);
  const RunData expected = run_plan(*cpu, plan);
  const RunData actual = run_plan(*cuda, plan);
  expect_identical(expected, actual, "cpu vs cuda, " + GetParam().name());
}

TEST_P(BackendEquivalence, CudaResultsDoNotDependOnSplitting) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
  const RunPlan plan = make_test_plan(GetParam());
  const std::int64_t total = plan.total_walkers();
  const RunData reference = run_plan(*cuda, plan);

  // Walker ranges that straddle variants and single walkers; ragged step segments that cut
  // through samples, histogram deposits and normal blocks (1 step, odd starts).
  const std::vector<std::int64_t> walker_cuts = {0, 1, 100, 173, 190, 346, 400, 401, total};
  const std::vector<std::int64_t> step_cuts = {0, 1, 2, 3, 37, 38, 150, 151, 299, plan.steps};
  expect_identical(reference, run_plan(*cuda, plan, walker_cuts, {}), "walker batches");
  expect_identical(reference, run_plan(*cuda, plan, {}, step_cuts), "step segments");
  expect_identical(reference, run_plan(*cuda, plan, walker_cuts, step_cuts), "both");
  // Batches resident on the device between calls, with and without mid-batch syncs.
  expect_identical(reference, run_plan_in_batches(*cuda, plan), "one resident batch");
  expect_identical(reference, run_plan_in_batches(*cuda, plan, walker_cuts, step_cuts),
                   "resident batches and segments");
  expect_identical(reference, run_plan_in_batches(*cuda, plan, walker_cuts, step_cuts, true),
                   "resident batches, synced mid-batch");

#if defined(SGDWALK_CUDA_BACKEND)
  // Launch geometry and launch splitting: small blocks, one sample or a few steps per launch,
  // histograms counted in global instead of shared memory.
  struct Named {
    const char* name;
    CudaTuning tuning;
  };
  std::vector<Named> tunings;
  tunings.push_back({"32 threads, 1 sample and 13 steps per launch, global histograms",
                     CudaTuning{32, 1, 13, 0, true}});
  tunings.push_back(
      {"96 threads, 2 samples and 64 steps per launch", CudaTuning{96, 2, 64, 32 * 1024, true}});
  tunings.push_back({"256 threads, 1 step per launch", CudaTuning{256, 64, 1, 32 * 1024, true}});
  for (const Named& t : tunings) {
    auto tuned = make_cuda_backend(0, t.tuning);
    expect_identical(reference, run_plan(*tuned, plan), t.name);
    expect_identical(reference, run_plan(*tuned, plan, walker_cuts, step_cuts),
                     std::string(t.name) + ", batches and segments");
    expect_identical(reference, run_plan_in_batches(*tuned, plan, walker_cuts, step_cuts, true),
                     std::string(t.name) + ", resident batches");
  }
#endif
}

INSTANTIATE_TEST_SUITE_P(cuda, BackendEquivalence, ::testing::ValuesIn(all_physics_cases()),
                         [](const ::testing::TestParamInfo<PhysicsCase>& info) {
                           return info.param.name();
                         });

// Every optimizer × noise × precision, with learning-rate and noise schedules; and every optimizer
// with α-stable noise (test_plans.hpp, optimizer_physics_cases).
INSTANTIATE_TEST_SUITE_P(cuda_optimizers, BackendEquivalence,
                         ::testing::ValuesIn(optimizer_physics_cases()),
                         [](const ::testing::TestParamInfo<PhysicsCase>& info) {
                           return info.param.name();
                         });

// Many blocks per variant and long runs: the production shape, at a size the CPU still replays.
TEST(CudaBackend, LargeTwoValleyRunMatchesCpu) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
  for (Precision precision : {Precision::f32, Precision::f64}) {
    TestPlanOptions options;
    options.variants = 2;
    options.walkers_per_variant = 3000;
    options.steps = 2000;
    const RunPlan plan = make_test_plan({"two_valley", 2, NoiseKind::hessian, precision}, options);
    auto cpu = make_cpu_backend(0);
    expect_identical(run_plan(*cpu, plan), run_plan(*cuda, plan),
                     "two_valley hessian " + to_string(precision));
  }
}

// Histograms that deposit every step make the kernels' dense-deposit stretches (step_schedule.hpp's
// dense_stretch: a run of steps with nothing but deposits, each walker's bins counted without the
// per-step event checks; one histogram through a register copy of its geometry where the kernel
// keeps one (kDenseGeometryInRegisters), several through the loop over the stretch's mask). The
// equivalence plans above never form one (their "xy" histogram deposits every third step over the
// whole run), so these plans hold only every-step histograms: "x" alone, or "x" with an "xy" that
// opens later (stretches of mask 1, then 3, then 2).
RunPlan dense_deposit_plan(const PhysicsCase& c, int histograms) {
  TestPlanOptions options;
  options.histograms = false;
  RunPlan plan = make_test_plan(c, options);
  const std::int64_t s = plan.steps;
  const bool two_valley = c.landscape == "two_valley";
  const std::vector<double> start = c.landscape == "harmonic"
                                        ? std::vector<double>(c.dim, 0.0)
                                        : find_landscape(c.landscape, c.dim)->start;
  HistogramSpec x;
  x.name = "x";
  x.kind = HistogramKind::x_in_band;
  x.x_coordinate = 0;
  x.x_bins = 16;
  x.x_lo = start[0] - 0.8;
  x.x_hi = start[0] + 0.8;
  if (two_valley) {
    x.band_lo = 4.95;  // only walkers with y in a band count
    x.band_hi = 5.3;
  }
  x.window_begin = 10;
  x.window_end = s - 4;
  x.every = 1;
  plan.histograms.push_back(x);
  if (histograms > 1) {
    HistogramSpec xy;
    xy.name = "xy";
    xy.kind = HistogramKind::xy;
    xy.x_coordinate = 0;
    xy.x_bins = 12;
    xy.x_lo = start[0] - 1.2;
    xy.x_hi = start[0] + 1.2;
    xy.y_bins = 5;
    xy.y_lo = two_valley ? 4.0 : -1.5;
    xy.y_hi = two_valley ? 6.5 : 1.5;
    xy.window_begin = 40;
    xy.window_end = s;
    xy.every = 1;
    plan.histograms.push_back(xy);
  }
  return plan;
}

std::vector<PhysicsCase> dense_deposit_cases() {
  std::vector<PhysicsCase> cases;
  for (const auto& [landscape, dim] : std::vector<std::pair<std::string, int>>{
           {"two_valley", 2}, {"double_well", 1}, {"muller_brown", 2}, {"harmonic", 3}}) {
    for (NoiseKind noise : {NoiseKind::hessian, NoiseKind::isotropic}) {
      for (Precision precision : {Precision::f32, Precision::f64}) {
        cases.push_back({landscape, dim, noise, precision});
      }
    }
  }
  return cases;
}

// The plans really form the stretches (CPU only): every histogram fills bins, and the kernels'
// stretch finder, asked at each step, finds stretches of every mask the plan should give.
TEST(CudaBackend, DenseDepositPlansFormStretches) {
  for (const PhysicsCase& c : dense_deposit_cases()) {
    for (int histograms : {1, 2}) {
      SCOPED_TRACE(c.name() + ", " + std::to_string(histograms) + " histograms");
      const RunPlan plan = dense_deposit_plan(c, histograms);
      auto cpu = make_cpu_backend(2);
      const RunData data = run_plan(*cpu, plan);
      for (std::size_t h = 0; h < plan.histograms.size(); ++h) {
        std::uint64_t in_bins = 0;
        const auto bins = static_cast<std::size_t>(plan.histograms[h].bin_count());
        for (std::size_t slot = 0; slot < bins; ++slot)
          in_bins += data.observables.histogram_counts[h][slot];
        EXPECT_GT(in_bins, 0u) << "histogram " << plan.histograms[h].name << " of variant 0";
      }
      std::vector<HistogramGeometry<double>> geometries;
      for (const HistogramSpec& spec : plan.histograms)
        geometries.push_back(make_histogram_geometry<double>(spec));
      const auto at = [&](int h) -> const HistogramGeometry<double>& { return geometries[h]; };
      std::set<unsigned> masks;
      for (std::int64_t after = 0; after < plan.steps; ++after) {
        const auto next =
            std::upper_bound(plan.sample_steps.begin(), plan.sample_steps.end(), after);
        const std::int64_t next_sample = next == plan.sample_steps.end() ? gpu::kNoEvent : *next;
        const gpu::DenseStretch stretch =
            gpu::dense_stretch(static_cast<int>(geometries.size()), at, after, next_sample);
        if (stretch.end > after) masks.insert(stretch.mask);
      }
      const std::set<unsigned> expected_masks =
          histograms == 1 ? std::set<unsigned>{1u} : std::set<unsigned>{1u, 2u, 3u};
      EXPECT_EQ(masks, expected_masks);
    }
  }
}

// The dense stretches give the CPU backend's bits: one histogram (the register copy in every
// float kernel and the cheap double isotropic ones) and two (the mask loop), with histograms in
// shared and in global memory, whole and split into batches and segments that cut stretches.
TEST(CudaBackend, DenseDepositStretchesMatchCpu) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
#if defined(SGDWALK_CUDA_BACKEND)
  auto global_histograms = make_cuda_backend(0, CudaTuning{128, 64, 1 << 22, 0, true});
  auto few_steps_per_launch = make_cuda_backend(0, CudaTuning{64, 2, 29, 32 * 1024, true});
#endif
  auto cpu = make_cpu_backend(2);
  for (const PhysicsCase& c : dense_deposit_cases()) {
    for (int histograms : {1, 2}) {
      const std::string what = c.name() + ", " + std::to_string(histograms) + " histograms";
      const RunPlan plan = dense_deposit_plan(c, histograms);
      const RunData expected = run_plan(*cpu, plan);
      expect_identical(expected, run_plan(*cuda, plan), what);
      const std::vector<std::int64_t> walker_cuts = {0, 100, 346, plan.total_walkers()};
      const std::vector<std::int64_t> step_cuts = {0, 20, 21, 150, 299, plan.steps};
      expect_identical(expected, run_plan_in_batches(*cuda, plan, walker_cuts, step_cuts),
                       what + ", batches and segments");
#if defined(SGDWALK_CUDA_BACKEND)
      expect_identical(expected, run_plan(*global_histograms, plan), what + ", global histograms");
      expect_identical(expected, run_plan(*few_steps_per_launch, plan),
                       what + ", 29 steps per launch");
#endif
    }
  }
}

// A resident batch synced in the middle (a checkpoint) holds exactly the state of a run that
// stopped there; the walkers of other batches are untouched; the driver's residency contract is
// enforced.
TEST(CudaBackend, ResidentBatchSyncsExactlyAndGuardsItsRange) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
  const RunPlan plan = make_test_plan({"two_valley", 2, NoiseKind::hessian, Precision::f32});
  const std::int64_t total = plan.total_walkers();
  const std::int64_t first = 100, last = total - 50, middle = 151;
  auto cpu = make_cpu_backend(2);
  const RunData expected = run_plan(*cpu, plan, {first, last}, {0, middle});

  RunData data = initialized_data(plan);
  cuda->begin_batch(plan, first, last, 0, data);
  cuda->advance(plan, first, last, 0, 37, data);
  cuda->advance(plan, first, last, 37, middle, data);
  EXPECT_FALSE(same_bits(expected.walkers.position, data.walkers.position))
      << "the host copy should still hold step 0 before sync_walkers()";
  cuda->sync_walkers(plan, data);
  expect_identical(expected, data, "synced at step " + std::to_string(middle));
  EXPECT_THROW(cuda->advance(plan, 0, first, 0, 1, data), std::logic_error);
  EXPECT_THROW(cuda->advance(plan, first, last, 0, 1, data), std::logic_error);
  cuda->end_batch(plan, data);
  expect_identical(expected, data, "after end_batch");
  // Closed: a plain advance() of any range works again.
  cuda->advance(plan, 0, first, 0, 1, data);
}

// The driver keeps batches resident and syncs them only when a callback asks for the data: the
// result equals the CPU backend's for any batch size and segment length, with such requests.
// The driver's cases: plain SGD, and the walker states the device's initialize kernel must also
// start as the CPU does (optimizer state zeroed at the run's width, α-stable noise, a 3-D and a
// 1-D landscape, schedules).
std::vector<PhysicsCase> driver_cases() {
  return {
      {"two_valley", 2, NoiseKind::hessian, Precision::f64},
      {"two_valley", 2, NoiseKind::hessian, Precision::f32, NoiseDistribution::gaussian,
       OptimizerKind::adam, true},
      {"double_well", 1, NoiseKind::isotropic, Precision::f64, NoiseDistribution::gaussian,
       OptimizerKind::momentum},
      {"muller_brown", 2, NoiseKind::isotropic, Precision::f32, NoiseDistribution::alpha_stable},
      {"harmonic", 3, NoiseKind::hessian, Precision::f64, NoiseDistribution::gaussian,
       OptimizerKind::rmsprop, true},
  };
}

TEST(CudaBackend, DriverRunsWithResidentBatchesMatchCpu) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
  for (const PhysicsCase& c : driver_cases()) {
    const RunPlan plan = make_test_plan(c);
    auto cpu = make_cpu_backend(2);
    const RunOutcome expected = execute_all(plan, *cpu, ExecuteOptions{});
    for (const std::int64_t batch : {std::int64_t{0}, std::int64_t{173}, std::int64_t{250}}) {
      ExecuteOptions options;
      options.batch_walkers = batch;
      options.segment_steps = 29;
      int segments = 0;
      options.on_segment = [&](const RunProgress&, const SegmentData& state) {
        if (++segments % 3 == 0) (void)state.get();  // as a checkpoint would
        return true;
      };
      const RunOutcome actual = execute_all(plan, *cuda, options);
      expect_identical(expected.data, actual.data, c.name() + ", batch " + std::to_string(batch));
    }
  }
}

// Without per-walker output the driver lets the CUDA backend reduce each finished batch on the
// device (tally records, CUB) and start each batch on the device: neither the walker state nor
// the sample values cross PCIe, and the tallies, counters and summaries equal the CPU backend's.
TEST(CudaBackend, DriverReducesOnTheDeviceAndMatchesCpu) {
  SGDWALK_BACKEND_OR_SKIP(cuda_with_copies, "cuda");
#if defined(SGDWALK_CUDA_BACKEND)
  std::vector<PhysicsCase> cases = driver_cases();
  cases.push_back({"two_valley", 2, NoiseKind::hessian, Precision::f32});
  for (const PhysicsCase& c : cases) {
    const RunPlan plan = make_test_plan(c);
    auto cpu = make_cpu_backend(2);
    const RunOutcome expected = execute(plan, *cpu, ExecuteOptions{});
    auto cuda = make_cuda_backend(0);  // default tuning: no per-walker copies
    for (const std::int64_t batch : {std::int64_t{0}, std::int64_t{173}, std::int64_t{250}}) {
      SCOPED_TRACE("batch " + std::to_string(batch) + ", " + c.name());
      ExecuteOptions options;
      options.batch_walkers = batch;
      options.segment_steps = 29;
      const TransferStats before = cuda->transfers();
      const RunOutcome actual = execute(plan, *cuda, options);
      const TransferStats after = cuda->transfers();
      ASSERT_TRUE(actual.complete);
      EXPECT_TRUE(expected.data.tallies == actual.data.tallies) << "reduced statistics";
      EXPECT_TRUE(
          same_bits(expected.data.observables.sample_flat, actual.data.observables.sample_flat));
      EXPECT_TRUE(same_bits(expected.data.observables.sample_finite,
                            actual.data.observables.sample_finite));
      for (std::size_t h = 0; h < plan.histograms.size(); ++h) {
        EXPECT_TRUE(same_bits(expected.data.observables.histogram_counts[h],
                              actual.data.observables.histogram_counts[h]));
      }
      ASSERT_EQ(expected.summaries.size(), actual.summaries.size());
      for (std::size_t v = 0; v < expected.summaries.size(); ++v) {
        EXPECT_EQ(std::memcmp(&expected.summaries[v].freezing_time,
                              &actual.summaries[v].freezing_time, sizeof(MeanEstimate)),
                  0)
            << "variant " << v;
      }
      // Neither walker state nor per-walker sample values went either way: only counters and
      // runs of tally records came back.
      EXPECT_EQ(after.bytes_to_device, before.bytes_to_device);
      EXPECT_EQ(after.bytes_to_host, before.bytes_to_host);
      EXPECT_GT(after.reduced_bytes_to_host, before.reduced_bytes_to_host);
    }
  }
#endif
}

// A checkpoint written in the middle of a batch on either backend resumes on the other (default
// tuning, as the CLI runs: samples reduced on the device) with the bits of an uninterrupted CPU
// run: the unfinished walkers' state, optimizer state included, and every counter, histogram and
// tally.
TEST(CudaBackend, CheckpointsResumeAcrossBackends) {
  SGDWALK_BACKEND_OR_SKIP(cuda_with_copies, "cuda");
#if defined(SGDWALK_CUDA_BACKEND)
  auto cuda = make_cuda_backend(0);
  auto cpu = make_cpu_backend(2);
  const std::vector<PhysicsCase> cases = {
      {"two_valley", 2, NoiseKind::hessian, Precision::f32, NoiseDistribution::gaussian,
       OptimizerKind::adam, true},
      {"double_well", 1, NoiseKind::isotropic, Precision::f64, NoiseDistribution::gaussian,
       OptimizerKind::momentum},
  };
  for (const PhysicsCase& c : cases) {
    const RunPlan plan = make_test_plan(c);
    const RunOutcome reference = execute_all(plan, *cpu, ExecuteOptions{});
    for (const bool cuda_first : {true, false}) {
      const std::string what = c.name() + (cuda_first ? ", cuda then cpu" : ", cpu then cuda");
      SCOPED_TRACE(what);
      Backend& first = cuda_first ? *cuda : *cpu;
      Backend& second = cuda_first ? *cpu : *cuda;
      // Batches of 250 walkers, segments of 29 steps (11 per batch): stopped in the second batch.
      ExecuteOptions options;
      options.batch_walkers = 250;
      options.segment_steps = 29;
      int segments = 0;
      options.on_segment = [&](const RunProgress&, const SegmentData&) { return ++segments < 14; };
      const RunOutcome stopped = execute(plan, first, options);
      ASSERT_FALSE(stopped.complete);
      ASSERT_EQ(stopped.progress.walker_begin, 250);

      // A temporary directory, not the build's test-scratch: the GPU kit carries this binary to
      // another machine, and its binaries name no path of this one.
      std::string directory =
          (std::filesystem::temp_directory_path() / "sgdwalk-cuda-checkpoint-XXXXXX").string();
      ASSERT_NE(mkdtemp(directory.data()), nullptr) << directory;
      const std::string path = directory + "/checkpoint.bin";
      write_checkpoint(path, plan, stopped.progress, stopped.data, 0.0, 1);
      const Checkpoint back = read_checkpoint(path, &plan);
      std::filesystem::remove_all(directory);
      ExecuteOptions rest;
      rest.batch_walkers = 173;
      const RunOutcome continued = execute_from_all(plan, second, rest, back.data, back.progress);
      ASSERT_TRUE(continued.complete);
      EXPECT_TRUE(continued.data.tallies == reference.data.tallies) << "reduced statistics";
      EXPECT_TRUE(same_bits(continued.data.observables.sample_flat,
                            reference.data.observables.sample_flat));
      EXPECT_TRUE(same_bits(continued.data.observables.sample_finite,
                            reference.data.observables.sample_finite));
      for (std::size_t h = 0; h < plan.histograms.size(); ++h) {
        EXPECT_TRUE(same_bits(continued.data.observables.histogram_counts[h],
                              reference.data.observables.histogram_counts[h]))
            << plan.histograms[h].name;
      }
      // The walkers finished after the restart (from the stopped batch's first one).
      const auto tail = [](const auto& v, std::int64_t per_walker) {
        using V = std::decay_t<decltype(v)>;
        return V(v.begin() + static_cast<std::ptrdiff_t>(250 * per_walker), v.end());
      };
      const WalkerArrays& a = continued.data.walkers;
      const WalkerArrays& b = reference.data.walkers;
      EXPECT_TRUE(same_bits(tail(a.position, plan.dim), tail(b.position, plan.dim)));
      EXPECT_TRUE(same_bits(tail(a.optimizer_state, a.state_width),
                            tail(b.optimizer_state, b.state_width)));
      EXPECT_GT(a.state_width, 0);
      EXPECT_TRUE(same_bits(tail(a.freeze_step, 1), tail(b.freeze_step, 1)));
      EXPECT_TRUE(same_bits(tail(a.first_passage_step, 1), tail(b.first_passage_step, 1)));
      EXPECT_TRUE(same_bits(tail(a.crossings, 1), tail(b.crossings, 1)));
    }
  }
#endif
}

TEST(CudaBackend, DescribesItselfAndSizesBatches) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
  EXPECT_EQ(cuda->name(), "cuda");
  EXPECT_NE(cuda->description().find("cuda:"), std::string::npos) << cuda->description();
  const RunPlan plan = make_test_plan({"two_valley", 2, NoiseKind::hessian, Precision::f64});
  // Any CUDA device worth running on holds a million 2-D walkers with five samples.
  EXPECT_GE(cuda->max_batch_walkers(plan), 1000000);
  // A schedule's constants come from a step table (here 4 variants x 2^18 steps of a launch, over
  // 100 MB), which the batch size leaves room for: the same run without schedules fits more.
  const PhysicsCase momentum{
      "two_valley",           2, NoiseKind::hessian, Precision::f64, NoiseDistribution::gaussian,
      OptimizerKind::momentum};
  PhysicsCase scheduled = momentum;
  scheduled.scheduled = true;
  EXPECT_LT(cuda->max_batch_walkers(make_test_plan(scheduled)),
            cuda->max_batch_walkers(make_test_plan(momentum)));
}

TEST(CudaBackend, EmptyRangesAreNoOps) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
  const RunPlan plan = make_test_plan({"double_well", 1, NoiseKind::isotropic, Precision::f32});
  const RunData before = initialized_data(plan);
  RunData after = before;
  cuda->advance(plan, 5, 5, 0, plan.steps, after);
  cuda->advance(plan, 0, plan.total_walkers(), 7, 7, after);
  expect_identical(before, after, "empty calls");
}

TEST(CudaBackend, RejectsBadArguments) {
  SGDWALK_BACKEND_OR_SKIP(cuda, "cuda");
  const RunPlan plan = make_test_plan({"double_well", 1, NoiseKind::isotropic, Precision::f32});
  RunData data = initialized_data(plan);
  EXPECT_THROW(cuda->advance(plan, 0, plan.total_walkers() + 1, 0, 1, data), std::invalid_argument);
  EXPECT_THROW(cuda->advance(plan, 0, 1, 5, 4, data), std::invalid_argument);
  RunData unsized;
  EXPECT_THROW(cuda->advance(plan, 0, 1, 0, 1, unsized), std::invalid_argument);
#if defined(SGDWALK_CUDA_BACKEND)
  CudaTuning bad;
  bad.block_threads = 100;
  EXPECT_THROW(make_cuda_backend(0, bad), std::invalid_argument);
  EXPECT_THROW(make_cuda_backend(99), std::runtime_error);
#endif
}

}  // namespace
}  // namespace sgdwalk::testing
