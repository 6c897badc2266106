"""End-to-end: tiny sgdwalk runs -> sgdwalk_plot figures and tables.

Needs the sgdwalk CLI: $SGDWALK_CLI, or build*/sgdwalk in the repository; skipped otherwise.
    SGDWALK_CLI=build/sgdwalk PYTHONPATH=python /usr/bin/python3 -m unittest discover -s python/tests
"""

import glob
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from sgdwalk_plot.__main__ import main as plot_main  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def find_cli():
    cli = os.environ.get("SGDWALK_CLI")
    if cli and os.path.exists(cli):
        return cli
    for candidate in sorted(glob.glob(os.path.join(ROOT, "build*", "sgdwalk"))):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


CONFIGS = {
    "grid": """
[run]
name = "grid"
walkers = 40
steps = 400
[dynamics]
learning_rate = 0.05
noise_strength = 0.05
[sweep]
learning_rate = { logspace = [-2, -1, 3] }
noise_strength = { logspace = [-2, -1, 3] }
""",
    "training": """
[run]
name = "training"
walkers = 40
steps = 600
[dynamics]
learning_rate = 0.05
noise_strength = 0.05
[init]
positions = [[-0.01, 1.0], [0.01, 1.0]]
[observables]
sample_every = 100
[sweep]
noise_strength = [0.01, 0.1]
""",
    "rates": """
[run]
name = "rates"
walkers = 200
steps = 2000
[landscape]
kind = "two_valley_slice"
y = 5.0
[dynamics]
dt = 0.001
temperature = 0.002
[init]
positions = [[-0.09285714285714286]]
[observables.first_passage]
target = "flat"
[sweep]
temperature = { logspace = [-2.7, -2.2, 3] }
""",
    "slice": """
[run]
name = "slice"
walkers = 300
steps = 2000
[landscape]
kind = "two_valley_slice"
y = 40.0
[dynamics]
dt = 0.001
temperature = 0.03
[init]
positions = [[-0.01], [0.01]]
[[observables.histogram]]
name = "x"
x_range = [-1.2, 1.4]
bins = 40
window = [1000, 2000]
every = 100
[sweep]
temperature = [0.03, 0.05]
""",
}

EXPECTED = {
    "grid": ["grid_heatmaps.png", "grid_vs_delta_s.png", "grid_heatmaps.md", "grid_trackers.png"],
    "training": ["training_sweep.png", "training_p_flat_along_training.png",
                 "training_trackers.png", "training_trackers.md"],
    "rates": ["rates_rates.png", "rates_rates.md", "rates_trackers.png"],
    "slice": ["slice_sweep.png", "slice_histogram_x.png", "slice_histogram_x.md"],
}


@unittest.skipIf(find_cli() is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class PlotRuns(unittest.TestCase):
    def test_figures_from_every_kind_of_run(self):
        cli = find_cli()
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in CONFIGS.items():
                config = os.path.join(tmp, name + ".toml")
                with open(config, "w") as f:
                    f.write(text)
                run = os.path.join(tmp, "run_" + name)
                subprocess.run([cli, "run", config, "--out", run, "--backend", "cpu", "-q"],
                               check=True)
                out = os.path.join(tmp, "fig_" + name)
                self.assertEqual(plot_main([run, "--out", out, "-q"]), 0)
                for expected in EXPECTED[name]:
                    path = os.path.join(out, expected)
                    with self.subTest(run=name, file=expected):
                        self.assertTrue(os.path.exists(path), sorted(os.listdir(out)))
                        if path.endswith(".png"):
                            self.assertLess(os.path.getsize(path), 300_000)
                            self.assertTrue(os.path.exists(path[:-4] + ".svg"))


@unittest.skipIf(find_cli() is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class TrackerDistributions(unittest.TestCase):
    def test_table_counts_every_walker_of_the_shown_variants(self):
        from sgdwalk.plot.figures import tracker_distributions
        from sgdwalk.plot.run import load_run
        cli = find_cli()
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "rates.toml")
            with open(config, "w") as f:
                f.write(CONFIGS["rates"])
            run_dir = os.path.join(tmp, "run")
            subprocess.run([cli, "run", config, "--out", run_dir, "--backend", "cpu", "-q"],
                           check=True)
            run = load_run(run_dir)
            figure = tracker_distributions(run)[0]
            lines = [line for line in figure.table.splitlines() if line.startswith("| ")][1:]
            self.assertEqual(len(lines), run.variant_count)
            for v, line in enumerate(lines):
                cells = [c.strip() for c in line.strip("|").split("|")]
                finite, arrived, censored = int(cells[1]), int(cells[2]), int(cells[3])
                # Every walker stays finite here; arrived + censored + started-in-target = all.
                self.assertEqual(finite, run.walkers)
                started = int(run.trackers["first_passage_started_in_target"][v])
                self.assertEqual(arrived + censored + started, run.walkers)


if __name__ == "__main__":
    unittest.main()
