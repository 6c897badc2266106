// Device side of the normal sequence contract (include/sgdwalk/normal.hpp): raw words from
// cuRAND's device API (curand_init + curand4, curandStatePhilox4_32_10_t), turned into normals by
// the shared box_muller. Used by the advance kernel and by the self-test kernels, so the tests
// check the very code path the walkers use.
#pragma once

#include <curand_kernel.h>

#include <cstdint>

#include "sgdwalk/normal.hpp"
#include "sgdwalk/philox.hpp"
#include "sgdwalk/stable.hpp"

namespace sgdwalk::gpu {

constexpr int gcd_int(int a, int b) {
  return b == 0 ? a : gcd_int(b, a % b);
}

/// The normals of a D-dimensional walker in "super-blocks" of lcm(D, 4) normals: kBlocks curand4
/// blocks that feed exactly kSteps updates (D = 1: 1 block, 4 steps; D = 2: 1 block, 2 steps;
/// D = 3: 3 blocks, 4 steps). Update k (1-based) uses normals [(k − 1)·D, k·D), so it lies in
/// super-block (k − 1) / kSteps at position (k − 1) % kSteps. Unrolling over a super-block keeps
/// every index into the normal buffer a compile-time constant (registers, no local memory).
template <class T, int D>
struct StepNormals {
  static constexpr int kNormals = D * 4 / gcd_int(D, 4);
  static constexpr int kBlocks = kNormals / 4;
  static constexpr int kSteps = kNormals / D;

  curandStatePhilox4_32_10_t state;

  /// Positions the generator at super-block `super_block` of the walker's normal sequence:
  /// curand_init(seed, subsequence, word offset = super_block · kNormals).
  __device__ __forceinline__ void seek(std::uint64_t seed, std::uint64_t subsequence,
                                       std::int64_t super_block) {
    curand_init(static_cast<unsigned long long>(seed), static_cast<unsigned long long>(subsequence),
                static_cast<unsigned long long>(super_block) * kNormals, &state);
  }

  /// The current super-block's normals; advances to the next super-block.
  __device__ __forceinline__ void next(T (&z)[kNormals]) {
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      const uint4 r = curand4(&state);
      normals_from_block<T>(U32x4{r.x, r.y, r.z, r.w}, &z[4 * b]);
    }
  }
};

/// The α-stable twin of StepNormals (the stable sequence contract of sgdwalk/stable.hpp): the same
/// super-blocks of kNormals inputs for kSteps updates, but each input is a stable draw S from two
/// words (unscaled: the kernel scales update k's by its c_k, noise_inputs in walker.hpp), so a
/// super-block takes kBlocks = kNormals / 2 curand4 blocks (D = 1: 2 blocks for 4 steps; D = 2: 2
/// blocks for 2 steps; D = 3: 6 blocks for 4 steps). Update k uses draws
/// [(k − 1)·D, k·D), i.e. words [2(k − 1)·D, 2k·D).
template <class T, int D>
struct StepStable {
  static constexpr int kNormals = StepNormals<T, D>::kNormals;
  static constexpr int kBlocks = kNormals / 2;
  static constexpr int kSteps = kNormals / D;

  curandStatePhilox4_32_10_t state;
  StableParams<T> params;

  /// Positions the generator at super-block `super_block`: word offset super_block · 2·kNormals.
  __device__ __forceinline__ void seek(std::uint64_t seed, std::uint64_t subsequence,
                                       std::int64_t super_block) {
    curand_init(static_cast<unsigned long long>(seed), static_cast<unsigned long long>(subsequence),
                static_cast<unsigned long long>(super_block) * (2 * kNormals), &state);
  }

  /// The current super-block's draws; advances to the next super-block.
  __device__ __forceinline__ void next(T (&z)[kNormals]) {
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
      const uint4 r = curand4(&state);
      stable_draws_from_block<T>(U32x4{r.x, r.y, r.z, r.w}, params, &z[2 * b]);
    }
  }
};

}  // namespace sgdwalk::gpu
