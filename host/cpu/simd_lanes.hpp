// SIMD value types for the floating-point cores of portable_math.hpp (pmath::detail::log_reduced,
// sincos_kernel, turn_angle), so that the CPU backend's AVX2 and AVX-512 normals evaluate the very
// same code as the portable functions, one operation per lane: broadcast from a real, + - *,
// fma_ and div_, nothing else. Each operation is the IEEE one of its intrinsic (the project
// compiles with -ffp-contract=off, so nothing is fused that the core does not fuse itself).
#pragma once

#if defined(__AVX2__) && defined(__FMA__)

#include <immintrin.h>

namespace sgdwalk::simd {

// The raw operations per intrinsic type, declared before Lanes so that its members find them.
inline void broadcast(double c, __m256d& out) {
  out = _mm256_set1_pd(c);
}
inline void broadcast(float c, __m256& out) {
  out = _mm256_set1_ps(c);
}
inline __m256d add(__m256d a, __m256d b) {
  return _mm256_add_pd(a, b);
}
inline __m256 add(__m256 a, __m256 b) {
  return _mm256_add_ps(a, b);
}
inline __m256d sub(__m256d a, __m256d b) {
  return _mm256_sub_pd(a, b);
}
inline __m256 sub(__m256 a, __m256 b) {
  return _mm256_sub_ps(a, b);
}
inline __m256d mul(__m256d a, __m256d b) {
  return _mm256_mul_pd(a, b);
}
inline __m256 mul(__m256 a, __m256 b) {
  return _mm256_mul_ps(a, b);
}
inline __m256d div(__m256d a, __m256d b) {
  return _mm256_div_pd(a, b);
}
inline __m256 div(__m256 a, __m256 b) {
  return _mm256_div_ps(a, b);
}
inline __m256d fmadd(__m256d a, __m256d b, __m256d c) {
  return _mm256_fmadd_pd(a, b, c);
}
inline __m256 fmadd(__m256 a, __m256 b, __m256 c) {
  return _mm256_fmadd_ps(a, b, c);
}

#if defined(__AVX512F__)
inline void broadcast(double c, __m512d& out) {
  out = _mm512_set1_pd(c);
}
inline void broadcast(float c, __m512& out) {
  out = _mm512_set1_ps(c);
}
inline __m512d add(__m512d a, __m512d b) {
  return _mm512_add_pd(a, b);
}
inline __m512 add(__m512 a, __m512 b) {
  return _mm512_add_ps(a, b);
}
inline __m512d sub(__m512d a, __m512d b) {
  return _mm512_sub_pd(a, b);
}
inline __m512 sub(__m512 a, __m512 b) {
  return _mm512_sub_ps(a, b);
}
inline __m512d mul(__m512d a, __m512d b) {
  return _mm512_mul_pd(a, b);
}
inline __m512 mul(__m512 a, __m512 b) {
  return _mm512_mul_ps(a, b);
}
inline __m512d div(__m512d a, __m512d b) {
  return _mm512_div_pd(a, b);
}
inline __m512 div(__m512 a, __m512 b) {
  return _mm512_div_ps(a, b);
}
inline __m512d fmadd(__m512d a, __m512d b, __m512d c) {
  return _mm512_fmadd_pd(a, b, c);
}
inline __m512 fmadd(__m512 a, __m512 b, __m512 c) {
  return _mm512_fmadd_ps(a, b, c);
}
#endif

/// The intrinsic type of Bits-bit vectors of Real. (Lanes is parameterised by the width, not by
/// the intrinsic type: as a template argument, gcc drops that type's alignment attributes.)
template <class Real, int Bits>
struct RawVector;
template <>
struct RawVector<double, 256> {
  using type = __m256d;
};
template <>
struct RawVector<float, 256> {
  using type = __m256;
};
#if defined(__AVX512F__)
template <>
struct RawVector<double, 512> {
  using type = __m512d;
};
template <>
struct RawVector<float, 512> {
  using type = __m512;
};
#endif

/// Lanes of Real in a Bits-bit vector; `real_type` tells the pmath cores which coefficients to
/// use. fma_ and div_ are found by argument-dependent lookup from the cores.
template <class Real, int Bits>
struct Lanes {
  using real_type = Real;
  using Raw = typename RawVector<Real, Bits>::type;
  Raw v;

  Lanes() = default;
  explicit Lanes(Raw raw) : v(raw) {}
  explicit Lanes(Real c) { broadcast(c, v); }

  friend Lanes operator+(Lanes a, Lanes b) { return Lanes(add(a.v, b.v)); }
  friend Lanes operator-(Lanes a, Lanes b) { return Lanes(sub(a.v, b.v)); }
  friend Lanes operator*(Lanes a, Lanes b) { return Lanes(mul(a.v, b.v)); }
  friend Lanes div_(Lanes a, Lanes b) { return Lanes(div(a.v, b.v)); }
  friend Lanes fma_(Lanes a, Lanes b, Lanes c) { return Lanes(fmadd(a.v, b.v, c.v)); }
};

using F64x4 = Lanes<double, 256>;
using F32x8 = Lanes<float, 256>;
#if defined(__AVX512F__)
using F64x8 = Lanes<double, 512>;
using F32x16 = Lanes<float, 512>;
#endif

}  // namespace sgdwalk::simd

#endif  // __AVX2__ && __FMA__
