// On-device reduction of a batch's sample values and trackers into exact tallies, so that neither
// crosses PCIe: kernels write each value as a tally record (include/sgdwalk/tally_records.hpp),
// CUB sorts the records by key and sums each key's run, and only the runs (a few per distinct
// value bucket) come back, to be added to RunTallies by host/analysis/tally_records.cpp. The sums
// are integers, so the result is the CPU backend's host reduction, bit for bit. Plain C++ interface
// (the kernels and CUB live in tally_reducer.cu).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "advance_kernel.hpp"
#include "device_buffer.hpp"
#include "sgdwalk/tally_records.hpp"

namespace sgdwalk::gpu {

class TallyReducer {
 public:
  /// Records per reduction; larger inputs are reduced in slices of at most this many.
  static constexpr std::size_t kCapacity = std::size_t{1} << 22;
  /// Device memory the reducer holds once used (records double-buffered, runs, CUB scratch).
  static std::size_t device_bytes();

  /// Runs of the sample records of one sample: walkers [0, count) of the batch, whose values are
  /// at progress[local] and loss[local]; local walker i is global walker first + i.
  std::vector<tally::Run> reduce_samples(const float* progress, const float* loss,
                                         std::int64_t first, std::int64_t count,
                                         std::int64_t walkers_per_variant,
                                         std::int64_t variant_begin, cudaStream_t stream);

  /// Runs of the tracker records of walkers [0, count) of the batch (at the last step), and the
  /// smallest non-finite step of each of the batch's variants (-1: none).
  std::vector<tally::Run> reduce_trackers(const DeviceWalkers& walkers, std::int64_t first,
                                          std::int64_t count, std::int64_t walkers_per_variant,
                                          std::int64_t variant_begin, bool passage,
                                          std::int64_t steps,
                                          std::vector<std::int64_t>& first_nonfinite_step,
                                          cudaStream_t stream);

  void release() noexcept;
  std::size_t held_bytes() const;

 private:
  /// Sorts and reduces the `count` records in keys_/lows_ whose segments are below
  /// `segment_limit`; appends the runs (without kNoRecord) to `runs`.
  void reduce_slice(std::size_t count, std::uint64_t segment_limit, cudaStream_t stream,
                    std::vector<tally::Run>& runs);
  void ensure();

  DeviceBuffer<std::uint64_t> keys_, keys_alt_, lows_, lows_alt_, unique_;
  DeviceBuffer<unsigned char> sums_, scratch_;
  DeviceBuffer<std::int64_t> run_count_;
  DeviceBuffer<unsigned long long> first_nonfinite_;
  std::size_t scratch_bytes_ = 0;
};

}  // namespace sgdwalk::gpu
