// The normal sequence of sixteen walkers at once with AVX-512 intrinsics: the CPU backend's fast
// path for the contract of normal.hpp (Philox4x32-10 words, then Box–Muller) on machines with
// AVX-512 F, DQ and VL.
//
// The AVX-512 twin of normals_avx2.hpp, built the same way: the floating-point work is pmath's
// own log and sincos_turn cores evaluated on simd::Lanes, and only the integer and bit
// manipulations around them are written for this instruction set, so the results are the same
// bits as the portable functions: tests/test_normals_simd.cpp compares them word by word. AVX-512
// has what AVX2 lacks for this (unsigned and 64-bit conversions, 64-bit arithmetic shifts, mask
// registers, three-way xor); gcc's vectorisation of the portable loops, although it uses 512-bit
// registers, made a whole step 13-18 % slower than these (Zen 5, bench/RESULTS.md). The log's
// special cases are left out because a Box–Muller radius u = w 2^-32 + 2^-33 lies in [2^-33, 1]
// (normal and positive) for every word w.
#pragma once

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define SGDWALK_HAVE_NORMALS_AVX512 1

#include <immintrin.h>

#include <cstdint>

#include "cpu/simd_lanes.hpp"
#include "sgdwalk/philox.hpp"
#include "sgdwalk/portable_math.hpp"

// gcc 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused source of many
// instructions and then report it as uninitialised once inlined (GCC bug 105593, fixed in gcc
// 13); nothing here reads an undefined value.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#define SGDWALK_AVX512_GCC12_WORKAROUND 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sgdwalk::avx512 {

namespace detail {

inline __m512i u64(std::uint64_t v) {
  return _mm512_set1_epi64(static_cast<long long>(v));
}
inline __m512i u32(std::uint32_t v) {
  return _mm512_set1_epi32(static_cast<int>(v));
}

// ---- double ------------------------------------------------------------------------------------

/// pmath::neg2_log_lean(double) for x in [2^-33, 1]: -2 log x.
inline __m512d neg2_log_unit(__m512d x) {
  const __m512i ix = _mm512_sub_epi64(_mm512_castpd_si512(x), u64(0x3fe6a09e667f3bcdull));
  // k = floor(ix / 2^52), an exact small integer, as the portable code's arithmetic shift.
  const __m512d dk = _mm512_cvtepi64_pd(_mm512_srai_epi64(ix, 52));
  const __m512d m = _mm512_castsi512_pd(_mm512_add_epi64(
      _mm512_and_si512(ix, u64(0x000fffffffffffffull)), u64(0x3fe6a09e667f3bcdull)));
  const __m512d f = _mm512_sub_pd(m, _mm512_set1_pd(1.0));
  return pmath::detail::neg2_log_reduced_lean_d(simd::F64x8(f), simd::F64x8(dk)).v;
}

/// pmath::sincos_turn_lean<double> for eight lanes: j (int32) is the odd offset and q the quadrant,
/// both as computed from the angle word.
inline void sincos_turn(__m256i j, __m256i q, __m512d& s, __m512d& c) {
  // t = j 2^-30, exact (the portable code builds 2 j from the word: the same t).
  const simd::F64x8 t = simd::F64x8(_mm512_cvtepi32_pd(j)) * simd::F64x8(0x1p-30);
  simd::F64x8 sin_r, cos_r;
  pmath::detail::sincos_quarter_lean(t, sin_r, cos_r);
  const __m512d sr = sin_r.v, cr = cos_r.v;
  // rotate_quadrant: odd quadrants swap sin and cos; bit 1 of q (of q + 1) flips the sign of sin
  // (of cos).
  const __mmask8 odd = _mm256_test_epi32_mask(q, _mm256_set1_epi32(1));
  const __m512d sv = _mm512_mask_blend_pd(odd, sr, cr);
  const __m512d cv = _mm512_mask_blend_pd(odd, cr, sr);
  const __m512i q64 = _mm512_cvtepu32_epi64(q);
  const __m512i s_sign = _mm512_slli_epi64(_mm512_and_si512(q64, u64(2)), 62);
  const __m512i c_sign =
      _mm512_slli_epi64(_mm512_and_si512(_mm512_add_epi64(q64, u64(1)), u64(2)), 62);
  s = _mm512_xor_pd(sv, _mm512_castsi512_pd(s_sign));
  c = _mm512_xor_pd(cv, _mm512_castsi512_pd(c_sign));
}

// ---- float -------------------------------------------------------------------------------------

/// pmath::neg2_log_lean(float) for x in [2^-33, 1]: -2 log x.
inline __m512 neg2_log_unit(__m512 x) {
  const __m512i ix = _mm512_sub_epi32(_mm512_castps_si512(x), u32(0x3f3504f3u));
  const __m512 dk = _mm512_cvtepi32_ps(_mm512_srai_epi32(ix, 23));
  const __m512 m = _mm512_castsi512_ps(
      _mm512_add_epi32(_mm512_and_si512(ix, u32(0x007fffffu)), u32(0x3f3504f3u)));
  return pmath::detail::neg2_log_reduced_lean(simd::F32x16(m), simd::F32x16(dk)).v;
}

/// pmath::sincos_turn_lean<float> for sixteen lanes (j the odd offset, q the quadrant).
inline void sincos_turn(__m512i j, __m512i q, __m512& s, __m512& c) {
  // vcvtdq2ps rounds to nearest even, as static_cast<float> of an int32 does.
  const simd::F32x16 t =
      simd::F32x16(_mm512_cvtepi32_ps(j)) * simd::F32x16(_mm512_set1_ps(0x1p-30f));
  simd::F32x16 sin_r, cos_r;
  pmath::detail::sincos_quarter_lean(t, sin_r, cos_r);
  const __m512 sr = sin_r.v, cr = cos_r.v;
  const __mmask16 odd = _mm512_test_epi32_mask(q, u32(1));
  const __m512 sv = _mm512_mask_blend_ps(odd, sr, cr);
  const __m512 cv = _mm512_mask_blend_ps(odd, cr, sr);
  const __m512i s_sign = _mm512_slli_epi32(_mm512_and_si512(q, u32(2)), 30);
  const __m512i c_sign =
      _mm512_slli_epi32(_mm512_and_si512(_mm512_add_epi32(q, u32(1)), u32(2)), 30);
  s = _mm512_xor_ps(sv, _mm512_castsi512_ps(s_sign));
  c = _mm512_xor_ps(cv, _mm512_castsi512_ps(c_sign));
}

/// The quadrant q and the odd offset j of pmath::sincos_turn for sixteen angle words.
inline void turn_offsets(__m512i angle, __m512i& j, __m512i& q) {
  const __m512i v = _mm512_add_epi32(angle, u32(0x20000000u));
  q = _mm512_srli_epi32(v, 30);
  j = _mm512_sub_epi32(
      _mm512_add_epi32(_mm512_slli_epi32(_mm512_and_si512(v, u32(0x3fffffffu)), 1), u32(1)),
      u32(1u << 30));
}

inline __m256i low_half(__m512i v) {
  return _mm512_castsi512_si256(v);
}
inline __m256i high_half(__m512i v) {
  return _mm512_extracti64x4_epi64(v, 1);
}

}  // namespace detail

/// box_muller<double> (normal.hpp) of sixteen lanes: z0[i], z1[i] from radius word i and angle
/// word i; the same bits as the portable function.
inline void box_muller(__m512i radius, __m512i angle, double* z0, double* z1) {
  __m512i j, q;
  detail::turn_offsets(angle, j, q);
  for (int half = 0; half < 2; ++half) {
    const __m256i radius_half = half == 0 ? detail::low_half(radius) : detail::high_half(radius);
    const __m256i j_half = half == 0 ? detail::low_half(j) : detail::high_half(j);
    const __m256i q_half = half == 0 ? detail::low_half(q) : detail::high_half(q);
    // The word converts exactly; then w 2^-32 + 2^-33 as uniform_open01 rounds it.
    const __m512d u =
        _mm512_add_pd(_mm512_mul_pd(_mm512_cvtepu32_pd(radius_half), _mm512_set1_pd(0x1p-32)),
                      _mm512_set1_pd(0x1p-33));
    const __m512d r = _mm512_sqrt_pd(detail::neg2_log_unit(u));
    __m512d s, c;
    detail::sincos_turn(j_half, q_half, s, c);
    _mm512_storeu_pd(z0 + 8 * half, _mm512_mul_pd(r, c));
    _mm512_storeu_pd(z1 + 8 * half, _mm512_mul_pd(r, s));
  }
}

/// box_muller<float> (normal.hpp) of sixteen lanes; the same bits as the portable function.
inline void box_muller(__m512i radius, __m512i angle, float* z0, float* z1) {
  __m512i j, q;
  detail::turn_offsets(angle, j, q);
  // vcvtudq2ps rounds to nearest even, as static_cast<float> of a uint32 does.
  const __m512 u =
      _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepu32_ps(radius), _mm512_set1_ps(0x1p-32f)),
                    _mm512_set1_ps(0x1p-33f));
  const __m512 r = _mm512_sqrt_ps(detail::neg2_log_unit(u));
  __m512 s, c;
  detail::sincos_turn(j, q, s, c);
  _mm512_storeu_ps(z0, _mm512_mul_ps(r, c));
  _mm512_storeu_ps(z1, _mm512_mul_ps(r, s));
}

/// Block `block` of sixteen walkers' Philox subsequences (philox_block of normal.hpp's contract):
/// lane i of x, y, z, w holds words 0..3 of philox_block(seed, subsequences[i], block). The low
/// words of the 32x32->64-bit products come from vpmulld, the high words from two vpmuludq (even
/// and odd lanes) merged under a mask.
inline void philox_block(std::uint64_t seed, const std::uint64_t* subsequences, std::uint64_t block,
                         __m512i& x, __m512i& y, __m512i& z, __m512i& w) {
  const __m512i mul0 = detail::u32(philox_detail::kMul0);
  const __m512i mul1 = detail::u32(philox_detail::kMul1);
  constexpr __mmask16 kOddLanes = 0xAAAA;
  const __m512i sub0 = _mm512_loadu_si512(subsequences);
  const __m512i sub1 = _mm512_loadu_si512(subsequences + 8);
  x = detail::u32(static_cast<std::uint32_t>(block));
  y = detail::u32(static_cast<std::uint32_t>(block >> 32));
  z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(sub0)),
                         _mm512_cvtepi64_epi32(sub1), 1);
  w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(sub0, 32))),
                         _mm512_cvtepi64_epi32(_mm512_srli_epi64(sub1, 32)), 1);
  std::uint32_t k0 = static_cast<std::uint32_t>(seed);
  std::uint32_t k1 = static_cast<std::uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const __m512i hi0 =
        _mm512_mask_blend_epi32(kOddLanes, _mm512_srli_epi64(_mm512_mul_epu32(x, mul0), 32),
                                _mm512_mul_epu32(_mm512_srli_epi64(x, 32), mul0));
    const __m512i hi1 =
        _mm512_mask_blend_epi32(kOddLanes, _mm512_srli_epi64(_mm512_mul_epu32(z, mul1), 32),
                                _mm512_mul_epu32(_mm512_srli_epi64(z, 32), mul1));
    const __m512i lo0 = _mm512_mullo_epi32(x, mul0);
    const __m512i lo1 = _mm512_mullo_epi32(z, mul1);
    // 0x96: a ^ b ^ c.
    x = _mm512_ternarylogic_epi32(hi1, y, detail::u32(k0), 0x96);
    y = lo1;
    z = _mm512_ternarylogic_epi32(hi0, w, detail::u32(k1), 0x96);
    w = lo0;
    k0 += philox_detail::kBump0;
    k1 += philox_detail::kBump1;
  }
}

/// normals_from_block (normal.hpp) for sixteen walkers: out[j][i] = normal 4*block + j of the
/// walker with subsequence subsequences[i], j = 0..3. The same bits as the portable functions.
template <class T>
void block_normals(std::uint64_t seed, const std::uint64_t* subsequences, std::uint64_t block,
                   T* out0, T* out1, T* out2, T* out3) {
  __m512i x, y, z, w;
  philox_block(seed, subsequences, block, x, y, z, w);
  box_muller(x, y, out0, out1);
  box_muller(z, w, out2, out3);
}

}  // namespace sgdwalk::avx512

#if defined(SGDWALK_AVX512_GCC12_WORKAROUND)
#pragma GCC diagnostic pop
#undef SGDWALK_AVX512_GCC12_WORKAROUND
#endif

#endif  // __AVX512F__ && __AVX512DQ__ && __AVX512VL__
