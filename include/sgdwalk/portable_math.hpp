// Portable transcendental functions: the same bits on the CPU (g++) and the GPU (nvcc).
//
// Why: libm and CUDA's math library are both "about 1 ulp" but disagree on a few percent of
// inputs, and FMA contraction changes results too. Anything a walker update evaluates (Box-Muller
// for the noise, exp in landscapes) therefore comes from here. Every function is built only from
// correctly rounded IEEE operations (+ - * /, sqrt, explicit fma, int<->float conversion) and bit
// manipulation, in a fixed order. Requirements: host -ffp-contract=off and no -ffast-math;
// device -fmad=false (fma, division and sqrt go through __fmaf_rn/__fdiv_rn/__fsqrt_rn and their
// double twins, so -prec-div/-prec-sqrt do not matter). The code is straight-line (selects and
// bit blends, no data-dependent branches, no tables) so that gcc vectorises it inside
// `#pragma omp simd` loops; for sqrt (Box-Muller) that also needs -fno-math-errno on the host,
// which changes no result.
//
// Polynomial coefficients are weighted minimax fits (Remez exchange in mpmath at 60 digits)
// rounded to the format. Measured accuracy, in ulps of the exact result (tests/
// test_portable_math.cpp prints these; "exhaustive" = every float in the range, checked once
// against double libm):
//   exp   float  0.67 ulp on [-87, 88] (0.78 incl. subnormal results, exhaustive)
//         double 0.67 ulp on [-700, 700] (0.78 incl. subnormal results; 9e6 samples)
//   log   float  0.84 ulp over all positive floats (exhaustive)
//         double 0.83 ulp over all positive doubles (6.5e6 samples)
//   sincos_turn  float abs 6.4e-8 (1.5 ulp)   double abs 1.2e-16 (1.5 ulp)   (all quadrants)
//   sin, cos (|x| <= 1e5)  float 1.53 ulp (exhaustive)   double 1.5 ulp (4.5e6 samples)
// and the lean functions for the Box-Muller radius and angle and for divisions that need an ulp,
// not correct rounding (division-free, fewer operations; see each):
//   neg2_log_lean     float 0.87 ulp of -2 log x on [2^-33, 1] (exhaustive)
//                     double 0.81 ulp (2e7 random Box-Muller uniforms; no division)
//   sincos_turn_lean  float 2.41 ulp (every 7th angle word)
//                     double abs 1.2e-16, 1.46 ulp (2e7 random angle words)
//   recip_lean        float 0.50 ulp on |x| in [2^-125, 2^125] (every 3rd float)
//                     double 0.50 ulp on |x| in [2^-1021, 2^1021] (2e7 samples)
//   div_lean          float a * recip_lean(b): 1 ulp; double the IEEE division
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "sgdwalk/hd.hpp"

namespace sgdwalk::pmath {

namespace detail {

SGDWALK_FN std::uint32_t to_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

SGDWALK_FN std::uint64_t to_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<std::uint64_t>(__double_as_longlong(x));
#else
  std::uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}

SGDWALK_FN float float_from_bits(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

SGDWALK_FN double double_from_bits(std::uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

SGDWALK_FN float fma_(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

SGDWALK_FN double fma_(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

SGDWALK_FN float div_(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);  // IEEE division whatever -prec-div says
#else
  return a / b;
#endif
}

SGDWALK_FN double div_(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

SGDWALK_FN float sqrt_(float x) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

SGDWALK_FN double sqrt_(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

/// c ? a : b as a bit blend. Plain selects whose arms are constants let gcc see the computed
/// value as dead on one path; it then sinks the (possibly trapping) float arithmetic into a branch
/// and gives up vectorising. A blend uses both operands on every path.
SGDWALK_FN float blend(bool c, float a, float b) {
  const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
  return float_from_bits((to_bits(a) & m) | (to_bits(b) & ~m));
}

SGDWALK_FN double blend(bool c, double a, double b) {
  const std::uint64_t m = 0u - static_cast<std::uint64_t>(c);
  return double_from_bits((to_bits(a) & m) | (to_bits(b) & ~m));
}

// ---- double constants on the GPU -------------------------------------------------------------
// A double constant that is no short immediate (most polynomial coefficients; an fp64 instruction
// takes only the high 32 bits as an immediate, and no constant-bank operand on sm_90) costs the
// GPU two UMOV instructions per use inside the step loop: ptxas rematerialises it into a uniform
// register pair at every use. Read from __constant__ memory it costs at most one uniform load
// (ULDC.64) per use, and none where ptxas keeps it in uniform registers across the loop: the
// two-valley Hessian double step fell from 514 to 472 instructions (bench/RESULTS.md, "The double
// step's budget"). The numbers are written once (the macro's list) and are the same doubles on
// both sides; only where they live differs, so no result changes. Float constants are 32-bit
// immediates of FFMA/FMUL and need none of this.
// Each list is written once, as X(index, value); on the device it becomes a __constant__ array
// (not const: a const __constant__ array with an initializer is folded back into immediates), on
// the host named constexpr scalars, which the compiler substitutes like the literals they are (an
// array read in the CPU lane loops kept gcc from vectorising the two-valley double loops: the CPU
// ran 2-4x slower). SGDWALK_PMATH_K(table, i) reads entry i on either side.
// nvcc declares the __constant__ array in both of its passes (its host stub registers it); the
// host reads the named scalars.
#define SGDWALK_PMATH_ENTRY(i, value) value,
#if defined(__CUDACC__)
#define SGDWALK_PMATH_DEVICE_TABLE(name, list) \
  static __constant__ double name[] = {list(SGDWALK_PMATH_ENTRY)};
#else
#define SGDWALK_PMATH_DEVICE_TABLE(name, list)
#endif
#define SGDWALK_PMATH_DOUBLE_TABLE(name, list) \
  SGDWALK_PMATH_DEVICE_TABLE(name, list) list(SGDWALK_PMATH_SCALAR_##name)
#if defined(__CUDA_ARCH__)
#define SGDWALK_PMATH_K(name, i) name[i]
#else
#define SGDWALK_PMATH_K(name, i) name##_##i
#endif

// exp: 1/ln2, ln2 in two parts, Q(r) from the highest coefficient down.
#define SGDWALK_PMATH_KEXPD_LIST(X) \
  X(0, 0x1.71547652b82fep+0)        \
  X(1, 0x1.62e42fefa39efp-1)        \
  X(2, 0x1.abc9e3b39803fp-56)       \
  X(3, 2.49995916444625802e-08)     \
  X(4, 2.76308963049616610e-07)     \
  X(5, 2.75575911821478350e-06)     \
  X(6, 2.48014914210650129e-05)     \
  X(7, 1.98412694975212060e-04)     \
  X(8, 1.38888889450953959e-03)     \
  X(9, 8.33333333350029168e-03)     \
  X(10, 4.16666666665252844e-02)    \
  X(11, 1.66666666666664021e-01)    \
  X(12, 5.00000000000001110e-01)
#define SGDWALK_PMATH_SCALAR_kExpD(i, value) inline constexpr double kExpD_##i = value;
SGDWALK_PMATH_DOUBLE_TABLE(kExpD, SGDWALK_PMATH_KEXPD_LIST)

// log: R(z) from the highest coefficient down, then ln2 in two parts (lo, hi).
#define SGDWALK_PMATH_KLOGD_LIST(X) \
  X(0, 1.47976117565816856e-01)     \
  X(1, 1.53138933759501217e-01)     \
  X(2, 1.81835701042055348e-01)     \
  X(3, 2.22221984694027846e-01)     \
  X(4, 2.85714287433224967e-01)     \
  X(5, 3.99999999994108457e-01)     \
  X(6, 6.66666666666673513e-01)     \
  X(7, 0x1.a39ef35793c76p-33)       \
  X(8, 0x1.62e42fee00000p-1)
#define SGDWALK_PMATH_SCALAR_kLogD(i, value) inline constexpr double kLogD_##i = value;
SGDWALK_PMATH_DOUBLE_TABLE(kLogD, SGDWALK_PMATH_KLOGD_LIST)

// sin and cos kernels: S(z) (6), C(z) (6), then pi/2^32 in two parts for sincos_turn's angle.
#define SGDWALK_PMATH_KSINCOSD_LIST(X) \
  X(0, 1.58962382882887768e-10)        \
  X(1, -2.50507478987613048e-08)       \
  X(2, 2.75573136222237260e-06)        \
  X(3, -1.98412698295918590e-04)       \
  X(4, 8.33333333332212170e-03)        \
  X(5, -1.66666666666666297e-01)       \
  X(6, -1.13585422592220188e-11)       \
  X(7, 2.08757009502785010e-09)        \
  X(8, -2.75573141800741734e-07)       \
  X(9, 2.48015872888543262e-05)        \
  X(10, -1.38888888888730601e-03)      \
  X(11, 4.16666666666665950e-02)       \
  X(12, 0x1.921fb54442d18p-31)         \
  X(13, 0x1.1a62633145c07p-85)
#define SGDWALK_PMATH_SCALAR_kSinCosD(i, value) inline constexpr double kSinCosD_##i = value;
SGDWALK_PMATH_DOUBLE_TABLE(kSinCosD, SGDWALK_PMATH_KSINCOSD_LIST)

// The lean double sin and cos of (pi/4) t (sincos_quarter_lean): 0-4 S's and 5-9 C's coefficients
// of z^4 down to z^0, 10 and 11 their z^6 ones (a Horner chain's first fma with two immediates
// would move one into a register pair); those of z^5 are 32-bit immediates in the code.
#define SGDWALK_PMATH_KSINCOSLEAND_LIST(X) \
  X(0, 0x1.50782d52e26f7p-22)              \
  X(1, -0x1.32d2ccdfd7535p-15)             \
  X(2, 0x1.466bc67754e9ap-9)               \
  X(3, -0x1.4abbce625be08p-4)              \
  X(4, 0x1.921fb54442d18p-1)               \
  X(5, -0x1.a6d1ec854a7abp-26)             \
  X(6, 0x1.e1f506837eb90p-19)              \
  X(7, -0x1.55d3c7e3c942ep-12)             \
  X(8, 0x1.03c1f081b5ab0p-6)               \
  X(9, -0x1.3bd3cc9be45dep-2)              \
  X(10, 0x1.e356bp-38)                     \
  X(11, -0x1.b2622p-42)
#define SGDWALK_PMATH_SCALAR_kSinCosLeanD(i, value) \
  inline constexpr double kSinCosLeanD_##i = value;
SGDWALK_PMATH_DOUBLE_TABLE(kSinCosLeanD, SGDWALK_PMATH_KSINCOSLEAND_LIST)

// The lean double -2 log (neg2_log_reduced_lean_d): 0-3 2P's coefficients of z^3 down to z^0, 4
// 2 ln2_lo, 5 2P's of z^6, 6 and 7 the seed's of f^2 and f (z^5, z^4, f^0 are immediates).
#define SGDWALK_PMATH_KNEG2LOGLEAND_LIST(X) \
  X(0, 0x1.c71c5148885bcp-2)                \
  X(1, 0x1.24924943fa998p-1)                \
  X(2, 0x1.999999997b136p-1)                \
  X(3, 0x1.55555555555afp+0)                \
  X(4, -0x1.05c610ca86c39p-28)              \
  X(5, 0x1.2f0d3p-2)                        \
  X(6, 0x1.db181p-4)                        \
  X(7, -0x1.04f9ep-2)
#define SGDWALK_PMATH_SCALAR_kNeg2LogLeanD(i, value) \
  inline constexpr double kNeg2LogLeanD_##i = value;
SGDWALK_PMATH_DOUBLE_TABLE(kNeg2LogLeanD, SGDWALK_PMATH_KNEG2LOGLEAND_LIST)

// ---- exp -----------------------------------------------------------------------------------
// x = k ln2 + r, |r| <= ln2/2 (k by the round-to-nearest shifter trick, read back from the bits,
// so NaN never meets an int conversion). ln2_hi is ln2 rounded to the format: k*ln2_hi has at most
// 24 (53) significant bits beyond those of x, so the first fma is exact; the second one adds the
// tail. exp(r) = 1 + r + r^2 Q(r) by Horner with fma. 2^k is applied as two exact factors
// 2^floor(k/2) * 2^(k - floor(k/2)) so that results down to the subnormals and up to overflow
// come out right without branches. Inputs are clamped to a range where that product is finite and
// correctly over/underflows; NaN passes the clamps (comparisons are false) and propagates.

SGDWALK_FN float exp_impl(float x) {
  x = x > 89.0f ? 89.0f : x;
  x = x < -104.0f ? -104.0f : x;
  const float shifter = 0x1.8p23f;
  const float t = fma_(x, 0x1.715476p+0f, shifter);
  const float kf = t - shifter;
  const float r1 = fma_(-kf, 0x1.62e430p-1f, x);  // exact
  const float r = fma_(-kf, -0x1.05c610p-29f, r1);
  const float e = fma_(-kf, -0x1.05c610p-29f, r1 - r);  // rounding error of r
  float q = 1.381394453e-03f;
  q = fma_(q, r, 8.369033225e-03f);
  q = fma_(q, r, 4.166841879e-02f);
  q = fma_(q, r, 1.666651815e-01f);
  q = fma_(q, r, 4.999999404e-01f);
  const float h = fma_(r * r, q, e);  // r^2 Q(r) + e
  const float hi = 1.0f + r;          // 1 + r + h summed with one rounding error (Fast2Sum)
  const float lo = (1.0f - hi) + r;
  const float p = hi + (lo + h);
  // k + 256 >= 0 as an unsigned integer, then halves with a logical shift (no signed shifts).
  const std::uint32_t ku = to_bits(t) - to_bits(shifter) + 256u;
  const std::uint32_t half = ku >> 1;  // floor(k/2) + 128
  const float s1 = float_from_bits((half - 1u) << 23);
  const float s2 = float_from_bits((ku - half - 1u) << 23);
  return (p * s1) * s2;
}

SGDWALK_FN double exp_impl(double x) {
  x = x > 710.0 ? 710.0 : x;
  x = x < -746.0 ? -746.0 : x;
  const double shifter = 0x1.8p52;
  const double t = fma_(x, SGDWALK_PMATH_K(kExpD, 0), shifter);
  const double kf = t - shifter;
  const double r1 = fma_(-kf, SGDWALK_PMATH_K(kExpD, 1), x);  // exact
  const double r = fma_(-kf, SGDWALK_PMATH_K(kExpD, 2), r1);
  const double e = fma_(-kf, SGDWALK_PMATH_K(kExpD, 2), r1 - r);  // rounding error of r
  // Written out, not as a loop: gcc may vectorise the CPU lane loop around it before unrolling.
  double q = SGDWALK_PMATH_K(kExpD, 3);
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 4));
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 5));
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 6));
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 7));
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 8));
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 9));
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 10));
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 11));
  q = fma_(q, r, SGDWALK_PMATH_K(kExpD, 12));
  const double h = fma_(r * r, q, e);
  const double hi = 1.0 + r;
  const double lo = (1.0 - hi) + r;
  const double p = hi + (lo + h);
  const std::uint64_t ku = to_bits(t) - to_bits(shifter) + 2048u;
  const std::uint64_t half = ku >> 1;  // floor(k/2) + 1024
  const double s1 = double_from_bits((half - 1u) << 52);
  const double s2 = double_from_bits((ku - half - 1u) << 52);
  return (p * s1) * s2;
}

// ---- log -----------------------------------------------------------------------------------
// fdlibm's scheme without its branches: x = 2^k m, m in [sqrt(1/2), sqrt(2)) by integer
// arithmetic on the bits, f = m - 1 (exact), s = f / (2 + f),
// log(1+f) = f - (f^2/2 - s (f^2/2 + R(s^2))), k ln2 added in two parts (ln2_hi has trailing
// zeros, so k*ln2_hi is exact). Subnormals are scaled up first; 0, negatives, inf and NaN are
// patched with selects at the end.

// The floating-point cores of log and of sincos_turn are written once for a value type V that is
// the real type itself or a SIMD vector of it: the CPU backend's normals
// (host/cpu/normals_avx2.hpp, host/cpu/normals_avx512.hpp) call them with vector types that provide
// V(real) (broadcast), + - * and fma_/div_ overloads, and a `real_type`. The same operations in the
// same order give the same bits in every lane; only the integer and bit work around them differs by
// instruction set.
template <class V>
struct real_of {
  using type = typename V::real_type;
};
template <>
struct real_of<float> {
  using type = float;
};
template <>
struct real_of<double> {
  using type = double;
};

/// The double tail of log_reduced from f, s = f/(2 + f) (or an approximation of it) and dk = k.
template <class V>
SGDWALK_FN V log_from_s(V f, V s, V dk) {
  const V z = s * s;
  V R = V(SGDWALK_PMATH_K(kLogD, 0));
  R = fma_(R, z, V(SGDWALK_PMATH_K(kLogD, 1)));
  R = fma_(R, z, V(SGDWALK_PMATH_K(kLogD, 2)));
  R = fma_(R, z, V(SGDWALK_PMATH_K(kLogD, 3)));
  R = fma_(R, z, V(SGDWALK_PMATH_K(kLogD, 4)));
  R = fma_(R, z, V(SGDWALK_PMATH_K(kLogD, 5)));
  R = fma_(R, z, V(SGDWALK_PMATH_K(kLogD, 6)));
  R = R * z;
  const V hfsq = V(0.5) * (f * f);
  const V lo = fma_(s, hfsq + R, dk * V(SGDWALK_PMATH_K(kLogD, 7)));
  return dk * V(SGDWALK_PMATH_K(kLogD, 8)) - ((hfsq - lo) - f);
}

/// log(2^k (1 + f)) from f = m - 1 and dk = k: log_impl after its reduction, before its special
/// cases.
template <class V>
SGDWALK_FN V log_reduced(V f, V dk) {
  if constexpr (std::is_same_v<typename real_of<V>::type, float>) {
    const V s = div_(f, V(2.0f) + f);
    const V z = s * s;
    V R = V(2.358366251e-01f);
    R = fma_(R, z, V(2.853723466e-01f));
    R = fma_(R, z, V(4.000033736e-01f));
    R = fma_(R, z, V(6.666666269e-01f));
    R = R * z;
    const V hfsq = V(0.5f) * (f * f);
    const V lo = fma_(s, hfsq + R, dk * V(0x1.7f7d1cp-20f));
    return dk * V(0x1.62e400p-1f) - ((hfsq - lo) - f);
  } else {
    return log_from_s(f, div_(f, V(2.0) + f), dk);
  }
}

SGDWALK_FN float log_impl(float x) {
  // Subnormals are scaled by 2^24 first. The scale factor (1 or 2^24) is built from integer
  // arithmetic rather than a select: gcc would turn `x * (c ? a : 1)` into a conditional multiply,
  // which may trap, and then refuse to vectorise.
  const std::uint32_t ux = to_bits(x);
  const std::uint32_t tiny = ux < 0x00800000u ? 1u : 0u;  // +0 or positive subnormal
  const float xs = x * float_from_bits(0x3f800000u + tiny * (24u << 23));
  const std::uint32_t ix = to_bits(xs) - 0x3f3504f3u;  // bits of sqrt(1/2)
  const std::int32_t k =
      (static_cast<std::int32_t>(ix) >> 23) - 24 * static_cast<std::int32_t>(tiny);
  const float m = float_from_bits((ix & 0x007fffffu) + 0x3f3504f3u);
  float y = log_reduced(m - 1.0f, static_cast<float>(k));
  // Special inputs, recognised on the bits: float compares against NaN-able values count as
  // trapping operations for gcc and would keep the loop from vectorising.
  y = blend(ux == 0x7f800000u, float_from_bits(0x7f800000u), y);                      // +inf
  y = blend((ux & 0x7fffffffu) == 0, float_from_bits(0xff800000u), y);                // +-0 -> -inf
  y = blend(ux > 0x7f800000u && ux != 0x80000000u, float_from_bits(0x7fc00000u), y);  // NaN, x<0
  return y;
}

SGDWALK_FN double log_impl(double x) {
  const std::uint64_t ux = to_bits(x);
  const std::uint32_t tiny = ux < 0x0010000000000000ull ? 1u : 0u;  // +0 or positive subnormal
  const double xs =
      x * double_from_bits(0x3ff0000000000000ull + std::uint64_t{tiny} * (54ull << 52));
  const std::uint64_t ix = to_bits(xs) - 0x3fe6a09e667f3bcdull;  // bits of sqrt(1/2)
  // Exponent from the high word with a 32-bit arithmetic shift (vectorises without AVX-512).
  const std::int32_t k = (static_cast<std::int32_t>(static_cast<std::uint32_t>(ix >> 32)) >> 20) -
                         54 * static_cast<std::int32_t>(tiny);
  const double m = double_from_bits((ix & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
  double y = log_reduced(m - 1.0, static_cast<double>(k));
  y = blend(ux == 0x7ff0000000000000ull, double_from_bits(0x7ff0000000000000ull), y);
  y = blend((ux & 0x7fffffffffffffffull) == 0, double_from_bits(0xfff0000000000000ull), y);
  y = blend(ux > 0x7ff0000000000000ull && ux != 0x8000000000000000ull,
            double_from_bits(0x7ff8000000000000ull), y);
  return y;
}

// log for a positive normal finite x: log_impl without the subnormal scaling and the patches for
// 0, negatives, inf and NaN, which are no-ops there (k = 0 scaling, blends that keep y), so the
// result has the same bits as log_impl(x). The Box-Muller radius needs only this domain.
SGDWALK_FN float log_positive_normal_impl(float x) {
  const std::uint32_t ix = to_bits(x) - 0x3f3504f3u;  // bits of sqrt(1/2)
  const std::int32_t k = static_cast<std::int32_t>(ix) >> 23;
  const float m = float_from_bits((ix & 0x007fffffu) + 0x3f3504f3u);
  return log_reduced(m - 1.0f, static_cast<float>(k));
}

SGDWALK_FN double log_positive_normal_impl(double x) {
  const std::uint64_t ix = to_bits(x) - 0x3fe6a09e667f3bcdull;  // bits of sqrt(1/2)
  const std::int32_t k = static_cast<std::int32_t>(static_cast<std::uint32_t>(ix >> 32)) >> 20;
  const double m = double_from_bits((ix & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
  return log_reduced(m - 1.0, static_cast<double>(k));
}

// ---- sin/cos kernels on [-pi/4, pi/4] and the quadrant rotation ------------------------------
// sin r = r + r^3 S(r^2); cos r = 1 - r^2/2 + r^4 C(r^2), with fdlibm's compensation of the
// rounding of 1 - r^2/2.

template <class V>
SGDWALK_FN void sincos_kernel(V r, V& s, V& c) {
  using Real = typename real_of<V>::type;
  const V z = r * r;
  V S, C;
  if constexpr (std::is_same_v<Real, float>) {
    S = V(-1.951529994e-04f);
    S = fma_(S, z, V(8.332161233e-03f));
    S = fma_(S, z, V(-1.666665524e-01f));
    C = V(2.443317499e-05f);
    C = fma_(C, z, V(-1.388731645e-03f));
    C = fma_(C, z, V(4.166664556e-02f));
  } else {
    S = V(SGDWALK_PMATH_K(kSinCosD, 0));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosD, 1)));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosD, 2)));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosD, 3)));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosD, 4)));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosD, 5)));
    C = V(SGDWALK_PMATH_K(kSinCosD, 6));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosD, 7)));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosD, 8)));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosD, 9)));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosD, 10)));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosD, 11)));
  }
  s = fma_(r * z, S, r);
  const V hz = V(Real(0.5)) * z;
  const V w = V(Real(1)) - hz;
  c = w + fma_(z * z, C, (V(Real(1)) - w) - hz);
}

/// The angle j * pi/2^32 of sincos_turn, with pi/2^32 = C_hi + C_lo essentially rounded once.
/// float: j = jh + jl (jl = j % 256, same sign as j, so nothing cancels; jh a multiple of 256),
/// both exact in float, because a float cannot hold j's 31 bits.
template <class V>
SGDWALK_FN V turn_angle(V jh, V jl) {
  return fma_(jh, V(0x1.921fb6p-31f),
              fma_(jl, V(0x1.921fb6p-31f), (jh + jl) * V(-0x1.777a5cp-56f)));
}
/// double: j is exact.
template <class V>
SGDWALK_FN V turn_angle(V j) {
  return fma_(j, V(SGDWALK_PMATH_K(kSinCosD, 12)), j * V(SGDWALK_PMATH_K(kSinCosD, 13)));
}

/// Angle = q*pi/2 + r: swap sin/cos for odd q and flip signs (sign-bit xor, exact).
SGDWALK_FN void rotate_quadrant(std::uint32_t q, float sr, float cr, float& s, float& c) {
  const bool odd = (q & 1u) != 0;
  const float sv = odd ? cr : sr;
  const float cv = odd ? sr : cr;
  s = float_from_bits(to_bits(sv) ^ ((q & 2u) << 30));
  c = float_from_bits(to_bits(cv) ^ (((q + 1u) & 2u) << 30));
}

SGDWALK_FN void rotate_quadrant(std::uint32_t q, double sr, double cr, double& s, double& c) {
  const bool odd = (q & 1u) != 0;
  const double sv = odd ? cr : sr;
  const double cv = odd ? sr : cr;
  s = double_from_bits(to_bits(sv) ^ (static_cast<std::uint64_t>(q & 2u) << 62));
  c = double_from_bits(to_bits(cv) ^ (static_cast<std::uint64_t>((q + 1u) & 2u) << 62));
}

// Cody-Waite reduction by pi/2 in three parts. k = nearest integer to x*2/pi (shifter trick,
// valid for |x| < 2^21 in float); the first fma is exact (see exp), the next two add the tails.
SGDWALK_FN void sincos_general(float x, float& s, float& c) {
  const float shifter = 0x1.8p23f;
  const float t = fma_(x, 0x1.45f306p-1f, shifter);
  const float kf = t - shifter;
  const std::uint32_t q = (to_bits(t) - to_bits(shifter)) & 3u;
  float r = fma_(-kf, 0x1.921fb6p+0f, x);
  r = fma_(-kf, -0x1.777a5cp-25f, r);
  r = fma_(-kf, -0x1.ee59dap-50f, r);
  float sr, cr;
  sincos_kernel(r, sr, cr);
  rotate_quadrant(q, sr, cr, s, c);
  s = blend(x == 0.0f, x, s);  // sin(-0) = -0
}

SGDWALK_FN void sincos_general(double x, double& s, double& c) {
  const double shifter = 0x1.8p52;
  const double t = fma_(x, 0x1.45f306dc9c883p-1, shifter);
  const double kf = t - shifter;
  const std::uint32_t q = static_cast<std::uint32_t>(to_bits(t) - to_bits(shifter)) & 3u;
  double r = fma_(-kf, 0x1.921fb54442d18p+0, x);
  r = fma_(-kf, 0x1.1a62633145c07p-54, r);
  r = fma_(-kf, -0x1.f1976b7ed8fbcp-110, r);
  double sr, cr;
  sincos_kernel(r, sr, cr);
  rotate_quadrant(q, sr, cr, s, c);
  s = blend(x == 0.0, x, s);  // sin(-0) = -0
}

// ---- The lean Box-Muller cores (float) --------------------------------------------------------
// The Box-Muller radius and angle need a few ulps, not log's and sincos_turn's sub-ulp accuracy,
// so for float they are evaluated with fewer operations (written once for a real type or a SIMD
// vector V, like the cores above; for double see sincos_quarter_lean and neg2_log_reduced_lean_d,
// which keep the accurate functions' bounds with fewer operations and no division):
//  - -2 log(2^k m), m in [sqrt(1/2), sqrt(2)): with t = -2(m - 1) (one exact fma),
//    -2 log1p(-t/2) = t + t^2 R(t), R a degree-8 weighted minimax fit (Remez in mpmath, relative
//    error 4.1e-9 before rounding), then + k (-2 ln2) in one fma (the rounded ln2 costs below
//    0.1 ulp). No division: fdlibm's s = f/(2 + f) form needs one plus as many fmas.
//  - sin and cos of (pi/4) t, t = j 2^-30 in (-1, 1) (j the odd offset of sincos_turn, rounded
//    once to float): sin = t S(t^2), cos = 1 + t^2 C(t^2), S and C with four coefficients each
//    (relative fit errors 3.2e-9 and 1.1e-10), plain Horner. One conversion and no split of the
//    angle into two parts, no compensated 1 - z/2.
// Measured bounds: the header's table (tests/test_portable_math.cpp checks them on samples).

/// -2 log(2^k m) (float lanes) from t = -2 (m - 1), m in [sqrt(1/2), sqrt(2)), dk = k.
template <class V>
SGDWALK_FN V neg2_log_reduced_lean_t(V t, V dk) {
  V R = V(0x1.383022p-13f);
  R = fma_(R, t, V(0x1.084864p-11f));
  R = fma_(R, t, V(0x1.0f3766p-10f));
  R = fma_(R, t, V(0x1.22719cp-9f));
  R = fma_(R, t, V(0x1.54276ep-8f));
  R = fma_(R, t, V(0x1.99a3f2p-7f));
  R = fma_(R, t, V(0x1.000426p-5f));
  R = fma_(R, t, V(0x1.555550p-4f));
  R = fma_(R, t, V(0x1.fffff8p-3f));
  return fma_(dk, V(-0x1.62e430p+0f), fma_(t * t, R, t));
}

/// -2 log(2^k m) (float lanes): m in [sqrt(1/2), sqrt(2)), dk = k.
template <class V>
SGDWALK_FN V neg2_log_reduced_lean(V m, V dk) {
  return neg2_log_reduced_lean_t(fma_(m, V(-2.0f), V(2.0f)), dk);  // t = -2 (m - 1), exact
}

/// sin and cos of (pi/4) t for t in (-1, 1), before the quadrant rotation. float: above. double:
/// sin = t S(t^2), cos = 1 + t^2 C(t^2), S and C of degree 6 (weighted least squares on
/// Chebyshev nodes in mpmath, 200 bits; S(0) = pi/4 rounded; the coefficients of z^6 and z^5
/// rounded to 21 bits, the lower ones refitted), plain Horner: no two-part angle, no compensated
/// 1 - z/2, 7 fewer operations than sincos_kernel after turn_angle, and within its 1.5 ulp (the
/// header's table). The coefficients of z^5 are 32-bit immediates on the GPU.
template <class V>
SGDWALK_FN void sincos_quarter_lean(V t, V& s, V& c) {
  const V z = t * t;
  if constexpr (std::is_same_v<typename real_of<V>::type, float>) {
    V S = V(-0x1.2d9302p-15f);
    S = fma_(S, z, V(0x1.465e92p-9f));
    S = fma_(S, z, V(-0x1.4abbbap-4f));
    S = fma_(S, z, V(0x1.921fb6p-1f));
    s = t * S;
    V C = V(0x1.d9c326p-19f);
    C = fma_(C, z, V(-0x1.55c5e2p-12f));
    C = fma_(C, z, V(0x1.03c1dep-6f));
    C = fma_(C, z, V(-0x1.3bd3ccp-2f));
    c = fma_(z, C, V(1.0f));
  } else {
    V S = V(SGDWALK_PMATH_K(kSinCosLeanD, 10));
    S = fma_(S, z, V(-0x1.e2fe7p-30));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 0)));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 1)));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 2)));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 3)));
    S = fma_(S, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 4)));
    s = t * S;
    V C = V(SGDWALK_PMATH_K(kSinCosLeanD, 11));
    C = fma_(C, z, V(0x1.f9cc4p-34));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 5)));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 6)));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 7)));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 8)));
    C = fma_(C, z, V(SGDWALK_PMATH_K(kSinCosLeanD, 9)));
    c = fma_(z, C, V(1.0));
  }
}

/// -2 log(2^k (1 + f)) (double lanes) for f = m - 1, m in [sqrt(1/2), sqrt(2)), dk = k: fdlibm's
/// log (log_reduced) without its division and with the factor -2 folded into exact scalings.
///  - s = f/(2 + f) from + - * and fma: y ~ 1/(2 + f) from a quadratic seed (relative error
///    1.4e-3; coefficients rounded to 21 bits), one cubic Newton
///    step (2.8e-9), then s = f y corrected once by its residual, s1 + (f - s1 (2 + f)) y
///    (relative error about 1e-17: s is within a hair of half an ulp of f/(2 + f)).
///    nd = -2 - f is -(2 + f) exactly.
///  - log(1 + f) = f - (f^2/2 - s (f^2/2 + z P(z))), z = s^2, P of degree 6 refitted (weighted
///    least squares on Chebyshev nodes in mpmath, 200 bits) with its three highest coefficients
///    rounded to 21 bits (z^5, z^4: free immediates on the GPU; weighted error 2.9e-18 vs 1.4e-18
///    of log's), then + k ln2 with ln2 = hi + lo, hi of 21 bits (k hi exact).
///  - times -2 exactly: 2 P's coefficients, f*f for 2 (f^2/2), -2 hi and 2 lo; the last two
///    operations as fmas whose products are exact (-2 f, k (-2 hi)), so every rounding is the
///    one of the unscaled log: the result is -2 times that log, bit for bit.
template <class V>
SGDWALK_FN V neg2_log_reduced_lean_d(V f, V dk) {
  const V ff = f * f;
  const V nd = V(-2.0) - f;
  const V y0 = fma_(ff, V(SGDWALK_PMATH_K(kNeg2LogLeanD, 6)),
                    fma_(f, V(SGDWALK_PMATH_K(kNeg2LogLeanD, 7)), V(0x1.00303p-1)));
  const V e = fma_(nd, y0, V(1.0));
  const V y = fma_(y0, fma_(e, e, e), y0);
  const V s1 = f * y;
  const V s = fma_(fma_(s1, nd, f), y, s1);
  const V z = s * s;
  V P = V(SGDWALK_PMATH_K(kNeg2LogLeanD, 5));
  P = fma_(P, z, V(0x1.39a0ep-2));
  P = fma_(P, z, V(0x1.74665p-2));
  P = fma_(P, z, V(SGDWALK_PMATH_K(kNeg2LogLeanD, 0)));
  P = fma_(P, z, V(SGDWALK_PMATH_K(kNeg2LogLeanD, 1)));
  P = fma_(P, z, V(SGDWALK_PMATH_K(kNeg2LogLeanD, 2)));
  P = fma_(P, z, V(SGDWALK_PMATH_K(kNeg2LogLeanD, 3)));
  const V lo2 = fma_(s, ff + P * z, dk * V(SGDWALK_PMATH_K(kNeg2LogLeanD, 4)));
  return fma_(dk, V(-0x1.62e43p+0), fma_(f, V(-2.0), ff - lo2));
}

template <class T>
inline constexpr bool is_real_v = std::is_same_v<T, float> || std::is_same_v<T, double>;

}  // namespace detail

/// e^x, faithful over the whole range: +inf above the overflow threshold, gradual underflow to
/// subnormals and 0, NaN in -> NaN out.
template <class T>
SGDWALK_FN T exp(T x) {
  static_assert(detail::is_real_v<T>, "pmath::exp is for float and double");
  return detail::exp_impl(x);
}

/// Natural log for x > 0 (subnormals included); log(+-0) = -inf, log(x<0) = NaN, log(inf) = inf.
template <class T>
SGDWALK_FN T log(T x) {
  static_assert(detail::is_real_v<T>, "pmath::log is for float and double");
  return detail::log_impl(x);
}

/// log(x) for a positive normal finite x (the Box-Muller uniform, in [2^-33, 1]), with the same
/// bits as pmath::log(x) there and none of its work for other inputs (their result is
/// unspecified: subnormals, 0, negatives, inf and NaN need pmath::log).
template <class T>
SGDWALK_FN T log_positive_normal(T x) {
  static_assert(detail::is_real_v<T>, "pmath::log_positive_normal is for float and double");
  return detail::log_positive_normal_impl(x);
}

/// Correctly rounded square root (host std::sqrt, device __fsqrt_rn/__dsqrt_rn whatever the
/// -prec-sqrt setting), so Box-Muller radii agree across backends.
template <class T>
SGDWALK_FN T sqrt(T x) {
  static_assert(detail::is_real_v<T>, "pmath::sqrt is for float and double");
  return detail::sqrt_(x);
}

/// sin and cos of the angle 2*pi*(angle_word + 0.5)/2^32: the Box-Muller angle for a raw 32-bit
/// word. The reduction is exact integer arithmetic: adding 2^29 centres the quadrants, the top
/// two bits give the quadrant q, the remaining 30 bits the odd offset j = 2*v - 2^30 + 1 in
/// (-2^30, 2^30), theta = j*pi/2^32 in (-pi/4, pi/4). (The half-word offset makes the angle
/// distribution exactly symmetric and never hits an axis.)
template <class T>
SGDWALK_FN void sincos_turn(std::uint32_t angle_word, T& s, T& c) {
  static_assert(detail::is_real_v<T>, "pmath::sincos_turn is for float and double");
  const std::uint32_t v = angle_word + 0x20000000u;
  const std::uint32_t q = v >> 30;
  const std::int32_t j = static_cast<std::int32_t>(((v & 0x3fffffffu) << 1) + 1u) - (1 << 30);
  // theta = j * pi/2^32 (detail::turn_angle).
  T theta;
  if constexpr (std::is_same_v<T, float>) {
    const std::int32_t jl_i = j % 256;
    theta = detail::turn_angle(static_cast<float>(j - jl_i), static_cast<float>(jl_i));
  } else {
    theta = detail::turn_angle(static_cast<double>(j));
  }
  T sr, cr;
  detail::sincos_kernel(theta, sr, cr);
  detail::rotate_quadrant(q, sr, cr, s, c);
}

/// -2 log x for a positive normal finite x (the Box-Muller uniform, in [2^-33, 1]), without a
/// division. float: the core above, within 0.87 ulp of -2 log x (every float in [2^-33, 1]);
/// double: fdlibm's log with s = f/(2 + f) from fmas (neg2_log_reduced_lean_d), within 0.81 ulp
/// where measured (log's own bound is 0.83). Other inputs: unspecified.
template <class T>
SGDWALK_FN T neg2_log_lean(T x) {
  static_assert(detail::is_real_v<T>, "pmath::neg2_log_lean is for float and double");
  if constexpr (std::is_same_v<T, float>) {
    const std::uint32_t ix = detail::to_bits(x) - 0x3f3504f3u;  // bits of sqrt(1/2)
    const std::int32_t k = static_cast<std::int32_t>(ix) >> 23;
    // -2m directly from the bits (m's with the sign set and the exponent one higher: 0x3f3504f3
    // + 0x00800000 + 0x80000000), then t = -2m + 2: exact (Sterbenz: 2m in [sqrt 2, 2 sqrt 2)),
    // so the bits of the lanes' fma(m, -2, 2), with one constant less to materialise on the GPU.
    const float minus_2m = detail::float_from_bits((ix & 0x007fffffu) + 0xbfb504f3u);
    return detail::neg2_log_reduced_lean_t(minus_2m + 2.0f, static_cast<float>(k));
  } else {
    const std::uint64_t ix = detail::to_bits(x) - 0x3fe6a09e667f3bcdull;  // bits of sqrt(1/2)
    const std::int32_t k = static_cast<std::int32_t>(static_cast<std::uint32_t>(ix >> 32)) >> 20;
    const double m = detail::double_from_bits((ix & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
    return detail::neg2_log_reduced_lean_d(m - 1.0, static_cast<double>(k));
  }
}

/// sincos_turn's sin and cos of 2 pi (angle_word + 0.5)/2^32 with fewer operations: the lean
/// core sincos_quarter_lean on t = j 2^-30 (the same quadrant q and odd offset j). float: j
/// rounded once to float, within 2.41 ulp (every 7th word of the 2^32); double: t exact, within
/// 1.46 ulp (sincos_turn: 1.5).
template <class T>
SGDWALK_FN void sincos_turn_lean(std::uint32_t angle_word, T& s, T& c) {
  static_assert(detail::is_real_v<T>, "pmath::sincos_turn_lean is for float and double");
  const std::uint32_t v = angle_word + 0x20000000u;
  const std::uint32_t q = v >> 30;
  T t;
  if constexpr (std::is_same_v<T, float>) {
    const std::int32_t j = static_cast<std::int32_t>(((v & 0x3fffffffu) << 1) + 1u) - (1 << 30);
    t = static_cast<float>(j) * 0x1p-30f;
  } else {
    // t = j 2^-30 exactly, with 2 j straight from the word: j = 2 s + 1 with s the low 30 bits
    // of the word as a signed number (adding 2^29 to the word and measuring the offset from
    // -2^29 cancel), and 4 s is the word shifted left by two as an int32, so 2 j = 4 s + 2 (no
    // overflow: 4 s <= 2^31 - 4). One integer multiply-add instead of the masks and offsets.
    const auto two_j = static_cast<std::int32_t>((angle_word << 2) + 2u);
    t = static_cast<double>(two_j) * 0x1p-31;
  }
  T sr, cr;
  detail::sincos_quarter_lean(t, sr, cr);
  detail::rotate_quadrant(q, sr, cr, s, c);
}

/// 1/x within about one ulp, from + - * and fma only (no IEEE division, so no slow path and on
/// the GPU no branch): a bit-pattern seed (relative error below 1/8) refined by cubic Newton
/// steps y += y (e + e^2), e = 1 - x y (two in float, three in double). The seed M - bits(x)
/// (32-bit, in double on the high word) of a negative x is minus that of |x| (the subtraction
/// wraps into the sign bit), so the sign needs no extra work. For |x| in [2^-125, 2^125] (float)
/// / [2^-1021, 2^1021] (double), within 0.5 ulp where measured (the header's table); 0 and NaN
/// give NaN, ±inf gives ∓inf; beyond the range the value is not 1/x (0 or tiny above it, huge or
/// not finite below it: the magnitudes 1/x has there, but unreliable).
template <class T>
SGDWALK_FN T recip_lean(T x) {
  static_assert(detail::is_real_v<T>, "pmath::recip_lean is for float and double");
  if constexpr (std::is_same_v<T, float>) {
    // The steps written out: as a loop, gcc does not always unroll it before it vectorises the
    // CPU lane loop around it, and then gives up on that loop (a loop nest).
    const float y0 = detail::float_from_bits(0x7ef311c3u - detail::to_bits(x));
    const float e0 = detail::fma_(-x, y0, 1.0f);
    const float y1 = detail::fma_(y0, detail::fma_(e0, e0, e0), y0);
    const float e1 = detail::fma_(-x, y1, 1.0f);
    return detail::fma_(y1, detail::fma_(e1, e1, e1), y1);
  } else {
    const std::uint32_t hi = static_cast<std::uint32_t>(detail::to_bits(x) >> 32);
    const double y0 = detail::double_from_bits(static_cast<std::uint64_t>(0x7fde6238u - hi) << 32);
    const double e0 = detail::fma_(-x, y0, 1.0);
    const double y1 = detail::fma_(y0, detail::fma_(e0, e0, e0), y0);
    const double e1 = detail::fma_(-x, y1, 1.0);
    const double y2 = detail::fma_(y1, detail::fma_(e1, e1, e1), y1);
    const double e2 = detail::fma_(-x, y2, 1.0);
    return detail::fma_(y2, detail::fma_(e2, e2, e2), y2);
  }
}

/// a/b where an ulp is enough. float: a * recip_lean(b) (within 1 ulp; no IEEE division, 3-5
/// fewer instructions per use on the GPU). double: the IEEE division a / b: recip_lean's nine
/// fmas made the CPU lane loop slower than its vector divide (paired runs, bench/RESULTS.md) and
/// load the GPU's fp64 pipe more than DDIV does, for 1-2 % fewer instructions.
template <class T>
SGDWALK_FN T div_lean(T a, T b) {
  static_assert(detail::is_real_v<T>, "pmath::div_lean is for float and double");
  if constexpr (std::is_same_v<T, float>) {
    return a * recip_lean(b);
  } else {
    return detail::div_(a, b);
  }
}

/// sin x for |x| <= 1e5 (Cody-Waite reduction; beyond that accuracy decays, inf/NaN give NaN).
/// Not on any hot path: Box-Muller uses sincos_turn.
template <class T>
SGDWALK_FN T sin(T x) {
  static_assert(detail::is_real_v<T>, "pmath::sin is for float and double");
  T s, c;
  detail::sincos_general(x, s, c);
  return s;
}

/// cos x for |x| <= 1e5; see sin.
template <class T>
SGDWALK_FN T cos(T x) {
  static_assert(detail::is_real_v<T>, "pmath::cos is for float and double");
  T s, c;
  detail::sincos_general(x, s, c);
  return c;
}

}  // namespace sgdwalk::pmath
