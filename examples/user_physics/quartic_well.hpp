// An out-of-tree landscape, built into sgdwalk without editing the tree (docs/EXTENDING.md):
//
//   cmake -S . -B build-user -DSGDWALK_USER_PHYSICS=$PWD/examples/user_physics/quartic_well.hpp
//   cmake --build build-user -j2 --target sgdwalk
//   build-user/sgdwalk run examples/user_physics/quartic_well.toml
//
// The header holds the landscape's physics (host+device, SGDWALK_FN, only + − × ÷, sqrt, explicit
// fma and sgdwalk::pmath functions, so both backends give the same bits) and its description
// (config name, parameters with defaults and ranges), and registers it with one line at the end.
#pragma once

#include "sgdwalk/landscapes/base.hpp"

namespace mylab {

using sgdwalk::kFlatBasin;
using sgdwalk::kSharpBasin;
using sgdwalk::Vec;

/// A tilted quartic double well L = a x⁴ − b x² + t x (1-D). Without tilt its minima are at
/// x = ±sqrt(b/(2a)) with L = −b²/(4a) and curvature 4b; the tilt t lowers the x < 0 well.
template <class T>
struct QuarticWell {
  static constexpr int dim = 1;
  using Point = Vec<T, 1>;
  using Hessian = T;  // 1-D: the Hessian is a number

  T a = T(1);     ///< quartic coefficient
  T b = T(2);     ///< quadratic coefficient
  T tilt = T(0);  ///< linear tilt

  // ---- description (host only) ----
  static constexpr const char* name = "quartic_well";
  static constexpr const char* summary = "Tilted quartic double well L = a x^4 - b x^2 + tilt x";
  template <class V>
  static void describe(V& v) {
    v("a", &QuarticWell::a, sgdwalk::range::positive, "quartic coefficient");
    v("b", &QuarticWell::b, sgdwalk::range::positive, "quadratic coefficient (barrier b^2/(4a))");
    v("tilt", &QuarticWell::tilt, sgdwalk::range::any, "linear tilt (t > 0 favours x < 0)");
  }
  /// Walkers start at the barrier top (x = ∓0.01).
  static std::array<double, 1> start() { return {0.0}; }
  /// The untilted minima ±sqrt(b/(2a)) = ±1 with L = −1, and the barrier top x = 0 (a maximum: in
  /// 1-D one negative curvature).
  static std::vector<sgdwalk::StationaryPoint> stationary_points() {
    return {{{1.0}, -1.0, 0, 1e-12, 1e-12},
            {{-1.0}, -1.0, 0, 1e-12, 1e-12},
            {{0.0}, 0.0, 1, 1e-12, 1e-12}};
  }

  SGDWALK_FN void gradient_hessian(const Point& p, Point& g, Hessian& h) const {
    const T x = p[0];
    const T x2 = x * x;
    g[0] = sgdwalk::fma_rn(T(4) * a * x2 - T(2) * b, x, tilt);
    h = T(12) * a * x2 - T(2) * b;
  }
  SGDWALK_FN T value(const Point& p) const {
    const T x = p[0];
    const T x2 = x * x;
    return sgdwalk::fma_rn(a * x2 - b, x2, tilt * x);
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
  /// x ≥ 0 is the "flat" basin (the label P_flat, freezing and crossings use).
  SGDWALK_FN int basin(const Point& p) const { return p[0] >= T(0) ? kFlatBasin : kSharpBasin; }
  SGDWALK_FN T progress(const Point& p) const { return p[0]; }
};

}  // namespace mylab

// The one line that adds it to sgdwalk's registry (at global scope, qualified names).
SGDWALK_USER_LANDSCAPES(mylab::QuarticWell)
