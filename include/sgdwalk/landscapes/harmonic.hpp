// The axis-aligned harmonic well in 1 to 3 dimensions: physics and description.
#pragma once

#include <utility>

#include "sgdwalk/landscapes/base.hpp"

namespace sgdwalk {

namespace detail {
// Supplies Harmonic's parameter arrays with all-ones default stiffness for any D.
template <class T, int D, class Seq>
struct HarmonicParams;
template <class T, int D, int... I>
struct HarmonicParams<T, D, std::integer_sequence<int, I...>> {
  T stiffness[D] = {((void)I, T(1))...};
  T center[D] = {};
};
}  // namespace detail

/// Axis-aligned harmonic well L = ½ Σ k_i (x_i − c_i)²: the exactly solvable (discrete
/// Ornstein–Uhlenbeck) reference for noise and integrator tests. basin: x[0] ≥ center[0] is
/// "flat"; progress: x[D−1].
template <class T, int D>
struct Harmonic : detail::HarmonicParams<T, D, std::make_integer_sequence<int, D>> {
  static_assert(D >= 1, "Harmonic needs at least one dimension");
  static constexpr int dim = D;
  using Point = Vec<T, D>;
  using Hessian = Diag<T, D>;

  // ---- description (host only) ----
  static constexpr const char* name = "harmonic";
  static constexpr const char* summary =
      "Axis-aligned harmonic well L = 1/2 sum_i k_i (x_i - c_i)^2 (dim 1 to 3)";
  template <class V>
  static void describe(V& v) {
    v("stiffness", &Harmonic::stiffness, range::positive, "curvature along axis");
    v("center", &Harmonic::center, range::any, "minimum along axis");
  }

  SGDWALK_FN T value(const Point& p) const {
    T sum = T(0);
    for (int i = 0; i < D; ++i) {
      const T d = p[i] - this->center[i];
      sum = sum + T(0.5) * this->stiffness[i] * (d * d);
    }
    return sum;
  }

  SGDWALK_FN void gradient_hessian(const Point& p, Point& g, Hessian& h) const {
    for (int i = 0; i < D; ++i) {
      g[i] = this->stiffness[i] * (p[i] - this->center[i]);
      h.d[i] = this->stiffness[i];
    }
  }

  SGDWALK_FN Point gradient(const Point& p) const {
    Point g;
    Hessian h;
    gradient_hessian(p, g, h);
    return g;
  }

  SGDWALK_FN Hessian hessian(const Point& p) const {
    Point g;
    Hessian h;
    gradient_hessian(p, g, h);
    return h;
  }

  SGDWALK_FN int basin(const Point& p) const {
    return p[0] >= this->center[0] ? kFlatBasin : kSharpBasin;
  }
  SGDWALK_FN T progress(const Point& p) const { return p[D - 1]; }
};

/// The registry's entries (one per dimension; they share the config name "harmonic").
template <class T>
using Harmonic1 = Harmonic<T, 1>;
template <class T>
using Harmonic2 = Harmonic<T, 2>;
template <class T>
using Harmonic3 = Harmonic<T, 3>;

}  // namespace sgdwalk
