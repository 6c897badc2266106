// Tally records: how a batch's per-walker values are reduced on a device to a few integers that
// reproduce the host's exact tallies (host/analysis/exact_stats.hpp) bit for bit.
//
// Every value that a tally sums or counts becomes one record (key, low): the key names its tally
// (a segment: variant and quantity) and a bucket that fixes the value's high bits; `low` holds the
// remaining bits. Sorting the records by key and summing (count, Σlow, Σlow²) per key, all in
// integers, loses nothing: the host rebuilds from each run of equal keys the exact sums of x and
// x² (FixedSum), the quantile sketch's bucket counts and the log2 histograms
// (host/analysis/tally_records.cpp). Integer sums do not depend on the order of the additions, so
// the device may reduce in any order, and the result equals the CPU backend's host reduction.
//
// Encodings (bucket < 2^20, so a real key is never kNoRecord):
// - float x (not NaN): bucket = QuantileSketch::bucket_of(x) (sign, exponent, top 11 fraction
//   bits, order-preserving); low = the 12 fraction bits below them.
// - double x: bucket = sign, 11 exponent bits, top 8 fraction bits; low = the other 44 bits.
// - integer x with |x| < 2^62: bucket = sign << 7 | bit_width(|x|); low = |x| − 2^(width−1).
// - a count or a sketch entry: low = 0.
// Sums of low² stay below 2^128 as long as a reduction holds fewer than 2^40 records per key and
// integers stay below 2^44 (the backend checks both).
#pragma once

#include <cstdint>

#include "hd.hpp"

namespace sgdwalk::tally {

/// Bits of a key below the segment.
inline constexpr int kBucketBits = 21;
/// The key of an empty record slot (sorted after every real key; dropped).
inline constexpr std::uint64_t kNoRecord = ~std::uint64_t{0};
/// Sketch buckets keep this many fraction bits of a float (= kSketchMantissaBits).
inline constexpr int kFloatBucketFractionBits = 11;
inline constexpr int kFloatLowBits = 23 - kFloatBucketFractionBits;
inline constexpr int kDoubleLowBits = 44;
/// Integers must stay below this for the sums of low² to fit (steps, crossings, exposure).
inline constexpr std::int64_t kIntegerLimit = std::int64_t{1} << 44;

/// What the records of one tracker slot count (segment = variant_local · kTrackerKinds + kind).
enum TrackerKind : int {
  kFreezingTime = 0,  ///< integer t_f = freeze_step + 1, finite walkers
  kYFreeze,           ///< double y_freeze, finite walkers (moments)
  kYFreezeSketch,     ///< float(y_freeze) sketch bucket, finite walkers
  kCrossings,         ///< integer, finite walkers
  kFlat,              ///< count: finite walkers in the flat basin
  kNonfinite,         ///< count: walkers that went non-finite
  kStarted,           ///< count: in the first-passage target at step 0
  kArrival,           ///< integer arrival step >= 1
  kCensoredExposure,  ///< integer steps at risk of a censored walker
  kTrackerKinds
};

/// Sample records: segment = variant_local · 2 + (0 progress, 1 loss).
inline constexpr int kSampleKinds = 2;

struct Record {
  std::uint64_t key;
  std::uint64_t low;
};

/// 128-bit unsigned integer (a GCC/Clang/nvcc extension; __extension__ keeps -Wpedantic quiet).
__extension__ typedef unsigned __int128 Uint128;

/// The reduction of the records that share one key: how many, Σlow and Σlow² (exact).
struct Run {
  std::uint64_t key;
  std::uint64_t count;
  Uint128 sum_low;
  Uint128 sum_low_squares;
};

SGDWALK_FN std::uint64_t make_key(std::uint64_t segment, std::uint32_t bucket) {
  return segment << kBucketBits | bucket;
}
SGDWALK_FN std::uint64_t key_segment(std::uint64_t key) {
  return key >> kBucketBits;
}
SGDWALK_FN std::uint32_t key_bucket(std::uint64_t key) {
  return static_cast<std::uint32_t>(key & ((std::uint64_t{1} << kBucketBits) - 1));
}

SGDWALK_FN std::uint32_t float_bits(float x) {
  std::uint32_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  return bits;
}

SGDWALK_FN std::uint64_t double_bits(double x) {
  std::uint64_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  return bits;
}

/// QuantileSketch::bucket_of: the order-preserving key of a float, truncated.
SGDWALK_FN std::uint32_t float_bucket(float x) {
  const std::uint32_t bits = float_bits(x);
  const std::uint32_t key = (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
  return key >> kFloatLowBits;
}

SGDWALK_FN Record float_record(std::uint64_t segment, float x) {
  return {make_key(segment, float_bucket(x)), float_bits(x) & ((1u << kFloatLowBits) - 1)};
}

SGDWALK_FN Record sketch_record(std::uint64_t segment, float x) {
  return {make_key(segment, float_bucket(x)), 0};
}

SGDWALK_FN Record double_record(std::uint64_t segment, double x) {
  const std::uint64_t bits = double_bits(x);
  return {make_key(segment, static_cast<std::uint32_t>(bits >> kDoubleLowBits)),
          bits & ((std::uint64_t{1} << kDoubleLowBits) - 1)};
}

SGDWALK_FN int bit_width(std::uint64_t x) {
  int width = 0;
  while (x != 0) {
    ++width;
    x >>= 1;
  }
  return width;
}

SGDWALK_FN Record integer_record(std::uint64_t segment, std::int64_t x) {
  const bool negative = x < 0;
  const std::uint64_t magnitude =
      negative ? static_cast<std::uint64_t>(-(x + 1)) + 1 : static_cast<std::uint64_t>(x);
  const int width = bit_width(magnitude);
  const std::uint64_t low = width == 0 ? 0 : magnitude - (std::uint64_t{1} << (width - 1));
  return {make_key(segment, static_cast<std::uint32_t>((negative ? 128 : 0) | width)), low};
}

SGDWALK_FN Record count_record(std::uint64_t segment) {
  return {make_key(segment, 0), 0};
}

/// A walker's trackers at the last step as records, one per TrackerKind (kNoRecord where the
/// walker contributes nothing), mirroring reduce_batch (host/analysis/statistics.cpp).
SGDWALK_FN void tracker_records(std::uint64_t variant_local, std::int64_t nonfinite_step,
                                std::int32_t basin, std::int32_t flat_basin,
                                std::int64_t freeze_step, double y_freeze, std::uint32_t crossings,
                                bool passage, std::int64_t first_passage_step, std::int64_t steps,
                                Record* out) {
  const std::uint64_t base = variant_local * kTrackerKinds;
  for (int k = 0; k < kTrackerKinds; ++k) out[k] = {kNoRecord, 0};
  if (nonfinite_step >= 0) {
    out[kNonfinite] = count_record(base + kNonfinite);
  } else {
    out[kFreezingTime] = integer_record(base + kFreezingTime, freeze_step + 1);
    out[kYFreeze] = double_record(base + kYFreeze, y_freeze);
    out[kYFreezeSketch] = sketch_record(base + kYFreezeSketch, static_cast<float>(y_freeze));
    out[kCrossings] = integer_record(base + kCrossings, static_cast<std::int64_t>(crossings));
    if (basin == flat_basin) out[kFlat] = count_record(base + kFlat);
  }
  if (passage) {
    if (first_passage_step == 0) {
      out[kStarted] = count_record(base + kStarted);
    } else if (first_passage_step > 0) {
      out[kArrival] = integer_record(base + kArrival, first_passage_step);
    } else {
      out[kCensoredExposure] = integer_record(base + kCensoredExposure,
                                              nonfinite_step >= 0 ? nonfinite_step - 1 : steps);
    }
  }
}

/// A sample value as a record (kNoRecord for NaN, which the tallies skip).
SGDWALK_FN Record sample_record(std::uint64_t variant_local, bool loss, float value) {
  if (value != value) return {kNoRecord, 0};
  return float_record(variant_local * kSampleKinds + (loss ? 1 : 0), value);
}

}  // namespace sgdwalk::tally
