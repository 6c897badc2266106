#!/usr/bin/python3
"""The figures and tables of docs/VALIDATION.md for issue 17: α-stable noise (section 9),
learning-rate decay (11), momentum (12) and the optimizers against numpy (13).

    /usr/bin/python3 scripts/validation-figures-optimizers.py [SGDWALK] [RUNS_DIR] [OUT_DIR]

(defaults: build/sgdwalk, runs/validation-optimizers and docs/figures, relative to the repository
root). Needs Debian's /usr/bin/python3 with numpy, h5py and matplotlib. Every number comes from
`sgdwalk run` (CPU backend, fixed seeds) and `sgdwalk replay`; every theory value from the closed
formulas (written out below, or python/sgdwalk/plot/theory.py), never from the code under test.
Writes, into OUT_DIR, a PNG and a markdown table of each:

  momentum_stationary_variance    §12  Var of SGD and heavy ball on a 1-D quadratic (k = 1, C = 1)
                                       against ηC/(k(2 − ηk)) and (1+μ)ηC/[(1−μ)k(2(1+μ) − ηk)]:
                                       3 × 11 (μ, η), 20000 walkers × 1000 steps each
  momentum_effective_learning_rate §12 examples/momentum_effective_learning_rate.toml (as is)
                                       against plain SGD at η/(1 − μ) (9 η, 2000 × 5000 each)
  learning_rate_decay_freezing    §11  examples/learning_rate_decay_freezing.toml with finer
                                       samples and per-walker output (same dynamics and bits)
  alpha_stable_generator          §9   2^18 updates × 3 coordinates of α-stable draws per α
                                       (`sgdwalk replay --normals`): E cos(tS) against
                                       exp(−|t|^α), P(|S| > x) against 2 C_α x^−α, Hill estimate
  alpha_stable_exit_time          §9   mean exit time from a harmonic well to θ ≥ b = 1 against
                                       b^α/(C_α s^α) (3000 walkers per point, η = 0.2)
  optimizers_numpy                §13  momentum, nesterov, adam, rmsprop (double and float, 300
                                       steps) from `sgdwalk replay --normals` against the numpy
                                       implementation of python/tests/test_optimizers_numpy.py

About 25 CPU-seconds in all on a 2-core machine (printed at the end); SGDWALK_THREADS sets the
thread count (default: all cores), which the results do not depend on.
"""
import csv
import json
import math
import os
import resource
import subprocess
import sys
import time

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "python", "tests"))
from sgdwalk.plot.theory import stable_tail_constant  # noqa: E402

SGDWALK = "build/sgdwalk"
RUNS = "runs/validation-optimizers"
OUT = "docs/figures"
DPI = 100
PNG_METADATA = {"Software": None}  # no matplotlib version in the file: identical reruns


def sgdwalk_run(name, config_text):
    """Writes RUNS/NAME.toml, runs it on the CPU backend into RUNS/NAME, returns the directory."""
    path = os.path.join(RUNS, name + ".toml")
    with open(path, "w") as f:
        f.write(config_text)
    out = os.path.join(RUNS, name)
    threads = os.environ.get("SGDWALK_THREADS", "0")  # 0: all cores; results do not depend on it
    subprocess.run([SGDWALK, "run", path, "--out", out, "--backend", "cpu", "--threads", threads,
                    "--force", "-q"], check=True)
    return out


def summary(run):
    with open(os.path.join(run, "summary.json")) as f:
        return json.load(f)


def replay(run, walker, csv_path):
    """`sgdwalk replay RUN --walker W --normals`: rows of every step as dicts of strings."""
    subprocess.run([SGDWALK, "replay", run, "--walker", str(walker), "--normals", "-o", csv_path],
                   check=True, capture_output=True)
    with open(csv_path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def shown(path):
    """A path as the tables name it: relative to the repository where it lies inside it."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def save(fig, name, table):
    fig.savefig(os.path.join(OUT, name + ".png"), dpi=DPI, metadata=PNG_METADATA)
    plt.close(fig)
    with open(os.path.join(OUT, name + ".md"), "w") as f:
        f.write(f"<!-- {name}; made by scripts/validation-figures-optimizers.py from "
                f"{shown(RUNS)} -->\n")
        f.write(table)
    print(f"wrote {os.path.join(OUT, name)}.png and .md")


# ---- §12: stationary variance of SGD and heavy ball on a quadratic ---------------------------

def variance_exact(eta, k, c, mu):
    """The discrete-time stationary variance (MODEL.md §3): μ = 0 is plain SGD, ηC/(k(2 − ηk))."""
    return (1 + mu) * eta * c / ((1 - mu) * k * (2 * (1 + mu) - eta * k))


def stationary_variance():
    k, c, walkers, steps = 1.0, 1.0, 20000, 1000
    fractions = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]  # of η_max = 2(1+μ)/k
    rows = []
    for mu, seed in ((0.0, 120), (0.5, 121), (0.9, 122)):
        etas = [round(x * 2 * (1 + mu) / k, 6) for x in fractions]
        optimizer = 'optimizer = "sgd"' if mu == 0 else f'optimizer = "momentum"\nmomentum = {mu}'
        run = sgdwalk_run(f"variance_mu{mu}", f"""
[run]
walkers = {walkers}
steps = {steps}
seed = {seed}
[landscape]
kind = "harmonic"
dim = 1
stiffness = [{k}]
[dynamics]
noise = "isotropic"
{optimizer}
learning_rate = {etas[0]}
noise_strength = {c / 2}
[init]
positions = [[0.0]]
[observables]
per_walker = true
sample_steps = [0]
[sweep]
learning_rate = {etas}
""")
        with h5py.File(os.path.join(run, "results.h5"), "r") as f:
            variant = f["walkers/variant"][:]
            position = f["walkers/position"][:, 0]
            eta_of = f["parameters/learning_rate"][:]
        for v, eta in enumerate(eta_of):
            x = position[variant == v]
            n = len(x)
            exact = variance_exact(eta, k, c, mu)
            sample = float(np.var(x, ddof=1))
            se = exact * math.sqrt(2.0 / (n - 1))
            rows.append(dict(mu=mu, eta=float(eta), n=n, sample=sample, exact=exact, se=se,
                             z=(sample - exact) / se, continuum=eta * c / (2 * k * (1 - mu)),
                             x=eta * k / (2 * (1 + mu))))
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    grid = np.linspace(0.0, 0.97, 200)
    a.plot(grid, 1 / (1 - grid), "k-", lw=1, label="exact discrete map: 1/(1 − ηk/(2(1+μ)))")
    a.axhline(1.0, color="0.5", ls="--", lw=1, label="continuum ηC/(2k(1−μ))")
    for i, mu in enumerate((0.0, 0.5, 0.9)):
        r = [row for row in rows if row["mu"] == mu]
        label = "SGD" if mu == 0 else f"heavy ball μ = {mu}"
        ratio = np.array([row["sample"] / row["continuum"] for row in r])
        err = np.array([row["se"] / row["continuum"] for row in r])
        xs = np.array([row["x"] for row in r])
        a.errorbar(xs, ratio, yerr=err, fmt="os^"[i], ms=4, capsize=2, color=f"C{i}", label=label)
        b.errorbar(xs, [row["z"] for row in r], yerr=1, fmt="os^"[i], ms=4, capsize=2,
                   color=f"C{i}", label=label)
    a.set_yscale("log")
    a.set_xlabel("ηk / (2(1 + μ))   (1 = stability edge)")
    a.set_ylabel("Var θ / continuum value ηC/(2k(1 − μ))")
    a.set_title(f"Stationary variance, 1-D quadratic ({walkers} walkers each)", fontsize=10)
    a.legend(fontsize=8)
    b.axhspan(-2, 2, color="0.92", zorder=0)
    b.axhline(0, color="k", lw=0.8)
    b.set_ylim(-5, 5)
    b.set_xlabel("ηk / (2(1 + μ))")
    b.set_ylabel("(sample − exact) / se")
    b.set_title("deviation from the exact discrete formula", fontsize=10)
    b.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    zs = np.array([row["z"] for row in rows])
    table = ("| μ | η | ηk/(2(1+μ)) | sample variance | exact | (sim − exact)/se | continuum |\n"
             "|---|---|---|---|---|---|---|\n")
    for row in rows:
        table += (f"| {row['mu']} | {row['eta']:.4g} | {row['x']:.2f} | {row['sample']:.5g} | "
                  f"{row['exact']:.5g} | {row['z']:+.2f} | {row['continuum']:.5g} |\n")
    table += (f"\nk = {k}, C = 2σ = {c}, {walkers} walkers × {steps} steps from θ = 0 per point; "
              f"se = exact·√(2/(n − 1)). {len(rows)} points: max |z| = {np.max(np.abs(zs)):.2f}, "
              f"rms z = {np.sqrt(np.mean(zs ** 2)):.2f}, {np.sum(np.abs(zs) > 2)} beyond 2 se. "
              f"At ηk/(2(1+μ)) = 0.95 the exact variance is 20× the continuum one.\n")
    save(fig, "momentum_stationary_variance", table)
    return dict(max_z=float(np.max(np.abs(zs))), points=len(rows))


# ---- §12: effective learning rate η/(1 − μ) in P_flat ----------------------------------------

def effective_learning_rate():
    example = os.path.join(ROOT, "examples", "momentum_effective_learning_rate.toml")
    with open(example) as f:
        momentum_run = sgdwalk_run("momentum_effective_learning_rate", f.read())
    sgd_etas = [0.0025, 0.0035, 0.005, 0.007, 0.01, 0.014, 0.02, 0.028, 0.04]
    # The example's landscape, start, noise, walkers, steps and seed with optimizer = "sgd".
    sgd_run = sgdwalk_run("momentum_effective_learning_rate_sgd", f"""
[run]
name = "momentum_effective_learning_rate_sgd"
walkers = 2000
steps = 5000
seed = 1717
[landscape]
kind = "two_valley"
[dynamics]
noise = "hessian"
optimizer = "sgd"
learning_rate = 0.005
noise_strength = 0.005
[init]
positions = [[-0.01, 1.0], [0.01, 1.0]]
[observables]
sample_every = 250
[sweep]
learning_rate = {sgd_etas}
""")
    mom = [(v["swept"]["momentum"], v["swept"]["learning_rate"], v["p_flat"], v["p_flat_stderr"])
           for v in summary(momentum_run)["variants"]]
    sgd = {v["learning_rate"]: (v["p_flat"], v["p_flat_stderr"])
           for v in summary(sgd_run)["variants"]}
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    se_eta = np.array(sorted(sgd))
    sp = np.array([sgd[e][0] for e in se_eta])
    ss = np.array([sgd[e][1] for e in se_eta])
    for ax, use_effective in ((a, False), (b, True)):
        ax.errorbar(se_eta, sp, yerr=ss, fmt="-", color="0.4", capsize=2,
                    label="plain SGD at η")
        for i, mu in enumerate(sorted({m for m, *_ in mom})):
            r = [(e, p, s) for m, e, p, s in mom if m == mu]
            xs = [e / (1 - mu) if use_effective else e for e, _, _ in r]
            ax.errorbar(xs, [p for _, p, _ in r], yerr=[s for *_, s in r], fmt="os^"[i], ms=6,
                        capsize=2, color=f"C{i}", label=f"momentum μ = {mu}")
        ax.set_xscale("log")
        ax.set_xlabel("η / (1 − μ)  (effective learning rate)" if use_effective
                      else "learning rate η")
        ax.legend(fontsize=8, loc="upper left")
    a.set_ylabel("final P_flat (5000 steps)")
    a.set_title("P_flat against η: momentum lifts it", fontsize=10)
    b.set_title("against η/(1 − μ): near plain SGD's curve, below it", fontsize=10)
    fig.tight_layout()
    table = ("| μ | η | η/(1 − μ) | P_flat momentum ± se | P_flat SGD at η/(1 − μ) ± se | "
             "difference / se | SGD η with this P_flat, / (η/(1 − μ)) |\n"
             "|---|---|---|---|---|---|---|\n")
    diffs = []
    for mu, eta, p, s in mom:
        eff = round(eta / (1 - mu), 6)
        q, t = sgd[min(sgd, key=lambda e: abs(e - eff))]
        z = (p - q) / math.hypot(s, t)
        # The plain-SGD learning rate with the same P_flat (log-linear interpolation of SGD's
        # increasing curve), where P_flat is on its steep part.
        match = "—"
        if 0.55 <= p <= 0.92 and np.all(np.diff(sp) >= 0):
            match = f"{math.exp(np.interp(p, sp, np.log(se_eta))) / eff:.2f}"
        diffs.append((mu, z, p - q, match))
        table += (f"| {mu} | {eta} | {eff:g} | {p:.4f} ± {s:.4f} | {q:.4f} ± {t:.4f} | "
                  f"{z:+.1f} | {match} |\n")
    table += ("\n2000 walkers × 5000 steps per point (two-valley start y₀ = 1, hessian noise "
              "σ = 0.005, seed 1717 for both runs). Plain SGD at the other learning rates: "
              + ", ".join(f"η = {e:g}: {sgd[e][0]:.4f}" for e in se_eta) + ".\n")
    save(fig, "momentum_effective_learning_rate", table)
    return diffs


# ---- §11: learning-rate decay freezes walkers earlier ------------------------------------------

def decay_freezing():
    example = os.path.join(ROOT, "examples", "learning_rate_decay_freezing.toml")
    with open(example) as f:
        text = f.read()
    if "sample_every = 500" not in text:
        raise SystemExit(f"{example}: expected 'sample_every = 500' to replace")
    # Finer samples and per-walker output observe the same walkers (the dynamics and final
    # results are the example's, bit for bit).
    text = text.replace("sample_every = 500",
                        "sample_steps = {logspace = [0, 4, 41]}\nper_walker = true")
    run = sgdwalk_run("learning_rate_decay_freezing", text)
    with h5py.File(os.path.join(run, "results.h5"), "r") as f:
        steps = f["samples/step"][:]
        p_flat = f["samples/p_flat"][:]
        p_se = f["samples/p_flat_stderr"][:]
        variant = f["walkers/variant"][:]
        t_f = f["walkers/freezing_time"][:]
    variants = summary(run)["variants"]
    gammas = [v["swept"]["learning_rate_schedule.gamma"] for v in variants]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    rows = []
    for i, (gamma, v) in enumerate(zip(gammas, variants)):
        label = "γ = 1 (constant η)" if gamma == 1 else f"γ = {gamma}"
        color = f"C{i}"
        a.errorbar(np.maximum(steps, 1), p_flat[i], yerr=p_se[i], fmt="-o", ms=2.5, lw=1,
                   capsize=0, color=color, label=label)
        t = np.sort(t_f[variant == i])
        frozen = np.arange(1, len(t) + 1) / len(t)
        b.step(t, frozen, where="post", color=color, label=label)
        if gamma < 1:  # the e-folding time of η_k = η γ^(k−1)
            for ax in (a, b):
                ax.axvline(-1 / math.log(gamma), color=color, ls=":", lw=1)
        rows.append(dict(gamma=gamma, p=v["p_flat"], p_se=v["p_flat_stderr"],
                         t=v["mean_freezing_time"], t_se=v["mean_freezing_time_stderr"],
                         median=float(np.median(t)), q90=float(np.quantile(t, 0.9)),
                         y=v["mean_y_freeze"], y_se=v["mean_y_freeze_stderr"]))
    for ax in (a, b):
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_xlim(1, 1.5e4)
    a.set_ylabel("P_flat")
    a.set_title("P_flat along training (dotted: e-folding step of η_k)", fontsize=10)
    a.legend(fontsize=8, loc="upper left")
    b.set_ylabel("fraction of walkers frozen (t_f ≤ step)")
    b.set_title("freezing time t_f: decay freezes walkers earlier", fontsize=10)
    b.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    table = ("| γ | P_flat ± se | ⟨t_f⟩ ± se (steps) | median t_f | 90 % of t_f | "
             "⟨y_freeze⟩ ± se |\n|---|---|---|---|---|---|\n")
    for r in rows:
        table += (f"| {r['gamma']:g} | {r['p']:.4f} ± {r['p_se']:.4f} | {r['t']:.0f} ± "
                  f"{r['t_se']:.0f} | {r['median']:.0f} | {r['q90']:.0f} | {r['y']:.4f} ± "
                  f"{r['y_se']:.4f} |\n")
    table += ("\nexamples/learning_rate_decay_freezing.toml: 2000 walkers × 10⁴ steps per γ, "
              "η_k = 0.01·γ^(k−1), σ = 0.01, start y₀ = 1, seed 4242 (sampled at 41 log-spaced "
              "steps, with per-walker output; the same bits as the example).\n")
    save(fig, "learning_rate_decay_freezing", table)
    return rows


# ---- §9: the α-stable generator ------------------------------------------------------------------

def hill(x, fraction=1e-3):
    """Hill's estimate of the tail index from the top `fraction` of |x|, with its s.e. α/√k."""
    s = np.sort(np.abs(x))[::-1]
    k = int(len(s) * fraction)
    alpha = k / np.sum(np.log(s[:k] / s[k]))
    return alpha, alpha / math.sqrt(k)


def stable_tail_series(alpha, x, terms=12):
    """P(|S| > x) of the standard symmetric α-stable law from its series (Feller XVII.6):
    P(S > x) = (1/π) Σ_k (−1)^(k+1) Γ(αk)/k! sin(kπα/2) x^(−αk), convergent for α < 1 and
    asymptotic for α ≥ 1 (used where x^−α is small). Its first term is C_α x^−α."""
    total = 0.0
    for k in range(1, terms + 1):
        total += ((-1) ** (k + 1) * math.gamma(alpha * k) / math.factorial(k)
                  * math.sin(k * math.pi * alpha / 2) * x ** (-alpha * k))
    return 2 * total / math.pi


def stable_generator():
    alphas = [0.5, 1.0, 1.5, 2.0]
    steps = 2 ** 18
    draws = {}
    for alpha in alphas:
        # η = 1: the update's input is c·S with c = η^(1/α − 1/2)/√2 = 1/√2 for every α.
        run = sgdwalk_run(f"stable_draws_alpha{alpha}", f"""
[run]
walkers = 1
steps = {steps}
seed = 2029
[landscape]
kind = "harmonic"
dim = 3
[dynamics]
noise = "isotropic"
noise_distribution = "alpha_stable"
alpha = {alpha}
learning_rate = 1.0
noise_strength = 0.5
[init]
positions = [[0.0, 0.0, 0.0]]
[observables]
sample_steps = [0]
""")
        path = os.path.join(RUNS, f"stable_draws_alpha{alpha}.csv")
        rows = replay(run, 0, path)[1:]
        os.remove(path)  # 30 MB; the run directory replays it
        z = np.array([[float(r[f"stable_input_{c}"]) for c in "xyz"] for r in rows]).ravel()
        draws[alpha] = z * math.sqrt(2.0)
    t = np.linspace(0.1, 3.0, 30)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    table = ("| α | draws | max (rms) of (E cos(tS) − exp(−t^α))/se, t = 0.1 … 3 | "
             "Hill (top 0.1 %) ± se | x: 2 C_α x^−α = 1 % | P(\\|S\\| > x) sample ± se | "
             "stable series | (sample − series)/se |\n|---|---|---|---|---|---|---|---|\n")
    results = []
    for i, alpha in enumerate(alphas):
        s = draws[alpha]
        n = len(s)
        c = np.cos(np.outer(t, s))
        mean = c.mean(axis=1)
        se = c.std(axis=1, ddof=1) / math.sqrt(n)
        exact = np.exp(-t ** alpha)
        z = (mean - exact) / se
        worst, rms = float(np.max(np.abs(z))), float(np.sqrt(np.mean(z ** 2)))
        a.plot(t, exact, "-", color=f"C{i}", lw=1)
        a.errorbar(t[::2], mean[::2], yerr=se[::2], fmt="o", ms=3, color=f"C{i}",
                   label=f"α = {alpha:g}")
        xs = np.logspace(-1, 4, 60)
        tail = np.array([np.mean(np.abs(s) > x) for x in xs])
        keep = tail > 0
        b.loglog(xs[keep], tail[keep], "o", ms=3, color=f"C{i}", label=f"α = {alpha:g}")
        if alpha < 2:
            lead = 2 * stable_tail_constant(alpha) * xs ** -alpha
            b.loglog(xs[lead < 1], lead[lead < 1], "-", color=f"C{i}", lw=1)
        else:  # S ~ N(0, 2): P(|S| > x) = erfc(x/2)
            g = np.array([math.erfc(x / 2) for x in xs])
            b.loglog(xs[g > 1e-7], g[g > 1e-7], "-", color=f"C{i}", lw=1)
        if alpha < 2:
            h, h_se = hill(s)
            x1 = (2 * stable_tail_constant(alpha) / 0.01) ** (1 / alpha)
            series = stable_tail_series(alpha, x1)
        else:  # S ~ N(0, 2): P(|S| > x) = erfc(x/2); x at 1 %
            h = h_se = float("nan")
            x1 = 2 * 1.8213863677184496  # erfc(1.82139) = 0.01
            series = math.erfc(x1 / 2)
        p1 = float(np.mean(np.abs(s) > x1))
        p1_se = math.sqrt(series * (1 - series) / n)
        results.append(dict(alpha=alpha, worst=worst, rms=rms, hill=h, hill_se=h_se,
                            tail_z=(p1 - series) / p1_se))
        hill_text = f"{h:.3f} ± {h_se:.3f}" if alpha < 2 else "— (Gaussian)"
        table += (f"| {alpha:g} | {n} | {worst:.2f} ({rms:.2f}) | {hill_text} | "
                  f"{x1:.4g}{' (erfc(x/2) = 1 %)' if alpha == 2 else ''} | {p1:.5f} ± {p1_se:.5f} | "
                  f"{series:.5f} | {(p1 - series) / p1_se:+.2f} |\n")
    a.set_xlabel("t")
    a.set_ylabel("E cos(tS)")
    a.set_title("characteristic function (lines: exp(−|t|^α))", fontsize=10)
    a.legend(fontsize=8)
    b.set_xlabel("x")
    b.set_ylabel("P(|S| > x)")
    b.set_ylim(1e-6, 1.5)
    b.set_title("tails (lines: 2 C_α x^−α; α = 2: erfc(x/2))", fontsize=10)
    b.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    table += (f"\nS = √2 · stable_input from `sgdwalk replay --normals` of one walker, {steps} "
              f"updates × 3 coordinates, η = 1 (c = 1/√2), seed 2029; se of E cos(tS) is the "
              f"sample standard deviation of cos(tS) over √n (the 30 values of t are strongly "
              f"correlated: one sample), the Hill estimate's α̂/√k; the series is the stable "
              f"law's tail expansion (12 terms; α = 2: erfc(x/2)), binomial se.\n")
    save(fig, "alpha_stable_generator", table)
    return results


# ---- §9: mean exit time ∝ s^−α ---------------------------------------------------------------

def stable_exit_time():
    eta, b_exit, walkers = 0.2, 1.0, 3000
    s_values = [0.01, 0.02, 0.04, 0.08, 0.16]
    points = []
    for alpha in (1.0, 1.5):
        for s in s_values:
            expected = b_exit ** alpha / (stable_tail_constant(alpha) * s ** alpha)
            steps = int(1.5 * expected / eta) + 1
            run = sgdwalk_run(f"stable_exit_alpha{alpha}_s{s}", f"""
[run]
walkers = {walkers}
steps = {steps}
seed = 41
[landscape]
kind = "harmonic"
dim = 1
[dynamics]
noise = "isotropic"
noise_distribution = "alpha_stable"
alpha = {alpha}
learning_rate = {eta}
noise_strength = {s * s / eta!r}
[init]
positions = [[0.0]]
[observables]
sample_steps = [0]
[observables.first_passage]
coordinate = 0
above = {b_exit}
""")
            passage = summary(run)["variants"][0]["first_passage"]
            points.append(dict(alpha=alpha, s=s, expected=expected, arrived=passage["arrived"],
                               simulated=1 / passage["rate"],
                               rel_se=1 / math.sqrt(passage["arrived"])))
    fig, (ax, ratio_ax) = plt.subplots(1, 2, figsize=(10, 4))
    grid = np.logspace(math.log10(0.008), math.log10(0.2), 50)
    table = ("| α | s | T simulated (units of t) | theory b^α/(C_α s^α) | T / theory ± se | "
             "arrivals / walkers |\n|---|---|---|---|---|---|\n")
    slopes = {}
    for i, alpha in enumerate((1.0, 1.5)):
        r = [p for p in points if p["alpha"] == alpha]
        ax.loglog(grid, b_exit ** alpha / (stable_tail_constant(alpha) * grid ** alpha), "-",
                  color=f"C{i}", lw=1, label=f"b^α/(C_α s^α), slope −{alpha:g}")
        ax.errorbar([p["s"] for p in r], [p["simulated"] for p in r],
                    yerr=[p["simulated"] * p["rel_se"] for p in r], fmt="os"[i], ms=5,
                    capsize=2, color=f"C{i}", label=f"α = {alpha:g}, sgdwalk")
        ratio_ax.errorbar(np.array([p["s"] for p in r]) * (1 + 0.04 * (2 * i - 1)),
                          [p["simulated"] / p["expected"] for p in r],
                          yerr=[p["simulated"] / p["expected"] * p["rel_se"] for p in r],
                          fmt="os"[i], ms=5, capsize=2, color=f"C{i}", label=f"α = {alpha:g}")
        # Weighted least squares of log T on log s over s ≤ 0.08 (the small-noise range).
        fit = [p for p in r if p["s"] <= 0.08]
        x = np.log([p["s"] for p in fit])
        y = np.log([p["simulated"] for p in fit])
        w = np.array([p["arrived"] for p in fit], dtype=float)
        sw, sx, sy = w.sum(), (w * x).sum(), (w * y).sum()
        sxx, sxy = (w * x * x).sum(), (w * x * y).sum()
        det = sw * sxx - sx * sx
        slopes[alpha] = ((sw * sxy - sx * sy) / det, math.sqrt(sw / det))
        for p in r:
            table += (f"| {alpha:g} | {p['s']:g} | {p['simulated']:.4g} | {p['expected']:.4g} | "
                      f"{p['simulated'] / p['expected']:.3f} ± {p['rel_se'] * p['simulated'] / p['expected']:.3f} | "
                      f"{p['arrived']}/{walkers} |\n")
    ax.set_xlabel("noise scale s = √Δ_S")
    ax.set_ylabel("mean exit time T to θ ≥ 1 (units of t = η·steps)")
    ax.set_title("α-stable exit from a harmonic well: T ∝ s^−α", fontsize=10)
    ax.legend(fontsize=8)
    ratio_ax.axhline(1, color="k", lw=0.8)
    ratio_ax.set_xscale("log")
    ratio_ax.set_ylim(0.85, 1.15)
    ratio_ax.set_xlabel("noise scale s = √Δ_S")
    ratio_ax.set_ylabel("T simulated / (b^α / (C_α s^α))")
    ratio_ax.set_title(f"ratio to the one-jump limit ({walkers} walkers per point)", fontsize=10)
    ratio_ax.legend(fontsize=8)
    fig.tight_layout()
    table += ("\nHarmonic well k = 1, η = 0.2, b = 1, 3000 walkers from θ = 0, seed 41, each run "
              "1.5 T_theory long (T = exposure / arrivals, se = T/√arrivals). Fitted exponent "
              "over s = 0.01 … 0.08: "
              + "; ".join(f"α = {a:g}: {m:.3f} ± {e:.3f}" for a, (m, e) in slopes.items())
              + ". The leading correction's bound α(s/b)^α at s = 0.16 is 0.16 (α = 1) and 0.096 "
              "(α = 1.5).\n")
    save(fig, "alpha_stable_exit_time", table)
    return points, slopes


# ---- §13: the optimizers against the numpy implementation ----------------------------------------

def optimizers_numpy():
    os.environ["SGDWALK_CLI"] = SGDWALK
    import test_optimizers_numpy as ref  # python/tests: the independent numpy implementation
    steps = 300
    optimizers = ["momentum", "nesterov", "adam", "rmsprop"]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.6), sharey=True)
    table = ("| optimizer | precision | steps | numbers compared | differing bits | "
             "max abs(sgdwalk − numpy) |\n|---|---|---|---|---|---|\n")
    totals = [0, 0]
    for ax, optimizer in zip(axes, optimizers):
        for precision in ("double", "float"):
            dtype = np.float32 if precision == "float" else np.float64
            name = f"numpy_{optimizer}_{precision}"
            run = sgdwalk_run(name, ref.config(optimizer, precision, steps))
            rows = replay(run, 3, os.path.join(RUNS, name + ".csv"))
            names = ["x", "y"]
            state_names = ([f"v_{n}" for n in names] if optimizer in ("momentum", "nesterov")
                           else [f"m_{n}" for n in names] + [f"s_{n}" for n in names])
            normals = [[dtype(row[f"normal_{n}"]) for n in names] for row in rows[1:]]
            expected = ref.reference_trajectory(optimizer, dtype, normals)
            got = np.array([[dtype(row[n]) for n in names + state_names] for row in rows],
                           dtype=dtype)
            want = np.array([x + state for x, state in expected], dtype=dtype)
            assert got.shape == want.shape, (got.shape, want.shape)
            bits = np.uint32 if precision == "float" else np.uint64
            differing = int(np.sum(got.view(bits) != want.view(bits)))
            diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
            totals[0] += got.size
            totals[1] += differing
            table += (f"| {optimizer} | {precision} | {steps} | {got.size} | {differing} | "
                      f"{diff:g} |\n")
            if precision == "double":
                k = np.arange(len(rows))
                for j, coord in enumerate(names):
                    ax.plot(k, got[:, j], "-", color=f"C{j}", lw=1.2,
                            label=f"{coord}: sgdwalk replay")
                    ax.plot(k[::10], want[::10, j], "o", ms=3.5, mfc="none", color="k",
                            label="numpy" if j == 0 else None)
        ax.set_title(f"{optimizer}", fontsize=10)
        ax.set_xlabel("step")
    axes[0].set_ylabel("coordinate (walker 3, double)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("sgdwalk against an independent numpy implementation fed the same normals "
                 f"(every 10th step shown): {totals[1]} of {totals[0]} numbers differ",
                 fontsize=10)
    fig.tight_layout()
    table += (f"\nEvery coordinate and optimizer-state number of every step (0 … {steps}) of "
              f"walker 3, python/tests/test_optimizers_numpy.py's config (2-D harmonic well, "
              f"isotropic noise, warmup + step learning-rate schedule, exponential noise "
              f"schedule) and numpy implementation: {totals[1]} of {totals[0]} numbers differ in "
              f"any bit.\n")
    save(fig, "optimizers_numpy", table)
    return totals


def main():
    global SGDWALK, RUNS, OUT
    args = sys.argv[1:]
    if any(a in ("-h", "--help") for a in args) or len(args) > 3:
        print(__doc__)
        return 0 if len(args) <= 3 else 2
    os.chdir(ROOT)
    SGDWALK = os.path.abspath(args[0]) if len(args) > 0 else os.path.join(ROOT, SGDWALK)
    RUNS = args[1] if len(args) > 1 else RUNS
    OUT = args[2] if len(args) > 2 else OUT
    os.makedirs(RUNS, exist_ok=True)
    os.makedirs(OUT, exist_ok=True)
    start = time.time()
    stationary_variance()
    effective_learning_rate()
    decay_freezing()
    stable_generator()
    stable_exit_time()
    optimizers_numpy()
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"validation-figures-optimizers: {children.ru_utime:.1f} s user CPU in sgdwalk, "
          f"{me.ru_utime:.1f} s in python, {time.time() - start:.1f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
