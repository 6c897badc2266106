#include "statistics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sgdwalk {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Welford accumulation in a fixed order.
class Accumulator {
 public:
  void add(double x) {
    ++count_;
    const double delta = x - mean_;
    mean_ += delta / static_cast<double>(count_);
    m2_ += delta * (x - mean_);
  }
  MeanEstimate estimate() const {
    MeanEstimate result;
    result.count = count_;
    if (count_ == 0) return result;
    result.mean = mean_;
    result.standard_error =
        count_ > 1 ? std::sqrt(m2_ / static_cast<double>(count_ - 1) / static_cast<double>(count_))
                   : kNaN;
    return result;
  }
  double std_dev() const {
    return count_ > 1 ? std::sqrt(m2_ / static_cast<double>(count_ - 1)) : kNaN;
  }

 private:
  std::int64_t count_ = 0;
  double mean_ = 0, m2_ = 0;
};

/// Regularised lower incomplete gamma P(a, x) (series for x < a+1, continued fraction beyond).
double regularized_gamma_p(double a, double x) {
  if (x <= 0) return 0;
  const double log_prefactor = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * 1e-16) break;
    }
    return sum * std::exp(log_prefactor);
  }
  // Lentz's continued fraction for Q(a, x).
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
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

/// x with P(a, x) = p, by bisection (monotone in x).
double gamma_quantile(double a, double p) {
  double low = 0, high = std::max(1.0, a);
  while (regularized_gamma_p(a, high) < p) high *= 2;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (low + high);
    (regularized_gamma_p(a, mid) < p ? low : high) = mid;
  }
  return 0.5 * (low + high);
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

std::vector<VariantSummary> summarize(const RunPlan& plan, const RunData& data) {
  const WalkerArrays& walkers = data.walkers;
  const ObservableArrays& observables = data.observables;
  const std::int64_t per_variant = plan.walkers_per_variant;
  std::vector<VariantSummary> summaries;
  std::vector<float> scratch;
  for (std::int64_t v = 0; v < plan.variant_count(); ++v) {
    const Variant& variant = plan.variants[static_cast<std::size_t>(v)];
    VariantSummary s;
    s.walkers = per_variant;
    Accumulator freezing, y_freeze, crossings, passage_steps;
    double exposure_steps = 0;
    for (std::int64_t w = 0; w < per_variant; ++w) {
      const auto g = static_cast<std::size_t>(v * per_variant + w);
      const std::int64_t nonfinite = walkers.nonfinite_step[g];
      if (nonfinite >= 0) {
        ++s.nonfinite_walkers;
        s.first_nonfinite_step =
            s.first_nonfinite_step < 0 ? nonfinite : std::min(s.first_nonfinite_step, nonfinite);
      } else {
        ++s.finite_walkers;
        s.flat += walkers.basin[g] == kFlatBasin ? 1 : 0;
        freezing.add(static_cast<double>(walkers.freeze_step[g] + 1));
        y_freeze.add(walkers.y_freeze[g]);
        crossings.add(static_cast<double>(walkers.crossings[g]));
      }
      if (plan.passage.kind != PassageKind::none) {
        const std::int64_t arrival = walkers.first_passage_step[g];
        if (arrival == 0) {
          ++s.passage.started_in_target;
        } else if (arrival > 0) {
          ++s.passage.arrived;
          passage_steps.add(static_cast<double>(arrival));
          exposure_steps += static_cast<double>(arrival);
        } else {
          ++s.passage.censored;
          exposure_steps += static_cast<double>(nonfinite >= 0 ? nonfinite - 1 : plan.steps);
        }
      }
    }
    if (s.finite_walkers > 0) {
      s.p_flat = static_cast<double>(s.flat) / static_cast<double>(s.finite_walkers);
      s.p_flat_stderr =
          std::sqrt(s.p_flat * (1 - s.p_flat) / static_cast<double>(s.finite_walkers));
    }
    s.freezing_time = freezing.estimate();
    s.y_freeze = y_freeze.estimate();
    s.crossings = crossings.estimate();
    if (plan.passage.kind != PassageKind::none) {
      s.passage.steps = passage_steps.estimate();
      s.passage.exposure_time = variant.learning_rate * exposure_steps;
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
      for (const bool loss : {false, true}) {
        const auto& values = loss ? observables.sample_loss : observables.sample_progress;
        Accumulator accumulator;
        scratch.clear();
        for (std::int64_t w = 0; w < per_variant; ++w) {
          const float value = values[observables.sample_index(v, k, w)];
          if (std::isnan(value)) continue;
          accumulator.add(value);
          scratch.push_back(value);
        }
        std::vector<double> levels;
        for (const double level : plan.quantiles) levels.push_back(quantile(scratch, level));
        const MeanEstimate estimate = accumulator.estimate();
        (loss ? sample.loss_mean : sample.progress_mean) = estimate.mean;
        (loss ? sample.loss_std : sample.progress_std) = accumulator.std_dev();
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
