#!/usr/bin/python3
"""Forward flux sampling of the heavy ball on double_well with an ENERGY order parameter, in numpy,
independently of sgdwalk: the experiment behind docs/RARE_EVENTS.md, "Momentum" (the follow-up
that FFS with position interfaces needs under strong momentum; sgdwalk's own version is
[rare_event] order_parameter = "energy", whose B is x >= 0 rather than x >= 0.2).

The walk is sgdwalk's heavy ball with isotropic noise, v <- mu v - eta (L'(x) + sqrt(2 sigma) z),
x <- x + v, on double_well (depth 1, curvatures 1.5 sharp / 1 flat, barrier at x = 0), with
Delta_eff = eta sigma / (1 - mu) = 1 / beta_eff. The order parameter is the mechanical energy
E = L(x) + v^2 / (2 eta) on the sharp side (x < 0) and +inf beyond; A = {E < Delta_eff},
lambda_0 = 2.5 Delta_eff, interfaces every Delta_eff ln 5 (P ~ 0.2 each) up to 0.95, then
B = {x >= 0.2} (every path into B passes x = 0, where E >= L(0) = 1, so it crosses every
interface on the way unless one step jumps from below an interface into B: counted and printed).
The flux stage is 256 walkers x 10^4 steps (2000 uncounted); each stage runs `trials` trials from
states chosen uniformly among those stored at the previous interface.

    /usr/bin/python3 scripts/ffs_energy_order_reference.py BETA_EFF [TRIALS [REPLICAS [MU [ETA]]]]

prints per replica the rate per step and the effective number of ancestors at B, then the mean,
its standard error, the median and the log10 spread of the replicas (compare the brute-force
rates and the position-interface numbers in docs/RARE_EVENTS.md).
"""
import math
import sys

import numpy as np

beta = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
trials = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
replicas = int(sys.argv[3]) if len(sys.argv) > 3 else 16
mu = float(sys.argv[4]) if len(sys.argv) > 4 else 0.9
eta = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05

K_SHARP, K_FLAT = 1.5, 1.0
M_SHARP, M_FLAT = -math.sqrt(2 / K_SHARP), math.sqrt(2 / K_FLAT)
delta = 1 / beta
sigma = delta * (1 - mu) / eta
noise = eta * math.sqrt(2 * sigma)
E_A, E_0 = delta, 2.5 * delta
INTERFACES = list(np.arange(E_0, 0.95, delta * math.log(5)))[1:] + [0.95]


def loss(x):
    return np.where(x < 0, 0.5 * K_SHARP * (x - M_SHARP) ** 2, 0.5 * K_FLAT * (x - M_FLAT) ** 2)


def gradient(x):
    return np.where(x < 0, K_SHARP * (x - M_SHARP), K_FLAT * (x - M_FLAT))


def energy(x, v):
    return np.where(x < 0, loss(x) + v * v / (2 * eta), np.inf)


def step(x, v, rng):
    v = mu * v - eta * gradient(x) - noise * rng.standard_normal(x.shape)
    return x + v, v


def replica(seed):
    rng = np.random.default_rng(seed)
    walkers, steps, equilibration = 256, 10000, 2000
    x, v = np.full(walkers, M_SHARP), np.zeros(walkers)
    from_a = np.ones(walkers, bool)
    stored_x, stored_v, crossings, exposure = [], [], 0, 0
    for t in range(steps):
        x, v = step(x, v, rng)
        arrived = x >= 0.2  # reached B (rare): restart at the sharp bottom
        x[arrived], v[arrived] = M_SHARP, 0
        e = energy(x, v)
        from_a |= e < E_A
        if t < equilibration:
            continue
        exposure += walkers
        crossing = from_a & (e >= E_0)
        crossings += crossing.sum()
        stored_x.append(x[crossing])
        stored_v.append(v[crossing])
        from_a &= ~crossing
    rate = crossings / exposure
    xs, vs = np.concatenate(stored_x), np.concatenate(stored_v)
    ancestors = np.arange(len(xs))
    direct = 0
    for target in INTERFACES + [None]:
        pick = rng.integers(0, len(xs), trials)
        x, v, a = xs[pick].copy(), vs[pick].copy(), ancestors[pick]

        def reached(x, v):
            return (x >= 0.2) if target is None else ((energy(x, v) >= target) | (x >= 0.2))

        ok = reached(x, v)
        done = ok.copy()
        while not done.all():
            running = ~done
            x[running], v[running] = step(x[running], v[running], rng)
            success = reached(x, v)
            if target is not None:
                direct += (running & (x >= 0.2)).sum()
            ok |= running & success
            done |= running & (success | (energy(x, v) < E_A))
        rate *= ok.mean()
        if not ok.any():
            return 0.0, 0.0, direct
        xs, vs, ancestors = x[ok], v[ok], a[ok]
    _, counts = np.unique(ancestors, return_counts=True)
    return rate, counts.sum() ** 2 / (counts * counts).sum(), direct


rates = []
for r in range(replicas):
    k, effective, direct = replica(100 + r)
    rates.append(k)
    print(f"replica {r}: rate {k:.4e} per step, effective ancestors at B {effective:.1f}, "
          f"steps from below an interface into B {direct}", flush=True)
rates = np.array(rates)
logs = np.log10(rates[rates > 0])
print(f"mu {mu}, eta {eta}, beta_eff {beta}, {trials} trials, {len(INTERFACES) + 1} stages: "
      f"mean {rates.mean():.4e} +- {rates.std(ddof=1) / math.sqrt(len(rates)):.2e} per step, "
      f"median {np.median(rates):.3e}, log10 sd {logs.std(ddof=1):.2f}")
