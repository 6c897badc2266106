// Shards and merge: a run split into N parts (run --shard K/N), each run on its own with any batch
// size, thread count or interruption, and merged gives the results.h5 of the single run, dataset by
// dataset and bit for bit, and its summary.json but for the fields that must differ. Merge refuses
// missing, duplicated, foreign and unfinished shards with a message naming them.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "cluster/part_messages.hpp"
#include "cluster/parts.hpp"
#include "config/config.hpp"
#include "io/walker_store.hpp"
#include "run/checkpoint.hpp"
#include "run/run_session.hpp"
#include "test_files.hpp"
#include "test_run_dirs.hpp"

namespace sgdwalk {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::read_json;

fs::path scratch(const std::string& name) {
  return testing::scratch_dir("shards", name);
}

using testing::expect_contains;

// ---- Parts --------------------------------------------------------------------------------------

RunPlan plan_with(std::int64_t variants, std::int64_t walkers) {
  RunPlan plan;
  plan.walkers_per_variant = walkers;
  plan.variants.resize(static_cast<std::size_t>(variants));
  return plan;
}

TEST(Parts, PartsCoverEveryWalkerOnceInOrderWithSizesWithinOne) {
  for (const auto& [variants, walkers] :
       std::vector<std::pair<int, int>>{{1, 1}, {3, 37}, {2, 3}, {7, 1000}, {1, 5}}) {
    const RunPlan plan = plan_with(variants, walkers);
    const std::int64_t total = plan.total_walkers();
    for (std::int64_t n : {1, 2, 3, 5, 7, 64, 1000}) {
      std::int64_t expected_begin = 0;
      for (std::int64_t k = 0; k < n; ++k) {
        const WalkerRange range = part_walkers(plan, {k, n});
        EXPECT_EQ(range.begin, expected_begin) << k << "/" << n;
        EXPECT_GE(range.size(), total / n);
        EXPECT_LE(range.size(), total / n + 1);
        expected_begin = range.end;
      }
      EXPECT_EQ(expected_begin, total) << n;
    }
  }
  // The definition: [floor(K·T/N), floor((K+1)·T/N)), also where K·T overflows 64 bits. One
  // variant of T walkers: parts count walkers, not variants (and ten million variants took 16 s
  // to allocate).
  const RunPlan huge = plan_with(1, 10000000 * 4294967295LL);
  const std::int64_t total = huge.total_walkers();
  const WalkerRange last = part_walkers(huge, {999999, 1000000});
  EXPECT_EQ(last.end, total);
  EXPECT_EQ(last.begin, 999999 * (total / 1000000));  // T is a multiple of N here
  EXPECT_EQ(part_walkers(plan_with(2, 3), {0, 4}).size(), 1);
  EXPECT_EQ(part_walkers(plan_with(1, 2), {0, 3}).size(), 0);  // more parts than walkers
}

TEST(Parts, ParseNamesTheFlagTheValueAndTheRange) {
  EXPECT_EQ(parse_part("3/8", "--shard"), (PartId{3, 8}));
  EXPECT_EQ(parse_part("0/1", "--shard"), (PartId{0, 1}));
  auto message = [](const std::string& text) {
    try {
      parse_part(text, "--shard");
    } catch (const ConfigError& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  expect_contains(message("8/8"), "--shard 8/8: K = 8 is out of range; allowed: 0 to 7");
  expect_contains(message("1/0"), "N = 0 is out of range; allowed: 1 to 1000000");
  expect_contains(message("-1/4"), "--shard -1/4: K = -1 is out of range");
  expect_contains(message("2"), "--shard 2: expected K/N");
  expect_contains(message("a/4"), "expected K/N");
  expect_contains(message("1/4x"), "expected K/N");
}

// ---- Shards merged = the single run -------------------------------------------------------------

/// A config with every observable: samples (means, quantiles), first passage, an x histogram and
/// per-walker output, for a landscape × noise × precision.
std::string config_text(const std::string& landscape, const std::string& noise,
                        const std::string& precision, int walkers, const std::string& extra = "") {
  const bool two_valley = landscape == "two_valley";
  return R"([run]
name = "shards"
walkers = )" +
         std::to_string(walkers) +
         R"(
steps = 240
seed = 77
precision = ")" +
         precision + R"("
[landscape]
kind = ")" +
         landscape +
         R"("
[dynamics]
noise = ")" +
         noise +
         R"("
learning_rate = 0.05
[init]
positions = )" +
         (two_valley ? "[[-0.01, 5.0], [0.01, 5.0]]" : "[[-0.3], [0.4]]") +
         R"(
[observables]
sample_every = 60
per_walker = true
[observables.first_passage]
)" + (two_valley ? "target = \"flat\"" : "coordinate = 0\nabove = 0.5") +
         R"(
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 24
window = [120, 240]
every = 5
[sweep]
noise_strength = [0.01, 0.2, 0.6]
)" + extra;
}

RunRecord record_for(const std::string& text) {
  RunRecord record;
  record.config_text = text;
  record.config_source = "shards.toml";
  record.command_line = "sgdwalk run shards.toml";
  return record;
}

SessionOptions options_for(std::int64_t batch, std::int64_t segment_steps) {
  SessionOptions options;
  options.checkpoint_every = 0;
  options.execute.batch_walkers = batch;
  options.execute.segment_steps = segment_steps;
  return options;
}

/// Runs `text` whole into `dir`.
void run_single(const std::string& text, const fs::path& dir) {
  const RunPlan plan = load_config_text(text, "shards.toml");
  auto backend = make_cpu_backend(2);
  const SessionResult result =
      run_in_directory(plan, *backend, record_for(text), dir.string(), options_for(0, 0));
  ASSERT_TRUE(result.outcome.complete);
}

/// Runs part `part` of `text` into `dir` (batch sizes, segments and threads vary with the part,
/// as they may between the machines of a job array).
void run_shard(const std::string& text, PartId part, const fs::path& dir) {
  const RunPlan plan = load_config_text(text, "shards.toml");
  auto backend = make_cpu_backend(1 + static_cast<int>(part.index % 2));
  RunRecord record = record_for(text);
  record.shard = part;
  const SessionResult result =
      run_in_directory(plan, *backend, record, dir.string(), options_for(7 + part.index, 0));
  ASSERT_TRUE(result.outcome.complete);
  EXPECT_TRUE(fs::exists(dir / kTalliesFileName));
  EXPECT_FALSE(fs::exists(dir / "results.h5"));  // a part's statistics are not the run's
  EXPECT_FALSE(fs::exists(dir / kCheckpointFileName));
}

/// Runs `text` in `counts` shards each and merges them; every merge equals the single run.
void expect_shards_merge_to_single_run(const std::string& name, const std::string& text,
                                       const std::vector<std::int64_t>& counts) {
  const fs::path dir = scratch(name);
  run_single(text, dir / "single");
  const Json single_summary = read_json(dir / "single" / "summary.json");
  for (const std::int64_t n : counts) {
    SCOPED_TRACE(name + ": " + std::to_string(n) + " shard(s)");
    std::vector<std::string> shard_dirs;
    for (std::int64_t k = n - 1; k >= 0; --k) {  // any order on the command line
      const fs::path shard_dir = dir / ("shard-" + std::to_string(k) + "-of-" + std::to_string(n));
      run_shard(text, {k, n}, shard_dir);
      shard_dirs.push_back(shard_dir.string());
    }
    const fs::path merged = dir / ("merged-" + std::to_string(n));
    merge_into_directory(shard_dirs, merged.string(), false, "sgdwalk merge");
    testing::expect_same_h5(dir / "single" / "results.h5", merged / "results.h5");
    // The comparison covered the netCDF dimensions (scales attached by name), which merged files
    // have as single runs do.
    const auto items = testing::h5_items(merged / "results.h5");
    EXPECT_EQ(items.at("/variants/p_flat#dimensions").bytes, "axis 0: /variants/variant; ");
    EXPECT_EQ(items.at("/trackers/crossings_counts#dimensions").bytes,
              "axis 0: /trackers/variant; axis 1: /trackers/log2_bin; ");
    // The same writer fed the same numbers: the same bytes, too.
    EXPECT_TRUE(testing::read_bytes(dir / "single" / "results.h5") ==
                testing::read_bytes(merged / "results.h5"));
    const Json summary = read_json(merged / "summary.json");
    EXPECT_EQ(testing::comparable_summary(summary), testing::comparable_summary(single_summary));
    EXPECT_EQ(summary["merged_from"].size(), static_cast<std::size_t>(n));
    EXPECT_EQ(summary["timing"]["walker_steps"], single_summary["timing"]["walker_steps"]);
    EXPECT_EQ(testing::read_bytes(merged / "config.toml"), text);
  }
}

TEST(Shards, MergedShardsEqualTheSingleRunTwoValleyHessianDouble) {
  expect_shards_merge_to_single_run("two_valley_hessian_double",
                                    config_text("two_valley", "hessian", "double", 37), {1, 2, 5});
}

TEST(Shards, MergedShardsEqualTheSingleRunTwoValleyIsotropicFloat) {
  expect_shards_merge_to_single_run("two_valley_isotropic_float",
                                    config_text("two_valley", "isotropic", "float", 29), {2, 5});
}

TEST(Shards, MergedShardsEqualTheSingleRunDoubleWellHessianSquaredFloat) {
  expect_shards_merge_to_single_run("double_well_hessian_squared_float",
                                    config_text("double_well", "hessian_squared", "float", 23),
                                    {2, 5});
}

TEST(Shards, MergedShardsEqualTheSingleRunWithMoreShardsThanWalkersOfAVariant) {
  // 3 variants x 3 walkers: 5 parts span variant boundaries, 11 parts leave two empty.
  expect_shards_merge_to_single_run("uneven", config_text("two_valley", "hessian", "double", 3),
                                    {5, 11});
}

TEST(Shards, DivergedWalkersMergeExactly) {
  // A learning rate of 30 sends walkers to non-finite values: counts and first steps merge.
  expect_shards_merge_to_single_run(
      "divergent",
      config_text("two_valley", "hessian", "double", 17, "learning_rate = [0.05, 30.0]\n"), {3});
}

TEST(Shards, PartMessagesCarryThePartsExactly) {
  // What an MPI job's processes send rank 0 (part_messages.hpp), without MPI: 5 parts held by 2
  // "processes" (part K by process K mod 2); each moves its parts' counts out and encodes the
  // rest; the counts are added element-wise and their minima taken (what MPI_Reduce does with
  // MPI_SUM and MPI_MIN on MPI_UINT64_T); rank 0 indexes the messages, decodes part by part in
  // part order and combines. The result must be the merge of the same shards (and so the single
  // run), counts and first non-finite steps included (diverging walkers).
  const std::string text =
      config_text("two_valley", "hessian", "double", 17, "learning_rate = [0.05, 30.0]\n");
  const fs::path dir = scratch("messages");
  run_single(text, dir / "single");
  const RunPlan plan = load_config_text(text, "shards.toml");
  constexpr std::int64_t kParts = 5;
  constexpr int kProcesses = 2;
  std::vector<std::string> shard_dirs;
  for (std::int64_t k = 0; k < kParts; ++k) {
    shard_dirs.push_back((dir / ("part-" + std::to_string(k))).string());
    run_shard(text, {k, kParts}, shard_dirs.back());
  }
  std::vector<std::string> messages(kProcesses);
  std::vector<JobCounts> counts(kProcesses, JobCounts(plan));
  std::vector<std::shared_ptr<WalkerStore>> walkers(kParts);
  for (std::int64_t k = 0; k < kParts; ++k) {
    const auto j = static_cast<std::size_t>(k % kProcesses);
    PartContribution c = load_part(plan, {k, kParts}, shard_dirs[static_cast<std::size_t>(k)]);
    ASSERT_TRUE(c.complete());
    take_counts(plan, c.data, counts[j]);
    for (const auto& t : c.data.tallies.variants) {
      EXPECT_EQ(t.walkers, 0);  // moved out: the message carries no counts
      EXPECT_EQ(t.first_nonfinite_step, -1);
    }
    encode_part(plan, c, messages[j]);
    walkers[static_cast<std::size_t>(k)] = c.walkers;
  }
  JobCounts total = counts[0];
  for (std::size_t i = 0; i < total.sums.size(); ++i) total.sums[i] += counts[1].sums[i];
  for (std::size_t v = 0; v < total.minima.size(); ++v) {
    total.minima[v] = std::min(total.minima[v], counts[1].minima[v]);
  }
  std::vector<PartRecord> records(kParts);
  for (int j = 0; j < kProcesses; ++j) {
    for (PartRecord& record : index_parts(plan, messages[static_cast<std::size_t>(j)], j)) {
      EXPECT_EQ(record.header.part.index % kProcesses, j);
      record.header.walkers = walkers[static_cast<std::size_t>(record.header.part.index)];
      records[static_cast<std::size_t>(record.header.part.index)] = record;
    }
  }
  const MergedRun combined = combine_parts(
      plan, kParts,
      [&](std::int64_t k) { return decode_part(plan, records[static_cast<std::size_t>(k)]); },
      [&](RunData& data) { put_counts(plan, total, data); });
  const MergedRun merged = merge_shards(shard_dirs, "sgdwalk merge");
  ASSERT_TRUE(combined.outcome.complete);
  EXPECT_TRUE(combined.outcome.data.tallies == merged.outcome.data.tallies);
  const ObservableArrays& a = combined.outcome.data.observables;
  const ObservableArrays& b = merged.outcome.data.observables;
  EXPECT_EQ(a.sample_flat, b.sample_flat);
  EXPECT_EQ(a.sample_finite, b.sample_finite);
  EXPECT_EQ(a.histogram_counts, b.histogram_counts);
  bool diverged = false;
  for (const auto& t : merged.outcome.data.tallies.variants) diverged |= t.first_nonfinite_step > 0;
  EXPECT_TRUE(diverged) << "the case should have non-finite walkers";
  fs::create_directories(dir / "combined");
  write_run_outputs(combined.plan, combined.outcome, merged.record, (dir / "combined").string());
  testing::expect_same_h5(dir / "single" / "results.h5", dir / "combined" / "results.h5");

  // A message cut short, or with bytes left over, is refused naming the rank that sent it.
  auto error_of = [&](const std::function<void()>& step) {
    try {
      step();
    } catch (const std::runtime_error& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  const std::string& one = messages[1];
  expect_contains(error_of([&] { index_parts(plan, one.substr(0, one.size() - 3), 1); }),
                  "the results rank 1 sent are corrupt");
  PartRecord padded = index_parts(plan, one, 1).front();
  const std::string longer = std::string(padded.partials) + "x";
  padded.partials = longer;
  expect_contains(error_of([&] { decode_part(plan, padded); }), "has bytes left over");
}

TEST(Shards, AStoppedShardResumesAndMergesToTheSameResults) {
  const std::string text = config_text("two_valley", "hessian", "double", 31);
  const fs::path dir = scratch("stopped");
  run_single(text, dir / "single");
  const RunPlan plan = load_config_text(text, "shards.toml");
  run_shard(text, {0, 2}, dir / "a");
  {
    auto backend = make_cpu_backend(2);
    RunRecord record = record_for(text);
    record.shard = PartId{1, 2};
    SessionOptions options = options_for(10, 17);
    int segments = 0;
    options.execute.on_segment = [&](const RunProgress&, const SegmentData&) {
      return ++segments < 9;
    };
    const SessionResult stopped =
        run_in_directory(plan, *backend, record, (dir / "b").string(), options);
    ASSERT_FALSE(stopped.outcome.complete);
    EXPECT_TRUE(fs::exists(dir / "b" / kCheckpointFileName));
    EXPECT_FALSE(fs::exists(dir / "b" / kTalliesFileName));
    EXPECT_TRUE(read_json(dir / "b" / "summary.json")["partial"].get<bool>());
  }
  // Merging an unfinished shard is refused, naming it and how to continue it.
  try {
    merge_shards({(dir / "a").string(), (dir / "b").string()}, "sgdwalk merge");
    ADD_FAILURE() << "an unfinished shard was merged";
  } catch (const RunDirectoryError& error) {
    expect_contains(error.what(), "shard 1/2 in '" + (dir / "b").string() + "' is not finished");
    expect_contains(error.what(), "sgdwalk resume " + (dir / "b").string());
  }
  // A checkpoint is only continued as the part it was written for (93 walkers: parts [0, 46) and
  // [46, 93)).
  fs::copy(dir / "b", dir / "relabelled", fs::copy_options::recursive);
  Json relabelled = read_json(dir / "relabelled" / "summary.json");
  relabelled["shard"]["index"] = 0;
  testing::write_bytes(dir / "relabelled" / "summary.json", relabelled.dump());
  try {
    load_resume_point((dir / "relabelled").string());
    ADD_FAILURE() << "a checkpoint of part 1/2 was accepted as part 0/2";
  } catch (const CheckpointError& error) {
    expect_contains(error.what(), "holds walkers [46, 93), but ");
    expect_contains(error.what(), "says the run covers walkers [0, 46)");
  }
  ResumePoint point = load_resume_point((dir / "b").string());
  ASSERT_TRUE(point.record.shard.has_value());
  auto backend = make_cpu_backend(1);
  const SessionResult resumed =
      resume_in_directory(std::move(point), *backend, (dir / "b").string(), options_for(0, 0));
  ASSERT_TRUE(resumed.outcome.complete);
  merge_into_directory({(dir / "a").string(), (dir / "b").string()}, (dir / "merged").string(),
                       false, "sgdwalk merge");
  testing::expect_same_h5(dir / "single" / "results.h5", dir / "merged" / "results.h5");
  // Not even with force into a directory where another sgdwalk process is at work: its
  // checkpoint stays.
  fs::create_directories(dir / "busy");
  testing::write_bytes(dir / "busy" / kCheckpointFileName, "another run's checkpoint");
  {
    const RunDirectoryLock other_process((dir / "busy").string());
    try {
      merge_into_directory({(dir / "a").string(), (dir / "b").string()}, (dir / "busy").string(),
                           true, "sgdwalk merge --force");
      ADD_FAILURE() << "merged into a directory in use";
    } catch (const RunDirectoryError& error) {
      expect_contains(error.what(), "another sgdwalk process is running or resuming");
    }
  }
  EXPECT_EQ(testing::read_bytes(dir / "busy" / kCheckpointFileName), "another run's checkpoint");
  EXPECT_FALSE(fs::exists(dir / "busy" / "results.h5"));
}

TEST(Shards, TheComparisonSeesADifferentRun) {
  // The helpers above must be able to fail: another seed gives other datasets.
  const fs::path dir = scratch("different");
  const std::string text = config_text("two_valley", "hessian", "double", 9);
  run_single(text, dir / "a");
  std::string other = text;
  other.replace(other.find("seed = 77"), 9, "seed = 78");
  run_single(other, dir / "b");
  const auto a = testing::h5_items(dir / "a" / "results.h5");
  const auto b = testing::h5_items(dir / "b" / "results.h5");
  EXPECT_EQ(a.size(), b.size());
  EXPECT_FALSE(a.at("/walkers/position") == b.at("/walkers/position"));
  EXPECT_FALSE(a.at("/@config") == b.at("/@config"));
  EXPECT_TRUE(a.at("/parameters/learning_rate") == b.at("/parameters/learning_rate"));
  EXPECT_NE(testing::comparable_summary(read_json(dir / "a" / "summary.json")),
            testing::comparable_summary(read_json(dir / "b" / "summary.json")));
}

// ---- Through the CLI: refusals ------------------------------------------------------------------

// ---- Per-walker files: what merge and resume refuse, and format 1 -------------------------------

/// Walker files as io/walker_store.hpp specifies them, written out here independently: a 64-byte
/// header (16-byte magic, format, byte-order mark, config hash, first walker, dim, state width,
/// record bytes, header hash), then records that end in an 8-byte checksum. Format 1 is the same
/// records without the checksum and no header.
constexpr std::size_t kHeaderBytes = 64;

std::string to_format_1(const std::string& format_2, std::size_t record) {
  std::string records;
  for (std::size_t at = kHeaderBytes; at + record <= format_2.size(); at += record) {
    records.append(format_2, at, record - 8);
  }
  return records;
}

/// Merges shards s0 and s1 of `dir` into `dir`/out and returns the error; fails if it merged.
std::string merge_error(const fs::path& dir) {
  fs::remove_all(dir / "out");
  try {
    merge_into_directory({(dir / "s0").string(), (dir / "s1").string()}, (dir / "out").string(),
                         false, "sgdwalk merge");
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  ADD_FAILURE() << "the shards were merged";
  return "";
}

TEST(WalkerFiles, DamagedMovedAndForeignFilesAreRefusedNamingTheFile) {
  // Each record carries a checksum of its bytes, its walker index and the run's config hash, and
  // the header names the run and the first walker: a flipped byte anywhere, a shard's file copied
  // over another's or another run's file stops the merge (and a resume), with the file named,
  // instead of reaching results.h5.
  const fs::path dir = scratch("damaged_walkers");
  const std::string text = config_text("double_well", "isotropic", "double", 11);
  run_shard(text, {0, 2}, dir / "s0");
  run_shard(text, {1, 2}, dir / "s1");
  // The same part of another run (another seed).
  std::string other_seed = text;
  other_seed.replace(other_seed.find("seed = 77"), 9, "seed = 78");
  run_shard(other_seed, {1, 2}, dir / "other");
  const RunPlan plan = load_config_text(text, "shards.toml");
  const WalkerRange part_1 = part_walkers(plan, {1, 2});
  const fs::path file = dir / "s1" / kWalkerFileName;
  const std::string good = testing::read_bytes(file);
  const std::size_t record = 8 + 8 + 3 * 8 + 4 + 4 + 8;  // dim 1, SGD
  ASSERT_EQ(static_cast<std::int64_t>(record), walker_record_bytes(1, 0));
  ASSERT_EQ(good.size(), kHeaderBytes + static_cast<std::size_t>(part_1.size()) * record);
  ASSERT_EQ(good.substr(0, 16), std::string("sgdwalk walkers\n"));
  merge_into_directory({(dir / "s0").string(), (dir / "s1").string()}, (dir / "out").string(),
                       false, "sgdwalk merge");

  const auto with_byte = [&](std::size_t at, char value) {
    std::string bytes = good;
    bytes[at] = value;
    return bytes;
  };
  const std::string walker_3 = fmt::format("{}: walker {}: ", file.string(), part_1.begin + 3);
  struct Damage {
    std::string what, bytes, message;
  };
  const std::size_t record_3 = kHeaderBytes + 3 * record;
  const std::vector<Damage> damages = {
      {"a bit of a position", with_byte(record_3 + 2, static_cast<char>(good[record_3 + 2] ^ 4)),
       walker_3 + "the record's checksum does not match"},
      {"y_freeze", with_byte(record_3 + 8 + 7, '\x7f'), walker_3 + "the record's checksum"},
      {"a crossing count", with_byte(record_3 + 44, '\xff'), walker_3 + "the record's checksum"},
      {"the checksum itself", with_byte(record_3 + record - 1, '\x01'),
       walker_3 + "the record's checksum"},
      {"two records swapped",
       good.substr(0, kHeaderBytes + record) + good.substr(kHeaderBytes + 2 * record, record) +
           good.substr(kHeaderBytes + record, record) + good.substr(kHeaderBytes + 3 * record),
       fmt::format("{}: walker {}: the record's checksum", file.string(), part_1.begin + 1)},
      {"the header's dim", with_byte(40, '\x02'),
       file.string() + ": the per-walker file's header is damaged"},
      {"a byte of the magic", with_byte(3, 'W'),
       file.string() + ": the per-walker file's header is damaged"},
      {"shard 0's file", testing::read_bytes(dir / "s0" / kWalkerFileName),
       fmt::format("{}: the per-walker file holds walkers from 0 on, but this part's walkers start "
                   "at {}: it is another shard's file",
                   file.string(), part_1.begin)},
      {"another run's file", testing::read_bytes(dir / "other" / kWalkerFileName),
       file.string() + ": the per-walker file belongs to another run (config hash "},
      {"a truncated file", good.substr(0, good.size() - 1),
       file.string() + ": the per-walker file is shorter than the " +
           std::to_string(part_1.size()) + " finished walkers"},
  };
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.what);
    ASSERT_NE(damage.bytes, good);
    testing::write_bytes(file, damage.bytes);
    expect_contains(merge_error(dir), damage.message);
    // Nothing left behind that would make the repaired merge need --force (a config.toml alone
    // once did).
    EXPECT_FALSE(fs::exists(dir / "out")) << "the failed merge left its output directory";
  }
  testing::write_bytes(file, good);
}

TEST(WalkerFiles, Format1FilesAreMergedAndConvertedWhenARunResumesIntoThem) {
  // Run directories of an sgdwalk before format 2 hold header-less records without checksums:
  // merges read them (with the tracker checks), and a resume converts them, with the same
  // results as a single run.
  const std::string text = config_text("two_valley", "hessian", "double", 31);
  const RunPlan plan = load_config_text(text, "shards.toml");
  const std::size_t record = 8 * 2 + 8 + 3 * 8 + 4 + 4 + 8;
  const fs::path dir = scratch("format_1");
  run_single(text, dir / "single");
  run_shard(text, {0, 2}, dir / "s0");
  run_shard(text, {1, 2}, dir / "s1");
  for (const char* shard : {"s0", "s1"}) {
    const fs::path file = dir / shard / kWalkerFileName;
    testing::write_bytes(file, to_format_1(testing::read_bytes(file), record));
  }
  merge_into_directory({(dir / "s0").string(), (dir / "s1").string()}, (dir / "out").string(),
                       false, "sgdwalk merge");
  testing::expect_same_h5(dir / "single" / "results.h5", dir / "out" / "results.h5");

  // Format 1 has no checksum; impossible trackers (2^32 − 1 crossings in 240 steps, as a flipped
  // byte leaves them) are still refused.
  const fs::path file_1 = dir / "s1" / kWalkerFileName;
  const std::string format_1 = testing::read_bytes(file_1);
  std::string damaged = format_1;
  for (int i = 0; i < 4; ++i) damaged[3 * (record - 8) + 52 + static_cast<std::size_t>(i)] = '\xff';
  testing::write_bytes(file_1, damaged);
  const std::string error = merge_error(dir);
  expect_contains(error, fmt::format("{}: walker {} holds trackers", file_1.string(),
                                     part_walkers(plan, {1, 2}).begin + 3));
  expect_contains(error, "crossings 4294967295");
  testing::write_bytes(file_1, format_1);

  // A stopped run whose walker file is of format 1 resumes into format 2.
  {
    auto backend = make_cpu_backend(2);
    SessionOptions options = options_for(10, 17);
    int segments = 0;
    options.execute.on_segment = [&](const RunProgress&, const SegmentData&) {
      return ++segments < 24;  // batches of 10 walkers, 15 segments each: one batch finished
    };
    ASSERT_FALSE(
        run_in_directory(plan, *backend, record_for(text), (dir / "stopped").string(), options)
            .outcome.complete);
  }
  const fs::path stopped_file = dir / "stopped" / kWalkerFileName;
  const std::string before = testing::read_bytes(stopped_file);
  const std::int64_t finished =
      load_resume_point((dir / "stopped").string()).checkpoint.progress.walker_begin;
  ASSERT_GT(finished, 0);
  ASSERT_EQ(before.size(), kHeaderBytes + static_cast<std::size_t>(finished) * record);
  // Opened for appending (as a resume opens it), a format-1 copy becomes the format-2 file again.
  const fs::path copy = dir / "converted.bin";
  testing::write_bytes(copy, to_format_1(before, record));
  make_file_walker_store(plan, copy.string(), finished, 0);
  EXPECT_EQ(testing::read_bytes(copy), before);
  EXPECT_FALSE(fs::exists(copy.string() + ".format2.tmp"));
  // And the resume itself (the walker file is removed once results.h5 is written).
  testing::write_bytes(stopped_file, to_format_1(before, record));
  auto backend = make_cpu_backend(1);
  const SessionResult resumed =
      resume_in_directory(load_resume_point((dir / "stopped").string()), *backend,
                          (dir / "stopped").string(), options_for(0, 0));
  ASSERT_TRUE(resumed.outcome.complete);
  testing::expect_same_h5(dir / "single" / "results.h5", dir / "stopped" / "results.h5");
}

TEST(ShardsCli, MergeRefusesMissingDuplicatedForeignAndMismatchedShards) {
  const fs::path dir = scratch("cli");
  const std::string text = config_text("two_valley", "hessian", "double", 11);
  testing::write_bytes(dir / "c.toml", text);
  const std::string run = "run " + (dir / "c.toml").string() + " --backend cpu -q";
  auto shard = [&](const std::string& name, const std::string& flags) {
    const auto result = testing::run_cli(run + " --out " + (dir / name).string() + " " + flags);
    EXPECT_EQ(result.exit_code, 0) << result.output;
  };
  shard("s0", "--shard 0/3");
  shard("s1", "--shard 1/3");
  shard("s2", "--shard 2/3");
  shard("seed9", "--shard 1/3 --seed 9");
  shard("half", "--shard 1/2");
  shard("whole", "");
  auto merge = [&](const std::string& shards) {
    std::string arguments = "merge " + (dir / "out").string();
    std::istringstream names(shards);
    for (std::string name; names >> name;) arguments.append(" ").append((dir / name).string());
    return testing::run_cli(arguments);
  };
  const auto no_output = testing::run_cli("merge \"\" " + (dir / "s0").string() + " " +
                                          (dir / "s1").string() + " " + (dir / "s2").string());
  EXPECT_EQ(no_output.exit_code, 2) << no_output.output;
  expect_contains(no_output.output, "the output directory is empty; give a directory");
  const auto missing = merge("s0 s2");
  EXPECT_EQ(missing.exit_code, 2);
  expect_contains(missing.output, "1 of 3 shard(s) missing: 1/3 (walkers [11, 22))");
  expect_contains(missing.output, "--shard K/N --out DIR");
  const auto twice = merge("s0 s1 s1 s2");
  EXPECT_EQ(twice.exit_code, 2);
  expect_contains(twice.output, "shard 1/3 is given twice");
  const auto foreign = merge("s0 seed9 s2");
  EXPECT_EQ(foreign.exit_code, 2);
  expect_contains(foreign.output, "'" + (dir / "seed9").string() +
                                      "' (shard 1/3) is from another "
                                      "run than '" +
                                      (dir / "s0").string() + "'");
  expect_contains(foreign.output, "run.seed: 77 -> 9");
  const auto split = merge("s0 half s2");
  EXPECT_EQ(split.exit_code, 2);
  // Each split is named with its shards, so the odd one out is plain.
  expect_contains(split.output,
                  "the shards split the run into different numbers of parts (2 "
                  "part(s): '" +
                      (dir / "half").string() + "'; 3 part(s): '" + (dir / "s0").string() + "', '" +
                      (dir / "s2").string() + "')");
  const auto whole = merge("s0 whole s2");
  EXPECT_EQ(whole.exit_code, 2);
  expect_contains(whole.output, "is not a shard");
  const auto nothing = merge("nowhere");
  EXPECT_EQ(nothing.exit_code, 2);
  expect_contains(nothing.output, "is not a run directory");
  EXPECT_FALSE(fs::exists(dir / "out"));  // nothing written by a refused merge

  const auto good = merge("s2 s0 s1");
  EXPECT_EQ(good.exit_code, 0) << good.output;
  testing::expect_same_h5(dir / "whole" / "results.h5", dir / "out" / "results.h5");
  const auto again = merge("s2 s0 s1");
  EXPECT_EQ(again.exit_code, 2);
  expect_contains(again.output, "exists and is not empty");

  // Shards of different sgdwalk builds merge, with a warning (a walker's bits are guaranteed per
  // build), and merged_from names each shard's build.
  const std::string s2_summary = testing::read_bytes(dir / "s2" / "summary.json");
  Json other_build = read_json(dir / "s2" / "summary.json");
  other_build["sgdwalk"]["git_commit"] = "0123456789ab";
  testing::write_bytes(dir / "s2" / "summary.json", other_build.dump());
  const auto mixed =
      testing::run_cli("merge " + (dir / "mixed").string() + " " + (dir / "s0").string() + " " +
                       (dir / "s1").string() + " " + (dir / "s2").string());
  EXPECT_EQ(mixed.exit_code, 0) << mixed.output;
  expect_contains(mixed.output, "the shards were computed by 2 different sgdwalk builds");
  expect_contains(mixed.output, "(0123456789ab): shard(s) 2/3");
  const Json merged_from = read_json(dir / "mixed" / "summary.json")["merged_from"];
  EXPECT_NE(merged_from[2]["sgdwalk"].get<std::string>().find("(0123456789ab)"), std::string::npos)
      << merged_from.dump();
  testing::write_bytes(dir / "s2" / "summary.json", s2_summary);

  const auto bad_flag = testing::run_cli(run + " --shard 3/3 --out " + (dir / "x").string());
  EXPECT_EQ(bad_flag.exit_code, 2);
  expect_contains(bad_flag.output, "--shard 3/3: K = 3 is out of range; allowed: 0 to 2");

  // A shard of all walkers is still a shard: it says so, and writes no results.h5.
  const auto one = testing::run_cli("run " + (dir / "c.toml").string() +
                                    " --backend cpu --shard 0/1 --out " + (dir / "one").string());
  EXPECT_EQ(one.exit_code, 0) << one.output;
  expect_contains(one.output, "shard done: walkers [0, 33)");
  EXPECT_EQ(one.output.find("results.h5)"), std::string::npos) << one.output;
  EXPECT_FALSE(fs::exists(dir / "one" / "results.h5"));

  // A damaged shard's tallies: the merge says it cannot read it and how to redo it.
  std::string tallies = testing::read_bytes(dir / "s1" / kTalliesFileName);
  testing::write_bytes(dir / "s1" / kTalliesFileName, tallies.substr(0, tallies.size() / 2));
  const auto damaged = merge("s0 s1 s2");
  EXPECT_EQ(damaged.exit_code, 1) << damaged.output;
  expect_contains(damaged.output, "sgdwalk merge: cannot read a shard: ");
  expect_contains(damaged.output, "--shard K/N --out SHARD_DIR --force");
  EXPECT_EQ(damaged.output.find("cannot resume"), std::string::npos) << damaged.output;
}

TEST(ShardsCli, AShardWhoseTalliesCannotBeWrittenKeepsItsFinishedPart) {
  // A finished shard's tallies.bin that could not be written (a full disk) once lost the whole
  // part: no checkpoint was left, and resume computed it again. The finished part now goes to the
  // checkpoint, and resume writes the tallies from it.
  const fs::path dir = scratch("tallies_not_written");
  const std::string text = config_text("two_valley", "hessian", "double", 11);
  testing::write_bytes(dir / "c.toml", text);
  const std::string run = "run " + (dir / "c.toml").string() + " --backend cpu -q --out ";
  for (const char* part : {"0/2", "1/2"}) {
    ASSERT_EQ(testing::run_cli(run + (dir / ("s" + std::string(1, part[0]))).string() +
                               " --shard " + part)
                  .exit_code,
              0);
  }
  const auto failed = testing::run_cli_with_failed_write(
      run + (dir / "failed").string() + " --shard 1/2", "/tallies.bin.tmp", 1);
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  expect_contains(failed.output, "No space left on device");
  expect_contains(failed.output, "the finished part is kept in " +
                                     (dir / "failed" / kCheckpointFileName).string());
  EXPECT_FALSE(fs::exists(dir / "failed" / kTalliesFileName));
  const auto resumed = testing::run_cli("resume " + (dir / "failed").string() + " -q");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  ASSERT_TRUE(fs::exists(dir / "failed" / kTalliesFileName));
  // Merged with shard 0, the resumed part gives the undisturbed part's datasets.
  for (const char* part : {"s1", "failed"}) {
    const auto merged = testing::run_cli("merge " + (dir / (std::string("m_") + part)).string() +
                                         " " + (dir / "s0").string() + " " + (dir / part).string());
    ASSERT_EQ(merged.exit_code, 0) << merged.output;
  }
  const auto expected = testing::h5_items(dir / "m_s1" / "results.h5");
  const auto items = testing::h5_items(dir / "m_failed" / "results.h5");
  std::size_t compared = 0;
  for (const auto& [name, item] : expected) {
    if (name.find('@') != std::string::npos) continue;  // datasets only (attributes name paths)
    ASSERT_EQ(items.count(name), 1u) << name;
    EXPECT_TRUE(items.at(name) == item) << name;
    ++compared;
  }
  EXPECT_GT(compared, 20u);
}

}  // namespace
}  // namespace sgdwalk
