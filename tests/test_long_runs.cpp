// Long runs: stopping, checkpoints and resuming give the bytes of an uninterrupted run (in process
// and through the CLI with SIGTERM, SIGINT and kill -9), partial results are marked and honest,
// non-finite walkers are counted and excluded, and every refusal names its file and problem.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend.hpp"
#include "config/config.hpp"
#include "io/walker_store.hpp"
#include "run/checkpoint.hpp"
#include "run/memory.hpp"
#include "run/run_session.hpp"
#include "test_ensemble.hpp"
#include "test_files.hpp"
#include "test_processes.hpp"

extern char** environ;

namespace sgdwalk {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// ---- Helpers ------------------------------------------------------------------------------------

using testing::read_bytes;
using testing::read_json;

fs::path scratch(const std::string& name) {
  return testing::scratch_dir("long_runs", name);
}

void write_text(const fs::path& path, const std::string& text) {
  testing::write_bytes(path, text);
}

/// summary.json without what legitimately differs between sessions: timing (and, for runs made
/// with different command lines, the command).
Json comparable(Json summary, bool drop_command = false) {
  summary.erase("timing");
  if (drop_command) summary["sgdwalk"].erase("command");
  return summary;
}

using testing::CommandResult;
using testing::run_cli;
using testing::wait_exit;

/// Starts the CLI with `arguments` in the background (testing::spawn_logged).
pid_t spawn_cli(const std::vector<std::string>& arguments, const fs::path& log,
                const std::vector<std::string>& extra_environment = {}) {
  std::vector<std::string> words = {SGDWALK_CLI};
  words.insert(words.end(), arguments.begin(), arguments.end());
  return testing::spawn_logged(words, log, extra_environment);
}

/// Waits until `path` exists or `pid` has exited; true if it appeared while `pid` still runs.
bool wait_for_file(const fs::path& path, pid_t pid, double timeout_seconds = 120) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         timeout_seconds) {
    if (fs::exists(path)) return true;
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::vector<double> read_h5(const fs::path& file, const std::string& dataset) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(f, 0) << file;
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  EXPECT_GE(d, 0) << dataset;
  const hid_t space = H5Dget_space(d);
  const auto count = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space));
  std::vector<double> values(count);
  H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return values;
}

using testing::expect_contains;

/// 2 variants x 45 walkers x 400 steps with every observable.
const char* kSmallConfig = R"(
[run]
name = "small"
walkers = 45
steps = 400
seed = 21
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
[observables]
sample_every = 50
per_walker = true
[observables.first_passage]
target = "flat"
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 30
window = [100, 400]
every = 3
[sweep]
noise_strength = [0.03, 0.12]
)";

RunRecord record_for(const std::string& text, const std::string& source) {
  RunRecord record;
  record.config_text = text;
  record.config_source = source;
  record.command_line = "sgdwalk run " + source;
  return record;
}

/// Runs `config` into `directory` in process; stops after `stop_after` segments (0: never).
SessionResult run_small(const std::string& config, const fs::path& directory, int stop_after,
                        std::int64_t segment_steps = 37, std::int64_t batch = 40) {
  const RunPlan plan = load_config_text(config, "small.toml");
  auto backend = make_cpu_backend(2);
  SessionOptions options;
  options.checkpoint_every = 0;
  options.execute.segment_steps = segment_steps;
  options.execute.batch_walkers = batch;
  int segments = 0;
  if (stop_after > 0) {
    options.execute.on_segment = [&](const RunProgress&, const SegmentData&) {
      return ++segments < stop_after;
    };
  }
  return run_in_directory(plan, *backend, record_for(config, "small.toml"), directory.string(),
                          options);
}

SessionResult resume_small(const fs::path& directory, int stop_after, std::int64_t segment_steps,
                           std::int64_t batch, int threads = 2) {
  ResumePoint point = load_resume_point(directory.string());
  auto backend = make_cpu_backend(threads);
  SessionOptions options;
  options.checkpoint_every = 0;
  options.execute.segment_steps = segment_steps;
  options.execute.batch_walkers = batch;
  int segments = 0;
  if (stop_after > 0) {
    options.execute.on_segment = [&](const RunProgress&, const SegmentData&) {
      return ++segments < stop_after;
    };
  }
  return resume_in_directory(std::move(point), *backend, directory.string(), options);
}

// ---- In process ---------------------------------------------------------------------------------

TEST(LongRuns, ResultsFileIsByteReproducible) {
  const fs::path dir = scratch("reproducible");
  ASSERT_TRUE(run_small(kSmallConfig, dir / "a", 0).outcome.complete);
  ASSERT_TRUE(run_small(kSmallConfig, dir / "b", 0, 0, 0).outcome.complete);  // adaptive segments
  EXPECT_EQ(read_bytes(dir / "a" / "results.h5"), read_bytes(dir / "b" / "results.h5"));
  EXPECT_EQ(comparable(read_json(dir / "a" / "summary.json")),
            comparable(read_json(dir / "b" / "summary.json")));
  EXPECT_FALSE(fs::exists(dir / "a" / kCheckpointFileName)) << "removed after the final outputs";
  EXPECT_FALSE(fs::exists(dir / "a" / kWalkerFileName)) << "removed after the final outputs";
  // Streamed statistics and per-walker datasets written batch by batch: the same bytes for a
  // batch of one walker, batches that straddle the variant boundary, and the whole run at once.
  for (const std::int64_t batch : {1, 37, 90}) {
    const fs::path run = dir / ("batch" + std::to_string(batch));
    ASSERT_TRUE(run_small(kSmallConfig, run, 0, 37, batch).outcome.complete);
    EXPECT_EQ(read_bytes(run / "results.h5"), read_bytes(dir / "a" / "results.h5")) << batch;
    EXPECT_EQ(comparable(read_json(run / "summary.json")),
              comparable(read_json(dir / "a" / "summary.json")));
  }
}

/// The CPU backend (one thread) slowed down to a known rate (0.1 us per walker-step on top of the
/// real work), so that timing-based behaviour can be tested on any machine.
class SlowBackend : public Backend {
 public:
  std::string name() const override { return "slow-cpu"; }
  std::string description() const override { return "CPU, slowed down for a test"; }
  void advance(const RunPlan& plan, std::int64_t first, std::int64_t last, std::int64_t step_begin,
               std::int64_t step_end, RunData& data) override {
    inner_->advance(plan, first, last, step_begin, step_end, data);
    const double work =
        static_cast<double>(last - first) * static_cast<double>(step_end - step_begin);
    std::this_thread::sleep_for(std::chrono::duration<double>(work * 1e-7));
  }
  std::int64_t max_batch_walkers(const RunPlan& plan) const override {
    return inner_->max_batch_walkers(plan);
  }

 private:
  std::unique_ptr<Backend> inner_ = make_cpu_backend(1);
};

TEST(LongRuns, AutomaticSegmentsAreTimeBoundedAndChangeNothing) {
  std::string config = kSmallConfig;
  config.replace(config.find("walkers = 45"), 12, "walkers = 300");
  config.replace(config.find("steps = 400"), 11, "steps = 6000");
  const RunPlan plan = load_config_text(config, "segments.toml");
  auto backend = make_cpu_backend(2);
  ExecuteOptions fixed;
  fixed.segment_steps = 1000;
  const RunOutcome reference = testing::execute_all(plan, *backend, fixed);
  // 3.6e6 walker-steps take at least 0.36 s on the slowed backend; aiming at 20 ms per call, the
  // calls must be many and short, whatever the speed of this machine, and the results the same.
  SlowBackend slow;
  ExecuteOptions automatic;
  automatic.segment_seconds = 0.02;
  int calls = 0;
  double longest = 0;
  auto last = std::chrono::steady_clock::now();
  automatic.on_segment = [&](const RunProgress&, const SegmentData&) {
    const auto now = std::chrono::steady_clock::now();
    longest = std::max(longest, std::chrono::duration<double>(now - last).count());
    last = now;
    ++calls;
    return true;
  };
  const RunOutcome adaptive = testing::execute_all(plan, slow, automatic);
  EXPECT_GE(calls, 8);
  EXPECT_LT(longest, 1.0) << "the first call is about 1e6 walker-steps (0.1 s here)";
  EXPECT_EQ(adaptive.progress.walker_steps_done, reference.progress.walker_steps_done);
  EXPECT_EQ(adaptive.data.walkers.position, reference.data.walkers.position);
  EXPECT_EQ(adaptive.data.observables.sample_progress, reference.data.observables.sample_progress);
  EXPECT_EQ(adaptive.data.observables.histogram_counts,
            reference.data.observables.histogram_counts);
  EXPECT_TRUE(adaptive.data.tallies == reference.data.tallies);
}

// A sweep on the CPU finishes its variants one batch after another by default (whole variants,
// at least 2^16 walkers per batch), so progress counts them and a stopped run keeps them; the
// results are those of a single batch.
TEST(LongRuns, CpuSweepsFinishVariantsProgressivelyByDefault) {
  std::string config = kSmallConfig;
  config.replace(config.find("walkers = 45"), 12, "walkers = 30000");
  config.replace(config.find("steps = 400"), 11, "steps = 60");
  config.replace(config.find("window = [100, 400]"), 19, "window = [30, 60]");
  config.replace(config.find("noise_strength = [0.03, 0.12]"), 29,
                 "noise_strength = [0.03, 0.05, 0.07, 0.09, 0.11, 0.12, 0.13]");
  const RunPlan plan = load_config_text(config, "progressive.toml");
  ASSERT_GE(plan.variant_count(), 3);
  auto backend = make_cpu_backend(2);
  std::vector<std::int64_t> done_after_each_call;
  ExecuteOptions options;
  options.on_segment = [&](const RunProgress& progress, const SegmentData&) {
    done_after_each_call.push_back(progress.variants_done);
    return true;
  };
  const RunOutcome progressive = execute(plan, *backend, options);
  ASSERT_FALSE(done_after_each_call.empty());
  // 3 variants of 30000 walkers per batch (the first multiple of 30000 at or above 65536).
  EXPECT_EQ(progressive.progress.batches, (plan.variant_count() + 2) / 3);
  EXPECT_NE(std::find(done_after_each_call.begin(), done_after_each_call.end(), 3),
            done_after_each_call.end())
      << "no call ended with exactly the first batch's 3 variants done";
  ExecuteOptions one_batch;
  one_batch.batch_walkers = plan.total_walkers();
  const RunOutcome reference = execute(plan, *backend, one_batch);
  EXPECT_TRUE(progressive.data.tallies == reference.data.tallies);
}

TEST(LongRuns, ResumeAfterStoppingAtAnyPointGivesTheSameBytes) {
  const fs::path dir = scratch("resume_equality");
  ASSERT_TRUE(run_small(kSmallConfig, dir / "reference", 0).outcome.complete);
  const std::string reference_h5 = read_bytes(dir / "reference" / "results.h5");
  const Json reference_summary = comparable(read_json(dir / "reference" / "summary.json"));
  // 400 steps in segments of 37 and batches of 40 of the 90 walkers: 11 segments per batch, 33 in
  // all. Stop after the first segment, mid-batch, at a batch boundary, mid-variant, near the end.
  for (const int k : {1, 5, 11, 12, 20, 32}) {
    SCOPED_TRACE("stopped after segment " + std::to_string(k));
    const fs::path run = dir / ("k" + std::to_string(k));
    const SessionResult stopped = run_small(kSmallConfig, run, k);
    ASSERT_FALSE(stopped.outcome.complete);
    ASSERT_TRUE(fs::exists(run / kCheckpointFileName));
    const Json partial = read_json(run / "summary.json");
    EXPECT_EQ(partial["partial"], true);
    EXPECT_EQ(partial["progress"]["walker_steps_done"], stopped.outcome.progress.walker_steps_done);
    EXPECT_LT(partial["progress"]["fraction"].get<double>(), 1.0);
    // Resume with another batch size, segment length and thread count: never changes results.
    const SessionResult resumed = resume_small(run, 0, 0, k % 2 == 0 ? 7 : 0, 1 + k % 2);
    ASSERT_TRUE(resumed.outcome.complete);
    EXPECT_EQ(read_bytes(run / "results.h5"), reference_h5);
    Json summary = comparable(read_json(run / "summary.json"));
    summary["backend"] = reference_summary["backend"];  // thread count
    EXPECT_EQ(summary, reference_summary);
    EXPECT_FALSE(fs::exists(run / kCheckpointFileName));
    EXPECT_EQ(read_json(run / "summary.json")["timing"]["sessions"], 2);
  }
}

TEST(LongRuns, RepeatedInterruptionsAndAMissingCheckpoint) {
  const fs::path dir = scratch("repeated");
  ASSERT_TRUE(run_small(kSmallConfig, dir / "reference", 0).outcome.complete);
  const fs::path run = dir / "run";
  ASSERT_FALSE(run_small(kSmallConfig, run, 4).outcome.complete);
  int sessions = 1;
  for (;;) {
    ++sessions;
    if (resume_small(run, 4, 29, 33).outcome.complete) break;
    ASSERT_LT(sessions, 40);
  }
  EXPECT_EQ(read_bytes(run / "results.h5"), read_bytes(dir / "reference" / "results.h5"));
  EXPECT_EQ(read_json(run / "summary.json")["timing"]["sessions"], sessions);

  // kill -9 before the first checkpoint leaves config.toml and a partial summary.json: resume
  // starts from the beginning and still gets the same bytes.
  const fs::path early = dir / "early";
  ASSERT_FALSE(run_small(kSmallConfig, early, 3).outcome.complete);
  fs::remove(early / kCheckpointFileName);
  fs::remove(early / "results.h5");
  ASSERT_TRUE(resume_small(early, 0, 0, 0).outcome.complete);
  EXPECT_EQ(read_bytes(early / "results.h5"), read_bytes(dir / "reference" / "results.h5"));
}

TEST(LongRuns, PartialResultsHoldOnlyFinishedVariants) {
  const fs::path dir = scratch("partial");
  // Batches of one variant (45 walkers), 400 steps in segments of 100: stopping after 6 segments
  // leaves variant 0 finished and variant 1 half done.
  const SessionResult stopped = run_small(kSmallConfig, dir / "run", 6, 100, 45);
  ASSERT_FALSE(stopped.outcome.complete);
  EXPECT_EQ(stopped.outcome.progress.variants_done, 1);
  const Json summary = read_json(dir / "run" / "summary.json");
  EXPECT_EQ(summary["partial"], true);
  EXPECT_EQ(summary["progress"]["variants_done"], 1);
  EXPECT_EQ(summary["progress"]["variants_total"], 2);
  EXPECT_EQ(summary["progress"]["walker_steps_done"], 45 * 400 + 45 * 200);
  EXPECT_EQ(summary["variants"][0]["complete"], true);
  EXPECT_EQ(summary["variants"][1]["complete"], false);
  EXPECT_TRUE(summary["variants"][0]["p_flat"].is_number());
  EXPECT_TRUE(summary["variants"][1]["p_flat"].is_null())
      << "no statistics from unfinished walkers";
  const fs::path h5 = dir / "run" / "results.h5";
  EXPECT_EQ(read_h5(h5, "/variants/complete"), (std::vector<double>{1, 0}));
  const auto deposits = read_h5(h5, "/histograms/x/deposits");
  EXPECT_GT(deposits[0], 0);
  EXPECT_EQ(deposits[1], 0);
  // Per-walker rows: the finished variant's walkers hold their results; the unfinished ones'
  // rows are unmistakable placeholders (NaN, basin -1), not zeros that read as a position and
  // the sharp basin.
  const auto position = read_h5(h5, "/walkers/position");
  const auto y_freeze = read_h5(h5, "/walkers/y_freeze");
  const auto basin = read_h5(h5, "/walkers/basin");
  ASSERT_EQ(basin.size(), 90u);
  for (std::size_t g = 0; g < 90; ++g) {
    const bool finished = g < 45;
    SCOPED_TRACE("walker " + std::to_string(g));
    EXPECT_EQ(std::isfinite(position[2 * g]) && std::isfinite(position[2 * g + 1]), finished);
    EXPECT_EQ(std::isnan(y_freeze[g]), !finished);
    if (finished) {
      EXPECT_TRUE(basin[g] == 0 || basin[g] == 1);
    } else {
      EXPECT_EQ(basin[g], -1);
    }
  }

  // The finished variant's numbers are already final.
  ASSERT_TRUE(run_small(kSmallConfig, dir / "reference", 0).outcome.complete);
  const Json reference = read_json(dir / "reference" / "summary.json");
  EXPECT_EQ(summary["variants"][0], reference["variants"][0]);
  EXPECT_EQ(reference["partial"], false);
  EXPECT_EQ(reference["progress"]["variants_done"], 2);
}

TEST(LongRuns, NonFiniteWalkersAreCountedExcludedAndTheRunGoesOn) {
  // y = -y_f makes the curvature factor divide by zero: every second walker goes non-finite at
  // its first update; the others run normally.
  const std::string config = R"(
[run]
walkers = 40
steps = 200
seed = 3
[dynamics]
learning_rate = 0.1
noise_strength = 0.05
[init]
positions = [[0.1, 5.0], [0.1, -20.0]]
[observables]
sample_steps = [0, 100, 200]
per_walker = true
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 30
window = [0, 200]
[sweep]
noise_strength = [0.05, 0.1]
)";
  const fs::path dir = scratch("nonfinite");
  const SessionResult result = run_small(config, dir / "run", 0, 0, 0);
  ASSERT_TRUE(result.outcome.complete) << "the run goes on";
  const Json summary = read_json(dir / "run" / "summary.json");
  const fs::path h5 = dir / "run" / "results.h5";
  const auto p_flat = read_h5(h5, "/variants/p_flat");
  const auto finite = read_h5(h5, "/samples/finite_walkers");
  const auto deposits = read_h5(h5, "/histograms/x/deposits");
  const auto nonfinite_step = read_h5(h5, "/walkers/nonfinite_step");
  const auto basin = read_h5(h5, "/walkers/basin");
  for (int v = 0; v < 2; ++v) {
    SCOPED_TRACE("variant " + std::to_string(v));
    const Json& entry = summary["variants"][static_cast<std::size_t>(v)];
    EXPECT_EQ(entry["walkers"], 40);
    EXPECT_EQ(entry["nonfinite_walkers"], 20);
    EXPECT_EQ(entry["first_nonfinite_step"], 1);
    // p_flat is over the 20 finite walkers only.
    double flat = 0;
    for (int w = 0; w < 40; w += 2) flat += basin[static_cast<std::size_t>(v * 40 + w)];
    EXPECT_DOUBLE_EQ(p_flat[static_cast<std::size_t>(v)], flat / 20);
    EXPECT_DOUBLE_EQ(entry["p_flat"].get<double>(), flat / 20);
    // All 40 are finite at step 0, 20 afterwards.
    EXPECT_EQ(finite[static_cast<std::size_t>(v * 3 + 0)], 40);
    EXPECT_EQ(finite[static_cast<std::size_t>(v * 3 + 1)], 20);
    EXPECT_EQ(finite[static_cast<std::size_t>(v * 3 + 2)], 20);
    // Histogram deposits at steps 0..200: 20 walkers every step, the other 20 only at step 0.
    EXPECT_EQ(deposits[static_cast<std::size_t>(v)], 20 * 201 + 20);
    for (int w = 0; w < 40; ++w) {
      EXPECT_EQ(nonfinite_step[static_cast<std::size_t>(v * 40 + w)], w % 2 == 1 ? 1 : -1);
    }
  }
  const std::string summary_text = read_bytes(dir / "run" / "summary.json");
  EXPECT_EQ(summary_text.find("NaN"), std::string::npos) << "summary.json must stay valid JSON";

  // Non-finite walkers survive a checkpoint.
  ASSERT_FALSE(run_small(config, dir / "resumed", 3, 50, 30).outcome.complete);
  ASSERT_TRUE(resume_small(dir / "resumed", 0, 0, 0).outcome.complete);
  EXPECT_EQ(read_bytes(dir / "resumed" / "results.h5"), read_bytes(h5));
}

TEST(LongRuns, AFailedPeriodicCheckpointIsAWarningNotAnError) {
  const fs::path dir = scratch("checkpoint_failure");
  ASSERT_TRUE(run_small(kSmallConfig, dir / "reference", 0).outcome.complete);
  // A directory where the checkpoint should go: every rename onto it fails.
  fs::create_directories(dir / "run" / kCheckpointFileName / "blocker");
  const RunPlan plan = load_config_text(kSmallConfig, "small.toml");
  auto backend = make_cpu_backend(2);
  SessionOptions options;
  options.checkpoint_every = 1e-9;
  options.execute.segment_steps = 50;
  std::vector<std::string> warnings;
  options.on_warning = [&](const std::string& warning) { warnings.push_back(warning); };
  const SessionResult result = run_in_directory(
      plan, *backend, record_for(kSmallConfig, "small.toml"), (dir / "run").string(), options);
  ASSERT_TRUE(result.outcome.complete);
  ASSERT_FALSE(warnings.empty());
  expect_contains(warnings.front(), "no checkpoint written: cannot rename");
  EXPECT_EQ(read_bytes(dir / "run" / "results.h5"), read_bytes(dir / "reference" / "results.h5"));
}

TEST(LongRuns, AChangedLongListShowsItsEndsAndLength) {
  // A list too long to print (sample_steps of a long run) shows its ends and its length, so that
  // the change shows (a cut-off prefix looked the same on both sides).
  nlohmann::json before, after;
  for (int i = 0; i < 100; ++i) before["observables"]["sample_steps"].push_back(10 * i);
  after = before;
  after["observables"]["sample_steps"].push_back(1000);
  EXPECT_EQ(describe_config_changes(before, after),
            "observables.sample_steps: [0,10,20,...,980,990] (100 values) -> "
            "[0,10,20,...,990,1000] (101 values)");
}

TEST(LongRuns, ConfigChangeIsRefused) {
  const fs::path dir = scratch("config_change");
  const fs::path run = dir / "run";
  ASSERT_FALSE(run_small(kSmallConfig, run, 2).outcome.complete);
  std::string changed = kSmallConfig;
  changed.replace(changed.find("steps = 400"), 11, "steps = 500");
  changed.replace(changed.find("bins = 30"), 9, "bins = 31");
  write_text(run / "config.toml", changed);
  try {
    load_resume_point(run.string());
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    expect_contains(message, (run / "config.toml").string() +
                                 " changed since the run started (it no longer gives the config "
                                 "summary.json recorded): ");
    expect_contains(message, "run.steps: 400 -> 500");
    expect_contains(message, "observables.histogram[0].bins: 30 -> 31");
    // The sample steps (every 50) grew by two: one change of the list, not one per element (it
    // once read "observables.sample_steps.-: (absent) -> (absent)").
    expect_contains(message,
                    "observables.sample_steps: [0,50,100,150,200,250,300,350,400] -> "
                    "[0,50,100,150,200,250,300,350,400,450,500]");
    EXPECT_EQ(message.find("(absent) -> (absent)"), std::string::npos) << message;
    EXPECT_EQ(message.find("sample_steps["), std::string::npos) << message;
    EXPECT_EQ(message.find("--batch-walkers"), std::string::npos) << message;
  }
  // A batch size changes no result but is part of the run's config: the message says what to do.
  std::string batched = kSmallConfig;
  batched.replace(batched.find("seed = 21"), 9, "seed = 21\nbatch_walkers = 7");
  write_text(run / "config.toml", batched);
  try {
    load_resume_point(run.string());
    ADD_FAILURE() << "no ConfigError";
  } catch (const ConfigError& error) {
    expect_contains(error.what(), "run.batch_walkers: 0 -> 7");
    expect_contains(error.what(), "vary the batch with --batch-walkers instead");
  }
  const CommandResult cli = run_cli("resume " + run.string() + " --quiet");
  EXPECT_EQ(cli.exit_code, 2);
  expect_contains(cli.output, "config.toml changed since the run started");

  // A comment or whitespace is not a change; the checkpoint's own hash is checked too.
  write_text(run / "config.toml", std::string(kSmallConfig) + "\n# a note\n");
  EXPECT_NO_THROW(load_resume_point(run.string()));
  const RunPlan other =
      load_config_text(std::string(kSmallConfig)
                           .replace(std::string(kSmallConfig).find("seed = 21"), 9, "seed = 22"),
                       "other.toml");
  ResumePoint point = load_resume_point(run.string());
  write_checkpoint((run / kCheckpointFileName).string(), other, point.checkpoint.progress,
                   point.checkpoint.data, 0, 1);
  try {
    load_resume_point(run.string());
    ADD_FAILURE() << "no CheckpointError";
  } catch (const CheckpointError& error) {
    expect_contains(error.what(), "written for another config or seed");
  }
}

// ---- The CLI ------------------------------------------------------------------------------------

const char* kCliConfig = R"(
[run]
name = "signals"
walkers = 300
steps = 2000
seed = 8
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
[observables]
sample_every = 500
per_walker = true
[observables.first_passage]
target = "flat"
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 40
[sweep]
noise_strength = [0.03, 0.06, 0.12]
)";

TEST(LongRunsCli, AStopWhoseCheckpointCannotBeWrittenSaysWhatIsKept) {
  // SIGTERM on a full disk: the stop's checkpoint fails. It once ended in an error about another
  // file, with nothing on what was kept; now it names the checkpoint's failure and where the run
  // goes on from, leaves no part-written checkpoint behind, and resume then gives the bits of an
  // undisturbed run.
  const fs::path dir = scratch("stop_on_full_disk");
  write_text(dir / "config.toml", kCliConfig);
  const std::string config = (dir / "config.toml").string();
  ASSERT_EQ(
      run_cli("run " + config + " --out " + (dir / "reference").string() + " --quiet").exit_code,
      0);
  const fs::path run = dir / "run";
  const fs::path log = dir / "log.txt";
  const pid_t pid = spawn_cli(
      {"run", config, "--out", run.string(), "--backend", "cpu", "--threads", "2",
       "--segment-steps", "100", "--batch-walkers", "300", "--checkpoint-every", "0"},
      log,
      {"SGDWALK_TEST_SEGMENT_DELAY_MS=40", std::string("LD_PRELOAD=") + SGDWALK_WRITE_FAILURE_SHIM,
       "SGDWALK_FAIL_WRITE_SUFFIX=/checkpoint.bin.tmp", "SGDWALK_FAIL_WRITE_FROM=1"});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_for_file(run / "summary.json", pid)) << read_bytes(log);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  const int code = wait_exit(pid);
  const std::string output = read_bytes(log);
  EXPECT_EQ(code, 1) << output;
  expect_contains(output,
                  "the run stopped, but its checkpoint could not be written (cannot write " +
                      (run / "checkpoint.bin.tmp").string() + ": ");
  expect_contains(output, "No space left on device");
  expect_contains(output, "no earlier checkpoint was written: the run starts again");
  EXPECT_FALSE(fs::exists(run / "checkpoint.bin.tmp")) << "a part-written checkpoint holds space";
  EXPECT_TRUE(fs::exists(run / "results.h5")) << "the partial results are still written";
  const CommandResult resumed = run_cli("resume " + run.string() + " --quiet");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(read_bytes(run / "results.h5"), read_bytes(dir / "reference" / "results.h5"));
}

TEST(LongRunsCli, SigtermSigintAndKillThenResumeMatchAnUninterruptedRun) {
  const fs::path dir = scratch("signals");
  write_text(dir / "config.toml", kCliConfig);
  const std::string config = (dir / "config.toml").string();
  const CommandResult reference =
      run_cli("run " + config + " --out " + (dir / "reference").string() +
              " --backend cpu --threads 2 --quiet");
  ASSERT_EQ(reference.exit_code, 0) << reference.output;
  const std::string reference_h5 = read_bytes(dir / "reference" / "results.h5");
  const Json reference_summary = comparable(read_json(dir / "reference" / "summary.json"), true);

  for (const int signal : {SIGTERM, SIGINT, SIGKILL}) {
    SCOPED_TRACE(signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "SIGKILL");
    const fs::path run = dir / ("run" + std::to_string(signal));
    const fs::path log = dir / ("log" + std::to_string(signal));
    // Segments of 100 steps in batches of one variant (60 backend calls), each followed by a
    // 40 ms pause (a test hook), and checkpoints every 0.2 s: the signal lands mid-run on any
    // machine.
    const pid_t pid =
        spawn_cli({"run", config, "--out", run.string(), "--backend", "cpu", "--threads", "2",
                   "--segment-steps", "100", "--batch-walkers", "300", "--checkpoint-every", "0.2"},
                  log, {"SGDWALK_TEST_SEGMENT_DELAY_MS=40"});
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(fs::exists(run / "summary.json") || wait_for_file(run / "summary.json", pid));
    ASSERT_TRUE(wait_for_file(run / kCheckpointFileName, pid)) << "no checkpoint while running:\n"
                                                               << read_bytes(log);
    EXPECT_EQ(read_json(run / "summary.json")["partial"], true) << "marked partial from the start";
    ASSERT_EQ(kill(pid, signal), 0);
    const int code = wait_exit(pid);
    const std::string output = read_bytes(log);
    ASSERT_TRUE(fs::exists(run / kCheckpointFileName)) << output;
    const Checkpoint checkpoint = read_checkpoint((run / kCheckpointFileName).string());
    RunProgress saved = checkpoint.progress;
    saved.update_counters(load_config_text(kCliConfig, "x"));
    EXPECT_GT(saved.walker_steps_done, 0) << "kill -9 loses at most one checkpoint interval";
    EXPECT_LT(saved.walker_steps_done, saved.walker_steps_total);
    if (signal == SIGKILL) {
      EXPECT_EQ(code, 128 + SIGKILL);
    } else {
      EXPECT_EQ(code, signal == SIGINT ? 130 : 143) << output;
      expect_contains(output,
                      signal == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM");
      expect_contains(output, "sgdwalk resume " + run.string());
      const Json partial = read_json(run / "summary.json");
      EXPECT_EQ(partial["partial"], true);
      EXPECT_EQ(partial["progress"]["walker_steps_done"], saved.walker_steps_done);
      EXPECT_TRUE(fs::exists(run / "results.h5"));
    }
    const CommandResult resumed =
        run_cli("resume " + run.string() + " --backend cpu --threads 2 --quiet");
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_EQ(read_bytes(run / "results.h5"), reference_h5)
        << "results.h5 differs from the reference";
    EXPECT_EQ(comparable(read_json(run / "summary.json"), true), reference_summary);
    EXPECT_FALSE(fs::exists(run / kCheckpointFileName));
    EXPECT_EQ(read_json(run / "summary.json")["timing"]["sessions"], 2);
  }
}

// A write to results.h5 that fails once (a disk full for a moment; the later writes succeed) must
// not give a file with holes and exit 0: HDF5 writes some data only when a dataset is closed, and
// such a failure was once ignored (exit 0, zeros in the file, in 56 of 60 positions tried). Each
// failure is reported with its cause, and the finished run, kept in its checkpoint, gives the
// undisturbed run's bytes on resume.
TEST(LongRunsCli, AWriteToResultsThatFailsOnceIsNeverHidden) {
  const fs::path dir = scratch("failed_write");
  write_text(dir / "small.toml", kSmallConfig);
  const std::string base = "run " + (dir / "small.toml").string() + " --backend cpu --threads 2 " +
                           "--quiet --checkpoint-every 0 --out ";
  ASSERT_EQ(run_cli(base + (dir / "reference").string()).exit_code, 0);
  const std::string reference = read_bytes(dir / "reference" / "results.h5");
  int failures = 0;
  for (const int nth : {1, 2, 3, 5, 8, 13, 21, 34, 55}) {
    SCOPED_TRACE("write " + std::to_string(nth) + " fails");
    const fs::path run = dir / ("fail_" + std::to_string(nth));
    const CommandResult failed =
        testing::run_cli_with_failed_write(base + run.string(), "/results.h5.tmp", nth);
    if (failed.exit_code == 0) {
      EXPECT_EQ(read_bytes(run / "results.h5"), reference) << "exit 0 with a damaged results.h5";
      continue;
    }
    ++failures;
    expect_contains(failed.output, "No space left on device");
    expect_contains(failed.output, "sgdwalk resume " + run.string());
    const CommandResult resumed = run_cli("resume " + run.string() + " --quiet");
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_EQ(read_bytes(run / "results.h5"), reference);
  }
  EXPECT_GE(failures, 6) << "the injected failures did not reach results.h5's writes";
}

TEST(LongRunsCli, ARunWhoseFirstSummaryCannotBeWrittenLeavesNothingBehind) {
  // The first summary.json failing (a full disk) once left config.toml alone: resume called the
  // directory damaged and the next run needed --force. Nothing was computed; nothing is left.
  const fs::path dir = scratch("first_summary");
  write_text(dir / "small.toml", kSmallConfig);
  const std::string run =
      "run " + (dir / "small.toml").string() + " --quiet --out " + (dir / "run").string();
  const CommandResult failed = testing::run_cli_with_failed_write(run, "/summary.json.tmp", 1);
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  expect_contains(failed.output, "summary.json.tmp: write: No space left on device");
  EXPECT_TRUE(!fs::exists(dir / "run") || fs::is_empty(dir / "run"));
  const CommandResult again = run_cli(run);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  // With --force over that run, from the config in the run directory itself: the config stays.
  const CommandResult forced =
      testing::run_cli_with_failed_write("run " + (dir / "run" / "config.toml").string() +
                                             " --quiet --force --out " + (dir / "run").string(),
                                         "/summary.json.tmp", 1);
  EXPECT_EQ(forced.exit_code, 1) << forced.output;
  EXPECT_EQ(read_bytes(dir / "run" / "config.toml"), kSmallConfig) << "the user's config removed";
}

TEST(LongRunsCli, AFinishedRunWithoutItsResultsIsNotCalledComplete) {
  // resume once said "complete; nothing to resume" (exit 0) for a finished run whose results.h5
  // had been deleted or cut short. Nothing is left to resume it from: it says so and how to
  // compute it again.
  const fs::path dir = scratch("finished_without_results");
  write_text(dir / "small.toml", kSmallConfig);
  const fs::path run = dir / "run";
  ASSERT_EQ(
      run_cli("run " + (dir / "small.toml").string() + " --quiet --seed 9 --out " + run.string())
          .exit_code,
      0);
  {
    // A results.h5 another process has open for writing (a notebook) is locked, not damaged: the
    // run is complete (the check once called it damaged and advised --force).
    const hid_t open_elsewhere = H5Fopen((run / "results.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(open_elsewhere, 0);
    const CommandResult locked = run_cli("resume " + run.string());
    H5Fclose(open_elsewhere);
    EXPECT_EQ(locked.exit_code, 0) << locked.output;
    expect_contains(locked.output, "is complete; nothing to resume");
  }
  fs::resize_file(run / "results.h5", 4000);
  const CommandResult cut = run_cli("resume " + run.string());
  EXPECT_NE(cut.exit_code, 0) << cut.output;
  expect_contains(cut.output, "results.h5 is not an HDF5 file, or damaged");
  expect_contains(cut.output, "sgdwalk run " + (run / "config.toml").string() + " --out " +
                                  run.string() + " --seed 9 --force");
  fs::remove(run / "results.h5");
  const CommandResult missing = run_cli("resume " + run.string());
  EXPECT_NE(missing.exit_code, 0) << missing.output;
  expect_contains(missing.output, "results.h5 is missing");
}

TEST(LongRunsCli, ResumeRefusesARunDirectoryItCannotWriteBeforeComputing) {
  // resume once computed the rest of the run and only then failed to write its outputs into a
  // directory it could not write (the work lost); it now refuses before computing anything.
  const fs::path dir = scratch("unwritable");
  const fs::path run = dir / "run";
  ASSERT_FALSE(run_small(kSmallConfig, run, 6, 100, 45).outcome.complete);
  const std::string checkpoint = read_bytes(run / kCheckpointFileName);
  const std::string resume = std::string(SGDWALK_CLI) + " resume " + run.string();
  std::string command;
  if (geteuid() == 0) {
    // Root writes anywhere but to a read-only mount: one in a mount namespace of its own.
    if (std::system("unshare --mount true > /dev/null 2>&1") != 0) {
      GTEST_SKIP() << "running as root without `unshare --mount`: no unwritable directory to try";
    }
    command = "unshare --mount sh -c 'mount --bind " + run.string() + " " + run.string() +
              " && mount -o remount,ro,bind " + run.string() + " && " + resume + "'";
  } else {
    fs::permissions(run, fs::perms::owner_write, fs::perm_options::remove);
    command = resume;
  }
  const fs::path log = dir / "log.txt";
  const int status = std::system((command + " > " + log.string() + " 2>&1").c_str());
  fs::permissions(run, fs::perms::owner_write, fs::perm_options::add);
  const std::string output = read_bytes(log);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 2) << output;
  expect_contains(output, "cannot write to the run directory '" + run.string() + "'");
  EXPECT_EQ(output.find("resuming"), std::string::npos) << output;
  EXPECT_EQ(read_bytes(run / kCheckpointFileName), checkpoint);
}

TEST(LongRunsCli, ADamagedPerWalkerFileIsRefusedBeforeTheRestOfTheRunIsComputed) {
  // A damaged record of walkers.bin was found only when results.h5 was written, after the rest of
  // the run, and the advice (fix the cause, resume) could never work: the walkers cannot be
  // written again. Resume checks the records first and says so.
  const fs::path dir = scratch("damaged_walker_file");
  const fs::path run = dir / "run";
  ASSERT_FALSE(run_small(kSmallConfig, run, 6, 100, 45).outcome.complete);
  const fs::path file = run / kWalkerFileName;
  std::string bytes = read_bytes(file);
  const auto record = static_cast<std::size_t>(walker_record_bytes(2, 0));
  ASSERT_EQ(bytes.size(), static_cast<std::size_t>(kWalkerFileHeaderBytes) + 45 * record);
  bytes[static_cast<std::size_t>(kWalkerFileHeaderBytes) + 3 * record + 2] ^= 4;
  testing::write_bytes(file, bytes);
  const std::string checkpoint = read_bytes(run / kCheckpointFileName);
  const CommandResult resumed = run_cli("resume " + run.string() + " --quiet");
  EXPECT_NE(resumed.exit_code, 0);
  expect_contains(resumed.output, file.string() + ": walker 3: the record's checksum");
  expect_contains(resumed.output, "cannot be completed: run it again");
  EXPECT_EQ(read_bytes(run / kCheckpointFileName), checkpoint) << "the run went on";
}

TEST(LongRunsCli, ProgressCheckpointFlagsAndFinishedRuns) {
  const fs::path dir = scratch("flags");
  write_text(dir / "small.toml", kSmallConfig);
  const std::string base = "run " + (dir / "small.toml").string() + " --backend cpu --threads 2";
  // Checkpoints every 10 ms: written during the run, removed once the final outputs are written.
  const CommandResult run = run_cli(base + " --out " + (dir / "a").string() +
                                    " --checkpoint-every 0.01 --segment-steps 10");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // Not a terminal: progress lines (the last one at 100 %) with the variants done.
  expect_contains(run.output, "progress: 100.0%  variants 2/2");
  EXPECT_FALSE(fs::exists(dir / "a" / kCheckpointFileName));
  EXPECT_FALSE(fs::exists(dir / "a" / "checkpoint.bin.tmp"));
  const CommandResult quiet = run_cli(base + " --out " + (dir / "b").string() + " --quiet");
  ASSERT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.output, "");
  EXPECT_FALSE(fs::exists(dir / "b" / kCheckpointFileName));

  const CommandResult finished = run_cli("resume " + (dir / "b").string());
  EXPECT_EQ(finished.exit_code, 0);
  expect_contains(finished.output, "is complete; nothing to resume");

  // An unfinished run directory is not overwritten; the message points to resume.
  ASSERT_FALSE(run_small(kSmallConfig, dir / "unfinished", 2).outcome.complete);
  const CommandResult refused = run_cli(base + " --out " + (dir / "unfinished").string());
  EXPECT_EQ(refused.exit_code, 2);
  expect_contains(refused.output, "sgdwalk resume " + (dir / "unfinished").string());

  const CommandResult help = run_cli("resume --help");
  for (const char* option : {"--backend", "--threads", "--quiet", "--checkpoint-every",
                             "--batch-walkers", "--segment-steps"}) {
    expect_contains(help.output, option);
  }
  expect_contains(run_cli("run --help").output, "--checkpoint-every");
  EXPECT_NE(run_cli("run --checkpoint-every -1").exit_code, 0);
}

TEST(LongRunsCli, DamagedRunDirectoriesGiveClearErrors) {
  const fs::path dir = scratch("damaged");
  const fs::path good = dir / "good";
  ASSERT_FALSE(run_small(kSmallConfig, good, 3).outcome.complete);
  const std::string checkpoint = read_bytes(good / kCheckpointFileName);
  auto copy_of_good = [&](const std::string& name) {
    const fs::path run = dir / name;
    fs::copy(good, run, fs::copy_options::recursive);
    return run;
  };
  auto resume = [](const fs::path& run) {
    return run_cli("resume " + run.string() + " --backend cpu --quiet");
  };

  const CommandResult missing = resume(dir / "nope");
  EXPECT_EQ(missing.exit_code, 2);
  expect_contains(missing.output, "is not a run directory (no such directory)");

  fs::create_directories(dir / "empty");
  const CommandResult empty = resume(dir / "empty");
  EXPECT_EQ(empty.exit_code, 2);
  expect_contains(empty.output, "is not a run directory (no config.toml and no summary.json");

  const fs::path no_config = copy_of_good("no_config");
  fs::remove(no_config / "config.toml");
  const CommandResult r1 = resume(no_config);
  EXPECT_EQ(r1.exit_code, 1);
  expect_contains(r1.output, (no_config / "config.toml").string() + ": missing");

  const fs::path garbage = copy_of_good("garbage_summary");
  write_text(garbage / "summary.json", "{\"partial\": tru");
  const CommandResult r2 = resume(garbage);
  EXPECT_EQ(r2.exit_code, 1);
  expect_contains(r2.output, (garbage / "summary.json").string() + ": unreadable or corrupt");

  const fs::path wrong = copy_of_good("wrong_summary");
  write_text(wrong / "summary.json", "[1, 2, 3]");
  const CommandResult r3 = resume(wrong);
  EXPECT_EQ(r3.exit_code, 1);
  expect_contains(r3.output, (wrong / "summary.json").string() + ": corrupt");

  const fs::path bad_config = copy_of_good("bad_config");
  write_text(bad_config / "config.toml", "[run]\nwalkers = -4\n");
  const CommandResult r4 = resume(bad_config);
  EXPECT_EQ(r4.exit_code, 2);
  expect_contains(r4.output, (bad_config / "config.toml").string() + ": key 'run.walkers'");

  const fs::path truncated = copy_of_good("truncated");
  write_text(truncated / kCheckpointFileName, checkpoint.substr(0, checkpoint.size() / 3));
  const CommandResult r5 = resume(truncated);
  EXPECT_EQ(r5.exit_code, 1);
  expect_contains(r5.output,
                  (truncated / kCheckpointFileName).string() + ": the checkpoint is truncated");

  const fs::path flipped = copy_of_good("flipped");
  std::string bytes = checkpoint;
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 1);
  write_text(flipped / kCheckpointFileName, bytes);
  const CommandResult r6 = resume(flipped);
  EXPECT_EQ(r6.exit_code, 1);
  expect_contains(r6.output, "checksum mismatch");

  const fs::path magic = copy_of_good("magic");
  write_text(magic / kCheckpointFileName, "garbage, not a checkpoint");
  const CommandResult r7 = resume(magic);
  EXPECT_EQ(r7.exit_code, 1);
  expect_contains(r7.output, "not an sgdwalk checkpoint");
  // Nothing was changed by the failed attempts.
  EXPECT_EQ(read_bytes(magic / kCheckpointFileName), "garbage, not a checkpoint");
}

TEST(LongRunsCli, ImpossibleMemoryRequestIsRefusedUpFront) {
  const fs::path dir = scratch("memory");
  write_text(dir / "huge.toml", R"(
[run]
walkers = 4000000000
steps = 1000
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
[observables]
sample_every = 1
[sweep]
noise_strength = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12, 0.13,
                  0.14, 0.15, 0.16]
)");
  // Memory no longer grows with the walkers beyond a batch: what does not fit here is the reduced
  // statistics of 16 variants x 1001 sample steps (a quantile sketch each).
  const CommandResult result = run_cli("run " + (dir / "huge.toml").string() + " --out " +
                                       (dir / "out").string() + " --backend cpu");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  expect_contains(result.output, (dir / "huge.toml").string() + ": the run needs ");
  expect_contains(result.output, "of host memory but only ");
  expect_contains(result.output, "walkers per variant fit (run.walkers is 4000000000)");
  expect_contains(result.output, "fewer sample steps (1001 now");
  EXPECT_FALSE(fs::exists(dir / "out")) << "refused before anything is written";
}

}  // namespace
}  // namespace sgdwalk
