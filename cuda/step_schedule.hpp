// The advance kernel's control flow as host+device code, so that it is unit-tested on the CPU
// (tests/test_cuda_schedule.cpp) although the kernel itself only runs on a GPU: the step loop
// (which update gets which normals, where events fire), the block → walkers mapping, and the
// histogram deposit schedule.
#pragma once

#include <cstdint>

#include "sgdwalk/hd.hpp"
#include "sgdwalk/observables.hpp"
#include "sgdwalk/vec.hpp"

#if defined(__CUDA_ARCH__)
#define SGDWALK_UNROLL _Pragma("unroll")
#define SGDWALK_NO_UNROLL _Pragma("unroll 1")
#elif defined(__GNUC__) && !defined(__CUDACC__) && !defined(__clang__)
#define SGDWALK_UNROLL _Pragma("GCC unroll 16")
#define SGDWALK_NO_UNROLL
#else
#define SGDWALK_UNROLL
#define SGDWALK_NO_UNROLL
#endif

namespace sgdwalk::gpu {

/// "No further event" for run_schedule's observe().
inline constexpr std::int64_t kNoEvent = INT64_MAX;

/// Advances one walker through updates step_begin + 1 .. step_end.
///
/// Normals come in super-blocks of N = S·D values (S updates each): update k uses the normals
/// [(k − 1)·D, k·D), i.e. super-block (k − 1) / S at offset ((k − 1) % S)·D. `next_block(z)` must
/// fill z with super-block m, m + 1, ... on successive calls, starting at m = step_begin / S (the
/// caller positions the generator there). `advance(z, step)` performs update `step` with the D
/// normals z[0 .. D). Events: `next_event(after)` is the first event step > after (or kNoEvent);
/// `observe(step)` is called right after update `step` when step is the current next event and
/// returns the next event after it. Dense deposits: `dense_end(after)` is the last step d such
/// that for every step s in (after, d] the events at s are exactly what `deposit(s)` does (every
/// histogram deposit due at s, no sample), with some histogram depositing at every such step, or
/// a value ≤ after when that stretch is empty; `deposit(step)` is then called right after update
/// `step` for each of those steps instead of observe.
///
/// At most 2^31 − 1 updates per call (the CUDA backend's launches have at most 2^23): the stretch
/// loops count super-blocks and steps within the stretch in 32 bits (a 64-bit counter costs the GPU
/// two instructions per add and compare).
///
/// Whole super-blocks without an event run in a tight unrolled loop (every normal index a
/// compile-time constant, no event checks); so do whole super-blocks of a dense-deposit stretch
/// (the walker-step with a deposit every step: no event bookkeeping per step); the super-blocks
/// holding the range's ends or another event go step by step, shifting the buffer so the current
/// step's normals are always z[0 .. D). All control flow depends only on (step_begin, step_end,
/// events): uniform across a GPU block.
template <class T, int D, int S, class NextBlock, class Advance, class NextEvent, class Observe,
          class DenseEnd, class Deposit>
SGDWALK_FN void run_schedule(std::int64_t step_begin, std::int64_t step_end, NextBlock&& next_block,
                             Advance&& advance, NextEvent&& next_event_after, Observe&& observe,
                             DenseEnd&& dense_end, Deposit&& deposit) {
  constexpr int N = S * D;
  T z[N];
  std::int64_t k = step_begin;  // last completed update
  std::int64_t m = k / S;       // super-block holding update k + 1
  std::int64_t next_event = next_event_after(step_begin);
  while (k < step_end) {
    // Event-free stretch: super-blocks whose S updates all lie before the next event.
    // The number of whole super-blocks is computed once: the loop itself only counts.
    const std::int64_t quiet_end = next_event - 1 < step_end ? next_event - 1 : step_end;
    if (k == m * S && k + S <= quiet_end) {
      const auto quiet_blocks = static_cast<std::int32_t>((quiet_end - k) / S);
      for (std::int32_t b = 0; b < quiet_blocks; ++b) {
        next_block(z);
        SGDWALK_UNROLL
        for (int j = 0; j < S; ++j) {
          Vec<T, D> zj;
          SGDWALK_UNROLL
          for (int i = 0; i < D; ++i) zj[i] = z[j * D + i];
          advance(zj, k + (b * S + j + 1));
        }
      }
      k += std::int64_t{quiet_blocks} * S;
      m += quiet_blocks;
    }
    if (k >= step_end) break;
    // Dense-deposit stretch: whole super-blocks in which every step deposits and nothing else
    // happens.
    if (k == m * S) {
      std::int64_t dense = dense_end(k);
      dense = dense < step_end ? dense : step_end;
      if (k + S <= dense) {
        const auto dense_blocks = static_cast<std::int32_t>((dense - k) / S);
        for (std::int32_t b = 0; b < dense_blocks; ++b) {
          next_block(z);
          SGDWALK_UNROLL
          for (int j = 0; j < S; ++j) {
            Vec<T, D> zj;
            SGDWALK_UNROLL
            for (int i = 0; i < D; ++i) zj[i] = z[j * D + i];
            advance(zj, k + (b * S + j + 1));
            deposit(k + (b * S + j + 1));
          }
        }
        k += std::int64_t{dense_blocks} * S;
        m += dense_blocks;
        next_event = next_event_after(k);
        continue;
      }
    }
    // Super-block m starts before step_begin, ends after step_end, or holds an event.
    next_block(z);
    std::int64_t step = m * S + 1;
    SGDWALK_NO_UNROLL
    for (int j = 0; j < S; ++j, ++step) {
      if (step > k && step <= step_end) {
        Vec<T, D> zj;
        SGDWALK_UNROLL
        for (int i = 0; i < D; ++i) zj[i] = z[i];
        advance(zj, step);
        if (step == next_event) next_event = observe(step);
      }
      SGDWALK_UNROLL
      for (int i = 0; i + D < N; ++i) z[i] = z[i + D];
    }
    k = m * S + S < step_end ? m * S + S : step_end;
    ++m;
  }
}

/// The walkers of one block: block b covers walkers [chunk_begin, chunk_begin + blockDim) ∩
/// [lo, hi) of variant `variant` (indices within the variant), where [lo, hi) is that variant's
/// part of the batch [first, first + count). A block with chunk_begin >= hi has nothing to do.
struct BlockWalkers {
  std::int64_t variant_local;  ///< variant − variant_begin
  std::int64_t variant;
  std::int64_t lo, hi;
  std::int64_t chunk_begin;
};

SGDWALK_FN BlockWalkers block_walkers(std::int64_t block, std::int64_t block_threads,
                                      std::int64_t first, std::int64_t count,
                                      std::int64_t walkers_per_variant, std::int64_t variant_begin,
                                      std::int64_t chunks_per_variant) {
  BlockWalkers b;
  b.variant_local = block / chunks_per_variant;
  const std::int64_t chunk = block % chunks_per_variant;
  b.variant = variant_begin + b.variant_local;
  const std::int64_t variant_first = b.variant * walkers_per_variant;
  const std::int64_t batch_end = first + count;
  b.lo = (first > variant_first ? first : variant_first) - variant_first;
  b.hi = (batch_end < variant_first + walkers_per_variant ? batch_end
                                                          : variant_first + walkers_per_variant) -
         variant_first;
  b.chunk_begin = b.lo + chunk * block_threads;
  return b;
}

/// First step after `after` at which histogram `g` deposits (HistogramGeometry::deposits_at), or
/// kNoEvent. Schedules events only: whether a deposit happens is still decided by deposits_at().
template <class T>
SGDWALK_FN std::int64_t next_deposit(const HistogramGeometry<T>& g, std::int64_t after) {
  std::int64_t d = g.window_begin;
  if (after >= g.window_begin) {
    // Every step (the common case) needs no 64-bit division.
    d = g.every == 1 ? after + 1
                     : g.window_begin + ((after - g.window_begin) / g.every + 1) * g.every;
  }
  return d <= g.window_end ? d : kNoEvent;
}

/// A dense-deposit stretch (run_schedule): steps (after, end] at each of which exactly the
/// histograms in `mask` deposit, every one of them every step, and nothing else happens.
struct DenseStretch {
  std::int64_t end;  ///< ≤ after when there is no stretch
  unsigned mask;
};

/// The dense-deposit stretch after step `after`, for `count` histograms whose geometries
/// `geometry(h)` returns and the next sample step `next_sample` (kNoEvent when none): every
/// histogram whose window covers after + 1 must deposit every step (otherwise there is no
/// stretch); the stretch ends with the first of their windows, before any other window opens and
/// before the next sample. At most 32 histograms (a bit mask); more give no stretch.
template <class GeometryAt>
SGDWALK_FN DenseStretch dense_stretch(int count, GeometryAt&& geometry, std::int64_t after,
                                      std::int64_t next_sample) {
  const std::int64_t first = after + 1;
  std::int64_t end = kNoEvent;
  unsigned mask = 0;
  bool sparse = count > 32;
  for (int h = 0; h < count && h < 32; ++h) {
    const auto& g = geometry(h);
    if (g.window_end < first) continue;  // closed
    if (g.window_begin > first) {        // opens later: the stretch ends before
      end = g.window_begin - 1 < end ? g.window_begin - 1 : end;
      continue;
    }
    sparse = sparse || g.every != 1;
    mask |= 1u << h;
    end = g.window_end < end ? g.window_end : end;
  }
  if (next_sample != kNoEvent && next_sample - 1 < end) end = next_sample - 1;
  return {sparse || mask == 0 ? after : end, mask};
}

}  // namespace sgdwalk::gpu
