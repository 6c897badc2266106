// The 1-D slice of the two-valley landscape at fixed y: physics and description.
#pragma once

#include "sgdwalk/landscapes/base.hpp"
#include "sgdwalk/landscapes/two_valley.hpp"

namespace sgdwalk {

/// The 1-D slice x ↦ L(x, y) of TwoValley at fixed y: the setting where the reference's
/// quasi-steady formulas are exact (its hessian-noise variance is exactly 2σ·2/f_i).
/// Evaluated through TwoValley, so it agrees bit for bit with TwoValley at (x, y).
template <class T>
struct TwoValleySlice {
  static constexpr int dim = 1;
  using Point = Vec<T, 1>;
  using Hessian = T;

  T f0 = T(1);
  T x0 = T(1);
  T x1 = T(0.8);
  T x2 = T(0.65);
  T y_f = T(20);
  T y_b = T(30);
  T y_d = T(100);
  T L_d = T(1);
  T y = T(40);  ///< the fixed slice

  // ---- description (host only) ----
  static constexpr const char* name = "two_valley_slice";
  static constexpr const char* summary = "The two-valley model across the valleys at a fixed y";
  template <class V>
  static void describe(V& v) {
    TwoValley<T>::template describe_two_valley<TwoValleySlice>(v);
    v("y", &TwoValleySlice::y, range::any, "the fixed y of the 1-D slice");
  }

  SGDWALK_FN TwoValley<T> full() const { return TwoValley<T>{f0, x0, x1, x2, y_f, y_b, y_d, L_d}; }

  SGDWALK_FN T value(const Point& p) const { return full().value(Vec<T, 2>{{p[0], y}}); }

  SGDWALK_FN void gradient_hessian(const Point& p, Point& g, Hessian& h) const {
    Vec<T, 2> g2;
    Sym2<T> h2;
    full().gradient_hessian(Vec<T, 2>{{p[0], y}}, g2, h2);
    g[0] = g2[0];
    h = h2.xx;
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

  SGDWALK_FN int basin(const Point& p) const { return p[0] >= T(0) ? kFlatBasin : kSharpBasin; }
  SGDWALK_FN T progress(const Point&) const { return y; }
};

}  // namespace sgdwalk
