#include "run_data.hpp"

namespace sgdwalk {

void WalkerArrays::resize(std::int64_t walkers, int dimension) {
  const auto n = static_cast<std::size_t>(walkers);
  dim = dimension;
  position.assign(n * static_cast<std::size_t>(dimension), 0.0);
  y_freeze.assign(n, 0.0);
  freeze_step.assign(n, 0);
  first_passage_step.assign(n, -1);
  nonfinite_step.assign(n, -1);
  basin.assign(n, 0);
  crossings.assign(n, 0);
}

void ObservableArrays::resize(const RunPlan& plan) {
  variants = plan.variant_count();
  samples = plan.sample_count();
  walkers_per_variant = plan.walkers_per_variant;
  const auto per_walker = static_cast<std::size_t>(variants * samples * walkers_per_variant);
  sample_progress.assign(per_walker, 0.0f);
  sample_loss.assign(per_walker, 0.0f);
  sample_flat.assign(static_cast<std::size_t>(variants * samples), 0);
  sample_finite.assign(static_cast<std::size_t>(variants * samples), 0);
  histogram_counts.clear();
  for (const auto& histogram : plan.histograms) {
    histogram_counts.emplace_back(static_cast<std::size_t>(variants * (histogram.bin_count() + 1)),
                                  0);
  }
}

}  // namespace sgdwalk
