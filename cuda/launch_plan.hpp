// Host-side launch planning of the CUDA backend, as pure functions so the CPU tests can check them
// (tests/test_cuda_schedule.cpp): the grid for a batch of walkers, and the split of a step range
// into kernel launches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace sgdwalk::gpu {

/// Grid of one batch [first, last): `variants` variants from `variant_begin`, each covered by
/// `chunks_per_variant` blocks of `threads` threads (a multiple of 32; smaller than the maximum
/// when a variant has fewer walkers). Blocks = variants · chunks_per_variant.
struct LaunchGrid {
  std::int64_t variant_begin;
  std::int64_t variants;
  int threads;
  std::int64_t chunks_per_variant;
  std::int64_t blocks;
};

inline LaunchGrid plan_grid(std::int64_t first, std::int64_t last, std::int64_t walkers_per_variant,
                            int max_threads) {
  LaunchGrid grid{};
  grid.variant_begin = first / walkers_per_variant;
  grid.variants = (last - 1) / walkers_per_variant + 1 - grid.variant_begin;
  const std::int64_t per_variant = std::min(walkers_per_variant, last - first);
  grid.threads =
      static_cast<int>(std::min<std::int64_t>(max_threads, (per_variant + 31) / 32 * 32));
  grid.chunks_per_variant = (per_variant + grid.threads - 1) / grid.threads;
  grid.blocks = grid.variants * grid.chunks_per_variant;
  return grid;
}

/// One kernel launch: steps (step_begin, step_end] and the sample steps
/// sample_steps[sample_offset, sample_offset + sample_count), all inside that range.
struct LaunchSegment {
  std::int64_t step_begin, step_end;
  std::int64_t sample_offset;
  int sample_count;
};

/// Splits (step_begin, step_end] into launches of at most `max_steps` steps and `max_samples`
/// sample steps each (a launch that reaches its sample limit ends at its last sample).
/// `sample_steps` is the plan's sorted list.
inline std::vector<LaunchSegment> plan_segments(const std::vector<std::int64_t>& sample_steps,
                                                std::int64_t step_begin, std::int64_t step_end,
                                                std::int64_t max_steps, std::int64_t max_samples) {
  std::vector<LaunchSegment> segments;
  auto sample_it = std::upper_bound(sample_steps.begin(), sample_steps.end(), step_begin);
  const auto sample_last = std::upper_bound(sample_it, sample_steps.end(), step_end);
  for (std::int64_t begin = step_begin; begin < step_end;) {
    std::int64_t end = std::min(step_end, begin + max_steps);
    auto samples_end = std::upper_bound(sample_it, sample_last, end);
    if (samples_end - sample_it > max_samples) {
      samples_end = sample_it + max_samples;
      end = *(samples_end - 1);
    }
    segments.push_back({begin, end, static_cast<std::int64_t>(sample_it - sample_steps.begin()),
                        static_cast<int>(samples_end - sample_it)});
    begin = end;
    sample_it = samples_end;
  }
  return segments;
}

}  // namespace sgdwalk::gpu
