#include "cpu/ffs_cpu.hpp"

#include <omp.h>

#include "rare_events/ffs_typed.hpp"

namespace sgdwalk {
namespace {

/// Calls `f.template operator()<R>()` with the update rule the FFS stages compile for the plan's
/// optimizer (ffs::cpu_update_rule: plain SGD's own code, or `any` for every other optimizer).
template <class F>
void dispatch_ffs_rule(const RunPlan& plan, F&& f) {
  if (ffs::cpu_update_rule(plan.optimizer) == UpdateRule::sgd) {
    f.template operator()<UpdateRule::sgd>();
  } else {
    f.template operator()<UpdateRule::any>();
  }
}

}  // namespace

void cpu_run_ffs_flux(const RunPlan& plan, std::int64_t step_end, FfsFluxBatch& batch,
                      int threads) {
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
    dispatch_ffs_rule(plan, [&]<UpdateRule R>() {
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
        const ffs::StepConstants<T> constants =
            ffs::make_step_constants(run.params[v], run.schedules[v]);
        const ffs::StageBounds<T> bounds = make_stage_bounds<T>(batch.bounds[v]);
        ffs::FluxWalker<T, D, R> f = load_flux_walker<T, D, R>(batch, i);
        auto normals = ffs::StreamNormals<T>::make(plan.seed, ffs::subsequence(variant, w),
                                                   ffs::block_base(batch.replica, 0));
        std::int32_t& stored = batch.stored_count[static_cast<std::size_t>(i)];
        while (f.step < step_end && stored < batch.capacity) {
          if (ffs::flux_update<Noise>(landscape, constants, order, bounds, normals,
                                      batch.equilibration, f)) {
            const std::int64_t slot = i * batch.capacity + stored;
            store_walker(f.walker, batch.stored, slot);
            batch.stored_step[static_cast<std::size_t>(slot)] = f.step;
            ++stored;
          }
        }
        store_flux_walker(f, batch, i);
      }
    });
  });
}

void cpu_run_ffs_trials(const RunPlan& plan, FfsTrialBatch& batch, int threads) {
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
    dispatch_ffs_rule(plan, [&]<UpdateRule R>() {
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
        ffs::Trial<T, D, R> trial = load_trial<T, D, R>(batch, i);
        auto normals = ffs::StreamNormals<T>::make(plan.seed, ffs::subsequence(variant, j),
                                                   ffs::block_base(batch.replica, batch.stage));
        ffs::run_trial<Noise>(
            run.landscapes[v], ffs::make_step_constants(run.params[v], run.schedules[v]), order,
            make_stage_bounds<T>(batch.bounds[v]), normals, batch.max_steps, trial);
        store_trial(trial, batch, i);
      }
    });
  });
}

}  // namespace sgdwalk
