// Self-test entry points: tiny kernels that expose the device's raw Philox words and normals to
// host tests (tests/test_cuda_golden.cpp), which compare them with the host implementation and the
// golden files. Plain C++ interface; each call runs on the current device and throws
// gpu::CudaError on failure.
#pragma once

#include <cstdint>
#include <vector>

namespace sgdwalk::gpu {

/// curand_init(seed, subsequence, offset, &state) with curandStatePhilox4_32_10_t, then `count`
/// calls of curand(&state).
std::vector<std::uint32_t> selftest_curand_words(std::uint64_t seed, std::uint64_t subsequence,
                                                 std::uint64_t offset, int count);

/// curand_init(seed, subsequence, 4 · first_block, &state), then `blocks` calls of curand4(&state),
/// flattened (x, y, z, w per block): the advance kernel's access pattern.
std::vector<std::uint32_t> selftest_curand4_blocks(std::uint64_t seed, std::uint64_t subsequence,
                                                   std::uint64_t first_block, int blocks);

/// box_muller<T>(words[2i], words[2i + 1], out[2i], out[2i + 1]) on the device, one thread per pair
/// (words.size() must be even).
std::vector<float> selftest_box_muller_f32(const std::vector<std::uint32_t>& words);
std::vector<double> selftest_box_muller_f64(const std::vector<std::uint32_t>& words);

/// Normals [first, first + count) of the walker sequence (seed, subsequence), produced by the
/// advance kernel's own generator (StepNormals<T, dim>, dim = 1, 2 or 3), starting at the
/// super-block that holds `first`.
std::vector<float> selftest_normals_f32(std::uint64_t seed, std::uint64_t subsequence, int dim,
                                        std::uint64_t first, int count);
std::vector<double> selftest_normals_f64(std::uint64_t seed, std::uint64_t subsequence, int dim,
                                         std::uint64_t first, int count);

}  // namespace sgdwalk::gpu
