// MPI jobs (mpirun -np N sgdwalk run): results of 1, 2 and 3 ranks equal the single-process run's,
// dataset by dataset and bit for bit, also for uneven splits; SIGTERM to the job then resume with
// another rank count (and without mpirun) gives the same results; a failing rank fails the job
// with its rank and reason, at once and without outputs. Skipped when the build has no MPI.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend_registry.hpp"
#include "cluster/parallel_job.hpp"
#include "test_files.hpp"
#include "test_processes.hpp"
#include "test_run_dirs.hpp"

extern char** environ;

namespace sgdwalk {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::read_json;
using testing::run_cli;
using testing::wait_exit;

/// mpirun of the MPI the build found; empty without MPI.
#ifdef SGDWALK_MPIEXEC
const std::string kMpiexec = SGDWALK_MPIEXEC;
#else
const std::string kMpiexec;
#endif

/// Open MPI refuses to run as root (CI containers) without these, and more ranks than cores need
/// oversubscription; shared memory and loopback transports only (no network needed).
class MpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    setenv("OMPI_MCA_btl", "self,vader", 1);
    // Containers often forbid the cross-memory attach shared memory uses for large messages.
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
  }
};
const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new MpiEnvironment);

#define SKIP_WITHOUT_MPI() \
  if (kMpiexec.empty()) GTEST_SKIP() << "this build has no MPI (-DSGDWALK_MPI=OFF or none found)"

fs::path scratch(const std::string& name) {
  return testing::scratch_dir("mpi", name);
}

using testing::expect_contains;

/// `mpirun -np ranks sgdwalk arguments` (each rank started through `launcher` when given: a
/// program that runs its arguments), waited for.
testing::CommandResult run_mpi(int ranks, const std::string& arguments,
                               const std::string& launcher = "") {
  const std::string command = kMpiexec + " --oversubscribe -np " + std::to_string(ranks) + " " +
                              (launcher.empty() ? "" : launcher + " ") + SGDWALK_CLI + " " +
                              arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

/// Starts `mpirun -np ranks sgdwalk arguments` in the background (testing::spawn_logged).
pid_t spawn_mpi(int ranks, const std::vector<std::string>& arguments, const fs::path& log,
                const std::string& extra_environment) {
  std::vector<std::string> words = {kMpiexec, "--oversubscribe", "-np", std::to_string(ranks),
                                    SGDWALK_CLI};
  words.insert(words.end(), arguments.begin(), arguments.end());
  return testing::spawn_logged(words, log, {extra_environment});
}

/// A small config with every observable; `walkers` per variant, three variants.
std::string config_text(const std::string& landscape, const std::string& noise,
                        const std::string& precision, int walkers, int steps = 300) {
  const bool two_valley = landscape == "two_valley";
  return "[run]\nname = \"mpi\"\nwalkers = " + std::to_string(walkers) +
         "\nsteps = " + std::to_string(steps) + "\nseed = 31\nprecision = \"" + precision +
         "\"\n[landscape]\nkind = \"" + landscape + "\"\n[dynamics]\nnoise = \"" + noise +
         "\"\nlearning_rate = 0.05\n[init]\npositions = " +
         (two_valley ? "[[-0.01, 5.0], [0.01, 5.0]]" : "[[-0.3], [0.4]]") +
         "\n[observables]\nsample_every = 50\nper_walker = true\n"
         "[observables.first_passage]\n" +
         (two_valley ? "target = \"flat\"" : "coordinate = 0\nabove = 0.5") +
         "\n[[observables.histogram]]\nname = \"x\"\nx_range = [-3.0, 3.0]\nbins = 20\n"
         "window = [100, " +
         std::to_string(steps) + "]\nevery = 4\n[sweep]\nnoise_strength = [0.01, 0.2, 0.6]\n";
}

/// The single-process run of `text` (config written to dir/c.toml) into dir/single.
void run_single(const fs::path& dir, const std::string& text) {
  testing::write_bytes(dir / "c.toml", text);
  const auto single = run_cli("run " + (dir / "c.toml").string() + " --backend cpu -q --out " +
                              (dir / "single").string());
  ASSERT_EQ(single.exit_code, 0) << single.output;
}

void expect_same_run(const fs::path& single, const fs::path& other) {
  testing::expect_same_h5(single / "results.h5", other / "results.h5");
  EXPECT_EQ(testing::comparable_summary(read_json(other / "summary.json")),
            testing::comparable_summary(read_json(single / "summary.json")));
  EXPECT_FALSE(fs::exists(other / "parts"));  // merged and removed
}

void expect_ranks_give_the_single_run(const std::string& name, const std::string& text) {
  SKIP_WITHOUT_MPI();
  const fs::path dir = scratch(name);
  run_single(dir, text);
  for (const int ranks : {1, 2, 3}) {
    SCOPED_TRACE(std::to_string(ranks) + " rank(s)");
    const fs::path out = dir / ("np" + std::to_string(ranks));
    const auto result = run_mpi(ranks, "run " + (dir / "c.toml").string() +
                                           " --backend cpu --threads 1 -q --out " + out.string());
    ASSERT_EQ(result.exit_code, 0) << result.output;
    expect_same_run(dir / "single", out);
    if (ranks > 1) {
      EXPECT_EQ(read_json(out / "summary.json")["parallel"]["processes"], ranks);
    }
  }
}

TEST(Mpi, RanksGiveTheSingleRunTwoValleyHessianDouble) {
  // 3 x 37 walkers: not divisible by 2 ranks.
  expect_ranks_give_the_single_run("two_valley",
                                   config_text("two_valley", "hessian", "double", 37));
}

TEST(Mpi, RanksGiveTheSingleRunDoubleWellHessianSquaredFloat) {
  expect_ranks_give_the_single_run("double_well",
                                   config_text("double_well", "hessian_squared", "float", 23));
}

TEST(Mpi, RanksGiveTheSingleRunWithAnOptimizersStatePerWalker) {
  // Adam's per-walker state (2 numbers per coordinate) in every rank's walker records: the ranks'
  // records were sent and counted at SGD's size, so rank 0 found them short and the job aborted.
  std::string text = config_text("two_valley", "hessian", "double", 37);
  const std::string rate = "learning_rate = 0.05\n";
  text.replace(text.find(rate), rate.size(), rate + "optimizer = \"adam\"\nbeta2 = 0.99\n");
  expect_ranks_give_the_single_run("adam", text);
}

TEST(Mpi, MoreRanksThanWalkersOfAVariant) {
  // 3 variants x 2 walkers over 3 ranks: every part spans a variant boundary or ends on one.
  expect_ranks_give_the_single_run("few_walkers",
                                   config_text("two_valley", "isotropic", "double", 2));
}

TEST(Mpi, SigtermStopsEveryRankAndResumeWithAnyRankCountFinishesTheRun) {
  SKIP_WITHOUT_MPI();
  const fs::path dir = scratch("sigterm");
  const std::string text = config_text("two_valley", "hessian", "double", 40, 400);
  run_single(dir, text);
  const fs::path run = dir / "run";
  // 2 ranks, batches of 20 walkers: part 0 is walkers [0, 60), variant 0 and half of variant 1.
  const pid_t pid =
      spawn_mpi(2,
                {"run", (dir / "c.toml").string(), "--backend", "cpu", "--threads", "1",
                 "--segment-steps", "10", "--batch-walkers", "20", "--out", run.string()},
                dir / "log.txt", "SGDWALK_TEST_SEGMENT_DELAY_MS=30");
  ASSERT_GT(pid, 0);
  // Once rank 0 has finished variant 0 (its walkers are in its part's walker file), SIGTERM to
  // mpirun, as Slurm sends it before a time limit; mpirun forwards it to the ranks.
  const fs::path walkers = run / "parts" / "0-of-2" / "walkers.bin";
  // A 64-byte header, then records of position, y_freeze, three steps, basin, crossings, checksum.
  const auto record = static_cast<std::uintmax_t>(8 * 2 + 8 + 3 * 8 + 4 + 4 + 8);
  const auto start = std::chrono::steady_clock::now();
  std::error_code error;
  while (!(fs::exists(walkers, error) && fs::file_size(walkers, error) >= 64 + 40 * record) &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(60)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid, SIGTERM);
  const int code = wait_exit(pid);
  const std::string log = testing::read_bytes(dir / "log.txt");
  EXPECT_NE(code, 0) << log;
  expect_contains(log, "interrupted by SIGTERM");
  expect_contains(log, "mpirun -np M sgdwalk resume");
  const Json partial = read_json(run / "summary.json");
  ASSERT_TRUE(partial["partial"].get<bool>()) << "the run finished before the signal:\n" << log;
  // Partial results as a stopped single run writes them: only variants whose walkers have all
  // finished hold numbers, and those are the single run's.
  const auto stopped = testing::h5_items(run / "results.h5");
  const auto reference = testing::h5_items(dir / "single" / "results.h5");
  EXPECT_NE(stopped.at("/@partial").bytes.find("true"), std::string::npos);
  const std::string& complete = stopped.at("/variants/complete").bytes;
  ASSERT_EQ(complete.size(), 3 * sizeof(std::int32_t));
  for (std::size_t v = 0; v < 3; ++v) {
    std::int32_t done = 0;
    std::memcpy(&done, complete.data() + v * sizeof done, sizeof done);
    EXPECT_EQ(done, v == 0 ? 1 : 0) << "variant " << v;
    const std::string p_flat = stopped.at("/variants/p_flat").bytes.substr(v * 8, 8);
    if (done == 1) {
      EXPECT_EQ(p_flat, reference.at("/variants/p_flat").bytes.substr(v * 8, 8)) << v;
    } else {
      double value = 0;
      std::memcpy(&value, p_flat.data(), 8);
      EXPECT_TRUE(std::isnan(value)) << "variant " << v << " is unfinished but has P_flat";
    }
  }
  EXPECT_GT(partial["progress"]["walker_steps_done"].get<std::int64_t>(), 0);
  for (int k = 0; k < 2; ++k) {
    const fs::path part = run / "parts" / (std::to_string(k) + "-of-2");
    EXPECT_TRUE(fs::exists(part / "checkpoint.bin") || fs::exists(part / "tallies.bin")) << part;
  }

  // The stopped job records the parts it had started; a resume whose part directory is gone (a
  // node's parts not copied back) is refused instead of computing that part again from the start.
  EXPECT_EQ(partial["parallel"]["parts_started"], Json::array({0, 1})) << partial.dump();
  fs::rename(run / "parts" / "1-of-2", dir / "part-1-elsewhere");
  const auto missing = run_cli("resume " + run.string() + " --backend cpu -q");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  expect_contains(missing.output, "parts/1-of-2: part 1/2 of the stopped run is missing");
  expect_contains(missing.output, "Copy each node's");
  fs::rename(dir / "part-1-elsewhere", run / "parts" / "1-of-2");

  fs::copy(run, dir / "run-solo", fs::copy_options::recursive);
  const auto three = run_mpi(3, "resume " + run.string() + " --backend cpu --threads 1 -q");
  ASSERT_EQ(three.exit_code, 0) << three.output;
  expect_same_run(dir / "single", run);
  EXPECT_EQ(read_json(run / "summary.json")["timing"]["sessions"], 2);
  // The same job continued by one process without mpirun (the code path of a build without MPI).
  const auto solo = run_cli("resume " + (dir / "run-solo").string() + " --backend cpu -q");
  ASSERT_EQ(solo.exit_code, 0) << solo.output;
  expect_same_run(dir / "single", dir / "run-solo");
  const auto again = run_cli("resume " + (dir / "run-solo").string() + " --backend cpu");
  EXPECT_EQ(again.exit_code, 0);
  expect_contains(again.output, "is complete; nothing to resume");
}

TEST(Mpi, AFailingRankFailsTheJobWithItsRankAndReason) {
  SKIP_WITHOUT_MPI();
  const fs::path dir = scratch("failing");
  testing::write_bytes(dir / "c.toml", config_text("two_valley", "hessian", "double", 40));
  const auto start = std::chrono::steady_clock::now();
  setenv("SGDWALK_TEST_FAIL_RANK", "1", 1);
  const auto failed = run_mpi(
      3, "run " + (dir / "c.toml").string() + " --backend cpu -q --out " + (dir / "run").string());
  unsetenv("SGDWALK_TEST_FAIL_RANK");
  EXPECT_NE(failed.exit_code, 0);
  expect_contains(failed.output, "sgdwalk: rank 1 of 3 (");
  expect_contains(failed.output, "error: injected failure (SGDWALK_TEST_FAIL_RANK)");
  EXPECT_FALSE(fs::exists(dir / "run" / "results.h5"));
  EXPECT_TRUE(read_json(dir / "run" / "summary.json")["partial"].get<bool>());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));  // no hang
}

TEST(Mpi, AFailureWhileSendingResultsFailsTheJobWithoutOutputs) {
  SKIP_WITHOUT_MPI();
  // Rank 2 of 3 fails after the counts and partials were gathered, while rank 0 waits for its
  // walker records: the job must end at once (MPI_Abort), not wait, and write no results.
  const fs::path dir = scratch("failing_results");
  testing::write_bytes(dir / "c.toml", config_text("two_valley", "hessian", "double", 40));
  const auto start = std::chrono::steady_clock::now();
  setenv("SGDWALK_TEST_FAIL_RANK", "2:results", 1);
  const auto failed = run_mpi(
      3, "run " + (dir / "c.toml").string() + " --backend cpu -q --out " + (dir / "run").string());
  unsetenv("SGDWALK_TEST_FAIL_RANK");
  EXPECT_NE(failed.exit_code, 0);
  expect_contains(failed.output, "sgdwalk: rank 2 of 3 (");
  expect_contains(failed.output, "error: injected failure while sending results");
  EXPECT_FALSE(fs::exists(dir / "run" / "results.h5"));
  EXPECT_TRUE(read_json(dir / "run" / "summary.json")["partial"].get<bool>());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));  // no hang
}

/// Whether this process may make private mounts (root, and a container that allows unshare -m).
bool can_unshare_mounts() {
  return geteuid() == 0 && std::system("unshare -m true >/dev/null 2>&1") == 0;
}

TEST(Mpi, RanksThatDoNotShareTheRunDirectorySendTheirResultsAsMessages) {
  SKIP_WITHOUT_MPI();
  if (!can_unshare_mounts()) GTEST_SKIP() << "needs root and unshare -m (mount namespaces)";
  // Nodes without a shared file system: ranks 1 and 2 see a private, empty tmpfs where rank 0 has
  // dir/out, so they cannot read or write rank 0's run directory; their results (counts, partials
  // and per-walker records) must reach rank 0 as messages and give the single run's files.
  const fs::path dir = scratch("unshared");
  const std::string text = config_text("two_valley", "hessian", "double", 37);
  run_single(dir, text);
  fs::create_directories(dir / "out");
  const fs::path launcher = dir / "private-out.sh";
  testing::write_bytes(launcher,
                       "#!/bin/sh\n"
                       "[ \"$OMPI_COMM_WORLD_RANK\" = 0 ] && exec \"$@\"\n"
                       "exec unshare -m sh -c 'mount -t tmpfs tmpfs \"$0\" && exec \"$@\"' " +
                           (dir / "out").string() + " \"$@\"\n");
  const fs::path out = dir / "out" / "run";
  const auto result = run_mpi(
      3, "run " + (dir / "c.toml").string() + " --backend cpu --threads 1 --out " + out.string(),
      "sh " + launcher.string());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  expect_contains(result.output, " is not shared with rank 1 ");
  expect_same_run(dir / "single", out);
  EXPECT_EQ(read_json(out / "summary.json")["parallel"]["processes"], 3);
}

TEST(Mpi, ShardsAndExistingDirectoriesAreRefusedByRankZeroAlone) {
  SKIP_WITHOUT_MPI();
  const fs::path dir = scratch("refusals");
  testing::write_bytes(dir / "c.toml", config_text("two_valley", "hessian", "double", 5));
  const std::string run = "run " + (dir / "c.toml").string() + " --backend cpu -q";
  const auto shard = run_mpi(2, run + " --shard 0/2 --out " + (dir / "a").string());
  EXPECT_EQ(shard.exit_code, 2);
  expect_contains(shard.output, "--shard with mpirun/srun");
  const auto first = run_mpi(2, run + " --out " + (dir / "b").string());
  EXPECT_EQ(first.exit_code, 0) << first.output;
  const auto exists = run_mpi(2, run + " --out " + (dir / "b").string());
  EXPECT_EQ(exists.exit_code, 2);
  const std::string message = "the run directory '" + (dir / "b").string() + "' exists";
  const auto at = exists.output.find(message);
  ASSERT_NE(at, std::string::npos) << exists.output;
  EXPECT_EQ(exists.output.find(message, at + 1), std::string::npos) << "printed twice";
  // An --out that is a file is refused plainly, once, before anything runs (as for one process).
  testing::write_bytes(dir / "a-file", "x");
  const auto file = run_mpi(2, run + " --out " + (dir / "a-file").string());
  EXPECT_EQ(file.exit_code, 2) << file.output;
  const std::string is_file = "'" + (dir / "a-file").string() + "' is an existing file";
  const auto where = file.output.find(is_file);
  ASSERT_NE(where, std::string::npos) << file.output;
  EXPECT_EQ(file.output.find(is_file, where + 1), std::string::npos) << "printed twice";
}

TEST(Mpi, AJobStartedByMpirunWithItsOneSecondKillDelayIsToldHowToStopCleanly) {
  // Open MPI 4's mpirun passes a SIGTERM on to the processes 1 s after it gets it and sends
  // SIGKILL 1 s later (odls_base_sigkill_timeout; measured with 4.1.4: a 2 x 10^6-walker job
  // stopped that way was killed while writing its first checkpoint). The variables below are
  // those mpirun (ORTE) gives every process it starts.
  const auto environment = [](std::vector<std::pair<std::string, std::string>> variables) {
    return [variables](const char* name) -> const char* {
      for (const auto& [key, value] : variables) {
        if (key == name) return value.c_str();
      }
      return nullptr;
    };
  };
  const std::string uri = "798162944.0;tcp://192.0.2.2:46365";
  const std::string by_default =
      launcher_stop_notice(environment({{"OMPI_MCA_orte_hnp_uri", uri}}));
  expect_contains(by_default, "1 s after it gets it and kills them 1 s later");
  expect_contains(by_default, "--mca odls_base_sigkill_timeout 50");
  expect_contains(launcher_stop_notice(environment({{"OMPI_MCA_orte_hnp_uri", uri},
                                                    {"OMPI_MCA_odls_base_sigkill_timeout", "3"}})),
                  "3 s after it gets it");
  // A delay that leaves time to stop, or a launcher other than ORTE's mpirun: nothing to say.
  EXPECT_EQ(launcher_stop_notice(environment(
                {{"OMPI_MCA_orte_hnp_uri", uri}, {"OMPI_MCA_odls_base_sigkill_timeout", "50"}})),
            "");
  EXPECT_EQ(launcher_stop_notice(
                environment({{"SLURM_STEP_NUM_TASKS", "4"}, {"OMPI_COMM_WORLD_SIZE", "4"}})),
            "");
}

TEST(Mpi, SrunTasksWithoutMpiAreRefused) {
  // srun --mpi=none starts independent processes: each would run the whole run into one directory.
  const fs::path dir = scratch("srun");
  testing::write_bytes(dir / "c.toml", config_text("two_valley", "hessian", "double", 5));
  setenv("SLURM_STEP_NUM_TASKS", "4", 1);
  const auto result =
      run_cli("run " + (dir / "c.toml").string() + " --out " + (dir / "run").string());
  unsetenv("SLURM_STEP_NUM_TASKS");
  EXPECT_EQ(result.exit_code, 2);
  expect_contains(result.output, "srun started 4 tasks that are not MPI processes");
  EXPECT_FALSE(fs::exists(dir / "run"));
}

TEST(Mpi, EachRankOfANodeTakesItsOwnGpuAndRanksBeyondTheDevicesWrapAround) {
  // Four ranks on a node with two GPUs share them two by two; with four GPUs each has one.
  const int two_devices[] = {0, 1, 0, 1, 0};
  const int four_devices[] = {0, 1, 2, 3, 0};
  for (int local_rank = 0; local_rank < 5; ++local_rank) {
    EXPECT_EQ(device_for_local_rank(local_rank, 2), two_devices[local_rank]) << local_rank;
    EXPECT_EQ(device_for_local_rank(local_rank, 4), four_devices[local_rank]) << local_rank;
    EXPECT_EQ(device_for_local_rank(local_rank, 1), 0) << local_rank;
    EXPECT_EQ(device_for_local_rank(local_rank, 0), 0) << "no device: " << local_rank;
  }
  EXPECT_EQ(device_for_local_rank(-1, 4), 0);  // a launcher that gave no local rank
}

}  // namespace
}  // namespace sgdwalk
