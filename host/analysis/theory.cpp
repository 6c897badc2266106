// Analytic results of the two-valley model; see theory.hpp for conventions.
#include "analysis/theory.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <queue>
#include <stdexcept>
#include <utility>

namespace sgdwalk::theory {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = std::numbers::pi;

// Running log(Σ exp(term)) without overflow.
class LogSum {
 public:
  void add(double term) {
    if (term == -kInf) return;
    if (term > max_) {
      sum_ = sum_ * std::exp(max_ - term) + 1.0;
      max_ = term;
    } else {
      sum_ += std::exp(term - max_);
    }
  }
  double value() const { return max_ == -kInf ? -kInf : max_ + std::log(sum_); }

 private:
  double max_ = -kInf;
  double sum_ = 0;
};

double log_add(double a, double b) {
  LogSum s;
  s.add(a);
  s.add(b);
  return s.value();
}

// n-point Gauss–Legendre rule on [−1, 1] (Newton iteration on P_n).
template <int N>
struct GaussLegendre {
  std::array<double, N> x{}, w{};
  GaussLegendre() {
    // P_n(z) and P_n'(z) by the three-term recurrence.
    auto legendre = [](double z, double& p, double& dp) {
      double p0 = 1, p1 = 0;
      for (int j = 1; j <= N; ++j) {
        const double p2 = p1;
        p1 = p0;
        p0 = ((2.0 * j - 1.0) * z * p1 - (j - 1.0) * p2) / j;
      }
      p = p0;
      dp = N * (z * p0 - p1) / (z * z - 1.0);
    };
    for (int i = 0; i < N; ++i) {
      double z = std::cos(kPi * (i + 0.75) / (N + 0.5));
      double p, dp;
      for (int it = 0; it < 100; ++it) {
        legendre(z, p, dp);
        const double dz = p / dp;
        z -= dz;
        if (std::abs(dz) <= 1e-16) break;
      }
      legendre(z, p, dp);
      x[i] = z;
      w[i] = 2.0 / ((1.0 - z * z) * dp * dp);
    }
  }
};

constexpr int kGL = 10;
const GaussLegendre<kGL>& gl() {
  static const GaussLegendre<kGL> rule;
  return rule;
}

// ---- Branch description of the quasi-steady density -------------------------------------------
// On branch i the density is (1/D_i) exp(β_i) exp(−(x − μ_i)²/(2 v_i)) / Z with v_i = f_i D_i/2,
// μ_i = ±g_i/2 and β_i = g_i²/(4 f_i D_i) (= ΔL/D_i), restricted to x ≥ 0 (flat) or x < 0.
struct Branch {
  double D, v, mu, beta;
  double log_mass;  // ln of the unnormalised probability of the branch
};

// ∫_lo^hi exp(−(x − mu)²/(2v)) dx, accurate in the tails (erfc, no cancellation).
double gauss_integral(double mu, double v, double lo, double hi) {
  if (!(hi > lo)) return 0;
  const double s = std::sqrt(2.0 * v);
  const double tl = (lo - mu) / s, th = (hi - mu) / s;
  double diff;
  if (tl >= 0) {
    diff = std::erfc(tl) - std::erfc(th);
  } else if (th <= 0) {
    diff = std::erfc(-th) - std::erfc(-tl);
  } else {
    diff = 2.0 - std::erfc(th) - std::erfc(-tl);
  }
  return 0.5 * std::sqrt(kPi) * s * diff;
}

Branch branch(const TwoValleyParams& p, double y, double delta_s, int basin, NoiseKind kind) {
  Branch b;
  const double f = f_branch(p, y, basin), g = g_branch(p, y, basin);
  b.D = slice_diffusion(p, y, delta_s, basin, kind);
  b.v = 0.5 * f * b.D;
  b.mu = basin == kFlatBasin ? 0.5 * g : -0.5 * g;
  b.beta = g * g / (4.0 * f * b.D);
  // Half-line Gaussian mass: √(2πv) · ½ erfc(∓μ/√(2v)).
  const double t = (basin == kFlatBasin ? -b.mu : b.mu) / std::sqrt(2.0 * b.v);
  b.log_mass =
      -std::log(b.D) + b.beta + 0.5 * std::log(2.0 * kPi * b.v) + std::log(0.5 * std::erfc(t));
  return b;
}

double log_slice_density(const TwoValleyParams& p, double y, double delta_s, double x,
                         NoiseKind kind) {
  const Branch fl = branch(p, y, delta_s, kFlatBasin, kind);
  const Branch sh = branch(p, y, delta_s, kSharpBasin, kind);
  const double log_z = log_add(fl.log_mass, sh.log_mass);
  const Branch& b = x >= 0 ? fl : sh;
  const double d = x - b.mu;
  return -std::log(b.D) + b.beta - d * d / (2.0 * b.v) - log_z;
}

// ---- Gauss–Kronrod 7/15 ------------------------------------------------------------------------
constexpr double kXgk[8] = {
    0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
    0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
    0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
    0.207784955007898467600689403773245, 0.0};
constexpr double kWgk[8] = {
    0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
    0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
    0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
    0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
constexpr double kWg[4] = {0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                           0.381830050505118944950369775488975,
                           0.417959183673469387755102040816327};

struct Segment {
  double lo, hi, value, error;
  bool operator<(const Segment& o) const { return error < o.error; }
};

Segment gk15(const std::function<double(double)>& f, double lo, double hi) {
  const double c = 0.5 * (lo + hi), h = 0.5 * (hi - lo);
  const double fc = f(c);
  double k = fc * kWgk[7], g = fc * kWg[3];
  for (int j = 0; j < 7; ++j) {
    const double s = f(c - h * kXgk[j]) + f(c + h * kXgk[j]);
    k += kWgk[j] * s;
    if (j % 2 == 1) g += kWg[j / 2] * s;
  }
  return Segment{lo, hi, k * h, std::abs((k - g) * h)};
}

// ---- MFPT core: x_start > a, far side above
// ------------------------------------------------------
double log_mfpt_up(const std::function<double(double)>& dLdx,
                   const std::function<double(double)>& diffusion, double x_start, double a,
                   const MfptOptions& o) {
  const auto& rule = gl();
  const bool finite_far = std::isfinite(o.reflect);
  const double far = finite_far ? o.reflect : kInf;
  if (finite_far && !(far > x_start)) {
    throw std::invalid_argument("mean_first_passage_time: reflect must lie beyond x_start");
  }
  auto ratio = [&](double x) {  // L'/D
    const double d = diffusion(x);
    if (!(d > 0)) throw std::domain_error("mean_first_passage_time: D(x) must be positive");
    return dLdx(x) / d;
  };

  std::vector<double> edges;
  for (double b : o.breakpoints) {
    if (b > a && b < far && b != x_start) edges.push_back(b);
  }
  edges.push_back(x_start);
  if (finite_far) edges.push_back(far);
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());

  struct Panel {
    double l, r, phi_l;
  };
  std::vector<Panel> panels;
  // phi_min tracks min Φ beyond x_start: J(z) for z ≤ x_start is at least the part near it, so
  // Φ(X) − phi_min ≥ tail_log bounds the relative weight of the tail beyond X for every z.
  double l = a, phi = 0, phi_min = kInf;
  double h = (x_start - a) / 16.0;
  std::size_t ei = 0;
  // Panel sums over [lo, hi]: ∫F, ∫|F|, ∫1/D by GL10.
  auto sums = [&](double lo, double hi, double& sf, double& sa, double& sg) {
    const double c = 0.5 * (lo + hi), hw = 0.5 * (hi - lo);
    sf = sa = sg = 0;
    for (int j = 0; j < kGL; ++j) {
      const double x = c + hw * rule.x[j];
      const double d = diffusion(x);
      if (!(d > 0)) throw std::domain_error("mean_first_passage_time: D(x) must be positive");
      const double fx = dLdx(x) / d;
      sf += rule.w[j] * fx;
      sa += rule.w[j] * std::abs(fx);
      sg += rule.w[j] / d;
    }
    sf *= hw;
    sa *= hw;
    sg *= hw;
  };
  for (;;) {
    if (finite_far && l >= far) break;
    if (!finite_far && l >= x_start && phi - phi_min >= o.tail_log && dLdx(l) > 0) break;
    if (l - a > o.max_extent || panels.size() > 20'000'000) return kInf;
    const double e = ei < edges.size() ? edges[ei] : kInf;
    const double r = std::min(l + h, e);
    const double m = 0.5 * (l + r);
    double f0, a0, g0, f1, a1, g1, f2, a2, g2;
    sums(l, r, f0, a0, g0);
    sums(l, m, f1, a1, g1);
    sums(m, r, f2, a2, g2);
    const double fh = f1 + f2, gh = g1 + g2;
    const bool tiny = (r - l) <= 1e-13 * std::max(1.0, std::abs(l));
    const bool ok = (std::abs(f0 - fh) <= o.rel_tol * std::max(1.0, a1 + a2) &&
                     std::abs(g0 - gh) <= o.rel_tol * std::abs(gh) && a1 + a2 <= 1.0);
    if (!ok && !tiny) {
      h = 0.5 * (r - l);
      continue;
    }
    panels.push_back({l, r, phi});
    phi += fh;
    if (r >= x_start) phi_min = std::min(phi_min, phi);  // min of Φ over [x_start, r]
    if (r > l) h = 2.0 * (r - l);
    l = r;
    if (r == e) ++ei;
  }
  if (panels.empty()) return -kInf;

  // ln ∫_{panel} e^{−Φ}/D for every panel, then suffix sums J(edge) = ∫_{edge}^{far} e^{−Φ}/D.
  const std::size_t np = panels.size();
  std::vector<double> log_j_from(np + 1);
  log_j_from[np] = -kInf;
  if (!finite_far) {
    const double slope = dLdx(l);  // asymptotic tail ∫_X^∞ e^{−Φ}/D ≈ e^{−Φ(X)}/L'(X)
    if (slope > 0) log_j_from[np] = -phi - std::log(slope);
  }
  std::vector<std::array<double, kGL>> phi_nodes(np);
  for (std::size_t k = np; k-- > 0;) {
    const Panel& pn = panels[k];
    const double c = 0.5 * (pn.l + pn.r), hw = 0.5 * (pn.r - pn.l);
    LogSum s;
    for (int j = 0; j < kGL; ++j) {
      const double z = c + hw * rule.x[j];
      // Φ(z) = Φ(l) + ∫_l^z F by GL10 on [l, z].
      const double c2 = 0.5 * (pn.l + z), h2 = 0.5 * (z - pn.l);
      double acc = 0;
      for (int i = 0; i < kGL; ++i) acc += rule.w[i] * ratio(c2 + h2 * rule.x[i]);
      phi_nodes[k][j] = pn.phi_l + h2 * acc;
      s.add(std::log(rule.w[j] * hw) - phi_nodes[k][j] - std::log(diffusion(z)));
    }
    log_j_from[k] = log_add(s.value(), log_j_from[k + 1]);
  }

  // Outer integral over the panels below x_start, with the inner integral's partial panel.
  LogSum total;
  for (std::size_t k = 0; k < np && panels[k].r <= x_start; ++k) {
    const Panel& pn = panels[k];
    const double c = 0.5 * (pn.l + pn.r), hw = 0.5 * (pn.r - pn.l);
    for (int j = 0; j < kGL; ++j) {
      const double z = c + hw * rule.x[j];
      const double phi_z = phi_nodes[k][j];
      const double ci = 0.5 * (z + pn.r), hi = 0.5 * (pn.r - z);
      LogSum inner;
      for (int i = 0; i < kGL; ++i) {
        const double w = ci + hi * rule.x[i];
        const double c3 = 0.5 * (z + w), h3 = 0.5 * (w - z);
        double acc = 0;
        for (int q = 0; q < kGL; ++q) acc += rule.w[q] * ratio(c3 + h3 * rule.x[q]);
        const double phi_w = phi_z + h3 * acc;
        // e^{Φ(z) − Φ(w)}/D(w), relative to e^{Φ(z)} (added back below).
        inner.add(std::log(rule.w[i] * hi) - phi_w - std::log(diffusion(w)));
      }
      const double log_j = log_add(inner.value(), log_j_from[k + 1]);
      total.add(std::log(rule.w[j] * hw) + phi_z + log_j);
    }
  }
  return total.value();
}

}  // namespace

// ---- Landscape ----------------------------------------------------------------------------------
double L0(const TwoValleyParams& p, double y) {
  return p.L_d * std::exp(-y / p.y_d) + p.x0 * p.x0 / p.f0;
}
double g_flat(const TwoValleyParams& p, double y) {
  return 2.0 * p.x1 * y / (y + p.y_b);
}
double g_sharp(const TwoValleyParams& p, double y) {
  return 2.0 * p.x2 * y / (y + p.y_b);
}
double f_flat(const TwoValleyParams& p, double y) {
  const double r = (y + p.y_f) / (y + p.y_b);
  return p.f0 * (p.x1 * p.x1) / (p.x0 * p.x0) * r * r;
}
double f_sharp(const TwoValleyParams& p, double y) {
  const double r = (y + p.y_f) / (y + p.y_b);
  return p.f0 * (p.x2 * p.x2) / (p.x0 * p.x0) * r * r;
}
double f_branch(const TwoValleyParams& p, double y, int basin) {
  return basin == kFlatBasin ? f_flat(p, y) : f_sharp(p, y);
}
double g_branch(const TwoValleyParams& p, double y, int basin) {
  return basin == kFlatBasin ? g_flat(p, y) : g_sharp(p, y);
}
double loss(const TwoValleyParams& p, double x, double y) {
  return x >= 0 ? L0(p, y) + x * (x - g_flat(p, y)) / f_flat(p, y)
                : L0(p, y) + x * (x + g_sharp(p, y)) / f_sharp(p, y);
}
double loss_dx(const TwoValleyParams& p, double x, double y) {
  return x >= 0 ? (2.0 * x - g_flat(p, y)) / f_flat(p, y)
                : (2.0 * x + g_sharp(p, y)) / f_sharp(p, y);
}
double two_valley_depth(const TwoValleyParams& p, double y) {
  const double r = y / (y + p.y_f);
  return p.x0 * p.x0 / p.f0 * r * r;
}
double flatness_ratio(const TwoValleyParams& p) {
  return (p.x1 / p.x2) * (p.x1 / p.x2);
}

// ---- Quasi-steady state -------------------------------------------------------------------------
double slice_diffusion(const TwoValleyParams& p, double y, double delta_s, int basin,
                       NoiseKind kind) {
  const double curvature = 2.0 / f_branch(p, y, basin);  // ∂²L/∂x²
  switch (kind) {
    case NoiseKind::hessian:
      return delta_s * curvature;
    case NoiseKind::hessian_squared:
      return delta_s * curvature * curvature;
    case NoiseKind::isotropic:
      return delta_s;
  }
  return delta_s;
}

double p_flat_hessian_ito(const TwoValleyParams& p, double y, double delta_s) {
  // ln I(g) = ½ ln(πΔ/2) + ln(1 + erf(g/(2√(2Δ)))) + g²/(8Δ)
  auto log_i = [&](double g) {
    return 0.5 * std::log(kPi * delta_s / 2.0) +
           std::log(std::erfc(-g / (2.0 * std::sqrt(2.0 * delta_s)))) + g * g / (8.0 * delta_s);
  };
  const double a = std::log(flatness_ratio(p)) + log_i(g_flat(p, y));
  const double b = log_i(g_sharp(p, y));
  return 1.0 / (1.0 + std::exp(b - a));
}

double p_flat_isotropic(const TwoValleyParams& p, double y, double delta) {
  const double f1 = f_flat(p, y), f2 = f_sharp(p, y);
  const double g1 = g_flat(p, y), g2 = g_sharp(p, y);
  const double a = std::sqrt(f1) * std::erfc(-g1 / (2.0 * std::sqrt(f1 * delta)));
  const double b = std::sqrt(f2) * std::erfc(-g2 / (2.0 * std::sqrt(f2 * delta)));
  return a / (a + b);
}

double p_flat_slice(const TwoValleyParams& p, double y, double delta_s, NoiseKind kind) {
  const Branch fl = branch(p, y, delta_s, kFlatBasin, kind);
  const Branch sh = branch(p, y, delta_s, kSharpBasin, kind);
  return 1.0 / (1.0 + std::exp(sh.log_mass - fl.log_mass));
}

double slice_density(const TwoValleyParams& p, double y, double delta_s, double x, NoiseKind kind) {
  return std::exp(log_slice_density(p, y, delta_s, x, kind));
}

double slice_bin_probability(const TwoValleyParams& p, double y, double delta_s, double lo,
                             double hi, NoiseKind kind) {
  if (!(hi > lo)) return 0;
  const Branch fl = branch(p, y, delta_s, kFlatBasin, kind);
  const Branch sh = branch(p, y, delta_s, kSharpBasin, kind);
  const double log_z = log_add(fl.log_mass, sh.log_mass);
  double prob = 0;
  for (const Branch* b : {&fl, &sh}) {
    const bool flat = b == &fl;
    const double l = flat ? std::max(lo, 0.0) : lo;
    const double h = flat ? hi : std::min(hi, 0.0);
    const double part = gauss_integral(b->mu, b->v, l, h);
    const double whole =
        flat ? gauss_integral(b->mu, b->v, 0.0, kInf) : gauss_integral(b->mu, b->v, -kInf, 0.0);
    if (part > 0) prob += std::exp(b->log_mass - log_z) * (part / whole);
  }
  return prob;
}

double effective_temperature(const TwoValleyParams& p, double y, double delta_s) {
  return 2.0 * delta_s / std::sqrt(f_flat(p, y) * f_sharp(p, y));
}

double effective_potential_slice(const TwoValleyParams& p, double y, double delta_s, double x) {
  return -effective_temperature(p, y, delta_s) *
         log_slice_density(p, y, delta_s, x, NoiseKind::hessian);
}

// ---- MFPT ---------------------------------------------------------------------------------------
double log_mean_first_passage_time(const std::function<double(double)>& dLdx,
                                   const std::function<double(double)>& diffusion, double x_start,
                                   double a, const MfptOptions& options) {
  if (!std::isfinite(x_start) || !std::isfinite(a)) {
    throw std::invalid_argument("mean_first_passage_time: x_start and a must be finite");
  }
  if (x_start == a) return -kInf;
  if (x_start > a) return log_mfpt_up(dLdx, diffusion, x_start, a, options);
  // Mirror x → −x: L̃'(x) = −L'(−x), D̃(x) = D(−x).
  MfptOptions mirrored = options;
  for (double& b : mirrored.breakpoints) b = -b;
  mirrored.reflect = std::isfinite(options.reflect) ? -options.reflect : kInf;
  return log_mfpt_up([&](double x) { return -dLdx(-x); }, [&](double x) { return diffusion(-x); },
                     -x_start, -a, mirrored);
}

double mean_first_passage_time(const std::function<double(double)>& dLdx,
                               const std::function<double(double)>& diffusion, double x_start,
                               double a, const MfptOptions& options) {
  return std::exp(log_mean_first_passage_time(dLdx, diffusion, x_start, a, options));
}

double log_mfpt_slice(const TwoValleyParams& p, double y, double delta_s, double x_start, double a,
                      NoiseKind kind) {
  const double d_flat = slice_diffusion(p, y, delta_s, kFlatBasin, kind);
  const double d_sharp = slice_diffusion(p, y, delta_s, kSharpBasin, kind);
  MfptOptions o;
  o.breakpoints = {0.0};
  return log_mean_first_passage_time([&](double x) { return loss_dx(p, x, y); },
                                     [&](double x) { return x >= 0 ? d_flat : d_sharp; }, x_start,
                                     a, o);
}

double mfpt_slice(const TwoValleyParams& p, double y, double delta_s, double x_start, double a,
                  NoiseKind kind) {
  return std::exp(log_mfpt_slice(p, y, delta_s, x_start, a, kind));
}

double mfpt_slice_hessian(const TwoValleyParams& p, double y, double delta_s, double x_start,
                          double a) {
  return mfpt_slice(p, y, delta_s, x_start, a, NoiseKind::hessian);
}

double mfpt_slice_isotropic(const TwoValleyParams& p, double y, double delta_s, double x_start,
                            double a) {
  return mfpt_slice(p, y, delta_s, x_start, a, NoiseKind::isotropic);
}

double log_kramers_rate(const TwoValleyParams& p, double y, double delta_s, int basin) {
  const double dl = two_valley_depth(p, y), f = f_branch(p, y, basin);
  return 0.5 * std::log(2.0 * dl / (kPi * delta_s * f)) - dl * f / (2.0 * delta_s);
}

double kramers_rate(const TwoValleyParams& p, double y, double delta_s, int basin) {
  return std::exp(log_kramers_rate(p, y, delta_s, basin));
}

double log_mfpt_erfi_approx(const TwoValleyParams& p, double y, double delta_s, int basin) {
  const double dl = two_valley_depth(p, y), f = f_branch(p, y, basin);
  return std::log(0.5 * kPi * f) + log_erfi(std::sqrt(dl * f / (2.0 * delta_s)));
}

double mfpt_erfi_approx(const TwoValleyParams& p, double y, double delta_s, int basin) {
  return std::exp(log_mfpt_erfi_approx(p, y, delta_s, basin));
}

// ---- Special functions --------------------------------------------------------------------------
double dawson(double x) {
  if (x < 0) return -dawson(-x);
  if (x == 0) return 0;
  if (x > 1e3) {  // asymptotic series; next term 105/(16 x^8) relative
    const double u = 1.0 / (2.0 * x * x);
    return (1.0 + u * (1.0 + u * (3.0 + 15.0 * u))) / (2.0 * x);
  }
  return integrate([x](double t) { return std::exp((t - x) * (t + x)); }, 0.0, x, 1e-14);
}

double log_erfi(double x) {
  if (!(x > 0)) throw std::domain_error("log_erfi: x must be positive");
  return std::log(2.0 / std::sqrt(kPi)) + x * x + std::log(dawson(x));
}

double erfi(double x) {
  if (x == 0) return 0;
  const double v = std::exp(log_erfi(std::abs(x)));
  return x < 0 ? -v : v;
}

double integrate(const std::function<double(double)>& f, double lo, double hi, double rel_tol,
                 double abs_tol) {
  if (lo == hi) return 0;
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    throw std::invalid_argument("integrate: the interval must be finite");
  }
  std::priority_queue<Segment> queue;
  Segment first = gk15(f, lo, hi);
  double value = first.value, error = first.error;
  queue.push(first);
  for (int it = 0; it < 100000; ++it) {
    if (error <= std::max(abs_tol, rel_tol * std::abs(value))) break;
    const Segment worst = queue.top();
    queue.pop();
    const double mid = 0.5 * (worst.lo + worst.hi);
    if (mid == worst.lo || mid == worst.hi) {  // cannot split further
      queue.push(Segment{worst.lo, worst.hi, worst.value, 0});
      error -= worst.error;
      continue;
    }
    const Segment left = gk15(f, worst.lo, mid), right = gk15(f, mid, worst.hi);
    value += left.value + right.value - worst.value;
    error += left.error + right.error - worst.error;
    queue.push(left);
    queue.push(right);
  }
  // Re-sum to shed the rounding accumulated by the running updates.
  double sum = 0;
  while (!queue.empty()) {
    sum += queue.top().value;
    queue.pop();
  }
  return sum;
}

// ---- Discrete OU --------------------------------------------------------------------------------
double ou_stationary_variance(double eta, double k, double xi_variance) {
  const double ek = eta * k;
  if (!(ek > 0 && ek < 2)) return kInf;
  return eta * xi_variance / (k * (2.0 - ek));
}

}  // namespace sgdwalk::theory
