"""Plots of real sweeps (issue 19): partial runs, diverged walkers, empty observables, every swept
parameter named, grids split into curves, nothing dropped silently, figure names that cannot
overwrite another run's, the overlay command, and P_flat at 1 with an exact interval.

Each test makes small runs with the sgdwalk CLI ($SGDWALK_CLI, or build*/sgdwalk; skipped
otherwise) and plots them:
    SGDWALK_CLI=build/sgdwalk PYTHONPATH=python /usr/bin/python3 -m unittest discover -s python/tests
"""

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from test_plot import find_cli  # noqa: E402

from sgdwalk_plot.__main__ import main as plot_main  # noqa: E402
from sgdwalk.plot.figures import figures_for  # noqa: E402
from sgdwalk.plot.run import load_run  # noqa: E402

CLI = find_cli()


def make_run(tmp, name, text, *extra, check=True):
    config = os.path.join(tmp, name + ".toml")
    with open(config, "w") as f:
        f.write(text)
    run = os.path.join(tmp, "run_" + name)
    result = subprocess.run([CLI, "run", config, "--out", run, "--backend", "cpu", "-q", *extra],
                            capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return run, result


def plot(*argv):
    """Runs the plotting CLI; returns (exit status, stdout + stderr)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = plot_main(list(argv))
        except SystemExit as stop:  # argparse's usage errors
            status = stop.code
    return status, out.getvalue()


def read(path):
    with open(path) as f:
        return f.read()


def title(figure):
    """A figure's title on one line (long lines are wrapped)."""
    return " ".join(figure.figure._suptitle.get_text().split())


def titles(figures):
    return {f.name: title(f) for f in figures}


def close(figures):
    import matplotlib.pyplot as plt
    for f in figures:
        plt.close(f.figure)


GRID_2X2 = """
[run]
name = "partial"
walkers = 40
steps = 400
[dynamics]
learning_rate = 0.05
noise_strength = 0.05
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 30
window = [200, 400]
every = 10
[sweep]
learning_rate = [0.02, 0.05]
noise_strength = [0.02, 0.05]
"""


def interrupted_run(tmp, name, wait_after_start):
    """A 4-variant run, one variant per batch, every backend call slowed by 50 ms (the CLI's test
    hook), stopped by SIGINT `wait_after_start` seconds after its run directory appeared.
    Returns (run directory, finished variants)."""
    config = os.path.join(tmp, name + ".toml")
    with open(config, "w") as f:
        f.write(GRID_2X2)
    run = os.path.join(tmp, name)
    process = subprocess.Popen(
        [CLI, "run", config, "--out", run, "--backend", "cpu", "--threads", "1", "-q",
         "--batch-walkers", "40", "--segment-steps", "50", "--checkpoint-every", "0"],
        env=dict(os.environ, SGDWALK_TEST_SEGMENT_DELAY_MS="50"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while not os.path.exists(os.path.join(run, "summary.json")) and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(wait_after_start)
    process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 130, output
    with open(os.path.join(run, "summary.json")) as f:
        summary = json.load(f)
    assert summary["partial"] is True
    return run, int(summary["progress"]["variants_done"])


@unittest.skipIf(CLI is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class PartialRuns(unittest.TestCase):
    def test_a_partial_run_plots_its_finished_variants_and_says_so(self):
        with tempfile.TemporaryDirectory() as tmp:
            # Each variant takes 8 calls of >= 50 ms: stop after about 1.5 variants, later if
            # this machine is slow, so that some but not all variants are finished.
            for attempt, wait in enumerate((0.6, 1.2, 2.4)):
                run_dir, done = interrupted_run(tmp, f"run{attempt}", wait)
                if 0 < done < 4:
                    break
            self.assertTrue(0 < done < 4, done)
            out = os.path.join(tmp, "figures")
            status, text = plot(run_dir, "--out", out)
            self.assertEqual(status, 0, text)
            note = f"partial run: {done} of 4 variants"
            self.assertIn(note, text)
            # Unfinished variants hold no deposits yet: that is not an empty histogram.
            self.assertNotIn("caught nothing", text)
            for name in ("partial_heatmaps", "partial_sweep", "partial_histogram_x",
                         "partial_trackers", "partial_p_flat_along_training"):
                with self.subTest(figure=name):
                    self.assertTrue(os.path.exists(os.path.join(out, name + ".png")), name)
            run = load_run(run_dir)
            figures = figures_for(run)
            for name, heading in titles(figures).items():
                with self.subTest(figure=name):
                    self.assertIn(note, heading)
            by_name = {f.name: f for f in figures}
            # The curves and the table hold exactly the finished variants.
            lines = by_name["partial_sweep"].table.splitlines()
            column = [c.strip() for c in lines[0].strip("|").split("|")].index("P_flat ± se")
            rows = [r for r in lines if re.match(r"\| [0-9]", r)]
            self.assertEqual(len(rows), done)
            for row in rows:
                self.assertRegex(row.strip("|").split("|")[column], r"^ 0\.[0-9]+ ± ")
            close(figures)

    def test_a_run_stopped_before_any_variant_finished_is_reported_not_plotted(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir, done = interrupted_run(tmp, "early", 0.0)
            self.assertEqual(done, 0)
            status, text = plot(run_dir, "--out", os.path.join(tmp, "figures"))
            self.assertEqual(status, 0, text)
            self.assertIn("partial run: 0 of 4 variants finished: nothing to plot yet", text)
            self.assertIn("sgdwalk resume", text)



class BadRunDirectories(unittest.TestCase):
    def test_a_missing_or_unstarted_run_directory_gets_a_clear_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            status, text = plot(os.path.join(tmp, "nothing"))
            self.assertEqual(status, 1)
            self.assertIn("no results.h5 (is", text)
            # Killed before its first checkpoint: config.toml and a partial summary.json only.
            stopped = os.path.join(tmp, "stopped")
            os.makedirs(stopped)
            with open(os.path.join(stopped, "summary.json"), "w") as f:
                json.dump({"partial": True}, f)
            status, text = plot(stopped)
            self.assertEqual(status, 1)
            self.assertIn("stopped before it wrote any results", text)
            self.assertIn("sgdwalk resume " + stopped, text)
            self.assertNotIn("Traceback", text)

BAD = """
[run]
name = "bad"
walkers = 40
steps = 400
[dynamics]
learning_rate = 0.05
noise_strength = 0.05
[observables.first_passage]
coordinate = 1
above = 1000.0
[[observables.histogram]]
name = "far"
x_range = [10.0, 20.0]
bins = 10
window = [200, 400]
[sweep]
learning_rate = [0.02, 0.05, 5.0]
"""


@unittest.skipIf(CLI is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class DivergedAndEmpty(unittest.TestCase):
    def test_diverged_walkers_empty_histograms_and_unreached_targets_are_said(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir, result = make_run(tmp, "bad", BAD)
            # The CLI's own warning gives the step; the plots read the same from the files.
            step = re.search(r"40 of 40 walkers diverged \(non-finite\) from step (\d+)",
                             result.stderr).group(1)
            run = load_run(run_dir)
            figures = figures_for(run)
            by_name = {f.name: f for f in figures}
            diverged = f"walkers diverged (non-finite) in 1 of 3 variants from step {step}"
            for name, heading in titles(figures).items():
                with self.subTest(figure=name):
                    self.assertIn(diverged, heading)
            sweep = by_name["bad_sweep"]
            self.assertIn("diverged walkers", sweep.table.splitlines()[0])
            self.assertRegex(sweep.table, r"\| 5 \| — \|.*\| 40/40 \|")
            # The diverged variant is marked in the P_flat panel (a red cross).
            axes = sweep.figure.axes[0]
            self.assertIn("variant with diverged walkers",
                          [h.get_label() for h in axes.get_lines()])
            far = by_name["bad_histogram_far"]
            self.assertIn("caught nothing inside its range in 3 of 3 variants",
                          title(far))
            texts = [t.get_text() for t in far.figure.axes[0].texts]
            self.assertTrue(any("caught nothing inside x = [10, 20]" in t.replace("\n", " ")
                                for t in texts), texts)
            self.assertEqual(far.table.count("nothing inside the range"), 3)
            rates = by_name["bad_rates"]
            self.assertIn("no walker reached the target in 2 of 3 variants",
                          title(rates))
            labels = [h.get_label() for h in rates.figure.axes[0].get_lines()]
            self.assertIn("no walker reached the target: 95% upper bound", labels)
            close(figures)
            status, text = plot(run_dir, "--out", os.path.join(tmp, "figures"))
            self.assertEqual(status, 0)
            self.assertIn("histogram 'far' caught nothing inside its range in 3 of 3", text)


ZIP = """
[run]
name = "zip"
walkers = 20
steps = 200
[dynamics]
learning_rate = 0.05
noise_strength = 0.05
[sweep]
mode = "zip"
learning_rate = [0.01, 0.02, 0.05]
noise_strength = [0.1, 0.05, 0.02]
"""

GRID_2X10 = """
[run]
name = "grid"
walkers = 8
steps = 60
[dynamics]
learning_rate = 0.05
noise_strength = 0.05
[observables]
sample_every = 20
[[observables.histogram]]
name = "x"
x_range = [-3.0, 3.0]
bins = 20
window = [0, 60]
[sweep]
learning_rate = [0.02, 0.05]
noise_strength = { logspace = [-2, -1, 10] }
"""

GRID_3 = """
[run]
name = "grid3"
walkers = 10
steps = 100
[dynamics]
learning_rate = 0.05
noise_strength = 0.05
[sweep]
learning_rate = [0.01, 0.02, 0.05]
noise_strength = [0.01, 0.1]
x2 = [0.6, 0.65]
"""


@unittest.skipIf(CLI is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class SweepParameters(unittest.TestCase):
    def test_a_zip_sweep_names_both_parameters_and_the_fixed_ones(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir, _ = make_run(tmp, "zip", ZIP)
            figures = figures_for(load_run(run_dir))
            sweep = {f.name: f for f in figures}["zip_sweep"]
            header = sweep.table.splitlines()[0]
            self.assertEqual(header.count(r"$\eta$"), 1, header)
            self.assertEqual(header.count(r"$\sigma$"), 1, header)
            self.assertNotIn("| η |", header)
            # sigma of each row is the zipped value.
            self.assertRegex(sweep.table, r"\| 0\.01 \| 0\.1 \|")
            # The x axis is eta; sigma is named on a top axis over the same points.
            axis_labels = [a.get_xlabel() for ax in sweep.figure.axes
                           for a in [ax] + ax.child_axes]
            self.assertIn(r"learning rate $\eta$", axis_labels)
            self.assertTrue(any("noise strength" in label and "zipped" in label
                                for label in axis_labels), axis_labels)
            # eta * sigma is the same in every variant: the title names it as fixed.
            self.assertIn(r"fixed: $\Delta_S$ = 0.001", title(sweep))
            close(figures)

    def test_a_swept_schedule_key_or_optimizer_coefficient_is_an_axis(self):
        # They are not landscape parameters: /variants (schedule keys) and /parameters
        # (coefficients) hold their values (a KeyError before).
        base = ("[run]\nname = \"{}\"\nwalkers = 20\nsteps = 200\n[landscape]\n"
                "kind = \"double_well\"\n[dynamics]\nlearning_rate = 0.05\nnoise_strength = 0.1\n")
        runs = {
            "warmup": base.format("warmup") + "[dynamics.learning_rate_schedule]\n"
            "kind = \"exponential\"\ngamma = 0.99\n[sweep]\n"
            "learning_rate_schedule.warmup_steps = [0, 100]\n",
            "heavy_ball": base.format("heavy_ball").replace(
                "noise_strength = 0.1\n", "noise_strength = 0.1\noptimizer = \"momentum\"\n")
            + "[sweep]\nmomentum = [0.5, 0.9]\n",
        }
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in runs.items():
                run_dir, _ = make_run(tmp, name, text)
                run = load_run(run_dir)
                (axis, values), = run.sweep_axes()
                self.assertEqual(axis, run.swept[0])
                self.assertEqual(len(values), 2)
                close(figures_for(run))

    def test_a_grid_is_split_into_curves_and_what_is_left_out_is_said(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir, _ = make_run(tmp, "grid", GRID_2X10)
            run = load_run(run_dir)
            figures = figures_for(run)
            by_name = {f.name: f for f in figures}
            # x = eta (the first swept parameter), one curve per sigma, at most 8 of the 10.
            sweep = by_name["grid_sweep"]
            p_flat_axes = sweep.figure.axes[0]
            self.assertEqual(p_flat_axes.get_xlabel(), r"learning rate $\eta$")
            curves = [c for c in p_flat_axes.containers]
            self.assertEqual(len(curves), 8)
            self.assertIn(r"8 of 10 curves shown (values of $\sigma$)",
                          title(sweep))
            # The table still lists all 20 variants.
            self.assertEqual(len([r for r in sweep.table.splitlines()
                                  if re.match(r"\| [0-9]", r)]), 20)
            along = by_name["grid_p_flat_along_training"]
            self.assertIn("8 of 20 variants shown", title(along))
            histogram = by_name["grid_histogram_x"]
            self.assertIn("4 of 20 variants shown", title(histogram))
            self.assertEqual(len([r for r in histogram.table.splitlines()
                                  if r.startswith("| η =")]), 20)
            close(figures)
            status, text = plot(run_dir, "--out", os.path.join(tmp, "figures"))
            self.assertEqual(status, 0)
            self.assertIn("note: grid_sweep: 8 of 10 curves shown", text)

    def test_a_three_parameter_grid_gets_curves(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir, _ = make_run(tmp, "grid3", GRID_3)
            figures = figures_for(load_run(run_dir))
            sweep = {f.name: f for f in figures}["grid3_sweep"]
            labels = sweep.figure.axes[0].get_legend_handles_labels()[1]
            self.assertEqual(sorted(labels), sorted(
                [rf"$\sigma$ = {s}, $x2$ = {x}" for s in ("0.01", "0.1") for x in ("0.6", "0.65")]))
            header = sweep.table.splitlines()[0]
            for symbol in (r"$\eta$", r"$\sigma$", "$x2$"):
                self.assertEqual(header.count(symbol), 1, header)
            close(figures)

    def test_escape_rates_of_a_grid_are_grouped_by_the_other_parameter(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir, _ = make_run(tmp, "rates", RATES_GRID)
            figures = figures_for(load_run(run_dir))
            rates = {f.name: f for f in figures}["rg_rates"]
            axes = rates.figure.axes[0]
            self.assertEqual(len(axes.containers), 2)  # y = 5 and y = 6
            labels = axes.get_legend_handles_labels()[1]
            self.assertIn("$y$ = 5 (simulation, 95% exact CI)", labels)
            self.assertIn("$y$ = 6", labels)
            header = rates.table.splitlines()[0]
            self.assertTrue(header.startswith(r"| $\Delta_S$ | $y$ | η | β |"), header)
            close(figures)


RATES_GRID = """
[run]
name = "rg"
walkers = 100
steps = 1500
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
y = [5.0, 6.0]
"""


ONE = """
[run]
name = "same"
walkers = 30
steps = 100
[dynamics]
learning_rate = 0.05
noise_strength = {sigma}
[init]
positions = [[0.5, 5.0]]
[sweep]
learning_rate = [0.02, 0.05]
"""


@unittest.skipIf(CLI is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class NamesOverlayAndIntervals(unittest.TestCase):
    def test_runs_with_the_same_name_do_not_overwrite_each_others_figures(self):
        with tempfile.TemporaryDirectory() as tmp:
            first, _ = make_run(tmp, "first", ONE.format(sigma=0.001))
            second, _ = make_run(tmp, "second", ONE.format(sigma=0.002))
            out = os.path.join(tmp, "figures")
            self.assertEqual(plot(first, "--out", out, "-q")[0], 0)
            before = read(os.path.join(out, "same_sweep.md"))
            status, text = plot(second, "--out", out)
            self.assertEqual(status, 0)
            self.assertIn("these are named same-run_second_*", text)
            self.assertEqual(read(os.path.join(out, "same_sweep.md")), before)
            self.assertIn("run_second", read(os.path.join(out, "same-run_second_sweep.md")))
            # Plotting a run again overwrites its own figures, under the same names.
            self.assertEqual(plot(second, "--out", out, "-q")[0], 0)
            self.assertEqual(plot(first, "--out", out, "-q")[0], 0)
            stems = {f.rsplit("_", 1)[0] for f in os.listdir(out) if f.endswith("sweep.png")}
            self.assertEqual(stems, {"same", "same-run_second"})

    def test_p_flat_of_one_has_an_exact_interval_not_plus_minus_zero(self):
        with tempfile.TemporaryDirectory() as tmp:
            # Every walker starts deep in the flat valley with weak noise: P_flat = 1.
            run_dir, _ = make_run(tmp, "one", ONE.format(sigma=0.001))
            run = load_run(run_dir)
            self.assertTrue((run.variants["p_flat"] == 1.0).all())
            figures = figures_for(run)
            table = {f.name: f for f in figures}["same_sweep"].table
            self.assertNotIn("1 ± 0", table)
            # Clopper-Pearson, two-sided 68.27 %, at k = n = 30: lower = (0.31731/2)^(1/30).
            low = ((1 - 0.6827) / 2) ** (1 / 30)
            self.assertIn(f"| 1 [{low:.4g}, 1] (68 % CP) |", table)
            self.assertIn("Clopper–Pearson", table)
            # The plotted error bar reaches down to the same bound.
            bars = figures[0].figure.axes[0].containers[0]
            segments = bars.lines[2][0].get_segments()
            self.assertAlmostEqual(segments[0][0][1], low, places=6)
            close(figures)

    def test_overlay_compares_runs_in_one_figure(self):
        with tempfile.TemporaryDirectory() as tmp:
            first, _ = make_run(tmp, "first", ONE.format(sigma=0.001))
            second, _ = make_run(tmp, "second", ONE.format(sigma=0.05))
            out = os.path.join(tmp, "overlay")
            status, text = plot("overlay", first, second, "--out", out, "--name", "both")
            self.assertEqual(status, 0, text)
            for ext in ("png", "svg", "md"):
                self.assertTrue(os.path.exists(os.path.join(out, "both." + ext)))
            table = read(os.path.join(out, "both.md"))
            # Two runs x two variants; the labels tell apart the runs named alike by directory
            # and by the fixed parameter in which they differ.
            rows = [r for r in table.splitlines() if r.startswith("| same")]
            self.assertEqual(len(rows), 4)
            self.assertIn("| same (run_first): σ = 0.001 |", table)
            self.assertIn("| same (run_second): σ = 0.05 |", table)
            status, text = plot("overlay", first, "--out", out)
            self.assertEqual(status, 2)
            self.assertIn("at least two runs", text)

    def test_help_documents_overlay(self):
        for argv in (["--help"], ["overlay", "--help"]):
            with self.subTest(argv=argv):
                out = io.StringIO()
                with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as stop:
                    plot_main(argv)
                self.assertEqual(stop.exception.code, 0)
                self.assertIn("overlay", out.getvalue())


if __name__ == "__main__":
    unittest.main()
