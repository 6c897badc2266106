// The Müller–Brown potential: physics and description.
#pragma once

#include "sgdwalk/landscapes/base.hpp"

namespace sgdwalk {

/// The Müller–Brown potential (K. Müller and L. D. Brown, Theor. Chim. Acta 53, 75 (1979)), the
/// standard 2-D test of escape and transition statistics: three minima joined by two saddles,
///   L = scale · Σ_k A_k exp(a_k (x − x_k)² + b_k (x − x_k)(y − y_k) + c_k (y − y_k)²)
/// with the published constants (k = 1..4). `scale` sets the energy unit (the walkers' temperature
/// is Δ_S = η·σ in the same unit; scale = 0.1 is common in sampling studies).
/// basin: kSharpBasin on the side of the deep minimum A = (−0.558, 1.442) of the line
/// y − x = 1.446 through the A–C saddle, kFlatBasin on the side of C and B; progress: x (A → B).
template <class T>
struct MullerBrown {
  static constexpr int dim = 2;
  using Point = Vec<T, 2>;
  using Hessian = Sym2<T>;

  T scale = T(1);

  // ---- description (host only) ----
  static constexpr const char* name = "muller_brown";
  static constexpr const char* summary =
      "The Mueller-Brown potential (three minima, two saddles), scaled by `scale`";
  template <class V>
  static void describe(V& v) {
    v("scale", &MullerBrown::scale, range::positive, "energy scale multiplying the potential");
  }
  static std::array<double, 2> start() { return {-0.558, 1.442}; }
  /// The stationary points as published (Müller & Brown 1979, to three decimals): minima A, B, C
  /// and the saddles between A and C and between C and B.
  static std::vector<StationaryPoint> stationary_points() {
    return {{{-0.558, 1.442}, -146.700, 0, 1e-3, 0.01},
            {{0.623, 0.028}, -108.167, 0, 1e-3, 0.01},
            {{-0.050, 0.467}, -80.768, 0, 1e-3, 0.01},
            {{-0.822, 0.624}, -40.665, 1, 1e-3, 0.01},
            {{0.212, 0.293}, -72.249, 1, 1e-3, 0.01}};
  }

  /// Adds term k's value, gradient and Hessian (all scaled by A·exp(q)) to the sums.
  SGDWALK_FN static void add_term(const Point& p, T A, T a, T b, T c, T x0, T y0, T& value,
                                  Point& g, Hessian& h) {
    const T dx = p[0] - x0;
    const T dy = p[1] - y0;
    const T q = (a * dx + b * dy) * dx + c * (dy * dy);
    const T e = A * pmath::exp<T>(q);
    const T qx = T(2) * a * dx + b * dy;  // ∂q/∂x
    const T qy = b * dx + T(2) * c * dy;  // ∂q/∂y
    value = value + e;
    g[0] = g[0] + e * qx;
    g[1] = g[1] + e * qy;
    h.xx = h.xx + e * (qx * qx + T(2) * a);
    h.xy = h.xy + e * (qx * qy + b);
    h.yy = h.yy + e * (qy * qy + T(2) * c);
  }

  SGDWALK_FN void evaluate(const Point& p, T& value, Point& g, Hessian& h) const {
    value = T(0);
    g = Point{};
    h = Hessian{T(0), T(0), T(0)};
    add_term(p, T(-200), T(-1), T(0), T(-10), T(1), T(0), value, g, h);
    add_term(p, T(-100), T(-1), T(0), T(-10), T(0), T(0.5), value, g, h);
    add_term(p, T(-170), T(-6.5), T(11), T(-6.5), T(-0.5), T(1.5), value, g, h);
    add_term(p, T(15), T(0.7), T(0.6), T(0.7), T(-1), T(1), value, g, h);
    value = scale * value;
    g[0] = scale * g[0];
    g[1] = scale * g[1];
    h.xx = scale * h.xx;
    h.xy = scale * h.xy;
    h.yy = scale * h.yy;
  }

  SGDWALK_FN T value(const Point& p) const {
    T v;
    Point g;
    Hessian h;
    evaluate(p, v, g, h);
    return v;
  }

  SGDWALK_FN void gradient_hessian(const Point& p, Point& g, Hessian& h) const {
    T v;
    evaluate(p, v, g, h);
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
    return p[1] - p[0] > T(1.446) ? kSharpBasin : kFlatBasin;
  }
  SGDWALK_FN T progress(const Point& p) const { return p[0]; }
};

}  // namespace sgdwalk
