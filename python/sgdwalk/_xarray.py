"""Results.to_xarray(): the datasets of results.h5 with named dimensions and coordinates."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from ._results import Results

#: Attributes of the file (and of groups) that describe the whole dataset.
_FILE_ATTRIBUTES = ("sgdwalk_version", "git_commit", "partial", "conventions", "config", "config_toml")


def _attrs(results: "Results", path: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """units, long_name (a short label) and description of a dataset as the file has them, plus
    its group's attributes."""
    file_attrs = results.attributes.get(path, {})
    attrs: dict[str, Any] = {}
    for key in ("units", "long_name", "description"):
        if key in file_attrs:
            attrs[key] = file_attrs[key]
    if "long_name" not in attrs and "description" in attrs:  # files before long_name was short
        attrs["long_name"] = attrs["description"]
    attrs.update(extra or {})
    return attrs


def _centres(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[:-1] + edges[1:])


def rare_events_to_xarray(results: "Results") -> xr.Dataset:
    """A forward flux sampling run's per-variant rates and errors along ``variant``."""
    data = results.datasets
    variants = results.variant_count
    coords: dict[str, Any] = {"variant": ("variant", np.arange(variants))}
    for name, values in results.swept_values().items():
        coords[name] = xr.Variable(("variant",), values, {"long_name": f"swept parameter {name}"})
    entries = results.rare_events["variants"]
    # Δ_S of each variant, unless the sweep gave it (exactly; summary.json's is η·σ recomputed).
    if "temperature" not in coords:
        coords["temperature"] = xr.Variable(
            ("variant",), np.array([entry["temperature"] for entry in entries], dtype=np.float64),
            {"long_name": "Δ_S = learning_rate · noise_strength"})
    variables = {}
    for path in data:
        group, _, name = path.rpartition("/")
        if group == "rare_events" and name != "variant":
            variables[name] = xr.Variable(("variant",), data[path], _attrs(results, path))
    # What summary.json adds per variant (the error of the rate per unit time, the pooled rate,
    # the cost) and the variant's warnings, one string each ("" when none).
    for name, entry_value in entries[0].items() if entries else []:
        if name in variables or name in coords or name in ("variant", "swept", "replicas"):
            continue
        if isinstance(entry_value, (int, float)) and not isinstance(entry_value, bool):
            column = [entry.get(name) for entry in entries]
            integers = all(isinstance(v, int) and not isinstance(v, bool) for v in column)
            values = (np.array(column, dtype=np.int64) if integers else
                      np.array([math.nan if v is None else v for v in column], dtype=np.float64))
            variables[name] = xr.Variable(("variant",), values,
                                          {"long_name": f"{name} (summary.json)"})
    variables["warnings"] = xr.Variable(
        ("variant",), np.array(["\n".join(entry.get("warnings", [])) for entry in entries],
                               dtype=object),
        {"long_name": "the variant's warnings, one per line"})
    return xr.Dataset(variables, coords=coords, attrs={"method": "ffs"})


def results_to_xarray(results: "Results", grid: bool = False) -> xr.Dataset:
    data = results.datasets
    variants = results.variant_count
    coords: dict[str, Any] = {"variant": xr.Variable(
        ("variant",), np.arange(variants),
        _attrs(results, "variants/variant") if "variants/variant" in data else {})}
    variables: dict[str, Any] = {}
    swept = set(results.swept)

    def repeated(group: str) -> set[str]:
        """Coordinates that results.h5 repeats in each group with per-variant data (netCDF readers
        open one group at a time): `variant` and those its `coordinates` attribute names (the
        swept parameters; a dataset of the same name that is not listed is data, e.g. a
        histogram's temperature). Here they are coordinates once."""
        names = results.attributes.get(group, {}).get("coordinates", "")
        return {"variant", *names.split()}

    def add(name: str, dims: tuple[str, ...], path: str,
            extra: dict[str, Any] | None = None) -> None:
        variables[name] = xr.Variable(dims, data[path], _attrs(results, path, extra))

    # Parameters: coordinates along variant; swept ones hold the swept values exactly (a swept
    # temperature or dt is not what the file's derived columns would round to).
    for path in data:
        if path.startswith("parameters/"):
            name = path.rsplit("/", 1)[1]
            if name != "variant" and name not in swept:
                coords[name] = xr.Variable(("variant",), data[path], _attrs(results, path))
    for name, values in results.swept_values().items():
        # The units and long_name of the swept parameter's copy in /variants (the exact values).
        attrs = (_attrs(results, f"variants/{name}") if f"variants/{name}" in data
                 else {"long_name": f"swept parameter {name}"})
        coords[name] = xr.Variable(("variant",), values, attrs)

    for path in data:
        group, _, name = path.partition("/")
        if name in repeated(group):
            continue
        if group == "variants":
            add(name, ("variant",), path)
        elif group == "first_passage":
            add(f"first_passage_{name}", ("variant",), path)

    # Time series at the sample steps.
    if "samples/step" in data:
        coords["step"] = xr.Variable(("step",), data["samples/step"], _attrs(results, "samples/step"))
        coords["time"] = xr.Variable(("variant", "step"), data["samples/time"],
                                     _attrs(results, "samples/time"))
        if "samples/elapsed_time" in data:  # files before 2026-12-06 have time only
            coords["elapsed_time"] = xr.Variable(("variant", "step"), data["samples/elapsed_time"],
                                                 _attrs(results, "samples/elapsed_time"))
        # The dimension's own coordinate dataset (files before it had quantile_levels only).
        levels = "samples/quantile" if "samples/quantile" in data else "samples/quantile_levels"
        coords["quantile"] = xr.Variable(("quantile",), data[levels], _attrs(results, levels))
        for path in data:
            group, _, name = path.partition("/")
            if group != "samples" or name in ("step", "time", "elapsed_time", "quantile", "quantile_levels",
                                              *repeated("samples")):
                continue
            dims: tuple[str, ...] = (("variant", "step", "quantile") if data[path].ndim == 3
                                     else ("variant", "step"))
            add(f"samples_{name}", dims, path)

    # Histograms: bin centres as coordinates, edges on their own dimension.
    for hist, fields in results.histograms.items():
        prefix = f"hist_{hist}"
        group_attrs = {key: value for key, value in
                       results.attributes.get(f"histograms/{hist}", {}).items()
                       if key in ("window", "y_band")}
        bin_dims = []
        for axis in ("y", "x"):
            if f"{axis}_edges" not in fields:
                continue
            edges = fields[f"{axis}_edges"]
            edges_path = f"histograms/{hist}/{axis}_edges"
            centres_path = f"histograms/{hist}/{axis}"
            attrs = (_attrs(results, centres_path) if centres_path in data else
                     {"long_name": f"bin centres along {axis} of histogram {hist}"})
            coords[f"{prefix}_{axis}"] = xr.Variable(
                (f"{prefix}_{axis}",), _centres(edges),
                {**attrs, "bounds": f"{prefix}_{axis}_edges"})
            coords[f"{prefix}_{axis}_edges"] = xr.Variable(
                (f"{prefix}_{axis}_edges",), edges, _attrs(results, edges_path))
            bin_dims.append(f"{prefix}_{axis}")
        for name, array in fields.items():
            if name.endswith("_edges") or name in ("x", "y", *repeated(f"histograms/{hist}")):
                continue
            dims = ("variant", *bin_dims) if array.ndim > 1 else ("variant",)
            add(f"{prefix}_{name}", dims, f"histograms/{hist}/{name}", group_attrs)

    # Tracker histograms: log2 bins (bin 0 holds 0, bin b >= 1 holds [2^(b-1), 2^b)), and the
    # sparse y_freeze bins of all variants concatenated (variant v's are offsets[v]:offsets[v+1]).
    if "trackers/log2_edges" in data:
        edges = data["trackers/log2_edges"]
        coords["log2_bin"] = xr.Variable(("log2_bin",), edges[:-1],
                                         _attrs(results, "trackers/log2_bin")
                                         if "trackers/log2_bin" in data
                                         else {"long_name": "lower edge of the log2 bin"})
        coords["trackers_log2_edges"] = xr.Variable(("trackers_log2_edges",), edges,
                                                    _attrs(results, "trackers/log2_edges"))
        for path in data:
            group, _, name = path.partition("/")
            if group != "trackers" or name in ("log2_edges", "log2_bin", *repeated("trackers")):
                continue
            if name.startswith("y_freeze_"):
                dims = ("variant_boundary",) if name == "y_freeze_offsets" else ("y_freeze_bin",)
            else:
                dims = ("variant", "log2_bin") if data[path].ndim == 2 else ("variant",)
            add(f"trackers_{name}", dims, path)

    # Per-walker output.
    if "walkers/variant" in data:
        coords["walkers_variant"] = xr.Variable(("walker",), data["walkers/variant"],
                                                _attrs(results, "walkers/variant"))
        coords["walkers_walker"] = xr.Variable(("walker",), data["walkers/walker"],
                                               _attrs(results, "walkers/walker"))
        dim = data["walkers/position"].shape[1]
        coords["coordinate"] = ("coordinate", ["x", "y", "z"][:dim] if dim <= 3 else np.arange(dim))
        for path in data:
            group, _, name = path.partition("/")
            if group != "walkers" or name in ("variant", "walker"):
                continue
            dims = ("walker", "coordinate") if data[path].ndim == 2 else ("walker",)
            if name == "optimizer_state":  # velocity, or first then second moments
                dims = ("walker", "optimizer_component")
            add(f"walkers_{name}", dims, path)

    file_attrs = results.attributes.get("/", {})
    attrs = {key: file_attrs[key] for key in _FILE_ATTRIBUTES if key in file_attrs}
    attrs["swept"] = ",".join(results.swept)
    if "first_passage_target" in results.attributes.get("variants", {}):
        attrs["first_passage_target"] = results.attributes["variants"]["first_passage_target"]
    dataset = xr.Dataset(variables, coords=coords, attrs=attrs)

    if grid:
        dataset = _unstack_grid(results, dataset)
    return dataset


def _unstack_grid(results: "Results", dataset: xr.Dataset) -> xr.Dataset:
    """One dimension per swept parameter in place of ``variant``, each sorted by value and in
    sweep order (first key slowest) before the others; ``variant`` stays as a coordinate on the
    grid (the index that replay and /variants take), and per-walker data get the same grid
    dimensions before ``walker`` (the index within the variant)."""
    swept = results.swept
    if not swept:
        raise ValueError("to_xarray(grid=True) needs a sweep; this run has a single variant")
    if results.config.get("sweep", {}).get("mode", "grid") != "grid":
        raise ValueError("to_xarray(grid=True) needs a grid sweep; this run's sweep is a zip")
    variants = results.variant_count
    values = results.swept_values()
    distinct = {name: np.unique(values[name]) for name in swept}
    if math.prod(len(axis) for axis in distinct.values()) != variants:
        counts = " x ".join(f"{len(distinct[name])} ({name})" for name in swept)
        raise ValueError(
            "to_xarray(grid=True) needs distinct values along each swept parameter (one grid "
            f"point per variant), but the {variants} variants take {counts} distinct values: a "
            "swept parameter repeats a value. Use to_xarray() and select by variant")
    dataset = _walkers_by_variant(dataset, variants)
    # `variant` stays on the grid as a plain coordinate: kept aside while it is the index.
    dataset = dataset.assign_coords(variant_on_grid=("variant", np.arange(variants)))
    if len(swept) == 1:  # one parameter: a plain index, not a multi-index to unstack
        dataset = dataset.swap_dims(variant=swept[0]).drop_vars("variant").sortby(swept[0])
    else:
        dataset = dataset.set_index(variant=swept).unstack("variant")
    return dataset.rename(variant_on_grid="variant").transpose(*swept, ...)


def _walkers_by_variant(dataset: xr.Dataset, variants: int) -> xr.Dataset:
    """Per-walker data from (walker) to (variant, walker), walker now the index within the
    variant, when the file holds every walker of every variant in order (a stopped run's file
    does too: the walkers that had not finished are placeholders there, NaN positions and basin
    -1, and ``complete`` says which variants finished). Otherwise they stay along the flat walker
    dimension."""
    if "walker" not in dataset.dims:
        return dataset
    per_variant = dataset.sizes["walker"] // variants
    if per_variant * variants != dataset.sizes["walker"] or not (
            np.array_equal(dataset["walkers_variant"].values,
                           np.repeat(np.arange(variants), per_variant)) and
            np.array_equal(dataset["walkers_walker"].values,
                           np.tile(np.arange(per_variant), variants))):
        return dataset  # not every walker in order: left along the flat walker dimension
    reshaped = {}
    for name, variable in dataset.variables.items():
        if "walker" not in variable.dims or name in ("walkers_variant", "walkers_walker"):
            continue
        dims: list[Hashable] = []
        shape: list[int] = []
        for dim, size in zip(variable.dims, variable.shape):
            dims += ["variant", "walker"] if dim == "walker" else [dim]
            shape += [variants, per_variant] if dim == "walker" else [size]
        reshaped[name] = xr.Variable(dims, variable.values.reshape(shape), variable.attrs)
    walker_attrs = dataset["walkers_walker"].attrs
    dataset = dataset.drop_vars(["walkers_variant", "walkers_walker", *reshaped])
    return dataset.assign(reshaped).assign_coords(
        walker=xr.Variable(("walker",), np.arange(per_variant), walker_attrs))
