// Landscape-dependent Gaussian gradient noise ξ ~ N(0, Σ(θ)) (reference section 2).
//
// A walker draws z ~ N(0, I) and maps it through a square root of Σ: noise_vector returns
// ξ = Σ^{1/2} z with the symmetric square root, so Cov(ξ) = Σ exactly (up to rounding). The 2x2
// eigen-decomposition is closed form with + − × ÷, sqrt and explicit fma (no trig, no libm), so
// host and device agree bit for bit, and it is written to stay finite for every finite Hessian
// (see sym2_eigen).
#pragma once

#include <cmath>
#include <cstdint>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// The noise models of the reference: Σ = 2σH⁺ + εI, 2σH² + εI, or 2σI.
enum class NoiseKind { hessian, hessian_squared, isotropic };

/// Whether a noise kind reads the Hessian (the isotropic walker can skip computing it).
template <NoiseKind K>
inline constexpr bool noise_needs_hessian = K != NoiseKind::isotropic;

/// Per-run noise constants, precomputed on the host so the hot loop has no sqrt of σ.
/// two_sigma = 2σ; sqrt_two_sigma = sqrt(2σ) (isotropic only); epsilon = the εI regulariser of the
/// Hessian-based kinds (the paper's 1e-8; the isotropic kind has none).
template <class T>
struct NoiseScale {
  T two_sigma;
  T sqrt_two_sigma;
  T epsilon = T(1e-8);
};

/// Builds a NoiseScale from σ in double precision, rounding each constant once to T.
template <class T>
inline NoiseScale<T> make_noise_scale(double sigma, double epsilon = 1e-8) {
  return NoiseScale<T>{T(2.0 * sigma), T(std::sqrt(2.0 * sigma)), T(epsilon)};
}

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

// Power of two near the largest magnitude m (exponent clamped so that both it and its reciprocal
// are finite normal numbers): scaling by it is exact, so it changes no eigenvalue beyond rounding.
SGDWALK_FN void pow2_scale(float m, float& scale, float& inv) {
  std::uint32_t bits;
  __builtin_memcpy(&bits, &m, sizeof bits);
  std::uint32_t e = (bits >> 23) & 0xffu;
  e = e < 1u ? 1u : (e > 253u ? 253u : e);
  const std::uint32_t sb = e << 23, ib = (254u - e) << 23;
  __builtin_memcpy(&scale, &sb, sizeof scale);
  __builtin_memcpy(&inv, &ib, sizeof inv);
}
SGDWALK_FN void pow2_scale(double m, double& scale, double& inv) {
  std::uint64_t bits;
  __builtin_memcpy(&bits, &m, sizeof bits);
  std::uint64_t e = (bits >> 52) & 0x7ffu;
  e = e < 1u ? 1u : (e > 2045u ? 2045u : e);
  const std::uint64_t sb = e << 52, ib = (2046u - e) << 52;
  __builtin_memcpy(&scale, &sb, sizeof scale);
  __builtin_memcpy(&inv, &ib, sizeof inv);
}
}  // namespace detail

/// Closed-form eigen-decomposition of [[a, b], [b, c]] that never produces NaN for finite input
/// and keeps both eigenvalues accurate relative to themselves:
///  - the matrix is first scaled exactly by a power of two near its largest entry (no
///    overflow/underflow in d² + b²);
///  - with m = (a + c)/2, d = (a − c)/2, r = sqrt(d² + b²), the eigenvalue of larger magnitude is
///    m ± r with the sign of m (no cancellation) and the other is det/that, with the determinant
///    ac − b² evaluated by Kahan's fma algorithm (so a tiny eigenvalue next to a huge one, which
///    decides the clipped noise of an indefinite Hessian, is not lost to cancellation);
///  - the eigenvector of λ₊ = m + r is (d + r, b) for d ≥ 0 and (b, r − d) otherwise (no
///    cancellation), normalised by its length (one division). Multiples of the identity get (1, 0).
template <class T>
SGDWALK_FN Sym2Eigen<T> sym2_eigen(const Sym2<T>& h) {
  const T ax = h.xx < T(0) ? -h.xx : h.xx;
  const T ab = h.xy < T(0) ? -h.xy : h.xy;
  const T ay = h.yy < T(0) ? -h.yy : h.yy;
  T largest = ax > ab ? ax : ab;
  largest = largest > ay ? largest : ay;
  T scale, inv;
  detail::pow2_scale(largest, scale, inv);
  const T a = h.xx * inv, b = h.xy * inv, c = h.yy * inv;
  const T m = T(0.5) * a + T(0.5) * c;
  const T d = T(0.5) * a - T(0.5) * c;
  const T r = sqrt_rn(d * d + b * b);
  // Kahan: det = ac − b² to within ~1.5 ulp.
  const T bb = b * b;
  const T det = fma_rn(a, c, -bb) + fma_rn(-b, b, bb);
  const bool m_pos = m >= T(0);
  const T big = m + (m_pos ? r : -r);  // m ± r (x + (−y) is x − y exactly)
  const T small = det / select_bits(big != T(0), big, T(1));
  const T ad = d < T(0) ? -d : d;
  const T t = r + ad;  // t ≥ |b|, and t = 0 only for a multiple of the identity
  // (t, b)/|(t, b)| with one division. t ≤ 4 here (entries scaled below 2); when t² + b² is not
  // a normal number, t is below 1e-19 (float) / 1e-154 (double) of the largest entry: the matrix
  // is a multiple of the identity to that precision, both eigenvalues agree to it, and any
  // eigenbasis gives the same noise, so (1, 0) is used (also for t = 0).
  const T len2 = t * t + b * b;
  const bool normal_len = len2 >= detail::min_normal(T(0));
  const T n = T(1) / sqrt_rn(select_bits(normal_len, len2, T(1)));
  const T u = select_bits(normal_len, t * n, T(1));
  const T w = select_bits(normal_len, b * n, T(0));
  Sym2Eigen<T> e;
  e.lambda_plus = select_bits(m_pos, big, small) * scale;
  e.lambda_minus = select_bits(m_pos, small, big) * scale;
  e.c = d >= T(0) ? u : w;
  e.s = d >= T(0) ? w : u;
  return e;
}

namespace detail {
// Noise variance along an eigendirection with Hessian eigenvalue lambda (NaN propagates).
template <NoiseKind K, class T>
SGDWALK_FN T noise_eigenvalue(T lambda, const NoiseScale<T>& s) {
  if constexpr (K == NoiseKind::hessian) {
    return s.two_sigma * (lambda < T(0) ? T(0) : lambda) + s.epsilon;
  } else if constexpr (K == NoiseKind::hessian_squared) {
    return s.two_sigma * (lambda * lambda) + s.epsilon;
  } else {
    return s.two_sigma;
  }
}
}  // namespace detail

/// Isotropic noise needs no Hessian: ξ = sqrt(2σ) z.
template <NoiseKind K, class T, int D>
SGDWALK_FN Vec<T, D> noise_vector(const Vec<T, D>& z, const NoiseScale<T>& s) {
  static_assert(K == NoiseKind::isotropic, "only isotropic noise can be drawn without a Hessian");
  Vec<T, D> xi;
  for (int i = 0; i < D; ++i) xi[i] = s.sqrt_two_sigma * z[i];
  return xi;
}

/// 1-D landscapes (Hessian = T).
template <NoiseKind K, class T>
SGDWALK_FN Vec<T, 1> noise_vector(const T& h, const Vec<T, 1>& z, const NoiseScale<T>& s) {
  if constexpr (K == NoiseKind::isotropic) {
    return noise_vector<K>(z, s);
  } else {
    return Vec<T, 1>{{sqrt_rn(detail::noise_eigenvalue<K>(h, s)) * z[0]}};
  }
}

/// Axis-aligned landscapes (Hessian = Diag): each axis is an eigendirection.
template <NoiseKind K, class T, int D>
SGDWALK_FN Vec<T, D> noise_vector(const Diag<T, D>& h, const Vec<T, D>& z, const NoiseScale<T>& s) {
  if constexpr (K == NoiseKind::isotropic) {
    return noise_vector<K>(z, s);
  } else {
    Vec<T, D> xi;
    for (int i = 0; i < D; ++i) xi[i] = sqrt_rn(detail::noise_eigenvalue<K>(h.d[i], s)) * z[i];
    return xi;
  }
}

/// 2-D landscapes (Hessian = Sym2): ξ = Σ_i sqrt(μ_i) (v_i·z) v_i, the symmetric square root of
/// Σ = Σ_i μ_i v_i v_iᵀ, with μ_i the noise variance along the Hessian eigenvector v_i.
template <NoiseKind K, class T>
SGDWALK_FN Vec<T, 2> noise_vector(const Sym2<T>& h, const Vec<T, 2>& z, const NoiseScale<T>& s) {
  if constexpr (K == NoiseKind::isotropic) {
    return noise_vector<K>(z, s);
  } else {
    const Sym2Eigen<T> e = sym2_eigen(h);
    const T sp = sqrt_rn(detail::noise_eigenvalue<K>(e.lambda_plus, s));
    const T sm = sqrt_rn(detail::noise_eigenvalue<K>(e.lambda_minus, s));
    const T cp = sp * (e.c * z[0] + e.s * z[1]);  // along v  = ( c, s)
    const T cm = sm * (e.c * z[1] - e.s * z[0]);  // along v⊥ = (−s, c)
    return Vec<T, 2>{{cp * e.c - cm * e.s, cp * e.s + cm * e.c}};
  }
}

}  // namespace sgdwalk
