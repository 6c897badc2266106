// A run's batch arrays hold one batch at a time; tests that compare or inspect every walker run
// through execute_all(), which gathers each finished batch (walkers and sample values) into
// whole-ensemble arrays. Header-only.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backend/backend.hpp"
#include "backend/plan.hpp"
#include "backend/run_data.hpp"
#include "run/driver.hpp"

namespace sgdwalk::testing {

/// Copies walkers [first, last) of `batch` (state and sample values) into `all`, sized for the
/// whole ensemble.
inline void gather_batch(const RunData& batch, std::int64_t first, std::int64_t last,
                         RunData& all) {
  all.walkers.copy_from(batch.walkers, first, last);
  const ObservableArrays& a = batch.observables;
  ObservableArrays& b = all.observables;
  const std::int64_t W = a.walkers_per_variant;
  for (std::int64_t k = 0; k < a.samples; ++k) {
    for (std::int64_t g = first; g < last; ++g) {
      const std::size_t i = a.sample_index(g / W, k, g % W), j = b.sample_index(g / W, k, g % W);
      b.sample_progress[j] = a.sample_progress[i];
      b.sample_loss[j] = a.sample_loss[i];
    }
  }
}

/// execute_from() whose outcome.data holds every walker finished in this call (and its sample
/// values) in whole-ensemble arrays, with the run's counters, histograms and tallies.
inline RunOutcome execute_from_all(const RunPlan& plan, Backend& backend, ExecuteOptions options,
                                   RunData data, RunProgress progress) {
  RunData all;
  all.resize(plan);
  auto inner = options.on_batch;
  options.on_batch = [&](const RunData& batch, std::int64_t first, std::int64_t last) {
    gather_batch(batch, first, last, all);
    if (inner) inner(batch, first, last);
  };
  RunOutcome outcome = execute_from(plan, backend, options, std::move(data), progress);
  all.observables.sample_flat = outcome.data.observables.sample_flat;
  all.observables.sample_finite = outcome.data.observables.sample_finite;
  all.observables.histogram_counts = outcome.data.observables.histogram_counts;
  all.tallies = outcome.data.tallies;
  outcome.data = std::move(all);
  return outcome;
}

/// execute() with every walker in outcome.data (see execute_from_all).
inline RunOutcome execute_all(const RunPlan& plan, Backend& backend,
                              const ExecuteOptions& options) {
  RunData data;
  data.resize(plan, 0);
  return execute_from_all(plan, backend, options, std::move(data), RunProgress{});
}

}  // namespace sgdwalk::testing
