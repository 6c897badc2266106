// The sgdwalk CLI end to end: run directories, outputs, refusal to overwrite, bad input, replay.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "backend_registry.hpp"
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
  for (const char* option : {"--walker", "--variant", "--every", "--output"}) {
    EXPECT_NE(replay.output.find(option), std::string::npos) << option;
  }
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
  EXPECT_EQ(bad.output.find("warning: variant 0"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("histogram 'far_away' caught nothing inside its range in 2 of 2"),
            std::string::npos)
      << bad.output;
  // (variant 1's walkers run off to y = +inf on their way to NaN, and so pass the threshold)
  EXPECT_NE(bad.output.find("was reached by no walker in 1 of 2 variants (e.g. variant 0"),
            std::string::npos)
      << bad.output;
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
      last = line;
      ++rows;
    }
    EXPECT_EQ(rows, 1 + 5);  // header + steps 0, 100, 200, 300, 400
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
