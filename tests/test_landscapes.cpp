// Landscapes: analytic derivatives against finite differences, one-pass evaluation against the
// separate methods (bit for bit), float against double, and the two-valley facts of the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "sgdwalk/landscapes.hpp"

namespace sgdwalk {
namespace {

static_assert(std::is_trivially_copyable_v<TwoValley<float>>);
static_assert(std::is_trivially_copyable_v<TwoValley<double>>);
static_assert(std::is_trivially_copyable_v<TwoValleySlice<float>>);
static_assert(std::is_trivially_copyable_v<DoubleWell<double>>);
static_assert(std::is_trivially_copyable_v<Harmonic<float, 3>>);
static_assert(TwoValley<double>::dim == 2 && TwoValleySlice<double>::dim == 1);
static_assert(DoubleWell<double>::dim == 1 && Harmonic<double, 3>::dim == 3);
static_assert(std::is_same_v<TwoValley<float>::Hessian, Sym2<float>>);
static_assert(std::is_same_v<TwoValleySlice<float>::Hessian, float>);
static_assert(std::is_same_v<DoubleWell<double>::Hessian, double>);
static_assert(std::is_same_v<Harmonic<double, 2>::Hessian, Diag<double, 2>>);

// ---- generic helpers ----------------------------------------------------------------------------
template <class H>
struct HessianOps;
template <class T>
struct HessianOps<Sym2<T>> {
  static T at(const Sym2<T>& h, int i, int j) {
    return i == 0 && j == 0 ? h.xx : (i == 1 && j == 1 ? h.yy : h.xy);
  }
};
template <>
struct HessianOps<double> {
  static double at(double h, int, int) { return h; }
};
template <>
struct HessianOps<float> {
  static float at(float h, int, int) { return h; }
};
template <class T, int D>
struct HessianOps<Diag<T, D>> {
  static T at(const Diag<T, D>& h, int i, int j) { return i == j ? h.d[i] : T(0); }
};

template <class H>
double hess_at(const H& h, int i, int j) {
  return static_cast<double>(HessianOps<H>::at(h, i, j));
}

// Fourth-order central difference of f along coordinate i (error O(h⁴)).
template <class F, class P>
double central_diff(F f, P p, int i, double h) {
  auto at = [&](double s) {
    P q = p;
    q[i] = p[i] + s;
    return f(q);
  };
  return (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
}

// Checks gradient vs FD of value and Hessian vs FD of gradient, in double.
template <class L>
void check_derivatives(const L& l, const typename L::Point& p, double tol, const char* what) {
  constexpr int D = L::dim;
  const auto g = l.gradient(p);
  const auto hs = l.hessian(p);
  for (int i = 0; i < D; ++i) {
    const double h = 1e-3 * std::max(1.0, std::abs(p[i]));
    const double fd = central_diff([&](const auto& q) { return l.value(q); }, p, i, h);
    EXPECT_NEAR(g[i], fd, tol * (1 + std::abs(fd))) << what << " d/dx" << i;
    for (int j = 0; j < D; ++j) {
      const double fdh = central_diff([&](const auto& q) { return l.gradient(q)[j]; }, p, i, h);
      EXPECT_NEAR(hess_at(hs, j, i), fdh, tol * (1 + std::abs(fdh))) << what << " H" << j << i;
    }
  }
}

// gradient_hessian must agree bit for bit with gradient() and hessian().
template <class L>
void check_one_pass(const L& l, const typename L::Point& p) {
  typename L::Point g;
  typename L::Hessian h;
  l.gradient_hessian(p, g, h);
  const auto g2 = l.gradient(p);
  const auto h2 = l.hessian(p);
  EXPECT_EQ(0, std::memcmp(&g, &g2, sizeof g));
  EXPECT_EQ(0, std::memcmp(&h, &h2, sizeof h));
}

// Float evaluation against the double one at the same (float-representable) point.
template <template <class> class LT>
void check_float_vs_double(const LT<double>& ld, const LT<float>& lf,
                           const typename LT<float>::Point& pf, double tol) {
  typename LT<double>::Point pd;
  for (int i = 0; i < LT<double>::dim; ++i) pd[i] = pf[i];
  auto rel = [&](double f, double d) { return std::abs(f - d) / std::max(1.0, std::abs(d)); };
  EXPECT_LE(rel(lf.value(pf), ld.value(pd)), tol);
  const auto gf = lf.gradient(pf);
  const auto gd = ld.gradient(pd);
  const auto hf = lf.hessian(pf);
  const auto hd = ld.hessian(pd);
  for (int i = 0; i < LT<double>::dim; ++i) {
    EXPECT_LE(rel(gf[i], gd[i]), tol) << "gradient " << i;
    for (int j = 0; j < LT<double>::dim; ++j) {
      EXPECT_LE(rel(hess_at(hf, i, j), hess_at(hd, i, j)), tol) << "hessian " << i << j;
    }
  }
  EXPECT_EQ(lf.basin(pf), ld.basin(pd));
}

const std::vector<double> kYs = {0.5, 1, 5, 20, 40, 100, 300};
const std::vector<double> kXs = {-2.1, -0.9, -0.3, -0.05, 0.05, 0.3, 0.9, 2.1};

// The reference's formula, transcribed directly (independent of the landscape's rearrangement).
double reference_loss(double x, double y) {
  const double f0 = 1, x0 = 1, x1 = 0.8, x2 = 0.65, yf = 20, yb = 30, yd = 100, Ld = 1;
  const double g1 = 2 * x1 * y / (y + yb), g2 = 2 * x2 * y / (y + yb);
  const double r = (y + yf) / (y + yb);
  const double f1 = f0 * x1 * x1 / (x0 * x0) * r * r, f2 = f0 * x2 * x2 / (x0 * x0) * r * r;
  const double l0 = Ld * std::exp(-y / yd) + x0 * x0 / f0;
  return x >= 0 ? l0 + x * (x - g1) / f1 : l0 + x * (x + g2) / f2;
}

// ---- TwoValley ----------------------------------------------------------------------------------
TEST(TwoValley, DefaultsAreThePapers) {
  const TwoValley<double> l;
  EXPECT_EQ(l.f0, 1);
  EXPECT_EQ(l.x0, 1);
  EXPECT_EQ(l.x1, 0.8);
  EXPECT_EQ(l.x2, 0.65);
  EXPECT_EQ(l.y_f, 20);
  EXPECT_EQ(l.y_b, 30);
  EXPECT_EQ(l.y_d, 100);
  EXPECT_EQ(l.L_d, 1);
}

TEST(TwoValley, MatchesReferenceFormula) {
  const TwoValley<double> l;
  for (double y : kYs) {
    for (double x : kXs) {
      EXPECT_NEAR(l.value({{x, y}}), reference_loss(x, y), 1e-14 * (1 + reference_loss(x, y)))
          << x << " " << y;
    }
  }
}

TEST(TwoValley, DerivativesMatchFiniteDifferences) {
  const TwoValley<double> l;
  for (double y : kYs) {
    for (double x : kXs) check_derivatives(l, {{x, y}}, 1e-9, "two-valley");
  }
  // Non-default parameters (other f0, x0, L_d, scales) on both branches.
  const TwoValley<double> m{2.0, 1.3, 0.9, 0.4, 7.0, 11.0, 50.0, 3.0};
  for (double y : {0.3, 3.0, 30.0}) {
    for (double x : kXs) check_derivatives(m, {{x, y}}, 1e-9, "two-valley custom");
  }
}

TEST(TwoValley, OnePassIsBitIdentical) {
  const TwoValley<double> ld;
  const TwoValley<float> lf;
  for (double y : kYs) {
    for (double x : kXs) {
      check_one_pass(ld, {{x, y}});
      check_one_pass(lf, {{float(x), float(y)}});
    }
  }
  check_one_pass(ld, {{0.0, 3.0}});
  check_one_pass(ld, {{-0.0, 3.0}});
}

TEST(TwoValley, FloatAgreesWithDouble) {
  const TwoValley<double> ld;
  const TwoValley<float> lf;
  for (double y : kYs) {
    for (double x : kXs) check_float_vs_double<TwoValley>(ld, lf, {{float(x), float(y)}}, 2e-6);
  }
}

TEST(TwoValley, EqualDepthsAndValleyBottoms) {
  const TwoValley<double> l;
  for (double y : kYs) {
    const double dl = y * y / ((y + 20) * (y + 20));  // (x0²/f0) y²/(y + y_f)²
    const double g1 = 2 * 0.8 * y / (y + 30), g2 = 2 * 0.65 * y / (y + 30);
    const double ridge = l.value({{0.0, y}});
    EXPECT_NEAR(ridge - l.value({{g1 / 2, y}}), dl, 1e-14);
    EXPECT_NEAR(ridge - l.value({{-g2 / 2, y}}), dl, 1e-14);
    EXPECT_NEAR(l.gradient({{g1 / 2, y}})[0], 0, 1e-14);
    EXPECT_NEAR(l.gradient({{-g2 / 2, y}})[0], 0, 1e-14);
    // The bottoms are the minima along x: neighbouring points are higher.
    for (double s : {-1e-3, 1e-3}) {
      EXPECT_GT(l.value({{g1 / 2 + s, y}}), l.value({{g1 / 2, y}}));
      EXPECT_GT(l.value({{-g2 / 2 + s, y}}), l.value({{-g2 / 2, y}}));
    }
  }
}

TEST(TwoValley, FlatnessRatioIndependentOfY) {
  const TwoValley<double> l;
  const double gamma = (0.8 / 0.65) * (0.8 / 0.65);
  EXPECT_NEAR(gamma, 1.5148, 1e-4);
  for (double y : kYs) {
    // ∂²L/∂x² = 2/f_i, so γ = f1/f2 = H_xx(sharp)/H_xx(flat).
    const double hf = l.hessian({{0.3, y}}).xx, hs = l.hessian({{-0.3, y}}).xx;
    EXPECT_NEAR(hs / hf, gamma, 1e-14);
    const double r = (y + 20) / (y + 30);
    EXPECT_NEAR(hf, 2 / (0.64 * r * r), 1e-13);
  }
}

TEST(TwoValley, ContinuityAndBranchAtZero) {
  const TwoValley<double> l;
  for (double y : kYs) {
    const double v0 = l.value({{0.0, y}});
    EXPECT_NEAR(l.value({{-1e-12, y}}), v0, 1e-11);
    EXPECT_NEAR(l.value({{1e-12, y}}), v0, 1e-11);
    EXPECT_EQ(l.basin({{0.0, y}}), kFlatBasin);
    EXPECT_EQ(l.basin({{-0.0, y}}), kFlatBasin);
    EXPECT_EQ(l.basin({{-1e-300, y}}), kSharpBasin);
    EXPECT_EQ(l.basin({{1e-300, y}}), kFlatBasin);
    // x = 0 uses the flat branch's slope −g1/f1; the sharp branch has +g2/f2.
    EXPECT_LT(l.gradient({{0.0, y}})[0], 0);
    EXPECT_GT(l.gradient({{-1e-300, y}})[0], 0);
    EXPECT_EQ(l.progress({{0.7, y}}), y);
  }
}

TEST(TwoValley, NonNegative) {
  const TwoValley<double> l;
  const TwoValley<float> lf;
  for (double y = 0; y <= 1000; y += 0.5) {
    for (double x = -3; x <= 3; x += 0.01) {
      ASSERT_GE(l.value({{x, y}}), 0) << x << " " << y;
      ASSERT_GE(lf.value({{float(x), float(y)}}), 0) << x << " " << y;
    }
  }
}

// ---- TwoValleySlice -----------------------------------------------------------------------------
TEST(TwoValleySlice, EqualsTwoValleyBitForBit) {
  for (double y : kYs) {
    TwoValleySlice<double> s;
    s.y = y;
    const TwoValley<double> l;
    TwoValleySlice<float> sf;
    sf.y = float(y);
    const TwoValley<float> lf;
    for (double x : kXs) {
      EXPECT_EQ(s.value({{x}}), l.value({{x, y}}));
      EXPECT_EQ(s.gradient({{x}})[0], l.gradient({{x, y}})[0]);
      EXPECT_EQ(s.hessian({{x}}), l.hessian({{x, y}}).xx);
      EXPECT_EQ(s.basin({{x}}), l.basin({{x, y}}));
      EXPECT_EQ(s.progress({{x}}), y);
      const float xf = float(x), yf = float(y);
      EXPECT_EQ(sf.value({{xf}}), lf.value({{xf, yf}}));
      EXPECT_EQ(sf.gradient({{xf}})[0], lf.gradient({{xf, yf}})[0]);
      EXPECT_EQ(sf.hessian({{xf}}), lf.hessian({{xf, yf}}).xx);
      check_one_pass(s, {{x}});
      check_one_pass(sf, {{xf}});
      check_derivatives(s, {{x}}, 1e-9, "slice");
    }
  }
  EXPECT_EQ(TwoValleySlice<double>{}.y, 40);
}

// ---- DoubleWell ---------------------------------------------------------------------------------
TEST(DoubleWell, MinimaDepthsAndBarrier) {
  for (const DoubleWell<double>& w :
       {DoubleWell<double>{}, DoubleWell<double>{0.7, 3.0, 0.5, 2.0, 0.25}}) {
    const double mf = w.minimum(kFlatBasin), ms = w.minimum(kSharpBasin);
    EXPECT_NEAR(mf, w.barrier + std::sqrt(2 * w.depth_flat / w.curvature_flat), 1e-15);
    EXPECT_NEAR(ms, w.barrier - std::sqrt(2 * w.depth_sharp / w.curvature_sharp), 1e-15);
    EXPECT_NEAR(w.value({{mf}}), -w.depth_flat, 1e-15);
    EXPECT_NEAR(w.value({{ms}}), -w.depth_sharp, 1e-15);
    EXPECT_NEAR(w.gradient({{mf}})[0], 0, 1e-15);
    EXPECT_NEAR(w.gradient({{ms}})[0], 0, 1e-15);
    EXPECT_NEAR(w.value({{w.barrier}}), 0, 1e-15);
    EXPECT_NEAR(w.value({{std::nextafter(w.barrier, -1.0)}}), 0, 1e-14);
    EXPECT_EQ(w.basin({{w.barrier}}), kFlatBasin);
    EXPECT_EQ(w.basin({{std::nextafter(w.barrier, -1.0)}}), kSharpBasin);
    EXPECT_EQ(w.hessian({{mf}}), w.curvature_flat);
    EXPECT_EQ(w.hessian({{ms}}), w.curvature_sharp);
    EXPECT_EQ(w.progress({{mf}}), 0);
    for (double x : {-3.0, -1.2, -0.4, 0.6, 1.1, 2.7}) {
      check_derivatives(w, {{x}}, 1e-9, "double well");
      check_one_pass(w, {{x}});
    }
  }
  const DoubleWell<double> d;
  EXPECT_EQ(d.curvature_flat, 1);
  EXPECT_EQ(d.curvature_sharp, 1.5);
  EXPECT_EQ(d.depth_flat, 1);
  EXPECT_EQ(d.depth_sharp, 1);
  EXPECT_EQ(d.barrier, 0);
}

TEST(DoubleWell, FloatAgreesWithDouble) {
  const DoubleWell<double> d;
  const DoubleWell<float> f;
  for (double x : {-3.0, -1.2, -0.4, 0.6, 1.1, 2.7}) {
    check_float_vs_double<DoubleWell>(d, f, {{float(x)}}, 1e-6);
    check_one_pass(f, {{float(x)}});
  }
}

// ---- Harmonic -----------------------------------------------------------------------------------
template <int D>
void check_harmonic() {
  Harmonic<double, D> h;
  Harmonic<float, D> hf;
  for (int i = 0; i < D; ++i) {
    EXPECT_EQ(h.stiffness[i], 1);
    EXPECT_EQ(h.center[i], 0);
    h.stiffness[i] = 0.5 + i;
    h.center[i] = 0.25 * i - 0.1;
    hf.stiffness[i] = float(h.stiffness[i]);
    hf.center[i] = float(h.center[i]);
  }
  Vec<double, D> p;
  Vec<float, D> pf;
  for (int trial = 0; trial < 5; ++trial) {
    for (int i = 0; i < D; ++i) {
      p[i] = 0.37 * (trial - 2) + 0.11 * i;
      pf[i] = float(p[i]);
      p[i] = pf[i];
    }
    check_derivatives(h, p, 1e-9, "harmonic");
    check_one_pass(h, p);
    check_one_pass(hf, pf);
    double expect = 0;
    for (int i = 0; i < D; ++i)
      expect += 0.5 * h.stiffness[i] * (p[i] - h.center[i]) * (p[i] - h.center[i]);
    EXPECT_NEAR(h.value(p), expect, 1e-15);
    EXPECT_NEAR(hf.value(pf), expect, 1e-6 * (1 + expect));
    EXPECT_EQ(h.basin(p), p[0] >= h.center[0] ? kFlatBasin : kSharpBasin);
    EXPECT_EQ(h.progress(p), p[D - 1]);
    const auto hs = h.hessian(p);
    for (int i = 0; i < D; ++i) EXPECT_EQ(hs.d[i], h.stiffness[i]);
  }
}

TEST(Harmonic, Dimensions123) {
  check_harmonic<1>();
  check_harmonic<2>();
  check_harmonic<3>();
  const Harmonic<double, 2> value_init{};
  EXPECT_EQ(value_init.stiffness[1], 1);
}

}  // namespace
}  // namespace sgdwalk
