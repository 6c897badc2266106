"""Ctrl-C and resume, replay, and the xarray view, each against the CLI or the file itself."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

import sgdwalk
from conftest import (LONG_CONFIG, SMALL_CONFIG, assert_same_bits, assert_same_results_files,
                      cli_run, h5_contents)


INTERRUPTED_RUN = textwrap.dedent("""
    import os, signal, sys, threading, time
    import sgdwalk
    # A process started in the background by a non-interactive shell inherits an ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = []
    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Timer(1.5, interrupt).start()
    try:
        sgdwalk.run(sys.argv[1], out=sys.argv[2], progress=False, segment_steps=500)
    except KeyboardInterrupt as error:
        print(f"KeyboardInterrupt after {time.monotonic() - sent[0]:.3f} s")
        print(error.__notes__[0])
        sys.exit(0)
    print("finished without interruption")
    sys.exit(1)
""")


TERMINATED_RUN = textwrap.dedent("""
    import os, signal, sys, threading
    import sgdwalk
    threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    sgdwalk.run(sys.argv[1], out=sys.argv[2], progress=False, segment_steps=500)
    print("finished without interruption")
""")


def run_script_on_the_long_config(script, tmp_path, name):
    """Runs `script` in a new Python process with LONG_CONFIG's path and tmp_path/name as its
    arguments, segments slowed so that a signal lands mid-run: (the completed process, the config
    path, the run directory)."""
    config = tmp_path / "long.toml"
    config.write_text(LONG_CONFIG)
    out = tmp_path / name
    env = {**os.environ, "SGDWALK_TEST_SEGMENT_DELAY_MS": "100"}
    completed = subprocess.run([sys.executable, "-c", script, str(config), str(out)],
                               env=env, capture_output=True, text=True, timeout=120)
    return completed, config, out


def test_sigterm_stops_a_run_with_a_checkpoint_and_exit_status_143(cli, tmp_path):
    # What a batch system sends before a time limit: Python's default would kill the process at
    # once, losing everything since the last checkpoint.
    completed, config, out = run_script_on_the_long_config(TERMINATED_RUN, tmp_path, "terminated")
    assert completed.returncode == 143, completed.stdout + completed.stderr
    assert "finished without interruption" not in completed.stdout
    assert (f"sgdwalk: stopped by SIGTERM; checkpoint and partial results written to {out}/"
            in completed.stderr), completed.stderr
    assert (out / "checkpoint.bin").exists()
    resumed = sgdwalk.resume(out, backend="cpu", threads=1, progress=False)
    assert resumed.complete
    uninterrupted = cli_run(cli, config, tmp_path / "uninterrupted")
    assert_same_results_files(uninterrupted / "results.h5", out / "results.h5")


def test_sigint_raises_keyboardinterrupt_and_resume_gives_the_uninterrupted_results(cli, tmp_path):
    completed, config, out = run_script_on_the_long_config(INTERRUPTED_RUN, tmp_path, "interrupted")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    delay = float(lines[0].split()[2])
    assert delay < 1.5, f"KeyboardInterrupt came {delay} s after SIGINT"
    assert f"sgdwalk.resume('{out}')" in lines[1]
    # The out= directory holds a checkpoint and partial results.
    assert (out / "checkpoint.bin").exists()
    partial = sgdwalk.load(out)
    assert not partial.complete
    assert 0 < partial.provenance["progress"]["walker_steps_done"] < partial.provenance[
        "progress"]["walker_steps_total"]

    # save() of the partial results copies the checkpoint: the copy resumes too.
    copy = partial.save(tmp_path / "copy")
    assert (copy / "checkpoint.bin").exists()

    resumed = sgdwalk.resume(out, backend="cpu", threads=1, progress=False)
    assert resumed.complete and not (out / "checkpoint.bin").exists()
    uninterrupted = cli_run(cli, config, tmp_path / "uninterrupted")
    assert_same_results_files(uninterrupted / "results.h5", out / "results.h5")
    sgdwalk.resume(copy, progress=False)
    assert_same_results_files(uninterrupted / "results.h5", copy / "results.h5")
    # Resuming a finished run only loads it; the CLI agrees that it is finished.
    assert sgdwalk.resume(out, progress=False).summary == resumed.summary
    subprocess.run([cli, "resume", str(out), "--quiet"], check=True)


def test_cli_resumes_a_python_run_and_python_resumes_a_cli_run(cli, tmp_path):
    completed, config, out = run_script_on_the_long_config(INTERRUPTED_RUN, tmp_path,
                                                           "python-started")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    subprocess.run([cli, "resume", str(out), "--quiet"], check=True)
    uninterrupted = cli_run(cli, config, tmp_path / "uninterrupted")
    assert_same_results_files(uninterrupted / "results.h5", out / "results.h5")

    cli_out = tmp_path / "cli-started"
    env = {**os.environ, "SGDWALK_TEST_SEGMENT_DELAY_MS": "100"}
    process = subprocess.Popen([cli, "run", str(config), "--out", str(cli_out), "--quiet",
                                "--segment-steps", "500"], env=env)
    try:
        process.wait(timeout=1.5)
    except subprocess.TimeoutExpired:
        process.send_signal(2)
    assert process.wait(timeout=60) == 130
    sgdwalk.resume(cli_out, progress=False)
    assert_same_results_files(uninterrupted / "results.h5", cli_out / "results.h5")


INTERRUPTED_REPLAY = textwrap.dedent("""
    import os, signal, sys, threading, time
    import sgdwalk
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = []
    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Timer(1.0, interrupt).start()
    try:
        sgdwalk.replay(sys.argv[1], walker=0, every=2**40)
    except KeyboardInterrupt:
        print(f"KeyboardInterrupt after {time.monotonic() - sent[0]:.3f} s")
        sys.exit(0)
    print("finished without interruption")
    sys.exit(1)
""")

#: One walker for 2^40 steps: hours of replay, so that only Ctrl-C ends it within the test.
ENDLESS_REPLAY_CONFIG = """\
[run]
walkers = 1
steps = 1099511627776
seed = 11

[landscape]
kind = "two_valley"

[dynamics]
noise = "hessian"
learning_rate = 0.05
noise_strength = 0.01

[init]
positions = [[-0.01, 5.0]]
"""


def test_sigint_interrupts_a_replay_promptly(tmp_path):
    config = tmp_path / "endless.toml"
    config.write_text(ENDLESS_REPLAY_CONFIG)
    try:
        completed = subprocess.run([sys.executable, "-c", INTERRUPTED_REPLAY, str(config)],
                                   capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("replay went on for 60 s after SIGINT")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    delay = float(completed.stdout.split()[2])
    assert delay < 1.0, f"KeyboardInterrupt came {delay} s after SIGINT"


def cli_replay(cli, run_dir, *args) -> np.ndarray:
    csv = subprocess.run([cli, "replay", str(run_dir), *args], check=True, capture_output=True,
                         text=True).stdout
    # The CLI starts with '#' lines that say which walker and parameters; then the CSV.
    lines = [line for line in csv.splitlines() if not line.startswith("#")]
    header = lines[0].split(",")
    return header, np.loadtxt(lines[1:], delimiter=",", ndmin=2)


@pytest.mark.parametrize("precision", ["double", "float"])
def test_replay_equals_the_clis(cli, tmp_path, precision):
    config = tmp_path / "small.toml"
    config.write_text(SMALL_CONFIG.replace("seed = 11", f'seed = 11\nprecision = "{precision}"'))
    run_dir = cli_run(cli, config, tmp_path / "run")
    header, table = cli_replay(cli, run_dir, "--walker", "1234", "--every", "7")
    real = np.float32 if precision == "float" else np.float64
    trajectory = sgdwalk.replay(run_dir, walker=1234, every=7)
    assert_same_bits(table[:, 0].astype(np.int64), trajectory["step"], "step")
    assert_same_bits(table[:, 1:3].astype(real), trajectory["position"], "position")
    assert_same_bits(table[:, 3].astype(real), trajectory["loss"], "loss")
    for column, name in enumerate(header[4:], start=4):
        assert_same_bits(table[:, column].astype(np.int64), trajectory[name], name)
    assert trajectory["step"][-1] == 3000

    # The same walker from Results, and from the config with variant and walker apart.
    results = sgdwalk.load(run_dir)
    from_results = sgdwalk.replay(results, variant=4, walker=34, every=7)
    from_config = sgdwalk.replay(config, variant=4, walker=34, every=7)
    for name in trajectory:
        assert_same_bits(trajectory[name], from_results[name], name)
        assert_same_bits(trajectory[name], from_config[name], name)
    # The replayed final state is the run's per-walker output.
    assert_same_bits(results.walkers["position"][1234].astype(real),
                     trajectory["position"][-1], "final position")
    with pytest.raises(IndexError, match="allowed: 0 to 1799"):
        sgdwalk.replay(run_dir, walker=1800)


def test_replay_with_another_seed_equals_the_clis(cli, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL_CONFIG)
    run_dir = cli_run(cli, config, tmp_path / "run", "--seed", "5")
    _, table = cli_replay(cli, run_dir, "--walker", "3", "--variant", "2")
    assert_same_bits(table[:, 1:3], sgdwalk.replay(run_dir, walker=3, variant=2)["position"],
                     "position (seed recorded in the run directory)")
    assert_same_bits(table[:, 1:3],
                     sgdwalk.replay(SMALL_CONFIG, walker=3, variant=2, seed=5)["position"],
                     "position (seed given)")


def test_to_xarray_has_named_dimensions_and_the_files_values(cli, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL_CONFIG)
    run_dir = cli_run(cli, config, tmp_path / "run")
    datasets, attributes = h5_contents(run_dir / "results.h5")
    ds = sgdwalk.load(run_dir).to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert not [dim for dim in ds.dims if str(dim).startswith("phony_dim")]
    assert ds.sizes["variant"] == 6 and ds.sizes["step"] == 7 and ds.sizes["quantile"] == 5
    assert ds.p_flat.dims == ("variant",)
    assert ds.samples_y_quantiles.dims == ("variant", "step", "quantile")
    assert ds.hist_xy_counts.dims == ("variant", "hist_xy_y", "hist_xy_x")
    assert ds.walkers_position.dims == ("walker", "coordinate")
    assert_same_bits(datasets["variants/p_flat"], ds.p_flat.values, "p_flat")
    assert_same_bits(datasets["samples/y_quantiles"], ds.samples_y_quantiles.values, "quantiles")
    assert_same_bits(datasets["samples/step"], ds.step.values, "step")
    assert_same_bits(datasets["samples/quantile_levels"], ds["quantile"].values, "levels")
    assert_same_bits(datasets["histograms/xy/counts"], ds.hist_xy_counts.values, "counts")
    assert_same_bits(datasets["histograms/xy/x_edges"], ds.hist_xy_x_edges.values, "edges")
    assert np.allclose(ds.hist_xy_x.values, (datasets["histograms/xy/x_edges"][1:] +
                                             datasets["histograms/xy/x_edges"][:-1]) / 2)
    assert ds.p_flat.attrs["units"] == attributes["variants/p_flat"]["units"].decode()
    # Swept parameters are coordinates along variant, with the swept values (first key slowest).
    assert list(ds.noise_strength.values) == [0.01, 0.01, 0.01, 0.05, 0.05, 0.05]
    assert list(ds.learning_rate.values) == [0.05, 0.1, 0.2] * 2
    assert float(ds.p_flat.sel(variant=4)) == datasets["variants/p_flat"][4]
    # Every dataset of the file is in the view, the coordinates that the file repeats in each
    # group (variant and the swept parameters, for netCDF readers) once, and samples/quantile
    # and quantile_levels (the same levels) as one.
    repeated = {"variant", "noise_strength", "learning_rate"}
    once = {name for name in datasets
            if name.rsplit("/", 1)[1] not in repeated or name.startswith("parameters/")}
    assert len(ds.variables) >= len(once) - 1

    grid = sgdwalk.load(run_dir).to_xarray(grid=True)
    assert grid.p_flat.dims == ("noise_strength", "learning_rate")
    assert_same_bits(datasets["variants/p_flat"].reshape(2, 3), grid.p_flat.values, "grid")
    assert float(grid.p_flat.sel(noise_strength=0.05, learning_rate=0.1)) == \
        datasets["variants/p_flat"][4]
    # The swept dimensions come first, in sweep order, as `variant` does in the flat view; the
    # variant index stays on the grid, and per-walker data get the grid's dimensions.
    assert grid.samples_p_flat.dims == ("noise_strength", "learning_rate", "step")
    assert_same_bits(datasets["samples/p_flat"][5], grid.samples_p_flat.values[1, 2, :],
                     "samples of variant 5 in the grid")
    assert grid.variant.dims == ("noise_strength", "learning_rate")
    assert grid.variant.values.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert grid.walkers_position.dims == ("noise_strength", "learning_rate", "walker", "coordinate")
    walkers = datasets["walkers/position"].reshape(2, 3, 300, 2)
    assert_same_bits(walkers, grid.walkers_position.values, "walkers on the grid")
    assert grid.walker.values.tolist() == list(range(300))


def test_to_xarray_grid_sorts_each_axis_and_refuses_repeated_values():
    # Sweep order 0.2, 0.05, 0.1: the grid's axis is sorted, and `variant` says which variant
    # each point is.
    text = SMALL_CONFIG.replace("learning_rate = [0.05, 0.1, 0.2]", "learning_rate = [0.2, 0.05, 0.1]")
    results = sgdwalk.run(text, progress=False)
    grid = results.to_xarray(grid=True)
    assert list(grid.learning_rate.values) == [0.05, 0.1, 0.2]
    assert grid.variant.values.tolist() == [[1, 2, 0], [4, 5, 3]]
    assert_same_bits(results.variants["p_flat"][[1, 2, 0, 4, 5, 3]].reshape(2, 3),
                     grid.p_flat.values, "p_flat on the sorted grid")
    one = sgdwalk.run(text.replace("noise_strength = [0.01, 0.05]\n", "").replace(
        "learning_rate = 0.05\n", "learning_rate = 0.05\nnoise_strength = 0.01\n"), progress=False)
    one_grid = one.to_xarray(grid=True)
    assert list(one_grid.learning_rate.values) == [0.05, 0.1, 0.2]
    assert one_grid.variant.values.tolist() == [1, 2, 0]
    assert one_grid.walkers_position.dims == ("learning_rate", "walker", "coordinate")
    repeated = sgdwalk.run(text.replace("[0.2, 0.05, 0.1]", "[0.1, 0.05, 0.1]"), progress=False)
    with pytest.raises(ValueError, match="repeats a value"):
        repeated.to_xarray(grid=True)


def test_to_xarray_grid_of_one_swept_parameter(tmp_path):
    one = sgdwalk.run(SMALL_CONFIG.replace("learning_rate = [0.05, 0.1, 0.2]\n", ""),
                      progress=False)
    grid = one.to_xarray(grid=True)
    assert grid.p_flat.dims == ("noise_strength",)
    assert list(grid.noise_strength.values) == [0.01, 0.05]
    assert_same_bits(one.variants["p_flat"], grid.p_flat.values, "p_flat")
    with pytest.raises(ValueError, match="needs a sweep"):
        single = SMALL_CONFIG.split("[sweep]")[0].replace("learning_rate = 0.05",
                                                          "learning_rate = 0.05\nnoise_strength = 0.01")
        sgdwalk.run(single, progress=False).to_xarray(grid=True)


@pytest.mark.parametrize("distribution", ["gaussian", "alpha_stable"])
def test_replay_until_and_normals_equal_the_clis(cli, tmp_path, distribution):
    text = SMALL_CONFIG
    if distribution == "alpha_stable":
        text = text.replace('noise = "hessian"',
                            'noise = "hessian"\nnoise_distribution = "alpha_stable"\nalpha = 1.5')
    config = tmp_path / "small.toml"
    config.write_text(text)
    run_dir = cli_run(cli, config, tmp_path / "run")
    header, table = cli_replay(cli, run_dir, "--walker", "5", "--until", "40", "--normals")
    trajectory = sgdwalk.replay(run_dir, walker=5, until=40, normals=True)
    prefix = "stable_input" if distribution == "alpha_stable" else "normal"
    assert [f"{prefix}_x", f"{prefix}_y"] == header[-2:]
    assert trajectory["step"][-1] == 40
    for column, name in enumerate(header[-2:], start=len(header) - 2):
        assert_same_bits(table[:, column].astype(np.float64), trajectory[name], name)
    with pytest.raises(ValueError, match="until"):
        sgdwalk.replay(run_dir, walker=5, until=3001)
