"""Running, resuming and replaying: the C++ core's run sessions (the CLI's code) from Python."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import types
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional, Sequence, Union

import numpy as np

from . import _sgdwalk
from ._config import ConfigLike, config_text, looks_like_toml_text
from ._results import Results

BACKENDS = ("auto", "cpu", "cuda")
#: Python runs split backend calls into pieces of about this many seconds: Ctrl-C, progress and
#: checkpoints react between pieces (the CLI uses 1 s). How steps are split never changes a result.
SEGMENT_SECONDS = 0.5


class RunWarning(UserWarning):
    """What the numbers of a run would hide (diverged walkers, empty histograms, unreached
    first-passage targets) and hints about valid settings that look like mistakes."""


@dataclass(frozen=True)
class Progress:
    """Where a run stands; passed to a ``progress=`` callable after every backend call."""

    walker_steps_done: int
    walker_steps_total: int
    variants_done: int
    variants_total: int
    batch: int
    batches: int
    simulate_seconds: float

    @property
    def fraction(self) -> float:
        return self.walker_steps_done / self.walker_steps_total if self.walker_steps_total else 1.0


ProgressLike = Union[bool, Callable[[Progress], Any]]


class _ProgressBar:
    """A tqdm bar (a notebook widget under Jupyter with ipywidgets, text otherwise), created at the
    first report and starting there: a resumed run's bar starts where the run stands, and the rate
    counts only steps done while the bar was shown."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: Any = None

    def __call__(self, progress: Progress) -> None:
        if self.bar is None:
            tqdm = _tqdm_class()
            self.bar = tqdm(total=progress.walker_steps_total, initial=progress.walker_steps_done,
                            unit="walker-step",
                            unit_scale=True, desc=self.description, dynamic_ncols=True)
        self.bar.set_postfix_str(f"variants {progress.variants_done}/{progress.variants_total}",
                                 refresh=False)
        self.bar.update(progress.walker_steps_done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _tqdm_class() -> Any:
    """tqdm.auto's bar (a widget in Jupyter) when ipywidgets is installed; the text bar otherwise,
    without the warning tqdm.auto prints in a notebook that lacks it (the `notebook` extra
    installs it)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        from tqdm.std import tqdm
        return tqdm
    from tqdm.auto import tqdm
    return tqdm


def _progress_callback(progress: ProgressLike, description: str,
                       ffs: bool = False) -> tuple[Any, Optional[_ProgressBar]]:
    """(callback for the C++ session taking a dict, bar to close) for progress=True/False/callable.
    Forward flux sampling reports its stages instead: one line each (the CLI's), printed to
    stderr for progress=True, passed to a callable as a string."""
    if progress is False or progress is None:
        return None, None
    if ffs:
        if progress is True:
            return (lambda line: print(f"sgdwalk: ffs: {line}", file=sys.stderr, flush=True)), None
        if callable(progress):
            return progress, None
    if progress is True:
        bar = _ProgressBar(description)
        return (lambda d: bar(Progress(**d))), bar
    if callable(progress):
        return (lambda d: progress(Progress(**d))), None
    raise TypeError(f"progress must be True, False or a callable, not {type(progress).__name__}")


def _is_integer(value: Any) -> bool:
    """An int or a numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _not_allowed(name: str, value: Any, allowed: str) -> ValueError:
    """The error for an argument outside its range, or of a type it cannot have (named)."""
    problem = ("is out of range" if isinstance(value, (int, float, np.integer, np.floating))
               and not isinstance(value, (bool, np.bool_))
               else f"is not a number ({type(value).__name__})")
    return ValueError(f"{name} = {value!r} {problem}; allowed: {allowed}")


#: The CLI's limits of --batch-walkers and --segment-steps.
_SESSION_LIMITS = {"batch_walkers": 2**40, "segment_steps": 2**50}


def _check_session_arguments(backend: str, threads: Optional[int], checkpoint_every: float,
                             batch_walkers: Optional[int], segment_steps: Optional[int]) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend = {backend!r} is not allowed; allowed: {', '.join(BACKENDS)}")
    if threads is not None and not (_is_integer(threads) and 1 <= threads <= 4096):
        raise _not_allowed("threads", threads, "an integer from 1 to 4096, or None (all cores)")
    if not (isinstance(checkpoint_every, (int, float, np.integer, np.floating))
            and not isinstance(checkpoint_every, bool) and 0 <= checkpoint_every < math.inf):
        raise _not_allowed("checkpoint_every", checkpoint_every,
                           "0 (only when stopped) or more seconds")
    for name, value in (("batch_walkers", batch_walkers), ("segment_steps", segment_steps)):
        if value is not None and not (_is_integer(value) and 1 <= value <= _SESSION_LIMITS[name]):
            raise _not_allowed(name, value, f"an integer from 1 to {_SESSION_LIMITS[name]}, or "
                               "None (automatic)")


def _test_segment_delay_ms() -> int:
    """Test hook shared with the CLI: SGDWALK_TEST_SEGMENT_DELAY_MS=N pauses N ms after every
    backend call, so that tests can interrupt a run mid-way however fast the machine is."""
    return int(os.environ.get("SGDWALK_TEST_SEGMENT_DELAY_MS", "0") or 0)


def _finish(outcome: dict[str, Any], directory: Path, temporary: bool) -> Results:
    for warning in outcome.get("warnings", []):
        warnings.warn(warning, RunWarning, stacklevel=3)
    results = Results(directory, _temporary=temporary)
    # Forward flux sampling's warnings (few ancestors, jumps over interfaces...) are in its
    # summary, as the CLI prints them.
    for warning in results.rare_events.get("warnings", []):
        warnings.warn(warning, RunWarning, stacklevel=3)
    for variant in results.rare_events.get("variants", []):
        for warning in variant.get("warnings", []):
            warnings.warn(f"variant {variant['variant']}: {warning}", RunWarning, stacklevel=3)
    return results


def _summary(directory: Path) -> dict:
    """A run directory's summary.json, or {} where there is none (or it cannot be read)."""
    try:
        summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _is_shard_directory(directory: Path) -> bool:
    """Whether a run directory holds a shard (run_shard, sgdwalk run --shard)."""
    return "shard" in _summary(directory)


def _is_ffs_directory(directory: Path) -> bool:
    """Whether a run directory holds a forward flux sampling run (finished or not, with or without
    a checkpoint: one killed before its first has none)."""
    if (directory / "ffs_checkpoint.json").is_file():
        return True
    config = _summary(directory).get("config", {})
    return isinstance(config, dict) and config.get("rare_event", {}).get("method") == "ffs"


def _finished(directory: Path) -> bool:
    """Whether the run in `directory` finished (summary.json written and not partial)."""
    return _summary(directory).get("partial") is False and not (
        directory / "ffs_checkpoint.json").is_file()


def _resumable(directory: Path) -> bool:
    return (directory / "checkpoint.bin").is_file() or (directory / "ffs_checkpoint.json").is_file()


#: The exit status of a process that SIGTERM stopped (128 + 15), as the CLI's.
SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM


class _StoppedBySigterm(SystemExit):
    """What SIGTERM raises during a run (exit status 143)."""


@contextlib.contextmanager
def _sigterm_stops_the_run() -> Iterator[None]:
    """While a run or resume goes on in the main thread, SIGTERM (what Slurm and other batch
    systems send before a time limit) stops it as Ctrl-C does, at the next segment boundary with
    a checkpoint, and the process then exits with 143 (``SystemExit``), as the CLI does. Python's
    default for SIGTERM is to die at once, without a checkpoint. A handler the caller installed
    is left alone."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def stop(signum: int, frame: types.FrameType | None) -> NoReturn:
        raise _StoppedBySigterm(SIGTERM_EXIT_STATUS)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        # Blocked while the default comes back: a SIGTERM arriving now is delivered after, to the
        # default action, instead of raising here once the run has ended.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            signal.signal(signal.SIGTERM, previous)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _interrupted_note(error: BaseException, directory: Optional[Path]) -> None:
    """Says where what was computed is: a run that finished before it could stop, or a
    checkpoint to resume (the note is shown under the traceback; Python >= 3.11). A SIGTERM's
    SystemExit prints no traceback: the note goes to stderr."""
    if directory is None:
        return
    if isinstance(error, (_sgdwalk.ConfigError, _sgdwalk.RunDirectoryError,
                          _sgdwalk.CheckpointError)):
        return  # about the directory or its config, not an interrupted computation
    note = None
    if _finished(directory):
        note = (f"sgdwalk: the run had finished before it stopped: its results are "
                f"complete in {directory}/ (sgdwalk.load({str(directory)!r}))")
    elif _resumable(directory):
        # Partial results (results.h5 of the finished variants) only from a brute-force run that
        # is not a shard; an FFS run and a shard stop with their checkpoint alone.
        written = ("checkpoint and partial results" if (directory / "results.h5").is_file()
                   else "checkpoint")
        note = (f"sgdwalk: {written} written to {directory}/; "
                f"continue with sgdwalk.resume({str(directory)!r})")
    if note is None:
        return
    if isinstance(error, _StoppedBySigterm):
        print(f"sgdwalk: stopped by SIGTERM; {note[len('sgdwalk: '):]}", file=sys.stderr)
    elif hasattr(error, "add_note"):
        error.add_note(note)


def check_config(config: ConfigLike, *, seed: Optional[int] = None) -> dict[str, Any]:
    """Validates a config without running it and returns the resolved config (every default
    filled in, sweeps expanded). Raises ``ConfigError`` with the CLI's message, and warns
    (``RunWarning``) of valid settings that look like mistakes, as ``run`` does."""
    text, source = config_text(config)
    checked = _sgdwalk.check_config(text, source, -1 if seed is None else _checked_seed(seed))
    for hint in checked["hints"]:
        warnings.warn(f"hint: {hint}", RunWarning, stacklevel=2)
    return json.loads(checked["resolved_config"])


def _launched_processes() -> int:
    """How many processes mpirun or srun started with this one (1: none or just this one); the
    CLI reads the same variables."""
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


def _warn_under_a_launcher(what: str) -> None:
    """The Python package runs one process per call: started N times by mpirun or srun, a
    script that calls run() in every process computes the whole run N times (into one out=
    directory only one of them can write: the others are refused). Scripts that run on one rank
    only, or a different config per rank, are fine, so this is a warning. run_shard is fine."""
    processes = _launched_processes()
    if processes > 1:
        warnings.warn(
            f"sgdwalk.{what}: this process is one of {processes} that mpirun or srun started; "
            "sgdwalk.run computes the whole run in each process that calls it. To split one "
            "run over the processes, give each its part with sgdwalk.run_shard(config, (K, N)) "
            "and merge them, or run the CLI under mpirun (mpirun -np N sgdwalk run CONFIG --out "
            "RUN)", RunWarning, stacklevel=3)


def _checked_seed(seed: int) -> int:
    if not _is_integer(seed) or not 0 <= int(seed) < 2**63:
        raise _not_allowed("seed", seed, "an integer from 0 to 2^63-1")
    return int(seed)


def run(
    config: ConfigLike,
    *,
    backend: str = "auto",
    threads: Optional[int] = None,
    seed: Optional[int] = None,
    out: Union[str, os.PathLike, None] = None,
    progress: ProgressLike = True,
    force: bool = False,
    checkpoint_every: float = 60.0,
    batch_walkers: Optional[int] = None,
    segment_steps: Optional[int] = None,
) -> Results:
    """Runs a config, exactly as ``sgdwalk run`` (the same C++ code, the same results.h5).

    A config with ``[rare_event] method = "ffs"`` runs forward flux sampling, as the CLI does:
    the returned Results has the escape rates in ``.rare_events`` (and ``.to_xarray()``), and a
    Ctrl-C stops it at the next stage boundary.

    Args:
        config: a path to a TOML file (or to a run's summary.json: its resolved config, run
            again), TOML text (a string with a newline, or with '=' or '[' that names no file), or
            a mapping laid out like the TOML file (nested dicts; numpy values are fine).
        backend: "auto" (CUDA if a device is present, else the CPU), "cpu" or "cuda".
        threads: CPU threads (default: all cores). Never changes a result.
        seed: overrides ``run.seed`` (0 to 2^63-1), as ``--seed``.
        out: run directory to write as the run goes (config.toml first, checkpoints every
            ``checkpoint_every`` seconds, then results.h5 and summary.json), as ``--out``; an
            interrupted run there continues with ``sgdwalk.resume(out)`` or ``sgdwalk resume``.
            None: a temporary directory that lives as long as the returned Results (an
            interrupted run's stays, and the KeyboardInterrupt's note names it).
        progress: True for a tqdm bar, False for none, or a callable taking a ``Progress``
            (called between backend calls, about twice a second). Forward flux sampling reports
            each finished stage instead: True prints its line to stderr, a callable gets it as
            a string.
        force: overwrite a non-empty ``out`` directory.
        checkpoint_every: seconds between checkpoints in ``out`` (0 = only when interrupted).
        batch_walkers, segment_steps: as the CLI's --batch-walkers and --segment-steps (never
            change a result).

    Returns:
        Results: numpy arrays of every dataset of results.h5, the resolved config, provenance,
        ``.to_xarray()`` and ``.save(dir)``.

    Raises:
        ConfigError: the config is invalid (the message names the key, the value and what is
            allowed, as the CLI's).
        ResourceError: the run does not fit in host memory, or its per-walker file on the run
            directory's file system (nothing is written).
        FileExistsError: ``out`` is not empty and ``force`` is False.
        KeyboardInterrupt: Ctrl-C (or SIGINT) during the run, within about a second (forward
            flux sampling: at the next stage boundary); the run directory (``out``, or the
            temporary one) then holds a checkpoint and the partial results, or the complete
            results of a run that finished first: the exception's note says which (Python 3.11+).

    Under mpirun or srun (several processes), a ``RunWarning`` says that each process that calls
    ``run`` computes the whole run; ``run_shard`` splits it.
    """
    _warn_under_a_launcher("run")
    outcome, directory, temporary = _run_session(
        config, None, backend=backend, threads=threads, seed=seed, out=out, progress=progress,
        force=force, checkpoint_every=checkpoint_every, batch_walkers=batch_walkers,
        segment_steps=segment_steps)
    return _finish(outcome, directory, temporary)


def _checked_shard(shard: Any) -> tuple[int, int]:
    if not (isinstance(shard, (tuple, list)) and len(shard) == 2 and
            all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shard)):
        raise TypeError(f"shard must be a pair (K, N) of integers, not {shard!r}")
    k, n = int(shard[0]), int(shard[1])
    if not 0 <= k < n <= 1_000_000:
        raise ValueError(f"shard = ({k}, {n}) is out of range; allowed: (K, N) with "
                         "0 <= K < N <= 1000000")
    return k, n


def _run_session(config: ConfigLike, shard: Optional[tuple[int, int]], *, backend: str,
                 threads: Optional[int], seed: Optional[int],
                 out: Union[str, os.PathLike, None], progress: ProgressLike, force: bool,
                 checkpoint_every: float, batch_walkers: Optional[int],
                 segment_steps: Optional[int]) -> tuple[dict[str, Any], Path, bool]:
    """run() and run_shard(): (the session's outcome, the directory, whether it is temporary)."""
    _check_session_arguments(backend, threads, checkpoint_every, batch_walkers, segment_steps)
    seed_value = -1 if seed is None else _checked_seed(seed)
    text, source = config_text(config)
    checked = _sgdwalk.check_config(text, source, seed_value)
    for hint in checked["hints"]:
        warnings.warn(f"hint: {hint}", RunWarning, stacklevel=3)

    if shard is not None and out is None:
        out = Path("runs") / f"{checked['name']}-shard-{shard[0]}-of-{shard[1]}"  # as the CLI
    if out is not None and str(out) == "":
        raise ValueError("out = '' is not a directory; give one, or None for a temporary one")
    # Before any directory is made: a progress argument of the wrong type leaves nothing behind.
    callback, bar = _progress_callback(progress, checked["name"], ffs=checked["ffs"])
    temporary = out is None
    if out is None:
        directory = Path(tempfile.mkdtemp(prefix=f"sgdwalk-{checked['name']}-"))
    else:
        directory = Path(out)
        if directory.exists() and not directory.is_dir():
            raise _sgdwalk.RunDirectoryError(
                f"out = {str(out)!r} is an existing file, not a directory; choose another out=")
        try:
            if not directory.exists():
                directory.mkdir(parents=True)
        except OSError as error:
            raise _sgdwalk.RunDirectoryError(
                f"out = {str(out)!r}: cannot create the run directory ({error.strerror or error})"
            ) from None
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())) and not force:
            unfinished = _resumable(directory)
            raise FileExistsError(
                f"the run directory '{directory}' exists and is not empty; choose another out= or "
                "pass force=True to overwrite it"
                + (f" (it holds an unfinished run: sgdwalk.resume({str(directory)!r}) continues it)"
                   if unfinished else "")
            )

    shard_text = "" if shard is None else f"{shard[0]}/{shard[1]}"
    command = _command_line("run" if shard is None else "run_shard", source, out)
    try:
        with _sigterm_stops_the_run():
            outcome = _sgdwalk.run_in_directory(
                text, source, seed_value, str(directory), command, backend, int(threads or 0),
                int(batch_walkers or 0), int(segment_steps or 0), SEGMENT_SECONDS,
                float(checkpoint_every),
                _test_segment_delay_ms(), callback, shard_text)
    except BaseException as error:
        if temporary and not (_finished(directory) or _resumable(directory)):
            shutil.rmtree(directory, ignore_errors=True)  # nothing computed is there
        else:
            # Interrupted (or a progress callback raised): what was computed stays, also in a
            # temporary directory, and the note says where and how to continue.
            _interrupted_note(error, directory)
        raise
    finally:
        if bar is not None:
            bar.close()
    if outcome["notice"] and progress is not False:
        print(f"sgdwalk: {outcome['notice']}", file=sys.stderr)
    return outcome, directory, temporary


def run_shard(
    config: ConfigLike,
    shard: tuple[int, int],
    *,
    out: Union[str, os.PathLike, None] = None,
    backend: str = "auto",
    threads: Optional[int] = None,
    seed: Optional[int] = None,
    progress: ProgressLike = True,
    force: bool = False,
    checkpoint_every: float = 60.0,
    batch_walkers: Optional[int] = None,
    segment_steps: Optional[int] = None,
) -> Path:
    """Runs part K of N of a config's walkers into a shard directory, exactly as
    ``sgdwalk run --shard K/N``: shards run anywhere (other machines, backends, thread counts)
    and ``sgdwalk.merge`` joins the N of them into the results a single run writes, bit for bit.
    (Forward flux sampling runs are not split: ``ConfigError``.)

    Args:
        shard: (K, N), 0 <= K < N: part K holds the walkers with global index in
            [floor(K T / N), floor((K + 1) T / N)) of the run's T walkers.
        out: the shard directory (default, as the CLI's: runs/NAME-shard-K-of-N).
        The other arguments are run()'s.

    Returns:
        The shard directory: its tallies (tallies.bin), walkers and summary.json, for merge().
        An interrupted shard continues with ``sgdwalk.resume(DIRECTORY)`` (which returns the
        shard directory again) or the CLI's ``sgdwalk resume DIRECTORY``.
    """
    k, n = _checked_shard(shard)
    _, directory, _ = _run_session(
        config, (k, n), backend=backend, threads=threads, seed=seed, out=out, progress=progress,
        force=force, checkpoint_every=checkpoint_every, batch_walkers=batch_walkers,
        segment_steps=segment_steps)
    return directory


def merge(out: Union[str, os.PathLike], shard_dirs: Sequence[Union[str, os.PathLike]], *,
          force: bool = False) -> Results:
    """Joins the finished shards of a run (``run_shard`` or ``sgdwalk run --shard K/N``) into the
    run directory ``out``, exactly as ``sgdwalk merge OUT SHARD_DIR...``, and returns its Results:
    the results.h5 of the single run, bit for bit.

    Raises ``RunDirectoryError`` naming the shard that is missing, duplicated, unfinished or from
    another config or seed, and ``FileExistsError`` when ``out`` is not empty and ``force`` is
    False.
    """
    if isinstance(shard_dirs, (str, os.PathLike)):
        raise TypeError("shard_dirs is a list of shard directories, not one path")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
        raise FileExistsError(f"the run directory '{target}' exists and is not empty; choose "
                              "another out or pass force=True to overwrite it")
    dirs = [os.fspath(d) for d in shard_dirs]
    command = f"sgdwalk.merge({os.fspath(out)!r}, {dirs!r})"
    for warning in _sgdwalk.merge_into_directory(dirs, os.fspath(out), force, command):
        warnings.warn(warning, RunWarning, stacklevel=2)
    return Results(out)


def resume(
    run_dir: Union[str, os.PathLike],
    *,
    backend: str = "auto",
    threads: Optional[int] = None,
    progress: ProgressLike = True,
    checkpoint_every: float = 60.0,
    batch_walkers: Optional[int] = None,
    segment_steps: Optional[int] = None,
) -> Union[Results, Path]:
    """Continues an interrupted run in ``run_dir`` (made by ``sgdwalk.run(out=...)`` or the CLI)
    from its checkpoint, on any backend and thread count, exactly as ``sgdwalk resume``: the final
    results.h5 is the one an uninterrupted run writes. A finished run is just loaded.

    A shard directory (``run_shard`` or ``sgdwalk run --shard K/N``) is finished the same way and
    its path is returned, as ``run_shard`` returns it: a shard holds tallies for ``merge``, not
    Results. A forward flux sampling run continues from its last finished stage.

    Raises ``RunDirectoryError`` (not a run directory, or damaged), ``ConfigError`` (its
    config.toml changed since the run started) or ``CheckpointError`` (corrupt checkpoint).
    """
    _check_session_arguments(backend, threads, checkpoint_every, batch_walkers, segment_steps)
    directory = Path(run_dir)
    if not _is_shard_directory(directory):  # a shard is its process's own part
        _warn_under_a_launcher("resume")
    callback, bar = _progress_callback(progress, directory.name, ffs=_is_ffs_directory(directory))
    try:
        with _sigterm_stops_the_run():
            outcome = _sgdwalk.resume_in_directory(
                str(directory), backend, int(threads or 0), int(batch_walkers or 0),
                int(segment_steps or 0), SEGMENT_SECONDS, float(checkpoint_every),
                _test_segment_delay_ms(), callback)
    except BaseException as error:
        _interrupted_note(error, directory)
        raise
    finally:
        if bar is not None:
            bar.close()
    if outcome.get("shard"):
        for warning in outcome.get("warnings", []):
            warnings.warn(warning, RunWarning, stacklevel=2)
        return directory
    return _finish(outcome, directory, False)


def replay(
    run_or_config: Union[Results, str, os.PathLike, ConfigLike],
    *,
    walker: int,
    variant: Optional[int] = None,
    every: int = 1,
    seed: Optional[int] = None,
    until: Optional[int] = None,
    normals: bool = False,
) -> dict[str, np.ndarray]:
    """Recomputes one walker's trajectory from the seed on the CPU, as ``sgdwalk replay``.

    Args:
        run_or_config: Results, a run directory (its config.toml and recorded seed), or a config
            (path, TOML text or mapping; ``seed`` overrides its run.seed).
        walker: the walker's global index (variant x walkers + index), or its index within
            ``variant`` when that is given.
        every: keep every N-th step (and the last).
        until: the last step to replay (default: run.steps), as ``--until``.
        normals: also return the noise inputs each row's update consumed ("normal_x", ...; for
            alpha_stable noise "stable_input_x", ...), as ``--normals``.

    Returns:
        {"step", "position" (steps x dim), "loss", "basin", "crossings", "freeze_step",
        "first_passage_step", "nonfinite_step"} as numpy arrays, and the optimizer state per
        coordinate ("v_x", ... for momentum and nesterov; "m_x", ..., "s_x", ... for adam and
        rmsprop); position, loss and state have the run's precision (float32 values are exact).
    """
    # The Results stay referenced until the replay is done: a run in a temporary directory
    # (sgdwalk.run without out=) removes it when its Results are collected.
    results = run_or_config if isinstance(run_or_config, Results) else None
    source_arg = (run_or_config.directory if isinstance(run_or_config, Results)
                  else run_or_config)
    is_config = isinstance(source_arg, Mapping) or (
        isinstance(source_arg, str) and looks_like_toml_text(source_arg))
    if not is_config and not isinstance(source_arg, Mapping) and Path(source_arg).is_dir():
        directory = Path(source_arg)
        config_path = directory / "config.toml"
        summary_path = directory / "summary.json"
        if not config_path.is_file() or not summary_path.is_file():
            raise _sgdwalk.RunDirectoryError(
                f"'{directory}' is not a run directory (needs config.toml and summary.json)")
        text, source = config_text(config_path)
        if seed is None:
            try:
                seed_value = int(_summary(directory)["config"]["run"]["seed"])
            except (KeyError, TypeError, ValueError):
                raise _sgdwalk.RunDirectoryError(
                    f"{summary_path}: unreadable or corrupt (no config.run.seed); give the run's "
                    "seed as seed=") from None
        else:
            seed_value = int(_checked_seed(seed))
    else:
        if (isinstance(source_arg, (str, os.PathLike)) and not is_config
                and os.fspath(source_arg) != "" and not Path(source_arg).exists()):
            raise _sgdwalk.RunDirectoryError(
                f"'{os.fspath(source_arg)}' is neither a run directory nor a config file (it "
                "does not exist)")
        text, source = config_text(source_arg)
        seed_value = -1 if seed is None else _checked_seed(seed)
    checked = _sgdwalk.check_config(text, source, seed_value)
    walkers_per_variant = int(checked["walkers_per_variant"])
    for name, value in (("walker", walker), ("variant", variant), ("every", every)):
        if value is not None and not _is_integer(value):
            raise TypeError(f"{name} = {value!r}: an integer is needed")
    walker = int(walker)
    if not 1 <= int(every) < 2**63:
        raise ValueError(f"every = {every!r} is out of range; allowed: 1 to 2^63-1")
    if variant is not None:
        variant = int(variant)
        if not 0 <= variant < int(checked["variants"]):
            raise IndexError(f"variant = {variant} is out of range; allowed: 0 to "
                             f"{int(checked['variants']) - 1}")
        if not 0 <= walker < walkers_per_variant:
            raise IndexError(f"walker = {walker} is out of range; allowed: 0 to "
                             f"{walkers_per_variant - 1}")
    if variant is None:
        total = walkers_per_variant * int(checked["variants"])
        if not 0 <= walker < total:
            raise IndexError(f"walker = {walker} is out of range; allowed: 0 to {total - 1}")
        variant, walker = divmod(walker, walkers_per_variant)
    if until is not None and not (_is_integer(until) and 0 <= until):
        raise ValueError(f"until = {until!r} is out of range; allowed: 0 to run.steps")
    csv = _sgdwalk.replay_csv(text, source, seed_value, variant, walker, int(every),
                              -1 if until is None else int(until), bool(normals))
    return _parse_replay_csv(csv, json.loads(checked["resolved_config"])["run"]["precision"])


def _parse_replay_csv(csv: str, precision: str) -> dict[str, np.ndarray]:
    lines = csv.splitlines()
    header = lines[0].split(",")
    table = np.array([line.split(",") for line in lines[1:]], dtype=object)
    dim = header.index("loss") - 1
    real = np.float32 if precision == "float" else np.float64
    # The CSV has max_digits10 digits: parsing to double and rounding to the run's precision gives
    # the exact values.
    columns: dict[str, np.ndarray] = {
        "step": table[:, 0].astype(np.int64),
        "position": table[:, 1:1 + dim].astype(np.float64).astype(real),
        "loss": table[:, 1 + dim].astype(np.float64).astype(real),
    }
    integer = {"basin", "crossings", "freeze_step", "first_passage_step", "nonfinite_step"}
    for offset, name in enumerate(header[2 + dim:]):
        column = table[:, 2 + dim + offset]
        # The trackers are integers; the optimizer state (v_x, m_x, s_x, ...) has the run's
        # precision.
        columns[name] = (column.astype(np.int64) if name in integer
                         else column.astype(np.float64).astype(real))
    return columns


def _command_line(command: str, source: str, out: Any) -> str:
    """Recorded in summary.json where the CLI records its command line."""
    return f"sgdwalk.{command}({source!r}, out={None if out is None else str(out)!r})"
