// What every noise model shares: its id (the template argument of the walker and the kernels) and
// the per-run noise constants.
#pragma once

#include <cmath>

namespace sgdwalk {

/// Noise-model ids. Each model (a header in noise/) names its id; a new model adds an enumerator
/// here (or uses an unused value, NoiseKind{N}); the registry checks that ids are unique.
enum class NoiseKind : int { hessian = 0, hessian_squared = 1, isotropic = 2 };

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

}  // namespace sgdwalk
