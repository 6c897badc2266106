"""A learning-rate schedule freezes walkers: P_flat along training under a decaying learning rate
against the two-state master equation driven by rates measured at fixed learning rates.

The double well (curvature 1 flat, 4 sharp, both 0.5 deep, hessian noise, σ = 1) is run from the
sharp minimum with η stepped down in plateaus of L = 600 updates (0.04, 0.03, 0.022, 0.016: a
`piecewise` schedule). Separately, at each fixed η, runs from the sharp and from the flat minimum
give the relaxation rate λ = k_sf + k_fs (Q − P = e^{−λn} for a two-state chain, Q and P the
P_flat of the flat and sharp starts) and P_eq (least squares of P = P_eq(1 − e^{−λn})). The master
equation dP/dn = k_sf(1 − P) − k_fs P with these rates, plateau after plateau, predicts the
scheduled run's P_flat at every sample. Tolerance: 5·sqrt(2) binomial standard errors of N
walkers (the prediction comes from runs of the same size). docs/VALIDATION.md, section 11, states
the agreement found and shows the figure (`python3 python/tests/test_schedule_freezing.py
--figure docs/figures` draws it).

Needs the sgdwalk CLI: $SGDWALK_CLI, or build*/sgdwalk in the repository; skipped otherwise.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

# The CLI is found as the other tests find it (SGDWALK_CLI, else build*/sgdwalk).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_plot import find_cli  # noqa: E402

WALKERS = 20000
ETAS = [0.04, 0.03, 0.022, 0.016]
PLATEAU = 600

CONFIG = """
[run]
walkers = {walkers}
steps = {steps}
seed = {seed}
[landscape]
kind = "double_well"
curvature_flat = 1.0
curvature_sharp = 4.0
depth_flat = 0.5
depth_sharp = 0.5
[dynamics]
noise = "hessian"
learning_rate = {eta}
noise_strength = 1.0
{dynamics}
[init]
positions = [[{start}]]
[observables]
sample_every = {every}
{tail}
"""


def run(cli, directory, name, **values):
    import h5py
    path = os.path.join(directory, name + ".toml")
    with open(path, "w") as f:
        f.write(CONFIG.format(walkers=WALKERS, **values))
    out = os.path.join(directory, name)
    subprocess.run([cli, "run", path, "--out", out, "--backend", "cpu", "--force", "-q"],
                   check=True, capture_output=True)
    with h5py.File(os.path.join(out, "results.h5"), "r") as f:
        return f["samples/step"][:], f["samples/p_flat"][:]


def experiment(cli, directory):
    """The fixed-η rates, the scheduled run, its prediction and the constant-η run."""
    sweep = "[sweep]\nlearning_rate = [" + ", ".join(map(str, ETAS)) + "]"
    fixed = dict(steps=3000, eta=ETAS[0], dynamics="", every=10, tail=sweep)
    steps, sharp = run(cli, directory, "fixed_sharp", seed=1, start=-0.5, **fixed)
    _, flat = run(cli, directory, "fixed_flat", seed=2, start=1.0, **fixed)
    rates = []
    late = steps >= 50  # after the relaxation inside the starting well
    for i, eta in enumerate(ETAS):
        gap = flat[i] - sharp[i]
        use = late & (gap > 0.05)
        design = np.vstack([np.ones(use.sum()), steps[use]]).T
        intercept, slope = np.linalg.lstsq(design, np.log(gap[use]), rcond=None)[0]
        lam = -slope
        rise = 1 - np.exp(intercept - lam * steps[late])
        p_eq = float((sharp[i][late] * rise).sum() / (rise * rise).sum())
        rates.append((eta, lam, p_eq))
    values = ", ".join(repr(eta / ETAS[0]) for eta in ETAS)
    starts = ", ".join(str(i * PLATEAU) for i in range(len(ETAS)))
    schedule = ("[dynamics.learning_rate_schedule]\nkind = \"piecewise\"\n"
                f"steps = [{starts}]\nvalues = [{values}]")
    total = PLATEAU * len(ETAS)
    sample_steps, scheduled = run(cli, directory, "scheduled", steps=total, seed=3, eta=ETAS[0],
                                  dynamics=schedule, start=-0.5, every=20, tail="")
    _, constant = run(cli, directory, "constant", steps=total, seed=3, eta=ETAS[0], dynamics="",
                      start=-0.5, every=20, tail="")
    predicted = []
    for n in sample_steps:
        p = 0.0
        for i, (_, lam, p_eq) in enumerate(rates):
            length = min(max(int(n) - i * PLATEAU, 0), PLATEAU)
            if length == 0:
                break
            p = p_eq + (p - p_eq) * np.exp(-lam * length)
        predicted.append(p)
    return dict(rates=rates, steps=sample_steps, scheduled=scheduled[0],
                predicted=np.array(predicted), constant=constant[0])


@unittest.skipIf(find_cli() is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class ScheduleFreezing(unittest.TestCase):
    def test_decaying_learning_rate_follows_the_master_equation(self):
        with tempfile.TemporaryDirectory() as directory:
            result = experiment(find_cli(), directory)
        p, q = result["scheduled"], result["predicted"]
        se = np.sqrt(np.maximum(p * (1 - p), 1.0 / WALKERS) / WALKERS)
        worst = np.max(np.abs(p - q) / se)
        self.assertLess(worst, 5 * np.sqrt(2), f"max |P - prediction| = {worst:.2f} standard errors")
        # The rates fall steeply with η (Arrhenius in Δ_S = ησ): the last plateau is frozen.
        lam = [r[1] for r in result["rates"]]
        self.assertTrue(all(a > 3 * b for a, b in zip(lam, lam[1:])), lam)
        # Over the last plateau P_flat of the same walkers stays put: the two values are positively
        # correlated (the same walkers), so the variance of their difference is at most the sum of
        # the two binomial variances, and 4 of that bound's standard errors cannot be exceeded by
        # chance (no per-walker data here for the exact, paired error).
        in_last = result["steps"] >= (len(ETAS) - 1) * PLATEAU
        last, last_se = p[in_last], se[in_last]
        self.assertLess(abs(last[-1] - last[0]), 4 * np.hypot(last_se[0], last_se[-1]))
        # Frozen below what a constant learning rate reaches.
        self.assertGreater(result["constant"][-1] - p[-1], 20 * se[-1])


def figure(out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with tempfile.TemporaryDirectory() as directory:
        result = experiment(find_cli(), directory)
    steps = result["steps"]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(steps, result["constant"], color="0.5", label=f"constant η = {ETAS[0]}")
    ax.plot(steps, result["scheduled"], "o", ms=3, label="piecewise η (simulation)")
    ax.plot(steps, result["predicted"], "-", color="C3",
            label="two-state master equation, rates at fixed η")
    for i in range(1, len(ETAS)):
        ax.axvline(i * PLATEAU, color="0.85", lw=0.8, zorder=0)
    ax.set_xlabel("step")
    ax.set_ylabel("P_flat")
    ax.set_title("Learning-rate decay freezes walkers (double well, hessian noise)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "schedule_freezing.png"), dpi=120)
    p, q = result["scheduled"], result["predicted"]
    se = np.sqrt(np.maximum(p * (1 - p), 1.0 / WALKERS) / WALKERS)
    with open(os.path.join(out, "schedule_freezing.md"), "w") as f:
        f.write("| η | λ = k_sf + k_fs (1/step) | P_eq | k_sf | k_fs |\n|---|---|---|---|---|\n")
        for eta, lam, p_eq in result["rates"]:
            f.write(f"| {eta} | {lam:.3e} | {p_eq:.4f} | {lam * p_eq:.3e} | "
                    f"{lam * (1 - p_eq):.1e} |\n")
        f.write("\n| step | P_flat scheduled | master equation | difference / SE |\n"
                "|---|---|---|---|\n")
        rows = list(range(0, len(steps), 15))
        worst = int(np.argmax(np.abs(p - q) / se))
        for i in sorted(set(rows + [len(steps) - 1, worst])):
            f.write(f"| {steps[i]} | {p[i]:.4f} | {q[i]:.4f} | {(p[i] - q[i]) / se[i]:+.2f} |\n")
        late = steps >= 300
        f.write(f"\nLargest deviation: {abs(p[worst] - q[worst]) / se[worst]:.2f} standard errors, "
                f"at step {steps[worst]}; from step 300 on at most "
                f"{np.max(np.abs(p - q)[late] / se[late]):.2f}. Final P_flat {p[-1]:.4f} "
                f"(constant η: {result['constant'][-1]:.4f}).\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--figure", help="write schedule_freezing.png and .md to this folder")
    args, rest = parser.parse_known_args()
    if args.figure:
        figure(args.figure)
    else:
        unittest.main(argv=[sys.argv[0]] + rest)
