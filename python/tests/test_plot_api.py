"""sgdwalk.plot's drawing functions: each takes a run directory (or a loaded run) and an optional
matplotlib axes, draws the run's numbers on it and returns it. Runs with Debian's python3 and the
Agg backend, without sgdwalk's compiled core (so `import sgdwalk.plot` must not need it).

    SGDWALK_CLI=build/sgdwalk PYTHONPATH=python MPLBACKEND=Agg /usr/bin/python3 -m unittest \\
        discover -s python/tests -p test_plot_api.py
"""

import os
import subprocess
import sys
import tempfile
import unittest

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import sgdwalk.plot as splot  # noqa: E402
from test_plot import find_cli  # noqa: E402

#: A 2 x 3 grid with samples and an x and an xy histogram: every drawing function has data.
CONFIG = """
[run]
name = "api"
walkers = 60
steps = 600
seed = 3
[dynamics]
learning_rate = 0.05
noise_strength = 0.05
[init]
positions = [[-0.01, 5.0], [0.01, 5.0]]
[observables]
sample_every = 100
[[observables.histogram]]
name = "band"
kind = "x"
x_range = [-4.0, 4.0]
bins = 16
y_band = [0.0, 30.0]
window = [200, 600]
every = 10
[[observables.histogram]]
name = "xy"
kind = "xy"
x_range = [-4.0, 4.0]
y_range = [0.0, 40.0]
bins = 8
y_bins = 4
window = [200, 600]
every = 10
[sweep]
noise_strength = [0.01, 0.05]
learning_rate = [0.05, 0.1, 0.2]
"""


@unittest.skipIf(find_cli() is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class PlotApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        config = os.path.join(cls.tmp.name, "api.toml")
        with open(config, "w") as f:
            f.write(CONFIG)
        cls.run_dir = os.path.join(cls.tmp.name, "run")
        subprocess.run([find_cli(), "run", config, "--out", cls.run_dir, "--backend", "cpu", "-q"],
                       check=True)
        cls.loaded = splot.load(cls.run_dir)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def tearDown(self):
        plt.close("all")

    def test_load_takes_a_directory_results_or_a_run(self):
        self.assertEqual(self.loaded.name, "api")
        self.assertIs(splot.load(self.loaded), self.loaded)

        class ResultsLike:  # what sgdwalk.Results offers to sgdwalk.plot: its directory
            directory = self.run_dir

        np.testing.assert_array_equal(splot.load(ResultsLike()).variants["p_flat"],
                                      self.loaded.variants["p_flat"])

    def test_phase_diagram_draws_the_grid_on_the_given_axes(self):
        fig, ax = plt.subplots()
        self.assertIs(splot.phase_diagram(self.run_dir, ax=ax), ax)
        mesh = ax.collections[0]
        # noise_strength (first swept, slowest) along x, learning_rate along y: cell [j, i].
        expected = self.loaded.variants["p_flat"].reshape(2, 3).T
        np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(3, 2), expected)
        self.assertIn("noise strength", ax.get_xlabel())
        self.assertIn("learning rate", ax.get_ylabel())
        self.assertEqual(len(fig.axes), 2)  # and its colour bar
        eta_tf = splot.phase_diagram(self.loaded, "mean_freezing_time", colorbar=False)
        values = np.asarray(eta_tf.collections[0].get_array()).reshape(3, 2)
        np.testing.assert_allclose(
            values, (self.loaded.eta * self.loaded.variants["mean_freezing_time"]).reshape(2, 3).T)

    def test_sweep_draws_one_curve_per_value_of_the_second_parameter(self):
        ax = splot.sweep(self.run_dir)
        lines = [container.lines[0] for container in ax.containers]  # errorbar's data lines
        self.assertEqual(len(lines), 3)  # one per learning rate
        p = self.loaded.variants["p_flat"].reshape(2, 3)
        for j, line in enumerate(lines):
            np.testing.assert_array_equal(line.get_xdata(), [0.01, 0.05])
            np.testing.assert_array_equal(line.get_ydata(), p[:, j])
        self.assertEqual(len(ax.get_legend().get_texts()), 3)

    def test_time_series_draws_the_samples_of_the_chosen_variants(self):
        fig, ax = plt.subplots()
        self.assertIs(splot.time_series(self.loaded, variants=[1, 4], ax=ax), ax)
        lines = [container.lines[0] for container in ax.containers]
        self.assertEqual(len(lines), 2)
        np.testing.assert_array_equal(lines[1].get_xdata(), self.loaded.samples["time"][4])
        np.testing.assert_array_equal(lines[1].get_ydata(), self.loaded.samples["p_flat"][4])
        ax = splot.time_series(self.loaded, "y_mean")
        self.assertEqual(len(ax.containers), 6)  # every variant (at most 8 by default)

    def test_histogram_draws_the_density_or_the_effective_potential(self):
        h = {h.name: h for h in self.loaded.histograms}
        ax = splot.histogram(self.loaded, "band", variant=2)
        np.testing.assert_array_equal(ax.patches[0].get_data()[0], h["band"].density[2])
        ax = splot.histogram(self.loaded, "band", variant=2, potential=True)
        with np.errstate(divide="ignore"):
            expected = -h["band"].temperature[2] * np.log(h["band"].density[2])
        expected[~np.isfinite(expected)] = np.nan  # empty bins: no potential drawn
        np.testing.assert_allclose(ax.patches[0].get_data()[0], expected)
        ax = splot.histogram(self.loaded, "xy", variant=5)
        drawn = np.ma.filled(ax.collections[0].get_array(), np.nan).reshape(4, 8)
        np.testing.assert_array_equal(drawn, h["xy"].density[5])

    def test_bad_requests_say_what_is_allowed(self):
        with self.assertRaisesRegex(ValueError, "quantity 'q' is not one of p_flat"):
            splot.sweep(self.loaded, "q")
        with self.assertRaisesRegex(ValueError, "no histogram 'none'; it has band, xy"):
            splot.histogram(self.loaded, "none")
        with self.assertRaisesRegex(IndexError, "allowed: 0 to 5"):
            splot.histogram(self.loaded, variant=6)

    def test_save_figures_writes_what_the_command_writes(self):
        out = os.path.join(self.tmp.name, "figures")
        written = splot.save_figures(self.run_dir, out, formats=["png"])
        names = sorted(os.path.basename(p) for p in written)
        self.assertIn("api_heatmaps.png", names)
        self.assertIn("api_heatmaps.md", names)
        self.assertIn("api_histogram_xy.png", names)
        self.assertTrue(all(os.path.getsize(p) > 0 for p in written))
        self.assertEqual(plt.get_fignums(), [])  # closed after saving


if __name__ == "__main__":
    unittest.main()
