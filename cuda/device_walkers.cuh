// A walker's state read from and written to the double-precision DeviceWalkers arrays
// (advance_kernel.hpp): the one definition the advance, initialize and FFS kernels use, matching
// the CPU backend's load_walker/store_walker (host/backend/typed_run.hpp), so both backends start
// and end every launch with the same bits.
#pragma once

#include <cstdint>

#include "advance_kernel.hpp"

namespace sgdwalk::gpu {

/// Walker k of `w`. The stored optimizer state has the run's width (0 for SGD, D for momentum,
/// 2D for adam and rmsprop: OptimizerState's flat layout); the rest of a wider rule's numbers
/// (`any` holds 2D) start, and stay, 0.
template <class T, int D, UpdateRule R>
__device__ WalkerState<T, D, R> load_device_walker(const DeviceWalkers& w, std::int64_t k) {
  WalkerState<T, D, R> walker;
#pragma unroll
  for (int i = 0; i < D; ++i) walker.position[i] = static_cast<T>(w.position[k * D + i]);
  constexpr int W = OptimizerState<T, D, R>::width;
  const int width = w.state_width;
#pragma unroll
  for (int j = 0; j < W; ++j) {
    walker.optimizer.set(j, j < width ? static_cast<T>(w.optimizer_state[k * width + j]) : T(0));
  }
  walker.freeze_step = w.freeze_step[k];
  walker.first_passage_step = w.first_passage_step[k];
  walker.nonfinite_step = w.nonfinite_step[k];
  walker.y_freeze = static_cast<T>(w.y_freeze[k]);
  walker.basin = w.basin[k];
  walker.crossings = w.crossings[k];
  return walker;
}

/// Writes `walker` as walker k of `w`: its first state_width optimizer numbers (none for a rule
/// without state; the initialize kernel writes a fresh walker's zeros itself).
template <class T, int D, UpdateRule R>
__device__ void store_device_walker(const WalkerState<T, D, R>& walker, const DeviceWalkers& w,
                                    std::int64_t k) {
#pragma unroll
  for (int i = 0; i < D; ++i) w.position[k * D + i] = static_cast<double>(walker.position[i]);
  w.freeze_step[k] = walker.freeze_step;
  w.first_passage_step[k] = walker.first_passage_step;
  w.nonfinite_step[k] = walker.nonfinite_step;
  w.y_freeze[k] = static_cast<double>(walker.y_freeze);
  w.basin[k] = walker.basin;
  w.crossings[k] = walker.crossings;
  constexpr int W = OptimizerState<T, D, R>::width;
  const int width = w.state_width;
#pragma unroll
  for (int j = 0; j < W; ++j) {
    if (j < width) w.optimizer_state[k * width + j] = static_cast<double>(walker.optimizer.get(j));
  }
}

}  // namespace sgdwalk::gpu
