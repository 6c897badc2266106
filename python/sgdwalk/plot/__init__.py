"""sgdwalk.plot: figures of sgdwalk runs with matplotlib.

Each drawing function takes a run (``sgdwalk.Results``, a run directory, or what ``load`` returns)
and an optional matplotlib ``ax``, draws on it (on a new figure without one) and returns the axes:

    >>> import sgdwalk, sgdwalk.plot
    >>> results = sgdwalk.run("examples/paper_phase_diagram.toml", backend="cpu")
    >>> ax = sgdwalk.plot.phase_diagram(results)               # P_flat over the swept grid
    >>> sgdwalk.plot.sweep(results, "mean_freezing_time", ax=other_ax)

``all_figures(run)`` and ``save_figures(run, out_dir)`` make the full set of figures (with markdown
tables and theory overlays) that the ``sgdwalk_plot`` command writes; ``python -m sgdwalk.plot``
(or ``python -m sgdwalk_plot``) is that command. Needs numpy, h5py and matplotlib; it does not need
sgdwalk's compiled core, so it also runs from a source tree or a CMake install.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from .run import Run, cell_edges, is_log_spaced, load_run

if TYPE_CHECKING:
    from typing import TypeVar

    from matplotlib.axes import Axes

    from .figures import Figure

    _T = TypeVar("_T")

__all__ = ["Run", "all_figures", "histogram", "load", "phase_diagram", "save_figures", "sweep",
           "time_series"]

RunLike = Union["Run", str, os.PathLike, Any]

#: Per-variant results that sweep() and phase_diagram() draw: (dataset of /variants, its standard
#: error, scaled by the learning rate (a time), axis label).
_QUANTITIES: dict[str, tuple[str, Optional[str], bool, str]] = {
    "p_flat": ("p_flat", "p_flat_stderr", False,
               r"$P_\mathrm{flat}$ (fraction of walkers, $x \geq 0$)"),
    "mean_freezing_time": ("mean_freezing_time", "mean_freezing_time_stderr", True,
                           r"$\eta\langle t_f\rangle$ (time, units of $\eta\cdot$steps)"),
    "mean_y_freeze": ("mean_y_freeze", "mean_y_freeze_stderr", False,
                      r"$\langle y_\mathrm{freeze}\rangle$ (progress coordinate)"),
    "mean_crossings": ("mean_crossings", None, False, "mean basin crossings per walker"),
}

#: Time series that time_series() draws: (dataset of /samples, its standard error, axis label).
_SAMPLES: dict[str, tuple[str, Optional[str], str]] = {
    "p_flat": ("p_flat", "p_flat_stderr", r"$P_\mathrm{flat}$ (fraction of walkers, $x \geq 0$)"),
    "y_mean": ("y_mean", None, r"ensemble mean $\langle y\rangle$ (training progress)"),
    "loss_mean": ("loss_mean", None, "ensemble mean of the loss"),
}


def load(run: RunLike) -> Run:
    """The run's arrays as the figures read them: from ``sgdwalk.Results`` (its run directory), a
    run directory, or a ``Run`` (returned as it is)."""
    if isinstance(run, Run):
        return run
    directory = getattr(run, "directory", run)  # sgdwalk.Results knows its run directory
    return load_run(os.fspath(directory))


def _axes(ax: Optional[Axes]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(constrained_layout=True)
    return ax


def _choice(name: str, value: str, allowed: dict[str, _T]) -> _T:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return allowed[value]


def _per_variant(run: Run, quantity: str) -> tuple[np.ndarray, Optional[np.ndarray], str]:
    name, stderr, is_time, label = _choice("quantity", quantity, _QUANTITIES)
    scale = run.eta if is_time else 1.0
    values = np.asarray(run.variants[name], float) * scale
    errors = None if stderr is None else np.asarray(run.variants[stderr], float) * scale
    return values, errors, label


def _label(name: str) -> str:
    from .figures import _label as figure_label

    return figure_label(name)


def phase_diagram(run: RunLike, quantity: str = "p_flat", *, ax: Optional[Axes] = None,
                  colorbar: bool = True, **pcolormesh_kwargs: Any) -> Axes:
    """A heat map of ``quantity`` (p_flat, mean_freezing_time as eta<t_f>, mean_y_freeze,
    mean_crossings) over a two-parameter grid sweep: the first swept parameter along x, the
    second along y, log axes for log-spaced values. Unfinished variants of a partial run are
    blank. Returns the axes."""
    run = load(run)
    shape = run.grid_shape()
    if shape is None:
        raise ValueError(f"phase_diagram needs a grid sweep of two parameters; run "
                         f"'{run.name}' sweeps {', '.join(run.swept) or 'nothing'}")
    values, _, label = _per_variant(run, quantity)
    (name_a, values_a), (name_b, values_b) = run.sweep_axes()
    n_a, n_b = shape
    xa, xb = values_a.reshape(n_a, n_b)[:, 0], values_b.reshape(n_a, n_b)[0, :]
    log_a, log_b = is_log_spaced(xa), is_log_spaced(xb)
    ax = _axes(ax)
    kwargs = {"cmap": "cividis" if quantity == "p_flat" else "viridis", "shading": "flat",
              **pcolormesh_kwargs}
    mesh = ax.pcolormesh(cell_edges(xa, log_a), cell_edges(xb, log_b),
                         np.ma.masked_invalid(values.reshape(n_a, n_b).T), **kwargs)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=label)  # type: ignore[union-attr, unused-ignore]
    ax.set_xscale("log" if log_a else "linear")
    ax.set_yscale("log" if log_b else "linear")
    ax.set_xlabel(_label(name_a))
    ax.set_ylabel(_label(name_b))
    ax.grid(False)
    return ax


def sweep(run: RunLike, quantity: str = "p_flat", *, ax: Optional[Axes] = None,
          errorbars: bool = True) -> Axes:
    """``quantity`` (as in phase_diagram) against the first swept parameter, one curve per value
    of the second in a two-parameter grid (else one curve; a zip sweep against its first
    parameter). Error bars: one standard error. Returns the axes."""
    run = load(run)
    if not run.swept:
        raise ValueError(f"sweep needs a swept parameter; run '{run.name}' has one variant")
    from .figures import LINESTYLES, MARKERS, OKABE_ITO, SYMBOLS

    values, errors, label = _per_variant(run, quantity)
    axes = run.sweep_axes()
    x_name, x = axes[0]
    shape = run.grid_shape()
    if shape is not None:
        groups: list[tuple[Optional[str], np.ndarray]] = [
            (rf"${SYMBOLS.get(axes[1][0], axes[1][0])}$ = {axes[1][1][j]:.3g}",
             np.arange(shape[0]) * shape[1] + j) for j in range(shape[1])]
    else:
        groups = [(None, np.argsort(x, kind="stable"))]
    ax = _axes(ax)
    for k, (curve, members) in enumerate(groups):
        ax.errorbar(x[members], values[members],
                    yerr=None if errors is None or not errorbars else errors[members],
                    color=OKABE_ITO[k % 7], marker=MARKERS[k % 7], ls=LINESTYLES[k % 4], ms=4,
                    capsize=2, label=curve)
    ax.set_xscale("log" if is_log_spaced(x) else "linear")
    ax.set_xlabel(_label(x_name))
    ax.set_ylabel(label)
    if shape is not None:
        ax.legend(loc="best")
    return ax


def time_series(run: RunLike, quantity: str = "p_flat", *, variants: Optional[Sequence[int]] = None,
                ax: Optional[Axes] = None) -> Axes:
    """``quantity`` (p_flat, y_mean, loss_mean) at the sample steps against the time
    eta x step, one curve per variant (default: up to 8, spread over the sweep). Returns the
    axes."""
    run = load(run)
    if run.samples is None:
        raise ValueError(f"run '{run.name}' has no samples (observables.sample_every)")
    from .figures import LINESTYLES, MARKERS, MAX_CURVES, OKABE_ITO, TIME_LABEL, _spread
    from .figures import _variant_label

    name, stderr, label = _choice("quantity", quantity, _SAMPLES)
    picks = list(variants) if variants is not None else _spread(run.variant_count, MAX_CURVES)
    for v in picks:
        if not (isinstance(v, (int, np.integer)) and 0 <= v < run.variant_count):
            raise IndexError(f"variants: {v!r} is not a variant of run '{run.name}'; allowed: "
                             f"0 to {run.variant_count - 1}")
    ax = _axes(ax)
    for k, v in enumerate(picks):
        ax.errorbar(run.samples["time"][v], run.samples[name][v],
                    yerr=None if stderr is None else run.samples[stderr][v],
                    color=OKABE_ITO[k % 7], marker=MARKERS[k % 7], ls=LINESTYLES[k % 4], ms=3,
                    capsize=1.5, label=_variant_label(run, v))
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel(label)
    ax.legend(loc="best")
    return ax


def histogram(run: RunLike, name: Optional[str] = None, *, variant: int = 0,
              potential: bool = False, ax: Optional[Axes] = None) -> Axes:
    """Histogram ``name`` (default: the run's first) of one variant: the probability density
    (``potential=True``: the effective potential -T ln density) over the bins; an xy histogram as
    a heat map. Returns the axes."""
    run = load(run)
    if not run.histograms:
        raise ValueError(f"run '{run.name}' has no histograms (observables.histogram)")
    by_name = {h.name: h for h in run.histograms}
    if name is None:
        name = run.histograms[0].name
    if name not in by_name:
        raise ValueError(f"run '{run.name}' has no histogram {name!r}; it has "
                         f"{', '.join(by_name)}")
    if not 0 <= variant < run.variant_count:
        raise IndexError(f"variant {variant} is out of range; allowed: 0 to "
                         f"{run.variant_count - 1}")
    h = by_name[name]
    values = np.asarray(h.density[variant], float)
    if potential:
        temperature = float(h.temperature[variant])
        with np.errstate(divide="ignore", invalid="ignore"):
            values = -temperature * np.log(values)
    label = "effective potential $-T \\ln P$ (loss units)" if potential else "probability density"
    ax = _axes(ax)
    if h.kind == "xy":
        mesh = ax.pcolormesh(h.x_edges, h.y_edges,  # type: ignore[arg-type]  # xy: has y_edges
                             np.ma.masked_invalid(values), cmap="viridis")
        ax.figure.colorbar(mesh, ax=ax, label=label)  # type: ignore[union-attr, unused-ignore]
        ax.set_xlabel("x")
        ax.set_ylabel("progress coordinate y")
        ax.grid(False)
    else:
        ax.stairs(np.where(np.isfinite(values), values, np.nan), h.x_edges)
        ax.set_xlabel("x")
        ax.set_ylabel(label)
    return ax


def all_figures(run: RunLike, *, theory: bool = True) -> list[Figure]:
    """Every figure that suits the run, as ``sgdwalk_plot`` draws them: a list of ``Figure``
    (name, matplotlib figure, markdown table, caption). A partial run's finished variants."""
    from .figures import figures_for

    return figures_for(load(run), with_theory=theory)


def save_figures(run: RunLike, out_dir: Union[str, os.PathLike], *,
                 formats: Sequence[str] = ("png", "svg"), dpi: int = 100,
                 theory: bool = True) -> list[Path]:
    """Writes all_figures(run) to ``out_dir`` (each as NAME.FORMAT, its table as NAME.md) and
    returns the paths written. Figures are closed after saving. (The ``sgdwalk_plot`` command also keeps
    figures of different runs in one directory apart; this writes under the run's name.)"""
    from .figures import write_figure

    run = load(run)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fig in all_figures(run, theory=theory):
        written += [Path(p) for p in write_figure(fig, out, formats, dpi, run.path)]
    return written
