"""Shared helpers of the Python package's tests: the CLI to compare with, small configs, and a
bit-for-bit comparison of HDF5 files read independently with h5py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parents[2]

#: A small run with every kind of output: a 2 x 3 grid sweep, samples, first passage, an x and an
#: xy histogram, per-walker output. Well under a second on one core.
SMALL_CONFIG = """\
[run]
name = "small"
walkers = 300
steps = 3000
seed = 11

[landscape]
kind = "two_valley"

[dynamics]
noise = "hessian"
learning_rate = 0.05

[init]
positions = [[-0.01, 5.0], [0.01, 5.0]]

[observables]
sample_every = 500
per_walker = true

[observables.first_passage]
target = "flat"

[[observables.histogram]]
name = "x_band"
kind = "x"
x_range = [-4.0, 4.0]
bins = 16
y_band = [0.0, 30.0]
window = [1000, 3000]
every = 10

[[observables.histogram]]
name = "xy"
kind = "xy"
x_range = [-4.0, 4.0]
y_range = [0.0, 40.0]
bins = 8
y_bins = 4
window = [1000, 3000]
every = 10

[sweep]
noise_strength = [0.01, 0.05]
learning_rate = [0.05, 0.1, 0.2]
"""

#: Long enough to be interrupted: 4 variants x 500 walkers x 20000 steps (one batch) in segments
#: of 500 steps, each followed by a 100 ms pause (the test hook SGDWALK_TEST_SEGMENT_DELAY_MS), so
#: at least 4 s uninterrupted on any machine; the tests stop it after 1.5 s.
LONG_CONFIG = SMALL_CONFIG.replace("walkers = 300", "walkers = 500").replace(
    "steps = 3000", "steps = 20000").replace("learning_rate = [0.05, 0.1, 0.2]",
                                             "learning_rate = [0.05, 0.1]")


@pytest.fixture(scope="session")
def cli() -> str:
    """The sgdwalk CLI of this checkout's CMake build (SGDWALK_CLI, else build/sgdwalk)."""
    path = os.environ.get("SGDWALK_CLI") or str(REPOSITORY / "build" / "sgdwalk")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no sgdwalk CLI at {path}: build it (scripts/build.sh) or set SGDWALK_CLI")
    return path


@pytest.fixture
def small_config_path(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL_CONFIG)
    return path


def cli_run(cli: str, config: Path, out: Path, *extra: str) -> Path:
    subprocess.run([cli, "run", str(config), "--out", str(out), "--quiet", *extra], check=True)
    return out


def h5_contents(path: Path) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Every dataset and every attribute of an HDF5 file, read with h5py. netCDF dimensions
    without values (dimension scales whose NAME says so) hold no data and are left out; the
    dimension scales attached to a dataset are given by name (DIMENSION_LIST holds references,
    i.e. file addresses) and the scales' REFERENCE_LIST, its inverse, is left out."""
    datasets, attributes = {}, {}
    with h5py.File(path, "r") as file:
        attributes["/"] = dict(file.attrs)

        def visit(name, item):
            attrs = dict(item.attrs)
            attrs.pop("REFERENCE_LIST", None)
            if "DIMENSION_LIST" in attrs:
                attrs["DIMENSION_LIST"] = np.array(
                    [[file[ref].name for ref in axis] for axis in attrs["DIMENSION_LIST"]])
            marker = item.attrs.get("NAME", b"")
            without_values = isinstance(marker, bytes) and marker.startswith(
                b"This is a netCDF dimension but not a netCDF variable.")
            if isinstance(item, h5py.Dataset) and not without_values:
                datasets[name] = item[()]
            attributes[name] = attrs

        file.visititems(visit)
    return datasets, attributes


def assert_same_bits(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert a.tobytes() == b.tobytes(), f"{what}: values differ"


def assert_same_datasets(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> None:
    assert sorted(expected) == sorted(actual)
    for name in expected:
        assert_same_bits(expected[name], actual[name], name)


def assert_same_results_files(expected: Path, actual: Path, *, ignore_attributes=()) -> None:
    """Same datasets bit for bit and the same attributes (the git commit is left out: the CLI and
    the package may have been configured at different commits of a working tree)."""
    expected_data, expected_attrs = h5_contents(expected)
    actual_data, actual_attrs = h5_contents(actual)
    assert_same_datasets(expected_data, actual_data)
    ignored = {"git_commit", *ignore_attributes}
    assert sorted(expected_attrs) == sorted(actual_attrs)
    for name in expected_attrs:
        left = {k: v for k, v in expected_attrs[name].items() if k not in ignored}
        right = {k: v for k, v in actual_attrs[name].items() if k not in ignored}
        assert left.keys() == right.keys(), name
        for key in left:
            assert np.array_equal(left[key], right[key]), f"{name} attribute {key}"
