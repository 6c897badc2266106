"""results.h5 as netCDF-4: xarray.open_dataset(..., engine="h5netcdf", group=GROUP) names every
dimension and coordinate of every group, and agrees with Results.to_xarray() (which reads the
file's arrays with h5py and names them itself) value for value."""

from __future__ import annotations

import h5netcdf  # noqa: F401  (a dependency of the package: the engine these tests use)
import xarray as xr

import sgdwalk
from conftest import SMALL_CONFIG, assert_same_bits, cli_run, h5_contents

#: Dimensions of each group of SMALL_CONFIG's results.h5.
EXPECTED_DIMENSIONS = {
    "parameters": {"variant": 6},
    "parameters/landscape": {"variant": 6},
    "variants": {"variant": 6},
    "first_passage": {"variant": 6},
    "samples": {"variant": 6, "step": 7, "quantile": 5},
    "histograms/x_band": {"variant": 6, "x": 16, "x_edges": 17},
    "histograms/xy": {"variant": 6, "x": 8, "x_edges": 9, "y": 4, "y_edges": 5},
    "trackers": {"variant": 6, "log2_bin": 64, "log2_edges": 65, "variant_boundary": 7},
    "walkers": {"walker": 1800, "coordinate": 2},
}

SWEPT = ("noise_strength", "learning_rate")


def name_in_view(group: str, name: str) -> str:
    """The name that Results.to_xarray() gives the variable `name` of group `group`."""
    if group == "walkers":
        return f"walkers_{name}"
    if group.startswith("parameters") or group == "variants" or name in ("variant", *SWEPT):
        return name
    if group == "samples":
        return {"step": "step", "time": "time", "elapsed_time": "elapsed_time",
                "quantile": "quantile", "quantile_levels": "quantile"}.get(name, f"samples_{name}")
    if group.startswith("histograms/"):
        return f"hist_{group.split('/')[1]}_{name}"
    if group == "trackers" and name == "log2_bin":
        return name
    return f"{group}_{name}"  # first_passage_, trackers_, walkers_


def dimension_in_view(group: str, dim: str) -> str:
    """The name that Results.to_xarray() gives the dimension `dim` of group `group`."""
    if group.startswith("histograms/") and dim != "variant":
        return f"hist_{group.split('/')[1]}_{dim}"
    return {"log2_edges": "trackers_log2_edges"}.get(dim, dim)


def test_every_group_has_named_dimensions_and_agrees_with_to_xarray(cli, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text(SMALL_CONFIG)
    run_dir = cli_run(cli, config, tmp_path / "run")
    path = run_dir / "results.h5"
    datasets, _ = h5_contents(path)
    view = sgdwalk.load(run_dir).to_xarray()
    groups = sorted({name.rsplit("/", 1)[0] for name in datasets})
    assert groups == sorted(EXPECTED_DIMENSIONS)

    for group in groups:
        with xr.open_dataset(path, engine="h5netcdf", group=group) as ds:
            assert dict(ds.sizes) == {**EXPECTED_DIMENSIONS[group],
                                      **({"y_freeze_bin": ds.sizes.get("y_freeze_bin")}
                                         if group == "trackers" else {})}, group
            assert ds.sizes.get("y_freeze_bin", 1) > 0
            # Every dataset of the group is a variable of the netCDF view (dimensions without
            # values are not datasets of h5_contents either).
            in_group = {name.rsplit("/", 1)[1] for name in datasets
                        if name.rsplit("/", 1)[0] == group}
            assert set(ds.variables) == in_group, group
            for name, variable in ds.variables.items():
                where = f"{group}/{name}"
                target = name_in_view(group, name)
                assert target in view.variables, where
                expected = view[target].variable
                dims = tuple(dimension_in_view(group, d) for d in variable.dims)
                assert dims == expected.dims, where
                assert_same_bits(expected.values, variable.values, where)
                assert_same_bits(datasets[f"{group}/{name}"], variable.values, where)
                if name in ds.coords:
                    assert target in view.coords, where
                for key in ("units", "long_name"):
                    if key in expected.attrs and target != "quantile":
                        assert variable.attrs[key] == expected.attrs[key], f"{where} {key}"
                assert "units" in variable.attrs and "long_name" in variable.attrs, where
            # The swept parameters are coordinates along variant in every group that has it,
            # with the swept values (first key slowest); /parameters/landscape holds none of them
            # (the groups of parameters name those they hold and copy none).
            if group == "parameters/landscape":
                assert set(ds.coords) == {"variant"}
            elif "variant" in ds.dims:
                assert list(ds.variant.values) == list(range(6)), group
                assert list(ds.noise_strength.values) == [0.01] * 3 + [0.05] * 3, group
                assert list(ds.learning_rate.values) == [0.05, 0.1, 0.2] * 2, group
                assert {"variant", *SWEPT} <= set(ds.coords), group

    with xr.open_dataset(path, engine="h5netcdf", group="samples") as samples:
        assert samples.p_flat.dims == ("variant", "step")
        assert samples.y_quantiles.dims == ("variant", "step", "quantile")
        assert samples.time.dims == ("variant", "step") and "time" in samples.coords
        assert "elapsed_time" in samples.coords  # no schedule: equal to time
        assert (samples.elapsed_time.values == samples.time.values).all()
        assert float(samples.y_quantiles.sel(quantile=0.5, step=3000)[4]) == \
            datasets["samples/y_quantiles"][4, -1, 2]
        # A grid of the swept parameters, as to_xarray(grid=True) makes it.
        grid = samples.set_index(variant=list(SWEPT)).unstack("variant")
        assert float(grid.p_flat.sel(noise_strength=0.05, learning_rate=0.1, step=3000)) == \
            datasets["samples/p_flat"][4, -1]
    with xr.open_dataset(path, engine="h5netcdf", group="histograms/xy") as xy:
        assert xy.counts.dims == ("variant", "y", "x")
        edges = datasets["histograms/xy/x_edges"]
        assert_same_bits(0.5 * (edges[:-1] + edges[1:]), xy.x.values, "bin centres")
        assert xy.x.attrs["long_name"] == "bin centres along coordinate 0"
        assert xy.x.attrs["description"].endswith("(edges in x_edges)")
    with xr.open_dataset(path, engine="h5netcdf", group="walkers") as walkers:
        assert walkers.position.dims == ("walker", "coordinate")
        assert "variant" in walkers.coords and "walker" in walkers.coords
        # (variant, walker) identifies a walker.
        one = walkers.position.where((walkers.variant == 4) & (walkers.walker == 34), drop=True)
        assert_same_bits(datasets["walkers/position"][4 * 300 + 34], one.values[0],
                         "position of walker 34 of variant 4")


def test_a_single_variant_run_without_a_sweep(cli, tmp_path):
    """No sweep, no histograms, no per-walker output: still named dimensions, no phony ones."""
    config = tmp_path / "plain.toml"
    config.write_text(SMALL_CONFIG.split("[observables]")[0].replace(
        "learning_rate = 0.05", "learning_rate = 0.05\nnoise_strength = 0.01"))
    run_dir = cli_run(cli, config, tmp_path / "run")
    for group in ("parameters", "variants", "samples", "trackers"):
        with xr.open_dataset(run_dir / "results.h5", engine="h5netcdf", group=group) as ds:
            assert not [d for d in ds.dims if str(d).startswith("phony_dim")], group
            assert ds.sizes["variant"] == 1
            assert "coordinates" not in ds.attrs  # nothing swept: no extra coordinates
    datasets, _ = h5_contents(run_dir / "results.h5")
    assert not [name for name in datasets if name.startswith(("histograms", "walkers"))]


def test_a_swept_name_that_a_group_uses_for_data_stays_data(tmp_path):
    """A swept temperature is a coordinate in every group but a histogram's, whose temperature
    dataset (T of its effective potential) stays data there and in to_xarray()."""
    config = """
[run]
name = "slice"
walkers = 100
steps = 400
[landscape]
kind = "two_valley_slice"
y = 40.0
[dynamics]
dt = 0.001
temperature = 0.03
[init]
positions = [[-0.01], [0.01]]
[[observables.histogram]]
name = "x"
x_range = [-1.2, 1.4]
bins = 10
window = [200, 400]
every = 10
[sweep]
temperature = [0.03, 0.05]
dt = [0.001, 0.002]
"""
    results = sgdwalk.run(config, backend="cpu", out=tmp_path / "run", progress=False)
    view = results.to_xarray()
    path = tmp_path / "run" / "results.h5"
    with xr.open_dataset(path, engine="h5netcdf", group="variants") as variants:
        assert list(variants.temperature.values) == [0.03, 0.03, 0.05, 0.05]
        assert list(variants.dt.values) == [0.001, 0.002] * 2
    with xr.open_dataset(path, engine="h5netcdf", group="histograms/x") as histogram:
        assert "temperature" in histogram.data_vars and "dt" in histogram.coords
        assert_same_bits(histogram.temperature.values, view.hist_x_temperature.values,
                         "histogram temperature")
    assert list(view.temperature.values) == [0.03, 0.03, 0.05, 0.05]
