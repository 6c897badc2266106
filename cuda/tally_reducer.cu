// The on-device tally reduction (tally_reducer.hpp): record kernels, then CUB's radix sort and
// reduce-by-key over integer sums.
#include <thrust/iterator/transform_iterator.h>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_reduce.cuh>

#include <algorithm>

#include "cuda_check.hpp"
#include "sgdwalk/landscapes.hpp"
#include "tally_reducer.hpp"

namespace sgdwalk::gpu {
namespace {

using tally::Uint128;

/// What a run of equal keys sums to; a record contributes (1, low, low²).
struct RunSums {
  std::uint64_t count;
  Uint128 sum_low;
  Uint128 sum_low_squares;
};

struct RecordSums {
  __host__ __device__ RunSums operator()(std::uint64_t low) const {
    return {1, low, static_cast<Uint128>(low) * low};
  }
};

struct AddRunSums {
  __host__ __device__ RunSums operator()(const RunSums& a, const RunSums& b) const {
    return {a.count + b.count, a.sum_low + b.sum_low, a.sum_low_squares + b.sum_low_squares};
  }
};

constexpr int kThreads = 256;

__global__ void sample_records_kernel(const float* progress, const float* loss,
                                      std::int64_t slice_begin, std::int64_t slice_count,
                                      std::int64_t first, std::int64_t walkers_per_variant,
                                      std::int64_t variant_begin, std::uint64_t* keys,
                                      std::uint64_t* lows) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= slice_count) return;
  const std::int64_t local = slice_begin + i;
  const auto variant_local =
      static_cast<std::uint64_t>((first + local) / walkers_per_variant - variant_begin);
  const tally::Record p = tally::sample_record(variant_local, false, progress[local]);
  const tally::Record l = tally::sample_record(variant_local, true, loss[local]);
  keys[2 * i] = p.key;
  lows[2 * i] = p.low;
  keys[2 * i + 1] = l.key;
  lows[2 * i + 1] = l.low;
}

__global__ void tracker_records_kernel(DeviceWalkers walkers, std::int64_t slice_begin,
                                       std::int64_t slice_count, std::int64_t first,
                                       std::int64_t walkers_per_variant, std::int64_t variant_begin,
                                       bool passage, std::int64_t steps, std::uint64_t* keys,
                                       std::uint64_t* lows,
                                       unsigned long long* first_nonfinite_step) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= slice_count) return;
  const std::int64_t local = slice_begin + i;
  const std::int64_t variant_local = (first + local) / walkers_per_variant - variant_begin;
  const std::int64_t nonfinite = walkers.nonfinite_step[local];
  tally::Record out[tally::kTrackerKinds];
  tally::tracker_records(static_cast<std::uint64_t>(variant_local), nonfinite, walkers.basin[local],
                         kFlatBasin, walkers.freeze_step[local], walkers.y_freeze[local],
                         walkers.crossings[local], passage, walkers.first_passage_step[local],
                         steps, out);
#pragma unroll
  for (int k = 0; k < tally::kTrackerKinds; ++k) {
    keys[i * tally::kTrackerKinds + k] = out[k].key;
    lows[i * tally::kTrackerKinds + k] = out[k].low;
  }
  if (nonfinite >= 0) {
    atomicMin(&first_nonfinite_step[variant_local], static_cast<unsigned long long>(nonfinite));
  }
}

unsigned int blocks_for(std::int64_t n) {
  return static_cast<unsigned int>((n + kThreads - 1) / kThreads);
}

}  // namespace

std::size_t TallyReducer::device_bytes() {
  // Four record arrays, the unique keys and sums of the runs, and CUB's scratch (measured at first
  // use; allow 64 MiB).
  return kCapacity * (5 * sizeof(std::uint64_t) + sizeof(RunSums)) + (std::size_t{64} << 20);
}

void TallyReducer::ensure() {
  keys_.ensure(kCapacity);
  keys_alt_.ensure(kCapacity);
  lows_.ensure(kCapacity);
  lows_alt_.ensure(kCapacity);
  unique_.ensure(kCapacity);
  sums_.ensure(kCapacity * sizeof(RunSums));
  run_count_.ensure(1);
  if (scratch_bytes_ == 0) {
    std::size_t sort_bytes = 0, reduce_bytes = 0;
    cub::DoubleBuffer<std::uint64_t> keys(keys_.data(), keys_alt_.data());
    cub::DoubleBuffer<std::uint64_t> lows(lows_.data(), lows_alt_.data());
    SGDWALK_CUDA_TRY(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, keys, lows,
                                                     static_cast<std::int64_t>(kCapacity)));
    SGDWALK_CUDA_TRY(
        cub::DeviceReduce::ReduceByKey(nullptr, reduce_bytes, keys_.data(), unique_.data(),
                                       thrust::make_transform_iterator(lows_.data(), RecordSums{}),
                                       reinterpret_cast<RunSums*>(sums_.data()), run_count_.data(),
                                       AddRunSums{}, static_cast<std::int64_t>(kCapacity)));
    scratch_bytes_ = std::max<std::size_t>({sort_bytes, reduce_bytes, 1});
  }
  scratch_.ensure(scratch_bytes_);
}

void TallyReducer::reduce_slice(std::size_t count, std::uint64_t segment_limit, cudaStream_t stream,
                                std::vector<tally::Run>& runs) {
  if (count == 0) return;
  // Real keys lie below 2^end_bit (their bucket's top bit is clear), kNoRecord sorts after them.
  const int end_bit = std::min(64, tally::kBucketBits + tally::bit_width(segment_limit));
  cub::DoubleBuffer<std::uint64_t> keys(keys_.data(), keys_alt_.data());
  cub::DoubleBuffer<std::uint64_t> lows(lows_.data(), lows_alt_.data());
  std::size_t bytes = scratch_bytes_;
  const auto n = static_cast<std::int64_t>(count);
  SGDWALK_CUDA_TRY(
      cub::DeviceRadixSort::SortPairs(scratch_.data(), bytes, keys, lows, n, 0, end_bit, stream));
  bytes = scratch_bytes_;
  SGDWALK_CUDA_TRY(cub::DeviceReduce::ReduceByKey(
      scratch_.data(), bytes, keys.Current(), unique_.data(),
      thrust::make_transform_iterator(lows.Current(), RecordSums{}),
      reinterpret_cast<RunSums*>(sums_.data()), run_count_.data(), AddRunSums{}, n, stream));
  std::int64_t run_count = 0;
  SGDWALK_CUDA_TRY(cudaMemcpyAsync(&run_count, run_count_.data(), sizeof run_count,
                                   cudaMemcpyDeviceToHost, stream));
  SGDWALK_CUDA_TRY(cudaStreamSynchronize(stream));
  const auto r = static_cast<std::size_t>(run_count);
  std::vector<std::uint64_t> unique(r);
  std::vector<RunSums> sums(r);
  SGDWALK_CUDA_TRY(cudaMemcpyAsync(unique.data(), unique_.data(), r * sizeof(std::uint64_t),
                                   cudaMemcpyDeviceToHost, stream));
  SGDWALK_CUDA_TRY(cudaMemcpyAsync(sums.data(), sums_.data(), r * sizeof(RunSums),
                                   cudaMemcpyDeviceToHost, stream));
  SGDWALK_CUDA_TRY(cudaStreamSynchronize(stream));
  for (std::size_t i = 0; i < r; ++i) {
    if (unique[i] == tally::kNoRecord) continue;
    runs.push_back({unique[i], sums[i].count, sums[i].sum_low, sums[i].sum_low_squares});
  }
}

std::vector<tally::Run> TallyReducer::reduce_samples(const float* progress, const float* loss,
                                                     std::int64_t first, std::int64_t count,
                                                     std::int64_t walkers_per_variant,
                                                     std::int64_t variant_begin,
                                                     cudaStream_t stream) {
  ensure();
  std::vector<tally::Run> runs;
  const auto slice = static_cast<std::int64_t>(kCapacity / tally::kSampleKinds);
  for (std::int64_t begin = 0; begin < count; begin += slice) {
    const std::int64_t n = std::min(slice, count - begin);
    sample_records_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
        progress, loss, begin, n, first, walkers_per_variant, variant_begin, keys_.data(),
        lows_.data());
    SGDWALK_CUDA_CHECK_LAUNCH(stream);
    const std::int64_t last_variant = (first + begin + n - 1) / walkers_per_variant;
    const auto segments =
        static_cast<std::uint64_t>(last_variant - variant_begin + 1) * tally::kSampleKinds;
    // Each slice's runs are sorted by key; add_sample_runs takes them group by group.
    reduce_slice(static_cast<std::size_t>(n) * tally::kSampleKinds, segments, stream, runs);
  }
  return runs;
}

std::vector<tally::Run> TallyReducer::reduce_trackers(
    const DeviceWalkers& walkers, std::int64_t first, std::int64_t count,
    std::int64_t walkers_per_variant, std::int64_t variant_begin, bool passage, std::int64_t steps,
    std::vector<std::int64_t>& first_nonfinite_step, cudaStream_t stream) {
  ensure();
  std::vector<tally::Run> runs;
  const std::int64_t variants =
      count == 0 ? 0 : (first + count - 1) / walkers_per_variant - variant_begin + 1;
  const auto uv = static_cast<std::size_t>(variants);
  first_nonfinite_.ensure(std::max<std::size_t>(uv, 1));
  SGDWALK_CUDA_TRY(
      cudaMemsetAsync(first_nonfinite_.data(), 0xff, uv * sizeof(unsigned long long), stream));
  const auto slice = static_cast<std::int64_t>(kCapacity / tally::kTrackerKinds);
  for (std::int64_t begin = 0; begin < count; begin += slice) {
    const std::int64_t n = std::min(slice, count - begin);
    tracker_records_kernel<<<blocks_for(n), kThreads, 0, stream>>>(
        walkers, begin, n, first, walkers_per_variant, variant_begin, passage, steps, keys_.data(),
        lows_.data(), first_nonfinite_.data());
    SGDWALK_CUDA_CHECK_LAUNCH(stream);
    const std::int64_t last_variant = (first + begin + n - 1) / walkers_per_variant;
    const auto segments =
        static_cast<std::uint64_t>(last_variant - variant_begin + 1) * tally::kTrackerKinds;
    reduce_slice(static_cast<std::size_t>(n) * tally::kTrackerKinds, segments, stream, runs);
  }
  std::vector<unsigned long long> minimum(uv);
  SGDWALK_CUDA_TRY(cudaMemcpyAsync(minimum.data(), first_nonfinite_.data(),
                                   uv * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                   stream));
  SGDWALK_CUDA_TRY(cudaStreamSynchronize(stream));
  first_nonfinite_step.assign(uv, -1);
  for (std::size_t v = 0; v < uv; ++v) {
    if (minimum[v] != ~0ull) first_nonfinite_step[v] = static_cast<std::int64_t>(minimum[v]);
  }
  return runs;
}

void TallyReducer::release() noexcept {
  keys_.release();
  keys_alt_.release();
  lows_.release();
  lows_alt_.release();
  unique_.release();
  sums_.release();
  scratch_.release();
  run_count_.release();
  first_nonfinite_.release();
}

std::size_t TallyReducer::held_bytes() const {
  return keys_.capacity_bytes() + keys_alt_.capacity_bytes() + lows_.capacity_bytes() +
         lows_alt_.capacity_bytes() + unique_.capacity_bytes() + sums_.capacity_bytes() +
         scratch_.capacity_bytes() + run_count_.capacity_bytes() +
         first_nonfinite_.capacity_bytes();
}

}  // namespace sgdwalk::gpu
