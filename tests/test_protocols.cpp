// The paper's protocols (reference section 4, examples/*.toml, docs/VALIDATION.md) at reduced size:
// every agreement and trend that docs/VALIDATION.md claims is checked here, with tolerances from
// the sample size (binomial errors for P_flat, standard errors for means, Poisson errors for
// arrival counts) and fixed seeds. What tests/test_physics_validation.cpp already checks (OU
// variances, P_flat and the histogram at y = 5, the sharp-bottom MFPT at one Δ_S) is not repeated.
//
// Also: the example configs parse and have the protocols' sizes, and the python port of the
// theory (python/sgdwalk/plot/theory.py) agrees with host/analysis/theory.cpp through a shared
// table.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "analysis/statistics.hpp"
#include "analysis/theory.hpp"
#include "backend/backend.hpp"
#include "config/config.hpp"
#include "run/driver.hpp"
#include "test_discrete_chain.hpp"

namespace sgdwalk {
namespace {

const theory::TwoValleyParams kPaper;
using testing::discrete_chain_p_flat;

/// Runs a config on the CPU backend. SGDWALK_PROTOCOL_SEED_OFFSET=k shifts every seed by k (to
/// check that no tolerance was tuned to one seed).
RunOutcome simulate(const std::string& config, const ExecuteOptions& options = {}) {
  RunPlan plan = load_config_text(config, "protocol");
  if (const char* offset = std::getenv("SGDWALK_PROTOCOL_SEED_OFFSET")) {
    plan.seed += std::stoull(offset);
  }
  auto backend = make_cpu_backend(0);
  return execute(plan, *backend, options);
}

/// Options that record every finite walker's freezing time t_f = freeze_step + 1 (in steps: its
/// last basin change; 1 if it never changed) into freezing_times[variant], `walkers` per variant.
ExecuteOptions recording_freezing_times(std::int64_t walkers,
                                        std::vector<std::vector<std::int64_t>>& freezing_times) {
  ExecuteOptions options;
  options.on_batch = [walkers, &freezing_times](const RunData& data, std::int64_t first,
                                                std::int64_t last) {
    const WalkerArrays& w = data.walkers;
    for (std::int64_t g = first; g < last; ++g) {
      const std::size_t k = w.at(g);
      if (w.nonfinite_step[k] >= 0) continue;
      const auto variant = static_cast<std::size_t>(g / walkers);
      if (freezing_times.size() <= variant) freezing_times.resize(variant + 1);
      freezing_times[variant].push_back(w.freeze_step[k] + 1);
    }
  };
  return options;
}

/// How many of `times` exceed `step`.
std::int64_t count_after(const std::vector<std::int64_t>& times, double step) {
  return std::count_if(times.begin(), times.end(),
                       [step](std::int64_t t) { return static_cast<double>(t) > step; });
}

/// A count k of rare events (binomial with small p, nearly Poisson) plus 4 of its standard
/// errors, √k (√1 for k = 0): an upper bound to compare with a claimed maximum.
double count_upper_bound(std::int64_t k) {
  const auto n = static_cast<double>(k);
  return n + 4 * std::sqrt(std::max(n, 1.0));
}

double binomial_se(double p, double n) {
  return std::sqrt(p * (1 - p) / n);
}

/// √(a² + b²): the standard error of a difference of independent estimates.
double combined(double a, double b) {
  return std::hypot(a, b);
}

// ---- The example configs ------------------------------------------------------------------------

std::string example(const std::string& name) {
  return std::string(SGDWALK_SOURCE_DIR) + "/examples/" + name;
}

TEST(Examples, EveryConfigParses) {
  int count = 0;
  for (const std::string dir : {"", "small"}) {
    for (const auto& entry : std::filesystem::directory_iterator(example(dir))) {
      if (entry.path().extension() != ".toml") continue;
      EXPECT_NO_THROW(load_config_file(entry.path().string())) << entry.path();
      ++count;
    }
  }
  EXPECT_GE(count, 17);
}

TEST(Examples, ProtocolConfigsHaveThePapersSizes) {
  {
    const RunPlan plan = load_config_file(example("paper_phase_diagram_hessian_squared.toml"));
    EXPECT_EQ(plan.noise, NoiseKind::hessian_squared);
    ASSERT_EQ(plan.variant_count(), 100);
    EXPECT_EQ(plan.walkers_per_variant, 2000);
    EXPECT_EQ(plan.steps, 20000);
    EXPECT_NEAR(plan.variants.front().learning_rate, 1e-3, 1e-15);
    EXPECT_NEAR(plan.variants.front().noise_strength, 1e-3, 1e-15);
    EXPECT_NEAR(plan.variants.back().learning_rate, 0.1, 1e-15);
    EXPECT_NEAR(plan.variants.back().noise_strength, 0.1, 1e-15);
  }
  {
    const RunPlan plan = load_config_file(example("fine_phase_diagram.toml"));
    EXPECT_EQ(plan.variant_count(), 1600);
    EXPECT_EQ(plan.walkers_per_variant, 10000);
  }
  {
    const RunPlan plan = load_config_file(example("p_flat_along_training.toml"));
    ASSERT_EQ(plan.variant_count(), 3);
    EXPECT_EQ(plan.steps, 100000);
    EXPECT_EQ(plan.walkers_per_variant, 1000);
    EXPECT_DOUBLE_EQ(plan.initial_positions[0][1], 1.0);
    const double sigmas[] = {0.01, 0.05, 0.1};
    for (int v = 0; v < 3; ++v) {
      EXPECT_DOUBLE_EQ(plan.variants[v].learning_rate, 0.01);
      EXPECT_DOUBLE_EQ(plan.variants[v].noise_strength, sigmas[v]);
    }
  }
  {
    const RunPlan plan = load_config_file(example("freezing_point.toml"));
    ASSERT_EQ(plan.variant_count(), 6);
    EXPECT_NEAR(plan.variants.front().temperature(), 1e-4, 1e-16);
    EXPECT_NEAR(plan.variants.back().temperature(), 4e-3, 1e-15);
    for (const auto& v : plan.variants) EXPECT_DOUBLE_EQ(v.learning_rate, 0.01);
  }
  {
    const RunPlan plan = load_config_file(example("effective_potential.toml"));
    EXPECT_EQ(plan.landscape, "two_valley_slice");
    EXPECT_DOUBLE_EQ(plan.variants[0].landscape.at("y"), 40.0);
    ASSERT_EQ(plan.histograms.size(), 1u);
  }
  // Escape rates start at the valley bottoms ∓g/2 and target the other basin.
  for (const auto& [file, from_sharp] : {std::pair{"escape_rates_sharp_to_flat.toml", true},
                                         {"escape_rates_flat_to_sharp.toml", false}}) {
    for (const std::string dir : {"", "small/"}) {
      const RunPlan plan = load_config_file(example(dir + file));
      const double y = plan.variants[0].landscape.at("y");
      const double bottom =
          from_sharp ? -theory::g_sharp(kPaper, y) / 2 : theory::g_flat(kPaper, y) / 2;
      EXPECT_NEAR(plan.initial_positions[0][0], bottom, 1e-15) << dir << file;
      EXPECT_EQ(plan.passage.kind, PassageKind::basin) << dir << file;
      EXPECT_EQ(plan.passage.basin, from_sharp ? kFlatBasin : kSharpBasin) << dir << file;
    }
  }
  {
    const RunPlan plan = load_config_file(example("isotropic_control.toml"));
    EXPECT_EQ(plan.noise, NoiseKind::isotropic);
    EXPECT_EQ(plan.landscape, "two_valley_slice");
  }
}

TEST(DiscreteChain, ConvergesToTheItoPFlatAsTheTimeStepShrinks) {
  // At y = 40, Δ_S = 0.04 the exact discrete chain's P_flat lies below the Itô value by a gap that
  // vanishes like √η (the walk converges to the Itô diffusion only as O(√η) at the cusp x = 0,
  // docs/VALIDATION.md §5): each halving of η divides the gap by √2 ≈ 1.41 up to the next, O(η)
  // term; the bracket 1.15–1.6 allows for that term (the chain gives 1.34 and 1.36). The gap
  // itself has no closed form: its value at η = 1e-3 (0.00756; 0.0101 and 0.0056 at 2e-3 and
  // 5e-4) is a regression value of this computation (the python port of the same method,
  // discrete_chain_p_flat in python/sgdwalk/plot/theory.py, gives 0.0075608), checked
  // independently by python/tests/test_theory.py: a Nyström solution of the chain gives 0.007560.
  const double ito = theory::p_flat_slice(kPaper, 40, 0.04, NoiseKind::hessian);
  const double gap_2 = ito - discrete_chain_p_flat(40, 0.04, 2e-3);
  const double gap_1 = ito - discrete_chain_p_flat(40, 0.04, 1e-3);
  const double gap_05 = ito - discrete_chain_p_flat(40, 0.04, 5e-4);
  EXPECT_GT(gap_05, 0);
  EXPECT_GT(gap_2 / gap_1, 1.15);
  EXPECT_LT(gap_2 / gap_1, 1.6);
  EXPECT_GT(gap_1 / gap_05, 1.15);
  EXPECT_LT(gap_1 / gap_05, 1.6);
  EXPECT_NEAR(gap_1, 0.00756, 0.0004) << "regression value of the exact-chain computation";
}

// ---- The python port of the theory
// ----------------------------------------------------------------
//
// python/tests/theory_reference.csv holds C++ values of the functions the plots use; this test
// checks that the table is what host/analysis/theory.cpp computes now, and
// python/tests/test_theory.py checks python/sgdwalk/plot/theory.py against the same table.
// Regenerate after a deliberate change of the theory with
// SGDWALK_WRITE_THEORY_TABLE=python/tests/theory_reference.csv.

struct TheoryRow {
  std::string function, kind;
  double y, delta_s, a, b;
};

NoiseKind noise_kind(const std::string& name) {
  if (name == "hessian_squared") return NoiseKind::hessian_squared;
  if (name == "isotropic") return NoiseKind::isotropic;
  return NoiseKind::hessian;
}

double cpp_theory(const TheoryRow& r) {
  const NoiseKind kind = noise_kind(r.kind);
  if (r.function == "p_flat_hessian_ito") return theory::p_flat_hessian_ito(kPaper, r.y, r.delta_s);
  if (r.function == "p_flat_isotropic") return theory::p_flat_isotropic(kPaper, r.y, r.delta_s);
  if (r.function == "p_flat_slice") return theory::p_flat_slice(kPaper, r.y, r.delta_s, kind);
  if (r.function == "log_slice_density") {
    return std::log(theory::slice_density(kPaper, r.y, r.delta_s, r.a, kind));
  }
  if (r.function == "slice_bin_probability") {
    return theory::slice_bin_probability(kPaper, r.y, r.delta_s, r.a, r.b, kind);
  }
  if (r.function == "effective_potential_slice") {
    return theory::effective_potential_slice(kPaper, r.y, r.delta_s, r.a);
  }
  if (r.function == "effective_temperature") {
    return theory::effective_temperature(kPaper, r.y, r.delta_s);
  }
  if (r.function == "log_mfpt_slice") {
    return theory::log_mfpt_slice(kPaper, r.y, r.delta_s, r.a, r.b, kind);
  }
  if (r.function == "log_kramers_rate") {
    return theory::log_kramers_rate(kPaper, r.y, r.delta_s, static_cast<int>(r.a));
  }
  if (r.function == "log_mfpt_erfi_approx") {
    return theory::log_mfpt_erfi_approx(kPaper, r.y, r.delta_s, static_cast<int>(r.a));
  }
  if (r.function == "loss") return theory::loss(kPaper, r.a, r.y);
  if (r.function == "two_valley_depth") return theory::two_valley_depth(kPaper, r.y);
  if (r.function == "discrete_chain_p_flat") {
    return discrete_chain_p_flat(r.y, r.delta_s, r.a, kind);
  }
  ADD_FAILURE() << "unknown function " << r.function;
  return 0;
}

std::vector<TheoryRow> theory_rows() {
  std::vector<TheoryRow> rows;
  for (const double y : {5.0, 40.0}) {
    rows.push_back({"two_valley_depth", "", y, 0, 0, 0});
    for (const double x : {-0.3, -0.05, 0.0, 0.07, 0.4}) rows.push_back({"loss", "", y, 0, x, 0});
    for (const double d : {1e-4, 2e-3, 0.03}) {
      rows.push_back({"p_flat_hessian_ito", "hessian", y, d, 0, 0});
      rows.push_back({"effective_temperature", "hessian", y, d, 0, 0});
      for (const std::string kind : {"hessian", "hessian_squared", "isotropic"}) {
        rows.push_back({"p_flat_slice", kind, y, d, 0, 0});
      }
      for (const int basin : {kSharpBasin, kFlatBasin}) {
        rows.push_back({"log_kramers_rate", "hessian", y, d, double(basin), 0});
        rows.push_back({"log_mfpt_erfi_approx", "hessian", y, d, double(basin), 0});
      }
    }
    for (const double d : {0.01, 0.3})
      rows.push_back({"p_flat_isotropic", "isotropic", y, d, 0, 0});
    for (const double x : {-0.5, -0.1, -1e-3, 0.0, 0.2, 0.6}) {
      rows.push_back({"log_slice_density", "hessian", y, 0.02, x, 0});
      rows.push_back({"log_slice_density", "isotropic", y, 0.05, x, 0});
      rows.push_back({"effective_potential_slice", "hessian", y, 0.03, x, 0});
    }
    rows.push_back({"slice_bin_probability", "hessian", y, 0.02, -0.2, -0.1});
    rows.push_back({"slice_bin_probability", "hessian", y, 0.02, -0.05, 0.05});
    rows.push_back({"slice_bin_probability", "hessian_squared", y, 0.002, 0.0, 0.3});
  }
  // First passage: out of each valley bottom at y = 5 (with and without the discrete shift), at
  // y = 40, and with the other noise kinds.
  const double sharp5 = -theory::g_sharp(kPaper, 5) / 2, flat5 = theory::g_flat(kPaper, 5) / 2;
  for (const double d : {6e-4, 2e-3, 6e-3}) {
    rows.push_back({"log_mfpt_slice", "hessian", 5, d, sharp5, 0.0});
    rows.push_back({"log_mfpt_slice", "hessian", 5, d, sharp5, 2.5e-3});
    rows.push_back({"log_mfpt_slice", "hessian", 5, d, flat5, 0.0});
    rows.push_back({"log_mfpt_slice", "hessian", 5, d, flat5, -2.5e-3});
  }
  rows.push_back({"log_mfpt_slice", "hessian", 40, 0.02, -theory::g_sharp(kPaper, 40) / 2, 0.0});
  rows.push_back({"log_mfpt_slice", "hessian", 40, 0.01, theory::g_flat(kPaper, 40) / 2, -0.01});
  rows.push_back({"log_mfpt_slice", "isotropic", 5, 0.01, sharp5, 0.0});
  rows.push_back({"log_mfpt_slice", "hessian_squared", 5, 0.001, flat5, 0.0});
  rows.push_back({"log_mfpt_slice", "hessian", 5, 0.002, -0.02, 0.03});  // start near the ridge
  rows.push_back({"discrete_chain_p_flat", "hessian", 40, 0.03, 1e-3, 0});
  rows.push_back({"discrete_chain_p_flat", "hessian", 5, 0.01, 5e-4, 0});
  rows.push_back({"discrete_chain_p_flat", "isotropic", 5, 0.05, 1e-3, 0});
  return rows;
}

std::string theory_table_path() {
  return std::string(SGDWALK_SOURCE_DIR) + "/python/tests/theory_reference.csv";
}

TEST(TheoryTable, PythonReferenceTableMatchesTheCppTheory) {
  const std::vector<TheoryRow> rows = theory_rows();
  if (const char* out = std::getenv("SGDWALK_WRITE_THEORY_TABLE")) {
    std::ofstream file(out);
    file << "function,kind,y,delta_s,a,b,value\n";
    for (const auto& r : rows) {
      file << fmt::format("{},{},{:.17g},{:.17g},{:.17g},{:.17g},{:.17g}\n", r.function, r.kind,
                          r.y, r.delta_s, r.a, r.b, cpp_theory(r));
    }
    GTEST_SKIP() << "wrote " << out;
  }
  std::ifstream file(theory_table_path());
  ASSERT_TRUE(file) << "missing " << theory_table_path();
  std::string line;
  std::getline(file, line);
  std::size_t index = 0;
  while (std::getline(file, line)) {
    if (line.empty()) continue;
    std::stringstream fields(line);
    TheoryRow r;
    std::string y, d, a, b, value;
    std::getline(fields, r.function, ',');
    std::getline(fields, r.kind, ',');
    std::getline(fields, y, ',');
    std::getline(fields, d, ',');
    std::getline(fields, a, ',');
    std::getline(fields, b, ',');
    std::getline(fields, value, ',');
    r.y = std::stod(y);
    r.delta_s = std::stod(d);
    r.a = std::stod(a);
    r.b = std::stod(b);
    ASSERT_LT(index, rows.size()) << "the table has more rows than theory_rows()";
    EXPECT_EQ(r.function, rows[index].function) << "row " << index;
    const double expected = std::stod(value), now = cpp_theory(r);
    EXPECT_NEAR(now, expected, 1e-11 * std::max(1.0, std::fabs(expected))) << line;
    ++index;
  }
  EXPECT_EQ(index, rows.size()) << "regenerate the table (see the comment above)";
}

// ---- Phase diagrams (2-D model, start on the ridge at y0 = 5) -----------------------------------

/// A zip sweep over (η, σ) pairs of the 2-D model with the paper's start.
std::string phase_points(const std::string& noise, const std::string& etas,
                         const std::string& sigmas, int walkers, int steps, int seed) {
  return fmt::format(R"(
[run]
walkers = {}
steps = {}
seed = {}
[landscape]
kind = "two_valley"
[dynamics]
noise = "{}"
learning_rate = 0.01
noise_strength = 0.01
[init]
positions = [[-0.01, 5.0], [0.01, 5.0]]
[observables]
sample_every = {}
[sweep]
mode = "zip"
learning_rate = {}
noise_strength = {}
)",
                     walkers, steps, seed, noise, steps, etas, sigmas);
}

TEST(PhaseDiagram, HessianNoisePFlatRisesSharplyWithDeltaSFromOneHalfToAboveNinetyPercent) {
  // Points of the paper's grid (η, σ ∈ [0.01, 0.1], 2e4 iterations): the diagonal at
  // Δ_S = ησ = 1e-4, 3.6e-4, 1e-3, 1e-2 and the two off-diagonal corners (Δ_S = 1e-3).
  const int walkers = 800;
  const RunOutcome outcome =
      simulate(phase_points("hessian", "[0.01, 0.01896, 0.03162, 0.1, 0.01, 0.1]",
                            "[0.01, 0.01896, 0.03162, 0.1, 0.1, 0.01]", walkers, 20000, 11));
  const auto& s = outcome.summaries;
  for (const auto& summary : s) EXPECT_EQ(summary.nonfinite_walkers, 0);
  // Δ_S = 1e-4: no walker ever leaves the side it started on: P_flat = 1/2 and t_f = 1.
  EXPECT_DOUBLE_EQ(s[0].p_flat, 0.5);
  EXPECT_DOUBLE_EQ(s[0].freezing_time.mean, 1.0);
  // Δ_S = 3.6e-4: still 1/2 within the binomial error.
  EXPECT_NEAR(s[1].p_flat, 0.5, 4 * binomial_se(0.5, walkers));
  // Δ_S = 1e-3, whichever of η and σ is large: most walkers end flat (P_flat depends on Δ_S).
  for (const int v : {2, 4, 5}) {
    EXPECT_GT(s[v].p_flat - 4 * s[v].p_flat_stderr, 0.8) << "variant " << v;
    EXPECT_GT(s[v].p_flat - s[1].p_flat, 4 * combined(s[1].p_flat_stderr, s[v].p_flat_stderr));
  }
  // ... but not exactly: at finite η the discrete map fluctuates more than the continuum (the
  // variance in a valley of curvature k is Δ_S/(1 − ηk/2) with hessian noise, 1.9x at η = 0.1 in
  // the sharp valley), so at equal Δ_S the larger η ends flat more often.
  EXPECT_GT(s[5].p_flat - s[4].p_flat, 4 * combined(s[4].p_flat_stderr, s[5].p_flat_stderr));
  // Δ_S = 1e-2: above 90 %.
  EXPECT_GT(s[3].p_flat - 4 * s[3].p_flat_stderr, 0.9);
  // Stronger noise keeps walkers crossing longer: η<t_f> grows along the diagonal.
  const double etas[] = {0.01, 0.01896, 0.03162, 0.1};
  for (int v = 1; v < 3; ++v) {
    EXPECT_GT(etas[v + 1] * s[v + 1].freezing_time.mean - etas[v] * s[v].freezing_time.mean,
              4 * combined(etas[v] * s[v].freezing_time.standard_error,
                           etas[v + 1] * s[v + 1].freezing_time.standard_error))
        << v;
  }
}

TEST(PhaseDiagram, HessianSquaredNoiseRisesEarlierAndDipsWhereWalkersNeverFreeze) {
  // The robustness grid (η, σ ∈ [1e-3, 1e-1]) at Δ_S = 1e-6, 3e-4 and 1e-2 (the corners and a
  // point of the diagonal).
  const int walkers = 800;
  const RunOutcome outcome = simulate(phase_points("hessian_squared", "[0.001, 0.01732, 0.1]",
                                                   "[0.001, 0.01732, 0.1]", walkers, 20000, 12));
  const auto& s = outcome.summaries;
  for (const auto& summary : s) EXPECT_EQ(summary.nonfinite_walkers, 0);
  EXPECT_DOUBLE_EQ(s[0].p_flat, 0.5);
  // D = Δ_S·H² is 2/f ≈ 6-9x larger than Δ_S·H at y = 5: the rise comes at ~10x smaller Δ_S.
  EXPECT_GT(s[1].p_flat - 4 * s[1].p_flat_stderr, 0.9);
  // At the strongest noise walkers still cross at the end (⟨t_f⟩ near the last step) and P_flat
  // is lower than on the plateau.
  EXPECT_GT(s[2].freezing_time.mean, 0.9 * 20000);
  EXPECT_GT(s[1].p_flat - s[2].p_flat, 4 * combined(s[1].p_flat_stderr, s[2].p_flat_stderr));
  EXPECT_GT(s[2].p_flat - 4 * s[2].p_flat_stderr, 0.5);
}

// ---- Along training and the freezing point (2-D model from y0 = 1, η = 0.01) -------------------

std::string training(const std::string& sweep, int walkers, int steps, int sample_every, int seed) {
  return fmt::format(R"(
[run]
walkers = {}
steps = {}
seed = {}
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
learning_rate = 0.01
noise_strength = 0.01
[init]
positions = [[-0.01, 1.0], [0.01, 1.0]]
[observables]
sample_every = {}
[sweep]
{}
)",
                     walkers, steps, seed, sample_every, sweep);
}

TEST(Training, LowNoiseFreezesEarlyWhileStrongNoiseKeepsWalkersCrossing) {
  // σ = 0.01 and 0.1 (Δ_S = 1e-4, 1e-3) of the paper's three, the first 1e4 of its 1e5 iterations
  // (t = 100, <y> ≈ 2.7), samples every 1000 steps.
  const int walkers = 2000;
  std::vector<std::vector<std::int64_t>> freezing_times;
  const RunOutcome outcome =
      simulate(training("noise_strength = [0.01, 0.1]", walkers, 10000, 1000, 21),
               recording_freezing_times(walkers, freezing_times));
  ASSERT_EQ(freezing_times.size(), 2u);
  const auto& low = outcome.summaries[0];
  const auto& high = outcome.summaries[1];
  const auto at = [](const VariantSummary& s, double time) -> const SampleSummary& {
    for (const auto& sample : s.samples) {
      if (sample.step == std::llround(time / 0.01)) return sample;
    }
    throw std::logic_error("no sample at that time");
  };
  for (const auto* s : {&low, &high}) {
    EXPECT_DOUBLE_EQ(s->samples.front().p_flat, 0.5);  // alternating start
    EXPECT_GT(s->samples.back().progress_mean, 2.0);   // training progressed (y0 = 1)
  }
  // (The 0.85 and 3 % below are regression bounds on the claims of docs/VALIDATION.md §3 (P_flat
  // along training), set from the measured values with room, not predictions of the theory: the
  // theory's numbers here are the transition at Δ_S* and the plateau, tested elsewhere in this
  // file.) At t = 50 the weakly driven walkers have already left the sharp valley and stopped
  // crossing: P_flat is above 0.85, and fewer than 3 % of the walkers change basin after t = 50
  // (their own last basin changes, t_f > 5000 steps: a count, bounded by 4 of its Poisson standard
  // errors; 20 of 2000 here). P_flat at t = 50 and at the end are the same walkers (paired), so the
  // count of walkers that changed basin, not two binomial errors, bounds their difference.
  const SampleSummary &low50 = at(low, 50), &high50 = at(high, 50), &high100 = at(high, 100);
  EXPECT_GT(low50.p_flat - 4 * low50.p_flat_stderr, 0.85);
  const std::int64_t low_late = count_after(freezing_times[0], 5000);
  const std::int64_t high_late = count_after(freezing_times[1], 5000);
  EXPECT_LT(count_upper_bound(low_late), 0.03 * walkers) << low_late << " walkers";
  EXPECT_LE(std::abs(low.flat - static_cast<std::int64_t>(low50.flat)), low_late);
  EXPECT_GT(low50.p_flat - high50.p_flat, 4 * combined(low50.p_flat_stderr, high50.p_flat_stderr));
  // With ten times the noise they keep crossing: most walkers change basin after t = 50 (all 2000
  // here), P_flat is still below the weak-noise plateau at t = 100 (independent walkers: both
  // binomial errors) and the last basin changes come much later.
  EXPECT_GT(static_cast<double>(high_late) - 4 * std::sqrt(static_cast<double>(high_late)),
            0.5 * walkers)
      << high_late << " walkers";
  EXPECT_GT(low.p_flat - high100.p_flat, 4 * combined(low.p_flat_stderr, high100.p_flat_stderr));
  std::printf(
      "training: weak noise P_flat %.4f at t = 50, %.4f at the end, %lld of %d walkers changed "
      "basin after t = 50; strong noise P_flat %.4f ± %.4f at t = 100, %lld changed after t = 50\n",
      low50.p_flat, low.p_flat, static_cast<long long>(low_late), walkers, high100.p_flat,
      high100.p_flat_stderr, static_cast<long long>(high_late));
  EXPECT_GT(
      0.01 * (high.freezing_time.mean - low.freezing_time.mean),
      5 * 0.01 * combined(low.freezing_time.standard_error, high.freezing_time.standard_error));
  EXPECT_LT(0.01 * low.freezing_time.mean, 25.0);
  EXPECT_GT(0.01 * high.freezing_time.mean, 50.0);
}

TEST(Freezing, LargerDeltaSFreezesLaterAtLargerYAndEndsMoreOftenFlat) {
  // Three of the protocol's Δ_S in [1e-4, 4e-3] at η = 0.01 from y0 = 1, each run until most of
  // its walkers froze (η<t_f> ≈ 13, 130, 460): t = 50, 400 and 1000. Not all: a few walkers still
  // change basin late in each run (the last at 99.7 %, 68 % and 98 % of it).
  struct Point {
    double delta_s;
    int walkers, steps;
  };
  const Point points[] = {{1e-4, 4000, 5000}, {6.3e-4, 1000, 40000}, {4e-3, 1000, 100000}};
  std::vector<VariantSummary> s;
  std::vector<std::vector<std::int64_t>> freezing_times;  // t_f of every walker, per point
  for (const Point& p : points) {
    std::vector<std::vector<std::int64_t>> times;
    s.push_back(simulate(training(fmt::format("temperature = [{}]", p.delta_s), p.walkers, p.steps,
                                  p.steps, 22),
                         recording_freezing_times(p.walkers, times))
                    .summaries[0]);
    ASSERT_EQ(times.size(), 1u);
    freezing_times.push_back(times[0]);
  }
  for (int v = 0; v + 1 < 3; ++v) {
    EXPECT_GT(s[v + 1].y_freeze.mean - s[v].y_freeze.mean,
              5 * combined(s[v].y_freeze.standard_error, s[v + 1].y_freeze.standard_error))
        << v;
    EXPECT_GT(
        s[v + 1].freezing_time.mean - s[v].freezing_time.mean,
        5 * combined(s[v].freezing_time.standard_error, s[v + 1].freezing_time.standard_error))
        << v;
  }
  // Mostly frozen well before each run's end (t_f is in steps): the mean freezing time lies before
  // (Regression bounds on the documented claim "walkers freeze in the run's first half", set
  // from the measured values with room, not theory's predictions.)
  // 60 % of the run, fewer than 15 % of the walkers changed basin after 60 % of it (measured 9.4 %,
  // 0.2 %, 6.9 %) and fewer than 2.5 % in its last 10 % (0.9 %, 0, 0.1 %); each count bounded by 4
  // of its Poisson standard errors. (Not every walker: the last changes come at 99.7 %, 68 % and
  // 98 % of the runs, so "all froze before 60 % of the run" would be false.)
  for (int v = 0; v < 3; ++v) {
    const double steps = points[v].steps, walkers = points[v].walkers;
    EXPECT_LT(s[v].freezing_time.mean + 5 * s[v].freezing_time.standard_error, 0.6 * steps) << v;
    ASSERT_EQ(static_cast<double>(freezing_times[v].size()), walkers) << v;
    const std::int64_t after_60 = count_after(freezing_times[v], 0.6 * steps);
    const std::int64_t after_90 = count_after(freezing_times[v], 0.9 * steps);
    EXPECT_LT(count_upper_bound(after_60), 0.15 * walkers) << v << ": " << after_60;
    EXPECT_LT(count_upper_bound(after_90), 0.025 * walkers) << v << ": " << after_90;
    EXPECT_GT(s[v].p_flat - 4 * s[v].p_flat_stderr, 0.88) << v;
    std::printf(
        "freezing Δ_S = %g: η<t_f> %.1f ± %.1f (run %g), %lld of %g walkers changed basin after "
        "60 %% of the run, %lld after 90 %%, the last at %.1f %%\n",
        points[v].delta_s, 0.01 * s[v].freezing_time.mean, 0.01 * s[v].freezing_time.standard_error,
        0.01 * steps, static_cast<long long>(after_60), walkers, static_cast<long long>(after_90),
        100.0 *
            static_cast<double>(
                *std::max_element(freezing_times[v].begin(), freezing_times[v].end())) /
            steps);
  }
  // Walkers freeze where the sharp -> flat Arrhenius exponent β = ΔL(y) f2(y)/(2Δ_S) has grown to
  // ~3-4.3, nearly independently of Δ_S (a 40x range): the barrier, not the noise, sets the point.
  for (int v = 0; v < 3; ++v) {
    const double beta = theory::two_valley_depth(kPaper, s[v].y_freeze.mean) *
                        theory::f_sharp(kPaper, s[v].y_freeze.mean) / (2 * points[v].delta_s);
    EXPECT_GT(beta, 2.5) << v;
    EXPECT_LT(beta, 5.0) << v;
  }
  // More noise, more walkers end in the flat valley (0.93 -> 0.97).
  EXPECT_GT(s[2].p_flat - s[0].p_flat, 4 * combined(s[0].p_flat_stderr, s[2].p_flat_stderr));
}

// ---- Fixed-y escape rates -----------------------------------------------------------------------

/// A slice run at y started at x_start with a first-passage target.
std::string slice_passage(double y, double x_start, const std::string& target, double dt,
                          double delta_s, int walkers, int steps, int seed) {
  return fmt::format(R"(
[run]
walkers = {}
steps = {}
seed = {}
[landscape]
kind = "two_valley_slice"
y = {:.17g}
[dynamics]
noise = "hessian"
dt = {:.17g}
temperature = {:.17g}
[init]
positions = [[{:.17g}]]
[observables]
sample_every = {}
[observables.first_passage]
target = "{}"
)",
                     walkers, steps, seed, y, dt, delta_s, x_start, steps, target);
}

/// ln MFPT from the bottom of `from` to the other basin, the absorbing point moved past x = 0 by
/// 0.5826·sqrt(2Dη) (D on the approach side) for the discrete observation.
double shifted_mfpt(double y, double delta_s, double eta, int from) {
  const double d = theory::slice_diffusion(kPaper, y, delta_s, from, NoiseKind::hessian);
  const double shift = 0.5826 * std::sqrt(2 * d * eta);
  const double x_start =
      from == kSharpBasin ? -theory::g_sharp(kPaper, y) / 2 : theory::g_flat(kPaper, y) / 2;
  return theory::mfpt_slice_hessian(kPaper, y, delta_s, x_start,
                                    from == kSharpBasin ? shift : -shift);
}

class EscapeRate : public ::testing::TestWithParam<int> {};

TEST_P(EscapeRate, CensoredRateMatchesOneOverTheQuadratureMfptAtAHighBarrier) {
  // β = ΔL f/(2Δ_S) ≈ 5.4: escapes are rare events, the waiting time is exponential (the walker
  // relaxes in the valley in ~f/2 ≈ 0.1, the MFPT is ~25-35), and arrivals in the exposure time
  // are Poisson with mean exposure / MFPT. The continuum 1/MFPT (absorbing at x = 0, without the
  // discrete-observation shift) is 12.5 % (flat → sharp) and 14.6 % (sharp → flat) faster: with
  // 15000 and 12000 walkers (~6400 and ~7000 arrivals) the two predictions are 10 and 12 Poisson
  // standard errors apart, so the count matches the shifted MFPT within 5 and rejects the
  // continuum one by more than 5 (measured: z = +0.5 and −1.8 against the shifted MFPT, −9.0 and
  // −13.1 against the continuum one).
  const int from = GetParam();
  const double y = 5, eta = 5e-4;
  const double delta_s = from == kSharpBasin ? 8e-4 : 1.2e-3;
  ASSERT_NEAR(
      theory::two_valley_depth(kPaper, y) * theory::f_branch(kPaper, y, from) / (2 * delta_s), 5.4,
      0.05);
  const int walkers = from == kSharpBasin ? 12000 : 15000, steps = 40000;
  const double x_start =
      from == kSharpBasin ? -theory::g_sharp(kPaper, y) / 2 : theory::g_flat(kPaper, y) / 2;
  const RunOutcome outcome = simulate(slice_passage(
      y, x_start, from == kSharpBasin ? "flat" : "sharp", eta, delta_s, walkers, steps, 31 + from));
  const PassageSummary& passage = outcome.summaries[0].passage;
  ASSERT_EQ(passage.started_in_target, 0);
  const double mfpt = shifted_mfpt(y, delta_s, eta, from);
  const double continuum = theory::mfpt_slice_hessian(kPaper, y, delta_s, x_start, 0.0);
  const double arrived = static_cast<double>(passage.arrived);
  const double expected_arrivals = passage.exposure_time / mfpt;
  const double continuum_arrivals = passage.exposure_time / continuum;
  // The test can tell the two apart: > 8 standard errors between them.
  ASSERT_GT((continuum_arrivals - expected_arrivals) / std::sqrt(expected_arrivals), 8.0);
  EXPECT_NEAR(arrived, expected_arrivals, 5 * std::sqrt(expected_arrivals))
      << "rate " << passage.rate << " [" << passage.rate_low << ", " << passage.rate_high
      << "], 1/MFPT " << 1 / mfpt;
  EXPECT_GT(continuum_arrivals - arrived, 5 * std::sqrt(continuum_arrivals))
      << "the continuum 1/MFPT " << 1 / continuum << " is not rejected";
  // The exact 95 % interval is consistent with the rate's Poisson error.
  EXPECT_LT(passage.rate_low, passage.rate);
  EXPECT_GT(passage.rate_high, passage.rate);
  // The continuum MFPT is 11-13 % shorter; the Kramers limit lies below it.
  EXPECT_GT(mfpt / continuum, 1.10);
  EXPECT_LT(1 / theory::kramers_rate(kPaper, y, delta_s, from), continuum);
  std::printf(
      "escape from basin %d: %lld arrivals of %d walkers, expected %.1f (shifted MFPT, z %.2f), "
      "%.1f (continuum, z %.2f)\n",
      from, static_cast<long long>(passage.arrived), walkers, expected_arrivals,
      (arrived - expected_arrivals) / std::sqrt(expected_arrivals), continuum_arrivals,
      (arrived - continuum_arrivals) / std::sqrt(continuum_arrivals));
}

INSTANTIATE_TEST_SUITE_P(BothDirections, EscapeRate, ::testing::Values(kSharpBasin, kFlatBasin),
                         [](const auto& info) {
                           return info.param == kSharpBasin ? std::string("SharpToFlat")
                                                            : std::string("FlatToSharp");
                         });

TEST(EscapeMeanTime, FlatToSharpMatchesQuadratureAtALowBarrier) {
  // β ≈ 1: not a rare event (the waiting time is not exponential), but every walker arrives by
  // t = 15 (~20 MFPTs) and the mean passage time is the MFPT. (test_physics_validation checks
  // sharp → flat at β ≈ 0.9.) The continuum MFPT (no discrete-observation shift) is 6.5 % shorter;
  // with 25000 walkers (s.e. 0.65 %) the two are 10 standard errors apart: the mean matches the
  // shifted MFPT within 5 and rejects the continuum one by more than 5 (measured z = −0.4 and
  // +9.6).
  const double y = 5, eta = 5e-4, delta_s = 6e-3;
  const int walkers = 25000, steps = 30000;
  const double x_start = theory::g_flat(kPaper, y) / 2;
  const RunOutcome outcome =
      simulate(slice_passage(y, x_start, "sharp", eta, delta_s, walkers, steps, 33));
  const PassageSummary& passage = outcome.summaries[0].passage;
  ASSERT_EQ(passage.arrived, walkers) << "run long enough for all to arrive";
  const double expected = shifted_mfpt(y, delta_s, eta, kFlatBasin);
  const double continuum = theory::mfpt_slice_hessian(kPaper, y, delta_s, x_start, 0.0);
  const double simulated = eta * passage.steps.mean, se = eta * passage.steps.standard_error;
  ASSERT_GT((expected - continuum) / se, 8.0);  // the test can tell the two apart
  EXPECT_NEAR(simulated, expected, 5 * se);
  EXPECT_GT(simulated - continuum, 5 * se)
      << "the continuum MFPT " << continuum << " is not rejected";
  std::printf(
      "flat → sharp at β ≈ 1: mean passage time %.5f ± %.5f, shifted MFPT %.5f (z %.2f), continuum "
      "%.5f (z %.2f)\n",
      simulated, se, expected, (simulated - expected) / se, continuum,
      (simulated - continuum) / se);
  // Here all arrive, so the censored rate is 1/mean exactly.
  EXPECT_NEAR(passage.rate, 1 / simulated, 1e-12 / simulated);
}

// ---- Effective potential at the paper's slice y = 40 --------------------------------------------

/// Weighted least squares u = slope·s + c; returns {slope, its standard error}.
std::pair<double, double> fit_slope(const std::vector<double>& s, const std::vector<double>& u,
                                    const std::vector<double>& err) {
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double w = 1 / (err[i] * err[i]);
    sw += w;
    sx += w * s[i];
    sy += w * u[i];
    sxx += w * s[i] * s[i];
    sxy += w * s[i] * u[i];
  }
  const double det = sw * sxx - sx * sx;
  return {(sw * sxy - sx * sy) / det, std::sqrt(sw / det)};
}

TEST(EffectivePotential, SliceAtY40DeepensTheFlatValleyByRootGamma) {
  const double y = 40, delta_s = 0.03, eta = 1e-3;
  const int walkers = 10000, steps = 30000, bins = 56;
  const double lo = -1.2, hi = 1.6;
  const double t_eff = theory::effective_temperature(kPaper, y, delta_s);
  // P_flat relaxes from the ridge start with a time constant of ~3.2 (the chain): after t = 15
  // every walker every 1500 steps (t = 1.5, while the in-valley correlation time is 1/L'' = f/2 <=
  // 0.24): the deposits within a side are effectively independent. (The per-side constants absorb
  // the slower between-valley part.) P_flat is compared at t = 30.
  const RunOutcome outcome = simulate(fmt::format(R"(
[run]
walkers = {}
steps = {}
seed = 41
[landscape]
kind = "two_valley_slice"
y = 40.0
[dynamics]
noise = "hessian"
dt = {}
temperature = {}
[init]
positions = [[-0.01], [0.01]]
[observables]
sample_every = {}
[[observables.histogram]]
name = "x"
x_range = [{}, {}]
bins = {}
window = [{}, {}]
every = 1500
temperature = {:.17g}
)",
                                                  walkers, steps, eta, delta_s, steps, lo, hi, bins,
                                                  steps / 2, steps, t_eff));
  const VariantSummary& summary = outcome.summaries[0];
  const HistogramSummary& histogram = summary.histograms[0];
  ASSERT_EQ(histogram.deposits, static_cast<std::uint64_t>(walkers) * 11);

  // P_flat (the walkers' final states: independent) is the stationary one of the discrete chain,
  // which is 0.7 % below the Itô quasi-steady value at this η (see DiscreteChain).
  const double p_flat = discrete_chain_p_flat(y, delta_s, eta);
  EXPECT_NEAR(summary.p_flat, p_flat, 4 * binomial_se(p_flat, walkers));
  const double ito = theory::p_flat_slice(kPaper, y, delta_s, NoiseKind::hessian);
  EXPECT_GT(ito - p_flat, 0.004);
  EXPECT_LT(ito - p_flat, 0.01);

  // −T_eff ln P against L − L(0, y), fitted per side over bins with >= 50 counts: the slopes are
  // γ^{+1/2} (flat) and γ^{−1/2} (sharp), each within 4 standard errors of the fit.
  const double width = (hi - lo) / bins, root_gamma = std::sqrt(theory::flatness_ratio(kPaper));
  std::vector<double> s[2], u[2], err[2];
  for (int b = 0; b < bins; ++b) {
    const double count = static_cast<double>(histogram.counts[static_cast<std::size_t>(b)]);
    if (count < 50) continue;
    const double x = lo + (b + 0.5) * width;
    const int side = x >= 0 ? 1 : 0;
    const double p = count / static_cast<double>(histogram.deposits);
    s[side].push_back(theory::loss(kPaper, x, y) - theory::loss(kPaper, 0.0, y));
    u[side].push_back(histogram.effective_potential[static_cast<std::size_t>(b)]);
    err[side].push_back(t_eff * std::sqrt((1 - p) / count));
  }
  ASSERT_GE(s[0].size(), 8u);
  ASSERT_GE(s[1].size(), 8u);
  const auto [sharp_slope, sharp_se] = fit_slope(s[0], u[0], err[0]);
  const auto [flat_slope, flat_se] = fit_slope(s[1], u[1], err[1]);
  EXPECT_NEAR(flat_slope, root_gamma, 4 * flat_se);
  EXPECT_NEAR(sharp_slope, 1 / root_gamma, 4 * sharp_se);
  // The two slopes are distinguishable from each other and from the bare loss (slope 1).
  EXPECT_GT(flat_slope - 1, 4 * flat_se);
  EXPECT_GT(1 - sharp_slope, 4 * sharp_se);
}

// ---- Isotropic control
// ----------------------------------------------------------------------------

TEST(IsotropicControl, PFlatIsTheRootGammaShareAtEveryYAndNoise) {
  // Exact fixed-y P_flat with isotropic noise; since g_i/√f_i is the same on both branches it is
  // √γ/(1 + √γ) = x1/(x1 + x2) for every y and Δ.
  const int walkers = 5000;
  const RunOutcome outcome = simulate(R"(
[run]
walkers = 5000
steps = 8000
seed = 51
[landscape]
kind = "two_valley_slice"
y = 5.0
[dynamics]
noise = "isotropic"
dt = 0.001
temperature = 0.02
[init]
positions = [[-0.01], [0.01]]
[observables]
sample_every = 8000
[sweep]
mode = "zip"
y = [5.0, 5.0, 40.0]
temperature = [0.02, 0.3, 0.25]
)");
  const double ys[] = {5.0, 5.0, 40.0}, deltas[] = {0.02, 0.3, 0.25};
  for (int v = 0; v < 3; ++v) {
    const double expected = theory::p_flat_isotropic(kPaper, ys[v], deltas[v]);
    EXPECT_NEAR(expected, 0.8 / 1.45, 1e-12);
    const double se = binomial_se(expected, walkers);
    EXPECT_NEAR(outcome.summaries[v].p_flat, expected, 4 * se) << "variant " << v;
    // With a continuous D the discrete chain's own P_flat is within 0.1 % of the exact one.
    EXPECT_NEAR(discrete_chain_p_flat(ys[v], deltas[v], 1e-3, NoiseKind::isotropic), expected, 1e-3)
        << "variant " << v;
    // Hessian noise at the same Δ_S would prefer the flat valley measurably more.
    EXPECT_GT(theory::p_flat_hessian_ito(kPaper, ys[v], deltas[v]) - expected, 6 * se);
  }
}

// ---- Issue 17's examples reproduce their effects (VALIDATION.md sections 11 and 12) -------------

/// Runs an example config as it is, on the CPU backend (both are ~1 CPU-second).
RunOutcome run_example(const std::string& name) {
  RunPlan plan = load_config_file(example(name));
  if (const char* offset = std::getenv("SGDWALK_PROTOCOL_SEED_OFFSET")) {
    plan.seed += std::stoull(offset);
  }
  auto backend = make_cpu_backend(0);
  return execute(plan, *backend, {});
}

TEST(Examples, LearningRateDecayFreezesWalkersEarlier) {
  // examples/learning_rate_decay_freezing.toml: an exponential decay of η (γ = 1, 0.9999, 0.9995,
  // 0.999) freezes the walkers earlier (each faster decay: mean freezing time and ⟨y_freeze⟩ lower
  // by more than 4 combined standard errors), with fewer of them in the flat valley (P_flat never
  // higher by more than 3 s.e., and the fastest decay below the constant rate by more than 4).
  const RunOutcome outcome = run_example("learning_rate_decay_freezing.toml");
  ASSERT_EQ(outcome.summaries.size(), 4u);
  const auto& s = outcome.summaries;
  for (std::size_t v = 1; v < s.size(); ++v) {
    EXPECT_LT(s[v].freezing_time.mean + 4 * combined(s[v].freezing_time.standard_error,
                                                     s[v - 1].freezing_time.standard_error),
              s[v - 1].freezing_time.mean)
        << "variant " << v;
    EXPECT_LT(s[v].y_freeze.mean +
                  4 * combined(s[v].y_freeze.standard_error, s[v - 1].y_freeze.standard_error),
              s[v - 1].y_freeze.mean)
        << "variant " << v;
    EXPECT_LT(s[v].p_flat,
              s[v - 1].p_flat + 3 * combined(s[v].p_flat_stderr, s[v - 1].p_flat_stderr))
        << "variant " << v;
  }
  EXPECT_LT(s.back().p_flat + 4 * combined(s.back().p_flat_stderr, s.front().p_flat_stderr),
            s.front().p_flat);
}

TEST(Examples, MomentumActsThroughTheEffectiveLearningRate) {
  // examples/momentum_effective_learning_rate.toml (μ = 0, 0.5, 0.75 × η = 0.0025, 0.005, 0.01):
  // heavy ball's P_flat is ordered by η/(1 − μ) at leading order. Every variant of a larger
  // effective rate among 0.005, 0.01 and 0.02 has a larger P_flat than every variant of the next
  // smaller one (by more than 4 combined binomial errors), although within a group η differs by up
  // to 4×. (Within a group heavy ball sits somewhat below plain SGD at the same η/(1 − μ): the
  // O(η) difference VALIDATION.md §12 states; at 0.04 P_flat has saturated near 0.87.)
  const RunOutcome outcome = run_example("momentum_effective_learning_rate.toml");
  const RunPlan plan = load_config_file(example("momentum_effective_learning_rate.toml"));
  ASSERT_EQ(outcome.summaries.size(), 9u);
  std::map<double, std::vector<std::size_t>> by_effective_rate;
  for (std::size_t v = 0; v < plan.variants.size(); ++v) {
    const Variant& variant = plan.variants[v];
    const double effective = variant.learning_rate / (1 - variant.momentum);
    by_effective_rate[std::round(effective * 1e6) / 1e6].push_back(v);
  }
  const auto& s = outcome.summaries;
  const std::vector<double> groups = {0.005, 0.01, 0.02};
  for (std::size_t g = 0; g + 1 < groups.size(); ++g) {
    for (const std::size_t low : by_effective_rate.at(groups[g])) {
      for (const std::size_t high : by_effective_rate.at(groups[g + 1])) {
        EXPECT_GT(s[high].p_flat,
                  s[low].p_flat + 4 * combined(s[high].p_flat_stderr, s[low].p_flat_stderr))
            << "η/(1 − μ) = " << groups[g + 1] << " (variant " << high << ") against " << groups[g]
            << " (variant " << low << ")";
      }
    }
  }
}

// ---- Heavy-tailed noise escapes the sharp valley by one jump (VALIDATION.md section 9) ----------

// examples/heavy_tailed_escape.toml at 500 walkers and 2·10⁴ steps: for α < 2 the censored escape
// rate from the sharp bottom equals the one-jump rate C_α s^α d^{−α} (s = √Δ_S, d = 0.2 the
// distance to the barrier) within 5 standard errors (1/√arrivals) plus the bound α(s/d)^α of the
// leading correction (as StableExit in test_physics_validation.cpp); Gaussian walkers (α = 2)
// never cross the barrier of 2500 Δ_S.
TEST(HeavyTailedEscape, SharpValleyIsLeftByOneJumpAtTheStableTailRate) {
  RunPlan plan = load_config_file(example("heavy_tailed_escape.toml"));
  ASSERT_EQ(plan.noise_distribution, NoiseDistribution::alpha_stable);
  ASSERT_EQ(plan.variant_count(), 5);
  // The example's 2000 walkers x 50000 steps (~20 CPU-seconds): 1200-2000 arrivals per α, so 5
  // standard errors are 11-15 % (500 x 20000 gave 22-39 %, too wide to catch an error of 30 % in
  // the tail constant or the η^{1/α} scale).
  ASSERT_EQ(plan.walkers_per_variant, 2000);
  ASSERT_EQ(plan.steps, 50000);
  plan.sample_steps = {0, plan.steps};
  if (const char* offset = std::getenv("SGDWALK_PROTOCOL_SEED_OFFSET")) {
    plan.seed += std::stoull(offset);
  }
  auto backend = make_cpu_backend(0);
  const RunOutcome outcome = execute(plan, *backend, {});
  const double pi = 3.14159265358979323846, distance = 0.2;
  for (std::size_t v = 0; v < plan.variants.size(); ++v) {
    const Variant& variant = plan.variants[v];
    const PassageSummary& passage = outcome.summaries[v].passage;
    if (variant.alpha == 2.0) {
      EXPECT_EQ(passage.arrived, 0) << "Gaussian walkers do not climb 2500 Delta_S";
      continue;
    }
    const double a = variant.alpha, s = std::sqrt(variant.temperature());
    const double expected =
        std::tgamma(a) * std::sin(pi * a / 2) / pi * std::pow(s, a) * std::pow(distance, -a);
    ASSERT_GT(passage.arrived, 1000);
    const double relative_se = 1 / std::sqrt(static_cast<double>(passage.arrived));
    EXPECT_NEAR(passage.rate / expected, 1.0, 5 * relative_se + a * std::pow(s / distance, a))
        << "alpha " << a;
  }
}

}  // namespace
}  // namespace sgdwalk
