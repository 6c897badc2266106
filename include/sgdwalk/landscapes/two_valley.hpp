// The paper's two-valley landscape (docs/MODEL.md section 2): physics and description.
#pragma once

#include "sgdwalk/landscapes/base.hpp"

namespace sgdwalk {

/// The paper's 2-D two-valley landscape (reference section 1), state (x, y).
///
///   L = L0(y) + x (x − g1)/f1  (x ≥ 0, flat)      L = L0(y) + x (x + g2)/f2  (x < 0, sharp)
///
/// Substituting g_i and f_i gives, with B = y + y_b, u = y + y_f, c_i = x0²/(f0 x_i²) and the
/// signed branch constant a = +x1 (flat) or −x2 (sharp):
///
///   L = L0(y) + k N,   k = c_i / u²,   N = x B (x B − 2 a y)
///
/// which needs no division by B; both branches share one arithmetic path and differ only in the
/// selected constants (c_i, a). The derivatives used below (halved in the code), with
/// m = x B − a y and w = 1/u:
///   N_x = 2 B m,  N_y = 2 x (m − a B),  N_xx = 2 B²,  N_xy = 2 (x B + m − a B),
///   N_yy = 2 x (x − 2a),  ∂_y k = −2 k w,  ∂²_y k = 6 k w²
/// x = 0 (including −0) belongs to the flat branch. Pathological states (y ≤ −y_f) are not
/// special-cased: they produce inf/NaN, which the caller's finiteness check catches.
template <class T>
struct TwoValley {
  static constexpr int dim = 2;
  using Point = Vec<T, 2>;
  using Hessian = Sym2<T>;

  T f0 = T(1);
  T x0 = T(1);
  T x1 = T(0.8);
  T x2 = T(0.65);
  T y_f = T(20);
  T y_b = T(30);
  T y_d = T(100);
  T L_d = T(1);

  // ---- description (host only) ----
  static constexpr const char* name = "two_valley";
  static constexpr const char* summary =
      "The paper's two-valley model: a flat (x >= 0) and a sharp (x < 0) valley along y";

  /// The parameters shared with TwoValleySlice (Self: the struct whose members are named).
  template <class Self, class V>
  static void describe_two_valley(V& v) {
    v("f0", &Self::f0, range::positive, "inverse-curvature scale of both valleys");
    v("x0", &Self::x0, range::positive, "reference width: f_i = f0 (x_i/x0)^2 (y+y_f)^2/(y+y_b)^2");
    v("x1", &Self::x1, range::positive, "flat valley width (x >= 0)");
    v("x2", &Self::x2, range::positive, "sharp valley width (x < 0)");
    v("y_f", &Self::y_f, range::any, "offset of y in the valley curvature");
    v("y_b", &Self::y_b, range::any, "offset of y in the valley bottoms and curvature");
    v("y_d", &Self::y_d, range::positive, "decay length of the downhill drift L_d exp(-y/y_d)");
    v("L_d", &Self::L_d, range::any, "amplitude of the downhill drift");
  }
  template <class V>
  static void describe(V& v) {
    describe_two_valley<TwoValley>(v);
  }
  /// The paper's start y0 = 5 (x alternates -0.01, +0.01).
  static std::array<double, 2> start() { return {0.0, 5.0}; }

  /// Branch-dependent subexpressions shared by value, gradient and Hessian.
  struct Terms {
    T x, y, B, w, k, a, xB, ay, m;
  };

  SGDWALK_FN Terms terms(const Point& p) const {
    Terms t;
    t.x = p[0];
    t.y = p[1];
    const bool flat = t.x >= T(0);
    t.a = flat ? x1 : -x2;
    // One reciprocal for both w = 1/u and k = x0²/(f0 x_i² u²): pmath::div_lean (float: recip_lean,
    // 0.5 ulp, no IEEE division; |f0 x_i² u| beyond [2^-125, 2^125] in float, a state within 1e-38
    // of the pole y = −y_f or past 1e37, gets no reliable value there, which no walker that has not
    // diverged reaches).
    // x_i² as a², a = ±x_i: the same bits (squaring ignores the sign), one select less.
    const T fx = f0 * (t.a * t.a);
    const T R = pmath::div_lean(T(1), fx * (t.y + y_f));
    t.B = t.y + y_b;
    t.w = fx * R;
    t.k = (x0 * x0) * (R * t.w);
    t.xB = t.x * t.B;
    t.ay = t.a * t.y;
    t.m = fma_rn(t.x, t.B, -t.ay);  // x B − a y with one rounding
    return t;
  }

  SGDWALK_FN T value(const Point& p) const {
    const Terms t = terms(p);
    const T N = t.xB * (t.m - t.ay);
    const T L0 = L_d * pmath::exp<T>(-(t.y * (T(1) / y_d))) + (x0 * x0) / f0;
    return L0 + t.k * N;
  }

  SGDWALK_FN void gradient_hessian(const Point& p, Point& g, Hessian& h) const {
    const Terms t = terms(p);
    // Written with explicit fused multiply-adds where a product meets a sum: one instruction and
    // one rounding instead of two (contraction is off, so each fma is spelled out). The N
    // derivatives are carried halved (n_x = N_x/2, ...) and the factor 2 is folded into 2k once:
    // scaling by 2 is exact, so this saves the doublings without another rounding.
    const T k2 = T(2) * t.k;
    const T k2B = k2 * t.B;
    const T N = t.xB * (t.m - t.ay);
    const T nx = t.B * t.m;
    const T m_aB = fma_rn(-t.a, t.B, t.m);  // m − a B
    const T ny = t.x * m_aB;
    const T nxy = t.xB + m_aB;
    const T nyy = t.x * fma_rn(T(-2), t.a, t.x);
    const T inv_yd = T(1) / y_d;
    const T Lde = L_d * pmath::exp<T>(-(t.y * inv_yd));  // L0(y) − x0²/f0
    const T L0p = -(Lde * inv_yd);
    const T L0pp = (Lde * inv_yd) * inv_yd;
    const T two_w = T(2) * t.w;  // exact
    g[0] = k2B * t.m;
    g[1] = fma_rn(k2, fma_rn(-t.w, N, ny), L0p);
    h.xx = k2B * t.B;
    h.xy = k2 * fma_rn(-two_w, nx, nxy);
    h.yy = fma_rn(k2, fma_rn(T(3) * (t.w * t.w), N, fma_rn(T(-2) * two_w, ny, nyy)), L0pp);
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
  SGDWALK_FN T progress(const Point& p) const { return p[1]; }
};

}  // namespace sgdwalk
