// The normal sequence of eight walkers at once with AVX2 intrinsics: the CPU backend's fast path
// for the contract of normal.hpp (Philox4x32-10 words, then Box–Muller) on 256-bit machines.
//
// Why it exists: gcc vectorises the portable philox_block() and box_muller() (philox.hpp,
// normal.hpp, portable_math.hpp), but its 32x32->64-bit products and the mixed 32/64-bit integer
// work of log and sincos_turn cost about twice the instructions of these loops, and normals are a
// third of a double-precision step. The floating-point work is the portable code itself: the
// cores of pmath's log and sincos_turn (log_reduced, turn_angle, sincos_kernel) evaluated on
// simd::Lanes (simd_lanes.hpp), and the few operations of box_muller in the same order with the
// same roundings. Only the integer and bit manipulations around them are rewritten, by equivalent
// ones, so the results are the same bits: tests/test_normals_simd.cpp compares them word by word.
// The portable log's special cases (0, negatives, subnormals, inf, NaN) are left out because a
// Box–Muller radius u = w 2^-32 + 2^-33 lies in [2^-33, 1] (normal and positive) for every 32-bit
// word w.
#pragma once

#if defined(__AVX2__) && defined(__FMA__)
#define SGDWALK_HAVE_NORMALS_AVX2 1

#include <immintrin.h>

#include <cstdint>

#include "cpu/simd_lanes.hpp"
#include "sgdwalk/philox.hpp"
#include "sgdwalk/portable_math.hpp"

namespace sgdwalk::avx2 {

namespace detail {

inline __m256i u64(std::uint64_t v) {
  return _mm256_set1_epi64x(static_cast<long long>(v));
}
inline __m256i u32(std::uint32_t v) {
  return _mm256_set1_epi32(static_cast<int>(v));
}

// ---- double ------------------------------------------------------------------------------------

/// Four uint32 words to double, exactly: the word fills the low mantissa bits of 2^52.
inline __m256d words_to_double(__m128i words) {
  const __m256i wide = _mm256_cvtepu32_epi64(words);
  const __m256i biased = _mm256_or_si256(wide, u64(0x4330000000000000ull));
  return _mm256_sub_pd(_mm256_castsi256_pd(biased), _mm256_set1_pd(0x1p52));
}

/// pmath::neg2_log_lean(double) for x in [2^-33, 1]: -2 log x.
inline __m256d neg2_log_unit(__m256d x) {
  const __m256i bits = _mm256_castpd_si256(x);
  const __m256i ix = _mm256_sub_epi64(bits, u64(0x3fe6a09e667f3bcdull));
  // k = floor(ix / 2^52) (the portable code shifts the high word arithmetically). Adding
  // 1023 * 2^52 first keeps the value positive, so a logical shift gives k + 1023, which becomes
  // the double k exactly through 2^52 + (k + 1023) - (2^52 + 1023).
  const __m256i biased_k = _mm256_srli_epi64(_mm256_add_epi64(ix, u64(0x3ff0000000000000ull)), 52);
  const __m256d dk =
      _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(biased_k, u64(0x4330000000000000ull))),
                    _mm256_set1_pd(0x1p52 + 1023.0));
  const __m256d m = _mm256_castsi256_pd(_mm256_add_epi64(
      _mm256_and_si256(ix, u64(0x000fffffffffffffull)), u64(0x3fe6a09e667f3bcdull)));
  const __m256d f = _mm256_sub_pd(m, _mm256_set1_pd(1.0));
  return pmath::detail::neg2_log_reduced_lean_d(simd::F64x4(f), simd::F64x4(dk)).v;
}

/// pmath::sincos_turn_lean<double> for four lanes: j (int32, in the low lanes of an xmm) is the odd
/// offset and q the quadrant, both as computed from the angle word.
inline void sincos_turn(__m128i j, __m128i q, __m256d& s, __m256d& c) {
  // t = j 2^-30, exact (the portable code builds 2 j from the word: the same t).
  const simd::F64x4 t = simd::F64x4(_mm256_cvtepi32_pd(j)) * simd::F64x4(0x1p-30);
  simd::F64x4 sin_r, cos_r;
  pmath::detail::sincos_quarter_lean(t, sin_r, cos_r);
  const __m256d sr = sin_r.v, cr = cos_r.v;
  // rotate_quadrant: odd quadrants swap sin and cos; bit 1 of q (of q + 1) flips the sign of sin
  // (of cos).
  const __m256i q64 = _mm256_cvtepu32_epi64(q);
  const __m256d odd =
      _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(q64, u64(1)), u64(1)));
  const __m256d sv = _mm256_blendv_pd(sr, cr, odd);
  const __m256d cv = _mm256_blendv_pd(cr, sr, odd);
  const __m256i s_sign = _mm256_slli_epi64(_mm256_and_si256(q64, u64(2)), 62);
  const __m256i c_sign =
      _mm256_slli_epi64(_mm256_and_si256(_mm256_add_epi64(q64, u64(1)), u64(2)), 62);
  s = _mm256_xor_pd(sv, _mm256_castsi256_pd(s_sign));
  c = _mm256_xor_pd(cv, _mm256_castsi256_pd(c_sign));
}

// ---- float
// ---------------------------------------------------------------------------------------

/// Eight uint32 words to float, rounded to nearest even like static_cast<float>: the high and the
/// low 16 bits convert exactly, and their exact sum is rounded once.
inline __m256 words_to_float(__m256i words) {
  const __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(words, 16));
  const __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(words, u32(0xffffu)));
  return _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(65536.0f)), lo);
}

/// pmath::neg2_log_lean(float) for x in [2^-33, 1]: -2 log x.
inline __m256 neg2_log_unit(__m256 x) {
  const __m256i ix = _mm256_sub_epi32(_mm256_castps_si256(x), u32(0x3f3504f3u));
  const __m256 dk = _mm256_cvtepi32_ps(_mm256_srai_epi32(ix, 23));
  const __m256 m = _mm256_castsi256_ps(
      _mm256_add_epi32(_mm256_and_si256(ix, u32(0x007fffffu)), u32(0x3f3504f3u)));
  return pmath::detail::neg2_log_reduced_lean(simd::F32x8(m), simd::F32x8(dk)).v;
}

/// pmath::sincos_turn_lean<float> for eight lanes (j the odd offset, q the quadrant).
inline void sincos_turn(__m256i j, __m256i q, __m256& s, __m256& c) {
  // vcvtdq2ps rounds to nearest even, as static_cast<float> of an int32 does.
  const simd::F32x8 t = simd::F32x8(_mm256_cvtepi32_ps(j)) * simd::F32x8(_mm256_set1_ps(0x1p-30f));
  simd::F32x8 sin_r, cos_r;
  pmath::detail::sincos_quarter_lean(t, sin_r, cos_r);
  const __m256 sr = sin_r.v, cr = cos_r.v;
  const __m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, u32(1)), u32(1)));
  const __m256 sv = _mm256_blendv_ps(sr, cr, odd);
  const __m256 cv = _mm256_blendv_ps(cr, sr, odd);
  const __m256i s_sign = _mm256_slli_epi32(_mm256_and_si256(q, u32(2)), 30);
  const __m256i c_sign =
      _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(q, u32(1)), u32(2)), 30);
  s = _mm256_xor_ps(sv, _mm256_castsi256_ps(s_sign));
  c = _mm256_xor_ps(cv, _mm256_castsi256_ps(c_sign));
}

/// The quadrant q and the odd offset j of pmath::sincos_turn for eight angle words.
inline void turn_offsets(__m256i angle, __m256i& j, __m256i& q) {
  const __m256i v = _mm256_add_epi32(angle, u32(0x20000000u));
  q = _mm256_srli_epi32(v, 30);
  j = _mm256_sub_epi32(
      _mm256_add_epi32(_mm256_slli_epi32(_mm256_and_si256(v, u32(0x3fffffffu)), 1), u32(1)),
      u32(1u << 30));
}

}  // namespace detail

/// box_muller<double> (normal.hpp) of eight lanes: z0[i], z1[i] from radius word i and angle word
/// i; the same bits as the portable function.
inline void box_muller(__m256i radius, __m256i angle, double* z0, double* z1) {
  __m256i j, q;
  detail::turn_offsets(angle, j, q);
  for (int half = 0; half < 2; ++half) {
    const __m128i radius_half =
        half == 0 ? _mm256_castsi256_si128(radius) : _mm256_extracti128_si256(radius, 1);
    const __m128i j_half = half == 0 ? _mm256_castsi256_si128(j) : _mm256_extracti128_si256(j, 1);
    const __m128i q_half = half == 0 ? _mm256_castsi256_si128(q) : _mm256_extracti128_si256(q, 1);
    const __m256d u =
        _mm256_add_pd(_mm256_mul_pd(detail::words_to_double(radius_half), _mm256_set1_pd(0x1p-32)),
                      _mm256_set1_pd(0x1p-33));
    const __m256d r = _mm256_sqrt_pd(detail::neg2_log_unit(u));
    __m256d s, c;
    detail::sincos_turn(j_half, q_half, s, c);
    _mm256_storeu_pd(z0 + 4 * half, _mm256_mul_pd(r, c));
    _mm256_storeu_pd(z1 + 4 * half, _mm256_mul_pd(r, s));
  }
}

/// box_muller<float> (normal.hpp) of eight lanes; the same bits as the portable function.
inline void box_muller(__m256i radius, __m256i angle, float* z0, float* z1) {
  __m256i j, q;
  detail::turn_offsets(angle, j, q);
  const __m256 u =
      _mm256_add_ps(_mm256_mul_ps(detail::words_to_float(radius), _mm256_set1_ps(0x1p-32f)),
                    _mm256_set1_ps(0x1p-33f));
  const __m256 r = _mm256_sqrt_ps(detail::neg2_log_unit(u));
  __m256 s, c;
  detail::sincos_turn(j, q, s, c);
  _mm256_storeu_ps(z0, _mm256_mul_ps(r, c));
  _mm256_storeu_ps(z1, _mm256_mul_ps(r, s));
}

/// Block `block` of eight walkers' Philox subsequences (philox_block of normal.hpp's contract):
/// lane i of x, y, z, w holds words 0..3 of philox_block(seed, subsequences[i], block). The
/// 32x32->64-bit products come from two vpmuludq (even and odd lanes) and are split into high and
/// low words with shifts and blends.
inline void philox_block(std::uint64_t seed, const std::uint64_t* subsequences, std::uint64_t block,
                         __m256i& x, __m256i& y, __m256i& z, __m256i& w) {
  const __m256i mul0 = _mm256_set1_epi64x(philox_detail::kMul0);
  const __m256i mul1 = _mm256_set1_epi64x(philox_detail::kMul1);
  alignas(32) std::uint32_t sub_lo[8], sub_hi[8];
  for (int i = 0; i < 8; ++i) {
    sub_lo[i] = static_cast<std::uint32_t>(subsequences[i]);
    sub_hi[i] = static_cast<std::uint32_t>(subsequences[i] >> 32);
  }
  x = detail::u32(static_cast<std::uint32_t>(block));
  y = detail::u32(static_cast<std::uint32_t>(block >> 32));
  z = _mm256_load_si256(reinterpret_cast<const __m256i*>(sub_lo));
  w = _mm256_load_si256(reinterpret_cast<const __m256i*>(sub_hi));
  std::uint32_t k0 = static_cast<std::uint32_t>(seed);
  std::uint32_t k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const __m256i p0e = _mm256_mul_epu32(x, mul0);
    const __m256i p0o = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), mul0);
    const __m256i p1e = _mm256_mul_epu32(z, mul1);
    const __m256i p1o = _mm256_mul_epu32(_mm256_srli_epi64(z, 32), mul1);
    const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(p0e, 32), p0o, 0xAA);
    const __m256i lo0 = _mm256_blend_epi32(p0e, _mm256_slli_epi64(p0o, 32), 0xAA);
    const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(p1e, 32), p1o, 0xAA);
    const __m256i lo1 = _mm256_blend_epi32(p1e, _mm256_slli_epi64(p1o, 32), 0xAA);
    x = _mm256_xor_si256(_mm256_xor_si256(hi1, y), detail::u32(k0));
    y = lo1;
    z = _mm256_xor_si256(_mm256_xor_si256(hi0, w), detail::u32(k1));
    w = lo0;
    k0 += philox_detail::kBump0;
    k1 += philox_detail::kBump1;
  }
}

/// normals_from_block (normal.hpp) for eight walkers: out[j][i] = normal 4*block + j of the walker
/// with subsequence subsequences[i], j = 0..3. The same bits as the portable functions.
template <class T>
void block_normals(std::uint64_t seed, const std::uint64_t* subsequences, std::uint64_t block,
                   T* out0, T* out1, T* out2, T* out3) {
  __m256i x, y, z, w;
  philox_block(seed, subsequences, block, x, y, z, w);
  box_muller(x, y, out0, out1);
  box_muller(z, w, out2, out3);
}

}  // namespace sgdwalk::avx2

#endif  // __AVX2__ && __FMA__
