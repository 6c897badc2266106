"""Shared pieces of the peer benchmarks: model constants, command line, observables, report.

Every peer simulates the same job as sgdwalk's `two_valley` landscape with `hessian` noise:

    θ ← θ − η (∇L(θ) + ξ),   ξ ~ N(0, 2σ H⁺(θ) + ε I)

from y0 = 5 with x alternating −0.01 / +0.01 over walkers, and measures, without storing
trajectories, each walker's final basin, crossing count, freezing time and y at freezing, plus one
histogram of x over all walkers deposited every step of the window [steps // 2, steps] (inclusive,
the same window the comparison gives sgdwalk).

The landscape, on the branch of the current basin (flat: x >= 0, q = +x1; sharp: x < 0, q = −x2),
with u = y + y_b and v = y + y_f:

    L   = L0(y) + (x² − a x) h,   a = 2 q y / u,   h = 1 / f = (x0² / (f0 q²)) (u / v)²

so that, with primes for d/dy,

    h'  = h · 2 (y_f − y_b) / (u v)          h'' = h' · (v − 3u) / (u v)
    a'  = 2 q y_b / u²                       a'' = −2 a' / u
    ∂L/∂x = (2x − a) h                       ∂L/∂y = L0' + (x² − a x) h' − x a' h
    H11 = 2h                                 H12 = (2x − a) h' − a' h
    H22 = L0'' + (x² − a x) h'' − 2 x a' h' − x a'' h

with L0' = −(L_d / y_d) e^{−y/y_d} and L0'' = (L_d / y_d²) e^{−y/y_d}. The noise uses the symmetric
square root of Σ from the closed-form 2×2 eigen-decomposition of H = m I + [[d, H12], [H12, −d]]:
λ± = m ± r with r = √(d² + H12²), s± = √(2σ max(λ±, 0) + ε), and

    Σ^{1/2} = (s+ + s−)/2 · I + (s+ − s−)/(2r) · [[d, H12], [H12, −d]].
"""

import argparse
import json
import math
import resource
import sys
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Model:
    """The two-valley landscape's parameters (the paper's defaults) and the run's fixed setup."""

    f0: float = 1.0
    x0: float = 1.0
    x1: float = 0.8
    x2: float = 0.65
    y_f: float = 20.0
    y_b: float = 30.0
    y_d: float = 100.0
    l_d: float = 1.0
    epsilon: float = 1e-8
    y_start: float = 5.0
    x_start: float = 0.01
    hist_lo: float = -3.0
    hist_hi: float = 3.0
    hist_bins: int = 200

    @property
    def q_flat(self):
        """Signed valley half-width parameter on the flat branch (x >= 0)."""
        return self.x1

    @property
    def q_sharp(self):
        """Signed valley half-width parameter on the sharp branch (x < 0)."""
        return -self.x2

    def inv_k(self, q):
        """x0² / (f0 q²): the factor that turns (u / v)² into h = 1 / f on a branch."""
        return self.x0 ** 2 / (self.f0 * q * q)

    @property
    def hist_inv_width(self):
        """Bins per unit of x."""
        return self.hist_bins / (self.hist_hi - self.hist_lo)


MODEL = Model()


def histogram_window(steps):
    """First and last step (inclusive) at which the x histogram is deposited."""
    return steps // 2, steps


def fold_histogram(raw):
    """Turn raw slots (0 below the range, 1..bins inside, bins + 1 above) into the layout
    summarize() takes: the bins followed by one slot counting everything outside."""
    raw = np.asarray(raw, dtype=np.int64)
    return np.append(raw[1:-1], raw[0] + raw[-1])


def initial_x(walkers, dtype):
    """Initial x of every walker: −x_start for even walkers, +x_start for odd ones."""
    x = np.full(walkers, -MODEL.x_start, dtype=dtype)
    x[1::2] = MODEL.x_start
    return x


def reference_gradient_hessian(x, y, model=MODEL):
    """Gradient and Hessian at one point, in plain float64 Python (the peers' test oracle).

    Returns ((gx, gy), (h11, h12, h22)).
    """
    q = model.q_flat if x >= 0 else model.q_sharp
    u, v = y + model.y_b, y + model.y_f
    h = model.inv_k(q) * (u / v) ** 2
    hp = h * 2 * (model.y_f - model.y_b) / (u * v)
    hpp = hp * (v - 3 * u) / (u * v)
    a = 2 * q * y / u
    ap = 2 * q * model.y_b / u ** 2
    app = -2 * ap / u
    e = math.exp(-y / model.y_d)
    l0p = -model.l_d / model.y_d * e
    l0pp = model.l_d / model.y_d ** 2 * e
    p = x * x - a * x
    gradient = ((2 * x - a) * h, l0p + p * hp - x * ap * h)
    hessian = (2 * h, (2 * x - a) * hp - ap * h,
               l0pp + p * hpp - 2 * x * ap * hp - x * app * h)
    return gradient, hessian


def reference_loss(x, y, model=MODEL):
    """L(x, y) straight from the landscape's definition (for finite-difference checks)."""
    q = model.q_flat if x >= 0 else model.q_sharp
    g = 2 * q * y / (y + model.y_b)
    f = (model.f0 * q * q / model.x0 ** 2 * (y + model.y_f) ** 2
         / (y + model.y_b) ** 2)
    l0 = model.l_d * math.exp(-y / model.y_d) + model.x0 ** 2 / model.f0
    return l0 + x * (x - g) / f


def make_parser(description):
    """The command line every peer accepts; peers add their own options to it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--walkers", type=int, default=10_000, help="number of walkers")
    parser.add_argument("--steps", type=int, default=20_000, help="SGD steps per walker")
    parser.add_argument("--eta", type=float, default=0.1, help="learning rate η")
    parser.add_argument("--sigma", type=float, default=0.1, help="noise strength σ")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="floating-point precision of the walker state")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line instead of a readable summary")
    return parser


def summarize(flat, crossings, freeze_step, y_freeze, hist, nonfinite):
    """Ensemble statistics from the per-walker observables (numpy arrays, any dtype).

    flat: final basin (bool), crossings: basin changes, freeze_step: s (t_f = s + 1),
    y_freeze: y at step s, hist: x histogram with bins [0, nbins) and an out-of-range slot last,
    nonfinite: number of walkers whose position is not finite at the end.
    """
    n = flat.size
    p_flat = float(np.count_nonzero(flat)) / n
    tf = freeze_step.astype(np.float64) + 1.0
    sd_tf = float(tf.std(ddof=1)) if n > 1 else 0.0
    hist = np.asarray(hist, dtype=np.int64)
    return {
        "p_flat": p_flat,
        "p_flat_stderr": math.sqrt(p_flat * (1.0 - p_flat) / n),
        "mean_tf": float(tf.mean()),
        "mean_tf_stderr": sd_tf / math.sqrt(n),
        "mean_y_freeze": float(y_freeze.astype(np.float64).mean()),
        "mean_crossings": float(crossings.astype(np.float64).mean()),
        "hist_total": int(hist.sum()),
        "hist_outside": int(hist[-1]),
        "nonfinite": int(nonfinite),
    }


def peak_rss_bytes():
    """Peak resident memory of this process since it started: VmHWM from /proc/self/status.
    (getrusage's ru_maxrss would also count the parent's memory copied at fork.)"""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def report(args, peer, mode, device, seconds, stats, extra=None):
    """Print the run's result, as one JSON line with --json, else as readable lines."""
    result = {
        "peer": peer,
        "mode": mode,
        "device": device,
        "dtype": args.dtype,
        "walkers": args.walkers,
        "steps": args.steps,
        "eta": args.eta,
        "sigma": args.sigma,
        "seed": args.seed,
        "seconds": seconds,
        "walker_steps_per_second": args.walkers * args.steps / seconds,
        **stats,
        "peak_rss_bytes": peak_rss_bytes(),
        **(extra or {}),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")
    sys.stdout.flush()
    return result
