// The initialize kernel: walkers at step 0, computed on the device with the shared
// initial_walker() (include/sgdwalk/walker.hpp), so a fresh batch is not uploaded. Included only
// by the advance_*.cu instantiation files.
#pragma once

#include <cstdint>

#include "advance_kernel.hpp"
#include "cuda_check.hpp"
#include "device_walkers.cuh"

namespace sgdwalk::gpu {

template <class T, class Landscape>
__global__ void initialize_kernel(const InitializeArgs<T, Landscape> args) {
  constexpr int D = Landscape::dim;
  const std::int64_t local = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (local >= args.count) return;
  const std::int64_t g = args.first + local;
  const std::int64_t variant = g / args.walkers_per_variant;
  const std::int64_t walker_index = g % args.walkers_per_variant;
  const double* start = args.starts + (walker_index % args.start_count) * D;
  Vec<T, D> position;
#pragma unroll
  for (int i = 0; i < D; ++i) position[i] = static_cast<T>(start[i]);
  const WalkerState<T, D> walker =
      initial_walker(args.landscapes[variant - args.variant_begin], args.target, position);
  store_device_walker(walker, args.walkers, local);
  // A fresh walker's optimizer state is 0 (OptimizerState, include/sgdwalk/optimizer.hpp).
  for (int j = 0; j < args.walkers.state_width; ++j) {
    args.walkers.optimizer_state[local * args.walkers.state_width + j] = 0.0;
  }
}

template <class T, class Landscape>
void launch_initialize(const InitializeArgs<T, Landscape>& args, cudaStream_t stream) {
  if (args.count == 0) return;
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned int>((args.count + kThreads - 1) / kThreads);
  initialize_kernel<T, Landscape><<<blocks, kThreads, 0, stream>>>(args);
  SGDWALK_CUDA_CHECK_LAUNCH(stream);
}

}  // namespace sgdwalk::gpu

/// Explicit instantiation of the initialize launcher for one (T, Landscape).
#define SGDWALK_INSTANTIATE_INITIALIZE(T, L) \
  template void launch_initialize<T, L>(const InitializeArgs<T, L>&, cudaStream_t);
