// The FFS kernels (see ffs_kernel.hpp). One thread per flux walker or trial; the walker state is
// read from and written to the double-precision DeviceWalkers arrays as the CPU backend's
// load_walker/store_walker do (cuda/device_walkers.cuh), so both start and end with the same bits.
// Trials differ in length by orders of magnitude, so a warp waits for its longest trial: the price
// of one launch per stage (most trials fall back within tens of steps).
#pragma once

#include <cstdint>

#include "cuda_check.hpp"
#include "device_walkers.cuh"
#include "ffs_kernel.hpp"

namespace sgdwalk::gpu {

/// The update rule of the FFS kernels: every optimizer, chosen at run time (ffs_kernel.hpp).
inline constexpr UpdateRule kFfsRule = UpdateRule::any;

template <class T, class Landscape, NoiseKind Noise>
__global__ void ffs_flux_kernel(const FfsFluxArgs<T, Landscape> args) {
  constexpr int D = Landscape::dim;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= args.count) return;
  const std::int64_t variant = i / args.walkers_per_variant;
  const std::int64_t w = i % args.walkers_per_variant;
  const Landscape landscape = args.landscapes[variant];
  const ffs::StepConstants<T> constants =
      ffs::make_step_constants(args.params[variant], args.schedules[variant]);
  const ffs::StageBounds<T> bounds = args.bounds[variant];
  ffs::FluxWalker<T, D, kFfsRule> f;
  f.walker = load_device_walker<T, D, kFfsRule>(args.walkers, i);
  f.step = args.step[i];
  f.from_a = args.from_a[i] != 0;
  f.in_b = args.in_b[i] != 0;
  f.exposure = args.exposure[i];
  f.crossings = args.crossings[i];
  f.jumps = args.jumps[i];
  f.nonfinite = args.nonfinite[i];
  auto normals = ffs::StreamNormals<T>::make(args.seed, ffs::subsequence(variant, w),
                                             ffs::block_base(args.replica, 0));
  std::int32_t stored = args.stored_count[i];
  while (f.step < args.step_end && stored < args.capacity) {
    if (ffs::flux_update<Noise>(landscape, constants, args.order, bounds, normals,
                                args.equilibration, f)) {
      const std::int64_t slot = i * args.capacity + stored;
      store_device_walker(f.walker, args.stored, slot);
      args.stored_step[slot] = f.step;
      ++stored;
    }
  }
  args.stored_count[i] = stored;
  store_device_walker(f.walker, args.walkers, i);
  args.step[i] = f.step;
  args.from_a[i] = f.from_a ? 1 : 0;
  args.in_b[i] = f.in_b ? 1 : 0;
  args.exposure[i] = f.exposure;
  args.crossings[i] = f.crossings;
  args.jumps[i] = f.jumps;
  args.nonfinite[i] = f.nonfinite;
}

template <class T, class Landscape, NoiseKind Noise>
__global__ void ffs_trial_kernel(const FfsTrialArgs<T, Landscape> args) {
  constexpr int D = Landscape::dim;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= args.count) return;
  const std::int64_t variant = i / args.trials_per_variant;
  const std::int64_t j = i % args.trials_per_variant;
  if (args.active[variant] == 0) return;
  ffs::Trial<T, D, kFfsRule> trial;
  trial.walker = load_device_walker<T, D, kFfsRule>(args.states, i);
  trial.path_step = args.path_step[i];
  trial.steps = 0;
  auto normals = ffs::StreamNormals<T>::make(args.seed, ffs::subsequence(variant, j),
                                             ffs::block_base(args.replica, args.stage));
  ffs::run_trial<Noise>(args.landscapes[variant],
                        ffs::make_step_constants(args.params[variant], args.schedules[variant]),
                        args.order, args.bounds[variant], normals, args.max_steps, trial);
  store_device_walker(trial.walker, args.states, i);
  args.path_step[i] = trial.path_step;
  args.steps[i] = trial.steps;
  args.max_lambda[i] = static_cast<double>(trial.max_lambda);
  args.outcome[i] = static_cast<std::uint8_t>(trial.outcome);
  args.jumped[i] = trial.jumped ? 1 : 0;
}

template <class T, class Landscape, NoiseKind Noise>
void launch_ffs_flux(const FfsFluxArgs<T, Landscape>& args, cudaStream_t stream) {
  if (args.count == 0) return;
  constexpr int kThreads = 128;
  const auto blocks = static_cast<unsigned int>((args.count + kThreads - 1) / kThreads);
  ffs_flux_kernel<T, Landscape, Noise><<<blocks, kThreads, 0, stream>>>(args);
  SGDWALK_CUDA_CHECK_LAUNCH(stream);
}

template <class T, class Landscape, NoiseKind Noise>
void launch_ffs_trials(const FfsTrialArgs<T, Landscape>& args, cudaStream_t stream) {
  if (args.count == 0) return;
  constexpr int kThreads = 128;
  const auto blocks = static_cast<unsigned int>((args.count + kThreads - 1) / kThreads);
  ffs_trial_kernel<T, Landscape, Noise><<<blocks, kThreads, 0, stream>>>(args);
  SGDWALK_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace sgdwalk::gpu

// The FFS stages of one (T, Landscape) and noise model M (a noise registry entry, as for
// SGDWALK_INSTANTIATE_ADVANCE_NOISE): cuda/CMakeLists.txt writes one line per entry of the noise
// registry into each landscape's generated source. Use at namespace scope in sgdwalk::gpu.
#define SGDWALK_INSTANTIATE_FFS_NOISE(T, L, M)                                          \
  template void launch_ffs_flux<T, L, M::kind>(const FfsFluxArgs<T, L>&, cudaStream_t); \
  template void launch_ffs_trials<T, L, M::kind>(const FfsTrialArgs<T, L>&, cudaStream_t);
