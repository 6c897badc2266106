// Hessian noise Σ = 2σH⁺ + εI (the paper's model; H⁺ clips negative curvature to zero).
//
// A noise model is a struct with (see noise.hpp for how the walker uses them):
//   static constexpr NoiseKind kind;       its id
//   static constexpr const char* name;     config name (dynamics.noise)
//   static constexpr const char* summary;  one line for `sgdwalk info --landscapes`
//   static constexpr bool needs_hessian;   false: ξ = amplitude(s)·z, the Hessian is not computed
//   T variance(T λ, s)                     noise variance along a Hessian eigendirection with
//                                          eigenvalue λ (1-D and axis-aligned landscapes)
//   T scaled_root(T λs, T scale, s)        sqrt(variance(λs·scale)) for the 2-D noise, where the
//                                          Hessian was scaled by the power of two 1/scale
//   void spread(λ₊s, λ₋s, scale, num, den) (μ₊ − μ₋)/(λ₊ − λ₋) = 2σ·num/den without cancellation
//                                          (scaled eigenvalues; see noise.hpp)
// all SGDWALK_FN with + − × ÷, sqrt and explicit fma only.
#pragma once

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/noise/kind.hpp"

namespace sgdwalk {

struct HessianNoise {
  static constexpr NoiseKind kind = NoiseKind::hessian;
  static constexpr const char* name = "hessian";
  static constexpr const char* summary = "Sigma = 2 sigma H+ + eps I (negative curvature clipped)";
  static constexpr bool needs_hessian = true;

  template <class T>
  SGDWALK_FN static T variance(T lambda, const NoiseScale<T>& s) {
    return fma_rn(s.two_sigma, lambda < T(0) ? T(0) : lambda, s.epsilon);
  }

  // 2σ·max(λ, 0) + ε with the scale folded into 2σ once: it is a power of two, so the product is
  // the same up to overflow and underflow, one multiply less.
  template <class T>
  SGDWALK_FN static T scaled_root(T lambda_scaled, T scale, const NoiseScale<T>& s) {
    const T two_sigma_scaled = s.two_sigma * scale;
    return sqrt_rn(
        fma_rn(two_sigma_scaled, lambda_scaled < T(0) ? T(0) : lambda_scaled, s.epsilon));
  }

  // q = (λ₊⁺ − λ₋⁺)/(λ₊ − λ₋) = 1 (H positive semi-definite), λ₊/(λ₊ − λ₋) (indefinite) or 0
  // (negative definite). (Bit blends, not selects: see select_bits.)
  template <class T>
  SGDWALK_FN static void spread(T lp, T lm, T, T& numerator, T& denominator) {
    const bool indefinite = (lm < T(0)) & (lp > T(0));
    numerator = select_bits(lm >= T(0), T(1), select_bits(indefinite, lp, T(0)));
    denominator = select_bits(indefinite, lp - lm, T(1));
  }
};

}  // namespace sgdwalk
