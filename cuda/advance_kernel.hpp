// The advance kernel's host-visible interface: its argument struct (a trivially copyable view of
// device buffers), its launch shape, and the launcher declaration. Plain C++ (no kernel code, no
// curand), so the backend's host code includes it from a .cpp compiled by the host compiler with
// the same flags as the CPU backend. The kernel itself is in advance_kernel.cuh; advance_*.cu
// instantiate it for every (precision, landscape, noise) combination.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "sgdwalk/hd.hpp"
#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/noise.hpp"
#include "sgdwalk/observables.hpp"
#include "sgdwalk/stable.hpp"
#include "sgdwalk/walker.hpp"

namespace sgdwalk::gpu {

/// Largest block the kernel is compiled for (`__launch_bounds__`); launches use a multiple of 32
/// up to this.
inline constexpr int kMaxBlockThreads = 256;
/// Blocks of kMaxBlockThreads per multiprocessor the register allocation must allow (2 × 256 =
/// 512 resident threads at most 128 registers each); the float Hessian-noise kernels ask for 3
/// (min_blocks_per_sm in advance_kernel.cuh).
inline constexpr int kMinBlocksPerSm = 2;
/// Dynamic shared memory a block may use without opting in (cudaFuncSetAttribute).
inline constexpr std::size_t kDefaultSharedLimit = 48 * 1024;

/// The Philox subsequence of walker `walker` of variant `variant`. Must equal
/// RunPlan::subsequence (host/backend/plan.hpp, which device code does not include); the backend
/// checks that when it is created.
SGDWALK_FN std::uint64_t walker_subsequence(std::int64_t variant, std::int64_t walker) {
  return (static_cast<std::uint64_t>(variant) << 32) + static_cast<std::uint64_t>(walker);
}

/// Device copies of WalkerArrays for walkers [first, first + count), indexed by g − first.
struct DeviceWalkers {
  double* position;  ///< [local · dim + i]
  double* y_freeze;
  std::int64_t* freeze_step;
  std::int64_t* first_passage_step;
  std::int64_t* nonfinite_step;
  std::int32_t* basin;
  std::uint32_t* crossings;
  double* optimizer_state;   ///< [local · state_width + j] (OptimizerState's flat layout)
  std::int32_t state_width;  ///< 0 for SGD
};

/// One histogram as the kernel sees it: its geometry and where its slots start within a
/// variant's block of `slots_per_variant` counters (all histograms of a variant side by side).
template <class T>
struct DeviceHistogram {
  HistogramGeometry<T> geometry;
  std::int32_t base;
};

/// Byte offsets inside a block's dynamic shared memory. Computed on the host.
struct SharedLayout {
  std::uint32_t step_table;          ///< this block's row of AdvanceArgs::step_table (a pointer)
  std::uint32_t histograms;          ///< DeviceHistogram<T>[histogram_count]
  std::uint32_t sample_steps;        ///< int64[sample_count]
  std::uint32_t sample_counters;     ///< uint32[2 · sample_count]: flat, then finite
  std::uint32_t histogram_counters;  ///< uint32[slots_per_variant] when shared_histograms
  std::uint32_t bytes;               ///< total
};

inline constexpr std::size_t align_up(std::size_t n, std::size_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

inline SharedLayout make_shared_layout(std::size_t histogram_struct_bytes, int histogram_count,
                                       int sample_count, int slots_per_variant,
                                       bool shared_histograms) {
  SharedLayout layout{};
  std::size_t offset = 0;
  // Every block serves one variant: the start of its row of the step table sits in shared memory,
  // read at the steps of a scheduled run (no register holds it through the step loop).
  layout.step_table = static_cast<std::uint32_t>(offset);
  offset = align_up(offset + sizeof(void*), 16);
  layout.histograms = static_cast<std::uint32_t>(offset);
  offset =
      align_up(offset + histogram_struct_bytes * static_cast<std::size_t>(histogram_count), 16);
  layout.sample_steps = static_cast<std::uint32_t>(offset);
  offset = align_up(offset + sizeof(std::int64_t) * static_cast<std::size_t>(sample_count), 16);
  layout.sample_counters = static_cast<std::uint32_t>(offset);
  offset =
      align_up(offset + 2 * sizeof(std::uint32_t) * static_cast<std::size_t>(sample_count), 16);
  layout.histogram_counters = static_cast<std::uint32_t>(offset);
  if (shared_histograms) {
    offset += sizeof(std::uint32_t) * static_cast<std::size_t>(slots_per_variant);
  }
  layout.bytes = static_cast<std::uint32_t>(align_up(offset, 16));
  return layout;
}

/// Everything one launch needs, by value. Block b handles variant variant_begin + b /
/// chunks_per_variant, walkers [chunk · blockDim, (chunk + 1) · blockDim) of that variant's part
/// of the batch (chunk = b % chunks_per_variant).
template <class T, class Landscape>
struct AdvanceArgs {
  // Physics, per variant of the batch (index variant − variant_begin), computed on the host.
  const Landscape* landscapes;
  const StepParams<T>* params;    ///< of step 1 (of every step when step_table is null)
  const StableParams<T>* stable;  ///< read by the alpha_stable kernels only
  /// Scheduled runs (StepSchedule::per_step): the constants of every step of the launch, computed
  /// by the host with step_params_at: [variant · table_steps + step − step_begin − 1]; else null.
  /// Read by the stateful kernel only (UpdateRule::any); the SGD kernel runs unscheduled SGD.
  const StepParams<T>* step_table;
  std::int64_t table_steps;
  PassageTarget<T> target;
  const DeviceHistogram<T>* histograms;
  std::int32_t histogram_count;
  std::int32_t slots_per_variant;  ///< Σ over histograms of bins + 1
  bool shared_histograms;          ///< count in shared memory, else straight into global memory

  // Walkers.
  std::uint64_t seed;
  std::int64_t first;  ///< global index of local walker 0
  std::int64_t count;  ///< walkers in the batch
  std::int64_t walkers_per_variant;
  std::int64_t variant_begin;
  std::int64_t chunks_per_variant;
  DeviceWalkers walkers;

  // Steps (step_begin, step_end] and the samples among them.
  std::int64_t step_begin, step_end;
  const std::int64_t* sample_steps;  ///< [sample_count], sorted, all in (step_begin, step_end]
  std::int32_t sample_count;

  // Outputs.
  float* sample_progress;           ///< [sample · count + local]
  float* sample_loss;               ///< [sample · count + local]
  std::uint64_t* sample_flat;       ///< [variant_local · sample_count + sample], added to
  std::uint64_t* sample_finite;     ///< [variant_local · sample_count + sample], added to
  std::uint64_t* histogram_counts;  ///< [variant_local · slots_per_variant + base + slot], added to

  SharedLayout layout;
};

struct LaunchShape {
  unsigned int blocks;
  int threads;  ///< multiple of 32, at most kMaxBlockThreads
  std::size_t shared_bytes;
};

/// Launches the advance kernel for one segment of steps on `stream` (asynchronous; checks the
/// launch). Instantiated in advance_*.cu for every supported (T, Landscape, Noise, Distribution)
/// and two update rules: UpdateRule::sgd (plain SGD with constant constants) and UpdateRule::any
/// (every optimizer, chosen at run time, with or without a schedule).
template <class T, class Landscape, NoiseKind Noise,
          NoiseDistribution Distribution = NoiseDistribution::gaussian,
          UpdateRule R = UpdateRule::sgd>
void launch_advance(const AdvanceArgs<T, Landscape>& args, const LaunchShape& shape,
                    cudaStream_t stream);

/// What the initialize kernel needs: walkers [first, first + count) start at
/// starts[(walker index within its variant) mod start_count] (double[dim] each), exactly as
/// initialize_walkers() (host/cpu/cpu_backend.cpp) puts them.
template <class T, class Landscape>
struct InitializeArgs {
  const Landscape* landscapes;  ///< per variant of the batch (index variant − variant_begin)
  PassageTarget<T> target;
  const double* starts;
  std::int64_t start_count;
  std::int64_t first, count, walkers_per_variant, variant_begin;
  DeviceWalkers walkers;
};

/// Puts the walkers at step 0 on the device (asynchronous on `stream`): the state the host's
/// initialize_walkers() computes, with the same shared initial_walker(), so a batch need not be
/// uploaded. Instantiated in advance_*.cu (initialize_kernel.cuh).
template <class T, class Landscape>
void launch_initialize(const InitializeArgs<T, Landscape>& args, cudaStream_t stream);

/// Registers, local memory and the like of one instantiation (for diagnostics and tests).
template <class T, class Landscape, NoiseKind Noise,
          NoiseDistribution Distribution = NoiseDistribution::gaussian,
          UpdateRule R = UpdateRule::sgd>
cudaFuncAttributes advance_kernel_attributes();

}  // namespace sgdwalk::gpu
