// Forward flux sampling on the device: the launch arguments of the flux-stage and trial-stage
// kernels (plain C++, included by the backend's host code) and their launchers. One launch runs a
// whole stage: every flux walker, or every trial, of every variant (one thread each), through the
// shared per-walker logic of include/sgdwalk/ffs.hpp, so the CPU and CUDA backends give the same
// bits. The kernels run UpdateRule::any for every optimizer (plain SGD included: its branch is
// sgd_update), with the walkers' optimizer state in DeviceWalkers and each step's constants from
// the variant's StepParams or, for scheduled variants, step_params_at on its StepSchedule at the
// walker's real step (ffs::StepConstants): one instance per (precision, landscape, noise). The
// kernels are in ffs_kernel.cuh, instantiated for every registry entry in the generated
// per-landscape sources (cuda/advance_landscape.cu.in).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "advance_kernel.hpp"
#include "sgdwalk/ffs.hpp"

namespace sgdwalk::gpu {

/// The flux stage: walker i (of variants × walkers_per_variant) advances from step[i] towards
/// step_end, storing its counted crossings in slots [i · capacity, (i + 1) · capacity).
template <class T, class Landscape>
struct FfsFluxArgs {
  const Landscape* landscapes;        ///< [variant]
  const StepParams<T>* params;        ///< [variant]: of step 1 (of every step unless per_step)
  const StepSchedule* schedules;      ///< [variant]: every step's constants (per_step variants)
  const ffs::StageBounds<T>* bounds;  ///< [variant]
  ffs::OrderParameter<T> order;
  std::uint64_t seed;
  std::int32_t replica;
  std::int64_t count, walkers_per_variant, equilibration, step_end;
  DeviceWalkers walkers;
  std::int64_t *step, *exposure, *crossings, *jumps, *nonfinite;
  std::uint8_t *from_a, *in_b;
  std::int32_t capacity;
  std::int32_t* stored_count;
  DeviceWalkers stored;
  std::int64_t* stored_step;
};

/// A trial stage: trial i (of variants × trials_per_variant) runs ffs::run_trial from its start
/// state; variants with active[v] == 0 are skipped.
template <class T, class Landscape>
struct FfsTrialArgs {
  const Landscape* landscapes;
  const StepParams<T>* params;
  const StepSchedule* schedules;
  const ffs::StageBounds<T>* bounds;
  const std::uint8_t* active;
  ffs::OrderParameter<T> order;
  std::uint64_t seed;
  std::int32_t replica, stage;
  std::int64_t count, trials_per_variant, max_steps;
  DeviceWalkers states;
  std::int64_t *path_step, *steps;
  double* max_lambda;
  std::uint8_t *outcome, *jumped;
};

template <class T, class Landscape, NoiseKind Noise>
void launch_ffs_flux(const FfsFluxArgs<T, Landscape>& args, cudaStream_t stream);
template <class T, class Landscape, NoiseKind Noise>
void launch_ffs_trials(const FfsTrialArgs<T, Landscape>& args, cudaStream_t stream);

}  // namespace sgdwalk::gpu
