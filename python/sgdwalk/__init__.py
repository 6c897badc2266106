"""sgdwalk: ensembles of SGD and Langevin walkers on two-valley loss landscapes.

The C++ core (CPU backend with OpenMP, CUDA backend when built with nvcc) is the only
implementation: ``sgdwalk.run`` runs the same session code as the ``sgdwalk run`` command and
returns the same results.h5, read into numpy arrays.

    >>> import sgdwalk
    >>> results = sgdwalk.run("examples/paper_phase_diagram.toml", backend="cpu")
    >>> results.variants["p_flat"]              # numpy array, one value per variant
    >>> ds = results.to_xarray(grid=True)        # named dimensions: learning_rate, noise_strength
    >>> ds.p_flat.plot()

Functions: run, resume, load, replay, check_config, info. Errors: ConfigError (bad config, with
the CLI's message), ResourceError, RunDirectoryError, CheckpointError.
"""

from __future__ import annotations

from ._sgdwalk import CheckpointError, ConfigError, ResourceError, RunDirectoryError
from ._sgdwalk import cuda_backend_built as _cuda_backend_built
from ._sgdwalk import cuda_device_report as _cuda_device_report
from ._sgdwalk import git_commit as _git_commit
from ._sgdwalk import version as _version
from ._results import Results, load
from ._run import Progress, RunWarning, check_config, replay, resume, run

__version__: str = _version()

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Progress",
    "ResourceError",
    "Results",
    "RunDirectoryError",
    "RunWarning",
    "check_config",
    "info",
    "load",
    "replay",
    "resume",
    "run",
]


def info() -> dict[str, object]:
    """Version, git commit and backends of this build, as ``sgdwalk info``."""
    return {
        "version": _version(),
        "git_commit": _git_commit(),
        "cuda_backend_built": _cuda_backend_built(),
        "cuda_devices": _cuda_device_report(),
    }

for _error in (CheckpointError, ConfigError, ResourceError, RunDirectoryError):
    _error.__module__ = __name__
del _error
