#include "analysis/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <omp.h>

namespace sgdwalk {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// How many terms the series or the continued fraction of P(a, x) may take. Near x = a both need
/// O(√a) terms (the series' fall off as exp(−n²/2a): ~8.6√a to reach 1e-16), so the limit grows
/// with a; a fixed 10⁴ cut the series short above ~10⁷ events, and the lower end of a Poisson
/// interval of 3·10⁸ arrivals came out 6 % of its half-width too high.
long long gamma_term_limit(double a) {
  return 1000 + static_cast<long long>(20 * std::sqrt(a));
}

/// log(x^a e^−x / Γ(a)), the prefactor of P(a, x). For large a as a (log1p(t) − t) + ½ log(a/2π)
/// − s(a), with t = (x − a)/a and Stirling's correction s(a) = lgamma(a) − (a − ½) log a + a −
/// ½ log 2π from its series: the direct a log x − x − lgamma(a) subtracts numbers of size a log a
/// and keeps only ~a·1e-16 of absolute accuracy (P off by 1e-5 of itself at a = 10¹⁰).
double log_gamma_prefactor(double a, double x) {
  if (a < 100) return a * std::log(x) - x - std::lgamma(a);
  const double t = (x - a) / a;
  const double inverse = 1 / a, inverse2 = inverse * inverse;
  // 1/(12a) − 1/(360a³) + 1/(1260a⁵) − 1/(1680a⁷): the next term is below 1e-21 from a = 100.
  const double stirling =
      inverse * (1.0 / 12 - inverse2 * (1.0 / 360 - inverse2 * (1.0 / 1260 - inverse2 / 1680)));
  constexpr double kTwoPi = 6.283185307179586;
  return a * (std::log1p(t) - t) + 0.5 * std::log(a / kTwoPi) - stirling;
}

/// Regularised lower incomplete gamma P(a, x) (series for x < a+1, continued fraction beyond).
double regularized_gamma_p(double a, double x) {
  if (x <= 0) return 0;
  const double log_prefactor = log_gamma_prefactor(a, x);
  const long long limit = gamma_term_limit(a);
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (long long n = 1; n < limit; ++n) {
      term *= x / (a + static_cast<double>(n));
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * 1e-16) break;
    }
    return sum * std::exp(log_prefactor);
  }
  // Lentz's continued fraction for Q(a, x).
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (long long i = 1; i < limit; ++i) {
    const auto n = static_cast<double>(i);
    const double an = -n * (n - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < 1e-16) break;
  }
  return 1 - std::exp(log_prefactor) * h;
}

/// x with P(a, x) = p: Newton's method on P, kept inside a bracket that bisection narrows when a
/// step would leave it (a handful of evaluations instead of bisection's 200, which matters now
/// that an evaluation at a = 10⁹ takes ~10⁵ terms).
double gamma_quantile(double a, double p) {
  double low = 0, high = std::max(1.0, a);
  while (regularized_gamma_p(a, high) < p) {
    low = high;
    high *= 2;
  }
  double x = a - 1.0 / 3.0;  // near the median
  if (!(x > low && x < high)) x = 0.5 * (low + high);
  for (int iteration = 0; iteration < 200; ++iteration) {
    const double excess = regularized_gamma_p(a, x) - p;
    if (excess == 0) return x;
    (excess < 0 ? low : high) = x;
    const double density = std::exp(log_gamma_prefactor(a, x)) / x;
    double next = density > 0 ? x - excess / density : 0.5 * (low + high);
    if (!(next > low && next < high)) next = 0.5 * (low + high);
    if (std::fabs(next - x) <= 2 * std::numeric_limits<double>::epsilon() * x ||
        high - low <= 2 * std::numeric_limits<double>::epsilon() * high) {
      return next;
    }
    x = next;
  }
  return x;
}

}  // namespace

double quantile(std::vector<float>& values, double level) {
  if (values.empty()) return kNaN;
  const double position = level * static_cast<double>(values.size() - 1);
  const auto lower = static_cast<std::size_t>(std::floor(position));
  const double fraction = position - static_cast<double>(lower);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(lower),
                   values.end());
  const double a = values[lower];
  if (fraction == 0 || lower + 1 >= values.size()) return a;
  const double b =
      *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(lower) + 1, values.end());
  return a + fraction * (b - a);
}

double chi_square_quantile(double dof, double p) {
  return 2 * gamma_quantile(dof / 2, p);
}

void poisson_interval(std::int64_t events, double confidence, double& low, double& high) {
  const double alpha = 1 - confidence;
  const auto k = static_cast<double>(events);
  low = events == 0 ? 0.0 : gamma_quantile(k, alpha / 2);
  high = gamma_quantile(k + 1, 1 - alpha / 2);
}

namespace {

MeanEstimate estimate(const MomentResult& r) {
  MeanEstimate e;
  e.count = r.count;
  if (r.count == 0) return e;
  e.mean = r.mean;
  e.standard_error = r.standard_error;
  return e;
}

/// Per-thread scratch of the sample reduction: bucket counts of one (variant, sample, quantity).
class BucketCounter {
 public:
  std::vector<QuantileSketch::Entry> count(const float* values, std::int64_t n,
                                           Moments<NarrowSum>& moments) {
    if (n < kDenseFrom) {
      sparse_.clear();
      for (std::int64_t i = 0; i < n; ++i) {
        const float x = values[i];
        if (std::isnan(x)) continue;
        moments.add_float(x);
        sparse_.push_back(QuantileSketch::bucket_of(x));
      }
      return count_buckets(sparse_);
    }
    if (dense_.empty()) dense_.assign(std::size_t{1} << kSketchBucketBits, 0);
    std::uint32_t low = ~0u, high = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const float x = values[i];
      if (std::isnan(x)) continue;
      moments.add_float(x);
      const std::uint32_t b = QuantileSketch::bucket_of(x);
      ++dense_[b];
      low = std::min(low, b);
      high = std::max(high, b);
    }
    std::vector<QuantileSketch::Entry> entries;
    for (std::uint32_t b = low; low <= high && b <= high; ++b) {
      if (dense_[b] != 0) {
        entries.push_back({b, dense_[b]});
        dense_[b] = 0;
      }
    }
    return entries;
  }

 private:
  static constexpr std::int64_t kDenseFrom = 1 << 15;
  std::vector<std::uint32_t> sparse_;
  std::vector<std::uint64_t> dense_;
};

}  // namespace

void reduce_batch(const RunPlan& plan, RunData& data, std::int64_t first, std::int64_t last,
                  int threads) {
  if (first >= last) return;
  const std::int64_t W = plan.walkers_per_variant;
  const WalkerArrays& walkers = data.walkers;
  RunTallies& tallies = data.tallies;
  const std::int64_t v_begin = first / W;
  const std::int64_t v_end = (last - 1) / W + 1;
  const int thread_count = threads > 0 ? threads : omp_get_max_threads();

  // Trackers: chunks of one variant's walkers; per-chunk tallies merged exactly.
  constexpr std::int64_t kChunk = 1 << 16;
  struct Chunk {
    std::int64_t variant, begin, end;
  };
  std::vector<Chunk> chunks;
  for (std::int64_t v = v_begin; v < v_end; ++v) {
    const std::int64_t lo = std::max(first, v * W), hi = std::min(last, (v + 1) * W);
    for (std::int64_t b = lo; b < hi; b += kChunk)
      chunks.push_back({v, b, std::min(hi, b + kChunk)});
  }
  const bool passage = plan.passage.kind != PassageKind::none;
  const auto n_chunks = static_cast<std::int64_t>(chunks.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(thread_count)
  for (std::int64_t c = 0; c < n_chunks; ++c) {
    const Chunk& chunk = chunks[static_cast<std::size_t>(c)];
    VariantTally t;
    std::vector<std::uint32_t> y_buckets;
    for (std::int64_t g = chunk.begin; g < chunk.end; ++g) {
      const std::size_t k = walkers.at(g);
      const std::int64_t nonfinite = walkers.nonfinite_step[k];
      ++t.walkers;
      if (nonfinite >= 0) {
        ++t.nonfinite;
        t.first_nonfinite_step =
            t.first_nonfinite_step < 0 ? nonfinite : std::min(t.first_nonfinite_step, nonfinite);
      } else {
        ++t.finite;
        t.flat += walkers.basin[k] == kFlatBasin ? 1 : 0;
        t.freezing_time.add_integer(walkers.freeze_step[k] + 1);
        t.y_freeze.add_double(walkers.y_freeze[k]);
        t.crossings.add_integer(walkers.crossings[k]);
        ++t.freezing_time_histogram[log2_bin(walkers.freeze_step[k] + 1)];
        ++t.crossings_histogram[log2_bin(walkers.crossings[k])];
        y_buckets.push_back(QuantileSketch::bucket_of(static_cast<float>(walkers.y_freeze[k])));
      }
      if (passage) {
        const std::int64_t arrival = walkers.first_passage_step[k];
        if (arrival == 0) {
          ++t.started_in_target;
        } else if (arrival > 0) {
          ++t.arrived;
          t.passage_steps.add_integer(arrival);
          t.exposure_steps.add_integer(arrival);
          ++t.passage_histogram[log2_bin(arrival)];
        } else {
          ++t.censored;
          t.exposure_steps.add_integer(nonfinite >= 0 ? nonfinite - 1 : plan.steps);
        }
      }
    }
    t.y_freeze_sketch.merge_sorted(count_buckets(y_buckets));
#pragma omp critical(sgdwalk_reduce_trackers)
    tallies.variants[static_cast<std::size_t>(chunk.variant)].merge(t);
  }
}

void reduce_samples(const RunPlan& plan, RunData& data, std::int64_t first, std::int64_t last,
                    std::int64_t sample_begin, std::int64_t sample_end, int threads) {
  if (first >= last || sample_begin >= sample_end) return;
  const std::int64_t W = plan.walkers_per_variant;
  const ObservableArrays& observables = data.observables;
  RunTallies& tallies = data.tallies;
  const std::int64_t v_begin = first / W;
  const std::int64_t v_end = (last - 1) / W + 1;
  const std::int64_t samples = plan.sample_count();
  const std::int64_t sample_span = sample_end - sample_begin;
  const int thread_count = threads > 0 ? threads : omp_get_max_threads();
  // One task per (variant, sample, quantity); each writes only its own tally.
  const std::int64_t tasks = (v_end - v_begin) * sample_span * 2;
#pragma omp parallel num_threads(thread_count)
  {
    BucketCounter counter;
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < tasks; ++task) {
      const bool loss = task % 2 == 1;
      const std::int64_t k = sample_begin + (task / 2) % sample_span;
      const std::int64_t v = v_begin + task / 2 / sample_span;
      const std::int64_t lo = std::max(first, v * W), hi = std::min(last, (v + 1) * W);
      const auto& values = loss ? observables.sample_loss : observables.sample_progress;
      const float* row = values.data() + observables.sample_index(v, k, lo - v * W);
      SampleTally& tally = tallies.samples[static_cast<std::size_t>(v * samples + k)];
      Moments<NarrowSum> moments;
      const auto entries = counter.count(row, hi - lo, moments);
      (loss ? tally.loss : tally.progress).merge(moments);
      (loss ? tally.loss_sketch : tally.progress_sketch).merge_sorted(entries);
    }
  }
}

void samples_in_steps(const RunPlan& plan, std::int64_t step_begin, std::int64_t step_end,
                      std::int64_t& sample_begin, std::int64_t& sample_end) {
  const auto& steps = plan.sample_steps;
  sample_begin = std::upper_bound(steps.begin(), steps.end(), step_begin) - steps.begin();
  sample_end = std::upper_bound(steps.begin(), steps.end(), step_end) - steps.begin();
}

std::vector<VariantSummary> summarize(const RunPlan& plan, const RunData& data) {
  const ObservableArrays& observables = data.observables;
  const std::int64_t per_variant = plan.walkers_per_variant;
  std::vector<VariantSummary> summaries;
  for (std::int64_t v = 0; v < plan.variant_count(); ++v) {
    const Variant& variant = plan.variants[static_cast<std::size_t>(v)];
    const VariantTally& t = data.tallies.variants[static_cast<std::size_t>(v)];
    VariantSummary s;
    s.walkers = per_variant;
    s.finite_walkers = t.finite;
    s.nonfinite_walkers = t.nonfinite;
    s.first_nonfinite_step = t.first_nonfinite_step;
    s.flat = t.flat;
    if (s.finite_walkers > 0) {
      s.p_flat = static_cast<double>(s.flat) / static_cast<double>(s.finite_walkers);
      s.p_flat_stderr =
          std::sqrt(s.p_flat * (1 - s.p_flat) / static_cast<double>(s.finite_walkers));
    }
    s.freezing_time = estimate(t.freezing_time.result());
    s.y_freeze = estimate(t.y_freeze.result());
    s.crossings = estimate(t.crossings.result());
    if (plan.passage.kind != PassageKind::none) {
      s.passage.started_in_target = t.started_in_target;
      s.passage.arrived = t.arrived;
      s.passage.censored = t.censored;
      s.passage.steps = estimate(t.passage_steps.result());
      s.passage.exposure_time = variant.learning_rate * t.exposure_steps.to_double();
      if (s.passage.exposure_time > 0) {
        double low = 0, high = 0;
        poisson_interval(s.passage.arrived, 0.95, low, high);
        s.passage.rate = static_cast<double>(s.passage.arrived) / s.passage.exposure_time;
        s.passage.rate_low = low / s.passage.exposure_time;
        s.passage.rate_high = high / s.passage.exposure_time;
      }
    }

    for (std::int64_t k = 0; k < plan.sample_count(); ++k) {
      SampleSummary sample;
      sample.step = plan.sample_steps[static_cast<std::size_t>(k)];
      const auto counter = static_cast<std::size_t>(v * observables.samples + k);
      sample.finite = observables.sample_finite[counter];
      sample.flat = observables.sample_flat[counter];
      if (sample.finite > 0) {
        sample.p_flat = static_cast<double>(sample.flat) / static_cast<double>(sample.finite);
        sample.p_flat_stderr =
            std::sqrt(sample.p_flat * (1 - sample.p_flat) / static_cast<double>(sample.finite));
      }
      const SampleTally& tally = data.tallies.samples[counter];
      for (const bool loss : {false, true}) {
        const MomentResult moments = (loss ? tally.loss : tally.progress).result();
        const QuantileSketch& sketch = loss ? tally.loss_sketch : tally.progress_sketch;
        std::vector<double> levels;
        // Every value the same (the exact spread is 0, one bucket): each quantile is that value,
        // the exact mean, not its bucket's midpoint (a start at y = 5 read 5.00098).
        const bool one_value = sketch.entries().size() == 1 && std::isfinite(moments.mean) &&
                               (moments.count == 1 || moments.std_dev == 0);
        for (const double level : plan.quantiles)
          levels.push_back(one_value ? moments.mean : sketch.quantile(level));
        (loss ? sample.loss_mean : sample.progress_mean) = moments.mean;
        (loss ? sample.loss_std : sample.progress_std) = moments.std_dev;
        (loss ? sample.loss_quantiles : sample.progress_quantiles) = levels;
      }
      s.samples.push_back(std::move(sample));
    }

    for (std::size_t h = 0; h < plan.histograms.size(); ++h) {
      const HistogramSpec& spec = plan.histograms[h];
      HistogramSummary histogram;
      const auto bins = static_cast<std::size_t>(spec.bin_count());
      const auto* counts =
          observables.histogram_counts[h].data() + static_cast<std::size_t>(v) * (bins + 1);
      histogram.counts.assign(counts, counts + bins);
      histogram.outside = counts[bins];
      histogram.deposits = histogram.outside;
      for (const auto c : histogram.counts) histogram.deposits += c;
      histogram.temperature =
          std::isnan(spec.temperature) ? variant.temperature() : spec.temperature;
      const double x_width = (spec.x_hi - spec.x_lo) / spec.x_bins;
      const double area = spec.kind == HistogramKind::xy
                              ? x_width * (spec.y_hi - spec.y_lo) / spec.y_bins
                              : x_width;
      histogram.density.resize(bins, kNaN);
      histogram.effective_potential.resize(bins, kNaN);
      if (histogram.deposits > 0) {
        for (std::size_t b = 0; b < bins; ++b) {
          const double density = static_cast<double>(histogram.counts[b]) /
                                 (static_cast<double>(histogram.deposits) * area);
          histogram.density[b] = density;
          if (histogram.counts[b] > 0) {
            histogram.effective_potential[b] = -histogram.temperature * std::log(density);
          }
        }
      }
      s.histograms.push_back(std::move(histogram));
    }
    summaries.push_back(std::move(s));
  }
  return summaries;
}

}  // namespace sgdwalk
