// Checkpoint files (round trip, every corruption the reader must name) and the host memory
// estimate that refuses impossible runs up front.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "analysis/statistics.hpp"
#include "backend/backend.hpp"
#include "config/config.hpp"
#include "io/walker_store.hpp"
#include "run/checkpoint.hpp"
#include "run/driver.hpp"
#include "run/memory.hpp"
#include "run/run_session.hpp"
#include "test_ensemble.hpp"
#include "test_files.hpp"

namespace sgdwalk {
namespace {

using testing::expect_contains;

namespace fs = std::filesystem;

using testing::read_bytes;
using testing::write_bytes;

fs::path scratch(const std::string& name) {
  return testing::scratch_dir("checkpoint", name);
}

std::string config(int walkers = 23, int seed = 4) {
  return "[run]\nwalkers = " + std::to_string(walkers) +
         "\nsteps = 120\nseed = " + std::to_string(seed) + R"(
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
[observables]
sample_steps = [0, 13, 60, 120]
[observables.first_passage]
target = "flat"
[[observables.histogram]]
name = "x"
x_range = [-2.0, 2.0]
bins = 16
window = [10, 120]
every = 3
[[observables.histogram]]
name = "xy"
kind = "xy"
x_range = [-2.0, 2.0]
y_range = [0.0, 40.0]
bins = 8
y_bins = 5
[sweep]
noise_strength = [0.05, 0.2]
)";
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool identical(const RunData& a, const RunData& b) {
  bool same = a.walkers.dim == b.walkers.dim && same_bits(a.walkers.position, b.walkers.position) &&
              same_bits(a.walkers.y_freeze, b.walkers.y_freeze) &&
              same_bits(a.walkers.freeze_step, b.walkers.freeze_step) &&
              same_bits(a.walkers.first_passage_step, b.walkers.first_passage_step) &&
              same_bits(a.walkers.nonfinite_step, b.walkers.nonfinite_step) &&
              same_bits(a.walkers.basin, b.walkers.basin) &&
              same_bits(a.walkers.crossings, b.walkers.crossings) &&
              same_bits(a.walkers.optimizer_state, b.walkers.optimizer_state) &&
              a.observables.variants == b.observables.variants &&
              a.observables.samples == b.observables.samples &&
              a.observables.walkers_per_variant == b.observables.walkers_per_variant &&
              same_bits(a.observables.sample_progress, b.observables.sample_progress) &&
              same_bits(a.observables.sample_loss, b.observables.sample_loss) &&
              same_bits(a.observables.sample_flat, b.observables.sample_flat) &&
              same_bits(a.observables.sample_finite, b.observables.sample_finite) &&
              a.observables.histogram_counts.size() == b.observables.histogram_counts.size();
  for (std::size_t h = 0; same && h < a.observables.histogram_counts.size(); ++h) {
    same = same_bits(a.observables.histogram_counts[h], b.observables.histogram_counts[h]);
  }
  return same && a.tallies == b.tallies;
}

/// A run stopped in its second batch of 17 walkers (120 steps in segments of 11: 11 segments per
/// batch, stopped after 14).
RunOutcome stopped_run(const RunPlan& plan) {
  auto backend = make_cpu_backend(2);
  ExecuteOptions options;
  options.batch_walkers = 17;
  options.segment_steps = 11;
  int segments = 0;
  options.on_segment = [&](const RunProgress&, const SegmentData&) { return ++segments < 14; };
  return execute(plan, *backend, options);
}

TEST(Checkpoint, Fnv1a64KnownAnswers) {
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ULL);
  // Continuing a hash over pieces gives the hash of the whole.
  EXPECT_EQ(fnv1a64("bar", 3, fnv1a64("foo", 3)), 0x85944171f73967e8ULL);
}

TEST(Checkpoint, TheConfigHashReadsSweptStepCountsAsTheDoublesEarlierVersionsWrote) {
  // The resolved config now gives a swept warmup_steps as integers; the hash that checkpoints,
  // shards and walker files carry is that of the doubles earlier versions wrote, so their files
  // still resume and merge.
  const RunPlan plan = load_config_text(
      "[dynamics]\nlearning_rate = 0.05\nnoise_strength = 0.1\n"
      "[dynamics.learning_rate_schedule]\nkind = \"exponential\"\ngamma = 0.99\n"
      "[sweep]\nlearning_rate_schedule.warmup_steps = [0, 40]\n",
      "warmup.toml");
  const auto& swept = plan.resolved_config["sweep"]["learning_rate_schedule.warmup_steps"];
  ASSERT_TRUE(swept[0].is_number_integer()) << swept.dump();
  nlohmann::json earlier = plan.resolved_config;
  earlier["sweep"]["learning_rate_schedule.warmup_steps"] = {0.0, 40.0};
  const std::string text = earlier.dump();
  EXPECT_EQ(config_hash(plan), fnv1a64(text.data(), text.size())) << text;
}

TEST(Checkpoint, RoundTripIsExactAndContinuesToTheSameResult) {
  const RunPlan plan = load_config_text(config(), "checkpoint.toml");
  const RunOutcome stopped = stopped_run(plan);
  ASSERT_FALSE(stopped.complete);
  EXPECT_EQ(stopped.progress.walker_begin, 17);
  EXPECT_EQ(stopped.progress.walker_end, 34);
  EXPECT_EQ(stopped.progress.step, 33);

  const fs::path dir = scratch("roundtrip");
  const std::string path = (dir / "checkpoint.bin").string();
  write_checkpoint(path, plan, stopped.progress, stopped.data, 12.5, 3);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const Checkpoint back = read_checkpoint(path, &plan);
  EXPECT_EQ(back.config_hash, config_hash(plan));
  EXPECT_EQ(back.seed, plan.seed);
  EXPECT_EQ(back.steps, plan.steps);
  EXPECT_EQ(back.progress.walker_begin, 17);
  EXPECT_EQ(back.progress.walker_end, 34);
  EXPECT_EQ(back.progress.step, 33);
  EXPECT_EQ(back.progress.simulate_seconds, stopped.progress.simulate_seconds);
  EXPECT_EQ(back.wall_seconds, 12.5);
  EXPECT_EQ(back.sessions, 3);
  EXPECT_TRUE(identical(back.data, stopped.data));

  // Continuing from the file (with another batch size: progress does not depend on it) gives the
  // bits of an uninterrupted run: the walkers, counters and reduced statistics.
  auto backend = make_cpu_backend(1);
  ExecuteOptions other;
  other.batch_walkers = 5;
  const RunOutcome continued =
      testing::execute_from_all(plan, *backend, other, back.data, back.progress);
  const RunOutcome reference = testing::execute_all(plan, *backend, {});
  ASSERT_TRUE(continued.complete);
  EXPECT_TRUE(continued.data.tallies == reference.data.tallies);
  EXPECT_EQ(continued.data.observables.sample_flat, reference.data.observables.sample_flat);
  EXPECT_EQ(continued.data.observables.sample_finite, reference.data.observables.sample_finite);
  EXPECT_EQ(continued.data.observables.histogram_counts,
            reference.data.observables.histogram_counts);
  const auto from = static_cast<std::ptrdiff_t>(17 * plan.dim);
  EXPECT_TRUE(std::equal(continued.data.walkers.position.begin() + from,
                         continued.data.walkers.position.end(),
                         reference.data.walkers.position.begin() + from));
  const auto a = summarize(plan, continued.data), b = summarize(plan, reference.data);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t v = 0; v < a.size(); ++v) {
    EXPECT_EQ(a[v].freezing_time.mean, b[v].freezing_time.mean);
    EXPECT_EQ(a[v].samples.back().progress_quantiles, b[v].samples.back().progress_quantiles);
  }
}

TEST(Checkpoint, ExecuteFromRejectsStatesThatDoNotFitThePlan) {
  const RunPlan plan = load_config_text(config(), "checkpoint.toml");
  auto backend = make_cpu_backend(1);
  RunData data;
  data.resize(plan);
  RunProgress bad;
  bad.walker_begin = 3;
  bad.walker_end = 10;
  bad.step = 0;  // a batch in flight must have advanced
  EXPECT_THROW(execute_from(plan, *backend, {}, data, bad), std::invalid_argument);
  const RunPlan other = load_config_text(config(24), "other.toml");
  RunData wrong;
  wrong.resize(other);
  EXPECT_THROW(execute_from(plan, *backend, {}, wrong, RunProgress{}), std::invalid_argument);
}

class CorruptCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    plan_ = load_config_text(config(), "checkpoint.toml");
    const RunOutcome stopped = stopped_run(plan_);
    dir_ = scratch(::testing::UnitTest::GetInstance()->current_test_info()->name());
    path_ = (dir_ / "checkpoint.bin").string();
    write_checkpoint(path_, plan_, stopped.progress, stopped.data, 1.0, 1);
    good_ = read_bytes(path_);
  }

  /// The message of the CheckpointError that reading `bytes` (from the file) must throw.
  std::string error_for(const std::string& bytes, const RunPlan* plan) {
    write_bytes(path_, bytes);
    try {
      read_checkpoint(path_, plan);
    } catch (const CheckpointError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(path_), std::string::npos) << message;
      // The in-memory reader (the fuzzing entry point) agrees, apart from the name.
      try {
        parse_checkpoint(bytes, path_, plan);
        ADD_FAILURE() << "parse_checkpoint accepted what read_checkpoint refused: " << message;
      } catch (const CheckpointError& again) {
        EXPECT_EQ(std::string(again.what()), message);
      }
      return message;
    }
    ADD_FAILURE() << "no CheckpointError";
    return "";
  }

  RunPlan plan_;
  fs::path dir_;
  std::string path_;
  std::string good_;
};

TEST_F(CorruptCheckpoint, GoodFileReads) {
  EXPECT_NO_THROW(read_checkpoint(path_, &plan_));
  EXPECT_NO_THROW(parse_checkpoint(good_, "memory", nullptr));
}

TEST_F(CorruptCheckpoint, Truncated) {
  expect_contains(error_for("", &plan_), "truncated (0 bytes)");
  expect_contains(error_for(good_.substr(0, 5), &plan_), "truncated");
  expect_contains(error_for(good_.substr(0, 40), &plan_), "shorter than its header");
  for (const std::size_t keep : {good_.size() / 2, good_.size() - 1}) {
    const std::string message = error_for(good_.substr(0, keep), &plan_);
    expect_contains(message, "truncated");
    expect_contains(message,
                    fmt::format("describes {} bytes but the file has {}", good_.size(), keep));
  }
}

TEST_F(CorruptCheckpoint, ExtraBytes) {
  expect_contains(error_for(good_ + "xyz", &plan_), "3 more than its header describes");
}

TEST_F(CorruptCheckpoint, WrongMagic) {
  std::string bytes = good_;
  bytes[0] = 'X';
  expect_contains(error_for(bytes, &plan_), "not an sgdwalk checkpoint (wrong magic bytes");
  expect_contains(error_for("[run]\nwalkers = 3\n", &plan_), "wrong magic bytes");
}

TEST_F(CorruptCheckpoint, WrongVersion) {
  std::string bytes = good_;
  bytes[8] = 7;  // the version field follows the 8 magic bytes
  const std::string message = error_for(bytes, &plan_);
  expect_contains(message, "format version 7 is not supported");
  expect_contains(message, "reads versions 3 to 5");
}

TEST_F(CorruptCheckpoint, ChecksumMismatch) {
  for (const std::size_t at : {good_.size() / 2, good_.size() - 20, good_.size() - 1}) {
    std::string bytes = good_;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x10);
    expect_contains(error_for(bytes, &plan_), "checksum mismatch");
  }
  // The config hash (after the magic, the version and the byte-order mark) damaged: damage, not
  // "written for another config".
  std::string bytes = good_;
  bytes[16] = static_cast<char>(bytes[16] ^ 0x01);
  const std::string message = error_for(bytes, &plan_);
  expect_contains(message, "checksum mismatch");
  EXPECT_EQ(message.find("another config"), std::string::npos) << message;
}

TEST_F(CorruptCheckpoint, ImpossibleHeader) {
  std::string bytes = good_;
  const std::int64_t huge = std::int64_t{1} << 40;
  std::memcpy(&bytes[8 + 4 + 4 + 8 + 8 + 8 * 3], &huge, 8);  // walkers per variant
  expect_contains(error_for(bytes, &plan_), "walkers per variant = 1099511627776 is out of range");
  const std::int64_t negative = -3;
  bytes = good_;
  std::memcpy(&bytes[8 + 4 + 4 + 8 + 8 + 8], &negative, 8);  // dimension
  expect_contains(error_for(bytes, &plan_), "dimension = -3 is out of range");
}

TEST_F(CorruptCheckpoint, ShapeMismatchWithThePlan) {
  const RunPlan other = load_config_text(config(24), "other.toml");
  const std::string message = error_for(good_, &other);
  expect_contains(message, "does not fit the config");
  expect_contains(message, "2 variant(s) x 23 walkers");
  expect_contains(message, "2 variant(s) x 24 walkers");
}

TEST_F(CorruptCheckpoint, OtherSeedOrConfig) {
  const RunPlan other = load_config_text(config(23, 5), "other.toml");
  const std::string message = error_for(good_, &other);
  expect_contains(message, "written for another config or seed");
  expect_contains(message, "seed 5; the checkpoint's seed is 4");
}

TEST_F(CorruptCheckpoint, MissingOrNotAFile) {
  fs::remove(path_);
  try {
    read_checkpoint(path_, &plan_);
    ADD_FAILURE();
  } catch (const CheckpointError& error) {
    expect_contains(error.what(), path_ + ": cannot open the checkpoint: no such file");
  }
  fs::create_directories(path_);
  try {
    read_checkpoint(path_, &plan_);
    ADD_FAILURE();
  } catch (const CheckpointError& error) {
    expect_contains(error.what(), "not a regular file");
  }
}

/// A one-thread CPU session of `config` without periodic checkpoints, as the CLI starts one.
struct Session {
  Session(const std::string& config, const std::string& source)
      : plan(load_config_text(config, source)) {
    options.checkpoint_every = 0;
    record.config_text = config;
    record.config_source = source;
  }
  RunPlan plan;
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
  SessionOptions options;
  RunRecord record;
};

TEST(RunDirectory, ASecondSessionInADirectoryInUseIsRefused) {
  // While one session holds a run directory (RunDirectoryLock, as run_in_directory and
  // resume_in_directory take it), another run into it is refused before it removes or writes
  // anything; once the first is done, the directory is free.
  Session session(
      "[run]\nwalkers = 8\nsteps = 20\n[dynamics]\nlearning_rate = 0.05\nnoise_strength = 0.1\n",
      "locked.toml");
  auto& [plan, backend, options, record] = session;
  const auto dir = testing::scratch_dir("checkpoint", "locked");
  std::ofstream(dir / "results.h5") << "the first session's results";
  {
    const RunDirectoryLock first(dir.string());
    try {
      run_in_directory(plan, *backend, record, dir.string(), options);
      ADD_FAILURE() << "a second session ran in a directory in use";
    } catch (const RunDirectoryError& error) {
      EXPECT_TRUE(error.usage());
      EXPECT_NE(std::string(error.what())
                    .find("another sgdwalk process is running or resuming "
                          "in the run directory '" +
                          dir.string() + "'"),
                std::string::npos)
          << error.what();
    }
    EXPECT_THROW(RunDirectoryLock second(dir.string()), RunDirectoryError);
    std::ifstream in(dir / "results.h5");
    const std::string kept((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(kept, "the first session's results");
  }
  EXPECT_TRUE(run_in_directory(plan, *backend, record, dir.string(), options).outcome.complete);
}

TEST(RunDirectory, AFinishedRunWhoseOutputsCannotBeWrittenKeepsItAndResumeWritesThem) {
  // Nothing computed is lost when the outputs cannot be written at the end (here results.h5.tmp
  // is a directory that cannot be removed; a full disk behaves alike): the finished state goes
  // to checkpoint.bin, the error says so, and resume writes the outputs without computing: the
  // same bytes as a run whose outputs went through.
  Session session(
      "[run]\nwalkers = 40\nsteps = 30\n[dynamics]\nlearning_rate = 0.05\n"
      "noise_strength = 0.1\n[observables]\nper_walker = true\n",
      "blocked.toml");
  auto& [plan, backend, options, record] = session;
  const auto reference = testing::scratch_dir("checkpoint", "unblocked");
  ASSERT_TRUE(
      run_in_directory(plan, *backend, record, reference.string(), options).outcome.complete);

  const auto dir = testing::scratch_dir("checkpoint", "blocked");
  fs::create_directories(dir / "results.h5.tmp" / "in the way");
  try {
    run_in_directory(plan, *backend, record, dir.string(), options);
    ADD_FAILURE() << "the run reported no error";
  } catch (const std::exception& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("cannot create HDF5 file"), std::string::npos) << message;
    EXPECT_NE(message.find("the finished run is kept in " + (dir / kCheckpointFileName).string()),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("sgdwalk resume " + dir.string()), std::string::npos) << message;
  }
  EXPECT_TRUE(fs::is_regular_file(dir / kCheckpointFileName));
  EXPECT_FALSE(fs::exists(dir / "results.h5"));
  fs::remove_all(dir / "results.h5.tmp");
  const SessionResult resumed =
      resume_in_directory(load_resume_point(dir.string(), 1), *backend, dir.string(), options);
  EXPECT_TRUE(resumed.outcome.complete);
  EXPECT_EQ(read_bytes(dir / "results.h5"), read_bytes(reference / "results.h5"));
  EXPECT_FALSE(fs::exists(dir / kCheckpointFileName));
}

TEST(Memory, EstimateFollowsTheBatchNotTheEnsemble) {
  const RunPlan plan = load_config_text(config(1000), "memory.toml");
  const MemoryEstimate estimate = estimate_host_memory(plan, 4);
  // Batch arrays per walker: 2-D position, y_freeze, 3 step trackers, basin, crossings, 4 samples
  // x (progress + loss) floats; the default batch holds the whole (small) run.
  EXPECT_EQ(batch_bytes_per_walker(plan), 2 * 8 + 8 + 3 * 8 + 4 + 4 + 4 * 8);
  EXPECT_EQ(estimate.batch_walkers, 2000);
  EXPECT_DOUBLE_EQ(estimate.batch, 2000 * batch_bytes_per_walker(plan));
  EXPECT_DOUBLE_EQ(estimate.total, estimate.batch + estimate.tallies + estimate.fixed);
  // The real arrays of a run's data are no bigger than the estimate.
  RunData data;
  data.resize(plan, estimate.batch_walkers);
  double bytes = 0;
  const auto& w = data.walkers;
  bytes += 8.0 * (w.position.size() + w.y_freeze.size() + w.freeze_step.size() +
                  w.first_passage_step.size() + w.nonfinite_step.size());
  bytes += 4.0 * (w.basin.size() + w.crossings.size());
  const auto& o = data.observables;
  bytes += 4.0 * (o.sample_progress.size() + o.sample_loss.size());
  bytes += 8.0 * (o.sample_flat.size() + o.sample_finite.size());
  for (const auto& h : o.histogram_counts) bytes += 8.0 * h.size();
  bytes += sizeof(VariantTally) * data.tallies.variants.size() +
           sizeof(SampleTally) * data.tallies.samples.size();
  EXPECT_LE(bytes, estimate.total);

  // Beyond the default batch, more walkers cost nothing but (capped) quantile sketch entries:
  // a billion walkers fit in a small estimate.
  RunPlan huge = plan;
  huge.walkers_per_variant = 500000000;
  const MemoryEstimate big = estimate_host_memory(huge, 4);
  EXPECT_EQ(big.batch_walkers, default_batch_walkers(huge));
  EXPECT_LE(big.batch, kDefaultBatchBytes);
  EXPECT_LT(big.total, 1.0 * 1024 * 1024 * 1024);
  RunPlan larger = huge;
  larger.walkers_per_variant = 2000000000;
  EXPECT_EQ(estimate_host_memory(larger, 4).total, big.total) << "flat in the walker count";

  RunPlan with_walkers = plan;
  with_walkers.per_walker_output = true;
  EXPECT_GT(estimate_host_memory(with_walkers, 4).fixed, estimate.fixed);
}

TEST(Memory, BillionWalkerRunIsAccepted) {
  // The issue's measurement: 1e9 walkers x 10 steps of the two-valley landscape with Hessian
  // noise and the default observables is accepted with a small estimate (not run here).
  const RunPlan plan = load_config_text(R"(
[run]
walkers = 1000000000
steps = 10
[dynamics]
learning_rate = 0.1
noise_strength = 0.1
)",
                                        "billion.toml");
  const MemoryEstimate estimate = estimate_host_memory(plan, 2);
  EXPECT_LT(estimate.total, 1.0 * 1024 * 1024 * 1024) << format_bytes(estimate.total);
  EXPECT_NO_THROW(check_host_resources(plan, "billion.toml", 2, 2.0 * 1024 * 1024 * 1024));
}

TEST(Memory, LargestFittingWalkerCount) {
  RunPlan plan = load_config_text(config(1000), "memory.toml");
  const double usable = 50e6;
  const std::int64_t fit = max_walkers_per_variant(plan, 2, usable);
  ASSERT_GT(fit, 0);
  plan.walkers_per_variant = fit;
  EXPECT_LE(estimate_host_memory(plan, 2).total, usable);
  plan.walkers_per_variant = fit + 1;
  EXPECT_GT(estimate_host_memory(plan, 2).total, usable);
  EXPECT_EQ(max_walkers_per_variant(plan, 2, 1000.0), 0);
}

TEST(Memory, RefusalSaysWhatFits) {
  const RunPlan plan = load_config_text(config(1000000), "big.toml");
  const double available = 100e6;  // 100 MB
  EXPECT_NO_THROW(check_host_resources(load_config_text(config(1000), "small.toml"), "small.toml",
                                       2, available));
  try {
    check_host_resources(plan, "big.toml", 2, available);
    ADD_FAILURE() << "no ResourceError";
  } catch (const ResourceError& error) {
    const std::string message = error.what();
    const std::int64_t fit = max_walkers_per_variant(plan, 2, 0.9 * available);
    EXPECT_NE(message.find("big.toml: the run needs"), std::string::npos) << message;
    EXPECT_NE(message.find("of host memory but only 95.4 MiB are available"), std::string::npos)
        << message;
    EXPECT_NE(message.find(
                  fmt::format("at most {} walkers per variant fit (run.walkers is 1000000)", fit)),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("fewer sample steps (4 now"), std::string::npos) << message;
  }
  // Unknown available memory: only the 64-bit walker-step check.
  EXPECT_NO_THROW(check_host_resources(plan, "big.toml", 2, std::nullopt));
  RunPlan endless = plan;
  endless.steps = std::int64_t{1} << 50;
  EXPECT_THROW(check_host_resources(endless, "endless.toml", 2, std::nullopt), ResourceError);
}

TEST(Memory, ASweepWhosePlanCannotFitIsRefusedBeforeItIsBuilt) {
  // 3 KB per variant (kPlanBytesPerVariant): 0.9 x 8 GiB / 3072 B = 2516582.4 variants fit.
  const double eight_gib = 8.0 * 1024 * 1024 * 1024;
  EXPECT_NO_THROW(check_plan_memory(2516582, "grid.toml", eight_gib));
  EXPECT_THROW(check_plan_memory(2516583, "grid.toml", eight_gib), ResourceError);
  EXPECT_NO_THROW(check_plan_memory(10000000, "grid.toml", std::nullopt));  // unknown: unchecked
  try {
    check_plan_memory(10000000, "grid.toml", eight_gib);
    ADD_FAILURE() << "no ResourceError";
  } catch (const ResourceError& error) {
    const std::string message = error.what();
    // 1e7 x 3072 B = 28.6 GiB.
    EXPECT_NE(message.find("grid.toml: the sweep's 10000000 variants need about 28.6 GiB"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("only 8.0 GiB are available"), std::string::npos) << message;
    EXPECT_NE(message.find("at most 2516582 variants can be read here"), std::string::npos)
        << message;
  }
}

TEST(Memory, APerWalkerRunWhoseWalkerFileCannotFitIsRefused) {
  RunPlan plan = load_config_text(
      "[dynamics]\nlearning_rate = 0.1\nnoise_strength = 0.1\n"
      "[observables]\nper_walker = true\n",
      "walkers.toml");
  // Two-valley SGD: a record per walker of walker_record_bytes(2, 0) bytes after a 64-byte header.
  const double record = static_cast<double>(walker_record_bytes(2, 0));
  ASSERT_GT(record, 0);
  EXPECT_EQ(walker_file_bytes(plan, 1000), 64 + 1000 * record);
  const double room = 64 + 1000 * record;
  EXPECT_NO_THROW(check_disk_space(plan, 1000, "walkers.toml", room));
  EXPECT_THROW(check_disk_space(plan, 1001, "walkers.toml", room), ResourceError);
  EXPECT_NO_THROW(check_disk_space(plan, 1001, "walkers.toml", std::nullopt));  // unknown
  try {
    check_disk_space(plan, 4000000000LL, "walkers.toml", 1e9);
    ADD_FAILURE() << "no ResourceError";
  } catch (const ResourceError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("walkers.toml: observables.per_walker = true: the per-walker file of "
                           "the 4000000000 walkers still to write needs"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("has 953.7 MiB free"), std::string::npos) << message;
  }
  // Without per-walker output nothing is written per walker: never refused.
  plan.per_walker_output = false;
  EXPECT_EQ(walker_file_bytes(plan, 4000000000LL), 0);
  EXPECT_NO_THROW(check_disk_space(plan, 4000000000LL, "walkers.toml", 0.0));
  // And the free space of a real directory is read.
  const auto free_here = available_disk_space(".");
  ASSERT_TRUE(free_here.has_value());
  EXPECT_GT(*free_here, 0);
}

TEST(Memory, AvailableMemoryIsReadHere) {
  const auto available = available_host_memory();
  ASSERT_TRUE(available.has_value()) << "/proc/meminfo has no MemAvailable";
  EXPECT_GT(*available, 1e6);
}

TEST(Memory, PeakMemoryCoversWhatThisProcessTouched) {
  const std::size_t bytes = std::size_t{64} << 20;
  std::vector<unsigned char> block(bytes);
  std::memset(block.data(), 1, block.size());  // resident only once written
  const auto peak = peak_host_memory();
  ASSERT_TRUE(peak.has_value()) << "/proc/self/status has no VmHWM";
  EXPECT_GE(*peak, static_cast<double>(bytes));
  EXPECT_LT(*peak, 64.0 * static_cast<double>(bytes)) << "bytes, not KiB or pages";
  EXPECT_EQ(block[bytes / 2], 1);
}

}  // namespace
}  // namespace sgdwalk
