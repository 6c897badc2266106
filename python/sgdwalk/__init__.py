"""sgdwalk: ensembles of SGD and Langevin walkers on two-valley loss landscapes.

The C++ core (CPU backend with OpenMP, CUDA backend when built with nvcc) is the only
implementation: ``sgdwalk.run`` runs the same session code as the ``sgdwalk run`` command and
returns the same results.h5, read into numpy arrays.

    >>> import sgdwalk
    >>> results = sgdwalk.run("examples/paper_phase_diagram.toml", backend="cpu")
    >>> results.variants["p_flat"]              # numpy array, one value per variant
    >>> ds = results.to_xarray(grid=True)        # named dimensions: learning_rate, noise_strength
    >>> ds.p_flat.plot()

Functions: run, resume, load, replay, check_config, info; run_shard and merge split a run over
machines (as ``sgdwalk run --shard K/N`` and ``sgdwalk merge``); sgdwalk.plot draws figures.
Errors: ConfigError (bad config, with the CLI's message), ResourceError, RunDirectoryError,
CheckpointError.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

try:
    _importlib.import_module("._sgdwalk", __name__)  # the compiled core
except ImportError as _error:
    # Without the compiled core only sgdwalk.plot works (pure Python): the sgdwalk_plot command
    # runs that way from a source tree or a CMake install (PYTHONPATH=.../python). Everything else
    # says what is missing when it is used.
    _CORE_MISSING: ImportError | None = _error
else:
    _CORE_MISSING = None

if _CORE_MISSING is None:
    from ._sgdwalk import CheckpointError, ConfigError, ResourceError, RunDirectoryError
    from ._sgdwalk import cuda_backend_built as _cuda_backend_built
    from ._sgdwalk import cuda_device_report as _cuda_device_report
    from ._sgdwalk import git_commit as _git_commit
    from ._sgdwalk import version as _version
    from ._results import Datasets, Results, load
    from ._run import (Progress, RunWarning, check_config, merge, replay, resume, run,
                       run_shard)

    __version__: str = _version()
else:

    def __getattr__(name: str) -> _typing.NoReturn:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"sgdwalk.{name} needs sgdwalk's compiled core (sgdwalk._sgdwalk), which is not "
            f"importable here ({_CORE_MISSING}); install the package with `pip install .` from "
            "the repository (only sgdwalk.plot works without it)") from _CORE_MISSING

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Datasets",
    "Progress",
    "ResourceError",
    "Results",
    "RunDirectoryError",
    "RunWarning",
    "check_config",
    "info",
    "load",
    "merge",
    "replay",
    "resume",
    "run",
    "run_shard",
]


def info(what: str = "build") -> object:
    """This build, as ``sgdwalk info``: "build" (default) gives a dict of the version, git commit
    and backends; "landscapes" the text of ``sgdwalk info --landscapes`` (every landscape of this
    build, its parameters with defaults and ranges, the noise models); "config-reference" the
    text of ``sgdwalk info --config-reference`` (every config key: docs/CONFIG.md)."""
    if what == "build":
        return {
            "version": _version(),
            "git_commit": _git_commit(),
            "cuda_backend_built": _cuda_backend_built(),
            "cuda_devices": _cuda_device_report(),
        }
    from . import _sgdwalk

    if what == "landscapes":
        return _sgdwalk.landscapes_text()
    if what == "config-reference":
        return _sgdwalk.config_reference_markdown()
    raise ValueError(f"what = {what!r} is not allowed; allowed: 'build', 'landscapes', "
                     "'config-reference'")


if _CORE_MISSING is None:
    ConfigError.__doc__ = (
        "A config (file, TOML text or mapping) or an argument that sgdwalk refuses; the message "
        "names the key, the value and what is allowed, as the CLI's does. A ValueError.")
    ResourceError.__doc__ = (
        "A run that does not fit the memory at hand; the message says what it needs and what "
        "would fit (fewer walkers per batch, variants or samples). A MemoryError.")
    RunDirectoryError.__doc__ = (
        "A directory that holds no run sgdwalk can read, write or continue here (missing, a "
        "file, damaged, a shard where a merged run is expected...); the message names it. An "
        "OSError. (A run directory that exists and is not empty, without force=True, is a "
        "FileExistsError.)")
    CheckpointError.__doc__ = (
        "A checkpoint, a shard's tallies or a per-walker file that is damaged or belongs to "
        "another run; the message names the file. An OSError.")
    for _error_class in (CheckpointError, ConfigError, ResourceError, RunDirectoryError):
        _error_class.__module__ = __name__
    del _error_class
else:
    del info  # it needs the core too: __getattr__ says so
