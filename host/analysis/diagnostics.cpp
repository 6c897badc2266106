#include "analysis/diagnostics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace sgdwalk {
namespace {

/// "variant 5 (learning_rate=5, noise_strength=0.1)"
std::string variant_label(const RunPlan& plan, std::size_t v) {
  std::string label = fmt::format("variant {}", v);
  const auto& swept = plan.variants[v].swept;
  if (swept.empty()) return label;
  std::string parameters;
  for (const auto& [name, value] : swept) {
    parameters += fmt::format("{}{}={:.6g}", parameters.empty() ? "" : ", ", name, value);
  }
  return label + " (" + parameters + ")";
}

/// "3 of 100 variants (e.g. variant 4 (...))"
std::string some_variants(const RunPlan& plan, const std::vector<std::size_t>& which,
                          std::size_t judged) {
  if (which.size() == 1 && judged == 1) return variant_label(plan, which.front());
  return fmt::format("{} of {} variants (e.g. {})", which.size(), judged,
                     variant_label(plan, which.front()));
}

}  // namespace

std::vector<std::string> run_warnings(const RunPlan& plan,
                                      const std::vector<VariantSummary>& summaries,
                                      std::int64_t variants_done) {
  std::vector<std::string> warnings;
  const std::size_t judged = std::min(
      summaries.size(), static_cast<std::size_t>(std::max<std::int64_t>(0, variants_done)));

  // Diverged walkers: one line per affected variant (up to 10), then a count.
  std::size_t diverged_variants = 0;
  for (std::size_t v = 0; v < judged; ++v) {
    const VariantSummary& s = summaries[v];
    if (s.nonfinite_walkers <= 0) continue;
    if (++diverged_variants <= 10) {
      // With heavy tails a single jump can leave the precision's range whatever the learning
      // rate; with Gaussian noise the usual cause is the stability bound.
      const std::string why =
          plan.noise_distribution == NoiseDistribution::alpha_stable
              ? fmt::format(
                    "With alpha_stable noise a single jump can overflow the walker's "
                    "precision (the smaller alpha, the heavier the tail): a larger "
                    "alpha{} keeps more walkers",
                    plan.precision == Precision::f32 ? " or precision = \"double\"" : "")
              : "Gradient descent on a valley of curvature k is unstable for learning_rate > 2/k";
      warnings.push_back(fmt::format(
          "{}: {} of {} walkers diverged (non-finite) from step {}; their results are left out. "
          "{}",
          variant_label(plan, v), s.nonfinite_walkers, s.walkers, s.first_nonfinite_step, why));
    }
  }
  if (diverged_variants > 10) {
    warnings.push_back(
        fmt::format("... walkers diverged in {} variants in all (summary.json: "
                    "nonfinite_walkers)",
                    diverged_variants));
  }

  // A loss that overflows at positions that are still finite (far out, in float): the samples'
  // loss mean and spread are then ±inf or NaN, which would otherwise pass unremarked.
  for (std::size_t v = 0; v < judged; ++v) {
    std::size_t overflowed = 0;
    std::int64_t first_step = -1;
    for (const SampleSummary& sample : summaries[v].samples) {
      // loss_std is NaN by definition with fewer than two finite walkers: only an infinite or
      // NaN mean, or a non-finite spread of two or more, is an overflow.
      const bool overflow = !std::isfinite(sample.loss_mean) ||
                            (sample.finite >= 2 && !std::isfinite(sample.loss_std));
      if (sample.finite == 0 || !overflow) continue;
      if (overflowed++ == 0) first_step = sample.step;
    }
    if (overflowed > 0) {
      warnings.push_back(fmt::format(
          "{}: the loss of walkers at finite positions overflowed at {} of {} samples (first at "
          "step {}): loss_mean and loss_std are not finite there{}",
          variant_label(plan, v), overflowed, summaries[v].samples.size(), first_step,
          plan.precision == Precision::f32 ? "; precision = \"double\" holds larger losses" : ""));
    }
  }

  // Histograms that caught nothing inside their range.
  for (std::size_t h = 0; h < plan.histograms.size(); ++h) {
    std::vector<std::size_t> empty;
    for (std::size_t v = 0; v < judged; ++v) {
      const auto& histogram = summaries[v].histograms.at(h);
      if (histogram.deposits - histogram.outside == 0) empty.push_back(v);
    }
    if (!empty.empty()) {
      warnings.push_back(fmt::format(
          "histogram '{}' caught nothing inside its range in {}: check its x_range, y_range, "
          "y_band and window against where the walkers are",
          plan.histograms[h].name, some_variants(plan, empty, judged)));
    }
  }

  // A first-passage target that no walker reached.
  if (plan.passage.kind != PassageKind::none) {
    std::vector<std::size_t> unreached;
    for (std::size_t v = 0; v < judged; ++v) {
      const PassageSummary& p = summaries[v].passage;
      if (p.arrived == 0 && p.started_in_target < summaries[v].walkers) unreached.push_back(v);
    }
    if (!unreached.empty()) {
      warnings.push_back(fmt::format(
          "first-passage target '{}' was reached by no walker in {}: no passage times there, "
          "and the escape rate is 0 with only an upper bound (a longer run, or a nearer target)",
          plan.passage.description, some_variants(plan, unreached, judged)));
    }
  }
  return warnings;
}

}  // namespace sgdwalk
