// Host-side launch planning of the CUDA backend, as pure functions so the CPU tests can check them
// (tests/test_cuda_schedule.cpp): the grid for a batch of walkers, and the split of a step range
// into kernel launches.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
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

/// Device bytes of one batch as the backend allocates them: per walker of the batch (its arrays
/// and sample buffers), per variant of the batch (physics, histogram and sample counters, the
/// step-table rows a variant adds) and once (histogram geometry, sample steps, the tally reducer,
/// the step table's shared part).
struct BatchMemory {
  std::size_t per_walker = 0;
  std::size_t per_variant = 0;
  std::size_t once = 0;
};

/// The most walkers of one batch whose memory fits in `available` bytes: a batch of B walkers of
/// a plan with `walkers_per_variant` W spans at most B/W + 2 of its `variants` variants (a range
/// can start and end inside one), and never more than all of them. 0 when not even one walker
/// fits. (Counting every variant of the plan against every batch, as before, left a sweep of
/// millions of variants one walker per batch.)
inline std::int64_t batch_walkers_that_fit(const BatchMemory& memory, std::size_t available,
                                           std::int64_t walkers_per_variant,
                                           std::int64_t variants) {
  if (memory.per_walker == 0 || walkers_per_variant < 1 || variants < 1) return 0;
  const auto budget = static_cast<double>(available) - static_cast<double>(memory.once);
  const auto per_walker = static_cast<double>(memory.per_walker);
  const auto per_variant = static_cast<double>(memory.per_variant);
  // Every variant of the plan counted once: exact for batches that cover most of them.
  const double all_variants = (budget - per_variant * static_cast<double>(variants)) / per_walker;
  // B/W + 2 variants: the bound for batches of a few variants among many.
  const double some_variants =
      (budget - 2 * per_variant) /
      (per_walker + per_variant / static_cast<double>(walkers_per_variant));
  const double fit = std::floor(std::max(all_variants, some_variants));
  if (!(fit >= 1)) return 0;
  return fit >= 9.0e18 ? std::int64_t{9000000000000000000} : static_cast<std::int64_t>(fit);
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
