// Mergeable, order-independent accumulators for the streamed statistics of a run.
//
// A run reduces each finished batch of walkers into these and then reuses the batch's arrays, so
// host memory is bounded by the batch, not the ensemble. Every accumulator here is an integer
// state: merging is integer addition, so the results are the same bits for any batch size, thread
// count, order of the merges or backend.
//
// - FixedSum: an exact fixed-point sum (a "superaccumulator") of floats, doubles or integers and
//   of their squares. A float is m·2^e with |m| < 2^24, its square m²·2^2e with m² < 2^48; both
//   are added exactly into 32-bit digits held in int64 limbs (carries are propagated lazily).
//   Rounded to double once, when read.
// - Moments: count, exact Σx and Σx² of a sample; mean, standard deviation and standard error
//   rounded from the exact sums (Σx² − (Σx)²/n in double-double arithmetic).
// - QuantileSketch: integer counts of float values per bucket of their order-preserving bit
//   pattern truncated to kSketchMantissaBits mantissa bits (stored sparsely). An order statistic
//   is read as the middle of its bucket (0 for the buckets of ±0), so it is off by at most
//   2^-(k+1)·max(|x|, 2^-125)
//   (k = kSketchMantissaBits); an interpolated quantile by at most 2^-(k+1) times the larger
//   magnitude of the two order statistics it interpolates.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>
#include <vector>

namespace sgdwalk {

/// 128-bit unsigned integer (a GCC/Clang extension; __extension__ keeps -Wpedantic quiet).
__extension__ typedef unsigned __int128 Uint128;

/// Mantissa bits a quantile bucket keeps (relative error of an order statistic <= 2^-(k+1)).
inline constexpr int kSketchMantissaBits = 11;
/// Bucket index bits: sign, 8 exponent bits, k mantissa bits.
inline constexpr int kSketchBucketBits = 1 + 8 + kSketchMantissaBits;

/// Exact sum of values m·2^e with 2^kMinExp <= 2^e and |sum| < 2^(kMinExp + 32·kLimbs - 1).
template <int kMinExp, int kLimbs>
class FixedSum {
 public:
  static constexpr int kMinExponent = kMinExp;
  static constexpr int kLimbCount = kLimbs;

  /// Adds magnitude·2^exponent (negative when `negative`); exponent >= kMinExp.
  void add(Uint128 magnitude, int exponent, bool negative);
  void add_float(float x);         ///< x finite
  void add_float_square(float x);  ///< x finite
  void add_double(double x);       ///< x finite
  void add_double_square(double x);
  void add_integer(std::int64_t x);
  void add_integer_square(std::int64_t x);
  void merge(const FixedSum& other);
  /// Carries every digit into [0, 2^32) except the top limb (signed): a unique form per value.
  void normalize();
  /// The sum rounded to the nearest double (ties to even); ±inf beyond the double range.
  double to_double() const;
  /// hi = to_double(), lo = the rest rounded to double: hi + lo carries ~106 bits.
  void to_double_double(double& hi, double& lo) const;

  std::array<std::int64_t, kLimbs>& limbs() { return limbs_; }
  const std::array<std::int64_t, kLimbs>& limbs() const { return limbs_; }
  /// Equal sums (whatever carries are pending).
  bool operator==(const FixedSum& other) const {
    FixedSum a = *this, b = other;
    a.normalize();
    b.normalize();
    return a.limbs_ == b.limbs_;
  }

 private:
  void count_add() {
    if (++pending_ >= (1u << 28)) normalize();
  }
  std::array<std::int64_t, kLimbs> limbs_{};
  std::uint32_t pending_ = 0;  ///< adds since the last normalize (not part of the value)
};

/// Floats, float squares and integers up to 2^50 (and their squares): [2^-298, 2^342).
using NarrowSum = FixedSum<-298, 20>;
/// Doubles and their squares (every finite double): [2^-2148, 2^2140).
using WideSum = FixedSum<-2148, 134>;

/// What a Moments accumulator reports.
struct MomentResult {
  std::int64_t count = 0;
  double mean = 0.0 / 0.0;
  double std_dev = 0.0 / 0.0;         ///< sample standard deviation (n − 1)
  double standard_error = 0.0 / 0.0;  ///< of the mean
};

/// Count, Σx and Σx² of a sample of finite values (and counts of infinite ones, which make the
/// mean ±inf or NaN as plain summation would).
template <class Sum>
struct Moments {
  std::int64_t count = 0;
  std::int64_t positive_infinite = 0, negative_infinite = 0;
  Sum sum, sum_squares;

  void add_float(float x);  ///< NaN is skipped by the caller
  void add_double(double x);
  void add_integer(std::int64_t x);
  void merge(const Moments& other);
  void normalize() {
    sum.normalize();
    sum_squares.normalize();
  }
  MomentResult result() const;
  bool operator==(const Moments&) const = default;
};

/// Integer counts of float values by bucket (sorted by bucket, which is value order).
class QuantileSketch {
 public:
  struct Entry {
    std::uint32_t bucket;
    std::uint64_t count;
    bool operator==(const Entry&) const = default;
  };
  /// The bucket of a float (not NaN): order-preserving key truncated to kSketchMantissaBits.
  static std::uint32_t bucket_of(float x);
  /// The value a bucket stands for: the middle of its range (0 for the buckets that hold ±0, ±inf
  /// for the infinite ones).
  static double bucket_value(std::uint32_t bucket);
  /// The smallest and the largest float of a bucket (as doubles; ±inf at the ends; a bucket of NaN
  /// patterns gives NaN).
  static void bucket_range(std::uint32_t bucket, double& low, double& high);

  /// Adds sorted, run-length counted buckets (the reduction of one batch).
  void merge_sorted(const std::vector<Entry>& entries);
  void merge(const QuantileSketch& other) { merge_sorted(other.entries_); }
  std::uint64_t total() const;
  /// Quantile with linear interpolation between order statistics (numpy's default), each order
  /// statistic read as its bucket's value. NaN when empty.
  double quantile(double level) const;

  std::vector<Entry>& entries() { return entries_; }
  const std::vector<Entry>& entries() const { return entries_; }
  bool operator==(const QuantileSketch&) const = default;

 private:
  std::vector<Entry> entries_;
};

/// Counts `buckets` (modified: sorted) into run-length entries.
std::vector<QuantileSketch::Entry> count_buckets(std::vector<std::uint32_t>& buckets);

}  // namespace sgdwalk
