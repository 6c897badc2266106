"""End-to-end: a tiny forward-flux-sampling run -> the Arrhenius figure and table.

Needs the sgdwalk CLI ($SGDWALK_CLI or build*/sgdwalk); skipped otherwise.
"""

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


if __name__ == "__main__":
    unittest.main()
