#include "analysis/diagnostics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backend/physics_dispatch.hpp"

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

/// An optimizer's stability bound on a quadratic valley of curvature k: learning_rate <
/// gain / k, where the spectral radius of the noise-free update on L = k x²/2 reaches 1 (MODEL.md,
/// "Heavy ball on a quadratic"). Adam and RMSprop normalise their steps: no such bound.
struct StabilityBound {
  bool exists = false;
  double gain = 0;      ///< the bound is gain / k
  std::string formula;  ///< "2/k", ...
  std::string who;      ///< "Gradient descent", ...
};

StabilityBound stability_bound(OptimizerKind optimizer, double momentum) {
  const double mu = momentum;
  switch (optimizer) {
    case OptimizerKind::sgd:
      return {true, 2.0, "2/k", "Gradient descent"};
    case OptimizerKind::momentum:
      return {true, 2 * (1 + mu), "2(1 + momentum)/k", "Heavy-ball momentum"};
    case OptimizerKind::nesterov:
      return {true, 2 * (1 + mu) / (1 + 2 * mu), "2(1 + momentum)/((1 + 2 momentum) k)",
              "Nesterov momentum"};
    case OptimizerKind::adam:
    case OptimizerKind::rmsprop:
      return {};
  }
  return {};
}

/// Why Gaussian-noise walkers usually diverge: the optimizer's stability bound at this variant's
/// momentum, or a schedule that raises η or σ.
std::string divergence_cause(const RunPlan& plan, const Variant& variant) {
  const StabilityBound bound = stability_bound(plan.optimizer, variant.momentum);
  std::string why;
  if (!bound.exists) {
    // Their steps are about learning_rate per coordinate whatever the gradient: walkers leave
    // the range through the noise, the landscape or a learning rate far beyond its scale.
    why = fmt::format(
        "{} moves each coordinate by about learning_rate per update: a learning_rate far beyond "
        "the landscape's scale, very large noise, or a landscape that overflows far out lets "
        "walkers leave the precision's range",
        to_string(plan.optimizer));
  } else if (plan.optimizer == OptimizerKind::sgd) {
    why = "Gradient descent on a valley of curvature k is unstable for learning_rate > 2/k";
  } else {
    why = fmt::format("{} on a valley of curvature k is unstable for learning_rate > {} = {:.6g}/k",
                      bound.who, bound.formula, bound.gain);
  }
  const bool scheduled =
      !variant.learning_rate_schedule.is_constant() || !variant.noise_schedule.is_constant();
  return why + (scheduled ? " (a schedule that raises learning_rate or noise_strength along "
                            "the run counts with its factors)"
                          : "");
}

/// The largest eigenvalue of a landscape's Hessian (1-D: the number; axis-aligned: the largest
/// diagonal entry; 2-D: the symmetric 2×2 formula); NaN for a Hessian type it does not know (a
/// user landscape's own).
template <class H>
double largest_curvature(const H& h) {
  if constexpr (std::is_arithmetic_v<H>) {
    return static_cast<double>(h);
  } else if constexpr (requires {
                         h.xx;
                         h.xy;
                         h.yy;
                       }) {
    const double xx = h.xx, xy = h.xy, yy = h.yy;
    return 0.5 * (xx + yy) + std::hypot(0.5 * (xx - yy), xy);
  } else if constexpr (requires { h.d[0]; }) {
    double largest = h.d[0];
    for (const auto& d : h.d) largest = std::max(largest, static_cast<double>(d));
    return largest;
  } else {
    return 0.0 / 0.0;
  }
}

/// The largest factor a schedule reaches within `steps` updates: every shape is monotone between
/// the points tried (warmup rises to shape(0); step and exponential are monotone; cosine falls;
/// piecewise is constant between its steps).
double largest_factor(const Schedule& schedule, std::int64_t steps) {
  const std::int64_t last = std::max<std::int64_t>(0, steps - 1);
  std::vector<std::int64_t> points = {0, last, std::min(schedule.warmup_steps, last)};
  if (schedule.kind == ScheduleKind::piecewise) {
    for (int i = 0; i < schedule.pieces; ++i)
      points.push_back(std::min(schedule.warmup_steps + schedule.piece_steps[i], last));
  }
  double largest = 0;
  for (const std::int64_t t : points) largest = std::max(largest, schedule.factor_at(t));
  return largest;
}

}  // namespace

std::vector<std::string> stability_hints(const RunPlan& plan, const std::string& source) {
  if (!stability_bound(plan.optimizer, 0).exists) return {};
  std::int64_t unstable = 0;
  std::string example;
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind>() {
    constexpr int D = Landscape::dim;
    // The distinct start positions (walker w starts at initial_positions[w % size]).
    // (the first 16, and only those some walker uses)
    const std::size_t starts = std::min<std::size_t>(
        {plan.initial_positions.size(), static_cast<std::size_t>(plan.walkers_per_variant), 16});
    for (std::size_t v = 0; v < plan.variants.size(); ++v) {
      const Variant& variant = plan.variants[v];
      const Landscape landscape = make_landscape<Landscape>(variant);
      const StabilityBound stability = stability_bound(plan.optimizer, variant.momentum);
      const double rate =
          variant.learning_rate * largest_factor(variant.learning_rate_schedule, plan.steps);
      for (std::size_t i = 0; i < starts; ++i) {
        Vec<T, D> position;
        for (int d = 0; d < D; ++d)
          position[d] = static_cast<T>(plan.initial_positions[i][static_cast<std::size_t>(d)]);
        const double k = largest_curvature(landscape.hessian(position));
        const double bound = stability.gain / k;
        if (!(k > 0) || !std::isfinite(k) || !(rate > bound)) continue;
        if (unstable++ == 0) {
          std::string at;
          for (int d = 0; d < D; ++d)
            at += fmt::format("{}{:.6g}", d == 0 ? "" : ", ", static_cast<double>(position[d]));
          example = fmt::format(
              "{}: learning_rate {:.6g}{} > {:.6g}, the bound {} of {} at the start "
              "position ({}) where the curvature is k = {:.6g}",
              variant_label(plan, v), rate,
              variant.learning_rate_schedule.is_constant() ? "" : " (the schedule's largest)",
              bound, stability.formula, to_string(plan.optimizer), at, k);
        }
        break;  // one start position per variant is enough to count it
      }
    }
  });
  if (unstable == 0) return {};
  return {fmt::format(
      "{}: {} of {} variant(s) start where their learning rate is beyond the optimizer's "
      "stability bound ({}): gradient steps there grow instead of settling, so walkers are "
      "driven out of that valley and run off to infinity unless they reach a valley flat enough "
      "for the step (docs/MODEL.md, Optimizers and schedules)",
      source, unstable, plan.variants.size(), example)};
}

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
      // rate; with Gaussian noise the usual cause is the optimizer's stability bound.
      const std::string why =
          plan.noise_distribution == NoiseDistribution::alpha_stable
              ? fmt::format(
                    "With alpha_stable noise a single jump can overflow the walker's "
                    "precision (the smaller alpha, the heavier the tail): a larger "
                    "alpha{} keeps more walkers",
                    plan.precision == Precision::f32 ? " or precision = \"double\"" : "")
              : divergence_cause(plan, plan.variants[v]);
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

  // A loss, or a y, that overflows the samples' float values at positions that are still finite
  // (far out; sample values are float32 in both precisions): the samples' mean and spread are
  // then ±inf or NaN, which would otherwise pass unremarked.
  for (std::size_t v = 0; v < judged; ++v) {
    struct Overflow {
      std::size_t samples = 0;
      std::int64_t first_step = -1;
    } loss, progress;
    for (const SampleSummary& sample : summaries[v].samples) {
      if (sample.finite == 0) continue;
      // A std is NaN by definition with fewer than two finite walkers: only an infinite or NaN
      // mean, or a non-finite spread of two or more, is an overflow.
      const auto overflows = [&](double mean, double std_dev) {
        return !std::isfinite(mean) || (sample.finite >= 2 && !std::isfinite(std_dev));
      };
      for (auto [overflow, which] :
           {std::pair{overflows(sample.loss_mean, sample.loss_std), &loss},
            std::pair{overflows(sample.progress_mean, sample.progress_std), &progress}}) {
        if (overflow && which->samples++ == 0) which->first_step = sample.step;
      }
    }
    if (loss.samples > 0) {
      warnings.push_back(fmt::format(
          "{}: the loss of walkers at finite positions overflowed at {} of {} samples (first at "
          "step {}): loss_mean and loss_std are not finite there{}",
          variant_label(plan, v), loss.samples, summaries[v].samples.size(), loss.first_step,
          plan.precision == Precision::f32 ? "; precision = \"double\" holds larger losses" : ""));
    }
    if (progress.samples > 0) {
      warnings.push_back(fmt::format(
          "{}: y of walkers at finite positions is beyond the samples' float range (|y| > "
          "3.4e38) at {} of {} samples (first at step {}): y_mean, y_std and the y quantiles are "
          "not finite there",
          variant_label(plan, v), progress.samples, summaries[v].samples.size(),
          progress.first_step));
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
    std::vector<std::size_t> all_inside;
    for (std::size_t v = 0; v < judged; ++v) {
      const PassageSummary& p = summaries[v].passage;
      if (summaries[v].walkers > 0 && p.started_in_target == summaries[v].walkers)
        all_inside.push_back(v);
    }
    if (!all_inside.empty()) {
      warnings.push_back(fmt::format(
          "every walker started inside the first-passage target '{}' in {}: there are no "
          "passage times and no escape rate; start the walkers outside it (init.positions) or "
          "choose another target",
          plan.passage.description, some_variants(plan, all_inside, judged)));
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
