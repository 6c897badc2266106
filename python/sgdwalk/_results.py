"""Results of a run: every dataset of results.h5 as a numpy array, the resolved config, provenance,
and an xarray view with named dimensions."""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import json
import os
import shutil
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

import h5py
import numpy as np

from ._sgdwalk import RunDirectoryError

if TYPE_CHECKING:
    import xarray

#: The files of a run directory, in the order save() copies them (as the CLI writes them): each
#: checkpoint after the file it refers to, summary.json (which names the results and says whether
#: the run finished) last.
RUN_FILES = ("config.toml", "results.h5", "walkers.bin", "checkpoint.bin",
             "ffs_checkpoint.states.bin", "ffs_checkpoint.json", "summary.json")


def _text(value: Any) -> Any:
    """HDF5 string attributes come back as bytes (fixed-length strings): decode them."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind == "S":
        return [item.decode("utf-8") for item in value.tolist()]
    return value


#: Attributes of HDF5 dimension scales (the netCDF-4 dimensions of results.h5): references and
#: markers for netCDF readers, not results.
_SCALE_ATTRIBUTES = frozenset({"CLASS", "NAME", "DIMENSION_LIST", "REFERENCE_LIST"})

#: The NAME of a dimension that has no values (netCDF's "dimension but not a variable").
_DIMENSION_WITHOUT_VALUES = b"This is a netCDF dimension but not a netCDF variable."


def is_dimension_without_values(item: Any) -> bool:
    """Whether an HDF5 dataset only marks a netCDF dimension (its values mean nothing)."""
    name = item.attrs.get("NAME", b"")
    return isinstance(name, bytes) and name.startswith(_DIMENSION_WITHOUT_VALUES)


#: Datasets up to this size are read when results are loaded; larger ones (the per-walker arrays
#: of a big run, the interface states of a big forward flux sampling run) when first used.
EAGER_DATASET_BYTES = 64 * 2**20


def _file_identity(path: Path) -> tuple[int, ...]:
    """What tells one results.h5 from another written in its place (resume, --force, merge)."""
    status = os.stat(path)
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def _run_fingerprint(file: h5py.File) -> tuple[str, str]:
    """The run a results.h5 holds: its resolved config (seed included) and whether it is partial.
    With the file's identity it tells a replacement apart also where the file system's timestamps
    are too coarse to (a file of the same size on a reused inode within a second); a replacement
    with the same fingerprint holds the same numbers (a rerun of the same config)."""
    return (_text(file.attrs.get("config", "")), _text(file.attrs.get("partial", "")))


class _DirectoryKeeper:
    """Removes a temporary run directory (a run without ``out=``) once nothing holds it: its
    Results, or the Datasets of those results, whose large arrays are still read from it."""

    def __init__(self, directory: Path) -> None:
        weakref.finalize(self, shutil.rmtree, str(directory), ignore_errors=True)


class Datasets(Mapping[str, np.ndarray]):
    """The datasets of results.h5 by path ("variants/p_flat", ...), as numpy arrays.

    Every dataset of up to ``EAGER_DATASET_BYTES`` is read when the results are loaded; a larger
    one is read from the file when first used and then kept, so that loading a run of 10⁹
    walkers with per-walker output does not read gigabytes that are never looked at. A large
    dataset read after results.h5 was replaced (a resume, ``--force`` or a merge into the same
    directory) raises ``RunDirectoryError`` instead of mixing two runs' numbers.
    """

    def __init__(self, path: Path, order: list[str], read: dict[str, np.ndarray],
                 deferred: dict[str, int], identity: tuple[int, ...],
                 keeper: Optional[_DirectoryKeeper] = None,
                 fingerprint: tuple[str, str] = ("", "")) -> None:
        self._path = path
        self._keeper = keeper  # a temporary directory lives while these can still be read
        self._order = order  # the file's order, read and deferred alike
        self._arrays = read
        self._deferred = deferred  # path -> bytes, not read yet
        self._identity = identity
        self._fingerprint = fingerprint

    @property
    def deferred(self) -> list[str]:
        """The datasets not read yet (each is read when first used)."""
        return [key for key in self._order if key in self._deferred]

    def __getitem__(self, key: str) -> np.ndarray:
        if key in self._arrays:
            return self._arrays[key]
        if key not in self._deferred:
            raise KeyError(key)
        changed = RunDirectoryError(
            f"{self._path} was replaced after these results were loaded (a resume, --force or a "
            f"merge into the same directory), so '{key}' cannot be read from it as part of them: "
            "load the run directory again")
        try:
            if _file_identity(self._path) != self._identity:
                raise changed
            with h5py.File(self._path, "r") as file:
                if _run_fingerprint(file) != self._fingerprint:
                    raise changed
                array = file[key][()]
            if _file_identity(self._path) != self._identity:
                raise changed
        except OSError as error:
            raise RunDirectoryError(f"{self._path}: cannot read '{key}' ({error}); load the run "
                                    "directory again") from None
        self._arrays[key] = array
        del self._deferred[key]
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: object) -> bool:
        return key in self._arrays or key in self._deferred

    def read_all(self) -> dict[str, np.ndarray]:
        """Every dataset, reading those not read yet."""
        return {key: self[key] for key in self._order}

    def __getstate__(self) -> dict[str, Any]:
        # A copy (pickle, multiprocessing) holds every array: it must not depend on the file.
        return {"_path": self._path, "_arrays": self.read_all(), "_deferred": {},
                "_order": self._order, "_identity": self._identity, "_keeper": None,
                "_fingerprint": self._fingerprint}

    def __repr__(self) -> str:
        waiting = len(self._deferred)
        return (f"<sgdwalk.Datasets of {self._path}: {len(self)} datasets"
                + (f", {waiting} large one(s) read when first used>" if waiting else ">"))


def read_results_file(path: Union[str, os.PathLike], eager_bytes: Optional[int] = None,
                      keeper: Optional[_DirectoryKeeper] = None
                      ) -> tuple[Datasets, dict[str, dict[str, Any]]]:
    """The datasets of an HDF5 file as a mapping {"group/name": array} (those larger than
    ``eager_bytes``, default ``EAGER_DATASET_BYTES``, read when first used), and the attributes of
    every object as {"group/name": {...}} ("/" for the file's own attributes). The netCDF
    dimension machinery is left out: dimensions without values, and the attributes of dimension
    scales."""
    limit = EAGER_DATASET_BYTES if eager_bytes is None else eager_bytes
    path = Path(path)
    read: dict[str, np.ndarray] = {}
    deferred: dict[str, int] = {}
    order: list[str] = []
    attributes: dict[str, dict[str, Any]] = {}
    identity = _file_identity(path)
    with h5py.File(path, "r") as file:
        attributes["/"] = {key: _text(value) for key, value in file.attrs.items()}
        fingerprint = _run_fingerprint(file)

        def visit(name: str, item: Any) -> None:
            if isinstance(item, h5py.Dataset):
                if is_dimension_without_values(item):
                    return
                order.append(name)
                size = int(item.size) * item.dtype.itemsize
                if size > limit:
                    deferred[name] = size
                else:
                    read[name] = item[()]
            kept = {key: _text(value) for key, value in item.attrs.items()
                    if key not in _SCALE_ATTRIBUTES}
            if kept:
                attributes[name] = kept

        file.visititems(visit)
    return Datasets(path, order, read, deferred, identity, keeper, fingerprint), attributes


@contextlib.contextmanager
def _run_directory_lock(directory: Path) -> Iterator[None]:
    """The run-directory lock of the CLI and the core (an exclusive flock on the directory,
    host/run/run_session.hpp): a directory another sgdwalk process is running, resuming or merging
    into is refused instead of having its files replaced under it."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno == errno.EWOULDBLOCK:
                raise RunDirectoryError(
                    f"another sgdwalk process is running or resuming in the run directory "
                    f"'{directory}'; wait for it to finish (or stop it), then try again") from None
            # Any other error: a file system that cannot lock (some network file systems); go on
            # without, as the core does.
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


class Results:
    """The results of a run, as written to its run directory.

    Attributes:
        datasets: every dataset of results.h5 as a numpy array, keyed by its path without the
            leading slash ("variants/p_flat", "samples/y_quantiles", "histograms/NAME/counts"...).
            ``results["variants/p_flat"]`` is a shortcut. Datasets larger than 64 MiB (the
            per-walker arrays of a big run) are read when first used (``Datasets``).
        attributes: the HDF5 attributes (``units``, ``description``, ...) by the same paths; "/"
            holds the file's own (version, git commit, config).
        config: the resolved config (every default filled in, sweeps expanded to their values).
        config_toml: the config text as given (RUN/config.toml).
        summary: RUN/summary.json as a dict (per-variant scalars, timing, progress).
        directory: the run directory the results were read from (a temporary one, removed with
            this object, for ``sgdwalk.run(..., out=None)``).
    """

    def __init__(self, directory: Union[str, os.PathLike], _temporary: bool = False) -> None:
        self.directory = Path(directory)
        self._temporary = _temporary
        # A run without out=: its directory lives as long as these results (for save()) or their
        # datasets (whose large arrays are read from it when first used).
        self._keeper = _DirectoryKeeper(self.directory) if _temporary else None
        summary_path = self.directory / "summary.json"
        results_path = self.directory / "results.h5"
        if not summary_path.is_file() or not results_path.is_file():
            if (self.directory / "tallies.bin").is_file():
                raise RunDirectoryError(
                    f"'{self.directory}' is a shard of a run: it holds tallies for `sgdwalk merge`, "
                    "not results; merge the shards and load the merged run directory"
                )
            if (self.directory / "config.toml").is_file() and summary_path.is_file():
                raise RunDirectoryError(
                    f"'{self.directory}' holds no results yet (no results.h5): the run stopped "
                    "before writing any; sgdwalk.resume() continues it"
                )
            raise RunDirectoryError(
                f"'{self.directory}' is not a run directory with results (needs summary.json "
                "and results.h5)"
            )
        try:
            self.summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise RunDirectoryError(f"{summary_path}: unreadable or corrupt ({error})") from None
        if not isinstance(self.summary, dict) or "config" not in self.summary:
            raise RunDirectoryError(f"{summary_path}: not a run's summary (it has no 'config')")
        self.config: dict[str, Any] = self.summary["config"]
        self.config_toml: str = (self.directory / "config.toml").read_text(encoding="utf-8")
        try:
            self.datasets, self.attributes = read_results_file(results_path, keeper=self._keeper)
        except OSError as error:  # truncated, empty, not HDF5
            raise RunDirectoryError(f"{results_path}: unreadable or corrupt ({error})") from None

    # ---- what the run was ---------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Whether every walker reached the last step (False for a stopped run's partial
        results; then only variants with ``variants["complete"] == 1`` hold numbers)."""
        return not self.summary["partial"]

    @property
    def is_rare_event(self) -> bool:
        """Whether this is a forward flux sampling run (``rare_event.method = "ffs"``): its
        results are the escape rates in ``rare_events`` and the datasets under "rare_events/"
        (docs/RARE_EVENTS.md), not an ensemble's statistics."""
        return "rare_events" in self.summary

    @property
    def rare_events(self) -> dict[str, Any]:
        """A forward flux sampling run's summary (summary.json's "rare_events"): per variant
        ("variants") the rate per step and per unit time, their standard errors over replicas,
        the AFtW and jackknife relative errors, each replica's stages and the warnings. Empty
        for other runs."""
        return self.summary.get("rare_events", {})

    @property
    def provenance(self) -> dict[str, Any]:
        """Version, git commit, command, backend, config source and timing of the run (a forward
        flux sampling run: its wall time instead of the timing and progress)."""
        if self.is_rare_event:
            recorded = self.summary.get("sgdwalk", {})  # absent in runs made before 2026-12-05
            backend = self.summary.get("backend", {})
            return {
                "version": recorded.get("version"),
                "git_commit": recorded.get("git_commit"),
                "command": recorded.get("command", self.summary.get("command_line")),
                "backend": backend.get("name"),
                "backend_description": backend.get("description"),
                "config_source": self.summary.get("config_source"),
                "seed": self.config["run"]["seed"],
                "wall_seconds": self.rare_events.get("wall_seconds"),
            }
        return {
            "version": self.summary["sgdwalk"]["version"],
            "git_commit": self.summary["sgdwalk"]["git_commit"],
            "command": self.summary["sgdwalk"]["command"],
            "backend": self.summary["backend"]["name"],
            "backend_description": self.summary["backend"]["description"],
            "config_source": self.summary["config_source"],
            "seed": self.config["run"]["seed"],
            "timing": self.summary["timing"],
            "progress": self.summary["progress"],
        }

    @property
    def swept(self) -> list[str]:
        """Names of the swept parameters, slowest-varying first (empty without a sweep)."""
        if self.is_rare_event:
            variants = self.rare_events.get("variants", [])
            return list(variants[0].get("swept", {})) if variants else []
        names = self.attributes.get("parameters", {}).get("swept", "")
        return [name for name in names.split(",") if name]

    @property
    def variant_count(self) -> int:
        """The number of variants (points of the sweep; 1 without one)."""
        if self.is_rare_event:
            return len(self.datasets["rare_events/rate_per_step"])
        return len(self.datasets["variants/p_flat"])

    # ---- the arrays ---------------------------------------------------------------------------
    def __getitem__(self, path: str) -> np.ndarray:
        key = path.strip("/")
        if key not in self.datasets:
            close = difflib.get_close_matches(key, list(self.datasets), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise KeyError(f"{path!r} is not a dataset of {self.directory / 'results.h5'}{hint} "
                           "(Results.keys() lists them)")
        return self.datasets[key]

    def __contains__(self, path: str) -> bool:
        return path.strip("/") in self.datasets

    def keys(self) -> list[str]:
        """The dataset paths, as in results.h5."""
        return list(self.datasets)

    def group(self, name: str) -> dict[str, np.ndarray]:
        """The datasets of one group ("variants", "samples", "histograms/NAME", ...) by name."""
        prefix = name.strip("/") + "/"
        return {
            path[len(prefix):]: self.datasets[path]
            for path in self.datasets
            if path.startswith(prefix) and "/" not in path[len(prefix):]
        }

    @property
    def parameters(self) -> dict[str, np.ndarray]:
        """The parameters of every variant in results.h5 /parameters: the learning rate, noise
        strength and what follows from them, the optimizer's coefficients and the landscape's
        (by their own name). A swept schedule key is in ``variants`` by its swept name
        ("learning_rate_schedule.gamma"); the schedules themselves are in ``config``."""
        both = {**self.group("parameters"), **self.group("parameters/landscape")}
        both.pop("variant", None)  # the netCDF coordinate of the groups: the index
        return both

    @property
    def variants(self) -> dict[str, np.ndarray]:
        """Per-variant results of /variants (p_flat and its error, mean freezing time, walker
        counts...; the swept parameters by name), each an array along the variant index."""
        return self.group("variants")

    @property
    def samples(self) -> dict[str, np.ndarray]:
        """Time series of /samples: ``step``, and per variant and sample step P_flat, the means
        and quantiles of y and of the loss ([variant, step] or [variant, step, quantile])."""
        return self.group("samples")

    @property
    def first_passage(self) -> dict[str, np.ndarray]:
        """First-passage statistics per variant (/first_passage: walkers arrived and censored,
        the mean passage step with its standard error, and the escape rate with its 95 %
        interval; empty without ``observables.first_passage``)."""
        return self.group("first_passage")

    @property
    def histograms(self) -> dict[str, dict[str, np.ndarray]]:
        """Each ``[[observables.histogram]]`` by name (/histograms/NAME): its counts and density
        per variant, the bin edges and centres, and the effective potential."""
        names = sorted({path.split("/")[1] for path in self.datasets if path.startswith("histograms/")})
        return {name: self.group(f"histograms/{name}") for name in names}

    @property
    def trackers(self) -> dict[str, np.ndarray]:
        """Distributions of the per-walker trackers per variant (/trackers: log2-binned counts of
        crossings, freezing times and first-passage steps, and the y_freeze bins), which need no
        per-walker output."""
        return self.group("trackers")

    @property
    def walkers(self) -> dict[str, np.ndarray]:
        """Per-walker final states and trackers (empty unless ``observables.per_walker``)."""
        return self.group("walkers")

    def swept_values(self) -> dict[str, np.ndarray]:
        """Each swept parameter's value per variant, exactly as the sweep gave it: int64 for the
        integer keys (a schedule's step counts), float64 for the others."""
        variants = self.rare_events["variants"] if self.is_rare_event else self.summary["variants"]
        values = {}
        for name in self.swept:
            column = [entry["swept"][name] for entry in variants]
            integers = bool(column) and all(isinstance(value, int) for value in column)
            values[name] = np.array(column, dtype=np.int64 if integers else np.float64)
        return values

    # ---- views and copies -----------------------------------------------------------------------
    def to_xarray(self, grid: bool = False) -> "xarray.Dataset":
        """The results as an ``xarray.Dataset`` with named dimensions.

        Dimensions: ``variant`` (coordinates: every parameter, swept ones with the exact swept
        values), ``step`` (sample steps; ``time`` = learning rate x step is a 2-D coordinate),
        ``quantile`` (the levels), ``hist_NAME_x`` / ``hist_NAME_y`` (bin centres; edges in
        ``hist_NAME_x_edges`` on their own dimension), ``log2_bin`` (lower edges of the tracker
        bins; edges in ``trackers_log2_edges``), ``y_freeze_bin``, ``variant_boundary``,
        ``walker`` and ``coordinate`` (per-walker output).

        The same as results.h5 read group by group with
        ``xarray.open_dataset(path, engine="h5netcdf", group=GROUP)`` (the file has netCDF-4
        dimensions and coordinates), merged into one dataset: the names here carry the group's
        prefix, and the coordinates that the file repeats in each group appear once.

        Variables: /variants/NAME as NAME; every other dataset as GROUP_NAME
        (``samples_p_flat``, ``first_passage_rate``, ``trackers_crossings_counts``,
        ``walkers_position``; histograms as ``hist_NAME_counts``...), each with the file's
        ``units``, ``long_name`` (a short label, which plots use) and ``description``.

        grid=True: for a grid sweep, ``variant`` is replaced by one dimension per swept parameter
        (so that ``ds.p_flat.plot()`` draws a phase diagram): in sweep order (first key slowest),
        each sorted by value, before the other dimensions. ``variant`` stays as a coordinate on
        the grid (the index that ``replay(..., variant=)`` and the flat view take), and per-walker
        data become (swept..., ``walker``, ...) with ``walker`` the index within the variant. A
        sweep that repeats a value has no grid (ValueError).

        A forward flux sampling run gives its per-variant rates and errors (the datasets of
        /rare_events) along ``variant`` (or on the grid, with grid=True), with the swept
        parameters and Δ_S (``temperature``) as coordinates; the stored interface states stay in
        ``datasets`` ("rare_events/variantV/replicaR/interfaceI/position", ...).
        """
        from ._xarray import _unstack_grid, rare_events_to_xarray, results_to_xarray

        if self.is_rare_event:
            rates = rare_events_to_xarray(self)
            return _unstack_grid(self, rates) if grid else rates
        return results_to_xarray(self, grid=grid)

    def save(self, directory: Union[str, os.PathLike], *, force: bool = False) -> Path:
        """Writes the run directory (config.toml, results.h5, summary.json, and the checkpoint of
        an unfinished run) to ``directory``, as the CLI's ``--out`` would hold it. An existing,
        non-empty directory is only overwritten with ``force=True``."""
        target = Path(directory)
        if target.resolve() == self.directory.resolve():
            return target
        if target.exists() and not target.is_dir():
            raise RunDirectoryError(
                f"'{target}' is an existing file, not a directory; choose another directory")
        if target.exists() and any(target.iterdir()) and not force:
            raise FileExistsError(
                f"the run directory '{target}' exists and is not empty; choose another one or "
                "pass force=True to overwrite it"
            )
        created = not target.exists()
        was_empty = created or not any(target.iterdir())
        target.mkdir(parents=True, exist_ok=True)
        try:
            with _run_directory_lock(target):
                # What says the directory holds a finished or resumable run goes first, so that
                # an interrupted save never looks like the earlier run it was replacing.
                for name in ("summary.json", "checkpoint.bin", "ffs_checkpoint.json",
                             "tallies.bin"):
                    if (target / name).exists():
                        (target / name).unlink()
                try:
                    for name in RUN_FILES:
                        source = self.directory / name
                        if source.is_file():
                            temporary = target / (name + ".tmp")
                            shutil.copyfile(source, temporary)
                            os.replace(temporary, target / name)
                        elif (target / name).exists():
                            (target / name).unlink()  # stale, from what force=True overwrites
                except OSError:
                    # A full disk: no part-written copy holds its space, and a directory that
                    # was empty is left so (a second save needs no force=True). These results
                    # keep their own directory.
                    for name in RUN_FILES:
                        (target / (name + ".tmp")).unlink(missing_ok=True)
                        if was_empty:
                            (target / name).unlink(missing_ok=True)
                    raise
        except OSError:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            raise
        return target

    def __getstate__(self) -> dict[str, Any]:
        # A copy (pickle, multiprocessing) keeps the arrays; the temporary directory of a run
        # without out= goes with the original, and replay and save need it.
        if self._temporary:
            from ._run import RunWarning

            warnings.warn(
                f"these results live in the temporary directory {self.directory}, removed with "
                "the original Results: the copy keeps every array, but replay() and save() of it "
                "need the directory; call .save(dir) first and pickle sgdwalk.load(dir)",
                RunWarning, stacklevel=2)
        state = dict(self.__dict__)
        state["_temporary"] = False  # the copy does not own the directory
        state["_keeper"] = None
        return state

    def __repr__(self) -> str:
        state = "complete" if self.complete else "partial"
        swept = f", swept {', '.join(self.swept)}" if self.swept else ""
        if self.is_rare_event:
            return (
                f"<sgdwalk.Results '{self.config['run']['name']}': forward flux sampling, "
                f"{self.variant_count} variant(s) x {self.config['rare_event']['replicas']} "
                f"replica(s), rates in .rare_events{swept}, {state}, from {self.directory}>"
            )
        return (
            f"<sgdwalk.Results '{self.config['run']['name']}': {self.variant_count} variant(s) x "
            f"{self.config['run']['walkers']} walkers x {self.config['run']['steps']} steps"
            f"{swept}, {state}, from {self.directory}>"
        )


def load(run_dir: Union[str, os.PathLike]) -> Results:
    """Reads the results of a run directory written by the CLI (``sgdwalk run --out``) or by
    ``sgdwalk.run(..., out=...)``: the same ``Results`` as the run returned."""
    return Results(run_dir)
