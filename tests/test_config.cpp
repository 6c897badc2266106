// Config parsing: defaults, sweeps, and the promised error messages (key, value, allowed range).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <toml.hpp>
#include <vector>

#include "backend/dynamics_table.hpp"
#include "config/config.hpp"
#include "config/config_keys.hpp"

namespace sgdwalk {
namespace {

RunPlan parse(const std::string& text) {
  return load_config_text(text, "test.toml");
}

/// Parses `text`, expecting a ConfigError whose message contains every fragment.
void expect_error(const std::string& text, std::initializer_list<std::string> fragments) {
  try {
    parse(text);
    ADD_FAILURE() << "expected a ConfigError for:\n" << text;
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    for (const auto& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message lacks '" << fragment << "':\n"
          << message;
    }
  }
}

const std::string kMinimal = R"(
[dynamics]
learning_rate = 0.1
noise_strength = 0.05
)";

TEST(Config, MinimalConfigGetsThePapersDefaults) {
  const RunPlan plan = parse(kMinimal);
  EXPECT_EQ(plan.landscape, "two_valley");
  EXPECT_EQ(plan.noise, NoiseKind::hessian);
  EXPECT_EQ(plan.precision, Precision::f64);
  EXPECT_EQ(plan.dim, 2);
  ASSERT_EQ(plan.variants.size(), 1u);
  const Variant& v = plan.variants[0];
  EXPECT_DOUBLE_EQ(v.landscape.at("x1"), 0.8);
  EXPECT_DOUBLE_EQ(v.landscape.at("x2"), 0.65);
  EXPECT_DOUBLE_EQ(v.landscape.at("y_f"), 20);
  EXPECT_DOUBLE_EQ(v.epsilon, 1e-8);
  ASSERT_EQ(plan.initial_positions.size(), 2u);
  EXPECT_DOUBLE_EQ(plan.initial_positions[0][0], -0.01);
  EXPECT_DOUBLE_EQ(plan.initial_positions[1][0], 0.01);
  EXPECT_DOUBLE_EQ(plan.initial_positions[0][1], 5.0);
  // Default samples: 21 evenly spaced, including 0 and the last step.
  EXPECT_EQ(plan.sample_steps.front(), 0);
  EXPECT_EQ(plan.sample_steps.back(), plan.steps);
  EXPECT_EQ(plan.sample_steps.size(), 21u);
}

TEST(Config, LangevinParametrisationConvertsToLearningRateAndSigma) {
  const RunPlan plan = parse("[dynamics]\ndt = 0.01\ntemperature = 0.002\n");
  EXPECT_DOUBLE_EQ(plan.variants[0].learning_rate, 0.01);
  EXPECT_DOUBLE_EQ(plan.variants[0].noise_strength, 0.2);
  EXPECT_DOUBLE_EQ(plan.variants[0].temperature(), 0.002);
}

TEST(Config, GridSweepFollowsFileOrderFirstKeySlowest) {
  const RunPlan plan = parse(kMinimal + R"(
[sweep]
noise_strength = { logspace = [-2, -1, 3] }
learning_rate = [0.01, 0.02]
)");
  ASSERT_EQ(plan.variants.size(), 6u);
  EXPECT_EQ(plan.variants[0].swept[0].first, "noise_strength");
  EXPECT_NEAR(plan.variants[0].noise_strength, 0.01, 1e-15);
  EXPECT_NEAR(plan.variants[1].noise_strength, 0.01, 1e-15);
  EXPECT_DOUBLE_EQ(plan.variants[1].learning_rate, 0.02);
  EXPECT_NEAR(plan.variants[2].noise_strength, std::pow(10.0, -1.5), 1e-15);
  EXPECT_NEAR(plan.variants[5].noise_strength, 0.1, 1e-15);
  EXPECT_DOUBLE_EQ(plan.variants[5].learning_rate, 0.02);
}

TEST(Config, ZipSweepPairsValuesAndSweepsLandscapeParameters) {
  const RunPlan plan = parse(kMinimal + R"(
[sweep]
mode = "zip"
x2 = { linspace = [0.6, 0.7, 3] }
temperature = [1e-4, 2e-4, 3e-4]
)");
  ASSERT_EQ(plan.variants.size(), 3u);
  EXPECT_DOUBLE_EQ(plan.variants[1].landscape.at("x2"), 0.65);
  EXPECT_DOUBLE_EQ(plan.variants[2].temperature(), 0.1 * (3e-4 / 0.1));
  EXPECT_DOUBLE_EQ(plan.variants[2].noise_strength, 3e-4 / 0.1);
}

// {logspace = [0.01, 0.1, 5]} is valid (10^0.01 ... 10^0.1) but almost always meant 0.01 ... 0.1:
// a hint with the intended exponents; real exponents give none.
TEST(Config, LogspaceWithValueLikeBoundsGetsAHint) {
  const RunPlan mistaken = parse(R"(
[dynamics]
noise_strength = 0.1
[sweep]
learning_rate = { logspace = [0.01, 0.1, 5] }
)");
  EXPECT_NEAR(mistaken.variants.front().learning_rate, std::pow(10.0, 0.01), 1e-12);
  // Rates of 1.02 to 1.26 are also beyond the sharp valley's stability bound (0.2155): said next.
  ASSERT_EQ(mistaken.hints.size(), 2u);
  EXPECT_NE(mistaken.hints[1].find("5 of 5 variant(s) start where their learning rate is beyond"),
            std::string::npos)
      << mistaken.hints[1];
  EXPECT_NE(mistaken.hints[0].find("sweep.learning_rate"), std::string::npos) << mistaken.hints[0];
  EXPECT_NE(mistaken.hints[0].find("{logspace = [-2, -1, 5]}"), std::string::npos)
      << mistaken.hints[0];
  for (const char* fine :
       {"learning_rate = { logspace = [-2, -1, 5] }",
        "learning_rate = { linspace = [0.01, 0.1, 5] }", "learning_rate = [0.01, 0.1]"}) {
    EXPECT_TRUE(parse(std::string("[dynamics]\nnoise_strength = 0.1\n[sweep]\n") + fine + "\n")
                    .hints.empty())
        << fine;
  }
}

TEST(Config, ARerunOfAFixedTemperatureWithASweptLearningRateKeepsTheTemperature) {
  // Δ_S = 0.1 fixed, η swept: σ = Δ_S/η is 10 and 5. The resolved config (summary.json, which
  // `sgdwalk run RUN/summary.json` reruns) once kept variant 0's σ = 10, so the rerun held σ fixed
  // and ran Δ_S = 0.1 and 0.2.
  const std::string text = kMinimal.substr(0, kMinimal.find("[dynamics]")) +
                           "[dynamics]\ntemperature = 0.1\nlearning_rate = 0.01\n"
                           "[sweep]\nlearning_rate = [0.01, 0.02]\n";
  const RunPlan plan = parse(text);
  ASSERT_EQ(plan.variants.size(), 2u);
  EXPECT_DOUBLE_EQ(plan.variants[0].noise_strength, 10.0);
  EXPECT_DOUBLE_EQ(plan.variants[1].noise_strength, 5.0);
  EXPECT_FALSE(plan.resolved_config.at("dynamics").contains("noise_strength"));
  const RunPlan rerun = parse(config_text_from_json(plan.resolved_config, "<summary>"));
  ASSERT_EQ(rerun.variants.size(), 2u);
  for (std::size_t v = 0; v < 2; ++v) {
    EXPECT_EQ(rerun.variants[v].noise_strength, plan.variants[v].noise_strength) << v;
    EXPECT_EQ(rerun.variants[v].learning_rate, plan.variants[v].learning_rate) << v;
  }
  EXPECT_EQ(rerun.resolved_config, plan.resolved_config);
  // Without a swept learning rate the resolved config is what it always was (noise_strength):
  // the config hashes that checkpoints and shards carry do not change.
  const RunPlan fixed = parse(kMinimal.substr(0, kMinimal.find("[dynamics]")) +
                              "[dynamics]\ntemperature = 0.1\nlearning_rate = 0.01\n"
                              "[sweep]\ntemperature = [0.1, 0.2]\n");
  EXPECT_TRUE(fixed.resolved_config.at("dynamics").contains("noise_strength"));
  EXPECT_FALSE(fixed.resolved_config.at("dynamics").contains("temperature"));
  // Nor with the temperature (or σ) swept beside the learning rate: the swept axis replaces the
  // base temperature in every variant, and such reruns were right.
  for (const char* also : {"temperature = [0.1, 0.2]", "noise_strength = [1.0, 2.0]"}) {
    const RunPlan grid = parse(kMinimal.substr(0, kMinimal.find("[dynamics]")) +
                               "[dynamics]\ntemperature = 0.1\nlearning_rate = 0.01\n"
                               "[sweep]\nlearning_rate = [0.01, 0.02]\n" +
                               also + "\n");
    EXPECT_TRUE(grid.resolved_config.at("dynamics").contains("noise_strength")) << also;
    EXPECT_FALSE(grid.resolved_config.at("dynamics").contains("temperature")) << also;
    const RunPlan rerun = parse(config_text_from_json(grid.resolved_config, "<summary>"));
    ASSERT_EQ(rerun.variants.size(), grid.variants.size()) << also;
    for (std::size_t v = 0; v < grid.variants.size(); ++v)
      EXPECT_EQ(rerun.variants[v].noise_strength, grid.variants[v].noise_strength) << also << v;
  }
}

TEST(Config, BothNamesOfAQuantityAreRefusedEvenWhenOneIsSwept) {
  // A sweep of learning_rate replaces a base dt in every variant: given both, dt was dropped.
  const std::string head = kMinimal.substr(0, kMinimal.find("[dynamics]"));
  EXPECT_THROW(parse(head + "[dynamics]\nlearning_rate = 0.01\ndt = 0.02\nnoise_strength = 1.0\n"
                            "[sweep]\nlearning_rate = [0.01, 0.02]\n"),
               ConfigError);
  EXPECT_THROW(parse(head + "[dynamics]\nlearning_rate = 0.01\nnoise_strength = 1.0\n"
                            "temperature = 0.1\n[sweep]\ntemperature = [0.1, 0.2]\n"),
               ConfigError);
  // One name given and the other swept is the documented way to sweep it.
  EXPECT_NO_THROW(parse(head + "[dynamics]\nlearning_rate = 0.01\nnoise_strength = 1.0\n"
                               "[sweep]\ndt = [0.01, 0.02]\n"));
}

TEST(Config, AVariantsOptimizerCoefficientsDefaultToTheTables) {
  // Variant keeps its own initialisers (a Variant built in code); they must be the key table's.
  const Variant variant;
  for (const auto& coefficient : optimizer_coefficients()) {
    EXPECT_EQ(variant.*coefficient.value, coefficient.default_value) << coefficient.key;
    EXPECT_EQ(parse(kMinimal).variants.front().*coefficient.value, coefficient.default_value)
        << coefficient.key;
  }
}

TEST(Config, EpsilonWithIsotropicNoiseGetsAHint) {
  const std::string isotropic = "[dynamics]\nnoise = \"isotropic\"\n" + kMinimal.substr(12);
  const RunPlan given = parse(isotropic + "epsilon = 1e-3\n");
  ASSERT_EQ(given.hints.size(), 1u);
  EXPECT_NE(given.hints[0].find("dynamics.epsilon has no effect with noise = \"isotropic\""),
            std::string::npos)
      << given.hints[0];
  const RunPlan swept = parse(isotropic + "[sweep]\nepsilon = [1e-8, 1e-3]\n");
  ASSERT_EQ(swept.hints.size(), 1u);
  EXPECT_NE(swept.hints[0].find("the variants of the epsilon sweep are the same run"),
            std::string::npos)
      << swept.hints[0];
  EXPECT_TRUE(parse(isotropic).hints.empty());
  EXPECT_TRUE(parse(kMinimal + "epsilon = 1e-3\n").hints.empty());  // hessian noise: used
  // A rerun from summary.json: the resolved config holds the default epsilon, which the user
  // never wrote; no hint. A given value other than the default keeps it.
  const std::string rerun = config_text_from_json(parse(isotropic).resolved_config, "<summary>");
  ASSERT_NE(rerun.find("epsilon = "), std::string::npos) << rerun;
  EXPECT_TRUE(parse(rerun).hints.empty()) << parse(rerun).hints.front();
  EXPECT_EQ(parse(config_text_from_json(given.resolved_config, "<summary>")).hints.size(), 1u);
}

TEST(Config, FirstPassageUnderALearningRateScheduleGetsAHintOnItsTimes) {
  // Its rate per unit time counts time as base η × steps, which a decaying η overstates.
  const std::string passage = "[observables.first_passage]\ntarget = \"flat\"\n";
  const std::string decay =
      "[dynamics.learning_rate_schedule]\nkind = \"exponential\"\ngamma = 0.999\n";
  const RunPlan scheduled = parse(kMinimal + decay + passage);
  ASSERT_EQ(scheduled.hints.size(), 1u);
  EXPECT_NE(scheduled.hints[0].find("first passage under a learning-rate schedule"),
            std::string::npos)
      << scheduled.hints[0];
  EXPECT_TRUE(parse(kMinimal + passage).hints.empty());
  EXPECT_TRUE(parse(kMinimal + decay).hints.empty());
  const std::string noise_decay =
      "[dynamics.noise_schedule]\nkind = \"exponential\"\ngamma = 0.999\n";
  EXPECT_TRUE(parse(kMinimal + noise_decay + passage).hints.empty());  // η itself is constant
}

// A learning rate beyond the optimizer's stability bound where walkers start: a hint before the
// run (the walkers' growth is otherwise seen only as huge spreads or late divergence). Bounds
// from the spectral radius of the noise-free update on k x²/2: sgd 2/k, heavy ball 2(1 + μ)/k,
// Nesterov 2(1 + μ)/((1 + 2μ)k); the two-valley's sharp side at y = 5 has k ≈ 2/0.2156.
TEST(Config, LearningRatesBeyondTheStabilityBoundGetAHint) {
  const auto stability_hint = [](const RunPlan& plan) {
    for (const std::string& hint : plan.hints)
      if (hint.find("stability bound") != std::string::npos) return hint;
    return std::string();
  };
  const std::string harmonic =
      "[landscape]\nkind = \"harmonic\"\n[dynamics]\nnoise = \"isotropic\"\n"
      "noise_strength = 0.1\n";
  const std::string above = stability_hint(parse(harmonic + "learning_rate = 2.01\n"));
  EXPECT_NE(above.find("1 of 1 variant(s)"), std::string::npos) << above;
  EXPECT_NE(above.find("learning_rate 2.01 > 2, the bound 2/k of sgd"), std::string::npos) << above;
  EXPECT_NE(above.find("k = 1)"), std::string::npos) << above;
  EXPECT_EQ(stability_hint(parse(harmonic + "learning_rate = 1.99\n")), "");
  // Momentum: 3.7 is stable for heavy ball (bound 3.8), not for Nesterov (1.357).
  const std::string momentum = harmonic + "learning_rate = 3.7\nmomentum = 0.9\n";
  EXPECT_EQ(stability_hint(parse(momentum + "optimizer = \"momentum\"\n")), "");
  const std::string nesterov = stability_hint(parse(momentum + "optimizer = \"nesterov\"\n"));
  EXPECT_NE(nesterov.find("> 1.35714, the bound 2(1 + momentum)/((1 + 2 momentum) k) of nesterov"),
            std::string::npos)
      << nesterov;
  // Adam's steps are bounded by its normalisation: no such bound.
  EXPECT_EQ(stability_hint(parse(harmonic + "learning_rate = 5\noptimizer = \"adam\"\n")), "");
  // A schedule's largest factor counts (here 2.5 × 1 after a warmup), and a sweep is counted.
  const std::string piecewise = stability_hint(
      parse(harmonic +
            "learning_rate = 1.0\n[dynamics.learning_rate_schedule]\nkind = \"piecewise\"\n"
            "warmup_steps = 10\nsteps = [0, 50]\nvalues = [0.5, 2.5]\n"));
  EXPECT_NE(piecewise.find("learning_rate 2.5 (the schedule's largest) > 2"), std::string::npos)
      << piecewise;
  const std::string swept = stability_hint(
      parse(harmonic + "learning_rate = 1.0\n[sweep]\nlearning_rate = [1, 2.5, 3]\n"));
  EXPECT_NE(swept.find("2 of 3 variant(s)"), std::string::npos) << swept;
  EXPECT_NE(swept.find("(variant 1 (learning_rate=2.5): learning_rate 2.5 > 2"), std::string::npos)
      << swept;
  // The paper's landscape: walkers start at x = -0.01 (sharp side) and +0.01 (flat side).
  const std::string sharp =
      stability_hint(parse("[dynamics]\nlearning_rate = 0.25\nnoise_strength = 0.01\n"));
  EXPECT_NE(sharp.find("start position (-0.01, 5)"), std::string::npos) << sharp;
  EXPECT_EQ(stability_hint(parse(kMinimal)), "");
}

TEST(Config, HistogramsBeyondWhatAVariantsCountersHoldAreRefused) {
  // The GPU indexes a variant's histogram counters in 32 bits: 215 histograms of 10^7 bins
  // (2 150 000 215 counters with the outside slots) once overflowed that index.
  const auto histograms = [](int count) {
    std::string text;
    for (int i = 0; i < count; ++i) {
      text += fmt::format(
          "[[observables.histogram]]\nname = \"h{}\"\nkind = \"xy\"\nx_range = [-1.0, 1.0]\n"
          "bins = 1000\ny_range = [0.0, 10.0]\ny_bins = 10000\n",
          i);
    }
    return text;
  };
  try {
    parse(kMinimal + histograms(215));
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("observables.histogram"), std::string::npos) << message;
    EXPECT_NE(message.find("2150000215 bins in all"), std::string::npos) << message;
    EXPECT_NE(message.find("at most 2147483647 per variant"), std::string::npos) << message;
  }
  EXPECT_EQ(parse(kMinimal + histograms(214)).histograms.size(), 214u);
  // More histograms than allowed (the checkpoint format holds 100000; 10000 is the config's cap).
  std::string too_many;
  for (int i = 0; i < 10001; ++i) {
    too_many += "[[observables.histogram]]\nx_range = [-1.0, 1.0]\nbins = 1\n";
  }
  try {
    parse(kMinimal + too_many);
    ADD_FAILURE() << "accepted";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("10001 histograms; allowed: at most 10000"),
              std::string::npos)
        << error.what();
  }
}

TEST(Config, AFloatRunsPassageThresholdIsDescribedAsTheFloatItCompares) {
  const std::string passage = "[observables.first_passage]\ncoordinate = 1\nabove = 5.0001\n";
  const RunPlan single = parse("[run]\nprecision = \"float\"\n" + kMinimal + passage);
  EXPECT_EQ(single.passage.description, "position[1] >= 5.0001 (as the float 5.000100135803223)");
  EXPECT_EQ(parse(kMinimal + passage).passage.description, "position[1] >= 5.0001");
  // A threshold that is a float already needs no note.
  const RunPlan exact = parse("[run]\nprecision = \"float\"\n" + kMinimal +
                              "[observables.first_passage]\ncoordinate = 1\nabove = 5.5\n");
  EXPECT_EQ(exact.passage.description, "position[1] >= 5.5");
}

TEST(Config, HarmonicTakesArraysPerAxis) {
  const RunPlan plan = parse(kMinimal + R"(
[landscape]
kind = "harmonic"
dim = 3
stiffness = [1.0, 2.0, 4.0]
center = [0.5, 0.0, -1.0]
[init]
positions = [0.0, 0.0, 0.0]
)");
  EXPECT_EQ(plan.dim, 3);
  EXPECT_DOUBLE_EQ(plan.variants[0].landscape.at("stiffness.2"), 4.0);
  EXPECT_DOUBLE_EQ(plan.variants[0].landscape.at("center.0"), 0.5);
  ASSERT_EQ(plan.initial_positions.size(), 1u);
}

TEST(Config, HistogramAndFirstPassageAreParsed) {
  const RunPlan plan = parse(kMinimal + R"(
[run]
steps = 100
[observables]
sample_every = 25
[observables.first_passage]
coordinate = 1
above = 7.5
[[observables.histogram]]
name = "slice"
x_range = [-2, 2]
bins = 40
y_band = [4, 6]
window = [50, 100]
every = 5
[[observables.histogram]]
kind = "xy"
x_range = [-2, 2]
y_range = [0, 10]
bins = 8
y_bins = 5
)");
  EXPECT_EQ(plan.sample_steps, (std::vector<std::int64_t>{0, 25, 50, 75, 100}));
  EXPECT_EQ(plan.passage.kind, PassageKind::above);
  EXPECT_EQ(plan.passage.coordinate, 1);
  EXPECT_DOUBLE_EQ(plan.passage.threshold, 7.5);
  ASSERT_EQ(plan.histograms.size(), 2u);
  EXPECT_EQ(plan.histograms[0].name, "slice");
  EXPECT_EQ(plan.histograms[0].window_begin, 50);
  EXPECT_EQ(plan.histograms[0].every, 5);
  EXPECT_DOUBLE_EQ(plan.histograms[0].band_hi, 6);
  EXPECT_EQ(plan.histograms[1].kind, HistogramKind::xy);
  EXPECT_EQ(plan.histograms[1].bin_count(), 40);
}

TEST(ConfigErrors, UnknownKeyGetsDidYouMean) {
  expect_error(
      "[dynamics]\nlearnig_rate = 0.1\nnoise_strength = 0.1\n",
      {"test.toml", "dynamics.learnig_rate", "unknown key", "did you mean 'learning_rate'"});
  expect_error(kMinimal + "[run]\nwalker = 10\n", {"run.walker", "did you mean 'walkers'"});
  expect_error(kMinimal + "[observabels]\n", {"observabels", "did you mean 'observables'"});
}

TEST(ConfigErrors, WrongTypeNamesKeyValueAndExpectedType) {
  expect_error(kMinimal + "[run]\nwalkers = \"many\"\n",
               {"run.walkers", "expected an integer", "a string", "many"});
  expect_error(kMinimal + "[run]\nprecision = 32\n", {"run.precision", "expected a string"});
  expect_error("[dynamics]\nlearning_rate = [0.1]\nnoise_strength = 0.1\n",
               {"dynamics.learning_rate", "expected a number"});
}

TEST(ConfigErrors, OutOfRangeSaysWhatIsAllowed) {
  expect_error(kMinimal + "[run]\nwalkers = 0\n", {"run.walkers", "0", "out of range", "[1, "});
  expect_error("[dynamics]\nlearning_rate = -0.1\nnoise_strength = 0.1\n",
               {"dynamics.learning_rate", "-0.1", "> 0"});
  expect_error("[dynamics]\nlearning_rate = 0.1\nnoise_strength = -1\n",
               {"dynamics.noise_strength", "-1", ">= 0"});
  expect_error(kMinimal + "[landscape]\nx1 = 0\n", {"landscape.x1", "out of range", "> 0"});
  expect_error(kMinimal + "[run]\nprecision = \"half\"\n",
               {"run.precision", "half", "allowed: float, double"});
  expect_error(kMinimal + "[landscape]\nkind = \"two_valey\"\n",
               {"landscape.kind", "two_valey", "did you mean 'two_valley'"});
  // Numbers beyond float's range in a float run (they became ±inf and every walker diverged).
  expect_error(kMinimal + "[run]\nprecision = \"float\"\n[init]\npositions = [[1e39, 5.0]]\n",
               {"init.positions[0][0]", "1e+39", "beyond the range of precision = \"float\"",
                "precision = \"double\""});
  expect_error(kMinimal + "[run]\nprecision = \"float\"\n[sweep]\nlearning_rate = [0.1, 1e39]\n",
               {"sweep.learning_rate[1]", "1e+39", "beyond the range"});
  // By the names the file uses, the epsilons too, and what temperature gives.
  const std::string langevin = "[run]\nprecision = \"float\"\n[dynamics]\n";
  expect_error(langevin + "dt = 0.01\ntemperature = 0.1\n[sweep]\ndt = [0.01, 1e39]\n",
               {"sweep.dt[1]", "1e+39", "beyond the range"});
  expect_error(langevin + "dt = 1e-10\ntemperature = 1e30\n",
               {"dynamics.temperature", "noise_strength = temperature / learning_rate", "1e+40"});
  expect_error(langevin + "learning_rate = 0.1\nnoise_strength = 0.1\nepsilon = 1e39\n",
               {"dynamics.epsilon", "beyond the range"});
  EXPECT_NO_THROW(parse(kMinimal + "[init]\npositions = [[1e39, 5.0]]\n"));  // double holds it
  // Runs longer than the 32-bit crossing counter are told so (not refused).
  EXPECT_TRUE(parse(kMinimal + "[run]\nsteps = 4294967295\n").hints.empty());
  const RunPlan long_run = parse(kMinimal + "[run]\nsteps = 4294967296\n");
  ASSERT_EQ(long_run.hints.size(), 1u);
  EXPECT_NE(long_run.hints[0].find("crossings are counted in 32 bits"), std::string::npos)
      << long_run.hints[0];
  // A value that differs only in case is suggested however far its edit distance.
  expect_error(kMinimal + "[rare_event]\nmethod = \"FFS\"\n",
               {"rare_event.method", "FFS", "did you mean 'ffs'"});
  expect_error(kMinimal + "[landscape]\nkind = \"DOUBLE_WELL\"\n",
               {"landscape.kind", "did you mean 'double_well'"});
}

TEST(Config, NoiseDistributionAndTailIndex) {
  const RunPlan gaussian = parse(kMinimal);
  EXPECT_EQ(gaussian.noise_distribution, NoiseDistribution::gaussian);
  // A Gaussian run resolves as before the key existed (old run directories keep resuming).
  EXPECT_FALSE(gaussian.resolved_config["dynamics"].contains("noise_distribution"));
  EXPECT_FALSE(gaussian.resolved_config["dynamics"].contains("alpha"));
  const RunPlan stable = parse(
      "[dynamics]\nnoise_distribution = \"alpha_stable\"\nlearning_rate = 0.1\n"
      "noise_strength = 0.1\n[sweep]\nalpha = [0.7, 1.9]\n");
  EXPECT_EQ(stable.noise_distribution, NoiseDistribution::alpha_stable);
  ASSERT_EQ(stable.variants.size(), 2u);
  EXPECT_EQ(stable.variants[0].alpha, 0.7);
  EXPECT_EQ(stable.variants[1].alpha, 1.9);
  EXPECT_EQ(stable.resolved_config["dynamics"]["noise_distribution"], "alpha_stable");
  EXPECT_EQ(parse("[dynamics]\nnoise_distribution = \"alpha_stable\"\nlearning_rate = 0.1\n"
                  "noise_strength = 0.1\n")
                .variants[0]
                .alpha,
            2.0);
}

TEST(ConfigErrors, TailIndexNamesItsRangeAndItsDistribution) {
  const std::string stable =
      "[dynamics]\nnoise_distribution = \"alpha_stable\"\nlearning_rate = 0.1\n"
      "noise_strength = 0.1\n";
  expect_error(stable + "alpha = 0\n", {"dynamics.alpha", "0", "out of range", "> 0"});
  expect_error(stable + "alpha = 2.5\n", {"dynamics.alpha", "2.5", "out of range", "<= 2"});
  expect_error(stable + "[sweep]\nalpha = [1.0, 3.0]\n", {"sweep.alpha[1]", "3", "out of range"});
  const std::string gaussian = "[dynamics]\nlearning_rate = 0.1\nnoise_strength = 0.05\n";
  expect_error(gaussian + "alpha = 1.5\n", {"dynamics.alpha", "alpha_stable", "\"gaussian\""});
  expect_error(kMinimal + "[sweep]\nalpha = [1.5]\n", {"dynamics.alpha", "alpha_stable"});
  expect_error(gaussian + "noise_distribution = \"cauchy\"\n",
               {"dynamics.noise_distribution", "cauchy", "allowed: gaussian, alpha_stable"});
}

TEST(Config, AlphaStableNoiseComposesWithOptimizersAndSchedules) {
  const std::string stable =
      "[dynamics]\nnoise_distribution = \"alpha_stable\"\nalpha = 1.5\nlearning_rate = 0.1\n"
      "noise_strength = 0.1\n";
  // The noise enters g = ∇L + ξ before the optimizer; a noise schedule scales σ.
  const RunPlan adam = parse(stable +
                             "optimizer = \"adam\"\n[dynamics.noise_schedule]\n"
                             "kind = \"exponential\"\ngamma = 0.99\n");
  EXPECT_EQ(adam.optimizer, OptimizerKind::adam);
  EXPECT_EQ(adam.noise_distribution, NoiseDistribution::alpha_stable);
  // A learning-rate schedule moves the jump scale η_k^(1/α − 1/2) with η_k (StepParams).
  const RunPlan cosine =
      parse(stable + "[dynamics.learning_rate_schedule]\nkind = \"cosine\"\nwarmup_steps = 10\n");
  EXPECT_EQ(cosine.noise_distribution, NoiseDistribution::alpha_stable);
  EXPECT_TRUE(cosine.variants.at(0).scheduled());
}

TEST(ConfigErrors, NonFiniteValuesAreRejected) {
  expect_error("[dynamics]\nlearning_rate = nan\nnoise_strength = 0.1\n",
               {"dynamics.learning_rate", "not finite"});
  expect_error(kMinimal + "[landscape]\ny_f = inf\n", {"landscape.y_f", "not finite"});
  expect_error(kMinimal + "[init]\npositions = [[0.0, inf]]\n",
               {"init.positions[0][1]", "not finite"});
}

// σ, 2σ and η·σ must be finite (in float: 2σ within float's range): a derived σ = temperature
// / dt or a huge noise_strength otherwise ran every walker to infinity at step 1 and stored inf.
TEST(ConfigErrors, NoiseThatOverflowsIsRejected) {
  expect_error("[dynamics]\ndt = 1e-300\ntemperature = 1e10\n",
               {"dynamics.temperature", "1e+10", "sigma = inf", "allowed"});
  expect_error("[dynamics]\nlearning_rate = 0.1\nnoise_strength = 1e308\n",
               {"dynamics.noise_strength", "1e+308", "2 sigma = inf"});
  expect_error("[dynamics]\nlearning_rate = 1e10\nnoise_strength = 1e300\n",
               {"dynamics.noise_strength", "temperature learning_rate x sigma = inf"});
  expect_error(
      "[run]\nprecision = \"float\"\n[dynamics]\nlearning_rate = 0.1\n"
      "noise_strength = 3e38\n",
      {"dynamics.noise_strength", "3e+38", "2 sigma = 6e+38", "precision = \"float\""});
  expect_error(kMinimal + "[sweep]\nnoise_strength = [0.1, 1e308]\n",
               {"sweep.noise_strength[1]", "1e+308"});
  EXPECT_NO_THROW(parse("[dynamics]\nlearning_rate = 0.1\nnoise_strength = 8e307\n"));
}

// A momentum or decay coefficient below 1 that float rounds to 1 is another optimizer there.
TEST(ConfigErrors, FloatCoefficientsThatRoundToOneAreRejected) {
  const std::string head =
      "[run]\nprecision = \"float\"\n[dynamics]\nlearning_rate = 0.1\nnoise_strength = 0.1\n";
  expect_error(head + "optimizer = \"momentum\"\nmomentum = 0.99999999\n",
               {"dynamics.momentum", "0.99999999", "is 1 in precision = \"float\"", "0.99999994"});
  expect_error(head + "optimizer = \"adam\"\nbeta2 = 0.999999999\n", {"dynamics.beta2"});
  expect_error(head + "optimizer = \"rmsprop\"\n[sweep]\nrmsprop_decay = [0.9, 0.99999999]\n",
               {"sweep.rmsprop_decay[1]", "is 1 in precision"});
  EXPECT_NO_THROW(parse(head + "optimizer = \"momentum\"\nmomentum = 0.99999994\n"));
  EXPECT_NO_THROW(
      parse("[dynamics]\nlearning_rate = 0.1\nnoise_strength = 0.1\n"
            "optimizer = \"momentum\"\nmomentum = 0.99999999\n"));  // double
}

TEST(ConfigErrors, LiteralsBeyondTheirTypeAreRefusedNotSaturated) {
  // The TOML reader saturates these (2^70 to 2^63 − 1, 1e400 to 1.8e308, 1e-400 to 0); a run
  // with the saturated value would be another run than the one written.
  expect_error("[run]\nseed = 99999999999999999999\n" + kMinimal,
               {"run.seed", "99999999999999999999", "beyond what a 64-bit integer holds"});
  expect_error("[run]\nwalkers = 9_223_372_036_854_775_808\n" + kMinimal,
               {"run.walkers", "9223372036854775808", "64-bit integer"});
  expect_error(kMinimal + "[landscape]\ny_f = 1e400\n",
               {"landscape.y_f", "1e400", "beyond what a double holds", "1.8e308"});
  expect_error("[dynamics]\nlearning_rate = 0.1\nnoise_strength = 1e-400\n",
               {"dynamics.noise_strength", "1e-400", "beyond what a double holds"});
  expect_error("[run]\nseed = 1e19\n" + kMinimal,
               {"run.seed", "out of range for a float", "write larger ones as integers"});
  expect_error(kMinimal + "[init]\npositions = [[0.0, -1e999]]\n",
               {"init.positions[0][1]", "-1e999"});
  expect_error(kMinimal + "[sweep]\nnoise_strength = [0.1, 1e-999]\n",
               {"sweep.noise_strength[1]", "1e-999"});
  // Hexadecimal and octal literals saturate, binary ones wrap: read from their digits.
  expect_error("[run]\nseed = 0xFFFFFFFFFFFFFFFFF\n" + kMinimal,
               {"run.seed", "0xFFFFFFFFFFFFFFFFF"});
  expect_error("[run]\nseed = 0o7777777777777777777777\n" + kMinimal, {"run.seed", "64-bit"});
  expect_error("[run]\nseed = 0b1" + std::string(63, '0') + "1\n" + kMinimal,
               {"run.seed", "64-bit integer"});
  EXPECT_EQ(parse("[run]\nseed = 0x7FFF_FFFF_FFFF_FFFF\n" + kMinimal).seed, 9223372036854775807ULL);
  EXPECT_EQ(parse("[run]\nseed = 0b101\n" + kMinimal).seed, 5ULL);
  // The largest values of each type, zeros and subnormals are what they say.
  EXPECT_EQ(parse("[run]\nseed = 9_223_372_036_854_775_807\n" + kMinimal).seed,
            9223372036854775807ULL);
  EXPECT_EQ(parse(kMinimal + "[landscape]\ny_f = 1.7976931348623157e308\n")
                .variants[0]
                .landscape.at("y_f"),
            1.7976931348623157e308);
  EXPECT_EQ(
      parse("[dynamics]\nlearning_rate = 0.1\nnoise_strength = 0.0\n").variants[0].noise_strength,
      0.0);
  EXPECT_EQ(parse("[dynamics]\nlearning_rate = 0.1\nnoise_strength = 1e-320\n")
                .variants[0]
                .noise_strength,
            1e-320);
}

TEST(ConfigErrors, StructuralProblems) {
  expect_error("[dynamics]\nnoise_strength = 0.1\n", {"dynamics.learning_rate", "missing"});
  expect_error("[dynamics]\nlearning_rate = 0.1\ndt = 0.1\nnoise_strength = 0.1\n",
               {"dynamics.dt", "not both"});
  expect_error(kMinimal + "[init]\npositions = [[0.0, 1.0, 2.0]]\n",
               {"init.positions[0]", "3 element(s)", "allowed: 2"});
  expect_error(kMinimal + "[[observables.histogram]]\nx_range = [1, -1]\n",
               {"observables.histogram[0].x_range", "low < high"});
  expect_error(
      kMinimal +
          "[run]\nsteps = 10\n[[observables.histogram]]\nx_range = [-1, 1]\nwindow = [0, 11]\n",
      {"observables.histogram[0].window[1]", "11", "[0, 10]"});
  expect_error(kMinimal + "[sweep]\nlearning_rat = [0.1]\n",
               {"sweep.learning_rat", "cannot sweep", "did you mean 'learning_rate'"});
  expect_error(kMinimal + "[sweep]\nmode = \"zip\"\nx1 = [0.7, 0.8]\nx2 = [0.6]\n",
               {"zip sweep needs equal lengths"});
  expect_error(kMinimal + "[sweep]\nx1 = [0.7, -0.8]\n", {"sweep.x1[1]", "-0.8", "> 0"});
  // A swept dynamics value out of range names the sweep's entry, not the [dynamics] key the
  // file may not even set; a linspace's entries count too.
  expect_error(
      "[dynamics]\nlearning_rate = 0.1\nnoise_strength = 0.05\n"
      "noise_distribution = \"alpha_stable\"\n[sweep]\nalpha = [1.0, 2.5, 1.5]\n",
      {"key 'sweep.alpha[1]': value 2.5 is out of range"});
  expect_error(kMinimal + "[sweep]\nlearning_rate = {logspace = [-2, 400, 3]}\n",
               {"key 'sweep.learning_rate[2]': value inf is out of range"});
  expect_error(kMinimal + "[observables.first_passage]\ntarget = \"flat\"\nabove = 1.0\n",
               {"observables.first_passage", "either"});
}

TEST(ConfigErrors, RunNameCannotLeaveTheRunsFolder) {
  for (const char* name : {"../escape", "/tmp/abs", "", ".", "..", "a/b", "a\\\\b", "tab\\there"}) {
    expect_error(kMinimal + "[run]\nname = \"" + name + "\"\n",
                 {"run.name", "allowed: a plain file name"});
  }
  EXPECT_EQ(parse(kMinimal + "[run]\nname = \"phase-diagram_2.v1\"\n").name, "phase-diagram_2.v1");
  // Control characters are shown escaped (a NUL cut the message short), and the length is bytes.
  expect_error(kMinimal + "[run]\nname = \"a\\u0000b\\u001b[31m\"\n",
               {"run.name", "value \"a\\x00b\\x1b[31m\" has a control character"});
  std::string accents;
  for (int i = 0; i < 150; ++i) accents += "\u00e9";
  expect_error(kMinimal + "[run]\nname = \"" + accents + "\"\n", {"has 300 bytes (UTF-8)"});
  // Shortened at a character boundary (a cut inside "é" left a lone byte: invalid UTF-8, which
  // Python could not decode into a ConfigError).
  expect_error(kMinimal + "[run]\nname = \"a" + accents + "\"\n",
               {"value \"a" + accents.substr(0, 78) + "...\""});
}

// A histogram's name is a group of results.h5 (and part of figure file names): refused before
// the run, not when the results are written.
TEST(ConfigErrors, HistogramNamesArePlainAndUnique) {
  const std::string histogram = "[[observables.histogram]]\nx_range = [-1, 1]\nname = ";
  for (const char* name : {"\"a/b\"", "\"\"", "\".\"", "\"..\""}) {
    expect_error(kMinimal + histogram + name + "\n",
                 {"observables.histogram[0].name", "allowed: a plain file name"});
  }
  expect_error(kMinimal + histogram + "\"x\"\n" + histogram + "\"x\"\n",
               {"observables.histogram[1].name", "\"x\" is the name of an earlier histogram"});
  // Unnamed histograms get distinct default names.
  const RunPlan plan = parse(kMinimal + "[[observables.histogram]]\nx_range = [-1, 1]\n" +
                             "[[observables.histogram]]\nx_range = [-1, 1]\n");
  ASSERT_EQ(plan.histograms.size(), 2u);
  EXPECT_EQ(plan.histograms[0].name, "histogram0");
  EXPECT_EQ(plan.histograms[1].name, "histogram1");
}

TEST(ConfigErrors, NumbersThatAFloatRunOrABinningCannotHoldAreNamed) {
  // A learning rate that is 0 in float: walkers that would never move.
  expect_error(
      "[run]\nprecision = \"float\"\n[dynamics]\nlearning_rate = 1e-46\n"
      "noise_strength = 0.1\n",
      {"dynamics.learning_rate", "1e-46", "is 0 in precision = \"float\""});
  // Histogram ranges: a span beyond the precision (bins / span would be 0: every deposit in bin
  // 0, edges NaN), ends beyond float, or bins too narrow for the factor.
  const std::string histogram = "[[observables.histogram]]\nname = \"h\"\nbins = 10\n";
  expect_error(kMinimal + histogram + "x_range = [-1.7e308, 1.7e308]\n",
               {"observables.histogram", "x_range", "wider than precision = \"double\" can bin"});
  expect_error(
      kMinimal + "[run]\nprecision = \"float\"\n" + histogram + "x_range = [-1e39, 1e39]\n",
      {"x_range", "wider than precision = \"float\" can bin"});
  expect_error(kMinimal + histogram + "x_range = [0.0, 1e-320]\n",
               {"x_range", "too narrow for 10 bins"});
  expect_error(kMinimal + histogram +
                   "kind = \"xy\"\nx_range = [-1.0, 1.0]\n"
                   "y_range = [-1e308, 1e308]\n",
               {"y_range", "wider than precision"});
  // A linspace between the largest doubles stays finite (stop − start overflows).
  const RunPlan wide = parse(kMinimal + "[sweep]\ny_f = {linspace = [-1e308, 1e308, 3]}\n");
  EXPECT_EQ(wide.variants[0].landscape.at("y_f"), -1e308);
  EXPECT_EQ(wide.variants[1].landscape.at("y_f"), 0.0);
  EXPECT_EQ(wide.variants[2].landscape.at("y_f"), 1e308);
}

TEST(ConfigErrors, HistogramKeysOfTheOtherKindAndMisspelledRangesAreNamed) {
  // y_range without kind = "xy" is not an unknown key to be corrected to x_range.
  expect_error(kMinimal + "[[observables.histogram]]\nx_range = [-1, 1]\ny_range = [0, 10]\n",
               {"observables.histogram[0].y_range", "is a key of kind = \"xy\" histograms",
                "add kind = \"xy\""});
  expect_error(
      kMinimal +
          "[[observables.histogram]]\nkind = \"xy\"\nx_range = [-1, 1]\ny_range = "
          "[0, 1]\ny_band = [0, 1]\n",
      {"observables.histogram[0].y_band", "is a key of kind = \"x\" histograms", "give y_range"});
  // A required range that is missing because it is misspelled says so.
  expect_error(
      kMinimal + "[[observables.histogram]]\nkind = \"xy\"\nx_range = [-1, 1]\ny_rang = [0, 1]\n",
      {"observables.histogram[0].y_range", "missing", "'y_rang' here may be a misspelling of it"});
  expect_error(kMinimal + "[[observables.histogram]]\nxrange = [-1, 1]\n",
               {"observables.histogram[0].x_range", "'xrange' here may be a misspelling of it"});
}

TEST(ConfigErrors, ABaseValueOutOfRangeIsRefusedEvenWhenTheSweepReplacesIt) {
  // config.toml keeps the base value: it must be a valid one, as the docs say of every key.
  EXPECT_EQ(parse(kMinimal + "[sweep]\nlearning_rate = [0.01, 0.02]\n").variants.size(), 2u);
  expect_error(R"(
[dynamics]
learning_rate = -0.05
noise_strength = 0.05
[sweep]
learning_rate = [0.01, 0.02]
)",
               {"dynamics.learning_rate", "-0.05", "out of range", "allowed: > 0"});
}

// toml11 prints long arrays over several lines; a message names the value on one line.
TEST(ConfigErrors, ArraysInMessagesAreOnOneLine) {
  std::string long_array = "[";
  for (int i = 0; i < 40; ++i) long_array += (i ? ", " : "") + std::to_string(0.001 * i);
  long_array += "]";
  for (const std::string& text :
       {kMinimal + "[[observables.histogram]]\nx_range = " + long_array + "\n",
        kMinimal + "[init]\npositions = " + long_array + "\n",
        kMinimal + "[run]\nwalkers = " + long_array + "\n",
        kMinimal + "[init]\npositions = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, "
                   "10.0], [11.0, 12.0], [13.0, 14.0], [15.0]]\n"}) {
    try {
      parse(text);
      ADD_FAILURE() << "expected a ConfigError for:\n" << text;
    } catch (const ConfigError& error) {
      const std::string message = error.what();
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      // The value is shown as written, with ", " between elements and no trailing comma.
      EXPECT_TRUE(message.find("[0.0, 0.001, 0.002") != std::string::npos ||
                  message.find("array [15.0] has 1 element(s)") != std::string::npos)
          << message;
    }
  }
}

TEST(Config, SweepOrderSetsTheNesting) {
  const std::string sweep =
      kMinimal + "[sweep]\nlearning_rate = [0.1, 0.2]\nnoise_strength = [0.01, 0.02, 0.03]\n";
  const RunPlan by_file = parse(sweep);
  const RunPlan by_order = parse(sweep + "order = [\"noise_strength\", \"learning_rate\"]\n");
  ASSERT_EQ(by_file.variants.size(), 6u);
  ASSERT_EQ(by_order.variants.size(), 6u);
  // File order: learning_rate slowest. order: noise_strength slowest.
  EXPECT_DOUBLE_EQ(by_file.variants[1].noise_strength, 0.02);
  EXPECT_DOUBLE_EQ(by_file.variants[1].learning_rate, 0.1);
  EXPECT_DOUBLE_EQ(by_order.variants[1].learning_rate, 0.2);
  EXPECT_DOUBLE_EQ(by_order.variants[1].noise_strength, 0.01);
  EXPECT_EQ(by_order.variants[0].swept.front().first, "noise_strength");
  expect_error(sweep + "order = [\"noise_strength\"]\n",
               {"sweep.order", "every swept key once", "learning_rate, noise_strength"});
  expect_error(sweep + "order = [\"noise_strength\", \"noise_strength\"]\n",
               {"sweep.order", "every swept key once"});
  expect_error(sweep + "order = \"noise_strength\"\n", {"sweep.order", "expected an array"});
}

// A parameter with a dotted name is swept by the TOML dotted key (a sub-table) or by the quoted
// name alike: schedule keys and array landscape elements, the same plan either way; giving both
// is an error, and an unknown name is refused naming it and what can be swept.
TEST(Config, DottedSweepNamesWorkAsDottedKeysAndAsQuotedNames) {
  const auto config_with = [](const std::string& sweep_lines) {
    return std::string(R"(
[landscape]
kind = "harmonic"
dim = 2
[dynamics]
learning_rate = 0.05
noise_strength = 0.1
[dynamics.learning_rate_schedule]
kind = "exponential"
[sweep]
)" + sweep_lines);
  };
  const RunPlan dotted = parse(
      config_with("learning_rate_schedule.gamma = [0.99, 0.999]\nstiffness.1 = [2.0, 3.0]\n"));
  const RunPlan quoted = parse(config_with(
      "\"learning_rate_schedule.gamma\" = [0.99, 0.999]\n\"stiffness.1\" = [2.0, 3.0]\n"));
  ASSERT_EQ(dotted.variants.size(), 4u);
  EXPECT_EQ(dotted.resolved_config, quoted.resolved_config);
  for (std::size_t v = 0; v < dotted.variants.size(); ++v) {
    EXPECT_EQ(dotted.variants[v].swept, quoted.variants[v].swept);
    EXPECT_EQ(dotted.variants[v].landscape, quoted.variants[v].landscape);
    EXPECT_EQ(dotted.variants[v].learning_rate_schedule.gamma,
              quoted.variants[v].learning_rate_schedule.gamma);
  }
  // The file's order nests the grid: gamma slowest.
  EXPECT_EQ(dotted.variants[1].learning_rate_schedule.gamma, 0.99);
  EXPECT_EQ(dotted.variants[1].landscape.at("stiffness.1"), 3.0);
  EXPECT_EQ(dotted.variants[2].learning_rate_schedule.gamma, 0.999);

  expect_error(config_with("stiffness.1 = [2.0]\n\"stiffness.1\" = [3.0]\n"),
               {"sweep.stiffness.1", "swept twice"});
  // Synonyms set one quantity: both swept would let one override the other unseen.
  expect_error(config_with("learning_rate = [0.1, 0.2]\ndt = [0.1, 0.2]\n"),
               {"key 'sweep.", "'learning_rate'", "'dt'", "same quantity", "sweep one of them"});
  expect_error(config_with("noise_strength = [1.0]\ntemperature = [0.1]\n"),
               {"key 'sweep.", "same quantity"});
  expect_error(config_with("stiffness.7 = [2.0]\n"), {"sweep.stiffness.7", "sweepable: alpha"});
  expect_error(config_with("\"learning_rate_schedule.gama\" = [0.9]\n"),
               {"learning_rate_schedule.gama", "did you mean 'gamma'"});
  expect_error(config_with("learning_rat = [0.1]\n"),
               {"sweep.learning_rat", "learning_rate_schedule.KEY"});
}

TEST(Config, LandscapeDimensionMayBeRepeatedButNotChanged) {
  EXPECT_EQ(parse(kMinimal + "[landscape]\ndim = 2\n").dim, 2);
  expect_error(kMinimal + "[landscape]\ndim = 1\n",
               {"landscape.dim", "does not match the two_valley landscape", "allowed: 2"});
  expect_error(kMinimal + "[landscape]\nkind = \"harmonic\"\ndim = 2\nstiffness = [1.0, 0.0]\n",
               {"landscape.stiffness[1]", "> 0"});
}

/// The resolved config (summary.json "config"), written back as TOML and read again, gives the
/// same plan: the same resolved config and the same variants.
TEST(Config, ResolvedConfigReadsBackAsTheSamePlan) {
  const std::vector<std::string> configs = {
      R"(
[run]
name = "round"
walkers = 7
steps = 300
seed = 9
precision = "float"
batch_walkers = 5
[landscape]
x2 = 0.6
[dynamics]
noise = "hessian_squared"
dt = 0.01
temperature = 0.001
[init]
positions = [[-0.1, 3.0], [0.2, 4.0], [0.0, 5.0]]
[observables]
sample_every = 70
sample_steps = [5]
quantiles = [0.1, 0.9]
per_walker = true
[observables.first_passage]
coordinate = 1
above = 12.5
[[observables.histogram]]
name = "band"
x_range = [-2, 2]
bins = 8
y_band = [3, 9]
window = [10, 200]
every = 3
temperature = 0.5
[[observables.histogram]]
name = "plane"
kind = "xy"
x_range = [-2, 2]
y_range = [0, 50]
y_bins = 5
[sweep]
temperature = { logspace = [-4, -2, 3] }
x1 = [0.7, 0.9]
dt = [0.01, 0.02]
)",
      R"(
[landscape]
kind = "harmonic"
dim = 2
stiffness = [1.5, 2.5]
center = [0.5, -1]
[dynamics]
noise = "isotropic"
learning_rate = 0.05
noise_strength = 0.2
[observables.first_passage]
target = "sharp"
[sweep]
mode = "zip"
"stiffness.1" = [2.0, 3.0]
noise_strength = [0.1, 0.3]
)",
      R"(
[landscape]
kind = "double_well"
depth_sharp = 2.0
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
[sweep]
noise_strength = [0.3, 0.1]
learning_rate = { linspace = [0.01, 0.03, 3] }
)",
      R"(
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
noise_distribution = "alpha_stable"
alpha = 1.2
learning_rate = 0.1
noise_strength = 0.1
[sweep]
alpha = [0.5, 1.0, 2.0]
)",
      // Swept schedule keys (the resolved config names them "learning_rate_schedule.gamma").
      R"(
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
learning_rate = 0.05
temperature = 0.1
[dynamics.learning_rate_schedule]
kind = "exponential"
[dynamics.noise_schedule]
kind = "step"
[sweep]
learning_rate_schedule.gamma = [0.99, 0.999]
noise_schedule.every = [10, 20]
)",
      // A swept warmup with a defaulted decay_steps (run.steps − warmup_steps per variant): the
      // resolved config leaves decay_steps out (it wrote the first variant's for every variant).
      R"(
[run]
steps = 100
[dynamics]
learning_rate = 0.05
noise_strength = 0.1
[dynamics.learning_rate_schedule]
kind = "cosine"
floor = 0.1
[sweep]
learning_rate_schedule.warmup_steps = [0, 40, 70]
)"};
  for (const std::string& text : configs) {
    SCOPED_TRACE(text);
    const RunPlan plan = parse(text);
    const std::string again =
        config_text_from_json(nlohmann::json{{"config", plan.resolved_config}}, "summary.json");
    const RunPlan replan = load_config_text(again, "summary.json");
    EXPECT_EQ(replan.resolved_config, plan.resolved_config) << again;
    ASSERT_EQ(replan.variants.size(), plan.variants.size());
    for (std::size_t v = 0; v < plan.variants.size(); ++v) {
      EXPECT_EQ(replan.variants[v].landscape, plan.variants[v].landscape);
      EXPECT_EQ(replan.variants[v].learning_rate, plan.variants[v].learning_rate);
      EXPECT_EQ(replan.variants[v].noise_strength, plan.variants[v].noise_strength);
      EXPECT_EQ(replan.variants[v].swept, plan.variants[v].swept);
      EXPECT_EQ(replan.variants[v].alpha, plan.variants[v].alpha);
      EXPECT_EQ(replan.variants[v].learning_rate_schedule.gamma,
                plan.variants[v].learning_rate_schedule.gamma);
      EXPECT_EQ(replan.variants[v].noise_schedule.every, plan.variants[v].noise_schedule.every);
      EXPECT_EQ(replan.variants[v].learning_rate_schedule.decay_steps,
                plan.variants[v].learning_rate_schedule.decay_steps);
    }
    EXPECT_EQ(replan.noise_distribution, plan.noise_distribution);
    EXPECT_EQ(replan.sample_steps, plan.sample_steps);
    EXPECT_EQ(replan.initial_positions, plan.initial_positions);
    EXPECT_EQ(replan.passage.description, plan.passage.description);
    ASSERT_EQ(replan.histograms.size(), plan.histograms.size());
    for (std::size_t h = 0; h < plan.histograms.size(); ++h) {
      EXPECT_EQ(replan.histograms[h].window_begin, plan.histograms[h].window_begin);
      EXPECT_EQ(replan.histograms[h].band_lo, plan.histograms[h].band_lo);
      EXPECT_EQ(replan.histograms[h].y_bins, plan.histograms[h].y_bins);
    }
  }
}

// Every key of the reference (docs/CONFIG.md is printed from the same table) is accepted by the
// validator: these configs use each documented key at least once and must all load.
TEST(Config, EveryDocumentedKeyIsAccepted) {
  const std::vector<std::string> configs = {
      R"(
[run]
name = "all"
walkers = 10
steps = 100
seed = 3
precision = "float"
batch_walkers = 4
[landscape]
kind = "harmonic"
dim = 2
stiffness = [1.0, 2.0]
center = [0.0, 1.0]
[dynamics]
noise = "hessian"
learning_rate = 0.1
noise_strength = 0.1
epsilon = 1e-9
[init]
positions = [[0.0, 1.0]]
[observables]
sample_every = 10
sample_steps = [5]
quantiles = [0.5]
per_walker = true
[observables.first_passage]
coordinate = 1
above = 2.0
[[observables.histogram]]
name = "h"
kind = "x"
coordinate = 0
x_range = [-1, 1]
bins = 10
y_band = [0, 2]
window = [0, 100]
every = 2
temperature = 0.1
[sweep]
mode = "zip"
order = ["noise_strength", "learning_rate"]
learning_rate = [0.1, 0.2]
noise_strength = [0.1, 0.2]
)",
      R"(
[dynamics]
dt = 0.01
temperature = 0.001
[observables.first_passage]
target = "flat"
[[observables.histogram]]
kind = "xy"
x_range = [-1, 1]
y_range = [0, 10]
y_bins = 5
)",
      R"(
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
[observables.first_passage]
below = 2.0
)",
      R"(
[dynamics]
noise_distribution = "alpha_stable"
alpha = 1.5
learning_rate = 0.1
noise_strength = 0.1
)",
      R"(
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
order_parameter = "x"
lambda_A = -0.6
interfaces = [-0.5, 0.2]
trials = 10
replicas = 2
equilibration_steps = 10
max_trial_steps = 1000
max_stored_states = 1000
store_states = false
)",
      R"(
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
lambda_0 = -0.5
lambda_B = 0.2
crossing_probability = 0.3
placement_trials = 20
)",
      R"(
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
optimizer = "momentum"
momentum = 0.5
[dynamics.learning_rate_schedule]
kind = "step"
warmup_steps = 5
every = 10
factor = 0.5
[dynamics.noise_schedule]
kind = "exponential"
gamma = 0.99
)",
      R"(
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
optimizer = "adam"
beta1 = 0.8
beta2 = 0.99
optimizer_epsilon = 1e-6
[dynamics.learning_rate_schedule]
kind = "cosine"
decay_steps = 50
floor = 0.1
[dynamics.noise_schedule]
kind = "piecewise"
steps = [0, 10]
values = [1.0, 0.5]
)",
      R"(
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
optimizer = "rmsprop"
rmsprop_decay = 0.9
[dynamics.learning_rate_schedule]
kind = "exponential"
gamma = 0.999
[dynamics.noise_schedule]
kind = "step"
warmup_steps = 3
every = 20
factor = 0.5
)",
      R"(
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
optimizer = "nesterov"
[dynamics.learning_rate_schedule]
kind = "piecewise"
steps = [0, 20]
values = [1.0, 0.1]
[dynamics.noise_schedule]
kind = "cosine"
decay_steps = 30
floor = 0.5
)"};
  std::set<std::pair<std::string, std::string>> used;
  for (const std::string& text : configs) {
    EXPECT_NO_THROW(parse(text)) << text;
    std::istringstream stream(text);
    const toml::value root = toml::parse(stream, "used.toml");
    // Records the keys of every table, under the section names of the key table.
    std::function<void(const toml::value&, const std::string&)> walk =
        [&](const toml::value& table, const std::string& section) {
          for (const auto& [key, value] : table.as_table()) {
            used.insert({section, key});
            const std::string child = section.empty() ? key : section + "." + key;
            if (value.is_table()) walk(value, child);
            if (value.is_array()) {
              for (const auto& item : value.as_array()) {
                if (item.is_table()) walk(item, child);
              }
            }
          }
        };
    walk(root, "");
  }
  for (const ConfigKey& key : config_keys()) {
    EXPECT_TRUE(used.count({key.section, key.name}))
        << key.section << "." << key.name << " is documented but no config here uses it";
  }
}

TEST(ConfigErrors, InvalidTomlSaysWhere) {
  expect_error("[dynamics\nlearning_rate = 0.1\n", {"test.toml", "not valid TOML"});
}

TEST(ConfigErrors, MissingFileIsAClearError) {
  try {
    load_config_file("/nonexistent/sgdwalk.toml");
    FAIL() << "expected an error";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/sgdwalk.toml: cannot open"),
              std::string::npos);
  }
}

TEST(Config, EmbeddedDefaultIsTheQuickstartAndValid) {
  const RunPlan plan = load_config_text(embedded_default_config(), "<embedded>");
  EXPECT_EQ(plan.name, "quickstart");
  EXPECT_GT(plan.variants.size(), 1u);
}

TEST(Config, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
}

}  // namespace
}  // namespace sgdwalk

namespace sgdwalk {
namespace {

// Issue 19, item 9: log-spaced sample steps. Expected steps worked out by hand:
// exponents 0, 0.5, ..., 3 give 10^e = 1, 3.16, 10, 31.6, 100, 316.2, 1000 → rounded.
TEST(ConfigSampleSteps, LogspaceGivesRoundedLogSpacedStepsWithTheEnds) {
  const RunPlan plan = load_config_text(R"(
[run]
walkers = 4
steps = 5000
[dynamics]
learning_rate = 0.01
noise_strength = 0.01
[observables]
sample_steps = { logspace = [0, 3, 7] }
)",
                                        "logspace.toml");
  EXPECT_EQ(plan.sample_steps, (std::vector<std::int64_t>{0, 1, 3, 10, 32, 100, 316, 1000, 5000}));
  // Together with sample_every the two sets merge.
  const RunPlan both = load_config_text(R"(
[run]
walkers = 4
steps = 100
[dynamics]
learning_rate = 0.01
noise_strength = 0.01
[observables]
sample_every = 50
sample_steps = { logspace = [0, 1, 2] }
)",
                                        "both.toml");
  EXPECT_EQ(both.sample_steps, (std::vector<std::int64_t>{0, 1, 10, 50, 100}));
}

TEST(ConfigSampleSteps, BadLogspaceNamesTheKeyAndTheRange) {
  const std::string head =
      "[run]\nwalkers = 4\nsteps = 1000\n[dynamics]\nlearning_rate = 0.01\n"
      "noise_strength = 0.01\n[observables]\n";
  try {
    (void)load_config_text(head + "sample_steps = { logspace = [0, 4, 5] }\n", "bad.toml");
    ADD_FAILURE() << "an exponent past log10(steps) must be refused";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("observables.sample_steps.logspace[1]"), std::string::npos) << message;
    EXPECT_NE(message.find("4"), std::string::npos) << message;
  }
  try {
    (void)load_config_text(head + "sample_steps = { linspace = [0, 3, 5] }\n", "bad.toml");
    ADD_FAILURE() << "only logspace is a sample_steps table";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("logspace = [first_exponent"), std::string::npos)
        << error.what();
  }
  try {
    (void)load_config_text(head + "sample_steps = { logspace = [0, 3] }\n", "bad.toml");
    ADD_FAILURE() << "a pair is not a triple";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("logspace"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace sgdwalk
