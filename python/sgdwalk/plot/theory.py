"""Analytic results of the two-valley model, for the overlays of the figures.

A port of the few formulas of host/analysis/theory.cpp that the plots need (docs/MODEL.md, section 5), in
double precision with numpy and the
standard library only. python/tests/test_theory.py checks every function here against a table of
values computed by the C++ implementation (python/tests/theory_reference.csv, which
tests/test_protocols.cpp checks against host/analysis/theory.cpp), so the two cannot drift apart.

Conventions (as in host/analysis/theory.hpp): Delta_S = eta * sigma; continuous time = eta * steps; on the
fixed-y slice the diffusion on branch i (flat for x >= 0, sharp for x < 0) is
    hessian:          D_i = Delta_S * 2/f_i
    hessian_squared:  D_i = Delta_S * (2/f_i)**2
    isotropic:        D   = Delta_S
The first-passage times here are evaluated semi-analytically (the inner integral in closed form
with erfc, the outer one by Gauss-Legendre panels), independently of the C++ adaptive quadrature.
The exact discrete chain (discrete_chain_p_flat, escape_rate_chain) is checked against the C++
chains of the tests (tests/test_protocols.cpp, host/rare_events/exact_chain.cpp) in
python/tests/test_theory.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Mapping

    from numpy.typing import ArrayLike

FLAT, SHARP = 1, 0
NOISE_KINDS = ("hessian", "hessian_squared", "isotropic")

#: Leading-order shift of the absorbing point for a walk observed every eta
#: (Broadie-Glasserman-Kou): beta = -zeta(1/2)/sqrt(2 pi).
BGK_BETA = 0.5825971579390107


@dataclass(frozen=True)
class TwoValleyParams:
    """The two-valley parameters (reference section 1; defaults are the paper's)."""

    f0: float = 1.0
    x0: float = 1.0
    x1: float = 0.8
    x2: float = 0.65
    y_f: float = 20.0
    y_b: float = 30.0
    y_d: float = 100.0
    L_d: float = 1.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> "TwoValleyParams":
        """From a name -> value mapping (e.g. a run's /parameters/landscape); others ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in values.items() if k in names})


# ---- The landscape -------------------------------------------------------------------------------
def L0(p: TwoValleyParams, y: ArrayLike) -> float | np.ndarray:
    return p.L_d * np.exp(-np.asarray(y, float) / p.y_d) + p.x0 * p.x0 / p.f0


def g_flat(p: TwoValleyParams, y: float) -> float:
    return 2.0 * p.x1 * y / (y + p.y_b)


def g_sharp(p: TwoValleyParams, y: float) -> float:
    return 2.0 * p.x2 * y / (y + p.y_b)


def f_flat(p: TwoValleyParams, y: float) -> float:
    r = (y + p.y_f) / (y + p.y_b)
    return p.f0 * (p.x1 * p.x1) / (p.x0 * p.x0) * r * r


def f_sharp(p: TwoValleyParams, y: float) -> float:
    r = (y + p.y_f) / (y + p.y_b)
    return p.f0 * (p.x2 * p.x2) / (p.x0 * p.x0) * r * r


def f_branch(p: TwoValleyParams, y: float, basin: int) -> float:
    return f_flat(p, y) if basin == FLAT else f_sharp(p, y)


def g_branch(p: TwoValleyParams, y: float, basin: int) -> float:
    return g_flat(p, y) if basin == FLAT else g_sharp(p, y)


def loss(p: TwoValleyParams, x: ArrayLike, y: float) -> np.ndarray:
    """L(x, y), vectorised over x."""
    x = np.asarray(x, float)
    flat = L0(p, y) + x * (x - g_flat(p, y)) / f_flat(p, y)
    sharp = L0(p, y) + x * (x + g_sharp(p, y)) / f_sharp(p, y)
    return np.where(x >= 0, flat, sharp)


def loss_dx(p: TwoValleyParams, x: ArrayLike, y: float) -> np.ndarray:
    x = np.asarray(x, float)
    return np.where(x >= 0, (2 * x - g_flat(p, y)) / f_flat(p, y),
                    (2 * x + g_sharp(p, y)) / f_sharp(p, y))


def two_valley_depth(p: TwoValleyParams, y: float) -> float:
    """Depth of both valleys below the ridge: (x0^2/f0) y^2/(y + y_f)^2."""
    r = y / (y + p.y_f)
    return p.x0 * p.x0 / p.f0 * r * r


def flatness_ratio(p: TwoValleyParams) -> float:
    """gamma = f1/f2 = (x1/x2)^2."""
    return (p.x1 / p.x2) ** 2


def valley_bottom(p: TwoValleyParams, y: float, basin: int) -> float:
    """x of the valley bottom: +g1/2 (flat) or -g2/2 (sharp)."""
    return 0.5 * g_flat(p, y) if basin == FLAT else -0.5 * g_sharp(p, y)


# ---- Special functions ---------------------------------------------------------------------------
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)


def log_erfc(t: float) -> float:
    """ln erfc(t) without underflow for large t."""
    if t < 25.0:
        return math.log(math.erfc(t))
    u = 1.0 / (2.0 * t * t)
    series = 1.0 - u * (1.0 - 3.0 * u * (1.0 - 5.0 * u * (1.0 - 7.0 * u)))
    return -t * t - math.log(t * math.sqrt(math.pi)) + math.log(series)


def dawson(x: float) -> float:
    """F(x) = exp(-x^2) * integral_0^x exp(t^2) dt."""
    if x < 0:
        return -dawson(-x)
    if x == 0:
        return 0.0
    if x > 1e3:
        u = 1.0 / (2.0 * x * x)
        return (1.0 + u * (1.0 + u * (3.0 + 15.0 * u))) / (2.0 * x)
    # exp((t - x)(t + x)) is below e^-60 for t < x - 30/x: integrate from there.
    lo = max(0.0, x - 30.0 / x)
    edges = np.linspace(lo, x, 201)
    c = 0.5 * (edges[1:] + edges[:-1])[:, None]
    h = 0.5 * (edges[1:] - edges[:-1])[:, None]
    t = c + h * _GL_X[None, :]
    return float(np.sum(h * _GL_W[None, :] * np.exp((t - x) * (t + x))))


def log_erfi(x: float) -> float:
    if not x > 0:
        raise ValueError("log_erfi: x must be positive")
    return math.log(2.0 / math.sqrt(math.pi)) + x * x + math.log(dawson(x))


# ---- Quasi-steady state on the slice (Ito reading) ------------------------------------------------
def slice_diffusion(p: TwoValleyParams, y: float, delta_s: float, basin: int,
                    kind: str = "hessian") -> float:
    curvature = 2.0 / f_branch(p, y, basin)
    if kind == "hessian":
        return delta_s * curvature
    if kind == "hessian_squared":
        return delta_s * curvature * curvature
    if kind == "isotropic":
        return delta_s
    raise ValueError(f"unknown noise kind {kind!r}")


@dataclass
class _Branch:
    D: float
    v: float  # variance of the branch Gaussian, f D / 2
    mu: float  # its centre (the valley bottom)
    beta: float  # g^2/(4 f D) = depth / D
    log_mass: float  # ln of the unnormalised probability of the branch


def _branch(p: TwoValleyParams, y: float, delta_s: float, basin: int, kind: str) -> _Branch:
    f, g = f_branch(p, y, basin), g_branch(p, y, basin)
    D = slice_diffusion(p, y, delta_s, basin, kind)
    v = 0.5 * f * D
    mu = 0.5 * g if basin == FLAT else -0.5 * g
    beta = g * g / (4.0 * f * D)
    t = (-mu if basin == FLAT else mu) / math.sqrt(2.0 * v)
    log_mass = (-math.log(D) + beta + 0.5 * math.log(2.0 * math.pi * v)
                + math.log(0.5) + log_erfc(t))
    return _Branch(D, v, mu, beta, log_mass)


def p_flat_slice(p: TwoValleyParams, y: float, delta_s: float, kind: str = "hessian") -> float:
    """P_flat of the quasi-steady density (branch i density ~ (1/D_i) exp(-(L - L(0,y))/D_i))."""
    fl = _branch(p, y, delta_s, FLAT, kind)
    sh = _branch(p, y, delta_s, SHARP, kind)
    return 1.0 / (1.0 + math.exp(sh.log_mass - fl.log_mass))


def p_flat_hessian_ito(p: TwoValleyParams, y: float, delta_s: float) -> float:
    """The reference's gamma I(g1) / (gamma I(g1) + I(g2)), in log space."""
    def log_i(g: float) -> float:
        return (0.5 * math.log(math.pi * delta_s / 2.0)
                + log_erfc(-g / (2.0 * math.sqrt(2.0 * delta_s))) + g * g / (8.0 * delta_s))
    a = math.log(flatness_ratio(p)) + log_i(g_flat(p, y))
    b = log_i(g_sharp(p, y))
    return 1.0 / (1.0 + math.exp(b - a))


def p_flat_isotropic(p: TwoValleyParams, y: float, delta: float) -> float:
    """sqrt(f1)[1 + erf(g1/(2 sqrt(f1 D)))] / (same + sqrt(f2)[1 + erf(g2/(2 sqrt(f2 D)))])."""
    f1, f2, g1, g2 = f_flat(p, y), f_sharp(p, y), g_flat(p, y), g_sharp(p, y)
    a = math.sqrt(f1) * math.erfc(-g1 / (2.0 * math.sqrt(f1 * delta)))
    b = math.sqrt(f2) * math.erfc(-g2 / (2.0 * math.sqrt(f2 * delta)))
    return a / (a + b)


def log_slice_density(p: TwoValleyParams, y: float, delta_s: float, x: ArrayLike,
                      kind: str = "hessian") -> np.ndarray:
    """ln of the normalised quasi-steady density P(x) on the slice (vectorised over x)."""
    fl = _branch(p, y, delta_s, FLAT, kind)
    sh = _branch(p, y, delta_s, SHARP, kind)
    log_z = np.logaddexp(fl.log_mass, sh.log_mass)
    x = np.asarray(x, float)

    def branch_value(b: _Branch) -> np.ndarray:
        return -math.log(b.D) + b.beta - (x - b.mu) ** 2 / (2.0 * b.v) - log_z

    return np.where(x >= 0, branch_value(fl), branch_value(sh))


def slice_density(p: TwoValleyParams, y: float, delta_s: float, x: ArrayLike,
                  kind: str = "hessian") -> np.ndarray:
    return np.exp(log_slice_density(p, y, delta_s, x, kind))


def _gauss_integral(mu: float, v: float, lo: float, hi: float) -> float:
    """integral_lo^hi exp(-(x - mu)^2/(2v)) dx, accurate in the tails."""
    if not hi > lo:
        return 0.0
    s = math.sqrt(2.0 * v)
    tl, th = (lo - mu) / s, (hi - mu) / s
    if tl >= 0:
        diff = math.erfc(tl) - math.erfc(th)
    elif th <= 0:
        diff = math.erfc(-th) - math.erfc(-tl)
    else:
        diff = 2.0 - math.erfc(th) - math.erfc(-tl)
    return 0.5 * math.sqrt(math.pi) * s * diff


def slice_bin_probability(p: TwoValleyParams, y: float, delta_s: float, lo: float, hi: float,
                          kind: str = "hessian") -> float:
    """integral_lo^hi P(x) dx of the quasi-steady density (exact)."""
    if not hi > lo:
        return 0.0
    fl = _branch(p, y, delta_s, FLAT, kind)
    sh = _branch(p, y, delta_s, SHARP, kind)
    log_z = float(np.logaddexp(fl.log_mass, sh.log_mass))
    prob = 0.0
    for b, flat in ((fl, True), (sh, False)):
        l, h = (max(lo, 0.0), hi) if flat else (lo, min(hi, 0.0))
        part = _gauss_integral(b.mu, b.v, l, h)
        whole = (_gauss_integral(b.mu, b.v, 0.0, math.inf) if flat
                 else _gauss_integral(b.mu, b.v, -math.inf, 0.0))
        if part > 0:
            prob += math.exp(b.log_mass - log_z) * part / whole
    return prob


def effective_temperature(p: TwoValleyParams, y: float, delta_s: float) -> float:
    """T_eff = 2 Delta_S / sqrt(f1 f2) (hessian noise)."""
    return 2.0 * delta_s / math.sqrt(f_flat(p, y) * f_sharp(p, y))


def effective_potential_slice(p: TwoValleyParams, y: float, delta_s: float,
                              x: ArrayLike) -> np.ndarray:
    """-T_eff ln P(x) of the normalised hessian-noise density (vectorised over x)."""
    return -effective_temperature(p, y, delta_s) * log_slice_density(p, y, delta_s, x, "hessian")


def effective_potential_shape(p: TwoValleyParams, y: float, x: ArrayLike) -> np.ndarray:
    """gamma^{+1/2} (L - L(0,y)) on the flat side, gamma^{-1/2} (L - L(0,y)) on the sharp side.

    The reference's statement of the SGD effective potential without its per-side constants.
    """
    x = np.asarray(x, float)
    root_gamma = math.sqrt(flatness_ratio(p))
    rel = loss(p, x, y) - loss(p, 0.0, y)
    return np.where(x >= 0, root_gamma * rel, rel / root_gamma)


# ---- Mean first-passage times (Ito, fixed-y slice) ------------------------------------------------
def _log_gauss_integral(mu: float, v: float, lo: float, hi: float) -> float:
    """ln integral_lo^hi exp(-(x - mu)^2/(2v)) dx; lo may be -inf, hi may be +inf."""
    s = math.sqrt(2.0 * v)
    tl, th = (lo - mu) / s, (hi - mu) / s
    base = math.log(0.5 * math.sqrt(math.pi) * s)
    if math.isinf(tl) and math.isinf(th):
        return base + math.log(2.0)
    if math.isinf(tl):  # (-inf, hi]: erfc(-th)
        return base + log_erfc(-th)
    if math.isinf(th):  # [lo, inf): erfc(tl)
        return base + log_erfc(tl)
    value = _gauss_integral(mu, v, lo, hi)
    return math.log(value) if value > 0 else -math.inf


def log_mfpt_slice(p: TwoValleyParams, y: float, delta_s: float, x_start: float, a: float,
                   kind: str = "hessian", panels: int = 120) -> float:
    """ln of the mean first-passage time (Ito, SDE time units) from x_start to the absorbing point
    a on the slice x -> L(x, y), reflecting on the far side at infinity:

        T = integral_a^x_start dz e^{U(z)} integral_z^inf e^{-U(w)}/D(w) dw      (x_start > a)

    with U(x) = (L(x, y) - L(0, y)) / D(x) (exact for a D that is constant on each branch), and the
    mirror image for x_start < a. The inner integral is a sum of Gaussian integrals (erfc); the
    outer one uses `panels` 20-point Gauss-Legendre panels on each side of x = 0.
    """
    if x_start == a:
        return -math.inf
    if x_start < a:  # mirror x -> -x: the branches swap sides
        mirrored = _MirroredSlice(p, y, delta_s, kind)
        return mirrored.log_mfpt_up(-x_start, -a, panels)
    return _Slice(p, y, delta_s, kind).log_mfpt_up(x_start, a, panels)


class _Slice:
    """The slice as two Gaussian branches: 'right' for x >= 0, 'left' for x < 0."""

    def __init__(self, p: TwoValleyParams, y: float, delta_s: float, kind: str) -> None:
        self.right = _branch(p, y, delta_s, FLAT, kind)
        self.left = _branch(p, y, delta_s, SHARP, kind)

    def U(self, z: np.ndarray) -> np.ndarray:
        r, l = self.right, self.left
        return np.where(z >= 0, (z - r.mu) ** 2 / (2 * r.v) - r.beta,
                        (z - l.mu) ** 2 / (2 * l.v) - l.beta)

    def log_j_up(self, z: np.ndarray) -> np.ndarray:
        """ln integral_z^inf e^{-U(w)}/D(w) dw, vectorised over z."""
        r, l = self.right, self.left
        out = np.empty_like(z)
        # Whole right branch [0, inf), used below zero.
        log_right_all = r.beta - math.log(r.D) + _log_gauss_integral(r.mu, r.v, 0.0, math.inf)
        for i, zz in enumerate(z):
            if zz >= 0:
                out[i] = r.beta - math.log(r.D) + _log_gauss_integral(r.mu, r.v, zz, math.inf)
            else:
                left = l.beta - math.log(l.D) + _log_gauss_integral(l.mu, l.v, zz, 0.0)
                out[i] = np.logaddexp(left, log_right_all)
        return out

    def log_mfpt_up(self, x_start: float, a: float, panels: int) -> float:
        pieces = [(a, x_start)] if not (a < 0 < x_start) else [(a, 0.0), (0.0, x_start)]
        log_terms = []
        for lo, hi in pieces:
            edges = np.linspace(lo, hi, panels + 1)
            c = 0.5 * (edges[1:] + edges[:-1])[:, None]
            hw = 0.5 * (edges[1:] - edges[:-1])[:, None]
            z = (c + hw * _GL_X[None, :]).ravel()
            w = (hw * _GL_W[None, :]).ravel()
            log_terms.append(np.logaddexp.reduce(np.log(w) + self.U(z) + self.log_j_up(z)))
        return float(np.logaddexp.reduce(log_terms))


class _MirroredSlice(_Slice):
    """The slice reflected through x = 0 (the sharp branch on the right)."""

    def __init__(self, p: TwoValleyParams, y: float, delta_s: float, kind: str) -> None:
        fl = _branch(p, y, delta_s, FLAT, kind)
        sh = _branch(p, y, delta_s, SHARP, kind)
        self.right = _Branch(sh.D, sh.v, -sh.mu, sh.beta, sh.log_mass)
        self.left = _Branch(fl.D, fl.v, -fl.mu, fl.beta, fl.log_mass)


def mfpt_slice(p: TwoValleyParams, y: float, delta_s: float, x_start: float, a: float,
               kind: str = "hessian") -> float:
    return math.exp(log_mfpt_slice(p, y, delta_s, x_start, a, kind))


def discrete_shift(p: TwoValleyParams, y: float, delta_s: float, eta: float, approach_basin: int,
                   kind: str = "hessian") -> float:
    """Leading-order shift of the absorbing point for a walker observed every eta:
    BGK_BETA * sqrt(2 D eta), with D the diffusion on the side the walker approaches from."""
    return BGK_BETA * math.sqrt(2.0 * slice_diffusion(p, y, delta_s, approach_basin, kind) * eta)


def escape_mfpt(p: TwoValleyParams, y: float, delta_s: float, from_basin: int, eta: float = 0.0,
                kind: str = "hessian") -> float:
    """MFPT from the bottom of `from_basin` to the other basin. With eta > 0 the absorbing point
    is moved past x = 0 by discrete_shift (the walker is observed every eta); eta = 0 is the
    continuum value with the absorbing point at the cusp."""
    x_start = valley_bottom(p, y, from_basin)
    shift = discrete_shift(p, y, delta_s, eta, from_basin, kind) if eta > 0 else 0.0
    a = shift if from_basin == SHARP else -shift
    return mfpt_slice(p, y, delta_s, x_start, a, kind)


def log_kramers_rate(p: TwoValleyParams, y: float, delta_s: float, basin: int) -> float:
    """Large-barrier escape rate out of `basin` (hessian noise): sqrt(2 dL/(pi D_S f)) e^{-dL f/(2 D_S)}."""
    dl, f = two_valley_depth(p, y), f_branch(p, y, basin)
    return 0.5 * math.log(2.0 * dl / (math.pi * delta_s * f)) - dl * f / (2.0 * delta_s)


def kramers_rate(p: TwoValleyParams, y: float, delta_s: float, basin: int) -> float:
    return math.exp(log_kramers_rate(p, y, delta_s, basin))


def log_mfpt_erfi_approx(p: TwoValleyParams, y: float, delta_s: float, basin: int) -> float:
    """The paper's closed form (pi/2) f_i erfi(sqrt(dL f_i/(2 Delta_S)))."""
    dl, f = two_valley_depth(p, y), f_branch(p, y, basin)
    return math.log(0.5 * math.pi * f) + log_erfi(math.sqrt(dl * f / (2.0 * delta_s)))


def mfpt_erfi_approx(p: TwoValleyParams, y: float, delta_s: float, basin: int) -> float:
    return math.exp(log_mfpt_erfi_approx(p, y, delta_s, basin))


def barrier_exponent(p: TwoValleyParams, y: float, delta_s: float, basin: int) -> float:
    """beta_i = dL f_i / (2 Delta_S): the Arrhenius exponent of the escape out of basin i."""
    return two_valley_depth(p, y) * f_branch(p, y, basin) / (2.0 * delta_s)


# ---- The discrete-time chain itself ---------------------------------------------------------------
def discrete_chain_p_flat(p: TwoValleyParams, y: float, delta_s: float, eta: float,
                         kind: str = "hessian") -> float:
    """P_flat of the exact stationary distribution of the discrete walk on the slice,
        x' = x - eta L'(x) + sqrt(2 D(x) eta) z,
    which is what a simulation at time step eta converges to. It differs from the Ito value
    (p_flat_slice) by O(sqrt(eta)) from the cusp at x = 0 (~1 % at eta = 1e-3 on the slice y = 40).
    The grid solution (O(h^2) error) is extrapolated from 4 and 8 cells per step sd, as in
    tests/test_protocols.cpp."""
    coarse = _discrete_chain_p_flat_grid(p, y, delta_s, eta, kind, 4.0)
    fine = _discrete_chain_p_flat_grid(p, y, delta_s, eta, kind, 8.0)
    return fine + (fine - coarse) / 3.0


def _discrete_chain_p_flat_grid(p: TwoValleyParams, y: float, delta_s: float, eta: float, kind: str,
                                points_per_step: float, width_sd: float = 9.0) -> float:
    """The chain on a grid: cells of width h = step sd / points_per_step, one cell edge at x = 0,
    width_sd well widths beyond each bottom; pi (P - I) = 0 solved densely."""
    fl = _branch(p, y, delta_s, FLAT, kind)
    sh = _branch(p, y, delta_s, SHARP, kind)
    h = math.sqrt(2.0 * min(fl.D, sh.D) * eta) / points_per_step
    lo = sh.mu - width_sd * math.sqrt(sh.v)
    hi = fl.mu + width_sd * math.sqrt(fl.v)
    n_left, n_right = int(math.ceil(-lo / h)), int(math.ceil(hi / h))
    edges = h * np.arange(-n_left, n_right + 1, dtype=float)
    x = 0.5 * (edges[1:] + edges[:-1])
    n = len(x)
    D = np.where(x >= 0, fl.D, sh.D)
    mean = x - eta * loss_dx(p, x, y)
    sd = np.sqrt(2.0 * D * eta)
    erf = np.frompyfunc(math.erf, 1, 1)
    P = np.zeros((n, n))
    half = int(math.ceil(8.0 * sd.max() / h)) + 2
    for i in range(n):
        c = int((mean[i] - edges[0]) / h)
        j0, j1 = max(0, c - half), min(n, c + half)
        cdf = 0.5 * (1.0 + erf((edges[j0:j1 + 1] - mean[i]) / (math.sqrt(2.0) * sd[i])).astype(float))
        row = np.diff(cdf)
        P[i, j0:j1] = row / row.sum()
    # pi (P - I) = 0 with sum(pi) = 1: replace one equation (at the flat bottom) by the norm.
    a = (P - np.eye(n)).T
    k = int(np.argmin(np.abs(x - fl.mu)))
    a[k, :] = 1.0
    b = np.zeros(n)
    b[k] = 1.0
    pi = np.linalg.solve(a, b)
    return float(pi[x >= 0].sum())


_GL8_X, _GL8_W = np.polynomial.legendre.leggauss(8)


def _step_variance(p: TwoValleyParams, y: float, delta_s: float, eta: float, basin: int, kind: str,
                   epsilon: float) -> float:
    """eta^2 Var xi on the branch `basin`: Var xi = 2 sigma k + eps (hessian), 2 sigma k^2 + eps
    (hessian_squared), 2 sigma (isotropic), with k = 2/f the branch's curvature and
    sigma = Delta_S/eta."""
    sigma, k = delta_s / eta, 2.0 / f_branch(p, y, basin)
    if kind == "hessian":
        var = 2.0 * sigma * k + epsilon
    elif kind == "hessian_squared":
        var = 2.0 * sigma * k * k + epsilon
    elif kind == "isotropic":
        var = 2.0 * sigma
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    return eta * eta * var


_ERFC = np.frompyfunc(math.erfc, 1, 1)


@dataclass
class _KilledChain:
    """The Nystrom chain of escape_rate_chain after its GTH elimination, in band storage: entry
    (i, j), |i - j| <= r, at flat[i*(width - 1) + j + r]; below the diagonal the multipliers
    F_ik = K_ik / pivot_k, above it the eliminated rows U_kj (the moves of the censored chain)."""

    u: np.ndarray  # nodes, in u = x (sharp) or -x (flat)
    w: np.ndarray  # their Gauss-Legendre weights
    escape: np.ndarray  # e_i = P(u' >= b | u_i)
    r: int
    flat: np.ndarray
    pivot: np.ndarray  # e_k + the moves out of k to the right, after eliminating 0..k-1
    k: float  # the own branch: curvature, bottom (in u) and step sd
    bottom: float
    s: float
    sign: float  # u = sign * x

    @property
    def n(self) -> int:
        return len(self.u)

    @property
    def width(self) -> int:
        return 2 * self.r + 1


def _killed_chain(p: TwoValleyParams, y: float, delta_s: float, from_basin: int, eta: float,
                  kind: str, epsilon: float, absorb_at: float, nodes_per_sd: float,
                  width_sd: float) -> _KilledChain:
    """The chain in the coordinate u = x (sharp) or -x (flat), so that the walker lives at u < b,
    b = absorb_at, and is absorbed at u' >= b: its Nystrom discretisation (see escape_rate_chain)
    and the banded GTH elimination of I - K."""
    sign = 1.0 if from_basin == SHARP else -1.0
    other = FLAT if from_basin == SHARP else SHARP
    # Branch constants in u: mean m(u) = u - eta k (u - bottom), sd s; the own branch is u < 0.
    own = (2.0 / f_branch(p, y, from_basin), -0.5 * g_branch(p, y, from_basin),
           math.sqrt(_step_variance(p, y, delta_s, eta, from_basin, kind, epsilon)))
    far = (2.0 / f_branch(p, y, other), 0.5 * g_branch(p, y, other),
           math.sqrt(_step_variance(p, y, delta_s, eta, other, kind, epsilon)))
    k, bottom, s = own
    if not 0.0 < eta * k < 2.0:
        raise ValueError("escape_rate_chain: unstable step (eta k outside (0, 2))")
    b = float(absorb_at)
    if b < 0.0:
        raise ValueError("escape_rate_chain: absorb_at must be >= 0 (at or past the ridge)")
    well_sd = s / math.sqrt(eta * k * (2.0 - eta * k))  # the discrete stationary sd
    # Down to where every live node's step can land (with eta k > 1 a step overshoots the bottom
    # by |1 - eta k| times its distance), so that each row of the kernel has nodes to land on.
    far_drop = max(abs(1.0 - eta * k) * (b - bottom), abs(1.0 - eta * far[0]) * abs(b - far[1]))
    lo = min(bottom - width_sd * well_sd, bottom - far_drop - 12.0 * max(s, far[2]))
    # Gauss-Legendre panels of about 8/nodes_per_sd step sds, with an edge at the ridge u = 0.
    pieces = [(lo, 0.0)] + ([(0.0, b)] if b > 0.0 else [])
    nodes, weights = [], []
    for a, c in pieces:
        step_sd = s if a < 0.0 else far[2]
        panels = max(1, math.ceil((c - a) * nodes_per_sd / (8.0 * step_sd)))
        edges = np.linspace(a, c, panels + 1)
        mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
        nodes.append((mid[:, None] + half[:, None] * _GL8_X).ravel())
        weights.append((half[:, None] * _GL8_W).ravel())
    u, w = np.concatenate(nodes), np.concatenate(weights)
    n = len(u)
    on_own = u < 0.0
    mean = np.where(on_own, u - eta * k * (u - bottom), u - eta * far[0] * (u - far[1]))
    sd = np.where(on_own, s, far[2])
    # Escape e_i = P(u' >= b) and the mass that stays, P(u' < b), both from erfc (no 1 - e).
    z = (b - mean) / (math.sqrt(2.0) * sd)
    escape = 0.5 * np.asarray(_ERFC(z), dtype=float)
    stay = 0.5 * np.asarray(_ERFC(-z), dtype=float)
    # Band: the nodes within 12 sd of each mean (the Gaussian is below e^-72 of its peak outside).
    first = np.searchsorted(u, mean - 12.0 * sd)
    last = np.searchsorted(u, mean + 12.0 * sd) - 1
    r = int(max(np.max(np.arange(n) - first), np.max(last - np.arange(n)), 1))
    width = 2 * r + 1
    # Band storage, padded by r rows and columns: entry (i, j) at flat index i*(width-1) + j + r.
    cols = np.arange(n)[:, None] + np.arange(-r, r + 1)[None, :]
    inside = (cols >= 0) & (cols < n)
    cj = np.clip(cols, 0, n - 1)
    t = (u[cj] - mean[:, None]) / sd[:, None]
    band = np.where(inside & (np.abs(t) <= 12.0), w[cj] * np.exp(-0.5 * t * t), 0.0)
    # Rows rescaled to the exact mass that stays (the quadrature's small error goes to where the
    # walker lands, the mass below lo stays in the chain), then the diagonal left out: the GTH
    # elimination never uses it (a pivot is e_k + the moves out of k to the right).
    # A row with no node near its mean: a step that (nearly) surely escapes (a large eta k
    # throws it past b) keeps a row of zeros (its < 1e-20 of staying mass is dropped); any other
    # lands off the grid, which this grid cannot solve.
    sums = band.sum(axis=1)
    empty = ~(sums > 0.0)
    if np.any(empty & (stay > 1e-20)):
        raise ValueError("escape_rate_chain: a step lands outside the grid (raise width_sd)")
    band *= np.divide(stay, sums, out=np.zeros(n), where=~empty)[:, None]
    band[:, r] = 0.0
    flat = np.zeros((n + r + 1) * width)
    flat[:n * width] = band.ravel()
    esc = escape.copy()
    pivot = np.empty(n)
    di = np.arange(1, r + 1)
    block = di[:, None] * (width - 1) + di[None, :] + r  # rows k+1..k+r, columns k+1..k+r
    below = di * (width - 1) + r  # entries (k + di, k)
    right = di + r  # entries (k, k + di)
    for kk in range(n):
        base = kk * width
        upper = flat[base + right]
        pivot[kk] = esc[kk] + upper.sum()
        f = flat[base + below] / pivot[kk]
        flat[base + below] = f
        flat[base + block] += f[:, None] * upper[None, :]
        esc[kk + 1:kk + 1 + r] += f[:n - kk - 1] * esc[kk]
    # The diagonal slots collected fill that is never read.
    return _KilledChain(u, w, escape, r, flat, pivot, k, bottom, s, sign)


def _left_solve(c: _KilledChain, rhs: np.ndarray) -> np.ndarray:
    """x (I - K) = rhs with the GTH factors (I - F)(diag(pivot) - U): positive terms only."""
    n, r, width, flat, pivot = c.n, c.r, c.width, c.flat, c.pivot
    zz = np.zeros(n + r)
    offs = np.arange(1, r + 1)
    # z_j = (rhs_j + sum_{k<j} z_k U_kj) / s_j; U_kj at k*(width-1) + j + r.
    for j in range(n):
        ks = j - offs
        ok = ks >= 0
        acc = rhs[j] + (zz[ks[ok]] @ flat[ks[ok] * (width - 1) + j + r] if ok.any() else 0.0)
        zz[j] = acc / pivot[j]
    x = np.zeros(n + r)
    # x_k = z_k + sum_{i>k} x_i F_ik; F_ik at i*(width-1) + k + r.
    rows = np.arange(1, r + 1)
    for kk in range(n - 1, -1, -1):
        i = kk + rows
        x[kk] = zz[kk] + x[i] @ flat[i * (width - 1) + kk + r]
    return x[:n]


def escape_rate_chain(p: TwoValleyParams, y: float, delta_s: float, from_basin: int, eta: float,
                      kind: str = "hessian", epsilon: float = 1e-8, absorb_at: float = 0.0,
                      nodes_per_sd: float = 4.0, width_sd: float = 10.0) -> float:
    """Escape rate per unit time (escape probability per step / eta) of the quasi-stationary
    distribution of the discrete walk on the slice, killed on reaching the other basin:

        x' ~ N(x - eta L'(x, y), eta^2 Var xi(x)),   Var xi = 2 sigma L'' + epsilon (hessian),
        2 sigma L''^2 + epsilon (hessian_squared), 2 sigma (isotropic), sigma = Delta_S / eta,

    on the branch of x, from `from_basin` (SHARP: alive at x < 0, absorbed at x' >= absorb_at; FLAT
    the mirror, absorbed at x' <= -absorb_at). This is the rate a long-lived ensemble in the basin
    escapes at, the one FFS measures (flux times crossing probabilities); the chain itself, not a
    diffusion, so it needs no discrete-observation shift (escape_mfpt's is first order in
    sqrt(eta) and 7-10 % off at beta = 30-54 on the example slice).

    How: the quasi-stationary density nu solves rho nu(x') = integral nu(x) K(x, x') dx over the
    live side, K the Gaussian step density. Both nu and K are analytic in x' (the kink at x = 0 is
    in the source point, and sits on a panel edge), so a Nystrom discretisation on Gauss-Legendre
    panels (8 nodes per 8/nodes_per_sd step sds, from width_sd stationary sds below the bottom)
    converges exponentially, unlike the O(h^2) cells of host/rare_events/exact_chain.cpp. As
    there, nothing is computed as 1 - (something near 1), so tiny rates stay accurate (checked
    against the C++ chain down to 1e-87 per step): the escape e_i = P(x' crosses) and the mass
    that stays come from erfc, each row of node-to-node moves is scaled to the mass that stays,
    the diagonal is never formed (Grassmann-Taksar-Heyman elimination, banded: a pivot is e_k
    plus the moves out of k), and 1 - rho comes from inverse iteration nu <- nu (I - K)^-1
    (positive terms only) as sum nu_i e_i / sum nu_i. python/tests/test_theory.py checks it
    against host/rare_events/exact_chain.cpp; about 0.05 s per rate.
    """
    c = _killed_chain(p, y, delta_s, from_basin, eta, kind, epsilon, absorb_at, nodes_per_sd,
                      width_sd)
    # Start from the well's stationary Gaussian; each iteration multiplies the error by ~ the
    # escape rate over the well's relaxation rate (< 0.02 per step at beta >= 4).
    nu = c.w * np.exp(-0.5 * (c.u - c.bottom) ** 2 * (eta * c.k * (2.0 - eta * c.k)) / (c.s * c.s))
    previous = 0.0
    for _ in range(200):
        nu = _left_solve(c, nu / nu.sum())
        rate = float(nu @ c.escape / nu.sum())
        if abs(rate - previous) <= 1e-13 * rate:
            break
        previous = rate
    return rate / eta


def stable_tail_constant(alpha: float) -> float:
    """C_alpha = Gamma(alpha) sin(pi alpha / 2) / pi: P(S > x) -> C_alpha x^-alpha for the standard
    symmetric alpha-stable law (E exp(itS) = exp(-|t|^alpha); include/sgdwalk/stable.hpp)."""
    return math.gamma(alpha) * math.sin(math.pi * alpha / 2) / math.pi


def levy_jump_rate(alpha: float, delta_s: float, distance: float) -> float:
    """Small-noise escape rate (per unit time) of a walker with isotropic alpha-stable noise that
    sits at a well's bottom, `distance` from the barrier: one jump of eta^(1/alpha) s S beyond it,
    s = sqrt(Delta_S), so C_alpha s^alpha distance^-alpha, whatever the barrier's height
    (docs/MODEL.md section 3; checked by StableExit in tests/test_physics_validation.cpp)."""
    return stable_tail_constant(alpha) * math.sqrt(delta_s) ** alpha * distance ** -alpha
