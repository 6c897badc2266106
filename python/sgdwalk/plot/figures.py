"""The figures: each function takes a Run and returns a list of Figure results (name, matplotlib
figure, markdown table). `figures_for(run)` chooses them from what the run contains."""

from __future__ import annotations

import math
import os
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from . import theory
from .run import Run, _parameter_key, cell_edges, is_log_spaced

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    import matplotlib.figure
    from matplotlib.axes import Axes
    from numpy.typing import ArrayLike

    from .run import Histogram

# Okabe-Ito colours (distinguishable with every common colour-vision deficiency), without yellow,
# which is too light for lines; markers and line styles vary too, so no figure relies on colour.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
LINESTYLES = ["-", "--", "-.", ":"]
THEORY_STYLE: dict[str, dict[str, Any]] = {
    "mfpt_shift": dict(color="#000000", ls="-", lw=1.6),
    "mfpt": dict(color="#000000", ls="--", lw=1.2),
    "kramers": dict(color="#D55E00", ls=":", lw=1.6),
    "erfi": dict(color="#009E73", ls="-.", lw=1.4),
}

LABELS = {
    "learning_rate": r"learning rate $\eta$",
    "dt": r"time step $dt$",
    "noise_strength": r"noise strength $\sigma$",
    "temperature": r"$\Delta_S = \eta\sigma$ (loss units)",
    "epsilon": r"regulariser $\varepsilon$",
    "alpha": r"tail index $\alpha$ of the $\alpha$-stable noise",
}
SYMBOLS = {"learning_rate": r"\eta", "dt": "dt", "noise_strength": r"\sigma",
           "temperature": r"\Delta_S", "epsilon": r"\varepsilon", "alpha": r"\alpha"}
PLAIN_SYMBOLS = {"learning_rate": "η", "dt": "dt", "noise_strength": "σ", "temperature": "Δ_S",
                 "epsilon": "ε", "alpha": "α"}
# The most curves (or variants) one panel shows; beyond it a figure shows a spread and says so.
MAX_CURVES = 8
P_FLAT_LABEL = r"$P_\mathrm{flat}$ (fraction of walkers, $x \geq 0$)"
TF_LABEL = r"$\eta\langle t_f\rangle$ (time, units of $\eta\cdot$steps)"
YF_LABEL = r"$\langle y_\mathrm{freeze}\rangle$ (progress coordinate)"
TIME_LABEL = r"time $t = \eta\cdot$step"


@dataclass
class Figure:
    name: str  # file stem, e.g. "paper_phase_diagram_heatmaps"
    figure: matplotlib.figure.Figure
    table: str  # markdown (may be empty)
    caption: str = ""
    notes: list[str] = field(default_factory=list)  # what the figure leaves out, for the console


def _style() -> None:
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 10,
        "axes.labelsize": 9, "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3,
        "axes.prop_cycle": plt.cycler(color=OKABE_ITO), "svg.fonttype": "none",
    })


def _label(name: str) -> str:
    return LABELS.get(name, f"landscape parameter ${name}$" if len(name) < 4 else name)


def _symbol(name: str) -> str:
    return SYMBOLS.get(name, name)


def _plain_symbol(name: str) -> str:
    """The symbol of a parameter in plain text (markdown tables, file notes)."""
    return PLAIN_SYMBOLS.get(name, name)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}"


def _pm(mean: float, se: float, digits: int = 4) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}g} ± {se:.2g}" if math.isfinite(se) else f"{mean:.{digits}g}"


# Coverage of the +-1 standard error bars, used for the exact interval that replaces them where
# the standard error is 0 (P_flat = 0 or 1).
ONE_SIGMA_LEVEL = 0.6827
CP_NOTE = ("Where P_flat is 0 or 1 its standard error is 0; those cells give the exact 68.3 % "
           "Clopper–Pearson interval instead (the coverage of ±1 s.e.), and the plots draw it "
           "as the error bar.")


def clopper_pearson_extreme(p: float, n: float,
                            level: float = ONE_SIGMA_LEVEL) -> tuple[float, float] | None:
    """(low, high) of the exact two-sided Clopper–Pearson interval for a fraction p of n trials
    when p is 0 or 1 (closed form: (alpha/2)^(1/n)); None otherwise."""
    if not (n > 0 and math.isfinite(p)) or p not in (0.0, 1.0):
        return None
    bound = ((1 - level) / 2) ** (1 / n)
    return (bound, 1.0) if p == 1.0 else (0.0, 1 - bound)


def _p_flat_cell(p: float, se: float, n: float, digits: int = 4) -> str:
    """P_flat ± se, or at 0 or 1 the exact interval (never "1 ± 0")."""
    p = float(p)
    interval = clopper_pearson_extreme(p, float(n))
    if interval is not None:
        return f"{p:.{digits}g} [{interval[0]:.4g}, {interval[1]:.4g}] (68 % CP)"
    return _pm(p, float(se), digits)


def _p_flat_yerr(p: ArrayLike, se: ArrayLike, n: ArrayLike) -> np.ndarray:
    """2 x N error bars: ±se, or the Clopper–Pearson interval where P_flat is 0 or 1."""
    p, se = np.asarray(p, float), np.asarray(se, float)
    n = np.broadcast_to(np.asarray(n, float), p.shape)
    lower, upper = se.copy(), se.copy()
    for i in np.ndindex(p.shape):
        interval = clopper_pearson_extreme(float(p[i]), float(n[i]))
        if interval is not None:
            lower[i], upper[i] = p[i] - interval[0], interval[1] - p[i]
    return np.array([lower, upper])


def _table(header: Sequence[str], rows: Iterable[Iterable[object]],
           notes: Sequence[str] = ()) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    return text


def _plain(text: str) -> str:
    """A title's TeX fragments in plain text (console notes, markdown)."""
    for tex, plain in ((r"\Delta_S", "Δ_S"), (r"\sigma", "σ"), (r"\eta", "η"),
                       (r"\varepsilon", "ε"), ("$", "")):
        text = text.replace(tex, plain)
    return text


def _fixed_text(run: Run) -> str:
    fixed = run.fixed_parameters()
    return ", ".join(f"${_symbol(name)}$ = {value:.4g}" for name, value in fixed)


def _title(run: Run, what: str, notes: Iterable[str] = ()) -> str:
    """Three lines at most: what, the setup with the fixed parameters, and what the reader must
    know (a partial run, diverged walkers, the figure's own notes)."""
    fixed = _fixed_text(run)
    lines = [f"{run.name}: {what}",
             f"{run.landscape}, {run.noise} noise, {run.walkers} walkers x {run.steps} steps per "
             f"variant" + (f"; fixed: {fixed}" if fixed else "")]
    caveats = [run.partial_note()] + [w for w in run.warnings() if w.startswith("walkers diverged")]
    caveats += list(notes)
    caveats = [c for c in caveats if c]
    if caveats:
        # Wrapped at spaces (never inside a $...$ symbol, which holds none).
        lines.append(textwrap.fill("; ".join(caveats), 140))
    return "\n".join(lines)


def _variant_label(run: Run, v: int, tex: bool = True) -> str:
    """The swept parameters of variant v ("η = 0.01, σ = 0.1"); "variant 3" if none is swept."""
    parts = []
    for name, values in run.sweep_axes():
        symbol = f"${_symbol(name)}$" if tex else _plain_symbol(name)
        parts.append(f"{symbol} = {values[v]:.3g}")
    return ", ".join(parts) or f"variant {run.index_of(v)}"


def _mark_diverged(ax: Axes, run: Run, x: ArrayLike, y: ArrayLike,
                   indices: Iterable[int] | None = None) -> None:
    """Crosses at the variants some of whose walkers diverged (at the bottom of the axis where
    the value itself is missing), so that a gap or an odd point is explained in the figure."""
    indices = range(run.variant_count) if indices is None else indices
    hit = [i for i in indices if run.nonfinite_walkers[i] > 0]
    if not hit:
        return
    xs = np.asarray(x, float)[hit]
    ys = np.asarray(y, float)[hit]
    finite = np.isfinite(ys)
    label: str | None = "variant with diverged walkers"
    if finite.any():
        ax.plot(xs[finite], ys[finite], ls="none", marker="x", ms=9, mew=2, color="#CC0000",
                label=label, zorder=4)
        label = None
    if (~finite).any():
        ax.plot(xs[~finite], np.zeros(int((~finite).sum())), ls="none", marker="x", ms=9,
                mew=2, color="#CC0000", label=label, zorder=4,
                transform=ax.get_xaxis_transform())


def _empty_axes_note(ax: Axes, text: str, width: int = 48) -> None:
    """A boxed note in the middle of an axes that would otherwise be blank (or misleading)."""
    note = ax.text(0.5, 0.5, textwrap.fill(text, width), transform=ax.transAxes, ha="center",
                   va="center", fontsize=8, color="#CC0000", zorder=5,
                   bbox=dict(boxstyle="round", facecolor="white", edgecolor="#CC0000"))
    note.set_in_layout(False)  # the axes keep their size


def _spread(n: int, most: int) -> list[int]:
    """Up to `most` indices spread evenly over [0, n), first and last included."""
    if n <= most:
        return list(range(n))
    return sorted({int(round(i * (n - 1) / (most - 1))) for i in range(most)})


def _is_two_valley_slice(run: Run) -> bool:
    return run.landscape == "two_valley_slice"


def _params(run: Run, v: int) -> tuple[theory.TwoValleyParams, Any]:
    # (y: a float on a two_valley_slice run, where the theory applies; None elsewhere.)
    values = run.landscape_params(v)
    return theory.TwoValleyParams.from_mapping(values), values.get("y")


# ---- 2-D sweeps: heat maps ----------------------------------------------------------------------
def heatmaps(run: Run) -> list[Figure]:
    shape = run.grid_shape()
    (name_a, values_a), (name_b, values_b) = run.sweep_axes()
    n_a, n_b = shape  # type: ignore[misc]  # figures_for: a grid sweep
    xa = values_a.reshape(n_a, n_b)[:, 0]
    xb = values_b.reshape(n_a, n_b)[0, :]
    log_a, log_b = is_log_spaced(xa), is_log_spaced(xb)
    ea, eb = cell_edges(xa, log_a), cell_edges(xb, log_b)
    v = run.variants
    p_flat = v["p_flat"].reshape(n_a, n_b)
    tf = (run.eta * v["mean_freezing_time"]).reshape(n_a, n_b)
    yf = v["mean_y_freeze"].reshape(n_a, n_b)
    # A partial run's unfinished cells are NaN (left blank); the scales come from the finished.
    tf_positive = tf[np.isfinite(tf) & (tf > 0)]
    wide_tf = tf_positive.size > 0 and tf_positive.max() / tf_positive.min() > 30
    panels = [
        ("P_flat", p_flat, P_FLAT_LABEL, "cividis", None),
        ("eta t_f", tf, TF_LABEL, "viridis", LogNorm() if wide_tf else None),
        ("y_freeze", yf, YF_LABEL, "viridis", None),
    ]
    diverged = run.nonfinite_walkers.reshape(n_a, n_b) > 0
    centres_a = np.sqrt(ea[1:] * ea[:-1]) if log_a else 0.5 * (ea[1:] + ea[:-1])
    centres_b = np.sqrt(eb[1:] * eb[:-1]) if log_b else 0.5 * (eb[1:] + eb[:-1])
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2), constrained_layout=True)
    dynamics_pair = {name_a, name_b} <= {"learning_rate", "noise_strength", "dt"}
    for ax, (_, data, label, cmap, norm) in zip(axes, panels):
        kwargs: dict[str, Any] = dict(cmap=cmap, shading="flat")
        if norm is not None:
            kwargs["norm"] = norm
        elif label == P_FLAT_LABEL:
            finite = data[np.isfinite(data)]
            kwargs.update(vmin=min(0.4, float(finite.min())) if finite.size else 0.4, vmax=1.0)
        mesh = ax.pcolormesh(ea, eb, np.ma.masked_invalid(data.T), **kwargs)
        fig.colorbar(mesh, ax=ax, label=label, shrink=0.9)
        ax.set_xscale("log" if log_a else "linear")
        ax.set_yscale("log" if log_b else "linear")
        ax.set_xlabel(_label(name_a))
        ax.set_ylabel(_label(name_b))
        ax.grid(False)
        if dynamics_pair and log_a and log_b:
            # Lines of constant Delta_S = eta sigma (the continuum noise strength).
            grid_a, grid_b = np.meshgrid(np.geomspace(ea[0], ea[-1], 200),
                                         np.geomspace(eb[0], eb[-1], 200), indexing="ij")
            levels = np.geomspace(1e-6, 1.0, 13)
            cs = ax.contour(grid_a, grid_b, grid_a * grid_b, levels=levels, colors="white",
                            linestyles=":", linewidths=0.8)
            ax.clabel(cs, fmt=lambda z: rf"$\Delta_S$={z:.0e}", fontsize=6)
        if diverged.any():
            ia, ib = np.nonzero(diverged)
            ax.plot(centres_a[ia], centres_b[ib], ls="none", marker="x", ms=8, mew=2,
                    color="#CC0000", label="walkers diverged (left out)")
            ax.legend(loc="upper left", fontsize=7)
        ax.set_xlim(ea[0], ea[-1])
        ax.set_ylim(eb[0], eb[-1])
    notes = ["blank cells: variants not finished"] if run.partial else []
    fig.suptitle(_title(run, "phase diagram", notes), fontsize=10)

    # Table: the corners and the centre, with standard errors.
    se_p = v["p_flat_stderr"].reshape(n_a, n_b)
    se_tf = (run.eta * v["mean_freezing_time_stderr"]).reshape(n_a, n_b)
    se_yf = v["mean_y_freeze_stderr"].reshape(n_a, n_b)
    n_finite = run.finite_walkers.reshape(n_a, n_b)
    cells = [(0, 0), (0, n_b - 1), (n_a - 1, 0), (n_a - 1, n_b - 1), (n_a // 2, n_b // 2)]
    rows = []
    for i, j in cells:
        rows.append([_fmt(xa[i]), _fmt(xb[j]), _fmt(xa[i] * xb[j]) if dynamics_pair else "",
                     _p_flat_cell(p_flat[i, j], se_p[i, j], n_finite[i, j]),
                     _pm(tf[i, j], se_tf[i, j]), _pm(yf[i, j], se_yf[i, j])])
    notes = []
    if any(clopper_pearson_extreme(float(p_flat[i, j]), float(n_finite[i, j])) is not None
           for i, j in cells):
        notes.append(CP_NOTE)
    notes += [f"Note: {w}." for w in [run.partial_note()] + run.warnings() if w]
    header = [f"${SYMBOLS.get(name_a, name_a)}$", f"${SYMBOLS.get(name_b, name_b)}$",
              r"$\eta\sigma$", "P_flat ± se", "η⟨t_f⟩ ± se", "⟨y_freeze⟩ ± se"]
    table = _table(header, rows, notes)
    figures = [Figure(f"{run.name}_heatmaps", fig, table,
                      "P_flat, eta<t_f> and <y_freeze> over the swept grid")]
    if dynamics_pair:
        figures.append(_collapse(run, name_a, name_b, xa, n_a, n_b))
    return figures


def _collapse(run: Run, name_a: str, name_b: str, xa: np.ndarray, n_a: int, n_b: int) -> Figure:
    """P_flat against Delta_S = eta sigma, one curve per value of the first swept parameter."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    ds = run.delta_s.reshape(n_a, n_b)
    p = run.variants["p_flat"].reshape(n_a, n_b)
    se = run.variants["p_flat_stderr"].reshape(n_a, n_b)
    tf = (run.eta * run.variants["mean_freezing_time"]).reshape(n_a, n_b)
    tf_se = (run.eta * run.variants["mean_freezing_time_stderr"]).reshape(n_a, n_b)
    picks = _spread(n_a, 6)
    n_finite = run.finite_walkers.reshape(n_a, n_b)
    for k, i in enumerate(picks):
        style = dict(color=OKABE_ITO[k % 7], marker=MARKERS[k % 7], ms=4,
                     ls=LINESTYLES[k % 4], lw=1, capsize=2)
        lab = rf"${SYMBOLS.get(name_a, name_a)}$ = {xa[i]:.3g}"
        done = np.isfinite(p[i])  # a partial run's unfinished variants have no numbers yet
        if not done.any():
            continue
        yerr = _p_flat_yerr(p[i], se[i], n_finite[i])[:, done]
        axes[0].errorbar(ds[i][done], p[i][done], yerr=yerr, label=lab, **style)
        axes[1].errorbar(ds[i][done], tf[i][done], yerr=tf_se[i][done], label=lab, **style)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(LABELS["temperature"])
    axes[0].set_ylabel(P_FLAT_LABEL)
    axes[1].set_ylabel(TF_LABEL)
    if np.any(np.isfinite(tf) & (tf > 0)):
        axes[1].set_yscale("log")
    axes[0].legend(title="curves at fixed", loc="best")
    notes = ([f"{len(picks)} of {n_a} ${_symbol(name_a)}$ values shown"] if len(picks) < n_a
             else [])
    fig.suptitle(_title(run, r"the same data against $\Delta_S$ (error bars: 1 s.e.)", notes),
                 fontsize=10)
    return Figure(f"{run.name}_vs_delta_s", fig, "", "P_flat and eta<t_f> against Delta_S")


# ---- 1-D sweeps: curves -------------------------------------------------------------------------
def _x_axis(run: Run) -> tuple[str, np.ndarray, bool | np.bool_]:
    """(name, values, log) of the x axis of a 1-D sweep: Delta_S whenever the temperature varies."""
    names = run.swept
    # (Decided from the swept names, not the values, so that a partial run's finished variants
    # get the axis of the whole run.)
    eta_swept = "learning_rate" in names or "dt" in names
    if "temperature" in names or ("noise_strength" in names and not eta_swept):
        values = run.delta_s
        name = "temperature"
    else:
        name, values = run.sweep_axes()[0]
    return name, values, is_log_spaced(_sweep_values(run, name, values))


def _sweep_values(run: Run, name: str, values: ArrayLike) -> np.ndarray:
    """Every value the whole sweep gives the x axis (from the resolved config's sweep lists), so
    that a partial run gets the scale and range of the complete one."""
    sweep = run.config.get("sweep", {}) or {}
    if isinstance(sweep.get(name), list):
        return np.asarray(sweep[name], float)
    if name == "temperature" and isinstance(sweep.get("noise_strength"), list) and \
            "learning_rate" not in sweep and "dt" not in sweep and len(run.eta):
        return float(run.eta[0]) * np.asarray(sweep["noise_strength"], float)
    return np.asarray(values, float)


def _whole_sweep_xlim(ax: Axes, run: Run, name: str, x: ArrayLike, log: bool | np.bool_) -> None:
    """A partial run's curves on the x range of the whole sweep: what is missing shows."""
    full = _sweep_values(run, name, x)
    low, high = float(np.min(full)), float(np.max(full))
    if not run.partial or not high > low:
        return
    if log and low > 0:
        ax.set_xlim(low / 1.2, high * 1.2)
    else:
        pad = 0.05 * (high - low)
        ax.set_xlim(low - pad, high + pad)


def _curve_groups(run: Run, x_name: str) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """The variants as curves: one curve for a 1-parameter or zip sweep; for a grid, one curve
    per combination of the swept parameters other than the x axis's. Returns (names of those
    parameters, [(label, variant indices sorted by x)])."""
    source = x_name if x_name in run.swept else "noise_strength"
    if run.sweep_mode == "zip" or len(run.swept) <= 1:
        return [], [("", list(range(run.variant_count)))]
    others = [(name, values) for name, values in run.sweep_axes() if name != source]
    keys: dict[tuple[float, ...], list[int]] = {}
    for i in range(run.variant_count):
        keys.setdefault(tuple(float(values[i]) for _, values in others), []).append(i)
    groups = []
    for key, members in keys.items():
        label = ", ".join(f"${_symbol(name)}$ = {value:.3g}"
                          for (name, _), value in zip(others, key))
        groups.append((label, members))
    return [name for name, _ in others], groups


def _top_axis(ax: Axes, run: Run, x_name: str, x: np.ndarray, log: bool | np.bool_) -> None:
    """For a sweep drawn as one curve (zip, or a sigma sweep drawn against Delta_S), the swept
    parameters that are not on the x axis, on a top axis over the same points, so that every
    swept parameter is named on the figure."""
    one_curve = run.sweep_mode == "zip" or len(run.swept) == 1
    others = [(name, values) for name, values in run.sweep_axes() if name != x_name]
    if not one_curve or not others:
        return
    top = ax.secondary_xaxis("top")
    order = np.argsort(x)
    shown = [order[k] for k in _spread(len(order), 6)]
    top.set_xticks([float(x[i]) for i in shown])
    top.set_xticks([], minor=True)
    top.set_xticklabels([" / ".join(f"{values[i]:.3g}" for _, values in others) for i in shown],
                        fontsize=7)
    zipped = " (zipped)" if run.sweep_mode == "zip" and len(run.swept) > 1 else ""
    top.set_xlabel(" / ".join(_label(name) for name, _ in others) + zipped, fontsize=8)


def sweep_curves(run: Run, with_theory: bool = True) -> list[Figure]:
    name, x, log = _x_axis(run)
    v = run.variants
    slice_run = _is_two_valley_slice(run)
    group_names, groups = _curve_groups(run, name)
    notes = []
    if len(groups) > MAX_CURVES:
        picks = _spread(len(groups), MAX_CURVES)
        notes.append(f"{MAX_CURVES} of {len(groups)} curves shown "
                     f"(values of {', '.join('$' + _symbol(n) + '$' for n in group_names)}); "
                     "the table lists every variant")
        shown_groups = [groups[k] for k in picks]
    else:
        shown_groups = groups
    panels: list[tuple[str, str, float | np.ndarray]] = [("p_flat", P_FLAT_LABEL, 1.0)]
    if not slice_run:
        panels += [("mean_freezing_time", TF_LABEL, run.eta), ("mean_y_freeze", YF_LABEL, 1.0)]
    else:
        panels += [("mean_crossings", "mean basin changes per walker", 1.0)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8),
                             constrained_layout=True, squeeze=False)
    axes = axes[0]
    rows, theory_values = [], None
    chain_values = None
    if slice_run and with_theory and run.first_passage is None and name == "temperature":
        theory_values = np.array([
            theory.p_flat_slice(_params(run, i)[0], _params(run, i)[1], run.delta_s[i], run.noise)
            for i in range(run.variant_count)])
        # What a walk observed every eta converges to (differs from the Ito value by O(sqrt(eta))).
        chain_values = np.array([
            theory.discrete_chain_p_flat(_params(run, i)[0], _params(run, i)[1], run.delta_s[i],
                                         run.eta[i], run.noise)
            for i in range(run.variant_count)])
    n_finite = run.finite_walkers
    for ax, (key, label, scale) in zip(axes, panels):
        y = v[key] * scale
        if key == "p_flat":
            err = _p_flat_yerr(v["p_flat"], v["p_flat_stderr"], n_finite)
        elif key != "mean_crossings":
            err = v.get(key + "_stderr", np.full_like(y, np.nan)) * scale
        else:
            err = None
        for k, (group_label, members) in enumerate(shown_groups):
            members = sorted(members, key=lambda i: x[i])
            if len(shown_groups) == 1:
                style = dict(color=OKABE_ITO[0], marker="o", ls="-",
                             label="simulation (±1 s.e.)")
            else:
                style = dict(color=OKABE_ITO[k % 7], marker=MARKERS[k % 7],
                             ls=LINESTYLES[k % 4], label=group_label)
            e = None if err is None else (err[:, members] if err.ndim == 2 else err[members])
            ax.errorbar(x[members], y[members], yerr=e, ms=4, lw=1, capsize=2, **style)
        _mark_diverged(ax, run, x, y)
        ax.set_xscale("log" if log else "linear")
        _whole_sweep_xlim(ax, run, name, x, log)
        ax.set_xlabel(_label(name))
        ax.set_ylabel(label)
        _top_axis(ax, run, name, x, log)
        positive = y[np.isfinite(y) & (y > 0)]
        if key == "mean_freezing_time" and positive.size and positive.max() / positive.min() > 30:
            ax.set_yscale("log")
    if theory_values is not None and len(groups) == 1:
        ax = axes[0]
        dense = np.geomspace(x.min(), x.max(), 200) if log else np.linspace(x.min(), x.max(), 200)
        p0, y0 = _params(run, 0)
        same_landscape = all(_params(run, i)[1] == y0 for i in range(run.variant_count))
        theory_label = (r"exact (isotropic): $\sqrt{\gamma}/(1+\sqrt{\gamma})$ at every $\Delta_S$"
                        if run.noise == "isotropic" else f"quasi-steady theory ({run.noise}, Itô)")
        order = np.argsort(x)
        if same_landscape:
            curve = [theory.p_flat_slice(p0, y0, d, run.noise) for d in dense]
            ax.plot(dense, curve, **THEORY_STYLE["mfpt_shift"], label=theory_label)
        else:
            ax.plot(x[order], theory_values[order], "k-", label=theory_label)
        ax.plot(x, chain_values, ls="none", marker="x", ms=7, color=OKABE_ITO[1],
                label=r"stationary state of the discrete walk at this $\eta$ (exact)")
        if run.noise != "hessian" and same_landscape:
            curve = [theory.p_flat_slice(p0, y0, d, "hessian") for d in dense]
            ax.plot(dense, curve, color=OKABE_ITO[2], ls="--", lw=1.2,
                    label="hessian noise, same $\\Delta_S$ (theory)")
        ax.legend(loc="best", fontsize=7, framealpha=0.85)
    elif not slice_run or len(shown_groups) > 1 or run.nonfinite_walkers.any():
        axes[0].legend(loc="best", fontsize=7,
                       title=", ".join(f"${_symbol(n)}$" for n in group_names) or None)
    if theory_values is not None and len(groups) > 1:
        notes.append("theory in the table only (one curve per sweep needed for the overlay)")
    # Where the walkers froze, the Arrhenius exponent of the sharp -> flat escape (hessian noise).
    freeze_beta = run.landscape == "two_valley" and run.noise == "hessian" and with_theory
    lead_header, lead_cells = _lead_columns(run, name, x)
    diverged_column = bool(run.nonfinite_walkers.any())
    cp_used = False
    for i in range(run.variant_count):
        row = lead_cells(i)
        row.append(_p_flat_cell(v["p_flat"][i], v["p_flat_stderr"][i], n_finite[i]))
        cp_used |= clopper_pearson_extreme(float(v["p_flat"][i]), float(n_finite[i])) is not None
        if theory_values is not None:
            se = v["p_flat_stderr"][i]
            row += [_fmt(theory_values[i]),
                    _fmt((v["p_flat"][i] - theory_values[i]) / se if se > 0 else math.nan, 2),
                    _fmt(chain_values[i]),  # type: ignore[index]  # set with theory_values
                    _fmt((v["p_flat"][i] - chain_values[i]) / se  # type: ignore[index]
                         if se > 0 else math.nan, 2)]
        if not slice_run:
            row += [_pm(run.eta[i] * v["mean_freezing_time"][i],
                        run.eta[i] * v["mean_freezing_time_stderr"][i]),
                    _pm(v["mean_y_freeze"][i], v["mean_y_freeze_stderr"][i])]
            if freeze_beta:  # meaningless where most walkers never changed basin
                p, _ = _params(run, i)
                beta = (theory.barrier_exponent(p, float(v["mean_y_freeze"][i]),
                                                float(run.delta_s[i]), theory.SHARP)
                        if v["mean_crossings"][i] >= 1 else math.nan)
                row.append(_fmt(beta, 3))
        if diverged_column:
            row.append(f"{int(run.nonfinite_walkers[i])}/{int(v['walkers'][i])}")
        rows.append(row)
    header = lead_header + ["P_flat ± se"]
    if theory_values is not None:
        header += ["P_flat Itô (continuum)", "(sim − Itô)/se", "P_flat discrete chain at η",
                   "(sim − chain)/se"]
    if not slice_run:
        header += ["η⟨t_f⟩ ± se", "⟨y_freeze⟩ ± se"]
        if freeze_beta:
            header.append("β_sharp at ⟨y_freeze⟩")
    if diverged_column:
        header.append("diverged walkers")
    table_notes = [CP_NOTE] if cp_used else []
    table_notes += [f"Note: {w}." for w in [run.partial_note()] + run.warnings() if w]
    what = "P_flat against the noise" if slice_run else "freezing against the swept parameter"
    fig.suptitle(_title(run, what, notes), fontsize=10)
    return [Figure(f"{run.name}_sweep", fig, _table(header, rows, table_notes), what,
                   [_plain(n) for n in notes])]


# ---- First passage: escape rates ----------------------------------------------------------------
def escape_rates(run: Run, with_theory: bool = True) -> list[Figure]:
    fp: dict[str, Any] = run.first_passage  # type: ignore[assignment]  # figures_for checks it
    name, x, log = _x_axis(run)
    if run.variant_count == 1:
        name, x, log = "temperature", run.delta_s, True
    target = fp["target"]
    rate, low, high = fp["rate"], fp["rate_ci_low"], fp["rate_ci_high"]
    arrived, censored = fp["arrived"], fp["censored"]
    slice_run = _is_two_valley_slice(run) and with_theory and "basin" in target
    to_flat = "flat" in target
    from_basin = theory.SHARP if to_flat else theory.FLAT
    direction = "sharp → flat" if to_flat else "flat → sharp"

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ax = axes[0]
    yerr = np.vstack([rate - low, high - rate])
    # A grid: one colour and marker per value of the other swept parameters (every point drawn).
    _, groups = _curve_groups(run, name)
    for k, (group_label, members) in enumerate(groups):
        label = "simulation: arrivals / exposure (95% exact CI)"
        if len(groups) > 1:
            label = group_label + (" (simulation, 95% exact CI)" if k == 0 else "")
        ax.errorbar(x[members], rate[members], yerr=yerr[:, members], ls="none",
                    marker=MARKERS[k % 7], ms=5, capsize=3, color=OKABE_ITO[k % 7], label=label,
                    zorder=3)
    # A rate of 0 has no place on a log axis: draw its 95 % upper bound instead.
    unreached = run.unreached_target()
    notes = []
    if unreached.any():
        ax.plot(x[unreached], high[unreached], ls="none", marker="v", ms=7, color="#CC0000",
                label="no walker reached the target: 95% upper bound", zorder=4)
        notes.append(f"no walker reached the target in {int(unreached.sum())} of "
                     f"{run.variant_count} variants")
    _mark_diverged(ax, run, x, rate)
    lead_header, lead_cells = _lead_columns(run, name, x)
    rows = []
    if slice_run:
        x_start = float(run.initial_positions[0][0])
        th = {k: np.empty(run.variant_count) for k in ("shift", "cont", "kramers", "erfi", "beta")}
        for i in range(run.variant_count):
            p, y = _params(run, i)
            d = run.delta_s[i]
            shift = theory.discrete_shift(p, y, d, run.eta[i], from_basin, run.noise)
            a = shift if to_flat else -shift
            th["shift"][i] = 1 / theory.mfpt_slice(p, y, d, x_start, a, run.noise)
            th["cont"][i] = 1 / theory.mfpt_slice(p, y, d, x_start, 0.0, run.noise)
            hess = run.noise == "hessian"
            th["kramers"][i] = theory.kramers_rate(p, y, d, from_basin) if hess else math.nan
            th["erfi"][i] = 1 / theory.mfpt_erfi_approx(p, y, d, from_basin) if hess else math.nan
            th["beta"][i] = theory.barrier_exponent(p, y, d, from_basin)
        # Theory lines along each group of points (one line for a 1-parameter sweep).
        for k, (_, members) in enumerate(groups):
            order = np.asarray(sorted(members, key=lambda i: x[i]))
            first = k == 0
            ax.plot(x[order], th["shift"][order], **THEORY_STYLE["mfpt_shift"],
                    label=r"1/MFPT, quadrature, absorbing point shifted by "
                          r"$0.5826\sqrt{2D\eta}$" if first else None)
            ax.plot(x[order], th["cont"][order], **THEORY_STYLE["mfpt"],
                    label="1/MFPT, quadrature, continuum (absorbing at x = 0)" if first else None)
            if run.noise == "hessian":
                ax.plot(x[order], th["kramers"][order], **THEORY_STYLE["kramers"],
                        label="Kramers limit" if first else None)
                ax.plot(x[order], th["erfi"][order], **THEORY_STYLE["erfi"],
                        label=r"paper's closed form $1/[(\pi/2) f\,\mathrm{erfi}(\cdot)]$"
                        if first else None)
        order = np.argsort(x)
        # Right panel: ratios to the shifted quadrature.
        ref = th["shift"]
        bx = axes[1]
        for k, (_, members) in enumerate(groups):
            group_order = np.asarray(sorted(members, key=lambda i: x[i]))
            first = k == 0
            bx.errorbar(x[members], (rate / ref)[members], yerr=(yerr / ref)[:, members],
                        ls="none", marker=MARKERS[k % 7], ms=5, capsize=3,
                        color=OKABE_ITO[k % 7], zorder=3,
                        label="simulation / (1/MFPT shifted)" if first else None)
            bx.plot(x[group_order], (th["cont"] / ref)[group_order], **THEORY_STYLE["mfpt"],
                    label="continuum 1/MFPT / shifted" if first else None)
            if run.noise == "hessian":
                bx.plot(x[group_order], (th["kramers"] / ref)[group_order],
                        **THEORY_STYLE["kramers"], label="Kramers / shifted" if first else None)
                bx.plot(x[group_order], (th["erfi"] / ref)[group_order], **THEORY_STYLE["erfi"],
                        label="erfi form / shifted" if first else None)
        bx.axhline(1.0, color="grey", lw=0.8)
        bx.set_xscale("log" if log else "linear")
        bx.set_xlabel(_label(name))
        bx.set_ylabel("ratio to 1/MFPT (shifted absorbing point)")
        bx.legend(loc="best")
        # beta depends on more than the x axis in a grid: its axis only for one curve.
        if len(groups) == 1:
            top = bx.twiny()
            top.set_xscale(bx.get_xscale())
            top.set_xlim(bx.get_xlim())
            ticks = x[order][:: max(1, len(x) // 5)]
            top.set_xticks(ticks)
            top.set_xticklabels([f"{b:.2g}" for b in th["beta"][order][:: max(1, len(x) // 5)]])
            top.minorticks_off()
            top.set_xlabel(r"barrier exponent $\beta = \Delta L\, f/(2\Delta_S)$", fontsize=8)
            top.grid(False)
        for i in range(run.variant_count):
            n = arrived[i] + censored[i]
            rows.append(lead_cells(i) + [_fmt(th["beta"][i], 3),
                         f"{int(arrived[i])}/{int(n)}",
                         f"{_fmt(rate[i])} [{_fmt(low[i], 3)}, {_fmt(high[i], 3)}]",
                         _fmt(th["shift"][i]),
                         f"{rate[i] / th['shift'][i]:.3f} [{low[i] / th['shift'][i]:.3f}, "
                         f"{high[i] / th['shift'][i]:.3f}]",
                         _fmt(th["cont"][i]), _fmt(th["kramers"][i]), _fmt(th["erfi"][i])])
        header = lead_header + ["β", "arrived/N", "rate [95% CI]",
                  "1/MFPT shifted", "sim/shifted [95% CI]", "1/MFPT continuum", "Kramers",
                  "1/erfi form"]
        table = _table(header, rows, [f"Note: {w}." for w in [run.partial_note()] + notes if w])
    else:
        axes[1].errorbar(x, run.eta * fp["mean_steps"], yerr=run.eta * fp["mean_steps_stderr"],
                         marker="o", ls="none", capsize=3)
        axes[1].set_xscale("log" if log else "linear")
        axes[1].set_xlabel(_label(name))
        axes[1].set_ylabel(r"mean first-passage time of arrived walkers ($\eta\cdot$steps)")
        # Heavy-tailed isotropic noise on the double well from one start: escape by one jump.
        levy = (with_theory and run.noise_distribution == "alpha_stable"
                and run.noise == "isotropic" and run.landscape == "double_well"
                and "basin" in target and len(run.initial_positions) == 1)
        jump = np.full(run.variant_count, math.nan)
        if levy:
            x_start = float(run.initial_positions[0][0])
            for i in range(run.variant_count):
                barrier = run.landscape_params(i)["barrier"]
                distance = barrier - x_start if to_flat else x_start - barrier
                if distance > 0 and run.alpha[i] < 2:  # α = 2 is Gaussian: no jumps
                    jump[i] = theory.levy_jump_rate(run.alpha[i], run.delta_s[i], distance)
            order = np.argsort(x)
            ax.plot(x[order], jump[order], **THEORY_STYLE["mfpt"],
                    label=r"one jump beyond the barrier: $C_\alpha \Delta_S^{\alpha/2} "
                          r"d^{-\alpha}$")
        for i in range(run.variant_count):
            row = lead_cells(i) + [f"{int(arrived[i])}/{int(arrived[i] + censored[i])}",
                                   f"{_fmt(rate[i])} [{_fmt(low[i], 3)}, {_fmt(high[i], 3)}]"]
            if levy:
                row += [_fmt(jump[i]), f"{rate[i] / jump[i]:.3f} [{low[i] / jump[i]:.3f}, "
                                       f"{high[i] / jump[i]:.3f}]"]
            rows.append(row)
        header = lead_header + ["arrived/N", "rate [95% CI]"]
        if levy:
            header += ["one-jump rate", "sim/one-jump [95% CI]"]
        table = _table(header, rows, [f"Note: {w}." for w in [run.partial_note()] + notes if w])
    ax.set_xscale("log" if log else "linear")
    if np.any(np.isfinite(high) & (high > 0)):
        ax.set_yscale("log")
    ax.set_xlabel(_label(name))
    ax.set_ylabel(r"escape rate $k$ (per unit time, $t = \eta\cdot$step)")
    ax.legend(loc="best", fontsize=7)
    fig.suptitle(_title(run, f"escape rate {direction} (target: {target})", notes), fontsize=10)
    return [Figure(f"{run.name}_rates", fig, table, f"escape rates {direction}", notes)]


def _lead_columns(run: Run, x_name: str,
                  x: np.ndarray) -> tuple[list[str], Callable[[int], list[str]]]:
    """The first table columns: every swept parameter, the x axis where it is derived (Delta_S of
    a sigma sweep) and eta where it is not swept (it converts steps to time)."""
    swept_axes = run.sweep_axes()
    header = [f"${_symbol(n)}$" for n, _ in swept_axes]
    extra_x = x_name not in run.swept
    show_eta = "learning_rate" not in run.swept and x_name != "learning_rate"
    if extra_x:
        header.append(f"${_symbol(x_name)}$")
    if show_eta:
        header.append("η")

    def cells(i: int) -> list[str]:
        row = [_fmt(values[i]) for _, values in swept_axes]
        if extra_x:
            row.append(_fmt(x[i]))
        if show_eta:
            row.append(_fmt(run.eta[i]))
        return row
    return header, cells


# ---- Time series --------------------------------------------------------------------------------
def time_series(run: Run) -> list[Figure]:
    s: dict[str, Any] = run.samples  # type: ignore[assignment]  # figures_for checks it
    n_var = run.variant_count
    two_d = run.landscape == "two_valley"
    fig, axes = plt.subplots(1, 2 if two_d else 1, figsize=(11 if two_d else 5.5, 4.0),
                             constrained_layout=True, squeeze=False)
    axes = axes[0]
    names = run.swept
    rows = []
    picks = _spread(n_var, MAX_CURVES)
    finite = s.get("finite_walkers")
    cp_used = False
    for k, i in enumerate(picks):
        label = ", ".join(f"${SYMBOLS.get(nm, nm)}$ = {val:.3g}" for nm, val in
                          zip(names, [vals[i] for _, vals in run.sweep_axes()]))
        if "temperature" not in names:
            label = (label + ", " if label else "") + rf"$\Delta_S$ = {run.delta_s[i]:.2g}"
        style = dict(color=OKABE_ITO[k % 7], marker=MARKERS[k % 7], ms=3, ls=LINESTYLES[k % 4],
                     lw=1.1, capsize=1.5, label=label)
        p, se = s["p_flat"][i], s["p_flat_stderr"][i]
        n = finite[i] if finite is not None else run.finite_walkers[i]
        yerr = _p_flat_yerr(p, se, n)
        if two_d:
            axes[0].errorbar(s["y_mean"][i], p, yerr=yerr, **style)
            axes[1].errorbar(s["time"][i], p, yerr=yerr, **style)
        else:
            axes[0].errorbar(s["time"][i], p, yerr=yerr, **style)
        plain = _plain(label)
        n_end = n[-1] if np.ndim(n) else n
        mid = len(p) // 2
        n_mid = n[mid] if np.ndim(n) else n
        cp_used |= any(clopper_pearson_extreme(float(a), float(b)) is not None
                       for a, b in ((p[-1], n_end), (p[mid], n_mid)))
        rows.append([plain, _fmt(s["y_mean"][i][-1]), _p_flat_cell(p[-1], se[-1], n_end),
                     _p_flat_cell(p[mid], se[mid], n_mid)])
    if two_d:
        axes[0].set_xlabel(r"ensemble mean $\langle y\rangle$ (training progress)")
        axes[1].set_xlabel(TIME_LABEL)
        axes[1].set_xscale("symlog", linthresh=max(1e-3, float(np.min(s["time"][:, 1:]))))
    else:
        axes[0].set_xlabel(TIME_LABEL)
    for ax in axes:
        ax.set_ylabel(P_FLAT_LABEL)
        ax.legend(loc="best")
    notes = ([f"{len(picks)} of {n_var} variants shown, spread over the sweep"]
             if len(picks) < n_var else [])
    fig.suptitle(_title(run, r"$P_\mathrm{flat}$ along the run (error bars: binomial 1 s.e.)",
                        notes), fontsize=10)
    table_notes = [CP_NOTE] if cp_used else []
    table_notes += [f"Note: {w}." for w in [run.partial_note()] + notes if w]
    table = _table(["variant", "⟨y⟩ at the end", "P_flat at the end ± se",
                    "P_flat at mid-run ± se"], rows, table_notes)
    return [Figure(f"{run.name}_p_flat_along_training", fig, table, "P_flat along the run",
                   notes)]


# ---- Distributions of the per-walker trackers ----------------------------------------------------
def tracker_distributions(run: Run, max_variants: int = 4) -> list[Figure]:
    """Histograms of the freezing time, y at freezing, crossings and first-passage step over the
    walkers of each variant (/trackers: reduced on the fly, so they exist without per-walker
    output)."""
    t: dict[str, Any] = run.trackers  # type: ignore[assignment]  # figures_for checks it
    edges = np.asarray(t["log2_edges"], float)
    passage = run.first_passage is not None and "first_passage_counts" in t
    panels = [("freezing_time_counts", r"freezing time $t_f$ (steps)"),
              ("crossings_counts", "basin crossings")]
    if passage:
        panels.append(("first_passage_counts", "first-passage step"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.6 * (len(panels) + 1), 3.4),
                             constrained_layout=True, squeeze=False)
    axes = axes[0]
    picks = _spread(run.variant_count, max_variants)
    rows = []
    for k, v in enumerate(picks):
        params = ", ".join(f"{nm}={vals[v]:.3g}" for nm, vals in run.sweep_axes()) or \
            f"variant {run.index_of(v)}"
        style = dict(color=OKABE_ITO[k % 7], ls=LINESTYLES[k % 4], lw=1.2, label=params)
        for ax, (key, _) in zip(axes, panels):
            counts = np.asarray(t[key][v], float)
            # Bin 0 holds the value 0; bin b >= 1 holds [2^(b-1), 2^b): drawn from 1/2 to 1 on
            # the log axis so that zero stays visible.
            left = np.where(edges[:-1] > 0, edges[:-1], 0.5)
            right = np.where(edges[1:] > 0, edges[1:], 1.0)
            last = int(np.max(np.nonzero(counts)[0])) + 1 if counts.any() else 1
            ax.stairs(counts[:last], np.append(left[:last], right[last - 1]), **style)
        lo = np.asarray(t["y_freeze_low"], float)
        hi = np.asarray(t["y_freeze_high"], float)
        a, b = int(t["y_freeze_offsets"][v]), int(t["y_freeze_offsets"][v + 1])
        if b > a:
            # The sketch's buckets are narrow (relative width 2^-11): regroup them into 40 bins.
            centre = 0.5 * (lo[a:b] + hi[a:b])
            weights = np.asarray(t["y_freeze_counts"][a:b], float)
            span = (centre.min(), centre.max()) if centre.max() > centre.min() else \
                (centre.min() - 0.5, centre.max() + 0.5)
            counts, bin_edges = np.histogram(centre, bins=40, range=span, weights=weights)
            axes[-1].stairs(counts, bin_edges, **style)
        total = int(np.sum(t["freezing_time_counts"][v]))
        row = [params, str(total)]
        if passage:
            row += [str(int(np.sum(t["first_passage_counts"][v]))),
                    str(int(t["first_passage_censored"][v]))]
        rows.append(row)
    for ax, (_, label) in zip(axes, panels):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label + " (log2 bins; 0 drawn at 1/2)")
        ax.set_ylabel("walkers")
    axes[-1].set_xlabel(r"$y$ at freezing")
    axes[-1].set_ylabel("walkers")
    axes[0].legend(loc="best", fontsize=7)
    shown = "" if len(picks) == run.variant_count else \
        f" ({len(picks)} of {run.variant_count} variants)"
    notes = []
    if passage and not np.any(np.asarray(t["first_passage_counts"])[picks]):
        notes.append("no shown walker reached the first-passage target")
        _empty_axes_note(axes[len(panels) - 1], "no walker reached the first-passage target")
    fig.suptitle(_title(run, "distributions over the walkers" + shown, notes), fontsize=10)
    header = ["variant", "finite walkers"]
    if passage:
        header += ["arrived", "censored"]
    table = _table(header, rows)
    return [Figure(f"{run.name}_trackers", fig, table,
                   "distributions of the per-walker trackers" + shown, notes)]


# ---- Histograms ---------------------------------------------------------------------------------
def _side_fit(x: np.ndarray, u: np.ndarray, err: np.ndarray,
              shape: np.ndarray) -> tuple[float, float, float, int]:
    """Weighted least squares u = slope * shape + c on one side; returns (slope, se, chi2, dof)."""
    w = 1 / err ** 2
    a = np.vstack([shape, np.ones_like(shape)]).T
    cov = np.linalg.inv(a.T @ (a * w[:, None]))
    coef = cov @ (a.T @ (w * u))
    resid = u - a @ coef
    return coef[0], math.sqrt(cov[0, 0]), float(np.sum(w * resid ** 2)), len(u) - 2


def histograms(run: Run, with_theory: bool = True, max_variants: int = 4) -> list[Figure]:
    out: list[Figure] = []
    picks = _spread(run.variant_count, max_variants)
    for h in run.histograms:
        notes = []
        if len(picks) < run.variant_count:
            notes.append(f"{len(picks)} of {run.variant_count} variants shown, spread over the "
                         "sweep; the table counts every variant's deposits")
        empty = [i for i in range(run.variant_count) if h.caught(i) == 0]
        if empty:
            notes.append(f"caught nothing inside its range in {len(empty)} of "
                         f"{run.variant_count} variants")
        deposits_table = _deposits_table(run, h)
        if h.kind == "xy":
            out.append(_xy_histogram(run, h, picks, notes, deposits_table))
            continue
        centres = 0.5 * (h.x_edges[1:] + h.x_edges[:-1])
        width = h.x_edges[1] - h.x_edges[0]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
        rows = []
        floor = math.inf
        slice_run = _is_two_valley_slice(run) and with_theory
        for k, i in enumerate(picks):
            counts = h.counts[i].astype(float)
            n = float(h.deposits[i])
            if h.caught(i) == 0:
                continue
            p_bin = counts / n
            density = p_bin / width
            dens_err = np.sqrt(np.maximum(counts, 1.0) * (1 - p_bin)) / (n * width)
            lab = _variant_label(run, i)
            color, marker = OKABE_ITO[k % 7], MARKERS[k % 7]
            seen = counts >= 3
            axes[0].errorbar(centres[seen], density[seen], yerr=dens_err[seen], ls="none",
                             marker=marker, ms=2.5, color=color, label=lab + " (simulation)")
            floor = min(floor, float(np.min(density[seen]))) if seen.any() else floor
            p, y = _params(run, i)
            hess_slice = slice_run and run.noise == "hessian"
            temperature = (theory.effective_temperature(p, y, run.delta_s[i]) if hess_slice
                           else float(h.temperature[i]))
            good = counts >= 10
            u = -temperature * np.log(density[good])
            u_err = temperature * np.sqrt((1 - p_bin[good]) / counts[good])
            axes[1].errorbar(centres[good], u, yerr=u_err, ls="none", marker=marker, ms=2.5,
                             color=color, label=lab + " (simulation)")
            if slice_run:
                dense = np.linspace(h.x_edges[0], h.x_edges[-1], 801)
                axes[0].plot(dense, theory.slice_density(p, y, run.delta_s[i], dense, run.noise),
                             color=color, lw=1.2,
                             label="quasi-steady theory (lines)" if k == 0 else None)
                exact_u = -temperature * theory.log_slice_density(p, y, run.delta_s[i], dense,
                                                                   run.noise)
                axes[1].plot(dense, exact_u, color=color, lw=1.2,
                             label=r"$-T\ln P$ of the theory (lines)" if k == 0 else None)
                if hess_slice:
                    # The bare loss, shifted to meet the effective potential at the flat bottom.
                    bottom = theory.valley_bottom(p, y, theory.FLAT)
                    shift = float(-temperature * theory.log_slice_density(
                        p, y, run.delta_s[i], bottom) - (theory.loss(p, bottom, y)))
                    axes[1].plot(dense, theory.loss(p, dense, y) + shift, color="grey", ls=":",
                                 lw=1.4, label="bare loss L(x), aligned at the flat bottom"
                                 if k == 0 else None)
                    # Per-side fits of the simulated potential against L - L(0, y).
                    shape = theory.loss(p, centres[good], y) - theory.loss(p, 0.0, y)
                    for side, sel, expect in (
                            ("flat", centres[good] >= 0, math.sqrt(theory.flatness_ratio(p))),
                            ("sharp", centres[good] < 0, 1 / math.sqrt(theory.flatness_ratio(p)))):
                        if sel.sum() >= 4:
                            slope, se, chi2, dof = _side_fit(centres[good][sel], u[sel],
                                                              u_err[sel], shape[sel])
                            rows.append([_fmt(run.delta_s[i]), side, int(sel.sum()),
                                         _pm(slope, se), _fmt(expect),
                                         _fmt((slope - expect) / se, 2), f"{chi2:.1f}/{dof}"])
            elif k == 0:
                pass
        shown_empty = [i for i in picks if h.caught(i) == 0]
        band = f", y in {h.y_band}" if h.y_band and "e+300" not in h.y_band else ""
        if shown_empty:
            text = (f"histogram '{h.name}' caught nothing inside x = [{h.x_edges[0]:.3g}, "
                    f"{h.x_edges[-1]:.3g}]{band}, window {h.window}, for " +
                    "; ".join(_variant_label(run, i) for i in shown_empty))
            _empty_axes_note(axes[0], text)
            for ax in axes:
                ax.set_xlim(h.x_edges[0], h.x_edges[-1])
        axes[0].set_xlabel(r"$x$ (position across the valleys)")
        axes[0].set_ylabel(r"density $P(x)$ (per unit $x$)")
        if math.isfinite(floor):
            axes[0].set_yscale("log")
        if math.isfinite(floor):
            axes[0].set_ylim(bottom=floor / 5)
        axes[1].set_xlabel(r"$x$ (position across the valleys)")
        t_note = (r"$T = T_\mathrm{eff} = 2\Delta_S/\sqrt{f_1 f_2}$" if (
            _is_two_valley_slice(run) and run.noise == "hessian") else "T from the run")
        axes[1].set_ylabel(r"effective potential $-T\ln P$ (loss units)")
        axes[1].set_title(t_note, fontsize=8)
        for ax in axes:
            ax.axvline(0.0, color="grey", lw=0.6)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize=7)
        fig.suptitle(_title(run, f"histogram '{h.name}' (window {h.window}{band}); "
                                 "error bars assume independent deposits", notes), fontsize=10)
        table = ""
        if rows:
            table = _table(["Δ_S", "side", "bins", "fitted slope ± se",
                            "predicted γ^{±1/2}", "(fit − pred)/se", "χ²/dof"], rows) + "\n"
        table += deposits_table
        out.append(Figure(f"{run.name}_histogram_{h.name}", fig, table,
                          f"histogram {h.name} and effective potential", notes))
    return out


def _deposits_table(run: Run, h: Histogram) -> str:
    """Every variant's deposits inside and outside the histogram's range, so that a variant the
    figure does not show, or one that caught nothing, is still accounted for."""
    rows = []
    for i in range(run.variant_count):
        inside = h.caught(i)
        rows.append([_variant_label(run, i, tex=False), inside, int(h.outside[i]),
                     "nothing inside the range" if inside == 0 else ""])
    notes = [f"Note: {run.partial_note()}."] if run.partial else []
    return _table(["variant", "deposits inside", "outside the range", ""], rows, notes)


def _xy_histogram(run: Run, h: Histogram, picks: Sequence[int], notes: list[str],
                  deposits_table: str) -> Figure:
    fig, axes = plt.subplots(1, len(picks), figsize=(4.6 * len(picks), 4.0),
                             constrained_layout=True, squeeze=False)
    for ax, i in zip(axes[0], picks):
        ax.set_xlabel(r"$x$")
        ax.set_ylabel(r"$y$")
        ax.set_title(_variant_label(run, i), fontsize=8)
        ax.grid(False)
        if h.caught(i) == 0:
            ax.set_xlim(h.x_edges[0], h.x_edges[-1])
            ax.set_ylim(h.y_edges[0], h.y_edges[-1])  # type: ignore[index]  # an xy histogram
            _empty_axes_note(ax, f"caught nothing inside the range ({int(h.outside[i])} "
                                 "deposits outside)")
            continue
        dens = np.where(h.density[i] > 0, h.density[i], np.nan)
        mesh = ax.pcolormesh(h.x_edges, h.y_edges, dens, cmap="viridis", norm=LogNorm())
        fig.colorbar(mesh, ax=ax, label="density (per unit area)")
    fig.suptitle(_title(run, f"histogram '{h.name}'", notes), fontsize=10)
    return Figure(f"{run.name}_histogram_{h.name}", fig, deposits_table,
                  f"2-D histogram {h.name}", notes)


def write_figure(fig: Figure, out_dir: str | os.PathLike[str], formats: Iterable[str], dpi: float,
                 source: str) -> list[str]:
    """Writes OUT_DIR/NAME.FORMAT for each format and the table as NAME.md (noting the source
    run), closes the figure and returns the paths written."""
    written = []
    for fmt in formats:
        target = os.path.join(out_dir, f"{fig.name}.{fmt}")
        fig.figure.savefig(target, dpi=dpi)
        written.append(target)
    plt.close(fig.figure)
    if fig.table:
        table_path = os.path.join(out_dir, f"{fig.name}.md")
        with open(table_path, "w") as f:
            f.write(f"<!-- {fig.caption}; made by sgdwalk_plot from {source} -->\n")
            f.write(fig.table)
        written.append(table_path)
    return written


# ---- Choice -------------------------------------------------------------------------------------
def figures_for(run: Run, with_theory: bool = True) -> list[Figure]:
    """The figures a run's contents call for. A partial run is drawn from its finished variants
    (the heat maps keep the whole grid, unfinished cells blank); none finished: no figure."""
    _style()
    out: list[Figure] = []
    done = run.finished_only()
    if done.variant_count == 0:
        return out
    grid = run.grid_shape() is not None
    if grid:
        out += heatmaps(run)
    curves = run.first_passage is None or not _is_two_valley_slice(run)
    multi_grid = run.sweep_mode == "grid" and len(run.swept) >= 2
    if curves and (multi_grid or run.is_one_dimensional_sweep()):
        # A grid also as curves against its first parameter, one per value of the others.
        out += sweep_curves(done, with_theory)
    if done.first_passage is not None:
        out += escape_rates(done, with_theory)
    if (done.samples is not None and len(done.samples["step"]) >= 3
            and run.landscape == "two_valley"):
        out += time_series(done)
    if done.histograms:
        out += histograms(done, with_theory)
    if done.trackers is not None and np.sum(done.trackers["freezing_time_counts"]) > 0:
        out += tracker_distributions(done)
    return out


# ---- Several runs in one figure -----------------------------------------------------------------
def _overlay_labels(runs: Sequence[Run], tex: bool = True) -> list[str]:
    """A legend label per run: its name (with its directory where names repeat) and the fixed
    parameters in which it differs from the others."""
    import os
    names = [r.name for r in runs]
    labels = []
    fixed = [dict(r.fixed_parameters()) for r in runs]
    differing = sorted({k for f in fixed for k in f
                        if any(g.get(k) != f[k] for g in fixed)})
    for r, f in zip(runs, fixed):
        label = r.name if names.count(r.name) == 1 else \
            f"{r.name} ({os.path.basename(os.path.realpath(r.path))})"
        extra = ", ".join((f"${_symbol(k)}$" if tex else _plain_symbol(k)) + f" = {f[k]:.3g}"
                          for k in differing if k in f)
        labels.append(label + (f": {extra}" if extra else ""))
    return labels


def overlay(runs: list[Run], name: str | None = None) -> Figure:
    """P_flat (and eta<t_f>, <y_freeze> for two_valley runs) of several runs against one x axis:
    the parameter every run sweeps, else Delta_S."""
    _style()
    done = [r.finished_only() for r in runs]
    empty = [r.path for r, d in zip(runs, done) if d.variant_count == 0]
    if empty:
        raise ValueError(f"no finished variant in {', '.join(empty)} (resume it first)")
    x_names = {_x_axis(d)[0] if d.swept else "temperature" for d in done}
    x_name = x_names.pop() if len(x_names) == 1 else "temperature"
    two_d = all(d.landscape == "two_valley" for d in done)
    panels = [("p_flat", P_FLAT_LABEL)]
    if two_d:
        panels += [("mean_freezing_time", TF_LABEL), ("mean_y_freeze", YF_LABEL)]
    fig, axes = plt.subplots(1, len(panels), figsize=(max(8.0, 4.8 * len(panels)), 4.6),
                             constrained_layout=True, squeeze=False)
    axes = axes[0]
    labels = _overlay_labels(runs)
    curves: list[tuple[int, str, list[int]]] = []  # (run index, label, variant indices)
    for r, d in enumerate(done):
        _, groups = _curve_groups(d, x_name)
        for group_label, members in groups:
            curves.append((r, labels[r] + (f"; {group_label}" if group_label else ""), members))
    shown = [curves[k] for k in _spread(len(curves), MAX_CURVES)]
    log: bool | np.bool_ = True
    for k, (r, label, members) in enumerate(shown):
        d = done[r]
        x = _x_values(d, x_name)
        members = sorted(members, key=lambda i: x[i])
        log &= is_log_spaced(x) or len(np.unique(x)) < 3
        style = dict(color=OKABE_ITO[k % 7], marker=MARKERS[k % 7], ls=LINESTYLES[k % 4],
                     ms=4, lw=1.1, capsize=2)
        for ax, (key, _) in zip(axes, panels):
            scale = d.eta if key == "mean_freezing_time" else 1.0
            y = d.variants[key] * scale
            if key == "p_flat":
                err = _p_flat_yerr(d.variants["p_flat"], d.variants["p_flat_stderr"],
                                   d.finite_walkers)[:, members]
            else:
                err = (d.variants[key + "_stderr"] * scale)[members]
            ax.errorbar(x[members], y[members], yerr=err, label=label, **style)
            _mark_diverged(ax, d, x, y, members)
    x_all = np.concatenate([_x_values(d, x_name) for d in done])
    # Log when every run's values are, or when together they span more than a decade and a half.
    log = np.all(x_all > 0) and (log or x_all.max() / x_all.min() >= 30)
    for ax, (key, label) in zip(axes, panels):
        ax.set_xscale("log" if log else "linear")
        ax.set_xlabel(_label(x_name))
        ax.set_ylabel(label)
        if key == "mean_freezing_time":
            y = np.concatenate([d.eta * d.variants[key] for d in done])
            positive = y[np.isfinite(y) & (y > 0)]
            if positive.size and positive.max() / positive.min() > 30:
                ax.set_yscale("log")
    axes[0].legend(loc="best", fontsize=7)
    notes = []
    if len(shown) < len(curves):
        notes.append(f"{len(shown)} of {len(curves)} curves shown; the table lists every variant")
    for r in runs:  # type: ignore[assignment]  # (r was a run index above)
        for w in [r.partial_note()] + [w for w in r.warnings()  # type: ignore[attr-defined]
                                        if w.startswith("walkers")]:
            if w:
                notes.append(f"{r.name}: {w}")  # type: ignore[attr-defined]
    title = "overlay of " + ", ".join(r.name for r in runs)
    common = [f"{p}" for p in [_fixed_text(runs[0])] if p and
              all(_fixed_text(r) == p for r in runs)]
    lines = [title, ", ".join(sorted({f"{r.landscape}, {r.noise} noise" for r in runs})) +
             (f"; fixed in every run: {common[0]}" if common else "")]
    if notes:
        lines.append("; ".join(notes))
    # Many runs make long lines: wrap them to the figure's width (about 13 characters an inch).
    width = int(13 * fig.get_figwidth())
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in lines), fontsize=10)

    # Table: every finished variant of every run, with the union of the swept parameters.
    swept: list[str] = []
    for d in done:
        swept += [n for n in d.swept if n not in swept]
    header = ["run"] + [f"${_symbol(n)}$" for n in swept] + ["P_flat ± se"]
    if two_d:
        header += ["η⟨t_f⟩ ± se", "⟨y_freeze⟩ ± se"]
    rows = []
    cp_used = False
    for label, d in zip(_overlay_labels(runs, tex=False), done):
        v = d.variants
        for i in range(d.variant_count):
            row = [label]
            row += [_fmt(float(d.parameters[_parameter_key(n)][i])) for n in swept]
            n = d.finite_walkers[i]
            row.append(_p_flat_cell(v["p_flat"][i], v["p_flat_stderr"][i], n))
            cp_used |= clopper_pearson_extreme(float(v["p_flat"][i]), float(n)) is not None
            if two_d:
                row += [_pm(d.eta[i] * v["mean_freezing_time"][i],
                            d.eta[i] * v["mean_freezing_time_stderr"][i]),
                        _pm(v["mean_y_freeze"][i], v["mean_y_freeze_stderr"][i])]
            rows.append(row)
    table_notes = ([CP_NOTE] if cp_used else []) + [f"Note: {n}." for n in notes]
    stem = name or "overlay_" + "_".join(r.name for r in runs)[:100]
    return Figure(stem, fig, _table(header, rows, table_notes),
                  "overlay of " + ", ".join(r.name for r in runs),
                  [_plain(n) for n in notes])


def _x_values(run: Run, x_name: str) -> np.ndarray:
    if x_name == "temperature":
        return run.delta_s
    return np.asarray(run.parameters[_parameter_key(x_name)], float)
