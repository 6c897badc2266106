#include "ffs_cuda.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/physics_dispatch.hpp"
#include "cuda_check.hpp"
#include "cuda_kernels.hpp"
#include "device_buffer.hpp"
#include "ffs_kernel.hpp"
#include "rare_events/ffs_typed.hpp"

namespace sgdwalk {
namespace {

using gpu::DeviceBuffer;

/// Device copies of one WalkerArrays.
struct DeviceWalkerArrays {
  DeviceBuffer<double> position, y_freeze;
  DeviceBuffer<std::int64_t> freeze_step, first_passage_step, nonfinite_step;
  DeviceBuffer<std::int32_t> basin;
  DeviceBuffer<std::uint32_t> crossings;
  DeviceBuffer<double> optimizer_state;  ///< the run's width per walker (0 for SGD: empty)
  std::int32_t state_width = 0;

  void upload(const WalkerArrays& w, cudaStream_t s) {
    position.upload(w.position.data(), w.position.size(), s);
    y_freeze.upload(w.y_freeze.data(), w.y_freeze.size(), s);
    freeze_step.upload(w.freeze_step.data(), w.freeze_step.size(), s);
    first_passage_step.upload(w.first_passage_step.data(), w.first_passage_step.size(), s);
    nonfinite_step.upload(w.nonfinite_step.data(), w.nonfinite_step.size(), s);
    basin.upload(w.basin.data(), w.basin.size(), s);
    crossings.upload(w.crossings.data(), w.crossings.size(), s);
    optimizer_state.upload(w.optimizer_state.data(), w.optimizer_state.size(), s);
    state_width = w.state_width;
  }
  /// Room for `w`'s arrays, contents unspecified (nothing copied).
  void allocate(const WalkerArrays& w) {
    position.ensure(w.position.size());
    y_freeze.ensure(w.y_freeze.size());
    freeze_step.ensure(w.freeze_step.size());
    first_passage_step.ensure(w.first_passage_step.size());
    nonfinite_step.ensure(w.nonfinite_step.size());
    basin.ensure(w.basin.size());
    crossings.ensure(w.crossings.size());
    optimizer_state.ensure(w.optimizer_state.size());
    state_width = w.state_width;
  }
  void download(WalkerArrays& w, cudaStream_t s) const {
    position.download(w.position.data(), w.position.size(), s);
    y_freeze.download(w.y_freeze.data(), w.y_freeze.size(), s);
    freeze_step.download(w.freeze_step.data(), w.freeze_step.size(), s);
    first_passage_step.download(w.first_passage_step.data(), w.first_passage_step.size(), s);
    nonfinite_step.download(w.nonfinite_step.data(), w.nonfinite_step.size(), s);
    basin.download(w.basin.data(), w.basin.size(), s);
    crossings.download(w.crossings.data(), w.crossings.size(), s);
    optimizer_state.download(w.optimizer_state.data(), w.optimizer_state.size(), s);
  }
  gpu::DeviceWalkers view() {
    return gpu::DeviceWalkers{position.data(),           y_freeze.data(),        freeze_step.data(),
                              first_passage_step.data(), nonfinite_step.data(),  basin.data(),
                              crossings.data(),          optimizer_state.data(), state_width};
  }
};

template <class V>
struct Mirror {
  DeviceBuffer<typename V::value_type> device;
  V& host;
  /// Uploads the host array, or only makes room for it when `upload` is false.
  Mirror(V& h, cudaStream_t s, bool upload = true) : host(h) {
    if (upload) {
      device.upload(h.data(), h.size(), s);
    } else {
      device.ensure(h.size());
    }
  }
  void back(cudaStream_t s) { device.download(host.data(), host.size(), s); }
  typename V::value_type* data() { return device.data(); }
};

/// Per-variant physics and bounds in precision T, on the device.
template <class T, class Landscape>
struct DevicePhysics {
  DeviceBuffer<Landscape> landscapes;
  DeviceBuffer<StepParams<T>> params;
  DeviceBuffer<StepSchedule> schedules;
  DeviceBuffer<ffs::StageBounds<T>> bounds;
  DevicePhysics(const RunPlan& plan, const std::vector<FfsBounds>& b, cudaStream_t s) {
    const TypedRun<T, Landscape> run(plan);
    std::vector<ffs::StageBounds<T>> typed;
    for (const auto& x : b) typed.push_back(make_stage_bounds<T>(x));
    landscapes.upload(run.landscapes.data(), run.landscapes.size(), s);
    params.upload(run.params.data(), run.params.size(), s);
    schedules.upload(run.schedules.data(), run.schedules.size(), s);
    bounds.upload(typed.data(), typed.size(), s);
    // The host vectors above die with this constructor: wait for the copies.
    SGDWALK_CUDA_TRY(cudaStreamSynchronize(s));
  }
};

}  // namespace

void cuda_run_ffs_flux(const RunPlan& plan, std::int64_t step_end, FfsFluxBatch& batch,
                       cudaStream_t s) {
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
    if constexpr (!gpu::kHasKernels<Landscape>) {
      throw gpu::no_kernels_error(plan.landscape, plan.dim);
    } else {
      DevicePhysics<T, Landscape> physics(plan, batch.bounds, s);
      DeviceWalkerArrays walkers, stored;
      walkers.upload(batch.walkers, s);
      // The kernel writes walker i's crossing states (and their steps) from slot stored_count[i]
      // on. The driver empties the slots before every call, so the slot arrays (walkers x
      // capacity states, the largest of the stage) need not go up then; the host reads only the
      // slots written.
      const bool slots_empty = std::all_of(batch.stored_count.begin(), batch.stored_count.end(),
                                           [](std::int32_t count) { return count == 0; });
      if (slots_empty) {
        stored.allocate(batch.stored);
      } else {
        stored.upload(batch.stored, s);
      }
      Mirror step(batch.step, s), exposure(batch.exposure, s), crossings(batch.crossings, s),
          jumps(batch.jumps, s), nonfinite(batch.nonfinite, s), from_a(batch.from_a, s),
          in_b(batch.in_b, s), stored_count(batch.stored_count, s),
          stored_step(batch.stored_step, s, !slots_empty);
      gpu::FfsFluxArgs<T, Landscape> args{};
      args.landscapes = physics.landscapes.data();
      args.params = physics.params.data();
      args.schedules = physics.schedules.data();
      args.bounds = physics.bounds.data();
      args.order = make_order_parameter<T>(plan.ffs);
      args.seed = plan.seed;
      args.replica = batch.replica;
      args.count = batch.size();
      args.walkers_per_variant = batch.walkers_per_variant;
      args.equilibration = batch.equilibration;
      args.step_end = step_end;
      args.walkers = walkers.view();
      args.step = step.data();
      args.exposure = exposure.data();
      args.crossings = crossings.data();
      args.jumps = jumps.data();
      args.nonfinite = nonfinite.data();
      args.from_a = from_a.data();
      args.in_b = in_b.data();
      args.capacity = batch.capacity;
      args.stored_count = stored_count.data();
      args.stored = stored.view();
      args.stored_step = stored_step.data();
      gpu::launch_ffs_flux<T, Landscape, Noise>(args, s);
      walkers.download(batch.walkers, s);
      stored.download(batch.stored, s);
      for (auto* m : {&step, &exposure, &crossings, &jumps, &nonfinite, &stored_step}) m->back(s);
      from_a.back(s);
      in_b.back(s);
      stored_count.back(s);
      SGDWALK_CUDA_TRY(cudaStreamSynchronize(s));
    }
  });
}

void cuda_run_ffs_trials(const RunPlan& plan, FfsTrialBatch& batch, cudaStream_t s) {
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
    if constexpr (!gpu::kHasKernels<Landscape>) {
      throw gpu::no_kernels_error(plan.landscape, plan.dim);
    } else {
      DevicePhysics<T, Landscape> physics(plan, batch.bounds, s);
      DeviceWalkerArrays states;
      states.upload(batch.states, s);
      Mirror active(batch.active, s), path_step(batch.path_step, s), steps(batch.steps, s),
          max_lambda(batch.max_lambda, s), outcome(batch.outcome, s), jumped(batch.jumped, s);
      gpu::FfsTrialArgs<T, Landscape> args{};
      args.landscapes = physics.landscapes.data();
      args.params = physics.params.data();
      args.schedules = physics.schedules.data();
      args.bounds = physics.bounds.data();
      args.active = active.data();
      args.order = make_order_parameter<T>(plan.ffs);
      args.seed = plan.seed;
      args.replica = batch.replica;
      args.stage = batch.stage;
      args.count = batch.size();
      args.trials_per_variant = batch.trials_per_variant;
      args.max_steps = batch.max_steps;
      args.states = states.view();
      args.path_step = path_step.data();
      args.steps = steps.data();
      args.max_lambda = max_lambda.data();
      args.outcome = outcome.data();
      args.jumped = jumped.data();
      gpu::launch_ffs_trials<T, Landscape, Noise>(args, s);
      states.download(batch.states, s);
      path_step.back(s);
      steps.back(s);
      max_lambda.back(s);
      outcome.back(s);
      jumped.back(s);
      SGDWALK_CUDA_TRY(cudaStreamSynchronize(s));
    }
  });
}

}  // namespace sgdwalk
