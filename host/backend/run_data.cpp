#include "backend/run_data.hpp"

#include <algorithm>
#include <limits>

namespace sgdwalk {

void WalkerArrays::resize(std::int64_t walkers, int dimension, std::int64_t first_walker,
                          int optimizer_state_width) {
  const auto n = static_cast<std::size_t>(walkers);
  dim = dimension;
  state_width = optimizer_state_width;
  optimizer_state.assign(n * static_cast<std::size_t>(state_width), 0.0);
  first = first_walker;
  position.assign(n * static_cast<std::size_t>(dimension), 0.0);
  y_freeze.assign(n, 0.0);
  freeze_step.assign(n, 0);
  first_passage_step.assign(n, -1);
  nonfinite_step.assign(n, -1);
  basin.assign(n, 0);
  crossings.assign(n, 0);
}

void WalkerArrays::mark_unfinished(std::int64_t begin, std::int64_t end) {
  if (end <= begin) return;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto fill = [&](std::vector<double>& values, int width) {
    std::fill(values.begin() + static_cast<std::ptrdiff_t>(at(begin)) * width,
              values.begin() + static_cast<std::ptrdiff_t>(at(end)) * width, nan);
  };
  fill(position, dim);
  fill(y_freeze, 1);
  fill(optimizer_state, state_width);
  std::fill(basin.begin() + static_cast<std::ptrdiff_t>(at(begin)),
            basin.begin() + static_cast<std::ptrdiff_t>(at(end)), -1);
}

void WalkerArrays::copy_from(const WalkerArrays& source, std::int64_t begin, std::int64_t end) {
  if (end <= begin) return;
  const auto n = static_cast<std::ptrdiff_t>(end - begin);
  const auto from = static_cast<std::ptrdiff_t>(source.at(begin));
  const auto to = static_cast<std::ptrdiff_t>(at(begin));
  const auto copy = [&](const auto& src, auto& dst, std::ptrdiff_t width) {
    std::copy_n(src.begin() + from * width, n * width, dst.begin() + to * width);
  };
  copy(source.position, position, dim);
  copy(source.y_freeze, y_freeze, 1);
  copy(source.freeze_step, freeze_step, 1);
  copy(source.first_passage_step, first_passage_step, 1);
  copy(source.nonfinite_step, nonfinite_step, 1);
  copy(source.basin, basin, 1);
  copy(source.crossings, crossings, 1);
  copy(source.optimizer_state, optimizer_state, state_width);
}

void ObservableArrays::resize(const RunPlan& plan, std::int64_t batch_capacity,
                              std::int64_t first_walker) {
  variants = plan.variant_count();
  samples = plan.sample_count();
  walkers_per_variant = plan.walkers_per_variant;
  first = first_walker;
  capacity = batch_capacity;
  const auto values = static_cast<std::size_t>(samples * capacity);
  sample_progress.assign(values, 0.0f);
  sample_loss.assign(values, 0.0f);
  sample_flat.assign(static_cast<std::size_t>(variants * samples), 0);
  sample_finite.assign(static_cast<std::size_t>(variants * samples), 0);
  histogram_counts.clear();
  for (const auto& histogram : plan.histograms) {
    histogram_counts.emplace_back(static_cast<std::size_t>(variants * (histogram.bin_count() + 1)),
                                  0);
  }
}

void VariantTally::merge(const VariantTally& other) {
  walkers += other.walkers;
  finite += other.finite;
  nonfinite += other.nonfinite;
  flat += other.flat;
  if (other.first_nonfinite_step >= 0) {
    first_nonfinite_step = first_nonfinite_step < 0
                               ? other.first_nonfinite_step
                               : std::min(first_nonfinite_step, other.first_nonfinite_step);
  }
  freezing_time.merge(other.freezing_time);
  y_freeze.merge(other.y_freeze);
  crossings.merge(other.crossings);
  started_in_target += other.started_in_target;
  arrived += other.arrived;
  censored += other.censored;
  passage_steps.merge(other.passage_steps);
  exposure_steps.merge(other.exposure_steps);
  for (int b = 0; b < kLog2Bins; ++b) {
    freezing_time_histogram[b] += other.freezing_time_histogram[b];
    crossings_histogram[b] += other.crossings_histogram[b];
    passage_histogram[b] += other.passage_histogram[b];
  }
  y_freeze_sketch.merge(other.y_freeze_sketch);
}

void RunTallies::resize(const RunPlan& plan) {
  variants.assign(static_cast<std::size_t>(plan.variant_count()), VariantTally{});
  samples.assign(static_cast<std::size_t>(plan.variant_count() * plan.sample_count()),
                 SampleTally{});
}

void RunData::resize(const RunPlan& plan, std::int64_t batch_capacity) {
  walkers.resize(batch_capacity, plan.dim, 0, plan.optimizer_state_width());
  observables.resize(plan, batch_capacity);
  tallies.resize(plan);
}

}  // namespace sgdwalk
