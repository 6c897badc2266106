// Loss landscapes a walker can live on, written once for the CPU and the GPU.
//
// Every landscape is a trivially copyable aggregate of its parameters (defaults = the paper's), so
// a kernel receives it by value and the optimiser keeps the parameters in registers. All methods
// are SGDWALK_FN: host+device, always inlined, and use only + - * / sqrt, explicit selects and
// sgdwalk::pmath::exp, so that the CPU and CUDA backends produce bit-identical trajectories.
//
// Interface shared by all landscapes (P = Vec<T, dim>):
//   static constexpr int dim;  using Point = P;  using Hessian = ...;
//   T value(const P&)                   the loss
//   P gradient(const P&)                ∇L
//   Hessian hessian(const P&)           ∇²L (on the branch the point belongs to)
//   void gradient_hessian(const P&, P&, Hessian&)
//                                       both in one pass; the hot loop calls this one. gradient()
//                                       and hessian() are defined through it, so the three agree
//                                       bit for bit (unused work is removed by the inliner).
//   int basin(const P&)                 kFlatBasin or kSharpBasin
//   T progress(const P&)                the "training progress" coordinate (y_freeze, sampling)
#pragma once

#include <utility>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/portable_math.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// Basin labels. A walker's basin decides P_flat, freezing times and crossing counts.
inline constexpr int kSharpBasin = 0, kFlatBasin = 1;

// ------------------------------------------------------------------------------------------------
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
///   N_x = 2 B m,  N_y = 2 x (m − a B),  N_xx = 2 B²,  N_xy = 2 (x B + m − a B),  N_yy = 2 x (x −
///   2a) ∂_y k = −2 k w,  ∂²_y k = 6 k w²
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

  /// Branch-dependent subexpressions shared by value, gradient and Hessian.
  struct Terms {
    T x, y, B, w, k, a, xB, ay, m;
  };

  SGDWALK_FN Terms terms(const Point& p) const {
    Terms t;
    t.x = p[0];
    t.y = p[1];
    const bool flat = t.x >= T(0);
    const T xi = flat ? x1 : x2;
    t.a = flat ? x1 : -x2;
    // One division for both w = 1/u and k = x0²/(f0 x_i² u²).
    const T fx = f0 * (xi * xi);
    const T R = T(1) / (fx * (t.y + y_f));
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

// ------------------------------------------------------------------------------------------------
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

// ------------------------------------------------------------------------------------------------
/// An asymmetric 1-D piecewise-quadratic double well: a minimal, fully analytic test bed for
/// escape and basin statistics. The barrier top is x = barrier with L = 0 there (continuous, with
/// a cusp); x ≥ barrier is the flat side:
///   L = ½ curvature_flat (x − m_f)² − depth_flat,   m_f = barrier + sqrt(2
///   depth_flat/curvature_flat) L = ½ curvature_sharp (x − m_s)² − depth_sharp, m_s = barrier −
///   sqrt(2 depth_sharp/curvature_sharp)
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

// ------------------------------------------------------------------------------------------------
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

}  // namespace sgdwalk
