"""python/sgdwalk/plot/theory.py against the C++ theory (host/analysis/theory.cpp).

theory_reference.csv holds values computed by host/analysis/theory.cpp; tests/test_protocols.cpp
(TheoryTable.PythonReferenceTableMatchesTheCppTheory) checks that the table still matches the C++
code, and this test checks the python port against the same table.

    PYTHONPATH=python /usr/bin/python3 -m unittest discover -s python/tests -v
"""

import csv
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sgdwalk.plot import theory as t  # noqa: E402

TABLE = os.path.join(os.path.dirname(__file__), "theory_reference.csv")
P = t.TwoValleyParams()


def python_value(row):
    f, kind = row["function"], row["kind"] or "hessian"
    y, d, a, b = (float(row[k]) for k in ("y", "delta_s", "a", "b"))
    if f == "p_flat_hessian_ito":
        return t.p_flat_hessian_ito(P, y, d)
    if f == "p_flat_isotropic":
        return t.p_flat_isotropic(P, y, d)
    if f == "p_flat_slice":
        return t.p_flat_slice(P, y, d, kind)
    if f == "log_slice_density":
        return float(t.log_slice_density(P, y, d, a, kind))
    if f == "slice_bin_probability":
        return t.slice_bin_probability(P, y, d, a, b, kind)
    if f == "effective_potential_slice":
        return float(t.effective_potential_slice(P, y, d, a))
    if f == "effective_temperature":
        return t.effective_temperature(P, y, d)
    if f == "log_mfpt_slice":
        return t.log_mfpt_slice(P, y, d, a, b, kind)
    if f == "log_kramers_rate":
        return t.log_kramers_rate(P, y, d, int(a))
    if f == "log_mfpt_erfi_approx":
        return t.log_mfpt_erfi_approx(P, y, d, int(a))
    if f == "loss":
        return float(t.loss(P, a, y))
    if f == "two_valley_depth":
        return t.two_valley_depth(P, y)
    if f == "discrete_chain_p_flat":
        return t.discrete_chain_p_flat(P, y, d, a, kind)
    raise KeyError(f)


class TheoryMatchesCpp(unittest.TestCase):
    def test_every_row_of_the_reference_table(self):
        with open(TABLE) as f:
            rows = list(csv.DictReader(f))
        self.assertGreater(len(rows), 100)
        functions = set()
        for row in rows:
            expected = float(row["value"])
            got = python_value(row)
            functions.add(row["function"])
            # ln T and ln k are compared absolutely (= relative error of T and k).
            tol = 1e-9 * max(1.0, abs(expected))
            with self.subTest(**row):
                self.assertTrue(math.isfinite(got))
                self.assertLessEqual(abs(got - expected), tol, f"python {got!r} vs C++ {expected!r}")
        self.assertGreaterEqual(len(functions), 12)


class TheoryFacts(unittest.TestCase):
    """Facts from the reference, independent of the C++ table."""

    def test_levy_jump_rate_is_the_stable_tail_beyond_the_barrier(self):
        # Cauchy (alpha = 1): P(S > x) = atan(1/x)/pi -> 1/(pi x), so the rate is s/(pi d).
        self.assertAlmostEqual(t.stable_tail_constant(1.0), 1 / math.pi, places=15)
        self.assertAlmostEqual(t.levy_jump_rate(1.0, 4e-4, 0.2), 0.02 / (math.pi * 0.2),
                               places=15)
        # alpha = 1.5: C = Gamma(1.5) sin(3 pi/4)/pi = sqrt(pi)/2 * sqrt(2)/2 / pi.
        c = math.sqrt(math.pi) / 2 * math.sqrt(2) / 2 / math.pi
        self.assertAlmostEqual(t.levy_jump_rate(1.5, 0.01, 2.0), c * 0.1 ** 1.5 / 2 ** 1.5,
                               places=15)

    def test_isotropic_p_flat_is_the_root_gamma_share(self):
        for y in (1.0, 5.0, 40.0):
            for d in (1e-3, 0.05, 1.0):
                self.assertAlmostEqual(t.p_flat_isotropic(P, y, d), 0.8 / 1.45, places=12)

    def test_reference_erfi_deviation_at_y5(self):
        # The paper's erfi form is 5.1 % (flat) and 10.9 % (sharp) off the exact MFPT at y = 5,
        # Delta_S = 0.002 (reference section 5).
        for basin, deviation in ((t.FLAT, 0.051), (t.SHARP, 0.109)):
            exact = t.escape_mfpt(P, 5.0, 0.002, basin)
            approx = t.mfpt_erfi_approx(P, 5.0, 0.002, basin)
            self.assertAlmostEqual(1 - exact / approx, deviation, delta=0.001)

    def test_effective_potential_is_root_gamma_times_the_loss_per_side(self):
        y, d = 40.0, 0.03
        xs = [-0.6, -0.4, -0.2, -0.05]
        u = t.effective_potential_slice(P, y, d, xs)
        shape = t.effective_potential_shape(P, y, xs)
        diffs = u - shape
        self.assertLess(max(diffs) - min(diffs), 1e-12)
        xs = [0.05, 0.3, 0.5, 0.9]
        diffs = t.effective_potential_slice(P, y, d, xs) - t.effective_potential_shape(P, y, xs)
        self.assertLess(max(diffs) - min(diffs), 1e-12)

    def test_density_is_normalised_and_d_times_p_is_continuous(self):
        y, d = 5.0, 0.01
        total = sum(t.slice_bin_probability(P, y, d, lo, lo + 0.01)
                    for lo in [i * 0.01 - 2.0 for i in range(400)])
        self.assertAlmostEqual(total, 1.0, places=9)
        left = t.slice_density(P, y, d, -1e-12) * t.slice_diffusion(P, y, d, t.SHARP)
        right = t.slice_density(P, y, d, 0.0) * t.slice_diffusion(P, y, d, t.FLAT)
        self.assertAlmostEqual(float(left / right), 1.0, places=9)


def nystrom_chain_p_flat(y, delta_s, eta, panels_per_sd=0.5, order=8):
    """P_flat of the stationary density of the discrete walk on the slice, by another method than
    theory.discrete_chain_p_flat (a cell grid extrapolated in its width): a Nyström solution of
    pi(x') = integral pi(x) K(x, x') dx with Gauss-Legendre panels (8 nodes, half a step sd wide,
    split at the cusp x = 0), K the Gaussian density of x' = x - eta L'(x) + sqrt(2 D(x) eta) z."""
    import numpy as np
    f_flat, f_sharp = t.f_branch(P, y, t.FLAT), t.f_branch(P, y, t.SHARP)
    d_flat = t.slice_diffusion(P, y, delta_s, t.FLAT)
    d_sharp = t.slice_diffusion(P, y, delta_s, t.SHARP)
    sd_flat, sd_sharp = math.sqrt(2 * d_flat * eta), math.sqrt(2 * d_sharp * eta)
    lo = t.valley_bottom(P, y, t.SHARP) - 10 * math.sqrt(f_sharp * d_sharp / 2)
    hi = t.valley_bottom(P, y, t.FLAT) + 10 * math.sqrt(f_flat * d_flat / 2)
    nodes, weights = np.polynomial.legendre.leggauss(order)
    width = min(sd_flat, sd_sharp) / panels_per_sd
    xs, ws = [], []
    for a, b in ((lo, 0.0), (0.0, hi)):
        edges = np.linspace(a, b, int(math.ceil((b - a) / width)) + 1)
        mid, half = (edges[:-1] + edges[1:]) / 2, (edges[1:] - edges[:-1]) / 2
        xs.append((mid[:, None] + half[:, None] * nodes).ravel())
        ws.append((half[:, None] * weights).ravel())
    x, w = np.concatenate(xs), np.concatenate(ws)
    mean = x - eta * np.asarray(t.loss_dx(P, x, y))
    sd = np.where(x >= 0, sd_flat, sd_sharp)
    kernel = np.exp(-0.5 * ((x[None, :] - mean[:, None]) / sd[:, None]) ** 2) / (
        math.sqrt(2 * math.pi) * sd[:, None])
    system = (w[:, None] * kernel).T - np.eye(len(x))
    system[0, :] = w  # normalisation in place of one (redundant) balance equation
    rhs = np.zeros(len(x))
    rhs[0] = 1
    density = np.linalg.solve(system, rhs)
    return float((w * density)[x >= 0].sum() / (w * density).sum())


class DiscreteChainIndependently(unittest.TestCase):
    """The exact discrete chain's P_flat, which the C++ tests pin as a regression value of one
    method (tests/test_protocols.cpp, DiscreteChain), against a Nyström solution."""

    def test_grid_and_nystrom_solutions_agree(self):
        for y, d, eta in ((40.0, 0.04, 1e-3), (5.0, 0.01, 5e-4)):
            with self.subTest(y=y, delta_s=d, eta=eta):
                nystrom = nystrom_chain_p_flat(y, d, eta)
                # Converged: panels 25 % wider change it by < 1e-9.
                self.assertAlmostEqual(nystrom, nystrom_chain_p_flat(y, d, eta, 0.4), delta=1e-9)
                # The grid's extrapolation leaves ~1e-6.
                self.assertAlmostEqual(t.discrete_chain_p_flat(P, y, d, eta), nystrom, delta=1e-5)
        # The gap to the Ito value that tests/test_protocols.cpp pins at 0.00756 (± 0.0004).
        gap = t.p_flat_slice(P, 40.0, 0.04) - nystrom_chain_p_flat(40.0, 0.04, 1e-3)
        self.assertAlmostEqual(gap, 0.00756, delta=2e-5)


class EscapeRateChain(unittest.TestCase):
    """escape_rate_chain, the theory column of the FFS Arrhenius table (docs/VALIDATION.md §10)."""

    # examples/ffs_sharp_to_flat.toml at three of its Delta_S (y = 5, dt = 5e-4, hessian noise,
    # from the sharp valley to x >= 0): the rates per unit time of host/rare_events/exact_chain.cpp
    # (cells, not Nystrom panels; quasi_stationary_escape_extrapolated from widths s/16 and s/32,
    # whose O(h^4) remainder is ~3e-5: the chain of tests/test_ffs.cpp's FfsExactSlice at these
    # parameters, computed 2026-12-06). tests/test_ffs.cpp (ExactChain.SliceRatesOfThePython...)
    # checks this module's values against the same C++ chain at s/8 on every run.
    CPP_RATES = ((0.001066967646023352, 1.40900707e-01),
                 (0.00018973665961010246, 2.40670086e-09),
                 (8.0011285929799318e-05, 9.64853399e-23))

    def test_the_example_slice_against_the_cpp_chain(self):
        for delta_s, rate in self.CPP_RATES:
            with self.subTest(delta_s=delta_s):
                value = t.escape_rate_chain(P, 5.0, delta_s, t.SHARP, 5e-4)
                self.assertAlmostEqual(value / rate, 1.0, delta=1e-4)
                # Converged in the panels: 50 % more nodes per step sd change it by < 1e-9.
                finer = t.escape_rate_chain(P, 5.0, delta_s, t.SHARP, 5e-4, nodes_per_sd=6.0)
                self.assertAlmostEqual(finer / value, 1.0, delta=1e-9)

    def test_large_steps_stay_finite_and_converged(self):
        # eta k from 0.46 to 1.95: steps that overshoot the bottom, or jump past the ridge from
        # far out (those rows escape surely); once NaN from rows with no node to land on.
        for d, basin, eta, b in ((1e-5, t.SHARP, 0.2, 0.01), (1e-5, t.FLAT, 0.2, 0.01),
                                 (0.05, t.SHARP, 0.2, 0.0), (0.01, t.SHARP, 0.21, 0.0),
                                 (0.01, t.SHARP, 0.05, 0.0)):
            with self.subTest(delta_s=d, basin=basin, eta=eta, absorb_at=b):
                value = t.escape_rate_chain(P, 5.0, d, basin, eta, absorb_at=b)
                self.assertTrue(math.isfinite(value) and value > 0)
                wider = t.escape_rate_chain(P, 5.0, d, basin, eta, absorb_at=b, width_sd=14.0)
                finer = t.escape_rate_chain(P, 5.0, d, basin, eta, absorb_at=b, nodes_per_sd=6.0)
                self.assertAlmostEqual(wider / value, 1.0, delta=1e-9)
                self.assertAlmostEqual(finer / value, 1.0, delta=1e-9)
        with self.assertRaises(ValueError):  # eta k >= 2: no stationary state
            t.escape_rate_chain(P, 5.0, 0.01, t.SHARP, 0.25)

    def test_mirror_and_arrhenius_limit(self):
        # From the flat valley at a high barrier the rate approaches Kramers' from below by its
        # 1/(2 beta) corrections, and the two basins' rates differ by their barriers.
        d = 2e-4
        flat = t.escape_rate_chain(P, 5.0, d, t.FLAT, 5e-4)
        sharp = t.escape_rate_chain(P, 5.0, d, t.SHARP, 5e-4)
        self.assertLess(flat, sharp)
        for basin, rate in ((t.FLAT, flat), (t.SHARP, sharp)):
            ratio = rate / t.kramers_rate(P, 5.0, d, basin)
            self.assertGreater(ratio, 0.5)
            self.assertLess(ratio, 1.0)


if __name__ == "__main__":
    unittest.main()
