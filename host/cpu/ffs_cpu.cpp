#include "cpu/ffs_cpu.hpp"

#include <omp.h>

#include "rare_events/ffs_typed.hpp"

namespace sgdwalk {

void cpu_run_ffs_flux(const RunPlan& plan, std::int64_t step_end, FfsFluxBatch& batch,
                      int threads) {
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
    constexpr int D = Landscape::dim;
    const TypedRun<T, Landscape> run(plan);
    const ffs::OrderParameter<T> order = make_order_parameter<T>(plan.ffs);
    const std::int64_t n = batch.size();
#pragma omp parallel for schedule(dynamic, 16) \
    num_threads(threads > 0 ? threads : omp_get_max_threads())
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t variant = i / batch.walkers_per_variant;
      const std::int64_t w = i % batch.walkers_per_variant;
      const auto v = static_cast<std::size_t>(variant);
      const Landscape& landscape = run.landscapes[v];
      const StepParams<T>& params = run.params[v];
      const ffs::StageBounds<T> bounds = make_stage_bounds<T>(batch.bounds[v]);
      ffs::FluxWalker<T, D> f = load_flux_walker<T, D>(batch, i);
      auto normals = ffs::StreamNormals<T>::make(plan.seed, ffs::subsequence(variant, w),
                                                 ffs::block_base(batch.replica, 0));
      std::int32_t& stored = batch.stored_count[static_cast<std::size_t>(i)];
      while (f.step < step_end && stored < batch.capacity) {
        if (ffs::flux_update<Noise>(landscape, params, order, bounds, normals, batch.equilibration,
                                    f)) {
          const std::int64_t slot = i * batch.capacity + stored;
          store_walker(f.walker, batch.stored, slot);
          batch.stored_step[static_cast<std::size_t>(slot)] = f.step;
          ++stored;
        }
      }
      store_flux_walker(f, batch, i);
    }
  });
}

void cpu_run_ffs_trials(const RunPlan& plan, FfsTrialBatch& batch, int threads) {
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
    constexpr int D = Landscape::dim;
    const TypedRun<T, Landscape> run(plan);
    const ffs::OrderParameter<T> order = make_order_parameter<T>(plan.ffs);
    const std::int64_t n = batch.size();
    // Trial lengths vary by orders of magnitude (most fall back at once): small dynamic chunks.
#pragma omp parallel for schedule(dynamic, 4) \
    num_threads(threads > 0 ? threads : omp_get_max_threads())
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t variant = i / batch.trials_per_variant;
      const std::int64_t j = i % batch.trials_per_variant;
      const auto v = static_cast<std::size_t>(variant);
      if (!batch.active[v]) continue;
      ffs::Trial<T, D> trial = load_trial<T, D>(batch, i);
      auto normals = ffs::StreamNormals<T>::make(plan.seed, ffs::subsequence(variant, j),
                                                 ffs::block_base(batch.replica, batch.stage));
      ffs::run_trial<Noise>(run.landscapes[v], run.params[v], order,
                            make_stage_bounds<T>(batch.bounds[v]), normals, batch.max_steps, trial);
      store_trial(trial, batch, i);
    }
  });
}

}  // namespace sgdwalk
