"""Momentum, Nesterov, Adam and RMSprop against an independent numpy implementation, bit for bit.

`sgdwalk replay --normals` writes a walker's trajectory, its optimizer state and the normals each
update consumed; this test recomputes the whole trajectory from the start position and those
normals with numpy scalars (IEEE float64 / float32 operations in the order of docs/MODEL.md,
section 3, "Optimizers and schedules"; the one fused multiply-add, g = fma(sqrt(2σ), z, ∇L),
through exact rational arithmetic),
with learning-rate and noise schedules whose factors are products (step, exponential, warmup), and
requires every coordinate and state number of every step to have the same bits.

Needs the sgdwalk CLI: $SGDWALK_CLI, or build*/sgdwalk in the repository; skipped otherwise.
"""

import csv
import math
import os
import subprocess
import sys
import tempfile
import unittest
from fractions import Fraction

import numpy as np

# The CLI is found as the other tests find it (SGDWALK_CLI, else build*/sgdwalk).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_plot import find_cli  # noqa: E402


def round_to(value, dtype):
    """A rational rounded to the nearest dtype value, ties to even (exact, no double rounding)."""
    if dtype == np.float64:
        return np.float64(float(value))  # int / int true division is correctly rounded
    guess = np.float32(float(value))
    best = guess
    for neighbour in (np.nextafter(guess, np.float32(-np.inf)),
                      np.nextafter(guess, np.float32(np.inf))):
        d_best = abs(Fraction(float(best)) - value)
        d_new = abs(Fraction(float(neighbour)) - value)
        if d_new < d_best or (d_new == d_best and int(neighbour.view(np.uint32)) % 2 == 0):
            best = neighbour
    return best


def fma(a, b, c, dtype):
    return round_to(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)), dtype)


def power(base, n):
    """Binary powering in double, the products in the order include/sgdwalk/optimizer.hpp uses."""
    result = 1.0
    while n > 0:
        if n & 1:
            result = result * base
        base = base * base
        n >>= 1
    return result


def factor(schedule, t):
    """Schedule factor f(t) (t = updates before this one) for constant, step and exponential."""
    warmup = schedule.get("warmup_steps", 0)
    warm, u = 1.0, t - warmup
    if u < 0:
        warm, u = (t + 1) / warmup, 0
    kind = schedule.get("kind", "constant")
    shape = 1.0
    if kind == "step":
        shape = power(schedule["factor"], u // schedule["every"])
    elif kind == "exponential":
        shape = power(schedule["gamma"], u)
    return warm * shape


STIFFNESS = [1.0, 3.0]
CENTER = [0.5, -1.0]
START = [0.3, -0.2]
ETA, SIGMA = 0.05, 0.4
LR_SCHEDULE = {"kind": "step", "every": 37, "factor": 0.7, "warmup_steps": 11}
NOISE_SCHEDULE = {"kind": "exponential", "gamma": 0.993}
COEFFICIENTS = {"momentum": 0.8, "beta1": 0.85, "beta2": 0.995, "rmsprop_decay": 0.9,
                "optimizer_epsilon": 1e-6}
APPLIES = {"momentum": ["momentum"], "nesterov": ["momentum"],
           "adam": ["beta1", "beta2", "optimizer_epsilon"],
           "rmsprop": ["rmsprop_decay", "optimizer_epsilon"]}


def config(optimizer, precision, steps):
    keys = "\n".join(f"{k} = {COEFFICIENTS[k]}" for k in APPLIES[optimizer])
    lr = "\n".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"'
                   for k, v in LR_SCHEDULE.items())
    noise = "\n".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"'
                      for k, v in NOISE_SCHEDULE.items())
    return f"""
[run]
walkers = 5
steps = {steps}
seed = 99
precision = "{precision}"
[landscape]
kind = "harmonic"
dim = 2
stiffness = {STIFFNESS}
center = {CENTER}
[dynamics]
noise = "isotropic"
learning_rate = {ETA}
noise_strength = {SIGMA}
optimizer = "{optimizer}"
{keys}
[dynamics.learning_rate_schedule]
{lr}
[dynamics.noise_schedule]
{noise}
[init]
positions = [{START}]
"""


def reference_trajectory(optimizer, dtype, normals):
    """Every step's position and optimizer state, from the start and the normals alone."""
    T = dtype
    mu = T(COEFFICIENTS["momentum"])
    if optimizer == "adam":
        b1, b2 = COEFFICIENTS["beta1"], COEFFICIENTS["beta2"]
    else:  # rmsprop: Adam's operations with β1 = 0, no bias correction
        b1, b2 = 0.0, COEFFICIENTS["rmsprop_decay"]
    beta1, one_minus_beta1 = T(b1), T(1.0 - b1)
    beta2, one_minus_beta2 = T(b2), T(1.0 - b2)
    eps = T(COEFFICIENTS["optimizer_epsilon"])
    x = [T(v) for v in START]
    k_ = [T(v) for v in STIFFNESS]
    c_ = [T(v) for v in CENTER]
    width = 2 if optimizer in ("momentum", "nesterov") else 4
    state = [T(0)] * width
    rows = [(list(x), list(state))]
    for step, z in enumerate(normals, start=1):
        t = step - 1
        eta_d = ETA * factor(LR_SCHEDULE, t)
        sigma_d = SIGMA * factor(NOISE_SCHEDULE, t)
        eta = T(eta_d)
        root = T(math.sqrt(2.0 * sigma_d))
        g = [fma(root, T(z[i]), k_[i] * (x[i] - c_[i]), T) for i in range(2)]
        if optimizer in ("momentum", "nesterov"):
            for i in range(2):
                step_i = eta * g[i]
                v = mu * state[i] - step_i
                state[i] = v
                x[i] = x[i] + v if optimizer == "momentum" else x[i] + (mu * v - step_i)
        else:
            if optimizer == "adam":
                c1 = T(eta_d / (1.0 - power(b1, step)))
                c2 = T(math.sqrt(1.0 - power(b2, step)))
            else:
                c1, c2 = eta, T(1.0)
            for i in range(2):
                m = beta1 * state[i] + one_minus_beta1 * g[i]
                s = beta2 * state[2 + i] + one_minus_beta2 * (g[i] * g[i])
                denominator = np.sqrt(s) / c2 + eps
                x[i] = x[i] - c1 * (m / denominator)
                state[i], state[2 + i] = m, s
        rows.append((list(x), list(state)))
    return rows


@unittest.skipIf(find_cli() is None, "no sgdwalk CLI (set SGDWALK_CLI)")
class OptimizersAgainstNumpy(unittest.TestCase):
    STEPS = 300

    def replay(self, directory, optimizer, precision):
        cli = find_cli()
        config_path = os.path.join(directory, f"{optimizer}_{precision}.toml")
        with open(config_path, "w") as f:
            f.write(config(optimizer, precision, self.STEPS))
        run = os.path.join(directory, f"{optimizer}_{precision}")
        subprocess.run([cli, "run", config_path, "--out", run, "--backend", "cpu", "-q"],
                       check=True, capture_output=True)
        out = os.path.join(directory, f"{optimizer}_{precision}.csv")
        subprocess.run([cli, "replay", run, "--walker", "3", "--normals", "-o", out],
                       check=True, capture_output=True)
        with open(out) as f:
            return list(csv.DictReader(line for line in f if not line.startswith("#")))

    def check(self, optimizer, precision):
        dtype = np.float32 if precision == "float" else np.float64
        with tempfile.TemporaryDirectory() as directory:
            rows = self.replay(directory, optimizer, precision)
        self.assertEqual(len(rows), self.STEPS + 1)
        names = ["x", "y"]
        state_names = ([f"v_{n}" for n in names] if optimizer in ("momentum", "nesterov")
                       else [f"m_{n}" for n in names] + [f"s_{n}" for n in names])
        normals = [[dtype(row[f"normal_{n}"]) for n in names] for row in rows[1:]]
        expected = reference_trajectory(optimizer, dtype, normals)
        for step, (row, (x, state)) in enumerate(zip(rows, expected)):
            got_x = [dtype(row[n]) for n in names]
            got_state = [dtype(row[n]) for n in state_names]
            same = all(a.tobytes() == b.tobytes() for a, b in zip(got_x + got_state, x + state))
            self.assertTrue(same, f"{optimizer} {precision} step {step}: sgdwalk {got_x} "
                                  f"{got_state}, numpy {x} {state}")
        # The walker moved and the state is not trivial.
        self.assertNotEqual(expected[-1][0], expected[0][0])
        self.assertTrue(any(v != 0 for v in expected[-1][1]))

    def test_momentum(self):
        for precision in ("double", "float"):
            self.check("momentum", precision)

    def test_nesterov(self):
        for precision in ("double", "float"):
            self.check("nesterov", precision)

    def test_adam(self):
        for precision in ("double", "float"):
            self.check("adam", precision)

    def test_rmsprop(self):
        for precision in ("double", "float"):
            self.check("rmsprop", precision)


if __name__ == "__main__":
    unittest.main()
