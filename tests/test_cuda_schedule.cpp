// The CUDA backend's control flow on the CPU (cuda/step_schedule.hpp, cuda/launch_plan.hpp): in the
// step loop every update runs once, in order, with normals [(k − 1)·D, k·D), events fire right
// after their update and the generator is asked for exactly the super-blocks the range touches;
// histogram deposit scheduling agrees with HistogramGeometry::deposits_at; the grid covers every
// walker of a batch exactly once; launches partition the steps and samples. Needs no GPU: the
// kernel and the backend run these very functions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include "../cuda/launch_plan.hpp"
#include "../cuda/step_schedule.hpp"
#include "sgdwalk/landscapes/two_valley.hpp"
#include "sgdwalk/observables.hpp"
#include "sgdwalk/walker.hpp"

namespace sgdwalk::gpu {
namespace {

/// `events` fire through observe(); the steps of each range in `dense` are events too (a histogram
/// depositing every step), which run_schedule may hand to deposit() inside a dense stretch.
template <int D, int S>
void check_schedule(std::int64_t begin, std::int64_t end, std::vector<std::int64_t> events,
                    const std::vector<std::pair<std::int64_t, std::int64_t>>& dense = {}) {
  std::vector<std::int64_t> sparse = events;  // the events no dense stretch may contain
  std::sort(sparse.begin(), sparse.end());
  for (const auto& [lo, hi] : dense) {
    for (std::int64_t e = lo; e <= hi; ++e) events.push_back(e);
  }
  std::sort(events.begin(), events.end());
  events.erase(std::unique(events.begin(), events.end()), events.end());
  SCOPED_TRACE("D=" + std::to_string(D) + " steps (" + std::to_string(begin) + ", " +
               std::to_string(end) + "], " + std::to_string(events.size()) + " events, " +
               std::to_string(dense.size()) + " dense ranges");
  const auto next_after = [&](std::int64_t after) {
    const auto it = std::upper_bound(events.begin(), events.end(), after);
    return it == events.end() ? kNoEvent : *it;
  };
  const auto dense_end = [&](std::int64_t after) {
    std::int64_t last = after;
    for (const auto& [lo, hi] : dense) {
      if (lo <= after + 1 && hi > last) last = hi;
    }
    const auto it = std::upper_bound(sparse.begin(), sparse.end(), after);
    if (it != sparse.end() && *it - 1 < last) last = *it - 1;
    return last;
  };
  std::int64_t block = begin / S;  // the caller positions the generator here
  std::int64_t blocks_drawn = 0;
  std::vector<std::int64_t> advanced, observed;
  std::int64_t deposits = 0;
  const auto seen = [&](std::int64_t step) {
    EXPECT_FALSE(advanced.empty());
    if (!advanced.empty()) {
      EXPECT_EQ(advanced.back(), step);
    }
    observed.push_back(step);
  };
  run_schedule<double, D, S>(
      begin, end,
      [&](double(&z)[S * D]) {
        for (int i = 0; i < S * D; ++i) z[i] = static_cast<double>(block * S * D + i);
        ++block;
        ++blocks_drawn;
      },
      [&](const Vec<double, D>& z, std::int64_t step) {
        for (int i = 0; i < D; ++i) {
          ASSERT_EQ(z[i], static_cast<double>((step - 1) * D + i)) << "update " << step;
        }
        advanced.push_back(step);
      },
      next_after,
      [&](std::int64_t step) {
        seen(step);
        return next_after(step);
      },
      dense_end,
      [&](std::int64_t step) {
        EXPECT_FALSE(std::binary_search(sparse.begin(), sparse.end(), step))
            << "deposit() at a step with another event: " << step;
        seen(step);
        ++deposits;
      });
  std::vector<std::int64_t> want_advanced;
  for (std::int64_t k = begin + 1; k <= end; ++k) want_advanced.push_back(k);
  EXPECT_EQ(advanced, want_advanced);
  std::vector<std::int64_t> want_observed;
  for (std::int64_t e : events) {
    if (e > begin && e <= end) want_observed.push_back(e);
  }
  EXPECT_EQ(observed, want_observed);
  const std::int64_t want_blocks = end > begin ? (end - 1) / S - begin / S + 1 : 0;
  EXPECT_EQ(blocks_drawn, want_blocks);
  // A dense range spanning several whole super-blocks inside the run uses the dense loop.
  for (const auto& [lo, hi] : dense) {
    const std::int64_t first_whole = std::max(lo - 1, begin);
    if (sparse.empty() && first_whole % S == 0 && first_whole + 2 * S <= std::min(hi, end)) {
      EXPECT_GE(deposits, 2 * S) << "dense range [" << lo << ", " << hi << "]";
    }
  }
}

template <int D, int S>
void check_many_schedules() {
  std::mt19937 rng(12345);
  for (std::int64_t begin = 0; begin < 13; ++begin) {
    for (std::int64_t end = begin; end < begin + 27; ++end) {
      check_schedule<D, S>(begin, end, {});
      std::vector<std::int64_t> every;
      for (std::int64_t e = 0; e <= end + 3; ++e) every.push_back(e);
      check_schedule<D, S>(begin, end, every);
      check_schedule<D, S>(begin, end, {begin, begin + 1, end, end + 1});
      std::vector<std::int64_t> random;
      for (std::int64_t e = 0; e <= end + 2; ++e) {
        if (rng() % 4 == 0) random.push_back(e);
      }
      check_schedule<D, S>(begin, end, random);
      // Dense deposits: alone, overlapping, with samples inside and at the range's ends.
      check_schedule<D, S>(begin, end, {}, {{0, end + 5}});
      check_schedule<D, S>(begin, end, {}, {{begin + 3, begin + 14}});
      check_schedule<D, S>(begin, end, {}, {{begin + 2, begin + 9}, {begin + 6, begin + 20}});
      check_schedule<D, S>(begin, end, {begin + 7, end}, {{begin + 1, end + 2}});
      check_schedule<D, S>(begin, end, random, {{begin + 4, begin + 17}});
    }
  }
  // Large step numbers (counters beyond 32 bits).
  const std::int64_t big = (std::int64_t{1} << 33) + 3;
  check_schedule<D, S>(big, big + 41, {big + 5, big + 6, big + 40});
  check_schedule<D, S>(big, big + 41, {big + 30}, {{big + 2, big + 37}});
}

TEST(CudaSchedule, OneDimensionalFourStepsPerBlock) {
  check_many_schedules<1, 4>();
}
TEST(CudaSchedule, TwoDimensionalTwoStepsPerBlock) {
  check_many_schedules<2, 2>();
}
TEST(CudaSchedule, ThreeDimensionalFourStepsPerThreeBlocks) {
  check_many_schedules<3, 4>();
}

TEST(CudaSchedule, NextDepositAgreesWithDepositsAt) {
  for (std::int64_t begin : {0, 1, 5, 10}) {
    for (std::int64_t end : {begin - 1, begin, begin + 1, begin + 17, begin + 40}) {
      for (std::int64_t every : {1, 2, 3, 7, 50}) {
        HistogramGeometry<float> g;
        g.window_begin = begin;
        g.window_end = end;
        g.every = every;
        for (std::int64_t after = -1; after < end + 10; ++after) {
          std::int64_t want = kNoEvent;
          for (std::int64_t s = after + 1; s <= end + 60; ++s) {
            if (g.deposits_at(s)) {
              want = s;
              break;
            }
          }
          ASSERT_EQ(next_deposit(g, after), want)
              << "window [" << begin << ", " << end << "] every " << every << " after " << after;
        }
      }
    }
  }
}

// The kernel's dense-deposit stretches (BlockObserver::dense_end): at every step of a stretch the
// histograms that deposit are exactly its mask, each deposits every step, no sample falls inside;
// a lone every-step window is one whole stretch; more than 32 histograms give none.
TEST(CudaSchedule, DenseStretchAgreesWithDepositsAt) {
  std::mt19937 rng(2024);
  int stretches = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<HistogramGeometry<float>> geometries(1 + rng() % 3);
    for (HistogramGeometry<float>& g : geometries) {
      g.window_begin = rng() % 40;
      g.window_end = g.window_begin - 1 + static_cast<std::int64_t>(rng() % 30);
      g.every = rng() % 4 == 0 ? 1 + rng() % 3 : 1;
    }
    const std::int64_t sample = rng() % 3 == 0 ? kNoEvent : static_cast<std::int64_t>(rng() % 70);
    const auto at = [&](int h) -> const HistogramGeometry<float>& { return geometries[h]; };
    for (std::int64_t after = -1; after < 75; ++after) {
      const std::int64_t next_sample = sample > after ? sample : kNoEvent;
      const DenseStretch st =
          dense_stretch(static_cast<int>(geometries.size()), at, after, next_sample);
      if (st.end <= after) continue;
      ++stretches;
      ASSERT_NE(st.mask, 0u);
      ASSERT_LT(st.end, next_sample);
      for (std::int64_t step = after + 1; step <= st.end; ++step) {
        for (std::size_t h = 0; h < geometries.size(); ++h) {
          const bool in_mask = ((st.mask >> h) & 1u) != 0;
          ASSERT_EQ(geometries[h].deposits_at(step), in_mask)
              << "trial " << trial << " after " << after << " step " << step << " h " << h;
          if (in_mask) {
            ASSERT_EQ(geometries[h].every, 1);
          }
        }
      }
    }
  }
  EXPECT_GT(stretches, 1000);  // the property was checked on many stretches

  HistogramGeometry<double> lone;
  lone.window_begin = 10;
  lone.window_end = 500;
  const auto one = [&](int) -> const HistogramGeometry<double>& { return lone; };
  const DenseStretch whole = dense_stretch(1, one, 9, kNoEvent);
  EXPECT_EQ(whole.end, 500);
  EXPECT_EQ(whole.mask, 1u);
  EXPECT_EQ(dense_stretch(1, one, 9, 200).end, 199);      // ends before a sample
  EXPECT_EQ(dense_stretch(1, one, 8, kNoEvent).end, 8);   // step 9 deposits nothing: no stretch
  EXPECT_EQ(dense_stretch(33, one, 9, kNoEvent).end, 9);  // more than a mask holds
}

TEST(CudaLaunchPlan, GridCoversEveryWalkerOnce) {
  for (std::int64_t W : {1, 5, 31, 32, 33, 173, 256, 257, 1000}) {
    const std::int64_t variants = 4;
    const std::int64_t total = variants * W;
    const std::vector<std::int64_t> bounds = {0, 1, W - 1, W, W + 1, 2 * W + 7, total - 1, total};
    for (std::int64_t first : bounds) {
      for (std::int64_t last : bounds) {
        if (first < 0 || last > total || first >= last) continue;
        for (int max_threads : {32, 64, 96, 256}) {
          const LaunchGrid grid = plan_grid(first, last, W, max_threads);
          SCOPED_TRACE("W " + std::to_string(W) + " [" + std::to_string(first) + ", " +
                       std::to_string(last) + ") threads " + std::to_string(max_threads));
          ASSERT_EQ(grid.threads % 32, 0);
          ASSERT_LE(grid.threads, max_threads);
          std::multiset<std::int64_t> seen;
          for (std::int64_t block = 0; block < grid.blocks; ++block) {
            const BlockWalkers b = block_walkers(block, grid.threads, first, last - first, W,
                                                 grid.variant_begin, grid.chunks_per_variant);
            ASSERT_EQ(b.variant, grid.variant_begin + b.variant_local);
            if (b.chunk_begin >= b.hi) continue;  // an idle block
            for (std::int64_t t = 0; t < grid.threads; ++t) {
              const std::int64_t w = b.chunk_begin + t;
              if (w >= b.hi) break;
              ASSERT_GE(w, b.lo);
              seen.insert(b.variant * W + w);
            }
          }
          ASSERT_EQ(static_cast<std::int64_t>(seen.size()), last - first);
          std::int64_t expect = first;
          for (std::int64_t g : seen) ASSERT_EQ(g, expect++);
        }
      }
    }
  }
}

TEST(CudaLaunchPlan, BatchesFitTheMemoryTheyAllocate) {
  // The memory a batch of B walkers allocates: once, its walkers, and the variants it spans (at
  // most ⌈B/W⌉ + 1, never more than the plan's).
  const auto allocated = [](const BatchMemory& m, std::int64_t batch, std::int64_t w,
                            std::int64_t variants) {
    const std::int64_t spanned = std::min(variants, (batch + w - 1) / w + 1);
    return static_cast<double>(m.once) + static_cast<double>(m.per_walker) * batch +
           static_cast<double>(m.per_variant) * spanned;
  };
  // A few variants: the whole plan counted, as before.
  const BatchMemory small{100, 1000, 500};
  EXPECT_EQ(batch_walkers_that_fit(small, 500 + 4 * 1000 + 100 * 100, 25, 4), 100);
  // Ten million variants of 1000 walkers at 1000 bytes each (Adam's step-table rows, counters):
  // 10 GB for the plan's variants alone, more than the memory. Before, one walker per batch; now
  // batches of about five million walkers, and their variants fit.
  const BatchMemory many{200, 1000, 1 << 20};
  const std::size_t memory = std::size_t{2} << 30;
  const std::int64_t fit = batch_walkers_that_fit(many, memory, 1000, 10000000);
  EXPECT_GT(fit, 5000000);
  EXPECT_LE(allocated(many, fit, 1000, 10000000), static_cast<double>(memory));
  // Nothing fits: 0 (the backend says so in words).
  EXPECT_EQ(batch_walkers_that_fit(small, 500 + 2 * 1000 + 99, 25, 4), 0);
  EXPECT_EQ(batch_walkers_that_fit(small, 100, 25, 4), 0);
  // Random plans: what a batch of the returned size allocates fits.
  std::mt19937_64 random(7);
  for (int i = 0; i < 20000; ++i) {
    const BatchMemory m{1 + random() % 4096, random() % 100000, random() % 10000000};
    const std::int64_t w = 1 + static_cast<std::int64_t>(random() % 100000);
    const std::int64_t variants = 1 + static_cast<std::int64_t>(random() % 10000000);
    const std::size_t available = random() % (std::size_t{1} << 36);
    const std::int64_t b = batch_walkers_that_fit(m, available, w, variants);
    ASSERT_GE(b, 0);
    if (b > 0) {
      ASSERT_LE(allocated(m, b, w, variants), static_cast<double>(available))
          << "case " << i << ": " << b << " walkers";
    }
  }
}

TEST(CudaLaunchPlan, SegmentsPartitionStepsAndSamples) {
  const std::vector<std::int64_t> samples = {0, 1, 2, 3, 10, 11, 50, 99, 100};
  for (std::int64_t begin : {0, 1, 2, 9, 10, 50}) {
    for (std::int64_t end : {begin, begin + 1, begin + 2, std::int64_t{100}, std::int64_t{137}}) {
      if (end < begin) continue;
      for (std::int64_t max_steps : {1, 2, 7, 1000}) {
        for (std::int64_t max_samples : {1, 2, 64}) {
          const std::vector<LaunchSegment> segments =
              plan_segments(samples, begin, end, max_steps, max_samples);
          std::int64_t at = begin;
          std::vector<std::int64_t> covered;
          for (const LaunchSegment& s : segments) {
            ASSERT_EQ(s.step_begin, at);
            ASSERT_GT(s.step_end, s.step_begin);
            ASSERT_LE(s.step_end - s.step_begin, max_steps);
            ASSERT_LE(s.sample_count, max_samples);
            for (int i = 0; i < s.sample_count; ++i) {
              const std::int64_t step = samples[static_cast<std::size_t>(s.sample_offset + i)];
              ASSERT_GT(step, s.step_begin);
              ASSERT_LE(step, s.step_end);
              covered.push_back(step);
            }
            at = s.step_end;
          }
          ASSERT_EQ(at, end);
          std::vector<std::int64_t> want;
          for (std::int64_t step : samples) {
            if (step > begin && step <= end) want.push_back(step);
          }
          ASSERT_EQ(covered, want) << "begin " << begin << " end " << end;
        }
      }
    }
  }
}

template <class T>
auto bits_of(T v) {
  std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t> b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

/// The CUDA step loop carries the walker's step stamps as 32-bit steps relative to its launch
/// (LaunchTrackers). Advancing that walker and converting it back must give exactly the walker
/// the absolute trackers give: every field, for walkers that come into the launch with stamps set
/// or unset, change basin, reach the target, or turn non-finite during it, at a step_begin beyond
/// 32 bits.
template <class T>
void check_launch_trackers() {
  SCOPED_TRACE(sizeof(T) == 4 ? "float" : "double");
  const TwoValley<T> landscape;
  StepParams<T> params{};
  params.learning_rate = T(0.1);
  params.noise = make_noise_scale<T>(0.1);
  const PassageTarget<T> target = PassageTarget<T>::make(PassageKind::above, 0, 1, T(5.02));
  const std::int64_t step_begin = std::int64_t{5} << 32;
  const int steps = 300;
  std::mt19937_64 rng(20261205);
  std::normal_distribution<double> normal;
  int changed_basin = 0, arrived = 0, went_nonfinite = 0;
  for (int w = 0; w < 64; ++w) {
    const T x = (w % 2 == 0 ? T(0.01) : T(-0.01)) * T(1 + w % 5);
    WalkerState<T, 2> absolute = initial_walker(landscape, target, Vec<T, 2>{{x, T(5)}});
    // Stamps the walker may come with from earlier launches.
    if (w % 4 == 1) absolute.freeze_step = step_begin - 17;
    if (w % 8 == 3) absolute.first_passage_step = step_begin - 2;
    if (w == 5) absolute.nonfinite_step = step_begin - 1;
    const WalkerState<T, 2> start = absolute;
    WalkerState<T, 2, UpdateRule::sgd, std::int32_t> relative = LaunchTrackers::to_relative(start);
    for (int k = 1; k <= steps; ++k) {
      Vec<T, 2> z{{static_cast<T>(normal(rng)), static_cast<T>(normal(rng))}};
      if (w % 16 == 7 && k == 40 + w) z[0] = static_cast<T>(__builtin_huge_val());
      advance_walker<NoiseKind::hessian>(landscape, params, target, z, step_begin + k, absolute);
      advance_walker<NoiseKind::hessian>(landscape, params, target, z, k, relative);
    }
    const WalkerState<T, 2> back = LaunchTrackers::to_absolute(relative, start, step_begin);
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(bits_of(back.position[i]), bits_of(absolute.position[i])) << "walker " << w;
    }
    EXPECT_EQ(back.freeze_step, absolute.freeze_step) << "walker " << w;
    EXPECT_EQ(back.first_passage_step, absolute.first_passage_step) << "walker " << w;
    EXPECT_EQ(back.nonfinite_step, absolute.nonfinite_step) << "walker " << w;
    EXPECT_EQ(bits_of(back.y_freeze), bits_of(absolute.y_freeze)) << "walker " << w;
    EXPECT_EQ(back.basin, absolute.basin) << "walker " << w;
    EXPECT_EQ(back.crossings, absolute.crossings) << "walker " << w;
    changed_basin += absolute.freeze_step > step_begin;
    arrived += absolute.first_passage_step > step_begin;
    went_nonfinite += absolute.nonfinite_step > step_begin;
  }
  // The cases the encoding must get right all happened.
  EXPECT_GT(changed_basin, 0);
  EXPECT_GT(arrived, 0);
  EXPECT_GT(went_nonfinite, 0);
}

TEST(CudaSchedule, LaunchRelativeTrackersEqualAbsoluteOnes) {
  check_launch_trackers<float>();
  check_launch_trackers<double>();
}

}  // namespace
}  // namespace sgdwalk::gpu
