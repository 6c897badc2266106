#include "analysis/exact_stats.hpp"

#include <bit>
#include <cmath>
#include <limits>

namespace sgdwalk {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Decomposed {
  std::uint64_t mantissa;
  int exponent;
  bool negative;
};

Decomposed decompose(float x) {
  const auto bits = std::bit_cast<std::uint32_t>(x);
  const int field = static_cast<int>((bits >> 23) & 0xff);
  const std::uint32_t fraction = bits & 0x7fffff;
  if (field == 0) return {fraction, -149, (bits >> 31) != 0};
  return {fraction | 0x800000u, field - 150, (bits >> 31) != 0};
}

Decomposed decompose(double x) {
  const auto bits = std::bit_cast<std::uint64_t>(x);
  const int field = static_cast<int>((bits >> 52) & 0x7ff);
  const std::uint64_t fraction = bits & ((std::uint64_t{1} << 52) - 1);
  if (field == 0) return {fraction, -1074, (bits >> 63) != 0};
  return {fraction | (std::uint64_t{1} << 52), field - 1075, (bits >> 63) != 0};
}

}  // namespace

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::add(Uint128 magnitude, int exponent, bool negative) {
  if (magnitude == 0) return;
  // Trailing zero bits below the range are not lost precision.
  while (exponent < kMinExp && (magnitude & 1) == 0) {
    magnitude >>= 1;
    ++exponent;
  }
  if (exponent < kMinExp) {  // outside the documented range: truncated (deterministically)
    const int drop = kMinExp - exponent;
    magnitude = drop >= 128 ? 0 : magnitude >> drop;
    exponent = kMinExp;
    if (magnitude == 0) return;
  }
  const int position = exponent - kMinExp;
  const int limb = position >> 5;
  const int shift = position & 31;
  for (int j = 0; magnitude != 0; ++j, magnitude >>= 32) {
    const auto digit = static_cast<std::uint64_t>(magnitude & 0xffffffffu);
    if (digit == 0) continue;
    const std::uint64_t shifted = digit << shift;  // < 2^63
    const auto low = static_cast<std::int64_t>(shifted & 0xffffffffu);
    const auto high = static_cast<std::int64_t>(shifted >> 32);
    const int at = limb + j;
    if (at < kLimbs) limbs_[at] += negative ? -low : low;
    if (at + 1 < kLimbs) limbs_[at + 1] += negative ? -high : high;
  }
  count_add();
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::add_float(float x) {
  const Decomposed d = decompose(x);
  add(d.mantissa, d.exponent, d.negative);
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::add_float_square(float x) {
  const Decomposed d = decompose(x);
  add(static_cast<Uint128>(d.mantissa * d.mantissa), 2 * d.exponent, false);
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::add_double(double x) {
  const Decomposed d = decompose(x);
  add(d.mantissa, d.exponent, d.negative);
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::add_double_square(double x) {
  const Decomposed d = decompose(x);
  const auto m = static_cast<Uint128>(d.mantissa);
  add(m * m, 2 * d.exponent, false);
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::add_integer(std::int64_t x) {
  const Uint128 magnitude = x < 0 ? static_cast<Uint128>(-(x + 1)) + 1 : static_cast<Uint128>(x);
  add(magnitude, 0, x < 0);
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::add_integer_square(std::int64_t x) {
  const Uint128 magnitude = x < 0 ? static_cast<Uint128>(-(x + 1)) + 1 : static_cast<Uint128>(x);
  add(magnitude * magnitude, 0, false);
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::normalize() {
  for (int i = 0; i + 1 < kLimbs; ++i) {
    const std::int64_t carry = limbs_[i] >> 32;  // floor division by 2^32
    limbs_[i] -= carry * (std::int64_t{1} << 32);
    limbs_[i + 1] += carry;
  }
  pending_ = 0;
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::merge(const FixedSum& other) {
  FixedSum copy = other;
  copy.normalize();
  normalize();
  for (int i = 0; i < kLimbs; ++i) limbs_[i] += copy.limbs_[i];
  normalize();
}

template <int kMinExp, int kLimbs>
double FixedSum<kMinExp, kLimbs>::to_double() const {
  FixedSum magnitude = *this;
  magnitude.normalize();
  const bool negative = magnitude.limbs_[kLimbs - 1] < 0;
  if (negative) {
    for (auto& limb : magnitude.limbs_) limb = -limb;
    magnitude.normalize();
  }
  int top = kLimbs - 1;
  while (top >= 0 && magnitude.limbs_[top] == 0) --top;
  if (top < 0) return 0.0;
  // The top three digits (at least 65 significant bits) and a sticky bit for the rest: one
  // correctly rounded conversion.
  const int lowest = std::max(0, top - 2);
  Uint128 head = 0;
  for (int i = top; i >= lowest; --i) {
    head = (head << 32) + static_cast<Uint128>(magnitude.limbs_[i]);
  }
  bool sticky = false;
  for (int i = 0; i < lowest; ++i) sticky = sticky || magnitude.limbs_[i] != 0;
  if (sticky) head |= 1;
  const double value = std::ldexp(static_cast<double>(head), 32 * lowest + kMinExp);
  return negative ? -value : value;
}

template <int kMinExp, int kLimbs>
void FixedSum<kMinExp, kLimbs>::to_double_double(double& hi, double& lo) const {
  hi = to_double();
  lo = 0;
  if (hi == 0 || !std::isfinite(hi)) return;
  FixedSum rest = *this;
  rest.add_double(-hi);
  lo = rest.to_double();
}

template class FixedSum<-298, 20>;
template class FixedSum<-2148, 134>;

template <class Sum>
void Moments<Sum>::add_float(float x) {
  if (std::isinf(x)) {
    ++(x > 0 ? positive_infinite : negative_infinite);
    return;
  }
  ++count;
  sum.add_float(x);
  sum_squares.add_float_square(x);
}

template <class Sum>
void Moments<Sum>::add_double(double x) {
  if (std::isinf(x)) {
    ++(x > 0 ? positive_infinite : negative_infinite);
    return;
  }
  ++count;
  sum.add_double(x);
  sum_squares.add_double_square(x);
}

template <class Sum>
void Moments<Sum>::add_integer(std::int64_t x) {
  ++count;
  sum.add_integer(x);
  sum_squares.add_integer_square(x);
}

template <class Sum>
void Moments<Sum>::merge(const Moments& other) {
  count += other.count;
  positive_infinite += other.positive_infinite;
  negative_infinite += other.negative_infinite;
  sum.merge(other.sum);
  sum_squares.merge(other.sum_squares);
}

template <class Sum>
MomentResult Moments<Sum>::result() const {
  MomentResult r;
  r.count = count + positive_infinite + negative_infinite;
  if (r.count == 0) return r;
  if (positive_infinite > 0 || negative_infinite > 0) {
    r.mean = positive_infinite > 0 && negative_infinite > 0
                 ? kNaN
                 : (positive_infinite > 0 ? std::numeric_limits<double>::infinity()
                                          : -std::numeric_limits<double>::infinity());
    return r;
  }
  const auto n = static_cast<double>(count);
  double s_hi = 0, s_lo = 0, q_hi = 0, q_lo = 0;
  sum.to_double_double(s_hi, s_lo);
  sum_squares.to_double_double(q_hi, q_lo);
  // mean = S / n, corrected by the remainder (S as hi + lo).
  const double q = s_hi / n;
  r.mean = q + (std::fma(-q, n, s_hi) + s_lo) / n;
  if (count < 2) return r;
  // M2 = Q − S²/n in double-double: exact sums, ~2^-104 relative to Q before the subtraction.
  const double p = s_hi * s_hi;
  const double p_lo = std::fma(s_hi, s_hi, -p) + 2 * s_hi * s_lo;
  const double d1 = p / n;
  const double d2 = (std::fma(-d1, n, p) + p_lo) / n;
  const double t = q_hi - d1;
  const double bv = t - q_hi;
  const double t_err = (q_hi - (t - bv)) + (-d1 - bv);
  double m2 = t + (t_err + q_lo - d2);
  if (!(m2 > 0)) m2 = std::isnan(m2) ? m2 : 0.0;
  const double variance = m2 / (n - 1);
  r.std_dev = std::sqrt(variance);
  r.standard_error = std::sqrt(variance / n);
  return r;
}

template struct Moments<NarrowSum>;
template struct Moments<WideSum>;

std::uint32_t QuantileSketch::bucket_of(float x) {
  const auto bits = std::bit_cast<std::uint32_t>(x);
  const std::uint32_t key = (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
  return key >> (23 - kSketchMantissaBits);
}

void QuantileSketch::bucket_range(std::uint32_t bucket, double& low, double& high) {
  constexpr int kShift = 23 - kSketchMantissaBits;
  auto from_key = [](std::uint32_t key) {
    const std::uint32_t bits = (key & 0x80000000u) != 0 ? (key & 0x7fffffffu) : ~key;
    return static_cast<double>(std::bit_cast<float>(bits));
  };
  low = from_key(bucket << kShift);
  high = from_key((bucket << kShift) | ((1u << kShift) - 1));
  if (std::isnan(low) && !std::isnan(high)) low = high;  // the bucket of -inf
  if (std::isnan(high) && !std::isnan(low)) high = low;  // the bucket of +inf
}

double QuantileSketch::bucket_value(std::uint32_t bucket) {
  double low = 0, high = 0;
  bucket_range(bucket, low, high);
  if (low == high) return low;            // ±inf
  if (low == 0 || high == 0) return 0.0;  // the buckets of +0 and -0 (and tiny subnormals)
  return 0.5 * (low + high);              // exact: two floats
}

void QuantileSketch::merge_sorted(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  if (entries_.empty()) {
    entries_ = entries;
    return;
  }
  std::vector<Entry> merged;
  merged.reserve(entries_.size() + entries.size());
  std::size_t a = 0, b = 0;
  while (a < entries_.size() || b < entries.size()) {
    if (b == entries.size() || (a < entries_.size() && entries_[a].bucket < entries[b].bucket)) {
      merged.push_back(entries_[a++]);
    } else if (a == entries_.size() || entries[b].bucket < entries_[a].bucket) {
      merged.push_back(entries[b++]);
    } else {
      merged.push_back({entries_[a].bucket, entries_[a].count + entries[b].count});
      ++a;
      ++b;
    }
  }
  entries_ = std::move(merged);
}

std::uint64_t QuantileSketch::total() const {
  std::uint64_t n = 0;
  for (const auto& e : entries_) n += e.count;
  return n;
}

double QuantileSketch::quantile(double level) const {
  const std::uint64_t n = total();
  if (n == 0) return kNaN;
  const double position = level * static_cast<double>(n - 1);
  const auto lower = static_cast<std::uint64_t>(std::floor(position));
  const double fraction = position - static_cast<double>(lower);
  // Order statistics `lower` and `lower + 1` (0-based).
  double a = kNaN, b = kNaN;
  std::uint64_t seen = 0;
  for (const auto& e : entries_) {
    const std::uint64_t next = seen + e.count;
    if (std::isnan(a) && lower < next) a = bucket_value(e.bucket);
    if (lower + 1 < next) {
      b = bucket_value(e.bucket);
      break;
    }
    seen = next;
  }
  if (fraction == 0 || lower + 1 >= n) return a;
  return a + fraction * (b - a);
}

std::vector<QuantileSketch::Entry> count_buckets(std::vector<std::uint32_t>& buckets) {
  std::sort(buckets.begin(), buckets.end());
  std::vector<QuantileSketch::Entry> entries;
  for (std::size_t i = 0; i < buckets.size();) {
    std::size_t j = i;
    while (j < buckets.size() && buckets[j] == buckets[i]) ++j;
    entries.push_back({buckets[i], static_cast<std::uint64_t>(j - i)});
    i = j;
  }
  return entries;
}

}  // namespace sgdwalk
