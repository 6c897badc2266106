// Forward flux sampling (issue 18): the exact discrete-chain oracle, FFS rates against it over
// many decades, determinism (threads, segmentation, slots, resume), the randomness layout and the
// config errors.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "analysis/theory.hpp"
#include "backend/backend.hpp"
#include "config/config.hpp"
#include "rare_events/exact_chain.hpp"
#include "rare_events/ffs_driver.hpp"
#include "run/driver.hpp"
#include "sgdwalk/ffs.hpp"
#include "test_run_dirs.hpp"
#include "test_support.hpp"

namespace sgdwalk {
namespace {

// ---- the exact chain of the 1-D walkers, from the formulas (not the landscape code) ------------

/// double_well with the defaults but depth_sharp, isotropic noise: L' = k_i (x − m_i).
exact_chain::Chain double_well_chain(double eta, double delta_s, double depth_sharp) {
  const double kf = 1.0, ks = 1.5, depth_flat = 1.0;
  const double mf = std::sqrt(2 * depth_flat / kf), ms = -std::sqrt(2 * depth_sharp / ks);
  exact_chain::Chain chain;
  chain.mean = [=](double x) { return x - eta * (x >= 0 ? kf * (x - mf) : ks * (x - ms)); };
  const double sd = std::sqrt(2 * eta * delta_s);  // η·sqrt(2σ), σ = Δ_S/η
  chain.sd = [=](double) { return sd; };
  chain.breakpoints = {0.0};
  return chain;
}

/// A double_well FFS config: escape from the sharp well over the barrier at 0 to x ≥ 0.2, with
/// Δ_S = depth/β (isotropic noise: the Arrhenius exponent is β).
std::string double_well_config(double beta, double eta, std::int64_t trials, int replicas,
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

FfsResult run_config(const std::string& text, int threads = 0, const FfsOptions& options = {}) {
  const RunPlan plan = load_config_text(text, "<test>");
  auto backend = make_cpu_backend(threads);
  return run_ffs(plan, *backend, options);
}

TEST(ExactChain, MatchesTheContinuumQuadratureWithTheDiscreteOvershoot) {
  // Small η: the chain's MFPT to x ≥ b tends to the Itô quadrature with the absorbing level moved
  // out by the mean overshoot of a Gaussian walk, β·s with β = −ζ(1/2)/√(2π) ≈ 0.5826 (Siegmund).
  const double eta = 1e-3, delta_s = 0.1, b = -0.3;
  const auto chain = double_well_chain(eta, delta_s, 1.0);
  const double s = std::sqrt(2 * eta * delta_s);
  const double x0 = -std::sqrt(2.0 / 1.5);
  const double steps =
      exact_chain::mean_first_passage_steps_extrapolated(chain, {-3.0, b, s / 4}, x0);
  const auto dldx = [](double x) { return 1.5 * (x + std::sqrt(2.0 / 1.5)); };
  const auto diffusion = [=](double) { return delta_s; };
  const double plain = theory::mean_first_passage_time(dldx, diffusion, x0, b);
  const double shifted = theory::mean_first_passage_time(dldx, diffusion, x0, b + 0.5826 * s);
  const double discrete = steps * eta;
  EXPECT_GT(std::fabs(discrete / plain - 1), 0.02);  // the overshoot matters at this η
  EXPECT_NEAR(discrete / shifted, 1.0, 0.005)
      << "chain " << discrete << ", quadrature " << plain << ", with the overshoot " << shifted;
}

TEST(ExactChain, ExtrapolationConvergesAndAgreesWithTheMeanFirstPassage) {
  // Barrier 40 Δ_S: the O(h²) grid error is ~5 % at h = s/8, the extrapolations from (s/4, s/8)
  // and (s/8, s/16) agree to 0.5 % (and the latter with (s/16, s/32) to 0.03 %, docs/VALIDATION.md:
  // too slow for a unit test); at this barrier the quasi-stationary escape equals 1/MFPT from
  // the bottom of the well (relaxation is ~1e17 times faster than escape).
  const auto chain = double_well_chain(0.01, 0.025, 1.0);
  const double s = std::sqrt(2 * 0.01 * 0.025);
  const double coarse =
      exact_chain::quasi_stationary_escape_extrapolated(chain, {-3.0, 0.2, s / 4});
  const double fine = exact_chain::quasi_stationary_escape_extrapolated(chain, {-3.0, 0.2, s / 8});
  EXPECT_NEAR(coarse / fine, 1.0, 1e-2);
  const double mfpt =
      exact_chain::mean_first_passage_steps(chain, {-3.0, 0.2, s / 8}, -std::sqrt(2.0 / 1.5));
  const double qsd = exact_chain::quasi_stationary_escape(chain, {-3.0, 0.2, s / 8});
  EXPECT_NEAR(qsd * mfpt, 1.0, 1e-6);
  EXPECT_LT(fine / 0.01, 1e-17);  // per unit time: far below anything brute force sees
  EXPECT_GT(fine / 0.01, 1e-18);
}

TEST(ExactChain, MatchesBruteForceFirstPassage) {
  // The sgdwalk CPU backend's brute-force first-passage steps (every walker arrives) against the
  // chain's MFPT from the start: barrier 5 Δ_S, mean within 4 standard errors.
  const double eta = 0.01, delta_s = 0.2;
  const std::string text = fmt::format(R"(
[run]
walkers = 4000
steps = 400000
seed = 3
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
learning_rate = {}
temperature = {}
[init]
positions = [{}]
[observables]
sample_steps = [0]
first_passage = {{coordinate = 0, above = 0.2}}
)",
                                       eta, delta_s, -std::sqrt(2.0 / 1.5));
  const RunPlan plan = load_config_text(text, "<test>");
  auto backend = make_cpu_backend(0);
  const RunOutcome outcome = execute(plan, *backend, {});
  const auto& passage = outcome.summaries.at(0).passage;
  ASSERT_EQ(passage.censored, 0);
  const double expected = exact_chain::mean_first_passage_steps(
      double_well_chain(eta, delta_s, 1.0), {-3.0, 0.2, std::sqrt(2 * eta * delta_s) / 6},
      -std::sqrt(2.0 / 1.5));
  const double mean = passage.steps.mean;
  const double se = passage.steps.standard_error;
  EXPECT_NEAR(mean, expected, 4 * se) << "brute force " << mean << " ± " << se;
}

// ---- FFS against the exact chain -------------------------------------------------------------

struct Decade {
  double beta;
};
class FfsExact : public ::testing::TestWithParam<Decade> {};

TEST_P(FfsExact, RateMatchesTheQuasiStationaryEscapeOfTheChain) {
  const double beta = GetParam().beta, eta = 0.01;
  const FfsResult result = run_config(double_well_config(beta, eta, 2000, 4));
  const FfsVariantResult& v = result.variants.at(0);
  const double s = std::sqrt(2 * eta / beta);
  const double exact = exact_chain::quasi_stationary_escape_extrapolated(
      double_well_chain(eta, 1.0 / beta, 1.0), {-3.0, 0.2, s / 8});
  // The error: the replicas' spread and the AFtW estimate, whichever is larger (4 standard errors).
  const double error = std::max(v.rate_std_error, v.rate_per_step * v.rate_relative_error_aftw);
  EXPECT_NEAR(v.rate_per_step, exact, 4 * error)
      << "β = " << beta << ": FFS " << v.rate_per_step << " ± " << error << " (AFtW rel "
      << v.rate_relative_error_aftw << "), exact " << exact << " per step";
  EXPECT_LT(v.rate_relative_error_aftw, 0.25);
  std::printf(
      "β = %g: FFS %.4e ± %.2e per step (AFtW relative %.3f), exact %.4e, ratio %.3f, "
      "%lld walker-steps\n",
      beta, v.rate_per_step, v.rate_std_error, v.rate_relative_error_aftw, exact,
      v.rate_per_step / exact,
      static_cast<long long>(
          ffs_result_json(load_config_text(double_well_config(beta, eta, 2000, 4), "<t>"),
                          result)["variants"][0]["walker_steps"]
              .get<std::int64_t>()));
}

INSTANTIATE_TEST_SUITE_P(Barriers, FfsExact,
                         ::testing::Values(Decade{5}, Decade{10}, Decade{20}, Decade{30},
                                           Decade{40}),
                         [](const auto& info) {
                           return fmt::format("beta{}", static_cast<int>(info.param.beta));
                         });

TEST(FfsExactSlice, TwoValleySliceHessianNoiseMatchesTheChain) {
  // The fixed-y slice at y = 5 with hessian noise: on branch i the walker is the Gaussian chain
  // x' = x − η L'(x) + η sqrt(2σ·2/f_i + ε) z (L'' = 2/f_i exactly on the slice). Escape from the
  // sharp valley (bottom −g2/2) over the ridge x = 0 to x ≥ 0.1 (near the flat bottom); the
  // Arrhenius exponent is ΔL(y)/Δ_S (D_i/L''_i = Δ_S on both branches).
  const theory::TwoValleyParams p;
  const double y = 5, eta = 0.01;
  for (const double beta : {8.0, 16.0}) {
    const double delta_s = theory::two_valley_depth(p, y) * theory::f_sharp(p, y) / (2 * beta);
    const double sigma = delta_s / eta;
    const double bottom = -theory::g_sharp(p, y) / 2;
    const double well_sd = std::sqrt(delta_s);
    exact_chain::Chain chain;
    chain.mean = [&](double x) { return x - eta * theory::loss_dx(p, x, y); };
    chain.sd = [&](double x) {
      const double k = 2 / theory::f_branch(p, y, x >= 0 ? kFlatBasin : kSharpBasin);
      return eta * std::sqrt(2 * sigma * k + 1e-8);
    };
    chain.breakpoints = {0.0};
    const double s = chain.sd(bottom);
    const double exact = exact_chain::quasi_stationary_escape_extrapolated(
        chain, {bottom - 9 * well_sd, 0.1, s / 8});
    const std::string text =
        fmt::format(R"(
[run]
walkers = 256
steps = 4000
seed = 21
[landscape]
kind = "two_valley_slice"
y = {}
[dynamics]
noise = "hessian"
learning_rate = {}
temperature = {}
[init]
positions = [{}]
[rare_event]
method = "ffs"
lambda_A = {}
lambda_0 = {}
lambda_B = 0.1
trials = 2000
replicas = 4
equilibration_steps = 200
)",
                    y, eta, delta_s, bottom, bottom + 0.5 * well_sd, bottom + 1.5 * well_sd);
    const FfsResult result = run_config(text);
    const FfsVariantResult& v = result.variants.at(0);
    const double error = std::max(v.rate_std_error, v.rate_per_step * v.rate_relative_error_aftw);
    EXPECT_NEAR(v.rate_per_step, exact, 4 * error)
        << "β = " << beta << ": FFS " << v.rate_per_step << " ± " << error << ", exact " << exact;
    std::printf("slice β = %g: FFS %.4e ± %.2e per step, exact %.4e, ratio %.3f\n", beta,
                v.rate_per_step, error, exact, v.rate_per_step / exact);
  }
}

// ---- the full 2-D two-valley landscape ---------------------------------------------------------

/// The paper's sharp → flat escape on the FULL two-valley landscape (x and y move; hessian noise
/// 2σH⁺ + εI), Langevin walkers (dt = 5e-4, Δ_S fixed) from the sharp bottom (−g2/2, 5) to the
/// flat basin x ≥ 0: examples/escape_rates_sharp_to_flat_2d.toml and ffs_sharp_to_flat_2d.toml at
/// reduced size. y drifts (~0.02 per unit time) and the barrier grows with it, so both methods
/// estimate the escape rate of the same window, t = 0 … 10 (20000 steps from step 0).
std::string two_valley_2d_config(std::int64_t walkers, const std::string& tail) {
  return fmt::format(R"(
[run]
walkers = {}
steps = 20000
seed = 2607
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
dt = 0.0005
temperature = 0.001
[init]
positions = [[-0.09285714285714286, 5.0]]
[sweep]
temperature = [0.0006, 0.0008]
{}
)",
                     walkers, tail);
}

TEST(FfsTwoValley2d, SharpToFlatRateMatchesBruteForce) {
  // Brute force: arrivals / exposure time, s.e. rate/sqrt(arrivals) (Poisson count of a censored
  // exponential). FFS: the replica mean, s.e. the larger of the replicas' and the AFtW error.
  // Agreement within 4 combined standard errors at barrier exponents ~7.5 and ~5.6.
  const std::string brute_text =
      two_valley_2d_config(4000,
                           "[observables]\nsample_every = 10000\n"
                           "[observables.first_passage]\ntarget = \"flat\"\n");
  const RunPlan brute_plan = load_config_text(brute_text, "<test>");
  auto backend = make_cpu_backend(0);
  const RunOutcome outcome = execute(brute_plan, *backend, {});
  const std::string ffs_text = two_valley_2d_config(256, R"([rare_event]
method = "ffs"
order_parameter = "basin_distance"
lambda_A = -0.085
lambda_0 = -0.075
lambda_B = 0.0
trials = 1000
replicas = 4
)");
  const FfsResult result = run_config(ffs_text);
  ASSERT_EQ(result.variants.size(), 2u);
  for (std::size_t v = 0; v < 2; ++v) {
    const auto& passage = outcome.summaries.at(v).passage;
    ASSERT_GT(passage.arrived, 50) << "variant " << v;
    const double brute = passage.rate;
    const double brute_se = brute / std::sqrt(static_cast<double>(passage.arrived));
    const FfsVariantResult& f = result.variants.at(v);
    const double eta = f.learning_rate;
    const double rate = f.rate_per_step / eta;
    const double se =
        std::max(f.rate_std_error, f.rate_per_step * f.rate_relative_error_aftw) / eta;
    const double z = (rate - brute) / std::hypot(se, brute_se);
    EXPECT_LT(std::fabs(z), 4.0) << "variant " << v << ": FFS " << rate << " ± " << se
                                 << ", brute force " << brute << " ± " << brute_se;
    EXPECT_LT(se / rate, 0.15) << "variant " << v;  // the test has power: < 15 % per method
    EXPECT_LT(brute_se / brute, 0.15) << "variant " << v;
    std::printf(
        "2-D Δ_S = %g: FFS %.4e ± %.2e, brute force %.4e ± %.2e (%lld arrivals), ratio "
        "%.3f, z %.2f\n",
        brute_plan.variants[v].temperature(), rate, se, brute, brute_se,
        static_cast<long long>(passage.arrived), rate / brute, z);
  }
}

// ---- sweeps ----------------------------------------------------------------------------------

TEST(FfsSweep, EveryVariantGetsItsRateInSummaryAndResults) {
  // A grid over η and σ (Δ_S = ησ: 0.08, 0.1, 0.1, 0.125) and a landscape parameter run through
  // the CLI: summary.json and results.h5 /rare_events carry one rate per variant, the same
  // numbers, per unit time = per step / that variant's η; the rate grows with Δ_S and falls with
  // the depth of the start well (Arrhenius factors e^2.5 and e^2 here, far outside the errors).
  const std::filesystem::path dir =
      std::filesystem::path(SGDWALK_BINARY_DIR) / "test-scratch" / "ffs_sweep";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::string text = double_well_config(10, 0.01, 200, 2,
                                          "[sweep]\nlearning_rate = [0.01, 0.0125]\n"
                                          "noise_strength = [8.0, 10.0]\n"
                                          "depth_sharp = [1.0, 1.2]\n");
    const std::string temperature = "temperature = 0.1";
    text.replace(text.find(temperature), temperature.size(), "noise_strength = 10.0");
    std::ofstream config(dir / "ffs.toml");
    config << text;
  }
  const std::string command = std::string(SGDWALK_CLI) + " run " + (dir / "ffs.toml").string() +
                              " --out " + (dir / "run").string() + " --backend cpu -q";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(dir / "run" / "summary.json");
  const nlohmann::json summary = nlohmann::json::parse(in);
  const auto& variants = summary.at("rare_events").at("variants");
  ASSERT_EQ(variants.size(), 8u);
  const auto items = testing::h5_items(dir / "run" / "results.h5");
  const auto doubles = [&](const std::string& name) {
    const std::string& bytes = items.at(name).bytes;
    std::vector<double> values(bytes.size() / sizeof(double));
    std::memcpy(values.data(), bytes.data(), bytes.size());
    return values;
  };
  const std::vector<double> per_step = doubles("/rare_events/rate_per_step");
  const std::vector<double> per_time = doubles("/rare_events/rate_per_time");
  ASSERT_EQ(per_step.size(), 8u);
  ASSERT_EQ(per_time.size(), 8u);
  // Grid order: the first swept key varies slowest.
  const auto rate = [&](int eta, int sigma, int depth) {
    return variants.at(4 * eta + 2 * sigma + depth).at("rate_per_time").get<double>();
  };
  for (int v = 0; v < 8; ++v) {
    const auto& variant = variants.at(v);
    const double eta = variant.at("swept").at("learning_rate").get<double>();
    const double sigma = variant.at("swept").at("noise_strength").get<double>();
    const double depth = variant.at("swept").at("depth_sharp").get<double>();
    EXPECT_EQ(eta, v < 4 ? 0.01 : 0.0125) << v;
    EXPECT_EQ(sigma, v % 4 < 2 ? 8.0 : 10.0) << v;
    EXPECT_EQ(depth, v % 2 == 0 ? 1.0 : 1.2) << v;
    EXPECT_NEAR(variant.at("temperature").get<double>(), eta * sigma, 1e-15) << v;
    const double step_rate = variant.at("rate_per_step").get<double>();
    EXPECT_GT(step_rate, 0) << v;
    EXPECT_EQ(per_step[v], step_rate) << v;
    EXPECT_EQ(per_time[v], variant.at("rate_per_time").get<double>()) << v;
    EXPECT_DOUBLE_EQ(per_time[v], step_rate / eta) << v;
    EXPECT_EQ(variant.at("replicas").size(), 2u) << v;
    EXPECT_EQ(items.count(fmt::format("/rare_events/variant{}/replica1/stage_counts", v)), 1u);
  }
  for (int depth = 0; depth < 2; ++depth) {
    EXPECT_LT(rate(0, 0, depth), rate(0, 1, depth)) << "Δ_S 0.08 < 0.1 at η = 0.01";
    EXPECT_LT(rate(1, 0, depth), rate(1, 1, depth)) << "Δ_S 0.1 < 0.125 at η = 0.0125";
  }
  for (int eta = 0; eta < 2; ++eta) {
    for (int sigma = 0; sigma < 2; ++sigma) {
      EXPECT_LT(rate(eta, sigma, 1), rate(eta, sigma, 0)) << "deeper start well, slower escape";
    }
  }
}

// ---- determinism ------------------------------------------------------------------------------

/// The result as text without the timing (NaN entries compare equal as text, not as numbers).
std::string counts(const RunPlan& plan, const FfsResult& result) {
  nlohmann::json j = ffs_result_json(plan, result);
  j.erase("wall_seconds");
  return j.dump();
}

TEST(FfsDeterminism, ThreadsSegmentsAndSlotsChangeNothing) {
  const std::string text = double_well_config(10, 0.01, 200, 2);
  const RunPlan plan = load_config_text(text, "<test>");
  const std::string reference = counts(plan, run_config(text, 1));
  FfsOptions segmented;
  segmented.flux_segment_steps = 777;
  EXPECT_EQ(counts(plan, run_config(text, 2, segmented)), reference);
  EXPECT_EQ(counts(plan, run_config(text, 2)), reference);
}

TEST(FfsDeterminism, ResumeBetweenStagesGivesTheSameResult) {
  const std::string text = double_well_config(10, 0.01, 200, 2);
  const RunPlan plan = load_config_text(text, "<test>");
  const std::string reference = counts(plan, run_config(text));
  const std::filesystem::path dir =
      std::filesystem::path(SGDWALK_BINARY_DIR) / "test-scratch" / "ffs_resume";
  std::filesystem::create_directories(dir);
  FfsOptions options;
  options.checkpoint_path = (dir / "ffs_checkpoint.json").string();
  std::filesystem::remove(options.checkpoint_path);
  int calls = 0;
  options.on_stage = [&](const FfsProgress&) { return ++calls != 3; };
  EXPECT_THROW(run_config(text, 0, options), FfsStopped);
  ASSERT_TRUE(std::filesystem::exists(options.checkpoint_path));
  options.on_stage = nullptr;
  EXPECT_EQ(counts(plan, run_config(text, 0, options)), reference);
  EXPECT_FALSE(std::filesystem::exists(options.checkpoint_path));
}

// ---- both backends -----------------------------------------------------------------------------

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

INSTANTIATE_TEST_SUITE_P(Backends, FfsBackends,
                         ::testing::ValuesIn(sgdwalk::testing::backend_names()));

// ---- the CLI ------------------------------------------------------------------------------------

TEST(FfsCli, RunWritesSummaryAndRareEventsGroup) {
  const std::filesystem::path dir =
      std::filesystem::path(SGDWALK_BINARY_DIR) / "test-scratch" / "ffs_cli";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream config(dir / "ffs.toml");
    config << double_well_config(10, 0.01, 100, 2);
  }
  const std::string command = std::string(SGDWALK_CLI) + " run " + (dir / "ffs.toml").string() +
                              " --out " + (dir / "run").string() + " --backend cpu -q";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(dir / "run" / "summary.json");
  const nlohmann::json summary = nlohmann::json::parse(in);
  EXPECT_FALSE(summary.at("partial").get<bool>());
  const auto& variant = summary.at("rare_events").at("variants").at(0);
  EXPECT_GT(variant.at("rate_per_step").get<double>(), 0);
  EXPECT_EQ(variant.at("replicas").size(), 2u);
  const auto items = testing::h5_items(dir / "run" / "results.h5");
  EXPECT_EQ(items.count("/rare_events/rate_per_step"), 1u);
  EXPECT_EQ(items.count("/rare_events/variant0/replica1/stage_counts"), 1u);
  EXPECT_FALSE(std::filesystem::exists(dir / "run" / "ffs_checkpoint.json"));
}

// ---- randomness layout ------------------------------------------------------------------------

TEST(FfsRandomness, StreamsNeverMeetBruteForceWalkers) {
  // Brute-force subsequences have bit 63 clear for every variant < 2^31; FFS ones have it set.
  EXPECT_EQ(RunPlan::subsequence((std::int64_t{1} << 31) - 1, 0xffffffffLL) >> 63, 0u);
  EXPECT_EQ(ffs::subsequence(0, 0) >> 63, 1u);
  EXPECT_NE(ffs::block_base(1, 0), ffs::block_base(0, 1));
  EXPECT_EQ(ffs::block_base(255, 255) >> 48, 0xffffu);
}

TEST(FfsRandomness, StartChoicesAreUniform) {
  // 40000 choices among 8 states: each count within 5 binomial standard deviations of 5000.
  std::vector<int> histogram(8, 0);
  for (std::int64_t trial = 0; trial < 40000; ++trial)
    ++histogram[static_cast<std::size_t>(ffs::choose_start(5, 2, 1, 3, trial, 8))];
  const double sd = std::sqrt(40000 * (1.0 / 8) * (7.0 / 8));
  for (const int n : histogram) EXPECT_NEAR(n, 5000, 5 * sd);
  EXPECT_EQ(ffs::mulhi64(~std::uint64_t{0}, ~std::uint64_t{0}), ~std::uint64_t{0} - 1);
}

// ---- config errors ----------------------------------------------------------------------------

std::string config_error(const std::string& text) {
  try {
    load_config_text(text, "<test>");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(FfsConfig, ErrorsNameKeyValueAndRange) {
  const std::string base = R"(
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
learning_rate = 0.01
temperature = 0.1
[init]
positions = [-0.8]
[rare_event]
method = "ffs"
lambda_A = -0.6
)";
  {
    const std::string e = config_error(base + "interfaces = [-0.5, -0.3, -0.4, 0.2]\n");
    EXPECT_NE(e.find("rare_event.interfaces[2]"), std::string::npos) << e;
    EXPECT_NE(e.find("-0.4"), std::string::npos) << e;
    EXPECT_NE(e.find("strictly increasing"), std::string::npos) << e;
  }
  {
    const std::string e = config_error(base + "interfaces = [-0.7, 0.2]\n");
    EXPECT_NE(e.find("rare_event.interfaces[0]"), std::string::npos) << e;
    EXPECT_NE(e.find("inside A"), std::string::npos) << e;
  }
  {
    const std::string e = config_error(base + "interfaces = [-0.5, 0.2]\ntrials = 5\n");
    EXPECT_NE(e.find("rare_event.trials"), std::string::npos) << e;
    EXPECT_NE(e.find("[10, 1000000000]"), std::string::npos) << e;
  }
  {
    const std::string e = config_error(base + "lambda_0 = -0.5\n");
    EXPECT_NE(e.find("lambda_B"), std::string::npos) << e;
  }
  {
    std::string text = base + "interfaces = [-0.5, 0.2]\n";
    text.replace(text.find("[-0.8]"), 6, "[-0.1]");
    const std::string e = config_error(text);
    EXPECT_NE(e.find("init.positions[0]"), std::string::npos) << e;
  }
  {
    const std::string e =
        config_error(base + "interfaces = [-0.5, 0.2]\norder_parameter = \"y\"\n");
    EXPECT_NE(e.find("rare_event.order_parameter"), std::string::npos) << e;
  }
  {
    std::string text = base + "interfaces = [-0.5, 0.2]\n";
    const std::string noise_line = "noise = \"isotropic\"";
    text.replace(text.find(noise_line), noise_line.size(),
                 noise_line + "\nnoise_distribution = \"alpha_stable\"\nalpha = 1.5");
    const std::string e = config_error(text);
    EXPECT_NE(e.find("dynamics.noise_distribution"), std::string::npos) << e;
    EXPECT_NE(e.find("alpha_stable"), std::string::npos) << e;
    EXPECT_NE(e.find("allowed: \"gaussian\""), std::string::npos) << e;
  }
  {
    // The trial states carry no optimizer state: FFS refuses optimizers other than SGD.
    std::string text = base + "interfaces = [-0.5, 0.2]\n";
    const std::string noise_line = "noise = \"isotropic\"";
    text.replace(text.find(noise_line), noise_line.size(), noise_line + "\noptimizer = \"adam\"");
    const std::string e = config_error(text);
    EXPECT_NE(e.find("dynamics.optimizer"), std::string::npos) << e;
    EXPECT_NE(e.find("\"adam\""), std::string::npos) << e;
    EXPECT_NE(e.find("allowed: \"sgd\""), std::string::npos) << e;
  }
  {
    // Nor schedules (the stages do not follow a step index).
    std::string text = base + "interfaces = [-0.5, 0.2]\n";
    text.replace(text.find("[init]"), 6,
                 "[dynamics.noise_schedule]\nkind = \"exponential\"\ngamma = 0.99\n[init]");
    const std::string e = config_error(text);
    EXPECT_NE(e.find("dynamics.noise_schedule"), std::string::npos) << e;
    EXPECT_NE(e.find("rare_event.method = \"ffs\""), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace sgdwalk
