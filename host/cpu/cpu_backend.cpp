// The CPU backend: OpenMP over blocks of walkers, a SIMD lane loop over the walkers of a block.
//
// Each block of walkers of one variant (LaneLayout<T>::lanes of them) is advanced in chunks of
// kChunkSteps steps: first the chunk's normals (or α-stable draws, sgdwalk/stable.hpp) are
// generated for all lanes (stateless Philox blocks keyed by the walker's subsequence, so the loop
// vectorises), then the steps run lane-parallel through the shared advance_walker(). Observations
// (samples, histograms) are scalar passes at the steps that need them. Counts are integers, so
// results do not depend on the number of threads or on batching.
#include <omp.h>

#include <algorithm>
#include <array>
#include <type_traits>
#include <vector>

#include "analysis/statistics.hpp"
#include "backend/backend.hpp"
#include "backend/typed_run.hpp"
#include "cpu/ffs_cpu.hpp"
#include "cpu/normals_avx2.hpp"
#include "cpu/normals_avx512.hpp"
#include "sgdwalk/normal.hpp"
#include "sgdwalk/philox.hpp"
#include "sgdwalk/stable.hpp"

namespace sgdwalk {
namespace {

// "The iterations of this loop touch different lanes": lets the vectoriser ignore the possible
// aliasing of the lane arrays through `this` (each compiler has its own spelling).
#if defined(__clang__)
#define SGDWALK_LANES_INDEPENDENT _Pragma("clang loop vectorize(assume_safety)")
#else
#define SGDWALK_LANES_INDEPENDENT _Pragma("GCC ivdep")
#endif

// The normals' fast paths, all with the bits of the portable functions: AVX-512 intrinsics where
// the machine has AVX-512 F, DQ and VL, otherwise AVX2 intrinsics. On an AVX-512 machine even
// gcc's vectorisation of the portable functions beats the AVX2 intrinsics by 15-20 % per whole
// step, and the AVX-512 intrinsics beat it by another 13-18 % (Zen 5, bench/RESULTS.md).
#if defined(SGDWALK_HAVE_NORMALS_AVX512)
constexpr int kNormalsLanes = 16;
#elif defined(SGDWALK_HAVE_NORMALS_AVX2)
constexpr int kNormalsLanes = 8;
#else
constexpr int kNormalsLanes = 1;
#endif

constexpr int kChunkSteps = 32;

/// Walkers per block and the type of the basin lane array, per precision. gcc's vectoriser picks
/// the lanes per vector iteration of advance_lanes() from the narrowest type in the loop, the
/// basin: int16 basins give 16 lanes per iteration with 256-bit vectors (four independent
/// dependency chains of ymm registers in double, two in float) and 32 with AVX-512 (four zmm
/// chains in double, two in float); int8 basins in float with AVX-512 give 64 lanes per iteration
/// (four zmm chains). Each chain is a long sequence of dependent divisions and square roots;
/// more independent chains per iteration measured faster up to four, eight (64 lanes in double)
/// gained nothing (bench/RESULTS.md, "CPU backend tuning"). Results do not depend on the block
/// size.
template <class T>
struct LaneLayout {
#if defined(__AVX512F__)
  static constexpr bool wide = std::is_same_v<T, float>;
#else
  static constexpr bool wide = false;
#endif
  static constexpr int lanes = wide ? 64 : 32;
  using Basin = std::conditional_t<wide, std::int8_t, std::int16_t>;
  static_assert(lanes % kNormalsLanes == 0, "the SIMD normals handle whole groups of lanes");
};

struct LaneBlock {
  std::int64_t variant;
  std::int64_t walker_begin;  ///< index within the variant
  int lanes;                  ///< valid lanes, 1..lanes_per_block
};

std::vector<LaneBlock> make_lane_blocks(const RunPlan& plan, std::int64_t first, std::int64_t last,
                                        int lanes_per_block) {
  std::vector<LaneBlock> blocks;
  const std::int64_t per_variant = plan.walkers_per_variant;
  std::int64_t g = first;
  while (g < last) {
    const std::int64_t variant = g / per_variant;
    const std::int64_t walker = g % per_variant;
    const std::int64_t end = std::min({last, (variant + 1) * per_variant, g + lanes_per_block});
    blocks.push_back({variant, walker, static_cast<int>(end - g)});
    g = end;
  }
  return blocks;
}

template <class T, class Landscape, NoiseKind Noise, NoiseDistribution Distribution, UpdateRule R>
class BlockSimulator {
 public:
  static constexpr int D = Landscape::dim;
  static constexpr int kLanes = LaneLayout<T>::lanes;
  static constexpr int kStateWidth = OptimizerState<T, D, R>::width;
  using Walker = WalkerState<T, D, R>;

  BlockSimulator(const RunPlan& plan, const TypedRun<T, Landscape>& run) : plan_(plan), run_(run) {}

  void simulate(const LaneBlock& block, std::int64_t step_begin, std::int64_t step_end,
                RunData& data, ObservationCounts& counts) {
    const std::int64_t g0 = block.variant * plan_.walkers_per_variant + block.walker_begin;
    // Local copies: the compiler keeps the constants in registers across the lane loop.
    const Landscape landscape = run_.landscape(block.variant);
    const StepParams<T> params = run_.step_params(block.variant);
    const StepSchedule& schedule = run_.schedule(block.variant);
    const PassageTarget<T> target = run_.target;

    // Padding lanes repeat the last valid walker; they are computed but never stored.
    for (int lane = 0; lane < kLanes; ++lane) {
      const int source = std::min(lane, block.lanes - 1);
      put_lane(lane, load_walker<T, D, R>(data.walkers, g0 + source));
      subsequence_[lane] = RunPlan::subsequence(block.variant, block.walker_begin + source);
    }

    auto next_sample =
        std::upper_bound(plan_.sample_steps.begin(), plan_.sample_steps.end(), step_begin);
    const bool any_histogram = !run_.geometries.empty();

    for (std::int64_t chunk_begin = step_begin; chunk_begin < step_end;
         chunk_begin += kChunkSteps) {
      const int chunk_steps =
          static_cast<int>(std::min<std::int64_t>(kChunkSteps, step_end - chunk_begin));
      if constexpr (Distribution == NoiseDistribution::gaussian) {
        generate_normals(chunk_begin * D, chunk_steps * D);
      } else {
        generate_stable(chunk_begin * D, chunk_steps * D, run_.stable_params(block.variant));
      }
      for (int s = 0; s < chunk_steps; ++s) {
        const std::int64_t step = chunk_begin + s + 1;
        // Scheduled constants: once per step for all lanes (the same bits as any backend's).
        if (schedule.per_step) {
          advance_lanes(landscape, step_params_at<T>(schedule, step), target, s, step);
        } else {
          advance_lanes(landscape, params, target, s, step);
        }
        if (any_histogram) deposit_lanes(landscape, block, step, counts);
        if (next_sample != plan_.sample_steps.end() && *next_sample == step) {
          const auto sample = static_cast<std::int64_t>(next_sample - plan_.sample_steps.begin());
          for (int lane = 0; lane < block.lanes; ++lane) {
            record_sample(run_, block.variant, block.walker_begin + lane, sample, lane_state(lane),
                          data.observables, counts);
          }
          ++next_sample;
        }
      }
    }
    for (int lane = 0; lane < block.lanes; ++lane) {
      store_walker(lane_state(lane), data.walkers, g0 + lane);
    }
  }

 private:
  /// One step of every lane. The lane state is structure-of-arrays; each iteration assembles a
  /// WalkerState in locals, which the compiler scalarises, so the loop vectorises (one lane per
  /// SIMD element). Not `omp simd`: gcc privatises a struct local of an `omp simd` body into an
  /// array of structs, which it then cannot vectorise; the plain loop with ivdep has no such array.
  void advance_lanes(const Landscape& landscape, const StepParams<T>& params,
                     const PassageTarget<T>& target, int s, std::int64_t step) {
    SGDWALK_LANES_INDEPENDENT
    for (int lane = 0; lane < kLanes; ++lane) {
      Walker walker = lane_state(lane);
      Vec<T, D> draws;
      for (int i = 0; i < D; ++i) draws[i] = normals_[s * D + i][lane];
      advance_walker<Noise, R>(landscape, params, target, noise_inputs<Distribution>(params, draws),
                               step, walker);
      put_lane(lane, walker);
    }
  }

  /// deposit_histograms() for every valid lane, with the per-step work (schedule, geometry,
  /// destination row) done once per step instead of once per lane.
  void deposit_lanes(const Landscape& landscape, const LaneBlock& block, std::int64_t step,
                     ObservationCounts& counts) const {
    for (std::size_t h = 0; h < run_.geometries.size(); ++h) {
      // A reference: with a local copy gcc no longer vectorises the slot loop below.
      const HistogramGeometry<T>& geometry = run_.geometries[h];
      if (!geometry.deposits_at(step)) continue;
      std::uint64_t* row = counts.histogram_row(h, geometry.bin_count(), block.variant);
      const T* x = position_[geometry.x_coordinate];
      // The slots of all lanes in one vector loop (slot() is branch-free), then the increments.
      alignas(64) std::int32_t slots[kLanes];
      SGDWALK_LANES_INDEPENDENT
      for (int lane = 0; lane < kLanes; ++lane) {
        Vec<T, D> position;
        for (int i = 0; i < D; ++i) position[i] = position_[i][lane];
        const std::int32_t slot = geometry.slot(x[lane], landscape.progress(position));
        slots[lane] = nonfinite_step_[lane] < 0 ? slot : -1;
      }
      for (int lane = 0; lane < block.lanes; ++lane) {
        if (slots[lane] >= 0) row[slots[lane]]++;
      }
    }
  }

  Walker lane_state(int lane) const {
    Walker walker;
    for (int i = 0; i < D; ++i) walker.position[i] = position_[i][lane];
    walker.freeze_step = freeze_step_[lane];
    walker.first_passage_step = first_passage_step_[lane];
    walker.nonfinite_step = nonfinite_step_[lane];
    walker.y_freeze = y_freeze_[lane];
    walker.basin = basin_[lane];
    walker.crossings = crossings_[lane];
    for (int j = 0; j < kStateWidth; ++j) walker.optimizer.set(j, optimizer_[j][lane]);
    return walker;
  }

  void put_lane(int lane, const Walker& walker) {
    for (int i = 0; i < D; ++i) position_[i][lane] = walker.position[i];
    freeze_step_[lane] = walker.freeze_step;
    first_passage_step_[lane] = walker.first_passage_step;
    nonfinite_step_[lane] = walker.nonfinite_step;
    y_freeze_[lane] = walker.y_freeze;
    // kFlatBasin or kSharpBasin
    basin_[lane] = static_cast<typename LaneLayout<T>::Basin>(walker.basin);
    crossings_[lane] = walker.crossings;
    for (int j = 0; j < kStateWidth; ++j) optimizer_[j][lane] = walker.optimizer.get(j);
  }

  /// normals_[j][lane] = normal number (first + j) of the lane's sequence (normal.hpp contract).
  void generate_normals(std::int64_t first, int count) {
    const std::int64_t block_first = first / 4;
    const std::int64_t block_last = (first + count - 1) / 4;
    for (std::int64_t b = block_first; b <= block_last; ++b) {
      const auto offset = static_cast<int>(4 * b - first);  // index of this block's normal 0
      alignas(64) T z[4][kLanes];
      block_normals(static_cast<std::uint64_t>(b), z);
      for (int j = 0; j < 4; ++j) {
        const int index = offset + j;
        if (index < 0 || index >= count) continue;
        for (int lane = 0; lane < kLanes; ++lane) normals_[index][lane] = z[j][lane];
      }
    }
  }

  /// normals_[j][lane] = S for stable draw (first + j) of the lane (the stable sequence contract
  /// of sgdwalk/stable.hpp: draws 2b and 2b + 1 from Philox block b), unscaled: each step scales
  /// its draws by its own c_k (advance_lanes). A plain lane loop over the portable functions (no
  /// intrinsics): gcc vectorises it; bench/RESULTS.md has its speed.
  void generate_stable(std::int64_t first, int count, const StableParams<T>& stable) {
    const std::uint64_t seed = plan_.seed;
    const std::int64_t block_first = first / 2;
    const std::int64_t block_last = (first + count - 1) / 2;
    for (std::int64_t b = block_first; b <= block_last; ++b) {
      const auto offset = static_cast<int>(2 * b - first);  // index of this block's draw 0
      alignas(64) std::uint32_t words[4][kLanes];
#pragma omp simd
      for (int lane = 0; lane < kLanes; ++lane) {
        const U32x4 v = philox_block(seed, subsequence_[lane], static_cast<std::uint64_t>(b));
        words[0][lane] = v.x;
        words[1][lane] = v.y;
        words[2][lane] = v.z;
        words[3][lane] = v.w;
      }
      alignas(64) T z[2][kLanes];
#pragma omp simd
      for (int lane = 0; lane < kLanes; ++lane) {
        z[0][lane] = stable_from_words<T>(words[0][lane], words[1][lane], stable);
        z[1][lane] = stable_from_words<T>(words[2][lane], words[3][lane], stable);
      }
      for (int j = 0; j < 2; ++j) {
        const int index = offset + j;
        if (index < 0 || index >= count) continue;
        for (int lane = 0; lane < kLanes; ++lane) normals_[index][lane] = z[j][lane];
      }
    }
  }

  /// z[j][lane] = normal 4 * block + j of the lane's sequence: normals_from_block of the words of
  /// philox_block(seed, subsequence_[lane], block), sixteen lanes at a time with AVX-512
  /// intrinsics, eight with AVX2, the portable functions vectorised by the compiler otherwise
  /// (same bits).
  void block_normals(std::uint64_t block, T (&z)[4][kLanes]) const {
    const std::uint64_t seed = plan_.seed;
#if defined(SGDWALK_HAVE_NORMALS_AVX512)
    for (int lane = 0; lane < kLanes; lane += kNormalsLanes) {
      avx512::block_normals(seed, &subsequence_[lane], block, &z[0][lane], &z[1][lane], &z[2][lane],
                            &z[3][lane]);
    }
#elif defined(SGDWALK_HAVE_NORMALS_AVX2)
    for (int lane = 0; lane < kLanes; lane += kNormalsLanes) {
      avx2::block_normals(seed, &subsequence_[lane], block, &z[0][lane], &z[1][lane], &z[2][lane],
                          &z[3][lane]);
    }
#else
    alignas(64) std::uint32_t words[4][kLanes];
#pragma omp simd
    for (int lane = 0; lane < kLanes; ++lane) {
      const U32x4 v = philox_block(seed, subsequence_[lane], block);
      words[0][lane] = v.x;
      words[1][lane] = v.y;
      words[2][lane] = v.z;
      words[3][lane] = v.w;
    }
#pragma omp simd
    for (int lane = 0; lane < kLanes; ++lane) {
      box_muller<T>(words[0][lane], words[1][lane], z[0][lane], z[1][lane]);
      box_muller<T>(words[2][lane], words[3][lane], z[2][lane], z[3][lane]);
    }
#endif
  }

  const RunPlan& plan_;
  const TypedRun<T, Landscape>& run_;
  // Lane state, structure of arrays (see advance_lanes).
  alignas(64) T position_[D][kLanes];
  alignas(64) T y_freeze_[kLanes];
  alignas(64) std::int64_t freeze_step_[kLanes];
  alignas(64) std::int64_t first_passage_step_[kLanes];
  alignas(64) std::int64_t nonfinite_step_[kLanes];
  // Narrow on purpose: it sets the lanes per vector iteration of advance_lanes() (LaneLayout).
  alignas(64) typename LaneLayout<T>::Basin basin_[kLanes];
  alignas(64) std::uint32_t crossings_[kLanes];
  // The optimizer state, one array per component (one unused row for SGD: no zero-size arrays).
  alignas(64) T optimizer_[kStateWidth > 0 ? kStateWidth : 1][kLanes];
  alignas(64) std::uint64_t subsequence_[kLanes];
  /// The chunk's noise inputs z: normals, or scaled α-stable draws.
  alignas(64) T normals_[kChunkSteps * D][kLanes];
};

/// The smallest batch the CPU backend prefers (see preferred_batch_walkers).
constexpr std::int64_t kPreferredBatchWalkers = std::int64_t{1} << 16;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_max_threads()) {}

  std::string name() const override { return "cpu"; }
  std::string description() const override {
    return "CPU, " + std::to_string(threads_) + " OpenMP thread(s), blocks of " +
           std::to_string(LaneLayout<double>::lanes) + " (double) / " +
           std::to_string(LaneLayout<float>::lanes) + " (float) SIMD lanes";
  }
  std::int64_t max_batch_walkers(const RunPlan&) const override { return 0; }
  /// Whole variants and at least 2^16 walkers: a sweep's variants finish one batch after another
  /// (so a stopped run keeps them and progress counts them), while each batch still holds enough
  /// lane blocks for every thread. Batching changes no result.
  std::int64_t preferred_batch_walkers(const RunPlan& plan) const override {
    const std::int64_t per_variant = std::max<std::int64_t>(1, plan.walkers_per_variant);
    const std::int64_t variants = (kPreferredBatchWalkers + per_variant - 1) / per_variant;
    return variants * per_variant;
  }
  void initialize(const RunPlan& plan, std::int64_t first, std::int64_t last,
                  RunData& data) override {
    initialize_walkers(plan, first, last, data, threads_);
  }

  void advance(const RunPlan& plan, std::int64_t first, std::int64_t last, std::int64_t step_begin,
               std::int64_t step_end, RunData& data) override {
    dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind Noise>() {
      dispatch_update_rule(plan, [&]<UpdateRule R>() {
        const std::vector<LaneBlock> blocks =
            make_lane_blocks(plan, first, last, LaneLayout<T>::lanes);
        const auto [variant_begin, variant_end] = variants_of_walkers(plan, first, last);
        const TypedRun<T, Landscape> run(plan, variant_begin, variant_end);
        auto advance_blocks = [&]<NoiseDistribution Distribution>() {
#pragma omp parallel num_threads(threads_)
          {
            ObservationCounts counts(data.observables, variant_begin, variant_end);
            auto simulator =
                std::make_unique<BlockSimulator<T, Landscape, Noise, Distribution, R>>(plan, run);
#pragma omp for schedule(dynamic, 4)
            for (std::size_t i = 0; i < blocks.size(); ++i) {
              simulator->simulate(blocks[i], step_begin, step_end, data, counts);
            }
#pragma omp critical(sgdwalk_merge_counts)
            counts.add_to(data.observables);
          }
        };
        if (plan.noise_distribution == NoiseDistribution::alpha_stable) {
          advance_blocks.template operator()<NoiseDistribution::alpha_stable>();
        } else {
          advance_blocks.template operator()<NoiseDistribution::gaussian>();
        }
      });
    });
    std::int64_t sample_begin = 0, sample_end = 0;
    samples_in_steps(plan, step_begin, step_end, sample_begin, sample_end);
    reduce_samples(plan, data, first, last, sample_begin, sample_end, threads_);
  }

  void run_ffs_flux(const RunPlan& plan, std::int64_t step_end, FfsFluxBatch& batch) override {
    cpu_run_ffs_flux(plan, step_end, batch, threads_);
  }
  void run_ffs_trials(const RunPlan& plan, FfsTrialBatch& batch) override {
    cpu_run_ffs_trials(plan, batch, threads_);
  }

 private:
  int threads_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

void Backend::initialize(const RunPlan& plan, std::int64_t first, std::int64_t last,
                         RunData& data) {
  initialize_walkers(plan, first, last, data);
}

void Backend::begin_batch(const RunPlan&, std::int64_t, std::int64_t, std::int64_t,
                          const RunData&) {}

void Backend::sync_walkers(const RunPlan&, RunData&) {}

void Backend::end_batch(const RunPlan& plan, RunData& data) {
  sync_walkers(plan, data);
}

void initialize_walkers(const RunPlan& plan, std::int64_t first, std::int64_t last, RunData& data,
                        int threads) {
  dispatch_physics(plan, [&]<class T, class Landscape, NoiseKind>() {
    constexpr int D = Landscape::dim;
    const auto [variant_begin, variant_end] = variants_of_walkers(plan, first, last);
    const TypedRun<T, Landscape> run(plan, variant_begin, variant_end);
    const bool sample_at_zero = !plan.sample_steps.empty() && plan.sample_steps.front() == 0;
    // Each walker is written by one thread and the counts are integers summed per thread, so the
    // result does not depend on the thread count.
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads())
    {
      ObservationCounts counts(data.observables, variant_begin, variant_end);
#pragma omp for schedule(static)
      for (std::int64_t g = first; g < last; ++g) {
        const std::int64_t variant = g / plan.walkers_per_variant;
        const std::int64_t walker_index = g % plan.walkers_per_variant;
        const auto& start = plan.initial_positions[static_cast<std::size_t>(walker_index) %
                                                   plan.initial_positions.size()];
        Vec<T, D> position;
        for (int i = 0; i < D; ++i)
          position[i] = static_cast<T>(start[static_cast<std::size_t>(i)]);
        const WalkerState<T, D> walker =
            initial_walker(run.landscape(variant), run.target, position);
        store_walker(walker, data.walkers, g);
        // A fresh walker's optimizer state is 0 (the arrays may hold an earlier batch's).
        const std::size_t width = static_cast<std::size_t>(data.walkers.state_width);
        std::fill_n(data.walkers.optimizer_state.begin() +
                        static_cast<std::ptrdiff_t>(data.walkers.at(g) * width),
                    width, 0.0);
        deposit_histograms(run, variant, 0, walker, counts);
        if (sample_at_zero)
          record_sample(run, variant, walker_index, 0, walker, data.observables, counts);
      }
#pragma omp critical(sgdwalk_merge_counts)
      counts.add_to(data.observables);
    }
    if (sample_at_zero) reduce_samples(plan, data, first, last, 0, 1, threads);
  });
}

}  // namespace sgdwalk
