"""Forward-flux-sampling runs ([rare_event] method = "ffs"): the Arrhenius plot of the rate
against 1/Delta_S, with brute-force first-passage rates of another run where they exist and the
theory of the fixed-y slice (1/MFPT from the quadrature with the discrete-observation shift, and
the Kramers limit), plus a markdown table.

    python3 -m sgdwalk.plot.rare_events FFS_RUN [--brute-force RUN] [--out DIR] [--formats png,svg]
    python3 -m sgdwalk_plot.rare_events ...      (the same)

Reads only summary.json of each run (rates per unit time t = eta * steps).
"""

from __future__ import annotations

import argparse
import json
import math
import os

from . import theory


def _load(run_dir):
    with open(os.path.join(run_dir, "summary.json")) as f:
        return json.load(f)


def _slice_params(config):
    land = config["landscape"]
    names = ["f0", "x0", "x1", "x2", "y_f", "y_b", "y_d", "L_d"]
    p = theory.TwoValleyParams(**{n: land[n] for n in names if n in land})
    return p, land.get("y")


def ffs_points(summary):
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


def brute_points(summary):
    """(Delta_S, rate per time, 95 % low, 95 % high, arrived, walkers) of a first-passage run."""
    points = []
    for v in summary["variants"]:
        fp = v.get("first_passage")
        if not fp:
            continue
        low, high = fp["rate_ci95"]
        points.append((v["temperature"], fp["rate"], low, high, fp["arrived"], v["walkers"]))
    return points


def arrhenius(ffs_dir, brute_dir=None, out=".", formats=("png", "svg"), quiet=False):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ffs = _load(ffs_dir)
    config = ffs["config"]
    name = config["run"]["name"]
    points = sorted(ffs_points(ffs))
    brute = sorted(brute_points(_load(brute_dir))) if brute_dir else []
    slice_run = config["landscape"]["kind"] == "two_valley_slice"
    eta = config["dynamics"]["learning_rate"]
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
                [1 / theory.escape_mfpt(p, y, d, theory.SHARP, eta) for d in dense], "-",
                color="C2", lw=1, label="1/MFPT (quadrature, discrete shift)")
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
    header = ["$\\Delta_S$", "β", "FFS rate ± s.e.", "AFtW rel. err.", "walker-steps",
              "brute force [95% CI]", "1/MFPT shifted", "FFS / theory", "Kramers"]
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
            th = 1 / theory.escape_mfpt(p, y, d, theory.SHARP, eta)
            cells += [f"{th:.4g}", f"{rate / th:.3f}",
                      f"{theory.kramers_rate(p, y, d, theory.SHARP):.4g}"]
        else:
            cells += ["", "", ""]
        rows.append(cells)
    table = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    table += "".join("| " + " | ".join(r) + " |\n" for r in rows)
    with open(os.path.join(out, f"{name}_arrhenius.md"), "w") as f:
        f.write(table)
    if not quiet:
        print(table)
    return table


def main(argv=None):
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
