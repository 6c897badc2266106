// Landscape-dependent Gaussian gradient noise ξ ~ N(0, Σ(θ)) (reference section 2).
//
// A walker draws z ~ N(0, I) and maps it through a square root of Σ: noise_vector returns
// ξ = Σ^{1/2} z with the symmetric square root, so Cov(ξ) = Σ exactly (up to rounding). The 2x2
// square root is closed form with + − × ÷, sqrt and explicit fma (no trig, no libm), so host and
// device agree bit for bit, and it is written to stay finite for every finite Hessian whose noise
// variance is finite (see sym2_scaled_spectrum and the 2-D noise_vector).
#pragma once

#include <cstdint>
#include <type_traits>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/noise/registry.hpp"
#include "sgdwalk/portable_math.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// Eigen-decomposition of a symmetric 2x2 matrix: H = λ₊ v vᵀ + λ₋ v⊥ v⊥ᵀ with v = (c, s) a unit
/// vector and v⊥ = (−s, c); λ₊ ≥ λ₋.
template <class T>
struct Sym2Eigen {
  T lambda_plus, lambda_minus;
  T c, s;
};

namespace detail {
SGDWALK_FN float min_normal(float) {
  return 0x1p-126f;
}
SGDWALK_FN double min_normal(double) {
  return 0x1p-1022;
}

// Power of two near the largest magnitude of the three entries (exponent clamped so that both it
// and its reciprocal are finite normal numbers): scaling by it is exact, so it changes no
// eigenvalue beyond rounding. The largest magnitude is found on the bit patterns with the sign
// cleared (they order like the magnitudes; a NaN entry gives the largest exponent, and the NaN
// propagates through the scaled entries): integer and/max, no float compares and selects.
SGDWALK_FN void pow2_scale(float x, float y, float z, float& scale, float& inv) {
  std::uint32_t bx, by, bz;
  __builtin_memcpy(&bx, &x, sizeof bx);
  __builtin_memcpy(&by, &y, sizeof by);
  __builtin_memcpy(&bz, &z, sizeof bz);
  bx &= 0x7fffffffu;
  by &= 0x7fffffffu;
  bz &= 0x7fffffffu;
  std::uint32_t bits = bx > by ? bx : by;
  bits = bits > bz ? bits : bz;
  std::uint32_t e = bits >> 23;
  e = e < 1u ? 1u : (e > 253u ? 253u : e);
  const std::uint32_t sb = e << 23, ib = (254u - e) << 23;
  __builtin_memcpy(&scale, &sb, sizeof scale);
  __builtin_memcpy(&inv, &ib, sizeof inv);
}
// double: the largest exponent of the three magnitudes, and so the scale. The GPU reads it from the
// high words (sign, exponent and the top 20 mantissa bits), which order like the exponents: the
// same scale with 32-bit integer work (it has no 64-bit compare or select; 12 instructions per
// step less). The CPU keeps the 64-bit form, which its lane loops vectorise.
/// The GPU's form of pow2_scale for double (detail; tests check it against the 64-bit form).
SGDWALK_FN void pow2_scale_high_words(double x, double y, double z, double& scale, double& inv) {
  std::uint64_t bx, by, bz;
  __builtin_memcpy(&bx, &x, sizeof bx);
  __builtin_memcpy(&by, &y, sizeof by);
  __builtin_memcpy(&bz, &z, sizeof bz);
  const std::uint32_t hx = static_cast<std::uint32_t>(bx >> 32) & 0x7fffffffu;
  const std::uint32_t hy = static_cast<std::uint32_t>(by >> 32) & 0x7fffffffu;
  const std::uint32_t hz = static_cast<std::uint32_t>(bz >> 32) & 0x7fffffffu;
  std::uint32_t bits = hx > hy ? hx : hy;
  bits = bits > hz ? bits : hz;
  std::uint32_t e = bits >> 20;
  e = e < 1u ? 1u : (e > 2045u ? 2045u : e);
  const std::uint64_t sb = std::uint64_t{e} << 52, ib = std::uint64_t{2046u - e} << 52;
  __builtin_memcpy(&scale, &sb, sizeof scale);
  __builtin_memcpy(&inv, &ib, sizeof inv);
}
SGDWALK_FN void pow2_scale(double x, double y, double z, double& scale, double& inv) {
#if defined(__CUDA_ARCH__)
  pow2_scale_high_words(x, y, z, scale, inv);
#else
  std::uint64_t bx, by, bz;
  __builtin_memcpy(&bx, &x, sizeof bx);
  __builtin_memcpy(&by, &y, sizeof by);
  __builtin_memcpy(&bz, &z, sizeof bz);
  bx &= 0x7fffffffffffffffull;
  by &= 0x7fffffffffffffffull;
  bz &= 0x7fffffffffffffffull;
  std::uint64_t bits = bx > by ? bx : by;
  bits = bits > bz ? bits : bz;
  std::uint64_t e = bits >> 52;
  e = e < 1u ? 1u : (e > 2045u ? 2045u : e);
  const std::uint64_t sb = e << 52, ib = (2046u - e) << 52;
  __builtin_memcpy(&scale, &sb, sizeof scale);
  __builtin_memcpy(&inv, &ib, sizeof inv);
#endif
}
}  // namespace detail

/// The eigenvalues of [[a, b], [b, c]] scaled by a power of two, the first part of sym2_eigen
/// and of the 2-D noise: the entries divided exactly by `scale` (a power of two near the largest
/// one), and λ₊ ≥ λ₋ of the scaled matrix, each accurate relative to itself.
template <class T>
struct Sym2ScaledSpectrum {
  T a, b, c;  ///< the scaled entries (|entry| < 2)
  T scale;    ///< H = scale · [[a, b], [b, c]]
  T m, d, r;  ///< (a + c)/2, (a − c)/2, sqrt(d² + b²)
  T big, small;
  bool m_pos;  ///< λ₊ = big when m ≥ 0 (then λ₋ = small), else the other way round
  SGDWALK_FN T lambda_plus() const { return select_bits(m_pos, big, small); }
  SGDWALK_FN T lambda_minus() const { return select_bits(m_pos, small, big); }
};

/// See Sym2ScaledSpectrum and sym2_eigen:
///  - the matrix is first scaled exactly by a power of two near its largest entry (no
///    overflow/underflow in d² + b²);
///  - with m = (a + c)/2, d = (a − c)/2, r = sqrt(d² + b²), the eigenvalue of larger magnitude is
///    m ± r with the sign of m (no cancellation) and the other is det/that (pmath::div_lean:
///    in float det times recip_lean of it, 1 ulp), with the determinant
///    ac − b² evaluated by Kahan's fma algorithm (so a tiny eigenvalue next to a huge one, which
///    decides the clipped noise of an indefinite Hessian, is not lost to cancellation).
template <class T>
SGDWALK_FN Sym2ScaledSpectrum<T> sym2_scaled_spectrum(const Sym2<T>& h) {
  Sym2ScaledSpectrum<T> e;
  T inv;
  detail::pow2_scale(h.xx, h.xy, h.yy, e.scale, inv);
  e.a = h.xx * inv;
  e.b = h.xy * inv;
  e.c = h.yy * inv;
  e.m = fma_rn(T(0.5), e.a, T(0.5) * e.c);
  e.d = fma_rn(T(0.5), e.a, T(-0.5) * e.c);
  e.r = sqrt_rn(fma_rn(e.d, e.d, e.b * e.b));
  // Kahan: det = ac − b² to within ~1.5 ulp.
  const T bb = e.b * e.b;
  const T det = fma_rn(e.a, e.c, -bb) + fma_rn(-e.b, e.b, bb);
  e.m_pos = e.m >= T(0);
  e.big = e.m + (e.m_pos ? e.r : -e.r);  // m ± r (x + (−y) is x − y exactly)
  e.small = pmath::div_lean(det, select_bits(e.big != T(0), e.big, T(1)));
  return e;
}

/// Closed-form eigen-decomposition of [[a, b], [b, c]] that never produces NaN for finite input
/// and keeps both eigenvalues accurate relative to themselves (sym2_scaled_spectrum); the
/// eigenvector of λ₊ = m + r is (d + r, b) for d ≥ 0 and (b, r − d) otherwise (no cancellation),
/// normalised by its length (one division). Multiples of the identity get (1, 0). The noise does
/// not need it (noise_vector uses the spectral projector); kept as the reference decomposition.
template <class T>
SGDWALK_FN Sym2Eigen<T> sym2_eigen(const Sym2<T>& h) {
  const Sym2ScaledSpectrum<T> sp = sym2_scaled_spectrum(h);
  const T ad = sp.d < T(0) ? -sp.d : sp.d;
  const T t = sp.r + ad;  // t ≥ |b|, and t = 0 only for a multiple of the identity
  // (t, b)/|(t, b)| with one division. t ≤ 4 here (entries scaled below 2); when t² + b² is not
  // a normal number, t is below 1e-19 (float) / 1e-154 (double) of the largest entry: the matrix
  // is a multiple of the identity to that precision, both eigenvalues agree to it, and any
  // eigenbasis gives the same noise, so (1, 0) is used (also for t = 0).
  const T len2 = t * t + sp.b * sp.b;
  const bool normal_len = len2 >= detail::min_normal(T(0));
  const T n = T(1) / sqrt_rn(select_bits(normal_len, len2, T(1)));
  const T u = select_bits(normal_len, t * n, T(1));
  const T w = select_bits(normal_len, sp.b * n, T(0));
  Sym2Eigen<T> e;
  e.lambda_plus = sp.lambda_plus() * sp.scale;
  e.lambda_minus = sp.lambda_minus() * sp.scale;
  e.c = sp.d >= T(0) ? u : w;
  e.s = sp.d >= T(0) ? w : u;
  return e;
}

namespace detail {
// Noise variance along an eigendirection with Hessian eigenvalue lambda (NaN propagates).
template <NoiseKind K, class T>
SGDWALK_FN T noise_eigenvalue(T lambda, const NoiseScale<T>& s) {
  return NoiseModel<K>::variance(lambda, s);
}
}  // namespace detail

/// A model without the Hessian (isotropic) draws ξ = amplitude·z (sqrt(2σ) z).
template <NoiseKind K, class T, int D>
SGDWALK_FN Vec<T, D> noise_vector(const Vec<T, D>& z, const NoiseScale<T>& s) {
  static_assert(!noise_needs_hessian<K>, "only isotropic noise can be drawn without a Hessian");
  Vec<T, D> xi;
  for (int i = 0; i < D; ++i) xi[i] = NoiseModel<K>::amplitude(s) * z[i];
  return xi;
}

/// 1-D landscapes (Hessian = T).
template <NoiseKind K, class T>
SGDWALK_FN Vec<T, 1> noise_vector(const T& h, const Vec<T, 1>& z, const NoiseScale<T>& s) {
  if constexpr (!noise_needs_hessian<K>) {
    return noise_vector<K>(z, s);
  } else {
    return Vec<T, 1>{{sqrt_rn(detail::noise_eigenvalue<K>(h, s)) * z[0]}};
  }
}

/// Axis-aligned landscapes (Hessian = Diag): each axis is an eigendirection.
template <NoiseKind K, class T, int D>
SGDWALK_FN Vec<T, D> noise_vector(const Diag<T, D>& h, const Vec<T, D>& z, const NoiseScale<T>& s) {
  if constexpr (!noise_needs_hessian<K>) {
    return noise_vector<K>(z, s);
  } else {
    Vec<T, D> xi;
    for (int i = 0; i < D; ++i) xi[i] = sqrt_rn(detail::noise_eigenvalue<K>(h.d[i], s)) * z[i];
    return xi;
  }
}

/// 2-D landscapes (Hessian = Sym2): ξ = Σ^{1/2} z, the symmetric square root of
/// Σ = μ₊ P₊ + μ₋ P₋, with μ the noise variance along the Hessian eigendirections and P± their
/// spectral projectors, written without eigenvectors: P₊ = (H − λ₋I)/(λ₊ − λ₋), so
///   Σ^{1/2} = √μ₋ I + g (H − λ₋I),   g = (√μ₊ − √μ₋)/(λ₊ − λ₋) = (μ₊ − μ₋)/((√μ₊ + √μ₋)(λ₊ − λ₋)).
/// (μ₊ − μ₋)/(λ₊ − λ₋) is a closed form without cancellation, the model's spread(): 2σ·q for
/// hessian noise, with q = (λ₊⁺ − λ₋⁺)/(λ₊ − λ₋) = 1 (H positive semi-definite), λ₊/(λ₊ − λ₋)
/// (indefinite) or 0 (negative definite), and 2σ(λ₊ + λ₋) for hessian_squared. So g costs one
/// division and the
/// noise three square roots and two divisions in all (pmath::div_lean: in float by recip_lean,
/// 1 ulp, no IEEE division), the same operations on every path (no
/// branch, the CPU lane loop vectorises). g (H − λ₋I) z is computed on the scaled matrix and
/// scaled back at the end; g is finite because √μ₊ + √μ₋ = 0 only when Σ = 0 (then g = 0).
namespace detail {
/// The 2-D noise; with kAddDrift, drift + ξ with the drift added inside the last fma.
template <NoiseKind K, bool kAddDrift, class T>
SGDWALK_FN Vec<T, 2> sym2_noise(const Sym2<T>& h, const Vec<T, 2>& z, const NoiseScale<T>& s,
                                const Vec<T, 2>& drift) {
  const Sym2ScaledSpectrum<T> e = sym2_scaled_spectrum(h);
  const T lp = e.lambda_plus(), lm = e.lambda_minus();  // scaled
  using Model = NoiseModel<K>;
  const T sp = Model::scaled_root(lp, e.scale, s);
  const T sm = Model::scaled_root(lm, e.scale, s);
  // g = 2σ numerator / denominator, numerator and denominator in scaled units.
  T numerator, denominator;
  Model::spread(lp, lm, e.scale, numerator, denominator);
  const T root_sum = (sp + sm) * denominator;
  const bool zero = root_sum == T(0);  // Σ = 0: no noise (σ = ε = 0)
  // One select of the quotient: 0 where Σ = 0 (2σ ≥ 0 is finite, so 2σ·0/1·scale was +0 too).
  const T g = select_bits(zero, T(0), pmath::div_lean(s.two_sigma * numerator, root_sum) * e.scale);
  // (H − λ₋I) z on the scaled matrix; a − λ₋ ≥ 0 and c − λ₋ ≥ 0 up to rounding.
  const T p0 = fma_rn(e.a - lm, z[0], e.b * z[1]);
  const T p1 = fma_rn(e.c - lm, z[1], e.b * z[0]);
  // sm, or NaN when μ₊ overflowed to inf (g is not finite there either): ξ must not be finite
  // then. sp·0 + sm in one fma: +0 + sm = sm exactly for a finite sp ≥ 0, NaN for inf or NaN
  // (the bits of sm + (sp − sp), one operation less).
  const T sm_checked = fma_rn(sp, T(0), sm);
  if constexpr (kAddDrift) {
    return Vec<T, 2>{{fma_rn(g, p0, fma_rn(sm_checked, z[0], drift[0])),
                      fma_rn(g, p1, fma_rn(sm_checked, z[1], drift[1]))}};
  } else {
    return Vec<T, 2>{{fma_rn(g, p0, sm_checked * z[0]), fma_rn(g, p1, sm_checked * z[1])}};
  }
}
}  // namespace detail

template <NoiseKind K, class T>
SGDWALK_FN Vec<T, 2> noise_vector(const Sym2<T>& h, const Vec<T, 2>& z, const NoiseScale<T>& s) {
  if constexpr (!noise_needs_hessian<K>) {
    return noise_vector<K>(z, s);
  } else {
    return detail::sym2_noise<K, false>(h, z, s, Vec<T, 2>{});
  }
}

/// drift + ξ for the Hessian-based kinds, what the update needs: for 2-D Hessians the drift is
/// added inside the noise's last fma (one rounding less); otherwise drift + noise_vector.
template <NoiseKind K, class T, class Hessian, int D>
SGDWALK_FN Vec<T, D> drift_plus_noise(const Vec<T, D>& drift, const Hessian& h, const Vec<T, D>& z,
                                      const NoiseScale<T>& s) {
  if constexpr (D == 2 && noise_needs_hessian<K> && std::is_same_v<Hessian, Sym2<T>>) {
    return detail::sym2_noise<K, true>(h, z, s, drift);
  } else {
    const Vec<T, D> xi = noise_vector<K>(h, z, s);
    Vec<T, D> sum;
    for (int i = 0; i < D; ++i) sum[i] = drift[i] + xi[i];
    return sum;
  }
}

}  // namespace sgdwalk
