// The streamed statistics' accumulators (host/analysis/exact_stats.hpp) against independent
// references: exact sums against 128-bit integer fixed point, moments against two-pass long double,
// sketch quantiles against exact order statistics (nth_element) within the documented bound, and a
// run's reported statistics against the same references applied to all its walkers.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "analysis/exact_stats.hpp"
#include "analysis/statistics.hpp"
#include "backend/backend.hpp"
#include "config/config.hpp"
#include "run/run_session.hpp"
#include "test_ensemble.hpp"
#include "test_files.hpp"

namespace sgdwalk {
namespace {

__extension__ typedef __int128 Int128;

/// The documented bound on a sketch order statistic: 2^-(k+1) · max(|x|, 2^-125).
double order_statistic_bound(double x) {
  return std::ldexp(std::max(std::fabs(x), std::ldexp(1.0, -125)), -(kSketchMantissaBits + 1));
}

/// Floats with magnitudes in [2^-10, 2^10) and random signs: x·2^33 and x²·2^66 are integers, so
/// their sums are exact in 128-bit integers (an independent exact reference).
std::vector<float> bounded_floats(std::mt19937_64& rng, std::size_t n) {
  std::uniform_real_distribution<double> exponent(-10, 10);
  std::bernoulli_distribution negative(0.4);
  std::vector<float> values(n);
  for (auto& x : values) {
    x = static_cast<float>(std::exp2(exponent(rng)));
    if (negative(rng)) x = -x;
  }
  return values;
}

double rounded(Int128 scaled, int scale) {
  // Int128 -> double is correctly rounded; the scaling by a power of two is exact.
  return std::ldexp(static_cast<double>(scaled), -scale);
}

TEST(FixedSum, FloatSumsAndSquaresAreExactAndCorrectlyRounded) {
  std::mt19937_64 rng(7);
  const std::vector<float> values = bounded_floats(rng, 100000);
  NarrowSum sum, squares;
  Int128 ref_sum = 0, ref_squares = 0;
  for (const float x : values) {
    sum.add_float(x);
    squares.add_float_square(x);
    const auto scaled = static_cast<Int128>(std::ldexp(static_cast<double>(x), 33));
    ref_sum += scaled;
    ref_squares += scaled * scaled;  // x² · 2^66
  }
  EXPECT_EQ(std::bit_cast<std::uint64_t>(sum.to_double()),
            std::bit_cast<std::uint64_t>(rounded(ref_sum, 33)));
  EXPECT_EQ(std::bit_cast<std::uint64_t>(squares.to_double()),
            std::bit_cast<std::uint64_t>(rounded(ref_squares, 66)));
}

TEST(FixedSum, MergingInAnyOrderAndSplitGivesTheSameState) {
  std::mt19937_64 rng(11);
  std::vector<float> values = bounded_floats(rng, 20000);
  values.push_back(3e38f);
  values.push_back(-3e38f);
  values.push_back(1e-45f);  // subnormal
  NarrowSum whole;
  for (const float x : values) whole.add_float(x);
  for (const std::size_t parts : {2u, 7u, 1000u}) {
    std::vector<NarrowSum> pieces(parts);
    for (std::size_t i = 0; i < values.size(); ++i) pieces[(i * 31) % parts].add_float(values[i]);
    NarrowSum forward, backward;
    for (std::size_t i = 0; i < parts; ++i) forward.merge(pieces[i]);
    for (std::size_t i = parts; i-- > 0;) backward.merge(pieces[i]);
    EXPECT_TRUE(forward == whole);
    EXPECT_TRUE(backward == whole);
    EXPECT_EQ(forward.to_double(), whole.to_double());
  }
  // The huge values cancel exactly; the subnormal survives.
  NarrowSum tiny;
  tiny.add_float(3e38f);
  tiny.add_float(1e-45f);
  tiny.add_float(-3e38f);
  EXPECT_EQ(tiny.to_double(), static_cast<double>(1e-45f));
}

TEST(FixedSum, DoublesIntegersAndNegativeTotals) {
  WideSum wide;
  wide.add_double(1e300);
  wide.add_double(1.0);
  wide.add_double(-1e300);
  wide.add_double(std::ldexp(1.0, -1074));
  double hi = 0, lo = 0;
  wide.to_double_double(hi, lo);
  EXPECT_EQ(hi, 1.0);
  EXPECT_EQ(lo, std::ldexp(1.0, -1074));
  WideSum square;
  square.add_double_square(1e200);  // 1e400 is beyond double, not beyond the accumulator
  square.add_double_square(-1e200);
  EXPECT_TRUE(std::isinf(square.to_double()));
  NarrowSum integers;
  for (std::int64_t i = -1000; i < 10; ++i) integers.add_integer(i);
  EXPECT_EQ(integers.to_double(), -500455.0);
  NarrowSum big;
  big.add_integer_square(std::int64_t{1} << 50);
  big.add_integer_square(3);
  EXPECT_EQ(big.to_double(), std::ldexp(1.0, 100));  // + 9 is below the rounding
  double h = 0, l = 0;
  big.to_double_double(h, l);
  EXPECT_EQ(l, 9.0);
}

TEST(Moments, MeanAndSpreadMatchTwoPassLongDouble) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(1000.0, 0.01);  // cancellation-prone: mean >> spread
  std::vector<float> values(50000);
  for (auto& x : values) x = static_cast<float>(normal(rng));
  Moments<NarrowSum> m;
  for (const float x : values) m.add_float(x);
  long double mean = 0, m2 = 0;
  for (const float x : values) mean += x;
  mean /= static_cast<long double>(values.size());
  for (const float x : values) m2 += (x - mean) * (x - mean);
  const auto n = static_cast<long double>(values.size());
  const MomentResult r = m.result();
  EXPECT_EQ(r.count, 50000);
  EXPECT_NEAR(r.mean, static_cast<double>(mean), 1e-15 * 1000);
  const double std_dev = static_cast<double>(std::sqrt(m2 / (n - 1)));
  EXPECT_NEAR(r.std_dev, std_dev, 1e-12 * std_dev);
  EXPECT_NEAR(r.standard_error, std_dev / std::sqrt(50000.0), 1e-12 * std_dev);

  Moments<NarrowSum> one;
  one.add_float(2.5f);
  EXPECT_EQ(one.result().mean, 2.5);
  EXPECT_TRUE(std::isnan(one.result().std_dev));
  Moments<NarrowSum> infinite;
  infinite.add_float(1.0f);
  infinite.add_float(std::numeric_limits<float>::infinity());
  EXPECT_EQ(infinite.result().mean, std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(Moments<NarrowSum>{}.result().mean));
}

TEST(QuantileSketch, BucketsPreserveOrderAndStandForTheirValues) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::uint32_t> bits;
  for (int i = 0; i < 100000; ++i) {
    const float a = std::bit_cast<float>(bits(rng)), b = std::bit_cast<float>(bits(rng));
    if (std::isnan(a) || std::isnan(b)) continue;
    if (a < b) {
      EXPECT_LE(QuantileSketch::bucket_of(a), QuantileSketch::bucket_of(b));
    }
    if (std::isfinite(a)) {
      const double value = QuantileSketch::bucket_value(QuantileSketch::bucket_of(a));
      EXPECT_LE(std::fabs(value - a), order_statistic_bound(a)) << a;
    }
  }
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(QuantileSketch::bucket_value(QuantileSketch::bucket_of(inf)), inf);
  EXPECT_EQ(QuantileSketch::bucket_value(QuantileSketch::bucket_of(-inf)), -inf);
  EXPECT_EQ(QuantileSketch::bucket_value(QuantileSketch::bucket_of(0.0f)), 0.0);
}

/// Sketch quantiles of `values` against exact ones (nth_element) within the documented bound.
void expect_quantiles_within_bound(std::vector<float> values) {
  QuantileSketch sketch;
  std::vector<std::uint32_t> buckets;
  for (const float x : values) buckets.push_back(QuantileSketch::bucket_of(x));
  // Merged from uneven pieces, as batches would be.
  for (std::size_t lo = 0; lo < buckets.size();) {
    const std::size_t hi = std::min(buckets.size(), lo + 1 + lo / 3);
    std::vector<std::uint32_t> piece(buckets.begin() + static_cast<std::ptrdiff_t>(lo),
                                     buckets.begin() + static_cast<std::ptrdiff_t>(hi));
    sketch.merge_sorted(count_buckets(piece));
    lo = hi;
  }
  std::vector<float> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (const double level : {0.0, 0.01, 0.05, 0.25, 0.5, 0.731, 0.95, 0.99, 1.0}) {
    std::vector<float> scratch = values;
    const double exact = quantile(scratch, level);
    const double position = level * static_cast<double>(sorted.size() - 1);
    const auto lower = static_cast<std::size_t>(std::floor(position));
    const double a = sorted[lower], b = sorted[std::min(lower + 1, sorted.size() - 1)];
    const double bound = std::max(order_statistic_bound(a), order_statistic_bound(b));
    EXPECT_LE(std::fabs(sketch.quantile(level) - exact), bound * (1 + 1e-12))
        << "level " << level << ": exact " << exact << ", sketch " << sketch.quantile(level);
  }
}

TEST(QuantileSketch, QuantilesWithinTheStatedBoundOfExactOnes) {
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::lognormal_distribution<double> lognormal(0.0, 3.0);
  std::uniform_int_distribution<int> few(-3, 3);
  for (const std::size_t n : {1u, 2u, 5u, 1000u, 100001u}) {
    SCOPED_TRACE(n);
    std::vector<float> gaussian(n), heavy(n), ties(n);
    for (std::size_t i = 0; i < n; ++i) {
      gaussian[i] = static_cast<float>(normal(rng));
      heavy[i] = static_cast<float>(lognormal(rng)) * (i % 3 == 0 ? -1.0f : 1.0f);
      ties[i] = static_cast<float>(few(rng)) * 0.1f;
    }
    expect_quantiles_within_bound(gaussian);
    expect_quantiles_within_bound(heavy);
    expect_quantiles_within_bound(ties);
  }
  EXPECT_TRUE(std::isnan(QuantileSketch{}.quantile(0.5)));
}

TEST(PoissonInterval, GarwoodEndsMatchAnIndependentImplementationUpTo1e12Events) {
  // The exact (Garwood) 95 % interval [P⁻¹(k, 0.025), P⁻¹(k + 1, 0.975)] of a Poisson mean given k
  // events: the ends from scipy 1.10's gammaincinv (Boost's, checked against mpmath at 40 digits
  // up to k = 10⁶; its residuals in P stay below 4e-12 here). The series once stopped after 10⁴
  // terms: from ~10⁷ events the lower end came out too high (6 % of the half-width at 3·10⁸).
  struct Reference {
    std::int64_t events;
    double low, high;
  };
  const Reference references[] = {
      {0, 0.0, 3.6888794541139354},
      {1, 0.025317807984289876, 5.571643390938898},
      {10, 4.7953886961324335, 18.39035604201778},
      {1000, 938.9730184076952, 1063.952136016302},
      {1000000, 998040.9833402939, 1001961.9119454322},
      {10000000, 9993802.996884268, 10006199.897731498},
      {100000000, 99980401.30732474, 100019601.58707914},
      {300000000, 299966053.3751406, 300033949.5192219},
      {1000000000, 999938021.4439279, 1000061981.4504089},
      {4000000000, 3999876041.940695, 4000123960.9536266},
      {10000000000, 9999804004.5487, 10000195998.345615},
      {1000000000000, 999998040036.9626, 1000001959965.9316},
  };
  for (const Reference& reference : references) {
    double low = 0, high = 0;
    poisson_interval(reference.events, 0.95, low, high);
    // Within 1e-9 of the interval's width (the reference's own error is below 1e-11 of it).
    const double tolerance = 1e-9 * (reference.high - reference.low);
    EXPECT_NEAR(low, reference.low, tolerance) << reference.events << " events";
    EXPECT_NEAR(high, reference.high, tolerance) << reference.events << " events";
  }
  // The chi-square quantiles of the physics tests' goodness-of-fit (scipy's chi2.ppf).
  EXPECT_NEAR(chi_square_quantile(1, 0.999), 10.827566170662733, 1e-9);
  EXPECT_NEAR(chi_square_quantile(39, 0.999), 72.0546629519878, 1e-9);
}

TEST(StreamedStatistics, RunSummariesMatchReferencesOverEveryWalker) {
  const RunPlan plan = load_config_text(R"(
[run]
walkers = 3001
steps = 200
seed = 5
precision = "float"
[dynamics]
learning_rate = 0.05
noise_strength = 0.2
[init]
positions = [[-0.01, 5.0], [0.01, 5.0]]
[observables]
sample_steps = [0, 50, 200]
[observables.first_passage]
target = "flat"
[sweep]
noise_strength = [0.05, 0.3]
)",
                                        "streamed.toml");
  auto backend = make_cpu_backend(2);
  ExecuteOptions options;
  options.batch_walkers = 1234;  // batches straddle the variant boundary
  const RunOutcome outcome = testing::execute_all(plan, *backend, options);
  ASSERT_TRUE(outcome.complete);
  const RunData& all = outcome.data;
  const auto summaries = summarize(plan, all);
  const std::int64_t W = plan.walkers_per_variant;
  for (std::int64_t v = 0; v < plan.variant_count(); ++v) {
    SCOPED_TRACE("variant " + std::to_string(v));
    const VariantSummary& s = summaries[static_cast<std::size_t>(v)];
    long double freezing = 0, y_freeze = 0, crossings = 0;
    std::int64_t finite = 0, arrived = 0;
    long double passage = 0, exposure = 0;
    for (std::int64_t w = 0; w < W; ++w) {
      const auto g = static_cast<std::size_t>(v * W + w);
      if (all.walkers.nonfinite_step[g] < 0) {
        ++finite;
        freezing += all.walkers.freeze_step[g] + 1;
        y_freeze += all.walkers.y_freeze[g];
        crossings += all.walkers.crossings[g];
      }
      const std::int64_t arrival = all.walkers.first_passage_step[g];
      if (arrival > 0) {
        ++arrived;
        passage += arrival;
        exposure += arrival;
      } else if (arrival < 0) {
        exposure += plan.steps;
      }
    }
    EXPECT_EQ(s.finite_walkers, finite);
    EXPECT_NEAR(s.freezing_time.mean, static_cast<double>(freezing / finite),
                1e-14 * s.freezing_time.mean);
    EXPECT_NEAR(s.y_freeze.mean, static_cast<double>(y_freeze / finite), 1e-14 * s.y_freeze.mean);
    EXPECT_NEAR(s.crossings.mean, static_cast<double>(crossings / finite), 1e-14);
    EXPECT_EQ(s.passage.arrived, arrived);
    if (arrived > 0) {
      EXPECT_NEAR(s.passage.steps.mean, static_cast<double>(passage / arrived),
                  1e-14 * s.passage.steps.mean);
    }
    // The tracker histograms, exactly.
    const VariantTally& tally = all.tallies.variants[static_cast<std::size_t>(v)];
    Log2Histogram freezing_bins{}, crossing_bins{}, passage_bins{};
    std::vector<std::uint32_t> y_buckets;
    for (std::int64_t w = 0; w < W; ++w) {
      const auto g = static_cast<std::size_t>(v * W + w);
      if (all.walkers.nonfinite_step[g] < 0) {
        const std::int64_t t_f = all.walkers.freeze_step[g] + 1;
        std::size_t b = 0;
        while (b < 63 && (std::int64_t{1} << b) <= t_f) ++b;  // t_f in [2^(b-1), 2^b)
        ++freezing_bins[b];
        const std::uint32_t c = all.walkers.crossings[g];
        ++crossing_bins[c == 0 ? 0 : static_cast<std::size_t>(std::floor(std::log2(c))) + 1];
        y_buckets.push_back(QuantileSketch::bucket_of(static_cast<float>(all.walkers.y_freeze[g])));
      }
      const std::int64_t arrival = all.walkers.first_passage_step[g];
      if (arrival > 0) {
        ++passage_bins[static_cast<std::size_t>(std::floor(std::log2(double(arrival)))) + 1];
      }
    }
    EXPECT_EQ(tally.freezing_time_histogram, freezing_bins);
    EXPECT_EQ(tally.crossings_histogram, crossing_bins);
    EXPECT_EQ(tally.passage_histogram, passage_bins);
    EXPECT_TRUE(tally.y_freeze_sketch.entries() == count_buckets(y_buckets));
    EXPECT_EQ(s.passage.exposure_time, plan.variants[static_cast<std::size_t>(v)].learning_rate *
                                           static_cast<double>(exposure));
    for (std::int64_t k = 0; k < plan.sample_count(); ++k) {
      SCOPED_TRACE("sample " + std::to_string(k));
      const SampleSummary& sample = s.samples[static_cast<std::size_t>(k)];
      for (const bool loss : {false, true}) {
        std::vector<float> values;
        for (std::int64_t w = 0; w < W; ++w) {
          const float x =
              (loss ? all.observables.sample_loss
                    : all.observables.sample_progress)[all.observables.sample_index(v, k, w)];
          if (!std::isnan(x)) values.push_back(x);
        }
        long double mean = 0;
        for (const float x : values) mean += x;
        mean /= static_cast<long double>(values.size());
        const double reported = loss ? sample.loss_mean : sample.progress_mean;
        EXPECT_NEAR(reported, static_cast<double>(mean), 1e-14 * std::fabs(reported));
        const auto& quantiles = loss ? sample.loss_quantiles : sample.progress_quantiles;
        std::vector<float> sorted = values;
        std::sort(sorted.begin(), sorted.end());
        for (std::size_t q = 0; q < plan.quantiles.size(); ++q) {
          std::vector<float> scratch = values;
          const double exact = quantile(scratch, plan.quantiles[q]);
          const double position = plan.quantiles[q] * static_cast<double>(sorted.size() - 1);
          const auto lower = static_cast<std::size_t>(std::floor(position));
          const double bound =
              std::max(order_statistic_bound(sorted[lower]),
                       order_statistic_bound(sorted[std::min(lower + 1, sorted.size() - 1)]));
          EXPECT_LE(std::fabs(quantiles[q] - exact), bound * (1 + 1e-12));
          // At the start every walker is at y = 5: each quantile is 5 itself, not the midpoint
          // of its sketch bucket.
          if (plan.sample_steps[static_cast<std::size_t>(k)] == 0 && !loss) {
            EXPECT_EQ(quantiles[q], 5.0);
          }
        }
      }
    }
  }
}

TEST(StreamedStatistics, DenseAndSortedBucketCountsAgree) {
  // Batches of 40000 walkers per variant count sketch buckets in the dense per-thread array,
  // batches of 999 by sorting: the same tallies, bit for bit.
  const RunPlan plan = load_config_text(R"(
[run]
walkers = 40000
steps = 20
seed = 3
precision = "float"
[dynamics]
learning_rate = 0.1
noise_strength = 0.2
[observables]
sample_steps = [0, 7, 20]
[sweep]
noise_strength = [0.1, 0.3]
)",
                                        "dense.toml");
  auto backend = make_cpu_backend(2);
  ExecuteOptions whole, small;
  whole.batch_walkers = 80000;
  small.batch_walkers = 999;
  const RunOutcome a = execute(plan, *backend, whole);
  const RunOutcome b = execute(plan, *backend, small);
  EXPECT_TRUE(a.data.tallies == b.data.tallies);
  EXPECT_GT(a.data.tallies.samples.back().progress_sketch.entries().size(), 20u);
}

template <class T>
std::vector<T> read_dataset(const std::string& file, const std::string& name, hid_t type) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  std::vector<T> values(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
  if (!values.empty()) H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return values;
}

TEST(StreamedStatistics, TrackerHistogramsInResultsMatchThePerWalkerDatasets) {
  const std::string config = R"(
[run]
walkers = 700
steps = 300
seed = 8
[dynamics]
learning_rate = 0.05
noise_strength = 0.3
[init]
positions = [[-0.01, 5.0], [0.01, 5.0]]
[observables]
sample_steps = [0, 300]
per_walker = true
[observables.first_passage]
target = "flat"
[sweep]
noise_strength = [0.1, 0.4]
)";
  const RunPlan plan = load_config_text(config, "histograms.toml");
  auto backend = make_cpu_backend(2);
  SessionOptions options;
  options.checkpoint_every = 0;
  options.execute.batch_walkers = 333;
  RunRecord record;
  record.config_text = config;
  record.config_source = "histograms.toml";
  const auto dir = testing::scratch_dir("exact_stats", "histograms");
  ASSERT_TRUE(run_in_directory(plan, *backend, record, dir.string(), options).outcome.complete);
  const std::string h5 = (dir / "results.h5").string();
  const auto variant = read_dataset<std::int64_t>(h5, "/walkers/variant", H5T_NATIVE_INT64);
  const auto nonfinite =
      read_dataset<std::int64_t>(h5, "/walkers/nonfinite_step", H5T_NATIVE_INT64);
  const auto freezing = read_dataset<std::int64_t>(h5, "/walkers/freezing_time", H5T_NATIVE_INT64);
  const auto crossings = read_dataset<std::uint32_t>(h5, "/walkers/crossings", H5T_NATIVE_UINT32);
  const auto passage =
      read_dataset<std::int64_t>(h5, "/walkers/first_passage_step", H5T_NATIVE_INT64);
  const auto y_freeze = read_dataset<double>(h5, "/walkers/y_freeze", H5T_NATIVE_DOUBLE);
  const auto edges = read_dataset<double>(h5, "/trackers/log2_edges", H5T_NATIVE_DOUBLE);
  const auto freezing_counts =
      read_dataset<std::int64_t>(h5, "/trackers/freezing_time_counts", H5T_NATIVE_INT64);
  const auto crossing_counts =
      read_dataset<std::int64_t>(h5, "/trackers/crossings_counts", H5T_NATIVE_INT64);
  const auto passage_counts =
      read_dataset<std::int64_t>(h5, "/trackers/first_passage_counts", H5T_NATIVE_INT64);
  const auto censored =
      read_dataset<std::int64_t>(h5, "/trackers/first_passage_censored", H5T_NATIVE_INT64);
  const auto offsets =
      read_dataset<std::int64_t>(h5, "/trackers/y_freeze_offsets", H5T_NATIVE_INT64);
  const auto y_counts =
      read_dataset<std::int64_t>(h5, "/trackers/y_freeze_counts", H5T_NATIVE_INT64);
  const auto y_low = read_dataset<double>(h5, "/trackers/y_freeze_low", H5T_NATIVE_DOUBLE);
  const auto y_high = read_dataset<double>(h5, "/trackers/y_freeze_high", H5T_NATIVE_DOUBLE);
  ASSERT_EQ(edges.size(), static_cast<std::size_t>(kLog2Bins + 1));
  ASSERT_EQ(variant.size(), 1400u);
  // Bin by the edges read from the file: bin b is [edges[b], edges[b+1]).
  auto bin_of = [&](double x) {
    return static_cast<std::size_t>(std::upper_bound(edges.begin(), edges.end(), x) -
                                    edges.begin() - 1);
  };
  for (std::int64_t v = 0; v < 2; ++v) {
    SCOPED_TRACE("variant " + std::to_string(v));
    std::vector<std::int64_t> f(kLog2Bins, 0), c(kLog2Bins, 0), p(kLog2Bins, 0);
    std::int64_t not_arrived = 0;
    std::vector<double> ys;
    for (std::size_t i = 0; i < variant.size(); ++i) {
      if (variant[i] != v) continue;
      if (nonfinite[i] < 0) {
        ++f[bin_of(static_cast<double>(freezing[i]))];
        ++c[bin_of(crossings[i])];
        ys.push_back(static_cast<float>(y_freeze[i]));
      }
      if (passage[i] > 0) ++p[bin_of(static_cast<double>(passage[i]))];
      if (passage[i] < 0) ++not_arrived;
    }
    const auto row = [&](const std::vector<std::int64_t>& counts) {
      return std::vector<std::int64_t>(counts.begin() + v * kLog2Bins,
                                       counts.begin() + (v + 1) * kLog2Bins);
    };
    EXPECT_EQ(row(freezing_counts), f);
    EXPECT_EQ(row(crossing_counts), c);
    EXPECT_EQ(row(passage_counts), p);
    EXPECT_EQ(censored[static_cast<std::size_t>(v)], not_arrived);
    // y_freeze: every finite walker's float value lies in exactly the bins counted for it.
    std::int64_t total = 0;
    for (auto e = offsets[static_cast<std::size_t>(v)];
         e < offsets[static_cast<std::size_t>(v) + 1]; ++e) {
      const auto i = static_cast<std::size_t>(e);
      const auto inside = std::count_if(ys.begin(), ys.end(),
                                        [&](double y) { return y >= y_low[i] && y <= y_high[i]; });
      EXPECT_EQ(inside, y_counts[i]) << "bin [" << y_low[i] << ", " << y_high[i] << "]";
      total += y_counts[i];
    }
    EXPECT_EQ(total, static_cast<std::int64_t>(ys.size()));
  }
}

// Without [observables.first_passage] nobody arrives and nobody is censored: the passage
// histograms are left out rather than written as zeros that read as such a result.
TEST(StreamedStatistics, NoPassageHistogramsWithoutAPassageTarget) {
  const std::string config = R"(
[run]
walkers = 40
steps = 50
seed = 3
[dynamics]
learning_rate = 0.05
noise_strength = 0.3
)";
  const RunPlan plan = load_config_text(config, "no_passage.toml");
  auto backend = make_cpu_backend(1);
  SessionOptions options;
  options.checkpoint_every = 0;
  RunRecord record;
  record.config_text = config;
  record.config_source = "no_passage.toml";
  const auto dir = testing::scratch_dir("exact_stats", "no_passage");
  ASSERT_TRUE(run_in_directory(plan, *backend, record, dir.string(), options).outcome.complete);
  const std::string h5 = (dir / "results.h5").string();
  const hid_t file = H5Fopen(h5.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  EXPECT_GT(H5Lexists(file, "/trackers/freezing_time_counts", H5P_DEFAULT), 0);
  for (const char* name : {"/trackers/first_passage_counts", "/trackers/first_passage_censored",
                           "/trackers/first_passage_started_in_target", "/first_passage"}) {
    EXPECT_EQ(H5Lexists(file, name, H5P_DEFAULT), 0) << name;
  }
  H5Fclose(file);
}

}  // namespace
}  // namespace sgdwalk
