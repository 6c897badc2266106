// Isotropic noise Σ = 2σI (overdamped Langevin dynamics at temperature Δ_S = ησ).
// The noise-model interface is described in hessian.hpp; a model without the Hessian draws
// ξ = amplitude(s)·z.
#pragma once

#include "sgdwalk/hd.hpp"
#include "sgdwalk/noise/kind.hpp"

namespace sgdwalk {

struct IsotropicNoise {
  static constexpr NoiseKind kind = NoiseKind::isotropic;
  static constexpr const char* name = "isotropic";
  static constexpr const char* summary = "Sigma = 2 sigma I (Langevin; no Hessian is computed)";
  static constexpr bool needs_hessian = false;

  template <class T>
  SGDWALK_FN static T variance(T, const NoiseScale<T>& s) {
    return s.two_sigma;
  }

  template <class T>
  SGDWALK_FN static T amplitude(const NoiseScale<T>& s) {
    return s.sqrt_two_sigma;
  }
};

}  // namespace sgdwalk
