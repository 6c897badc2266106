"""Reading an sgdwalk run directory (results.h5 + summary.json) into numpy arrays."""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from typing import Any

    from numpy.typing import ArrayLike

try:
    # Python >= 3.11; without it titles just omit the landscape's fixed keys
    import tomllib  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # pragma: no cover
    tomllib = None  # type: ignore[assignment, unused-ignore]

try:
    import h5py
except ImportError as error:  # pragma: no cover - reported to the user
    raise SystemExit(
        "sgdwalk.plot needs h5py (Debian: python3-h5py). The python3 first on PATH may be a "
        "pyenv/venv interpreter without it: run /usr/bin/python3 -m sgdwalk_plot ...") from error


#: The NAME of a netCDF dimension without values in results.h5 (an HDF5 dimension scale that only
#: names an axis, e.g. /trackers/y_freeze_bin): not data.
_DIMENSION_WITHOUT_VALUES = b"This is a netCDF dimension but not a netCDF variable."


def _read_group(group: h5py.Group) -> dict[str, Any]:
    out = {}
    for name, item in group.items():
        if isinstance(item, h5py.Dataset):
            marker = item.attrs.get("NAME", b"")
            if isinstance(marker, bytes) and marker.startswith(_DIMENSION_WITHOUT_VALUES):
                continue
            out[name] = item[()]
    return out


def _attr(obj: h5py.Group, name: str, default: Any = None) -> Any:
    value = obj.attrs.get(name, default)
    if isinstance(value, bytes):
        value = value.decode()
    return value


@dataclass
class Histogram:
    name: str
    x_edges: np.ndarray
    counts: np.ndarray  # (variants, bins) or (variants, y_bins, x_bins)
    density: np.ndarray
    deposits: np.ndarray
    outside: np.ndarray
    temperature: np.ndarray
    y_edges: np.ndarray | None = None
    window: str = ""
    y_band: str = ""

    @property
    def kind(self) -> str:
        return "xy" if self.y_edges is not None else "x"

    def caught(self, v: int) -> int:
        """Deposits of variant v inside the histogram's range."""
        return int(self.deposits[v]) - int(self.outside[v])


@dataclass
class Run:
    """Everything a figure needs from one run directory."""

    path: str
    name: str
    config: dict[str, Any]  # the resolved config (summary.json "config")
    summary: dict[str, Any]
    # name -> per-variant array (learning_rate, ..., landscape.<name>)
    parameters: dict[str, np.ndarray]
    swept: list[str]  # swept parameter names, in sweep order (first varies slowest)
    sweep_mode: str
    variants: dict[str, Any]  # /variants datasets
    first_passage: dict[str, Any] | None
    samples: dict[str, Any] | None
    histograms: list[Histogram] = field(default_factory=list)
    # /trackers datasets: distributions of the per-walker trackers
    trackers: dict[str, Any] | None = None
    # A partial (interrupted) run holds numbers only for its finished variants. `finished_only()`
    # keeps those; `variant_index` maps a kept variant back to its index in the run, and
    # `total_variants` is the run's variant count.
    partial: bool = False
    complete: np.ndarray | None = None  # per variant, in the run's order
    variant_index: np.ndarray | None = None
    total_variants: int = 0
    config_toml: str = ""  # the config as the user wrote it

    # ---- derived ----------------------------------------------------------------------------
    @property
    def landscape(self) -> str:
        return self.config["landscape"]["kind"]

    @property
    def noise(self) -> str:
        return self.config["dynamics"]["noise"]

    @property
    def noise_distribution(self) -> str:
        """gaussian or alpha_stable (a Gaussian run's config does not name it)."""
        return self.config["dynamics"].get("noise_distribution", "gaussian")

    @property
    def alpha(self) -> np.ndarray:
        """The tail index per variant (alpha_stable runs; 2 for a Gaussian run)."""
        values = self.parameters.get("alpha")
        if values is None:
            return np.full(self.variant_count, 2.0)
        return np.asarray(values, float)

    @property
    def steps(self) -> int:
        return int(self.config["run"]["steps"])

    @property
    def walkers(self) -> int:
        return int(self.config["run"]["walkers"])

    @property
    def variant_count(self) -> int:
        return len(self.parameters["learning_rate"])

    @property
    def variants_done(self) -> int:
        return int(np.sum(self.complete)) if self.complete is not None else self.variant_count

    def partial_note(self) -> str:
        """"partial run: K of N variants" for an interrupted run, else ""."""
        if not self.partial:
            return ""
        return f"partial run: {self.variants_done} of {self.total_variants} variants"

    def finished_only(self) -> "Run":
        """The run restricted to its finished variants (itself when every variant finished)."""
        if self.complete is None or bool(np.all(self.complete)):
            return self
        keep = np.flatnonzero(self.complete)
        return _subset(self, keep)

    def index_of(self, v: int) -> int:
        """The run's own index of variant v of this (possibly restricted) run."""
        return int(self.variant_index[v]) if self.variant_index is not None else v

    @property
    def finite_walkers(self) -> np.ndarray:
        """Walkers per variant that stayed finite (the ones every statistic counts)."""
        walkers = np.asarray(self.variants.get("walkers", np.full(self.variant_count,
                                                                  self.walkers)), float)
        return walkers - self.nonfinite_walkers

    @property
    def nonfinite_walkers(self) -> np.ndarray:
        return np.asarray(self.variants.get("nonfinite_walkers", np.zeros(self.variant_count)),
                          float)

    def first_nonfinite_step(self, v: int) -> int:
        """The first step at which a walker of variant v diverged (summary.json), -1 if none."""
        rows = self.summary.get("variants", [])
        index = self.index_of(v)
        if index < len(rows):
            return int(rows[index].get("first_nonfinite_step", -1))
        return -1

    def user_keys(self, section: str) -> list[str]:
        """The keys the user wrote in a config section (from the config as given)."""
        if tomllib is None or not self.config_toml:
            return []
        try:
            table = tomllib.loads(self.config_toml).get(section, {})
        except tomllib.TOMLDecodeError:
            table = {}
        return [k for k, v in table.items() if not isinstance(v, dict)]

    def fixed_parameters(self) -> list[tuple[str, float]]:
        """[(name, value)] of the parameters that are the same in every variant and that a reader
        needs to know: the dynamics (eta, sigma, Delta_S) and the landscape parameters the user
        set. Swept parameters are left out."""
        out = []
        swept_keys = {_parameter_key(name) for name in self.swept}
        langevin = "dt" in self.user_keys("dynamics") or "dt" in self.swept
        names = (["dt", "temperature"] if langevin
                 else ["learning_rate", "noise_strength", "temperature"])
        if "epsilon" in self.user_keys("dynamics"):
            names.append("epsilon")
        if "alpha" in self.user_keys("dynamics"):
            names.append("alpha")
        names += [k for k in self.user_keys("landscape") if k not in ("kind", "dim")]
        for name in names:
            key = _parameter_key(name)
            values = self.parameters.get(key)
            if key in swept_keys or values is None or len(values) == 0:
                continue
            values = np.asarray(values, float)
            if np.all(values == values[0]):
                out.append((name, float(values[0])))
        return out

    def identity(self) -> dict[str, str]:
        """What tells this run apart from another one with the same run.name: its directory and
        a digest of its resolved config (seed included)."""
        digest = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()
        return {"run": os.path.realpath(self.path), "config_sha256": digest[:16]}

    @property
    def eta(self) -> np.ndarray:
        return np.asarray(self.parameters["learning_rate"], float)

    @property
    def delta_s(self) -> np.ndarray:
        return np.asarray(self.parameters["temperature"], float)

    @property
    def initial_positions(self) -> list[list[float]]:
        return self.config["init"]["positions"]

    def landscape_params(self, variant: int) -> dict[str, float]:
        prefix = "landscape."
        return {k[len(prefix):]: float(v[variant]) for k, v in self.parameters.items()
                if k.startswith(prefix)}

    def warnings(self) -> list[str]:
        """What the numbers would hide, like the CLI's end-of-run warnings (host/analysis/diagnostics.cpp),
        read back from the files: diverged walkers, histograms that caught nothing inside their
        range, first-passage targets no walker reached. Finished variants only (a partial run's
        unfinished ones hold no numbers yet)."""
        out = []
        judged = [v for v in range(self.variant_count)
                  if self.complete is None or self.complete[v]]
        nonfinite = self.nonfinite_walkers
        diverged = [v for v in judged if nonfinite[v] > 0]
        if diverged:
            first = min(self.first_nonfinite_step(v) for v in diverged)
            step = f" from step {first}" if first >= 0 else ""
            out.append(f"walkers diverged (non-finite) in {len(diverged)} of "
                       f"{len(judged)} variants{step}; their statistics leave them out")
        for h in self.histograms:
            empty = [v for v in judged if h.caught(v) == 0]
            if empty:
                out.append(f"histogram '{h.name}' caught nothing inside its range in "
                           f"{len(empty)} of {len(judged)} variants")
        if self.first_passage is not None:
            unreached = self.unreached_target()[judged]
            if np.any(unreached):
                out.append(f"first-passage target '{self.first_passage['target']}' was reached "
                           f"by no walker in {int(np.sum(unreached))} of {len(judged)} "
                           "variants")
        return out

    def unreached_target(self) -> np.ndarray:
        """Per variant: no walker reached the first-passage target (and not all started in it)."""
        fp: dict[str, Any] = self.first_passage  # type: ignore[assignment]  # callers check it
        arrived = np.asarray(fp["arrived"], float)
        started = np.zeros_like(arrived)
        if self.trackers is not None and "first_passage_started_in_target" in self.trackers:
            started = np.asarray(self.trackers["first_passage_started_in_target"], float)
        return (arrived == 0) & (started < self.finite_walkers)

    def sweep_axes(self) -> list[tuple[str, np.ndarray]]:
        """[(name, values)] of the swept parameters, values per variant."""
        axes = []
        for name in self.swept:
            # /parameters holds the dynamics, optimizer and landscape parameters; a swept schedule
            # key ("learning_rate_schedule.warmup_steps") is only in /variants, by its name.
            values = self.parameters.get(_parameter_key(name), self.parameters.get(name))
            if values is None:
                values = self.variants[name]
            axes.append((name, np.asarray(values, float)))
        return axes

    def grid_shape(self) -> tuple[int, ...] | None:
        """(n_first, n_second) when the run is a 2-parameter grid sweep, else None."""
        if self.sweep_mode != "grid" or len(self.swept) != 2:
            return None
        sizes = [len(self.config["sweep"][name]) for name in self.swept]
        if sizes[0] * sizes[1] != self.variant_count:
            return None
        return tuple(sizes)

    def is_one_dimensional_sweep(self) -> bool:
        return (len(self.swept) == 1 or (self.sweep_mode == "zip" and len(self.swept) >= 1)) \
            and self.variant_count > 1


def _parameter_key(name: str) -> str:
    """Sweep key -> /parameters dataset key."""
    return {"dt": "learning_rate", "temperature": "temperature",
            "noise_strength": "noise_strength", "learning_rate": "learning_rate",
            "epsilon": "epsilon", "alpha": "alpha"}.get(name, "landscape." + name)


def _summary_says_partial(summary_path: str) -> bool:
    try:
        with open(summary_path) as f:
            return json.load(f).get("partial") is True
    except (OSError, ValueError, AttributeError):
        return False


def is_rare_event_run(summary: dict[str, Any]) -> bool:
    """Whether a run's summary.json is a rare-event (FFS) run's: rates per variant, no
    brute-force ensemble to plot."""
    return "rare_events" in summary


def load_run(path: str) -> Run:
    h5_path = os.path.join(path, "results.h5")
    if not os.path.exists(h5_path):
        if _summary_says_partial(os.path.join(path, "summary.json")):
            raise FileNotFoundError(
                "no results.h5 yet: the run was stopped before it wrote any results (continue "
                f"it with: sgdwalk resume {path})")
        raise FileNotFoundError(f"no results.h5 (is {path} an sgdwalk run directory?)")
    summary: dict[str, Any] = {}
    summary_path = os.path.join(path, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
    if is_rare_event_run(summary):
        raise ValueError(
            "a forward flux sampling run: its figure is the Arrhenius plot of its rates "
            f"(python3 -m sgdwalk.plot {path}, or sgdwalk.plot.rare_events.arrhenius)")
    with h5py.File(h5_path, "r") as f:
        config = json.loads(_attr(f, "config")) if "config" in f.attrs else summary.get("config", {})
        parameters: dict[str, np.ndarray] = {}
        # (Both groups also hold the netCDF coordinate `variant`, the index.)
        for name, item in f["parameters"].items():
            if isinstance(item, h5py.Dataset) and name != "variant":
                parameters[name] = item[()]
        if "landscape" in f["parameters"]:
            for name, item in f["parameters/landscape"].items():
                if name != "variant":
                    parameters["landscape." + name] = item[()]
        swept_attr = _attr(f["parameters"], "swept", "") or ""
        swept = [s for s in swept_attr.split(",") if s]
        variants = _read_group(f["variants"])
        first_passage = _read_group(f["first_passage"]) if "first_passage" in f else None
        if first_passage is not None:
            first_passage["target"] = _attr(f["variants"], "first_passage_target", "")
        samples = _read_group(f["samples"]) if "samples" in f else None
        histograms: list[Histogram] = []
        if "histograms" in f:
            for name, group in f["histograms"].items():
                data = _read_group(group)
                histograms.append(Histogram(
                    name=name, x_edges=data["x_edges"], counts=data["counts"],
                    density=data["density"], deposits=data["deposits"], outside=data["outside"],
                    temperature=data["temperature"], y_edges=data.get("y_edges"),
                    window=_attr(group, "window", ""), y_band=_attr(group, "y_band", "")))
        trackers = _read_group(f["trackers"]) if "trackers" in f else None
        partial = str(_attr(f, "partial", summary.get("partial", False))).lower() == "true"
        config_toml = _attr(f, "config_toml", "") or ""
    sweep = config.get("sweep", {}) or {}
    n_variants = len(parameters["learning_rate"])
    complete = np.asarray(variants.get("complete", np.ones(n_variants)), bool)
    return Run(path=path, name=config.get("run", {}).get("name", os.path.basename(path)),
               config=config, summary=summary, parameters=parameters, swept=swept,
               sweep_mode=sweep.get("mode", "grid"), variants=variants,
               first_passage=first_passage, samples=samples, histograms=histograms,
               trackers=trackers, partial=partial or not bool(np.all(complete)),
               complete=complete, variant_index=np.arange(n_variants),
               total_variants=n_variants, config_toml=config_toml)


# Datasets that are not indexed by variant (everything else in these groups is, on axis 0).
_NOT_PER_VARIANT = {"step", "quantile", "quantile_levels", "target", "log2_edges", "log2_bin",
                    "y_freeze_counts", "y_freeze_low", "y_freeze_high", "y_freeze_offsets"}


def _take(group: dict[str, Any] | None, keep: np.ndarray) -> dict[str, Any] | None:
    if group is None:
        return None
    return {name: (value if name in _NOT_PER_VARIANT or np.ndim(value) == 0 else value[keep])
            for name, value in group.items()}


def _subset(run: Run, keep: np.ndarray) -> Run:
    """The run with only the variants `keep` (indices into run's variants)."""
    trackers = _take(run.trackers, keep)
    if trackers is not None and "y_freeze_offsets" in trackers:
        # y at freezing is stored ragged (offsets into flat arrays): gather the kept variants.
        offsets = np.asarray(run.trackers["y_freeze_offsets"], int)  # type: ignore[index, type-var]
        spans = [np.arange(offsets[v], offsets[v + 1]) for v in keep]
        flat = np.concatenate(spans) if spans else np.zeros(0, int)
        for name in ("y_freeze_counts", "y_freeze_low", "y_freeze_high"):
            trackers[name] = np.asarray(run.trackers[name])[flat]  # type: ignore[index]
        trackers["y_freeze_offsets"] = np.concatenate([[0], np.cumsum([len(s) for s in spans])])
    histograms = [replace(h, counts=h.counts[keep], density=h.density[keep],
                          deposits=h.deposits[keep], outside=h.outside[keep],
                          temperature=h.temperature[keep]) for h in run.histograms]
    # (_take gives a dict for a dict; complete and variant_index are set by load_run.)
    return replace(run, parameters=_take(run.parameters, keep),  # type: ignore[arg-type]
                   variants=_take(run.variants, keep),  # type: ignore[arg-type]
                   first_passage=_take(run.first_passage, keep), samples=_take(run.samples, keep),
                   histograms=histograms, trackers=trackers,
                   complete=run.complete[keep],  # type: ignore[index]
                   variant_index=run.variant_index[keep])  # type: ignore[index]


def is_log_spaced(values: ArrayLike) -> bool | np.bool_:
    """True when the distinct values are positive and (nearly) geometric, with a wide range."""
    v = np.unique(np.asarray(values, float))
    if len(v) < 3 or np.any(v <= 0):
        return len(v) == 2 and np.all(v > 0) and v[1] / v[0] >= 10
    ratios = v[1:] / v[:-1]
    geometric = np.allclose(ratios, ratios[0], rtol=1e-3)
    arithmetic = np.allclose(np.diff(v), v[1] - v[0], rtol=1e-3)
    return geometric and not arithmetic or (not arithmetic and v[-1] / v[0] >= 20)


def cell_edges(values: ArrayLike, log: bool | np.bool_) -> np.ndarray:
    """Edges of cells centred on sorted values (geometric midpoints on a log axis)."""
    v = np.asarray(values, float)
    if len(v) == 1:
        return np.array([v[0] / 1.5, v[0] * 1.5]) if log else np.array([v[0] - 0.5, v[0] + 0.5])
    t = np.log(v) if log else v
    mid = 0.5 * (t[1:] + t[:-1])
    edges = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return np.exp(edges) if log else edges
