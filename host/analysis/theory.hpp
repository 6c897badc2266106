// Analytic and quadrature results of the two-valley model (docs/MODEL.md section 5), in double
// precision on the host. They are the oracles for the statistical tests and the "theory" columns
// of the driver's report; they are written from the reference's formulas, independently of the
// landscape code in include/sgdwalk/landscapes.hpp.
//
// Conventions: Δ_S = ησ is the continuum noise strength; the continuum dynamics is the Itô SDE
// dx = −L'(x) dt + sqrt(2 D(x)) dW with time measured in units of η·steps. On the fixed-y slice,
// the diffusion on branch i (i = flat for x ≥ 0, sharp for x < 0) is
//   hessian:          D_i = Δ_S · 2/f_i        (the εI regulariser, ηε/2 ≈ 1e-10, is neglected)
//   hessian_squared:  D_i = Δ_S · (2/f_i)²
//   isotropic:        D   = Δ_S               (Σ = 2σI)
// "basin" arguments take sgdwalk::kFlatBasin / kSharpBasin.
#pragma once

#include <functional>
#include <limits>
#include <vector>

#include "sgdwalk/landscapes.hpp"
#include "sgdwalk/noise.hpp"

namespace sgdwalk::theory {

/// The two-valley parameters (docs/MODEL.md section 2; defaults = the paper's).
struct TwoValleyParams {
  double f0 = 1, x0 = 1, x1 = 0.8, x2 = 0.65, y_f = 20, y_b = 30, y_d = 100, L_d = 1;
};

/// The device-side landscape with these parameters (each rounded once to T).
template <class T>
TwoValley<T> to_two_valley(const TwoValleyParams& p) {
  return TwoValley<T>{T(p.f0), T(p.x0), T(p.x1), T(p.x2), T(p.y_f), T(p.y_b), T(p.y_d), T(p.L_d)};
}

/// The device-side fixed-y slice with these parameters.
template <class T>
TwoValleySlice<T> to_two_valley_slice(const TwoValleyParams& p, double y) {
  return TwoValleySlice<T>{T(p.f0),  T(p.x0),  T(p.x1),  T(p.x2), T(p.y_f),
                           T(p.y_b), T(p.y_d), T(p.L_d), T(y)};
}

/// The parameters of a landscape (inverse of to_two_valley).
template <class T>
TwoValleyParams params_of(const TwoValley<T>& l) {
  return TwoValleyParams{double(l.f0),  double(l.x0),  double(l.x1),  double(l.x2),
                         double(l.y_f), double(l.y_b), double(l.y_d), double(l.L_d)};
}

// ---- The landscape, straight from the reference's formulas --------------------------------------
double L0(const TwoValleyParams& p, double y);                 ///< L_d e^{−y/y_d} + x0²/f0
double loss(const TwoValleyParams& p, double x, double y);     ///< L(x, y)
double loss_dx(const TwoValleyParams& p, double x, double y);  ///< ∂L/∂x (branch of x)
double g_flat(const TwoValleyParams& p, double y);             ///< g1: flat bottom at +g1/2
double g_sharp(const TwoValleyParams& p, double y);            ///< g2: sharp bottom at −g2/2
double f_flat(const TwoValleyParams& p, double y);             ///< f1 = 2/∂²_x L (flat)
double f_sharp(const TwoValleyParams& p, double y);            ///< f2 = 2/∂²_x L (sharp)
double f_branch(const TwoValleyParams& p, double y, int basin);
double g_branch(const TwoValleyParams& p, double y, int basin);
/// Depth of both valleys below the ridge x = 0: ΔL(y) = (x0²/f0) y²/(y + y_f)².
double two_valley_depth(const TwoValleyParams& p, double y);
/// γ = f1/f2 = (x1/x2)², independent of y.
double flatness_ratio(const TwoValleyParams& p);

// ---- Quasi-steady state on the slice (Itô reading) ----------------------------------------------
/// Diffusion D on the slice for the given branch and noise kind (see the header comment).
double slice_diffusion(const TwoValleyParams& p, double y, double delta_s, int basin,
                       NoiseKind kind);

/// The reference's P_flat = γ I(g1) / (γ I(g1) + I(g2)) for hessian noise, evaluated in log space
/// (no overflow of exp(g²/8Δ_S) for small Δ_S).
double p_flat_hessian_ito(const TwoValleyParams& p, double y, double delta_s);

/// The reference's isotropic P_flat = √f1[1+erf(g1/(2√(f1Δ)))] / (same + √f2[1+erf(...)]).
double p_flat_isotropic(const TwoValleyParams& p, double y, double delta);

/// P_flat of the normalised quasi-steady density for any noise kind (branch i density ∝
/// (1/D_i) exp(−(L − L(0,y))/D_i)). Equals the two functions above for their kinds.
double p_flat_slice(const TwoValleyParams& p, double y, double delta_s, NoiseKind kind);

/// Normalised quasi-steady density P(x) on the slice: ∫P dx = 1, D·P continuous at x = 0.
double slice_density(const TwoValleyParams& p, double y, double delta_s, double x,
                     NoiseKind kind = NoiseKind::hessian);

/// ∫_lo^hi P(x) dx of slice_density (exact, via erfc): the expected fraction of a histogram bin.
double slice_bin_probability(const TwoValleyParams& p, double y, double delta_s, double lo,
                             double hi, NoiseKind kind = NoiseKind::hessian);

/// Effective temperature of the hessian-noise slice: T_eff = 2Δ_S / sqrt(f1 f2).
double effective_temperature(const TwoValleyParams& p, double y, double delta_s);

/// −T_eff ln P(x) for the normalised hessian-noise density: equals γ^{+1/2}(L − L(0,y)) on the
/// flat side and γ^{−1/2}(L − L(0,y)) on the sharp side, plus one constant per side.
double effective_potential_slice(const TwoValleyParams& p, double y, double delta_s, double x);

// ---- Mean first-passage times -------------------------------------------------------------------
/// Options of the general MFPT quadrature.
struct MfptOptions {
  /// Points where L' or D may jump (panel edges are placed there; e.g. {0} for the two-valley).
  std::vector<double> breakpoints;
  /// Reflecting boundary on the far side of x_start (beyond x_start as seen from a). Infinite =
  /// reflecting at ±∞: the integral is then truncated once −ln Q has risen tail_log above its
  /// minimum with L' pushing back (plus the asymptotic tail e^{−Φ}/|L'|); this assumes the
  /// potential keeps rising beyond that point.
  double reflect = std::numeric_limits<double>::infinity();
  double tail_log = 40;     ///< truncation depth of the far tail (in units of ln)
  double rel_tol = 1e-11;   ///< per-panel accuracy target of the inner integrals
  double max_extent = 1e6;  ///< give up (return +inf) beyond this distance from a
};

/// Natural log of the mean first-passage time (Itô) from x_start to the absorbing point a,
/// reflecting on the far side:
///   T(x_start) = ∫_a^{x_start} dz (1/Q(z)) ∫_z^{∞} Q(w)/D(w) dw,  Q(x) = exp(−∫_a^x L'/D du)
/// for x_start > a, and the mirror image ∫_{x_start}^{a} dz (1/Q) ∫_{−∞}^{z} Q/D dw for
/// x_start < a. Evaluated in log space (T may exceed 1e308) with adaptive composite 10-point
/// Gauss–Legendre panels: a panel is split until ln Q varies by ≤ 1 across it and the panel
/// integrals of L'/D and 1/D agree with their two-half estimates to rel_tol. Time is in the units
/// of the SDE (η·steps). Returns −inf for x_start = a and +inf if the walker never arrives.
double log_mean_first_passage_time(const std::function<double(double)>& dLdx,
                                   const std::function<double(double)>& diffusion, double x_start,
                                   double a, const MfptOptions& options = {});

/// exp(log_mean_first_passage_time(...)).
double mean_first_passage_time(const std::function<double(double)>& dLdx,
                               const std::function<double(double)>& diffusion, double x_start,
                               double a, const MfptOptions& options = {});

/// ln MFPT on the fixed-y slice x ↦ L(x, y) from x_start to a (breakpoint at x = 0).
double log_mfpt_slice(const TwoValleyParams& p, double y, double delta_s, double x_start, double a,
                      NoiseKind kind = NoiseKind::hessian);
double mfpt_slice(const TwoValleyParams& p, double y, double delta_s, double x_start, double a,
                  NoiseKind kind = NoiseKind::hessian);
/// Hessian noise, D_i = Δ_S·2/f_i.
double mfpt_slice_hessian(const TwoValleyParams& p, double y, double delta_s, double x_start,
                          double a);
/// Isotropic noise, D = Δ_S.
double mfpt_slice_isotropic(const TwoValleyParams& p, double y, double delta_s, double x_start,
                            double a);

/// Large-barrier (Kramers) escape rate out of basin i with hessian noise, over the cusp at x = 0:
/// k ≈ sqrt(2ΔL/(πΔ_S f_i)) exp(−ΔL f_i/(2Δ_S)) (per unit SDE time). With β = ΔL f_i/(2Δ_S), the
/// exact MFPT from the valley bottom to x = 0 is (1/k)(1 + 1/(2β) + 3/(4β²) + 15/(8β³) + …).
double kramers_rate(const TwoValleyParams& p, double y, double delta_s, int basin);
double log_kramers_rate(const TwoValleyParams& p, double y, double delta_s, int basin);

/// The paper's closed-form escape time (π/2) f_i erfi(sqrt(ΔL f_i/(2Δ_S))) from the valley bottom
/// to x = 0. It is the MFPT integral with the inner ∫_z^∞ replaced by the whole Gaussian well, so
/// it is exact up to exponentially small terms at high barriers but 5–11 % off at low ones
/// (1 − T/T_erfi = 5.1 % flat, 10.9 % sharp at y = 5, Δ_S = 0.002).
double mfpt_erfi_approx(const TwoValleyParams& p, double y, double delta_s, int basin);
double log_mfpt_erfi_approx(const TwoValleyParams& p, double y, double delta_s, int basin);

// ---- Special functions and quadrature -----------------------------------------------------------
double dawson(double x);    ///< F(x) = e^{−x²} ∫_0^x e^{t²} dt
double erfi(double x);      ///< (2/√π) ∫_0^x e^{t²} dt (inf beyond ~26.6)
double log_erfi(double x);  ///< ln erfi(x) for x > 0, no overflow

/// Adaptive Gauss–Kronrod (7/15) quadrature of f over the finite interval [lo, hi].
double integrate(const std::function<double(double)>& f, double lo, double hi,
                 double rel_tol = 1e-12, double abs_tol = 0);

// ---- Discrete Ornstein–Uhlenbeck ----------------------------------------------------------------
/// Stationary variance of the discrete update x ← x − η(k x + ξ), Var ξ = xi_variance:
///   var = η² s / (1 − (1 − ηk)²) = η s / (k (2 − ηk))   (exact for the map; needs 0 < ηk < 2,
/// otherwise +inf). Isotropic noise has s = 2σ, giving 2ση/(k(2 − ηk)), whose continuum limit
/// (η → 0 at fixed Δ_S = ησ) is Δ_S/k = D/k; hessian noise on a harmonic well has s = 2σk + ε.
double ou_stationary_variance(double eta, double k, double xi_variance);

}  // namespace sgdwalk::theory
