// Self-test kernels (see cuda_selftest.hpp). Single-purpose and small: correctness, not speed.
#include <stdexcept>

#include "cuda_check.hpp"
#include "cuda_selftest.hpp"
#include "device_buffer.hpp"
#include "step_normals.cuh"

namespace sgdwalk::gpu {
namespace {

__global__ void curand_words_kernel(std::uint64_t seed, std::uint64_t subsequence,
                                    std::uint64_t offset, int count, std::uint32_t* out) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, subsequence, offset, &state);
  for (int i = 0; i < count; ++i) out[i] = curand(&state);
}

__global__ void curand4_blocks_kernel(std::uint64_t seed, std::uint64_t subsequence,
                                      std::uint64_t first_block, int blocks, std::uint32_t* out) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, subsequence, 4 * first_block, &state);
  for (int b = 0; b < blocks; ++b) {
    const uint4 r = curand4(&state);
    out[4 * b + 0] = r.x;
    out[4 * b + 1] = r.y;
    out[4 * b + 2] = r.z;
    out[4 * b + 3] = r.w;
  }
}

template <class T>
__global__ void box_muller_kernel(const std::uint32_t* words, std::int64_t pairs, T* out) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < pairs;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    T z0, z1;
    box_muller<T>(words[2 * i], words[2 * i + 1], z0, z1);
    out[2 * i] = z0;
    out[2 * i + 1] = z1;
  }
}

template <class T, int D>
__global__ void step_normals_kernel(std::uint64_t seed, std::uint64_t subsequence,
                                    std::uint64_t first, int count, T* out) {
  using Normals = StepNormals<T, D>;
  constexpr int N = Normals::kNormals;
  Normals normals;
  const std::uint64_t super_block = first / N;
  normals.seek(seed, subsequence, static_cast<std::int64_t>(super_block));
  T z[N];
  for (std::uint64_t base = super_block * N; base < first + static_cast<std::uint64_t>(count);
       base += N) {
    normals.next(z);
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const std::uint64_t index = base + static_cast<std::uint64_t>(i);
      if (index >= first && index < first + static_cast<std::uint64_t>(count)) {
        out[index - first] = z[i];
      }
    }
  }
}

template <class T>
std::vector<T> fetch(DeviceBuffer<T>& buffer, std::size_t n) {
  std::vector<T> host(n);
  SGDWALK_CUDA_TRY(cudaDeviceSynchronize());
  SGDWALK_CUDA_TRY(cudaMemcpy(host.data(), buffer.data(), n * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

template <class T>
std::vector<T> box_muller_on_device(const std::vector<std::uint32_t>& words) {
  SGDWALK_EXPECTS(words.size() % 2 == 0, "box_muller self-test needs an even number of words");
  if (words.empty()) return {};
  DeviceBuffer<std::uint32_t> in;
  in.upload(words.data(), words.size(), nullptr);
  DeviceBuffer<T> out(words.size());
  const auto pairs = static_cast<std::int64_t>(words.size() / 2);
  const int blocks = static_cast<int>(std::min<std::int64_t>((pairs + 255) / 256, 4096));
  box_muller_kernel<T><<<blocks, 256>>>(in.data(), pairs, out.data());
  SGDWALK_CUDA_CHECK_LAUNCH(nullptr);
  return fetch(out, words.size());
}

template <class T>
std::vector<T> normals_on_device(std::uint64_t seed, std::uint64_t subsequence, int dim,
                                 std::uint64_t first, int count) {
  SGDWALK_EXPECTS(count >= 0, "normal count must be >= 0");
  if (count == 0) return {};
  DeviceBuffer<T> out(static_cast<std::size_t>(count));
  switch (dim) {
    case 1:
      step_normals_kernel<T, 1><<<1, 1>>>(seed, subsequence, first, count, out.data());
      break;
    case 2:
      step_normals_kernel<T, 2><<<1, 1>>>(seed, subsequence, first, count, out.data());
      break;
    case 3:
      step_normals_kernel<T, 3><<<1, 1>>>(seed, subsequence, first, count, out.data());
      break;
    default:
      throw std::invalid_argument("selftest_normals: dim must be 1, 2 or 3");
  }
  SGDWALK_CUDA_CHECK_LAUNCH(nullptr);
  return fetch(out, static_cast<std::size_t>(count));
}

}  // namespace

std::vector<std::uint32_t> selftest_curand_words(std::uint64_t seed, std::uint64_t subsequence,
                                                 std::uint64_t offset, int count) {
  SGDWALK_EXPECTS(count >= 0, "word count must be >= 0");
  if (count == 0) return {};
  DeviceBuffer<std::uint32_t> out(static_cast<std::size_t>(count));
  curand_words_kernel<<<1, 1>>>(seed, subsequence, offset, count, out.data());
  SGDWALK_CUDA_CHECK_LAUNCH(nullptr);
  return fetch(out, static_cast<std::size_t>(count));
}

std::vector<std::uint32_t> selftest_curand4_blocks(std::uint64_t seed, std::uint64_t subsequence,
                                                   std::uint64_t first_block, int blocks) {
  SGDWALK_EXPECTS(blocks >= 0, "block count must be >= 0");
  if (blocks == 0) return {};
  DeviceBuffer<std::uint32_t> out(4 * static_cast<std::size_t>(blocks));
  curand4_blocks_kernel<<<1, 1>>>(seed, subsequence, first_block, blocks, out.data());
  SGDWALK_CUDA_CHECK_LAUNCH(nullptr);
  return fetch(out, 4 * static_cast<std::size_t>(blocks));
}

std::vector<float> selftest_box_muller_f32(const std::vector<std::uint32_t>& words) {
  return box_muller_on_device<float>(words);
}
std::vector<double> selftest_box_muller_f64(const std::vector<std::uint32_t>& words) {
  return box_muller_on_device<double>(words);
}

std::vector<float> selftest_normals_f32(std::uint64_t seed, std::uint64_t subsequence, int dim,
                                        std::uint64_t first, int count) {
  return normals_on_device<float>(seed, subsequence, dim, first, count);
}
std::vector<double> selftest_normals_f64(std::uint64_t seed, std::uint64_t subsequence, int dim,
                                         std::uint64_t first, int count) {
  return normals_on_device<double>(seed, subsequence, dim, first, count);
}

}  // namespace sgdwalk::gpu
