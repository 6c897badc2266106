// The advance kernel: one thread per walker, the walker in registers for the whole launch.
//
// Included only by the advance_*.cu instantiation files. The physics is not here: the kernel calls
// the shared advance_walker() (include/sgdwalk/walker.hpp), the landscape methods and
// HistogramGeometry::deposits_at/slot, exactly as the CPU backend does, with typed per-variant
// physics computed on the host. See docs/CUDA.md for the design.
#pragma once

#include <cstdint>
#include <type_traits>

#include "advance_kernel.hpp"
#include "cuda_check.hpp"
#include "device_walkers.cuh"
#include "step_normals.cuh"
#include "step_schedule.hpp"

namespace sgdwalk::gpu {
namespace detail {

inline constexpr unsigned kFullMask = 0xffffffffu;

/// v[i] for a run-time i without indexing a register array at run time (which would move the
/// walker to local memory).
template <class T, int D>
__device__ __forceinline__ T component(const Vec<T, D>& v, int i) {
  T r = v[0];
#pragma unroll
  for (int k = 1; k < D; ++k) r = i == k ? v[k] : r;
  return r;
}

/// The lanes of the warp below this one (PTX %lanemask_lt).
__device__ __forceinline__ unsigned lanemask_lt() {
  unsigned mask;
  asm("mov.u32 %0, %%lanemask_lt;" : "=r"(mask));
  return mask;
}

/// Whether a kernel's dense stretch of one histogram deposits through a register copy of the
/// histogram's geometry (BlockObserver::dense_single). Every float kernel does. A double kernel
/// does only where the copy was checked not to spill (ptxas, sm_90, bench/sass_budget): the
/// isotropic-noise kernels of the cheap landscapes, where it takes the two-valley step's deposit
/// ratio from 1.236 to 1.12 (bench/RESULTS.md). The copy spilled 8 bytes in the double Hessian
/// kernels at their 128-register cap, and 40-44 bytes in the double isotropic kernels of
/// MullerBrown and Harmonic<3>; every other double kernel keeps the loop over the histograms.
template <class T, class Landscape, NoiseKind Noise>
inline constexpr bool kDenseGeometryInRegisters = sizeof(T) == 4 ||
                                                  (!noise_needs_hessian<Noise> &&
                                                   (std::is_same_v<Landscape, TwoValley<T>> ||
                                                    std::is_same_v<Landscape, TwoValleySlice<T>> ||
                                                    std::is_same_v<Landscape, DoubleWell<T>>));

/// Samples and histogram deposits of one thread's walker, accumulated per block in shared memory.
/// Every thread of the block calls observe() at the same steps (the schedule is uniform), so the
/// warp-wide ballots and matches see all 32 lanes; inactive padding threads contribute nothing.
/// kDenseCopy: kDenseGeometryInRegisters of the kernel.
template <class T, class Landscape, bool kDenseCopy>
struct BlockObserver {
  const DeviceHistogram<T>* histograms;  // shared
  const std::int64_t* sample_steps;      // shared
  std::uint32_t* sample_flat;            // shared [sample]
  std::uint32_t* sample_finite;          // shared [sample]
  std::uint32_t* shared_slots;           // shared [slots_per_variant] or nullptr
  std::uint64_t* global_slots;           // this variant's global slots when not shared
  float* sample_progress;                // global, at this walker's column
  float* sample_loss;
  std::int64_t sample_stride;  // walkers in the batch
  int histogram_count;
  int sample_count;
  int next_sample;
  unsigned dense_mask;  ///< the histograms of the current dense-deposit stretch (dense_end)
  /// A dense stretch of one histogram counted in shared memory (the common case: one histogram
  /// depositing every step) of a float kernel deposits through a copy of its geometry and of its
  /// slots' address in registers: no loop over the histograms, no mask test, no shared-memory loads
  /// of the geometry and no choice between shared and global counters per step.
  bool dense_single;
  HistogramGeometry<T> dense_geometry;
  std::uint32_t* dense_slots;  ///< shared_slots + the histogram's base
  bool active;

  __device__ __forceinline__ std::int64_t next_event(std::int64_t after) const {
    std::int64_t e = next_sample < sample_count ? sample_steps[next_sample] : kNoEvent;
    for (int h = 0; h < histogram_count; ++h) {
      const std::int64_t d = next_deposit(histograms[h].geometry, after);
      e = d < e ? d : e;
    }
    return e;
  }

  /// The last step of the dense-deposit stretch starting after `after` (dense_stretch in
  /// step_schedule.hpp), its histograms in `dense_mask`; `after` when there is none.
  __device__ __forceinline__ std::int64_t dense_end(std::int64_t after) {
    const DenseStretch stretch = dense_stretch(
        histogram_count,
        [&](int h) -> const HistogramGeometry<T>& { return histograms[h].geometry; }, after,
        next_sample < sample_count ? sample_steps[next_sample] : kNoEvent);
    dense_mask = stretch.mask;
    // Only where the register copy does not spill (kDenseGeometryInRegisters).
    dense_single = kDenseCopy && __popc(stretch.mask) == 1 && shared_slots != nullptr;
    if (dense_single) {
      const int h = __ffs(static_cast<int>(stretch.mask)) - 1;
      dense_geometry = histograms[h].geometry;
      dense_slots = shared_slots + histograms[h].base;
    }
    return stretch.end;
  }

  /// This walker's slot in the histogram with this geometry at a deposit step, -1 for none.
  template <class Walker>
  __device__ __forceinline__ std::int32_t slot_of(const HistogramGeometry<T>& geometry,
                                                  const Landscape& landscape,
                                                  const Walker& walker) const {
    const bool finite = stamp_unset(walker.nonfinite_step);
    // slot() is branch-free and safe for any position (a non-finite walker keeps its last
    // finite one): computed for every lane, then masked, so the deposit has no branch.
    const std::int32_t slot = geometry.slot(component(walker.position, geometry.x_coordinate),
                                            landscape.progress(walker.position));
    return active && finite ? slot : -1;
  }

  // Warp-aggregated increments (deposit_one, deposit_dense): one atomic per distinct slot in the
  // warp, by its lowest lane (no lower lane among its peers: one AND with the lane mask, no
  // find-first-set).

  /// One walker's deposit into histogram h at a deposit step.
  template <class Walker>
  __device__ __forceinline__ void deposit_one(int h, const Landscape& landscape,
                                              const Walker& walker) {
    const std::int32_t slot = slot_of(histograms[h].geometry, landscape, walker);
    const unsigned peers = __match_any_sync(kFullMask, slot);
    if (slot >= 0 && (peers & lanemask_lt()) == 0) {
      const std::int32_t index = histograms[h].base + slot;
      const unsigned n = static_cast<unsigned>(__popc(peers));
      if (shared_slots != nullptr) {
        atomicAdd(&shared_slots[index], n);
      } else {
        atomicAdd(reinterpret_cast<unsigned long long*>(&global_slots[index]),
                  static_cast<unsigned long long>(n));
      }
    }
  }

  /// The deposits of a step of the current dense stretch (dense_mask).
  template <class Walker>
  __device__ __forceinline__ void deposit_dense(const Landscape& landscape, const Walker& walker) {
    if (dense_single) {  // uniform
      const std::int32_t slot = slot_of(dense_geometry, landscape, walker);
      const unsigned peers = __match_any_sync(kFullMask, slot);
      if (slot >= 0 && (peers & lanemask_lt()) == 0) {
        atomicAdd(&dense_slots[slot], static_cast<unsigned>(__popc(peers)));
      }
      return;
    }
#pragma unroll 1
    for (int h = 0; h < histogram_count; ++h) {
      if ((dense_mask >> h) & 1u) deposit_one(h, landscape, walker);  // uniform
    }
  }

  template <class Walker>
  __device__ __forceinline__ void observe(std::int64_t step, const Landscape& landscape,
                                          const Walker& walker) {
    const bool finite = stamp_unset(walker.nonfinite_step);
    const unsigned lane = threadIdx.x % 32u;
    if (next_sample < sample_count && sample_steps[next_sample] == step) {
      const int s = next_sample++;
      // The host writes std::numeric_limits<float>::quiet_NaN(): the same bits.
      float progress = __uint_as_float(0x7fc00000u);
      float loss = progress;
      if (finite) {
        progress = static_cast<float>(landscape.progress(walker.position));
        loss = static_cast<float>(landscape.value(walker.position));
      }
      if (active) {
        sample_progress[s * sample_stride] = progress;
        sample_loss[s * sample_stride] = loss;
      }
      const unsigned finite_mask = __ballot_sync(kFullMask, active && finite);
      const unsigned flat_mask =
          __ballot_sync(kFullMask, active && finite && walker.basin == kFlatBasin);
      if (lane == 0) {
        if (finite_mask != 0)
          atomicAdd(&sample_finite[s], static_cast<unsigned>(__popc(finite_mask)));
        if (flat_mask != 0) atomicAdd(&sample_flat[s], static_cast<unsigned>(__popc(flat_mask)));
      }
    }
#pragma unroll 1
    for (int h = 0; h < histogram_count; ++h) {
      if (histograms[h].geometry.deposits_at(step)) deposit_one(h, landscape, walker);  // uniform
    }
  }
};

}  // namespace detail

/// Blocks of kMaxBlockThreads per multiprocessor the register allocation must allow: 2 (at most
/// 128 registers), 3 (at most 85: 24 resident warps instead of 16) for the float kernels with
/// Hessian noise, which fit that with the same instructions per step and no local memory
/// (bench/sass_budget; the isotropic float kernel restructures its Philox rounds under the cap).
/// The α-stable kernels ask for 1 (double) and 2 (float): their super-block of stable draws (a few
/// logs, sines and an exp per component, kept in registers) spills under the tighter caps (double
/// 40-84 bytes at 128 registers, float harmonic<3> 44-48 bytes at 85; ptxas, sm_90); spill-free
/// kernels at lower occupancy were chosen without a GPU to time both.
/// The stateful kernels (UpdateRule::any: 2D more numbers per walker, the step's constants loaded
/// every step) ask for what the α-stable ones ask for: under the SGD kernels' caps the double
/// two-valley Hessian kernel spilled 20 bytes at 128 registers (ptxas, sm_90).
template <class T, NoiseKind Noise, NoiseDistribution Distribution, UpdateRule R = UpdateRule::sgd>
constexpr int min_blocks_per_sm() {
  if (Distribution == NoiseDistribution::alpha_stable || R == UpdateRule::any) {
    return sizeof(T) == 8 ? 1 : kMinBlocksPerSm;
  }
  return sizeof(T) == 4 && noise_needs_hessian<Noise> ? 3 : kMinBlocksPerSm;
}

/// The noise inputs of a kernel: normals, or scaled α-stable draws (same super-block shape).
template <class T, int D, NoiseDistribution Distribution>
using StepInputs = std::conditional_t<Distribution == NoiseDistribution::gaussian,
                                      StepNormals<T, D>, StepStable<T, D>>;

/// R = UpdateRule::sgd: plain SGD with constant step constants, held in registers (the step loop
/// touches no memory between events; bench/sass_budget counts it). R = UpdateRule::any: the
/// stateful kernel, for every optimizer and for schedules: the optimizer is chosen at run time by
/// the step constants' OptimizerCoefficients::rule (uniform across the launch), and each step
/// reads its constants through a pointer of stride 0 (args.params: constant) or 1 (the variant's
/// row of args.step_table: scheduled), so one step loop serves both.
template <class T, class Landscape, NoiseKind Noise, NoiseDistribution Distribution, UpdateRule R>
__global__ void __launch_bounds__(kMaxBlockThreads,
                                  (min_blocks_per_sm<T, Noise, Distribution, R>()))
    advance_kernel(const AdvanceArgs<T, Landscape> args) {
  static_assert(R == UpdateRule::sgd || R == UpdateRule::any,
                "the CUDA backend compiles the SGD kernel and the stateful (any) kernel");
  constexpr int D = Landscape::dim;
  using Normals = StepInputs<T, D, Distribution>;
  constexpr int S = Normals::kSteps;
  constexpr int N = Normals::kNormals;
  extern __shared__ __align__(16) unsigned char shared_memory[];

  // ---- Which walker: block → (variant, chunk of that variant's part of the batch). ----
  const BlockWalkers b =
      block_walkers(blockIdx.x, blockDim.x, args.first, args.count, args.walkers_per_variant,
                    args.variant_begin, args.chunks_per_variant);
  if (b.chunk_begin >= b.hi) return;  // the whole block: nothing to do (before any barrier)
  const std::int64_t variant_local = b.variant_local;
  const std::int64_t variant = b.variant;
  const std::int64_t walker_index = b.chunk_begin + threadIdx.x;
  const bool active = walker_index < b.hi;
  // Padding threads replay the block's last walker (never stored) so the warps stay whole.
  const std::int64_t w = active ? walker_index : b.hi - 1;
  const std::int64_t local = variant * args.walkers_per_variant + w - args.first;

  // ---- Block setup: schedule and counters in shared memory. ----
  // The stateful kernel's step constants: update k's are (*step_row)[(k − step_begin − 1) &
  // step_mask] (stride 1 into the variant's table row, or stride 0: the variant's constant params).
  auto* step_row = reinterpret_cast<const StepParams<T>**>(shared_memory + args.layout.step_table);
  if constexpr (R == UpdateRule::any) {
    if (threadIdx.x == 0) {
      *step_row = args.step_table != nullptr ? args.step_table + variant_local * args.table_steps
                                             : args.params + variant_local;
    }
  }
  auto* histograms = reinterpret_cast<DeviceHistogram<T>*>(shared_memory + args.layout.histograms);
  auto* sample_steps = reinterpret_cast<std::int64_t*>(shared_memory + args.layout.sample_steps);
  auto* sample_counters =
      reinterpret_cast<std::uint32_t*>(shared_memory + args.layout.sample_counters);
  auto* slot_counters =
      reinterpret_cast<std::uint32_t*>(shared_memory + args.layout.histogram_counters);
  for (int i = threadIdx.x; i < args.histogram_count; i += blockDim.x) {
    histograms[i] = args.histograms[i];
  }
  for (int i = threadIdx.x; i < args.sample_count; i += blockDim.x) {
    sample_steps[i] = args.sample_steps[i];
  }
  for (int i = threadIdx.x; i < 2 * args.sample_count; i += blockDim.x) sample_counters[i] = 0;
  if (args.shared_histograms) {
    for (int i = threadIdx.x; i < args.slots_per_variant; i += blockDim.x) slot_counters[i] = 0;
  }
  __syncthreads();

  detail::BlockObserver<T, Landscape, detail::kDenseGeometryInRegisters<T, Landscape, Noise>>
      observer;
  observer.histograms = histograms;
  observer.sample_steps = sample_steps;
  observer.sample_flat = sample_counters;
  observer.sample_finite = sample_counters + args.sample_count;
  observer.shared_slots = args.shared_histograms ? slot_counters : nullptr;
  observer.global_slots = args.histogram_counts + variant_local * args.slots_per_variant;
  // Without samples the sample buffers are never allocated (null: only 0 may be added).
  const std::int64_t sample_column = args.sample_count > 0 ? local : 0;
  observer.sample_progress = args.sample_progress + sample_column;
  observer.sample_loss = args.sample_loss + sample_column;
  observer.sample_stride = args.count;
  observer.histogram_count = args.histogram_count;
  observer.sample_count = args.sample_count;
  observer.next_sample = 0;
  observer.dense_mask = 0;
  observer.dense_single = false;
  observer.dense_slots = nullptr;
  observer.active = active;

  // ---- The walker and its physics, in registers. ----
  const Landscape landscape = args.landscapes[variant_local];
  [[maybe_unused]] const StepParams<T> params = args.params[variant_local];  // the SGD kernel's
  const PassageTarget<T> target = args.target;
  // The step loop's walker carries its step stamps relative to the launch (LaunchTrackers: 32-bit
  // selects); the absolute stamps are read again from memory at the end.
  WalkerState<T, D, R, std::int32_t> walker =
      LaunchTrackers::to_relative(load_device_walker<T, D, R>(args.walkers, local));

  // ---- Steps (step_begin, step_end]: registers only, except at events. ----
  Normals normals;
  if constexpr (Distribution == NoiseDistribution::alpha_stable) {
    normals.params = args.stable[variant_local];
  }
  normals.seek(args.seed, walker_subsequence(variant, w), args.step_begin / S);
  const auto run = [&](auto&& advance) {
    run_schedule<T, D, S>(
        args.step_begin, args.step_end, [&](T(&z)[N]) { normals.next(z); }, advance,
        [&](std::int64_t after) { return observer.next_event(after); },
        [&](std::int64_t step) {
          observer.observe(step, landscape, walker);
          return observer.next_event(step);
        },
        [&](std::int64_t after) { return observer.dense_end(after); },
        [&](std::int64_t) { observer.deposit_dense(landscape, walker); });
  };
  // The launch-relative step of update `step` (< 2^31: max_steps_per_launch).
  const std::int64_t step_begin = args.step_begin;
  if constexpr (R == UpdateRule::sgd) {
    // The plain loop: constants in registers, no memory access between events.
    run([&](const Vec<T, D>& z, std::int64_t step) {
      advance_walker<Noise>(landscape, params, target, noise_inputs<Distribution>(params, z),
                            static_cast<std::int32_t>(step - step_begin), walker);
    });
  } else {
    // One loop for constant and scheduled runs: the step's constants (the host's step_params_at,
    // the CPU backend's bits; with α-stable noise the step's jump scale c_k too) through the
    // shared row pointer with stride 0 or 1.
    const std::int32_t step_mask = args.step_table != nullptr ? ~std::int32_t{0} : 0;
    run([&](const Vec<T, D>& z, std::int64_t step) {
      const std::int32_t launch_step = static_cast<std::int32_t>(step - step_begin);
      const StepParams<T>& step_params = (*step_row)[(launch_step - 1) & step_mask];
      advance_walker<Noise, R>(landscape, step_params, target,
                               noise_inputs<Distribution>(step_params, z), launch_step, walker);
    });
  }

  if (active) {
    WalkerState<T, D, R> start;  // the stamps the walker came with
    start.freeze_step = args.walkers.freeze_step[local];
    start.first_passage_step = args.walkers.first_passage_step[local];
    start.nonfinite_step = args.walkers.nonfinite_step[local];
    store_device_walker(LaunchTrackers::to_absolute(walker, start, step_begin), args.walkers,
                        local);
  }

  // ---- Flush the block's counters once. ----
  __syncthreads();
  // The variant again from the block index (a 64-bit value kept live across the step loop
  // would cost the double kernels a register spill at the 128-register cap).
  const std::int64_t flush_variant =
      static_cast<std::int64_t>(blockIdx.x) / args.chunks_per_variant;
  std::uint64_t* sample_flat = args.sample_flat + flush_variant * args.sample_count;
  std::uint64_t* sample_finite = args.sample_finite + flush_variant * args.sample_count;
  for (int i = threadIdx.x; i < args.sample_count; i += blockDim.x) {
    const std::uint32_t flat = sample_counters[i];
    const std::uint32_t finite = sample_counters[args.sample_count + i];
    if (flat != 0) {
      atomicAdd(reinterpret_cast<unsigned long long*>(&sample_flat[i]),
                static_cast<unsigned long long>(flat));
    }
    if (finite != 0) {
      atomicAdd(reinterpret_cast<unsigned long long*>(&sample_finite[i]),
                static_cast<unsigned long long>(finite));
    }
  }
  if (args.shared_histograms) {
    for (int i = threadIdx.x; i < args.slots_per_variant; i += blockDim.x) {
      const std::uint32_t n = slot_counters[i];
      if (n != 0) {
        atomicAdd(reinterpret_cast<unsigned long long*>(&observer.global_slots[i]),
                  static_cast<unsigned long long>(n));
      }
    }
  }
}

template <class T, class Landscape, NoiseKind Noise, NoiseDistribution Distribution, UpdateRule R>
void launch_advance(const AdvanceArgs<T, Landscape>& args, const LaunchShape& shape,
                    cudaStream_t stream) {
  const auto kernel = &advance_kernel<T, Landscape, Noise, Distribution, R>;
  if (shape.shared_bytes > kDefaultSharedLimit) {
    SGDWALK_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(shape.shared_bytes)));
  }
  kernel<<<shape.blocks, shape.threads, shape.shared_bytes, stream>>>(args);
  SGDWALK_CUDA_CHECK_LAUNCH(stream);
}

template <class T, class Landscape, NoiseKind Noise, NoiseDistribution Distribution, UpdateRule R>
cudaFuncAttributes advance_kernel_attributes() {
  cudaFuncAttributes attributes{};
  SGDWALK_CUDA_TRY(
      cudaFuncGetAttributes(&attributes, &advance_kernel<T, Landscape, Noise, Distribution, R>));
  return attributes;
}

}  // namespace sgdwalk::gpu

/// Explicit instantiation of the launcher (and so the kernel) and the attribute query for one
/// (T, Landscape), noise model M, both noise distributions and the two kernels of each: SGD and
/// the stateful one (UpdateRule::any: momentum, nesterov, adam, rmsprop and scheduled runs). The
/// build generates one source per registry entry that uses it for float and double and every
/// noise model (cuda/CMakeLists.txt, advance_landscape.cu.in): 2 × 2 kernels per (T, Landscape,
/// M). Use at namespace scope in sgdwalk::gpu.
#define SGDWALK_INSTANTIATE_ADVANCE_RULE(T, L, M, DIST, RULE)                             \
  template void launch_advance<T, L, M::kind, NoiseDistribution::DIST, UpdateRule::RULE>( \
      const AdvanceArgs<T, L>&, const LaunchShape&, cudaStream_t);                        \
  template cudaFuncAttributes                                                             \
  advance_kernel_attributes<T, L, M::kind, NoiseDistribution::DIST, UpdateRule::RULE>();
#define SGDWALK_INSTANTIATE_ADVANCE_KERNEL(T, L, M, DIST) \
  SGDWALK_INSTANTIATE_ADVANCE_RULE(T, L, M, DIST, sgd)    \
  SGDWALK_INSTANTIATE_ADVANCE_RULE(T, L, M, DIST, any)
#define SGDWALK_INSTANTIATE_ADVANCE_NOISE(T, L, M)      \
  SGDWALK_INSTANTIATE_ADVANCE_KERNEL(T, L, M, gaussian) \
  SGDWALK_INSTANTIATE_ADVANCE_KERNEL(T, L, M, alpha_stable)
