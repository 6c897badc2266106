// Squared-Hessian noise Σ = 2σH² + εI (a model for the squared-gradient covariance of SGD).
// The noise-model interface is described in hessian.hpp.
#pragma once

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/noise/kind.hpp"

namespace sgdwalk {

struct HessianSquaredNoise {
  static constexpr NoiseKind kind = NoiseKind::hessian_squared;
  static constexpr const char* name = "hessian_squared";
  static constexpr const char* summary = "Sigma = 2 sigma H^2 + eps I";
  static constexpr bool needs_hessian = true;

  template <class T>
  SGDWALK_FN static T variance(T lambda, const NoiseScale<T>& s) {
    return fma_rn(s.two_sigma, lambda * lambda, s.epsilon);
  }

  template <class T>
  SGDWALK_FN static T scaled_root(T lambda_scaled, T scale, const NoiseScale<T>& s) {
    return sqrt_rn(variance(lambda_scaled * scale, s));
  }

  // (μ₊ − μ₋)/(λ₊ − λ₋) = 2σ(λ₊ + λ₋).
  template <class T>
  SGDWALK_FN static void spread(T lp, T lm, T scale, T& numerator, T& denominator) {
    numerator = (lp + lm) * scale;  // λ₊ + λ₋ unscaled
    denominator = T(1);
  }
};

}  // namespace sgdwalk
