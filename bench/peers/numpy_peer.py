#!/usr/bin/env python3
"""NumPy peer: vectorised SGD walkers on the two-valley landscape with Hessian noise (one core).

Written the way a competent NumPy user would: preallocated arrays, every operation in place
(`out=`), normals drawn by np.random.Generator(PCG64).standard_normal into a preallocated buffer,
the histogram with np.bincount. Walkers are independent, so they are advanced in blocks that stay
in cache (--block; 0 advances all walkers at once, the plain "whole array per step" style).
The physics and the formulas are documented in peer_common.py.
"""

import time

import numpy as np

from peer_common import (MODEL, fold_histogram, histogram_window, initial_x, make_parser, report,
                         summarize)

STATE_FIELDS = ("x", "y", "flat", "crossings", "freeze_step", "y_freeze")


class Walkers:
    """Per-walker state and observables, one array per field."""

    def __init__(self, n, dtype):
        self.x = initial_x(n, dtype)
        self.y = np.full(n, MODEL.y_start, dtype=dtype)
        self.flat = self.x >= 0
        self.crossings = np.zeros(n, dtype=np.int32)
        self.freeze_step = np.zeros(n, dtype=np.int64)
        self.y_freeze = self.y.copy()

    def bytes_per_walker(self):
        """Bytes of state per walker."""
        return sum(getattr(self, name).itemsize for name in STATE_FIELDS)

    def block(self, lo, hi):
        """Views of the fields for walkers [lo, hi)."""
        return [getattr(self, name)[lo:hi] for name in STATE_FIELDS]


class Stepper:
    """Preallocated scratch arrays for a block of up to `size` walkers, and the update itself."""

    FLOAT_BUFFERS = ("q", "ik", "u", "iu", "v", "iv", "h", "hp", "hpp", "a", "ap", "app", "e",
                     "w", "p", "gx", "gy", "h11", "h12", "h22", "m", "d", "r", "s0", "c",
                     "t1", "t2")

    def __init__(self, size, dtype, eta, sigma, rng):
        self.dtype = np.dtype(dtype)
        for name in self.FLOAT_BUFFERS:
            setattr(self, name, np.empty(size, dtype=self.dtype))
        self.z = np.empty(2 * size, dtype=self.dtype)
        self.changed = np.empty(size, dtype=bool)
        self.hist_index = np.empty(size, dtype=np.intp)
        self.rng = rng
        cast = self.dtype.type
        self.eta = cast(eta)
        self.two_sigma = cast(2.0 * sigma)
        self.epsilon = cast(MODEL.epsilon)
        self.tiny = np.finfo(self.dtype).tiny
        self.q_sharp = cast(MODEL.q_sharp)
        self.dq = cast(MODEL.q_flat - MODEL.q_sharp)
        self.ik_sharp = cast(MODEL.inv_k(MODEL.q_sharp))
        self.dik = cast(MODEL.inv_k(MODEL.q_flat) - MODEL.inv_k(MODEL.q_sharp))
        self.c_hp = cast(2.0 * (MODEL.y_f - MODEL.y_b))
        self.c_l0p = cast(-MODEL.l_d / MODEL.y_d)
        self.c_l0pp = cast(MODEL.l_d / MODEL.y_d ** 2)
        self.hist_scale = cast(MODEL.hist_inv_width)
        self.hist_shift = cast(1.0 - MODEL.hist_lo * MODEL.hist_inv_width)

    def nbytes(self):
        """Bytes of scratch memory."""
        return sum(getattr(self, name).nbytes for name in self.FLOAT_BUFFERS) + (
            self.z.nbytes + self.changed.nbytes + self.hist_index.nbytes)

    def gradient_hessian(self, x, y, flat, n):
        """Fill gx, gy, h11, h12, h22 for the first n walkers (x, y, flat of length n)."""
        q, ik, u, iu, v, iv = (b[:n] for b in (self.q, self.ik, self.u, self.iu, self.v, self.iv))
        h, hp, hpp, a, ap, app, e, w, p = (
            b[:n] for b in (self.h, self.hp, self.hpp, self.a, self.ap, self.app, self.e,
                            self.w, self.p))
        gx, gy, h11, h12, h22, t1 = (
            b[:n] for b in (self.gx, self.gy, self.h11, self.h12, self.h22, self.t1))

        # Branch constants, selected arithmetically (cheaper than np.where or masked copies)
        np.multiply(flat, self.dq, out=q)
        q += self.q_sharp
        np.multiply(flat, self.dik, out=ik)
        ik += self.ik_sharp
        np.add(y, MODEL.y_b, out=u)
        np.reciprocal(u, out=iu)
        np.add(y, MODEL.y_f, out=v)
        np.reciprocal(v, out=iv)
        # h = ik (u / v)²; h' = h c (1 / (u v)); h'' = h' (v − 3u) / (u v)
        np.multiply(u, iv, out=h)
        np.square(h, out=h)
        h *= ik
        np.multiply(iu, iv, out=t1)
        np.multiply(h, t1, out=hp)
        hp *= self.c_hp
        np.multiply(u, -3, out=hpp)
        hpp += v
        hpp *= t1
        hpp *= hp
        # a = 2 q y / u; a' = 2 q y_b / u²; a'' = −2 a' / u
        np.multiply(q, iu, out=ap)
        ap *= 2
        np.multiply(ap, y, out=a)
        ap *= iu
        ap *= MODEL.y_b
        np.multiply(ap, iu, out=app)
        app *= -2
        # e = exp(−y / y_d)
        np.multiply(y, -1.0 / MODEL.y_d, out=e)
        np.exp(e, out=e)
        # w = 2x − a; p = x² − a x = x (x − a)
        np.subtract(x, a, out=p)
        np.add(p, x, out=w)
        p *= x
        np.multiply(w, h, out=gx)
        np.multiply(h, 2, out=h11)
        # t1 = x a' (reused below); gy = L0' + p h' − x a' h
        np.multiply(x, ap, out=t1)
        np.multiply(t1, h, out=gy)
        np.negative(gy, out=gy)
        gy += np.multiply(e, self.c_l0p, out=h22)
        gy += np.multiply(p, hp, out=h22)
        # H12 = w h' − a' h
        np.multiply(w, hp, out=h12)
        h12 -= np.multiply(ap, h, out=h22)
        # H22 = L0'' + p h'' − 2 x a' h' − x a'' h
        np.multiply(p, hpp, out=h22)
        h22 += np.multiply(e, self.c_l0pp, out=e)
        np.multiply(t1, hp, out=t1)
        t1 *= 2
        h22 -= t1
        np.multiply(x, app, out=t1)
        t1 *= h
        h22 -= t1

    def noise(self, n):
        """Fill t1, t2 with ξ = Σ^{1/2} z for the first n walkers (uses h11, h12, h22)."""
        h11, h12, h22, m, d, r, s0, c, t1, t2 = (
            b[:n] for b in (self.h11, self.h12, self.h22, self.m, self.d, self.r, self.s0,
                            self.c, self.t1, self.t2))
        z = self.z[:2 * n]
        self.rng.standard_normal(out=z, dtype=self.dtype)
        z = z.reshape(2, n)
        np.add(h11, h22, out=m)
        m *= 0.5
        np.subtract(h11, h22, out=d)
        d *= 0.5
        np.square(d, out=r)
        r += np.square(h12, out=s0)
        np.sqrt(r, out=r)
        # s± = √(2σ max(m ± r, 0) + ε)
        for out, op in ((t1, np.add), (t2, np.subtract)):
            op(m, r, out=out)
            np.maximum(out, 0, out=out)
            out *= self.two_sigma
            out += self.epsilon
            np.sqrt(out, out=out)
        np.add(t1, t2, out=s0)
        s0 *= 0.5
        # c = (s+ − s−) / (2r); the tiny offset makes it 0 where r = 0 (then s+ = s−)
        np.subtract(t1, t2, out=c)
        np.multiply(r, 2, out=t1)
        t1 += self.tiny
        c /= t1
        # Σ^{1/2} = [[s0 + c d, c H12], [c H12, s0 − c d]]
        np.multiply(c, d, out=d)
        np.multiply(c, h12, out=c)
        np.add(s0, d, out=t1)
        t1 *= z[0]
        t1 += np.multiply(c, z[1], out=m)
        np.subtract(s0, d, out=t2)
        t2 *= z[1]
        t2 += np.multiply(c, z[0], out=m)

    def step(self, x, y, flat, crossings, freeze_step, y_freeze, step):
        """Advance n walkers by one SGD step (the update producing state `step`) and track them."""
        n = x.size
        self.gradient_hessian(x, y, flat, n)
        self.noise(n)
        for pos, grad, xi in ((x, self.gx[:n], self.t1[:n]), (y, self.gy[:n], self.t2[:n])):
            xi += grad
            xi *= self.eta
            pos -= xi
        changed = self.changed[:n]
        np.greater_equal(x, 0, out=changed)
        np.not_equal(changed, flat, out=changed)
        np.not_equal(flat, changed, out=flat)
        crossings += changed
        np.copyto(freeze_step, step, where=changed)
        np.copyto(y_freeze, y, where=changed)

    def deposit(self, x, hist):
        """Add the walkers' x to the histogram (slot 0 below, slots 1..bins inside, last above)."""
        n = x.size
        u = self.t1[:n]
        index = self.hist_index[:n]
        np.multiply(x, self.hist_scale, out=u)
        u += self.hist_shift
        np.maximum(u, 0, out=u)
        np.minimum(u, MODEL.hist_bins + 1, out=u)
        np.copyto(index, u, casting="unsafe")
        hist += np.bincount(index, minlength=MODEL.hist_bins + 2)


def simulate(args):
    """Run the ensemble.

    Returns (wall seconds, CPU seconds, walkers, stepper, histogram with the outside slot last).
    """
    dtype = np.dtype(args.dtype)
    walkers = Walkers(args.walkers, dtype)
    block = args.walkers if args.block <= 0 else min(args.block, args.walkers)
    rng = np.random.Generator(np.random.PCG64(args.seed))
    stepper = Stepper(block, dtype, args.eta, args.sigma, rng)
    raw_hist = np.zeros(MODEL.hist_bins + 2, dtype=np.int64)
    window_lo, window_hi = histogram_window(args.steps)

    start, cpu_start = time.perf_counter(), time.process_time()
    for lo in range(0, args.walkers, block):
        state = walkers.block(lo, lo + block)
        if window_lo == 0:
            stepper.deposit(state[0], raw_hist)
        for step in range(1, args.steps + 1):
            stepper.step(*state, step)
            if window_lo <= step <= window_hi:
                stepper.deposit(state[0], raw_hist)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start

    return seconds, cpu_seconds, walkers, stepper, fold_histogram(raw_hist)


def main():
    """Command-line entry point."""
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=16384,
                        help="walkers advanced together (0: all at once)")
    args = parser.parse_args()
    seconds, cpu_seconds, walkers, stepper, hist = simulate(args)
    nonfinite = np.count_nonzero(~(np.isfinite(walkers.x) & np.isfinite(walkers.y)))
    stats = summarize(walkers.flat, walkers.crossings, walkers.freeze_step, walkers.y_freeze,
                      hist, nonfinite)
    report(args, "numpy", f"block={args.block}", "cpu", seconds, stats, {
        "warmup_seconds": 0.0,
        "cpu_seconds": cpu_seconds,
        "state_bytes_per_walker": walkers.bytes_per_walker(),
        "scratch_bytes": stepper.nbytes(),
        "versions": {"numpy": np.__version__},
    })


if __name__ == "__main__":
    main()
