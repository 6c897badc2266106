"""End-to-end: a tiny forward-flux-sampling run -> the Arrhenius figure and table.

Needs the sgdwalk CLI ($SGDWALK_CLI or build*/sgdwalk); skipped otherwise.
"""

import math
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sgdwalk.plot import rare_events  # noqa: E402
from test_plot import find_cli  # noqa: E402

CONFIG = """
[run]
name = "ffs_tiny"
walkers = 32
steps = 3000
seed = 5
[landscape]
kind = "two_valley_slice"
y = 5.0
[dynamics]
noise = "hessian"
dt = 0.0005
temperature = 0.001
[init]
positions = [[-0.09285714285714286]]
[rare_event]
method = "ffs"
lambda_A = -0.085
lambda_0 = -0.075
lambda_B = 0.0
trials = 100
replicas = 2
[sweep]
temperature = [0.0006, 0.001]
"""

# The full 2-D landscape: FFS and a brute-force first-passage run over the same window.
CONFIG_2D = """
[run]
name = "ffs_tiny_2d"
walkers = 32
steps = 2000
seed = 5
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
dt = 0.0005
temperature = 0.001
[init]
positions = [[-0.09285714285714286, 5.0]]
[sweep]
temperature = [0.0008, 0.001]
"""
FFS_2D = """
[rare_event]
method = "ffs"
lambda_A = -0.085
lambda_0 = -0.075
lambda_B = 0.0
trials = 100
replicas = 2
"""
BRUTE_2D = """
[observables.first_passage]
target = "flat"
"""


class ArrheniusTest(unittest.TestCase):
    def test_figure_and_table_from_an_ffs_run(self):
        cli = find_cli()
        if cli is None:
            self.skipTest("no sgdwalk CLI")
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "ffs.toml")
            with open(config, "w") as f:
                f.write(CONFIG)
            run = os.path.join(tmp, "run")
            subprocess.run([cli, "run", config, "--out", run, "--backend", "cpu", "-q"],
                           check=True)
            table = rare_events.arrhenius(run, None, tmp, ["png"], quiet=True)
            self.assertTrue(os.path.exists(os.path.join(tmp, "ffs_tiny_arrhenius.png")))
            rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
            self.assertEqual(len(rows), 2)
            # Both rates are positive numbers, and the larger Delta_S escapes faster.
            rates = [float(r.split("|")[3].split("±")[0]) for r in rows]
            self.assertTrue(all(k > 0 for k in rates))
            self.assertGreater(rates[1], rates[0])

    def test_full_2d_table_has_brute_force_ratio_z_and_the_adiabatic_guide(self):
        cli = find_cli()
        if cli is None:
            self.skipTest("no sgdwalk CLI")
        with tempfile.TemporaryDirectory() as tmp:
            runs = {}
            for name, extra in (("ffs", FFS_2D), ("brute", BRUTE_2D)):
                config = os.path.join(tmp, name + ".toml")
                with open(config, "w") as f:
                    f.write(CONFIG_2D.replace("walkers = 32", "walkers = 400")
                            if name == "brute" else CONFIG_2D)
                    f.write(extra)
                runs[name] = os.path.join(tmp, name)
                subprocess.run([cli, "run", config, "--out", runs[name], "--backend", "cpu",
                                "-q"], check=True)
            table = rare_events.arrhenius(runs["ffs"], runs["brute"], tmp, ["png"], quiet=True)
            self.assertTrue(os.path.exists(os.path.join(tmp, "ffs_tiny_2d_arrhenius.png")))
            rows = [line.split("|") for line in table.splitlines()[2:] if line.startswith("|")]
            self.assertEqual(len(rows), 2)
            for r in rows:
                rate = float(r[3].split("±")[0])
                brute = float(r[6].split("±")[0])
                ratio, z = float(r[7]), float(r[8])
                guide, kramers = float(r[9]), float(r[11])
                self.assertGreater(rate, 0)
                self.assertAlmostEqual(ratio, rate / brute, delta=2e-3 * ratio)
                self.assertTrue(math.isfinite(z))
                # The guide: the shifted quadrature lies below the Kramers limit, and both fall
                # as the barrier grows along the window (beta at its start < at its end).
                self.assertLess(guide, kramers)
                b0, b1 = (float(b) for b in r[2].split("–"))
                self.assertLess(b0, b1)
            self.assertGreater(float(rows[1][9]), float(rows[0][9]))

    def test_window_rate_of_a_constant_rate_is_that_rate(self):
        path = [(0.1 * i, 5.0) for i in range(11)]
        self.assertAlmostEqual(rare_events.window_rate(lambda y: 0.7, path), 0.7, places=12)
        # A rate that grows along the window: the survival weight pulls the estimate below the
        # plain time average.
        path = [(0.1 * i, 5.0 + 0.1 * i) for i in range(11)]
        grow = rare_events.window_rate(lambda y: 2.0 * (y - 4.0), path)
        self.assertLess(grow, 3.0)
        self.assertGreater(grow, 2.0)

    def test_the_chain_column_only_where_the_chain_is_the_runs_oracle(self):
        # Plain SGD, Gaussian noise, constant rates, from the sharp valley to x >= lambda_B >= 0:
        # the chain escape_rate_chain solves. Anything else leaves its cells blank.
        plain = {"dynamics": {"noise": "hessian"},
                 "rare_event": {"order_parameter": "basin_distance", "lambda_B": 0.05}}
        self.assertEqual(rare_events._chain_absorbing_level(plain), 0.05)
        given = {"dynamics": {}, "rare_event": {"order_parameter": "x", "interfaces": [-0.1, 0.0]}}
        self.assertEqual(rare_events._chain_absorbing_level(given), 0.0)
        for dynamics, rare in (({"optimizer": "momentum"}, {}),
                               ({"noise_distribution": "alpha_stable"}, {}),
                               ({"learning_rate_schedule": {"kind": "exponential"}}, {}),
                               ({"noise_schedule": {"kind": "constant", "warmup_steps": 10}}, {}),
                               ({}, {"order_parameter": "loss"}),
                               ({}, {"lambda_B": -0.01})):
            with self.subTest(dynamics=dynamics, rare=rare):
                config = {"dynamics": dict(plain["dynamics"], **dynamics),
                          "rare_event": dict(plain["rare_event"], **rare)}
                self.assertIsNone(rare_events._chain_absorbing_level(config))


if __name__ == "__main__":
    unittest.main()
