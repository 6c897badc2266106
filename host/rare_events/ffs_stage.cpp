#include "rare_events/ffs_stage.hpp"

namespace sgdwalk {

void FfsFluxBatch::resize(std::int64_t variants, std::int64_t walkers, int dim, int state_width) {
  walkers_per_variant = walkers;
  const std::int64_t n = variants * walkers;
  const auto size = static_cast<std::size_t>(n);
  this->walkers.resize(n, dim, 0, state_width);
  step.assign(size, 0);
  exposure.assign(size, 0);
  crossings.assign(size, 0);
  jumps.assign(size, 0);
  nonfinite.assign(size, 0);
  from_a.assign(size, 0);
  in_b.assign(size, 0);
  stored_count.assign(size, 0);
  stored.resize(n * capacity, dim, 0, state_width);
  stored_step.assign(size * static_cast<std::size_t>(capacity), 0);
}

void FfsTrialBatch::resize(std::int64_t variants, std::int64_t trials, int dim, int state_width) {
  trials_per_variant = trials;
  const std::int64_t n = variants * trials;
  const auto size = static_cast<std::size_t>(n);
  states.resize(n, dim, 0, state_width);
  path_step.assign(size, 0);
  steps.assign(size, 0);
  max_lambda.assign(size, 0);
  outcome.assign(size, 0);
  jumped.assign(size, 0);
}

}  // namespace sgdwalk

#include <stdexcept>

#include "backend/backend.hpp"
#include "rare_events/ffs_typed.hpp"

namespace sgdwalk {

void Backend::run_ffs_flux(const RunPlan&, std::int64_t, FfsFluxBatch&) {
  throw std::runtime_error("the " + name() + " backend does not run forward flux sampling");
}

void Backend::run_ffs_trials(const RunPlan&, FfsTrialBatch&) {
  throw std::runtime_error("the " + name() + " backend does not run forward flux sampling");
}

void initialize_ffs_flux(const RunPlan& plan, FfsFluxBatch& batch) {
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind>() {
    constexpr int D = Landscape::dim;
    const TypedRun<T, Landscape> run(plan);
    const ffs::OrderParameter<T> order = make_order_parameter<T>(plan.ffs);
    for (std::int64_t i = 0; i < batch.size(); ++i) {
      const std::int64_t variant = i / batch.walkers_per_variant;
      const std::int64_t w = i % batch.walkers_per_variant;
      const auto& start =
          plan.initial_positions[static_cast<std::size_t>(w) % plan.initial_positions.size()];
      Vec<T, D> position;
      for (int d = 0; d < D; ++d) position[d] = static_cast<T>(start[static_cast<std::size_t>(d)]);
      // UpdateRule::any: a fresh optimizer state (0) of every width is stored.
      const auto f = ffs::initial_flux_walker<UpdateRule::any>(
          run.landscapes[static_cast<std::size_t>(variant)], order,
          make_stage_bounds<T>(batch.bounds[static_cast<std::size_t>(variant)]), position);
      store_flux_walker(f, batch, i);
    }
  });
}

std::vector<double> ffs_order_values(const RunPlan& plan, std::int64_t variant,
                                     const WalkerArrays& states,
                                     const std::vector<std::int64_t>& steps, std::int64_t begin,
                                     std::int64_t end) {
  std::vector<double> values;
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind>() {
    constexpr int D = Landscape::dim;
    const TypedRun<T, Landscape> run(plan);
    const auto v = static_cast<std::size_t>(variant);
    const ffs::StepConstants<T> constants =
        ffs::make_step_constants(run.params[v], run.schedules[v]);
    const ffs::OrderParameter<T> order = make_order_parameter<T>(plan.ffs);
    // UpdateRule::any loads the optimizer state of every width (the energy's velocity).
    for (std::int64_t i = begin; i < end; ++i) {
      values.push_back(static_cast<double>(
          order.at_step(run.landscapes[v], load_walker<T, D, UpdateRule::any>(states, i), constants,
                        steps[static_cast<std::size_t>(i)])));
    }
  });
  return values;
}

}  // namespace sgdwalk
