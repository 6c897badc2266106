// Accuracy of the portable transcendentals, in ulps of the exact result, against libm in a wider
// format (double libm for float, long double libm for double). Prints the measured maxima so the
// numbers in portable_math.hpp's header comment can be re-checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

#include "sgdwalk/portable_math.hpp"

namespace {

namespace pm = sgdwalk::pmath;

template <class T>
long double ulp_of(long double ref) {
  int e = 0;
  std::frexp(ref, &e);  // |ref| = m 2^e, m in [0.5, 1)
  e = std::max(e, std::numeric_limits<T>::min_exponent);
  return std::ldexp(1.0L, e - std::numeric_limits<T>::digits);
}

template <class T>
T from_bits(std::uint64_t u) {
  if constexpr (sizeof(T) == 4) {
    const auto v = static_cast<std::uint32_t>(u);
    T x;
    std::memcpy(&x, &v, 4);
    return x;
  } else {
    T x;
    std::memcpy(&x, &u, 8);
    return x;
  }
}

template <class T>
std::uint64_t bits_of(T x) {
  if constexpr (sizeof(T) == 4) {
    std::uint32_t v;
    std::memcpy(&v, &x, 4);
    return v;
  } else {
    std::uint64_t v;
    std::memcpy(&v, &x, 8);
    return v;
  }
}

/// The Box-Muller uniform w 2^-32 + 2^-33 in float (normal.hpp's uniform_open01<float>).
float sgdwalk_uniform(std::uint32_t w) {
  return static_cast<float>(w) * 0x1p-32f + 0x1p-33f;
}

/// Running maximum of an error, with the argument where it occurred.
struct MaxErr {
  long double err = 0;
  long double at = 0;
  long long count = 0;
  void add(long double e, long double x) {
    ++count;
    if (!(e <= err)) {  // also catches NaN errors
      err = e;
      at = x;
    }
  }
};

void report(const char* name, const MaxErr& m, const char* unit) {
  std::printf("%-34s max %.4Lg %s at x = %.17Lg (%lld samples)\n", name, m.err, unit, m.at,
              m.count);
}

template <class T, class F, class Ref>
void ulp_check(MaxErr& m, T x, F f, Ref ref) {
  const long double want = ref(static_cast<long double>(x));
  const T got = f(x);
  if (std::isinf(want) || std::fabs(want) > static_cast<long double>(std::numeric_limits<T>::max()))
    return;  // overflow: checked separately
  m.add(std::fabs(static_cast<long double>(got) - want) / ulp_of<T>(want), x);
}

// Reference functions. For float, double libm (< 1 double ulp = 2^-29 float ulps) is plenty.
long double ref_exp_f(long double x) {
  return std::exp(static_cast<double>(x));
}
long double ref_log_f(long double x) {
  return std::log(static_cast<double>(x));
}
long double ref_sin_f(long double x) {
  return std::sin(static_cast<double>(x));
}
long double ref_cos_f(long double x) {
  return std::cos(static_cast<double>(x));
}
long double ref_exp_d(long double x) {
  return std::exp(x);
}
long double ref_log_d(long double x) {
  return std::log(x);
}
long double ref_sin_d(long double x) {
  return std::sin(x);
}
long double ref_cos_d(long double x) {
  return std::cos(x);
}

/// Every `stride`-th bit pattern in [lo, hi] (same sign), plus uniform random samples.
template <class T, class Visit>
void sweep(T lo, T hi, std::uint64_t samples, Visit visit) {
  const T a = std::min(std::fabs(lo), std::fabs(hi)), b = std::max(std::fabs(lo), std::fabs(hi));
  const std::uint64_t ba = bits_of(a), bb = bits_of(b);
  const std::uint64_t stride = std::max<std::uint64_t>(1, (bb - ba) / samples);
  const T sign = lo < 0 ? T(-1) : T(1);
  for (std::uint64_t u = ba; u <= bb && u >= ba; u += stride) visit(sign * from_bits<T>(u));
  visit(lo);
  visit(hi);
}

template <class T>
void uniform(T lo, T hi, std::uint64_t samples, std::uint64_t seed, auto visit) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<long double> d(lo, hi);
  for (std::uint64_t i = 0; i < samples; ++i) visit(static_cast<T>(d(rng)));
}

// ---- exp -------------------------------------------------------------------------------------

TEST(PortableMath, ExpFloatAccuracy) {
  MaxErr m;
  auto visit = [&](float x) {
    ulp_check(
        m, x, [](float v) { return pm::exp(v); }, ref_exp_f);
  };
  sweep(0.0f, 88.0f, 8'000'000, visit);
  sweep(-87.0f, -0.0f, 8'000'000, visit);
  uniform(-87.0f, 88.0f, 4'000'000, 1, visit);
  report("exp<float> [-87, 88]", m, "ulp");
  EXPECT_LE(m.err, 1.0L);
  MaxErr sub;  // results in the subnormal range: ulps of the subnormal grid
  sweep(-103.0f, -87.4f, 1'000'000, [&](float x) {
    ulp_check(
        sub, x, [](float v) { return pm::exp(v); }, ref_exp_f);
  });
  report("exp<float> [-103, -87.4] (subnormal)", sub, "ulp");
  EXPECT_LE(sub.err, 1.0L);
}

TEST(PortableMath, ExpDoubleAccuracy) {
  MaxErr m;
  auto visit = [&](double x) {
    ulp_check(
        m, x, [](double v) { return pm::exp(v); }, ref_exp_d);
  };
  sweep(0.0, 700.0, 3'000'000, visit);
  sweep(-700.0, -0.0, 3'000'000, visit);
  uniform(-700.0, 700.0, 2'000'000, 2, visit);
  uniform(-1.0, 1.0, 1'000'000, 3, visit);
  report("exp<double> [-700, 700]", m, "ulp");
  EXPECT_LE(m.err, 2.0L);
  MaxErr sub;
  sweep(-744.0, -708.5, 500'000, [&](double x) {
    ulp_check(
        sub, x, [](double v) { return pm::exp(v); }, ref_exp_d);
  });
  report("exp<double> [-744, -708.5] (subnormal)", sub, "ulp");
  EXPECT_LE(sub.err, 1.0L);
}

TEST(PortableMath, ExpSpecialValues) {
  const float finf = std::numeric_limits<float>::infinity();
  const double dinf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(pm::exp(0.0f), 1.0f);
  EXPECT_EQ(pm::exp(-0.0f), 1.0f);
  EXPECT_EQ(pm::exp(0.0), 1.0);
  EXPECT_EQ(pm::exp(finf), finf);
  EXPECT_EQ(pm::exp(-finf), 0.0f);
  EXPECT_EQ(pm::exp(dinf), dinf);
  EXPECT_EQ(pm::exp(-dinf), 0.0);
  EXPECT_TRUE(std::isnan(pm::exp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(pm::exp(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_EQ(pm::exp(88.73f), finf);  // just above log(FLT_MAX) = 88.7228
  EXPECT_EQ(pm::exp(1e30f), finf);
  EXPECT_EQ(pm::exp(709.79), dinf);  // log(DBL_MAX) = 709.7827
  EXPECT_EQ(pm::exp(1e300), dinf);
  EXPECT_TRUE(std::isfinite(pm::exp(88.72f)));
  EXPECT_TRUE(std::isfinite(pm::exp(709.78)));
  EXPECT_EQ(pm::exp(-104.0f), 0.0f);
  EXPECT_EQ(pm::exp(-1e30f), 0.0f);
  EXPECT_EQ(pm::exp(-746.0), 0.0);
  EXPECT_EQ(pm::exp(-103.0f), std::exp(-103.0f));  // subnormal result
  EXPECT_GT(pm::exp(-103.9f), 0.0f);               // smallest subnormal
  EXPECT_GT(pm::exp(-745.0), 0.0);
}

// ---- log -------------------------------------------------------------------------------------

TEST(PortableMath, LogFloatAccuracy) {
  MaxErr m;
  auto visit = [&](float x) {
    ulp_check(
        m, x, [](float v) { return pm::log(v); }, ref_log_f);
  };
  sweep(0x1p-126f, std::numeric_limits<float>::max(), 16'000'000, visit);
  for (std::uint32_t u = 0x3f800000u - (1u << 21); u < 0x3f800000u + (1u << 21); ++u)
    visit(from_bits<float>(u));  // every float in [0.875, 1.25): where log(x) is small
  report("log<float> normal floats", m, "ulp");
  EXPECT_LE(m.err, 1.0L);
  MaxErr sub;
  sweep(0x1p-149f, 0x1p-126f, 1'000'000, [&](float x) {
    ulp_check(
        sub, x, [](float v) { return pm::log(v); }, ref_log_f);
  });
  report("log<float> subnormals", sub, "ulp");
  EXPECT_LE(sub.err, 1.0L);
}

TEST(PortableMath, LogDoubleAccuracy) {
  MaxErr m;
  auto visit = [&](double x) {
    ulp_check(
        m, x, [](double v) { return pm::log(v); }, ref_log_d);
  };
  sweep(0x1p-1022, std::numeric_limits<double>::max(), 4'000'000, visit);
  uniform(0.5, 2.0, 2'000'000, 4, visit);
  uniform(1.0 - 1e-6, 1.0 + 1e-6, 500'000, 5, visit);
  report("log<double> normal doubles", m, "ulp");
  EXPECT_LE(m.err, 1.0L);
  MaxErr sub;
  sweep(0x1p-1074, 0x1p-1022, 500'000, [&](double x) {
    ulp_check(
        sub, x, [](double v) { return pm::log(v); }, ref_log_d);
  });
  report("log<double> subnormals", sub, "ulp");
  EXPECT_LE(sub.err, 1.0L);
}

// log_positive_normal drops log's work for inputs Box-Muller never has; on positive normal inputs
// it must give log's bits exactly (so the normals, and the golden vectors, do not change).
TEST(PortableMath, LogPositiveNormalIsLogOnPositiveNormals) {
  auto same_float = [](float x) {
    const float a = pm::log(x), b = pm::log_positive_normal(x);
    return std::memcmp(&a, &b, sizeof a) == 0;
  };
  auto same_double = [](double x) {
    const double a = pm::log(x), b = pm::log_positive_normal(x);
    return std::memcmp(&a, &b, sizeof a) == 0;
  };
  // Every 5th float of the Box-Muller range [2^-33, 1], and the binades' edges everywhere.
  for (std::uint32_t u = 0x2f000000u; u <= 0x3f800000u; u += 5) {
    ASSERT_TRUE(same_float(from_bits<float>(u))) << std::hexfloat << from_bits<float>(u);
  }
  for (std::uint32_t e = 1; e < 255; ++e) {
    for (std::uint32_t mantissa : {0u, 1u, 0x3504f3u, 0x3504f4u, 0x7fffffu}) {
      const float x = from_bits<float>((e << 23) | mantissa);
      ASSERT_TRUE(same_float(x)) << std::hexfloat << x;
    }
  }
  // Doubles: random bit patterns over every positive normal exponent, the Box-Muller uniforms of
  // random words, and the edges.
  std::mt19937_64 rng(21);
  for (int i = 0; i < 2000000; ++i) {
    const std::uint64_t bits = (std::uint64_t{1 + rng() % 2046} << 52) | (rng() >> 12);
    ASSERT_TRUE(same_double(from_bits<double>(bits))) << std::hexfloat << from_bits<double>(bits);
    const double u = static_cast<double>(static_cast<std::uint32_t>(rng())) * 0x1p-32 + 0x1p-33;
    ASSERT_TRUE(same_double(u)) << std::hexfloat << u;
  }
  for (double x : {0x1p-1022, 0x1.6a09e667f3bccp-1, 0x1.6a09e667f3bcdp-1, 1.0, 0x1p-33,
                   std::numeric_limits<double>::max()}) {
    ASSERT_TRUE(same_double(x)) << std::hexfloat << x;
  }
}

TEST(PortableMath, LogSpecialValues) {
  const float finf = std::numeric_limits<float>::infinity();
  const double dinf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(pm::log(1.0f), 0.0f);
  EXPECT_FALSE(std::signbit(pm::log(1.0f)));
  EXPECT_EQ(pm::log(1.0), 0.0);
  EXPECT_EQ(pm::log(0.0f), -finf);
  EXPECT_EQ(pm::log(-0.0f), -finf);
  EXPECT_EQ(pm::log(0.0), -dinf);
  EXPECT_EQ(pm::log(-0.0), -dinf);
  EXPECT_EQ(pm::log(finf), finf);
  EXPECT_EQ(pm::log(dinf), dinf);
  EXPECT_TRUE(std::isnan(pm::log(-1.0f)));
  EXPECT_TRUE(std::isnan(pm::log(-1e-40f)));
  EXPECT_TRUE(std::isnan(pm::log(-finf)));
  EXPECT_TRUE(std::isnan(pm::log(-2.0)));
  EXPECT_TRUE(std::isnan(pm::log(-dinf)));
  EXPECT_TRUE(std::isnan(pm::log(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(pm::log(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_NEAR(pm::log(0x1p-149f), -103.27893f, 1e-5f);
  EXPECT_NEAR(pm::log(0x1p-1074), -744.4400719213812, 1e-12);
  // Box-Muller's extremes: u = 2^-33 (smallest uniform) and u = 1.
  EXPECT_EQ(pm::log(0x1p-33f), std::log(0x1p-33f));
  EXPECT_EQ(pm::log(0x1p-33), std::log(0x1p-33));
}

// ---- sincos_turn -----------------------------------------------------------------------------

// Reference for sincos_turn: the angle is pi (2w + 1) / 2^32 = q pi/2 + theta with the nearest
// quarter turn q taken out in exact integer arithmetic, theta = j pi / 2^32 (j exact in long
// double, pi good to 2^-64), so even results near 0 are accurate to many bits below a double ulp.
void turn_reference(std::uint32_t w, long double& rs, long double& rc) {
  const std::int64_t odd = 2 * static_cast<std::int64_t>(w) + 1;
  const std::int64_t q = (odd + (std::int64_t{1} << 30)) >> 31;
  const std::int64_t j = odd - q * (std::int64_t{1} << 31);
  const long double theta =
      static_cast<long double>(j) * 0x1p-32L * 3.141592653589793238462643383279503L;
  const long double s = std::sin(theta), c = std::cos(theta);
  switch (q & 3) {
    case 0:
      rs = s;
      rc = c;
      break;
    case 1:
      rs = c;
      rc = -s;
      break;
    case 2:
      rs = -s;
      rc = -c;
      break;
    default:
      rs = -c;
      rc = s;
      break;
  }
}

template <class T>
void sincos_turn_check(MaxErr& abs_s, MaxErr& abs_c, MaxErr& ulp_s, MaxErr& ulp_c,
                       std::uint32_t w) {
  T s, c;
  pm::sincos_turn(w, s, c);
  long double rs, rc;
  turn_reference(w, rs, rc);
  abs_s.add(std::fabs(static_cast<long double>(s) - rs), w);
  abs_c.add(std::fabs(static_cast<long double>(c) - rc), w);
  ulp_s.add(std::fabs(static_cast<long double>(s) - rs) / ulp_of<T>(rs), w);
  ulp_c.add(std::fabs(static_cast<long double>(c) - rc) / ulp_of<T>(rc), w);
}

template <class T>
void sincos_turn_sweep(std::uint64_t random_words, MaxErr (&m)[4]) {
  std::mt19937 rng(9);
  for (std::uint64_t i = 0; i < random_words; ++i)
    sincos_turn_check<T>(m[0], m[1], m[2], m[3], static_cast<std::uint32_t>(rng()));
  // All words near the eighth-turn marks: quadrant edges (multiples of 2^30) and the ends of the
  // reduced interval (odd multiples of 2^29, theta = +-pi/4).
  for (std::uint32_t k = 0; k < 8; ++k)
    for (std::int64_t d = -(1 << 15); d < (1 << 15); ++d)
      sincos_turn_check<T>(
          m[0], m[1], m[2], m[3],
          static_cast<std::uint32_t>(static_cast<std::int64_t>(k) * (1 << 29) + d));
}

TEST(PortableMath, SincosTurnFloat) {
  MaxErr m[4];
  sincos_turn_sweep<float>(8'000'000, m);
  report("sincos_turn<float> sin", m[0], "abs");
  report("sincos_turn<float> cos", m[1], "abs");
  report("sincos_turn<float> sin", m[2], "ulp");
  report("sincos_turn<float> cos", m[3], "ulp");
  EXPECT_LE(m[0].err, 2e-7L);
  EXPECT_LE(m[1].err, 2e-7L);
}

TEST(PortableMath, SincosTurnDouble) {
  MaxErr m[4];
  sincos_turn_sweep<double>(4'000'000, m);
  report("sincos_turn<double> sin", m[0], "abs");
  report("sincos_turn<double> cos", m[1], "abs");
  report("sincos_turn<double> sin", m[2], "ulp");
  report("sincos_turn<double> cos", m[3], "ulp");
  EXPECT_LE(m[0].err, 1e-15L);
  EXPECT_LE(m[1].err, 1e-15L);
}

// The word grid is symmetric: w and ~w are mirror angles (a and 2 pi - a), w and w + 2^31 are
// opposite, w + 2^30 is a quarter turn on. A sincos of the turn (float or double) must make these
// exact.
template <class T = float, class SinCos>
void check_turn_symmetries(SinCos sincos, std::uint32_t w) {
  T s, c, s2, c2, s3, c3, s4, c4;
  sincos(w, s, c);
  sincos(~w, s2, c2);
  sincos(w + 0x80000000u, s3, c3);
  sincos(w + 0x40000000u, s4, c4);
  ASSERT_EQ(s2, -s);
  ASSERT_EQ(c2, c);
  ASSERT_EQ(s3, -s);
  ASSERT_EQ(c3, -c);
  ASSERT_EQ(s4, c);
  ASSERT_EQ(c4, -s);
}

TEST(PortableMath, SincosTurnSymmetries) {
  std::mt19937 rng(10);
  for (int i = 0; i < 100000; ++i) {
    ASSERT_NO_FATAL_FAILURE(
        check_turn_symmetries([](std::uint32_t w, float& s, float& c) { pm::sincos_turn(w, s, c); },
                              static_cast<std::uint32_t>(rng())));
  }
}

// ---- the lean Box-Muller cores and recip_lean ---------------------------------------------------
// Their bounds are the ones portable_math.hpp's header states (measured there more densely: every
// float of [2^-33, 1] for neg2_log_lean, every 7th angle word for sincos_turn_lean, every 3rd
// float for recip_lean); these samples recheck them with the same margins.

TEST(PortableMath, Neg2LogLeanFloat) {
  MaxErr m;
  auto visit = [&](float x) {
    ulp_check(
        m, x, [](float v) { return pm::neg2_log_lean(v); },
        [](long double v) { return -2.0L * std::log(static_cast<double>(v)); });
  };
  sweep(0x1p-33f, 1.0f, 16'000'000, visit);
  // The Box-Muller uniforms w 2^-32 + 2^-33 themselves, from random words and both ends.
  std::mt19937 rng(12);
  for (int i = 0; i < 4'000'000; ++i) visit(sgdwalk_uniform(static_cast<std::uint32_t>(rng())));
  for (std::uint32_t w : {0u, 1u, 0xfffffffeu, 0xffffffffu}) visit(sgdwalk_uniform(w));
  report("neg2_log_lean<float> [2^-33, 1]", m, "ulp");
  EXPECT_LE(m.err, 0.9L);
  EXPECT_EQ(pm::neg2_log_lean(1.0f), 0.0f);
}

// For double, neg2_log_lean is the division-free fdlibm log (neg2_log_reduced_lean_d): within the
// accurate log's 0.83 ulp (0.81 measured on 2e7 random uniforms).
TEST(PortableMath, Neg2LogLeanDouble) {
  MaxErr m;
  auto visit = [&](double x) {
    ulp_check(
        m, x, [](double v) { return pm::neg2_log_lean(v); },
        [](long double v) { return -2.0L * std::log(v); });
  };
  sweep(0x1p-33, 1.0, 4'000'000, visit);
  std::mt19937_64 rng(13);
  for (int i = 0; i < 4'000'000; ++i) {
    visit((static_cast<double>(static_cast<std::uint32_t>(rng())) * 0x1p-32) + 0x1p-33);
  }
  // Both ends of the reduction's ranges: near sqrt(1/2) and sqrt(2) times powers of two.
  for (int k = -33; k <= 0; ++k) {
    for (double m :
         {0x1.6a09e667f3bccp-1, 0x1.6a09e667f3bcdp-1, 0x1.6a09e667f3bcep-1, 0x1.6a09e667f3bccp+0,
          0x1.6a09e667f3bcdp+0, 0x1.fffffffffffffp-1, 1.0, 0x1.0000000000001p+0}) {
      const double x = std::ldexp(m, k);
      if (x >= 0x1p-33 && x <= 1.0) visit(x);
    }
  }
  report("neg2_log_lean<double> [2^-33, 1]", m, "ulp");
  EXPECT_LE(m.err, 0.83L);
  EXPECT_EQ(pm::neg2_log_lean(1.0), 0.0);
}

template <class T>
void sincos_turn_lean_check(MaxErr& abs_s, MaxErr& abs_c, MaxErr& ulp_s, MaxErr& ulp_c,
                            std::uint32_t w) {
  T s, c;
  pm::sincos_turn_lean(w, s, c);
  long double rs, rc;
  turn_reference(w, rs, rc);
  abs_s.add(std::fabs(static_cast<long double>(s) - rs), w);
  abs_c.add(std::fabs(static_cast<long double>(c) - rc), w);
  ulp_s.add(std::fabs(static_cast<long double>(s) - rs) / ulp_of<T>(rs), w);
  ulp_c.add(std::fabs(static_cast<long double>(c) - rc) / ulp_of<T>(rc), w);
}

TEST(PortableMath, SincosTurnLeanFloat) {
  MaxErr m[4];
  std::mt19937 rng(14);
  for (int i = 0; i < 8'000'000; ++i)
    sincos_turn_lean_check<float>(m[0], m[1], m[2], m[3], static_cast<std::uint32_t>(rng()));
  for (std::uint32_t k = 0; k < 8; ++k)
    for (std::int64_t d = -(1 << 15); d < (1 << 15); ++d)
      sincos_turn_lean_check<float>(
          m[0], m[1], m[2], m[3],
          static_cast<std::uint32_t>(static_cast<std::int64_t>(k) * (1 << 29) + d));
  report("sincos_turn_lean<float> sin", m[2], "ulp");
  report("sincos_turn_lean<float> cos", m[3], "ulp");
  EXPECT_LE(m[0].err, 2e-7L);
  EXPECT_LE(m[1].err, 2e-7L);
  EXPECT_LE(m[2].err, 2.5L);
  EXPECT_LE(m[3].err, 2.5L);
}

// For double, sincos_turn_lean is the lean core's double polynomials on t = j 2^-30: within
// sincos_turn's 1.5 ulp (1.46 measured on 2e7 random words) and abs 1.2e-16.
TEST(PortableMath, SincosTurnLeanDouble) {
  MaxErr m[4];
  std::mt19937 rng(16);
  for (int i = 0; i < 4'000'000; ++i)
    sincos_turn_lean_check<double>(m[0], m[1], m[2], m[3], static_cast<std::uint32_t>(rng()));
  for (std::uint32_t k = 0; k < 8; ++k)
    for (std::int64_t d = -(1 << 15); d < (1 << 15); ++d)
      sincos_turn_lean_check<double>(
          m[0], m[1], m[2], m[3],
          static_cast<std::uint32_t>(static_cast<std::int64_t>(k) * (1 << 29) + d));
  report("sincos_turn_lean<double> sin", m[0], "abs");
  report("sincos_turn_lean<double> cos", m[1], "abs");
  report("sincos_turn_lean<double> sin", m[2], "ulp");
  report("sincos_turn_lean<double> cos", m[3], "ulp");
  EXPECT_LE(m[0].err, 1.25e-16L);  // 1.20e-16 measured (sincos_turn: 1.19e-16)
  EXPECT_LE(m[1].err, 1.25e-16L);
  EXPECT_LE(m[2].err, 1.5L);
  EXPECT_LE(m[3].err, 1.5L);
}

TEST(PortableMath, SincosTurnLeanSymmetries) {
  std::mt19937 rng(15);
  for (int i = 0; i < 100000; ++i) {
    const std::uint32_t w = static_cast<std::uint32_t>(rng());
    ASSERT_NO_FATAL_FAILURE(check_turn_symmetries(
        [](std::uint32_t v, float& s, float& c) { pm::sincos_turn_lean(v, s, c); }, w));
    ASSERT_NO_FATAL_FAILURE(check_turn_symmetries<double>(
        [](std::uint32_t v, double& s, double& c) { pm::sincos_turn_lean(v, s, c); }, w));
  }
}

template <class T>
void recip_check(MaxErr& m, T x) {
  const long double want = 1.0L / static_cast<long double>(x);
  m.add(std::fabs(static_cast<long double>(pm::recip_lean(x)) - want) / ulp_of<T>(want), x);
}

TEST(PortableMath, RecipLean) {
  MaxErr f, d;
  sweep(0x1p-125f, 0x1p125f, 20'000'000, [&](float x) {
    recip_check(f, x);
    recip_check(f, -x);
  });
  std::mt19937_64 rng(16);
  for (int i = 0; i < 4'000'000; ++i) {
    const float x = std::ldexp(1.0f + static_cast<float>(rng() >> 41) * 0x1p-23f,
                               static_cast<int>(rng() % 250) - 125);
    recip_check(f, x);
  }
  for (int i = 0; i < 8'000'000; ++i) {
    const double x = std::ldexp(1.0 + static_cast<double>(rng() >> 12) * 0x1p-52,
                                static_cast<int>(rng() % 2042) - 1021);
    recip_check(d, (rng() & 1) ? x : -x);
  }
  report("recip_lean<float> [2^-125, 2^125]", f, "ulp");
  report("recip_lean<double> [2^-1021, 2^1021]", d, "ulp");
  EXPECT_LE(f.err, 0.51L);
  EXPECT_LE(d.err, 0.51L);
  EXPECT_TRUE(std::isnan(pm::recip_lean(0.0f)));
  EXPECT_TRUE(std::isnan(pm::recip_lean(0.0)));
  EXPECT_TRUE(std::isnan(pm::recip_lean(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(pm::recip_lean(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_EQ(pm::recip_lean(std::numeric_limits<float>::infinity()),
            -std::numeric_limits<float>::infinity());
  EXPECT_EQ(pm::recip_lean(1.0f), 1.0f);
  EXPECT_EQ(pm::recip_lean(-4.0), -0.25);
}

// ---- general sin / cos -----------------------------------------------------------------------

TEST(PortableMath, SinCosFloatAccuracy) {
  MaxErr ms, mc;
  auto visit = [&](float x) {
    ulp_check(
        ms, x, [](float v) { return pm::sin(v); }, ref_sin_f);
    ulp_check(
        mc, x, [](float v) { return pm::cos(v); }, ref_cos_f);
  };
  sweep(0.0f, 1e5f, 4'000'000, visit);
  sweep(-1e5f, -0.0f, 1'000'000, visit);
  uniform(-1e5f, 1e5f, 2'000'000, 6, visit);
  uniform(-10.0f, 10.0f, 2'000'000, 7, visit);
  report("sin<float> |x| <= 1e5", ms, "ulp");
  report("cos<float> |x| <= 1e5", mc, "ulp");
  EXPECT_LE(ms.err, 2.0L);
  EXPECT_LE(mc.err, 2.0L);
}

TEST(PortableMath, SinCosDoubleAccuracy) {
  MaxErr ms, mc;
  auto visit = [&](double x) {
    ulp_check(
        ms, x, [](double v) { return pm::sin(v); }, ref_sin_d);
    ulp_check(
        mc, x, [](double v) { return pm::cos(v); }, ref_cos_d);
  };
  sweep(0.0, 1e5, 2'000'000, visit);
  sweep(-1e5, -0.0, 500'000, visit);
  uniform(-1e5, 1e5, 1'000'000, 8, visit);
  uniform(-10.0, 10.0, 1'000'000, 9, visit);
  report("sin<double> |x| <= 1e5", ms, "ulp");
  report("cos<double> |x| <= 1e5", mc, "ulp");
  EXPECT_LE(ms.err, 2.0L);
  EXPECT_LE(mc.err, 2.0L);
}

TEST(PortableMath, SinCosSpecialValues) {
  EXPECT_EQ(pm::sin(0.0f), 0.0f);
  EXPECT_TRUE(std::signbit(pm::sin(-0.0f)));
  EXPECT_EQ(pm::cos(0.0f), 1.0f);
  EXPECT_EQ(pm::sin(0.0), 0.0);
  EXPECT_EQ(pm::cos(0.0), 1.0);
  EXPECT_EQ(pm::sin(1e-30f), 1e-30f);
  EXPECT_EQ(pm::sin(1e-300), 1e-300);
  EXPECT_TRUE(std::isnan(pm::sin(std::numeric_limits<float>::infinity())));
  EXPECT_TRUE(std::isnan(pm::cos(-std::numeric_limits<double>::infinity())));
  EXPECT_TRUE(std::isnan(pm::sin(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(pm::cos(std::numeric_limits<float>::quiet_NaN())));
}

}  // namespace
