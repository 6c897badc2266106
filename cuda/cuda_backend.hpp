// The CUDA backend's host-visible interface. Host code includes this header only; kernels live in
// .cu files of this directory (advance_kernel.cuh) behind plain launch functions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace sgdwalk {

struct CudaDeviceInfo {
  int count = 0;
  std::string description;  ///< one line per device: index, name, SMs, memory
  std::string error;        ///< why there is no device, when count == 0
};

/// Queries the CUDA runtime; never throws.
CudaDeviceInfo cuda_devices();

/// Launch and batching knobs of the CUDA backend. None of them changes a single result bit (the
/// tests run the same plan under different values); they exist for tuning and for those tests.
struct CudaTuning {
  /// Threads per block: a multiple of 32 in [32, 256]. Smaller when a variant has fewer walkers.
  int block_threads = 256;
  /// Sample steps per kernel launch (bounds the per-walker sample buffers on the device).
  int max_samples_per_launch = 64;
  /// Steps per kernel launch (bounds the block-local 32-bit histogram counters); at most 2^23.
  std::int64_t max_steps_per_launch = std::int64_t{1} << 22;
  /// Histograms whose slots of one variant take at most this many bytes (4 per slot) are counted in
  /// shared memory per block; larger ones go straight to global memory with 64-bit atomics.
  int max_shared_histogram_bytes = 32 * 1024;
  /// Also copy every walker's sample values into RunData::observables (the tests compare them
  /// with the CPU backend's). The tallies are reduced on the device either way, so by default
  /// per-walker sample values never cross PCIe.
  bool copy_sample_values = false;
};

/// The CUDA backend on `device`. Throws std::runtime_error with a clear message when no device is
/// usable (or this binary has no kernel image for it) and std::invalid_argument for bad tuning.
std::unique_ptr<Backend> make_cuda_backend(int device);
std::unique_ptr<Backend> make_cuda_backend(int device, const CudaTuning& tuning);

}  // namespace sgdwalk
