#!/usr/bin/env python3
"""JAX peer: jit + lax.fori_loop over a vmapped per-walker step (GPU or CPU).

The per-walker update is written for scalars and vmapped over the walker arrays; the whole run is
one jitted function: a fori_loop over the steps before the histogram window and one over the
window, whose body also deposits x into the histogram (a scatter-add). Normals come from
jax.random.normal with the key folded with the step index. Compile time is measured apart
(ahead-of-time lower + compile). The physics and the formulas are documented in peer_common.py.
"""

import time
from importlib.metadata import version

import jax
import jax.numpy as jnp
import numpy as np

from peer_common import (MODEL, fold_histogram, histogram_window, initial_x, make_parser, report,
                         summarize)


def build(args):
    """Return the jittable simulate(key, state) -> (state, histogram) for these arguments."""
    lax = jax.lax
    dtype = jnp.dtype(args.dtype)
    eta, two_sigma, epsilon = (dtype.type(v) for v in (args.eta, 2 * args.sigma, MODEL.epsilon))
    q_flat, q_sharp = dtype.type(MODEL.q_flat), dtype.type(MODEL.q_sharp)
    ik_flat = dtype.type(MODEL.inv_k(MODEL.q_flat))
    ik_sharp = dtype.type(MODEL.inv_k(MODEL.q_sharp))
    c_hp = dtype.type(2 * (MODEL.y_f - MODEL.y_b))
    nbins = MODEL.hist_bins
    window_lo, window_hi = histogram_window(args.steps)

    def walker_step(x, y, flat, crossings, freeze_step, y_freeze, z1, z2, step):
        """One SGD step of one walker (scalars) and its trackers."""
        q = jnp.where(flat, q_flat, q_sharp)
        ik = jnp.where(flat, ik_flat, ik_sharp)
        u, v = y + MODEL.y_b, y + MODEL.y_f
        iuv = 1 / (u * v)
        h = ik * (u / v) ** 2
        hp = h * c_hp * iuv
        hpp = hp * (v - 3 * u) * iuv
        a = 2 * q * y / u
        ap = 2 * q * MODEL.y_b / (u * u)
        app = -2 * ap / u
        e = jnp.exp(-y / MODEL.y_d)
        w = 2 * x - a
        p = x * (x - a)
        gx = w * h
        gy = -MODEL.l_d / MODEL.y_d * e + p * hp - x * ap * h
        h11 = 2 * h
        h12 = w * hp - ap * h
        h22 = MODEL.l_d / MODEL.y_d ** 2 * e + p * hpp - 2 * x * ap * hp - x * app * h
        m, d = (h11 + h22) / 2, (h11 - h22) / 2
        r = jnp.sqrt(d * d + h12 * h12)
        s_plus = jnp.sqrt(two_sigma * jnp.maximum(m + r, 0) + epsilon)
        s_minus = jnp.sqrt(two_sigma * jnp.maximum(m - r, 0) + epsilon)
        c = jnp.where(r > 0, (s_plus - s_minus) / jnp.where(r > 0, 2 * r, 1), 0)
        s0 = (s_plus + s_minus) / 2
        xi1 = (s0 + c * d) * z1 + c * h12 * z2
        xi2 = c * h12 * z1 + (s0 - c * d) * z2
        x = x - eta * (gx + xi1)
        y = y - eta * (gy + xi2)
        now_flat = x >= 0
        changed = now_flat != flat
        return (x, y, now_flat, crossings + changed.astype(crossings.dtype),
                jnp.where(changed, step, freeze_step), jnp.where(changed, y, y_freeze))

    batch_step = jax.vmap(walker_step, in_axes=(0, 0, 0, 0, 0, 0, 0, 0, None))

    def advance(step, state, key):
        """The whole ensemble's update producing state `step`."""
        z = jax.random.normal(jax.random.fold_in(key, step), (2, args.walkers), dtype)
        return batch_step(*state, z[0], z[1], step.astype(state[4].dtype))

    def deposit(hist, x):
        """Add x to the histogram: slot 0 below the range, 1..nbins inside, nbins + 1 above.

        Without x64 there is no 64-bit integer, so the counts are kept as two int32 arrays,
        hist = high · 2^30 + low, carried after every deposit.
        """
        u = jnp.clip(x * MODEL.hist_inv_width + (1 - MODEL.hist_lo * MODEL.hist_inv_width),
                     0, nbins + 1)
        high, low = hist
        low = low.at[u.astype(jnp.int32)].add(1)
        return high + (low >> 30), low & (2 ** 30 - 1)

    def simulate(key, state):
        """All steps; returns the final state and the raw histogram as (high, low) int32."""
        hist = (jnp.zeros(nbins + 2, dtype=jnp.int32), jnp.zeros(nbins + 2, dtype=jnp.int32))
        if window_lo == 0:
            hist = deposit(hist, state[0])
        state = lax.fori_loop(1, max(window_lo, 1), lambda s, st: advance(s, st, key), state)

        def body(step, carry):
            state, hist = carry
            state = advance(step, state, key)
            return state, deposit(hist, state[0])

        return lax.fori_loop(max(window_lo, 1), window_hi + 1, body, (state, hist))

    return simulate


def initial_state(args, device):
    """Walker state at step 0 as device arrays."""
    dtype = np.dtype(args.dtype)
    x = initial_x(args.walkers, dtype)
    int_dtype = np.int64 if dtype == np.float64 else np.int32
    host = (x, np.full(args.walkers, MODEL.y_start, dtype=dtype), x >= 0,
            np.zeros(args.walkers, dtype=np.int32), np.zeros(args.walkers, dtype=int_dtype),
            np.full(args.walkers, MODEL.y_start, dtype=dtype))
    return tuple(jax.device_put(a, device) for a in host)


def main():
    """Command-line entry point."""
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("gpu", "cpu"), default="gpu",
                        help="JAX backend to run on")
    parser.add_argument("--prng", choices=("threefry2x32", "rbg", "unsafe_rbg"),
                        default="threefry2x32", help="jax_default_prng_impl")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", args.dtype == "float64")
    jax.config.update("jax_default_prng_impl", args.prng)

    device = jax.devices(args.device)[0]
    key = jax.device_put(jax.random.key(args.seed), device)
    state = initial_state(args, device)

    start = time.perf_counter()
    compiled = jax.jit(build(args)).lower(key, state).compile()
    warmup_seconds = time.perf_counter() - start

    start, cpu_start = time.perf_counter(), time.process_time()
    state, hist = jax.block_until_ready(compiled(key, state))
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start

    x, y, flat, crossings, freeze_step, y_freeze = (np.asarray(a) for a in state)
    nonfinite = np.count_nonzero(~(np.isfinite(x) & np.isfinite(y)))
    counts = np.asarray(hist[0], dtype=np.int64) * 2 ** 30 + np.asarray(hist[1])
    stats = summarize(flat, crossings, freeze_step, y_freeze, fold_histogram(counts), nonfinite)
    state_bytes = sum(a.dtype.itemsize for a in (x, y, flat, crossings, freeze_step, y_freeze))
    report(args, "jax", f"jit+fori_loop+vmap,{args.prng}", str(device), seconds, stats, {
        "warmup_seconds": warmup_seconds,
        "cpu_seconds": cpu_seconds,
        "state_bytes_per_walker": state_bytes,
        "versions": {"jax": jax.__version__, "jaxlib": version("jaxlib")},
    })


if __name__ == "__main__":
    main()
