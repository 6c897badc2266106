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


if __name__ == "__main__":
    unittest.main()
