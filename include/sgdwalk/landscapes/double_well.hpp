// An asymmetric piecewise-quadratic 1-D double well: physics and description.
#pragma once

#include "sgdwalk/landscapes/base.hpp"

namespace sgdwalk {

/// An asymmetric 1-D piecewise-quadratic double well: a minimal, fully analytic test bed for
/// escape and basin statistics. The barrier top is x = barrier with L = 0 there (continuous, with
/// a cusp); x ≥ barrier is the flat side:
///   x ≥ barrier: L = ½ curvature_flat (x − m_f)² − depth_flat,
///                m_f = barrier + sqrt(2 depth_flat / curvature_flat);
///   x < barrier: L = ½ curvature_sharp (x − m_s)² − depth_sharp,
///                m_s = barrier − sqrt(2 depth_sharp / curvature_sharp).
/// Nothing is precomputed: value and gradient evaluate the sqrt (cheap), the Hessian does not.
template <class T>
struct DoubleWell {
  static constexpr int dim = 1;
  using Point = Vec<T, 1>;
  using Hessian = T;

  T curvature_flat = T(1);
  T curvature_sharp = T(1.5);
  T depth_flat = T(1);
  T depth_sharp = T(1);
  T barrier = T(0);

  // ---- description (host only) ----
  static constexpr const char* name = "double_well";
  static constexpr const char* summary =
      "Asymmetric piecewise-quadratic 1-D double well (flat side x >= barrier)";
  template <class V>
  static void describe(V& v) {
    v("curvature_flat", &DoubleWell::curvature_flat, range::positive,
      "L'' in the flat well (x >= barrier)");
    v("curvature_sharp", &DoubleWell::curvature_sharp, range::positive,
      "L'' in the sharp well (x < barrier)");
    v("depth_flat", &DoubleWell::depth_flat, range::positive,
      "depth of the flat well below the barrier top");
    v("depth_sharp", &DoubleWell::depth_sharp, range::positive,
      "depth of the sharp well below the barrier top");
    v("barrier", &DoubleWell::barrier, range::any, "position of the barrier top (L = 0 there)");
  }
  /// The two minima of the defaults: barrier ± sqrt(2 depth/curvature), both at L = −1.
  static std::vector<StationaryPoint> stationary_points() {
    return {{{1.4142135623730951}, -1.0, 0, 1e-12, 1e-12},
            {{-1.1547005383792515}, -1.0, 0, 1e-12, 1e-12}};
  }

  /// Position of the minimum of the given basin (kFlatBasin or kSharpBasin).
  SGDWALK_FN T minimum(int basin_id) const {
    const bool flat = basin_id == kFlatBasin;
    const T k = flat ? curvature_flat : curvature_sharp;
    const T depth = flat ? depth_flat : depth_sharp;
    const T offset = sqrt_rn(T(2) * depth / k);
    return flat ? barrier + offset : barrier - offset;
  }

  // Both minima are evaluated and the branch picked by bit blends: they are per-variant constants
  // (hoisted out of the CPU lane loop), and a select would let gcc move the sqrt into a branch.
  SGDWALK_FN T value(const Point& p) const {
    const bool flat = basin(p) == kFlatBasin;
    const T k = select_bits(flat, curvature_flat, curvature_sharp);
    const T depth = select_bits(flat, depth_flat, depth_sharp);
    const T d = p[0] - select_bits(flat, minimum(kFlatBasin), minimum(kSharpBasin));
    return T(0.5) * k * (d * d) - depth;
  }

  SGDWALK_FN void gradient_hessian(const Point& p, Point& g, Hessian& h) const {
    const bool flat = basin(p) == kFlatBasin;
    const T k = select_bits(flat, curvature_flat, curvature_sharp);
    g[0] = k * (p[0] - select_bits(flat, minimum(kFlatBasin), minimum(kSharpBasin)));
    h = k;
  }

  SGDWALK_FN Point gradient(const Point& p) const {
    Point g;
    Hessian h;
    gradient_hessian(p, g, h);
    return g;
  }

  SGDWALK_FN Hessian hessian(const Point& p) const {
    return basin(p) == kFlatBasin ? curvature_flat : curvature_sharp;
  }

  SGDWALK_FN int basin(const Point& p) const { return p[0] >= barrier ? kFlatBasin : kSharpBasin; }
  SGDWALK_FN T progress(const Point&) const { return T(0); }
};

}  // namespace sgdwalk
