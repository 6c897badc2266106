"""The figures: each function takes a Run and returns a list of Figure results (name, matplotlib
figure, markdown table). `figures_for(run)` chooses them from what the run contains."""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from . import theory  # noqa: E402
from .run import Run, cell_edges, is_log_spaced  # noqa: E402

# Okabe-Ito colours (distinguishable with every common colour-vision deficiency), without yellow,
# which is too light for lines; markers and line styles vary too, so no figure relies on colour.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
LINESTYLES = ["-", "--", "-.", ":"]
THEORY_STYLE = {
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
}
SYMBOLS = {"learning_rate": r"\eta", "dt": "dt", "noise_strength": r"\sigma",
           "temperature": r"\Delta_S", "epsilon": r"\varepsilon"}
P_FLAT_LABEL = r"$P_\mathrm{flat}$ (fraction of walkers, $x \geq 0$)"
TF_LABEL = r"$\eta\langle t_f\rangle$ (time, units of $\eta\cdot$steps)"
YF_LABEL = r"$\langle y_\mathrm{freeze}\rangle$ (progress coordinate)"
TIME_LABEL = r"time $t = \eta\cdot$step"


@dataclass
class Figure:
    name: str  # file stem, e.g. "paper_phase_diagram_heatmaps"
    figure: object  # matplotlib Figure
    table: str  # markdown (may be empty)
    caption: str = ""


def _style():
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 10,
        "axes.labelsize": 9, "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3,
        "axes.prop_cycle": plt.cycler(color=OKABE_ITO), "svg.fonttype": "none",
    })


def _label(name):
    return LABELS.get(name, f"landscape parameter ${name}$" if len(name) < 4 else name)


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}"


def _pm(mean, se, digits=4):
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}g} ± {se:.2g}" if math.isfinite(se) else f"{mean:.{digits}g}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _title(run: Run, what: str) -> str:
    return (f"{run.name}: {what}\n{run.landscape}, {run.noise} noise, {run.walkers} walkers x "
            f"{run.steps} steps per variant")


def _is_two_valley_slice(run: Run) -> bool:
    return run.landscape == "two_valley_slice"


def _params(run: Run, v: int):
    values = run.landscape_params(v)
    return theory.TwoValleyParams.from_mapping(values), values.get("y")


# ---- 2-D sweeps: heat maps ----------------------------------------------------------------------
def heatmaps(run: Run) -> list[Figure]:
    shape = run.grid_shape()
    (name_a, values_a), (name_b, values_b) = run.sweep_axes()
    n_a, n_b = shape
    xa = values_a.reshape(n_a, n_b)[:, 0]
    xb = values_b.reshape(n_a, n_b)[0, :]
    log_a, log_b = is_log_spaced(xa), is_log_spaced(xb)
    ea, eb = cell_edges(xa, log_a), cell_edges(xb, log_b)
    v = run.variants
    p_flat = v["p_flat"].reshape(n_a, n_b)
    tf = (run.eta * v["mean_freezing_time"]).reshape(n_a, n_b)
    yf = v["mean_y_freeze"].reshape(n_a, n_b)
    panels = [
        ("P_flat", p_flat, P_FLAT_LABEL, "cividis", None),
        ("eta t_f", tf, TF_LABEL, "viridis",
         LogNorm() if np.nanmax(tf) / max(np.nanmin(tf), 1e-300) > 30 else None),
        ("y_freeze", yf, YF_LABEL, "viridis", None),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2), constrained_layout=True)
    dynamics_pair = {name_a, name_b} <= {"learning_rate", "noise_strength", "dt"}
    for ax, (_, data, label, cmap, norm) in zip(axes, panels):
        kwargs = dict(cmap=cmap, shading="flat")
        if norm is not None:
            kwargs["norm"] = norm
        elif label == P_FLAT_LABEL:
            kwargs.update(vmin=min(0.4, float(np.nanmin(data))), vmax=1.0)
        mesh = ax.pcolormesh(ea, eb, data.T, **kwargs)
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
        ax.set_xlim(ea[0], ea[-1])
        ax.set_ylim(eb[0], eb[-1])
    fig.suptitle(_title(run, "phase diagram"), fontsize=10)

    # Table: the corners and the centre, with standard errors.
    se_p = v["p_flat_stderr"].reshape(n_a, n_b)
    se_tf = (run.eta * v["mean_freezing_time_stderr"]).reshape(n_a, n_b)
    se_yf = v["mean_y_freeze_stderr"].reshape(n_a, n_b)
    cells = [(0, 0), (0, n_b - 1), (n_a - 1, 0), (n_a - 1, n_b - 1), (n_a // 2, n_b // 2)]
    rows = []
    for i, j in cells:
        rows.append([_fmt(xa[i]), _fmt(xb[j]), _fmt(xa[i] * xb[j]) if dynamics_pair else "",
                     _pm(p_flat[i, j], se_p[i, j]), _pm(tf[i, j], se_tf[i, j]),
                     _pm(yf[i, j], se_yf[i, j])])
    table = _table([f"${SYMBOLS.get(name_a, name_a)}$", f"${SYMBOLS.get(name_b, name_b)}$",
                    r"$\eta\sigma$", "P_flat ± se", "η⟨t_f⟩ ± se", "⟨y_freeze⟩ ± se"], rows)
    figures = [Figure(f"{run.name}_heatmaps", fig, table,
                      "P_flat, eta<t_f> and <y_freeze> over the swept grid")]
    if dynamics_pair:
        figures.append(_collapse(run, name_a, name_b, xa, n_a, n_b))
    return figures


def _collapse(run: Run, name_a, name_b, xa, n_a, n_b) -> Figure:
    """P_flat against Delta_S = eta sigma, one curve per value of the first swept parameter."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    ds = run.delta_s.reshape(n_a, n_b)
    p = run.variants["p_flat"].reshape(n_a, n_b)
    se = run.variants["p_flat_stderr"].reshape(n_a, n_b)
    tf = (run.eta * run.variants["mean_freezing_time"]).reshape(n_a, n_b)
    tf_se = (run.eta * run.variants["mean_freezing_time_stderr"]).reshape(n_a, n_b)
    picks = np.unique(np.linspace(0, n_a - 1, min(n_a, 6)).round().astype(int))
    for k, i in enumerate(picks):
        style = dict(color=OKABE_ITO[k % 7], marker=MARKERS[k % 7], ms=4,
                     ls=LINESTYLES[k % 4], lw=1, capsize=2)
        lab = rf"${SYMBOLS.get(name_a, name_a)}$ = {xa[i]:.3g}"
        axes[0].errorbar(ds[i], p[i], yerr=se[i], label=lab, **style)
        axes[1].errorbar(ds[i], tf[i], yerr=tf_se[i], label=lab, **style)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel(LABELS["temperature"])
    axes[0].set_ylabel(P_FLAT_LABEL)
    axes[1].set_ylabel(TF_LABEL)
    axes[1].set_yscale("log")
    axes[0].legend(title="curves at fixed", loc="best")
    fig.suptitle(_title(run, r"the same data against $\Delta_S$ (error bars: 1 s.e.)"), fontsize=10)
    return Figure(f"{run.name}_vs_delta_s", fig, "", "P_flat and eta<t_f> against Delta_S")


# ---- 1-D sweeps: curves -------------------------------------------------------------------------
def _x_axis(run: Run):
    """(name, values, log) of the x axis of a 1-D sweep: Delta_S whenever the temperature varies."""
    names = run.swept
    if "temperature" in names or ("noise_strength" in names and np.ptp(run.eta) == 0):
        values = run.delta_s
        name = "temperature"
    else:
        name, values = run.sweep_axes()[0]
    return name, values, is_log_spaced(values)


def sweep_curves(run: Run, with_theory: bool = True) -> list[Figure]:
    name, x, log = _x_axis(run)
    v = run.variants
    slice_run = _is_two_valley_slice(run)
    panels = [("p_flat", P_FLAT_LABEL, 1.0)]
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
    for ax, (key, label, scale) in zip(axes, panels):
        y = v[key] * scale
        err = v.get(key + "_stderr", np.full_like(y, np.nan)) * scale if key != "mean_crossings" \
            else None
        ax.errorbar(x, y, yerr=err, marker="o", ms=4, ls="-", lw=1, capsize=2,
                    color=OKABE_ITO[0], label="simulation (±1 s.e.)")
        ax.set_xscale("log" if log else "linear")
        ax.set_xlabel(_label(name))
        ax.set_ylabel(label)
        if key == "mean_freezing_time" and np.nanmax(y) / max(np.nanmin(y), 1e-300) > 30:
            ax.set_yscale("log")
    if theory_values is not None:
        ax = axes[0]
        dense = np.geomspace(x.min(), x.max(), 200) if log else np.linspace(x.min(), x.max(), 200)
        p0, y0 = _params(run, 0)
        same_landscape = all(_params(run, i)[1] == y0 for i in range(run.variant_count))
        theory_label = (r"exact (isotropic): $\sqrt{\gamma}/(1+\sqrt{\gamma})$ at every $\Delta_S$"
                        if run.noise == "isotropic" else f"quasi-steady theory ({run.noise}, Itô)")
        if same_landscape:
            curve = [theory.p_flat_slice(p0, y0, d, run.noise) for d in dense]
            ax.plot(dense, curve, **THEORY_STYLE["mfpt_shift"], label=theory_label)
        else:
            ax.plot(x, theory_values, "k-", label=theory_label)
        ax.plot(x, chain_values, ls="none", marker="x", ms=7, color=OKABE_ITO[1],
                label=r"stationary state of the discrete walk at this $\eta$ (exact)")
        if run.noise != "hessian" and same_landscape:
            curve = [theory.p_flat_slice(p0, y0, d, "hessian") for d in dense]
            ax.plot(dense, curve, color=OKABE_ITO[2], ls="--", lw=1.2,
                    label="hessian noise, same $\\Delta_S$ (theory)")
        ax.legend(loc="best", fontsize=7, framealpha=0.85)
    elif slice_run is False:
        axes[0].legend(loc="best")
    # Where the walkers froze, the Arrhenius exponent of the sharp -> flat escape (hessian noise).
    freeze_beta = run.landscape == "two_valley" and run.noise == "hessian" and with_theory
    for i in range(run.variant_count):
        row = [_fmt(x[i]), _fmt(run.eta[i]), _pm(v["p_flat"][i], v["p_flat_stderr"][i])]
        if theory_values is not None:
            se = v["p_flat_stderr"][i]
            row += [_fmt(theory_values[i]),
                    _fmt((v["p_flat"][i] - theory_values[i]) / se if se > 0 else math.nan, 2),
                    _fmt(chain_values[i]),
                    _fmt((v["p_flat"][i] - chain_values[i]) / se if se > 0 else math.nan, 2)]
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
        rows.append(row)
    header = [f"${SYMBOLS.get(name, name)}$", "η", "P_flat ± se"]
    if theory_values is not None:
        header += ["P_flat Itô (continuum)", "(sim − Itô)/se", "P_flat discrete chain at η",
                   "(sim − chain)/se"]
    if not slice_run:
        header += ["η⟨t_f⟩ ± se", "⟨y_freeze⟩ ± se"]
        if freeze_beta:
            header.append("β_sharp at ⟨y_freeze⟩")
    what = "P_flat against the noise" if slice_run else "freezing against the swept parameter"
    fig.suptitle(_title(run, what), fontsize=10)
    return [Figure(f"{run.name}_sweep", fig, _table(header, rows), what)]


# ---- First passage: escape rates ----------------------------------------------------------------
def escape_rates(run: Run, with_theory: bool = True) -> list[Figure]:
    fp = run.first_passage
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
    ax.errorbar(x, rate, yerr=yerr, ls="none", marker="o", ms=5, capsize=3, color=OKABE_ITO[0],
                label="simulation: arrivals / exposure (95% exact CI)", zorder=3)
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
        order = np.argsort(x)
        ax.plot(x[order], th["shift"][order], **THEORY_STYLE["mfpt_shift"],
                label=r"1/MFPT, quadrature, absorbing point shifted by $0.5826\sqrt{2D\eta}$")
        ax.plot(x[order], th["cont"][order], **THEORY_STYLE["mfpt"],
                label="1/MFPT, quadrature, continuum (absorbing at x = 0)")
        if run.noise == "hessian":
            ax.plot(x[order], th["kramers"][order], **THEORY_STYLE["kramers"],
                    label="Kramers limit")
            ax.plot(x[order], th["erfi"][order], **THEORY_STYLE["erfi"],
                    label=r"paper's closed form $1/[(\pi/2) f\,\mathrm{erfi}(\cdot)]$")
        # Right panel: ratios to the shifted quadrature.
        ref = th["shift"]
        bx = axes[1]
        bx.errorbar(x, rate / ref, yerr=yerr / ref, ls="none", marker="o", ms=5, capsize=3,
                    color=OKABE_ITO[0], label="simulation / (1/MFPT shifted)", zorder=3)
        bx.plot(x[order], (th["cont"] / ref)[order], **THEORY_STYLE["mfpt"],
                label="continuum 1/MFPT / shifted")
        if run.noise == "hessian":
            bx.plot(x[order], (th["kramers"] / ref)[order], **THEORY_STYLE["kramers"],
                    label="Kramers / shifted")
            bx.plot(x[order], (th["erfi"] / ref)[order], **THEORY_STYLE["erfi"],
                    label="erfi form / shifted")
        bx.axhline(1.0, color="grey", lw=0.8)
        bx.set_xscale("log" if log else "linear")
        bx.set_xlabel(_label(name))
        bx.set_ylabel("ratio to 1/MFPT (shifted absorbing point)")
        bx.legend(loc="best")
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
            rows.append([_fmt(x[i]), _fmt(run.eta[i]), _fmt(th["beta"][i], 3),
                         f"{int(arrived[i])}/{int(n)}",
                         f"{_fmt(rate[i])} [{_fmt(low[i], 3)}, {_fmt(high[i], 3)}]",
                         _fmt(th["shift"][i]),
                         f"{rate[i] / th['shift'][i]:.3f} [{low[i] / th['shift'][i]:.3f}, "
                         f"{high[i] / th['shift'][i]:.3f}]",
                         _fmt(th["cont"][i]), _fmt(th["kramers"][i]), _fmt(th["erfi"][i])])
        header = [f"${SYMBOLS.get(name, name)}$", "η", "β", "arrived/N", "rate [95% CI]",
                  "1/MFPT shifted", "sim/shifted [95% CI]", "1/MFPT continuum", "Kramers",
                  "1/erfi form"]
        table = _table(header, rows)
    else:
        axes[1].errorbar(x, run.eta * fp["mean_steps"], yerr=run.eta * fp["mean_steps_stderr"],
                         marker="o", ls="none", capsize=3)
        axes[1].set_xscale("log" if log else "linear")
        axes[1].set_xlabel(_label(name))
        axes[1].set_ylabel(r"mean first-passage time of arrived walkers ($\eta\cdot$steps)")
        for i in range(run.variant_count):
            rows.append([_fmt(x[i]), f"{int(arrived[i])}/{int(arrived[i] + censored[i])}",
                         f"{_fmt(rate[i])} [{_fmt(low[i], 3)}, {_fmt(high[i], 3)}]"])
        table = _table([f"${SYMBOLS.get(name, name)}$", "arrived/N", "rate [95% CI]"], rows)
    ax.set_xscale("log" if log else "linear")
    ax.set_yscale("log")
    ax.set_xlabel(_label(name))
    ax.set_ylabel(r"escape rate $k$ (per unit time, $t = \eta\cdot$step)")
    ax.legend(loc="best", fontsize=7)
    fig.suptitle(_title(run, f"escape rate {direction} (target: {target})"), fontsize=10)
    return [Figure(f"{run.name}_rates", fig, table, f"escape rates {direction}")]


# ---- Time series --------------------------------------------------------------------------------
def time_series(run: Run) -> list[Figure]:
    s = run.samples
    n_var = run.variant_count
    two_d = run.landscape == "two_valley"
    fig, axes = plt.subplots(1, 2 if two_d else 1, figsize=(11 if two_d else 5.5, 4.0),
                             constrained_layout=True, squeeze=False)
    axes = axes[0]
    names = run.swept
    rows = []
    for i in range(n_var):
        label = ", ".join(f"${SYMBOLS.get(nm, nm)}$ = {val:.3g}" for nm, val in
                          zip(names, [vals[i] for _, vals in run.sweep_axes()]))
        if "temperature" not in names:
            label = (label + ", " if label else "") + rf"$\Delta_S$ = {run.delta_s[i]:.2g}"
        style = dict(color=OKABE_ITO[i % 7], marker=MARKERS[i % 7], ms=3, ls=LINESTYLES[i % 4],
                     lw=1.1, capsize=1.5, label=label)
        p, se = s["p_flat"][i], s["p_flat_stderr"][i]
        if two_d:
            axes[0].errorbar(s["y_mean"][i], p, yerr=se, **style)
            axes[1].errorbar(s["time"][i], p, yerr=se, **style)
        else:
            axes[0].errorbar(s["time"][i], p, yerr=se, **style)
        plain = label.replace("$", "").replace("\\Delta_S", "Δ_S").replace("\\sigma", "σ")
        plain = plain.replace("\\eta", "η")
        rows.append([plain, _fmt(s["y_mean"][i][-1]),
                     _pm(p[-1], se[-1]),
                     _pm(s["p_flat"][i][len(p) // 2], s["p_flat_stderr"][i][len(p) // 2])])
    if two_d:
        axes[0].set_xlabel(r"ensemble mean $\langle y\rangle$ (training progress)")
        axes[1].set_xlabel(TIME_LABEL)
        axes[1].set_xscale("symlog", linthresh=max(1e-3, float(np.min(s["time"][:, 1:]))))
    else:
        axes[0].set_xlabel(TIME_LABEL)
    for ax in axes:
        ax.set_ylabel(P_FLAT_LABEL)
        ax.legend(loc="best")
    fig.suptitle(_title(run, r"$P_\mathrm{flat}$ along the run (error bars: binomial 1 s.e.)"),
                 fontsize=10)
    table = _table(["variant", "⟨y⟩ at the end", "P_flat at the end ± se",
                    "P_flat at mid-run ± se"], rows)
    return [Figure(f"{run.name}_p_flat_along_training", fig, table, "P_flat along the run")]


# ---- Distributions of the per-walker trackers ----------------------------------------------------
def _pick_variants(n: int, most: int) -> list[int]:
    """Up to `most` variant indices spread over [0, n)."""
    if n <= most:
        return list(range(n))
    return sorted({int(round(i * (n - 1) / (most - 1))) for i in range(most)})


def tracker_distributions(run: Run, max_variants: int = 4) -> list[Figure]:
    """Histograms of the freezing time, y at freezing, crossings and first-passage step over the
    walkers of each variant (/trackers: reduced on the fly, so they exist without per-walker
    output)."""
    t = run.trackers
    edges = np.asarray(t["log2_edges"], float)
    passage = run.first_passage is not None and "first_passage_counts" in t
    panels = [("freezing_time_counts", r"freezing time $t_f$ (steps)"),
              ("crossings_counts", "basin crossings")]
    if passage:
        panels.append(("first_passage_counts", "first-passage step"))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.6 * (len(panels) + 1), 3.4),
                             constrained_layout=True, squeeze=False)
    axes = axes[0]
    picks = _pick_variants(run.variant_count, max_variants)
    rows = []
    for k, v in enumerate(picks):
        params = ", ".join(f"{nm}={vals[v]:.3g}" for nm, vals in run.sweep_axes()) or f"variant {v}"
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
    fig.suptitle(_title(run, "distributions over the walkers" + shown), fontsize=10)
    header = ["variant", "finite walkers"]
    if passage:
        header += ["arrived", "censored"]
    table = _table(header, rows)
    return [Figure(f"{run.name}_trackers", fig, table,
                   "distributions of the per-walker trackers" + shown)]


# ---- Histograms ---------------------------------------------------------------------------------
def _side_fit(x, u, err, shape):
    """Weighted least squares u = slope * shape + c on one side; returns (slope, se, chi2, dof)."""
    w = 1 / err ** 2
    a = np.vstack([shape, np.ones_like(shape)]).T
    cov = np.linalg.inv(a.T @ (a * w[:, None]))
    coef = cov @ (a.T @ (w * u))
    resid = u - a @ coef
    return coef[0], math.sqrt(cov[0, 0]), float(np.sum(w * resid ** 2)), len(u) - 2


def histograms(run: Run, with_theory: bool = True, max_variants: int = 4) -> list[Figure]:
    out = []
    picks = np.unique(np.linspace(0, run.variant_count - 1,
                                  min(run.variant_count, max_variants)).round().astype(int))
    for h in run.histograms:
        if h.kind == "xy":
            out.append(_xy_histogram(run, h, picks))
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
            if n == 0:
                continue
            p_bin = counts / n
            density = p_bin / width
            dens_err = np.sqrt(np.maximum(counts, 1.0) * (1 - p_bin)) / (n * width)
            lab = rf"$\Delta_S$ = {run.delta_s[i]:.3g}, $\eta$ = {run.eta[i]:.3g}"
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
        axes[0].set_xlabel(r"$x$ (position across the valleys)")
        axes[0].set_ylabel(r"density $P(x)$ (per unit $x$)")
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
            ax.legend(loc="best", fontsize=7)
        band = f", y in {h.y_band}" if h.y_band and "e+300" not in h.y_band else ""
        fig.suptitle(_title(run, f"histogram '{h.name}' (window {h.window}{band}); "
                                 "error bars assume independent deposits"), fontsize=10)
        table = ""
        if rows:
            table = _table(["Δ_S", "side", "bins", "fitted slope ± se",
                            "predicted γ^{±1/2}", "(fit − pred)/se", "χ²/dof"], rows)
        out.append(Figure(f"{run.name}_histogram_{h.name}", fig, table,
                          f"histogram {h.name} and effective potential"))
    return out


def _xy_histogram(run: Run, h, picks) -> Figure:
    fig, axes = plt.subplots(1, len(picks), figsize=(4.6 * len(picks), 4.0),
                             constrained_layout=True, squeeze=False)
    for ax, i in zip(axes[0], picks):
        dens = np.where(h.density[i] > 0, h.density[i], np.nan)
        mesh = ax.pcolormesh(h.x_edges, h.y_edges, dens, cmap="viridis", norm=LogNorm())
        fig.colorbar(mesh, ax=ax, label="density (per unit area)")
        ax.set_xlabel(r"$x$")
        ax.set_ylabel(r"$y$")
        ax.set_title(rf"$\Delta_S$ = {run.delta_s[i]:.3g}")
        ax.grid(False)
    fig.suptitle(_title(run, f"histogram '{h.name}'"), fontsize=10)
    return Figure(f"{run.name}_histogram_{h.name}", fig, "", f"2-D histogram {h.name}")


# ---- Choice -------------------------------------------------------------------------------------
def figures_for(run: Run, with_theory: bool = True) -> list[Figure]:
    _style()
    out = []
    if run.grid_shape() is not None:
        out += heatmaps(run)
    elif run.is_one_dimensional_sweep() and (run.first_passage is None
                                             or not _is_two_valley_slice(run)):
        out += sweep_curves(run, with_theory)
    if run.first_passage is not None:
        out += escape_rates(run, with_theory)
    if (run.samples is not None and run.variant_count <= 8 and len(run.samples["step"]) >= 3
            and run.landscape == "two_valley"):
        out += time_series(run)
    if run.histograms:
        out += histograms(run, with_theory)
    if run.trackers is not None and np.sum(run.trackers["freezing_time_counts"]) > 0:
        out += tracker_distributions(run)
    return out
