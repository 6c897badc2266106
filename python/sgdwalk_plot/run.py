"""Reading an sgdwalk run directory (results.h5 + summary.json) into numpy arrays."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

try:
    import h5py
except ImportError as error:  # pragma: no cover - reported to the user
    raise SystemExit(
        "sgdwalk_plot needs h5py (Debian: python3-h5py). The python3 first on PATH may be a "
        "pyenv/venv interpreter without it: run /usr/bin/python3 -m sgdwalk_plot ...") from error


def _read_group(group) -> dict:
    out = {}
    for name, item in group.items():
        if isinstance(item, h5py.Dataset):
            out[name] = item[()]
    return out


def _attr(obj, name, default=None):
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


@dataclass
class Run:
    """Everything a figure needs from one run directory."""

    path: str
    name: str
    config: dict  # the resolved config (summary.json "config")
    summary: dict
    parameters: dict  # name -> per-variant array (learning_rate, ..., landscape.<name>)
    swept: list  # swept parameter names, in sweep order (first varies slowest)
    sweep_mode: str
    variants: dict  # /variants datasets
    first_passage: dict | None
    samples: dict | None
    histograms: list = field(default_factory=list)
    trackers: dict | None = None  # /trackers datasets: distributions of the per-walker trackers

    # ---- derived ----------------------------------------------------------------------------
    @property
    def landscape(self) -> str:
        return self.config["landscape"]["kind"]

    @property
    def noise(self) -> str:
        return self.config["dynamics"]["noise"]

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
    def eta(self) -> np.ndarray:
        return np.asarray(self.parameters["learning_rate"], float)

    @property
    def delta_s(self) -> np.ndarray:
        return np.asarray(self.parameters["temperature"], float)

    @property
    def initial_positions(self) -> list:
        return self.config["init"]["positions"]

    def landscape_params(self, variant: int) -> dict:
        prefix = "landscape."
        return {k[len(prefix):]: float(v[variant]) for k, v in self.parameters.items()
                if k.startswith(prefix)}

    def sweep_axes(self) -> list:
        """[(name, values)] of the swept parameters, values per variant."""
        return [(name, np.asarray(self.parameters[_parameter_key(name)], float))
                for name in self.swept]

    def grid_shape(self):
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
            "epsilon": "epsilon"}.get(name, "landscape." + name)


def load_run(path: str) -> Run:
    h5_path = os.path.join(path, "results.h5")
    if not os.path.exists(h5_path):
        raise FileNotFoundError(f"{path}: no results.h5 (is this an sgdwalk run directory?)")
    summary = {}
    summary_path = os.path.join(path, "summary.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
    with h5py.File(h5_path, "r") as f:
        config = json.loads(_attr(f, "config")) if "config" in f.attrs else summary.get("config", {})
        parameters = {}
        for name, item in f["parameters"].items():
            if isinstance(item, h5py.Dataset):
                parameters[name] = item[()]
        if "landscape" in f["parameters"]:
            for name, item in f["parameters/landscape"].items():
                parameters["landscape." + name] = item[()]
        swept_attr = _attr(f["parameters"], "swept", "") or ""
        swept = [s for s in swept_attr.split(",") if s]
        variants = _read_group(f["variants"])
        first_passage = _read_group(f["first_passage"]) if "first_passage" in f else None
        if first_passage is not None:
            first_passage["target"] = _attr(f["variants"], "first_passage_target", "")
        samples = _read_group(f["samples"]) if "samples" in f else None
        histograms = []
        if "histograms" in f:
            for name, group in f["histograms"].items():
                data = _read_group(group)
                histograms.append(Histogram(
                    name=name, x_edges=data["x_edges"], counts=data["counts"],
                    density=data["density"], deposits=data["deposits"], outside=data["outside"],
                    temperature=data["temperature"], y_edges=data.get("y_edges"),
                    window=_attr(group, "window", ""), y_band=_attr(group, "y_band", "")))
        trackers = _read_group(f["trackers"]) if "trackers" in f else None
    sweep = config.get("sweep", {}) or {}
    return Run(path=path, name=config.get("run", {}).get("name", os.path.basename(path)),
               config=config, summary=summary, parameters=parameters, swept=swept,
               sweep_mode=sweep.get("mode", "grid"), variants=variants,
               first_passage=first_passage, samples=samples, histograms=histograms,
               trackers=trackers)


def is_log_spaced(values) -> bool:
    """True when the distinct values are positive and (nearly) geometric, with a wide range."""
    v = np.unique(np.asarray(values, float))
    if len(v) < 3 or np.any(v <= 0):
        return len(v) == 2 and np.all(v > 0) and v[1] / v[0] >= 10
    ratios = v[1:] / v[:-1]
    geometric = np.allclose(ratios, ratios[0], rtol=1e-3)
    arithmetic = np.allclose(np.diff(v), v[1] - v[0], rtol=1e-3)
    return geometric and not arithmetic or (not arithmetic and v[-1] / v[0] >= 20)


def cell_edges(values, log: bool) -> np.ndarray:
    """Edges of cells centred on sorted values (geometric midpoints on a log axis)."""
    v = np.asarray(values, float)
    if len(v) == 1:
        return np.array([v[0] / 1.5, v[0] * 1.5]) if log else np.array([v[0] - 0.5, v[0] + 0.5])
    t = np.log(v) if log else v
    mid = 0.5 * (t[1:] + t[:-1])
    edges = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return np.exp(edges) if log else edges
