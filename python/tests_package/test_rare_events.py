"""Forward flux sampling from Python (the CLI's session: same summary and results.h5), its
resume and its Results; an interrupted run without out= keeps what it computed; dotted swept
names in a dict config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import sgdwalk
from conftest import LONG_CONFIG, assert_same_results_files, cli_run

# The small FFS runs warn that few flux crossings are ancestors of the last interfaces' states
# (checked once below); the other tests need not see it.
pytestmark = pytest.mark.filterwarnings("ignore:.*flux crossings:sgdwalk.RunWarning")

#: A small FFS run (double_well, escape over the barrier at 0 from the sharp well, two swept
#: learning rates, two replicas): a few seconds on one core.
FFS_CONFIG = """\
[run]
name = "ffs_small"
walkers = 64
steps = 4000
seed = 11

[landscape]
kind = "double_well"

[dynamics]
noise = "isotropic"
learning_rate = 0.01
temperature = 0.1

[init]
positions = [-1.1547005383792515]

[rare_event]
method = "ffs"
order_parameter = "x"
lambda_A = -1.0
interfaces = [-0.8, -0.5, -0.2, 0.2]
trials = 200
replicas = 2
equilibration_steps = 500

[sweep]
learning_rate = [0.01, 0.012]
"""

#: Provenance that differs between two runs of one config.
PROVENANCE = {"command_line", "config_source", "wall_seconds", "sgdwalk", "backend"}


def _without_provenance(value):
    if isinstance(value, dict):
        return {k: _without_provenance(v) for k, v in value.items() if k not in PROVENANCE}
    if isinstance(value, list):
        return [_without_provenance(v) for v in value]
    return value


def test_ffs_runs_as_the_clis_and_its_results_have_the_rates(cli, tmp_path):
    config = tmp_path / "ffs.toml"
    config.write_text(FFS_CONFIG)
    stages = []
    # Its warnings (here: few distinct ancestors at the last interfaces) are RunWarnings.
    with pytest.warns(sgdwalk.RunWarning, match="flux crossings"):
        results = sgdwalk.run(config, out=tmp_path / "python", backend="cpu", threads=1,
                              progress=stages.append)
    expected = cli_run(cli, config, tmp_path / "cli")
    # The CLI's forward flux sampling, not a brute-force run of run.walkers x run.steps.
    assert results.is_rare_event and results.complete
    assert stages and all(isinstance(line, str) for line in stages)
    # A stage's line sums the trials of the sweep's variants, and says so.
    assert any(line.endswith("crossings of λ_0 (all 2 variants)") for line in stages), stages
    assert any("(2 variants, 200 trials each)" in line for line in stages), stages
    cli_summary = json.loads((expected / "summary.json").read_text())
    assert _without_provenance(results.summary) == _without_provenance(cli_summary)
    assert_same_results_files(expected / "results.h5", tmp_path / "python" / "results.h5")

    assert results.variant_count == 2
    assert results.swept == ["learning_rate"]
    rates = results.rare_events["variants"]
    assert all(entry["rate_per_step"] > 0 for entry in rates)
    dataset = results.to_xarray()
    assert dataset.sizes["variant"] == 2
    np.testing.assert_array_equal(dataset["rate_per_step"].values,
                                  results["rare_events/rate_per_step"])
    np.testing.assert_array_equal(dataset["learning_rate"].values, [0.01, 0.012])
    # On the grid: the swept parameter is the dimension (it was silently the flat dataset).
    on_grid = results.to_xarray(grid=True)
    assert "learning_rate" in on_grid.dims and "variant" not in on_grid.dims
    np.testing.assert_array_equal(on_grid["rate_per_step"].sel(learning_rate=0.012).values,
                                  results["rare_events/rate_per_step"][1])
    # Rate per unit time = rate per step / learning rate (t = learning_rate · steps).
    np.testing.assert_allclose(dataset["rate_per_time"].values,
                               dataset["rate_per_step"].values / np.array([0.01, 0.012]),
                               rtol=1e-12)
    # And what summary.json adds: the rate per unit time's error (the per-step one over η), the
    # cost and the warnings.
    np.testing.assert_allclose(dataset["rate_per_time_std_error"].values,
                               dataset["rate_per_step_std_error"].values / np.array([0.01, 0.012]),
                               rtol=1e-12)
    assert dataset["walker_steps"].dtype == np.int64
    assert list(dataset["walker_steps"].values) == [e["walker_steps"] for e in rates]
    assert list(dataset["warnings"].values) == ["\n".join(e["warnings"]) for e in rates]
    assert "forward flux sampling" in repr(results)
    assert results.provenance["seed"] == 11
    assert results.provenance["backend"] == "cpu"
    assert results.provenance["version"] == sgdwalk.__version__
    # Loading the CLI's run directory gives the same.
    loaded = sgdwalk.load(expected)
    assert loaded.is_rare_event and loaded.variant_count == 2
    assert loaded.rare_events["variants"][0]["rate_per_step"] == rates[0]["rate_per_step"]
    # The plotting command draws an FFS run as its Arrhenius plot (it had failed on the missing
    # /parameters group); the brute-force loader says what to use instead.
    pytest.importorskip("matplotlib")
    from sgdwalk.plot.cli import main as plot_main
    from sgdwalk.plot.run import load_run

    assert plot_main([str(expected), "--out", str(tmp_path / "figs"), "--formats", "png",
                      "-q"]) == 0
    assert list((tmp_path / "figs").glob("*.png"))
    with pytest.raises(ValueError, match="forward flux sampling run"):
        load_run(str(expected))


def test_ffs_is_not_split_into_shards_nor_replayed(tmp_path):
    with pytest.raises(sgdwalk.ConfigError, match="shards"):
        sgdwalk.run_shard(FFS_CONFIG, (0, 2), out=tmp_path / "shard", progress=False)
    # replay recomputes a brute-force walker, which is not part of an FFS run.
    with pytest.raises(sgdwalk.ConfigError, match="forward flux sampling run"):
        sgdwalk.replay(FFS_CONFIG, walker=0)


INTERRUPTED_FFS = textwrap.dedent("""
    import signal, sys, os
    import sgdwalk
    signal.signal(signal.SIGINT, signal.default_int_handler)
    def stop_after_two(line, seen=[]):
        seen.append(line)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGINT)
    try:
        sgdwalk.run(sys.argv[1], out=sys.argv[2], backend="cpu", threads=1,
                    progress=stop_after_two)
    except KeyboardInterrupt as error:
        print(getattr(error, "__notes__", ["(no note)"])[0])
        sys.exit(0)
    print("finished without interruption")
    sys.exit(1)
""")


def test_an_interrupted_ffs_run_resumes_to_the_uninterrupted_results(cli, tmp_path):
    config = tmp_path / "ffs.toml"
    config.write_text(FFS_CONFIG)
    out = tmp_path / "interrupted"
    completed = subprocess.run([sys.executable, "-c", INTERRUPTED_FFS, str(config), str(out)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (out / "ffs_checkpoint.json").exists()
    if sys.version_info >= (3, 11):
        assert f"sgdwalk.resume('{out}')" in completed.stdout
    resumed = sgdwalk.resume(out, backend="cpu", threads=1, progress=False)
    assert resumed.is_rare_event and resumed.complete
    assert not (out / "ffs_checkpoint.json").exists()
    expected = cli_run(cli, config, tmp_path / "cli")
    assert_same_results_files(expected / "results.h5", out / "results.h5")
    # A finished FFS run is only loaded again.
    assert sgdwalk.resume(out, progress=False).summary == resumed.summary



def test_an_ffs_run_killed_before_its_first_checkpoint_resumes_as_ffs(cli, tmp_path):
    # What a kill during the flux stage leaves: config.toml and the partial summary.json written
    # first, no checkpoint. It once resumed as a brute-force run without /rare_events.
    config = tmp_path / "ffs.toml"
    config.write_text(FFS_CONFIG)
    expected = cli_run(cli, config, tmp_path / "cli")
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "config.toml").write_text((expected / "config.toml").read_text())
    summary = json.loads((expected / "summary.json").read_text())
    summary["partial"] = True
    del summary["rare_events"]
    (killed / "summary.json").write_text(json.dumps(summary, indent=2))
    # With progress: the stage lines of FFS (a brute-force progress reader once failed on them).
    lines = []
    resumed = sgdwalk.resume(killed, backend="cpu", threads=1, progress=lines.append)
    assert resumed.is_rare_event and resumed.complete
    assert lines and all(isinstance(line, str) for line in lines), lines
    assert_same_results_files(expected / "results.h5", killed / "results.h5")
    # A new run over it with force=True leaves nothing of it behind (no FFS checkpoint to resume).
    (killed / "ffs_checkpoint.json").write_text("{}")
    (killed / "ffs_checkpoint.states.bin").write_bytes(b"stale")
    sgdwalk.run(config, out=killed, force=True, backend="cpu", threads=1, progress=False)
    assert not (killed / "ffs_checkpoint.json").exists()
    assert not (killed / "ffs_checkpoint.states.bin").exists()
    assert sgdwalk.resume(killed, progress=False).complete


INTERRUPTED_WITHOUT_OUT = textwrap.dedent("""
    import os, signal, sys, threading
    import sgdwalk
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    try:
        sgdwalk.run(sys.argv[1], progress=False, segment_steps=500)
    except KeyboardInterrupt as error:
        print(getattr(error, "__notes__", ["(no note)"])[0])
        sys.exit(0)
    sys.exit(1)
""")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes need Python 3.11")
def test_an_interrupted_run_without_out_keeps_its_checkpoint_and_says_where(tmp_path):
    config = tmp_path / "long.toml"
    config.write_text(LONG_CONFIG)
    # TMPDIR: the kept temporary run directory goes under tmp_path, which pytest cleans up.
    env = {**os.environ, "SGDWALK_TEST_SEGMENT_DELAY_MS": "100", "TMPDIR": str(tmp_path)}
    completed = subprocess.run([sys.executable, "-c", INTERRUPTED_WITHOUT_OUT, str(config)],
                               env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    note = completed.stdout.strip()
    assert "sgdwalk.resume(" in note, note
    directory = note.split("sgdwalk.resume('")[1].split("')")[0]
    assert os.path.isfile(os.path.join(directory, "checkpoint.bin"))
    resumed = sgdwalk.resume(directory, progress=False)
    assert resumed.complete


def test_an_interrupt_after_the_last_segment_keeps_the_complete_results(small_config_path,
                                                                        tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the kept directory, cleaned up

    def interrupt_at_the_end(progress):
        if progress.walker_steps_done == progress.walker_steps_total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as raised:
        sgdwalk.run(small_config_path, progress=interrupt_at_the_end)
    if sys.version_info >= (3, 11):
        note = raised.value.__notes__[0]
        assert "results are complete" in note, note
        directory = note.split("sgdwalk.load('")[1].split("')")[0]
        assert sgdwalk.load(directory).complete


def test_dotted_swept_names_in_a_dict_config():
    # The names docs/CONFIG.md, Results.swept and to_xarray use ("learning_rate_schedule.gamma")
    # are TOML dotted keys: in a dict they mean the same nested table.
    base = {
        "run": {"walkers": 50, "steps": 200, "seed": 3},
        "dynamics": {"learning_rate": 0.05,
                     "learning_rate_schedule": {"kind": "exponential", "gamma": 0.999}},
    }
    dotted = {**base, "sweep": {"learning_rate_schedule.gamma": [1.0, 0.999],
                                "noise_strength": [0.1, 0.2]}}
    nested = {**base, "sweep": {"learning_rate_schedule": {"gamma": [1.0, 0.999]},
                                "noise_strength": [0.1, 0.2]}}
    toml = textwrap.dedent("""
        [run]
        walkers = 50
        steps = 200
        seed = 3
        [dynamics]
        learning_rate = 0.05
        [dynamics.learning_rate_schedule]
        kind = "exponential"
        gamma = 0.999
        [sweep]
        learning_rate_schedule.gamma = [1.0, 0.999]
        noise_strength = [0.1, 0.2]
    """)
    resolved = sgdwalk.check_config(toml)
    assert sgdwalk.check_config(dotted) == resolved
    assert sgdwalk.check_config(nested) == resolved
    results = sgdwalk.run(dotted, progress=False)
    assert "learning_rate_schedule.gamma" in results.swept
    with pytest.raises(sgdwalk.ConfigError, match="both as a value and as a table"):
        sgdwalk.check_config({**base, "sweep": {"learning_rate_schedule": [1.0],
                                                "learning_rate_schedule.gamma": [1.0]}})


def test_paths_with_toml_marks_and_a_summary_json_are_configs_files(small_config_path, tmp_path):
    # A path may hold '=' or '[' (runs/lr=0.01/): an existing file is read, not parsed as TOML.
    odd = tmp_path / "lr=0.01[a]" / "config.toml"
    odd.parent.mkdir()
    odd.write_text(small_config_path.read_text())
    first = sgdwalk.run(str(odd), progress=False, out=tmp_path / "first")
    # A run's summary.json reruns its resolved config, as `sgdwalk run RUN/summary.json`.
    again = sgdwalk.run(str(tmp_path / "first" / "summary.json"), progress=False)
    np.testing.assert_array_equal(again["variants/p_flat"], first["variants/p_flat"])
    assert again.config == first.config


def test_session_arguments_take_numpy_integers_and_refuse_the_rest(small_config_path, tmp_path):
    results = sgdwalk.run(small_config_path, progress=False, threads=np.int64(1),
                          batch_walkers=np.int32(64), segment_steps=np.int64(500))
    assert results.complete
    for arguments, name in (({"threads": True}, "threads"), ({"seed": True}, "seed"),
                            ({"checkpoint_every": None}, "checkpoint_every"),
                            ({"batch_walkers": 2**63}, "batch_walkers"),
                            ({"segment_steps": 0}, "segment_steps")):
        with pytest.raises(ValueError, match=name):
            sgdwalk.run(small_config_path, progress=False, **arguments)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(sgdwalk.RunDirectoryError, match="cannot create the run directory"):
        sgdwalk.run(small_config_path, progress=False, out=blocker / "run")
    with pytest.raises(TypeError, match="walker"):
        sgdwalk.replay(small_config_path, walker=1.5)
    with pytest.raises(IndexError, match="walker"):
        sgdwalk.replay(small_config_path, walker=10**30, variant=0)
