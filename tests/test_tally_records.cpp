// Tally records (include/sgdwalk/tally_records.hpp), the CUDA backend's on-device reduction: a
// batch encoded as records, reduced by key and decoded (host/analysis/tally_records.cpp) must give
// exactly the tallies of the host reduction (reduce_batch, reduce_samples), for values chosen to
// hit every corner of the encodings (signs, zeros, subnormals, infinities, NaN, huge and tiny
// exponents, walkers that diverged, every first-passage case). The device sorts with CUB instead of
// std::sort; both produce runs of equal keys, and their sums are integers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "analysis/statistics.hpp"
#include "analysis/tally_records.hpp"
#include "config/config.hpp"

namespace sgdwalk {
namespace {

RunPlan records_plan() {
  return load_config_text(R"(
[run]
walkers = 1500
steps = 100000
seed = 1
precision = "double"
[dynamics]
learning_rate = 0.05
noise_strength = 0.01
[observables]
sample_steps = [0, 10, 100000]
[observables.first_passage]
target = "flat"
[sweep]
noise_strength = [0.01, 0.02, 0.03]
)",
                          "records.toml");
}

/// Floats from every part of the range, NaN and infinities included.
float awkward_float(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pick(0, 11);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_int_distribution<std::uint32_t> bits;
  switch (pick(rng)) {
    case 0:
      return 0.0f;
    case 1:
      return -0.0f;
    case 2:
      return std::numeric_limits<float>::denorm_min() * static_cast<float>(bits(rng) % 1000);
    case 3:
      return std::numeric_limits<float>::infinity();
    case 4:
      return -std::numeric_limits<float>::infinity();
    case 5:
      return std::numeric_limits<float>::quiet_NaN();
    case 6:  // any finite bit pattern
      for (;;) {
        const float x = std::bit_cast<float>(bits(rng));
        if (std::isfinite(x)) return x;
      }
    case 7:  // ties: a handful of values
      return 0.25f * static_cast<float>(bits(rng) % 5);
    default:
      return normal(rng);
  }
}

double awkward_double(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pick(0, 7);
  std::normal_distribution<double> normal(5.0, 2.0);
  std::uniform_int_distribution<std::uint64_t> bits;
  switch (pick(rng)) {
    case 0:
      return 0.0;
    case 1:
      return -0.0;
    case 2:
      return std::numeric_limits<double>::denorm_min() * static_cast<double>(bits(rng) % 1000);
    case 3:  // any finite pattern, huge and tiny exponents included
      for (;;) {
        const double x = std::bit_cast<double>(bits(rng));
        if (std::isfinite(x)) return x;
      }
    default:
      return normal(rng);
  }
}

/// Random trackers and sample values in the batch arrays for walkers [first, last).
void fill_batch(const RunPlan& plan, RunData& data, std::int64_t first, std::int64_t last,
                std::mt19937_64& rng) {
  std::uniform_int_distribution<int> pick(0, 9);
  std::uniform_int_distribution<std::int64_t> step(0, plan.steps);
  std::uniform_int_distribution<std::uint32_t> small(0, 40);
  WalkerArrays& w = data.walkers;
  for (std::int64_t g = first; g < last; ++g) {
    const std::size_t k = w.at(g);
    w.nonfinite_step[k] = pick(rng) == 0 ? step(rng) : -1;
    w.basin[k] = pick(rng) < 6 ? kFlatBasin : 1 - kFlatBasin;
    w.freeze_step[k] = pick(rng) == 0 ? -1 : step(rng);
    w.y_freeze[k] = awkward_double(rng);
    w.crossings[k] = pick(rng) == 0 ? 0u : small(rng) << (pick(rng) * 2);
    const int passage = pick(rng);
    w.first_passage_step[k] = passage == 0 ? 0 : passage < 4 ? -1 : step(rng) + 1;
  }
  ObservableArrays& o = data.observables;
  for (std::int64_t s = 0; s < o.samples; ++s) {
    for (std::int64_t g = first; g < last; ++g) {
      const std::int64_t v = g / plan.walkers_per_variant;
      const std::size_t slot = o.sample_index(v, s, g - v * plan.walkers_per_variant);
      o.sample_progress[slot] = awkward_float(rng);
      o.sample_loss[slot] = awkward_float(rng);
    }
  }
}

/// The batch's trackers as records (shuffled: the device's order is arbitrary), reduced, decoded.
void add_trackers_through_records(const RunPlan& plan, const RunData& source, std::int64_t first,
                                  std::int64_t last, RunTallies& tallies, std::mt19937_64& rng) {
  const std::int64_t W = plan.walkers_per_variant;
  const std::int64_t v_begin = first / W;
  std::vector<tally::Record> records;
  std::vector<std::int64_t> first_nonfinite((last - 1) / W + 1 - v_begin, -1);
  const WalkerArrays& w = source.walkers;
  for (std::int64_t g = first; g < last; ++g) {
    const std::size_t k = w.at(g);
    tally::Record out[tally::kTrackerKinds];
    tally::tracker_records(static_cast<std::uint64_t>(g / W - v_begin), w.nonfinite_step[k],
                           w.basin[k], kFlatBasin, w.freeze_step[k], w.y_freeze[k], w.crossings[k],
                           plan.passage.kind != PassageKind::none, w.first_passage_step[k],
                           plan.steps, out);
    records.insert(records.end(), out, out + tally::kTrackerKinds);
    auto& min_step = first_nonfinite[static_cast<std::size_t>(g / W - v_begin)];
    if (w.nonfinite_step[k] >= 0 && (min_step < 0 || w.nonfinite_step[k] < min_step)) {
      min_step = w.nonfinite_step[k];
    }
  }
  std::shuffle(records.begin(), records.end(), rng);
  // Reduced in two slices, as the device does with large batches: a key may appear in both.
  const auto middle = records.begin() + static_cast<std::ptrdiff_t>(records.size() / 3);
  auto runs = reduce_records(std::vector<tally::Record>(records.begin(), middle));
  const auto more = reduce_records(std::vector<tally::Record>(middle, records.end()));
  runs.insert(runs.end(), more.begin(), more.end());
  add_tracker_runs(runs.data(), runs.size(), first, last, W, first_nonfinite, tallies);
}

void add_samples_through_records(const RunPlan& plan, const RunData& source, std::int64_t first,
                                 std::int64_t last, RunTallies& tallies, std::mt19937_64& rng) {
  const std::int64_t W = plan.walkers_per_variant;
  const std::int64_t v_begin = first / W;
  const ObservableArrays& o = source.observables;
  for (std::int64_t s = 0; s < o.samples; ++s) {
    std::vector<tally::Record> records;
    for (std::int64_t g = first; g < last; ++g) {
      const std::int64_t v = g / W;
      const std::size_t slot = o.sample_index(v, s, g - v * W);
      const auto local = static_cast<std::uint64_t>(v - v_begin);
      records.push_back(tally::sample_record(local, false, o.sample_progress[slot]));
      records.push_back(tally::sample_record(local, true, o.sample_loss[slot]));
    }
    std::shuffle(records.begin(), records.end(), rng);
    const auto middle = records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2);
    auto runs = reduce_records(std::vector<tally::Record>(records.begin(), middle));
    const auto more = reduce_records(std::vector<tally::Record>(middle, records.end()));
    runs.insert(runs.end(), more.begin(), more.end());
    add_sample_runs(runs.data(), runs.size(), v_begin, s, o.samples, tallies);
  }
}

TEST(TallyRecords, DecodedRunsEqualTheHostReductionExactly) {
  const RunPlan plan = records_plan();
  std::mt19937_64 rng(2026);
  RunData host, through_records;
  host.resize(plan);
  through_records.resize(plan);
  // Batches that straddle variant boundaries; the host reduction runs on 2 threads.
  const std::int64_t total = plan.total_walkers();
  for (const auto& [first, last] : std::vector<std::pair<std::int64_t, std::int64_t>>{
           {0, 1000}, {1000, 1700}, {1700, 3001}, {3001, total}}) {
    fill_batch(plan, host, first, last, rng);
    reduce_batch(plan, host, first, last, 2);
    reduce_samples(plan, host, first, last, 0, plan.sample_count(), 2);
    add_trackers_through_records(plan, host, first, last, through_records.tallies, rng);
    add_samples_through_records(plan, host, first, last, through_records.tallies, rng);
  }
  ASSERT_EQ(host.tallies.variants.size(), 3u);
  for (std::size_t v = 0; v < host.tallies.variants.size(); ++v) {
    SCOPED_TRACE("variant " + std::to_string(v));
    const VariantTally& a = host.tallies.variants[v];
    const VariantTally& b = through_records.tallies.variants[v];
    EXPECT_EQ(a.walkers, b.walkers);
    EXPECT_EQ(a.finite, b.finite);
    EXPECT_EQ(a.nonfinite, b.nonfinite);
    EXPECT_EQ(a.flat, b.flat);
    EXPECT_EQ(a.first_nonfinite_step, b.first_nonfinite_step);
    EXPECT_TRUE(a.freezing_time == b.freezing_time);
    EXPECT_TRUE(a.y_freeze == b.y_freeze);
    EXPECT_TRUE(a.crossings == b.crossings);
    EXPECT_EQ(a.started_in_target, b.started_in_target);
    EXPECT_EQ(a.arrived, b.arrived);
    EXPECT_EQ(a.censored, b.censored);
    EXPECT_TRUE(a.passage_steps == b.passage_steps);
    EXPECT_TRUE(a.exposure_steps == b.exposure_steps);
    EXPECT_EQ(a.freezing_time_histogram, b.freezing_time_histogram);
    EXPECT_EQ(a.crossings_histogram, b.crossings_histogram);
    EXPECT_EQ(a.passage_histogram, b.passage_histogram);
    EXPECT_TRUE(a.y_freeze_sketch == b.y_freeze_sketch);
    // The fixture must exercise what it claims to.
    EXPECT_GT(a.nonfinite, 0);
    EXPECT_GT(a.started_in_target, 0);
    EXPECT_GT(a.censored, 0);
  }
  EXPECT_TRUE(host.tallies == through_records.tallies);
  for (std::size_t i = 0; i < host.tallies.samples.size(); ++i) {
    const SampleTally& a = host.tallies.samples[i];
    EXPECT_GT(a.progress.positive_infinite, 0) << "sample tally " << i;
    EXPECT_TRUE(a == through_records.tallies.samples[i]) << "sample tally " << i;
  }
}

TEST(TallyRecords, SampleRunsOfASegmentThatContinuesInTheNextSliceStaySorted) {
  // The device reduces a large batch in slices of walkers, each slice's runs sorted by key, and
  // hands them over one after another. A variant whose walkers in the first slice all have a NaN
  // loss ends that slice with its progress runs, and the next slice starts with the same
  // segment: the two must not be read as one sorted group. Progress values 1, 3, 5: the median
  // is 3 (the sketch's buckets are exact for these), in whatever slices they come.
  const auto progress = [](float x) { return tally::sample_record(0, false, x); };
  const auto loss = [](float x) { return tally::sample_record(0, true, x); };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<tally::Record> first_slice = {progress(3.0f), loss(nan)};
  const std::vector<tally::Record> second_slice = {progress(1.0f), progress(5.0f), loss(2.0f),
                                                   loss(2.0f)};
  auto runs = reduce_records(first_slice);
  const auto more = reduce_records(second_slice);
  ASSERT_EQ(tally::key_segment(runs.back().key), tally::key_segment(more.front().key));
  ASSERT_GT(runs.back().key, more.front().key) << "the fixture must put the groups out of order";
  runs.insert(runs.end(), more.begin(), more.end());
  RunTallies sliced;
  sliced.variants.resize(1);
  sliced.samples.resize(1);
  add_sample_runs(runs.data(), runs.size(), 0, 0, 1, sliced);

  const SampleTally& tally = sliced.samples[0];
  EXPECT_EQ(tally.progress.count, 3);
  EXPECT_EQ(tally.loss.count, 2);
  const auto& entries = tally.progress_sketch.entries();
  ASSERT_EQ(entries.size(), 3u);
  for (std::size_t i = 1; i < entries.size(); ++i)
    EXPECT_LT(entries[i - 1].bucket, entries[i].bucket);
  // Each order statistic reads as its bucket's middle: within 2^-k relative of the value.
  const double tolerance = std::ldexp(1.0, -kSketchMantissaBits);
  EXPECT_NEAR(tally.progress_sketch.quantile(0.0), 1.0, 1.0 * tolerance);
  EXPECT_NEAR(tally.progress_sketch.quantile(0.5), 3.0, 3.0 * tolerance);
  EXPECT_NEAR(tally.progress_sketch.quantile(1.0), 5.0, 5.0 * tolerance);

  // And exactly what one reduction of all the records gives.
  std::vector<tally::Record> all = first_slice;
  all.insert(all.end(), second_slice.begin(), second_slice.end());
  const auto whole_runs = reduce_records(all);
  RunTallies whole;
  whole.variants.resize(1);
  whole.samples.resize(1);
  add_sample_runs(whole_runs.data(), whole_runs.size(), 0, 0, 1, whole);
  EXPECT_TRUE(sliced.samples[0] == whole.samples[0]);
}

TEST(TallyRecords, IntegerRecordsCoverNegativeAndLargeValues) {
  // bucket = sign << 7 | bit_width(|x|), low = |x| − 2^(width − 1).
  for (const std::int64_t x : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{5},
                               std::int64_t{-6}, tally::kIntegerLimit - 1}) {
    const tally::Record r = tally::integer_record(3, x);
    EXPECT_EQ(tally::key_segment(r.key), 3u);
    const auto bucket = tally::key_bucket(r.key);
    const int width = static_cast<int>(bucket & 127u);
    const std::uint64_t magnitude = x < 0 ? static_cast<std::uint64_t>(-x) : x;
    EXPECT_EQ((bucket & 128u) != 0, x < 0);
    EXPECT_EQ(width == 0 ? 0 : (std::uint64_t{1} << (width - 1)) + r.low, magnitude) << x;
  }
  EXPECT_EQ(tally::sample_record(0, false, std::numeric_limits<float>::quiet_NaN()).key,
            tally::kNoRecord);
}

}  // namespace
}  // namespace sgdwalk
