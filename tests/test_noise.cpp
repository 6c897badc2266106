// Noise: the map z ↦ ξ is a square root of Σ(H) for every noise kind and every finite H, checked
// against an independent long-double Jacobi eigen-decomposition, and by sampling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "sgdwalk/finite.hpp"
#include "sgdwalk/noise.hpp"

namespace sgdwalk {
namespace {

using LD = long double;

static_assert(noise_needs_hessian<NoiseKind::hessian>);
static_assert(noise_needs_hessian<NoiseKind::hessian_squared>);
static_assert(!noise_needs_hessian<NoiseKind::isotropic>);

struct Mat2 {
  LD a, b, c;  // [[a, b], [b, c]]
};

// Σ for a symmetric H, via one exact Jacobi rotation in long double (independent of sym2_eigen).
Mat2 reference_sigma(NoiseKind kind, LD a, LD b, LD c, LD two_sigma, LD eps) {
  if (kind == NoiseKind::isotropic) return {two_sigma, 0, two_sigma};
  const LD theta = 0.5L * std::atan2(2 * b, a - c);
  const LD cs = std::cos(theta), sn = std::sin(theta);
  // Rotated diagonal: λ1 along (cs, sn), λ2 along (−sn, cs).
  const LD l1 = cs * cs * a + 2 * cs * sn * b + sn * sn * c;
  const LD l2 = sn * sn * a - 2 * cs * sn * b + cs * cs * c;
  auto mu = [&](LD l) {
    return kind == NoiseKind::hessian ? two_sigma * std::max(l, LD(0)) + eps
                                      : two_sigma * l * l + eps;
  };
  const LD m1 = mu(l1), m2 = mu(l2);
  return {m1 * cs * cs + m2 * sn * sn, (m1 - m2) * cs * sn, m1 * sn * sn + m2 * cs * cs};
}

template <NoiseKind K, class T>
Mat2 product_of_columns(const Sym2<T>& h, const NoiseScale<T>& s) {
  const Vec<T, 2> c0 = noise_vector<K>(h, Vec<T, 2>{{T(1), T(0)}}, s);
  const Vec<T, 2> c1 = noise_vector<K>(h, Vec<T, 2>{{T(0), T(1)}}, s);
  // A = [c0 c1]; A Aᵀ.
  return {LD(c0[0]) * c0[0] + LD(c1[0]) * c1[0], LD(c0[0]) * c0[1] + LD(c1[0]) * c1[1],
          LD(c0[1]) * c0[1] + LD(c1[1]) * c1[1]};
}

LD max_abs(const Mat2& m) {
  return std::max({std::abs(m.a), std::abs(m.b), std::abs(m.c)});
}

template <NoiseKind K, class T>
void check_square_root(T a, T b, T c, const NoiseScale<T>& s, LD tol) {
  const Sym2<T> h{a, b, c};
  const Mat2 got = product_of_columns<K>(h, s);
  const Mat2 want = reference_sigma(K, a, b, c, s.two_sigma, s.epsilon);
  const LD scale = max_abs(want);
  EXPECT_LE(std::abs(got.a - want.a), tol * scale) << a << " " << b << " " << c;
  EXPECT_LE(std::abs(got.b - want.b), tol * scale) << a << " " << b << " " << c;
  EXPECT_LE(std::abs(got.c - want.c), tol * scale) << a << " " << b << " " << c;
  // The symmetric square root: A = Aᵀ.
  const Vec<T, 2> c0 = noise_vector<K>(h, Vec<T, 2>{{T(1), T(0)}}, s);
  const Vec<T, 2> c1 = noise_vector<K>(h, Vec<T, 2>{{T(0), T(1)}}, s);
  EXPECT_LE(std::abs(LD(c0[1]) - LD(c1[0])), tol * std::sqrt(scale)) << a << " " << b << " " << c;
  EXPECT_TRUE(all_finite(c0) && all_finite(c1)) << a << " " << b << " " << c;
}

// Matrices that stress the closed form: diagonal, degenerate, tiny off-diagonal, indefinite, ...
template <class T>
std::vector<Sym2<T>> special_matrices() {
  return {{T(2), T(0), T(1)},
          {T(1), T(0), T(2)},
          {T(1), T(0), T(1)},
          {T(0), T(0), T(0)},
          {T(-1), T(0), T(-1)},
          {T(3), T(1e-12), T(3)},
          {T(3), T(1e-30), T(3)},
          {T(3), T(1e-7), T(3.0000001)},
          {T(1), T(2), T(1)},
          {T(-2), T(0.5), T(1)},
          {T(1), T(-3), T(-1)},
          {T(0), T(1), T(0)},
          {T(0), T(-1), T(0)},
          {T(5), T(1e-20), T(-5)},
          {T(1e-30), T(1e-31), T(2e-30)},
          {T(1e-40), T(0), T(0)},
          {T(1e15), T(-3e14), T(2e15)},
          {T(-1e15), T(1), T(1e15)},
          {T(4), T(2), T(1)},
          {T(1), T(2), T(4)},
          {T(2), T(-1), T(-2)}};
}

template <class T>
std::vector<Sym2<T>> random_matrices(int count, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-5, 5), lg(-12, 6);
  std::vector<Sym2<T>> out;
  for (int i = 0; i < count; ++i) {
    if (i % 2 == 0) {
      out.push_back({T(u(rng)), T(u(rng)), T(u(rng))});
    } else {  // wide dynamic range, random signs
      auto v = [&] { return T((u(rng) < 0 ? -1 : 1) * std::pow(10.0, lg(rng))); };
      out.push_back({v(), v(), v()});
    }
  }
  return out;
}

template <class T>
void check_all_kinds(LD tol) {
  for (double sigma : {1e-3, 0.05, 2.0}) {
    const NoiseScale<T> s = make_noise_scale<T>(sigma);
    std::vector<Sym2<T>> ms = special_matrices<T>();
    for (const auto& m : random_matrices<T>(2000, 7)) ms.push_back(m);
    for (const Sym2<T>& m : ms) {
      check_square_root<NoiseKind::hessian>(m.xx, m.xy, m.yy, s, tol);
      if (std::max({std::abs(m.xx), std::abs(m.xy), std::abs(m.yy)}) < T(1e9)) {
        check_square_root<NoiseKind::hessian_squared>(m.xx, m.xy, m.yy, s, tol);
      }
      check_square_root<NoiseKind::isotropic>(m.xx, m.xy, m.yy, s, tol);
    }
  }
}

TEST(Noise, Sym2SquareRootDouble) {
  check_all_kinds<double>(3e-15L);
}
TEST(Noise, Sym2SquareRootFloat) {
  check_all_kinds<float>(1.5e-6L);
}

TEST(Noise, Sym2EigenReconstructs) {
  for (const auto& m : random_matrices<double>(1000, 3)) {
    const Sym2Eigen<double> e = sym2_eigen(m);
    EXPECT_GE(e.lambda_plus, e.lambda_minus);
    EXPECT_NEAR(e.c * e.c + e.s * e.s, 1.0, 1e-15);
    const double scale = std::max({std::abs(m.xx), std::abs(m.xy), std::abs(m.yy)});
    const double xx = e.lambda_plus * e.c * e.c + e.lambda_minus * e.s * e.s;
    const double xy = (e.lambda_plus - e.lambda_minus) * e.c * e.s;
    const double yy = e.lambda_plus * e.s * e.s + e.lambda_minus * e.c * e.c;
    EXPECT_NEAR(xx, m.xx, 1e-14 * scale);
    EXPECT_NEAR(xy, m.xy, 1e-14 * scale);
    EXPECT_NEAR(yy, m.yy, 1e-14 * scale);
  }
  const Sym2Eigen<double> iso = sym2_eigen(Sym2<double>{2, 0, 2});
  EXPECT_EQ(iso.lambda_plus, 2);
  EXPECT_EQ(iso.lambda_minus, 2);
  EXPECT_EQ(iso.c, 1);
  EXPECT_EQ(iso.s, 0);
}

// No NaN/inf for any finite H in a wide range (hessian kind; the squared kind up to sqrt(max)).
TEST(Noise, FiniteForExtremeMatrices) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1, 1), lgf(-44, 30), lgd(-320, 300);
  const NoiseScale<float> sf = make_noise_scale<float>(0.05);
  const NoiseScale<double> sd = make_noise_scale<double>(0.05);
  for (int i = 0; i < 20000; ++i) {
    auto vf = [&] { return float((u(rng) < 0 ? -1 : 1) * std::pow(10.0, lgf(rng))); };
    auto vd = [&] { return (u(rng) < 0 ? -1 : 1) * std::pow(10.0, lgd(rng)); };
    const Sym2<float> hf{vf(), i % 3 == 0 ? 0.0f : vf(), i % 5 == 0 ? 0.0f : vf()};
    const Sym2<double> hd{vd(), i % 3 == 0 ? 0.0 : vd(), i % 5 == 0 ? 0.0 : vd()};
    const Vec<float, 2> zf{{float(u(rng)), float(u(rng))}};
    const Vec<double, 2> zd{{u(rng), u(rng)}};
    ASSERT_TRUE(all_finite(noise_vector<NoiseKind::hessian>(hf, zf, sf)))
        << hf.xx << " " << hf.xy << " " << hf.yy;
    ASSERT_TRUE(all_finite(noise_vector<NoiseKind::hessian>(hd, zd, sd)))
        << hd.xx << " " << hd.xy << " " << hd.yy;
    const Sym2<float> qf{hf.xx * 1e-12f, hf.xy * 1e-12f, hf.yy * 1e-12f};  // |λ| ≲ 1e18
    ASSERT_TRUE(all_finite(noise_vector<NoiseKind::hessian_squared>(qf, zf, sf)));
  }
}

TEST(Noise, OneDimensionalAndDiagonal) {
  const NoiseScale<double> s = make_noise_scale<double>(0.3, 1e-8);
  for (double h : {-2.0, -1e-9, 0.0, 1e-9, 0.5, 3.0}) {
    const double xh = noise_vector<NoiseKind::hessian>(h, Vec<double, 1>{{1.0}}, s)[0];
    EXPECT_NEAR(xh * xh, 0.6 * std::max(h, 0.0) + 1e-8, 1e-15 * (1 + std::abs(h)));
    const double xq = noise_vector<NoiseKind::hessian_squared>(h, Vec<double, 1>{{1.0}}, s)[0];
    EXPECT_NEAR(xq * xq, 0.6 * h * h + 1e-8, 1e-15 * (1 + h * h));
    const double xi = noise_vector<NoiseKind::isotropic>(h, Vec<double, 1>{{1.0}}, s)[0];
    EXPECT_NEAR(xi * xi, 0.6, 1e-15);
    EXPECT_EQ(noise_vector<NoiseKind::hessian>(h, Vec<double, 1>{{-2.0}}, s)[0], -2 * xh);
  }
  const Diag<double, 3> d{{-1.0, 0.25, 4.0}};
  const Vec<double, 3> z{{1.0, -2.0, 0.5}};
  const Vec<double, 3> xh = noise_vector<NoiseKind::hessian>(d, z, s);
  const Vec<double, 3> xq = noise_vector<NoiseKind::hessian_squared>(d, z, s);
  const Vec<double, 3> xi = noise_vector<NoiseKind::isotropic>(d, z, s);
  const Vec<double, 3> xn = noise_vector<NoiseKind::isotropic>(z, s);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(xh[i], std::sqrt(0.6 * std::max(d.d[i], 0.0) + 1e-8) * z[i], 1e-15);
    EXPECT_NEAR(xq[i], std::sqrt(0.6 * d.d[i] * d.d[i] + 1e-8) * z[i], 1e-15);
    EXPECT_EQ(xi[i], s.sqrt_two_sigma * z[i]);
    EXPECT_EQ(xn[i], xi[i]);
  }
  // The 1-D and diagonal forms agree with the 2-D one for diagonal matrices.
  const Sym2<double> h2{-1.0, 0.0, 4.0};
  const Vec<double, 2> z2{{0.3, -0.7}};
  const Vec<double, 2> x2 = noise_vector<NoiseKind::hessian>(h2, z2, s);
  const Vec<double, 2> xd = noise_vector<NoiseKind::hessian>(Diag<double, 2>{{-1.0, 4.0}}, z2, s);
  EXPECT_NEAR(x2[0], xd[0], 1e-15);
  EXPECT_NEAR(x2[1], xd[1], 1e-15);
  // NaN Hessians propagate (they must not be hidden behind a finite ξ).
  EXPECT_FALSE(is_finite(noise_vector<NoiseKind::hessian>(std::numeric_limits<double>::quiet_NaN(),
                                                          Vec<double, 1>{{1.0}}, s)[0]));
}

// drift_plus_noise is drift + noise_vector with one rounding less in 2-D, exactly that sum
// otherwise; and a noise variance that overflows still gives a non-finite result.
template <class T>
void check_drift_plus_noise(LD tol) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(-3, 3);
  const NoiseScale<T> s = make_noise_scale<T>(0.05);
  for (int i = 0; i < 20000; ++i) {
    const Sym2<T> h{T(u(rng)), T(u(rng)), T(u(rng))};
    const Vec<T, 2> z{{T(u(rng)), T(u(rng))}}, drift{{T(u(rng)), T(u(rng))}};
    const Vec<T, 2> xi = noise_vector<NoiseKind::hessian>(h, z, s);
    const Vec<T, 2> both = drift_plus_noise<NoiseKind::hessian>(drift, h, z, s);
    const Vec<T, 2> xq = noise_vector<NoiseKind::hessian_squared>(h, z, s);
    const Vec<T, 2> bq = drift_plus_noise<NoiseKind::hessian_squared>(drift, h, z, s);
    // Both differ by a few roundings of terms no larger than |drift| and |Σ^{1/2}| |z|, with
    // |Σ^{1/2}| ≤ sqrt(max μ) and |λ| ≤ |a| + |b| + |c|.
    const LD norm = std::abs(LD(h.xx)) + std::abs(LD(h.xy)) + std::abs(LD(h.yy));
    const LD zsum = std::abs(LD(z[0])) + std::abs(LD(z[1]));
    const LD root = std::sqrt(LD(s.two_sigma) * norm + LD(s.epsilon)) * zsum;
    const LD root_q = std::sqrt(LD(s.two_sigma) * norm * norm + LD(s.epsilon)) * zsum;
    for (int k = 0; k < 2; ++k) {
      const LD scale = std::max(std::abs(LD(drift[k])), root);
      EXPECT_LE(std::abs(LD(both[k]) - (LD(drift[k]) + LD(xi[k]))), tol * scale);
      const LD scale_q = std::max(std::abs(LD(drift[k])), root_q);
      EXPECT_LE(std::abs(LD(bq[k]) - (LD(drift[k]) + LD(xq[k]))), tol * scale_q);
    }
    const Diag<T, 2> d{{h.xx, h.yy}};
    const Vec<T, 2> xd = noise_vector<NoiseKind::hessian>(d, z, s);
    const Vec<T, 2> bd = drift_plus_noise<NoiseKind::hessian>(drift, d, z, s);
    EXPECT_EQ(bd[0], drift[0] + xd[0]);
    EXPECT_EQ(bd[1], drift[1] + xd[1]);
  }
  const T huge = std::numeric_limits<T>::max() / T(4);
  const Vec<T, 2> one{{T(1), T(1)}};
  EXPECT_FALSE(all_finite(
      drift_plus_noise<NoiseKind::hessian_squared>(one, Sym2<T>{huge, T(0), T(1)}, one, s)));
  EXPECT_FALSE(
      all_finite(noise_vector<NoiseKind::hessian_squared>(Sym2<T>{huge, T(0), T(1)}, one, s)));
}

TEST(Noise, DriftPlusNoiseDouble) {
  check_drift_plus_noise<double>(4 * 0x1p-53L);  // 4 ulps
}
TEST(Noise, DriftPlusNoiseFloat) {
  check_drift_plus_noise<float>(4 * 0x1p-24L);  // 4 ulps
}

// Σ = 0 (σ = ε = 0) is no noise: ξ is exactly zero for every Hessian (positive semi-definite,
// indefinite, negative definite, zero) and drift + ξ is the drift (g's select).
template <class T>
void check_no_noise() {
  const NoiseScale<T> s = make_noise_scale<T>(0.0, 0.0);
  const Vec<T, 2> z{{T(0.75), T(-1.5)}}, drift{{T(0.3), T(-0.2)}};
  for (const Sym2<T>& h : {Sym2<T>{T(2), T(0.5), T(1)}, Sym2<T>{T(1), T(2), T(-1)},
                           Sym2<T>{T(-2), T(0.5), T(-1)}, Sym2<T>{T(0), T(0), T(0)}}) {
    for (const Vec<T, 2>& xi : {noise_vector<NoiseKind::hessian>(h, z, s),
                                noise_vector<NoiseKind::hessian_squared>(h, z, s)}) {
      for (int k = 0; k < 2; ++k) EXPECT_EQ(xi[k], T(0));  // ±0 (the sign follows z)
    }
    const Vec<T, 2> both = drift_plus_noise<NoiseKind::hessian>(drift, h, z, s);
    EXPECT_EQ(both[0], drift[0]);
    EXPECT_EQ(both[1], drift[1]);
  }
}

TEST(Noise, NoNoiseWithoutSigmaAndEpsilon) {
  check_no_noise<float>();
  check_no_noise<double>();
}

// The GPU's double pow2_scale (pow2_scale_high_words) reads only the high words of the bit
// patterns; its scale must be the one of the 64-bit definition (the CPU's pow2_scale) (largest
// exponent of the three magnitudes, clamped to [1, 2045]) for every input class: zeros, subnormals,
// normals of both signs, near-ties in the high word, inf, NaN.
TEST(Noise, Pow2ScaleDoubleMatchesFullWidthDefinition) {
  auto reference = [](double x, double y, double z) {
    std::uint64_t b[3];
    std::memcpy(&b[0], &x, 8);
    std::memcpy(&b[1], &y, 8);
    std::memcpy(&b[2], &z, 8);
    std::uint64_t m = 0;
    for (auto v : b) m = std::max<std::uint64_t>(m, v & 0x7fffffffffffffffull);
    const std::uint64_t e = std::clamp<std::uint64_t>(m >> 52, 1, 2045);
    const std::uint64_t sb = e << 52, ib = (2046 - e) << 52;
    double scale, inv;
    std::memcpy(&scale, &sb, 8);
    std::memcpy(&inv, &ib, 8);
    return std::pair{scale, inv};
  };
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> special = {0.0,
                                 -0.0,
                                 5e-324,
                                 -5e-324,
                                 2.2250738585072009e-308,
                                 2.2250738585072014e-308,
                                 1.0,
                                 -1.0,
                                 std::nextafter(2.0, 0.0),
                                 2.0,
                                 std::nextafter(2.0, 4.0),
                                 1e308,
                                 -1.7976931348623157e308,
                                 inf,
                                 -inf,
                                 nan,
                                 -nan};
  std::mt19937_64 rng(20261205);
  for (int i = 0; i < 2000; ++i) {
    std::uint64_t u = rng();
    double d;
    std::memcpy(&d, &u, 8);
    special.push_back(d);
  }
  int checked = 0;
  for (std::size_t i = 0; i < special.size(); ++i) {
    const double x = special[i], y = special[(i * 7 + 3) % special.size()],
                 z = special[(i * 13 + 5) % special.size()];
    double scale, inv;
    detail::pow2_scale_high_words(x, y, z, scale, inv);
    const auto [rs, ri] = reference(x, y, z);
    double cpu_scale, cpu_inv;
    detail::pow2_scale(x, y, z, cpu_scale, cpu_inv);
    ASSERT_EQ(cpu_scale, rs);
    ASSERT_EQ(cpu_inv, ri);
    ASSERT_EQ(scale, rs) << x << " " << y << " " << z;
    ASSERT_EQ(inv, ri) << x << " " << y << " " << z;
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(special.size()));
}

TEST(Noise, ScaleConstants) {
  const NoiseScale<float> s = make_noise_scale<float>(0.02);
  EXPECT_EQ(s.two_sigma, 0.04f);
  EXPECT_EQ(s.sqrt_two_sigma, float(std::sqrt(0.04)));
  EXPECT_EQ(s.epsilon, 1e-8f);
  EXPECT_EQ((NoiseScale<double>{0.1, 0.2}.epsilon), 1e-8);
}

// Sample covariance of ξ over 1e6 standard-normal z agrees with Σ within sampling error.
TEST(Noise, SampleCovarianceMatchesSigma) {
  const NoiseScale<double> s = make_noise_scale<double>(0.05);
  const std::vector<Sym2<double>> hs = {{3.0, 1.2, 0.5}, {-1.0, 2.0, 1.0}, {2.0, 0.0, 2.0}};
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> normal;
  constexpr int kDraws = 1'000'000;
  for (const Sym2<double>& h : hs) {
    LD sxx = 0, sxy = 0, syy = 0;
    for (int i = 0; i < kDraws; ++i) {
      const Vec<double, 2> z{{normal(rng), normal(rng)}};
      const Vec<double, 2> xi = noise_vector<NoiseKind::hessian>(h, z, s);
      sxx += LD(xi[0]) * xi[0];
      sxy += LD(xi[0]) * xi[1];
      syy += LD(xi[1]) * xi[1];
    }
    const Mat2 want = reference_sigma(NoiseKind::hessian, h.xx, h.xy, h.yy, s.two_sigma, s.epsilon);
    // Var of the sample mean of ξ_i ξ_j is (Σ_ii Σ_jj + Σ_ij²)/n; allow 5 standard errors.
    const LD n = kDraws;
    auto se = [&](LD ii, LD jj, LD ij) { return std::sqrt((ii * jj + ij * ij) / n); };
    EXPECT_NEAR(double(sxx / n), double(want.a), 5 * double(se(want.a, want.a, want.a)));
    EXPECT_NEAR(double(sxy / n), double(want.b), 5 * double(se(want.a, want.c, want.b)));
    EXPECT_NEAR(double(syy / n), double(want.c), 5 * double(se(want.c, want.c, want.c)));
  }
}

TEST(Finite, BitPatternCheck) {
  EXPECT_TRUE(is_finite(0.0f));
  EXPECT_TRUE(is_finite(-std::numeric_limits<float>::max()));
  EXPECT_TRUE(is_finite(std::numeric_limits<double>::denorm_min()));
  EXPECT_FALSE(is_finite(std::numeric_limits<float>::infinity()));
  EXPECT_FALSE(is_finite(-std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(is_finite(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_FALSE(is_finite(-std::numeric_limits<float>::quiet_NaN()));
  EXPECT_TRUE(all_finite(Vec<double, 3>{{1.0, -2.0, 3.0}}));
  EXPECT_FALSE(all_finite(Vec<double, 3>{{1.0, std::numeric_limits<double>::infinity(), 3.0}}));
  EXPECT_FALSE(all_finite(Sym2<float>{1.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f}));
  EXPECT_TRUE(all_finite(Diag<float, 2>{{1.0f, 2.0f}}));
  EXPECT_EQ(sqrt_rn(2.0f), std::sqrt(2.0f));
  EXPECT_EQ(sqrt_rn(2.0), std::sqrt(2.0));
}

}  // namespace
}  // namespace sgdwalk
