"""sgdwalk.run, load, save and check_config against the CLI's outputs."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

import sgdwalk
from conftest import (SMALL_CONFIG, assert_same_bits, assert_same_datasets,
                      assert_same_results_files, cli_run, h5_contents)


def test_results_equal_the_clis_results_h5_bit_for_bit(cli, small_config_path, tmp_path):
    cli_dir = cli_run(cli, small_config_path, tmp_path / "cli")
    results = sgdwalk.run(small_config_path, backend="cpu", out=tmp_path / "py", progress=False)
    assert results.complete
    # The run directory written by Python holds the CLI's file...
    assert_same_results_files(cli_dir / "results.h5", tmp_path / "py" / "results.h5")
    # ...and the arrays handed back are those of the CLI's file, read here with h5py.
    cli_datasets, cli_attributes = h5_contents(cli_dir / "results.h5")
    assert_same_datasets(cli_datasets, results.datasets)
    assert results.attributes["variants/p_flat"]["units"] == "1"
    assert results.config_toml == small_config_path.read_text()
    assert results.config["run"]["seed"] == 11


def test_thread_count_and_segments_do_not_change_results(cli, small_config_path, tmp_path):
    cli_dir = cli_run(cli, small_config_path, tmp_path / "cli")
    results = sgdwalk.run(small_config_path, backend="cpu", threads=1, segment_steps=7,
                          batch_walkers=250, progress=False)
    cli_datasets, _ = h5_contents(cli_dir / "results.h5")
    assert_same_datasets(cli_datasets, results.datasets)


def test_config_as_path_string_and_dict_give_identical_results(small_config_path):
    from_path = sgdwalk.run(small_config_path, progress=False)
    from_string = sgdwalk.run(SMALL_CONFIG, progress=False)
    from_dict = sgdwalk.run(tomllib.loads(SMALL_CONFIG), progress=False)
    assert_same_datasets(from_path.datasets, from_string.datasets)
    assert_same_datasets(from_path.datasets, from_dict.datasets)
    assert from_path.config == from_string.config == from_dict.config
    assert from_path.provenance["config_source"] == str(small_config_path)
    assert from_string.provenance["config_source"] == "<string>"
    assert from_dict.provenance["config_source"] == "<dict>"


def test_numpy_values_in_a_dict_config(small_config_path):
    config = tomllib.loads(SMALL_CONFIG)
    config["sweep"]["learning_rate"] = np.array([0.05, 0.1, 0.2])
    config["run"]["walkers"] = np.int64(300)
    assert_same_datasets(sgdwalk.run(small_config_path, progress=False).datasets,
                         sgdwalk.run(config, progress=False).datasets)


def test_seed_overrides_the_config_as_the_cli_does(cli, small_config_path, tmp_path):
    cli_dir = cli_run(cli, small_config_path, tmp_path / "cli", "--seed", "99")
    results = sgdwalk.run(small_config_path, seed=99, progress=False)
    assert results.config["run"]["seed"] == 99
    assert_same_datasets(h5_contents(cli_dir / "results.h5")[0], results.datasets)
    default_seed = sgdwalk.run(small_config_path, progress=False)
    assert not np.array_equal(default_seed.variants["p_flat"], results.variants["p_flat"])


def cli_config_error(cli: str, config: Path) -> str:
    completed = subprocess.run([cli, "run", str(config), "--out", str(config.parent / "cli-out")],
                               capture_output=True, text=True)
    assert completed.returncode == 2
    prefix = "sgdwalk: config error: "
    assert completed.stderr.startswith(prefix), completed.stderr
    return completed.stderr[len(prefix):].strip()


@pytest.mark.parametrize("bad_line, key, value", [
    ("walkers = 300", "run.walkers", "-5"),
    ("seed = 11", "run.sed", "3"),
    ("learning_rate = 0.05", "dynamics.learning_rate", "nan"),
])
def test_config_errors_carry_the_clis_message(cli, tmp_path, bad_line, key, value):
    name = key.split(".")[1]
    bad = SMALL_CONFIG.replace(bad_line, f"{name} = {value}", 1)
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    expected = cli_config_error(cli, path)
    with pytest.raises(sgdwalk.ConfigError) as from_path:
        sgdwalk.run(path, progress=False)
    assert str(from_path.value) == expected
    assert key in expected
    with pytest.raises(sgdwalk.ConfigError) as from_string:
        sgdwalk.run(bad, progress=False)
    assert str(from_string.value) == expected.replace(str(path), "<string>")
    with pytest.raises(sgdwalk.ConfigError, match=key.replace(".", r"\.")):
        sgdwalk.check_config(tomllib.loads(bad))


def test_check_config_warns_the_hints_that_run_warns():
    config = tomllib.loads(SMALL_CONFIG)
    config["sweep"] = {"noise_strength": {"logspace": [0.01, 0.1, 3]}}
    with pytest.warns(sgdwalk.RunWarning, match="logspace takes exponents"):
        sgdwalk.check_config(config)


@pytest.mark.filterwarnings("ignore::sgdwalk.RunWarning")
def test_a_swept_step_count_stays_an_integer(tmp_path):
    # warmup_steps is an integer key: the resolved sweep, summary.json, results.h5 and the
    # xarray coordinate give integers (a float 100.0 would not match the config's 100).
    config = tomllib.loads(SMALL_CONFIG)
    config["dynamics"]["learning_rate_schedule"] = {"kind": "exponential", "gamma": 0.999}
    config["dynamics"]["noise_strength"] = 0.01
    config["sweep"] = {"learning_rate_schedule.warmup_steps": [0, 100, 3000]}
    results = sgdwalk.run(config, progress=False, out=tmp_path / "run")
    name = "learning_rate_schedule.warmup_steps"
    assert results.config["sweep"][name] == [0, 100, 3000]
    assert all(isinstance(v, int) for v in results.config["sweep"][name])
    assert [entry["swept"][name] for entry in results.summary["variants"]] == [0, 100, 3000]
    assert results.swept_values()[name].dtype == np.int64
    assert results.variants[name].dtype == np.int64
    assert results.variants[name].tolist() == [0, 100, 3000]
    assert results.to_xarray()[name].dtype == np.int64
    assert results.to_xarray(grid=True)[name].values.tolist() == [0, 100, 3000]


def test_a_config_over_64_kib_is_kept_in_results_h5(tmp_path):
    # HDF5's 1.6 object headers cannot hold an attribute over 64 KiB; results.h5 keeps the config
    # text (here long notes) and the resolved config (here 5000 swept values) whatever their size.
    text = ("# a long comment line, as a config with a long history of notes has\n" * 1100 +
            "[run]\nwalkers = 1\nsteps = 2\n[dynamics]\nlearning_rate = 0.05\n"
            "[sweep]\nnoise_strength = {linspace = [0.001, 0.01, 5000]}\n")
    assert len(text.encode()) > 65536
    results = sgdwalk.run(text, progress=False, out=tmp_path / "run")
    assert results.attributes["/"]["config_toml"] == text
    assert len(results.attributes["/"]["config"]) > 65536
    assert len(results.config["sweep"]["noise_strength"]) == 5000
    assert results.variant_count == 5000


def test_pickled_results_keep_their_arrays_and_warn_when_their_directory_is_temporary(tmp_path):
    temporary = sgdwalk.run(SMALL_CONFIG, progress=False)
    with pytest.warns(sgdwalk.RunWarning, match=r"call \.save\(dir\) first"):
        copy = pickle.loads(pickle.dumps(temporary))
    assert_same_bits(temporary.variants["p_flat"], copy.variants["p_flat"], "p_flat")
    kept = sgdwalk.run(SMALL_CONFIG, progress=False, out=tmp_path / "kept")
    with warnings.catch_warnings():
        warnings.simplefilter("error", sgdwalk.RunWarning)
        assert pickle.loads(pickle.dumps(kept)).directory == kept.directory


def test_bad_out_arguments_and_damaged_run_directories_get_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="out = '' is not a directory"):
        sgdwalk.run(SMALL_CONFIG, progress=False, out="")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    with pytest.raises(sgdwalk.RunDirectoryError, match="is an existing file, not a directory"):
        sgdwalk.run(SMALL_CONFIG, progress=False, out=a_file, force=True)
    with pytest.raises(sgdwalk.RunDirectoryError, match="is an existing file, not a directory"):
        sgdwalk.run(SMALL_CONFIG, progress=False).save(a_file, force=True)
    assert a_file.read_text() == "not a directory"
    # A progress argument of the wrong type leaves no temporary directory behind.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    with pytest.raises(TypeError, match="progress must be"):
        sgdwalk.run(SMALL_CONFIG, progress=5)
    assert list(temporary.iterdir()) == []
    # Damaged files of a finished run: named, as RunDirectoryError.
    run_dir = tmp_path / "run"
    sgdwalk.run(SMALL_CONFIG, progress=False, out=run_dir)
    (run_dir / "results.h5").write_bytes(b"not HDF5 at all")
    with pytest.raises(sgdwalk.RunDirectoryError, match=r"results\.h5: unreadable or corrupt"):
        sgdwalk.load(run_dir)
    (run_dir / "summary.json").write_text("{}")
    with pytest.raises(sgdwalk.RunDirectoryError, match="has no 'config'"):
        sgdwalk.load(run_dir)
    # replay reads the seed from summary.json: named when it cannot, and given by hand it works.
    (run_dir / "summary.json").write_text("{not json")
    with pytest.raises(sgdwalk.RunDirectoryError, match=r"summary\.json: unreadable or corrupt"):
        sgdwalk.replay(run_dir, walker=0)
    seed = tomllib.loads(SMALL_CONFIG)["run"]["seed"]
    assert sgdwalk.replay(run_dir, walker=0, seed=seed)["step"][-1] == 3000


def test_dict_config_errors_name_the_key():
    config = tomllib.loads(SMALL_CONFIG)
    config["run"]["walkers"] = None
    with pytest.raises(sgdwalk.ConfigError, match=r"run\.walkers"):
        sgdwalk.run(config, progress=False)
    with pytest.raises(sgdwalk.ConfigError, match="cannot open"):
        sgdwalk.run("no/such/config.toml", progress=False)
    assert issubclass(sgdwalk.ConfigError, ValueError)


def test_messages_name_what_is_wrong(small_config_path, tmp_path):
    # A type, not a range, is what is wrong with threads="1".
    with pytest.raises(ValueError, match=r"threads = '1' is not a number \(str\)"):
        sgdwalk.run(small_config_path, threads="1")
    with pytest.raises(ValueError, match=r"seed = '3' is not a number \(str\)"):
        sgdwalk.run(small_config_path, seed="3")
    with pytest.raises(sgdwalk.ConfigError, match="config is an empty string"):
        sgdwalk.run("")
    with pytest.raises(sgdwalk.ConfigError, match="cannot open the config file .*No such file"):
        sgdwalk.run(tmp_path / "missing.toml")
    with pytest.raises(sgdwalk.RunDirectoryError, match="neither a run directory nor a config"):
        sgdwalk.replay(tmp_path / "no_such_run", walker=0)
    results = sgdwalk.run(small_config_path, progress=False, threads=1)
    with pytest.raises(KeyError, match="did you mean 'variants/p_flat'"):
        results["variants/pflat"]


def test_run_warns_when_it_is_one_of_several_launched_processes(small_config_path, tmp_path,
                                                                 monkeypatch):
    # Under mpirun (or srun) every process that calls run() computes the whole run; a script may
    # mean that (one run per rank), so it is a warning, not a refusal.
    for variable in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"):
        with monkeypatch.context() as patched:
            patched.setenv(variable, "2")
            with pytest.warns(sgdwalk.RunWarning, match="one of 2 that mpirun or srun started"):
                assert sgdwalk.run(small_config_path, progress=False, threads=1).complete
    # A shard is its process's own part: resuming it there says nothing.
    shard = sgdwalk.run_shard(small_config_path, (1, 2), out=tmp_path / "shard", progress=False,
                              threads=1)
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    with warnings.catch_warnings():
        warnings.simplefilter("error", sgdwalk.RunWarning)
        assert sgdwalk.resume(shard, progress=False) == shard


def test_replay_takes_the_results_of_a_run_without_out(small_config_path):
    # The run's temporary directory lives as long as its Results; replay keeps them until done
    # (it had dropped them, and the directory was removed before it was read).
    trajectory = sgdwalk.replay(sgdwalk.run(small_config_path, progress=False, threads=1),
                                walker=3, every=50)
    assert trajectory["step"][0] == 0 and len(trajectory["step"]) > 1


def test_bad_arguments_are_refused_before_running(small_config_path):
    with pytest.raises(ValueError, match="backend"):
        sgdwalk.run(small_config_path, backend="gpu")
    with pytest.raises(ValueError, match="threads"):
        sgdwalk.run(small_config_path, threads=0)
    with pytest.raises(ValueError, match="seed"):
        sgdwalk.run(small_config_path, seed=-1)


def test_hints_and_run_warnings_are_python_warnings(small_config_path):
    hinted = SMALL_CONFIG.replace("learning_rate = [0.05, 0.1, 0.2]",
                                  "learning_rate = { logspace = [0.01, 0.1, 3] }")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sgdwalk.run(hinted, progress=False)
    messages = [str(w.message) for w in caught if w.category is sgdwalk.RunWarning]
    assert any(m.startswith("hint: ") and "logspace" in m for m in messages), messages
    # Those learning rates (1.02 to 1.26) are unstable: the run says so.
    assert any("diverged" in m for m in messages), messages
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sgdwalk.run(SMALL_CONFIG, progress=False)  # a healthy run says nothing


def test_out_directory_load_and_save(cli, small_config_path, tmp_path):
    out = tmp_path / "run"
    results = sgdwalk.run(small_config_path, out=out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "results.h5", "summary.json"]
    loaded = sgdwalk.load(out)
    assert_same_datasets(results.datasets, loaded.datasets)
    assert loaded.config == results.config and loaded.summary == results.summary
    with pytest.raises(FileExistsError, match="force"):
        sgdwalk.run(small_config_path, out=out, progress=False)
    # save() of a temporary run writes a run directory the CLI can replay and load reads back.
    temporary = sgdwalk.run(small_config_path, progress=False)
    saved = temporary.save(tmp_path / "saved")
    assert_same_results_files(out / "results.h5", saved / "results.h5")
    with pytest.raises(FileExistsError):
        temporary.save(saved)
    # A directory another process writes into (it holds the run-directory lock) is refused even
    # with force=True, and its files are left as they were.
    before = (saved / "results.h5").read_bytes()
    other = sgdwalk.run(small_config_path, progress=False, seed=12)
    holder = os.open(saved, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(sgdwalk.RunDirectoryError, match="another sgdwalk process"):
            other.save(saved, force=True)
    finally:
        os.close(holder)
    assert (saved / "results.h5").read_bytes() == before
    other.save(saved, force=True)
    assert (saved / "results.h5").read_bytes() != before
    subprocess.run([cli, "replay", str(saved), "--walker", "3"], check=True, capture_output=True)
    # A CLI run directory loads into the same Results.
    cli_dir = cli_run(cli, small_config_path, tmp_path / "cli")
    assert_same_datasets(results.datasets, sgdwalk.load(cli_dir).datasets)
    with pytest.raises(sgdwalk.RunDirectoryError):
        sgdwalk.load(tmp_path)


def test_large_datasets_are_read_when_first_used(small_config_path, tmp_path, monkeypatch):
    # Loading a run of 10^9 walkers with per-walker output once read every /walkers array into
    # memory. Datasets over the limit (here every one) are now read when used, and a dataset read
    # after results.h5 was replaced is refused rather than mixed into these results.
    import sgdwalk._results

    config = SMALL_CONFIG  # with per-walker output
    out = tmp_path / "run"
    sgdwalk.run(config, out=out, progress=False)
    expected, _ = h5_contents(out / "results.h5")
    monkeypatch.setattr(sgdwalk._results, "EAGER_DATASET_BYTES", 0)
    lazy = sgdwalk.load(out)
    assert sorted(lazy.datasets.deferred) == sorted(expected)  # nothing read yet
    assert lazy.datasets.deferred == list(lazy.datasets)        # in the file's order
    walkers = lazy.walkers
    assert sorted(lazy.datasets.deferred) == sorted(set(expected) - {f"walkers/{name}"
                                                                      for name in walkers})
    copy = pickle.loads(pickle.dumps(lazy))  # a copy reads every array: it needs no file
    assert copy.datasets.deferred == []
    assert_same_datasets(expected, copy.datasets)
    assert_same_datasets(expected, lazy.datasets)  # reads the rest from the file
    later = sgdwalk.load(out)
    later.walkers  # read before the file is replaced: kept
    shutil.rmtree(out)
    sgdwalk.run(config, out=out, progress=False, seed=99)
    assert_same_bits(expected["walkers/position"], later.walkers["position"], "position")
    with pytest.raises(sgdwalk.RunDirectoryError, match="replaced after these results were loaded"):
        later["variants/p_flat"]
    # Also where the file system cannot tell the two files apart (same size on a reused inode
    # within its timestamp resolution): the run's config (its seed) differs.
    later.datasets._identity = sgdwalk._results._file_identity(out / "results.h5")
    with pytest.raises(sgdwalk.RunDirectoryError, match="replaced after these results were loaded"):
        later["variants/p_flat"]
    assert not np.array_equal(sgdwalk.load(out)["walkers/position"], expected["walkers/position"])
    # The datasets of a run without out= keep its temporary directory while they can be read:
    # they once outlived it (the Results gone, the large arrays unreadable).
    datasets = sgdwalk.run(config, progress=False).datasets
    import gc
    gc.collect()
    assert datasets.deferred and isinstance(datasets, sgdwalk.Datasets)
    assert_same_bits(expected["walkers/position"], datasets["walkers/position"], "position")
    directory = Path(datasets._path).parent
    assert directory.is_dir()
    del datasets
    gc.collect()
    assert not directory.exists()  # removed once nothing holds it
    # Below the limit a dataset is read at once, as before.
    monkeypatch.setattr(sgdwalk._results, "EAGER_DATASET_BYTES", 64 * 2**20)
    assert sgdwalk.load(out).datasets.deferred == []


def test_a_save_that_fails_leaves_no_part_written_directory(small_config_path, tmp_path,
                                                             monkeypatch):
    # A full disk during save() once left config.toml and a part-written results.h5.tmp, and the
    # next save needed force=True. The directory is now left as it was found.
    import errno
    import shutil

    results = sgdwalk.run(small_config_path, progress=False)
    real_copy = shutil.copyfile

    def copy_then_fail(source, destination, *args, **kwargs):
        if Path(destination).name == "results.h5.tmp":
            Path(destination).write_bytes(b"part of a file")
            raise OSError(errno.ENOSPC, "No space left on device", str(destination))
        return real_copy(source, destination, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copy_then_fail)
    with pytest.raises(OSError, match="No space left on device"):
        results.save(tmp_path / "new")
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError):
        results.save(tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []
    monkeypatch.setattr(shutil, "copyfile", real_copy)
    saved = results.save(tmp_path / "empty")  # no force=True needed
    assert_same_datasets(results.datasets, sgdwalk.load(saved).datasets)


def test_provenance(small_config_path):
    results = sgdwalk.run(small_config_path, backend="cpu", progress=False)
    provenance = results.provenance
    assert provenance["version"] == sgdwalk.__version__
    assert provenance["backend"] == "cpu"
    assert provenance["git_commit"] == sgdwalk.info()["git_commit"]
    assert provenance["timing"]["walker_steps"] == 6 * 300 * 3000
    assert results.swept == ["noise_strength", "learning_rate"]


def test_progress_callable_and_an_exception_from_it(small_config_path, tmp_path):
    seen = []
    sgdwalk.run(small_config_path, progress=seen.append, segment_steps=500)
    assert len(seen) >= 6 and all(isinstance(p, sgdwalk.Progress) for p in seen)
    done = [p.walker_steps_done for p in seen]
    assert done == sorted(done) and done[-1] == seen[-1].walker_steps_total == 6 * 300 * 3000

    class Enough(Exception):
        pass

    def stop_at_half(progress):
        if progress.fraction > 0.5:
            raise Enough

    with pytest.raises(Enough):
        sgdwalk.run(small_config_path, out=tmp_path / "stopped", progress=stop_at_half,
                    segment_steps=500)
    partial = sgdwalk.load(tmp_path / "stopped")
    assert not partial.complete and (tmp_path / "stopped" / "checkpoint.bin").exists()


def test_import_needs_no_environment_variables(tmp_path):
    completed = subprocess.run([sys.executable, "-c", "import sgdwalk; print(sgdwalk.info())"],
                               env={}, cwd=tmp_path, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "version" in completed.stdout


def test_info_gives_the_clis_landscapes_and_config_reference(cli):
    for what, flag in (("landscapes", "--landscapes"), ("config-reference", "--config-reference")):
        expected = subprocess.run([cli, "info", flag], check=True, capture_output=True,
                                  text=True).stdout
        assert sgdwalk.info(what) == expected
    assert sgdwalk.info()["version"] == sgdwalk.__version__
    with pytest.raises(ValueError, match="allowed: 'build'"):
        sgdwalk.info("devices")
