"""Forward-flux-sampling runs ([rare_event] method = "ffs"): the Arrhenius plot of the rate
against 1/Delta_S, with brute-force first-passage rates of another run where they exist and the
theory of the fixed-y slice (the exact discrete chain's escape rate, 1/MFPT from the quadrature
with the discrete-observation shift, and the Kramers limit), plus a markdown table.

On the full 2-D landscape (kind = "two_valley") y drifts during the run and the barrier grows with
it, so there is no stationary rate to compare with: the theory lines are then the ADIABATIC guide,
the slice's rate k(y) at the y of the noise-free path from the start position, averaged over the
flux stage's window [equilibration_steps, steps] with the survival weight of an arrivals / exposure
estimate (docs/VALIDATION.md section 10, "The full 2-D landscape"), and the table adds the ratio
and the z-score of FFS against the brute-force run (its s.e.: rate / sqrt(arrivals)).

    python3 -m sgdwalk.plot.rare_events FFS_RUN [--brute-force RUN] [--out DIR] [--formats png,svg]
    python3 -m sgdwalk_plot.rare_events ...      (the same)

Reads only summary.json of each run (rates per unit time t = eta * steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import TYPE_CHECKING

from . import theory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    # (Delta_S, eta, rate per time, standard error, AFtW relative error, walker-steps)
    FfsPoint = tuple[float, float, float, float, float, float]
    # (Delta_S, rate per time, 95 % low, 95 % high, arrived, walkers)
    BrutePoint = tuple[float, float, float, float, int, int]
    RateOfDeltaS = Callable[[float], float]


def _load(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    with open(os.path.join(run_dir, "summary.json")) as f:
        return json.load(f)


def _slice_params(config: dict[str, Any]) -> tuple[theory.TwoValleyParams, Any]:
    land = config["landscape"]
    names = ["f0", "x0", "x1", "x2", "y_f", "y_b", "y_d", "L_d"]
    p = theory.TwoValleyParams(**{n: land[n] for n in names if n in land})
    return p, land.get("y")


def valley_path(p: theory.TwoValleyParams, x: float, y: float, eta: float, steps: int,
                samples: int = 9) -> list[tuple[float, float]]:
    """(t, y) at `samples` equally spaced times of the noise-free walk x <- x - eta dL/dx,
    y <- y - eta dL/dy over `steps` steps (dL/dy by central differences: a guide, not an oracle)."""
    h = 1e-6
    every = max(1, steps // (samples - 1))
    out = []
    for k in range(steps + 1):
        if k % every == 0:
            out.append((k * eta, y))
        gx = float(theory.loss_dx(p, x, y))
        gy = float((theory.loss(p, x, y + h) - theory.loss(p, x, y - h)) / (2 * h))
        x, y = x - eta * gx, y - eta * gy
    return out


def window_rate(rate_at: Callable[[float], float], path: Sequence[tuple[float, float]]) -> float:
    """The arrivals / exposure rate of a window over which the rate follows rate_at(y) on the
    path [(t, y)]: integral of k S dt / integral of S dt, S = exp(-integral of k) (trapezoids)."""
    ts = [t for t, _ in path]
    ks = [rate_at(y) for _, y in path]
    survive, cum, num, den = [1.0], 0.0, 0.0, 0.0
    for i in range(1, len(ts)):
        cum += 0.5 * (ks[i] + ks[i - 1]) * (ts[i] - ts[i - 1])
        survive.append(math.exp(-cum))
    for i in range(1, len(ts)):
        dt = ts[i] - ts[i - 1]
        num += 0.5 * (ks[i] * survive[i] + ks[i - 1] * survive[i - 1]) * dt
        den += 0.5 * (survive[i] + survive[i - 1]) * dt
    return num / den


def ffs_points(summary: dict[str, Any]) -> list[FfsPoint]:
    """(Delta_S, eta, rate per time, standard error, AFtW relative error, walker-steps) per variant."""
    points = []
    for v in summary["rare_events"]["variants"]:
        rate = v["rate_per_time"]
        se = v["rate_per_time_std_error"]
        eta = rate / v["rate_per_step"] if v["rate_per_step"] > 0 else float("nan")
        points.append((v["temperature"], 1.0 / eta if eta == eta else float("nan"), rate,
                       se if se is not None else float("nan"), v["rate_relative_error_aftw"],
                       v["walker_steps"]))
    return points


def brute_points(summary: dict[str, Any]) -> list[BrutePoint]:
    """(Delta_S, rate per time, 95 % low, 95 % high, arrived, walkers) of a first-passage run."""
    points = []
    for v in summary["variants"]:
        fp = v.get("first_passage")
        if not fp:
            continue
        low, high = fp["rate_ci95"]
        points.append((v["temperature"], fp["rate"], low, high, fp["arrived"], v["walkers"]))
    return points


def _guide_2d(config: dict[str, Any], eta: float) -> tuple[
        RateOfDeltaS, RateOfDeltaS, Callable[[float], tuple[float, float]], tuple[float, float]]:
    """The adiabatic guide of a two_valley run: functions of Delta_S giving the window's
    1/MFPT rate, its Kramers-limit rate and the barrier exponents at the window's ends, and the
    y at the window's start and end."""
    land = config["landscape"]
    names = ["f0", "x0", "x1", "x2", "y_f", "y_b", "y_d", "L_d"]
    p = theory.TwoValleyParams(**{n: land[n] for n in names if n in land})
    x0, y0 = config["init"]["positions"][0][:2]
    start = config["rare_event"].get("equilibration_steps", 0)
    steps = config["run"]["steps"]
    path = valley_path(p, x0, y0, eta, steps)
    path = [(t, y) for t, y in path if t >= start * eta - 1e-12] or path[-1:]

    def mfpt_rate(d: float) -> float:
        return window_rate(lambda y: 1 / theory.escape_mfpt(p, y, d, theory.SHARP, eta), path)

    def kramers(d: float) -> float:
        return window_rate(lambda y: theory.kramers_rate(p, y, d, theory.SHARP), path)

    def beta_range(d: float) -> tuple[float, float]:
        return (theory.barrier_exponent(p, path[0][1], d, theory.SHARP),
                theory.barrier_exponent(p, path[-1][1], d, theory.SHARP))

    return mfpt_rate, kramers, beta_range, (path[0][1], path[-1][1])


def _chain_absorbing_level(config: dict[str, Any]) -> float | None:
    """Where the exact chain (theory.escape_rate_chain) is the oracle of this FFS run: plain SGD
    with Gaussian noise and constant rates (the chain it solves), from the sharp valley to
    x >= lambda_B >= 0 (order parameter x or basin_distance, which is x on the slice); None
    otherwise (the table's chain cells are then left blank)."""
    dyn, rare = config["dynamics"], config["rare_event"]

    def constant(schedule: dict[str, Any] | None) -> bool:
        return not schedule or (schedule.get("kind", "constant") == "constant"
                                and not schedule.get("warmup_steps", 0))

    plain = (dyn.get("optimizer", "sgd") == "sgd"
             and dyn.get("noise_distribution", "gaussian") == "gaussian"
             and constant(dyn.get("learning_rate_schedule"))
             and constant(dyn.get("noise_schedule")))
    b = rare["lambda_B"] if "lambda_B" in rare else (rare.get("interfaces") or [None])[-1]
    if (not plain or rare.get("order_parameter", "basin_distance") not in ("basin_distance", "x")
            or b is None or b < 0):
        return None
    return float(b)


def _chain_rate(p: theory.TwoValleyParams, y: float, d: float, eta: float, noise: str,
                epsilon: float, b: float | None) -> float | None:
    if b is None:
        return None
    try:
        return theory.escape_rate_chain(p, y, d, theory.SHARP, eta, noise, epsilon, absorb_at=b)
    except ValueError:  # a setting this grid cannot solve (an unstable step): no oracle
        return None


def arrhenius(ffs_dir: str | os.PathLike[str], brute_dir: str | os.PathLike[str] | None = None,
              out: str | os.PathLike[str] = ".", formats: Iterable[str] = ("png", "svg"),
              quiet: bool = False) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ffs = _load(ffs_dir)
    config = ffs["config"]
    name = config["run"]["name"]
    points = sorted(ffs_points(ffs))
    brute_summary = _load(brute_dir) if brute_dir else None
    brute = sorted(brute_points(brute_summary)) if brute_dir else []  # type: ignore[arg-type]
    if brute_dir and config["landscape"]["kind"] == "two_valley":
        # y drifts: the two runs estimate the same rate only over the same window.
        bsteps = brute_summary["config"]["run"]["steps"]  # type: ignore[index]
        window = (config["rare_event"].get("equilibration_steps", 0), config["run"]["steps"])
        if window != (0, bsteps):
            print(f"warning: the FFS flux stage counts steps {window[0]} to {window[1]}, the "
                  f"brute-force run 0 to {bsteps}: on the drifting 2-D landscape their rates "
                  f"belong to different windows", file=sys.stderr)
    slice_run = config["landscape"]["kind"] == "two_valley_slice"
    full_2d = config["landscape"]["kind"] == "two_valley"
    eta = config["dynamics"]["learning_rate"]
    noise = config["dynamics"].get("noise", "hessian")
    epsilon = config["dynamics"].get("epsilon", 1e-8)
    chain_b = _chain_absorbing_level(config) if slice_run else None
    rows = []
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    xs = [1 / d for d, *_ in points]
    ax.errorbar(xs, [r for _, _, r, *_ in points],
                yerr=[2 * (s if s == s else 0) for _, _, _, s, *_ in points], fmt="o",
                color="C0", label="FFS (±2 s.e. of the replica mean)")
    if brute:
        ax.errorbar([1 / d for d, *_ in brute], [r for _, r, *_ in brute],
                    yerr=[[r - lo for _, r, lo, *_ in brute], [hi - r for _, r, _, hi, *_ in brute]],
                    fmt="s", mfc="none", color="C3", label="brute force (95 % interval)")
    if slice_run:
        p, y = _slice_params(config)
        grid = sorted({d for d, *_ in points} | {d for d, *_ in brute})
        lo, hi = min(grid), max(grid)
        dense = [lo * (hi / lo) ** (i / 100) for i in range(101)]
        ax.plot([1 / d for d in dense], [theory.kramers_rate(p, y, d, theory.SHARP) for d in dense],
                "--", color="0.4", label="Kramers limit")
        ax.plot([1 / d for d in dense],
                [1 / theory.escape_mfpt(p, y, d, theory.SHARP, eta, noise) for d in dense], ":",
                color="C2", lw=1, label="1/MFPT (quadrature, discrete shift)")
        # 0.05 s a point, every other one of the dense grid: the curve is smooth in 1/Delta_S.
        solved = [(d, _chain_rate(p, y, d, eta, noise, epsilon, chain_b)) for d in dense[::2]]
        chain = [(d, k) for d, k in solved if k is not None]
        if chain:
            ax.plot([1 / d for d, _ in chain], [k for _, k in chain], "-", color="C1", lw=1,
                    label="exact discrete chain (quasi-stationary rate)")
    if full_2d:
        mfpt_rate, kramers, beta_range, (ya, yb) = _guide_2d(config, eta)
        grid = sorted({d for d, *_ in points} | {d for d, *_ in brute})
        lo, hi = min(grid), max(grid)
        dense = [lo * (hi / lo) ** (i / 12) for i in range(13)]  # smooth: ln k is ~linear
        ax.plot([1 / d for d in dense], [kramers(d) for d in dense], "--", color="0.4",
                label=f"Kramers limit, adiabatic (y = {ya:.3g} to {yb:.3g})")
        ax.plot([1 / d for d in dense], [mfpt_rate(d) for d in dense], "-", color="C2", lw=1,
                label="adiabatic 1/MFPT (slice quadrature at y(t), window mean)")
        p2 = _slice_params({"landscape": config["landscape"]})[0]
        ax.plot([1 / d for d in dense],
                [1 / theory.escape_mfpt(p2, ya, d, theory.SHARP, eta) for d in dense], ":",
                color="C1", lw=1, label=f"1/MFPT with y held at {ya:.3g} (the slice)")
    ax.set_yscale("log")
    ax.set_xlabel(r"$1/\Delta_S$")
    ax.set_ylabel(r"escape rate $k$ (per unit time, $t = \eta\cdot$step)")
    ax.set_title(f"{name}: FFS escape rate", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    for fmt in formats:
        fig.savefig(os.path.join(out, f"{name}_arrhenius.{fmt}"))
    plt.close(fig)

    brute_by = {round(d, 12): b for d, *b in brute}
    if full_2d:
        table = _table_2d(points, brute_by, mfpt_rate, kramers, beta_range)
        with open(os.path.join(out, f"{name}_arrhenius.md"), "w") as f:
            f.write(f"<!-- FFS against brute force on the full 2-D landscape; made by "
                    f"sgdwalk_plot.rare_events from {os.path.basename(ffs_dir)}"
                    f"{' and ' + os.path.basename(brute_dir) if brute_dir else ''}; regenerate "
                    f"with scripts/ffs-sharp-to-flat-2d.sh -->\n")
            f.write(table)
        if not quiet:
            print(table)
        return table
    header = ["$\\Delta_S$", "β", "FFS rate ± s.e.", "AFtW rel. err.", "walker-steps",
              "brute force [95% CI]", "exact chain", "FFS / chain", "1/MFPT shifted", "Kramers"]
    for d, _, rate, se, aftw, cost in points:
        cells = [f"{d:.4g}"]
        if slice_run:
            cells.append(f"{theory.barrier_exponent(p, y, d, theory.SHARP):.3g}")
        else:
            cells.append("")
        cells += [f"{rate:.4g} ± {se:.2g}", f"{aftw:.3f}", f"{cost:.3g}"]
        b = brute_by.get(round(d, 12))
        cells.append(f"{b[0]:.4g} [{b[1]:.3g}, {b[2]:.3g}]" if b else "")
        if slice_run:
            exact = _chain_rate(p, y, d, eta, noise, epsilon, chain_b)
            shifted = 1 / theory.escape_mfpt(p, y, d, theory.SHARP, eta, noise)
            chain_cells = ([f"{exact:.4g}", f"{rate / exact:.3f}"]
                           if exact is not None and exact > 0 else ["", ""])
            cells += chain_cells + [f"{shifted:.4g}",
                                    f"{theory.kramers_rate(p, y, d, theory.SHARP):.4g}"]
        else:
            cells += ["", "", "", ""]
        rows.append(cells)
    table = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    table += "".join("| " + " | ".join(r) + " |\n" for r in rows)
    with open(os.path.join(out, f"{name}_arrhenius.md"), "w") as f:
        f.write(table)
    if not quiet:
        print(table)
    return table


def _table_2d(points: Sequence[FfsPoint], brute_by: dict[float, list[float]],
              mfpt_rate: RateOfDeltaS, kramers: RateOfDeltaS,
              beta_range: Callable[[float], tuple[float, float]]) -> str:
    header = ["$\\Delta_S$", "β over the window", "FFS rate ± s.e.", "AFtW rel. err.",
              "walker-steps", "brute force ± s.e. (arrivals)", "FFS / brute", "z",
              "adiabatic 1/MFPT", "FFS / adiabatic", "adiabatic Kramers"]
    rows = []
    for d, _, rate, se, aftw, cost in points:
        b0, b1 = beta_range(d)
        cells = [f"{d:.4g}", f"{b0:.3g}–{b1:.3g}", f"{rate:.4g} ± {se:.2g}", f"{aftw:.3f}",
                 f"{cost:.3g}"]
        b = brute_by.get(round(d, 12))
        if b and b[3] > 0:
            brate, arrived = b[0], b[3]
            bse = brate / math.sqrt(arrived)
            z = (rate - brate) / math.hypot(se, bse)
            cells += [f"{brate:.4g} ± {bse:.2g} ({arrived})", f"{rate / brate:.3f}", f"{z:+.2f}"]
        else:
            cells += ["", "", ""]
        guide = mfpt_rate(d)
        cells += [f"{guide:.4g}", f"{rate / guide:.3f}", f"{kramers(d):.4g}"]
        rows.append(cells)
    table = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    table += "".join("| " + " | ".join(r) + " |\n" for r in rows)
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="FFS run directory")
    parser.add_argument("--brute-force", help="a first-passage run directory to compare with")
    parser.add_argument("--out", default=".", help="output directory")
    parser.add_argument("--formats", default="png,svg")
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(argv)
    arrhenius(args.run, args.brute_force, args.out, args.formats.split(","), args.quiet)


if __name__ == "__main__":
    main()
