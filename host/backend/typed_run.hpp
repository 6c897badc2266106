// Per-run typed physics and the host-side observation of a walker (samples and histogram
// deposits). Used by the CPU backend for every step and by initialize_walkers for step 0; the CUDA
// backend does the same arithmetic on the device.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "backend/physics_dispatch.hpp"
#include "backend/run_data.hpp"

namespace sgdwalk {

template <class T, class Landscape>
struct TypedRun {
  static constexpr int dim = Landscape::dim;
  /// The plan's variants [first_variant, first_variant + landscapes.size()) are held: all of them,
  /// or those of one batch (a sweep of 10^5 variants would otherwise build them all for every call
  /// of a batch of a few). The accessors below take the plan's variant index.
  std::int64_t first_variant = 0;
  std::vector<Landscape> landscapes;  ///< per variant held
  /// Per variant held; used when the plan's noise is alpha_stable (sgdwalk/stable.hpp).
  std::vector<StableParams<T>> stable;
  std::vector<StepParams<T>> params;  ///< per variant held (of step 1; see schedules)
  /// Per variant held: the constants of any step (step_params_at), for variants whose constants
  /// change from step to step (StepSchedule::per_step).
  std::vector<StepSchedule> schedules;
  PassageTarget<T> target;
  std::vector<HistogramGeometry<T>> geometries;

  /// Every variant of the plan.
  explicit TypedRun(const RunPlan& plan) : TypedRun(plan, 0, plan.variant_count()) {}
  /// Variants [variant_begin, variant_end) of the plan.
  TypedRun(const RunPlan& plan, std::int64_t variant_begin, std::int64_t variant_end)
      : first_variant(variant_begin), target(make_passage_target<T>(plan.passage)) {
    const auto count =
        static_cast<std::size_t>(std::max<std::int64_t>(0, variant_end - variant_begin));
    landscapes.reserve(count);
    stable.reserve(count);
    params.reserve(count);
    schedules.reserve(count);
    for (std::int64_t v = variant_begin; v < variant_end; ++v) {
      const Variant& variant = plan.variants.at(static_cast<std::size_t>(v));
      landscapes.push_back(make_landscape<Landscape>(variant));
      stable.push_back(make_stable_params<T>(variant.alpha));
      params.push_back(make_step_params<T>(plan, variant));
      schedules.push_back(make_step_schedule(plan, variant));
    }
    for (const auto& histogram : plan.histograms) {
      geometries.push_back(make_histogram_geometry<T>(histogram));
    }
  }

  /// Variant `v` of the plan (first_variant <= v < first_variant + landscapes.size()).
  const Landscape& landscape(std::int64_t v) const { return landscapes[held(v)]; }
  const StableParams<T>& stable_params(std::int64_t v) const { return stable[held(v)]; }
  const StepParams<T>& step_params(std::int64_t v) const { return params[held(v)]; }
  const StepSchedule& schedule(std::int64_t v) const { return schedules[held(v)]; }

 private:
  std::size_t held(std::int64_t v) const { return static_cast<std::size_t>(v - first_variant); }
};

/// The plan's variants that walkers [first, last) belong to: [begin, end).
inline std::pair<std::int64_t, std::int64_t> variants_of_walkers(const RunPlan& plan,
                                                                 std::int64_t first,
                                                                 std::int64_t last) {
  if (last <= first) return {0, 0};
  const std::int64_t w = std::max<std::int64_t>(1, plan.walkers_per_variant);
  return {first / w, (last - 1) / w + 1};
}

/// Integer counters one thread accumulates for the variants [first_variant, first_variant +
/// variants) of one backend call, before they are added to ObservableArrays. The run's counters
/// are variant-major, so a call's are one contiguous slice of them: a thread's copy is sized to
/// the call's variants, not the run's (a sweep of 10^5 variants had every thread allocate, zero
/// and add the whole run's counters in every call).
struct ObservationCounts {
  std::int64_t first_variant = 0, variants = 0, samples = 0;
  std::vector<std::uint64_t> sample_flat, sample_finite;  ///< [(v − first_variant) · samples + s]
  /// One vector per histogram: [(v − first_variant) · (bins + 1) + slot].
  std::vector<std::vector<std::uint64_t>> histogram_counts;

  ObservationCounts(const ObservableArrays& shape, std::int64_t variant_begin,
                    std::int64_t variant_end)
      : first_variant(variant_begin),
        variants(variant_end - variant_begin),
        samples(shape.samples),
        sample_flat(static_cast<std::size_t>(variants * samples), 0),
        sample_finite(sample_flat.size(), 0) {
    for (const auto& counts : shape.histogram_counts) {
      histogram_counts.emplace_back(static_cast<std::size_t>(variants) * row_size(shape, counts),
                                    0);
    }
  }

  /// The counter of (variant, sample) in sample_flat and sample_finite.
  std::size_t sample_counter(std::int64_t variant, std::int64_t sample) const {
    return static_cast<std::size_t>((variant - first_variant) * samples + sample);
  }
  /// Histogram h's row of `variant` (bins + 1 slots).
  std::uint64_t* histogram_row(std::size_t h, std::int64_t bin_count, std::int64_t variant) {
    return histogram_counts[h].data() +
           static_cast<std::size_t>((variant - first_variant) * (bin_count + 1));
  }

  void add_to(ObservableArrays& observables) const {
    const auto sample_offset = static_cast<std::size_t>(first_variant * samples);
    for (std::size_t i = 0; i < sample_flat.size(); ++i) {
      observables.sample_flat[sample_offset + i] += sample_flat[i];
      observables.sample_finite[sample_offset + i] += sample_finite[i];
    }
    for (std::size_t h = 0; h < histogram_counts.size(); ++h) {
      std::vector<std::uint64_t>& run_counts = observables.histogram_counts[h];
      const std::size_t offset =
          static_cast<std::size_t>(first_variant) * row_size(observables, run_counts);
      for (std::size_t i = 0; i < histogram_counts[h].size(); ++i) {
        run_counts[offset + i] += histogram_counts[h][i];
      }
    }
  }

 private:
  static std::size_t row_size(const ObservableArrays& shape,
                              const std::vector<std::uint64_t>& counts) {
    return shape.variants > 0 ? counts.size() / static_cast<std::size_t>(shape.variants) : 0;
  }
};

template <class T, int D, UpdateRule R = UpdateRule::sgd>
WalkerState<T, D, R> load_walker(const WalkerArrays& walkers, std::int64_t g) {
  WalkerState<T, D, R> walker;
  const std::size_t k = walkers.at(g);
  for (int i = 0; i < D; ++i) walker.position[i] = static_cast<T>(walkers.position[k * D + i]);
  walker.freeze_step = walkers.freeze_step[k];
  walker.first_passage_step = walkers.first_passage_step[k];
  walker.nonfinite_step = walkers.nonfinite_step[k];
  walker.y_freeze = static_cast<T>(walkers.y_freeze[k]);
  walker.basin = walkers.basin[k];
  walker.crossings = walkers.crossings[k];
  // The arrays hold the run's state width (OptimizerState's flat layout); a wider state
  // (UpdateRule::any: 2D numbers for every rule) has its remaining components 0, as a fresh
  // walker's (the CUDA stateful kernel loads it the same way).
  constexpr int W = OptimizerState<T, D, R>::width;
  const auto width = static_cast<std::size_t>(walkers.state_width);
  for (int j = 0; j < W; ++j) {
    const auto u = static_cast<std::size_t>(j);
    walker.optimizer.set(j,
                         u < width ? static_cast<T>(walkers.optimizer_state[k * width + u]) : T(0));
  }
  return walker;
}

template <class T, int D, UpdateRule R>
void store_walker(const WalkerState<T, D, R>& walker, WalkerArrays& walkers, std::int64_t g) {
  const std::size_t k = walkers.at(g);
  for (int i = 0; i < D; ++i) walkers.position[k * D + i] = static_cast<double>(walker.position[i]);
  walkers.freeze_step[k] = walker.freeze_step;
  walkers.first_passage_step[k] = walker.first_passage_step;
  walkers.nonfinite_step[k] = walker.nonfinite_step;
  walkers.y_freeze[k] = static_cast<double>(walker.y_freeze);
  walkers.basin[k] = walker.basin;
  walkers.crossings[k] = walker.crossings;
  // The run's width only (see load_walker): the components beyond it stay 0 in every update.
  constexpr int W = OptimizerState<T, D, R>::width;
  const auto width = static_cast<std::size_t>(walkers.state_width);
  for (int j = 0; j < W; ++j) {
    const auto u = static_cast<std::size_t>(j);
    if (u < width)
      walkers.optimizer_state[k * width + u] = static_cast<double>(walker.optimizer.get(j));
  }
}

/// Deposit a walker into every histogram whose schedule includes `step`.
template <class T, class Landscape, class Walker>
void deposit_histograms(const TypedRun<T, Landscape>& run, std::int64_t variant, std::int64_t step,
                        const Walker& walker, ObservationCounts& counts) {
  if (walker.nonfinite_step >= 0) return;
  const Landscape& landscape = run.landscape(variant);
  for (std::size_t h = 0; h < run.geometries.size(); ++h) {
    const auto& geometry = run.geometries[h];
    if (!geometry.deposits_at(step)) continue;
    const std::int32_t slot =
        geometry.slot(walker.position[geometry.x_coordinate], landscape.progress(walker.position));
    if (slot < 0) continue;
    counts.histogram_row(h, geometry.bin_count(), variant)[slot]++;
  }
}

/// Record sample `sample` of walker (variant, walker_index).
template <class T, class Landscape, class Walker>
void record_sample(const TypedRun<T, Landscape>& run, std::int64_t variant,
                   std::int64_t walker_index, std::int64_t sample, const Walker& walker,
                   ObservableArrays& observables, ObservationCounts& counts) {
  const Landscape& landscape = run.landscape(variant);
  const std::size_t slot = observables.sample_index(variant, sample, walker_index);
  const std::size_t counter = counts.sample_counter(variant, sample);
  if (walker.nonfinite_step >= 0) {
    observables.sample_progress[slot] = std::numeric_limits<float>::quiet_NaN();
    observables.sample_loss[slot] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  observables.sample_progress[slot] = static_cast<float>(landscape.progress(walker.position));
  observables.sample_loss[slot] = static_cast<float>(landscape.value(walker.position));
  counts.sample_finite[counter]++;
  counts.sample_flat[counter] += walker.basin == kFlatBasin ? 1 : 0;
}

}  // namespace sgdwalk
