// FFS stage arrays ↔ the typed per-walker structs of include/sgdwalk/ffs.hpp, in the walker
// precision: the conversions every backend uses, so both start from the same bits.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/typed_run.hpp"
#include "rare_events/ffs_stage.hpp"
#include "sgdwalk/ffs.hpp"

namespace sgdwalk {

template <class T>
ffs::OrderParameter<T> make_order_parameter(const FfsSpec& spec) {
  ffs::OrderParameter<T> order;
  order.kind = spec.order;
  order.coordinate = spec.coordinate;
  order.sign = static_cast<T>(spec.sign);
  return order;
}

template <class T>
ffs::StageBounds<T> make_stage_bounds(const FfsBounds& b) {
  return ffs::StageBounds<T>{static_cast<T>(b.lambda_a), static_cast<T>(b.lambda_from),
                             static_cast<T>(b.lambda_to), static_cast<T>(b.lambda_beyond),
                             static_cast<T>(b.lambda_b)};
}

template <class T, int D, UpdateRule R = UpdateRule::sgd>
ffs::FluxWalker<T, D, R> load_flux_walker(const FfsFluxBatch& batch, std::int64_t i) {
  ffs::FluxWalker<T, D, R> f{};
  const auto k = static_cast<std::size_t>(i);
  f.walker = load_walker<T, D, R>(batch.walkers, i);
  f.step = batch.step[k];
  f.from_a = batch.from_a[k] != 0;
  f.in_b = batch.in_b[k] != 0;
  f.exposure = batch.exposure[k];
  f.crossings = batch.crossings[k];
  f.jumps = batch.jumps[k];
  f.nonfinite = batch.nonfinite[k];
  return f;
}

template <class T, int D, UpdateRule R>
void store_flux_walker(const ffs::FluxWalker<T, D, R>& f, FfsFluxBatch& batch, std::int64_t i) {
  const auto k = static_cast<std::size_t>(i);
  store_walker(f.walker, batch.walkers, i);
  batch.step[k] = f.step;
  batch.from_a[k] = f.from_a ? 1 : 0;
  batch.in_b[k] = f.in_b ? 1 : 0;
  batch.exposure[k] = f.exposure;
  batch.crossings[k] = f.crossings;
  batch.jumps[k] = f.jumps;
  batch.nonfinite[k] = f.nonfinite;
}

/// A trial at its start: the stored state (optimizer state included), its step counter, no
/// updates yet.
template <class T, int D, UpdateRule R = UpdateRule::sgd>
ffs::Trial<T, D, R> load_trial(const FfsTrialBatch& batch, std::int64_t i) {
  ffs::Trial<T, D, R> t{};
  t.walker = load_walker<T, D, R>(batch.states, i);
  t.path_step = batch.path_step[static_cast<std::size_t>(i)];
  t.steps = 0;
  return t;
}

template <class T, int D, UpdateRule R>
void store_trial(const ffs::Trial<T, D, R>& t, FfsTrialBatch& batch, std::int64_t i) {
  const auto k = static_cast<std::size_t>(i);
  store_walker(t.walker, batch.states, i);
  batch.path_step[k] = t.path_step;
  batch.steps[k] = t.steps;
  batch.max_lambda[k] = static_cast<double>(t.max_lambda);
  batch.outcome[k] = static_cast<std::uint8_t>(t.outcome);
  batch.jumped[k] = t.jumped ? 1 : 0;
}

/// Puts every flux walker at step 0 (initial positions as in a brute-force run: walker w starts at
/// plan.initial_positions[w mod count]). Host code shared by every backend.
void initialize_ffs_flux(const RunPlan& plan, FfsFluxBatch& batch);

/// λ of states [begin, end) of `states` on variant `variant`'s landscape, evaluated in the walker
/// precision (as the backends do) and returned as double. steps[i]: state i's step counter (the
/// energy order parameter uses that step's learning rate).
std::vector<double> ffs_order_values(const RunPlan& plan, std::int64_t variant,
                                     const WalkerArrays& states,
                                     const std::vector<std::int64_t>& steps, std::int64_t begin,
                                     std::int64_t end);

}  // namespace sgdwalk
