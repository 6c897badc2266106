// The sgdwalk CLI end to end: run directories, outputs, refusal to overwrite, bad input, replay.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend_registry.hpp"
#include "cli/progress_line.hpp"
#include "test_files.hpp"

namespace {

namespace fs = std::filesystem;

using sgdwalk::testing::CommandResult;
using sgdwalk::testing::read_json;
using sgdwalk::testing::run_cli;

fs::path scratch(const std::string& name) {
  return sgdwalk::testing::scratch_dir("cli", name);
}

void write(const fs::path& path, const std::string& text) {
  sgdwalk::testing::write_bytes(path, text);
}

std::vector<double> read_h5_doubles(const fs::path& file, const std::string& dataset,
                                    std::vector<hsize_t>* shape = nullptr) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(f, 0) << file;
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  EXPECT_GE(d, 0) << dataset;
  const hid_t space = H5Dget_space(d);
  std::vector<hsize_t> dims(static_cast<std::size_t>(H5Sget_simple_extent_ndims(space)));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  hsize_t total = 1;
  for (auto n : dims) total *= n;
  std::vector<double> values(total);
  H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  if (shape != nullptr) *shape = dims;
  return values;
}

const char* kTinyConfig = R"(
[run]
name = "tiny"
walkers = 50
steps = 400
seed = 5
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
[observables]
sample_every = 100
per_walker = true
[observables.first_passage]
target = "flat"
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 60
[sweep]
noise_strength = [0.02, 0.1]
)";

TEST(Cli, RunWritesSummaryAndHdf5) {
  const fs::path dir = scratch("run");
  write(dir / "tiny.toml", kTinyConfig);
  const CommandResult result =
      run_cli("run " + (dir / "tiny.toml").string() + " --out " + (dir / "out").string() +
              " --backend cpu --threads 2 --quiet");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto summary = read_json(dir / "out" / "summary.json");
  EXPECT_EQ(summary["backend"]["name"], "cpu");
  EXPECT_EQ(summary["partial"], false);
  EXPECT_EQ(summary["config"]["run"]["seed"], 5);
  EXPECT_EQ(summary["timing"]["walker_steps"], 2 * 50 * 400);
  EXPECT_GT(summary["timing"]["walker_steps_per_second"].get<double>(), 0);
  // The CLI process's own peak (VmHWM): at least its 2 x 50 walkers' state, and not absurd.
  ASSERT_TRUE(summary["timing"]["peak_host_memory_bytes"].is_number());
  EXPECT_GT(summary["timing"]["peak_host_memory_bytes"].get<double>(), 2 * 50 * 64);
  EXPECT_LT(summary["timing"]["peak_host_memory_bytes"].get<double>(), 4e9);
  ASSERT_EQ(summary["variants"].size(), 2u);
  const double p_flat = summary["variants"][1]["p_flat"];
  EXPECT_GE(p_flat, 0.0);
  EXPECT_LE(p_flat, 1.0);
  EXPECT_TRUE(summary["variants"][1].contains("first_passage"));
  EXPECT_TRUE(fs::exists(dir / "out" / "config.toml"));
  EXPECT_FALSE(fs::exists(dir / "out" / "results.h5.tmp"));

  std::vector<hsize_t> shape;
  const auto flat = read_h5_doubles(dir / "out" / "results.h5", "/variants/p_flat", &shape);
  ASSERT_EQ(shape, (std::vector<hsize_t>{2}));
  EXPECT_DOUBLE_EQ(flat[1], p_flat);
  read_h5_doubles(dir / "out" / "results.h5", "/samples/p_flat", &shape);
  EXPECT_EQ(shape, (std::vector<hsize_t>{2, 5}));
  const auto counts = read_h5_doubles(dir / "out" / "results.h5", "/histograms/x/counts", &shape);
  EXPECT_EQ(shape, (std::vector<hsize_t>{2, 60}));
  const auto position = read_h5_doubles(dir / "out" / "results.h5", "/walkers/position", &shape);
  EXPECT_EQ(shape, (std::vector<hsize_t>{100, 2}));
}

// /samples/elapsed_time is the sum of the learning rates applied so far, η Σ_{t<step} f(t), per
// variant of a sweep over the schedule; /samples/time stays η × step. Expected: the documented
// factors summed term by term in long double (warmup (t + 1)/W, then γ^u).
TEST(Cli, ElapsedTimeSumsTheScheduledLearningRates) {
  const fs::path dir = scratch("elapsed_time");
  write(dir / "scheduled.toml", R"(
[run]
walkers = 4
steps = 3000
seed = 1
[dynamics]
learning_rate = 0.02
noise_strength = 0.01
[dynamics.learning_rate_schedule]
kind = "exponential"
warmup_steps = 100
[observables]
sample_every = 700
[sweep]
"learning_rate_schedule.gamma" = [0.999, 1.0002]
)");
  const CommandResult result = run_cli("run " + (dir / "scheduled.toml").string() + " --out " +
                                       (dir / "out").string() + " --backend cpu --quiet");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::vector<hsize_t> shape;
  const fs::path file = dir / "out" / "results.h5";
  const auto steps = read_h5_doubles(file, "/samples/step", &shape);
  const auto time = read_h5_doubles(file, "/samples/time");
  const auto elapsed = read_h5_doubles(file, "/samples/elapsed_time", &shape);
  ASSERT_EQ(shape, (std::vector<hsize_t>{2, steps.size()}));
  ASSERT_EQ(steps.back(), 3000.0);
  const double gammas[] = {0.999, 1.0002};
  for (std::size_t v = 0; v < 2; ++v) {
    for (std::size_t i = 0; i < steps.size(); ++i) {
      long double sum = 0;
      for (std::int64_t t = 0; t < static_cast<std::int64_t>(steps[i]); ++t) {
        sum += t < 100 ? (t + 1) / 100.0L : std::pow(static_cast<long double>(gammas[v]), t - 100);
      }
      const double expected = static_cast<double>(0.02L * sum);
      EXPECT_NEAR(elapsed[v * steps.size() + i], expected, 1e-13 * expected + 1e-300)
          << "variant " << v << ", step " << steps[i];
      EXPECT_EQ(time[v * steps.size() + i], 0.02 * steps[i]);
    }
  }
  // γ < 1 elapses less time than the base rate would, γ > 1 more.
  EXPECT_LT(elapsed[steps.size() - 1], time[steps.size() - 1]);
  EXPECT_GT(elapsed[2 * steps.size() - 1], time[2 * steps.size() - 1]);
}

TEST(Cli, SummaryTableGivesExactIntervalsAtZeroAndOneAndTheEscapeRate) {
  // 100 walkers in the sharp well of the double well at a tiny noise: none leaves it (P_flat =
  // 0, whose standard error is 0) and none passes x = 0.5 (a rate of 0 with a finite upper
  // bound). The table shows the exact interval's width, 1 − 0.15865^(1/100) = 0.0182, not "± 0".
  const fs::path dir = scratch("summary_table");
  write(dir / "stay.toml", R"([run]
walkers = 100
steps = 50
seed = 3
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
learning_rate = 0.01
noise_strength = 0.01
[init]
positions = [-1.1547005383792515]
[observables.first_passage]
coordinate = 0
above = 0.5
)");
  const CommandResult result = run_cli("run " + (dir / "stay.toml").string() + " --out " +
                                       (dir / "out").string() + " --backend cpu --threads 1");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto summary = read_json(dir / "out" / "summary.json");
  ASSERT_EQ(summary["variants"][0]["p_flat"], 0.0);
  EXPECT_NE(result.output.find("rate/time"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("95% interval"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find(" +0.0182 "), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("exact 68.3 % Clopper-Pearson interval"), std::string::npos)
      << result.output;
  const double high = summary["variants"][0]["first_passage"]["rate_ci95"][1];
  EXPECT_NE(result.output.find(fmt::format("[0, {:.4g}]", high)), std::string::npos)
      << result.output;
}

TEST(Cli, ExistingRunDirectoryIsNotOverwrittenWithoutForce) {
  const fs::path dir = scratch("force");
  write(dir / "tiny.toml", kTinyConfig);
  const std::string base = "run " + (dir / "tiny.toml").string() + " --out " +
                           (dir / "out").string() + " --backend cpu --quiet";
  ASSERT_EQ(run_cli(base).exit_code, 0);
  const auto before = fs::last_write_time(dir / "out" / "results.h5");
  const CommandResult refused = run_cli(base + " --seed 6");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find("exists"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("--force"), std::string::npos) << refused.output;
  EXPECT_EQ(fs::last_write_time(dir / "out" / "results.h5"), before);
  EXPECT_EQ(read_json(dir / "out" / "summary.json")["config"]["run"]["seed"], 5);
  ASSERT_EQ(run_cli(base + " --seed 6 --force").exit_code, 0);
  EXPECT_EQ(read_json(dir / "out" / "summary.json")["config"]["run"]["seed"], 6);
}

TEST(Cli, BadConfigGivesClearErrorAndWritesNothing) {
  const fs::path dir = scratch("bad");
  write(dir / "bad.toml", "[dynamics]\nlearning_rate = 0.1\nnoise_strenght = 0.1\n");
  const CommandResult result = run_cli("run " + (dir / "bad.toml").string() + " --out " +
                                       (dir / "out").string() + " --quiet");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("bad.toml"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("dynamics.noise_strenght"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("did you mean 'noise_strength'"), std::string::npos)
      << result.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(Cli, BadFlagsAreRejected) {
  EXPECT_NE(run_cli("run --backend gpu").exit_code, 0);
  EXPECT_NE(run_cli("run --threads -3").exit_code, 0);
  EXPECT_NE(run_cli("run /nonexistent.toml").exit_code, 0);
  const CommandResult no_command = run_cli("");
  EXPECT_NE(no_command.exit_code, 0);
}

TEST(Cli, HelpIsComplete) {
  const CommandResult help = run_cli("run --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* option : {"--out", "--backend", "--threads", "--seed", "--force", "--quiet",
                             "--batch-walkers", "--segment-steps"}) {
    EXPECT_NE(help.output.find(option), std::string::npos) << option;
  }
  const CommandResult replay = run_cli("replay --help");
  for (const char* option : {"--walker", "--variant", "--every", "--until", "--output"}) {
    EXPECT_NE(replay.output.find(option), std::string::npos) << option;
  }
  EXPECT_NE(run_cli("info --help").output.find("--config-reference"), std::string::npos);
  const CommandResult top = run_cli("--help");
  for (const char* command : {"run", "replay", "info"}) {
    EXPECT_NE(top.output.find(command), std::string::npos) << command;
  }
}

// Every usage error exits with the documented 2 (CLI11's own codes are 105, 106, 109, ...).
TEST(Cli, UsageErrorsExitWithTwo) {
  for (const char* arguments : {"run --bogus", "run --threads lots", "replay", "no-such-command",
                                "run --seed -1 --seed 2"}) {
    const CommandResult result = run_cli(arguments);
    EXPECT_EQ(result.exit_code, 2) << arguments << ": " << result.output;
  }
  EXPECT_EQ(run_cli("--help").exit_code, 0);
  EXPECT_EQ(run_cli("run --help").exit_code, 0);
}

// What the numbers would hide is said in warnings: diverged walkers per variant, a histogram
// that caught nothing, a first-passage target no walker reached. A healthy run says nothing.
TEST(Cli, WarnsAboutDivergedWalkersAndEmptyObservables) {
  const fs::path dir = scratch("warnings");
  write(dir / "tiny.toml", kTinyConfig);
  const CommandResult healthy = run_cli("run " + (dir / "tiny.toml").string() + " --out " +
                                        (dir / "healthy").string() + " --quiet");
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;
  EXPECT_EQ(healthy.output.find("warning:"), std::string::npos) << healthy.output;

  write(dir / "bad.toml", R"(
[run]
name = "bad"
walkers = 40
steps = 300
[dynamics]
learning_rate = 0.1
noise_strength = 0.05
[observables.first_passage]
coordinate = 1
above = 1000000.0
[[observables.histogram]]
name = "far_away"
x_range = [10.0, 20.0]
bins = 10
[sweep]
learning_rate = [0.1, 5.0]
)");
  const CommandResult bad = run_cli("run " + (dir / "bad.toml").string() + " --out " +
                                    (dir / "bad").string() + " --quiet");
  EXPECT_EQ(bad.exit_code, 0) << bad.output;
  EXPECT_NE(bad.output.find("warning: variant 1 (learning_rate=5): 40 of 40 walkers diverged"),
            std::string::npos)
      << bad.output;
  EXPECT_NE(bad.output.find("Gradient descent on a valley of curvature k is unstable for "
                            "learning_rate > 2/k"),
            std::string::npos)
      << bad.output;
  EXPECT_EQ(bad.output.find("warning: variant 0"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("histogram 'far_away' caught nothing inside its range in 2 of 2"),
            std::string::npos)
      << bad.output;
  // (variant 1's walkers run off to y = +inf on their way to NaN, and so pass the threshold)
  EXPECT_NE(bad.output.find("was reached by no walker in 1 of 2 variants (e.g. variant 0"),
            std::string::npos)
      << bad.output;

  // Heavy tails: a tail index this small throws walkers far out at once. At alpha = 0.05 (double)
  // their positions stay finite but the loss (x²) overflows; at alpha = 0.01 (float) the
  // positions do too, and the hint names the tail, not the learning rate.
  const std::string stable = R"(
[run]
walkers = 8
steps = 200
seed = 3
[landscape]
kind = "double_well"
[dynamics]
noise = "isotropic"
learning_rate = 0.05
noise_strength = 0.5
noise_distribution = "alpha_stable"
)";
  write(dir / "loss_overflow.toml", stable + "alpha = 0.05\n");
  const CommandResult overflow = run_cli("run " + (dir / "loss_overflow.toml").string() +
                                         " --out " + (dir / "loss_overflow").string() + " --quiet");
  EXPECT_EQ(overflow.exit_code, 0) << overflow.output;
  EXPECT_NE(overflow.output.find("warning: variant 0: the loss of walkers at finite positions "
                                 "overflowed at"),
            std::string::npos)
      << overflow.output;
  EXPECT_EQ(overflow.output.find("diverged"), std::string::npos) << overflow.output;
  // Walkers of an unstable learning rate on the 1-D harmonic (y = x) grow as 1.5^n: beyond the
  // samples' float range from step ~220, beyond double's from ~1750. In between y_mean is NaN,
  // and said so (the loss, x²/2 in double, stays finite to step 800).
  write(dir / "y_overflow.toml",
        "[run]\nwalkers = 20\nsteps = 800\n[landscape]\nkind = \"harmonic\"\n[dynamics]\n"
        "noise = \"isotropic\"\nlearning_rate = 2.5\nnoise_strength = 0.01\n[observables]\n"
        "sample_every = 100\n");
  const CommandResult y_overflow = run_cli("run " + (dir / "y_overflow.toml").string() + " --out " +
                                           (dir / "y_overflow").string() + " --quiet");
  EXPECT_EQ(y_overflow.exit_code, 0) << y_overflow.output;
  EXPECT_NE(y_overflow.output.find("warning: variant 0: y of walkers at finite positions is "
                                   "beyond the samples' float range (|y| > 3.4e38) at 6 of 9 "
                                   "samples (first at step 300)"),
            std::string::npos)
      << y_overflow.output;
  EXPECT_EQ(y_overflow.output.find("diverged"), std::string::npos) << y_overflow.output;
  // One walker: no spread to compute (NaN by definition), which is no overflow.
  write(dir / "single.toml",
        "[run]\nwalkers = 1\nsteps = 50\n[landscape]\nkind = \"double_well\"\n[dynamics]\n"
        "learning_rate = 0.05\nnoise_strength = 0.1\n[observables]\nsample_every = 10\n");
  const CommandResult single = run_cli("run " + (dir / "single.toml").string() + " --out " +
                                       (dir / "single").string() + " --quiet");
  EXPECT_EQ(single.exit_code, 0) << single.output;
  EXPECT_EQ(single.output.find("warning"), std::string::npos) << single.output;
  std::string in_float = stable;
  in_float.replace(in_float.find("seed = 3\n"), 9, "seed = 3\nprecision = \"float\"\n");
  write(dir / "jumps.toml", in_float + "alpha = 0.01\n");
  const CommandResult jumps = run_cli("run " + (dir / "jumps.toml").string() + " --out " +
                                      (dir / "jumps").string() + " --quiet");
  EXPECT_EQ(jumps.exit_code, 0) << jumps.output;
  EXPECT_NE(jumps.output.find("walkers diverged (non-finite) from step 1; their results are left "
                              "out. With alpha_stable noise a single jump can overflow"),
            std::string::npos)
      << jumps.output;
  EXPECT_EQ(jumps.output.find("learning_rate > 2/k"), std::string::npos) << jumps.output;
  EXPECT_NE(jumps.output.find("a larger alpha or precision = \"double\""), std::string::npos)
      << jumps.output;
  // results.h5 says when, per variant (-1: never), as summary.json does.
  EXPECT_EQ(read_h5_doubles(dir / "jumps" / "results.h5", "/variants/first_nonfinite_step"),
            std::vector<double>{1.0});
  EXPECT_EQ(read_h5_doubles(dir / "single" / "results.h5", "/variants/first_nonfinite_step"),
            std::vector<double>{-1.0});
}

// Diverged walkers are told the stability bound of their optimizer: Nesterov's with μ = 0.9 on
// k = 1 is 2(1 + μ)/(1 + 2μ) = 1.357 (the spectral radius of the noise-free update reaches 1),
// below which η = 1.5 lies for plain SGD (2/k = 2); heavy ball's is 2(1 + μ) = 3.8.
TEST(Cli, DivergenceNamesTheOptimizersStabilityBound) {
  const fs::path dir = scratch("divergence_bound");
  const std::string head = R"(
[run]
walkers = 20
steps = 4000
[landscape]
kind = "harmonic"
[dynamics]
noise = "isotropic"
noise_strength = 0.05
momentum = 0.9
)";
  write(dir / "nesterov.toml", head + "optimizer = \"nesterov\"\nlearning_rate = 1.5\n");
  const CommandResult nesterov = run_cli("run " + (dir / "nesterov.toml").string() + " --out " +
                                         (dir / "nesterov").string() + " --quiet");
  EXPECT_EQ(nesterov.exit_code, 0) << nesterov.output;
  EXPECT_NE(nesterov.output.find("20 of 20 walkers diverged"), std::string::npos)
      << nesterov.output;
  EXPECT_NE(
      nesterov.output.find("Nesterov momentum on a valley of curvature k is unstable for "
                           "learning_rate > 2(1 + momentum)/((1 + 2 momentum) k) = 1.35714/k"),
      std::string::npos)
      << nesterov.output;
  EXPECT_EQ(nesterov.output.find("> 2/k"), std::string::npos) << nesterov.output;
  write(dir / "momentum.toml", head + "optimizer = \"momentum\"\nlearning_rate = 3.9\n");
  const CommandResult momentum = run_cli("run " + (dir / "momentum.toml").string() + " --out " +
                                         (dir / "momentum").string() + " --quiet");
  EXPECT_NE(momentum.output.find("learning_rate > 2(1 + momentum)/k = 3.8/k"), std::string::npos)
      << momentum.output;
  // Just below both bounds nothing diverges.
  write(dir / "stable.toml", head + "optimizer = \"nesterov\"\nlearning_rate = 1.3\n");
  const CommandResult stable = run_cli("run " + (dir / "stable.toml").string() + " --out " +
                                       (dir / "stable").string() + " --quiet");
  EXPECT_EQ(stable.output.find("diverged"), std::string::npos) << stable.output;
}

// A first-passage target that every walker starts in: no passage times, no rate; said so.
TEST(Cli, WarnsWhenEveryWalkerStartsInTheTarget) {
  const fs::path dir = scratch("all_in_target");
  write(dir / "inside.toml", R"(
[run]
walkers = 30
steps = 50
[landscape]
kind = "double_well"
[dynamics]
learning_rate = 0.05
noise_strength = 0.1
[observables.first_passage]
coordinate = 0
above = -100.0
)");
  const CommandResult inside = run_cli("run " + (dir / "inside.toml").string() + " --out " +
                                       (dir / "inside").string() + " --quiet");
  EXPECT_EQ(inside.exit_code, 0) << inside.output;
  EXPECT_NE(inside.output.find("warning: every walker started inside the first-passage target"),
            std::string::npos)
      << inside.output;
  EXPECT_EQ(inside.output.find("reached by no walker"), std::string::npos) << inside.output;
}

TEST(Cli, InfoReportsBackends) {
  const CommandResult info = run_cli("info");
  EXPECT_EQ(info.exit_code, 0);
  EXPECT_NE(info.output.find("cpu"), std::string::npos);
  EXPECT_NE(info.output.find("cuda:"), std::string::npos);
}

TEST(Cli, CudaBackendWithoutDeviceIsAClearErrorAndAutoFallsBack) {
  const fs::path dir = scratch("cuda");
  write(dir / "tiny.toml", kTinyConfig);
  if (run_cli("info").output.find("default backend here: cuda") != std::string::npos) {
    GTEST_SKIP() << "a CUDA device is present; the no-device messages cannot be checked";
  }
  const CommandResult cuda = run_cli("run " + (dir / "tiny.toml").string() + " --out " +
                                     (dir / "a").string() + " --backend cuda");
  EXPECT_NE(cuda.exit_code, 0);
  EXPECT_NE(cuda.output.find("cuda"), std::string::npos) << cuda.output;
  const CommandResult automatic = run_cli("run " + (dir / "tiny.toml").string() + " --out " +
                                          (dir / "b").string() + " --backend auto");
  EXPECT_EQ(automatic.exit_code, 0) << automatic.output;
  EXPECT_EQ(read_json(dir / "b" / "summary.json")["backend"]["name"], "cpu");
  // With the CUDA backend built, one calm line says why, without the runtime's error codes (a
  // CPU-only build has nothing to fall back from and says nothing).
  if (!sgdwalk::cuda_backend_built()) return;
  const std::size_t notice = automatic.output.find("using the CPU backend");
  ASSERT_NE(notice, std::string::npos) << automatic.output;
  const std::size_t line_start = automatic.output.rfind('\n', notice) + 1;
  const std::string line = automatic.output.substr(line_start, notice - line_start);
  EXPECT_EQ(line.find("cudaError"), std::string::npos) << line;
  EXPECT_NE(line.find("no usable GPU here"), std::string::npos) << line;
}

TEST(Cli, ReplayReproducesTheStoredFinalPositions) {
  const fs::path dir = scratch("replay");
  write(dir / "tiny.toml", kTinyConfig);
  ASSERT_EQ(run_cli("run " + (dir / "tiny.toml").string() + " --out " + (dir / "out").string() +
                    " --quiet --seed 11")
                .exit_code,
            0);
  const auto position = read_h5_doubles(dir / "out" / "results.h5", "/walkers/position");
  for (const int walker : {0, 49, 50, 99}) {
    const fs::path csv = dir / ("walker" + std::to_string(walker) + ".csv");
    const CommandResult replay =
        run_cli("replay " + (dir / "out").string() + " --walker " + std::to_string(walker) +
                " --every 100 --output " + csv.string());
    ASSERT_EQ(replay.exit_code, 0) << replay.output;
    std::ifstream file(csv);
    std::string line, last;
    int rows = 0;
    while (std::getline(file, line)) {
      if (line.rfind('#', 0) == 0) continue;  // the commented header
      last = line;
      ++rows;
    }
    EXPECT_EQ(rows, 1 + 5);  // column names + steps 0, 100, 200, 300, 400
    std::stringstream row(last);
    std::string step, x, y;
    std::getline(row, step, ',');
    std::getline(row, x, ',');
    std::getline(row, y, ',');
    EXPECT_EQ(step, "400");
    EXPECT_EQ(std::stod(x), position[static_cast<std::size_t>(walker) * 2]);
    EXPECT_EQ(std::stod(y), position[static_cast<std::size_t>(walker) * 2 + 1]);
  }
  const CommandResult out_of_range = run_cli("replay " + (dir / "out").string() + " --walker 100");
  EXPECT_EQ(out_of_range.exit_code, 2);
  EXPECT_NE(out_of_range.output.find("out of range"), std::string::npos);
  const CommandResult not_a_run = run_cli("replay " + dir.string() + " --walker 0");
  EXPECT_EQ(not_a_run.exit_code, 2);
  EXPECT_NE(not_a_run.output.find("not a run directory"), std::string::npos);
  // The table never replaces one of the run's own files (named by another path to it, too); a
  // new file in the run directory is fine.
  const std::string summary_before = sgdwalk::testing::read_bytes(dir / "out" / "summary.json");
  for (const std::string& target : {(dir / "out" / "summary.json").string(),
                                    (dir / "out" / ".." / "out" / "results.h5").string()}) {
    const CommandResult over =
        run_cli("replay " + (dir / "out").string() + " --walker 0 --output " + target);
    EXPECT_EQ(over.exit_code, 2) << target;
    EXPECT_NE(over.output.find("is the run's own file"), std::string::npos) << over.output;
  }
  // A bare name from inside the run directory, of a file not yet there, too.
  const CommandResult relative =
      sgdwalk::testing::run_cli("replay . --walker 0 --output checkpoint.bin", dir / "out");
  EXPECT_EQ(relative.exit_code, 2) << relative.output;
  EXPECT_FALSE(fs::exists(dir / "out" / "checkpoint.bin"));
  EXPECT_EQ(sgdwalk::testing::read_bytes(dir / "out" / "summary.json"), summary_before);
  EXPECT_EQ(read_h5_doubles(dir / "out" / "results.h5", "/walkers/position"), position);
  EXPECT_EQ(run_cli("replay " + (dir / "out").string() + " --walker 0 --output " +
                    (dir / "out" / "walker0.csv").string())
                .exit_code,
            0);
}

/// The lines of a replayed CSV: the '#' header and the rows (column names first).
struct ReplayCsv {
  std::vector<std::string> header, rows;
};

ReplayCsv read_replay(const fs::path& csv) {
  ReplayCsv result;
  std::ifstream file(csv);
  for (std::string line; std::getline(file, line);) {
    (line.rfind('#', 0) == 0 ? result.header : result.rows).push_back(line);
  }
  return result;
}

TEST(Cli, ReplayStopsAtUntilAndSaysWhatItReplays) {
  const fs::path dir = scratch("replay_until");
  write(dir / "tiny.toml", kTinyConfig);
  ASSERT_EQ(run_cli("run " + (dir / "tiny.toml").string() + " --out " + (dir / "out").string() +
                    " --quiet")
                .exit_code,
            0);
  // Walker 3 of variant 1 (noise_strength 0.1) up to step 250, every 100 steps.
  const CommandResult until = run_cli("replay " + (dir / "out").string() +
                                      " --variant 1 --walker 3 --every 100 --until 250 --output " +
                                      (dir / "until.csv").string());
  ASSERT_EQ(until.exit_code, 0) << until.output;
  const ReplayCsv csv = read_replay(dir / "until.csv");
  ASSERT_EQ(csv.rows.size(), 1u + 4u);  // column names + steps 0, 100, 200, 250
  EXPECT_EQ(csv.rows[4].substr(0, 4), "250,");
  const std::string header = [&] {
    std::string text;
    for (const auto& line : csv.header) text += line + "\n";
    return text;
  }();
  for (const char* fragment :
       {"variant 1, walker 3 of the variant (global walker 53)", "seed 5", "steps 0 to 250 of 400",
        "landscape two_valley: ", "x1=0.8", "noise=hessian", "learning_rate=0.1",
        "noise_strength=0.1", "swept: noise_strength=0.1", "first passage: basin == flat"}) {
    EXPECT_NE(header.find(fragment), std::string::npos) << fragment << "\n" << header;
  }
  // Step 250 of the full replay is the same row: --until only stops early.
  ASSERT_EQ(run_cli("replay " + (dir / "out").string() +
                    " --variant 1 --walker 3 --every 50 --output " + (dir / "full.csv").string())
                .exit_code,
            0);
  const ReplayCsv full = read_replay(dir / "full.csv");
  ASSERT_EQ(full.rows.size(), 1u + 9u);
  EXPECT_EQ(full.rows[6], csv.rows[4]);
  const CommandResult beyond =
      run_cli("replay " + (dir / "out").string() + " --walker 0 --until 401");
  EXPECT_EQ(beyond.exit_code, 2);
  EXPECT_NE(beyond.output.find("--until 401 is out of range; allowed: 0 to 400"), std::string::npos)
      << beyond.output;
}

// `--thread 4` was read as a config path ("File does not exist: 4"); unknown options and
// commands get a "did you mean" like config keys do.
TEST(Cli, UnknownOptionsAndCommandsGetDidYouMean) {
  const CommandResult thread = run_cli("run --thread 4");
  EXPECT_EQ(thread.exit_code, 2);
  EXPECT_NE(thread.output.find("unknown option '--thread' (did you mean '--threads'?)"),
            std::string::npos)
      << thread.output;
  EXPECT_EQ(thread.output.find("File does not exist"), std::string::npos) << thread.output;
  const CommandResult equals = run_cli("run --chekpoint-every=5");
  EXPECT_EQ(equals.exit_code, 2);
  EXPECT_NE(equals.output.find("did you mean '--checkpoint-every'?"), std::string::npos)
      << equals.output;
  const CommandResult replay = run_cli("replay somewhere --walkr 3");
  EXPECT_EQ(replay.exit_code, 2);
  EXPECT_NE(replay.output.find("sgdwalk replay: unknown option '--walkr' (did you mean "
                               "'--walker'?)"),
            std::string::npos)
      << replay.output;
  const CommandResult command = run_cli("rnu");
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_NE(command.output.find("unknown command 'rnu' (did you mean 'run'?)"), std::string::npos)
      << command.output;
  // Values that look like options are values: a negative number after an option.
  const CommandResult negative = run_cli("run --seed -1");
  EXPECT_EQ(negative.exit_code, 2);
  EXPECT_EQ(negative.output.find("unknown option"), std::string::npos) << negative.output;
}

TEST(Cli, NumbersBeyondTheirTypeOrNanAreRefused) {
  // CLI11 alone converts an integer too large for its type to the type's limit and lets NaN
  // through every range: a run with another seed than asked, a run without checkpoints.
  for (const char* command :
       {"run --seed 9223372036854775808", "run --seed 99999999999999999999999",
        "replay somewhere --walker 99999999999999999999", "run --seed 0x8000000000000000"}) {
    const CommandResult result = run_cli(command);
    EXPECT_EQ(result.exit_code, 2) << command;
    EXPECT_NE(result.output.find("out of range"), std::string::npos) << command << result.output;
  }
  for (const char* command :
       {"run --checkpoint-every nan", "resume somewhere --checkpoint-every NaN"}) {
    const CommandResult result = run_cli(command);
    EXPECT_EQ(result.exit_code, 2) << command;
    EXPECT_NE(result.output.find("is not a number; allowed: 0 to"), std::string::npos)
        << command << result.output;
  }
}

TEST(Cli, OutThatIsAFileOrUnwritableIsRefusedPlainly) {
  const fs::path dir = scratch("out_checks");
  write(dir / "tiny.toml", kTinyConfig);
  write(dir / "a_file", "not a directory");
  const std::string run = "run " + (dir / "tiny.toml").string() + " --quiet --out ";
  const CommandResult file = run_cli(run + (dir / "a_file").string());
  EXPECT_EQ(file.exit_code, 2);
  EXPECT_NE(file.output.find("is an existing file, not a directory"), std::string::npos)
      << file.output;
  EXPECT_EQ(sgdwalk::testing::read_bytes(dir / "a_file"), "not a directory");
  const CommandResult below_file = run_cli(run + (dir / "a_file" / "run").string());
  EXPECT_EQ(below_file.exit_code, 2);
  EXPECT_NE(below_file.output.find("is a file, not a directory"), std::string::npos)
      << below_file.output;
  // /proc takes no new directories, whoever asks (root passes permission checks there).
  const CommandResult unwritable = run_cli(run + "/proc/sgdwalk-test/run");
  EXPECT_EQ(unwritable.exit_code, 2);
  EXPECT_NE(unwritable.output.find("cannot create the run directory '/proc/sgdwalk-test/run'"),
            std::string::npos)
      << unwritable.output;
  // merge's output directory is checked the same way, before any shard is read.
  const CommandResult merge = run_cli("merge " + (dir / "a_file").string() + " shard-0 shard-1");
  EXPECT_EQ(merge.exit_code, 2);
  EXPECT_NE(merge.output.find("sgdwalk merge: the run directory '" + (dir / "a_file").string() +
                              "' is an existing file, not a directory; choose another output "
                              "directory"),
            std::string::npos)
      << merge.output;
  EXPECT_EQ(merge.output.find("filesystem error"), std::string::npos) << merge.output;
  EXPECT_EQ(sgdwalk::testing::read_bytes(dir / "a_file"), "not a directory");
}

TEST(Cli, RunNameCannotEscapeTheRunsFolder) {
  const fs::path dir = scratch("run_name");
  write(dir / "escape.toml",
        "[run]\nname = \"../escape\"\n[dynamics]\nlearning_rate = 0.1\n"
        "noise_strength = 0.1\n");
  // Run from a directory of its own, so that runs/../escape would land inside it.
  const fs::path work = dir / "work";
  fs::create_directories(work);
  const CommandResult result =
      sgdwalk::testing::run_cli("run " + (dir / "escape.toml").string() + " --quiet", work);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("key 'run.name': value \"../escape\""), std::string::npos)
      << result.output;
  EXPECT_FALSE(fs::exists(work / "escape"));
  EXPECT_FALSE(fs::exists(work / "runs"));
}

// The resolved config in summary.json, fed back as the config, makes the same run.
TEST(Cli, ResolvedConfigInSummaryRunsAgainWithTheSameResults) {
  const fs::path dir = scratch("resolved");
  // Swept keys in an order other than alphabetical, a threshold first passage, two histograms.
  write(dir / "first.toml", R"(
[run]
name = "first"
walkers = 30
steps = 300
seed = 21
[dynamics]
learning_rate = 0.1
noise_strength = 0.05
[observables]
sample_every = 100
per_walker = true
[observables.first_passage]
coordinate = 1
above = 5.5
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 30
y_band = [4.0, 8.0]
[[observables.histogram]]
name = "xy"
kind = "xy"
x_range = [-3.0, 3.0]
y_range = [0.0, 10.0]
y_bins = 4
[sweep]
noise_strength = [0.02, 0.1]
learning_rate = [0.05, 0.1]
)");
  ASSERT_EQ(run_cli("run " + (dir / "first.toml").string() + " --out " + (dir / "first").string() +
                    " --quiet")
                .exit_code,
            0);
  const CommandResult again = run_cli("run " + (dir / "first" / "summary.json").string() +
                                      " --out " + (dir / "again").string() + " --quiet");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  const auto first = read_json(dir / "first" / "summary.json");
  const auto second = read_json(dir / "again" / "summary.json");
  EXPECT_EQ(second["config"], first["config"]);
  EXPECT_EQ(second["variants"], first["variants"]);
  for (const char* dataset : {"/walkers/position", "/samples/y_mean", "/histograms/x/counts",
                              "/histograms/xy/counts", "/first_passage/arrived"}) {
    EXPECT_EQ(read_h5_doubles(dir / "again" / "results.h5", dataset),
              read_h5_doubles(dir / "first" / "results.h5", dataset))
        << dataset;
  }
  // The new run directory's config.toml is TOML, and the run can be resumed from it like any.
  EXPECT_NE(sgdwalk::testing::read_bytes(dir / "again" / "config.toml").find("[sweep]"),
            std::string::npos);

  // A broken JSON file, or a resolved config with a bad value, is a config error like any.
  write(dir / "broken.json", "{\"config\": {");
  const CommandResult broken = run_cli("run " + (dir / "broken.json").string() + " --quiet");
  EXPECT_EQ(broken.exit_code, 2);
  EXPECT_NE(broken.output.find("broken.json: not valid JSON"), std::string::npos) << broken.output;
  write(dir / "bad.json", R"({"config": {"run": {"walkers": 0}}})");
  const CommandResult bad = run_cli("run " + (dir / "bad.json").string() + " --quiet");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("bad.json: key 'run.walkers': value 0 is out of range"),
            std::string::npos)
      << bad.output;
}

TEST(ProgressLine, FitsTheWidthAndDropsTheLeastImportantFirst) {
  sgdwalk::RunProgress progress;
  progress.variants_done = 37;
  progress.variants_total = 1600;
  progress.batch = 2;
  progress.batches = 12;
  progress.walker_steps_done = 123456789012;
  progress.walker_steps_total = 400000000000;
  progress.simulate_seconds = 61.5;
  const std::string wide = sgdwalk::progress_line(progress, 200, true);
  for (const char* part : {"[", " 30.9%", "variants 37/1600", "batch 3/12", "1.23e+11 walker-steps",
                           "2.01e+09 walker-steps/s", "ETA 2m18s"}) {
    EXPECT_NE(wide.find(part), std::string::npos) << part << " in " << wide;
  }
  for (int width = 1; width <= 200; ++width) {
    for (const bool bar : {true, false}) {
      const std::string line = sgdwalk::progress_line(progress, width, bar);
      EXPECT_LE(static_cast<int>(line.size()), std::max(width - 1, 0)) << width << ": " << line;
      if (width >= 20) {
        EXPECT_NE(line.find("30.9%"), std::string::npos) << width << ": " << line;
        EXPECT_NE(line.find("ETA 2m18s"), std::string::npos) << width << ": " << line;
      }
    }
  }
  // A job's progress (MPI) has no variant count: none is shown.
  sgdwalk::RunProgress job = progress;
  job.variants_total = 0;
  EXPECT_EQ(sgdwalk::progress_line(job, 200, true).find("variants"), std::string::npos);
  // At 80 columns the walker-step count goes before the variants and the rate.
  const std::string eighty = sgdwalk::progress_line(progress, 80, true);
  EXPECT_EQ(eighty.find("walker-steps "), std::string::npos) << eighty;
  EXPECT_NE(eighty.find("variants 37/1600"), std::string::npos) << eighty;
}

// The real CLI on a terminal of 40 columns (a pseudo-terminal from util-linux `script`): every
// redrawn progress line fits, so nothing wraps.
TEST(ProgressLine, RedrawnLinesFitANarrowTerminal) {
  if (std::system("command -v script >/dev/null 2>&1 && command -v stty >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "util-linux script or stty is missing";
  }
  const fs::path dir = scratch("progress_pty");
  write(dir / "tiny.toml", kTinyConfig);
  const std::string inner = "stty cols 40; SGDWALK_TEST_SEGMENT_DELAY_MS=60 " +
                            std::string(SGDWALK_CLI) + " run " + (dir / "tiny.toml").string() +
                            " --out " + (dir / "out").string() + " --segment-steps 20";
  const std::string command =
      "script -qec '" + inner + "' /dev/null > " + (dir / "terminal.txt").string() + " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0);
  const std::string terminal = sgdwalk::testing::read_bytes(dir / "terminal.txt");
  int progress_lines = 0;
  std::string line;
  for (const char c : terminal + "\n") {
    if (c != '\r' && c != '\n') {
      line += c;
      continue;
    }
    if (line.find("variants") != std::string::npos && line.find('%') != std::string::npos) {
      ++progress_lines;
      EXPECT_LE(line.size(), 39u) << line;
    }
    line.clear();
  }
  EXPECT_GE(progress_lines, 2) << terminal;
}

TEST(ProgressLine, TerminalWidthFallsBackToColumns) {
  // A pipe is not a terminal: the width comes from $COLUMNS, else 80.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  setenv("COLUMNS", "57", 1);
  EXPECT_EQ(sgdwalk::terminal_width(fds[0]), 57);
  unsetenv("COLUMNS");
  EXPECT_EQ(sgdwalk::terminal_width(fds[0]), 80);
  close(fds[0]);
  close(fds[1]);
}

TEST(Cli, QuickstartShowsTheFlatValleyPreference) {
  const fs::path dir = scratch("quickstart");
  const CommandResult result =
      run_cli("run " + std::string(SGDWALK_SOURCE_DIR) + "/examples/quickstart.toml --out " +
              (dir / "out").string() + " --quiet");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto summary = read_json(dir / "out" / "summary.json");
  const auto& variants = summary["variants"];
  ASSERT_GE(variants.size(), 2u);
  // The strongest noise ends with a clear majority in the flat valley (beyond 5 standard errors of
  // the unbiased 1/2), and more so than the weakest noise.
  const auto& weakest = variants.front();
  const auto& strongest = variants.back();
  const double p = strongest["p_flat"], se = strongest["p_flat_stderr"];
  const double n = strongest["walkers"];
  EXPECT_GT(p, 0.5 + 5 * 0.5 / std::sqrt(n));
  const double p_weak = weakest["p_flat"], se_weak = weakest["p_flat_stderr"];
  EXPECT_GT(p - p_weak, 4 * std::sqrt(se * se + se_weak * se_weak))
      << "P_flat should rise with the noise strength";
}

}  // namespace

namespace sgdwalk {
namespace {

// Issue 19, item 2: a variant whose walkers all diverged shows its count in the end-of-run table
// and no NaN; the other variants keep their numbers.
TEST(Cli, SummaryTableCountsDivergedWalkersAndPrintsNoNan) {
  const fs::path dir = scratch("diverged_table");
  write(dir / "diverging.toml", R"(
[run]
walkers = 40
steps = 400
seed = 3
[dynamics]
learning_rate = 0.05
noise_strength = 0.01
[sweep]
learning_rate = [0.05, 5.0]
)");
  const CommandResult result = run_cli("run " + (dir / "diverging.toml").string() + " --out " +
                                       (dir / "out").string() + " --backend cpu --threads 2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("diverged"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("40/40"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("0/40"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("n/a"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("nan"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace sgdwalk
