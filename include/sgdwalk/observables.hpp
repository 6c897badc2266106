// On-the-fly observables shared by the backends: histogram geometry and the deposit schedule.
//
// Nothing here stores trajectories. A histogram deposits every `every` steps inside its window;
// counts are integers, so the result is exact and independent of how walkers are split among
// threads, blocks or batches.
#pragma once

#include <cstdint>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

enum class HistogramKind : std::int32_t {
  x_in_band = 1,  ///< 1-D in position[x_coordinate], of the walkers whose progress is in a band
  xy = 2,         ///< 2-D in (position[x_coordinate], progress)
};

/// Bin layout of one histogram, in the walker's precision so that every backend assigns bins with
/// the same arithmetic. Slot layout: [0, x_bins·y_bins) are the bins (x fastest), slot
/// x_bins·y_bins counts walkers that were eligible but fell outside the range.
template <class T>
struct HistogramGeometry {
  HistogramKind kind = HistogramKind::x_in_band;
  std::int32_t x_coordinate = 0;
  std::int32_t x_bins = 1;
  std::int32_t y_bins = 1;  ///< 1 for x_in_band
  T x_lo = 0, x_inv_width = 1;
  T y_lo = 0, y_inv_width = 1;  ///< xy only
  T band_lo = 0, band_hi = 0;   ///< x_in_band only: inclusive band on the progress coordinate
  std::int64_t window_begin = 0, window_end = 0, every = 1;

  SGDWALK_FN std::int32_t bin_count() const { return x_bins * y_bins; }

  /// Whether `step` is a deposit step. Deposits every step are the common case, checked first: a
  /// 64-bit remainder costs tens of cycles, and the CPU backend asks once per step and block.
  SGDWALK_FN bool deposits_at(std::int64_t step) const {
    return step >= window_begin && step <= window_end &&
           (every == 1 || (step - window_begin) % every == 0);
  }

  /// Slot for a walker at `x` (the binned coordinate) with progress `y`; -1 if it is not eligible.
  /// No branch on the walker (only on the histogram's kind), so the CPU backend computes the slots
  /// of all its lanes in one vector loop: the conditions become integer masks and every
  /// conversion is unconditional. Only in-range values
  /// are converted to integers (an out-of-range or NaN conversion is undefined behaviour): a bit
  /// blend puts 0 in place of an outside coordinate before it is converted (with a select, gcc
  /// moves the conversion into a branch, which it then cannot vectorise).
  SGDWALK_FN std::int32_t slot(T x, T y) const {
    // One kind per histogram: a branch on it is uniform on the GPU, and gcc unswitches the CPU's
    // slot loop on it, so each evaluates only its own kind.
    const T u = (x - x_lo) * x_inv_width;
    const bool x_inside = (u >= T(0)) & (u < T(x_bins));
    const std::int32_t x_mask = -static_cast<std::int32_t>(x_inside);  // all ones when inside
    const std::int32_t x_bin = static_cast<std::int32_t>(select_bits(x_inside, u, T(0)));
    const std::int32_t outside = bin_count();
    if (kind == HistogramKind::x_in_band) {
      // Eligible inside the band (NaN progress is not), outside slot when x is out.
      const bool in_band = (y >= band_lo) & (y <= band_hi);
      const std::int32_t band_mask = -static_cast<std::int32_t>(in_band);
      return ((x_bin & x_mask) | (outside & ~x_mask)) | ~band_mask;
    }
    // xy: every walker is eligible; outside slot unless both coordinates are in range.
    const T v = (y - y_lo) * y_inv_width;
    const bool y_inside = (v >= T(0)) & (v < T(y_bins));
    const std::int32_t y_bin = static_cast<std::int32_t>(select_bits(y_inside, v, T(0)));
    const std::int32_t both_mask = -static_cast<std::int32_t>(x_inside & y_inside);
    return ((y_bin * x_bins + x_bin) & both_mask) | (outside & ~both_mask);
  }
};

}  // namespace sgdwalk
